// The Application Auto Scaling service (model "application-autoscaling", JSON 1.1, target
// prefix AnyScaleFrontendService): scalable targets (Register/Describe/Deregister
// ScalableTarget), target-tracking scaling policies (Put/Describe/DeleteScalingPolicy),
// scaling activities (DescribeScalingActivities) and the tags of scalable targets
// (Tag/Untag/ListTagsForResource), scoped by the caller's account and region.
//
// Resources are other services': a namespace can be scaled only when its owner registered
// a ScalableResourceProvider in the ScalableResourceRegistry (SageMaker for "sagemaker");
// this service adds the "custom-resource" namespace itself (custom_resource.h). Other
// namespaces are refused with a ValidationException naming ServiceNamespace.
//
// A target-tracking policy gets the CloudWatch alarms AWS creates for it
// ("TargetTracking-<ResourceId>-AlarmHigh-<uuid>", and AlarmLow unless DisableScaleIn) on
// the policy's metric, with the engine's window as Period and its datapoint counts as
// EvaluationPeriods, so DescribeAlarms shows the rule the engine applies. The alarms'
// actions are recorded (the policy ARN) but disabled: ScalingEngine evaluates the metric
// itself rather than being triggered by an alarm action. For a predefined metric the
// alarm watches AWS's per-instance metric (SageMakerVariantInvocationsPerInstance:
// AWS/SageMaker InvocationsPerInstance, Sum). StepScaling policies, scheduled actions and
// metric math in CustomizedMetricSpecification are refused with a ValidationException
// saying Nimbus does not implement them.
//
// Thread-safety: handlers are called concurrently; all state is in AutoScalingStore,
// MetricStore and the providers, which are thread-safe.
#pragma once

#include <memory>

#include "aws/service.h"
#include "control/scalable.h"
#include "core/clock.h"
#include "services/autoscaling/autoscaling_store.h"
#include "services/autoscaling/custom_resource.h"
#include "services/autoscaling/scaling_engine.h"
#include "store/database.h"
#include "telemetry/metric_store.h"

namespace nimbus::services {

class AutoScalingService {
 public:
  // Opens the store (running its migrations), builds the engine, and registers the
  // custom-resource provider in `providers`. db, providers, metrics and clock must
  // outlive the service; REQUIRES: called at start-up, before the registry is read.
  static Result<std::unique_ptr<AutoScalingService>> Open(
      store::Database& db, control::ScalableResourceRegistry& providers,
      telemetry::MetricStore& metrics, const Clock& clock,
      autoscaling::ScalingEngineOptions options = {});

  // Registers the operations under service "application-autoscaling".
  void Register(aws::ServiceRegistry& registry);

  // The periodic evaluation: the server runs engine().RunOnce() on a timer.
  autoscaling::ScalingEngine& engine() { return *engine_; }
  autoscaling::AutoScalingStore& store() { return *store_; }

 private:
  AutoScalingService(control::ScalableResourceRegistry& providers, telemetry::MetricStore& metrics,
                     const Clock& clock)
      : providers_(providers), metrics_(metrics), clock_(clock) {}

  control::ScalableResourceRegistry& providers_;
  telemetry::MetricStore& metrics_;
  const Clock& clock_;
  std::unique_ptr<autoscaling::AutoScalingStore> store_;
  std::unique_ptr<autoscaling::ScalingEngine> engine_;
  autoscaling::CustomResourceProvider custom_resources_;
};

}  // namespace nimbus::services
