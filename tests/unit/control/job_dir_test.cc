#include "control/job_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/json.h"
#include "core/strings.h"

namespace nimbus::control {
namespace {

class JobDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-jobdir-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    data_dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(data_dir_); }

  static bool IsDir(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }

  std::string data_dir_;
};

TEST_F(JobDirTest, CreatesTheSageMakerLayout) {
  auto dir = JobDir::ForJob(data_dir_, "training", "job-1");
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(dir->root(), data_dir_ + "/jobs/training/job-1");
  ASSERT_TRUE(dir->Create().ok());
  ASSERT_TRUE(dir->Create().ok());  // idempotent
  for (const char* sub :
       {"input/config", "input/data", "model", "output/data", "checkpoints", "code", "logs"}) {
    EXPECT_TRUE(IsDir(dir->root() + "/" + sub)) << sub;
  }
  EXPECT_EQ(dir->HyperparametersPath(), dir->root() + "/input/config/hyperparameters.json");
  EXPECT_EQ(dir->ResourceConfigPath(), dir->root() + "/input/config/resourceconfig.json");
  EXPECT_EQ(dir->InputDataConfigPath(), dir->root() + "/input/config/inputdataconfig.json");
  EXPECT_EQ(dir->FailurePath(), dir->root() + "/output/failure");
  EXPECT_EQ(dir->LogPath("algo-1"), dir->root() + "/logs/algo-1.log");
  EXPECT_EQ(dir->LogOffsetPath("algo-1"), dir->root() + "/logs/algo-1.offset");
  EXPECT_EQ(dir->SpecPath(), dir->root() + "/spec.json");
  EXPECT_EQ(dir->StatusPath(), dir->root() + "/status.json");

  auto channel = dir->CreateChannel("train");
  ASSERT_TRUE(channel.ok());
  EXPECT_EQ(*channel, dir->root() + "/input/data/train");
  EXPECT_TRUE(IsDir(*channel));
  EXPECT_EQ(dir->CreateChannel("../escape").status().code(), "ValidationException");
}

TEST_F(JobDirTest, RejectsIdsThatAreNotOnePathComponent) {
  for (const char* bad : {"", "..", ".hidden", "a/b", "a b", "x\n"}) {
    EXPECT_EQ(JobDir::ForJob(data_dir_, "training", bad).status().code(), "ValidationException")
        << bad;
  }
  EXPECT_FALSE(JobDir::ForJob(data_dir_, "../etc", "x").ok());
  EXPECT_FALSE(JobDir::ForJob(data_dir_, "t", std::string(129, 'a')).ok());
  EXPECT_TRUE(JobDir::ForJob(data_dir_, "t", "My-Job_2.v1").ok());
}

TEST_F(JobDirTest, WritesTheInputConfig) {
  JobDir dir(data_dir_ + "/j/");
  EXPECT_EQ(dir.root(), data_dir_ + "/j");
  ASSERT_TRUE(dir.Create().ok());
  const Value hyper = Value::Object({{"max_depth", "5"}, {"eta", "0.2"}});
  const Value resources = MakeResourceConfig("ml.m5.xlarge", 2);
  ASSERT_TRUE(dir.WriteInputConfig(hyper, resources, Value()).ok());
  EXPECT_EQ(*ReadJsonFile(dir.HyperparametersPath()), hyper);
  EXPECT_EQ(*ReadJsonFile(dir.InputDataConfigPath()), Value::MakeMap());
  auto rc = ReadJsonFile(dir.ResourceConfigPath());
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(rc->GetString("current_host"), "algo-1");
  EXPECT_EQ(rc->GetString("current_instance_type"), "ml.m5.xlarge");
  ASSERT_EQ(rc->Find("hosts")->size(), 2u);
  EXPECT_EQ(rc->Find("hosts")->list()[1].AsString(), "algo-2");
  EXPECT_EQ(rc->Find("instance_groups")->list()[0].GetString("instance_group_name"),
            "homogeneousCluster");
}

TEST_F(JobDirTest, ReadsTheFailureFileUpTo1KiB) {
  JobDir dir(data_dir_ + "/j");
  ASSERT_TRUE(dir.Create().ok());
  EXPECT_EQ(dir.ReadFailure(), std::nullopt);
  ASSERT_TRUE(WriteFileAtomic(dir.FailurePath(), "  \n").ok());
  EXPECT_EQ(dir.ReadFailure(), std::nullopt);  // empty counts as none
  ASSERT_TRUE(WriteFileAtomic(dir.FailurePath(), "AlgorithmError: bad input\n").ok());
  EXPECT_EQ(dir.ReadFailure(), "AlgorithmError: bad input");
  ASSERT_TRUE(WriteFileAtomic(dir.FailurePath(), std::string(5000, 'x')).ok());
  EXPECT_EQ(dir.ReadFailure()->size(), 1024u);
  // A multi-byte character is never cut in half.
  ASSERT_TRUE(WriteFileAtomic(dir.FailurePath(), std::string(1023, 'x') + "\xC3\xA9tc").ok());
  EXPECT_EQ(dir.ReadFailure()->size(), 1023u);
}

