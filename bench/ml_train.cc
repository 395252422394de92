// ml_train: a benchmark driver for the built-in algorithms (bench/ml_bench.py runs it next to
// scikit-learn and xgboost). It trains one algorithm the way the `train` worker does
// (src/worker/train_kind.cc) but without a job directory, server or sandbox, so that the
// time it prints is the algorithm's own:
//
//   ml_train <algorithm> <train-dir> [--validation DIR] [--test DIR] [--content-type T]
//            [--threads N] [--repeat N] [--hp name=value ...] --model-dir DIR
//     times Algorithm::Train wall-clock (reading the channels included, as in a job) and,
//     separately, ReadChannel of the train channel alone, so the reader's share is known;
//     prints {"algorithm", "seconds", "seconds_all", "read_seconds", "fit_seconds", "rows",
//     "cols", "threads", "metrics": {last value of each}}, where fit_seconds runs from the
//     algorithm's "Read N records from the train channel" log line to the end of Train (absent
//     when it logs none). With --repeat N the fastest of N is given.
//   ml_train <algorithm> --query FILE --model-dir DIR [--content-type T] [--batch N]
//            [--repeat N]
//     loads the model (AlgorithmInfo::load) and times Model::Predict over the records of FILE
//     (labeled CSV: the first column is the expected label, which Predict does not see);
//     prints {"algorithm", "mode": "query", "queries", "seconds", "queries_per_second",
//     "load_seconds", "metrics": {"accuracy"}}. Faiss's threads follow OMP_NUM_THREADS.
//
// One JSON line goes to stdout; the algorithm's log lines and errors go to stderr. Exit status
// 1 on a failed training or prediction, 2 on bad usage.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/value.h"
#include "ml/algorithm.h"
#include "ml/builtin/builtin_algorithms.h"
#include "ml/dataset_readers.h"

namespace {

using nimbus::Value;
namespace ml = nimbus::ml;

// Keeps the last value of each metric: per-epoch metrics (train:objective_loss) end at the
// final epoch's, which is what a job's FinalMetricDataList shows.
class LastValueMetrics : public ml::MetricsReporter {
 public:
  void Report(const std::string& name, double value) override { values_[name] = value; }
  Value ToValue() const {
    Value out = Value::MakeMap();
    for (const auto& [name, value] : values_)
      out[name] = std::isfinite(value) ? Value(value) : Value();
    return out;
  }

 private:
  std::map<std::string, double> values_;
};

struct Args {
  std::string algorithm;
  std::string train_dir, validation_dir, test_dir;
  std::string query_file;
  std::string content_type = "text/csv";
  std::string model_dir;
  int threads = 1;
  int repeat = 1;     // trainings (and timed reads) of which the fastest is reported
  int64_t batch = 0;  // 0: every query in one Predict call
  ml::Hyperparameters hyperparameters;
};

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "ml_train: %s\n"
               "usage: ml_train <algorithm> <train-dir> [--validation DIR] [--test DIR]\n"
               "                [--content-type T] [--threads N] [--repeat N] "
               "[--hp name=value ...] --model-dir DIR\n"
               "       ml_train <algorithm> --query FILE --model-dir DIR [--content-type T] "
               "[--batch N] [--repeat N]\n",
               why.c_str());
  return 2;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Parses argv into args; an empty string on success, else what is wrong.
