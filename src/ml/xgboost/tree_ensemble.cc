#include "ml/xgboost/tree_ensemble.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <utility>

namespace nimbus::ml {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

Status Unsupported(const std::string& why) {
  return Status::NotImplemented("Outside what the tree-ensemble predictor reproduces: " + why);
}

Status Malformed(const std::string& why) {
  return Status::Internal("Not an XGBoost JSON model: " + why);
}

// How base_score (stored in the objective's output space) becomes a margin: libxgboost's
// ObjFunction::ProbToMargin, computed in float as libxgboost does.
enum class MarginOf : uint8_t { kIdentity, kLogit, kLog };

using StringMap = std::map<std::string, std::string, std::less<>>;

// One tree as the JSON model lists it, node by node.
struct RawTree {
  std::vector<int64_t> left_children, right_children, split_indices, default_left, split_type;
  std::vector<float> split_conditions;
  size_t categorical_entries = 0;  // entries of the categories* arrays
  StringMap tree_param;
};

struct RawModel {
  StringMap learner_model_param;
  StringMap gbtree_model_param;
  std::string objective;
  std::string booster;
  std::vector<int64_t> tree_info;
  std::vector<RawTree> trees;
};

constexpr std::string_view kModelParamPath = "/learner/learner_model_param/";
constexpr std::string_view kObjectivePath = "/learner/objective/name";
constexpr std::string_view kBoosterPath = "/learner/gradient_booster/name";
constexpr std::string_view kGbtreeParamPath = "/learner/gradient_booster/model/gbtree_model_param/";
constexpr std::string_view kTreeInfoPath = "/learner/gradient_booster/model/tree_info/[]";
constexpr std::string_view kTreesPath = "/learner/gradient_booster/model/trees/[]";
constexpr std::string_view kTreePrefix = "/learner/gradient_booster/model/trees/[]/";
constexpr std::string_view kTreeParamPath = "/learner/gradient_booster/model/trees/[]/tree_param/";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// A SAX reader that picks the learner's parameters and the trees' arrays out of the JSON
// model, wherever their keys appear in their objects. A SAX reader rather than a DOM: floats
// are parsed from their text with from_chars<float>, so a threshold is exactly the float
// libxgboost wrote (a detour through double can round a decimal twice), and a 100-tree model
// costs no DOM of a few hundred thousand values.
class ModelReader {
 public:
  explicit ModelReader(RawModel* model) : model_(model) {}

