// Random Cut Forest: SageMaker's built-in "randomcutforest" anomaly detector (image repository
// "randomcutforest"), after Guha, Mishra, Roy & Schrijvers, "Robust Random Cut Forest Based
// Anomaly Detection on Streams" (ICML 2016) and the scoring of AWS's open-source
// random-cut-forest library:
//   training  each of num_trees trees gets its own uniform sample of num_samples_per_tree
//             records (what a reservoir over the stream holds at its end) and is built by
//             random cuts: the cut dimension is drawn with probability proportional to the
//             bounding box's range in it, the cut value uniformly within that range;
//             identical records share a leaf whose mass counts them;
//   scoring   a record descends each tree to a leaf at depth d; the leaf scores 1/(d+1)
//             (or, for a record the tree holds, damped 1/(d + log2(mass+1))); walking back up,
//             each node mixes in 1/(depth+1) with the probability that a random cut of the
//             node's box grown to the record would isolate it. The tree's score times
//             log2(1 + sample size) is averaged over the trees: the displacement-based score
//             is ~1 or below for ordinary records and grows for anomalies (SageMaker: scores
//             beyond mean + 3 standard deviations are anomalous).
// Seeds are fixed per tree, so a job is reproducible whatever its thread count.
//
// Channels: "train" (required; unlabeled text/csv or application/x-recordio-protobuf) and
// "test" (optional, labeled: text/csv;label_size=1 or protobuf with labels, 1 = anomaly). On
// the test channel, as SageMaker documents, a record is called anomalous when its score is
// beyond three standard deviations from the mean test score, and per eval_metrics the
// accuracy and the precision/recall/F1 of the anomalous class are reported as test:accuracy,
// test:precision, test:recall and test:f1 (the tuning metric).
//
// Artifact (model_dir/rcf-model.bin, written by RcfModel::Save; little-endian):
//   "NRCF" u32 version=1, i64 feature_dim, i64 num_trees, i64 num_samples_per_tree, then per
//   tree: i64 sample_size, i64 node_count, i64 leaf_count; node_count nodes of
//   {i32 dim (-1: leaf), i32 left, i32 right, i32 mass, i32 leaf_begin, i32 leaf_end, f64 cut}
//   in depth-first order (a node's leaves are [leaf_begin, leaf_end)); leaf_count points of
//   feature_dim f32. Bounding boxes are recomputed on load.
// Predict returns per record {"score": s}.
//
// Thread-safety: RcfModel is immutable after construction (set_box_cache_limit aside, which
// must not race with scoring); Score and Predict may run concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/value.h"
#include "ml/algorithm.h"
#include "ml/dataset.h"

namespace nimbus::ml {

struct RcfOptions {
  int64_t feature_dim = 0;             // required, 1..10000
  int64_t num_trees = 100;             // 50..1000
  int64_t num_samples_per_tree = 256;  // 1..2048
  bool eval_accuracy = true;           // eval_metrics: accuracy
  bool eval_precision_recall_fscore = true;
  uint64_t seed = 0x72636621ULL;  // no hyperparameter: SageMaker's RCF has no seed
  int num_threads = 1;
};

// Reads SageMaker's randomcutforest hyperparameters: feature_dim (required), num_trees,
// num_samples_per_tree, eval_metrics (a list of accuracy, precision_recall_fscore, e.g.
// '["accuracy"]'), and mini_batch_size (the SageMaker SDK sends it; it has no effect here).
// A bad or unknown one is a ClientError.
Result<RcfOptions> ParseRcfHyperparameters(const Hyperparameters& hyperparameters);

class RcfModel final : public Model {
 public:
  struct Tree;  // defined in rcf.cc

  RcfModel(int64_t feature_dim, int64_t num_samples_per_tree, std::vector<Tree> trees);
  RcfModel(RcfModel&&) noexcept;
  RcfModel& operator=(RcfModel&&) noexcept;
  ~RcfModel() override;

  static Result<std::unique_ptr<RcfModel>> Load(const std::string& model_dir);
  Status Save(const std::string& model_dir) const;

  Result<std::vector<Value>> Predict(const Dataset& batch) override;
  int64_t feature_dim() const override { return feature_dim_; }

  int64_t num_trees() const;
  int64_t num_samples_per_tree() const { return num_samples_per_tree_; }

  // The anomaly score of every record. ClientError when the records have more features
  // than the model.
  Result<std::vector<double>> Score(const Dataset& data, int num_threads) const;

  // Bounding boxes are cached per node while trees * nodes * feature_dim * 2 stays within
  // max_values floats (default 2^27, 512 MiB); beyond it they are rebuilt from the leaves
  // during scoring (slower, same scores).
  void set_box_cache_limit(int64_t max_values);
  bool boxes_cached() const { return !boxes_.empty(); }

 private:
  void CacheBoxes();

  int64_t feature_dim_;
  int64_t num_samples_per_tree_;
  int64_t box_cache_limit_;
  std::vector<Tree> trees_;
  std::vector<std::vector<float>> boxes_;  // per tree: node_count x [min(d), max(d)]; or empty
};

// Trains on in-memory records (what the randomcutforest Algorithm does once it has read the
// train channel). log receives progress lines; it may be empty.
Result<RcfModel> FitRcf(const Dataset& train, const RcfOptions& options,
                        const std::function<void(const std::string&)>& log);

// The three-sigma labelling of a labeled test set and its quality.
struct RcfEvaluation {
  double threshold = 0;  // mean + 3 sd of the scores
  double accuracy = 0;
  double precision = 0, recall = 0, f1 = 0;                             // anomalous (label 1) class
  double negative_precision = 0, negative_recall = 0, negative_f1 = 0;  // normal class
};
// REQUIRES: scores.size() == labels.size(). Labels other than 0 count as anomalies.
RcfEvaluation EvaluateRcfScores(const std::vector<double>& scores,
                                const std::vector<float>& labels);

// Registers "randomcutforest" (image repository "randomcutforest") with the registry.
void RegisterRcfAlgorithm();

}  // namespace nimbus::ml
