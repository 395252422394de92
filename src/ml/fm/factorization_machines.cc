#include "ml/fm/factorization_machines.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include <Eigen/Core>

#include "ml/dataset_readers.h"
#include "ml/linear/hyperparameters.h"
#include "ml/linear/linear_learner.h"
#include "ml/linear/metrics.h"
#include "ml/linear/parallel.h"

namespace nimbus::ml {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMap = Eigen::Map<const RowMatrix>;

constexpr const char* kProtobuf = "application/x-recordio-protobuf";
constexpr int64_t kRowsPerTask = 256;

// Calls f(index, value) for the non-zero features of record r.
template <typename F>
void ForEachFeature(const Dataset& data, int64_t r, F&& f) {
  if (data.sparse) {
    for (int64_t p = data.indptr[static_cast<size_t>(r)];
         p < data.indptr[static_cast<size_t>(r) + 1]; ++p) {
      f(data.indices[static_cast<size_t>(p)], data.values[static_cast<size_t>(p)]);
    }
  } else {
    const float* row = data.values.data() + r * data.cols;
    for (int64_t c = 0; c < data.cols; ++c) {
      if (row[c] != 0.0f) f(c, row[c]);
    }
  }
}

Status CheckFeatureRange(const Dataset& data, int64_t feature_dim, const std::string& what) {
  if (data.cols > feature_dim) {
    return ClientError(what + " has " + std::to_string(data.cols) +
                       " features, but feature_dim is " + std::to_string(feature_dim));
  }
  if (data.sparse) {
    for (int64_t c : data.indices) {
      if (c < 0 || c >= feature_dim) {
        return ClientError(what + " has feature index " + std::to_string(c) +
                           ", outside feature_dim=" + std::to_string(feature_dim));
      }
    }
  }
  for (float v : data.values) {
    if (!std::isfinite(v)) return ClientError(what + " has a feature that is not a finite number");
  }
  return Status::Ok();
}

// yhat of record r; q (num_factors) receives sum_i v_i x_i.
double RowScore(const Dataset& data, int64_t r, float w0, const float* w, const ConstRowMap& v,
                Eigen::Ref<Eigen::RowVectorXf> q) {
  q.setZero();
  double linear = w0, squares = 0;
  ForEachFeature(data, r, [&](int64_t i, float x) {
    linear += static_cast<double>(w[i]) * x;
    q.noalias() += x * v.row(i);
    squares += static_cast<double>(x) * x * v.row(i).squaredNorm();
  });
  return linear + 0.5 * (static_cast<double>(q.squaredNorm()) - squares);
}

double Sigmoid(double s) { return 1.0 / (1.0 + std::exp(-s)); }

void Initialize(float* data, int64_t n, const FmInit& init, std::mt19937_64& rng) {
  if (init.method == "constant") {
    std::fill(data, data + n, static_cast<float>(init.value));
  } else if (init.method == "uniform") {
    std::uniform_real_distribution<float> dist(-static_cast<float>(init.scale),
                                               static_cast<float>(init.scale));
    for (int64_t i = 0; i < n; ++i) data[i] = dist(rng);
  } else {
    std::normal_distribution<float> dist(0.0f, static_cast<float>(init.sigma));
    for (int64_t i = 0; i < n; ++i) data[i] = init.sigma > 0 ? dist(rng) : 0.0f;
  }
}

// Adam on a block of parameters, with SageMaker's (MXNet's) gradient pre-processing:
// g = clip(rescale * g) + wd * p.
struct Adam {
  double beta_1 = 0.9, beta_2 = 0.999, eps = 1e-8;
  double rescale = 1.0;
  std::optional<double> clip;

