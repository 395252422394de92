#include "ml/xgboost/xgboost_model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>

#include "core/json.h"
#include "ml/xgboost/internal/xgb_api.h"
#include "ml/xgboost/tree_ensemble.h"
#include "ml/xgboost/xgboost_train.h"

namespace nimbus::ml {
namespace {

using xgb_internal::Booster;
using xgb_internal::LastErrorStatus;

Dataset WithoutLabels(const Dataset& batch) {
  Dataset features = batch;
  features.labels.clear();
  features.weights.clear();
  return features;
}

// One record per row from XGBoosterPredict-shaped predictions (width values per row).
std::vector<Value> Records(const float* predictions, int64_t rows, size_t width,
                           const std::string& objective) {
  std::vector<Value> out;
  out.reserve(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = predictions + static_cast<size_t>(r) * width;
    Value record = Value::MakeMap();
    if (width > 1) {
      Value::List scores;
      scores.reserve(width);
      for (size_t k = 0; k < width; ++k) scores.emplace_back(static_cast<double>(row[k]));
      record["score"] = Value(std::move(scores));
    } else if (objective == "multi:softmax") {
      record["predicted_label"] = Value(static_cast<int64_t>(std::lround(row[0])));
    } else {
      record["score"] = Value(static_cast<double>(row[0]));
    }
    out.push_back(std::move(record));
  }
  return out;
}

// Whether the ensemble predicts what libxgboost predicts on rows that sit on the model's own
// split points: a last guard, at load, against a model the ensemble misreads.
bool AgreesWithLibxgboost(BoosterHandle booster, const TreeEnsemble& ensemble) {
  Dataset probe = ensemble.ProbeRows(64, 20240601);
  std::vector<float> ours;
  if (!ensemble.Predict(probe, &ours).ok()) return false;
  auto matrix = xgb_internal::MakeDMatrix(probe, 1);
  if (!matrix.ok()) return false;
  bst_ulong length = 0;
  const float* theirs = nullptr;
  if (XGBoosterPredict(booster, matrix->get(), 0, 0, 0, &length, &theirs) != 0 ||
      length != ours.size()) {
    return false;
  }
  for (size_t i = 0; i < ours.size(); ++i) {
    if (!(std::fabs(ours[i] - theirs[i]) <= 1e-5f * std::max(1.0f, std::fabs(theirs[i])))) {
      return false;
    }
  }
  return true;
}

class XgboostModel : public Model {
 public:
  XgboostModel(Booster booster, std::string objective, int64_t num_feature,
               std::optional<TreeEnsemble> ensemble)
      : booster_(std::move(booster)),
        objective_(std::move(objective)),
        num_feature_(num_feature),
        ensemble_(std::move(ensemble)) {}

  Result<std::vector<Value>> Predict(const Dataset& batch) override {
    if (batch.rows == 0) return std::vector<Value>();
    if (num_feature_ > 0 && batch.cols > num_feature_) {
      return ClientError("The request has " + std::to_string(batch.cols) +
                         " features but the model was trained with " +
                         std::to_string(num_feature_));
    }
    // The ensemble refuses the batches libxgboost rejects (infinite values ...): those go to
    // libxgboost, whose error stands.
    if (ensemble_ && ensemble_->Predict(batch, &predictions_).ok()) {
      return Records(predictions_.data(), batch.rows,
                     static_cast<size_t>(ensemble_->output_width()), objective_);
    }
    // One thread per prediction: model servers answer concurrent requests with a pool of
    // loaded models, and an OpenMP team per request costs far more than a small batch.
    NIMBUS_ASSIGN_OR_RETURN(xgb_internal::DMatrix matrix,
                            batch.labels.empty() && batch.weights.empty()
                                ? xgb_internal::MakeDMatrix(batch, 1)
                                : xgb_internal::MakeDMatrix(WithoutLabels(batch), 1));
    bst_ulong length = 0;
    const float* predictions = nullptr;
    if (XGBoosterPredict(booster_.get(), matrix.get(), 0, 0, 0, &length, &predictions) != 0) {
      return LastErrorStatus("prediction");
    }
    const auto rows = static_cast<bst_ulong>(batch.rows);
    if (length == 0 || length % rows != 0) {
      return xgb_internal::AlgorithmError("XGBoost returned " + std::to_string(length) +
                                          " predictions for " + std::to_string(rows) + " rows");
    }
    return Records(predictions, batch.rows, static_cast<size_t>(length / rows), objective_);
  }

  int64_t feature_dim() const override { return num_feature_; }

 private:
  Booster booster_;
  std::string objective_;
  int64_t num_feature_;
  std::optional<TreeEnsemble> ensemble_;  // empty: libxgboost predicts
  std::vector<float> predictions_;        // the ensemble's output, reused across calls
};

}  // namespace

Result<std::unique_ptr<Model>> LoadXgboostModel(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / kXgboostModelFile).string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return ClientError("The model directory has no " + std::string(kXgboostModelFile) + " file (" +
                       path + ")");
  }
  {
    std::ifstream in(path, std::ios::binary);
    char first = 0;
    in.get(first);
    if (static_cast<unsigned char>(first) == 0x80) {
      return ClientError(std::string(kXgboostModelFile) +
                         " is a Python pickle; save the booster with Booster.save_model to load "
                         "it outside Python");
    }
  }
  BoosterHandle handle = nullptr;
  if (XGBoosterCreate(nullptr, 0, &handle) != 0) return LastErrorStatus("booster creation");
  Booster booster(handle);
  if (XGBoosterLoadModel(handle, path.c_str()) != 0) {
    return ClientError("Cannot load " + path + ": " + xgb_internal::LastError());
  }
  if (XGBoosterSetParam(handle, "nthread", "1") != 0) return LastErrorStatus("setting nthread");
  bst_ulong length = 0;
  const char* config_text = nullptr;
  if (XGBoosterSaveJsonConfig(handle, &length, &config_text) != 0) {
    return LastErrorStatus("reading the model configuration");
  }
  NIMBUS_ASSIGN_OR_RETURN(Value config, ParseJson(std::string_view(config_text, length)));
  const Value* learner = config.Find("learner");
  std::string objective;
  if (learner != nullptr) {
    if (const Value* obj = learner->Find("objective")) objective = obj->GetString("name");
  }
  bst_ulong num_feature = 0;
  if (XGBoosterGetNumFeature(handle, &num_feature) != 0) {
    return LastErrorStatus("reading the feature count");
  }
  // The fast path when the ensemble reads this model exactly; libxgboost otherwise (dart,
  // gblinear, categorical splits ...).
  std::optional<TreeEnsemble> ensemble;
  if (auto built = TreeEnsemble::FromBooster(handle);
      built.ok() && built->objective() == objective &&
      built->num_feature() == static_cast<int64_t>(num_feature) &&
      AgreesWithLibxgboost(handle, *built)) {
    ensemble = std::move(built).value();
  }
  return std::unique_ptr<Model>(std::make_unique<XgboostModel>(
      std::move(booster), objective, static_cast<int64_t>(num_feature), std::move(ensemble)));
}

}  // namespace nimbus::ml
