#include "ml/xgboost/xgboost_algorithm.h"

#include "core/strings.h"
#include "ml/dataset_readers.h"
#include "ml/xgboost/xgboost_model.h"
#include "ml/xgboost/xgboost_params.h"
#include "ml/xgboost/xgboost_train.h"

namespace nimbus::ml {
namespace {

constexpr char kDefaultContentType[] = "text/libsvm";

// The content type the container would accept, normalized for ParseContentType; ClientError
// for the types this algorithm does not train on.
Result<std::string> TrainingContentType(const std::string& channel, const std::string& given) {
  std::string mime = given.empty() ? kDefaultContentType : given;
  std::string base = ToLower(Trim(mime.substr(0, mime.find(';'))));
  // The container also takes the bare names.
  if (base == "libsvm") mime = "text/libsvm";
  if (base == "csv") mime = "text/csv" + mime.substr(std::min(mime.size(), mime.find(';')));
  if (base == "application/x-parquet" || base == "application/parquet" || base == "parquet") {
    return ClientError("Content type " + base + " of channel '" + channel +
                       "' is not supported: use text/libsvm, text/csv or "
                       "application/x-recordio-protobuf");
  }
  NIMBUS_ASSIGN_OR_RETURN(ContentTypeSpec spec, ParseContentType(mime));
  if (spec.type == ContentType::kJsonLines) {
    return ClientError("Content type " + base + " of channel '" + channel +
                       "' is not supported for training XGBoost: use text/libsvm, text/csv or "
                       "application/x-recordio-protobuf");
  }
  return mime;
}

class XgboostAlgorithm : public Algorithm {
 public:
  Status Train(const TrainingInput& input) override {
    NIMBUS_ASSIGN_OR_RETURN(XgboostConfig config,
                            ParseXgboostHyperparameters(input.hyperparameters));
    for (const auto& [name, channel] : input.channels) {
      if (name != "train" && name != "validation") {
        return ClientError("Extraneous channel found: '" + name +
                           "'. The XGBoost algorithm takes the channels 'train' and "
                           "'validation'");
      }
    }
    auto train_it = input.channels.find("train");
    if (train_it == input.channels.end()) {
      return ClientError("The 'train' channel is required");
    }
    NIMBUS_ASSIGN_OR_RETURN(std::string train_type,
                            TrainingContentType("train", train_it->second.content_type));
    const bool csv = StartsWith(ToLower(train_type), "text/csv");
    ReadOptions options;
    options.labeled = true;
    Channel train_channel = train_it->second;
    train_channel.content_type = train_type;
    NIMBUS_ASSIGN_OR_RETURN(Dataset train, ReadChannel(train_channel, train_type, options));
    if (config.csv_weights && csv) NIMBUS_RETURN_IF_ERROR(TakeCsvWeights(train));

    std::optional<Dataset> validation;
    if (auto it = input.channels.find("validation"); it != input.channels.end()) {
      NIMBUS_ASSIGN_OR_RETURN(std::string type,
                              TrainingContentType("validation", it->second.content_type.empty()
                                                                    ? train_type
                                                                    : it->second.content_type));
      Channel channel = it->second;
      channel.content_type = type;
      NIMBUS_ASSIGN_OR_RETURN(validation, ReadChannel(channel, type, options));
      // The weight column is not a feature in validation data either.
      if (config.csv_weights && StartsWith(ToLower(type), "text/csv")) {
        NIMBUS_RETURN_IF_ERROR(TakeCsvWeights(*validation));
      }
    }
    return TrainXgboost(config, train, validation ? &*validation : nullptr, input);
  }
};

}  // namespace

Status TakeCsvWeights(Dataset& data) {
  if (data.rows == 0) return Status::Ok();
  if (data.cols < 1) {
    return ClientError(
        "csv_weights=1 needs a weight column after the label, but the data has "
        "no columns after it");
  }
  if (data.sparse) data = data.ToDense();
  std::vector<float> weights(static_cast<size_t>(data.rows));
  std::vector<float> features;
  features.reserve(static_cast<size_t>(data.rows * (data.cols - 1)));
  for (int64_t r = 0; r < data.rows; ++r) {
    const float* row = data.values.data() + r * data.cols;
    weights[static_cast<size_t>(r)] = row[0];
    features.insert(features.end(), row + 1, row + data.cols);
  }
  data.values = std::move(features);
  data.weights = std::move(weights);
  data.cols -= 1;
  return Status::Ok();
}

std::unique_ptr<Algorithm> MakeXgboostAlgorithm() { return std::make_unique<XgboostAlgorithm>(); }

void RegisterXgboostAlgorithm() {
  AlgorithmInfo info;
  info.name = "xgboost";
  info.image_repositories = {"xgboost", "sagemaker-xgboost"};
  info.training_content_types = {"text/libsvm", "text/csv", "application/x-recordio-protobuf"};
  info.make = &MakeXgboostAlgorithm;
  info.load = &LoadXgboostModel;
  RegisterAlgorithm(std::move(info));
}

}  // namespace nimbus::ml