  template <typename P, typename G, typename S>
  void Step(P&& p, G&& g, S&& m, S&& v, double lr, double wd, int64_t t) const {
    auto grad = (g.array() * static_cast<float>(rescale)).eval();
    if (clip) grad = grad.max(-static_cast<float>(*clip)).min(static_cast<float>(*clip));
    grad += static_cast<float>(wd) * p.array();
    m.array() = static_cast<float>(beta_1) * m.array() + static_cast<float>(1 - beta_1) * grad;
    v.array() =
        static_cast<float>(beta_2) * v.array() + static_cast<float>(1 - beta_2) * grad.square();
    double lr_t = lr * std::sqrt(1 - std::pow(beta_2, static_cast<double>(t))) /
                  (1 - std::pow(beta_1, static_cast<double>(t)));
    p.array() -=
        static_cast<float>(lr_t) * m.array() / (v.array().sqrt() + static_cast<float>(eps));
  }
};

void Log(const FmEnv& env, const std::string& line) {
  if (env.log) env.log(line);
}

void Report(const FmEnv& env, const std::string& name, double value) {
  if (env.metrics != nullptr) env.metrics->Report(name, value);
}

bool IsLoss(const std::string& metric) {
  return metric != "binary_classification_accuracy" && metric != "binary_f_beta";
}

Status CheckLabels(const FmParams& p, const Dataset& data, const std::string& channel) {
  if (data.rows == 0) return ClientError("The " + channel + " channel has no records");
  if (!data.has_labels()) return ClientError("The " + channel + " channel has no labels");
  for (int64_t r = 0; r < data.rows; ++r) {
    float y = data.labels[static_cast<size_t>(r)];
    std::string where = "Label " + FormatMetric(y) + " of record " + std::to_string(r + 1) +
                        " in the " + channel + " channel";
    if (!std::isfinite(y)) return ClientError(where + " is not a finite number");
    if (p.predictor_type == PredictorType::kBinaryClassifier && y != 0.0f && y != 1.0f) {
      return ClientError(where + " is not 0 or 1, as binary_classifier requires");
    }
  }
  return CheckFeatureRange(data, p.feature_dim, "The " + channel + " channel");
}

Result<FmInit> ReadInit(HyperparameterReader& r, const Hyperparameters& hp, const std::string& term,
                        double sigma) {
  FmInit init;
  NIMBUS_ASSIGN_OR_RETURN(
      init.method, r.Choice(term + "_init_method", "normal", {"normal", "uniform", "constant"}));
  NIMBUS_ASSIGN_OR_RETURN(init.scale, ReadFloat(r, hp, term + "_init_scale", sigma, 0, kUnbounded));
  NIMBUS_ASSIGN_OR_RETURN(init.sigma, ReadFloat(r, hp, term + "_init_sigma", sigma, 0, kUnbounded));
  NIMBUS_ASSIGN_OR_RETURN(init.value, r.Float(term + "_init_value", 0.0));
  return init;
}

}  // namespace

