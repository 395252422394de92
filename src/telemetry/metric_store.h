// MetricStore: the CloudWatch metrics of every account and region, over store::Database.
// PutMetricData, the server's own writers (jobs, endpoints) and the CloudWatch queries
// (GetMetricStatistics, GetMetricData, ListMetrics) all go through it; it also owns the
// alarms (alarms.h), which it evaluates on the data.
//
// Storage (component "metrics" migrations): no row per raw value. A metric is
// (namespace, name, dimensions sorted by name), one row of `metrics` per account and
// region. Values roll up on ingest into per-metric buckets of 1 second (StorageResolution
// 1) or 60 seconds, one row of `metric_buckets` per (metric, unit, resolution, bucket
// start), holding SampleCount, Sum, Minimum, Maximum and a ValueSketch of the values
// (a blob) for percentiles. One Put is one transaction: the batch is first rolled up in
// memory, the affected buckets are read and merged, then written back with multi-row
// UPSERTs, so a batch of 1000 datums costs a few dozen statements, not thousands.
// Retention is CloudWatch's (ExpireData): 1-second buckets become 60-second ones after
// three hours, and buckets go after 455 days.
// Statistic sets (StatisticValues) merge into the counters directly; they join the
// sketch only when they describe one distinct value (SampleCount 1 or Minimum ==
// Maximum), otherwise the bucket has no distribution and percentiles are not reported
// for it — the rule CloudWatch applies.
//
// Percentile accuracy: ValueSketch is a log-scale histogram (DDSketch's mapping) with
// relative accuracy 1%: a percentile pNN (nearest rank: the value of rank ceil(NN/100 * n)
// in ascending order) is returned within ±1% of that value's magnitude, then clamped to
// [Minimum, Maximum]. The trimmed/winsorized statistics (TM, WM, TC, TS, PR, IQM) are
// computed from the same histogram, with the same per-value error. Zero is exact.
//
// Thread-safety: a MetricStore is safe to use from many threads. Writes are serialized by
// the Database; the metric-id cache is guarded by a mutex.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "store/database.h"
#include "telemetry/metric_math.h"

namespace nimbus::telemetry {

class AlarmStore;

struct Dimension {
  std::string name;
  std::string value;
  bool operator==(const Dimension& o) const { return name == o.name && value == o.value; }
};

struct StatisticValues {
  double sample_count = 0;
  double sum = 0;
  double minimum = 0;
  double maximum = 0;
};

struct MetricDatum {
  std::string metric_name;
  std::vector<Dimension> dimensions;
  double timestamp = 0;  // epoch seconds; 0 means now
  // Exactly one of: value; values (with counts of the same length, or none: each 1);
  // statistic_values.
  std::optional<double> value;
  std::vector<double> values;
  std::vector<double> counts;
  std::optional<StatisticValues> statistic_values;
  std::string unit;             // a CloudWatch StandardUnit; "" means "None"
  int storage_resolution = 60;  // 1 (high resolution) or 60
};

// A metric's identity. Dimensions are kept sorted by name.
struct MetricKey {
  std::string ns;
  std::string name;
  std::vector<Dimension> dimensions;
};

// The CloudWatch StandardUnit names, "None" first.
const std::vector<std::string>& StandardUnits();

// A log-scale histogram of values (see the accuracy note above). Counts may be
// fractional (PutMetricData's Counts are doubles).
class ValueSketch {
 public:
  static constexpr double kRelativeAccuracy = 0.01;

  void Add(double value, double count = 1);
  void Merge(const ValueSketch& other);
  double count() const;
  bool empty() const { return count() <= 0; }

  // Visits (representative value, count) in ascending value order.
  template <typename Fn>
  void ForEach(Fn fn) const;

  // The value of nearest rank ceil(q * count), q in [0, 1], clamped to [lo, hi].
  // REQUIRES: !empty().
  double Quantile(double q, double lo, double hi) const;

  std::string Serialize() const;
  // False when bytes are not a serialized sketch.
  static bool Deserialize(std::string_view bytes, ValueSketch* out);

