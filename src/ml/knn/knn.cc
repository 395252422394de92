#include "ml/knn/knn.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "core/json.h"
#include "core/strings.h"
#include "ml/dataset_readers.h"
#include "ml/knn/flat_knn.h"

namespace nimbus::ml {
namespace {

constexpr char kIndexFile[] = "knn.faiss";
constexpr char kLabelsFile[] = "knn-labels.bin";
constexpr char kMetaFile[] = "knn-model.json";
// Fixed seeds: the same job on the same data samples the same rows and draws the same
// projection, so results are reproducible (SageMaker's knn exposes no seed).
constexpr uint64_t kSampleSeed = 0x6b6e6e5f73616d70ULL;
constexpr uint64_t kProjectionSeed = 0x6b6e6e5f70726f6aULL;
// Batches of at least this many queries use FlatKnn on a faiss.Flat index (one panel).
constexpr int64_t kFlatBatch = 16;
// The values SageMaker documents for faiss_index_pq_m.
const std::vector<int64_t> kPqM = {1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96};

struct KnnParams {
  int64_t feature_dim = 0;
  int64_t k = 0;
  int64_t sample_size = 0;
  int64_t mini_batch_size = 5000;
  bool classifier = true;
  std::string reduction_type;  // "", "sign" or "fjlt"
  int64_t reduction_target = 0;
  std::string index_type = "faiss.Flat";
  std::string metric = "L2";
  int64_t nlists = 0;  // 0: auto = sqrt(sample_size)
  int64_t pq_m = 0;    // 0: chosen from the dimension
};

std::string Num(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

Result<KnnParams> ParseParams(const Hyperparameters& hp) {
  HyperparameterReader r(hp);
  KnnParams p;
  NIMBUS_ASSIGN_OR_RETURN(p.feature_dim, r.Int("feature_dim", std::nullopt, 1));
  NIMBUS_ASSIGN_OR_RETURN(p.k, r.Int("k", std::nullopt, 1));
  NIMBUS_ASSIGN_OR_RETURN(std::string type,
                          r.Choice("predictor_type", std::nullopt, {"classifier", "regressor"}));
  p.classifier = type == "classifier";
  NIMBUS_ASSIGN_OR_RETURN(p.sample_size, r.Int("sample_size", std::nullopt, 1));
  NIMBUS_ASSIGN_OR_RETURN(p.mini_batch_size, r.Int("mini_batch_size", 5000, 1));
  NIMBUS_ASSIGN_OR_RETURN(p.reduction_type,
                          r.Choice("dimension_reduction_type", std::string(), {"sign", "fjlt"}));
  if (!p.reduction_type.empty()) {
    NIMBUS_ASSIGN_OR_RETURN(p.reduction_target, r.Int("dimension_reduction_target", std::nullopt, 1,
                                                      std::max<int64_t>(1, p.feature_dim - 1)));
    if (p.reduction_target >= p.feature_dim) {
      return ClientError("Hyperparameter 'dimension_reduction_target' = '" +
                         hp.at("dimension_reduction_target") + "' must be less than feature_dim (" +
                         std::to_string(p.feature_dim) + ")");
    }
  } else if (r.Has("dimension_reduction_target")) {
    return ClientError(
        "Hyperparameter 'dimension_reduction_target' is only valid with "
        "'dimension_reduction_type' (sign or fjlt)");
  }
  NIMBUS_ASSIGN_OR_RETURN(p.index_type, r.Choice("index_type", std::string("faiss.Flat"),
                                                 {"faiss.Flat", "faiss.IVFFlat", "faiss.IVFPQ"}));
  NIMBUS_ASSIGN_OR_RETURN(
      p.metric, r.Choice("index_metric", std::string("L2"), {"L2", "INNER_PRODUCT", "COSINE"}));
  if (p.index_type == "faiss.IVFPQ" && p.metric != "L2") {
    return ClientError("Hyperparameter 'index_metric' = '" + p.metric +
                       "' is not supported with index_type faiss.IVFPQ: use L2");
  }
  NIMBUS_ASSIGN_OR_RETURN(std::string nlists,
                          r.String("faiss_index_ivf_nlists", std::string("auto")));
  if (nlists != "auto") {
    auto parsed = ParseInt(Trim(nlists));
    if (!parsed || *parsed < 1) {
      return ClientError("Hyperparameter 'faiss_index_ivf_nlists' = '" + nlists +
                         "' must be 'auto' or a positive integer");
    }
    p.nlists = *parsed;
  }
  if (r.Has("faiss_index_pq_m")) {
    NIMBUS_ASSIGN_OR_RETURN(p.pq_m, r.Int("faiss_index_pq_m", std::nullopt, 1));
    if (std::find(kPqM.begin(), kPqM.end(), p.pq_m) == kPqM.end()) {
      std::string list;
      for (int64_t m : kPqM) list += (list.empty() ? "" : ", ") + std::to_string(m);
      return ClientError("Hyperparameter 'faiss_index_pq_m' = '" + hp.at("faiss_index_pq_m") +
                         "' must be one of: " + list);
    }
  }
  NIMBUS_RETURN_IF_ERROR(r.CheckAllKnown());
  return p;
}

// Runs a faiss call, turning its exceptions into a Status (faiss reports every failure,
// bad input included, as a FaissException).
template <typename F>
Status Faiss(const std::string& what, F&& f) {
  try {
    f();
    return Status::Ok();
  } catch (const faiss::FaissException& e) {
    return Status::Internal(what + ": " + std::string(e.what()).c_str());
  } catch (const std::exception& e) {
    return Status::Internal(what + ": " + e.what());
  }
}

// Rows `rows` of data as a dense row-major matrix of `dim` columns.
std::vector<float> DenseRows(const Dataset& data, const std::vector<int64_t>& rows, int64_t dim) {
  std::vector<float> out(rows.size() * static_cast<size_t>(dim), 0.0f);
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t r = rows[i];
    float* dst = out.data() + i * static_cast<size_t>(dim);
    if (data.sparse) {
      for (int64_t e = data.indptr[static_cast<size_t>(r)];
           e < data.indptr[static_cast<size_t>(r) + 1]; ++e) {
        int64_t c = data.indices[static_cast<size_t>(e)];
        if (c < dim) dst[c] = data.values[static_cast<size_t>(e)];
      }
    } else {
      std::copy_n(data.values.data() + r * data.cols, std::min(dim, data.cols), dst);
    }
  }
  return out;
}

std::vector<int64_t> AllRows(int64_t n) {
  std::vector<int64_t> rows(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) rows[static_cast<size_t>(i)] = i;
  return rows;
}

// Algorithm R: a uniform sample of `size` of `n` row numbers, in ascending order.
std::vector<int64_t> ReservoirSample(int64_t n, int64_t size) {
  if (n <= size) return AllRows(n);
  std::vector<int64_t> reservoir = AllRows(size);
  std::mt19937_64 rng(kSampleSeed);
  for (int64_t i = size; i < n; ++i) {
    std::uniform_int_distribution<int64_t> pick(0, i);
    int64_t j = pick(rng);
    if (j < size) reservoir[static_cast<size_t>(j)] = i;
  }
  std::sort(reservoir.begin(), reservoir.end());
  return reservoir;
}

// The dimension reduction as a faiss LinearTransform (d_out x d_in matrix A, y = A x).
// sign: i.i.d. ±1/sqrt(t) entries (a Johnson-Lindenstrauss random projection).
// fjlt: sqrt(p/t) · S · H · D restricted to the first d columns, where D flips signs at random,
// H is the normalised Walsh-Hadamard matrix of size p (the power of two ≥ d) and S keeps t
// distinct rows at random; entry (i, j) is ±1/sqrt(t) · (-1)^popcount(row_i & j) · D_j.
faiss::LinearTransform* MakeReduction(const std::string& type, int d, int t) {
  auto* lt = new faiss::LinearTransform(d, t, false);
  lt->A.resize(static_cast<size_t>(d) * static_cast<size_t>(t));
  std::mt19937_64 rng(kProjectionSeed);
  const float scale = 1.0f / std::sqrt(static_cast<float>(t));
  if (type == "sign") {
    std::bernoulli_distribution coin(0.5);
    for (auto& a : lt->A) a = coin(rng) ? scale : -scale;
  } else {
    uint64_t p = std::bit_ceil(static_cast<uint64_t>(std::max(d, t)));
    std::bernoulli_distribution coin(0.5);
    std::vector<float> signs(static_cast<size_t>(d));
    for (auto& s : signs) s = coin(rng) ? 1.0f : -1.0f;
    std::vector<uint64_t> all(p);
    for (uint64_t i = 0; i < p; ++i) all[i] = i;
    std::shuffle(all.begin(), all.end(), rng);
    for (int i = 0; i < t; ++i) {
      uint64_t row = all[static_cast<size_t>(i)];
      for (int j = 0; j < d; ++j) {
        float h = (std::popcount(row & static_cast<uint64_t>(j)) % 2) ? -1.0f : 1.0f;
        lt->A[static_cast<size_t>(i) * d + j] = scale * h * signs[static_cast<size_t>(j)];
      }
    }
  }
  lt->is_trained = true;
  return lt;
}

Status WriteLabels(const std::string& path, const std::vector<float>& labels) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  static_assert(std::endian::native == std::endian::little, "labels are stored little-endian");
  out.write(reinterpret_cast<const char*>(labels.data()),
            static_cast<std::streamsize>(labels.size() * sizeof(float)));
  out.close();
  if (!out) return Status::Internal("cannot write " + path);
  return Status::Ok();
}

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::Internal("cannot write " + path);
  return Status::Ok();
}

