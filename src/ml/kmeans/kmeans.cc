#include "ml/kmeans/kmeans.h"

// Eigen's own threading stays off: the loops below split the work themselves (OpenMP), so the
// thread count is the job's and the arithmetic order is fixed for a given count.
#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Core>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>

#include "core/json.h"
#include "core/strings.h"

namespace nimbus::ml {
namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// The mini-batch passes assign in single precision, as the records are stored: twice the
// SIMD lanes of double for the products that dominate training. Centers and sums stay double.
using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Log = std::function<void(const std::string&)>;

constexpr char kModelFile[] = "kmeans-model.json";
constexpr char kFormat[] = "nimbus-kmeans";
constexpr int64_t kChunkRows = 256;       // rows per parallel task of an assignment
constexpr int64_t kPredictRows = 4096;    // rows densified at a time outside training
constexpr int64_t kAutoLloydTrials = 10;  // local_lloyd_num_trials=auto

void Emit(const Log& log, const std::string& line) {
  if (log) log(line);
}

std::string Fmt(double v) {
  std::ostringstream out;
  out << std::setprecision(7) << v;
  return out.str();
}

double Uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Copies records rows[0..m) of data into out (m x dim), zero-filling absent sparse features.
template <typename Matrix>
void Gather(const Dataset& data, const int64_t* rows, int64_t m, int64_t dim, Matrix* out) {
  out->setZero(m, dim);
  for (int64_t i = 0; i < m; ++i) {
    const size_t r = static_cast<size_t>(rows[i]);
    if (data.sparse) {
      for (int64_t p = data.indptr[r]; p < data.indptr[r + 1]; ++p) {
        const int64_t c = data.indices[static_cast<size_t>(p)];
        if (c >= 0 && c < dim) (*out)(i, c) = data.values[static_cast<size_t>(p)];
      }
    } else {
      const float* src = data.values.data() + static_cast<int64_t>(r) * data.cols;
      for (int64_t c = 0; c < data.cols; ++c) (*out)(i, c) = src[c];
    }
  }
}

// The nearest center (lowest index on ties) of every row of x and the squared distance to it.
// The argmin uses |x|^2 + |c|^2 - 2 x.c (one matrix product per chunk); the distance reported
// is recomputed directly, so that it carries no cancellation error.
template <typename Matrix>
void AssignRows(const Matrix& x, const Matrix& centers, int threads, int32_t* best, double* dist) {
  using Scalar = typename Matrix::Scalar;
  const int64_t n = x.rows();
  const int64_t k = centers.rows();
  const Eigen::Matrix<Scalar, Eigen::Dynamic, 1> norms = centers.rowwise().squaredNorm();
  const int64_t chunks = (n + kChunkRows - 1) / kChunkRows;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && chunks > 1)
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const int64_t begin = chunk * kChunkRows;
    const int64_t len = std::min(kChunkRows, n - begin);
    const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> dots =
        x.middleRows(begin, len) * centers.transpose();
    for (int64_t i = 0; i < len; ++i) {
      const Scalar xn = x.row(begin + i).squaredNorm();
      int32_t arg = 0;
      Scalar low = std::numeric_limits<Scalar>::infinity();
      for (int64_t j = 0; j < k; ++j) {
        const Scalar d = xn + norms[j] - Scalar(2) * dots(i, j);
        if (d < low) {
          low = d;
          arg = static_cast<int32_t>(j);
        }
      }
      best[begin + i] = arg;
      dist[begin + i] = (x.row(begin + i) - centers.row(arg)).squaredNorm();
    }
  }
}

// Index drawn with probability proportional to weights (none positive: uniform).
int64_t WeightedPick(const std::vector<double>& weights, std::mt19937_64& rng) {
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  const int64_t n = static_cast<int64_t>(weights.size());
  if (!(total > 0)) return std::min<int64_t>(n - 1, static_cast<int64_t>(Uniform(rng) * n));
  double r = Uniform(rng) * total;
  for (int64_t i = 0; i < n; ++i) {
    r -= weights[static_cast<size_t>(i)];
    if (r < 0 && weights[static_cast<size_t>(i)] > 0) return i;
  }
  for (int64_t i = n - 1; i >= 0; --i) {
    if (weights[static_cast<size_t>(i)] > 0) return i;
  }
  return n - 1;
}

