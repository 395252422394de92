#include "ml/linear/linear_learner.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>

#include <Eigen/Core>
#include <Eigen/SparseCore>

#include "core/strings.h"
#include "ml/dataset_readers.h"
#include "ml/linear/hyperparameters.h"
#include "ml/linear/metrics.h"
#include "ml/linear/parallel.h"

namespace nimbus::ml {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using SparseRowMatrix = Eigen::SparseMatrix<float, Eigen::RowMajor>;
using Eigen::MatrixXf;
using Eigen::VectorXf;

constexpr double kInf = std::numeric_limits<double>::infinity();

// ---------------------------------------------------------------------------------------
// Losses, on the pre-activation score s (a logit for logistic) and label y.

enum class LossKind {
  kLogistic,
  kHinge,
  kSquared,
  kAbsolute,
  kEpsSquared,
  kEpsAbsolute,
  kQuantile,
  kHuber,
  kSoftmax,
};

LossKind LossKindOf(const std::string& name) {
  if (name == "logistic") return LossKind::kLogistic;
  if (name == "hinge_loss") return LossKind::kHinge;
  if (name == "absolute_loss") return LossKind::kAbsolute;
  if (name == "eps_insensitive_squared_loss") return LossKind::kEpsSquared;
  if (name == "eps_insensitive_absolute_loss") return LossKind::kEpsAbsolute;
  if (name == "quantile_loss") return LossKind::kQuantile;
  if (name == "huber_loss") return LossKind::kHuber;
  if (name == "softmax_loss") return LossKind::kSoftmax;
  return LossKind::kSquared;
}

struct LossFn {
  LossKind kind = LossKind::kSquared;
  double margin = 1.0;
  double quantile = 0.5;
  double eps = 0.01;
  double delta = 1.0;

  double Value(double s, double y) const {
    switch (kind) {
      case LossKind::kLogistic:
        // log(1 + e^s) - y s, stable for large |s|.
        return std::max(s, 0.0) + std::log1p(std::exp(-std::fabs(s))) - y * s;
      case LossKind::kHinge:
        return std::max(0.0, margin - (2 * y - 1) * s);
      case LossKind::kSquared:
        return (s - y) * (s - y);
      case LossKind::kAbsolute:
        return std::fabs(s - y);
      case LossKind::kEpsSquared: {
        double e = std::max(0.0, std::fabs(s - y) - eps);
        return e * e;
      }
      case LossKind::kEpsAbsolute:
        return std::max(0.0, std::fabs(s - y) - eps);
      case LossKind::kQuantile: {
        double u = y - s;
        return u >= 0 ? quantile * u : (quantile - 1) * u;
      }
      case LossKind::kHuber: {
        double r = std::fabs(s - y);
        return r <= delta ? 0.5 * r * r : delta * (r - 0.5 * delta);
      }
      case LossKind::kSoftmax:
        return 0;
    }
    return 0;
  }

