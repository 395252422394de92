// The randomcutforest Algorithm of the `train` worker: reads the channels of the job
// directory, runs FitRcf, writes the artifact and scores the labeled test channel (rcf.h).
#include <iomanip>
#include <sstream>

#include "ml/dataset_readers.h"
#include "ml/rcf/rcf.h"

namespace nimbus::ml {
namespace {

// SageMaker's first-party algorithms read RecordIO-protobuf unless the channel says otherwise.
constexpr char kDefaultContentType[] = "application/x-recordio-protobuf";

void Emit(const TrainingInput& input, const std::string& line) {
  if (input.log) input.log(line);
}

std::string Fmt(double v) {
  std::ostringstream out;
  out << std::setprecision(6) << v;
  return out.str();
}

class RcfAlgorithm final : public Algorithm {
 public:
  Status Train(const TrainingInput& input) override {
    NIMBUS_ASSIGN_OR_RETURN(RcfOptions options, ParseRcfHyperparameters(input.hyperparameters));
    options.num_threads = std::max(1, input.num_threads);
    for (const auto& [name, channel] : input.channels) {
      if (name != "train" && name != "test") {
        return ClientError("Channel '" + name +
                           "' is not supported by randomcutforest; its channels are train and "
                           "test");
      }
    }
    auto train_channel = input.channels.find("train");
    if (train_channel == input.channels.end()) return ClientError("Channel 'train' is required");
    ReadOptions read;
    read.labeled = false;  // csv without a label column; protobuf labels are ignored
    read.feature_dim = options.feature_dim;
    NIMBUS_ASSIGN_OR_RETURN(Dataset train,
                            ReadChannel(train_channel->second, kDefaultContentType, read));
    LogTrainRecordsRead(input, train.rows);
    NIMBUS_ASSIGN_OR_RETURN(RcfModel model, FitRcf(train, options, input.log));
    NIMBUS_RETURN_IF_ERROR(model.Save(input.model_dir));
    Emit(input,
         "Wrote the model (" + std::to_string(model.num_trees()) + " trees) to " + input.model_dir);

    auto test_channel = input.channels.find("test");
    if (test_channel == input.channels.end()) return Status::Ok();
    read.labeled = true;  // text/csv;label_size=1 (the csv default) or protobuf with labels
    NIMBUS_ASSIGN_OR_RETURN(Dataset test,
                            ReadChannel(test_channel->second, kDefaultContentType, read));
    if (test.rows == 0) return ClientError("The test channel has no records");
    if (!test.has_labels()) {
      return ClientError(
          "The test channel has no labels; randomcutforest scores a labeled test set "
          "(text/csv;label_size=1, or RecordIO-protobuf records with a label)");
    }
    NIMBUS_ASSIGN_OR_RETURN(std::vector<double> scores, model.Score(test, options.num_threads));
    const RcfEvaluation e = EvaluateRcfScores(scores, test.labels);
    Emit(input, "Test channel: " + std::to_string(test.rows) +
                    " records; anomalous when the score exceeds mean + 3 sd = " + Fmt(e.threshold));
    if (options.eval_accuracy) {
      Emit(input, "#test_score (algo-1) : ('accuracy', " + Fmt(e.accuracy) + ")");
      if (input.metrics) input.metrics->Report("test:accuracy", e.accuracy);
    }
    if (options.eval_precision_recall_fscore) {
      Emit(input,
           "#test_score (algo-1) : ('precision_recall_fscore', {'positive': "
           "{'precision': " +
               Fmt(e.precision) + ", 'recall': " + Fmt(e.recall) + ", 'f1': " + Fmt(e.f1) +
               "}, 'negative': {'precision': " + Fmt(e.negative_precision) +
               ", 'recall': " + Fmt(e.negative_recall) + ", 'f1': " + Fmt(e.negative_f1) + "}})");
      if (input.metrics) {
        input.metrics->Report("test:precision", e.precision);
        input.metrics->Report("test:recall", e.recall);
        input.metrics->Report("test:f1", e.f1);
      }
    }
    return Status::Ok();
  }
};

}  // namespace

void RegisterRcfAlgorithm() {
  AlgorithmInfo info;
  info.name = "randomcutforest";
  info.image_repositories = {"randomcutforest"};
  info.training_content_types = {kDefaultContentType, "text/csv"};
  info.make = [] { return std::make_unique<RcfAlgorithm>(); };
  info.load = [](const std::string& model_dir) -> Result<std::unique_ptr<Model>> {
    NIMBUS_ASSIGN_OR_RETURN(std::unique_ptr<RcfModel> model, RcfModel::Load(model_dir));
    return std::unique_ptr<Model>(std::move(model));
  };
  RegisterAlgorithm(std::move(info));
}

}  // namespace nimbus::ml
