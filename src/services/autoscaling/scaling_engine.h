// ScalingEngine: what makes Application Auto Scaling's target-tracking policies act. On
// every run (ControllerManager::Every in the server; AWS evaluates once a minute, Nimbus
// every --autoscaling-period seconds, default 10) it reads, for each policy of each
// scalable target, the policy's metric over the last windows and moves the target's
// capacity through the ScalableResourceProvider of its namespace (control/scalable.h).
//
// The metric, per window of --autoscaling-window seconds (default 60), windows aligned to
// multiples of their length and complete (the one in progress is not read):
//   - a predefined metric (SageMakerVariantInvocationsPerInstance): the Sum of the
//     provider's source metric (AWS/SageMaker Invocations of the variant) in the window,
//     scaled to a per-minute rate, divided by the current capacity. A window without
//     samples counts as 0: an idle variant receives no invocations.
//   - a customized metric: its Statistic over the window (Sum and SampleCount scaled to a
//     per-minute rate); a window without samples has no value.
// The decision, per policy (the rule of AWS's AlarmHigh / AlarmLow pair):
//   - scale out when the last scale_out_datapoints windows (AWS: 3 one-minute datapoints)
//     are all above TargetValue: desired = ceil(capacity * metric / TargetValue), metric
//     being the latest window's;
//   - scale in when the last scale_in_datapoints windows (AWS: 15) are all below
//     scale_in_threshold * TargetValue (AWS: 90%), unless DisableScaleIn: desired is the
//     same formula, so the metric stays at or below the target afterwards.
// With several policies on one target, the largest scale-out wins and scale-in happens
// only when every policy asks for it (AWS's rule), to the largest of their capacities.
// Desired capacity is clamped to [MinCapacity, MaxCapacity]. Cooldowns: a scale-out waits
// ScaleOutCooldown after the target's last scale-out, a scale-in ScaleInCooldown after its
// last scale-in (default 300 s, AWS's default for SageMaker variants); AWS's finer rule
// (a larger scale-out may interrupt a scale-out cooldown) is not modelled. Suspended
// directions (SuspendedState) are skipped.
//
// Every change is a ScalingActivity: Successful once the provider accepted the new
// capacity (the owner then converges to it, e.g. an endpoint update), Failed with the
// provider's reason when it refused. A failure that repeats unchanged on later runs is
// recorded once, not every run.
//
// Thread-safety: all methods may be called from any thread; capacity changes are
// serialized by a mutex, so the periodic run and a RegisterScalableTarget never act on
// stale capacities at once. Store, providers, metrics and clock must outlive the engine.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "control/scalable.h"
#include "core/clock.h"
#include "core/result.h"
#include "core/value.h"
#include "services/autoscaling/autoscaling_store.h"
#include "telemetry/metric_store.h"

namespace nimbus::services::autoscaling {

// A TargetTrackingScalingPolicyConfiguration, parsed.
struct TargetTrackingConfig {
  double target_value = 0;
  std::string predefined_metric_type;  // set for a predefined metric
  std::string resource_label;
  telemetry::MetricKey metric;  // for a customized metric
  std::string statistic;        // Average | Minimum | Maximum | SampleCount | Sum
  std::string unit;             // "" = every unit
  std::optional<double> scale_out_cooldown;
  std::optional<double> scale_in_cooldown;
  bool disable_scale_in = false;

  bool customized() const { return predefined_metric_type.empty(); }
};

// Parses and validates the configuration; errors are the ValidationException AWS returns,
// naming the member.
Result<TargetTrackingConfig> ParseTargetTracking(const Value& configuration);

struct ScalingEngineOptions {
  int window_seconds = 60;
  int scale_out_datapoints = 3;
  int scale_in_datapoints = 15;
  double scale_in_threshold = 0.9;  // of TargetValue
  double default_cooldown_seconds = 300;
  double activity_retention_seconds = 42 * 86400.0;  // AWS describes six weeks
};

class ScalingEngine {
 public:
  ScalingEngine(AutoScalingStore& store, const control::ScalableResourceRegistry& providers,
                telemetry::MetricStore& metrics, const Clock& clock,
                ScalingEngineOptions options = {});

  const ScalingEngineOptions& options() const { return options_; }

  // Evaluates every target of every account once and expires old activities. A target
  // that cannot be evaluated (its resource is gone) is logged and skipped.
  Status RunOnce();
  // Evaluates the target-tracking policies of one target and scales it if they ask.
  Status Evaluate(const ScalableTarget& target);
  // Moves the capacity into [MinCapacity, MaxCapacity] when it is outside, as
  // RegisterScalableTarget does on AWS ("minimum capacity was set to N").
  Status ApplyLimits(const ScalableTarget& target);

  // The policy's metric in each of the last n windows before now, oldest first (nullopt:
  // no value). capacity divides a predefined metric.
  Result<std::vector<std::optional<double>>> MetricWindows(const ScalableTarget& target,
                                                           const TargetTrackingConfig& config,
                                                           double capacity, int n);

 private:
  // Asks the provider for `to`, records the activity and, on success, the cooldown clock
  // (direction: +1 scale-out, -1 scale-in, 0 a min/max correction).
  Status Change(const ScalableTarget& target, control::ScalableResourceProvider& provider,
                int64_t from, int64_t to, const std::string& cause, int direction);
  Status EvaluateLocked(const ScalableTarget& target);

  AutoScalingStore& store_;
  const control::ScalableResourceRegistry& providers_;
  telemetry::MetricStore& metrics_;
  const Clock& clock_;
  ScalingEngineOptions options_;

  std::mutex mu_;
  // The last failure recorded per target (description + reason), so that a refusal
  // repeated on every run is one activity; GUARDED_BY(mu_).
  std::map<std::string, std::string> last_failure_;
};

// "desired instance count" for sagemaker:variant:DesiredInstanceCount: how activities
// name the capacity of a dimension.
std::string CapacityNoun(const std::string& dimension);

}  // namespace nimbus::services::autoscaling
