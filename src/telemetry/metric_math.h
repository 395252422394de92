// Metric math: the expression language of CloudWatch's GetMetricData (and of alarms on
// expressions), parsed once into a tree and evaluated over time series.
//
// Grammar (CloudWatch's subset that Nimbus serves):
//   expr    := term (('+' | '-') term)*
//   term    := unary (('*' | '/') unary)*
//   unary   := '-' unary | primary
//   primary := number | id | '(' expr ')' | '[' expr (',' expr)* ']' | FUNC '(' args ')'
// ids start with a lowercase letter (CloudWatch's rule for query ids); functions are
// upper case: SUM AVG MIN MAX STDDEV (of an array: a series, timestamp by timestamp; of
// one series: a scalar), RATE DIFF DIFF_TIME PERIOD ABS CEIL FLOOR LOG LOG10, FILL(x,
// number | REPEAT | LINEAR) and METRICS() / METRICS("text") (the MetricStat queries of the
// request, all or those whose id contains text).
//
// Semantics: a value is a scalar, a series, or an array of series. Arithmetic between two
// series keeps the timestamps both have; with a scalar it applies to every point; with an
// array it applies to each member. Results that are not finite (x/0) are dropped, as
// CloudWatch drops them.
//
// Thread-safety: a parsed MathExpression is immutable; Evaluate may run concurrently.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace nimbus::telemetry {

// Values at ascending timestamps (epoch seconds).
struct TimeSeries {
  std::string id;     // the query the series came from
  std::string label;  // what it is called in results
  int period = 60;    // seconds between grid points
  std::vector<double> timestamps;
  std::vector<double> values;
};

struct MathValue {
  enum class Kind { kScalar, kSeries, kArray };
  Kind kind = Kind::kScalar;
  double scalar = 0;
  std::vector<TimeSeries> series;  // exactly one for kSeries

  static MathValue Scalar(double v);
  static MathValue Series(TimeSeries s);
  static MathValue Array(std::vector<TimeSeries> s);
};

// What an expression can see while it is evaluated.
struct MathContext {
  // The value of the query with this id (a metric's series or another expression's
  // result); an error when there is none.
  std::function<Result<MathValue>(std::string_view id)> resolve;
  // The ids of the request's MetricStat queries, in request order (for METRICS()).
  std::vector<std::string> metric_ids;
  // The grid FILL completes: start + k*period for every such time before end.
  double start = 0;
  double end = 0;
};

class MathExpression {
 public:
  // A ValidationError naming the position and problem when text is not an expression.
  static Result<MathExpression> Parse(std::string_view text);

  // The query ids the expression names directly, in order of first appearance.
  const std::vector<std::string>& references() const { return references_; }
  // True when it calls METRICS(), which depends on every MetricStat query.
  bool uses_metrics() const { return uses_metrics_; }

  Result<MathValue> Evaluate(const MathContext& ctx) const;

  struct Node;

 private:
  std::shared_ptr<const Node> root_;
  std::vector<std::string> references_;
  bool uses_metrics_ = false;
};

}  // namespace nimbus::telemetry