  bool null() { return true; }
  bool boolean(bool value) { return Integer(value ? 1 : 0); }
  bool number_integer(int64_t value) { return Integer(value); }
  bool number_unsigned(uint64_t value) {
    if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Fail("an integer out of range at " + path_);
    }
    return Integer(static_cast<int64_t>(value));
  }
  bool number_float(double, const std::string& text) {
    float value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return Fail("the number '" + text + "' at " + path_ + " is not a float");
    }
    return Float(value);
  }
  bool string(std::string& value) {
    if (StartsWith(path_, kModelParamPath)) {
      model_->learner_model_param[path_.substr(kModelParamPath.size())] = value;
    } else if (path_ == kObjectivePath) {
      model_->objective = value;
    } else if (path_ == kBoosterPath) {
      model_->booster = value;
    } else if (StartsWith(path_, kGbtreeParamPath)) {
      model_->gbtree_model_param[path_.substr(kGbtreeParamPath.size())] = value;
    } else if (StartsWith(path_, kTreeParamPath)) {
      model_->trees.back().tree_param[path_.substr(kTreeParamPath.size())] = value;
    } else if (!TreeArray().empty()) {  // a quoted NaN or +-Infinity (QuoteNonFinite)
      float number = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
      if (ec != std::errc() || end != value.data() + value.size() || std::isfinite(number)) {
        return Fail("the string '" + value + "' in a tree's array at " + path_);
      }
      return Float(number);
    }
    return true;
  }
  bool binary(nlohmann::json::binary_t&) { return true; }
  bool start_object(std::size_t) {
    if (path_ == kTreesPath) model_->trees.emplace_back();
    frames_.push_back(path_.size());
    return true;
  }
  bool key(std::string& key) {
    path_.resize(frames_.back());
    path_ += '/';
    path_ += key;
    return true;
  }
  bool end_object() { return Pop(); }
  bool start_array(std::size_t) {
    frames_.push_back(path_.size());
    path_ += "/[]";
    return true;
  }
  bool end_array() { return Pop(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::json::exception& e) {
    return Fail("invalid JSON at byte " + std::to_string(position) + " (" + e.what() + ")");
  }

  const std::string& error() const { return error_; }

 private:
  bool Pop() {
    if (frames_.empty()) return Fail("unbalanced JSON");
    path_.resize(frames_.back());
    frames_.pop_back();
    return true;
  }

  bool Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }

  // The array name of a value inside one of a tree's arrays ("split_conditions"), else
  // empty.
  std::string_view TreeArray() const {
    if (!StartsWith(path_, kTreePrefix) || path_.size() < kTreePrefix.size() + 3 ||
        path_.compare(path_.size() - 3, 3, "/[]") != 0) {
      return {};
    }
    std::string_view name(path_);
    name = name.substr(kTreePrefix.size(), name.size() - kTreePrefix.size() - 3);
    return name.find('/') == std::string_view::npos ? name : std::string_view();
  }

  bool Integer(int64_t value) {
    if (path_ == kTreeInfoPath) {
      model_->tree_info.push_back(value);
      return true;
    }
    std::string_view array = TreeArray();
    if (array.empty()) return true;
    RawTree& tree = model_->trees.back();
    if (array == "split_conditions") {
      // Integral JSON numbers are small integers written without a fraction: exact floats.
      tree.split_conditions.push_back(static_cast<float>(value));
    } else if (std::vector<int64_t>* ints = IntArray(tree, array)) {
      ints->push_back(value);
    } else if (StartsWith(array, "categories")) {
      ++tree.categorical_entries;
    }
    return true;
  }

  bool Float(float value) {
    std::string_view array = TreeArray();
    if (array.empty()) {
      if (path_ == kTreeInfoPath) return Fail("a non-integer in tree_info");
      return true;
    }
    RawTree& tree = model_->trees.back();
    if (array == "split_conditions") {
      tree.split_conditions.push_back(value);
    } else if (IntArray(tree, array) != nullptr) {
      return Fail("a non-integer in " + std::string(array));
    } else if (StartsWith(array, "categories")) {
      ++tree.categorical_entries;
    }
    return true;
  }

  static std::vector<int64_t>* IntArray(RawTree& tree, std::string_view array) {
    if (array == "left_children") return &tree.left_children;
    if (array == "right_children") return &tree.right_children;
    if (array == "split_indices") return &tree.split_indices;
    if (array == "default_left") return &tree.default_left;
    if (array == "split_type") return &tree.split_type;
    return nullptr;
  }

  RawModel* model_;
  std::string path_;            // "/learner/gradient_booster/model/trees/[]/left_children/[]"
  std::vector<size_t> frames_;  // path_'s length where each open object or array began
  std::string error_;
};

// libxgboost writes non-finite floats as the bare tokens NaN, Infinity and -Infinity (the
// thresholds of categorical splits are NaN), which JSON lacks. Quotes them, so that the
// parser sees strings that the reader turns back into floats; false when there are none.
bool QuoteNonFinite(std::string_view text, std::string* out) {
  static constexpr std::string_view kTokens[] = {"NaN", "-Infinity", "Infinity"};
  bool in_string = false, changed = false;
  size_t copied = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    if (c != 'N' && c != 'I' && c != '-') continue;
    for (std::string_view token : kTokens) {
      if (text.substr(i, token.size()) == token) {
        out->append(text.substr(copied, i - copied));
        out->append("\"").append(token).append("\"");
        i += token.size() - 1;
        copied = i + 1;
        changed = true;
        break;
      }
    }
  }
  if (changed) out->append(text.substr(copied));
  return changed;
}

Result<int64_t> IntParam(const StringMap& params, std::string_view name, std::string_view where,
                         std::optional<int64_t> fallback = std::nullopt) {
  auto it = params.find(name);
  if (it == params.end()) {
    if (fallback) return *fallback;
    return Malformed(std::string(where) + " has no " + std::string(name));
  }
  int64_t value = 0;
  const std::string& text = it->second;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return Malformed(std::string(where) + "." + std::string(name) + " = '" + text +
                     "' is not an integer");
  }
  return value;
}

}  // namespace

