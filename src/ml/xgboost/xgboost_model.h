// A trained XGBoost model as SageMaker's XGBoost inference container serves it: the booster
// in model_dir/xgboost-model (libxgboost's binary or JSON model format, as written by this
// library or by xgboost's Booster.save_model) predicting per record
//   {"score": v}                 regression, binary:*, count:*, survival:*, rank:* objectives
//   {"score": [p0, p1, ...]}     multi:softprob (one probability per class)
//   {"predicted_label": k}       multi:softmax
// The objective and class count are read from the booster's own configuration.
//
// Thread-safety: a loaded model belongs to one thread at a time (XGBoosterPredict keeps
// per-booster state).
#pragma once

#include <memory>
#include <string>

#include "core/result.h"
#include "ml/algorithm.h"

namespace nimbus::ml {

// ClientError when model_dir holds no loadable xgboost-model (a Python pickle included:
// only xgboost's own model formats load outside Python).
Result<std::unique_ptr<Model>> LoadXgboostModel(const std::string& model_dir);

}  // namespace nimbus::ml
