// k-nearest neighbours: SageMaker's built-in "knn" algorithm (image repository "knn") on
// faiss (ARCHITECTURE.md §6). Training samples `sample_size` labelled rows of the train
// channel (reservoir sampling with a fixed seed, so a job is reproducible), optionally
// reduces their dimension (`sign`: a dense random ±1/sqrt(t) projection; `fjlt`: the fast
// Johnson-Lindenstrauss transform as a subsampled randomized Hadamard transform), and builds
// a faiss.Flat, faiss.IVFFlat or faiss.IVFPQ index under the L2, INNER_PRODUCT or COSINE
// metric (COSINE = L2-normalised vectors searched by inner product). A test channel, when
// given, is scored per mini-batch and reported as test:accuracy (classifier) or test:mse
// (regressor), the metrics SageMaker documents.
//
// Artifact (in the model directory):
//   knn.faiss        the faiss index as faiss::write_index writes it; the dimension reduction,
//                    zero padding (IVFPQ's faiss_index_pq_m must divide the dimension) and
//                    normalisation are faiss VectorTransforms of an IndexPreTransform, so the
//                    file alone maps raw feature vectors to neighbours
//   knn-labels.bin   one little-endian float32 label per indexed point, in faiss id order
//   knn-model.json   {"format": 1, "predictor_type", "k", "feature_dim", "index_type",
//                     "index_metric", "num_points", "dimension_reduction_type", ...}
//
// Prediction follows SageMaker's inference container: classifier → the most frequent label of
// the k neighbours (ties go to the label of the nearest neighbour among the tied ones),
// regressor → their mean; {"predicted_label": x} per record, or with verbose output also the
// k "distances" in the index's order (squared L2 for L2; similarities for INNER_PRODUCT and
// COSINE) and their "labels".
//
// Thread-safety: a KnnModel may be used from several threads at once (faiss searches are
// const); training is single-job (it sets the process's OpenMP thread count).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/value.h"
#include "ml/algorithm.h"
#include "ml/dataset.h"

namespace nimbus::ml {

class KnnModel : public Model {
 public:
  // Loads the artifact of a model directory; ClientError when files are missing or corrupt.
  static Result<std::unique_ptr<KnnModel>> Load(const std::string& model_dir);
  ~KnnModel() override;

  // {"predicted_label": x} per row. ClientError when the batch's feature count differs from
  // feature_dim().
  Result<std::vector<Value>> Predict(const Dataset& batch) override;
  // SageMaker's verbose output (Accept "...; verbose=true"): predicted_label plus the
  // neighbours' "distances" and "labels", nearest first.
  Result<std::vector<Value>> PredictVerbose(const Dataset& batch);
  int64_t feature_dim() const override;
  int k() const;
  bool classifier() const;

 private:
  struct Impl;
  friend Status TrainKnn(const TrainingInput& input, const Dataset& train, const Dataset* test);
  explicit KnnModel(std::unique_ptr<Impl> impl);
  Result<std::vector<Value>> Run(const Dataset& batch, bool verbose);
  std::unique_ptr<Impl> impl_;
};

// Trains on data already read (the channels' datasets); `test` may be null. Train() reads the
// train and test channels (text/csv or application/x-recordio-protobuf) and calls this.
Status TrainKnn(const TrainingInput& input, const Dataset& train, const Dataset* test);

std::unique_ptr<Algorithm> MakeKnnAlgorithm();
// Registers "knn" (image repository "knn"; text/csv, application/x-recordio-protobuf).
void RegisterKnnAlgorithm();

}  // namespace nimbus::ml
