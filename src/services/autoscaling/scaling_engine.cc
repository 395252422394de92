#include "services/autoscaling/scaling_engine.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <utility>

#include "core/ids.h"
#include "core/logging.h"

namespace nimbus::services::autoscaling {
namespace {

Status Invalid(std::string msg) { return Status::Aws("ValidationException", 400, std::move(msg)); }

std::string FormatNumber(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

std::optional<double> OptDouble(const Value& in, std::string_view key) {
  const Value* v = in.Find(key);
  if (!v || v->is_null()) return std::nullopt;
  return v->AsDouble();
}

Status CheckCooldown(const Value& in, const char* member, std::optional<double>* out) {
  *out = OptDouble(in, member);
  if (*out && (**out < 0 || **out > 31536000)) {
    return Invalid(std::string("Value '") + FormatNumber(**out) +
                   "' at 'targetTrackingScalingPolicyConfiguration." +
                   static_cast<char>(std::tolower(member[0])) + (member + 1) +
                   "' failed to satisfy constraint: Member must be between 0 and 31536000");
  }
  return Status::Ok();
}

std::string TargetId(const ScalableTarget& t) {
  return t.account + "|" + t.region + "|" + t.key.service_namespace + "|" + t.key.resource_id +
         "|" + t.key.dimension;
}

control::ScalableResourceRef RefOf(const ScalableTarget& t) {
  return control::ScalableResourceRef{t.account, t.region, t.key.resource_id, t.key.dimension};
}

// Capacities are whole units; the provider speaks doubles.
int64_t Whole(double capacity) { return static_cast<int64_t>(std::llround(capacity)); }

// ceil(capacity * metric / target), immune to the rounding of an exact ratio
// (3 * 0.1 / 0.1 must be 3, not 4).
int64_t Proportional(double capacity, double metric, double target) {
  const double ratio = capacity * metric / target;
  return static_cast<int64_t>(std::ceil(ratio - 1e-9 * std::max(1.0, std::fabs(ratio))));
}

}  // namespace

std::string CapacityNoun(const std::string& dimension) {
  if (dimension.rfind("custom-resource:", 0) == 0) return "desired capacity";
  const std::string property = dimension.substr(dimension.rfind(':') + 1);
  // Split the CamelCase property into lowercase words: DesiredInstanceCount ->
  // "desired instance count", ReadCapacityUnits -> "read capacity units".
  std::string out;
  for (size_t i = 0; i < property.size(); ++i) {
    const char c = property[i];
    if (std::isupper(static_cast<unsigned char>(c)) && i > 0) out += ' ';
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out.empty() ? "capacity" : out;
}

Result<TargetTrackingConfig> ParseTargetTracking(const Value& in) {
  TargetTrackingConfig c;
  if (!in.is_map()) {
    return Invalid(
        "TargetTrackingScalingPolicyConfiguration is required for a policy of type "
        "TargetTrackingScaling.");
  }
  const std::optional<double> target = OptDouble(in, "TargetValue");
  if (!target) {
    return Invalid(
        "1 validation error detected: Value null at "
        "'targetTrackingScalingPolicyConfiguration.targetValue' failed to satisfy constraint: "
        "Member must not be null");
  }
  if (!(*target >= 8.515920e-109) || *target > 1.174271e+108) {
    return Invalid("1 validation error detected: Value '" + FormatNumber(*target) +
                   "' at 'targetTrackingScalingPolicyConfiguration.targetValue' failed to "
                   "satisfy constraint: Member must have value greater than or equal to "
                   "8.515920e-109 and less than or equal to 1.174271e+108");
  }
  c.target_value = *target;
  NIMBUS_RETURN_IF_ERROR(CheckCooldown(in, "ScaleOutCooldown", &c.scale_out_cooldown));
  NIMBUS_RETURN_IF_ERROR(CheckCooldown(in, "ScaleInCooldown", &c.scale_in_cooldown));
  c.disable_scale_in = in.GetBool("DisableScaleIn", false);

  const Value* predefined = in.Find("PredefinedMetricSpecification");
  const Value* customized = in.Find("CustomizedMetricSpecification");
  if (predefined && predefined->is_null()) predefined = nullptr;
  if (customized && customized->is_null()) customized = nullptr;
  if ((predefined != nullptr) == (customized != nullptr)) {
    return Invalid(
        "Exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification must "
        "be specified in TargetTrackingScalingPolicyConfiguration.");
  }
  if (predefined) {
    c.predefined_metric_type = predefined->GetString("PredefinedMetricType");
    c.resource_label = predefined->GetString("ResourceLabel");
    if (c.predefined_metric_type.empty()) {
      return Invalid(
          "PredefinedMetricSpecification.PredefinedMetricType is required in "
          "TargetTrackingScalingPolicyConfiguration.");
    }
    return c;
  }
  if (customized->Has("Metrics")) {
    return Invalid(
        "CustomizedMetricSpecification.Metrics (metric math) is not implemented by Nimbus: "
        "specify MetricName, Namespace, Dimensions and Statistic instead.");
  }
  c.metric.ns = customized->GetString("Namespace");
  c.metric.name = customized->GetString("MetricName");
  c.statistic = customized->GetString("Statistic");
  c.unit = customized->GetString("Unit");
  for (const char* member : {"MetricName", "Namespace", "Statistic"}) {
    if (customized->GetString(member).empty()) {
      return Invalid(std::string("CustomizedMetricSpecification.") + member +
                     " is required in TargetTrackingScalingPolicyConfiguration.");
    }
  }
  static const char* kStatistics[] = {"Average", "Minimum", "Maximum", "SampleCount", "Sum"};
  if (std::find(std::begin(kStatistics), std::end(kStatistics), c.statistic) ==
      std::end(kStatistics)) {
    return Invalid("1 validation error detected: Value '" + c.statistic +
                   "' at 'targetTrackingScalingPolicyConfiguration.customizedMetricSpecification."
                   "statistic' failed to satisfy constraint: Member must satisfy enum value set: "
                   "[Average, Minimum, Maximum, SampleCount, Sum]");
  }
  if (const Value* dims = customized->Find("Dimensions"); dims && dims->is_list()) {
    for (const Value& d : dims->list()) {
      c.metric.dimensions.push_back({d.GetString("Name"), d.GetString("Value")});
    }
  }
  c.metric.dimensions = telemetry::SortedDimensions(std::move(c.metric.dimensions));
  return c;
}

ScalingEngine::ScalingEngine(AutoScalingStore& store,
                             const control::ScalableResourceRegistry& providers,
                             telemetry::MetricStore& metrics, const Clock& clock,
                             ScalingEngineOptions options)
    : store_(store),
      providers_(providers),
      metrics_(metrics),
      clock_(clock),
      options_(std::move(options)) {
  options_.window_seconds = std::max(1, options_.window_seconds);
  options_.scale_out_datapoints = std::max(1, options_.scale_out_datapoints);
  options_.scale_in_datapoints = std::max(1, options_.scale_in_datapoints);
}

Status ScalingEngine::RunOnce() {
  NIMBUS_ASSIGN_OR_RETURN(std::vector<ScalableTarget> targets, store_.AllTargets());
  for (const ScalableTarget& t : targets) {
    if (Status s = Evaluate(t); !s.ok()) {
      Log(LogLevel::kDebug, "autoscaling_evaluate_failed",
          {{"account", t.account},
           {"region", t.region},
           {"resource_id", t.key.resource_id},
           {"dimension", t.key.dimension},
           {"error", s.ToString()}});
    }
  }
  return store_.ExpireActivities(clock_.Now() - options_.activity_retention_seconds);
}

Status ScalingEngine::Evaluate(const ScalableTarget& target) {
  std::lock_guard<std::mutex> lock(mu_);
  return EvaluateLocked(target);
}

Result<std::vector<std::optional<double>>> ScalingEngine::MetricWindows(
    const ScalableTarget& target, const TargetTrackingConfig& config, double capacity, int n) {
  const int w = options_.window_seconds;
  const double end = std::floor(clock_.Now() / w) * w;
  const double start = end - static_cast<double>(n) * w;
  const double per_minute = 60.0 / w;
  std::vector<std::optional<double>> values(n);

  if (!config.customized()) {
    control::ScalableResourceProvider* provider = providers_.Find(target.key.service_namespace);
    if (!provider) return Status::NotFound("no provider for " + target.key.service_namespace);
    NIMBUS_ASSIGN_OR_RETURN(
        control::PredefinedMetricSource source,
        provider->PredefinedMetric(RefOf(target), config.predefined_metric_type));
    telemetry::MetricKey key{source.ns, source.metric_name, {}};
    for (const auto& [name, value] : source.dimensions) key.dimensions.push_back({name, value});
    key.dimensions = telemetry::SortedDimensions(std::move(key.dimensions));
    NIMBUS_ASSIGN_OR_RETURN(
        std::vector<telemetry::PeriodAggregate> periods,
        metrics_.Aggregates(target.account, target.region, key, start, end, w, "", false, false));
    std::vector<double> sums(n, 0.0);
    for (const auto& p : periods) {
      const int k = static_cast<int>(std::lround((p.timestamp - start) / w));
      if (k >= 0 && k < n) sums[k] += p.aggregate.sum;
    }
    const double divisor = capacity > 0 ? capacity : 1;
    for (int k = 0; k < n; ++k) values[k] = sums[k] * per_minute / divisor;
    return values;
  }

  NIMBUS_ASSIGN_OR_RETURN(telemetry::Statistic statistic,
                          telemetry::Statistic::Parse(config.statistic));
  const bool rate = config.statistic == "Sum" || config.statistic == "SampleCount";
  NIMBUS_ASSIGN_OR_RETURN(std::vector<telemetry::PeriodAggregate> periods,
                          metrics_.Aggregates(target.account, target.region, config.metric, start,
                                              end, w, config.unit, false, false));
  std::vector<telemetry::Aggregate> merged(n);
  std::vector<bool> seen(n, false);
  for (const auto& p : periods) {
    const int k = static_cast<int>(std::lround((p.timestamp - start) / w));
    if (k < 0 || k >= n) continue;
    if (!seen[k]) {
      merged[k] = p.aggregate;
      seen[k] = true;
    } else {
      merged[k].Merge(p.aggregate);
    }
  }
  for (int k = 0; k < n; ++k) {
    if (!seen[k]) continue;
    std::optional<double> v = statistic.Compute(merged[k]);
    if (v && rate) *v *= per_minute;
    values[k] = v;
  }
  return values;
}

Status ScalingEngine::EvaluateLocked(const ScalableTarget& target) {
  if (target.suspended.dynamic_in && target.suspended.dynamic_out) return Status::Ok();
  control::ScalableResourceProvider* provider = providers_.Find(target.key.service_namespace);
  if (!provider) {
    return Status::NotFound("no scalable resources of namespace " + target.key.service_namespace);
  }
  NIMBUS_ASSIGN_OR_RETURN(std::vector<ScalingPolicy> policies,
                          store_.PoliciesOf(target.account, target.region, target.key));
  std::vector<std::pair<const ScalingPolicy*, TargetTrackingConfig>> tracking;
  for (const ScalingPolicy& p : policies) {
    if (p.type != "TargetTrackingScaling") continue;
    auto config = ParseTargetTracking(p.configuration);
    if (!config.ok()) continue;  // validated on PutScalingPolicy; never stored otherwise
    tracking.emplace_back(&p, std::move(config).value());
  }
  if (tracking.empty()) return Status::Ok();

  const control::ScalableResourceRef ref = RefOf(target);
  NIMBUS_ASSIGN_OR_RETURN(double capacity_now, provider->GetCapacity(ref));
  const int64_t capacity = Whole(capacity_now);
  const double now = clock_.Now();
  const int n = std::max(options_.scale_out_datapoints, options_.scale_in_datapoints);

  // The winning scale-out, and whether every policy agrees to scale in.
  std::optional<int64_t> out_desired;
  std::string out_cause;
  bool all_in = true;
  int64_t in_desired = 0;
  double in_cooldown = 0;
  std::string in_cause;
  for (const auto& [policy, config] : tracking) {
    NIMBUS_ASSIGN_OR_RETURN(std::vector<std::optional<double>> values,
                            MetricWindows(target, config, capacity_now, n));
    auto all_of_last = [&](int count, auto pred) {
      for (int k = n - count; k < n; ++k) {
        if (!values[k] || !pred(*values[k])) return false;
      }
      return true;
    };
    const std::optional<double> latest = values[n - 1];
    const double scale_base = capacity > 0 ? static_cast<double>(capacity) : 1.0;
    const std::string& high = policy->alarms.size() > 0 ? policy->alarms[0].name : policy->name;
    const bool wants_out = all_of_last(options_.scale_out_datapoints,
                                       [&](double v) { return v > config.target_value; });
    const bool wants_in =
        !config.disable_scale_in && all_of_last(options_.scale_in_datapoints, [&](double v) {
          return v < options_.scale_in_threshold * config.target_value;
        });
    if (wants_out) {
      const double cooldown = config.scale_out_cooldown.value_or(options_.default_cooldown_seconds);
      const int64_t desired = Proportional(scale_base, *latest, config.target_value);
      const bool cooled = target.last_scale_out <= 0 || now - target.last_scale_out >= cooldown;
      if (cooled && (!out_desired || desired > *out_desired)) {
        out_desired = desired;
        out_cause = "monitor alarm " + high + " in state ALARM triggered policy " + policy->name;
      }
    }
    if (!wants_in) {
      all_in = false;
    } else {
      in_desired = std::max(in_desired, Proportional(scale_base, *latest, config.target_value));
      in_cooldown = std::max(in_cooldown,
                             config.scale_in_cooldown.value_or(options_.default_cooldown_seconds));
      if (in_cause.empty()) {
        const std::string& low = policy->alarms.size() > 1 ? policy->alarms[1].name : policy->name;
        in_cause = "monitor alarm " + low + " in state ALARM triggered policy " + policy->name;
      }
    }
  }

  if (out_desired && !target.suspended.dynamic_out) {
    const int64_t desired = std::clamp(*out_desired, target.min_capacity, target.max_capacity);
    if (desired > capacity) return Change(target, *provider, capacity, desired, out_cause, +1);
    return Status::Ok();
  }
  if (all_in && !target.suspended.dynamic_in) {
    const int64_t desired = std::clamp(in_desired, target.min_capacity, target.max_capacity);
    const bool cooled = target.last_scale_in <= 0 || now - target.last_scale_in >= in_cooldown;
    if (desired < capacity && cooled) {
      return Change(target, *provider, capacity, desired, in_cause, -1);
    }
  }
  return Status::Ok();
}

Status ScalingEngine::ApplyLimits(const ScalableTarget& target) {
  std::lock_guard<std::mutex> lock(mu_);
  control::ScalableResourceProvider* provider = providers_.Find(target.key.service_namespace);
  if (!provider) {
    return Status::NotFound("no scalable resources of namespace " + target.key.service_namespace);
  }
  NIMBUS_ASSIGN_OR_RETURN(double capacity_now, provider->GetCapacity(RefOf(target)));
  const int64_t capacity = Whole(capacity_now);
  if (capacity < target.min_capacity) {
    return Change(target, *provider, capacity, target.min_capacity,
                  "minimum capacity was set to " + std::to_string(target.min_capacity), 0);
  }
  if (capacity > target.max_capacity) {
    return Change(target, *provider, capacity, target.max_capacity,
                  "maximum capacity was set to " + std::to_string(target.max_capacity), 0);
  }
  return Status::Ok();
}

Status ScalingEngine::Change(const ScalableTarget& target,
                             control::ScalableResourceProvider& provider, int64_t from, int64_t to,
                             const std::string& cause, int direction) {
  const std::string noun = CapacityNoun(target.key.dimension);
  ScalingActivity a;
  a.account = target.account;
  a.region = target.region;
  a.key = target.key;
  a.activity_id = NewUuid();
  a.description = "Setting " + noun + " to " + std::to_string(to) + ".";
  a.cause = cause;
  a.start_time = clock_.Now();
  const Status set = provider.SetCapacity(RefOf(target), static_cast<double>(to));
  a.end_time = clock_.Now();
  const std::string id = TargetId(target);
  if (set.ok()) {
    a.status_code = "Successful";
    a.status_message = "Successfully set " + noun + " to " + std::to_string(to) +
                       ". Change successfully fulfilled by " + target.key.service_namespace + ".";
    last_failure_.erase(id);
  } else {
    a.status_code = "Failed";
    a.status_message =
        "Failed to set " + noun + " to " + std::to_string(to) + ". Reason: " + set.message();
    std::string failure = a.description + "\n" + a.status_message;
    auto it = last_failure_.find(id);
    if (it != last_failure_.end() && it->second == failure) return Status::Ok();
    last_failure_[id] = std::move(failure);
  }
  a.details = "{\"CurrentCapacity\":" + std::to_string(from) +
              ",\"MinCapacity\":" + std::to_string(target.min_capacity) +
              ",\"MaxCapacity\":" + std::to_string(target.max_capacity) + "}";
  NIMBUS_RETURN_IF_ERROR(store_.AddActivity(a).status());
  Log(set.ok() ? LogLevel::kInfo : LogLevel::kWarn, "autoscaling_activity",
      {{"resource_id", target.key.resource_id},
       {"dimension", target.key.dimension},
       {"from", from},
       {"to", to},
       {"status", a.status_code},
       {"cause", cause}});
  if (set.ok() && direction != 0) {
    NIMBUS_RETURN_IF_ERROR(
        store_.RecordScaling(target.account, target.region, target.key, direction > 0, a.end_time));
  }
  return Status::Ok();
}

}  // namespace nimbus::services::autoscaling
