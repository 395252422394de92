#include "ml/xgboost/xgboost_train.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "core/strings.h"
#include "ml/xgboost/internal/xgb_api.h"

namespace nimbus::ml {
namespace {

namespace fs = std::filesystem;
using xgb_internal::Booster;
using xgb_internal::DMatrix;
using xgb_internal::LastErrorStatus;

constexpr char kCheckpointPrefix[] = "xgboost-checkpoint.";
constexpr int kCheckpointsKept = 5;

struct Evaluation {
  std::string data;  // "train" | "validation"
  std::string metric;
  double value = 0;
};

// "[3]\ttrain-rmse:1.25\tvalidation-rmse:1.5" -> entries. Data names carry no '-', metric
// names may ("poisson-nloglik").
std::vector<Evaluation> ParseEvalString(const std::string& text) {
  std::vector<Evaluation> out;
  for (const auto& token : Split(text, '\t')) {
    size_t dash = token.find('-');
    size_t colon = token.rfind(':');
    if (token.empty() || token[0] == '[' || dash == std::string::npos ||
        colon == std::string::npos || colon < dash) {
      continue;
    }
    Evaluation e;
    e.data = token.substr(0, dash);
    e.metric = token.substr(dash + 1, colon - dash - 1);
    e.value = std::strtod(token.c_str() + colon + 1, nullptr);
    out.push_back(std::move(e));
  }
  return out;
}

std::string FormatRound(int iteration, const std::vector<Evaluation>& evals) {
  std::string line = "[" + std::to_string(iteration) + "]";
  char buf[64];
  for (const auto& e : evals) {
    std::snprintf(buf, sizeof(buf), "%.5f", e.value);
    line += "\t" + e.data + "-" + e.metric + ":" + buf;
  }
  return line;
}

std::vector<int> ClassLabels(const std::vector<float>& predictions, size_t rows,
                             const std::string& objective, int64_t num_class) {
  std::vector<int> labels(rows);
  const bool per_class = num_class > 0 && predictions.size() == rows * num_class;
  for (size_t r = 0; r < rows; ++r) {
    if (per_class) {
      const float* row = predictions.data() + r * num_class;
      labels[r] = static_cast<int>(std::max_element(row, row + num_class) - row);
    } else if (objective == "multi:softmax" || objective == "binary:hinge") {
      labels[r] = static_cast<int>(std::lround(predictions[r]));
    } else if (objective == "binary:logitraw") {
      labels[r] = predictions[r] > 0.0f ? 1 : 0;
    } else {
      labels[r] = predictions[r] > 0.5f ? 1 : 0;
    }
  }
  return labels;
}

// Best-so-far tracking of xgboost's EarlyStopping callback.
struct EarlyStopping {
  int rounds = 0;
  bool maximize = false;
  std::optional<double> best;
  int best_iteration = 0;
  std::string best_line;
  int stale = 0;

  // True when training should stop after this round.
  bool Update(int iteration, double score, const std::string& line) {
    if (!best || (maximize ? score > *best : score < *best)) {
      best = score;
      best_iteration = iteration;
      best_line = line;
      stale = 0;
      return false;
    }
    return ++stale >= rounds;
  }
};

std::optional<std::pair<int, std::string>> LatestCheckpoint(const std::string& dir) {
  std::optional<std::pair<int, std::string>> latest;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!StartsWith(name, kCheckpointPrefix)) continue;
    auto round = ParseInt(name.substr(sizeof(kCheckpointPrefix) - 1));
    if (!round || *round < 0) continue;
    if (!latest || *round > latest->first) {
      latest = std::make_pair(static_cast<int>(*round), it->path().string());
    }
  }
  return latest;
}

