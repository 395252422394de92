#include "services/cloudwatch/cloudwatch_service.h"

#include "service_test_env.h"
#include "telemetry/alarms.h"

namespace nimbus::services {
namespace {

// 2023-11-14T22:14:00Z, a minute boundary.
constexpr double kNow = 1700000040;

class CloudWatchServiceTest : public testing::ServiceTestEnv {
 protected:
  void SetUp() override {
    ServiceTestEnv::SetUp();
    clock_.Set(kNow);
    auto store = telemetry::MetricStore::Open(*db_, clock_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    metrics_ = std::move(store).value();
    RegisterCloudWatchService(registry_, *metrics_);
  }
  void TearDown() override {
    metrics_.reset();
    ServiceTestEnv::TearDown();
  }

  Result<Value> Cw(const std::string& op, const Value& input) {
    return Call("cloudwatch", op, input, root_);
  }

  static Value Dims(std::initializer_list<std::pair<const char*, const char*>> dims) {
    Value list = Value::MakeList();
    for (const auto& [n, v] : dims) list.Append(Value::Object({{"Name", n}, {"Value", v}}));
    return list;
  }

  std::unique_ptr<telemetry::MetricStore> metrics_;
};

Value Datum(const char* name, double value, double ts) {
  return Value::Object(
      {{"MetricName", name}, {"Value", value}, {"Timestamp", Value::Timestamp(ts)}});
}

TEST_F(CloudWatchServiceTest, PutThenGetMetricStatistics) {
  Value d1 = Datum("Latency", 10, kNow - 60);
  d1["Dimensions"] = Dims({{"Host", "a"}});
  d1["Unit"] = "Milliseconds";
  Value d2 = Value::Object({{"MetricName", "Latency"},
                            {"Dimensions", Dims({{"Host", "a"}})},
                            {"Unit", "Milliseconds"},
                            {"Timestamp", Value::Timestamp(kNow - 50)},
                            {"Values", Value(Value::List{20.0, 30.0})},
                            {"Counts", Value(Value::List{1.0, 2.0})}});
  Value d3 = Value::Object(
      {{"MetricName", "Latency"},
       {"Dimensions", Dims({{"Host", "a"}})},
       {"Unit", "Milliseconds"},
       {"Timestamp", Value::Timestamp(kNow - 40)},
       {"StatisticValues",
        Value::Object({{"SampleCount", 2.0}, {"Sum", 8.0}, {"Minimum", 4.0}, {"Maximum", 4.0}})}});
  auto put =
      Cw("PutMetricData",
         Value::Object({{"Namespace", "App"}, {"MetricData", Value(Value::List{d1, d2, d3})}}));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(*put, Value::MakeMap());

  auto out =
      Cw("GetMetricStatistics",
         Value::Object({{"Namespace", "App"},
                        {"MetricName", "Latency"},
                        {"Dimensions", Dims({{"Host", "a"}})},
                        {"StartTime", Value::Timestamp(kNow - 3600)},
                        {"EndTime", Value::Timestamp(kNow)},
                        {"Period", 60},
                        {"Statistics",
                         Value(Value::List{"SampleCount", "Sum", "Average", "Minimum", "Maximum"})},
                        {"ExtendedStatistics", Value(Value::List{"p50", "p100"})}}));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->GetString("Label"), "Latency");
  const Value& points = *out->Find("Datapoints");
  ASSERT_EQ(points.size(), 1u);
  const Value& p = points.list()[0];
  EXPECT_TRUE(p.Find("Timestamp")->is_timestamp());
  EXPECT_EQ(p.Find("Timestamp")->AsDouble(), kNow - 60);
  EXPECT_EQ(p.GetString("Unit"), "Milliseconds");
  EXPECT_EQ(p.Find("SampleCount")->AsDouble(), 6);
  EXPECT_EQ(p.Find("Sum")->AsDouble(), 10 + 20 + 60 + 8);
  EXPECT_EQ(p.Find("Minimum")->AsDouble(), 4);
  EXPECT_EQ(p.Find("Maximum")->AsDouble(), 30);
  EXPECT_NEAR(p.Find("ExtendedStatistics")->Find("p50")->AsDouble(), 10, 0.1);
  EXPECT_EQ(p.Find("ExtendedStatistics")->Find("p100")->AsDouble(), 30);
}

TEST_F(CloudWatchServiceTest, PutMetricDataErrors) {
  auto reserved =
      Cw("PutMetricData", Value::Object({{"Namespace", "AWS/EC2"},
                                         {"MetricData", Value(Value::List{Datum("X", 1, kNow)})}}));
  EXPECT_EQ(reserved.status().code(), "InvalidParameterValue");
  EXPECT_EQ(reserved.status().http_status(), 400);
  Value bad = Datum("X", 1, kNow);
  bad["StatisticValues"] =
      Value::Object({{"SampleCount", 1.0}, {"Sum", 1.0}, {"Minimum", 1.0}, {"Maximum", 1.0}});
  auto both = Cw("PutMetricData",
                 Value::Object({{"Namespace", "App"}, {"MetricData", Value(Value::List{bad})}}));
  EXPECT_EQ(both.status().code(), "InvalidParameterCombination");
  Value::List many(1001, Datum("X", 1, kNow));
  auto too_many =
      Cw("PutMetricData", Value::Object({{"Namespace", "App"}, {"MetricData", Value(many)}}));
  EXPECT_EQ(too_many.status().code(), "InvalidParameterValue");
}

TEST_F(CloudWatchServiceTest, GetMetricDataWithMathAndListMetrics) {
  Value::List data;
  for (int i = 0; i < 3; ++i) {
    data.push_back(Datum("Hits", 10.0 * (i + 1), kNow - 180 + 60 * i));
    data.push_back(Datum("Misses", 1.0 * (i + 1), kNow - 180 + 60 * i));
  }
  ASSERT_TRUE(
      Cw("PutMetricData", Value::Object({{"Namespace", "Cache"}, {"MetricData", Value(data)}}))
          .ok());
  auto stat = [](const char* id, const char* name) {
    return Value::Object(
        {{"Id", id},
         {"ReturnData", false},
         {"MetricStat",
          Value::Object({{"Metric", Value::Object({{"Namespace", "Cache"}, {"MetricName", name}})},
                         {"Period", 60},
                         {"Stat", "Sum"}})}});
  };
  Value ratio =
      Value::Object({{"Id", "ratio"}, {"Expression", "100 * h / (h + m)"}, {"Label", "Hit ratio"}});
  auto out = Cw("GetMetricData",
                Value::Object({{"MetricDataQueries",
                                Value(Value::List{stat("h", "Hits"), stat("m", "Misses"), ratio})},
                               {"StartTime", Value::Timestamp(kNow - 600)},
                               {"EndTime", Value::Timestamp(kNow)},
                               {"ScanBy", "TimestampAscending"}}));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const Value& results = *out->Find("MetricDataResults");
  ASSERT_EQ(results.size(), 1u);
  const Value& r = results.list()[0];
  EXPECT_EQ(r.GetString("Id"), "ratio");
  EXPECT_EQ(r.GetString("Label"), "Hit ratio");
  EXPECT_EQ(r.GetString("StatusCode"), "Complete");
  ASSERT_EQ(r.Find("Values")->size(), 3u);
  for (const Value& v : r.Find("Values")->list()) EXPECT_NEAR(v.AsDouble(), 100.0 * 10 / 11, 1e-9);
  EXPECT_TRUE(r.Find("Timestamps")->list()[0].is_timestamp());
  EXPECT_EQ(r.Find("Timestamps")->list()[0].AsDouble(), kNow - 180);
  EXPECT_FALSE(out->Has("NextToken"));

  auto bad = Cw(
      "GetMetricData",
      Value::Object({{"MetricDataQueries",
                      Value(Value::List{Value::Object({{"Id", "e"}, {"Expression", "FOO(1)"}})})},
                     {"StartTime", Value::Timestamp(kNow - 600)},
                     {"EndTime", Value::Timestamp(kNow)}}));
  EXPECT_EQ(bad.status().code(), "ValidationError");

  auto list = Cw("ListMetrics", Value::Object({{"Namespace", "Cache"}}));
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->Find("Metrics")->size(), 2u);
  auto named = Cw("ListMetrics", Value::Object({{"MetricName", "Hits"}}));
  ASSERT_EQ(named->Find("Metrics")->size(), 1u);
  EXPECT_EQ(named->Find("Metrics")->list()[0].GetString("Namespace"), "Cache");
  EXPECT_EQ(named->Find("Metrics")->list()[0].Find("Dimensions")->size(), 0u);
}

TEST_F(CloudWatchServiceTest, AlarmLifecycle) {
  Value alarm = Value::Object(
      {{"AlarmName", "hits-high"},
       {"Namespace", "Cache"},
       {"MetricName", "Hits"},
       {"Statistic", "Sum"},
       {"Period", 60},
       {"EvaluationPeriods", 1},
       {"Threshold", 5.0},
       {"ComparisonOperator", "GreaterThanThreshold"},
       {"AlarmActions", Value(Value::List{"arn:aws:sns:us-east-1:000000000000:t"})},
       {"Tags", Value(Value::List{Value::Object({{"Key", "team"}, {"Value", "ml"}})})}});
  const std::string arn = "arn:aws:cloudwatch:us-east-1:000000000000:alarm:hits-high";
  EXPECT_EQ(Resource("cloudwatch", "PutMetricAlarm", alarm, root_), arn);
  ASSERT_TRUE(Cw("PutMetricData",
                 Value::Object({{"Namespace", "Cache"},
                                {"MetricData", Value(Value::List{Datum("Hits", 9, kNow - 60)})}}))
                  .ok());
  auto put = Cw("PutMetricAlarm", alarm);
  ASSERT_TRUE(put.ok()) << put.status().ToString();

  auto described =
      Cw("DescribeAlarms", Value::Object({{"AlarmNames", Value(Value::List{"hits-high"})}}));
  ASSERT_TRUE(described.ok());
  ASSERT_EQ(described->Find("MetricAlarms")->size(), 1u);
  EXPECT_EQ(described->Find("CompositeAlarms")->size(), 0u);
  const Value& a = described->Find("MetricAlarms")->list()[0];
  EXPECT_EQ(a.GetString("AlarmArn"), arn);
  EXPECT_EQ(a.GetString("StateValue"), "ALARM");
  EXPECT_EQ(a.GetString("StateReason"),
            "Threshold Crossed: 1 datapoint [9.0 (14/11/23 22:13:00)] was greater than the "
            "threshold (5.0).");
  EXPECT_TRUE(a.Find("StateUpdatedTimestamp")->is_timestamp());
  EXPECT_EQ(a.GetString("Statistic"), "Sum");
  EXPECT_FALSE(a.Has("ExtendedStatistic"));
  EXPECT_EQ(a.Find("Threshold")->AsDouble(), 5);

  auto for_metric = Cw("DescribeAlarmsForMetric",
                       Value::Object({{"Namespace", "Cache"}, {"MetricName", "Hits"}}));
  EXPECT_EQ(for_metric->Find("MetricAlarms")->size(), 1u);
  auto composite =
      Cw("DescribeAlarms", Value::Object({{"AlarmTypes", Value(Value::List{"CompositeAlarm"})}}));
  EXPECT_EQ(composite->Find("MetricAlarms")->size(), 0u);

  auto tags = Cw("ListTagsForResource", Value::Object({{"ResourceARN", arn}}));
  ASSERT_TRUE(tags.ok());
  EXPECT_EQ(tags->Find("Tags")->list()[0].GetString("Key"), "team");
  EXPECT_EQ(
      Resource("cloudwatch", "ListTagsForResource", Value::Object({{"ResourceARN", arn}}), root_),
      arn);

  ASSERT_TRUE(Cw("SetAlarmState",
                 Value::Object(
                     {{"AlarmName", "hits-high"}, {"StateValue", "OK"}, {"StateReason", "manual"}}))
                  .ok());
  auto history =
      Cw("DescribeAlarmHistory",
         Value::Object({{"AlarmName", "hits-high"}, {"HistoryItemType", "StateUpdate"}}));
  ASSERT_TRUE(history.ok());
  const Value& items = *history->Find("AlarmHistoryItems");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items.list()[0].GetString("HistorySummary"), "Alarm updated from ALARM to OK");
  EXPECT_EQ(items.list()[0].GetString("AlarmType"), "MetricAlarm");

