// Executor: runs one job's worker (`nimbus worker <kind> --spec <job_dir>/spec.json`)
// somewhere and reports on it (ARCHITECTURE.md §4). LocalExecutor runs workers as local
// processes; a Slurm executor will submit the same command with sbatch over shared storage.
//
// Nothing above this interface may assume local processes: a job is named by its id and
// its job directory (docs/job-directory.md), and everything observable about it is read
// through Poll(), which works for jobs launched by an earlier server process (after a
// restart or a kill -9) as well as for ones launched by this one.
//
// Thread-safety: implementations are thread-safe; calls for different jobs may run
// concurrently. Calls for one job should come from one thread at a time (a controller's
// Reconcile), since Launch and Stop write files of that job's directory.
#pragma once

#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "control/instance_types.h"
#include "core/result.h"
#include "core/value.h"

namespace nimbus::control {

struct LaunchRequest {
  std::string job_id;
  std::string kind;                        // the worker kind: "test", "command", "train" …
  std::string job_dir;                     // created beforehand with JobDir::Create (inputs staged)
  Value spec;                              // written to <job_dir>/spec.json
  std::map<std::string, std::string> env;  // SM_* etc., added to the worker's environment
  // The resources the job asked for: the payload's memory limit is the instance's memory
  // times the count. nullptr: no limits.
  const InstanceType* instance = nullptr;
  int instance_count = 1;
  bool network = false;             // EnableNetworkIsolation=false → allowed
  int64_t max_runtime_seconds = 0;  // 0 = none
};

// kStarting: launched, the worker has not reported yet. kStopping: a stop (or the
// MaxRuntime) is being carried out. kLost: the worker is gone without a final status.
enum class JobState { kStarting, kRunning, kStopping, kSucceeded, kFailed, kStopped, kLost };

inline bool IsTerminal(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kStopped || state == JobState::kLost;
}

// "Starting", "Running", "Stopping", "Succeeded", "Failed", "Stopped", "Lost": the names
// used in status.json.
inline constexpr std::string_view kJobStateNames[] = {
    "Starting", "Running", "Stopping", "Succeeded", "Failed", "Stopped", "Lost"};
inline std::string_view JobStateName(JobState state) {
  return kJobStateNames[static_cast<int>(state)];
}
inline std::optional<JobState> ParseJobState(std::string_view name) {
  for (int i = 0; i < static_cast<int>(std::size(kJobStateNames)); ++i) {
    if (kJobStateNames[i] == name) return static_cast<JobState>(i);
  }
  return std::nullopt;
}

struct JobStatus {
  JobState state = JobState::kStarting;
  // The payload's exit code; 128 + N when it was killed by signal N (as shells report it).
  // Meaningful for terminal states only.
  int exit_code = 0;
  // Why it failed or stopped: the payload's output/failure (first 1 KiB), "exit code N",
  // "killed by signal N", "OutOfMemory: …", "MaxRuntimeExceeded: …", or
  // "The worker process exited unexpectedly" for kLost.
  std::string reason;
  double started_at = 0;  // epoch seconds; 0 until the worker started
  double ended_at = 0;    // 0 until terminal
};

class Executor {
 public:
  virtual ~Executor() = default;

  // Starts the worker; returns once it is launched (not finished). Writes spec.json.
  // kConflict when a worker of this job directory is still alive.
  virtual Status Launch(const LaunchRequest& request) = 0;

  // The job's current state. Works after a server restart (re-attach). kNotFound when
  // nothing was ever launched in job_dir.
  virtual Result<JobStatus> Poll(const std::string& job_id, const std::string& job_dir) = 0;

  // Asks the worker to stop: the payload gets SIGTERM and, grace_seconds later, SIGKILL;
  // the job ends as kStopped. Returns without waiting; Poll shows kStopping, then kStopped.
  // A job already over is left as it is.
  virtual Status Stop(const std::string& job_id, const std::string& job_dir,
                      double grace_seconds) = 0;
};

}  // namespace nimbus::control
