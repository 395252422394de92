#include "telemetry/metric_store.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <set>
#include <tuple>
#include <utility>

#include "core/json.h"
#include "core/strings.h"
#include "telemetry/alarms.h"

namespace nimbus::telemetry {
namespace {

constexpr double kDay = 86400;
constexpr size_t kMaxDatums = 1000;
constexpr size_t kMaxDimensions = 30;
constexpr size_t kMaxValues = 150;
constexpr size_t kMaxQueries = 500;
constexpr int64_t kMaxStatisticsDatapoints = 1440;
// CloudWatch's accepted magnitudes (besides zero).
constexpr double kMinMagnitude = 8.515920e-109;
constexpr double kMaxMagnitude = 1.174271e+108;
// Rows per multi-row statement: 9 parameters each stays under SQLite's oldest limit of
// 999 parameters.
constexpr size_t kRowsPerStatement = 100;
// last_put (for ListMetrics' RecentlyActive) is refreshed at most this often per metric.
constexpr double kLastPutRefresh = 60;
// CloudWatch's retention: 1-second data for 3 hours (then it is rolled up into minutes),
// everything for 455 days (15 months).
constexpr double kHighResolutionRetention = 3 * 3600;
constexpr double kRetention = 455 * kDay;
// ListMetrics shows metrics with data published in the last two weeks.
constexpr double kListMetricsWindow = 14 * kDay;

Status InvalidValue(std::string msg) {
  return Status::Aws("InvalidParameterValue", 400, std::move(msg));
}
Status InvalidCombination(std::string msg) {
  return Status::Aws("InvalidParameterCombination", 400, std::move(msg));
}
Status MissingParameter(std::string msg) {
  return Status::Aws("MissingParameter", 400, std::move(msg));
}
Status ValidationError(std::string msg) {
  return Status::Aws("ValidationError", 400, std::move(msg));
}

std::string Num(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return std::to_string(v);
  return std::string(buf, end);
}

// 1441 -> "1,441"
std::string WithCommas(int64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Sketch encoding: varints, counts as varint when integral, else a raw double.

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view& in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const auto byte = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

void PutCount(std::string& out, double c) {
  if (c >= 0 && c < 4503599627370496.0 && c == std::floor(c)) {
    PutVarint(out, static_cast<uint64_t>(c) << 1);
    return;
  }
  PutVarint(out, 1);
  char raw[8];
  std::memcpy(raw, &c, 8);
  out.append(raw, 8);
}

bool GetCount(std::string_view& in, double* c) {
  uint64_t tag = 0;
  if (!GetVarint(in, &tag)) return false;
  if ((tag & 1) == 0) {
    *c = static_cast<double>(tag >> 1);
    return true;
  }
  if (in.size() < 8) return false;
  std::memcpy(c, in.data(), 8);
  in.remove_prefix(8);
  return std::isfinite(*c) && *c >= 0;
}

uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

void PutBins(std::string& out, const std::map<int32_t, double>& bins) {
  PutVarint(out, bins.size());
  int64_t prev = 0;
  for (const auto& [index, count] : bins) {
    PutVarint(out, ZigZag(index - prev));
    prev = index;
    PutCount(out, count);
  }
}

bool GetBins(std::string_view& in, std::map<int32_t, double>* bins) {
  uint64_t n = 0;
  if (!GetVarint(in, &n) || n > in.size()) return false;
  int64_t index = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t delta = 0;
    double count = 0;
    if (!GetVarint(in, &delta) || !GetCount(in, &count)) return false;
    index += UnZigZag(delta);
    if (index < INT32_MIN || index > INT32_MAX) return false;
    (*bins)[static_cast<int32_t>(index)] += count;
  }
  return true;
}

constexpr char kSketchVersion = 1;
// Magnitudes below this go to the zero bin (CloudWatch accepts nothing in between).
constexpr double kZeroThreshold = 1e-150;

const double kGamma = (1 + ValueSketch::kRelativeAccuracy) / (1 - ValueSketch::kRelativeAccuracy);
const double kLogGamma = std::log(kGamma);

// ---------------------------------------------------------------------------------------
// Metric identity.

std::string DimensionsJson(const std::vector<Dimension>& sorted) {
  Value list = Value::MakeList();
  for (const Dimension& d : sorted) list.Append(Value(Value::List{d.name, d.value}));
  return ToJson(list);
}

std::vector<Dimension> DimensionsFromJson(const std::string& text) {
  std::vector<Dimension> dims;
  auto parsed = ParseJson(text);
  if (!parsed.ok() || !parsed->is_list()) return dims;
  for (const Value& pair : parsed->list()) {
    if (pair.is_list() && pair.list().size() == 2) {
      dims.push_back({pair.list()[0].AsString(), pair.list()[1].AsString()});
    }
  }
  return dims;
}

std::string CacheKey(const std::string& account, const std::string& region, const std::string& ns,
                     const std::string& name, const std::string& dims_json) {
  std::string key;
  key.reserve(account.size() + region.size() + ns.size() + name.size() + dims_json.size() + 4);
  for (const std::string* part : {&account, &region, &ns, &name}) {
    key += *part;
    key.push_back('\x1f');
  }
  key += dims_json;
  return key;
}

int UnitCode(const std::string& unit) {
  if (unit.empty()) return 0;
  const auto& units = StandardUnits();
  for (size_t i = 0; i < units.size(); ++i) {
    if (units[i] == unit) return static_cast<int>(i);
  }
  return -1;
}

std::string UnitName(int64_t code) {
  const auto& units = StandardUnits();
  return code >= 0 && static_cast<size_t>(code) < units.size() ? units[code] : "None";
}

Status CheckPeriod(int period, const std::string& parameter, bool validation_error) {
  if (period >= 60 ? period % 60 == 0
                   : (period == 1 || period == 5 || period == 10 || period == 30)) {
    return Status::Ok();
  }
  std::string msg = "The parameter " + parameter + " must be 1, 5, 10, 30, or a multiple of 60.";
  return validation_error ? ValidationError(std::move(msg)) : InvalidValue(std::move(msg));
}

Status CheckMagnitude(double v, const std::string& parameter) {
  if (!std::isfinite(v)) {
    return InvalidValue("The value " + Num(v) + " for parameter " + parameter + " is invalid.");
  }
  const double m = std::fabs(v);
  if (m != 0 && (m < kMinMagnitude || m > kMaxMagnitude)) {
    return InvalidValue("The value " + Num(v) + " for parameter " + parameter +
                        " is out of range.");
  }
  return Status::Ok();
}

Status ValidateDatum(const MetricDatum& d, const std::string& member, double now) {
  if (d.metric_name.empty()) {
    return MissingParameter("The parameter " + member + ".MetricName is required.");
  }
  if (d.dimensions.size() > kMaxDimensions) {
    return InvalidValue("The collection " + member + ".Dimensions must not have a size greater " +
                        "than " + std::to_string(kMaxDimensions) + ".");
  }
  std::set<std::string> names;
  for (size_t j = 0; j < d.dimensions.size(); ++j) {
    const Dimension& dim = d.dimensions[j];
    const std::string where = member + ".Dimensions.member." + std::to_string(j + 1);
    if (dim.name.empty() || dim.value.empty()) {
      return InvalidValue("The parameters " + where + ".Name and " + where +
                          ".Value must not be empty.");
    }
    if (!names.insert(dim.name).second) {
      return InvalidValue("The collection " + member + ".Dimensions must not contain " +
                          "duplicate dimension names (" + dim.name + ").");
    }
  }
  const int forms = (d.value ? 1 : 0) + (!d.values.empty() ? 1 : 0) + (d.statistic_values ? 1 : 0);
  if (forms == 0 && d.counts.empty()) {
    return MissingParameter("The parameter " + member + ".Value, " + member + ".Values or " +
                            member + ".StatisticValues is required.");
  }
  if (d.value && d.statistic_values) {
    return InvalidCombination("The parameters " + member + ".Value and " + member +
                              ".StatisticValues are mutually exclusive and you have specified " +
                              "both.");
  }
  if (forms > 1) {
    return InvalidCombination("The parameters " + member + ".Value, " + member + ".Values and " +
                              member + ".StatisticValues are mutually exclusive; specify one.");
  }
  if (d.value) NIMBUS_RETURN_IF_ERROR(CheckMagnitude(*d.value, member + ".Value"));
  if (!d.counts.empty() && d.values.empty()) {
    return InvalidCombination("The parameter " + member + ".Counts requires " + member +
                              ".Values.");
  }
  if (d.values.size() > kMaxValues) {
    return InvalidValue("The collection " + member + ".Values must not have a size greater " +
                        "than " + std::to_string(kMaxValues) + ".");
  }
  if (!d.counts.empty() && d.counts.size() != d.values.size()) {
    return InvalidCombination("The parameters " + member + ".Values and " + member +
                              ".Counts must be of the same size.");
  }
  for (size_t j = 0; j < d.values.size(); ++j) {
    NIMBUS_RETURN_IF_ERROR(
        CheckMagnitude(d.values[j], member + ".Values.member." + std::to_string(j + 1)));
  }
  for (size_t j = 0; j < d.counts.size(); ++j) {
    const double c = d.counts[j];
    if (!std::isfinite(c) || c < 0) {
      return InvalidValue("The value " + Num(c) + " for parameter " + member + ".Counts.member." +
                          std::to_string(j + 1) + " is invalid.");
    }
  }
  if (d.statistic_values) {
    const StatisticValues& s = *d.statistic_values;
    const std::string where = member + ".StatisticValues";
    NIMBUS_RETURN_IF_ERROR(CheckMagnitude(s.sum, where + ".Sum"));
    NIMBUS_RETURN_IF_ERROR(CheckMagnitude(s.minimum, where + ".Minimum"));
    NIMBUS_RETURN_IF_ERROR(CheckMagnitude(s.maximum, where + ".Maximum"));
    NIMBUS_RETURN_IF_ERROR(CheckMagnitude(s.sample_count, where + ".SampleCount"));
    if (s.sample_count <= 0) {
      return InvalidValue("The value " + Num(s.sample_count) + " for parameter " + where +
                          ".SampleCount must be greater than zero.");
    }
    if (s.minimum > s.maximum) {
      return InvalidValue("The parameter " + where + ".Minimum must not be greater than " + where +
                          ".Maximum.");
    }
  }
  if (UnitCode(d.unit) < 0) {
    return InvalidValue("The value " + d.unit + " for parameter " + member + ".Unit is invalid.");
  }
  if (d.storage_resolution != 1 && d.storage_resolution != 60) {
    return InvalidValue("The value " + std::to_string(d.storage_resolution) + " for parameter " +
                        member + ".StorageResolution is invalid: use 1 or 60.");
  }
  if (d.timestamp != 0) {
    if (!std::isfinite(d.timestamp)) {
      return InvalidValue("The parameter " + member + ".Timestamp is invalid.");
    }
    if (d.timestamp < now - 14 * kDay) {
      return InvalidValue("The parameter " + member + ".Timestamp must specify a time no more " +
                          "than two weeks in the past.");
    }
    if (d.timestamp > now + 2 * 3600) {
      return InvalidValue("The parameter " + member + ".Timestamp must specify a time no more " +
                          "than two hours in the future.");
    }
  }
  return Status::Ok();
}

std::optional<std::string> DecodeToken(const std::string& token, std::string_view prefix) {
  auto decoded = Base64Decode(token);
  if (!decoded || !StartsWith(*decoded, prefix)) return std::nullopt;
  return decoded->substr(prefix.size());
}

Status InvalidNextToken() {
  return Status::Aws("InvalidNextToken", 400, "The service cannot process the NextToken.");
}

// metric_buckets' primary key: (metric id, bucket start, resolution, unit code).
using BucketRowKey = std::tuple<int64_t, int64_t, int, int>;

Aggregate AggregateFromRow(const store::Row& row) {
  Aggregate a;
  a.sample_count = row.at("n").AsDouble();
  a.sum = row.at("sum").AsDouble();
  a.minimum = row.at("min").AsDouble();
  a.maximum = row.at("max").AsDouble();
  const Value& hist = row.at("hist");
  a.has_distribution = hist.is_blob() && ValueSketch::Deserialize(hist.AsString(), &a.sketch);
  return a;
}

// Merges each aggregate into its bucket row: the rows that exist are read (one statement
// per kRowsPerStatement keys), merged in memory and written back with multi-row UPSERTs.
// REQUIRES: inside a transaction.
Status MergeBuckets(store::Session& s, std::map<BucketRowKey, Aggregate>& buckets) {
  std::vector<std::pair<const BucketRowKey*, Aggregate*>> items;
  items.reserve(buckets.size());
  for (auto& [key, agg] : buckets) items.emplace_back(&key, &agg);
  for (size_t begin = 0; begin < items.size(); begin += kRowsPerStatement) {
    const size_t end = std::min(items.size(), begin + kRowsPerStatement);
    std::string select =
        "SELECT b.metric_id, b.ts, b.res, b.unit, b.n, b.sum, b.min, b.max, b.hist FROM (VALUES ";
    store::Params keys;
    for (size_t k = begin; k < end; ++k) {
      const auto& [id, ts, res, unit] = *items[k].first;
      select += k == begin ? "(?, ?, ?, ?)" : ", (?, ?, ?, ?)";
      keys.insert(keys.end(), {id, ts, res, unit});
    }
    // A join (not a row-value IN) so that SQLite looks each key up in the primary key.
    select +=
        ") AS k CROSS JOIN metric_buckets AS b ON b.metric_id = k.column1 AND "
        "b.ts = k.column2 AND b.res = k.column3 AND b.unit = k.column4";
    NIMBUS_ASSIGN_OR_RETURN(store::Rows existing, s.Query(select, keys));
    for (const store::Row& row : existing) {
      auto it = buckets.find({row.at("metric_id").AsInt(), row.at("ts").AsInt(),
                              static_cast<int>(row.at("res").AsInt()),
                              static_cast<int>(row.at("unit").AsInt())});
      if (it == buckets.end()) continue;
      Aggregate merged = AggregateFromRow(row);
      merged.Merge(it->second);
      it->second = std::move(merged);
    }
    std::string upsert =
        "INSERT INTO metric_buckets (metric_id, ts, res, unit, n, sum, min, max, hist) VALUES ";
    store::Params params;
    params.reserve((end - begin) * 9);
    for (size_t k = begin; k < end; ++k) {
      const auto& [id, ts, res, unit] = *items[k].first;
      const Aggregate& a = *items[k].second;
      upsert += k == begin ? "(?, ?, ?, ?, ?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?, ?, ?, ?, ?)";
      params.insert(params.end(),
                    {id, ts, res, unit, a.sample_count, a.sum, a.minimum, a.maximum,
                     a.has_distribution ? Value::Blob(a.sketch.Serialize()) : Value()});
    }
    upsert +=
        " ON CONFLICT (metric_id, ts, res, unit) DO UPDATE SET n = excluded.n, "
        "sum = excluded.sum, min = excluded.min, max = excluded.max, hist = excluded.hist";
    NIMBUS_RETURN_IF_ERROR(s.Exec(upsert, params).status());
  }
  return Status::Ok();
}

bool ValidQueryId(const std::string& id) {
  if (id.empty() || !std::islower(static_cast<unsigned char>(id[0]))) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

}  // namespace

// ---------------------------------------------------------------------------------------

const std::vector<std::string>& StandardUnits() {
  static const std::vector<std::string> kUnits = {"None",
                                                  "Seconds",
                                                  "Microseconds",
                                                  "Milliseconds",
                                                  "Bytes",
                                                  "Kilobytes",
                                                  "Megabytes",
                                                  "Gigabytes",
                                                  "Terabytes",
                                                  "Bits",
                                                  "Kilobits",
                                                  "Megabits",
                                                  "Gigabits",
                                                  "Terabits",
                                                  "Percent",
                                                  "Count",
                                                  "Bytes/Second",
                                                  "Kilobytes/Second",
                                                  "Megabytes/Second",
                                                  "Gigabytes/Second",
                                                  "Terabytes/Second",
                                                  "Bits/Second",
                                                  "Kilobits/Second",
                                                  "Megabits/Second",
                                                  "Gigabits/Second",
                                                  "Terabits/Second",
                                                  "Count/Second"};
  return kUnits;
}

std::vector<Dimension> SortedDimensions(std::vector<Dimension> dims) {
  std::sort(dims.begin(), dims.end(), [](const Dimension& a, const Dimension& b) {
    return a.name != b.name ? a.name < b.name : a.value < b.value;
  });
  return dims;
}

// ---------------------------------------------------------------------------------------
// ValueSketch

int32_t ValueSketch::IndexOf(double magnitude) {
  return static_cast<int32_t>(std::ceil(std::log(magnitude) / kLogGamma));
}

double ValueSketch::ValueOf(int32_t index) {
  return 2 * std::exp(index * kLogGamma) / (kGamma + 1);
}

void ValueSketch::Add(double value, double count) {
  if (!(count > 0) || !std::isfinite(value)) return;
  const double m = std::fabs(value);
  if (m < kZeroThreshold) {
    zero_ += count;
  } else if (value > 0) {
    positive_[IndexOf(m)] += count;
  } else {
    negative_[IndexOf(m)] += count;
  }
}

void ValueSketch::Merge(const ValueSketch& other) {
  zero_ += other.zero_;
  for (const auto& [i, c] : other.positive_) positive_[i] += c;
  for (const auto& [i, c] : other.negative_) negative_[i] += c;
}

double ValueSketch::count() const {
  double n = zero_;
  for (const auto& [i, c] : positive_) n += c;
  for (const auto& [i, c] : negative_) n += c;
  return n;
}

double ValueSketch::Quantile(double q, double lo, double hi) const {
  if (q <= 0) return lo;
  if (q >= 1) return hi;
  const double total = count();
  // Nearest rank, tolerant of the rounding in q * total (p50 of 4 values is rank 2).
  double target = std::ceil(q * total - 1e-9 * total);
  double result = hi;
  bool found = false;
  double seen = 0;
  ForEach([&](double v, double c) {
    if (found) return;
    seen += c;
    if (seen >= target - 1e-9 * total) {
      result = v;
      found = true;
    }
  });
  return std::clamp(result, lo, hi);
}

std::string ValueSketch::Serialize() const {
  std::string out;
  out.push_back(kSketchVersion);
  PutCount(out, zero_);
  PutBins(out, positive_);
  PutBins(out, negative_);
  return out;
}

bool ValueSketch::Deserialize(std::string_view bytes, ValueSketch* out) {
  *out = ValueSketch();
  if (bytes.empty() || bytes[0] != kSketchVersion) return false;
  bytes.remove_prefix(1);
  return GetCount(bytes, &out->zero_) && GetBins(bytes, &out->positive_) &&
         GetBins(bytes, &out->negative_) && bytes.empty();
}

// ---------------------------------------------------------------------------------------
// Aggregate

void Aggregate::AddValue(double value, double count) {
  if (!(count > 0)) return;
  if (sample_count == 0) {
    minimum = maximum = value;
  } else {
    minimum = std::min(minimum, value);
    maximum = std::max(maximum, value);
  }
  sample_count += count;
  sum += value * count;
  sketch.Add(value, count);
}

void Aggregate::AddStatisticSet(const StatisticValues& s) {
  if (sample_count == 0) {
    minimum = s.minimum;
    maximum = s.maximum;
  } else {
    minimum = std::min(minimum, s.minimum);
    maximum = std::max(maximum, s.maximum);
  }
  sample_count += s.sample_count;
  sum += s.sum;
  // One distinct value is a distribution; anything else is not.
  if (s.sample_count == 1 || s.minimum == s.maximum) {
    sketch.Add(s.minimum, s.sample_count);
  } else {
    has_distribution = false;
  }
}

void Aggregate::Merge(const Aggregate& other) {
  if (other.sample_count == 0 && other.has_distribution) return;
  if (sample_count == 0) {
    minimum = other.minimum;
    maximum = other.maximum;
  } else if (other.sample_count > 0) {
    minimum = std::min(minimum, other.minimum);
    maximum = std::max(maximum, other.maximum);
  }
  sample_count += other.sample_count;
  sum += other.sum;
  has_distribution = has_distribution && other.has_distribution;
  if (has_distribution) sketch.Merge(other.sketch);
}

// ---------------------------------------------------------------------------------------
// Statistic

namespace {

// Parses "12.5" / "12.5%" / "" into a bound. Returns false when malformed.
bool ParseBound(std::string_view text, std::optional<double>* value, bool* percent) {
  *percent = false;
  if (text.empty()) return true;
  if (text.back() == '%') {
    *percent = true;
    text.remove_suffix(1);
  }
  if (text.empty()) return false;
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) return false;
  *value = v;
  return true;
}

bool ParsePercentNumber(std::string_view text, double* v) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *v);
  return ec == std::errc() && end == text.data() + text.size() && *v >= 0 && *v <= 100;
}

}  // namespace