std::string ParseArgs(int argc, char** argv, Args* args) {
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string value;
    if (arg == "--validation" || arg == "--test" || arg == "--content-type" ||
        arg == "--model-dir" || arg == "--query" || arg == "--threads" || arg == "--hp" ||
        arg == "--batch" || arg == "--repeat") {
      if (!next(&value)) return arg + " needs a value";
      if (arg == "--validation") args->validation_dir = value;
      if (arg == "--test") args->test_dir = value;
      if (arg == "--content-type") args->content_type = value;
      if (arg == "--model-dir") args->model_dir = value;
      if (arg == "--query") args->query_file = value;
      if (arg == "--threads") args->threads = std::max(1, std::atoi(value.c_str()));
      if (arg == "--repeat") args->repeat = std::max(1, std::atoi(value.c_str()));
      if (arg == "--batch") args->batch = std::max<int64_t>(0, std::atoll(value.c_str()));
      if (arg == "--hp") {
        size_t eq = value.find('=');
        if (eq == std::string::npos || eq == 0) return "--hp takes name=value, not '" + value + "'";
        args->hyperparameters[value.substr(0, eq)] = value.substr(eq + 1);
      }
    } else if (arg.rfind("--", 0) == 0) {
      return "unknown option " + arg;
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.empty()) return "no algorithm given";
  args->algorithm = positional[0];
  if (args->query_file.empty()) {
    if (positional.size() != 2) return "give one train channel directory";
    args->train_dir = positional[1];
  } else if (positional.size() != 1) {
    return "--query takes no channel directory";
  }
  if (args->model_dir.empty()) return "--model-dir is required";
  return "";
}

int Train(const ml::AlgorithmInfo& info, const Args& args) {
  ml::TrainingInput input;
  input.hyperparameters = args.hyperparameters;
  auto add_channel = [&](const std::string& name, const std::string& dir) {
    if (dir.empty()) return;
    ml::Channel c;
    c.name = name;
    c.dir = dir;
    c.content_type = args.content_type;
    input.channels[name] = c;
  };
  add_channel("train", args.train_dir);
  add_channel("validation", args.validation_dir);
  add_channel("test", args.test_dir);
  input.model_dir = args.model_dir;
  input.output_data_dir = args.model_dir + "/output-data";
  input.num_threads = args.threads;
  LastValueMetrics metrics;
  input.metrics = &metrics;
  // The algorithms log "Read N records from the train channel" once the channel is in memory
  // (ml::LogTrainRecordsRead): from then to the end of Train is the fitting (and the model's
  // writing).
  std::chrono::steady_clock::time_point read_done;
  bool read_logged = false;
  input.log = [&](const std::string& line) {
    if (!read_logged && line.rfind("Read ", 0) == 0 &&
        line.find(" from the train channel") != std::string::npos) {
      read_done = std::chrono::steady_clock::now();
      read_logged = true;
    }
    std::fprintf(stderr, "%s\n", line.c_str());
  };
  std::error_code ec;
  std::filesystem::create_directories(input.output_data_dir, ec);

  // The reader's share of Train: the unsupervised algorithms read CSV without a label column.
  // The first read only warms up (page cache, the allocator's heap), as Train's own read finds
  // them warm after it; the fastest of the timed reads is the share.
  const bool labeled = info.name != "kmeans" && info.name != "pca";
  ml::ReadOptions read;
  read.labeled = labeled;
  double read_seconds = 0;
  int64_t rows = 0, cols = 0;
  for (int i = 0; i <= args.repeat; ++i) {
    auto read_start = std::chrono::steady_clock::now();
    auto data = ml::ReadChannel(input.channels["train"], info.training_content_types.front(), read);
    const double s = SecondsSince(read_start);
    if (!data.ok()) {
      std::fprintf(stderr, "reading the train channel: %s\n", data.status().message().c_str());
      return 1;
    }
    rows = data->rows;
    cols = data->cols;
    if (i == 1 || (i > 1 && s < read_seconds)) read_seconds = s;
  }

  // The fastest of `repeat` trainings: the machine is shared, and the minimum is the run the
  // least disturbed by others.
  double seconds = 0, fit_seconds = 0;
  Value all = Value::MakeList();
  for (int i = 0; i < args.repeat; ++i) {
    std::unique_ptr<ml::Algorithm> algorithm = info.make();
    read_logged = false;
    auto start = std::chrono::steady_clock::now();
    nimbus::Status trained = algorithm->Train(input);
    const auto end = std::chrono::steady_clock::now();
    const double s = std::chrono::duration<double>(end - start).count();
    if (!trained.ok()) {
      std::fprintf(stderr, "%s: %s\n", trained.code().c_str(), trained.message().c_str());
      return 1;
    }
    all.Append(s);
    if (i == 0 || s < seconds) seconds = s;
    const double fit = read_logged ? std::chrono::duration<double>(end - read_done).count() : 0;
    if (i == 0 || fit < fit_seconds) fit_seconds = fit;
  }
  Value out = Value::MakeMap();
  out["algorithm"] = info.name;
  out["seconds"] = seconds;
  out["seconds_all"] = all;
  out["read_seconds"] = read_seconds;
  if (read_logged) out["fit_seconds"] = fit_seconds;
  out["rows"] = rows;
  out["cols"] = cols;
  out["threads"] = args.threads;
  out["metrics"] = metrics.ToValue();
  std::printf("%s\n", nimbus::ToJson(out).c_str());
  return 0;
}

