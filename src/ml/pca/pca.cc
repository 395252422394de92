#include "ml/pca/pca.h"

// Eigen's own threading stays off: the passes below split the rows themselves (OpenMP), so
// the thread count is the job's and the summation order is fixed for a given count.
#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <numeric>
#include <random>
#include <sstream>

#include "core/json.h"

namespace nimbus::ml {
namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// The passes multiply the records in single precision, as they are stored (twice the SIMD
// lanes of double, and dense records need no copy); each chunk's product is added to
// double-precision sums.
using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Log = std::function<void(const std::string&)>;

constexpr char kModelFile[] = "pca-model.json";
constexpr char kFormat[] = "nimbus-pca";
constexpr int64_t kChunkRows = 4096;  // rows per parallel task within a block
// Rows per block of a pass (one parallel region each). The sums do not depend on it; the
// mini_batch_size hyperparameter sets a smaller block, to bound memory, only for sparse
// records, which are densified a block at a time.
constexpr int64_t kPassRows = 32768;
constexpr int64_t kPredictRows = 4096;  // rows densified at a time outside training
constexpr int kPowerIterations = 2;     // randomized mode: passes that sharpen the sketch
// Randomized mode forms the scatter matrix (one pass) up to this dimension, where it is cheaper.
constexpr int64_t kMaxScatterDim = 2048;
constexpr int64_t kShiftRows = 256;  // leading records whose mean shifts the float products
constexpr int64_t kPartialBudgetBytes = int64_t{2} << 30;  // per-thread partial sums, in all

void Emit(const Log& log, const std::string& line) {
  if (log) log(line);
}

std::string Fmt(double v) {
  std::ostringstream out;
  out << std::setprecision(7) << v;
  return out.str();
}

// Records [begin, begin + m) of data as an m x dim matrix (absent sparse features are zero).
template <typename Matrix>
void Gather(const Dataset& data, int64_t begin, int64_t m, int64_t dim, Matrix* out) {
  out->setZero(m, dim);
  for (int64_t i = 0; i < m; ++i) {
    const size_t r = static_cast<size_t>(begin + i);
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

// One pass over the training records in mini-batches. Each thread folds its share of every
// batch (chunks t, t + threads, ...) into partial[t] with fold(chunk, &partial); the partials
// are summed in thread order at the end, so the result depends on the thread count only.
template <typename Fold>
Eigen::MatrixXd Pass(const Dataset& data, int64_t dim, int64_t batch, int threads, int64_t rows,
                     int64_t cols, Fold fold) {
  // Each thread holds a rows x cols partial: fewer threads when they would not fit the budget.
  const int64_t partial_bytes = std::max<int64_t>(1, rows * cols * 8);
  threads = static_cast<int>(
      std::clamp<int64_t>(kPartialBudgetBytes / partial_bytes, 1, std::max(threads, 1)));
  std::vector<Eigen::MatrixXd> partial(static_cast<size_t>(threads),
                                       Eigen::MatrixXd::Zero(rows, cols));
  const bool dense = !data.sparse && data.cols == dim;
  if (dense) batch = std::max(batch, kPassRows);
  RowMatrixF gathered;
  for (int64_t begin = 0; begin < data.rows; begin += batch) {
    const int64_t m = std::min(batch, data.rows - begin);
    if (!dense) Gather(data, begin, m, dim, &gathered);
    const Eigen::Map<const RowMatrixF> x(dense ? data.values.data() + begin * dim : gathered.data(),
                                         m, dim);
    const int64_t chunks = (m + kChunkRows - 1) / kChunkRows;
#pragma omp parallel num_threads(threads) if (threads > 1 && chunks > 1)
    {
#ifdef _OPENMP
      const int t = omp_get_thread_num();
      const int nt = omp_get_num_threads();
#else
      const int t = 0;
      const int nt = 1;
#endif
      for (int64_t c = t; c < chunks; c += nt) {
        const int64_t first = c * kChunkRows;
        fold(x.middleRows(first, std::min(kChunkRows, m - first)),
             &partial[static_cast<size_t>(t)]);
      }
    }
  }
  for (size_t t = 1; t < partial.size(); ++t) partial[0] += partial[t];
  return std::move(partial[0]);
}

// The mean of the leading records (zero without subtract_mean): the records are shifted by it
// before the single-precision products of a pass, which then keep the small variances of
// features with a large mean.
Eigen::VectorXd MeanShift(const Dataset& data, int64_t dim, bool subtract_mean) {
  if (!subtract_mean || data.rows == 0) return Eigen::VectorXd::Zero(dim);
  RowMatrix head;
  Gather(data, 0, std::min<int64_t>(data.rows, kShiftRows), dim, &head);
  return head.colwise().mean().transpose();
}

// The scatter matrix of the records about their mean (subtract_mean; else X^T X) and that
// mean (else zero), in one pass of chunk products of the shifted records in Scalar precision.
template <typename Scalar>
std::pair<Eigen::MatrixXd, Eigen::VectorXd> CenteredScatter(const Dataset& data, int64_t dim,
                                                            int64_t batch, int threads,
                                                            bool subtract_mean) {
  using Rows = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::VectorXd shift = MeanShift(data, dim, subtract_mean);
  const Eigen::Matrix<Scalar, 1, Eigen::Dynamic> shift_s = shift.transpose().cast<Scalar>();
  Eigen::MatrixXd acc =
      Pass(data, dim, batch, threads, dim, dim + 1, [&](const auto& x, Eigen::MatrixXd* a) {
        const Rows xs = x.template cast<Scalar>().rowwise() - shift_s;
        a->leftCols(dim) += (xs.transpose() * xs).template cast<double>();
        a->col(dim) += xs.colwise().sum().transpose().template cast<double>();
      });
  const auto n = static_cast<double>(data.rows);
  Eigen::MatrixXd scatter = acc.leftCols(dim);
  Eigen::VectorXd sum = acc.col(dim);  // of the shifted records
  if (subtract_mean) scatter -= sum * sum.transpose() / n;
  scatter = 0.5 * (scatter + scatter.transpose());
  return {std::move(scatter), subtract_mean ? Eigen::VectorXd(shift + sum / n) : shift};
}

// Orthonormal basis of the columns of y (thin Householder QR).
Eigen::MatrixXd Orthonormalize(const Eigen::MatrixXd& y) {
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(y);
  return qr.householderQ() * Eigen::MatrixXd::Identity(y.rows(), y.cols());
}

using Operator = std::function<Eigen::MatrixXd(const Eigen::MatrixXd&)>;

// The randomized subspace iteration on the centered scatter matrix, given as `apply` (its
// product with a matrix) and as its product with the Gaussian sketch (`range`): the range's
// basis, kPowerIterations power steps, then a Rayleigh-Ritz step. `step(i)` follows each of
// the kPowerIterations + 2 products with the scatter matrix.
void SubspaceIteration(const Operator& apply, const Eigen::MatrixXd& range,
                       const std::function<void(int)>& step, Eigen::VectorXd* eigenvalues,
                       Eigen::MatrixXd* directions) {
  Eigen::MatrixXd q = Orthonormalize(range);
  step(1);
  for (int it = 0; it < kPowerIterations; ++it) {
    q = Orthonormalize(apply(q));
    step(it + 2);
  }
  Eigen::MatrixXd t = q.transpose() * apply(q);
  step(kPowerIterations + 2);
  t = 0.5 * (t + t.transpose());
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(t);
  *eigenvalues = solver.eigenvalues();
  *directions = q * solver.eigenvectors();
}

// The model of the top num_components eigenpairs (eigenvalues ascending, directions as
// columns) of the centered scatter matrix.
PcaModel Components(const Eigen::VectorXd& eigenvalues, const Eigen::MatrixXd& directions,
                    const Eigen::VectorXd& mean, double total_variance, int64_t n,
                    const PcaOptions& options, const Log& log) {
  const int64_t dim = options.feature_dim;
  const int64_t nc = options.num_components;
  const int64_t have = eigenvalues.size();
  std::vector<float> s(static_cast<size_t>(nc));
  std::vector<float> v(static_cast<size_t>(dim * nc));
  double kept = 0;
  for (int64_t j = 0; j < nc; ++j) {
    const int64_t src = have - nc + j;
    const double lambda = std::max(0.0, eigenvalues[src]);
    kept += lambda;
    s[static_cast<size_t>(j)] = static_cast<float>(std::sqrt(lambda));
    Eigen::VectorXd u = directions.col(src).normalized();
    Eigen::Index top = 0;
    u.cwiseAbs().maxCoeff(&top);
    if (u[top] < 0) u = -u;
    for (int64_t i = 0; i < dim; ++i) v[static_cast<size_t>(i * nc + j)] = static_cast<float>(u[i]);
  }
  std::vector<float> mean_values(static_cast<size_t>(dim));
  for (int64_t i = 0; i < dim; ++i)
    mean_values[static_cast<size_t>(i)] = static_cast<float>(mean[i]);
  Emit(log, "Computed " + std::to_string(nc) +
                " principal components (algorithm_mode=" + options.algorithm_mode + ") from " +
                std::to_string(n) + " records; explained variance ratio " +
                Fmt(total_variance > 0 ? kept / total_variance : 0.0));
  return PcaModel(dim, options.subtract_mean, std::move(mean_values), std::move(s), std::move(v));
}

Value FloatList(const std::vector<float>& values, size_t begin, size_t count) {
  Value::List list;
  list.reserve(count);
  for (size_t i = 0; i < count; ++i) list.emplace_back(static_cast<double>(values[begin + i]));
  return Value(std::move(list));
}

bool ReadFloats(const Value* list, size_t expected, std::vector<float>* out) {
  if (!list || !list->is_list() || list->list().size() != expected) return false;
  for (const Value& v : list->list()) {
    if (!v.is_number()) return false;
    out->push_back(static_cast<float>(v.AsDouble()));
  }
  return true;
}

}  // namespace

Result<PcaOptions> ParsePcaHyperparameters(const Hyperparameters& hyperparameters) {
  HyperparameterReader reader(hyperparameters);
  PcaOptions o;
  NIMBUS_ASSIGN_OR_RETURN(o.feature_dim, reader.Int("feature_dim", std::nullopt, 1));
  NIMBUS_ASSIGN_OR_RETURN(o.mini_batch_size, reader.Int("mini_batch_size", std::nullopt, 1));
  NIMBUS_ASSIGN_OR_RETURN(o.num_components, reader.Int("num_components", std::nullopt, 1));
  NIMBUS_ASSIGN_OR_RETURN(o.algorithm_mode,
                          reader.Choice("algorithm_mode", "regular", {"regular", "randomized"}));
  NIMBUS_ASSIGN_OR_RETURN(o.subtract_mean, reader.Bool("subtract_mean", true));
  NIMBUS_ASSIGN_OR_RETURN(o.extra_components, reader.Int("extra_components", -1, -1));
  NIMBUS_RETURN_IF_ERROR(reader.CheckAllKnown());
  if (o.num_components > o.feature_dim) {
    return ClientError("Hyperparameter 'num_components' = '" + std::to_string(o.num_components) +
                       "' must not exceed feature_dim (" + std::to_string(o.feature_dim) + ")");
  }
  return o;
}

PcaModel::PcaModel(int64_t feature_dim, bool subtract_mean, std::vector<float> mean,
                   std::vector<float> singular_values, std::vector<float> components)
    : feature_dim_(feature_dim),
      subtract_mean_(subtract_mean),
      mean_(std::move(mean)),
      singular_values_(std::move(singular_values)),
      components_(std::move(components)) {
  if (mean_.size() != static_cast<size_t>(feature_dim_)) {
    mean_.assign(static_cast<size_t>(feature_dim_), 0.0f);
  }
}

Result<std::vector<float>> PcaModel::Project(const Dataset& data) const {
  NIMBUS_RETURN_IF_ERROR(CheckFeatures(data, feature_dim_, "input"));
  NIMBUS_RETURN_IF_ERROR(CheckFinite(data, "input"));
  const int64_t nc = num_components();
  const Eigen::MatrixXd v =
      Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
          components_.data(), feature_dim_, nc)
          .cast<double>();
  const Eigen::RowVectorXd mean =
      Eigen::Map<const Eigen::RowVectorXf>(mean_.data(), feature_dim_).cast<double>();
  std::vector<float> out(static_cast<size_t>(data.rows * nc));
  RowMatrix x;
  for (int64_t begin = 0; begin < data.rows; begin += kPredictRows) {
    const int64_t m = std::min(kPredictRows, data.rows - begin);
    Gather(data, begin, m, feature_dim_, &x);
    if (subtract_mean_) x.rowwise() -= mean;
    const RowMatrix p = x * v;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < nc; ++j) {
        out[static_cast<size_t>((begin + i) * nc + j)] = static_cast<float>(p(i, j));
      }
    }
  }
  return out;
}