Result<Statistic> Statistic::Parse(std::string_view text) {
  Statistic s;
  s.name_ = std::string(text);
  static const std::pair<const char*, Kind> kBasic[] = {{"SampleCount", Kind::kSampleCount},
                                                        {"Average", Kind::kAverage},
                                                        {"Sum", Kind::kSum},
                                                        {"Minimum", Kind::kMinimum},
                                                        {"Maximum", Kind::kMaximum}};
  for (const auto& [name, kind] : kBasic) {
    if (text == name) {
      s.kind_ = kind;
      return s;
    }
  }
  auto unsupported = [&]() {
    return InvalidValue("The statistic " + std::string(text) +
                        " is not supported: use SampleCount, Average, Sum, Minimum, Maximum, "
                        "pNN.NN, tmNN, wmNN, tcNN, tsNN, TM(a:b), WM(a:b), TC(a:b), TS(a:b), "
                        "PR(a:b) or IQM.");
  };
  if (text == "IQM") {
    s.kind_ = Kind::kTrimmedMean;
    s.lo_ = 25;
    s.hi_ = 75;
    s.percent_bounds_ = true;
    return s;
  }
  static const std::pair<const char*, Kind> kRanged[] = {{"TM", Kind::kTrimmedMean},
                                                         {"WM", Kind::kWinsorizedMean},
                                                         {"TC", Kind::kTrimmedCount},
                                                         {"TS", Kind::kTrimmedSum},
                                                         {"PR", Kind::kPercentileRank}};
  // Shorthands: p99, tm90 (= TM(0%:90%)), wm, tc, ts.
  if (text.size() > 1 && text[0] == 'p') {
    double v = 0;
    if (!ParsePercentNumber(text.substr(1), &v)) return unsupported();
    s.kind_ = Kind::kPercentile;
    s.hi_ = v;
    s.percent_bounds_ = true;
    return s;
  }
  for (const auto& [prefix, kind] : kRanged) {
    const std::string upper = prefix;
    const std::string lower = ToLower(upper);
    if (kind != Kind::kPercentileRank && text.size() > 2 && StartsWith(text, lower) &&
        text[2] != '(') {
      double v = 0;
      if (!ParsePercentNumber(text.substr(2), &v)) return unsupported();
      s.kind_ = kind;
      s.lo_ = 0;
      s.hi_ = v;
      s.percent_bounds_ = true;
      return s;
    }
    if ((StartsWith(text, upper + "(") || StartsWith(text, lower + "(")) && text.back() == ')') {
      std::string_view inner = text.substr(3, text.size() - 4);
      const size_t colon = inner.find(':');
      if (colon == std::string_view::npos) return unsupported();
      bool lo_pct = false, hi_pct = false;
      if (!ParseBound(inner.substr(0, colon), &s.lo_, &lo_pct) ||
          !ParseBound(inner.substr(colon + 1), &s.hi_, &hi_pct)) {
        return unsupported();
      }
      if (!s.lo_ && !s.hi_) return unsupported();
      // Both bounds are percents or both are values.
      if (s.lo_ && s.hi_ && lo_pct != hi_pct) return unsupported();
      s.percent_bounds_ = lo_pct || hi_pct;
      if (kind == Kind::kPercentileRank && s.percent_bounds_) return unsupported();
      if (s.percent_bounds_) {
        if ((s.lo_ && (*s.lo_ < 0 || *s.lo_ > 100)) || (s.hi_ && (*s.hi_ < 0 || *s.hi_ > 100))) {
          return unsupported();
        }
        if (!s.lo_) s.lo_ = 0;
        if (!s.hi_) s.hi_ = 100;
      }
      if (s.lo_ && s.hi_ && *s.lo_ > *s.hi_) return unsupported();
      s.kind_ = kind;
      return s;
    }
  }
  return unsupported();
}