// k distinct rows of points, drawn with probability proportional to weight.
RowMatrix RandomSeeds(const RowMatrix& points, std::vector<double> weights, int64_t k,
                      std::mt19937_64& rng) {
  RowMatrix centers(k, points.cols());
  std::vector<char> taken(weights.size(), 0);
  for (int64_t c = 0; c < k; ++c) {
    int64_t i = WeightedPick(weights, rng);
    if (taken[static_cast<size_t>(i)]) {  // every weight left is zero: take any free row
      i = std::find(taken.begin(), taken.end(), 0) - taken.begin();
      if (i >= static_cast<int64_t>(taken.size())) i = 0;
    }
    taken[static_cast<size_t>(i)] = 1;
    weights[static_cast<size_t>(i)] = 0;
    centers.row(c) = points.row(i);
  }
  return centers;
}

// k-means++ (Arthur & Vassilvitskii): the first center by weight, each next one with
// probability proportional to weight * squared distance to the nearest chosen center.
RowMatrix KmeansPlusPlus(const RowMatrix& points, const std::vector<double>& weights, int64_t k,
                         std::mt19937_64& rng, int threads) {
  const int64_t n = points.rows();
  RowMatrix centers(k, points.cols());
  std::vector<double> nearest(static_cast<size_t>(n), std::numeric_limits<double>::infinity());
  std::vector<double> mass(static_cast<size_t>(n));
  int64_t pick = WeightedPick(weights, rng);
  for (int64_t c = 0; c < k; ++c) {
    centers.row(c) = points.row(pick);
    if (c + 1 == k) break;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && n > 4096)
    for (int64_t i = 0; i < n; ++i) {
      const double d = (points.row(i) - centers.row(c)).squaredNorm();
      if (d < nearest[static_cast<size_t>(i)]) nearest[static_cast<size_t>(i)] = d;
      mass[static_cast<size_t>(i)] =
          weights[static_cast<size_t>(i)] * nearest[static_cast<size_t>(i)];
    }
    pick = WeightedPick(mass, rng);
  }
  return centers;
}

// Weighted Lloyd iterations on points, starting from *centers; returns the final loss
// sum(w * squared distance). An emptied cluster is re-seeded at the point that costs most.
double Lloyd(const RowMatrix& points, const std::vector<double>& weights, RowMatrix* centers,
             int64_t max_iter, double tol, int threads, int64_t* iterations) {
  const int64_t n = points.rows();
  const int64_t k = centers->rows();
  std::vector<int32_t> best(static_cast<size_t>(n));
  std::vector<double> dist(static_cast<size_t>(n));
  auto assign = [&] {
    AssignRows(points, *centers, threads, best.data(), dist.data());
    double loss = 0;
    for (int64_t i = 0; i < n; ++i)
      loss += weights[static_cast<size_t>(i)] * dist[static_cast<size_t>(i)];
    return loss;
  };
  double loss = assign();
  *iterations = 0;
  for (int64_t it = 0; it < max_iter; ++it) {
    RowMatrix sums = RowMatrix::Zero(k, points.cols());
    std::vector<double> mass(static_cast<size_t>(k), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const double w = weights[static_cast<size_t>(i)];
      sums.row(best[static_cast<size_t>(i)]) += w * points.row(i);
      mass[static_cast<size_t>(best[static_cast<size_t>(i)])] += w;
    }
    for (int64_t j = 0; j < k; ++j) {
      if (mass[static_cast<size_t>(j)] > 0) {
        centers->row(j) = sums.row(j) / mass[static_cast<size_t>(j)];
        continue;
      }
      int64_t worst = 0;
      double cost = -1;
      for (int64_t i = 0; i < n; ++i) {
        const double c = weights[static_cast<size_t>(i)] * dist[static_cast<size_t>(i)];
        if (c > cost) {
          cost = c;
          worst = i;
        }
      }
      centers->row(j) = points.row(worst);
      dist[static_cast<size_t>(worst)] = 0;
    }
    const double next = assign();
    *iterations = it + 1;
    const double improvement = loss - next;
    loss = next;
    if (improvement <= tol * std::max(loss + improvement, 1e-300)) break;
  }
  return loss;
}

