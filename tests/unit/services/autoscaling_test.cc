// Application Auto Scaling: the handlers, the store, and the scaling engine driven
// deterministically — a fake SageMaker provider whose capacity the test reads, metrics
// written into a real MetricStore, and a FakeClock moved by hand.
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "control/scalable.h"
#include "core/strings.h"
#include "service_test_env.h"
#include "services/autoscaling/autoscaling_service.h"
#include "telemetry/alarms.h"
#include "telemetry/metric_store.h"

namespace nimbus::services {
namespace {

using autoscaling::ScalableTarget;
using autoscaling::ScalingActivity;
using autoscaling::ScalingEngineOptions;
using autoscaling::TargetKey;

// 2023-11-14T22:14:00Z, a minute boundary.
constexpr double kNow = 1700000040;
constexpr const char* kDim = "sagemaker:variant:DesiredInstanceCount";
constexpr const char* kVariant = "endpoint/ep/variant/AllTraffic";

// Endpoint variants that exist because the test says so.
class FakeVariants : public control::ScalableResourceProvider {
 public:
  Status Check(const control::ScalableResourceRef& ref) override {
    if (ref.dimension != kDim) {
      return Status::Aws("ValidationException", 400, "Unsupported dimension " + ref.dimension);
    }
    if (!capacity.count(ref.resource_id)) {
      return Status::Aws("ValidationException", 400,
                         "Resource " + ref.resource_id + " does not exist.");
    }
    return Status::Ok();
  }
  Result<double> GetCapacity(const control::ScalableResourceRef& ref) override {
    auto it = capacity.find(ref.resource_id);
    if (it == capacity.end()) return Status::NotFound("no variant " + ref.resource_id);
    return it->second;
  }
  Status SetCapacity(const control::ScalableResourceRef& ref, double c) override {
    ++set_calls;
    if (!refuse.ok()) return refuse;
    capacity[ref.resource_id] = c;
    return Status::Ok();
  }
  Result<control::PredefinedMetricSource> PredefinedMetric(const control::ScalableResourceRef& ref,
                                                           std::string_view type) override {
    if (type != "SageMakerVariantInvocationsPerInstance") return Status::NotFound("no such type");
    std::vector<std::string> parts = Split(ref.resource_id, '/');
    return control::PredefinedMetricSource{
        "AWS/SageMaker", "Invocations", {{"EndpointName", parts[1]}, {"VariantName", parts[3]}}};
  }

  std::map<std::string, double> capacity;
  Status refuse;
  int set_calls = 0;
};

class AutoScalingTest : public testing::ServiceTestEnv {
 protected:
  void SetUp() override {
    ServiceTestEnv::SetUp();
    clock_.Set(kNow + 5);
    auto metrics = telemetry::MetricStore::Open(*db_, clock_);
    ASSERT_TRUE(metrics.ok()) << metrics.status().ToString();
    metrics_ = std::move(metrics).value();
    providers_.Register("sagemaker", &variants_);
    variants_.capacity[kVariant] = 1;
    OpenService(FastOptions());
  }
  void TearDown() override {
    service_.reset();
    metrics_.reset();
    ServiceTestEnv::TearDown();
  }

  // One window of 60 s, one datapoint each way: every test controls exactly one window.
  static ScalingEngineOptions FastOptions() {
    ScalingEngineOptions o;
    o.scale_out_datapoints = 1;
    o.scale_in_datapoints = 1;
    return o;
  }

  void OpenService(ScalingEngineOptions options) {
    service_.reset();
    registry_ = aws::ServiceRegistry();
    auto service = AutoScalingService::Open(*db_, providers_, *metrics_, clock_, options);
    ASSERT_TRUE(service.ok()) << service.status().ToString();
    service_ = std::move(service).value();
    service_->Register(registry_);
  }

  Result<Value> Aas(const std::string& op, const Value& input) {
    return Call("application-autoscaling", op, input, root_);
  }

  static Value Target(const char* resource = kVariant) {
    return Value::Object(
        {{"ServiceNamespace", "sagemaker"}, {"ResourceId", resource}, {"ScalableDimension", kDim}});
  }

  void Register(int64_t min, int64_t max, const char* resource = kVariant) {
    Value in = Target(resource);
    in["MinCapacity"] = min;
    in["MaxCapacity"] = max;
    auto out = Aas("RegisterScalableTarget", in);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
  }

