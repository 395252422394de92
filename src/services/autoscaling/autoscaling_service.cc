#include "services/autoscaling/autoscaling_service.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/ids.h"
#include "core/logging.h"
#include "core/strings.h"
#include "telemetry/alarms.h"

namespace nimbus::services {
namespace {

using autoscaling::AutoScalingStore;
using autoscaling::PolicyAlarm;
using autoscaling::ScalableTarget;
using autoscaling::ScalingActivity;
using autoscaling::ScalingEngine;
using autoscaling::ScalingPolicy;
using autoscaling::TargetKey;
using autoscaling::TargetTrackingConfig;

constexpr int kMaxResults = 50;
constexpr size_t kMaxTags = 50;

Status Invalid(std::string msg) { return Status::Aws("ValidationException", 400, std::move(msg)); }

std::string Partition(const std::string& region) {
  if (StartsWith(region, "cn-")) return "aws-cn";
  if (StartsWith(region, "us-gov-")) return "aws-us-gov";
  return "aws";
}

TargetKey KeyOf(const Value& in) {
  return TargetKey{in.GetString("ServiceNamespace"), in.GetString("ResourceId"),
                   in.GetString("ScalableDimension")};
}

std::string Describe(const TargetKey& k) {
  return "service namespace: " + k.service_namespace + ", resource ID: " + k.resource_id +
         ", scalable dimension: " + k.dimension;
}

Status TargetNotFound(const TargetKey& k) {
  return Status::Aws("ObjectNotFoundException", 400, "No scalable target found for " + Describe(k),
                     ErrorKind::kNotFound);
}

// A scalable dimension is "<namespace>:<resource type>:<property>".
Status CheckDimension(const TargetKey& k) {
  if (!StartsWith(k.dimension, k.service_namespace + ":")) {
    return Invalid(
        "Unsupported service namespace, resource type or scalable dimension: "
        "ScalableDimension " +
        k.dimension + " does not belong to ServiceNamespace " + k.service_namespace + ".");
  }
  return Status::Ok();
}

// MaxResults: 1-50, default 50.
Result<int> PageSize(const Value& in) {
  const Value* v = in.Find("MaxResults");
  if (!v || v->is_null()) return kMaxResults;
  const int64_t n = v->AsInt();
  if (n > kMaxResults) {
    return Invalid("1 validation error detected: Value '" + std::to_string(n) +
                   "' at 'maxResults' failed to satisfy constraint: Member must have value less "
                   "than or equal to 50");
  }
  if (n < 1) {
    return Invalid("1 validation error detected: Value '" + std::to_string(n) +
                   "' at 'maxResults' failed to satisfy constraint: Member must have value "
                   "greater than or equal to 1");
  }
  return static_cast<int>(n);
}

// NextToken <-> the store's cursor (base64, so that it is opaque and JSON-safe).
Result<std::string> CursorOf(const Value& in) {
  const std::string token = in.GetString("NextToken");
  if (token.empty()) return std::string();
  auto cursor = Base64Decode(token);
  if (!cursor || cursor->empty()) {
    return Status::Aws("InvalidNextTokenException", 400, "The NextToken value is invalid.");
  }
  return *cursor;
}

std::vector<std::string> Strings(const Value& in, std::string_view key) {
  std::vector<std::string> out;
  if (const Value* list = in.Find(key); list && list->is_list()) {
    for (const Value& s : list->list()) out.push_back(s.AsString());
  }
  return out;
}

// The service-linked role AWS creates for a namespace when RoleARN is not given.
std::string ServiceLinkedRole(const std::string& account, const std::string& ns) {
  static const std::pair<const char*, const char*> kSuffix[] = {
      {"sagemaker", "SageMakerEndpoint"},
      {"ecs", "ECSService"},
      {"dynamodb", "DynamoDBTable"},
      {"lambda", "LambdaConcurrency"},
      {"rds", "RDSCluster"},
      {"comprehend", "ComprehendEndpoint"},
      {"custom-resource", "CustomResource"}};
  std::string suffix = "CustomResource";
  for (const auto& [name, s] : kSuffix) {
    if (ns == name) suffix = s;
  }
  return "arn:aws:iam::" + account + ":role/aws-service-role/" + ns +
         ".application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_" + suffix;
}

// The lowest MinCapacity of a namespace: AWS allows 0 only for these.
int64_t LowestMinimum(const std::string& ns) {
  static const char* kZero[] = {"ecs", "ec2",    "elasticmapreduce",
                                "rds", "lambda", "custom-resource"};
  return std::find(std::begin(kZero), std::end(kZero), ns) != std::end(kZero) ? 0 : 1;
}

Result<std::map<std::string, std::string>> ParseTags(const Value& in) {
  std::map<std::string, std::string> tags;
  const Value* map = in.Find("Tags");
  if (!map || !map->is_map()) return tags;
  for (const auto& [k, v] : map->map()) {
    if (k.empty() || k.size() > 128) {
      return Invalid("Tag keys must be between 1 and 128 characters long.");
    }
    if (StartsWith(ToLower(k), "aws:")) {
      return Invalid("Tag keys starting with \"aws:\" are reserved: " + k);
    }
    if (v.AsString().size() > 256) return Invalid("Tag values must be at most 256 characters.");
    tags[k] = v.AsString();
  }
  return tags;
}

Status CheckTagCount(const std::map<std::string, std::string>& tags) {
  if (tags.size() > kMaxTags) {
    return Status::Aws("TooManyTagsException", 400, "A scalable target can have at most 50 tags.");
  }
  return Status::Ok();
}

Value TargetValue(const ScalableTarget& t) {
  return Value::Object(
      {{"ServiceNamespace", t.key.service_namespace},
       {"ResourceId", t.key.resource_id},
       {"ScalableDimension", t.key.dimension},
       {"MinCapacity", t.min_capacity},
       {"MaxCapacity", t.max_capacity},
       {"RoleARN", t.role_arn},
       {"CreationTime", Value::Timestamp(t.creation_time)},
       {"SuspendedState", Value::Object({{"DynamicScalingInSuspended", t.suspended.dynamic_in},
                                         {"DynamicScalingOutSuspended", t.suspended.dynamic_out},
                                         {"ScheduledScalingSuspended", t.suspended.scheduled}})},
       {"ScalableTargetARN", t.arn}});
}

Value AlarmList(const std::vector<PolicyAlarm>& alarms) {
  Value list = Value::MakeList();
  for (const PolicyAlarm& a : alarms) {
    list.Append(Value::Object({{"AlarmName", a.name}, {"AlarmARN", a.arn}}));
  }
  return list;
}

Value PolicyValue(const ScalingPolicy& p) {
  Value v = Value::Object({{"PolicyARN", p.arn},
                           {"PolicyName", p.name},
                           {"ServiceNamespace", p.key.service_namespace},
                           {"ResourceId", p.key.resource_id},
                           {"ScalableDimension", p.key.dimension},
                           {"PolicyType", p.type},
                           {"Alarms", AlarmList(p.alarms)},
                           {"CreationTime", Value::Timestamp(p.creation_time)}});
  if (p.type == "TargetTrackingScaling")
    v["TargetTrackingScalingPolicyConfiguration"] = p.configuration;
  return v;
}

Value ActivityValue(const ScalingActivity& a) {
  Value v = Value::Object({{"ActivityId", a.activity_id},
                           {"ServiceNamespace", a.key.service_namespace},
                           {"ResourceId", a.key.resource_id},
                           {"ScalableDimension", a.key.dimension},
                           {"Description", a.description},
                           {"Cause", a.cause},
                           {"StartTime", Value::Timestamp(a.start_time)},
                           {"StatusCode", a.status_code}});
  if (a.end_time > 0) v["EndTime"] = Value::Timestamp(a.end_time);
  if (!a.status_message.empty()) v["StatusMessage"] = a.status_message;
  if (!a.details.empty()) v["Details"] = a.details;
  return v;
}

// The metric AWS's target-tracking alarms watch for a predefined metric type: the
// per-instance form of the provider's source metric.
std::string AlarmMetricName(const std::string& type, const std::string& source_metric) {
  if (type == "SageMakerVariantInvocationsPerInstance") return "InvocationsPerInstance";
  return source_metric;
}

class Handlers {
 public:
  Handlers(AutoScalingStore& store, ScalingEngine& engine,
           control::ScalableResourceRegistry& providers, telemetry::MetricStore& metrics,
           const Clock& clock)
      : store_(store), engine_(engine), providers_(providers), metrics_(metrics), clock_(clock) {}