std::optional<double> Statistic::Compute(const Aggregate& a) const {
  if (a.sample_count <= 0) return std::nullopt;
  switch (kind_) {
    case Kind::kSampleCount:
      return a.sample_count;
    case Kind::kAverage:
      return a.sum / a.sample_count;
    case Kind::kSum:
      return a.sum;
    case Kind::kMinimum:
      return a.minimum;
    case Kind::kMaximum:
      return a.maximum;
    default:
      break;
  }
  if (!a.has_distribution || a.sketch.empty()) return std::nullopt;
  if (kind_ == Kind::kPercentile) return a.sketch.Quantile(*hi_ / 100, a.minimum, a.maximum);

  const double n = a.sketch.count();
  double inside_count = 0, inside_sum = 0, below_count = 0, above_count = 0;
  if (percent_bounds_) {
    // Ranks as positions in [0, n): the part of each bin between the two ranks is inside.
    const double lo_rank = *lo_ / 100 * n, hi_rank = *hi_ / 100 * n;
    double seen = 0;
    a.sketch.ForEach([&](double v, double c) {
      v = std::clamp(v, a.minimum, a.maximum);
      const double overlap = std::max(0.0, std::min(seen + c, hi_rank) - std::max(seen, lo_rank));
      inside_count += overlap;
      inside_sum += overlap * v;
      seen += c;
    });
    below_count = lo_rank;
    above_count = n - hi_rank;
  } else {
    // Values in (lo, hi].
    a.sketch.ForEach([&](double v, double c) {
      v = std::clamp(v, a.minimum, a.maximum);
      if (lo_ && v <= *lo_) {
        below_count += c;
      } else if (hi_ && v > *hi_) {
        above_count += c;
      } else {
        inside_count += c;
        inside_sum += c * v;
      }
    });
  }
  switch (kind_) {
    case Kind::kTrimmedMean:
      if (inside_count <= 0) return std::nullopt;
      return inside_sum / inside_count;
    case Kind::kTrimmedCount:
      return inside_count;
    case Kind::kTrimmedSum:
      return inside_sum;
    case Kind::kPercentileRank:
      return 100 * inside_count / n;
    case Kind::kWinsorizedMean: {
      double low_value = 0, high_value = 0;
      if (percent_bounds_) {
        low_value = a.sketch.Quantile(*lo_ / 100, a.minimum, a.maximum);
        high_value = a.sketch.Quantile(*hi_ / 100, a.minimum, a.maximum);
      } else {
        low_value = lo_.value_or(a.minimum);
        high_value = hi_.value_or(a.maximum);
      }
      return (inside_sum + below_count * low_value + above_count * high_value) / n;
    }
    default:
      return std::nullopt;
  }
}

