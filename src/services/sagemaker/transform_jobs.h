// SageMaker batch transform jobs: CreateTransformJob, DescribeTransformJob,
// ListTransformJobs, StopTransformJob, run by a JobController.
//
// Create checks what SageMaker checks before accepting a job: the model exists ("Could not
// find model …"), the input prefix holds objects, the settings are in range
// (MaxPayloadInMB ≤ 100, MaxConcurrentTransforms × MaxPayloadInMB ≤ 100), and it refuses
// cleanly what Nimbus does not run (SplitType TFRecord, AugmentedManifestFile inputs,
// DataCaptureConfig, more than one instance). The controller then stages the job directory:
// the input objects under input/data/transform/ (keeping their keys relative to the
// prefix), the model's containers (Models::Stage) under containers/, and launches the
// `transform` worker (worker/transform_kind.h), which splits, batches, filters and joins
// (serving/batch_transform.h) and writes <file>.out under output/data/. When it ends the
// .out files it completed are uploaded to TransformOutput.S3OutputPath with the same
// relative keys, as SageMaker names them (also when the job failed or was stopped: SageMaker
// uploads the output of every object it finished). Logs go to /aws/sagemaker/TransformJobs, CPU and
// memory use to metrics of the same namespace (JobController).
//
// Thread-safety: as JobController.
#pragma once

#include <string>

#include "aws/service.h"
#include "services/sagemaker/job_controller.h"
#include "services/sagemaker/models.h"
#include "services/sagemaker/sagemaker_service.h"

namespace nimbus::services {

class TransformJobs : public JobController {
 public:
  static constexpr const char* kControllerKind = "sagemaker:TransformJob";
  static constexpr const char* kLogGroup = "/aws/sagemaker/TransformJobs";

  // models must outlive this object (SageMakerService owns both).
  TransformJobs(const SageMakerDeps& deps, Models& models);

  static const control::ResourceKind& Kind();

  void Register(aws::ServiceRegistry& registry);

 protected:
  std::string InstanceType(const control::Resource& job) const override;
  Status Stage(const control::Resource& job, const control::JobDir& dir) override;
  Result<control::LaunchRequest> LaunchRequestFor(const control::Resource& job,
                                                  const control::JobDir& dir) override;
  Status Collect(const control::Resource& job, const control::JobDir& dir,
                 control::JobState state) override;
  // A failed job's finished .out files are uploaded too, as SageMaker does.
  Status OnPoll(const control::Resource& job, const control::JobDir& dir, bool final) override;

 private:
  Result<Value> Create(const Value& input, aws::RequestContext& ctx);
  Result<Value> Describe(const Value& input, aws::RequestContext& ctx);
  Result<Value> List(const Value& input, aws::RequestContext& ctx);
  Result<Value> Stop(const Value& input, aws::RequestContext& ctx);

  Status ValidateCreate(const Value& input, const aws::RequestContext& ctx) const;
  Status UploadOutputs(const control::Resource& job, const control::JobDir& dir);
  // The vCPUs the job's worker may use: the instance type's, capped by this host's.
  int Threads(const control::Resource& job) const;

  Models& models_;
};

}  // namespace nimbus::services
