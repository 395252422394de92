// SageMaker's built-in XGBoost algorithm (the "xgboost" / "sagemaker-xgboost" images,
// container version 1.7) on libxgboost: hyperparameters as xgboost_params.h validates them,
// training as xgboost_train.h describes, the xgboost-model artifact and its predictions as
// xgboost_model.h describes.
//
// Channels: "train" (required) and "validation" (optional); any other is a ClientError, as
// the container rejects extraneous channels. Content types: text/libsvm (the default; also
// text/x-libsvm and libsvm), text/csv (label in the first column; with csv_weights=1 the
// second column is the instance weight) and application/x-recordio-protobuf. The validation
// channel defaults to the train channel's content type. application/x-parquet and
// application/jsonlines are ClientErrors.
//
// Thread-safety: RegisterXgboostAlgorithm() runs once, before the registry is read; an
// Algorithm instance belongs to one thread.
#pragma once

#include <memory>

#include "ml/algorithm.h"

namespace nimbus::ml {

// Registers "xgboost" with the image repositories "xgboost" and "sagemaker-xgboost".
void RegisterXgboostAlgorithm();

std::unique_ptr<Algorithm> MakeXgboostAlgorithm();

// csv_weights=1: moves the first feature column (the CSV's second column) into weights.
// ClientError when there is no such column.
Status TakeCsvWeights(Dataset& data);

}  // namespace nimbus::ml