// Turns a parsed model into the flat layout; a friend of TreeEnsemble.
struct TreeEnsembleBuilder {
  using Node = TreeEnsemble::Node;
  using Transform = TreeEnsemble::Transform;

  struct ObjectiveInfo {
    const char* name;
    MarginOf margin;
    Transform transform;
  };

  // The objectives whose ProbToMargin and PredTransform have been checked against
  // libxgboost's predictions (tests/unit/ml/xgboost_tree_ensemble_test.cc trains each one).
  // binary:logitraw takes base_score as a margin, unlike binary:logistic.
  static const ObjectiveInfo* FindObjective(std::string_view name) {
    static constexpr ObjectiveInfo kObjectives[] = {
        {"reg:squarederror", MarginOf::kIdentity, Transform::kIdentity},
        {"reg:linear", MarginOf::kIdentity, Transform::kIdentity},
        {"reg:squaredlogerror", MarginOf::kIdentity, Transform::kIdentity},
        {"reg:pseudohubererror", MarginOf::kIdentity, Transform::kIdentity},
        {"reg:absoluteerror", MarginOf::kIdentity, Transform::kIdentity},
        {"reg:logistic", MarginOf::kLogit, Transform::kSigmoid},
        {"binary:logistic", MarginOf::kLogit, Transform::kSigmoid},
        {"binary:logitraw", MarginOf::kIdentity, Transform::kIdentity},
        {"binary:hinge", MarginOf::kIdentity, Transform::kHinge},
        {"count:poisson", MarginOf::kLog, Transform::kExp},
        {"reg:gamma", MarginOf::kLog, Transform::kExp},
        {"reg:tweedie", MarginOf::kLog, Transform::kExp},
        {"survival:cox", MarginOf::kLog, Transform::kExp},
        {"survival:aft", MarginOf::kLog, Transform::kExp},
        {"multi:softprob", MarginOf::kIdentity, Transform::kSoftmax},
        {"multi:softmax", MarginOf::kIdentity, Transform::kArgmax},
        {"rank:pairwise", MarginOf::kIdentity, Transform::kIdentity},
        {"rank:ndcg", MarginOf::kIdentity, Transform::kIdentity},
        {"rank:map", MarginOf::kIdentity, Transform::kIdentity},
    };
    for (const ObjectiveInfo& info : kObjectives) {
      if (name == info.name) return &info;
    }
    return nullptr;
  }

  // Appends tree's nodes reachable from its root, breadth-first, so that each internal
  // node's children are adjacent (left, right); unreachable (deleted) nodes are dropped.
  static Status AppendTree(const RawTree& tree, size_t index, int64_t num_feature,
                           TreeEnsemble* ensemble) {
    const std::string where = "tree " + std::to_string(index);
    NIMBUS_ASSIGN_OR_RETURN(int64_t num_nodes, IntParam(tree.tree_param, "num_nodes", where));
    NIMBUS_ASSIGN_OR_RETURN(int64_t leaf_vector,
                            IntParam(tree.tree_param, "size_leaf_vector", where, 0));
    if (leaf_vector != 0) return Unsupported(where + " has vector leaves");
    if (tree.categorical_entries > 0) return Unsupported(where + " has categorical splits");
    for (int64_t type : tree.split_type) {
      if (type != 0) return Unsupported(where + " has categorical splits");
    }
    const auto n = static_cast<size_t>(num_nodes);
    if (num_nodes <= 0 || tree.left_children.size() != n || tree.right_children.size() != n ||
        tree.split_indices.size() != n || tree.default_left.size() != n ||
        tree.split_conditions.size() != n ||
        (!tree.split_type.empty() && tree.split_type.size() != n)) {
      return Malformed(where + ": its node arrays do not all have num_nodes entries");
    }
    std::vector<Node>& nodes = ensemble->nodes_;
    const size_t base = nodes.size();
    if (base + n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
      return Unsupported("more than 2^31 nodes");
    }
    std::vector<bool> seen(n, false);
    std::vector<int64_t> order = {0};  // old node ids, in their new order
    std::vector<int32_t> depth = {0};  // per new node
    seen[0] = true;
    int32_t tree_depth = 0;
    for (size_t k = 0; k < order.size(); ++k) {
      const auto old = static_cast<size_t>(order[k]);
      const auto self = static_cast<int32_t>(base + k);
      const int64_t left = tree.left_children[old];
      const int64_t right = tree.right_children[old];
      tree_depth = std::max(tree_depth, depth[k]);
      if (left == -1) {  // libxgboost's RegTree::Node::IsLeaf
        nodes.push_back(Node{{self, self}, 0, tree.split_conditions[old]});
        continue;
      }
      if (left < 0 || right < 0 || left >= num_nodes || right >= num_nodes ||
          seen[static_cast<size_t>(left)] || seen[static_cast<size_t>(right)] || left == right) {
        return Malformed(where + ": node " + std::to_string(old) + " has invalid children");
      }
      const int64_t feature = tree.split_indices[old];
      if (feature < 0 || feature >= num_feature) {
        return Unsupported(where + " splits on feature " + std::to_string(feature) +
                           ", beyond num_feature");
      }
      if (!std::isfinite(tree.split_conditions[old])) {
        return Unsupported(where + " has a threshold that is not finite");
      }
      seen[static_cast<size_t>(left)] = seen[static_cast<size_t>(right)] = true;
      const auto first_child = static_cast<int32_t>(base + order.size());
      nodes.push_back(
          Node{{first_child, first_child + 1},
               static_cast<uint32_t>(feature + (tree.default_left[old] != 0 ? num_feature : 0)),
               tree.split_conditions[old]});
      order.push_back(left);
      order.push_back(right);
      depth.push_back(depth[k] + 1);
      depth.push_back(depth[k] + 1);
    }
    ensemble->depths_.push_back(tree_depth);
    ensemble->roots_.push_back(static_cast<int32_t>(base));
    return Status::Ok();
  }