 private:
  static int32_t IndexOf(double magnitude);
  static double ValueOf(int32_t index);

  std::map<int32_t, double> positive_;  // index -> count
  std::map<int32_t, double> negative_;  // index of |value| -> count
  double zero_ = 0;
};

// Samples rolled up: what a bucket, and a period made of buckets, holds.
struct Aggregate {
  double sample_count = 0;
  double sum = 0;
  double minimum = 0;
  double maximum = 0;
  bool has_distribution = true;  // every sample is in sketch
  ValueSketch sketch;

  void AddValue(double value, double count = 1);
  void AddStatisticSet(const StatisticValues& s);
  void Merge(const Aggregate& other);
};

// A statistic as CloudWatch names it: SampleCount, Average, Sum, Minimum, Maximum,
// pNN.NN, tmNN / TM(a%:b%) / TM(a:b), wmNN / WM(..), tcNN / TC(..), tsNN / TS(..),
// PR(a:b), IQM.
class Statistic {
 public:
  // InvalidParameterValue naming the statistic when it is none of the above.
  static Result<Statistic> Parse(std::string_view text);

  const std::string& name() const { return name_; }
  bool is_extended() const { return kind_ >= Kind::kPercentile; }
  bool needs_distribution() const { return is_extended(); }
  // The statistic of the samples; nullopt when it cannot be computed (no samples, or an
  // extended statistic of samples without a distribution).
  std::optional<double> Compute(const Aggregate& a) const;

 private:
  enum class Kind {
    kSampleCount,
    kAverage,
    kSum,
    kMinimum,
    kMaximum,
    kPercentile,
    kTrimmedMean,
    kWinsorizedMean,
    kTrimmedCount,
    kTrimmedSum,
    kPercentileRank,
  };
  std::string name_;
  Kind kind_ = Kind::kAverage;
  std::optional<double> lo_, hi_;  // bounds: percents (0..100) or values
  bool percent_bounds_ = false;
};

// One period of a metric.
struct PeriodAggregate {
  double timestamp = 0;  // the period's start
  std::string unit;      // "" when units were merged
  Aggregate aggregate;
};

struct StatisticsRequest {
  MetricKey metric;
  double start_time = 0;
  double end_time = 0;
  int period = 60;
  std::vector<std::string> statistics;           // SampleCount, Average, ...
  std::vector<std::string> extended_statistics;  // p99, TM(10%:90%), ...
  std::string unit;                              // "" = every unit
};

struct StatisticsDatapoint {
  double timestamp = 0;
  std::string unit;
  std::map<std::string, double> statistics;
  std::map<std::string, double> extended_statistics;
};

struct MetricStat {
  MetricKey metric;
  int period = 60;
  std::string stat;
  std::string unit;  // "" = every unit
};

struct MetricDataQuery {
  std::string id;
  std::optional<MetricStat> metric_stat;
  std::string expression;  // set when metric_stat is not
  std::string label;
  bool return_data = true;
  int period = 0;  // for expressions; 0 = the smallest MetricStat period
};

struct MetricDataRequest {
  std::vector<MetricDataQuery> queries;
  double start_time = 0;
  double end_time = 0;
  bool scan_ascending = false;  // ScanBy TimestampAscending
  int64_t max_datapoints = 100800;
  std::string next_token;
};

struct MetricDataMessage {
  std::string code;
  std::string value;
};

struct MetricDataResult {
  std::string id;
  std::string label;
  std::vector<double> timestamps;
  std::vector<double> values;
  std::string status_code = "Complete";  // or PartialData when a later page has more
  std::vector<MetricDataMessage> messages;
};

struct MetricDataResponse {
  std::vector<MetricDataResult> results;
  std::string next_token;
  std::vector<MetricDataMessage> messages;
};

struct DimensionFilter {
  std::string name;
  std::optional<std::string> value;
};

struct ListMetricsRequest {
  std::optional<std::string> ns;
  std::optional<std::string> metric_name;
  std::vector<DimensionFilter> dimensions;  // each must be present (with that value)
  bool recently_active = false;             // RecentlyActive PT3H
  // Metrics without data in the last two weeks are not listed, as in CloudWatch.
  std::string next_token;
  int page_size = 500;
};

struct ListMetricsResponse {
  std::vector<MetricKey> metrics;
  std::string next_token;
};

class MetricStore {
 public:
  // Registers the "metrics" migrations, migrates, and returns the store. db and clock
  // must outlive it.
  static Result<std::unique_ptr<MetricStore>> Open(store::Database& db, const Clock& clock);
  ~MetricStore();

