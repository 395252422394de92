// JobController: the life of every SageMaker job that runs a worker (processing, training,
// later transform), shared by the job kinds, which fill in what differs through hooks.
//
//   InProgress ── admitted by the scheduler ── Stage() (inputs into the job directory)
//        │        ── LaunchRequestFor() → executor.Launch ── poll (logs, usage, OnPoll())
//        │        ── worker succeeded → Collect() (outputs to S3) → Completed
//        │        ── worker failed → Failed (or relaunched, while ShouldRetry())
//        └─ Stop* → Stopping ── executor.Stop (once) ── worker gone → Stopped
//
// Progress lives in the resource body under "_runtime" (phase, job id, stop sent, start and
// end times, attempts), so that a restarted server resumes each job where it was: queued
// jobs are queued again, running workers re-attached and re-adopted by the scheduler (or the
// job failed when its worker is gone), stops carried through. Kinds with secondary statuses
// (training) move through Starting → Downloading → Training → Uploading → Completed.
//
// The worker's output goes to CloudWatch Logs (<log_group>, stream <job-name>/algo-1-<start
// epoch>) and its CPU and memory use to CloudWatch metrics (<metric_namespace>, dimension
// Host=<job-name>/algo-1), as SageMaker publishes them.
//
// Thread-safety: the ControllerManager never reconciles one job on two threads; handlers
// may run concurrently with Reconcile (all shared state is in the ResourceStore, plus the
// guarded set of jobs the scheduler holds).
#pragma once

#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "control/controller.h"
#include "control/executor.h"
#include "control/job_dir.h"
#include "control/resource_store.h"
#include "services/sagemaker/sagemaker_service.h"

namespace nimbus::services {

// The statuses every SageMaker job kind shares (TrainingJobStatus, ProcessingJobStatus, …).
inline constexpr const char* kJobInProgress = "InProgress";
inline constexpr const char* kJobCompleted = "Completed";
inline constexpr const char* kJobFailed = "Failed";
inline constexpr const char* kJobStopping = "Stopping";
inline constexpr const char* kJobStopped = "Stopped";

// The resource kind of a SageMaker job without secondary statuses (processing and
// transform jobs): InProgress -> Completed | Failed | Stopping -> Stopped, with the wording
// SageMaker uses for those jobs' not-found and name-in-use errors.
control::ResourceKind SageMakerJobKind(std::string kind, std::string display_name,
                                       std::string arn_resource_type);

struct JobControllerConfig {
  std::string controller_kind;   // "sagemaker:ProcessingJob": the ControllerManager's key
  std::string job_dir_kind;      // "processing": <data-dir>/jobs/<job_dir_kind>/<job-id>
  std::string log_group;         // "/aws/sagemaker/ProcessingJobs"
  std::string metric_namespace;  // "/aws/sagemaker/ProcessingJobs"
  bool secondary_statuses = false;
  // What a job that ran out of MaxRuntime becomes: SageMaker stops training jobs
  // (Stopped, secondary MaxRuntimeExceeded) and fails processing jobs.
  bool max_runtime_stops = false;
};

class JobController : public control::Controller {
 public:
  JobController(const SageMakerDeps& deps, const control::ResourceKind& kind,
                JobControllerConfig config);

  Result<std::optional<double>> Reconcile(const std::string& arn) override;
  Result<std::vector<std::string>> Pending() override;

  // The controller's record of a job ("_runtime" in its body; empty map when none).
  static const Value& Runtime(const control::Resource& job);
  // The job's id among all jobs of this server (job directories, scheduler).
  static std::string JobId(const control::Resource& job);

 protected:
  // Moves the job to Stopping and wakes the controller; the kind's invalid-transition
  // error when it is over.
  Status RequestStop(const std::string& account, const std::string& region,
                     const std::string& name);
  // Wakes the controller for a job just created.
  void Notify(const std::string& arn);

  virtual std::string InstanceType(const control::Resource& job) const = 0;
  // Prepares the job directory: inputs, configuration. An error fails the job as a
  // ClientError.
  virtual Status Stage(const control::Resource& job, const control::JobDir& dir) = 0;
  virtual Result<control::LaunchRequest> LaunchRequestFor(const control::Resource& job,
                                                          const control::JobDir& dir) = 0;
  // After the worker succeeded (or, for kinds that keep artifacts of stopped jobs, was
  // stopped): uploads outputs. An error fails the job.
  virtual Status Collect(const control::Resource& job, const control::JobDir& dir,
                         control::JobState state) = 0;
  // Every poll of a launched job (final: the worker is over), after its logs shipped.
  virtual Status OnPoll(const control::Resource& job, const control::JobDir& dir, bool final);
  // The failure reason of a worker that failed with `reason` (training jobs quote the
  // user script's last output, as SageMaker's ExecuteUserScriptError does).
  virtual std::string FailureReason(const control::Resource& job, const control::JobDir& dir,
                                    const std::string& reason) const;
  // Applied in the transaction that ends the job (record metrics, artifacts, times).
  virtual void OnFinish(control::Resource& job, const std::string& status);
  // Whether an attempt that ended in `state` is run again (RetryStrategy); attempts so far
  // are Runtime()["attempts"] (1 for the first).
  virtual bool ShouldRetry(const control::Resource& job, control::JobState state) const;

  const SageMakerDeps& deps() const { return deps_; }
  const control::ResourceKind& kind() const { return kind_; }
  const JobControllerConfig& config() const { return config_; }
  Result<control::JobDir> DirOf(const control::Resource& job) const;

 private:
  Result<std::optional<double>> Admit(const control::Resource& job);
  Result<std::optional<double>> StageAndLaunch(const control::Resource& job);
  Result<std::optional<double>> Watch(const control::Resource& job);
  Result<std::optional<double>> StopJob(const control::Resource& job);
  Result<std::optional<double>> Retry(const control::Resource& job, const std::string& reason);
  Result<std::optional<double>> Finish(const control::Resource& job, const std::string& status,
                                       const std::string& secondary,
                                       const std::string& failure_reason,
                                       const std::string& exit_message);
  Status ShipLogs(const control::Resource& job, const control::JobDir& dir, bool final);
  Status ShipUsage(const control::Resource& job, const control::JobDir& dir);
  Result<control::Resource> SetRuntime(const control::Resource& job, const Value& runtime,
                                       const std::string& secondary = "",
                                       const std::string& message = "");
  void EnsureScheduled(const control::Resource& job, bool running);
  void Unschedule(const control::Resource& job);

  SageMakerDeps deps_;
  const control::ResourceKind& kind_;
  JobControllerConfig config_;
  std::mutex mu_;
  std::set<std::string> scheduled_;  // job ids the scheduler holds; GUARDED_BY(mu_)
};

}  // namespace nimbus::services