  Value TrackingConfig(double target) {
    return Value::Object(
        {{"TargetValue", target},
         {"PredefinedMetricSpecification",
          Value::Object({{"PredefinedMetricType", "SageMakerVariantInvocationsPerInstance"}})}});
  }

  Result<Value> PutPolicy(const Value& config, const char* name = "invocations") {
    Value in = Target();
    in["PolicyName"] = name;
    in["PolicyType"] = "TargetTrackingScaling";
    in["TargetTrackingScalingPolicyConfiguration"] = config;
    return Aas("PutScalingPolicy", in);
  }

  // `sum` invocations of the variant in the minute before `minute_end`.
  void Invocations(double sum, double minute_end = kNow) {
    telemetry::MetricDatum d;
    d.metric_name = "Invocations";
    d.dimensions = {{"EndpointName", "ep"}, {"VariantName", "AllTraffic"}};
    d.timestamp = minute_end - 30;
    d.value = sum;
    ASSERT_TRUE(metrics_->Put("000000000000", "us-east-1", "AWS/SageMaker", {d}).ok());
  }

  ScalableTarget StoredTarget() {
    auto t = service_->store().GetTarget("000000000000", "us-east-1",
                                         TargetKey{"sagemaker", kVariant, kDim});
    EXPECT_TRUE(t.ok() && t->has_value());
    return t.ok() && t->has_value() ? **t : ScalableTarget();
  }

  Status Evaluate() { return service_->engine().Evaluate(StoredTarget()); }

  std::vector<ScalingActivity> Activities() {
    auto a =
        service_->store().ListActivities("000000000000", "us-east-1", "sagemaker", "", "", 0, 100);
    EXPECT_TRUE(a.ok());
    return a.ok() ? *a : std::vector<ScalingActivity>();
  }

  double Capacity() { return variants_.capacity[kVariant]; }

  FakeVariants variants_;
  control::ScalableResourceRegistry providers_;
  std::unique_ptr<telemetry::MetricStore> metrics_;
  std::unique_ptr<AutoScalingService> service_;
};

// ---------------------------------------------------------------------------------------
// Targets

TEST_F(AutoScalingTest, RegisterDescribeDeregister) {
  Value in = Target();
  in["MinCapacity"] = 1;
  in["MaxCapacity"] = 4;
  auto out = Aas("RegisterScalableTarget", in);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const std::string arn = out->GetString("ScalableTargetARN");
  EXPECT_TRUE(StartsWith(arn,
                         "arn:aws:application-autoscaling:us-east-1:000000000000:"
                         "scalable-target/"))
      << arn;
  EXPECT_EQ(arn.size(), std::string("arn:aws:application-autoscaling:us-east-1:000000000000:"
                                    "scalable-target/")
                                .size() +
                            36);

  auto described =
      Aas("DescribeScalableTargets", Value::Object({{"ServiceNamespace", "sagemaker"}}));
  ASSERT_TRUE(described.ok());
  ASSERT_EQ(described->Find("ScalableTargets")->size(), 1u);
  const Value& t = described->Find("ScalableTargets")->list()[0];
  EXPECT_EQ(t.GetString("ResourceId"), kVariant);
  EXPECT_EQ(t.GetInt("MinCapacity"), 1);
  EXPECT_EQ(t.GetInt("MaxCapacity"), 4);
  EXPECT_EQ(t.GetString("ScalableTargetARN"), arn);
  EXPECT_EQ(t.GetString("RoleARN"),
            "arn:aws:iam::000000000000:role/aws-service-role/"
            "sagemaker.application-autoscaling.amazonaws.com/"
            "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint");
  EXPECT_FALSE(t.Find("SuspendedState")->GetBool("DynamicScalingInSuspended"));
  EXPECT_DOUBLE_EQ(t.Find("CreationTime")->AsDouble(), kNow + 5);

  // An update changes only what it names and keeps the ARN.
  Value update = Target();
  update["MaxCapacity"] = 6;
  update["SuspendedState"] = Value::Object({{"DynamicScalingInSuspended", true}});
  auto updated = Aas("RegisterScalableTarget", update);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->GetString("ScalableTargetARN"), arn);
  ScalableTarget stored = StoredTarget();
  EXPECT_EQ(stored.min_capacity, 1);
  EXPECT_EQ(stored.max_capacity, 6);
  EXPECT_TRUE(stored.suspended.dynamic_in);

