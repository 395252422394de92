#include "worker/worker_kind.h"

#include <cstdio>

#include <map>
#include <memory>
#include <mutex>

namespace nimbus::worker {
namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<WorkerKindFn>, std::less<>> kinds;  // GUARDED_BY(mu)
};

Registry& TheRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

}  // namespace

void RegisterWorkerKind(std::string name, WorkerKindFn fn) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.kinds[std::move(name)] = std::make_unique<WorkerKindFn>(std::move(fn));
}

const WorkerKindFn* FindWorkerKind(std::string_view name) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.kinds.find(name);
  return it == r.kinds.end() ? nullptr : it->second.get();
}

std::vector<std::string> WorkerKindNames() {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> names;
  for (const auto& [name, fn] : r.kinds) names.push_back(name);
  return names;
}

void WriteFailure(const control::JobDir& dir, std::string_view message) {
  (void)control::MakeDirs(dir.OutputDir());
  (void)control::WriteFileAtomic(dir.FailurePath(), message);
}

int FailJob(const WorkerContext& ctx, std::string_view message) {
  std::fprintf(stderr, "%.*s\n", static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
  WriteFailure(ctx.job_dir, message);
  return 1;
}

}  // namespace nimbus::worker
