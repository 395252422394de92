#include "control/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "control/instance_types.h"

namespace nimbus::control {
namespace {

// ml.m5.large: 2 vCPU, 8 GiB. ml.m5.xlarge: 4 vCPU, 16 GiB. ml.c5.large: 2 vCPU, 4 GiB.
class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest() : clock_(1700000000), scheduler_(Resources{8, 32 * 1024, 0}, clock_) {}

  Status Submit(const std::string& id, const std::string& account,
                const std::string& type = "ml.m5.large", int count = 1) {
    return scheduler_.Submit(JobRequest{
        id, account, type, count, [this](const std::string& id) { admitted_.push_back(id); }});
  }

  FakeClock clock_;
  Scheduler scheduler_;
  std::vector<std::string> admitted_;
};

TEST(InstanceTypesTest, KnowsAwsFiguresAndRejectsUnknownTypes) {
  const InstanceType* m5 = FindInstanceType("ml.m5.xlarge");
  ASSERT_NE(m5, nullptr);
  EXPECT_EQ(m5->vcpus, 4);
  EXPECT_EQ(m5->memory_mib, 16 * 1024);
  EXPECT_EQ(m5->gpus, 0);
  const InstanceType* p3 = FindInstanceType("ml.p3.2xlarge");
  ASSERT_NE(p3, nullptr);
  EXPECT_EQ(p3->vcpus, 8);
  EXPECT_EQ(p3->memory_mib, 61 * 1024);
  EXPECT_EQ(p3->gpus, 1);
  EXPECT_EQ(p3->accelerator, "NVIDIA V100");
  const InstanceType* t3 = FindInstanceType("ml.t3.medium");
  ASSERT_NE(t3, nullptr);
  EXPECT_EQ(t3->vcpus, 2);
  EXPECT_EQ(t3->memory_mib, 4 * 1024);
  EXPECT_EQ(FindInstanceType("ml.c5n.xlarge")->memory_mib, 10752);  // 10.5 GiB
  EXPECT_EQ(FindInstanceType("ml.g4dn.12xlarge")->gpus, 4);
  EXPECT_EQ(FindInstanceType("ml.inf1.6xlarge")->gpus, 0);
  EXPECT_EQ(FindInstanceType("ml.inf1.6xlarge")->accelerator_count, 4);
  EXPECT_EQ(FindInstanceType("ml.m5.huge"), nullptr);
  EXPECT_EQ(FindInstanceType("m5.large"), nullptr);
  for (const InstanceType& type : AllInstanceTypes()) {
    EXPECT_GT(type.vcpus, 0) << type.name;
    EXPECT_GT(type.memory_mib, 0) << type.name;
    EXPECT_EQ(FindInstanceType(type.name), &type) << "duplicate " << type.name;
  }
}

TEST(MachineCapacityTest, DetectsThisMachine) {
  const Resources r = DetectMachineCapacity();
  EXPECT_GE(r.vcpus, 1);
  EXPECT_GT(r.memory_mib, 64);
  EXPECT_GE(r.gpus, 0);
  Scheduler scheduler;
  EXPECT_EQ(scheduler.capacity(), r);
}

TEST_F(SchedulerTest, AdmitsWhileCapacityLastsThenQueues) {
  ASSERT_TRUE(Submit("a", "111", "ml.m5.xlarge").ok());  // 4 of 8 vCPU
  ASSERT_TRUE(Submit("b", "111", "ml.m5.large").ok());   // 6
  ASSERT_TRUE(Submit("c", "111", "ml.m5.large").ok());   // 8
  ASSERT_TRUE(Submit("d", "111", "ml.m5.large").ok());   // would be 10: waits
  EXPECT_EQ(admitted_, (std::vector<std::string>{"a", "b", "c"}));
  const SchedulerSnapshot snap = scheduler_.Snapshot();
  EXPECT_EQ(snap.used, (Resources{8, 32 * 1024, 0}));
  EXPECT_EQ(snap.running.size(), 3u);
  ASSERT_EQ(snap.queued.size(), 1u);
  EXPECT_EQ(snap.queued[0].id, "d");
  EXPECT_EQ(snap.queued[0].submitted_at, 1700000000);
  EXPECT_EQ(snap.queued[0].admitted_at, 0);
  EXPECT_EQ(scheduler_.Position("a"), 0u);
  EXPECT_EQ(scheduler_.Position("d"), 1u);
  EXPECT_EQ(scheduler_.Position("nope"), std::nullopt);

  clock_.Advance(5);
  ASSERT_TRUE(scheduler_.Release("b").ok());
  EXPECT_EQ(admitted_.back(), "d");
  EXPECT_EQ(scheduler_.Position("d"), 0u);
  EXPECT_EQ(scheduler_.Snapshot().running.back().admitted_at, 1700000005);
  EXPECT_EQ(scheduler_.Release("b").kind(), ErrorKind::kNotFound);
}

TEST_F(SchedulerTest, MemoryIsACapacityToo) {
  ASSERT_TRUE(Submit("big", "1", "ml.r5.xlarge").ok());   // 4 vCPU, 32 GiB: all the memory
  ASSERT_TRUE(Submit("small", "1", "ml.c5.large").ok());  // 2 vCPU fit, memory does not
  EXPECT_EQ(admitted_, (std::vector<std::string>{"big"}));
  ASSERT_TRUE(scheduler_.Release("big").ok());
  EXPECT_EQ(admitted_, (std::vector<std::string>{"big", "small"}));
}

TEST_F(SchedulerTest, IsFifoWithinAnAccountWithoutOvertaking) {
  ASSERT_TRUE(Submit("a1", "A", "ml.m5.xlarge", 2).ok());  // all 8 vCPU
  ASSERT_TRUE(Submit("a2", "A", "ml.m5.xlarge").ok());     // 4: waits
  ASSERT_TRUE(Submit("a3", "A", "ml.m5.large").ok());      // 2: waits behind a2
  EXPECT_EQ(scheduler_.Position("a2"), 1u);
  EXPECT_EQ(scheduler_.Position("a3"), 2u);
  ASSERT_TRUE(scheduler_.Release("a1").ok());
  EXPECT_EQ(admitted_, (std::vector<std::string>{"a1", "a2", "a3"}));
}

TEST_F(SchedulerTest, TakesTurnsBetweenAccounts) {
  ASSERT_TRUE(Submit("blocker", "X", "ml.m5.xlarge", 2).ok());  // the whole machine
  for (int i = 1; i <= 3; ++i)
    ASSERT_TRUE(Submit(std::string("a").append(std::to_string(i)), "A").ok());
  ASSERT_TRUE(Submit("b1", "B").ok());
  ASSERT_TRUE(Submit("b2", "B").ok());
  ASSERT_TRUE(Submit("c1", "C").ok());
  // A arrived first, so it goes first; then accounts alternate.
  const std::vector<std::string> expected = {"a1", "b1", "c1", "a2", "b2", "a3"};
  const SchedulerSnapshot snap = scheduler_.Snapshot();
  ASSERT_EQ(snap.queued.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(snap.queued[i].id, expected[i]);
    EXPECT_EQ(scheduler_.Position(expected[i]), i + 1);
  }
  // Releasing the blocker admits 4 jobs of 2 vCPU in that order.
  admitted_.clear();
  ASSERT_TRUE(scheduler_.Release("blocker").ok());
  EXPECT_EQ(admitted_, (std::vector<std::string>{"a1", "b1", "c1", "a2"}));
  // One slot at a time from here: B's turn, then A's.
  ASSERT_TRUE(scheduler_.Release("a1").ok());
  EXPECT_EQ(admitted_.back(), "b2");
  ASSERT_TRUE(scheduler_.Release("b1").ok());
  EXPECT_EQ(admitted_.back(), "a3");
  EXPECT_TRUE(scheduler_.Snapshot().queued.empty());
}

TEST_F(SchedulerTest, AnAccountFloodingTheQueueDoesNotStarveAnother) {
  ASSERT_TRUE(Submit("blocker", "X", "ml.m5.xlarge", 2).ok());
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(Submit(std::string("flood").append(std::to_string(i)), "A").ok());
  ASSERT_TRUE(Submit("late", "B").ok());
  EXPECT_EQ(scheduler_.Position("late"), 2u);
}

TEST_F(SchedulerTest, ClampsDemandsBiggerThanTheMachine) {
  // 96 vCPU / 384 GiB on an 8 vCPU / 32 GiB machine: the job takes all of it and runs alone.
  const Resources demand = scheduler_.DemandFor(*FindInstanceType("ml.m5.24xlarge"), 1);
  EXPECT_EQ(demand, (Resources{8, 32 * 1024, 0}));
  // GPUs beyond the machine's are clamped (to none here: the job runs on CPUs).
  EXPECT_EQ(scheduler_.DemandFor(*FindInstanceType("ml.p3.2xlarge"), 1).gpus, 0);
  EXPECT_EQ(scheduler_.DemandFor(*FindInstanceType("ml.m5.large"), 3),
            (Resources{6, 24 * 1024, 0}));

  ASSERT_TRUE(Submit("huge", "A", "ml.m5.24xlarge").ok());
  EXPECT_EQ(admitted_, (std::vector<std::string>{"huge"}));
  ASSERT_TRUE(Submit("tiny", "B", "ml.t3.medium").ok());
  EXPECT_EQ(admitted_.size(), 1u);
  ASSERT_TRUE(scheduler_.Release("huge").ok());
  EXPECT_EQ(admitted_.back(), "tiny");
  // An oversized job waits for the machine to empty, then runs alone.
  ASSERT_TRUE(Submit("huge2", "A", "ml.c5.18xlarge", 4).ok());
  EXPECT_EQ(scheduler_.Position("huge2"), 1u);
  ASSERT_TRUE(scheduler_.Release("tiny").ok());
  EXPECT_EQ(admitted_.back(), "huge2");
}

TEST_F(SchedulerTest, CancelRemovesQueuedJobsAndUnblocksTheLine) {
  ASSERT_TRUE(Submit("run", "A", "ml.m5.xlarge").ok());    // 4 of 8
  ASSERT_TRUE(Submit("wide", "A", "ml.m5.2xlarge").ok());  // 8: waits
  ASSERT_TRUE(Submit("narrow", "B", "ml.m5.large").ok());  // would fit, but waits its turn
  EXPECT_EQ(admitted_, (std::vector<std::string>{"run"}));
  EXPECT_EQ(scheduler_.Cancel("run").kind(), ErrorKind::kConflict);
  EXPECT_EQ(scheduler_.Cancel("ghost").kind(), ErrorKind::kNotFound);
  ASSERT_TRUE(scheduler_.Cancel("wide").ok());
  EXPECT_EQ(admitted_, (std::vector<std::string>{"run", "narrow"}));
  EXPECT_EQ(scheduler_.Position("wide"), std::nullopt);
  EXPECT_EQ(scheduler_.Cancel("wide").kind(), ErrorKind::kNotFound);
}

TEST_F(SchedulerTest, ReleaseOfAQueuedJobRemovesIt) {
  ASSERT_TRUE(Submit("run", "A", "ml.m5.2xlarge").ok());
  ASSERT_TRUE(Submit("q", "A").ok());
  ASSERT_TRUE(scheduler_.Release("q").ok());
  EXPECT_TRUE(scheduler_.Snapshot().queued.empty());
  ASSERT_TRUE(scheduler_.Release("run").ok());
  EXPECT_EQ(admitted_, (std::vector<std::string>{"run"}));
  EXPECT_EQ(scheduler_.Snapshot().used, (Resources{}));
}

TEST_F(SchedulerTest, RejectsBadRequests) {
  Status s = Submit("x", "A", "ml.m5.gigantic");
  EXPECT_EQ(s.code(), "ValidationException");
  EXPECT_NE(s.message().find("ml.m5.gigantic"), std::string::npos);
  EXPECT_EQ(Submit("x", "A", "ml.m5.large", 0).code(), "ValidationException");
  ASSERT_TRUE(Submit("x", "A").ok());
  EXPECT_EQ(Submit("x", "B").kind(), ErrorKind::kConflict);
  EXPECT_EQ(admitted_.size(), 1u);
}

TEST_F(SchedulerTest, AdoptCountsRunningJobsAfterARestart) {
  ASSERT_TRUE(scheduler_.Adopt(JobRequest{"old1", "A", "ml.m5.2xlarge", 1, nullptr}).ok());
  ASSERT_TRUE(scheduler_.Adopt(JobRequest{"old2", "A", "ml.m5.large", 1, nullptr}).ok());
  // Adopted jobs may over-commit; nothing new starts until they end.
  EXPECT_EQ(scheduler_.Snapshot().used.vcpus, 10);
  ASSERT_TRUE(Submit("new", "B").ok());
  EXPECT_TRUE(admitted_.empty());
  ASSERT_TRUE(scheduler_.Release("old1").ok());
  EXPECT_EQ(admitted_, (std::vector<std::string>{"new"}));
  EXPECT_EQ(scheduler_.Adopt(JobRequest{"new", "B", "ml.m5.large", 1, nullptr}).kind(),
            ErrorKind::kConflict);
}

TEST_F(SchedulerTest, CallbacksRunOutsideTheLockAndMayCallBack) {
  // The callback of the admitted job releases it at once, which admits the next one, and so
  // on: this deadlocks if callbacks run under the lock.
  std::vector<std::string> order;
  std::function<void(const std::string&)> release_at_once = [&](const std::string& id) {
    order.push_back(id);
    EXPECT_EQ(scheduler_.Position(id), 0u);
    EXPECT_TRUE(scheduler_.Release(id).ok());
  };
  ASSERT_TRUE(Submit("blocker", "X", "ml.m5.2xlarge").ok());
  for (const char* id : {"j1", "j2", "j3"}) {
    ASSERT_TRUE(scheduler_.Submit(JobRequest{id, "A", "ml.m5.2xlarge", 1, release_at_once}).ok());
  }
  ASSERT_TRUE(scheduler_.Release("blocker").ok());
  EXPECT_EQ(order, (std::vector<std::string>{"j1", "j2", "j3"}));
  EXPECT_EQ(scheduler_.Snapshot().used, (Resources{}));
}

TEST_F(SchedulerTest, IsSafeUnderConcurrentUse) {
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        std::string id = "t";
        id.append(std::to_string(t)).append("-").append(std::to_string(i));
        ASSERT_TRUE(scheduler_
                        .Submit(JobRequest{id, "acct" + std::to_string(t % 2), "ml.m5.large", 1,
                                           [&](const std::string&) { ++admitted; }})
                        .ok());
        if (i % 3 == 0) (void)scheduler_.Cancel(id);
        (void)scheduler_.Release(id);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const SchedulerSnapshot snap = scheduler_.Snapshot();
  EXPECT_TRUE(snap.running.empty());
  EXPECT_TRUE(snap.queued.empty());
  EXPECT_EQ(snap.used, (Resources{}));
  EXPECT_GT(admitted.load(), 0);
}

}  // namespace
}  // namespace nimbus::control
