// LocalExecutor: runs each job's worker as a local process (ARCHITECTURE.md §4).
//
// Launch starts `<worker_binary> worker <kind> --spec <job_dir>/spec.json …` detached: in a
// new session, re-parented away from the server (double fork), its stdout/stderr in
// <job_dir>/worker.log, so that it survives the server's crash or kill -9. Every later
// question goes through the job directory (docs/job-directory.md): the worker records its
// pid, kernel start time and boot id in status.json, Poll reads that file and checks that
// exactly that process still runs, so a new LocalExecutor (after a restart) re-attaches to
// jobs an earlier one launched, and a reused pid is never mistaken for a worker. A worker
// that is gone without a final status.json is kLost ("The worker process exited
// unexpectedly"), recorded as such in status.json.
//
// Sandbox: with bubblewrap (`bwrap`), the worker sees a read-only /usr, /bin, /lib*, /etc,
// fresh /tmp, /proc and /dev, the worker binary, and its job directory read-write at its
// own path and at /opt/ml (SageMaker's paths) — nothing else of the data directory. It is
// PID 1 of its own PID namespace, so no other process (nor its /proc/<pid>/root or
// environ) is visible, and whatever it leaves behind dies with it; Poll then judges it by
// the bwrap process, and Stop signals bwrap's child. Without
// EnableNetworkIsolation=false (LaunchRequest::network) it gets no network (--unshare-net).
// --die-with-parent is not used: the job must outlive the server. kAuto uses bwrap when it
// works here and otherwise runs unsandboxed, logging a warning once; kOn fails Launch
// without it.
//
// Limits: the worker applies RLIMIT_AS (instance memory × count) and RLIMIT_CPU (vCPUs ×
// count × MaxRuntime, when one is set) to the payload and enforces MaxRuntime itself.
//
// Thread-safety: thread-safe; Launch may be called from many threads (it forks from a
// multi-threaded server, doing only async-signal-safe work between fork and exec).
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "control/executor.h"

namespace nimbus::control {

struct LocalExecutorOptions {
  enum class Sandbox { kAuto, kOn, kOff };

  // The nimbus binary; empty means this process's own executable.
  std::string worker_binary;
  Sandbox use_sandbox = Sandbox::kAuto;
  // Empty: `bwrap` from PATH (or /usr/bin/bwrap).
  std::string bwrap_binary;
  // The payload's log stream: logs/<log_stream>.log.
  std::string log_stream = "algo-1";
  // SIGTERM → SIGKILL delay when MaxRuntime is exceeded.
  double max_runtime_grace_seconds = 10;
};

class LocalExecutor : public Executor {
 public:
  explicit LocalExecutor(LocalExecutorOptions options = {});

  Status Launch(const LaunchRequest& request) override;
  Result<JobStatus> Poll(const std::string& job_id, const std::string& job_dir) override;
  Status Stop(const std::string& job_id, const std::string& job_dir, double grace_seconds) override;

  // Whether launches run inside bubblewrap (kAuto probes bwrap once, on first use).
  bool sandboxed();
  const std::string& worker_binary() const { return options_.worker_binary; }

  // The command Launch runs for request (job_dir already resolved); exposed for tests.
  Result<std::vector<std::string>> BuildCommand(const LaunchRequest& request,
                                                const std::string& job_dir);

 private:
  void ProbeSandbox();

  LocalExecutorOptions options_;
  std::once_flag probe_once_;
  bool use_bwrap_ = false;   // set once by ProbeSandbox
  std::string bwrap_error_;  // why bwrap is unusable, for kOn
};

}  // namespace nimbus::control