// ---------------------------------------------------------------------------------------
// MetricStore

MetricStore::MetricStore(store::Database& db, const Clock& clock)
    : db_(db), clock_(clock), alarms_(std::make_unique<AlarmStore>(db, *this, clock)) {}

MetricStore::~MetricStore() = default;

Result<std::unique_ptr<MetricStore>> MetricStore::Open(store::Database& db, const Clock& clock) {
  db.RegisterMigration("metrics", 1, R"sql(
    CREATE TABLE metrics (
      id INTEGER PRIMARY KEY,
      account TEXT NOT NULL,
      region TEXT NOT NULL,
      namespace TEXT NOT NULL,
      name TEXT NOT NULL,
      dims TEXT NOT NULL,
      last_put REAL NOT NULL,
      UNIQUE (account, region, namespace, name, dims)
    );
    CREATE INDEX metrics_by_name ON metrics (account, region, name);
    CREATE TABLE metric_buckets (
      metric_id INTEGER NOT NULL,
      ts INTEGER NOT NULL,
      res INTEGER NOT NULL,
      unit INTEGER NOT NULL,
      n REAL NOT NULL,
      sum REAL NOT NULL,
      min REAL NOT NULL,
      max REAL NOT NULL,
      hist BLOB,
      PRIMARY KEY (metric_id, ts, res, unit)
    ) WITHOUT ROWID;
  )sql");
  AlarmStore::RegisterMigrations(db);
  // Finds the 1-second buckets that ExpireData rolls up without a scan; only those rows
  // pay for the index.
  db.RegisterMigration("metrics", 3,
                       "CREATE INDEX metric_buckets_high_resolution ON metric_buckets (ts) "
                       "WHERE res = 1;");
  NIMBUS_RETURN_IF_ERROR(db.Migrate());
  return std::unique_ptr<MetricStore>(new MetricStore(db, clock));
}