  static Result<TreeEnsemble> Build(const RawModel& model) {
    if (model.booster != "gbtree") {
      if (model.booster.empty()) return Malformed("no learner.gradient_booster.name");
      return Unsupported("booster '" + model.booster + "' (only gbtree is)");
    }
    TreeEnsemble ensemble;
    const ObjectiveInfo* objective = FindObjective(model.objective);
    if (objective == nullptr) return Unsupported("objective '" + model.objective + "'");
    ensemble.objective_ = model.objective;
    ensemble.transform_ = objective->transform;

    const StringMap& learner = model.learner_model_param;
    NIMBUS_ASSIGN_OR_RETURN(ensemble.num_feature_,
                            IntParam(learner, "num_feature", "learner_model_param"));
    NIMBUS_ASSIGN_OR_RETURN(int64_t num_class,
                            IntParam(learner, "num_class", "learner_model_param", 0));
    NIMBUS_ASSIGN_OR_RETURN(int64_t num_target,
                            IntParam(learner, "num_target", "learner_model_param", 1));
    if (ensemble.num_feature_ < 0 || ensemble.num_feature_ > (int64_t{1} << 30)) {
      return Unsupported("num_feature = " + std::to_string(ensemble.num_feature_));
    }
    if (num_target != 1) return Unsupported("a multi-target model");
    const bool multi =
        objective->transform == Transform::kSoftmax || objective->transform == Transform::kArgmax;
    if (multi ? (num_class < 1 || num_class > 1'000'000) : num_class > 1) {
      return Unsupported("num_class = " + std::to_string(num_class) + " with objective '" +
                         model.objective + "'");
    }
    ensemble.num_groups_ = static_cast<int>(std::max<int64_t>(num_class, 1));
    ensemble.output_width_ = objective->transform == Transform::kSoftmax ? ensemble.num_groups_ : 1;

    auto base_score = learner.find("base_score");
    if (base_score == learner.end()) return Malformed("learner_model_param has no base_score");
    float p = 0;
    const std::string& text = base_score->second;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), p);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(p)) {
      return Malformed("base_score = '" + text + "'");
    }
    switch (objective->margin) {
      case MarginOf::kIdentity:
        ensemble.base_margin_ = p;
        break;
      case MarginOf::kLogit:
        if (!(p > 0.0f && p < 1.0f)) return Unsupported("base_score " + text + " outside (0, 1)");
        ensemble.base_margin_ = -std::log(1.0f / p - 1.0f);
        break;
      case MarginOf::kLog:
        if (!(p > 0.0f)) return Unsupported("base_score " + text + " <= 0");
        ensemble.base_margin_ = std::log(p);
        break;
    }

    NIMBUS_ASSIGN_OR_RETURN(int64_t num_trees,
                            IntParam(model.gbtree_model_param, "num_trees", "gbtree_model_param"));
    NIMBUS_ASSIGN_OR_RETURN(
        int64_t leaf_vector,
        IntParam(model.gbtree_model_param, "size_leaf_vector", "gbtree_model_param", 0));
    if (leaf_vector != 0) return Unsupported("vector leaves");
    if (num_trees < 0 || static_cast<size_t>(num_trees) != model.trees.size() ||
        model.tree_info.size() != model.trees.size()) {
      return Malformed("num_trees, trees and tree_info disagree");
    }
    for (size_t t = 0; t < model.trees.size(); ++t) {
      const int64_t group = model.tree_info[t];
      if (group < 0 || group >= ensemble.num_groups_) {
        return Malformed("tree " + std::to_string(t) + " belongs to output group " +
                         std::to_string(group));
      }
      ensemble.groups_.push_back(static_cast<int32_t>(group));
      NIMBUS_RETURN_IF_ERROR(AppendTree(model.trees[t], t, ensemble.num_feature_, &ensemble));
    }
    return ensemble;
  }
};

