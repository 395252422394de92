#include "telemetry/metric_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace nimbus::telemetry {
namespace {

TimeSeries Series(std::string id, std::vector<double> ts, std::vector<double> values) {
  TimeSeries s;
  s.id = id;
  s.label = id + "-label";
  s.period = 60;
  s.timestamps = std::move(ts);
  s.values = std::move(values);
  return s;
}

// m1: 1 2 3 4 at 0..180; m2: 10 20 - 40 (no point at 120); err: 0 1 0 2.
class MathTest : public ::testing::Test {
 protected:
  MathTest() {
    series_["m1"] = Series("m1", {0, 60, 120, 180}, {1, 2, 3, 4});
    series_["m2"] = Series("m2", {0, 60, 180}, {10, 20, 40});
    series_["err"] = Series("err", {0, 60, 120, 180}, {0, 1, 0, 2});
    ctx_.metric_ids = {"m1", "m2", "err"};
    ctx_.start = 0;
    ctx_.end = 240;
    ctx_.resolve = [this](std::string_view id) -> Result<MathValue> {
      auto it = series_.find(std::string(id));
      if (it == series_.end()) return Status::Validation("unknown id " + std::string(id));
      return MathValue::Series(it->second);
    };
  }

  Result<MathValue> Eval(const std::string& text) {
    auto e = MathExpression::Parse(text);
    if (!e.ok()) return e.status();
    return e->Evaluate(ctx_);
  }

  std::map<std::string, TimeSeries> series_;
  MathContext ctx_;
};

struct SeriesCase {
  const char* expression;
  std::vector<double> timestamps;
  std::vector<double> values;
};

TEST_F(MathTest, SeriesExpressionsEvaluatePointByPoint) {
  const SeriesCase cases[] = {
      {"m1 + 1", {0, 60, 120, 180}, {2, 3, 4, 5}},
      {"2 * m1", {0, 60, 120, 180}, {2, 4, 6, 8}},
      {"m1 + m2", {0, 60, 180}, {11, 22, 44}},  // only timestamps both have
      {"m2 - m1 * 2", {0, 60, 180}, {8, 16, 32}},
      {"(m2 - m1) * 2", {0, 60, 180}, {18, 36, 72}},
      {"-m1", {0, 60, 120, 180}, {-1, -2, -3, -4}},
      {"m1 / err", {60, 180}, {2, 2}},  // x/0 is dropped
      {"100 * err / m1", {0, 60, 120, 180}, {0, 50, 0, 50}},
      {"SUM([m1, m2])", {0, 60, 120, 180}, {11, 22, 3, 44}},  // union of timestamps
      {"AVG([m1, m2])", {0, 60, 120, 180}, {5.5, 11, 3, 22}},
      {"MAX([m1, m2, err])", {0, 60, 120, 180}, {10, 20, 3, 40}},
      {"MIN([m1, m2])", {0, 60, 120, 180}, {1, 2, 3, 4}},
      {"SUM(METRICS())", {0, 60, 120, 180}, {11, 23, 3, 46}},
      {"SUM(METRICS(\"m\"))", {0, 60, 120, 180}, {11, 22, 3, 44}},
      {"RATE(m2)", {60, 180}, {10.0 / 60, 20.0 / 120}},
      {"DIFF(m1)", {60, 120, 180}, {1, 1, 1}},
      {"DIFF_TIME(m2)", {60, 180}, {60, 120}},
      {"PERIOD(m1)", {0, 60, 120, 180}, {60, 60, 60, 60}},
      {"FILL(m2, 0)", {0, 60, 120, 180}, {10, 20, 0, 40}},
      {"FILL(m2, REPEAT)", {0, 60, 120, 180}, {10, 20, 20, 40}},
      {"FILL(m2, LINEAR)", {0, 60, 120, 180}, {10, 20, 30, 40}},
      {"ABS(m1 - 3)", {0, 60, 120, 180}, {2, 1, 0, 1}},
      {"FLOOR(m1 / 2)", {0, 60, 120, 180}, {0, 1, 1, 2}},
      {"m1 - AVG(m1)", {0, 60, 120, 180}, {-1.5, -0.5, 0.5, 1.5}},  // AVG of one series: scalar
      {"1.5e1 + 0 * m1", {0, 60, 120, 180}, {15, 15, 15, 15}},
  };
  for (const SeriesCase& c : cases) {
    SCOPED_TRACE(c.expression);
    auto v = Eval(c.expression);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    ASSERT_EQ(v->kind, MathValue::Kind::kSeries);
    EXPECT_EQ(v->series[0].timestamps, c.timestamps);
    ASSERT_EQ(v->series[0].values.size(), c.values.size());
    for (size_t i = 0; i < c.values.size(); ++i) {
      EXPECT_NEAR(v->series[0].values[i], c.values[i], 1e-9) << "point " << i;
    }
  }
}

TEST_F(MathTest, ScalarExpressions) {
  const std::pair<const char*, double> cases[] = {
      {"1 + 2 * 3", 7},   {"(1 + 2) * 3", 9}, {"10 / 4", 2.5},
      {"-2 - -3", 1},     {"SUM(m1)", 10},    {"AVG(m2)", 70.0 / 3},
      {"MAX(err)", 2},    {"MIN(m2)", 10},    {"STDDEV(m1)", std::sqrt(5.0 / 3)},
      {"LOG10(1000)", 3}, {"CEIL(1.2)", 2},
  };
  for (const auto& [text, want] : cases) {
    SCOPED_TRACE(text);
    auto v = Eval(text);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    ASSERT_EQ(v->kind, MathValue::Kind::kScalar);
    EXPECT_NEAR(v->scalar, want, 1e-9);
  }
}

TEST_F(MathTest, ArraysKeepTheirMembersLabels) {
  auto v = Eval("METRICS() * 2");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->kind, MathValue::Kind::kArray);
  ASSERT_EQ(v->series.size(), 3u);
  EXPECT_EQ(v->series[0].label, "m1-label");
  EXPECT_EQ(v->series[1].values, (std::vector<double>{20, 40, 80}));
  auto filled = Eval("FILL(METRICS(\"m2\"), 5)");
  ASSERT_TRUE(filled.ok());
  ASSERT_EQ(filled->series.size(), 1u);
  EXPECT_EQ(filled->series[0].values, (std::vector<double>{10, 20, 5, 40}));
}

