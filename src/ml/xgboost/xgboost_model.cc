#include "ml/xgboost/xgboost_model.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/json.h"
#include "ml/xgboost/internal/xgb_api.h"
#include "ml/xgboost/xgboost_train.h"

namespace nimbus::ml {
namespace {

using xgb_internal::Booster;
using xgb_internal::LastErrorStatus;

class XgboostModel : public Model {
 public:
  XgboostModel(Booster booster, std::string objective, int64_t num_feature)
      : booster_(std::move(booster)), objective_(std::move(objective)), num_feature_(num_feature) {}

  Result<std::vector<Value>> Predict(const Dataset& batch) override {
    std::vector<Value> out;
    if (batch.rows == 0) return out;
    if (num_feature_ > 0 && batch.cols > num_feature_) {
      return ClientError("The request has " + std::to_string(batch.cols) +
                         " features but the model was trained with " +
                         std::to_string(num_feature_));
    }
    Dataset features = batch;
    features.labels.clear();
    features.weights.clear();
    NIMBUS_ASSIGN_OR_RETURN(xgb_internal::DMatrix matrix, xgb_internal::MakeDMatrix(features, 0));
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
    const bst_ulong width = length / rows;
    out.reserve(rows);
    for (bst_ulong r = 0; r < rows; ++r) {
      Value record = Value::MakeMap();
      if (width > 1) {
        Value::List scores;
        for (bst_ulong k = 0; k < width; ++k) {
          scores.emplace_back(static_cast<double>(predictions[r * width + k]));
        }
        record["score"] = Value(std::move(scores));
      } else if (objective_ == "multi:softmax") {
        record["predicted_label"] = Value(static_cast<int64_t>(std::lround(predictions[r])));
      } else {
        record["score"] = Value(static_cast<double>(predictions[r]));
      }
      out.push_back(std::move(record));
    }
    return out;
  }

  int64_t feature_dim() const override { return num_feature_; }

 private:
  Booster booster_;
  std::string objective_;
  int64_t num_feature_;
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
  return std::unique_ptr<Model>(std::make_unique<XgboostModel>(std::move(booster), objective,
                                                               static_cast<int64_t>(num_feature)));
}

}  // namespace nimbus::ml
