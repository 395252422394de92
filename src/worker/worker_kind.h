// Worker kinds: what a worker process runs as its payload (`nimbus worker <kind> …`).
//
// Each kind registers a function under its name. The supervisor (supervisor.h) forks the
// payload process, puts it in its own process group, connects its stdout and stderr to the
// log capture, applies the job's resource limits, changes to the job directory, and then
// calls the kind's function in that child; its return value is the payload's exit code. A
// function may also exec() another program (the `command` kind does), which then inherits
// all of the above. It reports a failure as SageMaker containers do: by writing
// output/failure and returning non-zero.
//
// Kinds are registered explicitly (RegisterBuiltinWorkerKinds and each subsystem's own
// Register… call before WorkerMain), never by static initializers, which a static library
// would drop.
//
// Thread-safety: the registry is guarded by a mutex; register before running workers.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "control/job_dir.h"
#include "core/value.h"

namespace nimbus::worker {

struct WorkerContext {
  std::string kind;
  std::string job_id;
  control::JobDir job_dir;  // the directory the payload runs in (also its cwd)
  Value spec;               // the parsed spec.json
};

using WorkerKindFn = std::function<int(const WorkerContext&)>;

// Registers (or replaces) the kind `name`.
void RegisterWorkerKind(std::string name, WorkerKindFn fn);
// The kind's function; nullptr when unknown. The pointer stays valid until the kind is
// replaced.
const WorkerKindFn* FindWorkerKind(std::string_view name);
std::vector<std::string> WorkerKindNames();

// Registers `test` and `command` (builtin_kinds.cc). Idempotent.
void RegisterBuiltinWorkerKinds();

// Writes message to <job_dir>/output/failure (the SageMaker failure contract); used by
// kinds when they fail for a reason the user should see.
void WriteFailure(const control::JobDir& dir, std::string_view message);
// Ends a kind's function with a failure the user should see: the message goes to the
// job's log (stderr) and to output/failure; returns the exit code 1.
int FailJob(const WorkerContext& ctx, std::string_view message);

}  // namespace nimbus::worker