Result<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ClientError("k-NN model file " + path + " is missing");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

faiss::IndexIVF* FindIvf(faiss::Index* index) {
  if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(index)) index = pt->index;
  return dynamic_cast<faiss::IndexIVF*>(index);
}

}  // namespace

struct KnnModel::Impl {
  std::unique_ptr<faiss::Index> index;
  std::vector<float> labels;  // by faiss id
  bool classifier = true;
  int k = 1;
  int64_t feature_dim = 0;
  // A faiss.Flat index's exact search of batches (flat_knn.h): set by Prepare, over the
  // vectors of the IndexFlat (after the pre-transforms, if any, which `pre` applies).
  std::unique_ptr<FlatKnn> flat;
  const faiss::IndexPreTransform* pre = nullptr;

  // Called by KnnModel's constructor, once the index is complete.
  void Prepare() {
    auto* pt = dynamic_cast<faiss::IndexPreTransform*>(index.get());
    const auto* base =
        dynamic_cast<const faiss::IndexFlat*>(pt != nullptr ? pt->index : index.get());
    if (base == nullptr) return;
    pre = pt;
    flat = std::make_unique<FlatKnn>(base->get_xb(), base->ntotal, base->d,
                                     base->metric_type == faiss::METRIC_L2
                                         ? FlatKnn::Metric::kL2
                                         : FlatKnn::Metric::kInnerProduct);
  }

