// The model server of script-mode models, as SageMaker's framework containers (scikit-learn,
// XGBoost, PyTorch …) run them: the user's inference script (SAGEMAKER_PROGRAM, default
// inference.py) defines model_fn(model_dir) and optionally input_fn(body, content_type),
// predict_fn(data, model) and output_fn(prediction, accept); the missing ones get the
// containers' defaults (JSON, CSV and NPY decoding/encoding with numpy).
//
// The script runs under Debian's python3 in a child process (script_server.py, embedded in
// the binary) that serves HTTP on a Unix socket in work_dir; the handler forwards requests
// to it over pooled connections. An exception in the user's code is a 500 whose body is
// the traceback's last line; a child that dies makes Ping false and Invoke fail.
//
// Thread-safety: Invoke may run on many threads (the child answers spec.threads requests
// at once).
#pragma once

#include <memory>
#include <string>

#include "serving/inference.h"

namespace nimbus::serving {

// Starts the Python model server and waits until it has loaded the model (model_fn
// returned) or failed; a failure carries the script's error.
Result<std::unique_ptr<InferenceHandler>> MakeScriptHandler(const ContainerSpec& spec,
                                                            const std::string& work_dir);

}  // namespace nimbus::serving