int Query(const ml::AlgorithmInfo& info, const Args& args) {
  auto load_start = std::chrono::steady_clock::now();
  auto model = info.load(args.model_dir);
  const double load_seconds = SecondsSince(load_start);
  if (!model.ok()) {
    std::fprintf(stderr, "loading the model: %s\n", model.status().message().c_str());
    return 1;
  }
  auto type = ml::ParseContentType(args.content_type);
  if (!type.ok()) return Usage(type.status().message());
  ml::ReadOptions read;
  read.labeled = true;
  auto queries = ml::ReadFile(args.query_file, *type, read);
  if (!queries.ok()) {
    std::fprintf(stderr, "reading %s: %s\n", args.query_file.c_str(),
                 queries.status().message().c_str());
    return 1;
  }
  std::vector<float> expected = std::move(queries->labels);
  queries->labels.clear();
  const int64_t n = queries->rows;
  const int64_t batch = args.batch > 0 ? args.batch : std::max<int64_t>(1, n);

  std::vector<Value> predicted;
  double seconds = 0;
  for (int i = 0; i < args.repeat; ++i) {  // the fastest of `repeat` passes, as for Train
    predicted.clear();
    predicted.reserve(static_cast<size_t>(n));
    auto start = std::chrono::steady_clock::now();
    for (int64_t begin = 0; begin < n; begin += batch) {
      auto out = (*model)->Predict(queries->Slice(begin, std::min(n, begin + batch)));
      if (!out.ok()) {
        std::fprintf(stderr, "Predict: %s\n", out.status().message().c_str());
        return 1;
      }
      for (Value& v : *out) predicted.push_back(std::move(v));
    }
    const double s = SecondsSince(start);
    if (i == 0 || s < seconds) seconds = s;
  }

  int64_t correct = 0;
  for (size_t i = 0; i < predicted.size() && i < expected.size(); ++i) {
    const Value* label = predicted[i].Find("predicted_label");
    if (label != nullptr && label->is_number() && label->AsDouble() == expected[i]) ++correct;
  }
  Value out = Value::MakeMap();
  out["algorithm"] = info.name;
  out["mode"] = "query";
  out["queries"] = n;
  out["seconds"] = seconds;
  out["queries_per_second"] = seconds > 0 ? static_cast<double>(n) / seconds : 0.0;
  out["load_seconds"] = load_seconds;
  Value metrics = Value::MakeMap();
  if (!expected.empty() && n > 0) metrics["accuracy"] = static_cast<double>(correct) / n;
  out["metrics"] = metrics;
  std::printf("%s\n", nimbus::ToJson(out).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  std::string bad = ParseArgs(argc, argv, &args);
  if (!bad.empty()) return Usage(bad);
  ml::RegisterBuiltinAlgorithms();
  const ml::AlgorithmInfo* info = ml::FindAlgorithm(args.algorithm);
  if (info == nullptr) return Usage("unknown algorithm '" + args.algorithm + "'");
  return args.query_file.empty() ? Train(*info, args) : Query(*info, args);
}