Status MetricStore::Put(const std::string& account, const std::string& region,
                        const std::string& ns, const std::vector<MetricDatum>& data) {
  const double now = clock_.Now();
  if (ns.empty()) return MissingParameter("The parameter Namespace is required.");
  if (data.empty()) return MissingParameter("The parameter MetricData is required.");
  if (data.size() > kMaxDatums) {
    return InvalidValue("The collection MetricData must not have a size greater than " +
                        std::to_string(kMaxDatums) + ".");
  }

  // Roll the batch up in memory: one Aggregate per (metric, unit, resolution, bucket).
  struct Metric {
    std::string name;
    std::string dims_json;
    std::string cache_key;
    int64_t id = 0;
  };
  std::vector<Metric> metrics;
  std::unordered_map<std::string, size_t> metric_index;
  using BucketKey = std::tuple<size_t, int64_t, int, int>;  // metric, ts, res, unit
  std::map<BucketKey, Aggregate> buckets;
  for (size_t i = 0; i < data.size(); ++i) {
    const MetricDatum& d = data[i];
    NIMBUS_RETURN_IF_ERROR(ValidateDatum(d, "MetricData.member." + std::to_string(i + 1), now));
    std::string dims_json = DimensionsJson(SortedDimensions(d.dimensions));
    std::string key = CacheKey(account, region, ns, d.metric_name, dims_json);
    auto [it, inserted] = metric_index.try_emplace(key, metrics.size());
    if (inserted) metrics.push_back({d.metric_name, std::move(dims_json), key, 0});
    const double t = d.timestamp != 0 ? d.timestamp : now;
    const int res = d.storage_resolution;
    const int64_t bucket = static_cast<int64_t>(std::floor(t / res)) * res;
    Aggregate& agg = buckets[{it->second, bucket, res, UnitCode(d.unit)}];
    if (d.value) {
      agg.AddValue(*d.value);
    } else if (d.statistic_values) {
      agg.AddStatisticSet(*d.statistic_values);
    } else {
      for (size_t j = 0; j < d.values.size(); ++j) {
        agg.AddValue(d.values[j], d.counts.empty() ? 1.0 : d.counts[j]);
      }
    }
  }

  // Metric ids: cached ones whose last_put is fresh need no statement at all.
  std::vector<size_t> unknown;
  std::vector<size_t> stale;
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    for (size_t m = 0; m < metrics.size(); ++m) {
      auto it = cache_.find(metrics[m].cache_key);
      if (it == cache_.end()) {
        unknown.push_back(m);
      } else {
        metrics[m].id = it->second.id;
        if (now - it->second.last_put > kLastPutRefresh) stale.push_back(m);
      }
    }
  }

  Status status = db_.WithTransaction([&](store::Session& s) -> Status {
    for (size_t begin = 0; begin < unknown.size(); begin += kRowsPerStatement) {
      const size_t end = std::min(unknown.size(), begin + kRowsPerStatement);
      std::string sql =
          "INSERT INTO metrics (account, region, namespace, name, dims, last_put) VALUES ";
      store::Params params;
      for (size_t k = begin; k < end; ++k) {
        sql += k == begin ? "(?, ?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?, ?)";
        const Metric& m = metrics[unknown[k]];
        params.insert(params.end(), {account, region, ns, m.name, m.dims_json, now});
      }
      sql +=
          " ON CONFLICT (account, region, namespace, name, dims) DO UPDATE SET last_put = "
          "excluded.last_put RETURNING id, name, dims";
      NIMBUS_ASSIGN_OR_RETURN(store::Rows rows, s.Query(sql, params));
      for (const store::Row& row : rows) {
        const std::string key =
            CacheKey(account, region, ns, row.at("name").AsString(), row.at("dims").AsString());
        metrics[metric_index.at(key)].id = row.at("id").AsInt();
      }
    }
    for (size_t begin = 0; begin < stale.size(); begin += kRowsPerStatement) {
      const size_t end = std::min(stale.size(), begin + kRowsPerStatement);
      std::string sql = "UPDATE metrics SET last_put = ? WHERE id IN (";
      store::Params params{now};
      for (size_t k = begin; k < end; ++k) {
        sql += k == begin ? "?" : ", ?";
        params.push_back(metrics[stale[k]].id);
      }
      sql += ")";
      NIMBUS_RETURN_IF_ERROR(s.Exec(sql, params).status());
    }

    // Read the buckets the batch touches, merge, write back.
    std::map<BucketRowKey, Aggregate> rows;
    for (auto& [key, agg] : buckets) {
      if (agg.sample_count <= 0) continue;  // every count was zero
      const auto& [m, ts, res, unit] = key;
      rows.emplace(BucketRowKey{metrics[m].id, ts, res, unit}, std::move(agg));
    }
    return MergeBuckets(s, rows);
  });
  if (!status.ok()) return status;

  // Only committed ids enter the cache.
  std::lock_guard<std::mutex> lock(cache_mu_);
  for (size_t m : unknown) cache_[metrics[m].cache_key] = {metrics[m].id, now};
  for (size_t m : stale) cache_[metrics[m].cache_key].last_put = now;
  return Status::Ok();
}

