// SageMaker processing jobs: CreateProcessingJob, DescribeProcessingJob, ListProcessingJobs,
// StopProcessingJob, run by a JobController.
//
// A processing job runs AppSpecification.ContainerEntrypoint + ContainerArguments as a
// `command` worker on this machine's own runtime (Nimbus runs no container images: the
// entrypoint must be a program the host has, e.g. python3), inside the job directory laid
// out as SageMaker's processing container: inputs downloaded to their LocalPath under
// /opt/ml/processing/, /opt/ml/config/processingjobconfig.json and resourceconfig.json, and
// the outputs' LocalPath directories uploaded to their S3Uri when the job succeeds. Logs go
// to /aws/sagemaker/ProcessingJobs, CPU and memory use to metrics of the same namespace.
//
// Thread-safety: as JobController.
#pragma once

#include <string>

#include "aws/service.h"
#include "services/sagemaker/job_controller.h"

namespace nimbus::services {

class ProcessingJobs : public JobController {
 public:
  static constexpr const char* kControllerKind = "sagemaker:ProcessingJob";
  static constexpr const char* kLogGroup = "/aws/sagemaker/ProcessingJobs";

  explicit ProcessingJobs(const SageMakerDeps& deps);

  static const control::ResourceKind& Kind();

  void Register(aws::ServiceRegistry& registry);

 protected:
  std::string InstanceType(const control::Resource& job) const override;
  Status Stage(const control::Resource& job, const control::JobDir& dir) override;
  Result<control::LaunchRequest> LaunchRequestFor(const control::Resource& job,
                                                  const control::JobDir& dir) override;
  Status Collect(const control::Resource& job, const control::JobDir& dir,
                 control::JobState state) override;

 private:
  Result<Value> Create(const Value& input, aws::RequestContext& ctx);
  Result<Value> Describe(const Value& input, aws::RequestContext& ctx);
  Result<Value> List(const Value& input, aws::RequestContext& ctx);
  Result<Value> Stop(const Value& input, aws::RequestContext& ctx);
};

}  // namespace nimbus::services