Result<TreeEnsemble> TreeEnsemble::FromJson(std::string_view model_json) {
  RawModel model;
  ModelReader reader(&model);
  std::string quoted;
  if (QuoteNonFinite(model_json, &quoted)) model_json = quoted;
  try {
    if (!nlohmann::json::sax_parse(model_json.begin(), model_json.end(), &reader)) {
      return Malformed(reader.error().empty() ? "invalid JSON" : reader.error());
    }
  } catch (const std::exception& e) {
    return Malformed(e.what());
  }
  return TreeEnsembleBuilder::Build(model);
}

Result<TreeEnsemble> TreeEnsemble::FromBooster(BoosterHandle booster) {
  bst_ulong length = 0;
  const char* json = nullptr;
  if (XGBoosterSaveModelToBuffer(booster, R"({"format": "json"})", &length, &json) != 0) {
    return Status::Internal(std::string("Cannot serialize the XGBoost model: ") +
                            XGBGetLastError());
  }
  return FromJson(std::string_view(json, length));
}

Status TreeEnsemble::CheckBatch(const Dataset& batch) const {
  auto refuse = [](const std::string& why) { return Status::NotImplemented(why); };
  if (batch.rows < 0 || batch.cols < 0) return refuse("negative batch dimensions");
  if (batch.cols > num_feature_) return refuse("more columns than the model has features");
  const auto rows = static_cast<size_t>(batch.rows);
  if (!batch.sparse) {
    if (batch.values.size() != rows * static_cast<size_t>(batch.cols)) {
      return refuse("dense values disagree with rows * cols");
    }
  } else {
    if (batch.indptr.size() != rows + 1 || batch.indices.size() != batch.values.size()) {
      return refuse("CSR arrays disagree with rows");
    }
    for (size_t r = 0; r < rows; ++r) {
      if (batch.indptr[r] < 0 || batch.indptr[r] > batch.indptr[r + 1]) {
        return refuse("CSR row pointers are not ascending");
      }
    }
    if (static_cast<size_t>(batch.indptr[rows]) > batch.values.size()) {
      return refuse("CSR row pointers beyond the values");
    }
    bool ascending = true;
    for (size_t r = 0; r < rows; ++r) {
      for (auto k = static_cast<size_t>(batch.indptr[r]);
           k < static_cast<size_t>(batch.indptr[r + 1]); ++k) {
        const int64_t index = batch.indices[k];
        if (index < 0 || index >= batch.cols) return refuse("a sparse index outside [0, cols)");
        if (k > static_cast<size_t>(batch.indptr[r]) && index <= batch.indices[k - 1]) {
          ascending = false;
        }
      }
    }
    // A repeated index within a row makes libxgboost read some missing feature as present
    // (FVec counts entries, not features), which is no semantics to reproduce.
    if (!ascending) {
      std::vector<int64_t> last_row(static_cast<size_t>(batch.cols), -1);
      for (size_t r = 0; r < rows; ++r) {
        for (auto k = static_cast<size_t>(batch.indptr[r]);
             k < static_cast<size_t>(batch.indptr[r + 1]); ++k) {
          int64_t& last = last_row[static_cast<size_t>(batch.indices[k])];
          if (last == static_cast<int64_t>(r)) return refuse("a feature repeated within a row");
          last = static_cast<int64_t>(r);
        }
      }
    }
  }
  // libxgboost refuses infinite feature values ("Input data contains `inf` or `nan`").
  for (float v : batch.values) {
    if (std::isinf(v)) return refuse("an infinite feature value");
  }
  return Status::Ok();
}