Result<int64_t> MetricStore::FindMetricId(const std::string& account, const std::string& region,
                                          const MetricKey& metric) {
  const std::string dims_json = DimensionsJson(SortedDimensions(metric.dimensions));
  const std::string key = CacheKey(account, region, metric.ns, metric.name, dims_json);
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second.id;
  }
  NIMBUS_ASSIGN_OR_RETURN(
      store::Rows rows,
      db_.Query("SELECT id, last_put FROM metrics WHERE account = ? AND region = ? AND "
                "namespace = ? AND name = ? AND dims = ?",
                {account, region, metric.ns, metric.name, dims_json}));
  if (rows.empty()) return int64_t{0};
  const int64_t id = rows[0].at("id").AsInt();
  std::lock_guard<std::mutex> lock(cache_mu_);
  cache_.try_emplace(key, CachedMetric{id, rows[0].at("last_put").AsDouble()});
  return id;
}

Result<std::vector<PeriodAggregate>> MetricStore::Aggregates(
    const std::string& account, const std::string& region, const MetricKey& metric, double start,
    double end, int period, const std::string& unit, bool by_unit, bool with_distribution) {
  std::vector<PeriodAggregate> out;
  if (period <= 0 || !(start < end)) return out;
  NIMBUS_ASSIGN_OR_RETURN(int64_t id, FindMetricId(account, region, metric));
  if (id == 0) return out;
  const int unit_code = UnitCode(unit);
  if (unit_code < 0) return InvalidValue("The value " + unit + " for parameter Unit is invalid.");
  const std::string unit_clause = unit.empty() ? "" : " AND unit = ?";
  // Buckets whose start lies in [start, end): ts >= ceil(start), ts < end.
  const int64_t lo = static_cast<int64_t>(std::ceil(start));
  const int64_t hi = static_cast<int64_t>(std::ceil(end));

  if (!with_distribution) {
    // The database sums the buckets of each period: only one row per period comes back.
    std::string sql =
        "SELECT CAST((ts - ?) / ? AS INTEGER) AS k, " + std::string(by_unit ? "unit" : "0") +
        " AS u, sum(n) AS n, sum(sum) AS s, min(min) AS lo, max(max) AS hi FROM metric_buckets "
        "WHERE metric_id = ? AND ts >= ? AND ts < ?" +
        unit_clause + " GROUP BY k, u ORDER BY k, u";
    store::Params params{start, static_cast<double>(period), id, lo, hi};
    if (!unit.empty()) params.push_back(unit_code);
    NIMBUS_ASSIGN_OR_RETURN(store::Rows rows, db_.Query(sql, params));
    out.reserve(rows.size());
    for (const store::Row& row : rows) {
      PeriodAggregate p;
      p.timestamp = start + static_cast<double>(row.at("k").AsInt()) * period;
      p.unit = by_unit ? UnitName(row.at("u").AsInt()) : (unit.empty() ? "" : unit);
      p.aggregate.sample_count = row.at("n").AsDouble();
      p.aggregate.sum = row.at("s").AsDouble();
      p.aggregate.minimum = row.at("lo").AsDouble();
      p.aggregate.maximum = row.at("hi").AsDouble();
      p.aggregate.has_distribution = false;
      out.push_back(std::move(p));
    }
    return out;
  }

  std::string sql =
      "SELECT ts, unit, n, sum, min, max, hist FROM metric_buckets WHERE metric_id = ? AND "
      "ts >= ? AND ts < ?" +
      unit_clause + " ORDER BY ts";
  store::Params params{id, lo, hi};
  if (!unit.empty()) params.push_back(unit_code);
  NIMBUS_ASSIGN_OR_RETURN(store::Rows rows, db_.Query(sql, params));
  std::map<std::pair<int64_t, int64_t>, Aggregate> periods;
  for (const store::Row& row : rows) {
    const int64_t k = static_cast<int64_t>((row.at("ts").AsDouble() - start) / period);
    periods[{k, by_unit ? row.at("unit").AsInt() : 0}].Merge(AggregateFromRow(row));
  }
  out.reserve(periods.size());
  for (auto& [key, agg] : periods) {
    PeriodAggregate p;
    p.timestamp = start + static_cast<double>(key.first) * period;
    p.unit = by_unit ? UnitName(key.second) : unit;
    p.aggregate = std::move(agg);
    out.push_back(std::move(p));
  }
  return out;
}

double MetricStore::AlignStart(double start, int period, double now) {
  const double age = now - start;
  double granularity = 3600;
  if (period < 60) {
    granularity = period;
  } else if (age <= 15 * kDay) {
    granularity = 60;
  } else if (age <= 63 * kDay) {
    granularity = 300;
  }
  return std::floor(start / granularity) * granularity;
}

Result<std::vector<StatisticsDatapoint>> MetricStore::GetStatistics(
    const std::string& account, const std::string& region, const StatisticsRequest& request) {
  if (request.metric.ns.empty()) return MissingParameter("The parameter Namespace is required.");
  if (request.metric.name.empty()) return MissingParameter("The parameter MetricName is required.");
  if (request.statistics.empty() && request.extended_statistics.empty()) {
    return MissingParameter("The parameter Statistics or ExtendedStatistics is required.");
  }
  NIMBUS_RETURN_IF_ERROR(CheckPeriod(request.period, "Period", false));
  if (!(request.start_time < request.end_time)) {
    return InvalidValue("The parameter StartTime must be less than the parameter EndTime.");
  }
  std::vector<Statistic> basic, extended;
  for (const std::string& name : request.statistics) {
    NIMBUS_ASSIGN_OR_RETURN(Statistic s, Statistic::Parse(name));
    if (s.is_extended()) {
      return InvalidValue("The value " + name + " for parameter Statistics is not supported: " +
                          "pass it in ExtendedStatistics.");
    }
    basic.push_back(std::move(s));
  }
  for (const std::string& name : request.extended_statistics) {
    NIMBUS_ASSIGN_OR_RETURN(Statistic s, Statistic::Parse(name));
    if (!s.is_extended()) {
      return InvalidValue("The value " + name + " for parameter ExtendedStatistics is not " +
                          "supported: pass it in Statistics.");
    }
    extended.push_back(std::move(s));
  }
  const double now = clock_.Now();
  const double start = AlignStart(request.start_time, request.period, now);
  const auto points = static_cast<int64_t>(std::ceil((request.end_time - start) / request.period));
  if (points > kMaxStatisticsDatapoints) {
    return InvalidCombination("You have requested up to " + WithCommas(points) +
                              " datapoints, which exceeds the limit of " +
                              WithCommas(kMaxStatisticsDatapoints) +
                              ". You may reduce the datapoints requested by increasing Period, "
                              "or decreasing the time range.");
  }
  NIMBUS_ASSIGN_OR_RETURN(
      std::vector<PeriodAggregate> periods,
      Aggregates(account, region, request.metric, start, request.end_time, request.period,
                 request.unit, request.unit.empty(), !extended.empty()));
  std::vector<StatisticsDatapoint> out;
  out.reserve(periods.size());
  for (const PeriodAggregate& p : periods) {
    StatisticsDatapoint d;
    d.timestamp = p.timestamp;
    d.unit = p.unit.empty() ? "None" : p.unit;
    for (const Statistic& s : basic) {
      if (auto v = s.Compute(p.aggregate)) d.statistics[s.name()] = *v;
    }
    for (const Statistic& s : extended) {
      if (auto v = s.Compute(p.aggregate)) d.extended_statistics[s.name()] = *v;
    }
    out.push_back(std::move(d));
  }
  return out;
}

