// The pca Algorithm of the `train` worker: reads the channels of the job directory, runs
// FitPca, writes the artifact and logs the test channel's reconstruction error (pca.h).
#include <iomanip>
#include <sstream>

#include "ml/dataset_readers.h"
#include "ml/pca/pca.h"

namespace nimbus::ml {
namespace {

// SageMaker's first-party algorithms read RecordIO-protobuf unless the channel says otherwise.
constexpr char kDefaultContentType[] = "application/x-recordio-protobuf";

void Emit(const TrainingInput& input, const std::string& line) {
  if (input.log) input.log(line);
}

class PcaAlgorithm final : public Algorithm {
 public:
  Status Train(const TrainingInput& input) override {
    NIMBUS_ASSIGN_OR_RETURN(PcaOptions options, ParsePcaHyperparameters(input.hyperparameters));
    options.num_threads = std::max(1, input.num_threads);
    for (const auto& [name, channel] : input.channels) {
      if (name != "train" && name != "test") {
        return ClientError("Channel '" + name +
                           "' is not supported by pca; its channels are train and test");
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
    NIMBUS_ASSIGN_OR_RETURN(PcaModel model, FitPca(train, options, input.log));
    NIMBUS_RETURN_IF_ERROR(model.Save(input.model_dir));
    Emit(input, "Wrote the model (" + std::to_string(model.num_components()) + " components) to " +
                    input.model_dir);

    auto test_channel = input.channels.find("test");
    if (test_channel == input.channels.end()) return Status::Ok();
    NIMBUS_ASSIGN_OR_RETURN(Dataset test,
                            ReadChannel(test_channel->second, kDefaultContentType, read));
    NIMBUS_ASSIGN_OR_RETURN(double error, PcaReconstructionError(model, test));
    std::ostringstream line;
    line << std::setprecision(7) << "Test channel: " << test.rows
         << " records, mean squared reconstruction error " << error;
    Emit(input, line.str());
    return Status::Ok();
  }
};

}  // namespace

void RegisterPcaAlgorithm() {
  AlgorithmInfo info;
  info.name = "pca";
  info.image_repositories = {"pca"};
  info.training_content_types = {kDefaultContentType, "text/csv"};
  info.make = [] { return std::make_unique<PcaAlgorithm>(); };
  info.load = [](const std::string& model_dir) -> Result<std::unique_ptr<Model>> {
    NIMBUS_ASSIGN_OR_RETURN(std::unique_ptr<PcaModel> model, PcaModel::Load(model_dir));
    return std::unique_ptr<Model>(std::move(model));
  };
  RegisterAlgorithm(std::move(info));
}

}  // namespace nimbus::ml
