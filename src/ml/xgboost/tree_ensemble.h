// TreeEnsemble: a trained XGBoost gbtree model flattened for prediction without libxgboost,
// so that a model server's cost per request is the tree traversal itself (100 trees of depth
// 6: ~1.4 us for one row, ~0.75 us per row in batches) rather than XGBoosterPredict's
// per-call overhead (a DMatrix, the predictor's set-up: 30-65 us for one row).
//
// It reproduces the CPU prediction of the installed libxgboost (Debian's 1.7.4, which the
// tests compare it with) exactly: a row goes left when value < threshold (float compare), a
// missing value (NaN in dense rows, an absent entry in sparse rows, a feature beyond the
// row's length) follows the node's default direction; the leaves of every tree are summed
// in float, in tree order, per output group (tree_info), onto the base margin (base_score
// through the objective's ProbToMargin); then the objective's transform (sigmoid, exp,
// softmax, argmax, hinge step or none) applies.
//
// Only what has been checked against libxgboost is accepted; anything else (dart and
// gblinear boosters, categorical splits, vector leaves, multi-target models, objectives
// not listed in tree_ensemble.cc) is refused with a NotImplemented status, which means
// "predict with libxgboost instead" — never an error to show a user.
//
// Layout: the nodes of all trees live in one contiguous array of 16-byte nodes (children,
// feature slot, threshold or leaf value), each tree's re-laid out breadth-first from its
// root. Rows are walked down the trees in lock-step lanes of (tree, row) pairs, branch-free,
// for the tree's depth in steps (leaves loop onto themselves); one compare per step, missing
// values included (see ForEachBlock).
//
// Thread-safety: immutable after construction; Predict may run on any number of threads at
// once (each call uses its own scratch space).
#pragma once

#include <xgboost/c_api.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "ml/dataset.h"

namespace nimbus::ml {

class TreeEnsemble {
 public:
  // From libxgboost's JSON model (XGBoosterSaveModelToBuffer with {"format": "json"}, or a
  // model file saved as JSON). NotImplemented for models outside the supported set (see
  // above); Internal for text that is not an XGBoost JSON model.
  static Result<TreeEnsemble> FromJson(std::string_view model_json);
  // From a loaded booster, through its JSON model. Same errors as FromJson.
  static Result<TreeEnsemble> FromBooster(BoosterHandle booster);

  const std::string& objective() const { return objective_; }
  int64_t num_feature() const { return num_feature_; }
  // Margins per row: num_class for multi:* objectives, else 1.
  int num_groups() const { return num_groups_; }
  // Predictions per row, as XGBoosterPredict returns them: num_class for multi:softprob,
  // else 1 (multi:softmax gives the class index as a float).
  int output_width() const { return output_width_; }
  size_t num_trees() const { return roots_.size(); }
  // base_score as a margin (after the objective's ProbToMargin).
  float base_margin() const { return base_margin_; }

  // Writes batch.rows * output_width() predictions, row-major, as XGBoosterPredict (all
  // trees, no option) computes them. Labels and weights of batch are ignored.
  // NotImplemented when the batch is one libxgboost rejects or that is malformed (infinite
  // values, more columns than num_feature(), sparse indices outside [0, cols), sizes that
  // disagree with rows/cols): the caller then hands it to libxgboost, whose answer or error
  // stands.
  Status Predict(const Dataset& batch, std::vector<float>* out) const;
  // The untransformed margins (XGBoosterPredict's output_margin): rows * num_groups().
  Status PredictMargin(const Dataset& batch, std::vector<float>* out) const;

  // `rows` dense rows of num_feature() values that sit on the model's own split points:
  // each value is a threshold of its feature, the float just below one, NaN (missing) or
  // beyond every threshold, picked by a generator seeded with `seed`. Comparing Predict on
  // them with libxgboost's prediction checks every comparison edge a real input can hit.
  Dataset ProbeRows(int64_t rows, uint32_t seed) const;

 private:
  struct Node {
    // Left and right child in nodes_. A leaf's both point to itself, so that a walk of a
    // fixed number of steps (the tree's depth) ends on the leaf whatever the path.
    int32_t child[2];
    // Where the walk reads the feature in a row of 2 * num_feature() floats: the feature's
    // index when a missing value goes right, num_feature() + index when it goes left.
    uint32_t slot;
    float value;  // the threshold (finite), or the leaf's value
  };
  // Independent (tree, row) walks advanced together: their loads and compares overlap in
  // the CPU instead of waiting on each other, and no branch depends on the data.
  static constexpr int kLanes = 16;
  // The most floats of row scratch a call sets up at once (more features: fewer rows
  // per block).
  static constexpr size_t kScratchFloats = size_t{1} << 16;

  enum class Transform : uint8_t { kIdentity, kSigmoid, kExp, kSoftmax, kArgmax, kHinge };

  friend struct TreeEnsembleBuilder;

  Status CheckBatch(const Dataset& batch) const;
  // Calls fn(first_row, n, rows) for consecutive blocks of at most kLanes rows. rows[i] is
  // the row twice over, 2 * num_feature() floats (at least one): in the first half a missing
  // value is +infinity, which every finite threshold sends right, in the second -infinity,
  // which every one sends left. A node reads the half of its default direction, so the walk
  // needs no missing-value test (libxgboost refuses infinite inputs: none is ambiguous).
  template <typename Fn>
  void ForEachBlock(const Dataset& batch, Fn&& fn) const;
  // margins[i * num_groups() + g] = base margin + the leaves of group g's trees, for the n
  // rows, summed as libxgboost sums them: in float, tree after tree.
  void BlockMargins(const float* const* rows, int n, float* margins) const;

  std::string objective_;
  Transform transform_ = Transform::kIdentity;
  int64_t num_feature_ = 0;
  int num_groups_ = 1;
  int output_width_ = 1;
  float base_margin_ = 0.0f;
  std::vector<Node> nodes_;
  std::vector<int32_t> roots_;   // per tree: its root in nodes_
  std::vector<int32_t> depths_;  // per tree: the steps from its root to its deepest leaf
  std::vector<int32_t> groups_;  // per tree: its output group
};

}  // namespace nimbus::ml
