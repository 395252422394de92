// SageMaker's linear learner ("linear-learner" image), trained with Eigen.
//
// Learns y ~ W.x + b with one of SageMaker's losses (logistic, hinge_loss, squared_loss,
// absolute_loss, eps_insensitive_*, quantile_loss, huber_loss, softmax_loss), by
// mini-batch SGD (with momentum), Adam or RMSProp, L2 weight decay (`wd`) and proximal L1
// (`l1`: weights that do not earn their keep become exactly 0). Features are centred and
// scaled (normalize_data / unbias_data), regression labels too (normalize_label /
// unbias_label), from the first num_point_for_scaler training records; the scaling is
// folded back into the saved weights.
//
// As SageMaker does, num_models candidate models train side by side (one per thread): the
// first with the hyperparameters as given, the others with nearby learning rates and, where
// `optimizer`, `wd`, `l1` or positive_example_weight_mult are "auto", other optimizers
// (every second model uses sgd), regularization and class weights. Each stops early when its
// early-stopping metric (the validation channel's binary_classifier_model_selection_criteria or
// loss, else the training loss) stops improving by early_stopping_tolerance for
// early_stopping_patience epochs, and with a validation channel keeps its best epoch. The best
// candidate by that metric on the validation channel (on the training data when there is none)
// wins; for binary classifiers its decision threshold is chosen on the same data by the criterion
// (accuracy, f_beta, precision_at_target_recall, recall_at_target_precision; 0.5 for the loss
// criteria).
//
// Logs "#quality_metric: host=algo-1, epoch=E, train objective_loss <loss>=X" per epoch and
// "#quality_metric: host=algo-1, validation <metric> <score>=X" / "#test_score (algo-1) :
// ('<metric>', X)" at the end; reports train:objective_loss and validation:objective_loss
// per epoch, then the documented validation:* and test:* metrics of the final model.
//
// Channels: train (required), validation, test; text/csv (label first) or
// application/x-recordio-protobuf (the default). The artifact is documented in
// linear_model.h.
//
// Thread-safety: every function is reentrant; training uses input.num_threads threads.
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

// Registers "linear-learner" (image repository "linear-learner").
void RegisterLinearLearnerAlgorithm();

// The labeled data of channel `name` (nullopt when the job has no such channel), in
// RecordIO-protobuf (the default) or CSV with the label first — what Linear Learner and
// Factorization Machines both read. ClientError naming `algorithm` for another type.
Result<std::optional<Dataset>> ReadLabeledChannel(const TrainingInput& input,
                                                  const std::string& name, int64_t feature_dim,
                                                  const std::string& algorithm);

// The hyperparameters after validation; nullopt members are "auto".
struct LinearLearnerParams {
  PredictorType predictor_type = PredictorType::kRegressor;
  int64_t num_classes = 0;  // multiclass_classifier only
  int64_t feature_dim = 0;  // 0: from the data
  int64_t mini_batch_size = 1000;
  int64_t epochs = 15;
  std::string optimizer = "adam";  // sgd | adam | rmsprop ("auto" resolves to adam)
  bool optimizer_auto = false;     // "auto": the other num_models candidates try sgd too
  std::string loss;                // resolved from "auto" by predictor_type
  std::optional<double> learning_rate, l1, wd, momentum, beta_1, beta_2, bias_lr_mult, bias_wd_mult;
  bool use_bias = true;
  std::optional<bool> normalize_data, normalize_label, unbias_data, unbias_label;
  int64_t num_models = 0;  // 0: auto
  // accuracy | f_beta | f1 | precision_at_target_recall | recall_at_target_precision |
  // loss_function | cross_entropy_loss
  std::string model_selection_criteria = "accuracy";
  double target_recall = 0.8;
  double target_precision = 0.8;
  // positive_example_weight_mult: a number, or "balanced" / "auto".
  std::string positive_weight_mode = "value";  // value | balanced | auto
  double positive_example_weight_mult = 1.0;
  int64_t early_stopping_patience = 3;
  double early_stopping_tolerance = 0.001;
  int64_t num_point_for_scaler = 10000;
  double margin = 1.0;
  double quantile = 0.5;
  double loss_insensitivity = 0.01;
  double huber_delta = 1.0;
  bool use_lr_scheduler = true;
  std::optional<int64_t> lr_scheduler_step;
  std::optional<double> lr_scheduler_factor, lr_scheduler_minimum_lr;
  std::string init_method = "uniform";
  double init_scale = 0.07;
  double init_sigma = 0.01;
  double init_bias = 0.0;
  double f_beta = 1.0;
  int64_t num_calibration_samples = 0;  // 0: auto (every record)
  int64_t accuracy_top_k = 3;
  bool balance_multiclass_weights = false;
  uint64_t seed = 0;  // not a SageMaker hyperparameter: fixed, so training is repeatable
};

// Validates every documented hyperparameter (ClientError naming the first bad one, or an
// unknown one). Under automatic model tuning (_tuning_objective_metric set) num_models is 1.
Result<LinearLearnerParams> ParseLinearLearnerHyperparameters(const Hyperparameters& hp);

struct LinearLearnerCandidate {
  std::string optimizer;
  double learning_rate = 0;
  double wd = 0;
  double l1 = 0;
  double positive_weight = 1;
  int64_t epochs_run = 0;
  double selection_value = 0;           // higher is better (losses are negated)
  std::vector<double> train_loss;       // objective loss per epoch
  std::vector<double> validation_loss;  // per epoch, when there is a validation channel
};

struct LinearLearnerFit {
  std::unique_ptr<LinearLearnerModel> model;
  std::vector<LinearLearnerCandidate> candidates;
  size_t chosen = 0;
  std::string selection_metric;  // e.g. "validation binary_classification_accuracy"
};

struct LinearLearnerEnv {
  int num_threads = 1;
  std::function<void(const std::string&)> log;  // may be empty
  MetricsReporter* metrics = nullptr;           // may be null
};

// Trains on in-memory datasets (labels required), reports the per-epoch and final metrics
// of the validation and test datasets (either may be null) and returns the chosen model.
Result<LinearLearnerFit> TrainLinearLearner(const LinearLearnerParams& params, const Dataset& train,
                                            const Dataset* validation, const Dataset* test,
                                            const LinearLearnerEnv& env);

// The documented metrics of a model on labeled data, without the channel prefix
// ("objective_loss", "binary_classification_accuracy", "mse", ...).
Result<std::map<std::string, double>> EvaluateLinearLearner(const LinearLearnerModel& model,
                                                            const LinearLearnerParams& params,
                                                            const Dataset& data);

}  // namespace nimbus::ml
