#include "ml/rcf/rcf.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <unordered_set>

#include "core/strings.h"

namespace nimbus::ml {

struct RcfModel::Tree {
  struct Node {
    int32_t dim = -1;  // -1: leaf
    int32_t left = -1;
    int32_t right = -1;
    int32_t mass = 0;        // records below (a leaf: copies of its point)
    int32_t leaf_begin = 0;  // the node's leaves are [leaf_begin, leaf_end) of `leaves`
    int32_t leaf_end = 0;
    double cut = 0;  // a record goes left when x[dim] <= cut
  };
  int64_t sample_size = 0;    // the tree's mass
  std::vector<Node> nodes;    // depth-first, nodes[0] is the root, children after parents
  std::vector<float> leaves;  // leaf_count x feature_dim
};

namespace {

using Tree = RcfModel::Tree;
using Log = std::function<void(const std::string&)>;

constexpr char kModelFile[] = "rcf-model.bin";
constexpr char kMagic[4] = {'N', 'R', 'C', 'F'};
constexpr uint32_t kVersion = 1;
constexpr int64_t kDefaultBoxCacheLimit = int64_t{1} << 27;
constexpr int64_t kScoreRows = 1024;            // rows densified at a time when scoring
constexpr int64_t kTrainingScoreSample = 2000;  // training records scored for the log

void Emit(const Log& log, const std::string& line) {
  if (log) log(line);
}

std::string Fmt(double v) {
  std::ostringstream out;
  out << std::setprecision(6) << v;
  return out.str();
}

double Uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Record r of data as dim floats (absent sparse features are zero).
void GatherRow(const Dataset& data, int64_t r, int64_t dim, float* out) {
  std::fill(out, out + dim, 0.0f);
  const size_t row = static_cast<size_t>(r);
  if (data.sparse) {
    for (int64_t p = data.indptr[row]; p < data.indptr[row + 1]; ++p) {
      const int64_t c = data.indices[static_cast<size_t>(p)];
      if (c >= 0 && c < dim) out[c] = data.values[static_cast<size_t>(p)];
    }
  } else {
    std::copy_n(data.values.data() + r * data.cols, data.cols, out);
  }
}

// s distinct indices of [0, n), uniformly (Floyd's algorithm), sorted.
std::vector<int64_t> SampleIndices(int64_t n, int64_t s, std::mt19937_64& rng) {
  std::vector<int64_t> out;
  if (s >= n) {
    out.resize(static_cast<size_t>(n));
    std::iota(out.begin(), out.end(), 0);
    return out;
  }
  std::unordered_set<int64_t> chosen;
  chosen.reserve(static_cast<size_t>(s) * 2);
  for (int64_t j = n - s; j < n; ++j) {
    const int64_t t = std::min(j, static_cast<int64_t>(Uniform(rng) * static_cast<double>(j + 1)));
    if (!chosen.insert(t).second) chosen.insert(j);
  }
  out.assign(chosen.begin(), chosen.end());
  std::sort(out.begin(), out.end());
  return out;
}

// Builds one random cut tree over the rows of points (m x dim).
class TreeBuilder {
 public:
  TreeBuilder(const std::vector<float>& points, int64_t dim, std::mt19937_64& rng)
      : points_(points),
        dim_(dim),
        rng_(rng),
        lo_(static_cast<size_t>(dim)),
        hi_(static_cast<size_t>(dim)) {}

  Tree Build(int64_t m) {
    tree_.sample_size = m;
    tree_.nodes.reserve(static_cast<size_t>(2 * m));
    order_.resize(static_cast<size_t>(m));
    std::iota(order_.begin(), order_.end(), 0);
    Node(0, m);
    return std::move(tree_);
  }

 private:
  const float* Point(int64_t i) const { return points_.data() + i * dim_; }

