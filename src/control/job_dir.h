// JobDir: the directory one job runs in, laid out as SageMaker's container contract
// (docs/job-directory.md is the full contract):
//
//   <data-dir>/jobs/<kind>/<job-id>/
//     input/config/hyperparameters.json  resourceconfig.json  inputdataconfig.json
//     input/data/<channel>/              model/   output/data/   output/failure
//     checkpoints/   code/   logs/<stream>.log (+ <stream>.offset)
//     spec.json      the worker's spec (written by the executor)
//     status.json    the worker's state (written by the worker only, atomically)
//     stop.json      a stop request (written by the executor)
//     launch.json    how the local executor launched the worker
//     worker.log     the supervisor's own stdout/stderr (sandbox and supervisor messages)
//
// The server and the worker share nothing but this directory, so every file here is a
// small JSON document written atomically (temp file, fsync, rename): a reader sees the old
// or the new version, never half of one. This file also holds the helpers both sides use
// for those documents: the worker's status record, stop requests, and the identity of a
// local process (pid + start time + boot id, so that a reused pid is never mistaken for a
// worker).
//
// Thread-safety: a JobDir is an immutable value; the functions are thread-safe (they touch
// only the files named).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "control/executor.h"
#include "core/result.h"
#include "core/value.h"

namespace nimbus::control {

// A job kind, job id or channel name must be one safe path component: 1 to 128 of
// [A-Za-z0-9._-], not starting with '.'. ValidationException naming `what` otherwise.
Status ValidatePathComponent(std::string_view what, std::string_view value);

class JobDir {
 public:
  // <data_dir>/jobs/<kind>/<job_id>. Job ids must be unique across accounts (callers pass
  // an internal id, not the user's job name).
  static Result<JobDir> ForJob(const std::string& data_dir, std::string_view kind,
                               std::string_view job_id);
  explicit JobDir(std::string root);

  const std::string& root() const { return root_; }

  std::string ConfigDir() const { return root_ + "/input/config"; }
  std::string HyperparametersPath() const { return ConfigDir() + "/hyperparameters.json"; }
  std::string ResourceConfigPath() const { return ConfigDir() + "/resourceconfig.json"; }
  std::string InputDataConfigPath() const { return ConfigDir() + "/inputdataconfig.json"; }
  std::string DataDir() const { return root_ + "/input/data"; }
  std::string ChannelDir(std::string_view channel) const {
    return DataDir() + "/" + std::string(channel);
  }
  std::string ModelDir() const { return root_ + "/model"; }
  std::string OutputDir() const { return root_ + "/output"; }
  std::string OutputDataDir() const { return root_ + "/output/data"; }
  std::string FailurePath() const { return root_ + "/output/failure"; }
  std::string CheckpointsDir() const { return root_ + "/checkpoints"; }
  std::string CodeDir() const { return root_ + "/code"; }
  std::string LogsDir() const { return root_ + "/logs"; }
  std::string LogPath(std::string_view stream) const {
    return LogsDir() + "/" + std::string(stream) + ".log";
  }
  std::string LogOffsetPath(std::string_view stream) const {
    return LogsDir() + "/" + std::string(stream) + ".offset";
  }
  std::string SpecPath() const { return root_ + "/spec.json"; }
  std::string StatusPath() const { return root_ + "/status.json"; }
  std::string StopPath() const { return root_ + "/stop.json"; }
  std::string LaunchPath() const { return root_ + "/launch.json"; }
  std::string WorkerLogPath() const { return root_ + "/worker.log"; }

  // Creates every directory of the layout (idempotent).
  Status Create() const;
  // Creates input/data/<channel>/ after validating the name.
  Result<std::string> CreateChannel(std::string_view channel) const;
  // Writes the three input/config documents (a null Value writes "{}").
  Status WriteInputConfig(const Value& hyperparameters, const Value& resource_config,
                          const Value& input_data_config) const;
  // The payload's output/failure: its first max_bytes bytes, nullopt when absent or empty.
  std::optional<std::string> ReadFailure(size_t max_bytes = 1024) const;
  // Deletes the whole directory tree.
  Status Remove() const;

 private:
  std::string root_;
};

// resourceconfig.json as SageMaker writes it for `count` hosts algo-1 … algo-<count>, this
// host being algo-<current>.
Value MakeResourceConfig(std::string_view instance_type, int count, int current = 1);

// The identity of a local process. The kernel's start time (clock ticks since boot,
// /proc/<pid>/stat field 22) with the boot id tells a reused pid apart. A pid is a number
// of the PID namespace it was looked up in ("pid:[4026531836]"), recorded too: a sandboxed
// worker is PID 1 of a namespace of its own, a number the server cannot use.
struct ProcessIdentity {
  int64_t pid = 0;
  int64_t start_time = 0;
  std::string boot_id;
  std::string pid_namespace;
};
// The identity of a live process; nullopt when there is none or it is a zombie.
std::optional<ProcessIdentity> IdentifyProcess(int64_t pid);
// Whether the identity was taken in this process's PID namespace (an identity that does not
// name its namespace is assumed to be).
bool InThisPidNamespace(const ProcessIdentity& process);
// Whether exactly that process still runs (not a zombie). False for an identity from
// another PID namespace or boot, which cannot be checked from here.
bool IsAlive(const ProcessIdentity& process);
// What /proc says of any process, zombies included: its state letter ('R', 'S', 'Z' …),
// parent and start time. nullopt when there is no such process.
struct ProcessInfo {
  char state = '?';
  int64_t ppid = 0;
  int64_t start_time = 0;
};
std::optional<ProcessInfo> ReadProcessInfo(int64_t pid);

// The worker's record in status.json. Written first when the supervisor starts (Running,
// with its identity), then at each change of state; the last one is terminal.
struct WorkerRecord {
  JobState state = JobState::kStarting;
  std::string job_id;
  std::string kind;
  std::string host;
  ProcessIdentity process;  // the supervisor
  int exit_code = 0;        // 128 + signal when killed by a signal
  int signal = 0;
  std::string reason;
  double started_at = 0;
  double ended_at = 0;
  int64_t max_rss_bytes = 0;
  double cpu_seconds = 0;
};
Value ToValue(const WorkerRecord& record);
Result<WorkerRecord> WorkerRecordFromValue(const Value& value);
Status WriteWorkerRecord(const JobDir& dir, const WorkerRecord& record);
// nullopt when status.json does not exist yet.
Result<std::optional<WorkerRecord>> ReadWorkerRecord(const JobDir& dir);

// stop.json: the executor asks the worker to stop.
struct StopRequest {
  double requested_at = 0;
  double grace_seconds = 0;
};
Status WriteStopRequest(const JobDir& dir, const StopRequest& request);
std::optional<StopRequest> ReadStopRequest(const JobDir& dir);

// Small file helpers used on both sides.
// Writes path atomically: a temp file beside it, fsync, rename, fsync of the directory.
Status WriteFileAtomic(const std::string& path, std::string_view contents);
// kNotFound when absent; kInternal on other errors.
Result<std::string> ReadWholeFile(const std::string& path);
// mkdir -p.
Status MakeDirs(const std::string& path);
Status WriteJsonFile(const std::string& path, const Value& value);
Result<Value> ReadJsonFile(const std::string& path);

}  // namespace nimbus::control
