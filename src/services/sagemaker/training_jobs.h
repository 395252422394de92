// SageMaker training jobs: CreateTrainingJob, DescribeTrainingJob, ListTrainingJobs,
// StopTrainingJob, UpdateTrainingJob, run by a JobController.
//
// What runs is decided from AlgorithmSpecification and HyperParameters when the job is
// created (an image Nimbus cannot run is a ValidationException naming it):
//   - script mode: a `sagemaker_program` hyperparameter (the SageMaker SDK's estimators):
//     the sagemaker_submit_directory bundle is extracted to /opt/ml/code and the program
//     run with the host's python3 (or sh), with SageMaker's SM_* environment and the other
//     hyperparameters as --name value arguments, as the framework containers do;
//   - a built-in algorithm: the image's repository (xgboost, sagemaker-xgboost,
//     linear-learner, kmeans, … of any region and account) names one of ml/'s algorithms,
//     run by the `train` worker;
//   - AlgorithmSpecification.ContainerEntrypoint: run as given.
// Channels are downloaded to /opt/ml/input/data/<channel> in File (and FastFile) mode; in
// Pipe mode they are staged out of sight and streamed into the named pipes
// /opt/ml/input/data/<channel>_<epoch>, one per pass, as SageMaker does. Checkpoints are restored
// from and synced to CheckpointConfig.S3Uri, and on success model/ is uploaded as
// <S3OutputPath>/<job>/output/model.tar.gz (output/data as output.tar.gz). Metrics come
// from the algorithm (built-ins) or from MetricDefinitions regexes over the job's log,
// and fill FinalMetricDataList and CloudWatch (/aws/sagemaker/TrainingJobs, Host=<job>/algo-1).
// A job whose worker is lost is retried up to RetryStrategy.MaximumRetryAttempts times.
//
// Thread-safety: as JobController.
#pragma once

#include <string>

#include "aws/service.h"
#include "services/sagemaker/job_controller.h"

namespace nimbus::services {

class TrainingJobs : public JobController {
 public:
  static constexpr const char* kControllerKind = "sagemaker:TrainingJob";
  static constexpr const char* kLogGroup = "/aws/sagemaker/TrainingJobs";

  explicit TrainingJobs(const SageMakerDeps& deps);

  static const control::ResourceKind& Kind();

  void Register(aws::ServiceRegistry& registry);

 protected:
  std::string InstanceType(const control::Resource& job) const override;
  Status Stage(const control::Resource& job, const control::JobDir& dir) override;
  Result<control::LaunchRequest> LaunchRequestFor(const control::Resource& job,
                                                  const control::JobDir& dir) override;
  Status Collect(const control::Resource& job, const control::JobDir& dir,
                 control::JobState state) override;
  Status OnPoll(const control::Resource& job, const control::JobDir& dir, bool final) override;
  void OnFinish(control::Resource& job, const std::string& status) override;
  bool ShouldRetry(const control::Resource& job, control::JobState state) const override;
  std::string FailureReason(const control::Resource& job, const control::JobDir& dir,
                            const std::string& reason) const override;

 private:
  Result<Value> Create(const Value& input, aws::RequestContext& ctx);
  Result<Value> Describe(const Value& input, aws::RequestContext& ctx);
  Result<Value> List(const Value& input, aws::RequestContext& ctx);
  Result<Value> Stop(const Value& input, aws::RequestContext& ctx);
  Result<Value> Update(const Value& input, aws::RequestContext& ctx);

  Status SyncCheckpoints(const control::Resource& job, const control::JobDir& dir);
  Status ScanMetricDefinitions(const control::Resource& job, const control::JobDir& dir);
  Status ShipMetrics(const control::Resource& job, const control::JobDir& dir);
};

}  // namespace nimbus::services