  double Grad(double s, double y) const {
    double r = s - y;
    double sign = r > 0 ? 1.0 : (r < 0 ? -1.0 : 0.0);
    switch (kind) {
      case LossKind::kLogistic:
        return 1.0 / (1.0 + std::exp(-s)) - y;
      case LossKind::kHinge: {
        double t = 2 * y - 1;
        return margin - t * s > 0 ? -t : 0.0;
      }
      case LossKind::kSquared:
        return 2 * r;
      case LossKind::kAbsolute:
        return sign;
      case LossKind::kEpsSquared:
        return 2 * std::max(0.0, std::fabs(r) - eps) * sign;
      case LossKind::kEpsAbsolute:
        return std::fabs(r) > eps ? sign : 0.0;
      case LossKind::kQuantile:
        return r < 0 ? -quantile : (r > 0 ? 1 - quantile : 0.0);
      case LossKind::kHuber:
        return std::fabs(r) <= delta ? r : delta * sign;
      case LossKind::kSoftmax:
        return 0;
    }
    return 0;
  }
};

LossFn MakeLoss(const LinearLearnerParams& p, double label_scale) {
  LossFn f;
  f.kind = LossKindOf(p.loss);
  f.margin = p.margin;
  f.quantile = p.quantile;
  // Thresholds are in label units; training runs on labels divided by label_scale.
  f.eps = p.loss_insensitivity / label_scale;
  f.delta = p.huber_delta / label_scale;
  return f;
}

// ---------------------------------------------------------------------------------------
// The design matrix: dense or sparse rows, in training order.

struct Design {
  bool sparse = false;
  int64_t rows = 0;
  int64_t cols = 0;
  RowMatrix dense;
  SparseRowMatrix sp;
  std::vector<float> labels;
  std::vector<float> weights;  // base example weights (1 when the data has none)
};

// Rows `order` of data (all when empty), as Eigen matrices with `cols` columns.
Design MakeDesign(const Dataset& data, int64_t cols, const std::vector<int64_t>& order) {
  Design d;
  d.sparse = data.sparse;
  d.rows = order.empty() ? data.rows : static_cast<int64_t>(order.size());
  d.cols = cols;
  auto source = [&](int64_t r) { return order.empty() ? r : order[static_cast<size_t>(r)]; };
  if (data.sparse) {
    std::vector<Eigen::Triplet<float>> triplets;
    triplets.reserve(data.values.size());
    for (int64_t r = 0; r < d.rows; ++r) {
      int64_t s = source(r);
      for (int64_t p = data.indptr[static_cast<size_t>(s)];
           p < data.indptr[static_cast<size_t>(s) + 1]; ++p) {
        triplets.emplace_back(static_cast<int>(r),
                              static_cast<int>(data.indices[static_cast<size_t>(p)]),
                              data.values[static_cast<size_t>(p)]);
      }
    }
    d.sp.resize(d.rows, cols);
    d.sp.setFromTriplets(triplets.begin(), triplets.end());
  } else {
    d.dense.resize(d.rows, cols);
    if (data.cols < cols) d.dense.setZero();
    for (int64_t r = 0; r < d.rows; ++r) {
      std::copy_n(data.values.data() + source(r) * data.cols, data.cols, d.dense.data() + r * cols);
    }
  }
  d.labels.resize(static_cast<size_t>(d.rows));
  d.weights.assign(static_cast<size_t>(d.rows), 1.0f);
  for (int64_t r = 0; r < d.rows; ++r) {
    int64_t s = source(r);
    if (data.has_labels()) d.labels[static_cast<size_t>(r)] = data.labels[static_cast<size_t>(s)];
    if (!data.weights.empty()) {
      d.weights[static_cast<size_t>(r)] = data.weights[static_cast<size_t>(s)];
    }
  }
  return d;
}

// S = X V + 1 offset^T for rows [begin, begin + n).
MatrixXf Affine(const Design& x, int64_t begin, int64_t n, const MatrixXf& v,
                const VectorXf& offset) {
  MatrixXf s = x.sparse ? MatrixXf(x.sp.middleRows(begin, n) * v)
                        : MatrixXf(x.dense.middleRows(begin, n) * v);
  s.rowwise() += offset.transpose();
  return s;
}

MatrixXf TransposeTimes(const Design& x, int64_t begin, int64_t n, const MatrixXf& g) {
  return x.sparse ? MatrixXf(x.sp.middleRows(begin, n).transpose() * g)
                  : MatrixXf(x.dense.middleRows(begin, n).transpose() * g);
}

// ---------------------------------------------------------------------------------------
// Training.

// The scale applied before training: x' = (x - mean) / scale, y' = (y - label_mean) /
// label_scale.
struct Scaler {
  VectorXf mean;   // zeros unless unbias_data
  VectorXf scale;  // ones unless normalize_data
  bool centred = false;
  double label_mean = 0;
  double label_scale = 1;
};

Scaler FitScaler(const LinearLearnerParams& p, const Design& x, bool unbias, bool normalize,
                 bool unbias_label, bool normalize_label) {
  Scaler sc;
  const int64_t n = std::min<int64_t>(x.rows, p.num_point_for_scaler);
  sc.mean = VectorXf::Zero(x.cols);
  sc.scale = VectorXf::Ones(x.cols);
  sc.centred = unbias;
  if (n > 0 && (unbias || normalize)) {
    Eigen::VectorXd sum = Eigen::VectorXd::Zero(x.cols);
    Eigen::VectorXd sum_sq = Eigen::VectorXd::Zero(x.cols);
    if (x.sparse) {
      for (int64_t r = 0; r < n; ++r) {
        for (SparseRowMatrix::InnerIterator it(x.sp, r); it; ++it) {
          sum[it.col()] += it.value();
          sum_sq[it.col()] += static_cast<double>(it.value()) * it.value();
        }
      }
    } else {
      for (int64_t r = 0; r < n; ++r) {
        Eigen::VectorXd row = x.dense.row(r).transpose().cast<double>();
        sum += row;
        sum_sq += row.cwiseProduct(row);
      }
    }
    Eigen::VectorXd mean = sum / static_cast<double>(n);
    Eigen::VectorXd var = (sum_sq / static_cast<double>(n) - mean.cwiseProduct(mean)).cwiseMax(0);
    if (unbias) sc.mean = mean.cast<float>();
    if (normalize) {
      for (int64_t c = 0; c < x.cols; ++c) {
        // Without centring, scale by the root mean square so sparse data keeps its zeros.
        double spread = unbias ? std::sqrt(var[c]) : std::sqrt(sum_sq[c] / static_cast<double>(n));
        sc.scale[c] = spread > 1e-12 ? static_cast<float>(spread) : 1.0f;
      }
    }
  }
  if (p.predictor_type == PredictorType::kRegressor && n > 0) {
    double sum = 0, sum_sq = 0;
    for (int64_t r = 0; r < n; ++r) {
      double y = x.labels[static_cast<size_t>(r)];
      sum += y;
      sum_sq += y * y;
    }
    double mean = sum / static_cast<double>(n);
    double var = std::max(0.0, sum_sq / static_cast<double>(n) - mean * mean);
    if (unbias_label) sc.label_mean = mean;
    if (normalize_label) {
      double spread = unbias_label ? std::sqrt(var) : std::sqrt(sum_sq / static_cast<double>(n));
      sc.label_scale = spread > 1e-12 ? spread : 1.0;
    }
  }
  return sc;
}

struct OptimizerConfig {
  std::string kind = "adam";
  double momentum = 0;
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double rms_decay = 0.9;
  double eps = 1e-8;
};

// One step on p with gradient g; l1 > 0 applies the proximal soft-threshold with each
// coordinate's effective step size.
void ApplyUpdate(MatrixXf& p, const MatrixXf& g, MatrixXf& m, MatrixXf& v, double lr, int64_t t,
                 double l1, const OptimizerConfig& o) {
  Eigen::ArrayXXf step_size;
  if (o.kind == "sgd") {
    if (o.momentum > 0) {
      m = static_cast<float>(o.momentum) * m + g;
      p -= static_cast<float>(lr) * m;
    } else {
      p -= static_cast<float>(lr) * g;
    }
    step_size = Eigen::ArrayXXf::Constant(p.rows(), p.cols(), static_cast<float>(lr));
  } else if (o.kind == "rmsprop") {
    v.array() = static_cast<float>(o.rms_decay) * v.array() +
                static_cast<float>(1 - o.rms_decay) * g.array().square();
    step_size = static_cast<float>(lr) / (v.array().sqrt() + static_cast<float>(o.eps));
    p.array() -= step_size * g.array();
  } else {
    m = static_cast<float>(o.beta_1) * m + static_cast<float>(1 - o.beta_1) * g;
    v.array() = static_cast<float>(o.beta_2) * v.array() +
                static_cast<float>(1 - o.beta_2) * g.array().square();
    double c1 = 1 - std::pow(o.beta_1, static_cast<double>(t));
    double c2 = 1 - std::pow(o.beta_2, static_cast<double>(t));
    float lr_t = static_cast<float>(lr * std::sqrt(c2) / std::max(c1, 1e-12));
    step_size = lr_t / (v.array().sqrt() + static_cast<float>(o.eps));
    p.array() -= step_size * m.array();
  }
  if (l1 > 0) {
    Eigen::ArrayXXf shrink = step_size * static_cast<float>(l1);
    p = (p.array().sign() * (p.array().abs() - shrink).cwiseMax(0.0f)).matrix();
  }
}

struct Candidate {
  std::string optimizer;
  double lr = 0, wd = 0, l1 = 0, positive_weight = 1;
  MatrixXf w, b;  // d x k, k x 1 (in the scaled space)
  MatrixXf mw, vw, mb, vb;
  int64_t step = 0;
  int64_t epochs_run = 0;
  bool stopped = false;
  double best = -kInf;
  int64_t bad_epochs = 0;
  bool has_best = false;
  MatrixXf best_w, best_b;
  std::vector<double> train_loss, validation_loss;
  double last_metric = 0;
};

// Raw-space affine map of a candidate's parameters: scores = X v + offset (label units).
void RawParameters(const MatrixXf& w, const MatrixXf& b, const Scaler& sc, MatrixXf* v,
                   VectorXf* offset) {
  *v = (w.array().colwise() / sc.scale.array()).matrix();
  *offset = b.col(0) - v->transpose() * sc.mean;
  if (sc.label_scale != 1.0 || sc.label_mean != 0.0) {
    *v *= static_cast<float>(sc.label_scale);
    offset->array() =
        offset->array() * static_cast<float>(sc.label_scale) + static_cast<float>(sc.label_mean);
  }
}

bool IsBinary(const LinearLearnerParams& p) {
  return p.predictor_type == PredictorType::kBinaryClassifier;
}
bool IsMulticlass(const LinearLearnerParams& p) {
  return p.predictor_type == PredictorType::kMulticlassClassifier;
}

std::string ScoreFunction(const LinearLearnerParams& p) {
  if (IsMulticlass(p)) return "softmax";
  if (IsBinary(p) && p.loss == "logistic") return "sigmoid";
  return "identity";
}

double DefaultThreshold(const LinearLearnerParams& p) { return p.loss == "hinge_loss" ? 0.0 : 0.5; }

bool CriterionIsLoss(const LinearLearnerParams& p) {
  return p.model_selection_criteria == "loss_function" ||
         p.model_selection_criteria == "cross_entropy_loss";
}

ThresholdCriterion CriterionOf(const LinearLearnerParams& p) {
  const std::string& c = p.model_selection_criteria;
  if (c == "f_beta" || c == "f1") return ThresholdCriterion::kFBeta;
  if (c == "precision_at_target_recall") return ThresholdCriterion::kPrecisionAtTargetRecall;
  if (c == "recall_at_target_precision") return ThresholdCriterion::kRecallAtTargetPrecision;
  return ThresholdCriterion::kAccuracy;
}

// Mean (base-weighted) objective loss of pre-activation scores s (n x k, label units).
double ObjectiveLoss(const LossFn& loss, const MatrixXf& s, const std::vector<float>& labels,
                     const std::vector<float>& weights, int64_t begin) {
  double total = 0, weight_sum = 0;
  for (int64_t i = 0; i < s.rows(); ++i) {
    double wt = weights.empty() ? 1.0 : weights[static_cast<size_t>(begin + i)];
    double y = labels[static_cast<size_t>(begin + i)];
    double l;
    if (loss.kind == LossKind::kSoftmax) {
      double top = s.row(i).maxCoeff();
      double z = (s.row(i).array() - static_cast<float>(top)).exp().sum();
      l = -(s(i, static_cast<int64_t>(y)) - top - std::log(z));
    } else {
      l = loss.Value(s(i, 0), y);
    }
    total += wt * l;
    weight_sum += wt;
  }
  return weight_sum > 0 ? total / weight_sum : 0.0;
}

// Post-activation scores of a binary classifier, for threshold search.
std::vector<float> BinaryScores(const LinearLearnerParams& p, const MatrixXf& s) {
  std::vector<float> out(static_cast<size_t>(s.rows()));
  bool sigmoid = ScoreFunction(p) == "sigmoid";
  for (int64_t i = 0; i < s.rows(); ++i) {
    out[static_cast<size_t>(i)] =
        sigmoid ? static_cast<float>(1.0 / (1.0 + std::exp(-s(i, 0)))) : s(i, 0);
  }
  return out;
}

class Trainer {
 public:
  Trainer(const LinearLearnerParams& p, const Design& train, const Design* validation,
          const Scaler& sc)
      : p_(p), x_(train), val_(validation), sc_(sc) {
    k_ = IsMulticlass(p) ? p.num_classes : 1;
    loss_scaled_ = MakeLoss(p, sc.label_scale);
    loss_raw_ = MakeLoss(p, 1.0);
    optimizer_.kind = p.optimizer;
    optimizer_.momentum = p.momentum.value_or(0.0);
    optimizer_.beta_1 = p.beta_1.value_or(0.9);
    optimizer_.beta_2 = p.beta_2.value_or(0.999);
    bias_lr_mult_ = p.bias_lr_mult.value_or(1.0);
    bias_wd_mult_ = p.bias_wd_mult.value_or(0.0);
    batches_per_epoch_ = (x_.rows + p.mini_batch_size - 1) / p.mini_batch_size;
    scheduler_step_ = p.lr_scheduler_step.value_or(std::max<int64_t>(1, batches_per_epoch_));
    scheduler_factor_ = p.lr_scheduler_factor.value_or(0.9);
    // Class weights (balance_multiclass_weights) and the positive count (balanced weight).
    class_weight_.assign(static_cast<size_t>(std::max<int64_t>(k_, 2)), 1.0);
    std::vector<double> counts(class_weight_.size(), 0);
    for (float y : x_.labels) {
      if (!IsBinary(p) && !IsMulticlass(p)) break;
      counts[static_cast<size_t>(y)] += 1;
    }
    if (IsMulticlass(p) && p.balance_multiclass_weights) {
      for (size_t c = 0; c < counts.size(); ++c) {
        if (counts[c] > 0) {
          class_weight_[c] =
              static_cast<double>(x_.rows) / (static_cast<double>(counts.size()) * counts[c]);
        }
      }
    }
    balanced_weight_ = IsBinary(p) && counts[1] > 0 ? counts[0] / counts[1] : 1.0;
  }

