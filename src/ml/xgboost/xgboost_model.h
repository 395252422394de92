// A trained XGBoost model as SageMaker's XGBoost inference container serves it: the booster
// in model_dir/xgboost-model (libxgboost's binary or JSON model format, as written by this
// library or by xgboost's Booster.save_model) predicting per record
//   {"score": v}                 regression, binary:*, count:*, survival:*, rank:* objectives
//   {"score": [p0, p1, ...]}     multi:softprob (one probability per class)
//   {"predicted_label": k}       multi:softmax
// The objective and class count are read from the booster's own configuration.
//
// Prediction runs on one thread: model servers answer concurrent requests with a pool of
// loaded models. A gbtree model is predicted by a TreeEnsemble (tree_ensemble.h), which costs
// the tree traversal only, once the loader has checked that it reads the model exactly
// (same predictions as libxgboost on rows at the model's split points); other models (dart,
// gblinear, categorical splits ...) and batches the ensemble refuses (infinite values ...)
// go through XGBoosterPredict with nthread=1, as SageMaker's container sets it per worker.
// Either way the records are the same.
//
// Thread-safety: a loaded model belongs to one thread at a time (XGBoosterPredict keeps
// per-booster state, and the ensemble's output buffer is reused).
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