  ASSERT_TRUE(PutPolicy(TrackingConfig(10)).ok());
  ASSERT_TRUE(Aas("DeregisterScalableTarget", Target()).ok());
  auto none = Aas("DescribeScalableTargets", Value::Object({{"ServiceNamespace", "sagemaker"}}));
  EXPECT_EQ(none->Find("ScalableTargets")->size(), 0u);
  // Its policies went with it, and their alarms.
  auto policies =
      Aas("DescribeScalingPolicies", Value::Object({{"ServiceNamespace", "sagemaker"}}));
  EXPECT_EQ(policies->Find("ScalingPolicies")->size(), 0u);
  telemetry::DescribeAlarmsRequest all;
  std::string next;
  auto alarms = metrics_->alarms().Describe("000000000000", "us-east-1", all, &next);
  ASSERT_TRUE(alarms.ok());
  EXPECT_TRUE(alarms->empty());

  auto again = Aas("DeregisterScalableTarget", Target());
  EXPECT_EQ(again.status().code(), "ObjectNotFoundException");
  EXPECT_EQ(
      again.status().message(),
      std::string("No scalable target found for service namespace: sagemaker, resource ID: ") +
          kVariant + ", scalable dimension: " + kDim);
}

TEST_F(AutoScalingTest, RegisterErrors) {
  // No provider for the namespace.
  Value ecs = Value::Object({{"ServiceNamespace", "ecs"},
                             {"ResourceId", "service/default/web"},
                             {"ScalableDimension", "ecs:service:DesiredCount"},
                             {"MinCapacity", 1},
                             {"MaxCapacity", 2}});
  auto r = Aas("RegisterScalableTarget", ecs);
  EXPECT_EQ(r.status().code(), "ValidationException");
  EXPECT_NE(r.status().message().find("ServiceNamespace ecs"), std::string::npos);

  // A dimension of another namespace.
  Value mixed = Target();
  mixed["ScalableDimension"] = "ecs:service:DesiredCount";
  mixed["MinCapacity"] = 1;
  mixed["MaxCapacity"] = 2;
  EXPECT_EQ(Aas("RegisterScalableTarget", mixed).status().code(), "ValidationException");

  // The provider refuses a resource that does not exist, with its message.
  Value missing = Target("endpoint/nope/variant/AllTraffic");
  missing["MinCapacity"] = 1;
  missing["MaxCapacity"] = 2;
  auto m = Aas("RegisterScalableTarget", missing);
  EXPECT_EQ(m.status().code(), "ValidationException");
  EXPECT_NE(m.status().message().find("endpoint/nope"), std::string::npos);

  // A new target needs both bounds; min <= max; a variant needs at least one instance.
  Value no_max = Target();
  no_max["MinCapacity"] = 1;
  EXPECT_EQ(Aas("RegisterScalableTarget", no_max).status().code(), "ValidationException");
  Value inverted = Target();
  inverted["MinCapacity"] = 3;
  inverted["MaxCapacity"] = 2;
  auto inv = Aas("RegisterScalableTarget", inverted);
  EXPECT_EQ(inv.status().message(), "Minimum capacity cannot be greater than maximum capacity");
  Value zero = Target();
  zero["MinCapacity"] = 0;
  zero["MaxCapacity"] = 2;
  EXPECT_EQ(Aas("RegisterScalableTarget", zero).status().code(), "ValidationException");

  // Nothing was stored.
  auto none = Aas("DescribeScalableTargets", Value::Object({{"ServiceNamespace", "sagemaker"}}));
  EXPECT_EQ(none->Find("ScalableTargets")->size(), 0u);
}

TEST_F(AutoScalingTest, DescribeScalableTargetsFiltersAndPages) {
  for (const char* v : {"endpoint/a/variant/v", "endpoint/b/variant/v", "endpoint/c/variant/v"}) {
    variants_.capacity[v] = 1;
    Register(1, 2, v);
  }
  Value page = Value::Object({{"ServiceNamespace", "sagemaker"}, {"MaxResults", 2}});
  auto first = Aas("DescribeScalableTargets", page);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->Find("ScalableTargets")->size(), 2u);
  EXPECT_EQ(first->Find("ScalableTargets")->list()[0].GetString("ResourceId"),
            "endpoint/a/variant/v");
  ASSERT_TRUE(first->Has("NextToken"));
  page["NextToken"] = first->GetString("NextToken");
  auto second = Aas("DescribeScalableTargets", page);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_EQ(second->Find("ScalableTargets")->size(), 1u);
  EXPECT_EQ(second->Find("ScalableTargets")->list()[0].GetString("ResourceId"),
            "endpoint/c/variant/v");
  EXPECT_FALSE(second->Has("NextToken"));