  double balanced_weight() const { return balanced_weight_; }

  void Init(Candidate& c, uint64_t seed) const {
    const int64_t d = x_.cols;
    c.w.resize(d, k_);
    std::mt19937_64 rng(seed);
    if (p_.init_method == "normal") {
      std::normal_distribution<float> dist(0.0f, static_cast<float>(p_.init_sigma));
      for (int64_t i = 0; i < c.w.size(); ++i) c.w.data()[i] = dist(rng);
    } else {
      std::uniform_real_distribution<float> dist(-static_cast<float>(p_.init_scale),
                                                 static_cast<float>(p_.init_scale));
      for (int64_t i = 0; i < c.w.size(); ++i) c.w.data()[i] = dist(rng);
    }
    c.b = MatrixXf::Constant(k_, 1, p_.use_bias ? static_cast<float>(p_.init_bias) : 0.0f);
    c.mw = MatrixXf::Zero(d, k_);
    c.vw = MatrixXf::Zero(d, k_);
    c.mb = MatrixXf::Zero(k_, 1);
    c.vb = MatrixXf::Zero(k_, 1);
  }

  void RunEpoch(Candidate& c) const {
    const int64_t n = x_.rows;
    const int64_t bs = p_.mini_batch_size;
    double loss_sum = 0, weight_sum = 0;
    for (int64_t begin = 0; begin < n; begin += bs) {
      const int64_t nb = std::min(bs, n - begin);
      MatrixXf v = (c.w.array().colwise() / sc_.scale.array()).matrix();
      VectorXf offset = c.b.col(0) - v.transpose() * sc_.mean;
      MatrixXf s = Affine(x_, begin, nb, v, offset);
      MatrixXf g(nb, k_);
      double batch_weight = 0;
      for (int64_t i = 0; i < nb; ++i) {
        const size_t row = static_cast<size_t>(begin + i);
        const double y = x_.labels[row];
        double wt = x_.weights[row];
        if (IsBinary(p_) && y > 0.5) wt *= c.positive_weight;
        if (IsMulticlass(p_)) wt *= class_weight_[static_cast<size_t>(y)];
        double raw_loss;
        if (loss_scaled_.kind == LossKind::kSoftmax) {
          float top = s.row(i).maxCoeff();
          Eigen::RowVectorXf e = (s.row(i).array() - top).exp().matrix();
          float z = e.sum();
          g.row(i) = e / z;
          raw_loss = -std::log(std::max(1e-30, static_cast<double>(g(i, static_cast<int64_t>(y)))));
          g(i, static_cast<int64_t>(y)) -= 1.0f;
        } else {
          const double ys = (y - sc_.label_mean) / sc_.label_scale;
          g(i, 0) = static_cast<float>(loss_scaled_.Grad(s(i, 0), ys));
          raw_loss = loss_raw_.Value(s(i, 0) * sc_.label_scale + sc_.label_mean, y);
        }
        g.row(i) *= static_cast<float>(wt);
        loss_sum += wt * raw_loss;
        batch_weight += wt;
      }
      weight_sum += batch_weight;
      if (batch_weight <= 0) continue;
      g /= static_cast<float>(batch_weight);
      MatrixXf gv = TransposeTimes(x_, begin, nb, g);
      Eigen::RowVectorXf gsum = g.colwise().sum();
      if (sc_.centred) gv -= sc_.mean * gsum;
      MatrixXf gw = (gv.array().colwise() / sc_.scale.array()).matrix();
      if (c.wd > 0) gw += static_cast<float>(c.wd) * c.w;
      ++c.step;
      double lr = LearningRate(c);
      OptimizerConfig optimizer = optimizer_;
      optimizer.kind = c.optimizer;
      ApplyUpdate(c.w, gw, c.mw, c.vw, lr, c.step, c.l1, optimizer);
      if (p_.use_bias) {
        MatrixXf gb = gsum.transpose();
        if (c.wd > 0 && bias_wd_mult_ > 0) gb += static_cast<float>(c.wd * bias_wd_mult_) * c.b;
        ApplyUpdate(c.b, gb, c.mb, c.vb, lr * bias_lr_mult_, c.step, 0.0, optimizer);
      }
    }
    c.train_loss.push_back(weight_sum > 0 ? loss_sum / weight_sum : 0.0);
    ++c.epochs_run;
  }