Result<FmParams> ParseFactorizationMachinesHyperparameters(const Hyperparameters& hp) {
  HyperparameterReader r(hp);
  FmParams p;
  NIMBUS_ASSIGN_OR_RETURN(std::string type, r.Choice("predictor_type", std::nullopt,
                                                     {"binary_classifier", "regressor"}));
  p.predictor_type =
      type == "binary_classifier" ? PredictorType::kBinaryClassifier : PredictorType::kRegressor;
  NIMBUS_ASSIGN_OR_RETURN(p.feature_dim, r.Int("feature_dim", std::nullopt, 1, INT32_MAX));
  NIMBUS_ASSIGN_OR_RETURN(p.num_factors, r.Int("num_factors", std::nullopt, 1, 100000));
  NIMBUS_ASSIGN_OR_RETURN(p.epochs, r.Int("epochs", 1, 1, 1000000));
  NIMBUS_ASSIGN_OR_RETURN(p.mini_batch_size, r.Int("mini_batch_size", 1000, 1, INT32_MAX));
  NIMBUS_ASSIGN_OR_RETURN(p.clip_gradient,
                          ReadOptionalFloat(r, hp, "clip_gradient", 0, kUnbounded, true));
  NIMBUS_ASSIGN_OR_RETURN(auto eps, ReadOptionalFloat(r, hp, "eps", 0, kUnbounded, true));
  p.eps = eps.value_or(1e-8);
  NIMBUS_ASSIGN_OR_RETURN(p.rescale_grad,
                          ReadOptionalFloat(r, hp, "rescale_grad", 0, kUnbounded, true));
  NIMBUS_ASSIGN_OR_RETURN(p.bias_lr, ReadFloat(r, hp, "bias_lr", 0.1, 0, kUnbounded));
  NIMBUS_ASSIGN_OR_RETURN(p.linear_lr, ReadFloat(r, hp, "linear_lr", 0.001, 0, kUnbounded));
  NIMBUS_ASSIGN_OR_RETURN(p.factors_lr, ReadFloat(r, hp, "factors_lr", 0.0001, 0, kUnbounded));
  NIMBUS_ASSIGN_OR_RETURN(p.bias_wd, ReadFloat(r, hp, "bias_wd", 0.01, 0, kUnbounded));
  NIMBUS_ASSIGN_OR_RETURN(p.linear_wd, ReadFloat(r, hp, "linear_wd", 0.001, 0, kUnbounded));
  NIMBUS_ASSIGN_OR_RETURN(p.factors_wd, ReadFloat(r, hp, "factors_wd", 0.00001, 0, kUnbounded));
  NIMBUS_ASSIGN_OR_RETURN(p.bias_init, ReadInit(r, hp, "bias", 0.01));
  NIMBUS_ASSIGN_OR_RETURN(p.linear_init, ReadInit(r, hp, "linear", 0.01));
  NIMBUS_ASSIGN_OR_RETURN(p.factors_init, ReadInit(r, hp, "factors", 0.001));
  NIMBUS_RETURN_IF_ERROR(r.CheckAllKnown());
  return p;
}

// -----------------------------------------------------------------------------------------
// Model.

Result<std::vector<float>> FactorizationMachinesModel::Scores(const Dataset& batch,
                                                              int num_threads) const {
  NIMBUS_RETURN_IF_ERROR(CheckFeatureRange(batch, state_.feature_dim, "The data"));
  const int64_t k = state_.num_factors;
  ConstRowMap v(state_.v.data(), state_.feature_dim, k);
  std::vector<float> out(static_cast<size_t>(batch.rows));
  const bool binary = state_.predictor_type == PredictorType::kBinaryClassifier;
  const int64_t tasks = (batch.rows + kRowsPerTask - 1) / kRowsPerTask;
  ParallelFor(tasks, num_threads, [&](int64_t t) {
    Eigen::RowVectorXf q(k);
    for (int64_t r = t * kRowsPerTask; r < std::min(batch.rows, (t + 1) * kRowsPerTask); ++r) {
      double yhat = RowScore(batch, r, state_.w0, state_.w.data(), v, q);
      out[static_cast<size_t>(r)] = static_cast<float>(binary ? Sigmoid(yhat) : yhat);
    }
  });
  return out;
}

Result<std::vector<Value>> FactorizationMachinesModel::Predict(const Dataset& batch) {
  NIMBUS_ASSIGN_OR_RETURN(std::vector<float> scores, Scores(batch));
  std::vector<Value> predictions;
  predictions.reserve(scores.size());
  for (float s : scores) {
    Value p = Value::MakeMap();
    p["score"] = static_cast<double>(s);
    if (state_.predictor_type == PredictorType::kBinaryClassifier) {
      p["predicted_label"] = s > 0.5f ? 1 : 0;
    }
    predictions.push_back(std::move(p));
  }
  return predictions;
}

Status FactorizationMachinesModel::Save(const std::string& model_dir) const {
  std::error_code ec;
  std::filesystem::create_directories(model_dir, ec);
  const std::string path = model_dir + "/" + kArtifactName;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  auto put = [&](const void* data, size_t bytes) {
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  };
  const uint32_t header[3] = {
      1, state_.predictor_type == PredictorType::kBinaryClassifier ? 0u : 2u, 0};
  put("NMFM", 4);
  put(header, sizeof(header));
  put(&state_.feature_dim, sizeof(int64_t));
  put(&state_.num_factors, sizeof(int64_t));
  put(&state_.w0, sizeof(float));
  put(state_.w.data(), state_.w.size() * sizeof(float));
  put(state_.v.data(), state_.v.size() * sizeof(float));
  out.close();
  if (!out) return Status::Aws("AlgorithmError", 500, "cannot write the model file " + path);
  return Status::Ok();
}

