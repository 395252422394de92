#include "worker/transform_kind.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <thread>
#include <vector>

#include "serving/batch_transform.h"
#include "serving/handlers.h"

namespace nimbus::worker {
namespace {

// How long a model that loaded gets to answer GET /ping (script-mode servers import their
// framework first), as SageMaker waits for a container to become healthy.
constexpr double kPingTimeoutSeconds = 300;

// SageMaker's data-log lines carry their own UTC timestamp: "2024-05-01T10:00:00.123:[sagemaker
// logs]: …".
void PrintLine(const std::string& line) {
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  int millis = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
  std::fprintf(stdout, "%s.%03d:%s\n", stamp, millis, line.c_str());
  std::fflush(stdout);
}

}  // namespace

int RunTransformKind(const WorkerContext& ctx) {
  std::vector<serving::ContainerSpec> containers;
  if (const Value* list = ctx.spec.Find("containers"); list != nullptr && list->is_list()) {
    for (const Value& container : list->list()) {
      containers.push_back(serving::ContainerSpecFromValue(container));
    }
  }
  const int concurrency = static_cast<int>(ctx.spec.GetInt("concurrency", 1));
  static const Value kEmpty = Value::MakeMap();
  const Value* request = ctx.spec.Find("request");
  auto settings = serving::TransformSettingsFromRequest(request ? *request : kEmpty, concurrency);
  if (!settings.ok()) return FailJob(ctx, "ClientError: " + settings.status().message());

  PrintLine("Loading the model (" + std::to_string(containers.size()) + " container" +
            (containers.size() == 1 ? "" : "s") + ")");
  auto handler = serving::MakeHandler(containers, "containers");
  if (!handler.ok()) {
    return FailJob(ctx, "ClientError: Cannot load the model: " + handler.status().message());
  }
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int64_t>(kPingTimeoutSeconds * 1000));
  while (!(*handler)->Ping()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return FailJob(ctx, "AlgorithmError: The model did not pass the ping health check within " +
                              std::to_string(static_cast<int>(kPingTimeoutSeconds)) + " seconds");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  std::vector<serving::TransformInputFile> files;
  if (const Value* list = ctx.spec.Find("files"); list != nullptr && list->is_list()) {
    for (const Value& file : list->list()) {
      std::string path = file.GetString("path");
      files.push_back({path, file.GetString("name", path)});
    }
  }
  std::string input_dir = ctx.job_dir.root() + "/" + ctx.spec.GetString("input_dir", "input/data");
  std::string output_dir =
      ctx.job_dir.root() + "/" + ctx.spec.GetString("output_dir", "output/data");
  Status done =
      serving::RunBatchTransform(**handler, *settings, input_dir, files, output_dir, PrintLine);
  if (!done.ok()) {
    const std::string& message = done.message();
    // The transformer words the failures a user causes itself; anything else (a file that
    // cannot be read or written) is reported as the algorithm's.
    if (message.rfind("ClientError", 0) == 0 || message.rfind("AlgorithmError", 0) == 0) {
      return FailJob(ctx, message);
    }
    return FailJob(ctx, "AlgorithmError: " + message);
  }
  return 0;
}

void RegisterTransformWorkerKind() { RegisterWorkerKind("transform", RunTransformKind); }

}  // namespace nimbus::worker
