// K-Means: SageMaker's built-in "kmeans" algorithm (image repository "kmeans"), after the
// scheme SageMaker documents ("How K-Means Clustering Works"):
//   1. K = k * extra_center_factor centers are seeded (init_method: random | kmeans++) from a
//      mini-batch of the training data;
//   2. every epoch streams the data in mini-batches: each record joins its nearest center, and
//      each center moves to the running (optionally exponentially decayed, half_life_time_size)
//      mean of the records it absorbed;
//   3. a local Lloyd (EM) run on the K centers, each weighted by the mass it absorbed, reduces
//      them to the k centers of the model (local_lloyd_* hyperparameters; the best of
//      local_lloyd_num_trials runs wins).
// Two deliberate differences from a pure stream: the seeding mini-batch is a uniform sample of
// the data and each epoch visits the records in a shuffled order, so that data sorted by
// cluster does not bias the centers. Seeds are fixed, so a job is reproducible.
//
// Channels: "train" (required) and "test" (optional: test:msd / test:ssd per eval_metrics);
// text/csv without a label column, or application/x-recordio-protobuf (labels ignored).
//
// Artifact (model_dir/kmeans-model.json, written by KmeansModel::Save):
//   {"format": "nimbus-kmeans", "version": 1, "feature_dim": d, "k": k,
//    "centers": [[c_00, ..., c_0(d-1)], ...]}          k rows of d numbers
// Predict returns per record {"closest_cluster": i, "distance_to_cluster": d}, the Euclidean
// distance, both numbers as SageMaker's container returns them (floats: 2.0, 0.73).
//
// Thread-safety: KmeansModel is immutable after construction; Predict may run concurrently.
// FitKmeans and KmeansAlgorithm use their own state only.
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

struct KmeansOptions {
  int64_t k = 0;            // required, >= 1
  int64_t feature_dim = 0;  // required, >= 1
  int64_t mini_batch_size = 5000;
  int64_t epochs = 1;
  std::string init_method = "random";  // random | kmeans++
  std::string local_lloyd_init_method = "kmeans++";
  int64_t local_lloyd_max_iter = 300;
  double local_lloyd_tol = 1e-4;       // relative change of the loss that stops a Lloyd run
  int64_t local_lloyd_num_trials = 0;  // 0 = "auto": 10 runs
  int64_t half_life_time_size = 0;     // 0 = no decay
  int64_t extra_center_factor = 0;     // 0 = "auto": ceil(ln n) clamped to [2, 10]
  bool eval_msd = true;                // eval_metrics '["msd"]' (the default)
  bool eval_ssd = false;
  uint64_t seed = 0x6b6d65616e73ULL;  // no hyperparameter: SageMaker's kmeans has no seed
  int num_threads = 1;
};

// Reads SageMaker's kmeans hyperparameters: k, feature_dim (required), mini_batch_size,
// epochs, init_method, local_lloyd_{init_method,max_iter,tol,num_trials},
// half_life_time_size, extra_center_factor ("auto" or an integer), eval_metrics (a JSON-ish
// list: '["msd"]', "['msd', 'ssd']" ...) and force_dense (accepted; batches are always dense
// here). A bad or unknown one is a ClientError.
Result<KmeansOptions> ParseKmeansHyperparameters(const Hyperparameters& hyperparameters);

class KmeansModel final : public Model {
 public:
  // centers: k rows of feature_dim values, row-major.
  // REQUIRES: feature_dim > 0, centers non-empty and a multiple of feature_dim.
  KmeansModel(int64_t feature_dim, std::vector<float> centers);

  static Result<std::unique_ptr<KmeansModel>> Load(const std::string& model_dir);
  Status Save(const std::string& model_dir) const;

  Result<std::vector<Value>> Predict(const Dataset& batch) override;
  int64_t feature_dim() const override { return feature_dim_; }

  int64_t k() const { return static_cast<int64_t>(centers_.size()) / feature_dim_; }
  const std::vector<float>& centers() const { return centers_; }

  // The nearest center of every record (lowest index on ties) and the squared Euclidean
  // distance to it. ClientError when the records have more features than the model.
  Status Assign(const Dataset& data, int num_threads, std::vector<int32_t>* cluster,
                std::vector<double>* squared_distance) const;

 private:
  int64_t feature_dim_;
  std::vector<float> centers_;
};

// Trains on in-memory records (what the kmeans Algorithm does once it has read the train
// channel). log receives SageMaker-style progress lines; it may be empty.
Result<KmeansModel> FitKmeans(const Dataset& train, const KmeansOptions& options,
                              const std::function<void(const std::string&)>& log);

struct KmeansScore {
  double msd = 0;  // mean squared distance of the records to their nearest center
  double ssd = 0;  // sum of those squared distances
};
Result<KmeansScore> ScoreKmeans(const KmeansModel& model, const Dataset& data, int num_threads);

// Registers "kmeans" (image repository "kmeans") with the algorithm registry.
void RegisterKmeansAlgorithm();

}  // namespace nimbus::ml