  // Searches the k neighbours of each row; ids of -1 mark missing neighbours.
  Status Search(const Dataset& batch, std::vector<float>* distances,
                std::vector<faiss::Index::idx_t>* ids) const {
    // Sparse records (libsvm, RecordIO) may stop short of the last feature: zeros follow.
    if (batch.sparse ? batch.cols > feature_dim : batch.cols != feature_dim) {
      return ClientError("The k-NN model expects " + std::to_string(feature_dim) +
                         " features per record, got " + std::to_string(batch.cols));
    }
    const int64_t n = batch.rows;
    std::vector<float> x = DenseRows(batch, AllRows(n), feature_dim);
    for (float v : x) {
      if (!std::isfinite(v)) return ClientError("Records contain a NaN or infinite feature value");
    }
    distances->assign(static_cast<size_t>(n * k), 0.0f);
    ids->assign(static_cast<size_t>(n * k), -1);
    if (n == 0) return Status::Ok();
    // Batches of a panel or more take the fused search; faiss's own per-query loop is the
    // faster for a handful of queries (real-time requests).
    if (flat != nullptr && n >= kFlatBatch) {
      return Faiss("k-NN search", [&] {
        std::unique_ptr<const float[]> transformed;
        const float* xt = x.data();
        if (pre != nullptr) {
          xt = pre->apply_chain(n, x.data());
          if (xt != x.data()) transformed.reset(xt);
        }
        flat->Search(xt, n, k, distances->data(), ids->data());
      });
    }
    NIMBUS_RETURN_IF_ERROR(Faiss(
        "k-NN search", [&] { index->search(n, x.data(), k, distances->data(), ids->data()); }));
    // An IVF search only visits nprobe lists, which can hold fewer than k points: search
    // those rows again over every list, so each record gets its k neighbours.
    faiss::IndexIVF* ivf = FindIvf(index.get());
    if (ivf == nullptr) return Status::Ok();
    std::vector<int64_t> short_rows;
    for (int64_t r = 0; r < n; ++r) {
      if ((*ids)[static_cast<size_t>(r * k + k - 1)] < 0) short_rows.push_back(r);
    }
    if (short_rows.empty()) return Status::Ok();
    std::vector<float> xs = DenseRows(batch, short_rows, feature_dim);
    const auto m = static_cast<int64_t>(short_rows.size());
    std::vector<float> d2(static_cast<size_t>(m * k));
    std::vector<faiss::Index::idx_t> i2(static_cast<size_t>(m * k));
    faiss::SearchParametersIVF ivf_params;
    ivf_params.nprobe = ivf->nlist;
    faiss::SearchParametersPreTransform pt_params;
    pt_params.index_params = &ivf_params;
    const bool pretransformed = dynamic_cast<faiss::IndexPreTransform*>(index.get()) != nullptr;
    NIMBUS_RETURN_IF_ERROR(Faiss("k-NN search", [&] {
      index->search(m, xs.data(), k, d2.data(), i2.data(),
                    pretransformed ? static_cast<faiss::SearchParameters*>(&pt_params)
                                   : static_cast<faiss::SearchParameters*>(&ivf_params));
    }));
    for (int64_t i = 0; i < m; ++i) {
      int64_t r = short_rows[static_cast<size_t>(i)];
      std::copy_n(d2.begin() + i * k, k, distances->begin() + r * k);
      std::copy_n(i2.begin() + i * k, k, ids->begin() + r * k);
    }
    return Status::Ok();
  }

