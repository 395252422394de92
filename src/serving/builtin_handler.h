// The model server of SageMaker's built-in algorithms: loads the artifact a `train` job of
// that algorithm wrote (ml::AlgorithmInfo::load) and answers /invocations with the request
// and response formats of SageMaker's algorithm containers:
//   Content-Type  text/csv, application/json, application/jsonlines, text/libsvm (XGBoost),
//                 application/x-recordio-protobuf (and text/plain or application/json for
//                 BlazingText);
//   Accept        application/json, application/jsonlines, text/csv,
//                 application/x-recordio-protobuf, per what each algorithm's container
//                 answers; the default (no Accept, or */*) is the container's: text/csv for
//                 XGBoost, application/json for the others, or the Environment's
//                 SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT.
// A body the algorithm cannot read (or an empty one) is a 400 whose body names the problem
// (the line and column of a malformed CSV value, the record with the wrong feature count); a
// Content-Type it does not take is a 415 and an Accept it cannot produce a 406, both naming
// the types it does. builtin_handler.cc lists each container's formats and their sources.
//
// Thread-safety: Invoke may run on many threads; spec.threads loaded copies of the model
// are shared among them.
#pragma once

#include <memory>

#include "serving/inference.h"

namespace nimbus::serving {

// Fails (with the reason) when the algorithm is unknown or its artifact cannot be loaded.
Result<std::unique_ptr<InferenceHandler>> MakeBuiltinHandler(const ContainerSpec& spec);

}  // namespace nimbus::serving
