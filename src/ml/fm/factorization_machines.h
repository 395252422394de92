// SageMaker's factorization machines ("factorization-machines" image), on Eigen.
//
// A second-order factorization machine over feature_dim (often sparse, one-hot) features:
//   yhat = w0 + sum_i w_i x_i + sum_{i<j} <v_i, v_j> x_i x_j
// with v_i in R^num_factors, computed in O(nnz * num_factors) per record as
//   0.5 * sum_f [(sum_i v_if x_i)^2 - sum_i v_if^2 x_i^2].
// binary_classifier trains the logistic loss and predicts {"score": sigmoid(yhat),
// "predicted_label": score > 0.5}; regressor trains the squared loss and predicts
// {"score": yhat}.
//
// Training is mini-batch Adam with lazy (sparse) updates: only the rows of w and V that a
// mini-batch touches move, as MXNet's sparse FM does, with separate learning rates and
// weight decays for the bias, linear and factor terms (bias_lr, linear_lr, factors_lr,
// *_wd), the gradient multiplied by rescale_grad (default 1/batch size) and clipped to
// [-clip_gradient, clip_gradient] when set. Initialization per term: normal (sigma),
// uniform (scale) or constant (value). Records are visited in one fixed shuffled order;
// predictions of a mini-batch are computed on input.num_threads threads.
//
// Logs "#quality_metric: host=algo-1, epoch=E, train rmse <loss>=X" (regressor) or
// "train binary_classification_accuracy <score>=X" and "train
// binary_classification_cross_entropy <loss>=X" (binary) per epoch and reports them as
// train:<metric>; the test channel gives "#test_score (algo-1) : ('rmse', X)" and the
// documented test:rmse, or test:binary_classification_accuracy,
// test:binary_classification_cross_entropy and test:binary_f_beta.
//
// Channels: train (required) and test; application/x-recordio-protobuf (the default,
// dense or sparse) or text/csv (label first).
//
// Artifact: <model_dir>/factorization-machines-model.bin, little-endian:
//   char[4] "NMFM", u32 version (1), u32 predictor_type (0 binary_classifier, 2 regressor),
//   u32 0, i64 feature_dim, i64 num_factors, f32 w0, f32 w[feature_dim],
//   f32 v[feature_dim * num_factors] (row i is v_i).
//
// Thread-safety: every function is reentrant; a model's Predict/Scores are const-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "ml/algorithm.h"
#include "ml/dataset.h"
#include "ml/linear/linear_model.h"

namespace nimbus::ml {

// Registers "factorization-machines" (image repository "factorization-machines").
void RegisterFactorizationMachinesAlgorithm();

struct FmInit {
  std::string method = "normal";  // normal | uniform | constant
  double scale = 0.01;            // uniform: U(-scale, scale)
  double sigma = 0.01;            // normal: N(0, sigma)
  double value = 0.0;             // constant
};

struct FmParams {
  PredictorType predictor_type = PredictorType::kRegressor;  // binary_classifier | regressor
  int64_t feature_dim = 0;
  int64_t num_factors = 0;
  int64_t epochs = 1;
  int64_t mini_batch_size = 1000;
  std::optional<double> clip_gradient;
  double eps = 1e-8;
  std::optional<double> rescale_grad;  // default 1 / mini-batch size
  double bias_lr = 0.1, linear_lr = 0.001, factors_lr = 0.0001;
  double bias_wd = 0.01, linear_wd = 0.001, factors_wd = 0.00001;
  FmInit bias_init, linear_init, factors_init;
  uint64_t seed = 0;  // not a SageMaker hyperparameter: fixed, so training is repeatable
};

// Validates the documented hyperparameters; ClientError naming the first bad or unknown one.
Result<FmParams> ParseFactorizationMachinesHyperparameters(const Hyperparameters& hp);

class FactorizationMachinesModel : public Model {
 public:
  static constexpr const char* kArtifactName = "factorization-machines-model.bin";

  struct State {
    PredictorType predictor_type = PredictorType::kRegressor;
    int64_t feature_dim = 0;
    int64_t num_factors = 0;
    float w0 = 0;
    std::vector<float> w;  // feature_dim
    std::vector<float> v;  // feature_dim * num_factors, row-major
  };

  explicit FactorizationMachinesModel(State state) : state_(std::move(state)) {}

  const State& state() const { return state_; }
  int64_t feature_dim() const override { return state_.feature_dim; }

  Result<std::vector<Value>> Predict(const Dataset& batch) override;
  // One score per record: the probability (binary_classifier) or the prediction.
  // ClientError when a record has features beyond feature_dim.
  Result<std::vector<float>> Scores(const Dataset& batch, int num_threads = 1) const;

  Status Save(const std::string& model_dir) const;
  static Result<std::unique_ptr<FactorizationMachinesModel>> Load(const std::string& model_dir);

 private:
  State state_;
};

struct FmEnv {
  int num_threads = 1;
  std::function<void(const std::string&)> log;  // may be empty
  MetricsReporter* metrics = nullptr;           // may be null
};

// Trains on in-memory datasets (labels required), reports the train metrics per epoch and
// the test metrics (test may be null), and returns the model.
Result<std::unique_ptr<FactorizationMachinesModel>> TrainFactorizationMachines(
    const FmParams& params, const Dataset& train, const Dataset* test, const FmEnv& env);

// The documented metrics of a model on labeled data, without the channel prefix: rmse, or
// binary_classification_accuracy, binary_classification_cross_entropy, binary_f_beta.
Result<std::map<std::string, double>> EvaluateFactorizationMachines(
    const FactorizationMachinesModel& model, const Dataset& data, int num_threads = 1);

}  // namespace nimbus::ml