  // Majority label (ties: the tied label met first, i.e. nearest) or mean of the neighbours.
  double Decide(const faiss::Index::idx_t* ids, int count, std::vector<float>* used) const {
    used->clear();
    for (int j = 0; j < count; ++j) {
      if (ids[j] >= 0 && static_cast<size_t>(ids[j]) < labels.size()) {
        used->push_back(labels[static_cast<size_t>(ids[j])]);
      }
    }
    if (used->empty()) return std::nan("");
    if (!classifier) {
      double sum = 0;
      for (float v : *used) sum += v;
      return sum / static_cast<double>(used->size());
    }
    std::map<float, int> votes;
    for (float v : *used) ++votes[v];
    float best = (*used)[0];
    int best_votes = votes[best];
    for (float v : *used) {
      if (votes[v] > best_votes) {
        best = v;
        best_votes = votes[v];
      }
    }
    return best;
  }
};

KnnModel::KnnModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) { impl_->Prepare(); }
KnnModel::~KnnModel() = default;

int64_t KnnModel::feature_dim() const { return impl_->feature_dim; }
int KnnModel::k() const { return impl_->k; }
bool KnnModel::classifier() const { return impl_->classifier; }

Result<std::vector<Value>> KnnModel::Predict(const Dataset& batch) { return Run(batch, false); }
Result<std::vector<Value>> KnnModel::PredictVerbose(const Dataset& batch) {
  return Run(batch, true);
}