  Result<Value> RegisterScalableTarget(const Value& in, aws::RequestContext& ctx) {
    const TargetKey key = KeyOf(in);
    NIMBUS_RETURN_IF_ERROR(CheckDimension(key));
    NIMBUS_ASSIGN_OR_RETURN(control::ScalableResourceProvider * provider, ProviderOf(key));
    if (Status s = provider->Check({ctx.account_id, ctx.region, key.resource_id, key.dimension});
        !s.ok()) {
      return s.code().empty() ? Invalid(s.message()) : s;
    }
    NIMBUS_ASSIGN_OR_RETURN(std::optional<ScalableTarget> existing,
                            store_.GetTarget(ctx.account_id, ctx.region, key));
    const Value* min = in.Find("MinCapacity");
    const Value* max = in.Find("MaxCapacity");
    if (min && min->is_null()) min = nullptr;
    if (max && max->is_null()) max = nullptr;
    if (!existing && (!min || !max)) {
      return Invalid("MinCapacity and MaxCapacity are required to register a new scalable target.");
    }
    ScalableTarget t;
    if (existing) {
      t = *existing;
    } else {
      t.account = ctx.account_id;
      t.region = ctx.region;
      t.key = key;
      t.arn = "arn:" + Partition(ctx.region) + ":application-autoscaling:" + ctx.region + ":" +
              ctx.account_id + ":scalable-target/" + RandomString(36, "0123456789abcdef");
      t.role_arn = ServiceLinkedRole(ctx.account_id, key.service_namespace);
      t.creation_time = clock_.Now();
    }
    if (min) t.min_capacity = min->AsInt();
    if (max) t.max_capacity = max->AsInt();
    const int64_t lowest = LowestMinimum(key.service_namespace);
    if (t.min_capacity < lowest) {
      return Invalid("MinCapacity " + std::to_string(t.min_capacity) +
                     " is below the lowest "
                     "capacity of " +
                     key.dimension + " (" + std::to_string(lowest) + ").");
    }
    if (t.min_capacity > t.max_capacity) {
      return Invalid("Minimum capacity cannot be greater than maximum capacity");
    }
    if (in.Has("RoleARN") && !in.GetString("RoleARN").empty()) t.role_arn = in.GetString("RoleARN");
    if (const Value* s = in.Find("SuspendedState"); s && s->is_map()) {
      t.suspended.dynamic_in = s->GetBool("DynamicScalingInSuspended", false);
      t.suspended.dynamic_out = s->GetBool("DynamicScalingOutSuspended", false);
      t.suspended.scheduled = s->GetBool("ScheduledScalingSuspended", false);
    }
    NIMBUS_ASSIGN_OR_RETURN(auto tags, ParseTags(in));
    for (auto& [k, v] : tags) t.tags[k] = std::move(v);
    NIMBUS_RETURN_IF_ERROR(CheckTagCount(t.tags));
    NIMBUS_RETURN_IF_ERROR(store_.PutTarget(t));
    // AWS moves a capacity outside the new bounds at once ("minimum capacity was set to
    // N"). A resource that cannot be read or changed now does not undo the registration:
    // the failure is a Failed scaling activity or a log line.
    if (Status s = engine_.ApplyLimits(t); !s.ok()) {
      Log(LogLevel::kWarn, "autoscaling_apply_limits_failed",
          {{"resource_id", key.resource_id}, {"error", s.ToString()}});
    }
    return Value::Object({{"ScalableTargetARN", t.arn}});
  }