Result<std::vector<Value>> PcaModel::Predict(const Dataset& batch) {
  NIMBUS_ASSIGN_OR_RETURN(std::vector<float> projection, Project(batch));
  const size_t nc = static_cast<size_t>(num_components());
  std::vector<Value> out;
  out.reserve(static_cast<size_t>(batch.rows));
  for (size_t r = 0; r < static_cast<size_t>(batch.rows); ++r) {
    out.push_back(Value::Object({{"projection", FloatList(projection, r * nc, nc)}}));
  }
  return out;
}

Status PcaModel::Save(const std::string& model_dir) const {
  const size_t nc = static_cast<size_t>(num_components());
  Value::List v;
  for (size_t r = 0; r < static_cast<size_t>(feature_dim_); ++r) {
    v.push_back(FloatList(components_, r * nc, nc));
  }
  Value doc = Value::Object({{"format", kFormat},
                             {"version", 1},
                             {"feature_dim", feature_dim_},
                             {"num_components", num_components()},
                             {"subtract_mean", subtract_mean_},
                             {"mean", FloatList(mean_, 0, mean_.size())},
                             {"s", FloatList(singular_values_, 0, nc)},
                             {"v", Value(std::move(v))}});
  return WriteArtifact(model_dir, kModelFile, ToJson(doc));
}