Result<MetricDataResponse> MetricStore::GetMetricData(const std::string& account,
                                                      const std::string& region,
                                                      const MetricDataRequest& request) {
  const auto& queries = request.queries;
  if (queries.empty()) return MissingParameter("The parameter MetricDataQueries is required.");
  if (queries.size() > kMaxQueries) {
    return ValidationError("The collection MetricDataQueries must not have a size greater than " +
                           std::to_string(kMaxQueries) + ".");
  }
  if (!(request.start_time < request.end_time)) {
    return ValidationError("The parameter StartTime must be less than the parameter EndTime.");
  }
  if (request.max_datapoints <= 0) {
    return ValidationError("The parameter MaxDatapoints must be greater than 0.");
  }
  size_t offset = 0;
  if (!request.next_token.empty()) {
    auto rest = DecodeToken(request.next_token, "gmd1:");
    auto parsed = rest ? ParseInt(*rest) : std::nullopt;
    if (!parsed || *parsed < 0) return InvalidNextToken();
    offset = static_cast<size_t>(*parsed);
  }

  std::map<std::string, size_t, std::less<>> by_id;
  std::vector<std::optional<Statistic>> stats(queries.size());
  std::vector<std::optional<MathExpression>> expressions(queries.size());
  std::vector<std::string> metric_ids;
  int min_period = 0;
  for (size_t i = 0; i < queries.size(); ++i) {
    const MetricDataQuery& q = queries[i];
    const std::string member = "MetricDataQueries.member." + std::to_string(i + 1);
    if (!ValidQueryId(q.id)) {
      return ValidationError("The value " + q.id + " for parameter " + member +
                             ".Id is invalid: an id starts with a lowercase letter and holds " +
                             "only letters, digits and underscores.");
    }
    if (!by_id.emplace(q.id, i).second) {
      return ValidationError("The value " + q.id + " for parameter " + member +
                             ".Id is not unique.");
    }
    if (q.metric_stat.has_value() == !q.expression.empty()) {
      return ValidationError("The parameter " + member + " must contain exactly one of " +
                             "MetricStat and Expression.");
    }
    if (q.metric_stat) {
      const MetricStat& ms = *q.metric_stat;
      if (ms.metric.ns.empty() || ms.metric.name.empty()) {
        return ValidationError("The parameter " + member +
                               ".MetricStat.Metric must name a Namespace and a MetricName.");
      }
      NIMBUS_RETURN_IF_ERROR(CheckPeriod(ms.period, member + ".MetricStat.Period", true));
      auto stat = Statistic::Parse(ms.stat);
      if (!stat.ok()) return ValidationError(stat.status().message());
      stats[i] = std::move(stat).value();
      metric_ids.push_back(q.id);
      min_period = min_period == 0 ? ms.period : std::min(min_period, ms.period);
    } else {
      auto parsed = MathExpression::Parse(q.expression);
      if (!parsed.ok()) {
        return ValidationError("Error in expression " + q.id + ": " + parsed.status().message());
      }
      if (q.period != 0) {
        NIMBUS_RETURN_IF_ERROR(CheckPeriod(q.period, member + ".Period", true));
      }
      expressions[i] = std::move(parsed).value();
    }
  }
  const double now = clock_.Now();
  const int default_period = min_period == 0 ? 60 : min_period;

  // Each query's value, computed once; expressions may refer to any other query.
  std::vector<std::optional<MathValue>> memo(queries.size());
  std::vector<bool> visiting(queries.size(), false);
  std::function<Result<MathValue>(size_t)> compute = [&](size_t i) -> Result<MathValue> {
    if (memo[i]) return *memo[i];
    const MetricDataQuery& q = queries[i];
    if (visiting[i]) {
      return ValidationError("Error in expression " + q.id + ": it refers to itself.");
    }
    MathValue value;
    if (q.metric_stat) {
      const MetricStat& ms = *q.metric_stat;
      const Statistic& stat = *stats[i];
      const double start = AlignStart(request.start_time, ms.period, now);
      NIMBUS_ASSIGN_OR_RETURN(std::vector<PeriodAggregate> periods,
                              Aggregates(account, region, ms.metric, start, request.end_time,
                                         ms.period, ms.unit, false, stat.needs_distribution()));
      TimeSeries series;
      series.id = q.id;
      series.label = q.label.empty() ? ms.metric.name : q.label;
      series.period = ms.period;
      for (const PeriodAggregate& p : periods) {
        if (auto v = stat.Compute(p.aggregate)) {
          series.timestamps.push_back(p.timestamp);
          series.values.push_back(*v);
        }
      }
      value = MathValue::Series(std::move(series));
    } else {
      visiting[i] = true;
      MathContext ctx;
      ctx.metric_ids = metric_ids;
      const int period = q.period != 0 ? q.period : default_period;
      ctx.start = AlignStart(request.start_time, period, now);
      ctx.end = request.end_time;
      ctx.resolve = [&](std::string_view id) -> Result<MathValue> {
        auto it = by_id.find(id);
        if (it == by_id.end()) {
          return ValidationError("Error in expression " + q.id + ": Unrecognized id " +
                                 std::string(id) + ".");
        }
        return compute(it->second);
      };
      auto result = expressions[i]->Evaluate(ctx);
      visiting[i] = false;
      if (!result.ok()) {
        const std::string& msg = result.status().message();
        if (StartsWith(msg, "Error in expression")) return result.status();
        return ValidationError("Error in expression " + q.id + ": " + msg);
      }
      value = std::move(result).value();
      for (TimeSeries& s : value.series) {
        if (value.kind == MathValue::Kind::kSeries) {
          s.label = q.label.empty() ? q.id : q.label;
        } else if (s.label.empty()) {
          s.label = q.label.empty() ? q.id : q.label;
        }
        s.id = q.id;
        if (s.period == 0) s.period = period;
      }
    }
    memo[i] = value;
    return value;
  };

  MetricDataResponse response;
  std::optional<std::vector<double>> all_timestamps;  // for scalar results
  for (size_t i = 0; i < queries.size(); ++i) {
    NIMBUS_ASSIGN_OR_RETURN(MathValue v, compute(i));
    if (!queries[i].return_data) continue;
    if (v.kind == MathValue::Kind::kScalar) {
      // A scalar is drawn at every timestamp that the request's metrics have.
      if (!all_timestamps) {
        std::set<double> ts;
        for (const std::string& id : metric_ids) {
          NIMBUS_ASSIGN_OR_RETURN(MathValue m, compute(by_id.at(id)));
          for (const TimeSeries& s : m.series) ts.insert(s.timestamps.begin(), s.timestamps.end());
        }
        all_timestamps.emplace(ts.begin(), ts.end());
      }
      MetricDataResult r;
      r.id = queries[i].id;
      r.label = queries[i].label.empty() ? queries[i].id : queries[i].label;
      if (std::isfinite(v.scalar)) {
        r.timestamps = *all_timestamps;
        r.values.assign(r.timestamps.size(), v.scalar);
      }
      response.results.push_back(std::move(r));
      continue;
    }
    for (TimeSeries& s : v.series) {
      MetricDataResult r;
      r.id = queries[i].id;
      r.label = s.label;
      r.timestamps = std::move(s.timestamps);
      r.values = std::move(s.values);
      response.results.push_back(std::move(r));
    }
  }
  for (MetricDataResult& r : response.results) {
    if (!request.scan_ascending) {
      std::reverse(r.timestamps.begin(), r.timestamps.end());
      std::reverse(r.values.begin(), r.values.end());
    }
  }

  // Pages cut the concatenation of every result's points at MaxDatapoints.
  const size_t page_end = offset + static_cast<size_t>(request.max_datapoints);
  size_t position = 0;
  bool more = false;
  for (MetricDataResult& r : response.results) {
    const size_t n = r.timestamps.size();
    const size_t from = std::clamp(offset, position, position + n) - position;
    const size_t to = std::clamp(page_end, position, position + n) - position;
    if (to < n) {
      r.status_code = "PartialData";
      more = true;
    }
    r.timestamps = std::vector<double>(r.timestamps.begin() + from, r.timestamps.begin() + to);
    r.values = std::vector<double>(r.values.begin() + from, r.values.begin() + to);
    position += n;
  }
  if (more) response.next_token = Base64Encode("gmd1:" + std::to_string(page_end));
  return response;
}

