#include "worker/serve_kind.h"

#include <cstdio>

#include "serving/handlers.h"
#include "serving/model_server.h"
#include "serving/unix_http.h"

namespace nimbus::worker {
int RunServeKind(const WorkerContext& ctx) {
  std::vector<serving::ContainerSpec> containers;
  if (const Value* list = ctx.spec.Find("containers"); list && list->is_list()) {
    for (const Value& c : list->list()) containers.push_back(serving::ContainerSpecFromValue(c));
  }
  const int threads = static_cast<int>(std::max<int64_t>(1, ctx.spec.GetInt("threads", 1)));
  // Relative paths: the payload runs in its job directory, inside or outside the sandbox.
  auto handler = serving::MakeHandler(containers, "containers");
  if (!handler.ok()) return FailJob(ctx, "Failed to load the model: " + handler.status().message());
  auto listen_fd = serving::UnixListen(serving::kModelServerSocket);
  if (!listen_fd.ok()) return FailJob(ctx, listen_fd.status().message());
  std::printf("Model server ready: %zu container(s), %d thread(s)\n", containers.size(), threads);
  std::fflush(stdout);
  serving::InferenceHandler& model = **handler;
  serving::UnixHttpServer server(*listen_fd,
                                 [&model, threads](const serving::HttpMessage& request) {
                                   return serving::ServeModelRequest(model, threads, request);
                                 });
  server.Run();
  return 0;
}

void RegisterServeWorkerKind() { RegisterWorkerKind("serve", RunServeKind); }

}  // namespace nimbus::worker