  int32_t Node(int64_t begin, int64_t end) {
    const int32_t id = static_cast<int32_t>(tree_.nodes.size());
    tree_.nodes.emplace_back();
    const int32_t first_leaf =
        static_cast<int32_t>(tree_.leaves.size() / static_cast<size_t>(dim_));
    tree_.nodes[static_cast<size_t>(id)].mass = static_cast<int32_t>(end - begin);
    tree_.nodes[static_cast<size_t>(id)].leaf_begin = first_leaf;
    // Bounding box of the node's records.
    const float* p0 = Point(order_[static_cast<size_t>(begin)]);
    std::copy_n(p0, dim_, lo_.begin());
    std::copy_n(p0, dim_, hi_.begin());
    for (int64_t i = begin + 1; i < end; ++i) {
      const float* p = Point(order_[static_cast<size_t>(i)]);
      for (int64_t j = 0; j < dim_; ++j) {
        lo_[static_cast<size_t>(j)] = std::min(lo_[static_cast<size_t>(j)], p[j]);
        hi_[static_cast<size_t>(j)] = std::max(hi_[static_cast<size_t>(j)], p[j]);
      }
    }
    double range = 0;
    for (int64_t j = 0; j < dim_; ++j) {
      range += static_cast<double>(hi_[static_cast<size_t>(j)]) - lo_[static_cast<size_t>(j)];
    }
    // Identical records make one leaf carrying their count. So does the (only theoretical,
    // with finite inputs) case of cuts that keep landing on the box's edge.
    if (!(range > 0) || !std::isfinite(range)) {
      tree_.leaves.insert(tree_.leaves.end(), p0, p0 + dim_);
      tree_.nodes[static_cast<size_t>(id)].leaf_end = first_leaf + 1;
      return id;
    }
    // A random cut: dimension in proportion to its range, value uniform within it.
    int32_t cut_dim = 0;
    double cut = 0;
    int64_t mid = begin;
    for (int attempts = 0;;) {
      double r = Uniform(rng_) * range;
      cut_dim = -1;
      for (int64_t j = 0; j < dim_; ++j) {
        const double width =
            static_cast<double>(hi_[static_cast<size_t>(j)]) - lo_[static_cast<size_t>(j)];
        if (width <= 0) continue;
        cut_dim = static_cast<int32_t>(j);
        if (r < width) break;
        r -= width;
      }
      cut = lo_[static_cast<size_t>(cut_dim)] + r;
      auto split = std::partition(order_.begin() + begin, order_.begin() + end, [&](int64_t i) {
        return static_cast<double>(Point(i)[cut_dim]) <= cut;
      });
      mid = split - order_.begin();
      if (mid > begin && mid < end) break;  // else rounding put the cut on the edge: redraw
      if (++attempts == 64) {
        tree_.leaves.insert(tree_.leaves.end(), p0, p0 + dim_);
        tree_.nodes[static_cast<size_t>(id)].leaf_end = first_leaf + 1;
        return id;
      }
    }
    const int32_t left = Node(begin, mid);
    const int32_t right = Node(mid, end);
    auto& node = tree_.nodes[static_cast<size_t>(id)];
    node.dim = cut_dim;
    node.cut = cut;
    node.left = left;
    node.right = right;
    node.leaf_end = static_cast<int32_t>(tree_.leaves.size() / static_cast<size_t>(dim_));
    return id;
  }

