// The hyperparameters of SageMaker's built-in XGBoost algorithm (the 1.7 container), validated
// the way the container validates them and turned into libxgboost booster parameters.
//
// Every name the container accepts is read with its documented type and range (aliases
// learning_rate, min_split_loss, reg_lambda and reg_alpha included), cross-checks follow the
// container's (num_class with multi:*, 'auc' only for binary:/rank:, monotone and interaction
// constraints only with tree methods that honour them, updater plug-ins per booster), and
// anything else is a ClientError naming the hyperparameter. GPU-only settings (gpu_hist,
// gpu_predictor, gradient_based sampling) are ClientErrors: libxgboost here is CPU-only.
//
// eval_metric (comma list) and the metric of _tuning_objective_metric are merged as the
// container merges them; the metrics libxgboost lacks and the container computes itself
// (accuracy, balanced_accuracy, f1, f1_binary, f1_macro, mse, precision[_macro|_micro],
// r2, recall[_macro|_micro]) go to custom_metrics and are computed by the trainer.
//
// Thread-safety: a pure function over its argument.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "ml/algorithm.h"

namespace nimbus::ml {

struct XgboostConfig {
  int64_t num_round = 0;
  std::optional<int64_t> early_stopping_rounds;
  bool csv_weights = false;
  std::string objective = "reg:squarederror";
  int64_t num_class = 0;  // > 0 only for multi:softmax / multi:softprob
  std::string booster = "gbtree";
  std::optional<int64_t> nthread;  // the hyperparameter; the trainer defaults to num_threads
  // Booster parameters for XGBoosterSetParam, in order, values normalized (objective,
  // num_class, seed and every given xgboost parameter; never eval_metric or nthread).
  std::vector<std::pair<std::string, std::string>> params;
  std::vector<std::string> eval_metrics;    // libxgboost's metrics, in evaluation order
  std::vector<std::string> custom_metrics;  // computed by the trainer, after eval_metrics
};

// Validates SageMaker-style string hyperparameters; ClientError naming the offending one.
Result<XgboostConfig> ParseXgboostHyperparameters(const Hyperparameters& hyperparameters);

// True for metrics where larger is better (auc, aucpr, map, ndcg, accuracy, f1, r2 ...):
// early stopping and tuning need the direction.
bool XgboostMetricMaximizes(const std::string& metric);

}  // namespace nimbus::ml
