#include "ml/linear/linear_model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <Eigen/Core>

#include "core/json.h"

namespace nimbus::ml {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Result<PredictorType> ParsePredictorType(const std::string& name) {
  if (name == "binary_classifier") return PredictorType::kBinaryClassifier;
  if (name == "multiclass_classifier") return PredictorType::kMulticlassClassifier;
  if (name == "regressor") return PredictorType::kRegressor;
  return Status::Aws("AlgorithmError", 500, "unknown predictor_type '" + name + "' in model");
}

Value FloatList(const std::vector<float>& values) {
  Value::List list;
  list.reserve(values.size());
  for (float v : values) list.emplace_back(static_cast<double>(v));
  return Value(std::move(list));
}

}  // namespace

std::string PredictorTypeName(PredictorType type) {
  switch (type) {
    case PredictorType::kBinaryClassifier:
      return "binary_classifier";
    case PredictorType::kMulticlassClassifier:
      return "multiclass_classifier";
    case PredictorType::kRegressor:
      return "regressor";
  }
  return "regressor";
}

Result<std::vector<float>> LinearLearnerModel::Scores(const Dataset& batch) const {
  const int64_t d = state_.feature_dim;
  const int64_t k = state_.num_outputs;
  if (batch.cols > d || (!batch.sparse && batch.rows > 0 && batch.cols != d)) {
    return ClientError("The data has " + std::to_string(batch.cols) +
                       " features but the model expects feature_dim=" + std::to_string(d));
  }
  std::vector<float> out(static_cast<size_t>(batch.rows * k));
  Eigen::Map<RowMatrix> scores(out.data(), batch.rows, k);
  Eigen::Map<const RowMatrix> w(state_.weights.data(), d, k);
  Eigen::Map<const Eigen::RowVectorXf> b(state_.bias.data(), k);
  if (!batch.sparse) {
    Eigen::Map<const RowMatrix> x(batch.values.data(), batch.rows, d);
    scores.noalias() = x * w;
  } else {
    scores.setZero();
    for (int64_t r = 0; r < batch.rows; ++r) {
      for (int64_t p = batch.indptr[static_cast<size_t>(r)];
           p < batch.indptr[static_cast<size_t>(r) + 1]; ++p) {
        int64_t c = batch.indices[static_cast<size_t>(p)];
        if (c < 0 || c >= d) {
          return ClientError("Feature index " + std::to_string(c) +
                             " is out of range for feature_dim=" + std::to_string(d));
        }
        scores.row(r) += batch.values[static_cast<size_t>(p)] * w.row(c);
      }
    }
  }
  scores.rowwise() += b;
  if (state_.score_function == "sigmoid") {
    scores = (1.0f + (-scores.array()).exp()).inverse().matrix();
  } else if (state_.score_function == "softmax") {
    for (int64_t r = 0; r < batch.rows; ++r) {
      float top = scores.row(r).maxCoeff();
      scores.row(r) = (scores.row(r).array() - top).exp().matrix();
      scores.row(r) /= scores.row(r).sum();
    }
  }
  return out;
}

Result<std::vector<Value>> LinearLearnerModel::Predict(const Dataset& batch) {
  NIMBUS_ASSIGN_OR_RETURN(std::vector<float> scores, Scores(batch));
  const int64_t k = state_.num_outputs;
  std::vector<Value> predictions;
  predictions.reserve(static_cast<size_t>(batch.rows));
  for (int64_t r = 0; r < batch.rows; ++r) {
    const float* row = scores.data() + r * k;
    Value p = Value::MakeMap();
    switch (state_.predictor_type) {
      case PredictorType::kBinaryClassifier:
        p["score"] = static_cast<double>(row[0]);
        p["predicted_label"] = row[0] > state_.threshold ? 1 : 0;
        break;
      case PredictorType::kMulticlassClassifier: {
        Value::List list;
        for (int64_t c = 0; c < k; ++c) list.emplace_back(static_cast<double>(row[c]));
        p["score"] = Value(std::move(list));
        p["predicted_label"] = static_cast<int64_t>(std::max_element(row, row + k) - row);
        break;
      }
      case PredictorType::kRegressor:
        p["score"] = static_cast<double>(row[0]);
        break;
    }
    predictions.push_back(std::move(p));
  }
  return predictions;
}

Status LinearLearnerModel::Save(const std::string& model_dir) const {
  Value doc = Value::MakeMap();
  doc["format"] = "nimbus-linear-learner";
  doc["version"] = 1;
  doc["predictor_type"] = PredictorTypeName(state_.predictor_type);
  doc["feature_dim"] = state_.feature_dim;
  doc["num_outputs"] = state_.num_outputs;
  doc["score_function"] = state_.score_function;
  doc["threshold"] = state_.threshold;
  doc["loss"] = state_.loss;
  doc["bias"] = FloatList(state_.bias);
  doc["weights"] = FloatList(state_.weights);
  std::error_code ec;
  std::filesystem::create_directories(model_dir, ec);
  const std::string path = model_dir + "/" + kArtifactName;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << ToJson(doc);
  out.close();
  if (!out) return Status::Aws("AlgorithmError", 500, "cannot write the model file " + path);
  return Status::Ok();
}

Result<std::unique_ptr<LinearLearnerModel>> LinearLearnerModel::Load(const std::string& model_dir) {
  const std::string path = model_dir + "/" + kArtifactName;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return ClientError("The model directory has no " + std::string(kArtifactName) +
                       ": not a linear-learner model");
  }
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = ParseJson(text.str());
  if (!parsed.ok() || parsed->GetString("format") != "nimbus-linear-learner") {
    return ClientError(path + " is not a linear-learner model artifact");
  }
  const Value& doc = *parsed;
  State s;
  NIMBUS_ASSIGN_OR_RETURN(s.predictor_type, ParsePredictorType(doc.GetString("predictor_type")));
  s.feature_dim = doc.GetInt("feature_dim");
  s.num_outputs = doc.GetInt("num_outputs", 1);
  s.score_function = doc.GetString("score_function", "identity");
  if (const Value* t = doc.Find("threshold")) s.threshold = t->AsDouble();
  s.loss = doc.GetString("loss");
  const Value* bias = doc.Find("bias");
  const Value* weights = doc.Find("weights");
  if (!bias || !bias->is_list() || !weights || !weights->is_list()) {
    return ClientError(path + " has no weights");
  }
  for (const Value& v : bias->list()) s.bias.push_back(static_cast<float>(v.AsDouble()));
  s.weights.reserve(weights->size());
  for (const Value& v : weights->list()) s.weights.push_back(static_cast<float>(v.AsDouble()));
  if (s.feature_dim < 0 || s.num_outputs < 1 ||
      s.bias.size() != static_cast<size_t>(s.num_outputs) ||
      s.weights.size() != static_cast<size_t>(s.feature_dim * s.num_outputs)) {
    return ClientError(path + " is corrupt: weight counts do not match its dimensions");
  }
  return std::make_unique<LinearLearnerModel>(std::move(s));
}

}  // namespace nimbus::ml