template <typename Fn>
void TreeEnsemble::ForEachBlock(const Dataset& batch, Fn&& fn) const {
  if (batch.rows == 0) return;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const auto nf = static_cast<size_t>(num_feature_);
  const size_t stride = std::max<size_t>(2 * nf, 1);
  const auto block = static_cast<int>(std::min<int64_t>(
      {kLanes, batch.rows, static_cast<int64_t>(std::max<size_t>(kScratchFloats / stride, 1))}));
  std::vector<float> scratch(stride * static_cast<size_t>(block));
  const float* rows[kLanes];
  for (int i = 0; i < block; ++i) {
    float* row = scratch.data() + stride * static_cast<size_t>(i);
    std::fill_n(row, nf, kInf);
    std::fill_n(row + nf, stride - nf, -kInf);
    rows[i] = row;
  }
  auto set = [nf](float* row, size_t feature, float v) {
    const bool missing = std::isnan(v);
    row[feature] = missing ? kInf : v;
    row[nf + feature] = missing ? -kInf : v;
  };
  for (int64_t first = 0; first < batch.rows; first += block) {
    const int n = static_cast<int>(std::min<int64_t>(block, batch.rows - first));
    if (!batch.sparse) {
      // Every row sets the same columns; those beyond cols stay missing.
      const auto cols = static_cast<size_t>(batch.cols);
      for (int i = 0; i < n; ++i) {
        const float* values = batch.values.data() + static_cast<size_t>(first + i) * cols;
        float* row = scratch.data() + stride * static_cast<size_t>(i);
        for (size_t c = 0; c < cols; ++c) set(row, c, values[c]);
      }
      fn(first, n, rows);
      continue;
    }
    // CheckBatch has refused repeated indices, which libxgboost reads inconsistently.
    for (int i = 0; i < n; ++i) {
      float* row = scratch.data() + stride * static_cast<size_t>(i);
      const auto r = static_cast<size_t>(first + i);
      for (auto k = static_cast<size_t>(batch.indptr[r]);
           k < static_cast<size_t>(batch.indptr[r + 1]); ++k) {
        set(row, static_cast<size_t>(batch.indices[k]), batch.values[k]);
      }
    }
    fn(first, n, rows);
    for (int i = 0; i < n; ++i) {
      float* row = scratch.data() + stride * static_cast<size_t>(i);
      const auto r = static_cast<size_t>(first + i);
      for (auto k = static_cast<size_t>(batch.indptr[r]);
           k < static_cast<size_t>(batch.indptr[r + 1]); ++k) {
        set(row, static_cast<size_t>(batch.indices[k]), kNaN);
      }
    }
  }
}

void TreeEnsemble::BlockMargins(const float* const* rows, int n, float* margins) const {
  std::fill_n(margins, static_cast<size_t>(n) * static_cast<size_t>(num_groups_), base_margin_);
  const Node* nodes = nodes_.data();
  const size_t trees = roots_.size();
  // Lanes are (tree, row) pairs: a block of many rows walks one tree at a time, a block of
  // one row walks kLanes trees at a time.
  const size_t trees_per_pass = static_cast<size_t>(std::max(1, kLanes / n));
  int32_t at[kLanes];
  const float* features[kLanes];
  for (size_t t0 = 0; t0 < trees; t0 += trees_per_pass) {
    const size_t t1 = std::min(trees, t0 + trees_per_pass);
    int lanes = 0;
    int32_t steps = 0;
    for (size_t t = t0; t < t1; ++t) {
      steps = std::max(steps, depths_[t]);
      for (int i = 0; i < n; ++i, ++lanes) {
        at[lanes] = roots_[t];
        features[lanes] = rows[i];
      }
    }
    for (int32_t step = 0; step < steps; ++step) {
      for (int l = 0; l < lanes; ++l) {
        // Left when value < threshold, as libxgboost decides.
        const Node& node = nodes[at[l]];
        at[l] = node.child[!(features[l][node.slot] < node.value)];
      }
    }
    // Per row, trees in order: libxgboost's summation order.
    for (int i = 0; i < n; ++i) {
      float* row_margins = margins + static_cast<size_t>(i) * static_cast<size_t>(num_groups_);
      for (size_t t = t0; t < t1; ++t) {
        row_margins[groups_[t]] += nodes[at[(t - t0) * static_cast<size_t>(n) + i]].value;
      }
    }
  }
}

