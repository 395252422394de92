#include "worker/train_kind.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "control/job_samples.h"
#include "core/json.h"
#include "ml/algorithm.h"
#include "ml/builtin/builtin_algorithms.h"

namespace nimbus::worker {
namespace {

int64_t EpochMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Records each metric in metrics.log, for FinalMetricDataList and CloudWatch.
class FileMetricsReporter : public ml::MetricsReporter {
 public:
  explicit FileMetricsReporter(std::string job_dir) : job_dir_(std::move(job_dir)) {}
  void Report(const std::string& name, double value) override {
    Status s = control::AppendMetricSample(job_dir_, {EpochMs(), name, value});
    if (!s.ok())
      std::fprintf(stderr, "cannot record metric %s: %s\n", name.c_str(), s.message().c_str());
  }

 private:
  std::string job_dir_;
};

}  // namespace

int RunTrainKind(const WorkerContext& ctx) {
  ml::RegisterBuiltinAlgorithms();
  std::string name = ctx.spec.GetString("algorithm");
  const ml::AlgorithmInfo* info = ml::FindAlgorithm(name);
  if (info == nullptr)
    return FailJob(ctx, "AlgorithmError: unknown built-in algorithm '" + name + "'");

  ml::TrainingInput input;
  auto hyperparameters = control::ReadJsonFile(ctx.job_dir.HyperparametersPath());
  if (hyperparameters.ok() && hyperparameters->is_map()) {
    for (const auto& [key, value] : hyperparameters->map()) {
      input.hyperparameters[key] = value.is_string() ? value.AsString() : ToJson(value);
    }
  }
  auto data_config = control::ReadJsonFile(ctx.job_dir.InputDataConfigPath());
  if (data_config.ok() && data_config->is_map()) {
    for (const auto& [channel, config] : data_config->map()) {
      ml::Channel c;
      c.name = channel;
      c.dir = ctx.job_dir.ChannelDir(channel);
      c.content_type = config.GetString("ContentType");
      c.pipe = config.GetString("TrainingInputMode") == "Pipe";
      input.channels[channel] = std::move(c);
    }
  }
  input.model_dir = ctx.job_dir.ModelDir();
  input.output_data_dir = ctx.job_dir.OutputDataDir();
  if (ctx.spec.GetBool("checkpoints")) input.checkpoint_dir = ctx.job_dir.CheckpointsDir();
  input.num_threads = static_cast<int>(std::max<int64_t>(1, ctx.spec.GetInt("num_threads", 1)));
  FileMetricsReporter metrics(ctx.job_dir.root());
  input.metrics = &metrics;
  input.log = [](const std::string& line) {
    std::fprintf(stdout, "%s\n", line.c_str());
    std::fflush(stdout);
  };
  std::error_code ec;
  std::filesystem::create_directories(input.model_dir, ec);
  std::filesystem::create_directories(input.output_data_dir, ec);

  std::unique_ptr<ml::Algorithm> algorithm = info->make();
  Status trained = algorithm->Train(input);
  if (!trained.ok()) {
    const bool client = trained.code() == "ClientError";
    return FailJob(ctx, (client ? "ClientError: " : "AlgorithmError: ") + trained.message());
  }
  return 0;
}

void RegisterTrainWorkerKind() { RegisterWorkerKind("train", RunTrainKind); }

}  // namespace nimbus::worker
