// PCA: SageMaker's built-in "pca" algorithm (image repository "pca"), in its two documented
// modes ("How PCA Works"):
//   regular     sums x_i^T x_i and x_i over mini-batches; the top num_components eigenvectors of
//               the (mean-subtracted, when subtract_mean) scatter matrix are the components
//               (exact, O(feature_dim^2) memory);
//   randomized  a randomized subspace iteration (Halko, Martinsson & Tropp 2011) on the same
//               operator, never formed: a Gaussian sketch of num_components + extra_components
//               columns (extra_components=-1 means max(10, num_components)), two power passes,
//               then a Rayleigh-Ritz step (O(feature_dim * sketch) memory).
// Both stream the training records in mini-batches. Singular values are those of the
// (centered) data matrix. As in SageMaker's model, components are ordered by increasing
// singular value: the LAST entry of a projection is the top principal component. Each
// component's sign is fixed so that its largest-magnitude coordinate is positive.
//
// Channels: "train" (required) and "test" (optional: its reconstruction error is logged;
// SageMaker documents no PCA metric). text/csv without a label column, or
// application/x-recordio-protobuf.
//
// Artifact (model_dir/pca-model.json, written by PcaModel::Save):
//   {"format": "nimbus-pca", "version": 1, "feature_dim": d, "num_components": c,
//    "subtract_mean": true, "mean": [d numbers],
//    "s": [c singular values, ascending], "v": [[c numbers] x d rows]}   (v: d x c, as SageMaker's)
// Predict returns per record {"projection": [c numbers]} = (x - mean) v.
//
// Thread-safety: PcaModel is immutable after construction; Predict may run concurrently.
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

struct PcaOptions {
  std::string algorithm_mode = "regular";  // regular | randomized
  int64_t num_components = 0;              // required, >= 1
  int64_t feature_dim = 0;                 // required, >= 1
  int64_t mini_batch_size = 0;             // required by SageMaker, >= 1
  bool subtract_mean = true;
  int64_t extra_components = -1;  // randomized only; -1 = max(10, num_components)
  uint64_t seed = 0x70636121ULL;  // no hyperparameter: SageMaker's pca has no seed
  int num_threads = 1;
};

// Reads SageMaker's pca hyperparameters: feature_dim, mini_batch_size, num_components
// (required), algorithm_mode, subtract_mean, extra_components. A bad or unknown one (or
// num_components > feature_dim) is a ClientError.
Result<PcaOptions> ParsePcaHyperparameters(const Hyperparameters& hyperparameters);

class PcaModel final : public Model {
 public:
  // mean: feature_dim values (ignored when !subtract_mean); singular_values: num_components,
  // ascending; components: feature_dim rows of num_components values (row-major), column j
  // being the direction of singular_values[j].
  // REQUIRES: sizes consistent, feature_dim > 0, num_components > 0.
  PcaModel(int64_t feature_dim, bool subtract_mean, std::vector<float> mean,
           std::vector<float> singular_values, std::vector<float> components);

  static Result<std::unique_ptr<PcaModel>> Load(const std::string& model_dir);
  Status Save(const std::string& model_dir) const;

  Result<std::vector<Value>> Predict(const Dataset& batch) override;
  int64_t feature_dim() const override { return feature_dim_; }

  int64_t num_components() const { return static_cast<int64_t>(singular_values_.size()); }
  bool subtract_mean() const { return subtract_mean_; }
  const std::vector<float>& mean() const { return mean_; }
  const std::vector<float>& singular_values() const { return singular_values_; }
  const std::vector<float>& components() const { return components_; }

  // rows x num_components projections, row-major. ClientError when the records have more
  // features than the model.
  Result<std::vector<float>> Project(const Dataset& data) const;

 private:
  int64_t feature_dim_;
  bool subtract_mean_;
  std::vector<float> mean_;
  std::vector<float> singular_values_;
  std::vector<float> components_;
};

// Trains on in-memory records (what the pca Algorithm does once it has read the train
// channel). log receives progress lines; it may be empty.
Result<PcaModel> FitPca(const Dataset& train, const PcaOptions& options,
                        const std::function<void(const std::string&)>& log);

// Mean squared reconstruction error of data (per record, summed over features) when
// projected on the model's components and mapped back.
Result<double> PcaReconstructionError(const PcaModel& model, const Dataset& data);

// Registers "pca" (image repository "pca") with the algorithm registry.
void RegisterPcaAlgorithm();

}  // namespace nimbus::ml
