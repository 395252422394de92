// Inference: what a model server does with one request, independent of how the request
// arrived (ARCHITECTURE.md §4). The `serve` worker answers SageMaker's serving contract
// (GET /ping, POST /invocations) over HTTP with an InferenceHandler; the `transform` worker
// calls the same handler in-process for batch transform, so both behave identically.
//
// A handler serves one model container: a built-in algorithm (builtin_handler.h) or a
// script-mode model whose inference.py defines model_fn/input_fn/predict_fn/output_fn
// (script_handler.h). An inference pipeline chains several (MakeHandler in handlers.h).
//
// Errors the caller or the model causes (a malformed CSV row, an unsupported content
// type, a script that raises) are answers, not failures: Invoke returns an
// InvocationResult with a 4xx/5xx status and a body that names the problem, as
// SageMaker's containers answer, and the router passes them on as ModelError. A failed
// Result means the handler itself could not answer (its process died, a socket broke).
//
// Thread-safety: Invoke and Ping may be called from many threads at once; each handler
// arranges its own concurrency (a pool of loaded models, a pool of connections).
#pragma once

#include <map>
#include <string>

#include "core/result.h"
#include "core/value.h"

namespace nimbus::serving {

struct Invocation {
  std::string content_type;       // the request's Content-Type; empty when absent
  std::string accept;             // the request's Accept; empty when absent
  std::string custom_attributes;  // X-Amzn-SageMaker-Custom-Attributes, passed through
  std::string body;
};

struct InvocationResult {
  int status = 200;
  std::string content_type;
  std::string body;
  std::string custom_attributes;  // the model's X-Amzn-SageMaker-Custom-Attributes
};

class InferenceHandler {
 public:
  virtual ~InferenceHandler() = default;
  virtual Result<InvocationResult> Invoke(const Invocation& request) = 0;
  // Whether the model is loaded and answering (GET /ping's 200).
  virtual bool Ping() = 0;
};

// One container of a SageMaker Model, as a worker sees it once the artifact is unpacked.
struct ContainerSpec {
  std::string model_dir;  // ModelDataUrl's model.tar.gz extracted here (may be empty)
  // A built-in algorithm's name (ml::AlgorithmInfo::name) when the image is one of
  // SageMaker's algorithm images; empty for script mode.
  std::string algorithm;
  // Script mode: the directory holding the user's code (SAGEMAKER_SUBMIT_DIRECTORY
  // unpacked, or <model_dir>/code) and the script's file name (SAGEMAKER_PROGRAM,
  // default inference.py).
  std::string code_dir;
  std::string program;
  std::map<std::string, std::string> environment;  // the container's Environment
  int threads = 1;  // how many requests it should answer at once (the instance's vCPUs)
};

// The form a ContainerSpec takes in a worker's spec.json ({"model_dir", "algorithm",
// "code_dir", "program", "environment", "threads"}).
Value ContainerSpecToValue(const ContainerSpec& spec);
ContainerSpec ContainerSpecFromValue(const Value& value);

}  // namespace nimbus::serving