Result<std::unique_ptr<FactorizationMachinesModel>> FactorizationMachinesModel::Load(
    const std::string& model_dir) {
  const std::string path = model_dir + "/" + kArtifactName;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return ClientError("The model directory has no " + std::string(kArtifactName) +
                       ": not a factorization-machines model");
  }
  auto get = [&](void* data, size_t bytes) {
    in.read(static_cast<char*>(data), static_cast<std::streamsize>(bytes));
    return static_cast<bool>(in);
  };
  char magic[4];
  uint32_t header[3];
  State s;
  if (!get(magic, 4) || std::memcmp(magic, "NMFM", 4) != 0 || !get(header, sizeof(header)) ||
      header[0] != 1 || !get(&s.feature_dim, sizeof(int64_t)) ||
      !get(&s.num_factors, sizeof(int64_t)) || !get(&s.w0, sizeof(float))) {
    return ClientError(path + " is not a factorization-machines model artifact");
  }
  if (s.feature_dim < 1 || s.num_factors < 1 || s.feature_dim > INT32_MAX ||
      s.num_factors > 100000) {
    return ClientError(path + " is corrupt: bad dimensions");
  }
  s.predictor_type = header[1] == 0 ? PredictorType::kBinaryClassifier : PredictorType::kRegressor;
  s.w.resize(static_cast<size_t>(s.feature_dim));
  s.v.resize(static_cast<size_t>(s.feature_dim * s.num_factors));
  if (!get(s.w.data(), s.w.size() * sizeof(float)) ||
      !get(s.v.data(), s.v.size() * sizeof(float))) {
    return ClientError(path + " is truncated");
  }
  return std::make_unique<FactorizationMachinesModel>(std::move(s));
}

Result<std::map<std::string, double>> EvaluateFactorizationMachines(
    const FactorizationMachinesModel& model, const Dataset& data, int num_threads) {
  if (!data.has_labels()) return ClientError("The data has no labels to evaluate against");
  NIMBUS_ASSIGN_OR_RETURN(std::vector<float> scores, model.Scores(data, num_threads));
  std::map<std::string, double> m;
  if (model.state().predictor_type == PredictorType::kBinaryClassifier) {
    BinaryMetrics b = ComputeBinaryMetrics(scores, data.labels, 0.5);
    m["binary_classification_accuracy"] = b.accuracy;
    m["binary_classification_cross_entropy"] = BinaryCrossEntropy(scores, data.labels);
    m["binary_f_beta"] = b.f_beta;
  } else {
    m["rmse"] = ComputeRegressionMetrics(scores, data.labels).rmse;
  }
  return m;
}

// -----------------------------------------------------------------------------------------
// Training.