  ASSERT_TRUE(
      Cw("DisableAlarmActions", Value::Object({{"AlarmNames", Value(Value::List{"hits-high"})}}))
          .ok());
  described = Cw("DescribeAlarms", Value::MakeMap());
  EXPECT_FALSE(described->Find("MetricAlarms")->list()[0].GetBool("ActionsEnabled", true));

  auto missing = Cw("DeleteAlarms", Value::Object({{"AlarmNames", Value(Value::List{"nope"})}}));
  EXPECT_EQ(missing.status().code(), "ResourceNotFound");
  EXPECT_EQ(missing.status().http_status(), 404);
  ASSERT_TRUE(
      Cw("DeleteAlarms", Value::Object({{"AlarmNames", Value(Value::List{"hits-high"})}})).ok());
  EXPECT_EQ(Cw("DescribeAlarms", Value::MakeMap())->Find("MetricAlarms")->size(), 0u);
}

TEST_F(CloudWatchServiceTest, UnsupportedAlarmKindsAreCleanErrors) {
  Value math = Value::Object({{"AlarmName", "m"},
                              {"EvaluationPeriods", 1},
                              {"ComparisonOperator", "GreaterThanThreshold"},
                              {"Threshold", 1.0},
                              {"Metrics", Value::MakeList()}});
  EXPECT_EQ(Cw("PutMetricAlarm", math).status().code(), "ValidationError");
  Value anomaly =
      Value::Object({{"AlarmName", "a"},
                     {"Namespace", "X"},
                     {"MetricName", "Y"},
                     {"Statistic", "Sum"},
                     {"Period", 60},
                     {"EvaluationPeriods", 1},
                     {"ComparisonOperator", "LessThanLowerOrGreaterThanUpperThreshold"}});
  auto out = Cw("PutMetricAlarm", anomaly);
  EXPECT_EQ(out.status().code(), "ValidationError");
  EXPECT_NE(out.status().message().find("anomaly"), std::string::npos);
  Value no_threshold = anomaly;
  no_threshold["ComparisonOperator"] = "GreaterThanThreshold";
  EXPECT_NE(Cw("PutMetricAlarm", no_threshold).status().message().find("Threshold"),
            std::string::npos);
}

}  // namespace
}  // namespace nimbus::services
