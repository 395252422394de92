// The SageMaker service (json 1.1, target prefix SageMaker): the control API of SageMaker
// resources, built on control/ (resources, controllers, scheduler, executor), objects/ (S3
// data in and out of jobs) and telemetry/ (job logs in CloudWatch Logs, job utilization in
// CloudWatch metrics).
//
// Implemented so far: processing jobs and training jobs (built-in algorithms and script
// mode), both run as workers in the SageMaker container layout, and SageMaker-style tagging
// (AddTags/ListTags/DeleteTags) of every SageMaker resource kind.
//
// Ownership: SageMakerService holds its controllers; the dependencies it is given must
// outlive it. Register() also registers the controllers with the ControllerManager, which
// must be started after it and stopped before the service is destroyed.
//
// Thread-safety: handlers and controllers are called concurrently; all state they share
// lives in the ResourceStore or is guarded inside the controllers.
#pragma once

#include <memory>
#include <string>

#include "aws/service.h"
#include "control/controller.h"
#include "control/executor.h"
#include "control/resource_store.h"
#include "control/scheduler.h"
#include "objects/object_store.h"
#include "telemetry/log_store.h"
#include "telemetry/metric_store.h"

namespace nimbus::services {

struct SageMakerDeps {
  control::ResourceStore* resources = nullptr;
  control::ControllerManager* controllers = nullptr;
  control::Scheduler* scheduler = nullptr;
  control::Executor* executor = nullptr;
  objects::ObjectStore* objects = nullptr;
  telemetry::LogStore* logs = nullptr;
  telemetry::MetricStore* metrics = nullptr;  // job utilization metrics; may be null
  std::string data_dir;                       // job directories live under <data_dir>/jobs
  // Whether the executor shows jobs SageMaker's container paths (/opt/ml/...): true with
  // the bubblewrap sandbox. Without it, jobs whose paths need them fail with a reason
  // saying so.
  bool container_paths = true;
  // How long a stopped job's payload gets between SIGTERM and SIGKILL.
  double stop_grace_seconds = 30;
};

class ProcessingJobs;
class TrainingJobs;

class SageMakerService {
 public:
  explicit SageMakerService(SageMakerDeps deps);
  ~SageMakerService();

  void Register(aws::ServiceRegistry& registry);

 private:
  SageMakerDeps deps_;
  std::unique_ptr<ProcessingJobs> processing_;
  std::unique_ptr<TrainingJobs> training_;
};

}  // namespace nimbus::services
