// Controllers: the loops that bring resources from their desired to their actual state
// (ARCHITECTURE.md §3).
//
// A resource kind that *does* something (a training job launches a worker, an endpoint keeps
// model servers up) registers a Controller with the ControllerManager. The manager calls
// Reconcile(arn) on a small pool of threads:
//   - for every resource Pending() names when it starts (so a restart, even after kill -9,
//     picks up every non-terminal resource: re-attaches running workers, fails lost ones);
//   - whenever a handler calls Notify(arn) (Create*, Stop* …);
//   - after the delay a Reconcile asked for (polling a running job), and every resync
//     interval for all of Pending() as a safety net.
// One ARN is never reconciled by two threads at once, and a Notify that arrives while it is
// being reconciled makes it run once more afterwards (the work-queue discipline of Kubernetes
// controllers), so Reconcile sees a consistent picture and needs no locking of its own per
// resource. A Reconcile that fails is retried with exponential backoff (1 s doubling to 60 s).
//
// The manager also runs housekeeping tasks on a period (log retention, alarm evaluation).
//
// Thread-safety: all methods are thread-safe. Controllers and tasks must outlive Stop().
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"

namespace nimbus::control {

class Controller {
 public:
  virtual ~Controller() = default;
  // Moves the resource one step closer to its desired state. Returns the number of seconds
  // after which it wants to look again (a job it is polling), or nullopt when only an event
  // can change anything. An error is logged and the ARN retried with backoff.
  virtual Result<std::optional<double>> Reconcile(const std::string& arn) = 0;
  // The ARNs of every resource this controller still has work for (non-terminal).
  virtual Result<std::vector<std::string>> Pending() = 0;
};

struct ControllerManagerOptions {
  int threads = 2;
  double resync_seconds = 60;  // how often every Pending() resource is reconciled anyway
};

class ControllerManager {
 public:
  explicit ControllerManager(ControllerManagerOptions options = {});
  ~ControllerManager();
  ControllerManager(const ControllerManager&) = delete;
  ControllerManager& operator=(const ControllerManager&) = delete;

  // REQUIRES: before Start(). `kind` names the controller in logs ("sagemaker:ProcessingJob").
  void Register(std::string kind, Controller* controller);
  // Runs fn every period_seconds (first run one period after Start()).
  void Every(std::string name, double period_seconds, std::function<Status()> fn);

  // Enqueues every controller's Pending() and starts the threads.
  void Start();
  // Stops the threads after their current Reconcile; queued work is dropped (it is all
  // recoverable from the store, which is the point).
  void Stop();

  // Asks for the ARN (of a resource of `kind`) to be reconciled as soon as possible.
  void Notify(const std::string& kind, const std::string& arn);

 private:
  struct Key {
    std::string kind;
    std::string arn;
    bool operator<(const Key& o) const { return kind != o.kind ? kind < o.kind : arn < o.arn; }
  };
  struct Task {
    std::string name;
    double period;
    std::function<Status()> fn;
    double next;
  };

  void EnqueueLocked(const Key& key, double at);
  void EnqueuePending(double now);
  void WorkerLoop();
  void RunTasks(double now);

  ControllerManagerOptions options_;
  std::map<std::string, Controller*> controllers_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<Key, double> due_;      // key → when it should run; GUARDED_BY(mu_)
  std::set<Key> running_;          // keys a thread is reconciling; GUARDED_BY(mu_)
  std::map<Key, double> rerun_;    // notified while running; GUARDED_BY(mu_)
  std::map<Key, double> backoff_;  // current retry delay per failing key; GUARDED_BY(mu_)
  std::vector<Task> tasks_;        // GUARDED_BY(mu_)
  bool tasks_running_ = false;     // GUARDED_BY(mu_)
  double next_resync_ = 0;         // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace nimbus::control
