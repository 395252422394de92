#include "control/controller.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace nimbus::control {
namespace {

// Counts reconciles per ARN and checks that one ARN is never reconciled concurrently.
class CountingController : public Controller {
 public:
  Result<std::optional<double>> Reconcile(const std::string& arn) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (active_.count(arn)) overlapped_ = true;
      active_.insert(arn);
      ++calls_[arn];
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    std::optional<double> again;
    Status status = Status::Ok();
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_.erase(arn);
      if (fail_remaining_ > 0) {
        --fail_remaining_;
        status = Status::Internal("transient");
      }
      if (poll_remaining_[arn] > 0) {
        --poll_remaining_[arn];
        again = 0.01;
      }
    }
    if (!status.ok()) return status;
    return again;
  }
  Result<std::vector<std::string>> Pending() override { return pending_; }

  int Calls(const std::string& arn) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[arn];
  }

  std::vector<std::string> pending_;
  int sleep_ms_ = 0;
  int fail_remaining_ = 0;
  std::map<std::string, int> poll_remaining_;
  bool overlapped_ = false;

 private:
  std::mutex mu_;
  std::set<std::string> active_;
  std::map<std::string, int> calls_;
};

bool WaitFor(const std::function<bool()>& done, double seconds = 5) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

TEST(ControllerManagerTest, ReconcilesEveryPendingResourceOnStart) {
  CountingController c;
  c.pending_ = {"arn:a", "arn:b", "arn:c"};
  ControllerManager manager;
  manager.Register("test:Kind", &c);
  manager.Start();
  EXPECT_TRUE(WaitFor([&] { return c.Calls("arn:a") && c.Calls("arn:b") && c.Calls("arn:c"); }));
  manager.Stop();
}

TEST(ControllerManagerTest, NotifyReconcilesAndRequeuesWhenAsked) {
  CountingController c;
  c.poll_remaining_["arn:job"] = 3;
  ControllerManager manager;
  manager.Register("test:Kind", &c);
  manager.Start();
  manager.Notify("test:Kind", "arn:job");
  EXPECT_TRUE(WaitFor([&] { return c.Calls("arn:job") == 4; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(c.Calls("arn:job"), 4);  // no further polls once it stopped asking
  manager.Stop();
}

TEST(ControllerManagerTest, NeverReconcilesOneArnConcurrentlyButRerunsAfterANotify) {
  CountingController c;
  c.sleep_ms_ = 50;
  ControllerManagerOptions options;
  options.threads = 4;
  ControllerManager manager(options);
  manager.Register("test:Kind", &c);
  manager.Start();
  manager.Notify("test:Kind", "arn:x");
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  for (int i = 0; i < 10; ++i) manager.Notify("test:Kind", "arn:x");
  EXPECT_TRUE(WaitFor([&] { return c.Calls("arn:x") == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_EQ(c.Calls("arn:x"), 2);  // the ten notifies during the first run coalesce into one
  EXPECT_FALSE(c.overlapped_);
  manager.Stop();
}

TEST(ControllerManagerTest, RetriesAFailedReconcileWithBackoff) {
  CountingController c;
  c.fail_remaining_ = 1;
  ControllerManager manager;
  manager.Register("test:Kind", &c);
  manager.Start();
  manager.Notify("test:Kind", "arn:flaky");
  EXPECT_TRUE(WaitFor([&] { return c.Calls("arn:flaky") == 2; }, 5));
  manager.Stop();
}

TEST(ControllerManagerTest, RunsPeriodicTasks) {
  std::atomic<int> runs{0};
  ControllerManager manager;
  manager.Every("tick", 0.02, [&] {
    ++runs;
    return Status::Ok();
  });
  manager.Start();
  EXPECT_TRUE(WaitFor([&] { return runs.load() >= 3; }));
  manager.Stop();
}

TEST(ControllerManagerTest, ResyncsPendingResourcesPeriodically) {
  CountingController c;
  c.pending_ = {"arn:r"};
  ControllerManagerOptions options;
  options.resync_seconds = 0.05;
  ControllerManager manager(options);
  manager.Register("test:Kind", &c);
  manager.Start();
  EXPECT_TRUE(WaitFor([&] { return c.Calls("arn:r") >= 3; }));
  manager.Stop();
}

}  // namespace
}  // namespace nimbus::control