  const std::vector<float>& points_;
  const int64_t dim_;
  std::mt19937_64& rng_;
  std::vector<int64_t> order_;
  std::vector<float> lo_, hi_;
  Tree tree_;
};

// Per-thread scratch of the scorer.
struct Scratch {
  std::vector<int32_t> path;
  std::vector<float> lo, hi;
};

// Sums over the dimensions of the box's ranges and of q's distances outside it.
void BoxDistance(const float* lo, const float* hi, const float* q, int64_t dim, float* gap_out,
                 float* range_out) {
  float gap = 0, range = 0;
#pragma omp simd reduction(+ : gap, range)
  for (int64_t j = 0; j < dim; ++j) {
    range += hi[j] - lo[j];
    gap += std::max(lo[j] - q[j], 0.0f) + std::max(q[j] - hi[j], 0.0f);
  }
  *gap_out = gap;
  *range_out = range;
}

// One tree's score of q (see rcf.h), normalized by log2(1 + sample size).
double ScoreTree(const Tree& tree, const float* boxes, const float* q, int64_t dim,
                 Scratch* scratch) {
  auto& path = scratch->path;
  path.clear();
  int32_t node = 0;
  while (tree.nodes[static_cast<size_t>(node)].dim >= 0) {
    const auto& n = tree.nodes[static_cast<size_t>(node)];
    path.push_back(node);
    node = static_cast<double>(q[n.dim]) <= n.cut ? n.left : n.right;
  }
  const auto& leaf = tree.nodes[static_cast<size_t>(node)];
  const float* point = tree.leaves.data() + static_cast<int64_t>(leaf.leaf_begin) * dim;
  const double depth = static_cast<double>(path.size());
  const double tree_mass = static_cast<double>(tree.sample_size);
  if (std::equal(q, q + dim, point)) {
    // A record the tree holds: its leaf is damped by how much of the tree it is.
    const double damp = 1.0 - static_cast<double>(leaf.mass) / (2.0 * tree_mass);
    return damp / (depth + std::log2(leaf.mass + 1.0)) * std::log2(1.0 + tree_mass);
  }
  double score = 1.0 / (depth + 1.0);
  if (!boxes) {
    scratch->lo.assign(point, point + dim);
    scratch->hi.assign(point, point + dim);
  }
  int32_t child = node;
  for (int64_t i = static_cast<int64_t>(path.size()) - 1; i >= 0; --i) {
    const int32_t id = path[static_cast<size_t>(i)];
    const float* lo;
    const float* hi;
    if (boxes) {
      lo = boxes + static_cast<int64_t>(id) * 2 * dim;
      hi = lo + dim;
    } else {
      const auto& n = tree.nodes[static_cast<size_t>(id)];
      const auto& sibling = tree.nodes[static_cast<size_t>(n.left == child ? n.right : n.left)];
      for (int32_t l = sibling.leaf_begin; l < sibling.leaf_end; ++l) {
        const float* p = tree.leaves.data() + static_cast<int64_t>(l) * dim;
        for (int64_t j = 0; j < dim; ++j) {
          scratch->lo[static_cast<size_t>(j)] = std::min(scratch->lo[static_cast<size_t>(j)], p[j]);
          scratch->hi[static_cast<size_t>(j)] = std::max(scratch->hi[static_cast<size_t>(j)], p[j]);
        }
      }
      lo = scratch->lo.data();
      hi = scratch->hi.data();
    }
    float gap = 0, range = 0;
    BoxDistance(lo, hi, q, dim, &gap, &range);
    if (gap <= 0) break;  // inside this box, hence inside every box above it
    const double separation = static_cast<double>(gap) / (static_cast<double>(range) + gap);
    score = separation / (static_cast<double>(i) + 1.0) + (1.0 - separation) * score;
    child = id;
  }
  return score * std::log2(1.0 + tree_mass);
}

// '["accuracy"]', "['accuracy', 'precision_recall_fscore']" ... → the names; nullopt when
// it is no such list.
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

template <typename T>
void Put(std::string* out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out->append(bytes, sizeof(T));
}

class Reader {
 public:
  explicit Reader(const std::string& data) : data_(data) {}
  template <typename T>
  bool Get(T* value) {
    if (data_.size() - offset_ < sizeof(T)) return false;
    std::memcpy(value, data_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return true;
  }
  bool GetFloats(size_t count, std::vector<float>* out) {
    if ((data_.size() - offset_) / sizeof(float) < count) return false;
    out->resize(count);
    std::memcpy(out->data(), data_.data() + offset_, count * sizeof(float));
    offset_ += count * sizeof(float);
    return true;
  }
  bool AtEnd() const { return offset_ == data_.size(); }

 private:
  const std::string& data_;
  size_t offset_ = 0;
};

// Checks that a loaded tree is one this code could have built, so that scoring it can
// neither loop nor read out of bounds.
bool ValidTree(const Tree& tree, int64_t dim) {
  const int64_t nodes = static_cast<int64_t>(tree.nodes.size());
  const int64_t leaves = static_cast<int64_t>(tree.leaves.size()) / dim;
  if (nodes == 0 || tree.sample_size <= 0) return false;
  for (int64_t i = 0; i < nodes; ++i) {
    const auto& n = tree.nodes[static_cast<size_t>(i)];
    if (n.leaf_begin < 0 || n.leaf_end > leaves || n.leaf_begin >= n.leaf_end || n.mass <= 0) {
      return false;
    }
    if (n.dim < 0) {
      if (n.leaf_end != n.leaf_begin + 1) return false;
      continue;
    }
    if (n.dim >= dim || n.left <= i || n.right <= i || n.left >= nodes || n.right >= nodes ||
        !std::isfinite(n.cut)) {
      return false;
    }
  }
  return true;
}

}  // namespace

Result<RcfOptions> ParseRcfHyperparameters(const Hyperparameters& hyperparameters) {
  HyperparameterReader reader(hyperparameters);
  RcfOptions o;
  NIMBUS_ASSIGN_OR_RETURN(o.feature_dim, reader.Int("feature_dim", std::nullopt, 1, 10000));
  NIMBUS_ASSIGN_OR_RETURN(o.num_trees, reader.Int("num_trees", 100, 50, 1000));
  NIMBUS_ASSIGN_OR_RETURN(o.num_samples_per_tree, reader.Int("num_samples_per_tree", 256, 1, 2048));
  NIMBUS_ASSIGN_OR_RETURN(
      std::string metrics,
      reader.String("eval_metrics", "[\"accuracy\", \"precision_recall_fscore\"]"));
  auto names = ParseNameList(metrics);
  bool valid = names.has_value();
  o.eval_accuracy = o.eval_precision_recall_fscore = false;
  if (valid) {
    for (const auto& name : *names) {
      if (name == "accuracy") {
        o.eval_accuracy = true;
      } else if (name == "precision_recall_fscore") {
        o.eval_precision_recall_fscore = true;
      } else {
        valid = false;
      }
    }
  }
  if (!valid) {
    return ClientError("Hyperparameter 'eval_metrics' = '" + metrics +
                       "' must be a list of: accuracy, precision_recall_fscore");
  }
  NIMBUS_ASSIGN_OR_RETURN(int64_t mini_batch_size, reader.Int("mini_batch_size", 1000, 1));
  (void)mini_batch_size;
  NIMBUS_RETURN_IF_ERROR(reader.CheckAllKnown());
  return o;
}

RcfModel::RcfModel(int64_t feature_dim, int64_t num_samples_per_tree, std::vector<Tree> trees)
    : feature_dim_(feature_dim),
      num_samples_per_tree_(num_samples_per_tree),
      box_cache_limit_(kDefaultBoxCacheLimit),
      trees_(std::move(trees)) {
  CacheBoxes();
}

RcfModel::RcfModel(RcfModel&&) noexcept = default;
RcfModel& RcfModel::operator=(RcfModel&&) noexcept = default;
RcfModel::~RcfModel() = default;

int64_t RcfModel::num_trees() const { return static_cast<int64_t>(trees_.size()); }

void RcfModel::set_box_cache_limit(int64_t max_values) {
  box_cache_limit_ = max_values;
  CacheBoxes();
}

void RcfModel::CacheBoxes() {
  boxes_.clear();
  int64_t total = 0;
  for (const auto& tree : trees_)
    total += static_cast<int64_t>(tree.nodes.size()) * 2 * feature_dim_;
  if (total > box_cache_limit_) return;
  const int64_t d = feature_dim_;
  boxes_.resize(trees_.size());
  for (size_t t = 0; t < trees_.size(); ++t) {
    const Tree& tree = trees_[t];
    std::vector<float>& box = boxes_[t];
    box.resize(tree.nodes.size() * static_cast<size_t>(2 * d));
    // Children come after their parent, so a reverse sweep sees children first.
    for (int64_t i = static_cast<int64_t>(tree.nodes.size()) - 1; i >= 0; --i) {
      const auto& n = tree.nodes[static_cast<size_t>(i)];
      float* lo = box.data() + i * 2 * d;
      float* hi = lo + d;
      if (n.dim < 0) {
        const float* p = tree.leaves.data() + static_cast<int64_t>(n.leaf_begin) * d;
        std::copy_n(p, d, lo);
        std::copy_n(p, d, hi);
        continue;
      }
      const float* a = box.data() + static_cast<int64_t>(n.left) * 2 * d;
      const float* b = box.data() + static_cast<int64_t>(n.right) * 2 * d;
      for (int64_t j = 0; j < d; ++j) {
        lo[j] = std::min(a[j], b[j]);
        hi[j] = std::max(a[d + j], b[d + j]);
      }
    }
  }
}

Result<std::vector<double>> RcfModel::Score(const Dataset& data, int num_threads) const {
  NIMBUS_RETURN_IF_ERROR(CheckFeatures(data, feature_dim_, "input"));
  NIMBUS_RETURN_IF_ERROR(CheckFinite(data, "input"));
  const int64_t d = feature_dim_;
  const int threads = std::max(1, num_threads);
  std::vector<double> scores(static_cast<size_t>(data.rows), 0.0);
  std::vector<float> rows;
  for (int64_t begin = 0; begin < data.rows; begin += kScoreRows) {
    const int64_t m = std::min(kScoreRows, data.rows - begin);
    rows.resize(static_cast<size_t>(m * d));
    for (int64_t i = 0; i < m; ++i) GatherRow(data, begin + i, d, rows.data() + i * d);
#pragma omp parallel num_threads(threads) if (threads > 1 && m > 1)
    {
      Scratch scratch;
#pragma omp for schedule(dynamic, 16)
      for (int64_t i = 0; i < m; ++i) {
        double sum = 0;
        for (size_t t = 0; t < trees_.size(); ++t) {
          sum += ScoreTree(trees_[t], boxes_.empty() ? nullptr : boxes_[t].data(),
                           rows.data() + i * d, d, &scratch);
        }
        scores[static_cast<size_t>(begin + i)] = sum / static_cast<double>(trees_.size());
      }
    }
  }
  return scores;
}

Result<std::vector<Value>> RcfModel::Predict(const Dataset& batch) {
  NIMBUS_ASSIGN_OR_RETURN(std::vector<double> scores, Score(batch, 1));
  std::vector<Value> out;
  out.reserve(scores.size());
  for (double s : scores) out.push_back(Value::Object({{"score", s}}));
  return out;
}

Status RcfModel::Save(const std::string& model_dir) const {
  std::string out;
  out.append(kMagic, sizeof(kMagic));
  Put(&out, kVersion);
  Put(&out, feature_dim_);
  Put(&out, num_trees());
  Put(&out, num_samples_per_tree_);
  for (const Tree& tree : trees_) {
    Put(&out, tree.sample_size);
    Put(&out, static_cast<int64_t>(tree.nodes.size()));
    Put(&out, static_cast<int64_t>(tree.leaves.size() / static_cast<size_t>(feature_dim_)));
    for (const auto& n : tree.nodes) {
      Put(&out, n.dim);
      Put(&out, n.left);
      Put(&out, n.right);
      Put(&out, n.mass);
      Put(&out, n.leaf_begin);
      Put(&out, n.leaf_end);
      Put(&out, n.cut);
    }
    out.append(reinterpret_cast<const char*>(tree.leaves.data()),
               tree.leaves.size() * sizeof(float));
  }
  return WriteArtifact(model_dir, kModelFile, out);
}

Result<std::unique_ptr<RcfModel>> RcfModel::Load(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / kModelFile).string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return ClientError("The model directory has no randomcutforest artifact (" + path + ")");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string data = buffer.str();
  auto invalid = [&](const std::string& why) {
    return ClientError("The randomcutforest artifact " + path + " is not valid: " + why);
  };
  Reader reader(data);
  char magic[4];
  uint32_t version = 0;
  int64_t dim = 0, num_trees = 0, samples = 0;
  if (!reader.Get(&magic) || std::memcmp(magic, kMagic, sizeof(kMagic)) != 0 ||
      !reader.Get(&version) || version != kVersion) {
    return invalid("not a version 1 nimbus RCF model");
  }
  if (!reader.Get(&dim) || !reader.Get(&num_trees) || !reader.Get(&samples) || dim <= 0 ||
      dim > 10000 || num_trees <= 0 || num_trees > 1000 || samples <= 0) {
    return invalid("bad header");
  }
  std::vector<Tree> trees(static_cast<size_t>(num_trees));
  for (Tree& tree : trees) {
    int64_t node_count = 0, leaf_count = 0;
    if (!reader.Get(&tree.sample_size) || !reader.Get(&node_count) || !reader.Get(&leaf_count) ||
        node_count <= 0 || leaf_count <= 0 || node_count > 4 * samples + 1 ||
        leaf_count > samples) {
      return invalid("bad tree header");
    }
    tree.nodes.resize(static_cast<size_t>(node_count));
    for (auto& n : tree.nodes) {
      if (!reader.Get(&n.dim) || !reader.Get(&n.left) || !reader.Get(&n.right) ||
          !reader.Get(&n.mass) || !reader.Get(&n.leaf_begin) || !reader.Get(&n.leaf_end) ||
          !reader.Get(&n.cut)) {
        return invalid("truncated");
      }
    }
    if (!reader.GetFloats(static_cast<size_t>(leaf_count * dim), &tree.leaves)) {
      return invalid("truncated");
    }
    if (!ValidTree(tree, dim)) return invalid("inconsistent tree");
  }
  if (!reader.AtEnd()) return invalid("trailing bytes");
  return std::make_unique<RcfModel>(dim, samples, std::move(trees));
}

Result<RcfModel> FitRcf(const Dataset& train, const RcfOptions& options,
                        const std::function<void(const std::string&)>& log) {
  const int64_t dim = options.feature_dim;
  if (dim < 1 || options.num_trees < 1 || options.num_samples_per_tree < 1) {
    return ClientError("feature_dim, num_trees and num_samples_per_tree must be positive");
  }
  NIMBUS_RETURN_IF_ERROR(CheckFeatures(train, dim, "train channel"));
  const int64_t n = train.rows;
  if (n == 0) return ClientError("The train channel has no records");
  NIMBUS_RETURN_IF_ERROR(CheckFinite(train, "train channel"));
  const int64_t per_tree = std::min(options.num_samples_per_tree, n);
  const int threads = std::max(1, options.num_threads);
  Emit(log, "Sampling " + std::to_string(per_tree) + " of " + std::to_string(n) +
                " training records for each of " + std::to_string(options.num_trees) + " trees");
  std::vector<Tree> trees(static_cast<size_t>(options.num_trees));
#pragma omp parallel for num_threads(threads) schedule(dynamic) if (threads > 1)
  for (int64_t t = 0; t < options.num_trees; ++t) {
    std::mt19937_64 rng(options.seed + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(t + 1));
    const std::vector<int64_t> rows = SampleIndices(n, per_tree, rng);
    std::vector<float> points(static_cast<size_t>(per_tree * dim));
    for (int64_t i = 0; i < per_tree; ++i) {
      GatherRow(train, rows[static_cast<size_t>(i)], dim, points.data() + i * dim);
    }
    trees[static_cast<size_t>(t)] = TreeBuilder(points, dim, rng).Build(per_tree);
  }
  size_t nodes = 0;
  for (const auto& tree : trees) nodes += tree.nodes.size();
  Emit(log, "#progress_metric: host=algo-1, built " + std::to_string(options.num_trees) +
                " trees (" + std::to_string(nodes) + " nodes)");
  RcfModel model(dim, options.num_samples_per_tree, std::move(trees));

  // The score distribution of (a sample of) the training data, for the log.
  std::mt19937_64 rng(options.seed);
  const std::vector<int64_t> rows = SampleIndices(n, std::min(n, kTrainingScoreSample), rng);
  Dataset sample;
  sample.rows = static_cast<int64_t>(rows.size());
  sample.cols = dim;
  sample.values.resize(rows.size() * static_cast<size_t>(dim));
  for (size_t i = 0; i < rows.size(); ++i) {
    GatherRow(train, rows[i], dim, sample.values.data() + static_cast<int64_t>(i) * dim);
  }
  NIMBUS_ASSIGN_OR_RETURN(std::vector<double> scores, model.Score(sample, threads));
  double mean = 0, sq = 0;
  for (double s : scores) mean += s;
  mean /= static_cast<double>(scores.size());
  for (double s : scores) sq += (s - mean) * (s - mean);
  const double sd = std::sqrt(sq / static_cast<double>(scores.size()));
  Emit(log, "Anomaly scores of " + std::to_string(scores.size()) + " training records: mean " +
                Fmt(mean) + ", standard deviation " + Fmt(sd) + ", mean + 3 sd " +
                Fmt(mean + 3 * sd));
  return model;
}

RcfEvaluation EvaluateRcfScores(const std::vector<double>& scores,
                                const std::vector<float>& labels) {
  RcfEvaluation e;
  if (scores.empty()) return e;
  const double n = static_cast<double>(scores.size());
  double mean = 0, sq = 0;
  for (double s : scores) mean += s;
  mean /= n;
  for (double s : scores) sq += (s - mean) * (s - mean);
  e.threshold = mean + 3 * std::sqrt(sq / n);
  double tp = 0, fp = 0, fn = 0, tn = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    const bool predicted = scores[i] > e.threshold;
    const bool actual = labels[i] != 0;
    tp += predicted && actual;
    fp += predicted && !actual;
    fn += !predicted && actual;
    tn += !predicted && !actual;
  }
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  auto f1 = [](double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; };
  e.accuracy = (tp + tn) / n;
  e.precision = ratio(tp, tp + fp);
  e.recall = ratio(tp, tp + fn);
  e.f1 = f1(e.precision, e.recall);
  e.negative_precision = ratio(tn, tn + fn);
  e.negative_recall = ratio(tn, tn + fp);
  e.negative_f1 = f1(e.negative_precision, e.negative_recall);
  return e;
}

}  // namespace nimbus::ml