// Writes the booster to path through a temporary file, so that a reader never sees half a
// model.
Status SaveBooster(BoosterHandle booster, const std::string& path) {
  // The ".sagemaker-ignore" suffix keeps SageMaker's checkpoint sync off the partial file.
  const std::string tmp = path + ".sagemaker-ignore";
  if (XGBoosterSaveModel(booster, tmp.c_str()) != 0) return LastErrorStatus("saving the model");
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    return xgb_internal::AlgorithmError("Cannot move the model to " + path + ": " + ec.message());
  }
  return Status::Ok();
}

void PruneCheckpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!StartsWith(name, kCheckpointPrefix)) continue;
    if (auto round = ParseInt(name.substr(sizeof(kCheckpointPrefix) - 1))) {
      found.emplace_back(*round, it->path());
    }
  }
  std::sort(found.begin(), found.end());
  for (size_t i = 0; i + kCheckpointsKept < found.size(); ++i) fs::remove(found[i].second, ec);
}

Result<std::vector<float>> Predict(BoosterHandle booster, DMatrixHandle data) {
  bst_ulong length = 0;
  const float* out = nullptr;
  if (XGBoosterPredict(booster, data, 0, 0, 0, &length, &out) != 0) {
    return LastErrorStatus("prediction");
  }
  return std::vector<float>(out, out + length);
}

}  // namespace

Result<double> ComputeXgboostCustomMetric(const std::string& metric,
                                          const std::vector<float>& predictions,
                                          const std::vector<float>& labels,
                                          const std::string& objective, int64_t num_class) {
  const size_t n = labels.size();
  if (n == 0) return ClientError("Metric '" + metric + "' needs labelled data");
  if (predictions.size() != n && (num_class <= 0 || predictions.size() != n * num_class)) {
    return xgb_internal::AlgorithmError("Metric '" + metric +
                                        "': " + std::to_string(predictions.size()) +
                                        " predictions for " + std::to_string(n) + " labels");
  }
  std::vector<int> predicted = ClassLabels(predictions, n, objective, num_class);
  if (metric == "mse" || metric == "r2") {
    double mean = 0;
    for (float y : labels) mean += y;
    mean /= static_cast<double>(n);
    double residual = 0, total = 0;
    for (size_t i = 0; i < n; ++i) {
      double p = predictions.size() == n ? predictions[i] : predicted[i];
      residual += (p - labels[i]) * (p - labels[i]);
      total += (labels[i] - mean) * (labels[i] - mean);
    }
    if (metric == "mse") return residual / static_cast<double>(n);
    // scikit-learn's convention for constant labels.
    if (total == 0) return residual == 0 ? 1.0 : 0.0;
    return 1.0 - residual / total;
  }

  std::vector<int> truth(n);
  std::set<int> seen, seen_true;
  std::map<int, double> tp, fp, fn;
  size_t correct = 0;
  for (size_t i = 0; i < n; ++i) {
    truth[i] = static_cast<int>(std::lround(labels[i]));
    seen.insert(truth[i]);
    seen.insert(predicted[i]);
    seen_true.insert(truth[i]);
    if (truth[i] == predicted[i]) {
      ++correct;
      tp[truth[i]] += 1;
    } else {
      fp[predicted[i]] += 1;
      fn[truth[i]] += 1;
    }
  }
  auto ratio = [](double a, double b) { return b == 0 ? 0.0 : a / b; };
  auto precision = [&](int c) { return ratio(tp[c], tp[c] + fp[c]); };
  auto recall = [&](int c) { return ratio(tp[c], tp[c] + fn[c]); };
  auto f1 = [&](int c) {
    double p = precision(c), r = recall(c);
    return ratio(2 * p * r, p + r);
  };
  auto macro = [&](auto per_class) {
    double sum = 0;
    for (int c : seen) sum += per_class(c);
    return sum / static_cast<double>(seen.size());
  };
  if (metric == "accuracy" || metric == "precision_micro" || metric == "recall_micro") {
    // With one label per row, pooled precision and recall both equal accuracy.
    return static_cast<double>(correct) / static_cast<double>(n);
  }
  if (metric == "balanced_accuracy") {
    double sum = 0;
    for (int c : seen_true) sum += recall(c);
    return sum / static_cast<double>(seen_true.size());
  }
  if (metric == "precision") return precision(1);
  if (metric == "recall") return recall(1);
  if (metric == "f1" || metric == "f1_binary") return f1(1);
  if (metric == "precision_macro") return macro(precision);
  if (metric == "recall_macro") return macro(recall);
  if (metric == "f1_macro") return macro(f1);
  return ClientError("Metric '" + metric + "' is not supported");
}

