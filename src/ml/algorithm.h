// The built-in algorithms behind SageMaker's training images and model servers (issue 6,
// ARCHITECTURE.md §6). Each is a plain C++ library: an Algorithm trains from the channels
// of a job directory and writes its artifact files into a model directory; a Model loads
// those files and predicts on batches. Nothing here knows HTTP, S3 or SageMaker's API: the
// `train` worker kind and the model servers sit on top.
//
// An algorithm registers an AlgorithmInfo (RegisterBuiltinAlgorithms() in
// builtin_algorithms.cc lists them all) naming the image repositories it answers for
// ("xgboost", "sagemaker-xgboost", "linear-learner", "kmeans" ...), so that SageMaker image
// URIs of any region and account resolve to it.
//
// Errors: a bad hyperparameter or bad data is Status::Aws("ClientError", 400, message) —
// the job then fails with "ClientError: <message>", as SageMaker's algorithms do; anything
// else is an AlgorithmError.
//
// Thread-safety: the registry is filled once (RegisterBuiltinAlgorithms) and read-only
// after; an Algorithm or Model instance belongs to one thread unless it says otherwise.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/value.h"
#include "ml/dataset.h"

namespace nimbus::ml {

using Hyperparameters = std::map<std::string, std::string>;

// A ClientError status (bad hyperparameter, bad data), worded by the caller.
Status ClientError(std::string message);

// ClientError unless data's records have `dim` features (sparse ones: at most dim), as
// feature_dim declares; `what` names the data ("train channel", "request").
Status CheckFeatures(const Dataset& data, int64_t dim, const std::string& what);
// Whether none of the values is NaN or infinite.
bool AllFinite(const float* values, size_t count);
// ClientError when a feature value is NaN or infinite.
Status CheckFinite(const Dataset& data, const std::string& what);
// Writes an artifact file <dir>/<name> whole or not at all (temp file, then rename),
// creating dir.
Status WriteArtifact(const std::string& dir, const std::string& name, const std::string& bytes);

// Where an algorithm reports the metrics SageMaker's console shows: "train:rmse",
// "validation:binary_classification_accuracy" … (the names SageMaker documents per
// algorithm). The `train` worker records them for FinalMetricDataList and CloudWatch.
class MetricsReporter {
 public:
  virtual ~MetricsReporter() = default;
  virtual void Report(const std::string& name, double value) = 0;
};

// One input channel, as the job directory holds it (input/data/<name>/…).
struct Channel {
  std::string name;
  std::string dir;           // every regular file below it is data
  std::string content_type;  // "text/csv", "text/libsvm", ... ("" = the algorithm's default)
  // Pipe mode: the data arrives through FIFOs <dir>_<epoch> rather than files in dir.
  bool pipe = false;
  std::vector<std::string> Files() const;  // sorted paths of the regular files under dir
};

struct TrainingInput {
  Hyperparameters hyperparameters;
  std::map<std::string, Channel> channels;  // by name ("train", "validation", "test")
  std::string model_dir;                    // write the artifact files here
  std::string output_data_dir;              // extra outputs (uploaded as output.tar.gz)
  std::string checkpoint_dir;               // empty when the job has no CheckpointConfig
  int num_threads = 1;                      // the instance type's vCPUs, capped by the host
  MetricsReporter* metrics = nullptr;       // never null during Train
  std::function<void(const std::string& line)> log;  // one line of the job's log
};

// Logs "Read <rows> records from the train channel" once the train channel is in memory:
// the job log's mark between reading and fitting, which bench/ml_train.cc times from.
void LogTrainRecordsRead(const TrainingInput& input, int64_t rows);

class Algorithm {
 public:
  virtual ~Algorithm() = default;
  // Validates the hyperparameters, reads the channels, trains, writes the artifact.
  virtual Status Train(const TrainingInput& input) = 0;
};

// One prediction per record, as a Value map of the fields SageMaker's containers return
// (e.g. {"score": 0.93, "predicted_label": 1} for a binary linear learner, {"closest_cluster":
// 2, "distance_to_cluster": 0.7} for k-means); the model servers serialize them per Accept.
class Model {
 public:
  virtual ~Model() = default;
  virtual Result<std::vector<Value>> Predict(const Dataset& batch) = 0;
  // The feature dimension the model expects (0 when any).
  virtual int64_t feature_dim() const { return 0; }
};

struct AlgorithmInfo {
  std::string name;  // "xgboost", "linear-learner", "kmeans", "pca", "knn",
                     // "factorization-machines", "randomcutforest", "blazingtext"
  // The last path component of the image repositories that mean this algorithm
  // ("sagemaker-xgboost" and "xgboost" for XGBoost).
  std::vector<std::string> image_repositories;
  std::vector<std::string> training_content_types;  // the first is the default
  std::function<std::unique_ptr<Algorithm>()> make;
  std::function<Result<std::unique_ptr<Model>>(const std::string& model_dir)> load;
};

void RegisterAlgorithm(AlgorithmInfo info);
const AlgorithmInfo* FindAlgorithm(std::string_view name);
// The algorithm of a SageMaker image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>,
// also without the registry, or with a digest); nullptr when none.
const AlgorithmInfo* FindAlgorithmForImage(std::string_view image_uri);
std::vector<const AlgorithmInfo*> AllAlgorithms();

// Reads typed hyperparameters with SageMaker's wording of errors, e.g.
//   ClientError: Hyperparameter 'num_round' is required
//   ClientError: Hyperparameter 'eta' = '2' is out of range: must be in [0, 1]
//   ClientError: Hyperparameter 'objective' = 'foo' must be one of: binary:logistic, ...
// Unknown names are reported by CheckAllKnown() (built-in algorithms reject them).
class HyperparameterReader {
 public:
  explicit HyperparameterReader(const Hyperparameters& values) : values_(values) {}
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  Result<int64_t> Int(const std::string& name, std::optional<int64_t> fallback,
                      int64_t min = INT64_MIN, int64_t max = INT64_MAX);
  Result<double> Float(const std::string& name, std::optional<double> fallback, double min = -1e308,
                       double max = 1e308);
  Result<std::string> Choice(const std::string& name, std::optional<std::string> fallback,
                             const std::vector<std::string>& allowed);
  Result<bool> Bool(const std::string& name, std::optional<bool> fallback);
  Result<std::string> String(const std::string& name, std::optional<std::string> fallback);
  // ClientError naming the first hyperparameter never read through this reader.
  Status CheckAllKnown(const std::vector<std::string>& also_allowed = {}) const;

 private:
  const Hyperparameters& values_;
  mutable std::vector<std::string> read_;
};

}  // namespace nimbus::ml