  // Pre-activation scores (label units) of design rows [0, n).
  MatrixXf Scores(const MatrixXf& w, const MatrixXf& b, const Design& d, int64_t n) const {
    MatrixXf v;
    VectorXf offset;
    RawParameters(w, b, sc_, &v, &offset);
    return Affine(d, 0, n, v, offset);
  }

  // The model-selection metric on design d (higher is better), and the binary threshold
  // that goes with it.
  std::pair<double, double> Selection(const MatrixXf& w, const MatrixXf& b, const Design& d,
                                      int64_t limit) const {
    int64_t n = limit > 0 ? std::min(limit, d.rows) : d.rows;
    MatrixXf s = Scores(w, b, d, n);
    if (IsBinary(p_) && !CriterionIsLoss(p_)) {
      std::vector<float> labels(d.labels.begin(), d.labels.begin() + n);
      ThresholdChoice t = ChooseThreshold(BinaryScores(p_, s), labels, CriterionOf(p_), p_.f_beta,
                                          p_.target_recall, p_.target_precision);
      return {t.value, t.threshold};
    }
    return {-ObjectiveLoss(loss_raw_, s, d.labels, d.weights, 0), DefaultThreshold(p_)};
  }

  double ValidationLoss(const Candidate& c) const {
    MatrixXf s = Scores(c.w, c.b, *val_, val_->rows);
    return ObjectiveLoss(loss_raw_, s, val_->labels, val_->weights, 0);
  }

  // Epoch-end bookkeeping: validation loss, early stopping, best-epoch snapshot.
  void EndEpoch(Candidate& c) const {
    double metric;
    if (val_ != nullptr) {
      c.validation_loss.push_back(ValidationLoss(c));
      if (IsBinary(p_) && !CriterionIsLoss(p_)) {
        metric = Selection(c.w, c.b, *val_, p_.num_calibration_samples).first;
      } else {
        metric = -c.validation_loss.back();
      }
    } else {
      metric = -c.train_loss.back();
    }
    if (!std::isfinite(metric)) metric = -kInf;
    c.last_metric = metric;
    if (c.best == -kInf || metric > c.best + p_.early_stopping_tolerance * std::fabs(c.best)) {
      c.bad_epochs = 0;
    } else {
      ++c.bad_epochs;
    }
    if (metric > c.best) {
      c.best = metric;
      if (val_ != nullptr) {
        c.best_w = c.w;
        c.best_b = c.b;
        c.has_best = true;
      }
    }
    if (c.bad_epochs >= p_.early_stopping_patience) c.stopped = true;
  }

  int64_t outputs() const { return k_; }

 private:
  double LearningRate(const Candidate& c) const {
    if (!p_.use_lr_scheduler) return c.lr;
    double floor = p_.lr_scheduler_minimum_lr.value_or(std::min(1e-5, c.lr));
    double decays = static_cast<double>((c.step - 1) / scheduler_step_);
    return std::max(floor, c.lr * std::pow(scheduler_factor_, decays));
  }

