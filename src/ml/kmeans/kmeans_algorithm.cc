// The kmeans Algorithm of the `train` worker: reads the channels of the job directory, runs
// FitKmeans, writes the artifact and scores the test channel (kmeans.h describes all three).
#include <iomanip>
#include <sstream>

#include "ml/dataset_readers.h"
#include "ml/kmeans/kmeans.h"

namespace nimbus::ml {
namespace {

// SageMaker's first-party algorithms read RecordIO-protobuf unless the channel says otherwise.
constexpr char kDefaultContentType[] = "application/x-recordio-protobuf";

void Emit(const TrainingInput& input, const std::string& line) {
  if (input.log) input.log(line);
}

std::string Fmt(double v) {
  std::ostringstream out;
  out << std::setprecision(7) << v;
  return out.str();
}

class KmeansAlgorithm final : public Algorithm {
 public:
  Status Train(const TrainingInput& input) override {
    NIMBUS_ASSIGN_OR_RETURN(KmeansOptions options,
                            ParseKmeansHyperparameters(input.hyperparameters));
    options.num_threads = std::max(1, input.num_threads);
    for (const auto& [name, channel] : input.channels) {
      if (name != "train" && name != "test") {
        return ClientError("Channel '" + name +
                           "' is not supported by kmeans; its channels are train and test");
      }
    }
    auto train_channel = input.channels.find("train");
    if (train_channel == input.channels.end()) return ClientError("Channel 'train' is required");
    ReadOptions read;
    read.labeled = false;  // unsupervised: csv has no label column, protobuf labels are ignored
    read.feature_dim = options.feature_dim;
    NIMBUS_ASSIGN_OR_RETURN(Dataset train,
                            ReadChannel(train_channel->second, kDefaultContentType, read));
    LogTrainRecordsRead(input, train.rows);
    NIMBUS_ASSIGN_OR_RETURN(KmeansModel model, FitKmeans(train, options, input.log));
    NIMBUS_RETURN_IF_ERROR(model.Save(input.model_dir));
    Emit(input,
         "Wrote the model (" + std::to_string(model.k()) + " centers) to " + input.model_dir);

    auto test_channel = input.channels.find("test");
    if (test_channel == input.channels.end()) return Status::Ok();
    NIMBUS_ASSIGN_OR_RETURN(Dataset test,
                            ReadChannel(test_channel->second, kDefaultContentType, read));
    Emit(input, "Read " + std::to_string(test.rows) + " records from the test channel");
    if (test.rows == 0) return ClientError("The test channel has no records");
    NIMBUS_ASSIGN_OR_RETURN(KmeansScore score, ScoreKmeans(model, test, options.num_threads));
    if (options.eval_msd) {
      Emit(input, "#test_score (algo-1) : ('msd', " + Fmt(score.msd) + ")");
      if (input.metrics) input.metrics->Report("test:msd", score.msd);
    }
    if (options.eval_ssd) {
      Emit(input, "#test_score (algo-1) : ('ssd', " + Fmt(score.ssd) + ")");
      if (input.metrics) input.metrics->Report("test:ssd", score.ssd);
    }
    return Status::Ok();
  }
};

}  // namespace

void RegisterKmeansAlgorithm() {
  AlgorithmInfo info;
  info.name = "kmeans";
  info.image_repositories = {"kmeans"};
  info.training_content_types = {kDefaultContentType, "text/csv"};
  info.make = [] { return std::make_unique<KmeansAlgorithm>(); };
  info.load = [](const std::string& model_dir) -> Result<std::unique_ptr<Model>> {
    NIMBUS_ASSIGN_OR_RETURN(std::unique_ptr<KmeansModel> model, KmeansModel::Load(model_dir));
    return std::unique_ptr<Model>(std::move(model));
  };
  RegisterAlgorithm(std::move(info));
}

}  // namespace nimbus::ml