Result<std::unique_ptr<FactorizationMachinesModel>> TrainFactorizationMachines(const FmParams& p,
                                                                               const Dataset& train,
                                                                               const Dataset* test,
                                                                               const FmEnv& env) {
  NIMBUS_RETURN_IF_ERROR(CheckLabels(p, train, "train"));
  if (test) NIMBUS_RETURN_IF_ERROR(CheckLabels(p, *test, "test"));
  const int64_t d = p.feature_dim;
  const int64_t k = p.num_factors;
  const bool binary = p.predictor_type == PredictorType::kBinaryClassifier;

  std::mt19937_64 rng(p.seed + 29);
  float w0 = 0;
  Eigen::VectorXf w(d);
  RowMatrix v(d, k);
  Initialize(&w0, 1, p.bias_init, rng);
  Initialize(w.data(), d, p.linear_init, rng);
  Initialize(v.data(), d * k, p.factors_init, rng);
  Eigen::VectorXf m0 = Eigen::VectorXf::Zero(1), v0 = Eigen::VectorXf::Zero(1);
  Eigen::VectorXf mw = Eigen::VectorXf::Zero(d), vw = Eigen::VectorXf::Zero(d);
  RowMatrix mv = RowMatrix::Zero(d, k), vv = RowMatrix::Zero(d, k);
  // Gradient accumulators, cleared row by row after each update.
  Eigen::VectorXf gw = Eigen::VectorXf::Zero(d);
  RowMatrix gv = RowMatrix::Zero(d, k);
  std::vector<char> touched_flag(static_cast<size_t>(d), 0);
  std::vector<int64_t> touched;

  std::vector<int64_t> order(static_cast<size_t>(train.rows));
  std::iota(order.begin(), order.end(), 0);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);

  Log(env, "Factorization machines: predictor_type=" + PredictorTypeName(p.predictor_type) +
               ", feature_dim=" + std::to_string(d) + ", num_factors=" + std::to_string(k) +
               ", train records=" + std::to_string(train.rows) + ", mini_batch_size=" +
               std::to_string(p.mini_batch_size) + ", epochs=" + std::to_string(p.epochs));

  Adam adam;
  adam.eps = p.eps;
  adam.clip = p.clip_gradient;
  int64_t step = 0;
  const int64_t bs = p.mini_batch_size;
  RowMatrix q(std::min<int64_t>(bs, train.rows), k);
  std::vector<double> yhat(static_cast<size_t>(std::min<int64_t>(bs, train.rows)));
  for (int64_t epoch = 0; epoch < p.epochs; ++epoch) {
    double squared = 0, cross_entropy = 0, correct = 0;
    for (int64_t begin = 0; begin < train.rows; begin += bs) {
      const int64_t nb = std::min(bs, train.rows - begin);
      ConstRowMap vmap(v.data(), d, k);
      const int64_t tasks = (nb + kRowsPerTask - 1) / kRowsPerTask;
      ParallelFor(tasks, env.num_threads, [&](int64_t t) {
        for (int64_t j = t * kRowsPerTask; j < std::min(nb, (t + 1) * kRowsPerTask); ++j) {
          yhat[static_cast<size_t>(j)] =
              RowScore(train, order[static_cast<size_t>(begin + j)], w0, w.data(), vmap, q.row(j));
        }
      });
      double g0 = 0;
      for (int64_t j = 0; j < nb; ++j) {
        const int64_t r = order[static_cast<size_t>(begin + j)];
        const double y = train.labels[static_cast<size_t>(r)];
        const double s = yhat[static_cast<size_t>(j)];
        double dl;
        if (binary) {
          double prob = Sigmoid(s);
          dl = prob - y;
          double clipped = std::clamp(prob, 1e-12, 1 - 1e-12);
          cross_entropy -= y > 0.5 ? std::log(clipped) : std::log(1 - clipped);
          correct += (prob > 0.5) == (y > 0.5) ? 1 : 0;
        } else {
          dl = s - y;
          squared += (s - y) * (s - y);
        }
        if (!train.weights.empty()) dl *= train.weights[static_cast<size_t>(r)];
        g0 += dl;
        ForEachFeature(train, r, [&](int64_t i, float x) {
          if (!touched_flag[static_cast<size_t>(i)]) {
            touched_flag[static_cast<size_t>(i)] = 1;
            touched.push_back(i);
          }
          gw[i] += static_cast<float>(dl) * x;
          gv.row(i).noalias() += static_cast<float>(dl) * x * (q.row(j) - x * v.row(i));
        });
      }
      ++step;
      adam.rescale = p.rescale_grad.value_or(1.0 / static_cast<double>(nb));
      Eigen::VectorXf w0v = Eigen::VectorXf::Constant(1, w0);
      Eigen::VectorXf g0v = Eigen::VectorXf::Constant(1, static_cast<float>(g0));
      adam.Step(w0v, g0v, m0, v0, p.bias_lr, p.bias_wd, step);
      w0 = w0v[0];
      for (int64_t i : touched) {
        adam.Step(w.segment(i, 1), gw.segment(i, 1), mw.segment(i, 1), vw.segment(i, 1),
                  p.linear_lr, p.linear_wd, step);
        adam.Step(v.row(i), gv.row(i), mv.row(i), vv.row(i), p.factors_lr, p.factors_wd, step);
        gw[i] = 0;
        gv.row(i).setZero();
        touched_flag[static_cast<size_t>(i)] = 0;
      }
      touched.clear();
    }
    const double n = static_cast<double>(train.rows);
    std::vector<std::pair<std::string, double>> metrics;
    if (binary) {
      metrics = {{"binary_classification_accuracy", correct / n},
                 {"binary_classification_cross_entropy", cross_entropy / n}};
    } else {
      metrics = {{"rmse", std::sqrt(squared / n)}};
    }
    for (const auto& [name, value] : metrics) {
      Log(env, "#quality_metric: host=algo-1, epoch=" + std::to_string(epoch) + ", train " + name +
                   (IsLoss(name) ? " <loss>=" : " <score>=") + FormatMetric(value));
      Report(env, "train:" + name, value);
    }
  }

  FactorizationMachinesModel::State st;
  st.predictor_type = p.predictor_type;
  st.feature_dim = d;
  st.num_factors = k;
  st.w0 = w0;
  st.w.assign(w.data(), w.data() + d);
  st.v.assign(v.data(), v.data() + d * k);
  auto model = std::make_unique<FactorizationMachinesModel>(std::move(st));
  if (test) {
    NIMBUS_ASSIGN_OR_RETURN(auto metrics,
                            EvaluateFactorizationMachines(*model, *test, env.num_threads));
    for (const auto& [name, value] : metrics) {
      Log(env, "#test_score (algo-1) : ('" + name + "', " + FormatMetric(value) + ")");
      Report(env, "test:" + name, value);
    }
  }
  return model;
}