Status TrainXgboost(const XgboostConfig& config, const Dataset& train, const Dataset* validation,
                    const TrainingInput& input) {
  xgb_internal::ScopedXgbLogSink sink(&input.log);
  auto log = [&](const std::string& line) {
    if (input.log) input.log(line);
  };
  const int nthread =
      static_cast<int>(std::max<int64_t>(1, config.nthread.value_or(input.num_threads)));
  const bool aft = config.objective == "survival:aft";

  if (train.rows == 0) return ClientError("No data in the train channel");
  if (!train.has_labels()) return ClientError("The train channel's data has no labels");
  NIMBUS_ASSIGN_OR_RETURN(DMatrix dtrain, xgb_internal::MakeDMatrix(train, nthread, aft));
  DMatrix dvalid;
  if (validation != nullptr) {
    if (validation->rows == 0) return ClientError("No data in the validation channel");
    if (!validation->has_labels()) {
      return ClientError("The validation channel's data has no labels");
    }
    NIMBUS_ASSIGN_OR_RETURN(dvalid, xgb_internal::MakeDMatrix(*validation, nthread, aft));
  }
  log("Single node training.");
  log("Train matrix has " + std::to_string(train.rows) + " rows and " + std::to_string(train.cols) +
      " columns");
  if (validation != nullptr) {
    log("Validation matrix has " + std::to_string(validation->rows) + " rows");
  }

  std::vector<DMatrixHandle> dmats = {dtrain.get()};
  std::vector<const char*> names = {"train"};
  std::vector<const Dataset*> datasets = {&train};
  if (validation != nullptr) {
    dmats.push_back(dvalid.get());
    names.push_back("validation");
    datasets.push_back(validation);
  }
  BoosterHandle handle = nullptr;
  if (XGBoosterCreate(dmats.data(), dmats.size(), &handle) != 0) {
    return LastErrorStatus("booster creation");
  }
  Booster booster(handle);

  int first_round = 0;
  if (!input.checkpoint_dir.empty()) {
    std::error_code ec;
    fs::create_directories(input.checkpoint_dir, ec);
    if (auto latest = LatestCheckpoint(input.checkpoint_dir)) {
      if (XGBoosterLoadModel(handle, latest->second.c_str()) != 0) {
        return LastErrorStatus("loading checkpoint " + latest->second);
      }
      first_round = latest->first + 1;
      log("Checkpoint loaded from " + latest->second);
      log("Resuming from iteration " + std::to_string(first_round));
    }
  }

  // Parameters after any checkpoint load, as Python's xgb.train does: the saved model keeps
  // the learner's parameters but not the training ones.
  auto set_param = [&](const std::string& name, const std::string& value) -> Status {
    if (XGBoosterSetParam(handle, name.c_str(), value.c_str()) != 0) {
      return LastErrorStatus("parameter " + name + "=" + value);
    }
    return Status::Ok();
  };
  NIMBUS_RETURN_IF_ERROR(set_param("nthread", std::to_string(nthread)));
  for (const auto& [name, value] : config.params) NIMBUS_RETURN_IF_ERROR(set_param(name, value));
  // Each eval_metric setting adds one metric, in order.
  for (const auto& metric : config.eval_metrics) {
    NIMBUS_RETURN_IF_ERROR(set_param("eval_metric", metric));
  }

  std::optional<EarlyStopping> stopping;
  if (config.early_stopping_rounds) {
    stopping.emplace();
    stopping->rounds = static_cast<int>(*config.early_stopping_rounds);
  }
  int last_round = first_round - 1;
  bool stopped_early = false;
  for (int round = first_round; round < config.num_round; ++round) {
    if (XGBoosterUpdateOneIter(handle, round, dtrain.get()) != 0) {
      return LastErrorStatus("training round " + std::to_string(round));
    }
    last_round = round;
    const char* eval_text = nullptr;
    if (XGBoosterEvalOneIter(handle, round, dmats.data(), names.data(), dmats.size(), &eval_text) !=
        0) {
      return LastErrorStatus("evaluation of round " + std::to_string(round));
    }
    std::vector<Evaluation> evals = ParseEvalString(eval_text);
    // The container's own metrics follow libxgboost's, per data set (Python's evals_log).
    for (size_t d = 0; d < dmats.size() && !config.custom_metrics.empty(); ++d) {
      NIMBUS_ASSIGN_OR_RETURN(std::vector<float> predictions, Predict(handle, dmats[d]));
      for (const auto& metric : config.custom_metrics) {
        NIMBUS_ASSIGN_OR_RETURN(double v,
                                ComputeXgboostCustomMetric(metric, predictions, datasets[d]->labels,
                                                           config.objective, config.num_class));
        evals.push_back({names[d], metric, v});
      }
    }
    std::stable_sort(evals.begin(), evals.end(), [&](const Evaluation& a, const Evaluation& b) {
      return (a.data == "train" ? 0 : 1) < (b.data == "train" ? 0 : 1);
    });
    const std::string line = FormatRound(round, evals);
    log(line);
    for (const auto& e : evals) input.metrics->Report(e.data + ":" + e.metric, e.value);

    if (!input.checkpoint_dir.empty()) {
      NIMBUS_RETURN_IF_ERROR(SaveBooster(
          handle,
          (fs::path(input.checkpoint_dir) / (kCheckpointPrefix + std::to_string(round))).string()));
      PruneCheckpoints(input.checkpoint_dir);
    }
    if (stopping && !evals.empty()) {
      const Evaluation& watched = evals.back();
      if (!stopping->best) {
        stopping->maximize = XgboostMetricMaximizes(watched.metric);
        log("Will train until " + watched.data + "-" + watched.metric + " hasn't improved in " +
            std::to_string(stopping->rounds) + " rounds.");
      }
      if (stopping->Update(round, watched.value, line)) {
        stopped_early = true;
        log("Stopping. Best iteration:");
        log(stopping->best_line);
        break;
      }
    }
  }

  if (stopping && stopping->best) {
    // Keep the best round only, as SageMaker hosts the best model.
    if (config.booster != "gblinear" && stopping->best_iteration < last_round) {
      BoosterHandle sliced = nullptr;
      if (XGBoosterSlice(handle, 0, stopping->best_iteration + 1, 1, &sliced) != 0) {
        return LastErrorStatus("keeping the best iteration");
      }
      booster = Booster(sliced);
      handle = sliced;
    }
    char score[64];
    std::snprintf(score, sizeof(score), "%.17g", *stopping->best);
    if (XGBoosterSetAttr(handle, "best_iteration",
                         std::to_string(stopping->best_iteration).c_str()) != 0 ||
        XGBoosterSetAttr(handle, "best_score", score) != 0) {
      return LastErrorStatus("recording the best iteration");
    }
    if (!stopped_early) {
      log("Best iteration: [" + std::to_string(stopping->best_iteration) + "]");
    }
  }

  std::error_code ec;
  fs::create_directories(input.model_dir, ec);
  if (ec) {
    return xgb_internal::AlgorithmError("Cannot create the model directory " + input.model_dir +
                                        ": " + ec.message());
  }
  const std::string model_path = (fs::path(input.model_dir) / kXgboostModelFile).string();
  NIMBUS_RETURN_IF_ERROR(SaveBooster(handle, model_path));
  log("Stored trained model at " + model_path);
  return Status::Ok();
}

}  // namespace nimbus::ml
