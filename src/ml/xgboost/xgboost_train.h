// Training of SageMaker's built-in XGBoost on in-memory datasets, through libxgboost's C API:
// one XGBoosterUpdateOneIter per round, each round evaluated on the train and validation
// data (XGBoosterEvalOneIter plus the container's own metrics) and logged as the SageMaker
// container logs it —
//   [<round>]\ttrain-<metric>:<v>\tvalidation-<metric>:<v>
// (CloudWatch shows the tab as #011) — with every value reported as "train:<metric>" /
// "validation:<metric>".
//
// Early stopping follows xgboost: it watches the last metric of the last evaluated data
// (validation when given), stops after early_stopping_rounds rounds without strict
// improvement, and keeps the best round only (the saved booster is sliced to it and carries
// the best_iteration and best_score attributes).
//
// Checkpoints (TrainingInput::checkpoint_dir set): the booster is saved after each round as
// xgboost-checkpoint.<round> (the five latest kept), and a restarted job resumes from the
// latest one, as the container does.
//
// The artifact is model_dir/xgboost-model in libxgboost's binary model format — what the
// SageMaker XGBoost 1.7 container writes with Booster.save_model — so the xgboost library
// (C API or Python's xgb.Booster(model_file=...)) loads it as is.
//
// Thread-safety: TrainXgboost may run on several threads at once (each has its own booster).
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "ml/algorithm.h"
#include "ml/dataset.h"
#include "ml/xgboost/xgboost_params.h"

namespace nimbus::ml {

inline constexpr char kXgboostModelFile[] = "xgboost-model";

// REQUIRES: train has labels; validation (may be null) too.
Status TrainXgboost(const XgboostConfig& config, const Dataset& train, const Dataset* validation,
                    const TrainingInput& input);

// One of the container's own metrics (XgboostConfig::custom_metrics) from predictions as
// XGBoosterPredict returns them (num_class values per row for multi:softprob) and the true
// labels. Class labels come from the objective: argmax for multi:softprob, the value for
// multi:softmax and binary:hinge, > 0 for binary:logitraw, > 0.5 otherwise. f1, precision
// and recall (and f1_binary) are the positive class's (label 1); *_macro average the classes
// seen in labels or predictions, unweighted; *_micro pool them.
Result<double> ComputeXgboostCustomMetric(const std::string& metric,
                                          const std::vector<float>& predictions,
                                          const std::vector<float>& labels,
                                          const std::string& objective, int64_t num_class);

}  // namespace nimbus::ml
