// AlarmStore: CloudWatch metric alarms — their configuration, state, history and tags —
// and their evaluation on the data of a MetricStore.
//
// An alarm watches one metric (namespace, name, dimensions) through a statistic over
// Period; at each evaluation the last EvaluationPeriods complete periods before `now`
// (aligned to multiples of Period) are read, each becomes a datapoint or is missing, and:
//   - ALARM when at least DatapointsToAlarm (M) datapoints breach the threshold;
//   - missing datapoints count as breaching (TreatMissingData "breaching"), as good
//     ("notBreaching"), or not at all ("missing", the default, and "ignore");
//   - with no datapoint at all: INSUFFICIENT_DATA for "missing", the state is kept for
//     "ignore";
//   - otherwise OK.
// StateReason is worded as CloudWatch words it ("Threshold Crossed: 1 datapoint [5.0
// (05/12/23 10:00:00)] was greater than the threshold (3.0)."), StateReasonData is its
// JSON. Only transitions are recorded (state, reason, timestamps, a StateUpdate history
// item). Alarm actions are stored but not delivered: a transition with actions enabled
// records a failed "Action" history item per action, as CloudWatch does for an action it
// cannot execute. History items are kept 30 days.
//
// Storage: tables `alarms` (one JSON document per alarm) and `alarm_history`, created by
// the "metrics" migrations that MetricStore::Open runs.
//
// Thread-safety: safe to use from many threads; state changes are written in a
// transaction that re-reads the alarm, so an evaluation never undoes a concurrent update.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "store/database.h"
#include "telemetry/metric_store.h"

namespace nimbus::telemetry {

struct Tag {
  std::string key;
  std::string value;
};

struct MetricAlarm {
  std::string name;
  std::string arn;  // set by the store
  std::string description;
  bool actions_enabled = true;
  std::vector<std::string> ok_actions;
  std::vector<std::string> alarm_actions;
  std::vector<std::string> insufficient_data_actions;
  MetricKey metric;
  std::string statistic;           // SampleCount | Average | Sum | Minimum | Maximum
  std::string extended_statistic;  // or this (p99, TM(10%:90%), ...)
  int period = 60;
  std::string unit;  // "" = every unit
  int evaluation_periods = 1;
  int datapoints_to_alarm = 0;  // 0 = evaluation_periods
  double threshold = 0;
  std::string comparison_operator;
  std::string treat_missing_data;  // "" = missing
  std::string evaluate_low_sample_count_percentile;
  std::vector<Tag> tags;

  // State, kept by the store.
  std::string state_value = "INSUFFICIENT_DATA";
  std::string state_reason;
  std::string state_reason_data;
  double state_updated = 0;
  double state_transitioned = 0;
  double configuration_updated = 0;
};

struct AlarmHistoryItem {
  std::string alarm_name;
  double timestamp = 0;
  std::string type;  // ConfigurationUpdate | StateUpdate | Action
  std::string summary;
  std::string data;  // JSON
};

struct DescribeAlarmsRequest {
  std::vector<std::string> names;
  std::string name_prefix;
  std::string state_value;
  std::string action_prefix;
  int max_records = 50;
  std::string next_token;
};

struct AlarmHistoryRequest {
  std::string alarm_name;
  std::string type;  // "" = every type
  std::optional<double> start_date;
  std::optional<double> end_date;
  int max_records = 100;
  bool ascending = false;
  std::string next_token;
};

// A period's datapoint as an alarm sees it.
struct AlarmDatapoint {
  double timestamp = 0;
  std::optional<double> value;  // nullopt: missing
  double sample_count = 0;
};

struct AlarmEvaluation {
  std::string state;  // "" = keep the current state
  std::string reason;
  std::string reason_data;
};

// The state the datapoints (oldest first, evaluation_periods of them) put the alarm in,
// with CloudWatch's wording. Pure: the store and the tests call it.
AlarmEvaluation EvaluateAlarm(const MetricAlarm& alarm, const std::vector<AlarmDatapoint>& points,
                              double now);

class AlarmStore {
 public:
  AlarmStore(store::Database& db, MetricStore& metrics, const Clock& clock);

  // The tables, for MetricStore::Open to register before it migrates.
  static void RegisterMigrations(store::Database& db);

  static std::string Arn(const std::string& region, const std::string& account,
                         const std::string& name);

  // Creates or replaces the alarm (the state of an existing alarm is kept), records the
  // configuration change and evaluates it at once. Errors as PutMetricAlarm returns them.
  Status PutMetricAlarm(const std::string& account, const std::string& region, MetricAlarm alarm);
  Result<MetricAlarm> Get(const std::string& account, const std::string& region,
                          const std::string& name);
  // Alarms by name; next_token is set when more follow.
  Result<std::vector<MetricAlarm>> Describe(const std::string& account, const std::string& region,
                                            const DescribeAlarmsRequest& request,
                                            std::string* next_token);
  // The alarms on metric, narrowed by the optional fields of `like` (statistic,
  // extended_statistic, period, unit; dimensions must match exactly when given).
  Result<std::vector<MetricAlarm>> DescribeForMetric(const std::string& account,
                                                     const std::string& region,
                                                     const MetricAlarm& like,
                                                     bool match_dimensions);
  // ResourceNotFound (naming them) when any name is unknown; then nothing is deleted.
  Status Delete(const std::string& account, const std::string& region,
                const std::vector<std::string>& names);
  Status SetState(const std::string& account, const std::string& region, const std::string& name,
                  const std::string& state, const std::string& reason,
                  const std::string& reason_data);
  // Unknown names are ignored, as CloudWatch ignores them.
  Status SetActionsEnabled(const std::string& account, const std::string& region,
                           const std::vector<std::string>& names, bool enabled);
  Result<std::vector<AlarmHistoryItem>> History(const std::string& account,
                                                const std::string& region,
                                                const AlarmHistoryRequest& request,
                                                std::string* next_token);

  // Tags of the alarm an ARN names (ResourceNotFoundException for other ARNs).
  Status TagResource(const std::string& account, const std::string& region, const std::string& arn,
                     const std::vector<Tag>& tags);
  Status UntagResource(const std::string& account, const std::string& region,
                       const std::string& arn, const std::vector<std::string>& keys);
  Result<std::vector<Tag>> ListTags(const std::string& account, const std::string& region,
                                    const std::string& arn);

  // Evaluates one alarm / every alarm as of now.
  Status Evaluate(const std::string& account, const std::string& region, const std::string& name,
                  double now);
  Status EvaluateAll(double now);

 private:
  Status EvaluateOne(const std::string& account, const std::string& region,
                     const MetricAlarm& alarm, double now);
  Status Transition(const std::string& account, const std::string& region, const std::string& name,
                    double expected_config, const AlarmEvaluation& e, double now);
  Result<std::vector<MetricAlarm>> LoadAll(const std::string& account, const std::string& region);
  Result<std::string> NameFromArn(const std::string& account, const std::string& region,
                                  const std::string& arn);

  store::Database& db_;
  MetricStore& metrics_;
  const Clock& clock_;
};

}  // namespace nimbus::telemetry