Result<std::vector<Value>> KnnModel::Run(const Dataset& batch, bool verbose) {
  std::vector<float> distances;
  std::vector<faiss::Index::idx_t> ids;
  NIMBUS_RETURN_IF_ERROR(impl_->Search(batch, &distances, &ids));
  std::vector<Value> out;
  out.reserve(static_cast<size_t>(batch.rows));
  std::vector<float> used;
  const int k = impl_->k;
  for (int64_t r = 0; r < batch.rows; ++r) {
    double label = impl_->Decide(ids.data() + r * k, k, &used);
    Value v = Value::MakeMap();
    v["predicted_label"] = std::isnan(label) ? Value() : Value(label);
    if (verbose) {
      Value dist = Value::MakeList();
      for (int j = 0; j < k; ++j) {
        if (ids[static_cast<size_t>(r * k + j)] >= 0) {
          dist.Append(static_cast<double>(distances[static_cast<size_t>(r * k + j)]));
        }
      }
      Value labs = Value::MakeList();
      for (float l : used) labs.Append(static_cast<double>(l));
      v["distances"] = std::move(dist);
      v["labels"] = std::move(labs);
    }
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::unique_ptr<KnnModel>> KnnModel::Load(const std::string& model_dir) {
  namespace fs = std::filesystem;
  auto impl = std::make_unique<Impl>();
  NIMBUS_ASSIGN_OR_RETURN(std::string meta_text,
                          ReadText((fs::path(model_dir) / kMetaFile).string()));
  auto meta = ParseJson(meta_text);
  if (!meta.ok() || !meta->is_map() || meta->GetInt("format") != 1) {
    return ClientError("k-NN model file " + std::string(kMetaFile) + " is not a k-NN model");
  }
  impl->classifier = meta->GetString("predictor_type") == "classifier";
  impl->k = static_cast<int>(meta->GetInt("k"));
  impl->feature_dim = meta->GetInt("feature_dim");
  const int64_t num_points = meta->GetInt("num_points");
  if (impl->k < 1 || impl->feature_dim < 1 || num_points < 1) {
    return ClientError("k-NN model file " + std::string(kMetaFile) + " is incomplete");
  }
  const std::string index_path = (fs::path(model_dir) / kIndexFile).string();
  if (!fs::exists(index_path)) return ClientError("k-NN model file " + index_path + " is missing");
  Status read = Faiss("reading " + index_path,
                      [&] { impl->index.reset(faiss::read_index(index_path.c_str())); });
  if (!read.ok()) return ClientError(read.message());
  if (impl->index->d != impl->feature_dim || impl->index->ntotal != num_points) {
    return ClientError("k-NN index " + index_path + " does not match " + kMetaFile);
  }
  const std::string labels_path = (fs::path(model_dir) / kLabelsFile).string();
  NIMBUS_ASSIGN_OR_RETURN(std::string raw, ReadText(labels_path));
  if (raw.size() != static_cast<size_t>(num_points) * sizeof(float)) {
    return ClientError("k-NN labels file " + labels_path + " holds " +
                       std::to_string(raw.size() / sizeof(float)) + " labels, expected " +
                       std::to_string(num_points));
  }
  impl->labels.resize(static_cast<size_t>(num_points));
  std::memcpy(impl->labels.data(), raw.data(), raw.size());
  return std::unique_ptr<KnnModel>(new KnnModel(std::move(impl)));
}

Status TrainKnn(const TrainingInput& input, const Dataset& train, const Dataset* test) {
  auto log = [&](const std::string& line) {
    if (input.log) input.log(line);
  };
  NIMBUS_ASSIGN_OR_RETURN(KnnParams p, ParseParams(input.hyperparameters));
  if (train.rows == 0) return ClientError("The train channel holds no records");
  if (!train.has_labels()) return ClientError("k-NN needs labelled training data");
  if (train.cols != p.feature_dim) {
    return ClientError("The train channel has " + std::to_string(train.cols) +
                       " features per record but feature_dim is " + std::to_string(p.feature_dim));
  }
  omp_set_num_threads(std::max(1, input.num_threads));
  const auto start = std::chrono::steady_clock::now();

  std::vector<int64_t> rows = ReservoirSample(train.rows, p.sample_size);
  const auto n = static_cast<int64_t>(rows.size());
  log("Sampled " + std::to_string(n) + " of " + std::to_string(train.rows) +
      " training records (sample_size=" + std::to_string(p.sample_size) + ")");
  if (p.k > n) {
    return ClientError("Hyperparameter 'k' = '" + std::to_string(p.k) + "' exceeds the " +
                       std::to_string(n) + " sampled training records");
  }
  std::vector<float> x = DenseRows(train, rows, p.feature_dim);
  for (float v : x) {
    if (!std::isfinite(v)) return ClientError("The train channel holds a NaN or infinite feature");
  }
  std::vector<float> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    float l = train.labels[static_cast<size_t>(rows[static_cast<size_t>(i)])];
    if (!std::isfinite(l)) return ClientError("The train channel holds a NaN or infinite label");
    labels[static_cast<size_t>(i)] = l;
  }

  // The transform chain: dimension reduction, zero padding for IVFPQ, normalisation (cosine).
  const bool pq = p.index_type == "faiss.IVFPQ";
  int64_t dim = p.reduction_type.empty() ? p.feature_dim : p.reduction_target;
  int64_t pq_m = p.pq_m;
  if (pq && pq_m == 0) {
    // Undocumented default: the largest documented m leaving sub-vectors of ≥ 2 dimensions
    // that divides the dimension (so nothing is padded), else 1.
    pq_m = 1;
    for (int64_t m : kPqM) {
      if (m * 2 <= dim && dim % m == 0) pq_m = m;
    }
  }
  int64_t index_dim = dim;
  if (pq && index_dim % pq_m != 0) {
    index_dim = (index_dim + pq_m - 1) / pq_m * pq_m;
    log(p.reduction_type.empty()
            ? "Padding the dimension from " + std::to_string(dim) + " to " +
                  std::to_string(index_dim) +
                  " with zeros (divisible by faiss_index_pq_m=" + std::to_string(pq_m) + ")"
            : "Increasing dimension_reduction_target from " + std::to_string(dim) + " to " +
                  std::to_string(index_dim) +
                  " (divisible by faiss_index_pq_m=" + std::to_string(pq_m) + ")");
  }
  std::vector<faiss::VectorTransform*> chain;
  if (!p.reduction_type.empty()) {
    chain.push_back(MakeReduction(p.reduction_type, static_cast<int>(p.feature_dim),
                                  static_cast<int>(index_dim)));
    log("Dimension reduction (" + p.reduction_type + "): " + std::to_string(p.feature_dim) +
        " -> " + std::to_string(index_dim));
  } else if (index_dim != dim) {
    chain.push_back(new faiss::RemapDimensionsTransform(static_cast<int>(dim),
                                                        static_cast<int>(index_dim), false));
  }
  if (p.metric == "COSINE")
    chain.push_back(new faiss::NormalizationTransform(static_cast<int>(index_dim)));
  const faiss::MetricType metric =
      p.metric == "L2" ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;

  // IVF: "auto" is sqrt(sample_size), as SageMaker documents, capped by the sampled points
  // (k-means cannot make more lists than it has points).
  int64_t nlist = p.nlists;
  if (p.index_type != "faiss.Flat") {
    if (nlist == 0) {
      nlist =
          std::max<int64_t>(1, static_cast<int64_t>(std::sqrt(static_cast<double>(p.sample_size))));
      nlist = std::min(nlist, n);
    } else if (nlist > n) {
      return ClientError("Hyperparameter 'faiss_index_ivf_nlists' = '" + std::to_string(nlist) +
                         "' exceeds the " + std::to_string(n) + " sampled training records");
    }
  }
  std::unique_ptr<faiss::Index> index;
  std::string description = p.index_type + ", " + p.metric;
  Status built = Faiss("building the k-NN index", [&] {
    faiss::Index* base = nullptr;
    if (p.index_type == "faiss.Flat") {
      base = metric == faiss::METRIC_L2
                 ? static_cast<faiss::Index*>(new faiss::IndexFlatL2(index_dim))
                 : new faiss::IndexFlatIP(index_dim);
    } else {
      faiss::Index* quantizer = metric == faiss::METRIC_L2
                                    ? static_cast<faiss::Index*>(new faiss::IndexFlatL2(index_dim))
                                    : new faiss::IndexFlatIP(index_dim);
      faiss::IndexIVF* ivf = nullptr;
      if (pq) {
        // 2^nbits centroids per sub-quantizer need at least as many training points.
        int nbits =
            std::clamp(static_cast<int>(std::floor(std::log2(static_cast<double>(n)))), 1, 8);
        ivf = new faiss::IndexIVFPQ(quantizer, index_dim, nlist, pq_m, nbits, metric);
        description += ", m=" + std::to_string(pq_m) + ", nbits=" + std::to_string(nbits);
      } else {
        ivf = new faiss::IndexIVFFlat(quantizer, index_dim, nlist, metric);
      }
      ivf->own_fields = true;
      ivf->nprobe = std::max<size_t>(1, static_cast<size_t>(nlist) / 4);
      ivf->cp.seed = 1234;
      description += ", nlist=" + std::to_string(nlist) + ", nprobe=" + std::to_string(ivf->nprobe);
      base = ivf;
    }
    index.reset(base);
    if (!chain.empty()) {
      auto* pt = new faiss::IndexPreTransform(index.release());
      pt->own_fields = true;
      index.reset(pt);
      while (!chain.empty()) {
        pt->prepend_transform(chain.back());
        chain.pop_back();
      }
    }
    index->train(n, x.data());
    for (int64_t b = 0; b < n; b += p.mini_batch_size) {
      int64_t m = std::min(p.mini_batch_size, n - b);
      index->add(m, x.data() + b * p.feature_dim);
    }
  });
  for (auto* t : chain) delete t;
  NIMBUS_RETURN_IF_ERROR(built);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log("Built the index (" + description + ") on " + std::to_string(n) + " points in " +
      Num(seconds) + " s");

  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(input.model_dir, ec);
  const std::string index_path = (fs::path(input.model_dir) / kIndexFile).string();
  NIMBUS_RETURN_IF_ERROR(
      Faiss("writing " + index_path, [&] { faiss::write_index(index.get(), index_path.c_str()); }));
  NIMBUS_RETURN_IF_ERROR(WriteLabels((fs::path(input.model_dir) / kLabelsFile).string(), labels));
  Value meta = Value::Object({{"format", 1},
                              {"predictor_type", p.classifier ? "classifier" : "regressor"},
                              {"k", p.k},
                              {"feature_dim", p.feature_dim},
                              {"index_type", p.index_type},
                              {"index_metric", p.metric},
                              {"num_points", n},
                              {"dimension_reduction_type", p.reduction_type},
                              {"index_dim", index_dim}});
  if (pq) meta["faiss_index_pq_m"] = pq_m;
  NIMBUS_RETURN_IF_ERROR(WriteText((fs::path(input.model_dir) / kMetaFile).string(), ToJson(meta)));

  if (test == nullptr) return Status::Ok();
  if (test->rows == 0) return ClientError("The test channel holds no records");
  if (!test->has_labels()) return ClientError("The test channel needs labels to be scored");
  auto impl = std::make_unique<KnnModel::Impl>();
  impl->index = std::move(index);
  impl->labels = std::move(labels);
  impl->classifier = p.classifier;
  impl->k = static_cast<int>(p.k);
  impl->feature_dim = p.feature_dim;
  KnnModel model(std::move(impl));
  double total = 0;  // correct predictions or summed squared errors
  const char* score_name = p.classifier ? "accuracy" : "mse";
  for (int64_t b = 0; b < test->rows; b += p.mini_batch_size) {
    Dataset batch = test->Slice(b, b + p.mini_batch_size);
    NIMBUS_ASSIGN_OR_RETURN(std::vector<Value> predicted, model.Predict(batch));
    double batch_total = 0;
    for (int64_t i = 0; i < batch.rows; ++i) {
      double y = batch.labels[static_cast<size_t>(i)];
      double yhat = predicted[static_cast<size_t>(i)].Find("predicted_label")->AsDouble();
      batch_total += p.classifier ? (yhat == y ? 1.0 : 0.0) : (yhat - y) * (yhat - y);
    }
    total += batch_total;
    log("#test_score (algo-1) batch " + std::to_string(b / p.mini_batch_size) + " : ('" +
        score_name + "', " + Num(batch_total / static_cast<double>(batch.rows)) + ")");
  }
  const double score = total / static_cast<double>(test->rows);
  log(std::string("#test_score (algo-1) : ('") + score_name + "', " + Num(score) + ")");
  if (input.metrics) input.metrics->Report(std::string("test:") + score_name, score);
  return Status::Ok();
}

namespace {

class KnnAlgorithm : public Algorithm {
 public:
  Status Train(const TrainingInput& input) override {
    // Validate the hyperparameters before reading any data: a typo fails fast.
    NIMBUS_ASSIGN_OR_RETURN(KnnParams params, ParseParams(input.hyperparameters));
    auto train_it = input.channels.find("train");
    if (train_it == input.channels.end()) return ClientError("k-NN needs a 'train' channel");
    for (const auto& [name, channel] : input.channels) {
      if (name != "train" && name != "test") {
        return ClientError("k-NN takes the channels 'train' and 'test', not '" + name + "'");
      }
    }
    for (const auto& [name, channel] : input.channels) {
      // The readers know more formats than SageMaker's k-NN trains on: refuse the others.
      NIMBUS_ASSIGN_OR_RETURN(
          ContentTypeSpec spec,
          ParseContentType(channel.content_type.empty() ? "text/csv" : channel.content_type));
      if (spec.type != ContentType::kCsv && spec.type != ContentType::kRecordIOProtobuf) {
        return ClientError("k-NN trains on text/csv or application/x-recordio-protobuf; channel '" +
                           name + "' has content type '" + channel.content_type + "'");
      }
    }
    ReadOptions options;
    options.labeled = true;
    options.feature_dim = params.feature_dim;
    NIMBUS_ASSIGN_OR_RETURN(Dataset train, ReadChannel(train_it->second, "text/csv", options));
    LogTrainRecordsRead(input, train.rows);
    auto test_it = input.channels.find("test");
    if (test_it == input.channels.end()) return TrainKnn(input, train, nullptr);
    NIMBUS_ASSIGN_OR_RETURN(Dataset test, ReadChannel(test_it->second, "text/csv", options));
    return TrainKnn(input, train, &test);
  }
};

}  // namespace

std::unique_ptr<Algorithm> MakeKnnAlgorithm() { return std::make_unique<KnnAlgorithm>(); }

void RegisterKnnAlgorithm() {
  RegisterAlgorithm(AlgorithmInfo{
      "knn",
      {"knn"},
      {"text/csv", "application/x-recordio-protobuf"},
      [] { return MakeKnnAlgorithm(); },
      [](const std::string& model_dir) -> Result<std::unique_ptr<Model>> {
        NIMBUS_ASSIGN_OR_RETURN(std::unique_ptr<KnnModel> model, KnnModel::Load(model_dir));
        return std::unique_ptr<Model>(std::move(model));
      }});
}

}  // namespace nimbus::ml