Result<std::unique_ptr<PcaModel>> PcaModel::Load(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / kModelFile).string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return ClientError("The model directory has no pca artifact (" + path + ")");
  std::stringstream text;
  text << in.rdbuf();
  auto doc = ParseJson(text.str());
  auto invalid = [&](const std::string& why) {
    return ClientError("The pca artifact " + path + " is not valid: " + why);
  };
  if (!doc.ok() || !doc->is_map()) return invalid("not a JSON object");
  if (doc->GetString("format") != kFormat) return invalid("format is not " + std::string(kFormat));
  const int64_t dim = doc->GetInt("feature_dim");
  const int64_t nc = doc->GetInt("num_components");
  if (dim <= 0 || nc <= 0 || nc > dim) return invalid("feature_dim or num_components missing");
  std::vector<float> mean, s, v;
  if (!ReadFloats(doc->Find("mean"), static_cast<size_t>(dim), &mean)) {
    return invalid("mean does not have feature_dim numbers");
  }
  if (!ReadFloats(doc->Find("s"), static_cast<size_t>(nc), &s)) {
    return invalid("s does not have num_components numbers");
  }
  const Value* rows = doc->Find("v");
  if (!rows || !rows->is_list() || static_cast<int64_t>(rows->list().size()) != dim) {
    return invalid("v does not have feature_dim rows");
  }
  for (const Value& row : rows->list()) {
    if (!ReadFloats(&row, static_cast<size_t>(nc), &v)) {
      return invalid("a row of v does not have num_components numbers");
    }
  }
  return std::make_unique<PcaModel>(dim, doc->GetBool("subtract_mean", true), std::move(mean),
                                    std::move(s), std::move(v));
}