  Result<Value> DescribeScalableTargets(const Value& in, aws::RequestContext& ctx) {
    NIMBUS_ASSIGN_OR_RETURN(int limit, PageSize(in));
    NIMBUS_ASSIGN_OR_RETURN(std::string cursor, CursorOf(in));
    autoscaling::TargetFilter filter{in.GetString("ServiceNamespace"), Strings(in, "ResourceIds"),
                                     in.GetString("ScalableDimension")};
    NIMBUS_ASSIGN_OR_RETURN(
        std::vector<ScalableTarget> targets,
        store_.ListTargets(ctx.account_id, ctx.region, filter, cursor, limit + 1));
    Value out = Value::Object({{"ScalableTargets", Value::MakeList()}});
    for (size_t i = 0; i < targets.size() && i < static_cast<size_t>(limit); ++i) {
      out["ScalableTargets"].Append(TargetValue(targets[i]));
    }
    if (targets.size() > static_cast<size_t>(limit)) {
      out["NextToken"] = Base64Encode(AutoScalingStore::TargetCursor(targets[limit - 1]));
    }
    return out;
  }

  Result<Value> DeregisterScalableTarget(const Value& in, aws::RequestContext& ctx) {
    const TargetKey key = KeyOf(in);
    NIMBUS_ASSIGN_OR_RETURN(auto deleted, store_.DeleteTarget(ctx.account_id, ctx.region, key));
    if (!deleted) return TargetNotFound(key);
    for (const ScalingPolicy& p : *deleted) DeleteAlarms(ctx, p.alarms);
    return Value::MakeMap();
  }