std::vector<int64_t> SampleRows(int64_t n, int64_t m, std::mt19937_64& rng) {
  std::vector<int64_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  for (int64_t i = 0; i < m; ++i) {  // partial Fisher-Yates
    const int64_t j = i + static_cast<int64_t>(Uniform(rng) * static_cast<double>(n - i));
    std::swap(all[static_cast<size_t>(i)], all[static_cast<size_t>(std::min(j, n - 1))]);
  }
  all.resize(static_cast<size_t>(m));
  std::sort(all.begin(), all.end());
  return all;
}

// '["msd"]', "['msd', 'ssd']", '[msd]' ... → the names; nullopt when it is no such list.
std::optional<std::vector<std::string>> ParseNameList(std::string_view text) {
  std::string s(Trim(text));
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  std::vector<std::string> names;
  for (const auto& part : Split(s, ',')) {
    std::string name;
    for (char c : part) {
      if (c != '"' && c != '\'' && c != '\\' && !std::isspace(static_cast<unsigned char>(c))) {
        name += c;
      }
    }
    if (name.empty()) return std::nullopt;
    names.push_back(name);
  }
  if (names.empty()) return std::nullopt;
  return names;
}

// "auto" (→ 0) or a positive integer.
Result<int64_t> AutoOrPositive(HyperparameterReader& reader, const Hyperparameters& values,
                               const std::string& name) {
  auto it = values.find(name);
  if (it != values.end() && ToLower(Trim(it->second)) == "auto") {
    (void)reader.String(name, "auto");
    return int64_t{0};
  }
  auto value = reader.Int(name, 0, 1);
  if (!value.ok()) {
    if (it == values.end()) return value.status();
    return ClientError("Hyperparameter '" + name + "' = '" + it->second +
                       "' must be 'auto' or a positive integer");
  }
  return *value;
}

}  // namespace

Result<KmeansOptions> ParseKmeansHyperparameters(const Hyperparameters& hyperparameters) {
  HyperparameterReader reader(hyperparameters);
  KmeansOptions o;
  NIMBUS_ASSIGN_OR_RETURN(o.k, reader.Int("k", std::nullopt, 1));
  NIMBUS_ASSIGN_OR_RETURN(o.feature_dim, reader.Int("feature_dim", std::nullopt, 1));
  NIMBUS_ASSIGN_OR_RETURN(o.mini_batch_size, reader.Int("mini_batch_size", 5000, 1));
  NIMBUS_ASSIGN_OR_RETURN(o.epochs, reader.Int("epochs", 1, 1));
  NIMBUS_ASSIGN_OR_RETURN(o.init_method,
                          reader.Choice("init_method", "random", {"random", "kmeans++"}));
  NIMBUS_ASSIGN_OR_RETURN(
      o.local_lloyd_init_method,
      reader.Choice("local_lloyd_init_method", "kmeans++", {"random", "kmeans++"}));
  NIMBUS_ASSIGN_OR_RETURN(o.local_lloyd_max_iter, reader.Int("local_lloyd_max_iter", 300, 1));
  NIMBUS_ASSIGN_OR_RETURN(o.local_lloyd_tol, reader.Float("local_lloyd_tol", 1e-4, 0.0, 1.0));
  NIMBUS_ASSIGN_OR_RETURN(o.local_lloyd_num_trials,
                          AutoOrPositive(reader, hyperparameters, "local_lloyd_num_trials"));
  NIMBUS_ASSIGN_OR_RETURN(o.half_life_time_size, reader.Int("half_life_time_size", 0, 0));
  NIMBUS_ASSIGN_OR_RETURN(o.extra_center_factor,
                          AutoOrPositive(reader, hyperparameters, "extra_center_factor"));
  NIMBUS_ASSIGN_OR_RETURN(std::string metrics, reader.String("eval_metrics", "[\"msd\"]"));
  auto names = ParseNameList(metrics);
  bool valid = names.has_value();
  o.eval_msd = o.eval_ssd = false;
  if (valid) {
    for (const auto& name : *names) {
      if (name == "msd") {
        o.eval_msd = true;
      } else if (name == "ssd") {
        o.eval_ssd = true;
      } else {
        valid = false;
      }
    }
  }
  if (!valid) {
    return ClientError("Hyperparameter 'eval_metrics' = '" + metrics +
                       "' must be a JSON list of: msd, ssd (e.g. [\"msd\",\"ssd\"])");
  }
  NIMBUS_ASSIGN_OR_RETURN(bool force_dense, reader.Bool("force_dense", true));
  (void)force_dense;
  NIMBUS_RETURN_IF_ERROR(reader.CheckAllKnown());
  return o;
}

