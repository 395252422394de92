// The SageMaker service (json 1.1, target prefix SageMaker): the control API of SageMaker
// resources, built on control/ (resources, controllers, scheduler, executor), objects/ (S3
// data in and out of jobs) and telemetry/ (job logs in CloudWatch Logs, job utilization in
// CloudWatch metrics).
//
// Implemented so far: processing, training and batch transform jobs (built-in algorithms
// and script mode), all run as workers in the SageMaker container layout; models, endpoint
// configs and real-time endpoints with their data plane (the `sagemaker-runtime` service:
// InvokeEndpoint, InvokeEndpointAsync), data capture and autoscaling of variants; and
// SageMaker-style tagging (AddTags/ListTags/DeleteTags) of every SageMaker resource kind.
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
#include "control/scalable.h"
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
  // Admits endpoint instances (model servers), apart from the jobs' scheduler: serving
  // instances are long-lived and mostly idle, so hosting gets its own capacity. nullptr:
  // instances are not admitted against any capacity.
  control::Scheduler* hosting_scheduler = nullptr;
  // Where SageMaker registers its endpoint variants for Application Auto Scaling; may be
  // null.
  control::ScalableResourceRegistry* scalable = nullptr;
  // How often captured request/response records are written to S3.
  double capture_flush_seconds = 1;
};

class EndpointRuntime;
class Endpoints;
class Models;
class ProcessingJobs;
class TrainingJobs;
class TransformJobs;

class SageMakerService {
 public:
  explicit SageMakerService(SageMakerDeps deps);
  ~SageMakerService();

  void Register(aws::ServiceRegistry& registry);

 private:
  SageMakerDeps deps_;
  std::unique_ptr<ProcessingJobs> processing_;
  std::unique_ptr<TrainingJobs> training_;
  std::unique_ptr<Models> models_;
  std::unique_ptr<TransformJobs> transforms_;
  std::unique_ptr<Endpoints> endpoints_;
  std::unique_ptr<EndpointRuntime> runtime_;
};

}  // namespace nimbus::services