  Value filtered = Value::Object(
      {{"ServiceNamespace", "sagemaker"},
       {"ResourceIds", Value(Value::List{"endpoint/b/variant/v", "endpoint/zzz/variant/v"})}});
  auto b = Aas("DescribeScalableTargets", filtered);
  ASSERT_EQ(b->Find("ScalableTargets")->size(), 1u);
  EXPECT_EQ(b->Find("ScalableTargets")->list()[0].GetString("ResourceId"), "endpoint/b/variant/v");

  page["MaxResults"] = 51;
  EXPECT_EQ(Aas("DescribeScalableTargets", page).status().code(), "ValidationException");
  page["MaxResults"] = 2;
  page["NextToken"] = "not-a-token!";
  EXPECT_EQ(Aas("DescribeScalableTargets", page).status().code(), "InvalidNextTokenException");
}

TEST_F(AutoScalingTest, TagsOfScalableTargets) {
  Value in = Target();
  in["MinCapacity"] = 1;
  in["MaxCapacity"] = 2;
  in["Tags"] = Value::Object({{"team", "ml"}});
  auto out = Aas("RegisterScalableTarget", in);
  ASSERT_TRUE(out.ok());
  const std::string arn = out->GetString("ScalableTargetARN");
  ASSERT_TRUE(Aas("TagResource",
                  Value::Object({{"ResourceARN", arn}, {"Tags", Value::Object({{"env", "prod"}})}}))
                  .ok());
  ASSERT_TRUE(Aas("UntagResource",
                  Value::Object({{"ResourceARN", arn}, {"TagKeys", Value(Value::List{"team"})}}))
                  .ok());
  auto tags = Aas("ListTagsForResource", Value::Object({{"ResourceARN", arn}}));
  ASSERT_TRUE(tags.ok());
  EXPECT_EQ(*tags->Find("Tags"), Value::Object({{"env", "prod"}}));
  EXPECT_EQ(Resource("application-autoscaling", "TagResource",
                     Value::Object({{"ResourceARN", arn}}), root_),
            arn);

  auto unknown =
      Aas("ListTagsForResource", Value::Object({{"ResourceARN",
                                                 "arn:aws:application-autoscaling:us-east-1:"
                                                 "000000000000:scalable-target/0123"}}));
  EXPECT_EQ(unknown.status().code(), "ResourceNotFoundException");
  auto reserved =
      Aas("TagResource",
          Value::Object({{"ResourceARN", arn}, {"Tags", Value::Object({{"aws:x", "1"}})}}));
  EXPECT_EQ(reserved.status().code(), "ValidationException");
}

// ---------------------------------------------------------------------------------------
// Policies