  const LinearLearnerParams& p_;
  const Design& x_;
  const Design* val_;
  const Scaler& sc_;
  int64_t k_ = 1;
  LossFn loss_scaled_, loss_raw_;
  OptimizerConfig optimizer_;
  double bias_lr_mult_ = 1.0, bias_wd_mult_ = 0.0;
  int64_t batches_per_epoch_ = 1, scheduler_step_ = 1;
  double scheduler_factor_ = 0.9;
  std::vector<double> class_weight_;
  double balanced_weight_ = 1.0;
};

double AutoLearningRate(const std::string& optimizer) {
  if (optimizer == "sgd") return 0.1;
  if (optimizer == "rmsprop") return 0.005;
  return 0.02;
}

// The learning-rate exponents (powers of 10) of the candidates after the first.
constexpr double kLrExponents[] = {1,     -1,   0.5,   -0.5, 1.5, -1.5, 0.25,
                                   -0.25, 0.75, -0.75, 2,    -2,  1.25, -1.25};
constexpr double kAutoWd[] = {0, 1e-5, 1e-4, 1e-3, 1e-2};
constexpr double kAutoL1[] = {0, 0, 1e-5, 0, 1e-4, 0, 1e-3};

void Log(const LinearLearnerEnv& env, const std::string& line) {
  if (env.log) env.log(line);
}

void Report(const LinearLearnerEnv& env, const std::string& name, double value) {
  if (env.metrics != nullptr) env.metrics->Report(name, value);
}

Status CheckData(const LinearLearnerParams& p, const Dataset& data, const std::string& channel,
                 int64_t feature_dim) {
  if (data.rows == 0) return ClientError("The " + channel + " channel has no records");
  if (!data.has_labels()) return ClientError("The " + channel + " channel has no labels");
  if (data.cols > feature_dim || (!data.sparse && data.cols != feature_dim)) {
    return ClientError("The " + channel + " channel has " + std::to_string(data.cols) +
                       " features, but feature_dim is " + std::to_string(feature_dim));
  }
  if (!AllFinite(data.values.data(), data.values.size())) {
    return ClientError("The " + channel + " channel has a feature that is not a finite number");
  }
  for (int64_t r = 0; r < data.rows; ++r) {
    float y = data.labels[static_cast<size_t>(r)];
    auto where = [&] {
      return "Label " + FormatMetric(y) + " of record " + std::to_string(r + 1) + " in the " +
             channel + " channel";
    };
    if (!std::isfinite(y)) return ClientError(where() + " is not a finite number");
    if (IsBinary(p) && y != 0.0f && y != 1.0f) {
      return ClientError(where() + " is not 0 or 1, as binary_classifier requires");
    }
    if (IsMulticlass(p) &&
        (y != std::floor(y) || y < 0 || y >= static_cast<float>(p.num_classes))) {
      return ClientError(where() + " is not a class in 0.." + std::to_string(p.num_classes - 1) +
                         " (num_classes=" + std::to_string(p.num_classes) + ")");
    }
  }
  return Status::Ok();
}

void ReportFinalMetrics(const LinearLearnerEnv& env, const std::string& channel,
                        const std::map<std::string, double>& metrics) {
  for (const auto& [name, value] : metrics) {
    if (channel == "test") {
      Log(env, "#test_score (algo-1) : ('" + name + "', " + FormatMetric(value) + ")");
    } else {
      bool loss =
          name == "objective_loss" || name == "mse" || name == "rmse" || name == "absolute_loss";
      Log(env, "#quality_metric: host=algo-1, " + channel + " " + name +
                   (loss ? " <loss>=" : " <score>=") + FormatMetric(value));
    }
    Report(env, channel + ":" + name, value);
  }
}

}  // namespace

// -----------------------------------------------------------------------------------------

