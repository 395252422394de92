#include "serving/handlers.h"

#include "serving/builtin_handler.h"
#include "serving/script_handler.h"

namespace nimbus::serving {
namespace {

// Inference pipeline: each container's answer is the next one's request.
class PipelineHandler : public InferenceHandler {
 public:
  explicit PipelineHandler(std::vector<std::unique_ptr<InferenceHandler>> stages)
      : stages_(std::move(stages)) {}

  Result<InvocationResult> Invoke(const Invocation& request) override {
    Invocation next = request;
    InvocationResult result;
    for (size_t i = 0; i < stages_.size(); ++i) {
      const bool last = i + 1 == stages_.size();
      // Intermediate containers answer in their own default format, which the next one
      // reads; only the last one is held to the caller's Accept.
      next.accept = last ? request.accept : std::string();
      NIMBUS_ASSIGN_OR_RETURN(result, stages_[i]->Invoke(next));
      if (result.status >= 400 || last) break;
      next.content_type = std::move(result.content_type);
      next.body = std::move(result.body);
    }
    return result;
  }

  bool Ping() override {
    for (auto& stage : stages_) {
      if (!stage->Ping()) return false;
    }
    return true;
  }

 private:
  std::vector<std::unique_ptr<InferenceHandler>> stages_;
};

}  // namespace

Result<std::unique_ptr<InferenceHandler>> MakeHandler(const std::vector<ContainerSpec>& containers,
                                                      const std::string& work_dir) {
  if (containers.empty()) return Status::Validation("the model has no container");
  std::vector<std::unique_ptr<InferenceHandler>> stages;
  for (size_t i = 0; i < containers.size(); ++i) {
    const ContainerSpec& spec = containers[i];
    Result<std::unique_ptr<InferenceHandler>> handler =
        spec.algorithm.empty() ? MakeScriptHandler(spec, work_dir + "/" + std::to_string(i))
                               : MakeBuiltinHandler(spec);
    if (!handler.ok()) {
      if (containers.size() == 1) return handler.status();
      return Status(handler.status().kind(),
                    "container " + std::to_string(i + 1) + ": " + handler.status().message());
    }
    stages.push_back(std::move(*handler));
  }
  if (stages.size() == 1) return std::move(stages.front());
  return std::unique_ptr<InferenceHandler>(std::make_unique<PipelineHandler>(std::move(stages)));
}

}  // namespace nimbus::serving