Status TreeEnsemble::PredictMargin(const Dataset& batch, std::vector<float>* out) const {
  NIMBUS_RETURN_IF_ERROR(CheckBatch(batch));
  out->resize(static_cast<size_t>(batch.rows) * static_cast<size_t>(num_groups_));
  ForEachBlock(batch, [&](int64_t first, int n, const float* const* rows) {
    BlockMargins(rows, n, out->data() + first * num_groups_);
  });
  return Status::Ok();
}

Status TreeEnsemble::Predict(const Dataset& batch, std::vector<float>* out) const {
  NIMBUS_RETURN_IF_ERROR(CheckBatch(batch));
  out->resize(static_cast<size_t>(batch.rows) * static_cast<size_t>(output_width_));
  std::vector<float> block(static_cast<size_t>(kLanes) * static_cast<size_t>(num_groups_));
  ForEachBlock(batch, [&](int64_t first, int n, const float* const* rows) {
    BlockMargins(rows, n, block.data());
    for (int i = 0; i < n; ++i) {
      const float* margins = block.data() + static_cast<size_t>(i) * num_groups_;
      float* o = out->data() + (first + i) * output_width_;
      const float m = margins[0];
      switch (transform_) {
        case Transform::kIdentity:
          o[0] = m;
          break;
        case Transform::kSigmoid:
          o[0] = 1.0f / (1.0f + std::exp(-m));
          break;
        case Transform::kExp:
          o[0] = std::exp(m);
          break;
        case Transform::kHinge:
          o[0] = m > 0.0f ? 1.0f : 0.0f;
          break;
        case Transform::kSoftmax: {
          // libxgboost's common::Softmax: the exponentials in float, their sum in double.
          float max = margins[0];
          for (int g = 1; g < num_groups_; ++g) max = std::fmax(margins[g], max);
          double sum = 0;
          for (int g = 0; g < num_groups_; ++g) {
            o[g] = std::exp(margins[g] - max);
            sum += o[g];
          }
          for (int g = 0; g < num_groups_; ++g) o[g] /= static_cast<float>(sum);
          break;
        }
        case Transform::kArgmax: {
          // The first largest margin, as common::FindMaxIndex picks it.
          int best = 0;
          for (int g = 1; g < num_groups_; ++g) {
            if (margins[g] > margins[best]) best = g;
          }
          o[0] = static_cast<float>(best);
          break;
        }
      }
    }
  });
  return Status::Ok();
}

Dataset TreeEnsemble::ProbeRows(int64_t rows, uint32_t seed) const {
  std::vector<std::vector<float>> thresholds(static_cast<size_t>(num_feature_));
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& node = nodes_[i];
    if (static_cast<size_t>(node.child[0]) != i) {
      thresholds[node.slot % static_cast<uint32_t>(num_feature_)].push_back(node.value);
    }
  }
  std::mt19937 rng(seed);
  Dataset probe;
  probe.rows = rows;
  probe.cols = num_feature_;
  probe.values.reserve(static_cast<size_t>(rows * num_feature_));
  for (int64_t r = 0; r < rows; ++r) {
    for (const std::vector<float>& cuts : thresholds) {
      const uint32_t pick = rng() % 8;
      if (cuts.empty() || pick == 0) {
        probe.values.push_back(pick == 0 ? kNaN : 0.0f);
        continue;
      }
      const float cut = cuts[rng() % cuts.size()];
      const float inf = std::numeric_limits<float>::infinity();
      switch (pick) {
        case 1:
          probe.values.push_back(std::nextafter(cut, -inf));
          break;
        case 2:
          probe.values.push_back(std::nextafter(cut, inf));
          break;
        case 3:
          probe.values.push_back(*std::max_element(cuts.begin(), cuts.end()) + 1.0f);
          break;
        case 4:
          probe.values.push_back(*std::min_element(cuts.begin(), cuts.end()) - 1.0f);
          break;
        default:
          probe.values.push_back(cut);
          break;
      }
    }
  }
  return probe;
}

}  // namespace nimbus::ml