KmeansModel::KmeansModel(int64_t feature_dim, std::vector<float> centers)
    : feature_dim_(feature_dim), centers_(std::move(centers)) {}

Status KmeansModel::Assign(const Dataset& data, int num_threads, std::vector<int32_t>* cluster,
                           std::vector<double>* squared_distance) const {
  NIMBUS_RETURN_IF_ERROR(CheckFeatures(data, feature_dim_, "input"));
  NIMBUS_RETURN_IF_ERROR(CheckFinite(data, "input"));
  const RowMatrix centers =
      Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
          centers_.data(), k(), feature_dim_)
          .cast<double>();
  cluster->assign(static_cast<size_t>(data.rows), 0);
  squared_distance->assign(static_cast<size_t>(data.rows), 0.0);
  std::vector<int64_t> rows;
  RowMatrix x;
  for (int64_t begin = 0; begin < data.rows; begin += kPredictRows) {
    const int64_t m = std::min(kPredictRows, data.rows - begin);
    rows.resize(static_cast<size_t>(m));
    std::iota(rows.begin(), rows.end(), begin);
    Gather(data, rows.data(), m, feature_dim_, &x);
    AssignRows(x, centers, std::max(1, num_threads), cluster->data() + begin,
               squared_distance->data() + begin);
  }
  return Status::Ok();
}

Result<std::vector<Value>> KmeansModel::Predict(const Dataset& batch) {
  std::vector<int32_t> cluster;
  std::vector<double> distance;
  NIMBUS_RETURN_IF_ERROR(Assign(batch, 1, &cluster, &distance));
  std::vector<Value> out;
  out.reserve(cluster.size());
  for (size_t i = 0; i < cluster.size(); ++i) {
    out.push_back(Value::Object({{"closest_cluster", static_cast<double>(cluster[i])},
                                 {"distance_to_cluster", std::sqrt(distance[i])}}));
  }
  return out;
}

Status KmeansModel::Save(const std::string& model_dir) const {
  Value::List rows;
  for (int64_t c = 0; c < k(); ++c) {
    Value::List row;
    row.reserve(static_cast<size_t>(feature_dim_));
    for (int64_t j = 0; j < feature_dim_; ++j) {
      row.emplace_back(static_cast<double>(centers_[static_cast<size_t>(c * feature_dim_ + j)]));
    }
    rows.emplace_back(std::move(row));
  }
  Value doc = Value::Object({{"format", kFormat},
                             {"version", 1},
                             {"feature_dim", feature_dim_},
                             {"k", k()},
                             {"centers", Value(std::move(rows))}});
  return WriteArtifact(model_dir, kModelFile, ToJson(doc));
}

Result<std::unique_ptr<KmeansModel>> KmeansModel::Load(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / kModelFile).string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return ClientError("The model directory has no kmeans artifact (" + path + ")");
  std::stringstream text;
  text << in.rdbuf();
  auto doc = ParseJson(text.str());
  auto invalid = [&](const std::string& why) {
    return ClientError("The kmeans artifact " + path + " is not valid: " + why);
  };
  if (!doc.ok() || !doc->is_map()) return invalid("not a JSON object");
  if (doc->GetString("format") != kFormat) return invalid("format is not " + std::string(kFormat));
  const int64_t dim = doc->GetInt("feature_dim");
  const Value* centers = doc->Find("centers");
  if (dim <= 0 || !centers || !centers->is_list() || centers->list().empty()) {
    return invalid("feature_dim or centers missing");
  }
  std::vector<float> values;
  values.reserve(centers->list().size() * static_cast<size_t>(dim));
  for (const Value& row : centers->list()) {
    if (!row.is_list() || static_cast<int64_t>(row.list().size()) != dim) {
      return invalid("a center does not have feature_dim values");
    }
    for (const Value& v : row.list()) {
      if (!v.is_number()) return invalid("a center value is not a number");
      values.push_back(static_cast<float>(v.AsDouble()));
    }
  }
  return std::make_unique<KmeansModel>(dim, std::move(values));
}

