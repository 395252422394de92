// Evaluation metrics of the supervised built-in algorithms (linear learner, factorization
// machines), under the names SageMaker reports them: binary_classification_accuracy,
// precision, recall, binary_f_beta, roc_auc_score; multiclass_accuracy,
// multiclass_top_k_accuracy, macro_precision, macro_recall, macro_f_beta, dcg; mse, rmse,
// absolute_loss. Also the decision-threshold search behind linear learner's
// binary_classifier_model_selection_criteria.
//
// Metrics are unweighted (one vote per record), as SageMaker's are; the training losses
// are where example weights apply.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nimbus::ml {

struct BinaryMetrics {
  double accuracy = 0;
  double precision = 0;
  double recall = 0;
  double f_beta = 0;
};

// Labels are 0/1; a record is predicted positive when score > threshold.
BinaryMetrics ComputeBinaryMetrics(const std::vector<float>& scores,
                                   const std::vector<float>& labels, double threshold,
                                   double beta = 1.0);

// Area under the ROC curve (ties count one half); 0.5 when only one class is present.
double RocAuc(const std::vector<float>& scores, const std::vector<float>& labels);

// The criteria of binary_classifier_model_selection_criteria that pick a threshold.
enum class ThresholdCriterion {
  kAccuracy,
  kFBeta,
  kPrecisionAtTargetRecall,
  kRecallAtTargetPrecision,
};

struct ThresholdChoice {
  double threshold = 0;
  double value = 0;  // the criterion at that threshold (higher is better)
  // False when no threshold meets the target (recall_at_target_precision can fail):
  // then the threshold of the highest precision is chosen.
  bool target_met = true;
};

// Sweeps every cut between distinct scores and returns the threshold (a midpoint between
// neighbouring scores) that maximizes the criterion.
ThresholdChoice ChooseThreshold(const std::vector<float>& scores, const std::vector<float>& labels,
                                ThresholdCriterion criterion, double beta, double target_recall,
                                double target_precision);

struct MulticlassMetrics {
  double accuracy = 0;
  double top_k_accuracy = 0;
  double macro_precision = 0;
  double macro_recall = 0;
  double macro_f_beta = 0;
  double dcg = 0;  // mean 1/log2(1 + rank of the true class)
};

// scores: rows * num_classes, row-major; labels are class indices.
MulticlassMetrics ComputeMulticlassMetrics(const std::vector<float>& scores,
                                           const std::vector<float>& labels, int64_t num_classes,
                                           int64_t top_k, double beta = 1.0);

struct RegressionMetrics {
  double mse = 0;
  double rmse = 0;
  double absolute_loss = 0;  // mean absolute error
};

RegressionMetrics ComputeRegressionMetrics(const std::vector<float>& predictions,
                                           const std::vector<float>& labels);

// Mean binary cross-entropy of probabilities (clipped away from 0 and 1).
double BinaryCrossEntropy(const std::vector<float>& probabilities,
                          const std::vector<float>& labels);

// "0.4321" with up to 6 significant digits, for log lines.
std::string FormatMetric(double value);

}  // namespace nimbus::ml