Result<LinearLearnerParams> ParseLinearLearnerHyperparameters(const Hyperparameters& hp) {
  HyperparameterReader r(hp);
  LinearLearnerParams p;
  NIMBUS_ASSIGN_OR_RETURN(std::string type,
                          r.Choice("predictor_type", std::nullopt,
                                   {"binary_classifier", "multiclass_classifier", "regressor"}));
  p.predictor_type = type == "binary_classifier"       ? PredictorType::kBinaryClassifier
                     : type == "multiclass_classifier" ? PredictorType::kMulticlassClassifier
                                                       : PredictorType::kRegressor;
  if (IsMulticlass(p)) {
    NIMBUS_ASSIGN_OR_RETURN(p.num_classes, r.Int("num_classes", std::nullopt, 3, 1000000));
  } else {
    (void)r.String("num_classes", "");  // documented as ignored for the other types
  }
  NIMBUS_ASSIGN_OR_RETURN(auto feature_dim, ReadAutoInt(r, hp, "feature_dim", 1, INT32_MAX));
  p.feature_dim = feature_dim.value_or(0);
  NIMBUS_ASSIGN_OR_RETURN(p.mini_batch_size, r.Int("mini_batch_size", 1000, 1, INT32_MAX));
  NIMBUS_ASSIGN_OR_RETURN(p.epochs, r.Int("epochs", 15, 1, 1000000));
  NIMBUS_ASSIGN_OR_RETURN(p.optimizer,
                          r.Choice("optimizer", "auto", {"auto", "sgd", "adam", "rmsprop"}));
  p.optimizer_auto = p.optimizer == "auto";
  if (p.optimizer_auto) p.optimizer = "adam";
  NIMBUS_ASSIGN_OR_RETURN(
      p.loss, r.Choice("loss", "auto",
                       {"auto", "logistic", "squared_loss", "absolute_loss", "hinge_loss",
                        "eps_insensitive_squared_loss", "eps_insensitive_absolute_loss",
                        "quantile_loss", "huber_loss", "softmax_loss"}));
  std::vector<std::string> valid_losses;
  switch (p.predictor_type) {
    case PredictorType::kBinaryClassifier:
      valid_losses = {"logistic", "hinge_loss"};
      break;
    case PredictorType::kMulticlassClassifier:
      valid_losses = {"softmax_loss"};
      break;
    case PredictorType::kRegressor:
      valid_losses = {"squared_loss",
                      "absolute_loss",
                      "eps_insensitive_squared_loss",
                      "eps_insensitive_absolute_loss",
                      "quantile_loss",
                      "huber_loss"};
      break;
  }
  if (p.loss == "auto") {
    p.loss = valid_losses.front();
  } else if (std::find(valid_losses.begin(), valid_losses.end(), p.loss) == valid_losses.end()) {
    std::string list;
    for (const auto& l : valid_losses) list += (list.empty() ? "" : ", ") + l;
    return ClientError("Hyperparameter 'loss' = '" + p.loss +
                       "' is not valid for predictor_type '" + type + "': must be one of: auto, " +
                       list);
  }
  NIMBUS_ASSIGN_OR_RETURN(p.learning_rate,
                          ReadAutoFloat(r, hp, "learning_rate", 0, kInf, /*lo_open=*/true));
  NIMBUS_ASSIGN_OR_RETURN(p.l1, ReadAutoFloat(r, hp, "l1", 0, kInf));
  NIMBUS_ASSIGN_OR_RETURN(p.wd, ReadAutoFloat(r, hp, "wd", 0, kInf));
  NIMBUS_ASSIGN_OR_RETURN(p.momentum, ReadAutoFloat(r, hp, "momentum", 0, 1, false, true));
  NIMBUS_ASSIGN_OR_RETURN(p.beta_1, ReadAutoFloat(r, hp, "beta_1", 0, 1, false, true));
  NIMBUS_ASSIGN_OR_RETURN(p.beta_2, ReadAutoFloat(r, hp, "beta_2", 0, 1, false, true));
  NIMBUS_ASSIGN_OR_RETURN(p.bias_lr_mult, ReadAutoFloat(r, hp, "bias_lr_mult", 0, kInf, true));
  NIMBUS_ASSIGN_OR_RETURN(p.bias_wd_mult, ReadAutoFloat(r, hp, "bias_wd_mult", 0, kInf));
  NIMBUS_ASSIGN_OR_RETURN(p.use_bias, r.Bool("use_bias", true));
  NIMBUS_ASSIGN_OR_RETURN(p.normalize_data, ReadAutoBool(r, hp, "normalize_data"));
  NIMBUS_ASSIGN_OR_RETURN(p.normalize_label, ReadAutoBool(r, hp, "normalize_label"));
  NIMBUS_ASSIGN_OR_RETURN(p.unbias_data, ReadAutoBool(r, hp, "unbias_data"));
  NIMBUS_ASSIGN_OR_RETURN(p.unbias_label, ReadAutoBool(r, hp, "unbias_label"));
  NIMBUS_ASSIGN_OR_RETURN(auto num_models, ReadAutoInt(r, hp, "num_models", 1, 1000));
  p.num_models = num_models.value_or(0);
  // Automatic model tuning turns the internal tuning off (SageMaker's documented rule).
  if (hp.count("_tuning_objective_metric")) p.num_models = 1;
  NIMBUS_ASSIGN_OR_RETURN(
      p.model_selection_criteria,
      r.Choice("binary_classifier_model_selection_criteria", "accuracy",
               {"accuracy", "f_beta", "f1", "precision_at_target_recall",
                "recall_at_target_precision", "loss_function", "cross_entropy_loss"}));
  NIMBUS_ASSIGN_OR_RETURN(p.target_recall,
                          ReadFloat(r, hp, "target_recall", 0.8, 0, 1, true, true));
  NIMBUS_ASSIGN_OR_RETURN(p.target_precision,
                          ReadFloat(r, hp, "target_precision", 0.8, 0, 1, true, true));
  {
    const std::string name = "positive_example_weight_mult";
    std::string v = hp.count(name) ? ToLower(Trim(hp.at(name))) : "1.0";
    if (v == "auto" || v == "balanced") {
      (void)r.String(name, "");
      p.positive_weight_mode = v;
    } else {
      NIMBUS_ASSIGN_OR_RETURN(p.positive_example_weight_mult,
                              ReadFloat(r, hp, name, 1.0, 0, kInf, /*lo_open=*/true));
    }
  }
  NIMBUS_ASSIGN_OR_RETURN(p.early_stopping_patience,
                          r.Int("early_stopping_patience", 3, 1, INT32_MAX));
  NIMBUS_ASSIGN_OR_RETURN(p.early_stopping_tolerance,
                          ReadFloat(r, hp, "early_stopping_tolerance", 0.001, 0, kInf, true));
  NIMBUS_ASSIGN_OR_RETURN(p.num_point_for_scaler,
                          r.Int("num_point_for_scaler", 10000, 1, INT64_MAX));
  NIMBUS_ASSIGN_OR_RETURN(p.margin, ReadFloat(r, hp, "margin", 1.0, 0, kInf));
  NIMBUS_ASSIGN_OR_RETURN(p.quantile, ReadFloat(r, hp, "quantile", 0.5, 0, 1, true, true));
  NIMBUS_ASSIGN_OR_RETURN(p.loss_insensitivity,
                          ReadFloat(r, hp, "loss_insensitivity", 0.01, 0, kInf, true));
  NIMBUS_ASSIGN_OR_RETURN(p.huber_delta, ReadFloat(r, hp, "huber_delta", 1.0, 0, kInf, true));
  NIMBUS_ASSIGN_OR_RETURN(p.use_lr_scheduler, r.Bool("use_lr_scheduler", true));
  NIMBUS_ASSIGN_OR_RETURN(p.lr_scheduler_step,
                          ReadAutoInt(r, hp, "lr_scheduler_step", 1, INT64_MAX));
  NIMBUS_ASSIGN_OR_RETURN(p.lr_scheduler_factor,
                          ReadAutoFloat(r, hp, "lr_scheduler_factor", 0, 1, true, true));
  NIMBUS_ASSIGN_OR_RETURN(p.lr_scheduler_minimum_lr,
                          ReadAutoFloat(r, hp, "lr_scheduler_minimum_lr", 0, kInf, true));
  NIMBUS_ASSIGN_OR_RETURN(p.init_method, r.Choice("init_method", "uniform", {"uniform", "normal"}));
  NIMBUS_ASSIGN_OR_RETURN(p.init_scale, ReadFloat(r, hp, "init_scale", 0.07, 0, kInf, true));
  NIMBUS_ASSIGN_OR_RETURN(p.init_sigma, ReadFloat(r, hp, "init_sigma", 0.01, 0, kInf, true));
  NIMBUS_ASSIGN_OR_RETURN(p.init_bias, r.Float("init_bias", 0.0));
  NIMBUS_ASSIGN_OR_RETURN(p.f_beta, ReadFloat(r, hp, "f_beta", 1.0, 0, kInf, true));
  NIMBUS_ASSIGN_OR_RETURN(auto calibration,
                          ReadAutoInt(r, hp, "num_calibration_samples", 1, INT64_MAX));
  p.num_calibration_samples = calibration.value_or(0);
  NIMBUS_ASSIGN_OR_RETURN(p.accuracy_top_k, r.Int("accuracy_top_k", 3, 1, 1000000));
  NIMBUS_ASSIGN_OR_RETURN(p.balance_multiclass_weights,
                          r.Bool("balance_multiclass_weights", false));
  NIMBUS_RETURN_IF_ERROR(r.CheckAllKnown());
  if (p.model_selection_criteria == "f1") p.f_beta = 1.0;
  return p;
}

Result<std::map<std::string, double>> EvaluateLinearLearner(const LinearLearnerModel& model,
                                                            const LinearLearnerParams& params,
                                                            const Dataset& data) {
  if (!data.has_labels()) return ClientError("The data has no labels to evaluate against");
  NIMBUS_ASSIGN_OR_RETURN(std::vector<float> scores, model.Scores(data));
  const auto& st = model.state();
  std::map<std::string, double> m;
  LossFn loss = MakeLoss(params, 1.0);
  double loss_sum = 0;
  const int64_t k = st.num_outputs;
  for (int64_t r = 0; r < data.rows; ++r) {
    double y = data.labels[static_cast<size_t>(r)];
    const float* row = scores.data() + r * k;
    if (st.score_function == "softmax") {
      loss_sum -= std::log(std::max(1e-30, static_cast<double>(row[static_cast<int64_t>(y)])));
    } else if (st.score_function == "sigmoid") {
      double prob = std::clamp(static_cast<double>(row[0]), 1e-30, 1 - 1e-16);
      loss_sum -= y > 0.5 ? std::log(prob) : std::log(1 - prob);
    } else {
      loss_sum += loss.Value(row[0], y);
    }
  }
  m["objective_loss"] = data.rows > 0 ? loss_sum / static_cast<double>(data.rows) : 0.0;
  switch (st.predictor_type) {
    case PredictorType::kBinaryClassifier: {
      BinaryMetrics b = ComputeBinaryMetrics(scores, data.labels, st.threshold, params.f_beta);
      m["binary_classification_accuracy"] = b.accuracy;
      m["precision"] = b.precision;
      m["recall"] = b.recall;
      m["binary_f_beta"] = b.f_beta;
      m["roc_auc_score"] = RocAuc(scores, data.labels);
      break;
    }
    case PredictorType::kMulticlassClassifier: {
      MulticlassMetrics mc =
          ComputeMulticlassMetrics(scores, data.labels, k, params.accuracy_top_k, params.f_beta);
      m["multiclass_accuracy"] = mc.accuracy;
      m["multiclass_top_k_accuracy"] = mc.top_k_accuracy;
      m["macro_precision"] = mc.macro_precision;
      m["macro_recall"] = mc.macro_recall;
      m["macro_f_beta"] = mc.macro_f_beta;
      m["dcg"] = mc.dcg;
      break;
    }
    case PredictorType::kRegressor: {
      RegressionMetrics rm = ComputeRegressionMetrics(scores, data.labels);
      m["mse"] = rm.mse;
      m["rmse"] = rm.rmse;
      m["absolute_loss"] = rm.absolute_loss;
      break;
    }
  }
  return m;
}

