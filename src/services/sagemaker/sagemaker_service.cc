#include "services/sagemaker/sagemaker_service.h"

#include "control/tagging.h"
#include "services/sagemaker/endpoints.h"
#include "services/sagemaker/models.h"
#include "services/sagemaker/processing_jobs.h"
#include "services/sagemaker/runtime.h"
#include "services/sagemaker/training_jobs.h"
#include "services/sagemaker/transform_jobs.h"

namespace nimbus::services {

SageMakerService::SageMakerService(SageMakerDeps deps)
    : deps_(std::move(deps)),
      processing_(std::make_unique<ProcessingJobs>(deps_)),
      training_(std::make_unique<TrainingJobs>(deps_)),
      models_(std::make_unique<Models>(deps_)),
      transforms_(std::make_unique<TransformJobs>(deps_, *models_)),
      endpoints_(std::make_unique<Endpoints>(deps_, *models_)),
      runtime_(std::make_unique<EndpointRuntime>(deps_, *endpoints_)) {}

SageMakerService::~SageMakerService() = default;

void SageMakerService::Register(aws::ServiceRegistry& registry) {
  processing_->Register(registry);
  training_->Register(registry);
  models_->Register(registry);
  transforms_->Register(registry);
  endpoints_->Register(registry);
  runtime_->Register(registry);

  control::ResourceStore* resources = deps_.resources;
  static const control::TagStyle style = control::SageMakerTagStyle();
  auto arn = [](const Value& in, const aws::RequestContext&) {
    return in.GetString("ResourceArn");
  };
  registry.Register(
      "sagemaker", "AddTags",
      [resources](const Value& in, aws::RequestContext& ctx) {
        return control::AddTagsHandler(*resources, in, style, ctx.account_id);
      },
      arn);
  registry.Register(
      "sagemaker", "DeleteTags",
      [resources](const Value& in, aws::RequestContext& ctx) {
        return control::RemoveTagsHandler(*resources, in, style, ctx.account_id);
      },
      arn);
  registry.Register(
      "sagemaker", "ListTags",
      [resources](const Value& in, aws::RequestContext& ctx) {
        return control::ListTagsHandler(*resources, in, style, ctx.account_id);
      },
      arn);
}

}  // namespace nimbus::services