TEST_F(AutoScalingTest, PutDescribeDeletePolicy) {
  Register(1, 4);
  Value config = TrackingConfig(70);
  config["ScaleInCooldown"] = 120;
  auto put = PutPolicy(config);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  const std::string arn = put->GetString("PolicyARN");
  EXPECT_TRUE(StartsWith(arn, "arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:")) << arn;
  EXPECT_TRUE(
      EndsWith(arn, std::string(":resource/sagemaker/") + kVariant + ":policyName/invocations"))
      << arn;
  const Value* alarms = put->Find("Alarms");
  ASSERT_EQ(alarms->size(), 2u);
  const std::string high = alarms->list()[0].GetString("AlarmName");
  EXPECT_TRUE(StartsWith(high, std::string("TargetTracking-") + kVariant + "-AlarmHigh-")) << high;
  EXPECT_EQ(alarms->list()[0].GetString("AlarmARN"),
            "arn:aws:cloudwatch:us-east-1:000000000000:alarm:" + high);

  // The alarms exist in CloudWatch and state the engine's rule.
  auto alarm = metrics_->alarms().Get("000000000000", "us-east-1", high);
  ASSERT_TRUE(alarm.ok()) << alarm.status().ToString();
  EXPECT_EQ(alarm->metric.ns, "AWS/SageMaker");
  EXPECT_EQ(alarm->metric.name, "InvocationsPerInstance");
  EXPECT_EQ(alarm->comparison_operator, "GreaterThanThreshold");
  EXPECT_DOUBLE_EQ(alarm->threshold, 70);
  auto low =
      metrics_->alarms().Get("000000000000", "us-east-1", alarms->list()[1].GetString("AlarmName"));
  ASSERT_TRUE(low.ok());
  EXPECT_DOUBLE_EQ(low->threshold, 63);
  EXPECT_EQ(low->comparison_operator, "LessThanThreshold");

  auto described =
      Aas("DescribeScalingPolicies",
          Value::Object({{"ServiceNamespace", "sagemaker"}, {"ResourceId", kVariant}}));
  ASSERT_TRUE(described.ok());
  ASSERT_EQ(described->Find("ScalingPolicies")->size(), 1u);
  const Value& p = described->Find("ScalingPolicies")->list()[0];
  EXPECT_EQ(p.GetString("PolicyARN"), arn);
  EXPECT_EQ(p.GetString("PolicyType"), "TargetTrackingScaling");
  const Value* cfg = p.Find("TargetTrackingScalingPolicyConfiguration");
  ASSERT_NE(cfg, nullptr);
  EXPECT_DOUBLE_EQ(cfg->Find("TargetValue")->AsDouble(), 70);
  EXPECT_EQ(cfg->GetInt("ScaleInCooldown"), 120);
  EXPECT_EQ(cfg->Find("PredefinedMetricSpecification")->GetString("PredefinedMetricType"),
            "SageMakerVariantInvocationsPerInstance");

  // Updating with DisableScaleIn keeps the ARN and the high alarm, drops the low one.
  config["DisableScaleIn"] = true;
  auto again = PutPolicy(config);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->GetString("PolicyARN"), arn);
  ASSERT_EQ(again->Find("Alarms")->size(), 1u);
  EXPECT_EQ(again->Find("Alarms")->list()[0].GetString("AlarmName"), high);
  EXPECT_FALSE(metrics_->alarms().Get("000000000000", "us-east-1", low->name).ok());

  Value del = Target();
  del["PolicyName"] = "invocations";
  ASSERT_TRUE(Aas("DeleteScalingPolicy", del).ok());
  EXPECT_FALSE(metrics_->alarms().Get("000000000000", "us-east-1", high).ok());
  auto gone = Aas("DeleteScalingPolicy", del);
  EXPECT_EQ(gone.status().code(), "ObjectNotFoundException");
  EXPECT_EQ(gone.status().message(),
            std::string("No scaling policy found for service namespace: sagemaker, resource ID: ") +
                kVariant + ", scalable dimension: " + kDim + ", policy name: invocations");
}

TEST_F(AutoScalingTest, PutPolicyErrors) {
  // No target yet.
  auto no_target = PutPolicy(TrackingConfig(10));
  EXPECT_EQ(no_target.status().code(), "ObjectNotFoundException");
  EXPECT_NE(no_target.status().message().find("No scalable target registered for service "
                                              "namespace: sagemaker"),
            std::string::npos);
  Register(1, 4);

  Value step = Target();
  step["PolicyName"] = "step";
  step["PolicyType"] = "StepScaling";
  auto s = Aas("PutScalingPolicy", step);
  EXPECT_EQ(s.status().code(), "ValidationException");
  EXPECT_NE(s.status().message().find("not implemented by Nimbus"), std::string::npos);

  Value neither = Value::Object({{"TargetValue", 10.0}});
  EXPECT_EQ(PutPolicy(neither).status().code(), "ValidationException");
  Value zero = TrackingConfig(0);
  EXPECT_NE(PutPolicy(zero).status().message().find("targetValue"), std::string::npos);
  Value unknown_type = Value::Object(
      {{"TargetValue", 10.0},
       {"PredefinedMetricSpecification",
        Value::Object({{"PredefinedMetricType", "ECSServiceAverageCPUUtilization"}})}});
  auto u = PutPolicy(unknown_type);
  EXPECT_EQ(u.status().code(), "ValidationException");
  EXPECT_NE(u.status().message().find("ECSServiceAverageCPUUtilization"), std::string::npos);
  Value math = Value::Object(
      {{"TargetValue", 10.0},
       {"CustomizedMetricSpecification",
        Value::Object({{"Metrics", Value(Value::List{Value::Object({{"Id", "m1"}})})}})}});
  EXPECT_EQ(PutPolicy(math).status().code(), "ValidationException");
  Value cooldown = TrackingConfig(10);
  cooldown["ScaleOutCooldown"] = -1;
  EXPECT_EQ(PutPolicy(cooldown).status().code(), "ValidationException");

  auto none = Aas("DescribeScalingPolicies", Value::Object({{"ServiceNamespace", "sagemaker"}}));
  EXPECT_EQ(none->Find("ScalingPolicies")->size(), 0u);
}

