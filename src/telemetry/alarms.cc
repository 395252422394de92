#include "telemetry/alarms.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <set>
#include <utility>

#include "core/json.h"
#include "core/logging.h"
#include "core/strings.h"

namespace nimbus::telemetry {
namespace {

constexpr double kHistoryRetention = 30 * 86400.0;
constexpr size_t kMaxHistoryData = 4095;
constexpr size_t kMaxTags = 50;
constexpr const char* kInitialReason = "Unchecked: Initial alarm creation";

Status AlarmValidation(std::string msg) {
  return Status::Aws("ValidationError", 400, std::move(msg));
}
Status AlarmNotFound(const std::string& name) {
  return Status::Aws("ResourceNotFound", 404, "Alarm " + name + " does not exist.",
                     ErrorKind::kNotFound);
}
Status ArnNotFound(const std::string& arn) {
  return Status::Aws("ResourceNotFoundException", 404, "The resource " + arn + " does not exist.",
                     ErrorKind::kNotFound);
}

// ---------------------------------------------------------------------------------------
// The stored document: the alarm under CloudWatch's member names.

Value Strings(const std::vector<std::string>& items) {
  Value list = Value::MakeList();
  for (const std::string& s : items) list.Append(s);
  return list;
}

std::vector<std::string> StringsFrom(const Value* v) {
  std::vector<std::string> out;
  if (v && v->is_list()) {
    for (const Value& s : v->list()) out.push_back(s.AsString());
  }
  return out;
}

Value ToDoc(const MetricAlarm& a) {
  Value dims = Value::MakeList();
  for (const Dimension& d : a.metric.dimensions) {
    dims.Append(Value::Object({{"Name", d.name}, {"Value", d.value}}));
  }
  Value tags = Value::MakeList();
  for (const Tag& t : a.tags) tags.Append(Value::Object({{"Key", t.key}, {"Value", t.value}}));
  return Value::Object(
      {{"AlarmName", a.name},
       {"AlarmArn", a.arn},
       {"AlarmDescription", a.description},
       {"ActionsEnabled", a.actions_enabled},
       {"OKActions", Strings(a.ok_actions)},
       {"AlarmActions", Strings(a.alarm_actions)},
       {"InsufficientDataActions", Strings(a.insufficient_data_actions)},
       {"Namespace", a.metric.ns},
       {"MetricName", a.metric.name},
       {"Dimensions", std::move(dims)},
       {"Statistic", a.statistic},
       {"ExtendedStatistic", a.extended_statistic},
       {"Period", a.period},
       {"Unit", a.unit},
       {"EvaluationPeriods", a.evaluation_periods},
       {"DatapointsToAlarm", a.datapoints_to_alarm},
       {"Threshold", a.threshold},
       {"ComparisonOperator", a.comparison_operator},
       {"TreatMissingData", a.treat_missing_data},
       {"EvaluateLowSampleCountPercentile", a.evaluate_low_sample_count_percentile},
       {"Tags", std::move(tags)},
       {"StateValue", a.state_value},
       {"StateReason", a.state_reason},
       {"StateReasonData", a.state_reason_data},
       {"StateUpdatedTimestamp", a.state_updated},
       {"StateTransitionedTimestamp", a.state_transitioned},
       {"AlarmConfigurationUpdatedTimestamp", a.configuration_updated}});
}

MetricAlarm FromDoc(const Value& v) {
  MetricAlarm a;
  a.name = v.GetString("AlarmName");
  a.arn = v.GetString("AlarmArn");
  a.description = v.GetString("AlarmDescription");
  a.actions_enabled = v.GetBool("ActionsEnabled", true);
  a.ok_actions = StringsFrom(v.Find("OKActions"));
  a.alarm_actions = StringsFrom(v.Find("AlarmActions"));
  a.insufficient_data_actions = StringsFrom(v.Find("InsufficientDataActions"));
  a.metric.ns = v.GetString("Namespace");
  a.metric.name = v.GetString("MetricName");
  if (const Value* dims = v.Find("Dimensions"); dims && dims->is_list()) {
    for (const Value& d : dims->list()) {
      a.metric.dimensions.push_back({d.GetString("Name"), d.GetString("Value")});
    }
  }
  a.statistic = v.GetString("Statistic");
  a.extended_statistic = v.GetString("ExtendedStatistic");
  a.period = static_cast<int>(v.GetInt("Period", 60));
  a.unit = v.GetString("Unit");
  a.evaluation_periods = static_cast<int>(v.GetInt("EvaluationPeriods", 1));
  a.datapoints_to_alarm = static_cast<int>(v.GetInt("DatapointsToAlarm", 0));
  if (const Value* t = v.Find("Threshold")) a.threshold = t->AsDouble();
  a.comparison_operator = v.GetString("ComparisonOperator");
  a.treat_missing_data = v.GetString("TreatMissingData");
  a.evaluate_low_sample_count_percentile = v.GetString("EvaluateLowSampleCountPercentile");
  if (const Value* tags = v.Find("Tags"); tags && tags->is_list()) {
    for (const Value& t : tags->list())
      a.tags.push_back({t.GetString("Key"), t.GetString("Value")});
  }
  a.state_value = v.GetString("StateValue", "INSUFFICIENT_DATA");
  a.state_reason = v.GetString("StateReason");
  a.state_reason_data = v.GetString("StateReasonData");
  auto num = [&](const char* key) {
    const Value* x = v.Find(key);
    return x ? x->AsDouble() : 0.0;
  };
  a.state_updated = num("StateUpdatedTimestamp");
  a.state_transitioned = num("StateTransitionedTimestamp");
  a.configuration_updated = num("AlarmConfigurationUpdatedTimestamp");
  return a;
}

Result<MetricAlarm> ParseDoc(const Value& cell) {
  NIMBUS_ASSIGN_OR_RETURN(Value doc, ParseJson(cell.AsString()));
  return FromDoc(doc);
}

// ---------------------------------------------------------------------------------------
// Wording.

// A double as Java prints it (CloudWatch's reasons are written by Java): 5.0, 0.25,
// 1.0E-4, 1.2345678E7.
std::string JavaDouble(double v) {
  if (v == 0) return "0.0";
  const double m = std::fabs(v);
  char buf[64];
  if (m >= 1e-3 && m < 1e7) {
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
    std::string s(buf, end);
    if (s.find('.') == std::string::npos) s += ".0";
    return s;
  }
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string s(buf, end);  // 1.2345678e+07
  const size_t e = s.find('e');
  std::string mantissa = s.substr(0, e);
  if (mantissa.find('.') == std::string::npos) mantissa += ".0";
  const int exponent = std::stoi(s.substr(e + 1));
  return mantissa + "E" + std::to_string(exponent);
}

// 05/12/23 10:00:00 (dd/MM/yy HH:mm:ss, UTC)
std::string ReasonDate(double t) {
  const time_t secs = static_cast<time_t>(std::floor(t));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%d/%m/%y %H:%M:%S", &tm);
  return buf;
}

// 2023-12-05T10:00:00.000+0000
std::string DataDate(double t) {
  std::string s = FormatIso8601(t);
  if (EndsWith(s, "Z")) s = s.substr(0, s.size() - 1) + "+0000";
  return s;
}

const char* ComparisonWords(const std::string& op) {
  if (op == "GreaterThanOrEqualToThreshold") return "greater than or equal to";
  if (op == "GreaterThanThreshold") return "greater than";
  if (op == "LessThanThreshold") return "less than";
  return "less than or equal to";
}

bool Breaches(const std::string& op, double v, double threshold) {
  if (op == "GreaterThanOrEqualToThreshold") return v >= threshold;
  if (op == "GreaterThanThreshold") return v > threshold;
  if (op == "LessThanThreshold") return v < threshold;
  return v <= threshold;
}

std::string Plural(size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string ListPoints(const std::vector<const AlarmDatapoint*>& points) {
  std::string out = "[";
  for (size_t i = 0; i < points.size(); ++i) {
    if (i > 0) out += ", ";
    out += JavaDouble(*points[i]->value) + " (" + ReasonDate(points[i]->timestamp) + ")";
  }
  return out + "]";
}

std::string Truncate(std::string s, size_t max) {
  if (s.size() > max) s.resize(max);
  return s;
}

bool StatisticUnitKnown(const std::string& unit) {
  if (unit.empty()) return true;
  const auto& units = StandardUnits();
  return std::find(units.begin(), units.end(), unit) != units.end();
}

bool IsStaticComparison(const std::string& op) {
  return op == "GreaterThanOrEqualToThreshold" || op == "GreaterThanThreshold" ||
         op == "LessThanThreshold" || op == "LessThanOrEqualToThreshold";
}

Status ValidateAlarm(const MetricAlarm& a) {
  if (a.name.empty()) return AlarmValidation("The parameter AlarmName is required.");
  if (a.metric.ns.empty() || a.metric.name.empty()) {
    return AlarmValidation(
        "The parameters Namespace and MetricName are required for an alarm "
        "on a metric.");
  }
  if (a.statistic.empty() == a.extended_statistic.empty()) {
    return AlarmValidation(
        "Exactly one of the parameters Statistic and ExtendedStatistic must "
        "be specified.");
  }
  if (!a.statistic.empty()) {
    auto s = Statistic::Parse(a.statistic);
    if (!s.ok() || s->is_extended()) {
      return AlarmValidation("The value " + a.statistic + " for parameter Statistic is invalid.");
    }
  } else {
    auto s = Statistic::Parse(a.extended_statistic);
    if (!s.ok() || !s->is_extended()) {
      return AlarmValidation("The value " + a.extended_statistic +
                             " for parameter ExtendedStatistic is invalid.");
    }
  }
  if (a.period != 10 && a.period != 30 && (a.period < 60 || a.period % 60 != 0)) {
    return AlarmValidation("The parameter Period must be 10, 30, or a multiple of 60.");
  }
  if (a.evaluation_periods < 1) {
    return AlarmValidation("The parameter EvaluationPeriods must be at least 1.");
  }
  const double span = static_cast<double>(a.period) * a.evaluation_periods;
  const double max_span = a.period >= 3600 ? 7 * 86400.0 : 86400.0;
  if (span > max_span) {
    return AlarmValidation(a.period >= 3600 ? "Metrics cannot be checked across more than 7 days "
                                              "(EvaluationPeriods * Period must be <= 604800)."
                                            : "Metrics cannot be checked across more than a day "
                                              "(EvaluationPeriods * Period must be <= 86400).");
  }
  if (a.datapoints_to_alarm < 0 || a.datapoints_to_alarm > a.evaluation_periods) {
    return AlarmValidation("DatapointsToAlarm must be between 1 and EvaluationPeriods (" +
                           std::to_string(a.evaluation_periods) + ").");
  }
  if (!IsStaticComparison(a.comparison_operator)) {
    if (a.comparison_operator == "LessThanLowerOrGreaterThanUpperThreshold" ||
        a.comparison_operator == "LessThanLowerThreshold" ||
        a.comparison_operator == "GreaterThanUpperThreshold") {
      return AlarmValidation("The comparison operator " + a.comparison_operator +
                             " needs an anomaly detection band (ThresholdMetricId); Nimbus does "
                             "not support anomaly detection alarms.");
    }
    return AlarmValidation("The value " + a.comparison_operator +
                           " for parameter ComparisonOperator is invalid.");
  }
  if (!std::isfinite(a.threshold)) {
    return AlarmValidation("The parameter Threshold must be a finite number.");
  }
  static const std::set<std::string> kTreatments = {"", "missing", "ignore", "breaching",
                                                    "notBreaching"};
  if (!kTreatments.count(a.treat_missing_data)) {
    return AlarmValidation("The value " + a.treat_missing_data +
                           " for parameter TreatMissingData is invalid: use breaching, "
                           "notBreaching, ignore or missing.");
  }
  if (!a.evaluate_low_sample_count_percentile.empty()) {
    if (a.evaluate_low_sample_count_percentile != "evaluate" &&
        a.evaluate_low_sample_count_percentile != "ignore") {
      return AlarmValidation("The value " + a.evaluate_low_sample_count_percentile +
                             " for parameter EvaluateLowSampleCountPercentile is invalid: use "
                             "evaluate or ignore.");
    }
    if (a.extended_statistic.empty() || a.extended_statistic[0] != 'p') {
      return AlarmValidation(
          "EvaluateLowSampleCountPercentile is only valid with a percentile "
          "ExtendedStatistic.");
    }
  }
  if (!StatisticUnitKnown(a.unit)) {
    return AlarmValidation("The value " + a.unit + " for parameter Unit is invalid.");
  }
  for (const auto* actions : {&a.ok_actions, &a.alarm_actions, &a.insufficient_data_actions}) {
    for (const std::string& arn : *actions) {
      if (!StartsWith(arn, "arn:")) {
        return AlarmValidation("Invalid arn syntax: " + arn);
      }
    }
  }
  if (a.tags.size() > kMaxTags) {
    return AlarmValidation("An alarm can have at most " + std::to_string(kMaxTags) + " tags.");
  }
  return Status::Ok();
}

Status AddHistory(store::Session& s, const std::string& account, const std::string& region,
                  const std::string& name, double ts, const std::string& type,
                  const std::string& summary, const std::string& data) {
  return s
      .Exec(
          "INSERT INTO alarm_history (account, region, alarm_name, ts, type, summary, data) "
          "VALUES (?, ?, ?, ?, ?, ?, ?)",
          {account, region, name, ts, type, Truncate(summary, 255),
           Truncate(data, kMaxHistoryData)})
      .status();
}

Result<std::optional<MetricAlarm>> Load(store::Session& s, const std::string& account,
                                        const std::string& region, const std::string& name) {
  NIMBUS_ASSIGN_OR_RETURN(
      store::Rows rows,
      s.Query("SELECT doc FROM alarms WHERE account = ? AND region = ? AND name = ?",
              {account, region, name}));
  if (rows.empty()) return std::optional<MetricAlarm>();
  NIMBUS_ASSIGN_OR_RETURN(MetricAlarm a, ParseDoc(rows[0].at("doc")));
  return std::optional<MetricAlarm>(std::move(a));
}

Status Save(store::Session& s, const std::string& account, const std::string& region,
            const MetricAlarm& a) {
  return s
      .Exec(
          "INSERT INTO alarms (account, region, name, doc) VALUES (?, ?, ?, ?) "
          "ON CONFLICT (account, region, name) DO UPDATE SET doc = excluded.doc",
          {account, region, a.name, ToJson(ToDoc(a))})
      .status();
}

std::string StateHistoryData(const MetricAlarm& before, const std::string& state,
                             const std::string& reason, const std::string& reason_data) {
  Value old_state =
      Value::Object({{"stateValue", before.state_value}, {"stateReason", before.state_reason}});
  Value new_state = Value::Object({{"stateValue", state}, {"stateReason", reason}});
  if (!reason_data.empty()) {
    auto parsed = ParseJson(reason_data);
    if (parsed.ok()) new_state["stateReasonData"] = std::move(parsed).value();
  }
  return ToJson(Value::Object({{"version", "1.0"},
                               {"oldState", std::move(old_state)},
                               {"newState", std::move(new_state)}}));
}

// Records a failed Action history item per action of the new state: actions are stored,
// never delivered.
Status RecordUndeliveredActions(store::Session& s, const std::string& account,
                                const std::string& region, const MetricAlarm& a,
                                const std::string& state, double now) {
  if (!a.actions_enabled) return Status::Ok();
  const std::vector<std::string>& actions = state == "ALARM" ? a.alarm_actions
                                            : state == "OK"  ? a.ok_actions
                                                             : a.insufficient_data_actions;
  for (const std::string& arn : actions) {
    const std::string error = "Nimbus stores alarm actions but does not deliver them";
    NIMBUS_RETURN_IF_ERROR(AddHistory(s, account, region, a.name, now, "Action",
                                      "Failed to execute action " + arn,
                                      ToJson(Value::Object({{"actionState", "Failed"},
                                                            {"notificationResource", arn},
                                                            {"stateUpdateTimestamp", DataDate(now)},
                                                            {"error", error}}))));
  }
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------------------

AlarmEvaluation EvaluateAlarm(const MetricAlarm& alarm, const std::vector<AlarmDatapoint>& points,
                              double now) {
  const size_t n = points.size();
  const size_t m =
      alarm.datapoints_to_alarm > 0 ? static_cast<size_t>(alarm.datapoints_to_alarm) : n;
  const std::string treat = alarm.treat_missing_data.empty() ? "missing" : alarm.treat_missing_data;
  const char* words = ComparisonWords(alarm.comparison_operator);
  const std::string threshold = JavaDouble(alarm.threshold);

  std::vector<const AlarmDatapoint*> breaching, fine;  // most recent first
  size_t missing = 0;
  for (auto it = points.rbegin(); it != points.rend(); ++it) {
    if (!it->value) {
      ++missing;
    } else if (Breaches(alarm.comparison_operator, *it->value, alarm.threshold)) {
      breaching.push_back(&*it);
    } else {
      fine.push_back(&*it);
    }
  }

  // StateReasonData: what was evaluated, as CloudWatch reports it.
  Value recent = Value::MakeList();
  Value evaluated = Value::MakeList();
  for (auto it = points.rbegin(); it != points.rend(); ++it) {
    if (!it->value) continue;
    recent.Append(*it->value);
    evaluated.Append(Value::Object({{"timestamp", DataDate(it->timestamp)},
                                    {"sampleCount", it->sample_count},
                                    {"value", *it->value}}));
  }
  Value data = Value::Object({{"version", "1.0"},
                              {"queryDate", DataDate(now)},
                              {"period", alarm.period},
                              {"recentDatapoints", std::move(recent)},
                              {"threshold", alarm.threshold}});
  if (!points.empty()) data["startDate"] = DataDate(points.front().timestamp);
  if (!alarm.extended_statistic.empty()) {
    data["extendedStatistic"] = alarm.extended_statistic;
  } else {
    data["statistic"] = alarm.statistic;
  }
  if (!alarm.unit.empty()) data["unit"] = alarm.unit;
  if (evaluated.size() > 0) data["evaluatedDatapoints"] = std::move(evaluated);

  AlarmEvaluation e;
  e.reason_data = ToJson(data);
  if (breaching.empty() && fine.empty()) {
    const std::string periods = Plural(n, "period");
    const std::string treated =
        std::to_string(missing) +
        (missing == 1 ? " missing datapoint was" : " missing datapoints were");
    if (treat == "ignore") return AlarmEvaluation{};
    if (treat == "missing") {
      e.state = "INSUFFICIENT_DATA";
      e.reason = "Insufficient Data: " + Plural(missing, "datapoint") +
                 (missing == 1 ? " was" : " were") + " unknown.";
    } else if (treat == "breaching") {
      e.state = missing >= m ? "ALARM" : "OK";
      e.reason = "Threshold Crossed: no datapoints were received for " + periods + " and " +
                 treated + " treated as [Breaching].";
    } else {
      e.state = "OK";
      e.reason = "Threshold Crossed: no datapoints were received for " + periods + " and " +
                 treated + " treated as [NonBreaching].";
    }
    return e;
  }

  const size_t breach_count = breaching.size() + (treat == "breaching" ? missing : 0);
  const bool alarm_state = breach_count >= m;
  e.state = alarm_state ? "ALARM" : "OK";
  const auto& listed = alarm_state ? breaching : fine;
  const size_t k =
      alarm_state ? breach_count : fine.size() + (treat == "notBreaching" ? missing : 0);
  const std::string verb = k == 1 ? "was" : "were";
  const std::string relation = std::string(alarm_state ? "" : "not ") + words;
  if (n == 1) {
    e.reason = "Threshold Crossed: 1 datapoint " + ListPoints(listed) + " " + verb + " " +
               relation + " the threshold (" + threshold + ").";
  } else {
    e.reason = "Threshold Crossed: " + std::to_string(k) + " out of the last " + std::to_string(n) +
               " datapoints " + ListPoints(listed) + " " + verb + " " + relation +
               " the threshold (" + threshold + ") (minimum " +
               Plural(alarm_state ? m : 1, "datapoint") + " for " +
               (alarm_state ? "OK -> ALARM" : "ALARM -> OK") + " transition).";
  }
  return e;
}

// ---------------------------------------------------------------------------------------

AlarmStore::AlarmStore(store::Database& db, MetricStore& metrics, const Clock& clock)
    : db_(db), metrics_(metrics), clock_(clock) {}

void AlarmStore::RegisterMigrations(store::Database& db) {
  db.RegisterMigration("metrics", 2, R"sql(
    CREATE TABLE alarms (
      account TEXT NOT NULL,
      region TEXT NOT NULL,
      name TEXT NOT NULL,
      doc TEXT NOT NULL,
      PRIMARY KEY (account, region, name)
    );
    CREATE TABLE alarm_history (
      id INTEGER PRIMARY KEY,
      account TEXT NOT NULL,
      region TEXT NOT NULL,
      alarm_name TEXT NOT NULL,
      ts REAL NOT NULL,
      type TEXT NOT NULL,
      summary TEXT NOT NULL,
      data TEXT NOT NULL
    );
    CREATE INDEX alarm_history_by_alarm ON alarm_history (account, region, alarm_name);
    CREATE INDEX alarm_history_by_time ON alarm_history (ts);
  )sql");
}

std::string AlarmStore::Arn(const std::string& region, const std::string& account,
                            const std::string& name) {
  return "arn:aws:cloudwatch:" + region + ":" + account + ":alarm:" + name;
}

Status AlarmStore::PutMetricAlarm(const std::string& account, const std::string& region,
                                  MetricAlarm alarm) {
  alarm.metric.dimensions = SortedDimensions(std::move(alarm.metric.dimensions));
  NIMBUS_RETURN_IF_ERROR(ValidateAlarm(alarm));
  const double now = clock_.Now();
  alarm.arn = Arn(region, account, alarm.name);
  alarm.configuration_updated = now;
  NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](store::Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(std::optional<MetricAlarm> existing,
                            Load(s, account, region, alarm.name));
    const bool created = !existing;
    if (existing) {
      // An update replaces the configuration but keeps the state and the tags.
      alarm.state_value = existing->state_value;
      alarm.state_reason = existing->state_reason;
      alarm.state_reason_data = existing->state_reason_data;
      alarm.state_updated = existing->state_updated;
      alarm.state_transitioned = existing->state_transitioned;
      alarm.tags = existing->tags;
    } else {
      alarm.state_value = "INSUFFICIENT_DATA";
      alarm.state_reason = kInitialReason;
      alarm.state_reason_data.clear();
      alarm.state_updated = now;
      alarm.state_transitioned = now;
    }
    NIMBUS_RETURN_IF_ERROR(Save(s, account, region, alarm));
    Value config = ToDoc(alarm);
    for (const char* state_key : {"StateValue", "StateReason", "StateReasonData",
                                  "StateUpdatedTimestamp", "StateTransitionedTimestamp", "Tags"}) {
      config.Erase(state_key);
    }
    return AddHistory(
        s, account, region, alarm.name, now, "ConfigurationUpdate",
        "Alarm \"" + alarm.name + "\" " + (created ? "created" : "updated"),
        ToJson(Value::Object({{"version", "1.0"},
                              {"type", created ? "Create" : "Update"},
                              {created ? "createdAlarm" : "updatedAlarm", std::move(config)}})));
  }));
  return EvaluateOne(account, region, alarm, now);
}

Result<MetricAlarm> AlarmStore::Get(const std::string& account, const std::string& region,
                                    const std::string& name) {
  NIMBUS_ASSIGN_OR_RETURN(std::optional<MetricAlarm> a, Load(db_, account, region, name));
  if (!a) return AlarmNotFound(name);
  return *a;
}

Result<std::vector<MetricAlarm>> AlarmStore::LoadAll(const std::string& account,
                                                     const std::string& region) {
  NIMBUS_ASSIGN_OR_RETURN(
      store::Rows rows,
      db_.Query("SELECT doc FROM alarms WHERE account = ? AND region = ? ORDER BY name",
                {account, region}));
  std::vector<MetricAlarm> out;
  out.reserve(rows.size());
  for (const store::Row& row : rows) {
    NIMBUS_ASSIGN_OR_RETURN(MetricAlarm a, ParseDoc(row.at("doc")));
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<MetricAlarm>> AlarmStore::Describe(const std::string& account,
                                                      const std::string& region,
                                                      const DescribeAlarmsRequest& request,
                                                      std::string* next_token) {
  next_token->clear();
  if (!request.names.empty() && !request.name_prefix.empty()) {
    return Status::Aws("InvalidParameterCombination", 400,
                       "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive.");
  }
  std::string after;
  if (!request.next_token.empty()) {
    auto decoded = Base64Decode(request.next_token);
    if (!decoded || !StartsWith(*decoded, "da1:")) {
      return Status::Aws("InvalidNextToken", 400, "The service cannot process the NextToken.");
    }
    after = decoded->substr(4);
  }
  const size_t max = request.max_records > 0 ? static_cast<size_t>(request.max_records) : 50;
  NIMBUS_ASSIGN_OR_RETURN(std::vector<MetricAlarm> all, LoadAll(account, region));
  std::set<std::string> names(request.names.begin(), request.names.end());
  std::vector<MetricAlarm> out;
  for (MetricAlarm& a : all) {
    if (!after.empty() && a.name <= after) continue;
    if (!names.empty() && !names.count(a.name)) continue;
    if (!request.name_prefix.empty() && !StartsWith(a.name, request.name_prefix)) continue;
    if (!request.state_value.empty() && a.state_value != request.state_value) continue;
    if (!request.action_prefix.empty()) {
      bool any = false;
      for (const auto* actions : {&a.ok_actions, &a.alarm_actions, &a.insufficient_data_actions}) {
        for (const std::string& arn : *actions) any = any || StartsWith(arn, request.action_prefix);
      }
      if (!any) continue;
    }
    if (out.size() == max) {
      *next_token = Base64Encode("da1:" + out.back().name);
      break;
    }
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<MetricAlarm>> AlarmStore::DescribeForMetric(const std::string& account,
                                                               const std::string& region,
                                                               const MetricAlarm& like,
                                                               bool match_dimensions) {
  NIMBUS_ASSIGN_OR_RETURN(std::vector<MetricAlarm> all, LoadAll(account, region));
  const std::vector<Dimension> dims = SortedDimensions(like.metric.dimensions);
  std::vector<MetricAlarm> out;
  for (MetricAlarm& a : all) {
    if (a.metric.ns != like.metric.ns || a.metric.name != like.metric.name) continue;
    if (!like.statistic.empty() && a.statistic != like.statistic) continue;
    if (!like.extended_statistic.empty() && a.extended_statistic != like.extended_statistic) {
      continue;
    }
    if (like.period > 0 && a.period != like.period) continue;
    if (!like.unit.empty() && a.unit != like.unit) continue;
    if (match_dimensions && !(a.metric.dimensions == dims)) continue;
    out.push_back(std::move(a));
  }
  return out;
}

Status AlarmStore::Delete(const std::string& account, const std::string& region,
                          const std::vector<std::string>& names) {
  return db_.WithTransaction([&](store::Session& s) -> Status {
    std::vector<std::string> missing;
    for (const std::string& name : names) {
      NIMBUS_ASSIGN_OR_RETURN(std::optional<MetricAlarm> a, Load(s, account, region, name));
      if (!a) missing.push_back(name);
    }
    if (!missing.empty()) {
      std::string list;
      for (const std::string& name : missing) list += (list.empty() ? "" : ", ") + name;
      return Status::Aws("ResourceNotFound", 404,
                         "The following alarms could not be found: [" + list + "]",
                         ErrorKind::kNotFound);
    }
    for (const std::string& name : names) {
      NIMBUS_RETURN_IF_ERROR(
          s.Exec("DELETE FROM alarms WHERE account = ? AND region = ? AND name = ?",
                 {account, region, name})
              .status());
    }
    return Status::Ok();
  });
}

Status AlarmStore::SetState(const std::string& account, const std::string& region,
                            const std::string& name, const std::string& state,
                            const std::string& reason, const std::string& reason_data) {
  if (state != "OK" && state != "ALARM" && state != "INSUFFICIENT_DATA") {
    return AlarmValidation("The value " + state + " for parameter StateValue is invalid.");
  }
  if (!reason_data.empty() && !ParseJson(reason_data).ok()) {
    return Status::Aws("InvalidFormat", 400, "StateReasonData is not valid JSON.");
  }
  const double now = clock_.Now();
  return db_.WithTransaction([&](store::Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(std::optional<MetricAlarm> a, Load(s, account, region, name));
    if (!a) return AlarmNotFound(name);
    const MetricAlarm before = *a;
    if (a->state_value != state) a->state_transitioned = now;
    a->state_value = state;
    a->state_reason = reason;
    a->state_reason_data = reason_data;
    a->state_updated = now;
    NIMBUS_RETURN_IF_ERROR(Save(s, account, region, *a));
    NIMBUS_RETURN_IF_ERROR(AddHistory(s, account, region, name, now, "StateUpdate",
                                      "Alarm updated from " + before.state_value + " to " + state,
                                      StateHistoryData(before, state, reason, reason_data)));
    if (before.state_value == state) return Status::Ok();
    return RecordUndeliveredActions(s, account, region, *a, state, now);
  });
}

Status AlarmStore::SetActionsEnabled(const std::string& account, const std::string& region,
                                     const std::vector<std::string>& names, bool enabled) {
  return db_.WithTransaction([&](store::Session& s) -> Status {
    for (const std::string& name : names) {
      NIMBUS_ASSIGN_OR_RETURN(std::optional<MetricAlarm> a, Load(s, account, region, name));
      if (!a || a->actions_enabled == enabled) continue;
      a->actions_enabled = enabled;
      NIMBUS_RETURN_IF_ERROR(Save(s, account, region, *a));
    }
    return Status::Ok();
  });
}

Result<std::vector<AlarmHistoryItem>> AlarmStore::History(const std::string& account,
                                                          const std::string& region,
                                                          const AlarmHistoryRequest& request,
                                                          std::string* next_token) {
  next_token->clear();
  std::string sql =
      "SELECT id, alarm_name, ts, type, summary, data FROM alarm_history WHERE account = ? AND "
      "region = ? AND ts >= ?";
  store::Params params{account, region, clock_.Now() - kHistoryRetention};
  if (!request.alarm_name.empty()) {
    sql += " AND alarm_name = ?";
    params.push_back(request.alarm_name);
  }
  if (!request.type.empty()) {
    sql += " AND type = ?";
    params.push_back(request.type);
  }
  if (request.start_date) {
    sql += " AND ts >= ?";
    params.push_back(*request.start_date);
  }
  if (request.end_date) {
    sql += " AND ts <= ?";
    params.push_back(*request.end_date);
  }
  if (!request.next_token.empty()) {
    auto decoded = Base64Decode(request.next_token);
    auto id = decoded && StartsWith(*decoded, "ah1:") ? ParseInt(decoded->substr(4)) : std::nullopt;
    if (!id)
      return Status::Aws("InvalidNextToken", 400, "The service cannot process the NextToken.");
    sql += request.ascending ? " AND id > ?" : " AND id < ?";
    params.push_back(*id);
  }
  const int64_t max = request.max_records > 0 ? request.max_records : 100;
  sql += request.ascending ? " ORDER BY id ASC LIMIT ?" : " ORDER BY id DESC LIMIT ?";
  params.push_back(max + 1);
  NIMBUS_ASSIGN_OR_RETURN(store::Rows rows, db_.Query(sql, params));
  std::vector<AlarmHistoryItem> out;
  for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < max; ++i) {
    const store::Row& r = rows[i];
    out.push_back({r.at("alarm_name").AsString(), r.at("ts").AsDouble(), r.at("type").AsString(),
                   r.at("summary").AsString(), r.at("data").AsString()});
  }
  if (static_cast<int64_t>(rows.size()) > max) {
    *next_token = Base64Encode("ah1:" + std::to_string(rows[max - 1].at("id").AsInt()));
  }
  return out;
}

Result<std::string> AlarmStore::NameFromArn(const std::string& account, const std::string& region,
                                            const std::string& arn) {
  const std::string prefix = "arn:aws:cloudwatch:" + region + ":" + account + ":alarm:";
  if (!StartsWith(arn, prefix) || arn.size() == prefix.size()) return ArnNotFound(arn);
  return arn.substr(prefix.size());
}

Status AlarmStore::TagResource(const std::string& account, const std::string& region,
                               const std::string& arn, const std::vector<Tag>& tags) {
  NIMBUS_ASSIGN_OR_RETURN(std::string name, NameFromArn(account, region, arn));
  return db_.WithTransaction([&](store::Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(std::optional<MetricAlarm> a, Load(s, account, region, name));
    if (!a) return ArnNotFound(arn);
    for (const Tag& t : tags) {
      auto it = std::find_if(a->tags.begin(), a->tags.end(),
                             [&](const Tag& x) { return x.key == t.key; });
      if (it != a->tags.end()) {
        it->value = t.value;
      } else {
        a->tags.push_back(t);
      }
    }
    if (a->tags.size() > kMaxTags) {
      return Status::Aws("InvalidParameterValue", 400,
                         "A resource can have at most " + std::to_string(kMaxTags) + " tags.");
    }
    return Save(s, account, region, *a);
  });
}

Status AlarmStore::UntagResource(const std::string& account, const std::string& region,
                                 const std::string& arn, const std::vector<std::string>& keys) {
  NIMBUS_ASSIGN_OR_RETURN(std::string name, NameFromArn(account, region, arn));
  return db_.WithTransaction([&](store::Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(std::optional<MetricAlarm> a, Load(s, account, region, name));
    if (!a) return ArnNotFound(arn);
    std::erase_if(a->tags, [&](const Tag& t) {
      return std::find(keys.begin(), keys.end(), t.key) != keys.end();
    });
    return Save(s, account, region, *a);
  });
}

Result<std::vector<Tag>> AlarmStore::ListTags(const std::string& account, const std::string& region,
                                              const std::string& arn) {
  NIMBUS_ASSIGN_OR_RETURN(std::string name, NameFromArn(account, region, arn));
  NIMBUS_ASSIGN_OR_RETURN(std::optional<MetricAlarm> a, Load(db_, account, region, name));
  if (!a) return ArnNotFound(arn);
  return a->tags;
}

Status AlarmStore::Evaluate(const std::string& account, const std::string& region,
                            const std::string& name, double now) {
  NIMBUS_ASSIGN_OR_RETURN(MetricAlarm a, Get(account, region, name));
  return EvaluateOne(account, region, a, now);
}

Status AlarmStore::EvaluateOne(const std::string& account, const std::string& region,
                               const MetricAlarm& alarm, double now) {
  const std::string& stat_name =
      alarm.extended_statistic.empty() ? alarm.statistic : alarm.extended_statistic;
  NIMBUS_ASSIGN_OR_RETURN(Statistic stat, Statistic::Parse(stat_name));
  const double period = alarm.period;
  // The last EvaluationPeriods complete periods.
  const double end = std::floor(now / period) * period;
  const double start = end - period * alarm.evaluation_periods;
  NIMBUS_ASSIGN_OR_RETURN(
      std::vector<PeriodAggregate> periods,
      metrics_.Aggregates(account, region, alarm.metric, start, end, alarm.period, alarm.unit,
                          false, stat.needs_distribution()));
  std::vector<AlarmDatapoint> points(alarm.evaluation_periods);
  for (int k = 0; k < alarm.evaluation_periods; ++k) points[k].timestamp = start + k * period;
  for (const PeriodAggregate& p : periods) {
    const auto k = static_cast<int64_t>(std::llround((p.timestamp - start) / period));
    if (k < 0 || k >= alarm.evaluation_periods) continue;
    points[k].value = stat.Compute(p.aggregate);
    points[k].sample_count = p.aggregate.sample_count;
  }
  AlarmEvaluation e = EvaluateAlarm(alarm, points, now);
  if (e.state.empty() || e.state == alarm.state_value) return Status::Ok();
  return Transition(account, region, alarm.name, alarm.configuration_updated, e, now);
}

Status AlarmStore::Transition(const std::string& account, const std::string& region,
                              const std::string& name, double expected_config,
                              const AlarmEvaluation& e, double now) {
  return db_.WithTransaction([&](store::Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(std::optional<MetricAlarm> a, Load(s, account, region, name));
    // Deleted or reconfigured meanwhile: that change has its own evaluation.
    if (!a || a->configuration_updated != expected_config || a->state_value == e.state) {
      return Status::Ok();
    }
    const MetricAlarm before = *a;
    a->state_value = e.state;
    a->state_reason = e.reason;
    a->state_reason_data = e.reason_data;
    a->state_updated = now;
    a->state_transitioned = now;
    NIMBUS_RETURN_IF_ERROR(Save(s, account, region, *a));
    NIMBUS_RETURN_IF_ERROR(AddHistory(s, account, region, name, now, "StateUpdate",
                                      "Alarm updated from " + before.state_value + " to " + e.state,
                                      StateHistoryData(before, e.state, e.reason, e.reason_data)));
    return RecordUndeliveredActions(s, account, region, *a, e.state, now);
  });
}

Status AlarmStore::EvaluateAll(double now) {
  NIMBUS_ASSIGN_OR_RETURN(store::Rows rows, db_.Query("SELECT account, region, doc FROM alarms"));
  Status first;
  for (const store::Row& row : rows) {
    auto alarm = ParseDoc(row.at("doc"));
    Status s = alarm.ok() ? EvaluateOne(row.at("account").AsString(), row.at("region").AsString(),
                                        *alarm, now)
                          : alarm.status();
    if (!s.ok()) {
      Log(LogLevel::kWarn, "alarm_evaluation_failed",
          {{"alarm", row.at("doc").AsString().substr(0, 200)}, {"error", s.ToString()}});
      if (first.ok()) first = s;
    }
  }
  Status pruned =
      db_.Exec("DELETE FROM alarm_history WHERE ts < ?", {now - kHistoryRetention}).status();
  if (first.ok()) first = pruned;
  return first;
}

}  // namespace nimbus::telemetry