  Result<Value> PutScalingPolicy(const Value& in, aws::RequestContext& ctx) {
    const TargetKey key = KeyOf(in);
    NIMBUS_RETURN_IF_ERROR(CheckDimension(key));
    const std::string name = in.GetString("PolicyName");
    const std::string type = in.GetString("PolicyType", "StepScaling");
    if (type != "TargetTrackingScaling") {
      return Invalid("PolicyType " + type +
                     " is not implemented by Nimbus: use TargetTrackingScaling (with "
                     "TargetTrackingScalingPolicyConfiguration).");
    }
    NIMBUS_ASSIGN_OR_RETURN(std::optional<ScalableTarget> target,
                            store_.GetTarget(ctx.account_id, ctx.region, key));
    if (!target) {
      return Status::Aws("ObjectNotFoundException", 400,
                         "No scalable target registered for " + Describe(key),
                         ErrorKind::kNotFound);
    }
    const Value* config_value = in.Find("TargetTrackingScalingPolicyConfiguration");
    NIMBUS_ASSIGN_OR_RETURN(
        TargetTrackingConfig config,
        autoscaling::ParseTargetTracking(config_value ? *config_value : Value()));

    // What the alarms watch.
    telemetry::MetricKey alarm_metric = config.metric;
    std::string alarm_statistic = config.statistic;
    if (!config.customized()) {
      NIMBUS_ASSIGN_OR_RETURN(control::ScalableResourceProvider * provider, ProviderOf(key));
      auto source =
          provider->PredefinedMetric({ctx.account_id, ctx.region, key.resource_id, key.dimension},
                                     config.predefined_metric_type);
      if (!source.ok()) {
        return Invalid("PredefinedMetricType " + config.predefined_metric_type +
                       " is not supported for scalable dimension " + key.dimension + ".");
      }
      alarm_metric.ns = source->ns;
      alarm_metric.name = AlarmMetricName(config.predefined_metric_type, source->metric_name);
      for (const auto& [n, v] : source->dimensions) alarm_metric.dimensions.push_back({n, v});
      alarm_statistic = "Sum";
    }

    NIMBUS_ASSIGN_OR_RETURN(std::optional<ScalingPolicy> existing,
                            store_.GetPolicy(ctx.account_id, ctx.region, key, name));
    ScalingPolicy p;
    if (existing) {
      p = *existing;
    } else {
      p.account = ctx.account_id;
      p.region = ctx.region;
      p.key = key;
      p.name = name;
      p.arn = "arn:" + Partition(ctx.region) + ":autoscaling:" + ctx.region + ":" + ctx.account_id +
              ":scalingPolicy:" + NewUuid() + ":resource/" + key.service_namespace + "/" +
              key.resource_id + ":policyName/" + name;
      p.creation_time = clock_.Now();
    }
    p.type = type;
    p.configuration = *config_value;

    // The alarms: AlarmHigh always, AlarmLow unless scale-in is disabled; an update keeps
    // the names it had.
    const std::vector<PolicyAlarm> previous = p.alarms;
    auto previous_named = [&](const std::string& kind) -> std::string {
      for (const PolicyAlarm& a : previous) {
        if (a.name.find("-" + kind + "-") != std::string::npos) return a.name;
      }
      return "TargetTracking-" + key.resource_id + "-" + kind + "-" + NewUuid();
    };
    const auto& opts = engine_.options();
    const int w = opts.window_seconds;
    const int period = (w == 10 || w == 30 || (w >= 60 && w % 60 == 0)) ? w : 60;
    std::vector<PolicyAlarm> alarms;
    std::vector<std::string> created;
    for (const bool high : {true, false}) {
      if (!high && config.disable_scale_in) continue;
      telemetry::MetricAlarm a;
      a.name = previous_named(high ? "AlarmHigh" : "AlarmLow");
      a.description = "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy " + p.arn + ".";
      a.actions_enabled = false;
      a.alarm_actions = {p.arn};
      a.metric = alarm_metric;
      a.statistic = alarm_statistic;
      a.unit = config.unit;
      a.period = period;
      a.evaluation_periods = high ? opts.scale_out_datapoints : opts.scale_in_datapoints;
      a.threshold = high ? config.target_value : opts.scale_in_threshold * config.target_value;
      a.comparison_operator = high ? "GreaterThanThreshold" : "LessThanThreshold";
      const std::string alarm_name = a.name;
      Status s = metrics_.alarms().PutMetricAlarm(ctx.account_id, ctx.region, std::move(a));
      if (!s.ok()) {
        DeleteAlarms(ctx, ToAlarms(ctx, created));
        return s;
      }
      created.push_back(alarm_name);
      alarms.push_back(
          {alarm_name, telemetry::AlarmStore::Arn(ctx.region, ctx.account_id, alarm_name)});
    }
    p.alarms = alarms;
    if (Status s = store_.PutPolicy(p); !s.ok()) {
      if (!existing) DeleteAlarms(ctx, alarms);
      return s;
    }
    std::vector<PolicyAlarm> stale;
    for (const PolicyAlarm& a : previous) {
      if (std::none_of(alarms.begin(), alarms.end(),
                       [&](const PolicyAlarm& b) { return b.name == a.name; })) {
        stale.push_back(a);
      }
    }
    DeleteAlarms(ctx, stale);
    return Value::Object({{"PolicyARN", p.arn}, {"Alarms", AlarmList(p.alarms)}});
  }