// -----------------------------------------------------------------------------------------
// The algorithm behind the "factorization-machines" image.

namespace {

class FactorizationMachinesAlgorithm : public Algorithm {
 public:
  Status Train(const TrainingInput& input) override {
    NIMBUS_ASSIGN_OR_RETURN(FmParams params,
                            ParseFactorizationMachinesHyperparameters(input.hyperparameters));
    for (const auto& [name, channel] : input.channels) {
      if (name != "train" && name != "test") {
        return ClientError("Channel '" + name +
                           "' is not supported by factorization-machines: use train, test");
      }
    }
    if (!input.channels.count("train")) {
      return ClientError("factorization-machines requires a 'train' channel");
    }
    NIMBUS_ASSIGN_OR_RETURN(auto train, ReadLabeledChannel(input, "train", params.feature_dim,
                                                           "factorization-machines"));
    NIMBUS_ASSIGN_OR_RETURN(
        auto test, ReadLabeledChannel(input, "test", params.feature_dim, "factorization-machines"));
    FmEnv env;
    env.num_threads = std::max(1, input.num_threads);
    env.log = input.log;
    env.metrics = input.metrics;
    NIMBUS_ASSIGN_OR_RETURN(
        auto model, TrainFactorizationMachines(params, *train, test ? &*test : nullptr, env));
    return model->Save(input.model_dir);
  }
};

}  // namespace

void RegisterFactorizationMachinesAlgorithm() {
  AlgorithmInfo info;
  info.name = "factorization-machines";
  info.image_repositories = {"factorization-machines"};
  info.training_content_types = {kProtobuf, "text/csv"};
  info.make = [] { return std::make_unique<FactorizationMachinesAlgorithm>(); };
  info.load = [](const std::string& model_dir) -> Result<std::unique_ptr<Model>> {
    NIMBUS_ASSIGN_OR_RETURN(auto model, FactorizationMachinesModel::Load(model_dir));
    return std::unique_ptr<Model>(std::move(model));
  };
  RegisterAlgorithm(std::move(info));
}

}  // namespace nimbus::ml