Result<KmeansModel> FitKmeans(const Dataset& train, const KmeansOptions& options,
                              const std::function<void(const std::string&)>& log) {
  const int64_t dim = options.feature_dim;
  const int64_t k = options.k;
  if (k < 1 || dim < 1) return ClientError("k and feature_dim must be positive");
  NIMBUS_RETURN_IF_ERROR(CheckFeatures(train, dim, "train channel"));
  const int64_t n = train.rows;
  if (n == 0) return ClientError("The train channel has no records");
  NIMBUS_RETURN_IF_ERROR(CheckFinite(train, "train channel"));
  if (n < k) {
    return ClientError("Hyperparameter 'k' = '" + std::to_string(k) +
                       "' exceeds the number of training records (" + std::to_string(n) + ")");
  }
  const int threads = std::max(1, options.num_threads);
  const int64_t factor =
      options.extra_center_factor > 0
          ? options.extra_center_factor
          : std::clamp<int64_t>(static_cast<int64_t>(std::ceil(std::log(static_cast<double>(n)))),
                                2, 10);
  const int64_t num_centers = factor > n / k ? n : k * factor;
  const int64_t batch = std::min(options.mini_batch_size, n);
  std::mt19937_64 rng(options.seed);

  // 1. Seed the K centers from a uniform sample of (at least) one mini-batch.
  const int64_t sample_size = std::min(n, std::max(batch, num_centers));
  RowMatrix sample;
  {
    const std::vector<int64_t> rows = SampleRows(n, sample_size, rng);
    Gather(train, rows.data(), sample_size, dim, &sample);
  }
  const std::vector<double> unit(static_cast<size_t>(sample_size), 1.0);
  RowMatrix centers = options.init_method == "kmeans++"
                          ? KmeansPlusPlus(sample, unit, num_centers, rng, threads)
                          : RandomSeeds(sample, unit, num_centers, rng);
  sample.resize(0, 0);
  Emit(log, "Seeded " + std::to_string(num_centers) + " centers (k=" + std::to_string(k) +
                " x extra_center_factor=" + std::to_string(factor) + ") with init_method=" +
                options.init_method + " from " + std::to_string(sample_size) + " records");

  // 2. Mini-batch passes: each center is the (decayed) running mean of what it absorbed.
  std::vector<double> mass(static_cast<size_t>(num_centers), 0.0);
  const double decay =
      options.half_life_time_size > 0 ? std::pow(0.5, 1.0 / options.half_life_time_size) : 1.0;
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::vector<int32_t> best(static_cast<size_t>(batch));
  std::vector<double> dist(static_cast<size_t>(batch));
  RowMatrixF x;
  for (int64_t epoch = 0; epoch < options.epochs; ++epoch) {
    for (int64_t i = n - 1; i > 0; --i) {
      std::swap(order[static_cast<size_t>(i)],
                order[static_cast<size_t>(Uniform(rng) * static_cast<double>(i + 1))]);
    }
    double loss = 0;
    for (int64_t begin = 0; begin < n; begin += batch) {
      const int64_t m = std::min(batch, n - begin);
      Gather(train, order.data() + begin, m, dim, &x);
      const RowMatrixF centers_f = centers.cast<float>();
      AssignRows(x, centers_f, threads, best.data(), dist.data());
      RowMatrix sums = RowMatrix::Zero(num_centers, dim);
      std::vector<double> counts(static_cast<size_t>(num_centers), 0.0);
      for (int64_t i = 0; i < m; ++i) {
        sums.row(best[static_cast<size_t>(i)]) += x.row(i).cast<double>();
        counts[static_cast<size_t>(best[static_cast<size_t>(i)])] += 1;
        loss += dist[static_cast<size_t>(i)];
      }
      const double batch_decay = decay == 1.0 ? 1.0 : std::pow(decay, static_cast<double>(m));
      for (int64_t j = 0; j < num_centers; ++j) {
        double& w = mass[static_cast<size_t>(j)];
        const double c = counts[static_cast<size_t>(j)];
        w *= batch_decay;
        if (c > 0) {
          centers.row(j) = (w * centers.row(j) + sums.row(j)) / (w + c);
          w += c;
        }
      }
    }
    Emit(log, "#quality_metric: host=algo-1, epoch=" + std::to_string(epoch) +
                  ", train msd <loss>=" + Fmt(loss / static_cast<double>(n)));
    Emit(log,
         "#progress_metric: host=algo-1, completed " +
             Fmt(100.0 * static_cast<double>(epoch + 1) / static_cast<double>(options.epochs)) +
             " % of epochs");
  }

  // 3. Local Lloyd on the weighted centers: K → k. Centers that absorbed nothing take part
  // only when fewer than k others did (e.g. duplicate records), with a negligible weight.
  std::vector<int64_t> keep;
  for (int64_t j = 0; j < num_centers; ++j) {
    if (mass[static_cast<size_t>(j)] > 0) keep.push_back(j);
  }
  const bool all = static_cast<int64_t>(keep.size()) < k;
  if (all) {
    keep.resize(static_cast<size_t>(num_centers));
    std::iota(keep.begin(), keep.end(), 0);
  }
  RowMatrix points(static_cast<int64_t>(keep.size()), dim);
  std::vector<double> weights(keep.size());
  for (size_t i = 0; i < keep.size(); ++i) {
    points.row(static_cast<int64_t>(i)) = centers.row(keep[i]);
    weights[i] = std::max(mass[static_cast<size_t>(keep[i])], all ? 1e-9 : 0.0);
  }
  const int64_t trials =
      options.local_lloyd_num_trials > 0 ? options.local_lloyd_num_trials : kAutoLloydTrials;
  RowMatrix final_centers;
  double final_loss = std::numeric_limits<double>::infinity();
  double total_mass = std::accumulate(weights.begin(), weights.end(), 0.0);
  for (int64_t t = 0; t < trials; ++t) {
    RowMatrix trial = options.local_lloyd_init_method == "kmeans++"
                          ? KmeansPlusPlus(points, weights, k, rng, threads)
                          : RandomSeeds(points, weights, k, rng);
    int64_t iterations = 0;
    const double loss = Lloyd(points, weights, &trial, options.local_lloyd_max_iter,
                              options.local_lloyd_tol, threads, &iterations);
    Emit(log, "Local Lloyd trial " + std::to_string(t + 1) + "/" + std::to_string(trials) + ": " +
                  std::to_string(iterations) +
                  " iterations, weighted msd=" + Fmt(loss / std::max(total_mass, 1e-300)));
    if (loss < final_loss) {
      final_loss = loss;
      final_centers = std::move(trial);
    }
  }
  Emit(log, "Reduced " + std::to_string(points.rows()) + " centers to k=" + std::to_string(k) +
                " with local Lloyd (init=" + options.local_lloyd_init_method + ")");
  std::vector<float> values(static_cast<size_t>(k * dim));
  for (int64_t c = 0; c < k; ++c) {
    for (int64_t j = 0; j < dim; ++j) {
      values[static_cast<size_t>(c * dim + j)] = static_cast<float>(final_centers(c, j));
    }
  }
  return KmeansModel(dim, std::move(values));
}

Result<KmeansScore> ScoreKmeans(const KmeansModel& model, const Dataset& data, int num_threads) {
  std::vector<int32_t> cluster;
  std::vector<double> distance;
  NIMBUS_RETURN_IF_ERROR(model.Assign(data, num_threads, &cluster, &distance));
  KmeansScore score;
  for (double d : distance) score.ssd += d;
  score.msd = distance.empty() ? 0.0 : score.ssd / static_cast<double>(distance.size());
  return score;
}

}  // namespace nimbus::ml
