// SageMaker processing jobs: CreateProcessingJob, DescribeProcessingJob, ListProcessingJobs,
// StopProcessingJob, and the controller that runs them.
//
// A processing job runs AppSpecification.ContainerEntrypoint + ContainerArguments as a
// `command` worker on this machine's own runtime (Nimbus runs no container images: the
// entrypoint must be a program the host has, e.g. python3), inside the job directory laid
// out as SageMaker's processing container: inputs downloaded to their LocalPath under
// /opt/ml/processing/, /opt/ml/config/processingjobconfig.json and resourceconfig.json, and
// the outputs' LocalPath directories uploaded to their S3Uri when the job succeeds. Its
// output streams into CloudWatch Logs, group /aws/sagemaker/ProcessingJobs, stream
// <job-name>/algo-1-<start epoch>, as SageMaker names them, and its CPU and memory use
// into CloudWatch metrics under /aws/sagemaker/ProcessingJobs.
//
// The controller keeps its progress in the resource body ("_runtime": phase, job id,
// whether a stop was sent), so that after a restart it resumes each job where it was: a
// queued job is queued again, a running worker is re-attached (or the job failed when the
// worker is gone), a stop in progress is carried through.
//
// Thread-safety: handlers and Reconcile may run concurrently; the ControllerManager never
// reconciles one job on two threads, and the only in-memory state is guarded.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "aws/service.h"
#include "control/controller.h"
#include "control/job_dir.h"
#include "control/resource_store.h"
#include "services/sagemaker/sagemaker_service.h"

namespace nimbus::services {

class ProcessingJobs : public control::Controller {
 public:
  static constexpr const char* kControllerKind = "sagemaker:ProcessingJob";
  static constexpr const char* kLogGroup = "/aws/sagemaker/ProcessingJobs";
  static constexpr const char* kMetricNamespace = "/aws/sagemaker/ProcessingJobs";

  explicit ProcessingJobs(const SageMakerDeps& deps);

  static const control::ResourceKind& Kind();

  void Register(aws::ServiceRegistry& registry);

  Result<std::optional<double>> Reconcile(const std::string& arn) override;
  Result<std::vector<std::string>> Pending() override;

 private:
  Result<Value> Create(const Value& input, aws::RequestContext& ctx);
  Result<Value> Describe(const Value& input, aws::RequestContext& ctx);
  Result<Value> List(const Value& input, aws::RequestContext& ctx);
  Result<Value> Stop(const Value& input, aws::RequestContext& ctx);

  // The controller's steps; each returns when to look again.
  Result<std::optional<double>> Admit(const control::Resource& job);
  Result<std::optional<double>> StageAndLaunch(const control::Resource& job);
  Result<std::optional<double>> Watch(const control::Resource& job);
  Result<std::optional<double>> StopJob(const control::Resource& job);

  Status Stage(const control::Resource& job, const control::JobDir& dir);
  Result<control::LaunchRequest> LaunchRequestFor(const control::Resource& job,
                                                  const control::JobDir& dir);
  Status UploadOutputs(const control::Resource& job, const control::JobDir& dir);
  Status ShipLogs(const control::Resource& job, const control::JobDir& dir, bool final);
  // The worker's usage samples as CPUUtilization and MemoryUtilization (namespace
  // /aws/sagemaker/ProcessingJobs, dimension Host=<job-name>/algo-1).
  Status ShipUsage(const control::Resource& job, const control::JobDir& dir);
  // Moves the job to a final status and frees its capacity.
  Result<std::optional<double>> Finish(const control::Resource& job, const std::string& status,
                                       const std::string& failure_reason,
                                       const std::string& exit_message);
  Result<control::Resource> SetRuntime(const control::Resource& job, const Value& runtime);
  Result<control::JobDir> DirOf(const control::Resource& job) const;

  // Makes sure the scheduler knows the job (after a restart it knows nothing): queued jobs
  // are submitted, running ones adopted.
  void EnsureScheduled(const control::Resource& job, bool running);

  SageMakerDeps deps_;
  std::mutex mu_;
  std::set<std::string> scheduled_;  // job ids the scheduler holds; GUARDED_BY(mu_)
};

}  // namespace nimbus::services
