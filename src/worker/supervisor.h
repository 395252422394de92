// The worker supervisor: `nimbus worker <kind> --spec <job_dir>/spec.json [flags]`
// (ARCHITECTURE.md §4, docs/job-directory.md).
//
// The supervisor is the process an executor starts for a job. It
//   1. records itself in status.json (state Running, its pid, kernel start time and boot
//      id), so that a server that restarts can re-attach to it;
//   2. starts the payload (the kind's function, worker_kind.h) as a child in its own
//      process group, with RLIMIT_AS (--memory-limit) and RLIMIT_CPU (--cpu-limit);
//   3. captures the payload's stdout and stderr, line by line, into
//      logs/<stream>.log with epoch-ms timestamps (log_capture.h);
//   4. forwards SIGTERM (or a stop.json request) to the payload's group, and after the
//      grace period sends SIGKILL (state Stopping, then Stopped);
//   5. enforces --max-runtime itself, the same way (SIGTERM, --kill-grace seconds, SIGKILL;
//      the job fails with "MaxRuntimeExceeded: …"), so the limit holds while the server is
//      down; and stops the payload the same way once its job directory is deleted (a model
//      server whose server and data directory are gone would otherwise serve nobody forever);
//   6. finally writes status.json atomically: state, exit code or signal, reason (the
//      payload's output/failure, else "exit code N", "killed by signal N", "OutOfMemory: …"),
//      timestamps, peak memory and CPU time.
// It is a child subreaper: processes the payload leaves behind are reaped, and killed
// when the payload ends, as when a container stops.
//
// Thread-safety: a worker process runs one supervisor on its main thread; RunSupervisor
// installs signal handlers and must not run beside other threads (it forks).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace nimbus::worker {

struct SupervisorOptions {
  std::string kind;
  std::string spec_path;  // <job_dir>/spec.json; its directory is the job directory
  std::string job_id;     // default: the job directory's name
  std::string log_stream = "algo-1";
  double max_runtime_seconds = 0;  // 0 = none
  int64_t memory_limit_bytes = 0;  // RLIMIT_AS of the payload; 0 = none
  int64_t cpu_limit_seconds = 0;   // RLIMIT_CPU of the payload; 0 = none
  double kill_grace_seconds = 10;  // SIGTERM → SIGKILL delay for MaxRuntime and plain SIGTERM
};

// Parses the arguments after "worker": <kind> --spec FILE [--job-id ID] [--log-stream NAME]
// [--max-runtime SECONDS] [--memory-limit BYTES] [--cpu-limit SECONDS] [--kill-grace SECONDS].
Result<SupervisorOptions> ParseWorkerArgs(const std::vector<std::string>& args);

// Runs the job to its end; returns the process exit code (0 when the payload succeeded).
int RunSupervisor(const SupervisorOptions& options);

// `nimbus worker …`: registers the built-in kinds, parses args, runs the supervisor.
int WorkerMain(const std::vector<std::string>& args);

std::string WorkerUsage();

}  // namespace nimbus::worker