Result<ListMetricsResponse> MetricStore::ListMetrics(const std::string& account,
                                                     const std::string& region,
                                                     const ListMetricsRequest& request) {
  int64_t after = 0;
  if (!request.next_token.empty()) {
    auto rest = DecodeToken(request.next_token, "lm1:");
    auto parsed = rest ? ParseInt(*rest) : std::nullopt;
    if (!parsed || *parsed < 0) return InvalidNextToken();
    after = *parsed;
  }
  std::string where = "account = ? AND region = ? AND id > ? AND last_put >= ?";
  store::Params base{account, region};
  store::Params filters{clock_.Now() - kListMetricsWindow};
  if (request.ns) {
    where += " AND namespace = ?";
    filters.push_back(*request.ns);
  }
  if (request.metric_name) {
    where += " AND name = ?";
    filters.push_back(*request.metric_name);
  }
  if (request.recently_active) {
    where += " AND last_put >= ?";
    filters.push_back(clock_.Now() - 3 * 3600);
  }
  const size_t page_size = request.page_size > 0 ? static_cast<size_t>(request.page_size) : 500;
  constexpr int64_t kScanChunk = 1000;

  ListMetricsResponse response;
  std::vector<int64_t> ids;
  // One match past the page tells whether a NextToken is due.
  while (ids.size() <= page_size) {
    store::Params params = base;
    params.push_back(after);
    params.insert(params.end(), filters.begin(), filters.end());
    params.push_back(kScanChunk);
    NIMBUS_ASSIGN_OR_RETURN(
        store::Rows rows, db_.Query("SELECT id, namespace, name, dims FROM metrics WHERE " + where +
                                        " ORDER BY id LIMIT ?",
                                    params));
    for (const store::Row& row : rows) {
      after = row.at("id").AsInt();
      std::vector<Dimension> dims = DimensionsFromJson(row.at("dims").AsString());
      bool match = true;
      for (const DimensionFilter& f : request.dimensions) {
        match = std::any_of(dims.begin(), dims.end(), [&](const Dimension& d) {
          return d.name == f.name && (!f.value || d.value == *f.value);
        });
        if (!match) break;
      }
      if (!match) continue;
      ids.push_back(after);
      if (ids.size() > page_size) break;
      response.metrics.push_back(
          {row.at("namespace").AsString(), row.at("name").AsString(), std::move(dims)});
    }
    if (static_cast<int64_t>(rows.size()) < kScanChunk) break;
  }
  if (ids.size() > page_size) {
    response.next_token = Base64Encode("lm1:" + std::to_string(ids[page_size - 1]));
  }
  return response;
}

Status MetricStore::EvaluateAlarms(double now) { return alarms_->EvaluateAll(now); }

Status MetricStore::ExpireData(double now) {
  // Roll 1-second buckets older than three hours up into their minutes, ten minutes of
  // data per transaction so that writers are never held up for long.
  const auto cutoff = static_cast<int64_t>(std::floor((now - kHighResolutionRetention) / 60)) * 60;
  constexpr int64_t kWindow = 600;
  while (true) {
    NIMBUS_ASSIGN_OR_RETURN(store::Rows oldest,
                            db_.Query("SELECT min(ts) AS t FROM metric_buckets WHERE res = 1"));
    if (oldest.empty() || oldest[0].at("t").is_null()) break;
    const int64_t from = oldest[0].at("t").AsInt() / 60 * 60;
    if (from >= cutoff) break;
    const int64_t to = std::min(from + kWindow, cutoff);
    NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](store::Session& s) -> Status {
      NIMBUS_ASSIGN_OR_RETURN(
          store::Rows rows,
          s.Query("SELECT metric_id, ts, res, unit, n, sum, min, max, hist FROM metric_buckets "
                  "WHERE res = 1 AND ts >= ? AND ts < ?",
                  {from, to}));
      std::map<BucketRowKey, Aggregate> minutes;
      for (const store::Row& row : rows) {
        minutes[{row.at("metric_id").AsInt(), row.at("ts").AsInt() / 60 * 60, 60,
                 static_cast<int>(row.at("unit").AsInt())}]
            .Merge(AggregateFromRow(row));
      }
      NIMBUS_RETURN_IF_ERROR(MergeBuckets(s, minutes));
      return s.Exec("DELETE FROM metric_buckets WHERE res = 1 AND ts >= ? AND ts < ?", {from, to})
          .status();
    }));
  }

  // Drop what is past retention, a few hundred metrics per statement (each deletion is a
  // range of one metric's primary key).
  NIMBUS_ASSIGN_OR_RETURN(store::Rows ids, db_.Query("SELECT id FROM metrics ORDER BY id"));
  const auto expired = static_cast<int64_t>(std::floor(now - kRetention));
  constexpr size_t kMetricsPerStatement = 500;
  for (size_t begin = 0; begin < ids.size(); begin += kMetricsPerStatement) {
    const size_t end = std::min(ids.size(), begin + kMetricsPerStatement);
    std::string sql = "DELETE FROM metric_buckets WHERE ts < ? AND metric_id IN (";
    store::Params params{expired};
    for (size_t i = begin; i < end; ++i) {
      sql += i == begin ? "?" : ", ?";
      params.push_back(ids[i].at("id"));
    }
    NIMBUS_RETURN_IF_ERROR(db_.Exec(sql + ")", params).status());
  }
  return Status::Ok();
}

}  // namespace nimbus::telemetry