Result<PcaModel> FitPca(const Dataset& train, const PcaOptions& options,
                        const std::function<void(const std::string&)>& log) {
  const int64_t dim = options.feature_dim;
  const int64_t nc = options.num_components;
  if (dim < 1 || nc < 1 || nc > dim) {
    return ClientError("num_components must be in [1, feature_dim]");
  }
  NIMBUS_RETURN_IF_ERROR(CheckFeatures(train, dim, "train channel"));
  const int64_t n = train.rows;
  if (n == 0) return ClientError("The train channel has no records");
  NIMBUS_RETURN_IF_ERROR(CheckFinite(train, "train channel"));
  const int threads = std::max(1, options.num_threads);
  const int64_t batch = options.mini_batch_size > 0 ? std::min(options.mini_batch_size, n) : n;

  Eigen::VectorXd mean = Eigen::VectorXd::Zero(dim);
  double total_variance = 0;    // trace of the (centered) scatter matrix
  Eigen::VectorXd eigenvalues;  // ascending; the last nc are kept
  Eigen::MatrixXd directions;   // dim x (number of eigenvalues)

  if (options.algorithm_mode == "randomized") {
    const int64_t extra =
        options.extra_components >= 0 ? options.extra_components : std::max<int64_t>(10, nc);
    const int64_t sketch = std::min(dim, nc + extra);
    std::mt19937_64 rng(options.seed);
    std::normal_distribution<double> gauss(0.0, 1.0);
    Eigen::MatrixXd omega(dim, sketch);
    for (int64_t j = 0; j < sketch; ++j) {
      for (int64_t i = 0; i < dim; ++i) omega(i, j) = gauss(rng);
    }
    if (dim <= kMaxScatterDim && dim <= 8 * sketch) {
      // The scatter matrix is small: one pass forming it (n d^2 products) costs less than the
      // iteration's four passes over the records (8 n d sketch), which then run on it.
      auto [scatter, centre] =
          CenteredScatter<float>(train, dim, batch, threads, options.subtract_mean);
      mean = centre;
      total_variance = scatter.trace();
      SubspaceIteration([&](const Eigen::MatrixXd& m) -> Eigen::MatrixXd { return scatter * m; },
                        scatter* omega, [](int) {}, &eigenvalues, &directions);
      Emit(log, "#progress_metric: host=algo-1, randomized iteration (sketch of " +
                    std::to_string(sketch) + " columns) on the " + std::to_string(dim) + "x" +
                    std::to_string(dim) + " scatter matrix of " + std::to_string(n) + " records");
    } else {
      // The first pass also gathers the column sums and the squared norms (as two extra
      // columns), so that the mean correction is applied once it is known. The records are
      // shifted as for CenteredScatter.
      const Eigen::VectorXd shift = MeanShift(train, dim, options.subtract_mean);
      const Eigen::RowVectorXf shift_f = shift.transpose().cast<float>();
      const Eigen::MatrixXf omega_f = omega.cast<float>();
      Eigen::MatrixXd first = Pass(
          train, dim, batch, threads, dim, sketch + 2, [&](const auto& x, Eigen::MatrixXd* acc) {
            const RowMatrixF xs = x.rowwise() - shift_f;
            const Eigen::MatrixXf xo = xs * omega_f;
            acc->leftCols(sketch) += (xs.transpose() * xo).template cast<double>();
            acc->col(sketch) += xs.colwise().sum().transpose().template cast<double>();
            (*acc)(0, sketch + 1) += xs.template cast<double>().squaredNorm();
          });
      const double sum_squares = first(0, sketch + 1);
      const Eigen::VectorXd sum = first.col(sketch);  // of the shifted records
      if (options.subtract_mean) mean = shift + sum / static_cast<double>(n);
      total_variance =
          sum_squares - (options.subtract_mean ? sum.squaredNorm() / static_cast<double>(n) : 0.0);
      // The centered scatter applied to m: Xs^T Xs m - sum (sum^T m) / n, Xs the shifted
      // records.
      auto correct = [&](Eigen::MatrixXd y, const Eigen::MatrixXd& m) {
        if (options.subtract_mean) y -= sum * (sum.transpose() * m) / static_cast<double>(n);
        return y;
      };
      auto apply = [&](const Eigen::MatrixXd& m) {
        const Eigen::MatrixXf m_f = m.cast<float>();
        return correct(Pass(train, dim, batch, threads, dim, m.cols(),
                            [&](const auto& x, Eigen::MatrixXd* acc) {
                              const RowMatrixF xs = x.rowwise() - shift_f;
                              const Eigen::MatrixXf xm = xs * m_f;
                              *acc += (xs.transpose() * xm).template cast<double>();
                            }),
                       m);
      };
      const int passes = kPowerIterations + 2;
      SubspaceIteration(
          apply, correct(first.leftCols(sketch), omega),
          [&](int pass) {
            Emit(log, "#progress_metric: host=algo-1, randomized pass " + std::to_string(pass) +
                          "/" + std::to_string(passes) +
                          (pass == 1 ? " (sketch of " + std::to_string(sketch) + " columns)"
                                     : std::string()));
          },
          &eigenvalues, &directions);
    }
  } else {
    auto [scatter, centre] =
        CenteredScatter<double>(train, dim, batch, threads, options.subtract_mean);
    mean = centre;
    total_variance = scatter.trace();
    Emit(log, "#progress_metric: host=algo-1, accumulated the " + std::to_string(dim) + "x" +
                  std::to_string(dim) + " scatter matrix over " + std::to_string(n) + " records");
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(scatter);
    eigenvalues = solver.eigenvalues();
    directions = solver.eigenvectors();
  }

  return Components(eigenvalues, directions, mean, total_variance, n, options, log);
}

Result<double> PcaReconstructionError(const PcaModel& model, const Dataset& data) {
  NIMBUS_ASSIGN_OR_RETURN(std::vector<float> projection, model.Project(data));
  if (data.rows == 0) return 0.0;
  const int64_t dim = model.feature_dim();
  const int64_t nc = model.num_components();
  double total = 0;
  RowMatrix x;
  for (int64_t begin = 0; begin < data.rows; begin += kPredictRows) {
    const int64_t m = std::min(kPredictRows, data.rows - begin);
    Gather(data, begin, m, dim, &x);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t f = 0; f < dim; ++f) {
        double back = model.subtract_mean() ? model.mean()[static_cast<size_t>(f)] : 0.0;
        for (int64_t j = 0; j < nc; ++j) {
          back += static_cast<double>(projection[static_cast<size_t>((begin + i) * nc + j)]) *
                  model.components()[static_cast<size_t>(f * nc + j)];
        }
        const double diff = x(i, f) - back;
        total += diff * diff;
      }
    }
  }
  return total / static_cast<double>(data.rows);
}

}  // namespace nimbus::ml