// ---------------------------------------------------------------------------------------
// The engine

TEST_F(AutoScalingTest, ScalesOutInProportionToTheMetric) {
  Register(1, 8);
  ASSERT_TRUE(PutPolicy(TrackingConfig(10)).ok());
  Invocations(35);  // 35 per instance per minute against a target of 10: 4 instances
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 4);
  std::vector<ScalingActivity> a = Activities();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].status_code, "Successful");
  EXPECT_EQ(a[0].description, "Setting desired instance count to 4.");
  EXPECT_EQ(a[0].status_message,
            "Successfully set desired instance count to 4. Change successfully fulfilled by "
            "sagemaker.");
  EXPECT_TRUE(StartsWith(a[0].cause,
                         std::string("monitor alarm TargetTracking-") + kVariant + "-AlarmHigh-"))
      << a[0].cause;
  EXPECT_TRUE(EndsWith(a[0].cause, "in state ALARM triggered policy invocations"));
  EXPECT_DOUBLE_EQ(StoredTarget().last_scale_out, kNow + 5);

  // The activity is what DescribeScalingActivities answers.
  auto described =
      Aas("DescribeScalingActivities",
          Value::Object({{"ServiceNamespace", "sagemaker"}, {"ResourceId", kVariant}}));
  ASSERT_TRUE(described.ok());
  ASSERT_EQ(described->Find("ScalingActivities")->size(), 1u);
  const Value& act = described->Find("ScalingActivities")->list()[0];
  EXPECT_EQ(act.GetString("StatusCode"), "Successful");
  EXPECT_EQ(act.GetString("ScalableDimension"), kDim);
  EXPECT_TRUE(act.Has("StartTime") && act.Has("EndTime") && act.Has("ActivityId"));
}

TEST_F(AutoScalingTest, ScaleOutIsClampedToMaxCapacity) {
  Register(1, 3);
  ASSERT_TRUE(PutPolicy(TrackingConfig(10)).ok());
  Invocations(1000);
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 3);
  // At the maximum, more load changes nothing.
  clock_.Advance(600);
  Invocations(1000, kNow + 600);
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 3);
  EXPECT_EQ(Activities().size(), 1u);
}

TEST_F(AutoScalingTest, ScaleOutCooldownBlocksTheNextScaleOut) {
  Register(1, 10);
  Value config = TrackingConfig(10);
  config["ScaleOutCooldown"] = 180;
  ASSERT_TRUE(PutPolicy(config).ok());
  Invocations(20);
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 2);

  // A minute later the load per instance is still above target, but the cooldown holds.
  clock_.Advance(60);
  Invocations(60, kNow + 60);  // 30 per instance: 6 instances wanted
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 2);

  // Once it has passed, the policy acts again.
  clock_.Advance(120);
  Invocations(60, kNow + 180);
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 6);
  EXPECT_EQ(Activities().size(), 2u);
}

TEST_F(AutoScalingTest, ScalesInWhenBelowTargetAndIdle) {
  variants_.capacity[kVariant] = 4;
  Register(1, 4);
  ASSERT_TRUE(PutPolicy(TrackingConfig(10)).ok());
  // 20 invocations over 4 instances: 5 per instance, below 90% of 10: 2 instances.
  Invocations(20);
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 2);
  EXPECT_DOUBLE_EQ(StoredTarget().last_scale_in, kNow + 5);

  // The scale-in cooldown (default 300 s) holds the next one.
  clock_.Advance(60);
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 2);
  // Then an idle variant goes down to its minimum.
  clock_.Advance(300);
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 1);

  // Just below the target but above 90% of it is not a reason to scale in.
  variants_.capacity[kVariant] = 2;
  clock_.Advance(600);
  const double minute = std::floor(clock_.Now() / 60) * 60;
  Invocations(19, minute);  // 9.5 per instance
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 2);
}