  Result<Value> DescribeScalingPolicies(const Value& in, aws::RequestContext& ctx) {
    NIMBUS_ASSIGN_OR_RETURN(int limit, PageSize(in));
    NIMBUS_ASSIGN_OR_RETURN(std::string cursor, CursorOf(in));
    autoscaling::PolicyFilter filter{in.GetString("ServiceNamespace"), in.GetString("ResourceId"),
                                     in.GetString("ScalableDimension"), Strings(in, "PolicyNames")};
    NIMBUS_ASSIGN_OR_RETURN(
        std::vector<ScalingPolicy> policies,
        store_.ListPolicies(ctx.account_id, ctx.region, filter, cursor, limit + 1));
    Value out = Value::Object({{"ScalingPolicies", Value::MakeList()}});
    for (size_t i = 0; i < policies.size() && i < static_cast<size_t>(limit); ++i) {
      out["ScalingPolicies"].Append(PolicyValue(policies[i]));
    }
    if (policies.size() > static_cast<size_t>(limit)) {
      out["NextToken"] = Base64Encode(AutoScalingStore::PolicyCursor(policies[limit - 1]));
    }
    return out;
  }

  Result<Value> DeleteScalingPolicy(const Value& in, aws::RequestContext& ctx) {
    const TargetKey key = KeyOf(in);
    const std::string name = in.GetString("PolicyName");
    NIMBUS_ASSIGN_OR_RETURN(std::optional<ScalingPolicy> policy,
                            store_.GetPolicy(ctx.account_id, ctx.region, key, name));
    NIMBUS_ASSIGN_OR_RETURN(bool deleted,
                            store_.DeletePolicy(ctx.account_id, ctx.region, key, name));
    if (!policy || !deleted) {
      return Status::Aws("ObjectNotFoundException", 400,
                         "No scaling policy found for " + Describe(key) + ", policy name: " + name,
                         ErrorKind::kNotFound);
    }
    DeleteAlarms(ctx, policy->alarms);
    return Value::MakeMap();
  }

