#include "ml/linear/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

namespace nimbus::ml {
namespace {

double FBeta(double precision, double recall, double beta) {
  double b2 = beta * beta;
  double denominator = b2 * precision + recall;
  return denominator > 0 ? (1 + b2) * precision * recall / denominator : 0.0;
}

}  // namespace

BinaryMetrics ComputeBinaryMetrics(const std::vector<float>& scores,
                                   const std::vector<float>& labels, double threshold,
                                   double beta) {
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    bool predicted = scores[i] > threshold;
    bool actual = labels[i] > 0.5f;
    if (predicted && actual) ++tp;
    if (predicted && !actual) ++fp;
    if (!predicted && actual) ++fn;
    if (!predicted && !actual) ++tn;
  }
  BinaryMetrics m;
  double n = static_cast<double>(scores.size());
  if (n == 0) return m;
  m.accuracy = static_cast<double>(tp + tn) / n;
  m.precision = tp + fp > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 0.0;
  m.recall = tp + fn > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fn) : 0.0;
  m.f_beta = FBeta(m.precision, m.recall, beta);
  return m;
}

double RocAuc(const std::vector<float>& scores, const std::vector<float>& labels) {
  const size_t n = scores.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double positive_rank_sum = 0;
  double positives = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    double average_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (size_t t = i; t < j; ++t) {
      if (labels[order[t]] > 0.5f) {
        positive_rank_sum += average_rank;
        positives += 1;
      }
    }
    i = j;
  }
  double negatives = static_cast<double>(n) - positives;
  if (positives == 0 || negatives == 0) return 0.5;
  return (positive_rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives);
}

ThresholdChoice ChooseThreshold(const std::vector<float>& scores, const std::vector<float>& labels,
                                ThresholdCriterion criterion, double beta, double target_recall,
                                double target_precision) {
  const size_t n = scores.size();
  ThresholdChoice best;
  if (n == 0) return best;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  double positives = 0;
  for (float l : labels) positives += l > 0.5f ? 1 : 0;
  const double negatives = static_cast<double>(n) - positives;
  const double lowest = scores[order[n - 1]];

  // Cut c (0..n) predicts the first c records of `order` positive; only cuts between
  // distinct scores can be expressed by a threshold.
  bool found = false;
  double best_precision = -1, best_precision_threshold = 0;
  double tp = 0, fp = 0;
  for (size_t c = 0; c <= n; ++c) {
    if (c > 0) {
      if (labels[order[c - 1]] > 0.5f) {
        tp += 1;
      } else {
        fp += 1;
      }
    }
    if (c > 0 && c < n && scores[order[c - 1]] == scores[order[c]]) continue;
    double threshold;
    if (c == 0) {
      threshold = scores[order[0]];
    } else if (c == n) {
      threshold = lowest - 1e-7 * std::max(1.0, std::fabs(lowest));
    } else {
      threshold = (static_cast<double>(scores[order[c - 1]]) + scores[order[c]]) / 2.0;
    }
    double precision = c > 0 ? tp / (tp + fp) : 0.0;
    double recall = positives > 0 ? tp / positives : 0.0;
    double value = 0;
    bool eligible = true;
    switch (criterion) {
      case ThresholdCriterion::kAccuracy:
        value = (tp + (negatives - fp)) / static_cast<double>(n);
        break;
      case ThresholdCriterion::kFBeta:
        value = FBeta(precision, recall, beta);
        break;
      case ThresholdCriterion::kPrecisionAtTargetRecall:
        value = precision;
        eligible = recall >= target_recall;
        break;
      case ThresholdCriterion::kRecallAtTargetPrecision:
        value = recall;
        eligible = c > 0 && precision >= target_precision;
        break;
    }
    if (c > 0 && precision > best_precision) {
      best_precision = precision;
      best_precision_threshold = threshold;
    }
    if (eligible && (!found || value > best.value)) {
      found = true;
      best.threshold = threshold;
      best.value = value;
    }
  }
  if (!found) {
    best.threshold = best_precision_threshold;
    best.value = 0;
    best.target_met = false;
  }
  return best;
}

MulticlassMetrics ComputeMulticlassMetrics(const std::vector<float>& scores,
                                           const std::vector<float>& labels, int64_t num_classes,
                                           int64_t top_k, double beta) {
  MulticlassMetrics m;
  const size_t n = labels.size();
  if (n == 0 || num_classes <= 0) return m;
  const size_t k = static_cast<size_t>(num_classes);
  std::vector<double> true_positive(k, 0), predicted(k, 0), actual(k, 0);
  double correct = 0, top_k_correct = 0, dcg = 0;
  for (size_t r = 0; r < n; ++r) {
    const float* row = scores.data() + r * k;
    size_t truth = static_cast<size_t>(labels[r]);
    size_t argmax = static_cast<size_t>(std::max_element(row, row + k) - row);
    size_t higher = 0;
    for (size_t c = 0; c < k; ++c) higher += row[c] > row[truth] ? 1 : 0;
    if (argmax == truth) correct += 1;
    if (static_cast<int64_t>(higher) < top_k) top_k_correct += 1;
    dcg += 1.0 / std::log2(static_cast<double>(higher) + 2.0);
    predicted[argmax] += 1;
    actual[truth] += 1;
    if (argmax == truth) true_positive[truth] += 1;
  }
  double classes = 0, precision_sum = 0, recall_sum = 0, f_sum = 0;
  for (size_t c = 0; c < k; ++c) {
    if (actual[c] == 0 && predicted[c] == 0) continue;
    double p = predicted[c] > 0 ? true_positive[c] / predicted[c] : 0.0;
    double rc = actual[c] > 0 ? true_positive[c] / actual[c] : 0.0;
    precision_sum += p;
    recall_sum += rc;
    f_sum += FBeta(p, rc, beta);
    classes += 1;
  }
  double dn = static_cast<double>(n);
  m.accuracy = correct / dn;
  m.top_k_accuracy = top_k_correct / dn;
  m.dcg = dcg / dn;
  if (classes > 0) {
    m.macro_precision = precision_sum / classes;
    m.macro_recall = recall_sum / classes;
    m.macro_f_beta = f_sum / classes;
  }
  return m;
}

RegressionMetrics ComputeRegressionMetrics(const std::vector<float>& predictions,
                                           const std::vector<float>& labels) {
  RegressionMetrics m;
  if (labels.empty()) return m;
  double squared = 0, absolute = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    double r = static_cast<double>(predictions[i]) - labels[i];
    squared += r * r;
    absolute += std::fabs(r);
  }
  double n = static_cast<double>(labels.size());
  m.mse = squared / n;
  m.rmse = std::sqrt(m.mse);
  m.absolute_loss = absolute / n;
  return m;
}

double BinaryCrossEntropy(const std::vector<float>& probabilities,
                          const std::vector<float>& labels) {
  if (labels.empty()) return 0;
  constexpr double kEps = 1e-12;
  double sum = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    double p = std::clamp(static_cast<double>(probabilities[i]), kEps, 1 - kEps);
    sum += labels[i] > 0.5f ? -std::log(p) : -std::log(1 - p);
  }
  return sum / static_cast<double>(labels.size());
}

std::string FormatMetric(double value) {
  std::ostringstream out;
  out.precision(6);
  out << value;
  return out.str();
}

}  // namespace nimbus::ml