  MetricStore(const MetricStore&) = delete;
  MetricStore& operator=(const MetricStore&) = delete;

  // Rolls data up into the namespace's buckets, in one transaction. Errors as
  // PutMetricData returns them (InvalidParameterValue / InvalidParameterCombination /
  // MissingParameter, naming MetricData.member.N.<field>); nothing is stored then.
  // Namespaces are not checked against the reserved "AWS/" prefix here: the server's own
  // writers use it; the CloudWatch handler refuses it for callers.
  Status Put(const std::string& account, const std::string& region, const std::string& ns,
             const std::vector<MetricDatum>& data);

  // The periods [start + k*period, start + (k+1)*period) before end that hold samples of
  // metric (of `unit` only when it is not empty), in time order. With by_unit, samples of
  // different units are separate entries. The sketch is read only with_distribution.
  // start is used as given (callers align it).
  Result<std::vector<PeriodAggregate>> Aggregates(const std::string& account,
                                                  const std::string& region,
                                                  const MetricKey& metric, double start, double end,
                                                  int period, const std::string& unit, bool by_unit,
                                                  bool with_distribution);

  // GetMetricStatistics, with CloudWatch's validation and start-time rounding.
  Result<std::vector<StatisticsDatapoint>> GetStatistics(const std::string& account,
                                                         const std::string& region,
                                                         const StatisticsRequest& request);

  // GetMetricData: MetricStat queries and metric math expressions, paginated.
  Result<MetricDataResponse> GetMetricData(const std::string& account, const std::string& region,
                                           const MetricDataRequest& request);

  Result<ListMetricsResponse> ListMetrics(const std::string& account, const std::string& region,
                                          const ListMetricsRequest& request);

  // CloudWatch's retention, as of now: 1-second buckets older than three hours are rolled
  // up into 60-second ones; buckets older than 455 days are deleted. The server calls it
  // on a timer (every 10 minutes).
  Status ExpireData(double now);

  AlarmStore& alarms() { return *alarms_; }
  // Evaluates every alarm against the data as of `now` and records state changes. The
  // server calls it on a timer (every 10 s).
  Status EvaluateAlarms(double now);

  const Clock& clock() const { return clock_; }

  // The first second of the period that holds t, as CloudWatch rounds a query's start
  // time: to the period below one minute, else to the minute (data up to 15 days old),
  // 5 minutes (up to 63 days) or the hour.
  static double AlignStart(double start, int period, double now);

 private:
  MetricStore(store::Database& db, const Clock& clock);

  struct CachedMetric {
    int64_t id = 0;
    double last_put = 0;
  };
  // The id of metric, or 0 when it has never been written.
  Result<int64_t> FindMetricId(const std::string& account, const std::string& region,
                               const MetricKey& metric);

  store::Database& db_;
  const Clock& clock_;
  std::unique_ptr<AlarmStore> alarms_;

  std::mutex cache_mu_;
  std::unordered_map<std::string, CachedMetric> cache_;  // GUARDED_BY(cache_mu_)
};

// The canonical form of dimensions (sorted by name), as stored and compared.
std::vector<Dimension> SortedDimensions(std::vector<Dimension> dims);

template <typename Fn>
void ValueSketch::ForEach(Fn fn) const {
  for (auto it = negative_.rbegin(); it != negative_.rend(); ++it)
    fn(-ValueOf(it->first), it->second);
  if (zero_ > 0) fn(0.0, zero_);
  for (const auto& [index, count] : positive_) fn(ValueOf(index), count);
}

}  // namespace nimbus::telemetry