  Result<Value> DescribeScalingActivities(const Value& in, aws::RequestContext& ctx) {
    NIMBUS_ASSIGN_OR_RETURN(int limit, PageSize(in));
    NIMBUS_ASSIGN_OR_RETURN(std::string cursor, CursorOf(in));
    int64_t before = 0;
    if (!cursor.empty()) {
      auto seq = ParseInt(cursor);
      if (!seq || *seq <= 0) {
        return Status::Aws("InvalidNextTokenException", 400, "The NextToken value is invalid.");
      }
      before = *seq;
    }
    NIMBUS_ASSIGN_OR_RETURN(
        std::vector<ScalingActivity> activities,
        store_.ListActivities(ctx.account_id, ctx.region, in.GetString("ServiceNamespace"),
                              in.GetString("ResourceId"), in.GetString("ScalableDimension"), before,
                              limit + 1));
    Value out = Value::Object({{"ScalingActivities", Value::MakeList()}});
    for (size_t i = 0; i < activities.size() && i < static_cast<size_t>(limit); ++i) {
      out["ScalingActivities"].Append(ActivityValue(activities[i]));
    }
    if (activities.size() > static_cast<size_t>(limit)) {
      out["NextToken"] = Base64Encode(std::to_string(activities[limit - 1].seq));
    }
    return out;
  }

  Result<Value> TagResource(const Value& in, aws::RequestContext& ctx) {
    NIMBUS_ASSIGN_OR_RETURN(ScalableTarget t, TargetByArn(in, ctx));
    NIMBUS_ASSIGN_OR_RETURN(auto tags, ParseTags(in));
    for (auto& [k, v] : tags) t.tags[k] = std::move(v);
    NIMBUS_RETURN_IF_ERROR(CheckTagCount(t.tags));
    NIMBUS_RETURN_IF_ERROR(store_.PutTarget(t));
    return Value::MakeMap();
  }

  Result<Value> UntagResource(const Value& in, aws::RequestContext& ctx) {
    NIMBUS_ASSIGN_OR_RETURN(ScalableTarget t, TargetByArn(in, ctx));
    for (const std::string& k : Strings(in, "TagKeys")) t.tags.erase(k);
    NIMBUS_RETURN_IF_ERROR(store_.PutTarget(t));
    return Value::MakeMap();
  }

  Result<Value> ListTagsForResource(const Value& in, aws::RequestContext& ctx) {
    NIMBUS_ASSIGN_OR_RETURN(ScalableTarget t, TargetByArn(in, ctx));
    Value tags = Value::MakeMap();
    for (const auto& [k, v] : t.tags) tags[k] = v;
    return Value::Object({{"Tags", std::move(tags)}});
  }

 private:
  Result<control::ScalableResourceProvider*> ProviderOf(const TargetKey& key) {
    control::ScalableResourceProvider* provider = providers_.Find(key.service_namespace);
    if (!provider) {
      return Invalid(
          "Unsupported service namespace, resource type or scalable dimension: "
          "ServiceNamespace " +
          key.service_namespace + " has no scalable resources in Nimbus.");
    }
    return provider;
  }

  Result<ScalableTarget> TargetByArn(const Value& in, const aws::RequestContext& ctx) {
    const std::string arn = in.GetString("ResourceARN");
    if (arn.find(":application-autoscaling:") == std::string::npos ||
        arn.find(":scalable-target/") == std::string::npos) {
      return Invalid("ResourceARN " + arn + " is not the ARN of a scalable target.");
    }
    NIMBUS_ASSIGN_OR_RETURN(std::optional<ScalableTarget> t,
                            store_.FindTargetByArn(ctx.account_id, ctx.region, arn));
    if (!t) {
      return Status::Aws("ResourceNotFoundException", 400,
                         "No scalable target found for ARN " + arn, ErrorKind::kNotFound);
    }
    return *t;
  }