TEST_F(AutoScalingTest, DisableScaleInKeepsCapacity) {
  variants_.capacity[kVariant] = 3;
  Register(1, 4);
  Value config = TrackingConfig(10);
  config["DisableScaleIn"] = true;
  ASSERT_TRUE(PutPolicy(config).ok());
  ASSERT_TRUE(Evaluate().ok());  // no invocations at all
  EXPECT_EQ(Capacity(), 3);
  EXPECT_TRUE(Activities().empty());
  // Scale-out still works.
  Invocations(60);
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 4);
}

TEST_F(AutoScalingTest, SuspendedDirectionsAreSkipped) {
  variants_.capacity[kVariant] = 2;
  Value in = Target();
  in["MinCapacity"] = 1;
  in["MaxCapacity"] = 4;
  in["SuspendedState"] = Value::Object({{"DynamicScalingOutSuspended", true}});
  ASSERT_TRUE(Aas("RegisterScalableTarget", in).ok());
  ASSERT_TRUE(PutPolicy(TrackingConfig(10)).ok());
  Invocations(200);
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 2);

  in.Erase("MinCapacity");
  in.Erase("MaxCapacity");
  in["SuspendedState"] = Value::Object({{"DynamicScalingInSuspended", true}});
  ASSERT_TRUE(Aas("RegisterScalableTarget", in).ok());
  clock_.Advance(600);  // idle now
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 2);

  in["SuspendedState"] = Value::Object({});
  ASSERT_TRUE(Aas("RegisterScalableTarget", in).ok());
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 1);
}

TEST_F(AutoScalingTest, CustomizedMetricUsesItsStatistic) {
  Register(1, 10);
  Value config = Value::Object(
      {{"TargetValue", 50.0},
       {"CustomizedMetricSpecification",
        Value::Object({{"Namespace", "App"},
                       {"MetricName", "QueueDepth"},
                       {"Dimensions",
                        Value(Value::List{Value::Object({{"Name", "Queue"}, {"Value", "jobs"}})})},
                       {"Statistic", "Average"}})}});
  ASSERT_TRUE(PutPolicy(config).ok());
  // Without data nothing happens (not even a scale-in).
  variants_.capacity[kVariant] = 2;
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 2);

  telemetry::MetricDatum d;
  d.metric_name = "QueueDepth";
  d.dimensions = {{"Queue", "jobs"}};
  d.timestamp = kNow - 30;
  d.values = {100, 200};  // Average 150: 2 * 150 / 50 = 6
  ASSERT_TRUE(metrics_->Put("000000000000", "us-east-1", "App", {d}).ok());
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 6);
}

TEST_F(AutoScalingTest, RefusedChangeIsOneFailedActivity) {
  Register(1, 4);
  ASSERT_TRUE(PutPolicy(TrackingConfig(10)).ok());
  variants_.refuse = Status::Aws("ValidationException", 400,
                                 "Endpoint ep is in status Updating and cannot be updated.");
  Invocations(30);
  ASSERT_TRUE(Evaluate().ok());
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(variants_.set_calls, 2);
  EXPECT_EQ(Capacity(), 1);
  std::vector<ScalingActivity> a = Activities();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].status_code, "Failed");
  EXPECT_EQ(a[0].status_message,
            "Failed to set desired instance count to 3. Reason: Endpoint ep is in status "
            "Updating and cannot be updated.");
  // A failed change starts no cooldown; once the owner accepts, it happens.
  variants_.refuse = Status::Ok();
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 3);
  EXPECT_EQ(Activities()[0].status_code, "Successful");
}

TEST_F(AutoScalingTest, RegisterAppliesNewBoundsAtOnce) {
  Register(1, 4);
  Register(3, 4);
  EXPECT_EQ(Capacity(), 3);
  std::vector<ScalingActivity> a = Activities();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].cause, "minimum capacity was set to 3");
  Register(1, 2);
  EXPECT_EQ(Capacity(), 2);
  EXPECT_EQ(Activities()[0].cause, "maximum capacity was set to 2");
}