Result<LinearLearnerFit> TrainLinearLearner(const LinearLearnerParams& params, const Dataset& train,
                                            const Dataset* validation, const Dataset* test,
                                            const LinearLearnerEnv& env) {
  const LinearLearnerParams& p = params;
  const int64_t feature_dim = p.feature_dim > 0 ? p.feature_dim : train.cols;
  NIMBUS_RETURN_IF_ERROR(CheckData(p, train, "train", feature_dim));
  if (validation) NIMBUS_RETURN_IF_ERROR(CheckData(p, *validation, "validation", feature_dim));
  if (test) NIMBUS_RETURN_IF_ERROR(CheckData(p, *test, "test", feature_dim));

  // One fixed shuffle, so that mini-batches mix the classes and the scaler sees a sample.
  std::vector<int64_t> order(static_cast<size_t>(train.rows));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(p.seed + 17);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  const Design x = MakeDesign(train, feature_dim, order);
  Design val;
  if (validation) val = MakeDesign(*validation, feature_dim, {});

  const bool regressor = p.predictor_type == PredictorType::kRegressor;
  bool unbias = p.unbias_data.value_or(p.use_bias);
  bool normalize = p.normalize_data.value_or(true);
  bool unbias_label = regressor && p.unbias_label.value_or(p.use_bias);
  bool normalize_label = regressor && p.normalize_label.value_or(true);
  if (!p.use_bias && (unbias || unbias_label)) {
    // Centring needs an intercept to fold the means into.
    Log(env, "unbias_data and unbias_label need use_bias=true; training without centring");
    unbias = unbias_label = false;
  }
  const Scaler sc = FitScaler(p, x, unbias, normalize, unbias_label, normalize_label);

  Trainer trainer(p, x, validation ? &val : nullptr, sc);
  const int64_t num_models = p.num_models > 0 ? p.num_models : 8;
  std::vector<Candidate> candidates(static_cast<size_t>(num_models));
  for (int64_t i = 0; i < num_models; ++i) {
    Candidate& c = candidates[static_cast<size_t>(i)];
    // With optimizer=auto the first model uses Adam (SageMaker's documented choice) and
    // every other one plain SGD, which wins on small, well-conditioned (normalized) data
    // where the few steps Adam gets are not enough to settle.
    int64_t rank = i;  // the model's place among those with its optimizer
    c.optimizer = p.optimizer;
    if (p.optimizer_auto) {
      c.optimizer = i % 2 == 0 ? "adam" : "sgd";
      rank = i / 2;
    }
    const double lr = p.learning_rate.value_or(AutoLearningRate(c.optimizer));
    c.lr =
        rank == 0
            ? lr
            : lr * std::pow(10.0,
                            kLrExponents[static_cast<size_t>(rank - 1) % std::size(kLrExponents)]);
    c.wd = p.wd ? *p.wd : kAutoWd[static_cast<size_t>(i) % std::size(kAutoWd)];
    c.l1 = p.l1 ? *p.l1 : kAutoL1[static_cast<size_t>(i) % std::size(kAutoL1)];
    if (p.positive_weight_mode == "balanced") {
      c.positive_weight = trainer.balanced_weight();
    } else if (p.positive_weight_mode == "auto") {
      c.positive_weight = i % 2 == 1 ? trainer.balanced_weight() : 1.0;
    } else {
      c.positive_weight = p.positive_example_weight_mult;
    }
    trainer.Init(c, p.seed * 1000003 + static_cast<uint64_t>(i));
  }
  Log(env, "Linear learner: predictor_type=" + PredictorTypeName(p.predictor_type) +
               ", feature_dim=" + std::to_string(feature_dim) +
               ", train records=" + std::to_string(train.rows) +
               (validation ? ", validation records=" + std::to_string(validation->rows) : "") +
               ", loss=" + p.loss + ", optimizer=" + p.optimizer +
               ", num_models=" + std::to_string(num_models) +
               ", mini_batch_size=" + std::to_string(p.mini_batch_size));

  for (int64_t epoch = 0; epoch < p.epochs; ++epoch) {
    std::vector<size_t> active;
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (!candidates[i].stopped) active.push_back(i);
    }
    if (active.empty()) break;
    ParallelFor(static_cast<int64_t>(active.size()), env.num_threads, [&](int64_t j) {
      Candidate& c = candidates[active[static_cast<size_t>(j)]];
      trainer.RunEpoch(c);
      trainer.EndEpoch(c);
    });
    // The best latest value over every model, stopped ones included.
    double best_train = kInf, best_val = kInf;
    for (const Candidate& c : candidates) {
      best_train = std::min(best_train, c.train_loss.back());
      if (validation) best_val = std::min(best_val, c.validation_loss.back());
    }
    Log(env, "#quality_metric: host=algo-1, epoch=" + std::to_string(epoch) +
                 ", train objective_loss <loss>=" + FormatMetric(best_train));
    if (validation) {
      Log(env, "#quality_metric: host=algo-1, epoch=" + std::to_string(epoch) +
                   ", validation objective_loss <loss>=" + FormatMetric(best_val));
    }
    bool all_stopped = std::all_of(candidates.begin(), candidates.end(),
                                   [](const Candidate& c) { return c.stopped; });
    if (all_stopped && epoch + 1 < p.epochs) {
      Log(env,
          "Early stop condition met. Stopping training after epoch " + std::to_string(epoch) + ".");
      break;
    }
  }

  // Model selection on the validation data (the training data when there is none).
  const Design& selection_data = validation ? val : x;
  LinearLearnerFit fit;
  double best_value = -kInf, threshold = DefaultThreshold(p);
  std::vector<std::pair<double, double>> selections(candidates.size());
  ParallelFor(static_cast<int64_t>(candidates.size()), env.num_threads, [&](int64_t i) {
    Candidate& c = candidates[static_cast<size_t>(i)];
    if (c.has_best) {
      c.w = c.best_w;
      c.b = c.best_b;
    }
    int64_t limit = IsBinary(p) ? p.num_calibration_samples : 0;
    selections[static_cast<size_t>(i)] = trainer.Selection(c.w, c.b, selection_data, limit);
  });
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    double value = std::isfinite(selections[i].first) ? selections[i].first : -kInf;
    LinearLearnerCandidate summary;
    summary.optimizer = c.optimizer;
    summary.learning_rate = c.lr;
    summary.wd = c.wd;
    summary.l1 = c.l1;
    summary.positive_weight = c.positive_weight;
    summary.epochs_run = c.epochs_run;
    summary.selection_value = value;
    summary.train_loss = c.train_loss;
    summary.validation_loss = c.validation_loss;
    fit.candidates.push_back(std::move(summary));
    if (i == 0 || value > best_value) {
      best_value = value;
      threshold = selections[i].second;
      fit.chosen = i;
    }
  }
  std::string metric_name = IsBinary(p) && !CriterionIsLoss(p) ? p.model_selection_criteria
                                                               : std::string("objective_loss");
  fit.selection_metric = std::string(validation ? "validation " : "train ") + metric_name;
  const Candidate& chosen = candidates[fit.chosen];
  Log(env, "Selected model " + std::to_string(fit.chosen) + " of " +
               std::to_string(candidates.size()) + " (optimizer=" + chosen.optimizer +
               ", learning_rate=" + FormatMetric(chosen.lr) + ", wd=" + FormatMetric(chosen.wd) +
               ", l1=" + FormatMetric(chosen.l1) + ") by " + fit.selection_metric + "=" +
               FormatMetric(metric_name == "objective_loss" ? -best_value : best_value));

  LinearLearnerModel::State st;
  st.predictor_type = p.predictor_type;
  st.feature_dim = feature_dim;
  st.num_outputs = trainer.outputs();
  st.score_function = ScoreFunction(p);
  st.threshold = IsBinary(p) ? threshold : 0.0;
  st.loss = p.loss;
  MatrixXf v;
  VectorXf offset;
  RawParameters(chosen.w, chosen.b, sc, &v, &offset);
  st.weights.resize(static_cast<size_t>(feature_dim * st.num_outputs));
  Eigen::Map<RowMatrix>(st.weights.data(), feature_dim, st.num_outputs) = v;
  st.bias.assign(offset.data(), offset.data() + offset.size());
  fit.model = std::make_unique<LinearLearnerModel>(std::move(st));

  for (double l : chosen.train_loss) Report(env, "train:objective_loss", l);
  for (double l : chosen.validation_loss) Report(env, "validation:objective_loss", l);
  if (validation) {
    NIMBUS_ASSIGN_OR_RETURN(auto m, EvaluateLinearLearner(*fit.model, p, *validation));
    // objective_loss per epoch is already reported; the final value closes the series.
    ReportFinalMetrics(env, "validation", m);
  }
  if (test) {
    NIMBUS_ASSIGN_OR_RETURN(auto m, EvaluateLinearLearner(*fit.model, p, *test));
    ReportFinalMetrics(env, "test", m);
  }
  return fit;
}