TEST_F(MathTest, ReferencesAreCollectedAtParseTime) {
  auto e = MathExpression::Parse("m1 + SUM([m2, m1]) / e_1");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->references(), (std::vector<std::string>{"m1", "m2", "e_1"}));
  EXPECT_FALSE(e->uses_metrics());
  EXPECT_TRUE(MathExpression::Parse("AVG(METRICS())")->uses_metrics());
}

TEST_F(MathTest, SyntaxErrorsNameThePosition) {
  const std::pair<const char*, const char*> cases[] = {
      {"m1 +", "ends too early"},
      {"(m1 + 2", "expected ')'"},
      {"m1 m2", "position 4"},
      {"M1 + 1", "neither a function call nor a query id"},
      {"1.2.3", "is not a number"},
      {"SUM([m1, m2)", "expected ']'"},
      {"METRICS(\"x)", "unterminated string"},
      {"", "empty"},
      {"m1 # 2", "unexpected '#'"},
  };
  for (const auto& [text, fragment] : cases) {
    SCOPED_TRACE(text);
    auto e = MathExpression::Parse(text);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.status().code(), "ValidationError");
    EXPECT_NE(e.status().message().find(fragment), std::string::npos) << e.status().message();
  }
}

TEST_F(MathTest, EvaluationErrors) {
  const std::pair<const char*, const char*> cases[] = {
      {"NOPE(m1)", "Unrecognized function NOPE"},
      {"m9 + 1", "unknown id m9"},
      {"RATE(5)", "not a scalar"},
      {"FILL(m1)", "takes 2 arguments"},
      {"METRICS() + METRICS()", "two arrays"},
      {"[m1, 2]", "not scalars"},
      {"FILL(m1, m2)", "must be a number"},
      {"REPEAT", "only valid as the second argument of FILL"},
  };
  for (const auto& [text, fragment] : cases) {
    SCOPED_TRACE(text);
    auto v = Eval(text);
    ASSERT_FALSE(v.ok());
    EXPECT_NE(v.status().message().find(fragment), std::string::npos) << v.status().message();
  }
}

}  // namespace
}  // namespace nimbus::telemetry
