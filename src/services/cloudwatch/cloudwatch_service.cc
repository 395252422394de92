#include "services/cloudwatch/cloudwatch_service.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/strings.h"
#include "telemetry/alarms.h"

namespace nimbus::services {
namespace {

using telemetry::AlarmStore;
using telemetry::Dimension;
using telemetry::MetricAlarm;
using telemetry::MetricKey;
using telemetry::MetricStore;

Status ValidationError(std::string msg) {
  return Status::Aws("ValidationError", 400, std::move(msg));
}

std::optional<double> OptDouble(const Value& in, std::string_view key) {
  const Value* v = in.Find(key);
  if (!v || v->is_null()) return std::nullopt;
  return v->AsDouble();
}

std::vector<std::string> StringList(const Value& in, std::string_view key) {
  std::vector<std::string> out;
  if (const Value* list = in.Find(key); list && list->is_list()) {
    for (const Value& s : list->list()) out.push_back(s.AsString());
  }
  return out;
}

std::vector<double> DoubleList(const Value& in, std::string_view key) {
  std::vector<double> out;
  if (const Value* list = in.Find(key); list && list->is_list()) {
    for (const Value& v : list->list()) out.push_back(v.AsDouble());
  }
  return out;
}

std::vector<Dimension> DimensionsFrom(const Value& in) {
  std::vector<Dimension> dims;
  if (const Value* list = in.Find("Dimensions"); list && list->is_list()) {
    for (const Value& d : list->list()) dims.push_back({d.GetString("Name"), d.GetString("Value")});
  }
  return dims;
}

Value DimensionsValue(const std::vector<Dimension>& dims) {
  Value list = Value::MakeList();
  for (const Dimension& d : dims)
    list.Append(Value::Object({{"Name", d.name}, {"Value", d.value}}));
  return list;
}

MetricKey MetricFrom(const Value& in) {
  return MetricKey{in.GetString("Namespace"), in.GetString("MetricName"), DimensionsFrom(in)};
}

Value StringsValue(const std::vector<std::string>& items) {
  Value list = Value::MakeList();
  for (const std::string& s : items) list.Append(s);
  return list;
}

// ---------------------------------------------------------------------------------------
// Metrics

Result<Value> PutMetricData(MetricStore& store, const Value& in, aws::RequestContext& ctx) {
  const std::string ns = in.GetString("Namespace");
  if (StartsWith(ns, "AWS/")) {
    return Status::Aws("InvalidParameterValue", 400,
                       "The value " + ns + " for parameter Namespace is invalid: namespaces " +
                           "starting with \"AWS/\" are reserved for AWS services.");
  }
  std::vector<telemetry::MetricDatum> data;
  if (const Value* list = in.Find("MetricData"); list && list->is_list()) {
    data.reserve(list->list().size());
    for (const Value& d : list->list()) {
      telemetry::MetricDatum datum;
      datum.metric_name = d.GetString("MetricName");
      datum.dimensions = DimensionsFrom(d);
      if (auto t = OptDouble(d, "Timestamp")) datum.timestamp = *t;
      datum.value = OptDouble(d, "Value");
      datum.values = DoubleList(d, "Values");
      datum.counts = DoubleList(d, "Counts");
      if (const Value* s = d.Find("StatisticValues"); s && s->is_map()) {
        datum.statistic_values = telemetry::StatisticValues{
            OptDouble(*s, "SampleCount").value_or(0), OptDouble(*s, "Sum").value_or(0),
            OptDouble(*s, "Minimum").value_or(0), OptDouble(*s, "Maximum").value_or(0)};
      }
      datum.unit = d.GetString("Unit");
      datum.storage_resolution = static_cast<int>(d.GetInt("StorageResolution", 60));
      data.push_back(std::move(datum));
    }
  }
  NIMBUS_RETURN_IF_ERROR(store.Put(ctx.account_id, ctx.region, ns, data));
  return Value::MakeMap();
}

Result<Value> GetMetricStatistics(MetricStore& store, const Value& in, aws::RequestContext& ctx) {
  telemetry::StatisticsRequest request;
  request.metric = MetricFrom(in);
  request.start_time = OptDouble(in, "StartTime").value_or(0);
  request.end_time = OptDouble(in, "EndTime").value_or(0);
  request.period = static_cast<int>(in.GetInt("Period"));
  request.statistics = StringList(in, "Statistics");
  request.extended_statistics = StringList(in, "ExtendedStatistics");
  request.unit = in.GetString("Unit");
  NIMBUS_ASSIGN_OR_RETURN(std::vector<telemetry::StatisticsDatapoint> points,
                          store.GetStatistics(ctx.account_id, ctx.region, request));
  Value datapoints = Value::MakeList();
  for (const auto& p : points) {
    Value d = Value::Object({{"Timestamp", Value::Timestamp(p.timestamp)}, {"Unit", p.unit}});
    for (const auto& [name, v] : p.statistics) d[name] = v;
    if (!p.extended_statistics.empty()) {
      Value ext = Value::MakeMap();
      for (const auto& [name, v] : p.extended_statistics) ext[name] = v;
      d["ExtendedStatistics"] = std::move(ext);
    }
    datapoints.Append(std::move(d));
  }
  return Value::Object({{"Label", request.metric.name}, {"Datapoints", std::move(datapoints)}});
}

Result<Value> GetMetricData(MetricStore& store, const Value& in, aws::RequestContext& ctx) {
  telemetry::MetricDataRequest request;
  if (const Value* list = in.Find("MetricDataQueries"); list && list->is_list()) {
    for (const Value& q : list->list()) {
      telemetry::MetricDataQuery query;
      query.id = q.GetString("Id");
      query.label = q.GetString("Label");
      query.return_data = q.GetBool("ReturnData", true);
      query.period = static_cast<int>(q.GetInt("Period", 0));
      query.expression = q.GetString("Expression");
      if (const Value* ms = q.Find("MetricStat"); ms && ms->is_map()) {
        telemetry::MetricStat stat;
        if (const Value* metric = ms->Find("Metric")) stat.metric = MetricFrom(*metric);
        stat.period = static_cast<int>(ms->GetInt("Period"));
        stat.stat = ms->GetString("Stat");
        stat.unit = ms->GetString("Unit");
        query.metric_stat = std::move(stat);
      }
      if (q.Has("AccountId") && q.GetString("AccountId") != ctx.account_id) {
        return ValidationError("Cross-account queries (AccountId " + q.GetString("AccountId") +
                               ") are not supported by Nimbus.");
      }
      request.queries.push_back(std::move(query));
    }
  }
  request.start_time = OptDouble(in, "StartTime").value_or(0);
  request.end_time = OptDouble(in, "EndTime").value_or(0);
  request.scan_ascending = in.GetString("ScanBy") == "TimestampAscending";
  request.max_datapoints = in.GetInt("MaxDatapoints", 100800);
  request.next_token = in.GetString("NextToken");
  NIMBUS_ASSIGN_OR_RETURN(telemetry::MetricDataResponse response,
                          store.GetMetricData(ctx.account_id, ctx.region, request));
  Value results = Value::MakeList();
  for (const auto& r : response.results) {
    Value timestamps = Value::MakeList();
    for (double t : r.timestamps) timestamps.Append(Value::Timestamp(t));
    Value values = Value::MakeList();
    for (double v : r.values) values.Append(v);
    Value messages = Value::MakeList();
    for (const auto& m : r.messages) {
      messages.Append(Value::Object({{"Code", m.code}, {"Value", m.value}}));
    }
    results.Append(Value::Object({{"Id", r.id},
                                  {"Label", r.label},
                                  {"Timestamps", std::move(timestamps)},
                                  {"Values", std::move(values)},
                                  {"StatusCode", r.status_code},
                                  {"Messages", std::move(messages)}}));
  }
  Value out =
      Value::Object({{"MetricDataResults", std::move(results)}, {"Messages", Value::MakeList()}});
  if (!response.next_token.empty()) out["NextToken"] = response.next_token;
  return out;
}

Result<Value> ListMetrics(MetricStore& store, const Value& in, aws::RequestContext& ctx) {
  telemetry::ListMetricsRequest request;
  if (in.Has("Namespace")) request.ns = in.GetString("Namespace");
  if (in.Has("MetricName")) request.metric_name = in.GetString("MetricName");
  if (const Value* list = in.Find("Dimensions"); list && list->is_list()) {
    for (const Value& f : list->list()) {
      telemetry::DimensionFilter filter{f.GetString("Name"), std::nullopt};
      if (f.Has("Value")) filter.value = f.GetString("Value");
      request.dimensions.push_back(std::move(filter));
    }
  }
  request.recently_active = in.GetString("RecentlyActive") == "PT3H";
  request.next_token = in.GetString("NextToken");
  if (in.Has("OwningAccount") && in.GetString("OwningAccount") != ctx.account_id) {
    return Value::Object({{"Metrics", Value::MakeList()}});
  }
  NIMBUS_ASSIGN_OR_RETURN(telemetry::ListMetricsResponse response,
                          store.ListMetrics(ctx.account_id, ctx.region, request));
  Value metrics = Value::MakeList();
  Value owners = Value::MakeList();
  for (const MetricKey& m : response.metrics) {
    metrics.Append(Value::Object({{"Namespace", m.ns},
                                  {"MetricName", m.name},
                                  {"Dimensions", DimensionsValue(m.dimensions)}}));
    owners.Append(ctx.account_id);
  }
  Value out = Value::Object({{"Metrics", std::move(metrics)}});
  if (in.GetBool("IncludeLinkedAccounts")) out["OwningAccounts"] = std::move(owners);
  if (!response.next_token.empty()) out["NextToken"] = response.next_token;
  return out;
}

// ---------------------------------------------------------------------------------------
// Alarms

Value AlarmValue(const MetricAlarm& a) {
  Value v = Value::Object(
      {{"AlarmName", a.name},
       {"AlarmArn", a.arn},
       {"AlarmConfigurationUpdatedTimestamp", Value::Timestamp(a.configuration_updated)},
       {"ActionsEnabled", a.actions_enabled},
       {"OKActions", StringsValue(a.ok_actions)},
       {"AlarmActions", StringsValue(a.alarm_actions)},
       {"InsufficientDataActions", StringsValue(a.insufficient_data_actions)},
       {"StateValue", a.state_value},
       {"StateReason", a.state_reason},
       {"StateUpdatedTimestamp", Value::Timestamp(a.state_updated)},
       {"StateTransitionedTimestamp", Value::Timestamp(a.state_transitioned)},
       {"MetricName", a.metric.name},
       {"Namespace", a.metric.ns},
       {"Dimensions", DimensionsValue(a.metric.dimensions)},
       {"Period", a.period},
       {"EvaluationPeriods", a.evaluation_periods},
       {"Threshold", a.threshold},
       {"ComparisonOperator", a.comparison_operator}});
  if (!a.description.empty()) v["AlarmDescription"] = a.description;
  if (!a.state_reason_data.empty()) v["StateReasonData"] = a.state_reason_data;
  if (!a.statistic.empty()) v["Statistic"] = a.statistic;
  if (!a.extended_statistic.empty()) v["ExtendedStatistic"] = a.extended_statistic;
  if (!a.unit.empty()) v["Unit"] = a.unit;
  if (a.datapoints_to_alarm > 0) v["DatapointsToAlarm"] = a.datapoints_to_alarm;
  if (!a.treat_missing_data.empty()) v["TreatMissingData"] = a.treat_missing_data;
  if (!a.evaluate_low_sample_count_percentile.empty()) {
    v["EvaluateLowSampleCountPercentile"] = a.evaluate_low_sample_count_percentile;
  }
  return v;
}

Value AlarmsValue(const std::vector<MetricAlarm>& alarms) {
  Value list = Value::MakeList();
  for (const MetricAlarm& a : alarms) list.Append(AlarmValue(a));
  return list;
}

// True when AlarmTypes asks for metric alarms (it does when absent).
bool WantsMetricAlarms(const Value& in) {
  const std::vector<std::string> types = StringList(in, "AlarmTypes");
  return types.empty() || std::find(types.begin(), types.end(), "MetricAlarm") != types.end();
}

Result<Value> PutMetricAlarm(MetricStore& store, const Value& in, aws::RequestContext& ctx) {
  if (in.Has("Metrics")) {
    return ValidationError(
        "Alarms on metric math expressions (Metrics) are not supported by "
        "Nimbus: set Namespace, MetricName and Statistic instead.");
  }
  if (in.Has("ThresholdMetricId")) {
    return ValidationError(
        "Anomaly detection alarms (ThresholdMetricId) are not supported by "
        "Nimbus.");
  }
  MetricAlarm a;
  a.name = in.GetString("AlarmName");
  a.description = in.GetString("AlarmDescription");
  a.actions_enabled = in.GetBool("ActionsEnabled", true);
  a.ok_actions = StringList(in, "OKActions");
  a.alarm_actions = StringList(in, "AlarmActions");
  a.insufficient_data_actions = StringList(in, "InsufficientDataActions");
  a.metric = MetricFrom(in);
  a.statistic = in.GetString("Statistic");
  a.extended_statistic = in.GetString("ExtendedStatistic");
  if (!in.Has("Period")) return ValidationError("The parameter Period is required.");
  a.period = static_cast<int>(in.GetInt("Period"));
  a.unit = in.GetString("Unit");
  a.evaluation_periods = static_cast<int>(in.GetInt("EvaluationPeriods"));
  a.datapoints_to_alarm = static_cast<int>(in.GetInt("DatapointsToAlarm", 0));
  a.comparison_operator = in.GetString("ComparisonOperator");
  auto threshold = OptDouble(in, "Threshold");
  if (!threshold) {
    const std::string op = a.comparison_operator;
    if (op == "LessThanLowerOrGreaterThanUpperThreshold" || op == "LessThanLowerThreshold" ||
        op == "GreaterThanUpperThreshold") {
      // Let the store name the unsupported operator.
      threshold = 0;
    } else {
      return ValidationError("The parameter Threshold is required.");
    }
  }
  a.threshold = *threshold;
  a.treat_missing_data = in.GetString("TreatMissingData");
  a.evaluate_low_sample_count_percentile = in.GetString("EvaluateLowSampleCountPercentile");
  if (const Value* tags = in.Find("Tags"); tags && tags->is_list()) {
    for (const Value& t : tags->list())
      a.tags.push_back({t.GetString("Key"), t.GetString("Value")});
  }
  NIMBUS_RETURN_IF_ERROR(store.alarms().PutMetricAlarm(ctx.account_id, ctx.region, std::move(a)));
  return Value::MakeMap();
}

Result<Value> DescribeAlarms(MetricStore& store, const Value& in, aws::RequestContext& ctx) {
  Value out =
      Value::Object({{"MetricAlarms", Value::MakeList()}, {"CompositeAlarms", Value::MakeList()}});
  // There are no composite alarms, so none has children or parents.
  if (!WantsMetricAlarms(in) || in.Has("ChildrenOfAlarmName") || in.Has("ParentsOfAlarmName")) {
    return out;
  }
  telemetry::DescribeAlarmsRequest request;
  request.names = StringList(in, "AlarmNames");
  request.name_prefix = in.GetString("AlarmNamePrefix");
  request.state_value = in.GetString("StateValue");
  request.action_prefix = in.GetString("ActionPrefix");
  request.max_records = static_cast<int>(in.GetInt("MaxRecords", 50));
  request.next_token = in.GetString("NextToken");
  std::string next;
  NIMBUS_ASSIGN_OR_RETURN(std::vector<MetricAlarm> alarms,
                          store.alarms().Describe(ctx.account_id, ctx.region, request, &next));
  out["MetricAlarms"] = AlarmsValue(alarms);
  if (!next.empty()) out["NextToken"] = next;
  return out;
}

Result<Value> DescribeAlarmsForMetric(MetricStore& store, const Value& in,
                                      aws::RequestContext& ctx) {
  MetricAlarm like;
  like.metric = MetricFrom(in);
  like.statistic = in.GetString("Statistic");
  like.extended_statistic = in.GetString("ExtendedStatistic");
  like.period = static_cast<int>(in.GetInt("Period", 0));
  like.unit = in.GetString("Unit");
  NIMBUS_ASSIGN_OR_RETURN(std::vector<MetricAlarm> alarms,
                          store.alarms().DescribeForMetric(ctx.account_id, ctx.region, like,
                                                           /*match_dimensions=*/true));
  return Value::Object({{"MetricAlarms", AlarmsValue(alarms)}});
}

Result<Value> DescribeAlarmHistory(MetricStore& store, const Value& in, aws::RequestContext& ctx) {
  Value out = Value::Object({{"AlarmHistoryItems", Value::MakeList()}});
  if (!WantsMetricAlarms(in)) return out;
  telemetry::AlarmHistoryRequest request;
  request.alarm_name = in.GetString("AlarmName");
  request.type = in.GetString("HistoryItemType");
  request.start_date = OptDouble(in, "StartDate");
  request.end_date = OptDouble(in, "EndDate");
  request.max_records = static_cast<int>(in.GetInt("MaxRecords", 100));
  request.ascending = in.GetString("ScanBy") == "TimestampAscending";
  request.next_token = in.GetString("NextToken");
  std::string next;
  NIMBUS_ASSIGN_OR_RETURN(std::vector<telemetry::AlarmHistoryItem> items,
                          store.alarms().History(ctx.account_id, ctx.region, request, &next));
  Value list = Value::MakeList();
  for (const auto& item : items) {
    list.Append(Value::Object({{"AlarmName", item.alarm_name},
                               {"AlarmType", "MetricAlarm"},
                               {"Timestamp", Value::Timestamp(item.timestamp)},
                               {"HistoryItemType", item.type},
                               {"HistorySummary", item.summary},
                               {"HistoryData", item.data}}));
  }
  out["AlarmHistoryItems"] = std::move(list);
  if (!next.empty()) out["NextToken"] = next;
  return out;
}

std::vector<telemetry::Tag> TagsFrom(const Value& in) {
  std::vector<telemetry::Tag> tags;
  if (const Value* list = in.Find("Tags"); list && list->is_list()) {
    for (const Value& t : list->list()) tags.push_back({t.GetString("Key"), t.GetString("Value")});
  }
  return tags;
}

std::string AlarmArnOf(const Value& in, const aws::RequestContext& ctx) {
  return AlarmStore::Arn(ctx.region, ctx.account_id, in.GetString("AlarmName"));
}

}  // namespace

void RegisterCloudWatchService(aws::ServiceRegistry& registry, telemetry::MetricStore& store) {
  MetricStore* s = &store;
  auto on_store = [s](Result<Value> (*fn)(MetricStore&, const Value&, aws::RequestContext&)) {
    return [s, fn](const Value& in, aws::RequestContext& ctx) { return fn(*s, in, ctx); };
  };
  auto arn_member = [](const Value& in, const aws::RequestContext&) {
    return in.GetString("ResourceARN");
  };
  registry.Register("cloudwatch", "PutMetricData", on_store(PutMetricData));
  registry.Register("cloudwatch", "GetMetricStatistics", on_store(GetMetricStatistics));
  registry.Register("cloudwatch", "GetMetricData", on_store(GetMetricData));
  registry.Register("cloudwatch", "ListMetrics", on_store(ListMetrics));
  registry.Register("cloudwatch", "PutMetricAlarm", on_store(PutMetricAlarm), AlarmArnOf);
  registry.Register("cloudwatch", "DescribeAlarms", on_store(DescribeAlarms));
  registry.Register("cloudwatch", "DescribeAlarmsForMetric", on_store(DescribeAlarmsForMetric));
  registry.Register("cloudwatch", "DescribeAlarmHistory", on_store(DescribeAlarmHistory),
                    [](const Value& in, const aws::RequestContext& ctx) -> std::string {
                      return in.Has("AlarmName") ? AlarmArnOf(in, ctx) : "*";
                    });
  registry.Register("cloudwatch", "DeleteAlarms",
                    [s](const Value& in, aws::RequestContext& ctx) -> Result<Value> {
                      NIMBUS_RETURN_IF_ERROR(s->alarms().Delete(ctx.account_id, ctx.region,
                                                                StringList(in, "AlarmNames")));
                      return Value::MakeMap();
                    });
  registry.Register(
      "cloudwatch", "SetAlarmState",
      [s](const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(s->alarms().SetState(
            ctx.account_id, ctx.region, in.GetString("AlarmName"), in.GetString("StateValue"),
            in.GetString("StateReason"), in.GetString("StateReasonData")));
        return Value::MakeMap();
      },
      AlarmArnOf);
  for (const bool enable : {true, false}) {
    registry.Register("cloudwatch", enable ? "EnableAlarmActions" : "DisableAlarmActions",
                      [s, enable](const Value& in, aws::RequestContext& ctx) -> Result<Value> {
                        NIMBUS_RETURN_IF_ERROR(s->alarms().SetActionsEnabled(
                            ctx.account_id, ctx.region, StringList(in, "AlarmNames"), enable));
                        return Value::MakeMap();
                      });
  }
  registry.Register(
      "cloudwatch", "TagResource",
      [s](const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(s->alarms().TagResource(ctx.account_id, ctx.region,
                                                       in.GetString("ResourceARN"), TagsFrom(in)));
        return Value::MakeMap();
      },
      arn_member);
  registry.Register(
      "cloudwatch", "UntagResource",
      [s](const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(s->alarms().UntagResource(
            ctx.account_id, ctx.region, in.GetString("ResourceARN"), StringList(in, "TagKeys")));
        return Value::MakeMap();
      },
      arn_member);
  registry.Register(
      "cloudwatch", "ListTagsForResource",
      [s](const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(
            std::vector<telemetry::Tag> tags,
            s->alarms().ListTags(ctx.account_id, ctx.region, in.GetString("ResourceARN")));
        Value list = Value::MakeList();
        for (const auto& t : tags) list.Append(Value::Object({{"Key", t.key}, {"Value", t.value}}));
        return Value::Object({{"Tags", std::move(list)}});
      },
      arn_member);
}

}  // namespace nimbus::services