// -----------------------------------------------------------------------------------------
// The algorithm behind the "linear-learner" image.

constexpr const char* kRecordIOProtobuf = "application/x-recordio-protobuf";

Result<std::optional<Dataset>> ReadLabeledChannel(const TrainingInput& input,
                                                  const std::string& name, int64_t feature_dim,
                                                  const std::string& algorithm) {
  auto it = input.channels.find(name);
  if (it == input.channels.end()) return std::optional<Dataset>();
  const Channel& channel = it->second;
  NIMBUS_ASSIGN_OR_RETURN(
      ContentTypeSpec spec,
      ParseContentType(channel.content_type.empty() ? kRecordIOProtobuf : channel.content_type));
  if (spec.type != ContentType::kCsv && spec.type != ContentType::kRecordIOProtobuf) {
    return ClientError("The " + name + " channel's content type '" + channel.content_type +
                       "' is not supported by " + algorithm + ": use " + kRecordIOProtobuf +
                       " or text/csv");
  }
  if (spec.type == ContentType::kCsv && spec.label_size != 1) {
    return ClientError("The " + name +
                       " channel must carry the label in the first CSV column (label_size=1)");
  }
  ReadOptions options;
  options.labeled = true;
  options.feature_dim = feature_dim;
  NIMBUS_ASSIGN_OR_RETURN(Dataset data, ReadChannel(channel, kRecordIOProtobuf, options));
  return std::optional<Dataset>(std::move(data));
}

namespace {

constexpr const char* kProtobuf = "application/x-recordio-protobuf";

class LinearLearnerAlgorithm : public Algorithm {
 public:
  Status Train(const TrainingInput& input) override {
    NIMBUS_ASSIGN_OR_RETURN(LinearLearnerParams params,
                            ParseLinearLearnerHyperparameters(input.hyperparameters));
    for (const auto& [name, channel] : input.channels) {
      if (name != "train" && name != "validation" && name != "test") {
        return ClientError("Channel '" + name +
                           "' is not supported by linear-learner: use train, validation, test");
      }
    }
    if (!input.channels.count("train")) {
      return ClientError("linear-learner requires a 'train' channel");
    }
    NIMBUS_ASSIGN_OR_RETURN(
        auto train, ReadLabeledChannel(input, "train", params.feature_dim, "linear-learner"));
    LogTrainRecordsRead(input, train->rows);
    NIMBUS_ASSIGN_OR_RETURN(
        auto validation,
        ReadLabeledChannel(input, "validation", params.feature_dim, "linear-learner"));
    NIMBUS_ASSIGN_OR_RETURN(
        auto test, ReadLabeledChannel(input, "test", params.feature_dim, "linear-learner"));
    LinearLearnerEnv env;
    env.num_threads = std::max(1, input.num_threads);
    env.log = input.log;
    env.metrics = input.metrics;
    NIMBUS_ASSIGN_OR_RETURN(LinearLearnerFit fit,
                            TrainLinearLearner(params, *train, validation ? &*validation : nullptr,
                                               test ? &*test : nullptr, env));
    return fit.model->Save(input.model_dir);
  }
};

}  // namespace

void RegisterLinearLearnerAlgorithm() {
  AlgorithmInfo info;
  info.name = "linear-learner";
  info.image_repositories = {"linear-learner"};
  info.training_content_types = {kProtobuf, "text/csv"};
  info.make = [] { return std::make_unique<LinearLearnerAlgorithm>(); };
  info.load = [](const std::string& model_dir) -> Result<std::unique_ptr<Model>> {
    NIMBUS_ASSIGN_OR_RETURN(auto model, LinearLearnerModel::Load(model_dir));
    return std::unique_ptr<Model>(std::move(model));
  };
  RegisterAlgorithm(std::move(info));
}

}  // namespace nimbus::ml