TEST_F(JobDirTest, WorkerRecordsRoundTrip) {
  JobDir dir(data_dir_ + "/j");
  ASSERT_TRUE(dir.Create().ok());
  auto none = ReadWorkerRecord(dir);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  WorkerRecord record;
  record.state = JobState::kFailed;
  record.job_id = "j";
  record.kind = "test";
  record.process = *IdentifyProcess(::getpid());
  record.exit_code = 137;
  record.signal = 9;
  record.reason = "killed by signal 9";
  record.started_at = 1700000000.5;
  record.ended_at = 1700000010.25;
  record.max_rss_bytes = 1 << 20;
  ASSERT_TRUE(WriteWorkerRecord(dir, record).ok());
  auto read = ReadWorkerRecord(dir);
  ASSERT_TRUE(read.ok() && read->has_value());
  const WorkerRecord& r = **read;
  EXPECT_EQ(r.state, JobState::kFailed);
  EXPECT_EQ(r.exit_code, 137);
  EXPECT_EQ(r.signal, 9);
  EXPECT_EQ(r.reason, "killed by signal 9");
  EXPECT_EQ(r.started_at, 1700000000.5);
  EXPECT_EQ(r.ended_at, 1700000010.25);
  EXPECT_EQ(r.process.pid, ::getpid());
  EXPECT_EQ(r.process.start_time, record.process.start_time);
  EXPECT_EQ(r.max_rss_bytes, 1 << 20);
  EXPECT_EQ(r.process.pid_namespace, record.process.pid_namespace);
  // Every state name parses back.
  for (int i = 0; i <= static_cast<int>(JobState::kLost); ++i) {
    const auto state = static_cast<JobState>(i);
    EXPECT_EQ(ParseJobState(JobStateName(state)), state);
  }
  ASSERT_TRUE(WriteFileAtomic(dir.StatusPath(), "{not json").ok());
  EXPECT_FALSE(ReadWorkerRecord(dir).ok());
  // No temp files are left behind by the atomic writes.
  for (const auto& entry : std::filesystem::directory_iterator(dir.root())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos);
  }
}

TEST_F(JobDirTest, StopRequestsRoundTrip) {
  JobDir dir(data_dir_ + "/j");
  ASSERT_TRUE(dir.Create().ok());
  EXPECT_FALSE(ReadStopRequest(dir).has_value());
  ASSERT_TRUE(WriteStopRequest(dir, StopRequest{1700000000, 2.5}).ok());
  auto request = ReadStopRequest(dir);
  ASSERT_TRUE(request.has_value());
  EXPECT_EQ(request->grace_seconds, 2.5);
  EXPECT_EQ(request->requested_at, 1700000000);
}

TEST(ProcessIdentityTest, TellsALiveProcessFromAGoneOrReusedOne) {
  auto self = IdentifyProcess(::getpid());
  ASSERT_TRUE(self.has_value());
  EXPECT_GT(self->start_time, 0);
  EXPECT_FALSE(self->boot_id.empty());
  EXPECT_TRUE(IsAlive(*self));
  // Same pid, other start time: a reused pid.
  ProcessIdentity reused = *self;
  reused.start_time += 1;
  EXPECT_FALSE(IsAlive(reused));
  ProcessIdentity rebooted = *self;
  rebooted.boot_id = "another-boot";
  EXPECT_FALSE(IsAlive(rebooted));
  // A pid from another PID namespace (a sandbox's PID 1) cannot be checked from here.
  EXPECT_TRUE(StartsWith(self->pid_namespace, "pid:["));
  EXPECT_TRUE(InThisPidNamespace(*self));
  ProcessIdentity sandboxed = *self;
  sandboxed.pid_namespace = "pid:[1]";
  EXPECT_FALSE(InThisPidNamespace(sandboxed));
  EXPECT_FALSE(IsAlive(sandboxed));
  EXPECT_FALSE(IsAlive(ProcessIdentity{}));

  // A zombie is not alive; once reaped it is gone.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  for (int i = 0; i < 200; ++i) {
    auto info = ReadProcessInfo(child);
    if (info && info->state == 'Z') break;
    ::usleep(5000);
  }
  auto info = ReadProcessInfo(child);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->state, 'Z');
  EXPECT_EQ(info->ppid, ::getpid());
  EXPECT_FALSE(IdentifyProcess(child).has_value());
  ::waitpid(child, nullptr, 0);
  EXPECT_FALSE(ReadProcessInfo(child).has_value());
}

}  // namespace
}  // namespace nimbus::control