  std::vector<PolicyAlarm> ToAlarms(const aws::RequestContext& ctx,
                                    const std::vector<std::string>& names) {
    std::vector<PolicyAlarm> out;
    for (const std::string& n : names) {
      out.push_back({n, telemetry::AlarmStore::Arn(ctx.region, ctx.account_id, n)});
    }
    return out;
  }

  // Alarms a caller deleted already are not an error, as on AWS.
  void DeleteAlarms(const aws::RequestContext& ctx, const std::vector<PolicyAlarm>& alarms) {
    for (const PolicyAlarm& a : alarms) {
      Status s = metrics_.alarms().Delete(ctx.account_id, ctx.region, {a.name});
      if (!s.ok() && s.kind() != ErrorKind::kNotFound && s.code() != "ResourceNotFound") {
        Log(LogLevel::kWarn, "autoscaling_alarm_delete_failed",
            {{"alarm", a.name}, {"error", s.ToString()}});
      }
    }
  }

  AutoScalingStore& store_;
  ScalingEngine& engine_;
  control::ScalableResourceRegistry& providers_;
  telemetry::MetricStore& metrics_;
  const Clock& clock_;
};

}  // namespace

Result<std::unique_ptr<AutoScalingService>> AutoScalingService::Open(
    store::Database& db, control::ScalableResourceRegistry& providers,
    telemetry::MetricStore& metrics, const Clock& clock,
    autoscaling::ScalingEngineOptions options) {
  NIMBUS_ASSIGN_OR_RETURN(std::unique_ptr<AutoScalingStore> store, AutoScalingStore::Open(db));
  std::unique_ptr<AutoScalingService> service(new AutoScalingService(providers, metrics, clock));
  service->store_ = std::move(store);
  service->engine_ = std::make_unique<ScalingEngine>(*service->store_, providers, metrics, clock,
                                                     std::move(options));
  providers.Register("custom-resource", &service->custom_resources_);
  return service;
}

void AutoScalingService::Register(aws::ServiceRegistry& registry) {
  auto h = std::make_shared<Handlers>(*store_, *engine_, providers_, metrics_, clock_);
  using Method = Result<Value> (Handlers::*)(const Value&, aws::RequestContext&);
  auto bind = [h](Method m) {
    return [h, m](const Value& in, aws::RequestContext& ctx) { return ((*h).*m)(in, ctx); };
  };
  auto arn_member = [](const Value& in, const aws::RequestContext&) {
    return in.GetString("ResourceARN");
  };
  const std::string svc = "application-autoscaling";
  registry.Register(svc, "RegisterScalableTarget", bind(&Handlers::RegisterScalableTarget));
  registry.Register(svc, "DescribeScalableTargets", bind(&Handlers::DescribeScalableTargets));
  registry.Register(svc, "DeregisterScalableTarget", bind(&Handlers::DeregisterScalableTarget));
  registry.Register(svc, "PutScalingPolicy", bind(&Handlers::PutScalingPolicy));
  registry.Register(svc, "DescribeScalingPolicies", bind(&Handlers::DescribeScalingPolicies));
  registry.Register(svc, "DeleteScalingPolicy", bind(&Handlers::DeleteScalingPolicy));
  registry.Register(svc, "DescribeScalingActivities", bind(&Handlers::DescribeScalingActivities));
  registry.Register(svc, "TagResource", bind(&Handlers::TagResource), arn_member);
  registry.Register(svc, "UntagResource", bind(&Handlers::UntagResource), arn_member);
  registry.Register(svc, "ListTagsForResource", bind(&Handlers::ListTagsForResource), arn_member);
  for (const char* op : {"PutScheduledAction", "DeleteScheduledAction"}) {
    registry.Register(svc, op, [op](const Value&, aws::RequestContext&) -> Result<Value> {
      return Invalid(std::string(op) +
                     ": scheduled scaling is not implemented by Nimbus; use target-tracking "
                     "scaling policies.");
    });
  }
  registry.Register(svc, "DescribeScheduledActions",
                    [](const Value&, aws::RequestContext&) -> Result<Value> {
                      // No scheduled action can exist (PutScheduledAction is refused).
                      return Value::Object({{"ScheduledActions", Value::MakeList()}});
                    });
}

}  // namespace nimbus::services