TEST_F(AutoScalingTest, SeveralDatapointsAreNeededWhenConfigured) {
  ScalingEngineOptions o;  // AWS's: 3 minutes above to scale out
  OpenService(o);
  Register(1, 8);
  ASSERT_TRUE(PutPolicy(TrackingConfig(10)).ok());
  Invocations(40);
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 1);
  Invocations(40, kNow - 60);
  Invocations(40, kNow - 120);
  ASSERT_TRUE(Evaluate().ok());
  EXPECT_EQ(Capacity(), 4);
  // The alarms carry the same rule.
  auto policies = service_->store().PoliciesOf("000000000000", "us-east-1",
                                               TargetKey{"sagemaker", kVariant, kDim});
  ASSERT_TRUE(policies.ok());
  auto high = metrics_->alarms().Get("000000000000", "us-east-1", (*policies)[0].alarms[0].name);
  ASSERT_TRUE(high.ok());
  EXPECT_EQ(high->evaluation_periods, 3);
  auto low = metrics_->alarms().Get("000000000000", "us-east-1", (*policies)[0].alarms[1].name);
  EXPECT_EQ(low->evaluation_periods, 15);
}

TEST_F(AutoScalingTest, RunOnceSkipsTargetsWhoseResourceIsGone) {
  variants_.capacity["endpoint/gone/variant/v"] = 1;
  Register(1, 4, "endpoint/gone/variant/v");
  Register(1, 4);
  ASSERT_TRUE(PutPolicy(TrackingConfig(10)).ok());
  variants_.capacity.erase("endpoint/gone/variant/v");
  Invocations(25);
  ASSERT_TRUE(service_->engine().RunOnce().ok());
  EXPECT_EQ(Capacity(), 3);
}

// ---------------------------------------------------------------------------------------
// Storage

TEST_F(AutoScalingTest, StateSurvivesReopening) {
  Register(1, 4);
  Value config = TrackingConfig(10);
  config["ScaleOutCooldown"] = 30;
  ASSERT_TRUE(PutPolicy(config).ok());
  Invocations(30);
  ASSERT_TRUE(Evaluate().ok());

  OpenService(FastOptions());  // the same database, new store and engine
  ScalableTarget t = StoredTarget();
  EXPECT_EQ(t.max_capacity, 4);
  EXPECT_DOUBLE_EQ(t.last_scale_out, kNow + 5);
  auto policies = service_->store().PoliciesOf("000000000000", "us-east-1",
                                               TargetKey{"sagemaker", kVariant, kDim});
  ASSERT_TRUE(policies.ok());
  ASSERT_EQ(policies->size(), 1u);
  EXPECT_EQ((*policies)[0].configuration.GetInt("ScaleOutCooldown"), 30);
  EXPECT_EQ((*policies)[0].alarms.size(), 2u);
  ASSERT_EQ(Activities().size(), 1u);

  // Re-registering does not reset the cooldown clock the engine wrote.
  Register(1, 5);
  EXPECT_DOUBLE_EQ(StoredTarget().last_scale_out, kNow + 5);
}

TEST_F(AutoScalingTest, ActivitiesPageNewestFirstAndExpire) {
  ScalingActivity base;
  base.account = "000000000000";
  base.region = "us-east-1";
  base.key = TargetKey{"sagemaker", kVariant, kDim};
  base.description = "Setting desired instance count to 2.";
  base.cause = "a test";
  base.status_code = "Successful";
  for (const char* id : {"id-0", "id-1", "id-2", "id-3", "id-4"}) {
    ScalingActivity a = base;
    a.activity_id = id;
    a.start_time = a.end_time = kNow + (id[3] - '0');
    ASSERT_TRUE(service_->store().AddActivity(a).ok());
  }
  Value in = Value::Object({{"ServiceNamespace", "sagemaker"}, {"MaxResults", 2}});
  std::vector<std::string> ids;
  for (int page = 0; page < 5; ++page) {
    auto out = Aas("DescribeScalingActivities", in);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    for (const Value& a : out->Find("ScalingActivities")->list()) {
      ids.push_back(a.GetString("ActivityId"));
    }
    if (!out->Has("NextToken")) break;
    in["NextToken"] = out->GetString("NextToken");
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"id-4", "id-3", "id-2", "id-1", "id-0"}));

  ASSERT_TRUE(service_->store().ExpireActivities(kNow + 3).ok());
  EXPECT_EQ(Activities().size(), 2u);
}

TEST(CapacityNounTest, NamesTheProperty) {
  EXPECT_EQ(autoscaling::CapacityNoun("sagemaker:variant:DesiredInstanceCount"),
            "desired instance count");
  EXPECT_EQ(autoscaling::CapacityNoun("dynamodb:table:WriteCapacityUnits"), "write capacity units");
  EXPECT_EQ(autoscaling::CapacityNoun("custom-resource:ResourceType:Property"), "desired capacity");
}

}  // namespace
}  // namespace nimbus::services
