// LinearLearnerModel: the trained model of SageMaker's linear learner, as the model servers
// load it. Weights live in the raw feature space (normalization and label scaling used in
// training are folded into them), so prediction is one affine map plus the score function:
//   binary_classifier      score = sigmoid(w.x + b) (logistic loss) or w.x + b (hinge loss);
//                          {"score": s, "predicted_label": s > threshold ? 1 : 0}
//   multiclass_classifier  score = softmax(W.x + b); {"score": [p0..pk-1], "predicted_label":
//   argmax} regressor              {"score": w.x + b}
//
// Artifact: one JSON file, <model_dir>/linear-learner-model.json:
//   {"format": "nimbus-linear-learner", "version": 1,
//    "predictor_type": "binary_classifier" | "multiclass_classifier" | "regressor",
//    "feature_dim": d, "num_outputs": k (1, or num_classes),
//    "score_function": "sigmoid" | "identity" | "softmax", "threshold": t,
//    "loss": "<training loss>", "bias": [k floats],
//    "weights": [d*k floats, feature-major: weights[i*k + j] is feature i, output j]}
//
// Thread-safety: Predict and Scores are const and may run concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "ml/algorithm.h"
#include "ml/dataset.h"

namespace nimbus::ml {

enum class PredictorType { kBinaryClassifier, kMulticlassClassifier, kRegressor };

std::string PredictorTypeName(PredictorType type);

class LinearLearnerModel : public Model {
 public:
  static constexpr const char* kArtifactName = "linear-learner-model.json";

  struct State {
    PredictorType predictor_type = PredictorType::kRegressor;
    int64_t feature_dim = 0;
    int64_t num_outputs = 1;
    std::string score_function = "identity";  // sigmoid | identity | softmax
    double threshold = 0.5;                   // binary_classifier only
    std::string loss;
    std::vector<float> weights;  // feature_dim * num_outputs, feature-major
    std::vector<float> bias;     // num_outputs
  };

  explicit LinearLearnerModel(State state) : state_(std::move(state)) {}

  const State& state() const { return state_; }
  int64_t feature_dim() const override { return state_.feature_dim; }

  Result<std::vector<Value>> Predict(const Dataset& batch) override;
  // Scores after the score function, rows * num_outputs row-major. ClientError when the
  // batch has more features than the model.
  Result<std::vector<float>> Scores(const Dataset& batch) const;

  Status Save(const std::string& model_dir) const;
  static Result<std::unique_ptr<LinearLearnerModel>> Load(const std::string& model_dir);

 private:
  State state_;
};

}  // namespace nimbus::ml
