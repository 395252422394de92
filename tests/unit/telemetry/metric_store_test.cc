#include "telemetry/metric_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "core/json.h"
#include "telemetry/alarms.h"

namespace nimbus::telemetry {
namespace {

constexpr double kNow = 1700000040;  // a minute boundary
const std::string kAcct = "000000000000";
const std::string kRegion = "us-east-1";

MetricDatum Datum(const std::string& name, double value, double ts,
                  std::vector<Dimension> dims = {}) {
  MetricDatum d;
  d.metric_name = name;
  d.value = value;
  d.timestamp = ts;
  d.dimensions = std::move(dims);
  return d;
}

class MetricStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-metrics-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = store::Database::Open(dir_);
    ASSERT_TRUE(db.ok());
    db_ = std::move(db).value();
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    auto s = MetricStore::Open(*db_, clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  Status Put(const std::string& ns, std::vector<MetricDatum> data) {
    return store_->Put(kAcct, kRegion, ns, data);
  }

  std::vector<StatisticsDatapoint> Stats(const std::string& name, double start, double end,
                                         int period, std::vector<std::string> ext = {},
                                         std::vector<Dimension> dims = {},
                                         const std::string& unit = "") {
    StatisticsRequest r;
    r.metric = {"App", name, std::move(dims)};
    r.start_time = start;
    r.end_time = end;
    r.period = period;
    r.statistics = {"SampleCount", "Sum", "Minimum", "Maximum", "Average"};
    r.extended_statistics = std::move(ext);
    r.unit = unit;
    auto out = store_->GetStatistics(kAcct, kRegion, r);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : std::vector<StatisticsDatapoint>{};
  }

  FakeClock clock_{kNow};
  std::string dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<MetricStore> store_;
};

// ---------------------------------------------------------------------------------------
// ValueSketch

double ExactNearestRank(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * v.size()));
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

TEST(ValueSketchTest, PercentilesAreWithinOnePercentOfTheExactValue) {
  std::mt19937 rng(42);
  std::lognormal_distribution<double> latency(3.0, 1.5);
  std::normal_distribution<double> signed_values(0, 1000);
  for (int dist = 0; dist < 2; ++dist) {
    std::vector<double> values;
    ValueSketch sketch;
    for (int i = 0; i < 100000; ++i) {
      const double v = dist == 0 ? latency(rng) : signed_values(rng);
      values.push_back(v);
      sketch.Add(v);
    }
    const double lo = *std::min_element(values.begin(), values.end());
    const double hi = *std::max_element(values.begin(), values.end());
    for (double q : {0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999}) {
      const double exact = ExactNearestRank(values, q);
      const double approx = sketch.Quantile(q, lo, hi);
      EXPECT_LE(std::fabs(approx - exact),
                ValueSketch::kRelativeAccuracy * std::fabs(exact) + 1e-12)
          << "distribution " << dist << " q " << q << " exact " << exact << " approx " << approx;
    }
    EXPECT_EQ(sketch.Quantile(0, lo, hi), lo);
    EXPECT_EQ(sketch.Quantile(1, lo, hi), hi);
  }
}

TEST(ValueSketchTest, SerializationRoundTripsAndIsCompact) {
  ValueSketch s;
  s.Add(0, 3);
  s.Add(12.5, 2);
  s.Add(-7, 0.25);  // fractional counts survive
  s.Add(1e100);
  const std::string bytes = s.Serialize();
  EXPECT_LT(bytes.size(), 32u);
  ValueSketch back;
  ASSERT_TRUE(ValueSketch::Deserialize(bytes, &back));
  EXPECT_EQ(back.Serialize(), bytes);
  EXPECT_DOUBLE_EQ(back.count(), 6.25);
  EXPECT_FALSE(ValueSketch::Deserialize("garbage", &back));
  EXPECT_FALSE(ValueSketch::Deserialize(bytes.substr(0, bytes.size() - 1), &back));
  ValueSketch one;
  one.Add(42);
  EXPECT_LE(one.Serialize().size(), 8u);
}

TEST(ValueSketchTest, MergeEqualsAddingEverything) {
  ValueSketch a, b, all;
  for (int i = 1; i <= 100; ++i) {
    (i % 2 ? a : b).Add(i);
    all.Add(i);
  }
  a.Merge(b);
  EXPECT_EQ(a.Serialize(), all.Serialize());
}

// ---------------------------------------------------------------------------------------
// Statistic

TEST(StatisticTest, ParsesCloudWatchStatistics) {
  for (const char* ok :
       {"SampleCount", "Average", "Sum",          "Minimum",  "Maximum",      "p99",  "p99.9",
        "p0",          "p100",    "tm90",         "wm99",     "tc90",         "ts90", "TM(10%:90%)",
        "TM(:95%)",    "WM(5%:)", "TC(100:2000)", "TS(:500)", "PR(100:2000)", "IQM"}) {
    EXPECT_TRUE(Statistic::Parse(ok).ok()) << ok;
  }
  for (const char* bad : {"average", "p101", "p", "pabc", "TM(90%:10%)", "TM(10%:500)",
                          "PR(10%:20%)", "TM()", "TM(:)", "XX(1:2)", ""}) {
    auto s = Statistic::Parse(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), "InvalidParameterValue");
  }
  EXPECT_FALSE(Statistic::Parse("Sum")->is_extended());
  EXPECT_TRUE(Statistic::Parse("p50")->is_extended());
}

TEST(StatisticTest, RangeStatisticsOverOneToHundred) {
  Aggregate a;
  for (int i = 1; i <= 100; ++i) a.AddValue(i);
  auto stat = [&](const char* name) { return *Statistic::Parse(name)->Compute(a); };
  EXPECT_DOUBLE_EQ(stat("Average"), 50.5);
  EXPECT_NEAR(stat("p50"), 50, 0.5);
  EXPECT_NEAR(stat("p90"), 90, 0.9);
  EXPECT_NEAR(stat("TM(10%:90%)"), 50.5, 0.5);  // mean of 11..90
  EXPECT_NEAR(stat("TC(10%:90%)"), 80, 1e-9);
  EXPECT_NEAR(stat("tm50"), 25.5, 0.3);          // mean of 1..50
  EXPECT_NEAR(stat("TS(:10.5)"), 55, 0.6);       // 1..10
  EXPECT_NEAR(stat("PR(:25.5)"), 25, 1e-9);      // 25% of values are <= 25
  EXPECT_NEAR(stat("PR(50.5:60.5)"), 10, 1e-9);  // 51..60
  EXPECT_NEAR(stat("IQM"), 50.5, 0.5);
  // Winsorized 10%:90%: 1..10 become ~10, 91..100 become ~90: (100 + 4040 + 900) / 100.
  EXPECT_NEAR(stat("WM(10%:90%)"), 50.4, 0.5);
}

// ---------------------------------------------------------------------------------------
// Rollup

TEST_F(MetricStoreTest, ValuesRollUpIntoOneBucketPerMinute) {
  std::vector<MetricDatum> data;
  for (int i = 0; i < 60; ++i) data.push_back(Datum("Latency", i, kNow - 120 + i));
  ASSERT_TRUE(Put("App", data).ok());
  // 60 datums, one minute: one row.
  auto rows = db_->Query("SELECT count(*) AS n FROM metric_buckets");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0].at("n").AsInt(), 1);

  auto points = Stats("Latency", kNow - 600, kNow, 60, {"p50", "p99"});
  ASSERT_EQ(points.size(), 1u);
  const auto& p = points[0];
  EXPECT_EQ(p.timestamp, kNow - 120);
  EXPECT_EQ(p.unit, "None");
  EXPECT_EQ(p.statistics.at("SampleCount"), 60);
  EXPECT_EQ(p.statistics.at("Sum"), 1770);
  EXPECT_EQ(p.statistics.at("Minimum"), 0);
  EXPECT_EQ(p.statistics.at("Maximum"), 59);
  EXPECT_EQ(p.statistics.at("Average"), 29.5);
  EXPECT_NEAR(p.extended_statistics.at("p50"), 29, 0.3);
  EXPECT_NEAR(p.extended_statistics.at("p99"), 59, 0.6);

  // A second Put into the same minute merges into the same row.
  ASSERT_TRUE(Put("App", {Datum("Latency", 1000, kNow - 90)}).ok());
  points = Stats("Latency", kNow - 600, kNow, 60, {"p100"});
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].statistics.at("SampleCount"), 61);
  EXPECT_EQ(points[0].statistics.at("Maximum"), 1000);
  EXPECT_EQ(points[0].extended_statistics.at("p100"), 1000);
}

TEST_F(MetricStoreTest, StatisticSetsMergeAndLosePercentilesUnlessOneValue) {
  MetricDatum set;
  set.metric_name = "Bytes";
  set.timestamp = kNow - 60;
  set.statistic_values = StatisticValues{10, 500, 5, 100};
  MetricDatum single = Datum("Bytes", 70, kNow - 60);
  ASSERT_TRUE(Put("App", {set, single}).ok());
  auto points = Stats("Bytes", kNow - 300, kNow, 60, {"p90"});
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].statistics.at("SampleCount"), 11);
  EXPECT_EQ(points[0].statistics.at("Sum"), 570);
  EXPECT_EQ(points[0].statistics.at("Minimum"), 5);
  EXPECT_EQ(points[0].statistics.at("Maximum"), 100);
  EXPECT_FALSE(points[0].extended_statistics.count("p90"));  // no distribution

  // A statistic set of one distinct value keeps the distribution.
  MetricDatum same;
  same.metric_name = "Same";
  same.timestamp = kNow - 60;
  same.statistic_values = StatisticValues{4, 20, 5, 5};
  ASSERT_TRUE(Put("App", {same, Datum("Same", 9, kNow - 60)}).ok());
  points = Stats("Same", kNow - 300, kNow, 60, {"p50", "p90"});
  ASSERT_EQ(points.size(), 1u);
  EXPECT_NEAR(points[0].extended_statistics.at("p50"), 5, 0.05);
  EXPECT_NEAR(points[0].extended_statistics.at("p90"), 9, 0.09);
}

TEST_F(MetricStoreTest, ValuesAndCountsExpand) {
  MetricDatum d;
  d.metric_name = "Hist";
  d.timestamp = kNow - 60;
  d.values = {1, 10, 100};
  d.counts = {5, 4, 1};
  MetricDatum ones;
  ones.metric_name = "Hist";
  ones.timestamp = kNow - 50;
  ones.values = {1000};
  ASSERT_TRUE(Put("App", {d, ones}).ok());
  auto points = Stats("Hist", kNow - 300, kNow, 60, {"p50", "p95", "p100"});
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].statistics.at("SampleCount"), 11);
  EXPECT_EQ(points[0].statistics.at("Sum"), 5 + 40 + 100 + 1000);
  EXPECT_NEAR(points[0].extended_statistics.at("p50"), 10, 0.1);  // rank 6 of 11
  EXPECT_NEAR(points[0].extended_statistics.at("p95"), 1000, 10);
  EXPECT_EQ(points[0].extended_statistics.at("p100"), 1000);
}

TEST_F(MetricStoreTest, HighResolutionDataKeepsSeconds) {
  std::vector<MetricDatum> data;
  for (int i = 0; i < 10; ++i) {
    MetricDatum d = Datum("Fast", i, kNow - 10 + i);
    d.storage_resolution = 1;
    data.push_back(d);
  }
  data.push_back(Datum("Fast", 100, kNow - 10));  // standard resolution, same metric
  ASSERT_TRUE(Put("App", data).ok());
  auto per_second = Stats("Fast", kNow - 60, kNow, 1);
  ASSERT_EQ(per_second.size(), 11u);
  EXPECT_EQ(per_second[0].timestamp, kNow - 60);  // the 60 s bucket, at its start
  EXPECT_EQ(per_second[0].statistics.at("Sum"), 100);
  EXPECT_EQ(per_second[1].timestamp, kNow - 10);
  EXPECT_EQ(per_second[4].statistics.at("Sum"), 3);
  auto per_minute = Stats("Fast", kNow - 60, kNow, 60);
  ASSERT_EQ(per_minute.size(), 1u);
  EXPECT_EQ(per_minute[0].statistics.at("SampleCount"), 11);
}

TEST_F(MetricStoreTest, UnitsAndDimensionsSeparateData) {
  MetricDatum ms = Datum("T", 5, kNow - 60, {{"Host", "a"}, {"Az", "1"}});
  ms.unit = "Milliseconds";
  MetricDatum s = Datum("T", 2, kNow - 60, {{"Az", "1"}, {"Host", "a"}});  // same dims, reordered
  s.unit = "Seconds";
  ASSERT_TRUE(Put("App", {ms, s, Datum("T", 1, kNow - 60, {{"Host", "b"}})}).ok());
  const std::vector<Dimension> dims = {{"Host", "a"}, {"Az", "1"}};
  auto points = Stats("T", kNow - 300, kNow, 60, {}, dims);
  ASSERT_EQ(points.size(), 2u);  // one datapoint per unit
  auto only_ms = Stats("T", kNow - 300, kNow, 60, {}, dims, "Milliseconds");
  ASSERT_EQ(only_ms.size(), 1u);
  EXPECT_EQ(only_ms[0].unit, "Milliseconds");
  EXPECT_EQ(only_ms[0].statistics.at("Sum"), 5);
  auto other = Stats("T", kNow - 300, kNow, 60, {}, {{"Host", "b"}});
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].statistics.at("Sum"), 1);
  EXPECT_TRUE(Stats("T", kNow - 300, kNow, 60).empty());  // no dimensions: another metric
}

TEST_F(MetricStoreTest, ExpireDataRollsUpSecondsAndDropsOldData) {
  std::vector<MetricDatum> data;
  for (int i = 0; i < 120; ++i) {
    MetricDatum d = Datum("Fast", i, kNow - 120 + i);
    d.storage_resolution = 1;
    data.push_back(d);
  }
  ASSERT_TRUE(Put("App", data).ok());
  ASSERT_TRUE(Put("App", {Datum("Fast", 1000, kNow - 90)}).ok());  // a 60 s bucket too
  auto count_rows = [&](const char* where) {
    auto rows = db_->Query(std::string("SELECT count(*) AS n FROM metric_buckets WHERE ") + where);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? (*rows)[0].at("n").AsInt() : -1;
  };
  EXPECT_EQ(count_rows("res = 1"), 120);
  const auto before = Stats("Fast", kNow - 120, kNow, 60, {"p50"});

  ASSERT_TRUE(store_->ExpireData(kNow + 3600).ok());  // younger than three hours: kept
  EXPECT_EQ(count_rows("res = 1"), 120);
  ASSERT_TRUE(store_->ExpireData(kNow + 3 * 3600 + 60).ok());
  EXPECT_EQ(count_rows("res = 1"), 0);
  EXPECT_EQ(count_rows("res = 60"), 2);
  const auto after = Stats("Fast", kNow - 120, kNow, 60, {"p50"});
  ASSERT_EQ(after.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(after[i].timestamp, before[i].timestamp);
    EXPECT_EQ(after[i].statistics, before[i].statistics);
    EXPECT_EQ(after[i].extended_statistics, before[i].extended_statistics);
  }
  EXPECT_EQ(after[0].statistics.at("SampleCount"), 61);

  // Two weeks without data: not listed any more. 455 days: gone.
  clock_.Advance(15 * 86400);
  EXPECT_TRUE(store_->ListMetrics(kAcct, kRegion, {})->metrics.empty());
  ASSERT_TRUE(store_->ExpireData(kNow + 456 * 86400).ok());
  EXPECT_EQ(count_rows("1 = 1"), 0);
}

TEST_F(MetricStoreTest, DataSurvivesReopening) {
  ASSERT_TRUE(Put("App", {Datum("Durable", 7, kNow - 60)}).ok());
  Reopen();
  auto points = Stats("Durable", kNow - 300, kNow, 60);
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].statistics.at("Sum"), 7);
  ASSERT_TRUE(Put("App", {Datum("Durable", 3, kNow - 60)}).ok());
  EXPECT_EQ(Stats("Durable", kNow - 300, kNow, 60)[0].statistics.at("Sum"), 10);
}

TEST_F(MetricStoreTest, PutRejectsBadDataAsCloudWatchDoes) {
  struct Case {
    const char* what;
    std::function<void(MetricDatum&)> mutate;
    const char* code;
    const char* fragment;
  };
  const Case cases[] = {
      {"nan", [](MetricDatum& d) { d.value = std::nan(""); }, "InvalidParameterValue",
       "MetricData.member.2.Value"},
      {"inf", [](MetricDatum& d) { d.value = INFINITY; }, "InvalidParameterValue", "Value"},
      {"too big", [](MetricDatum& d) { d.value = 1e200; }, "InvalidParameterValue", "out of range"},
      {"too small", [](MetricDatum& d) { d.value = 1e-200; }, "InvalidParameterValue",
       "out of range"},
      {"value and set",
       [](MetricDatum& d) {
         d.statistic_values = StatisticValues{1, 1, 1, 1};
       },
       "InvalidParameterCombination", "mutually exclusive"},
      {"nothing", [](MetricDatum& d) { d.value.reset(); }, "MissingParameter", "Value"},
      {"counts size",
       [](MetricDatum& d) {
         d.value.reset();
         d.values = {1, 2};
         d.counts = {1};
       },
       "InvalidParameterCombination", "same size"},
      {"31 dimensions",
       [](MetricDatum& d) {
         for (int i = 0; i < 31; ++i) d.dimensions.push_back({"d" + std::to_string(i), "v"});
       },
       "InvalidParameterValue", "Dimensions"},
      {"duplicate dimension",
       [](MetricDatum& d) {
         d.dimensions = {{"a", "1"}, {"a", "2"}};
       },
       "InvalidParameterValue", "duplicate"},
      {"resolution", [](MetricDatum& d) { d.storage_resolution = 5; }, "InvalidParameterValue",
       "StorageResolution"},
      {"unit", [](MetricDatum& d) { d.unit = "Furlongs"; }, "InvalidParameterValue", "Unit"},
      {"old", [](MetricDatum& d) { d.timestamp = kNow - 15 * 86400; }, "InvalidParameterValue",
       "two weeks"},
      {"future", [](MetricDatum& d) { d.timestamp = kNow + 3 * 3600; }, "InvalidParameterValue",
       "two hours"},
      {"bad set",
       [](MetricDatum& d) {
         d.value.reset();
         d.statistic_values = StatisticValues{2, 10, 9, 1};
       },
       "InvalidParameterValue", "Minimum"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    MetricDatum d = Datum("Bad", 1, kNow - 60);
    c.mutate(d);
    Status s = Put("App", {Datum("Good", 1, kNow - 60), d});
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), c.code);
    EXPECT_NE(s.message().find(c.fragment), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("member.2"), std::string::npos) << s.message();
  }
  // Nothing of a rejected batch is stored.
  EXPECT_TRUE(Stats("Good", kNow - 300, kNow, 60).empty());
  std::vector<MetricDatum> too_many(1001, Datum("X", 1, kNow));
  EXPECT_EQ(Put("App", too_many).code(), "InvalidParameterValue");
}

TEST_F(MetricStoreTest, GetStatisticsValidatesAsCloudWatchDoes) {
  StatisticsRequest r;
  r.metric = {"App", "M", {}};
  r.start_time = kNow - 86400 - 30;  // rounded down to the minute: 1,441 minutes
  r.end_time = kNow;
  r.period = 60;
  r.statistics = {"Sum"};
  auto too_many = store_->GetStatistics(kAcct, kRegion, r);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.status().code(), "InvalidParameterCombination");
  EXPECT_EQ(too_many.status().message(),
            "You have requested up to 1,441 datapoints, which exceeds the limit of 1,440. You "
            "may reduce the datapoints requested by increasing Period, or decreasing the time "
            "range.");
  r.period = 120;
  EXPECT_TRUE(store_->GetStatistics(kAcct, kRegion, r).ok());
  r.period = 90;
  EXPECT_EQ(store_->GetStatistics(kAcct, kRegion, r).status().code(), "InvalidParameterValue");
  r.period = 60;
  r.start_time = kNow;
  EXPECT_EQ(store_->GetStatistics(kAcct, kRegion, r).status().code(), "InvalidParameterValue");
  r.start_time = kNow - 600;
  r.statistics = {"p99"};
  EXPECT_EQ(store_->GetStatistics(kAcct, kRegion, r).status().code(), "InvalidParameterValue");
  r.statistics.clear();
  EXPECT_EQ(store_->GetStatistics(kAcct, kRegion, r).status().code(), "MissingParameter");
}

TEST_F(MetricStoreTest, StartTimeIsRoundedAsCloudWatchRoundsIt) {
  EXPECT_EQ(MetricStore::AlignStart(kNow - 3600 + 34, 300, kNow), kNow - 3600);
  EXPECT_EQ(MetricStore::AlignStart(kNow - 20 * 86400 + 100, 300, kNow),
            std::floor((kNow - 20 * 86400 + 100) / 300) * 300);
  EXPECT_EQ(MetricStore::AlignStart(kNow - 70 * 86400 + 100, 3600, kNow),
            std::floor((kNow - 70 * 86400 + 100) / 3600) * 3600);
  EXPECT_EQ(MetricStore::AlignStart(kNow - 7, 5, kNow), kNow - 10);
}

// ---------------------------------------------------------------------------------------
// ListMetrics

TEST_F(MetricStoreTest, ListMetricsFiltersAndPages) {
  std::vector<MetricDatum> data;
  for (int i = 0; i < 7; ++i) {
    data.push_back(Datum("Requests", 1, kNow - 60, {{"Host", "h" + std::to_string(i)}}));
  }
  data.push_back(Datum("Errors", 1, kNow - 60, {{"Host", "h1"}, {"Code", "500"}}));
  ASSERT_TRUE(Put("App", data).ok());
  ASSERT_TRUE(Put("Other", {Datum("Requests", 1, kNow - 60)}).ok());

  ListMetricsRequest all;
  auto out = store_->ListMetrics(kAcct, kRegion, all);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->metrics.size(), 9u);
  EXPECT_TRUE(out->next_token.empty());

  ListMetricsRequest by_ns;
  by_ns.ns = "Other";
  EXPECT_EQ(store_->ListMetrics(kAcct, kRegion, by_ns)->metrics.size(), 1u);
  ListMetricsRequest by_dim;
  by_dim.dimensions = {{"Host", std::string("h1")}};
  out = store_->ListMetrics(kAcct, kRegion, by_dim);
  ASSERT_EQ(out->metrics.size(), 2u);
  by_dim.dimensions = {{"Code", std::nullopt}};
  out = store_->ListMetrics(kAcct, kRegion, by_dim);
  ASSERT_EQ(out->metrics.size(), 1u);
  EXPECT_EQ(out->metrics[0].name, "Errors");
  // Dimensions come back sorted by name.
  EXPECT_EQ(out->metrics[0].dimensions[0].name, "Code");

  ListMetricsRequest paged;
  paged.page_size = 4;
  std::vector<std::string> seen;
  for (int page = 0; page < 5; ++page) {
    auto p = store_->ListMetrics(kAcct, kRegion, paged);
    ASSERT_TRUE(p.ok());
    for (const auto& m : p->metrics) seen.push_back(m.ns + "/" + m.name);
    if (p->next_token.empty()) break;
    paged.next_token = p->next_token;
  }
  EXPECT_EQ(seen.size(), 9u);
  paged.next_token = "bogus";
  EXPECT_EQ(store_->ListMetrics(kAcct, kRegion, paged).status().code(), "InvalidNextToken");

  // RecentlyActive: published in the last three hours. Another account sees nothing.
  clock_.Advance(4 * 3600);
  ASSERT_TRUE(Put("App", {Datum("Fresh", 1, 0)}).ok());
  ListMetricsRequest recent;
  recent.recently_active = true;
  out = store_->ListMetrics(kAcct, kRegion, recent);
  ASSERT_EQ(out->metrics.size(), 1u);
  EXPECT_EQ(out->metrics[0].name, "Fresh");
  EXPECT_TRUE(store_->ListMetrics("111111111111", kRegion, all)->metrics.empty());
  EXPECT_TRUE(store_->ListMetrics(kAcct, "eu-west-1", all)->metrics.empty());
}

// ---------------------------------------------------------------------------------------
// GetMetricData

TEST_F(MetricStoreTest, GetMetricDataRunsStatsAndExpressionsAndPages) {
  std::vector<MetricDatum> data;
  for (int i = 0; i < 5; ++i) {
    data.push_back(Datum("Requests", 10 * (i + 1), kNow - 300 + 60 * i));
    data.push_back(Datum("Errors", i, kNow - 300 + 60 * i));
  }
  ASSERT_TRUE(Put("App", data).ok());
  MetricDataRequest r;
  r.start_time = kNow - 300;
  r.end_time = kNow;
  MetricDataQuery req{"req", MetricStat{{"App", "Requests", {}}, 60, "Sum", ""}, "", "", false, 0};
  MetricDataQuery err{"err", MetricStat{{"App", "Errors", {}}, 60, "Sum", ""}, "", "", true, 0};
  MetricDataQuery rate{"rate", std::nullopt, "100 * err / req", "Error rate", true, 0};
  MetricDataQuery total{"total", std::nullopt, "SUM(req)", "", true, 0};
  r.queries = {req, err, rate, total};
  auto out = store_->GetMetricData(kAcct, kRegion, r);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->results.size(), 3u);  // req has ReturnData false
  const MetricDataResult& e = out->results[0];
  EXPECT_EQ(e.id, "err");
  EXPECT_EQ(e.label, "Errors");
  EXPECT_EQ(e.timestamps.front(), kNow - 60);  // descending by default
  EXPECT_EQ(e.values, (std::vector<double>{4, 3, 2, 1, 0}));
  const MetricDataResult& rr = out->results[1];
  EXPECT_EQ(rr.label, "Error rate");
  const std::vector<double> want_rate = {8, 7.5, 200.0 / 30, 5, 0};
  ASSERT_EQ(rr.values.size(), want_rate.size());
  for (size_t i = 0; i < want_rate.size(); ++i) EXPECT_NEAR(rr.values[i], want_rate[i], 1e-9);
  const MetricDataResult& t = out->results[2];
  EXPECT_EQ(t.values, std::vector<double>(5, 150));  // a scalar at every timestamp
  EXPECT_EQ(t.status_code, "Complete");

  // Ascending, two points per page.
  r.scan_ascending = true;
  r.max_datapoints = 2;
  r.queries = {err};
  std::vector<double> values;
  for (int page = 0; page < 5; ++page) {
    auto p = store_->GetMetricData(kAcct, kRegion, r);
    ASSERT_TRUE(p.ok());
    values.insert(values.end(), p->results[0].values.begin(), p->results[0].values.end());
    if (p->next_token.empty()) {
      EXPECT_EQ(p->results[0].status_code, "Complete");
      break;
    }
    EXPECT_EQ(p->results[0].status_code, "PartialData");
    r.next_token = p->next_token;
  }
  EXPECT_EQ(values, (std::vector<double>{0, 1, 2, 3, 4}));
}

TEST_F(MetricStoreTest, GetMetricDataValidation) {
  MetricDataRequest r;
  r.start_time = kNow - 300;
  r.end_time = kNow;
  MetricDataQuery m{"m1", MetricStat{{"App", "X", {}}, 60, "Sum", ""}, "", "", true, 0};
  auto code_of = [&](std::vector<MetricDataQuery> qs) {
    r.queries = std::move(qs);
    auto out = store_->GetMetricData(kAcct, kRegion, r);
    return out.ok() ? std::string("ok") : out.status().code() + ": " + out.status().message();
  };
  EXPECT_EQ(code_of({m}), "ok");
  MetricDataQuery bad_id = m;
  bad_id.id = "M1";
  EXPECT_NE(code_of({bad_id}).find("ValidationError"), std::string::npos);
  EXPECT_NE(code_of({m, m}).find("not unique"), std::string::npos);
  MetricDataQuery bad_period = m;
  bad_period.metric_stat->period = 61;
  EXPECT_NE(code_of({bad_period}).find("Period"), std::string::npos);
  MetricDataQuery bad_stat = m;
  bad_stat.metric_stat->stat = "Median";
  EXPECT_NE(code_of({bad_stat}).find("Median"), std::string::npos);
  MetricDataQuery expr{"e1", std::nullopt, "m1 +", "", true, 0};
  EXPECT_NE(code_of({m, expr}).find("Error in expression e1"), std::string::npos);
  MetricDataQuery unknown{"e1", std::nullopt, "m2 * 2", "", true, 0};
  EXPECT_NE(code_of({m, unknown}).find("Unrecognized id m2"), std::string::npos);
  MetricDataQuery loop{"e1", std::nullopt, "e1 * 2", "", true, 0};
  EXPECT_NE(code_of({loop}).find("refers to itself"), std::string::npos);
  MetricDataQuery both = m;
  both.expression = "1";
  EXPECT_NE(code_of({both}).find("exactly one"), std::string::npos);
  r.next_token = "nope";
  EXPECT_NE(code_of({m}).find("InvalidNextToken"), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// Alarms

class AlarmTest : public MetricStoreTest {
 protected:
  MetricAlarm Alarm(const std::string& name) {
    MetricAlarm a;
    a.name = name;
    a.metric = {"App", "Latency", {{"Host", "a"}}};
    a.statistic = "Average";
    a.period = 60;
    a.evaluation_periods = 1;
    a.threshold = 3;
    a.comparison_operator = "GreaterThanThreshold";
    return a;
  }
  MetricAlarm Get(const std::string& name) {
    auto a = store_->alarms().Get(kAcct, kRegion, name);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? *a : MetricAlarm{};
  }
  Status PutLatency(double value, double ts) {
    return Put("App", {Datum("Latency", value, ts, {{"Host", "a"}})});
  }
};

TEST_F(AlarmTest, TransitionsFollowTheData) {
  // 2023-11-14 22:13:00 UTC is kNow - 60.
  ASSERT_TRUE(store_->alarms().PutMetricAlarm(kAcct, kRegion, Alarm("high")).ok());
  MetricAlarm a = Get("high");
  EXPECT_EQ(a.arn, "arn:aws:cloudwatch:us-east-1:000000000000:alarm:high");
  EXPECT_EQ(a.state_value, "INSUFFICIENT_DATA");
  EXPECT_EQ(a.state_reason, "Unchecked: Initial alarm creation");

  ASSERT_TRUE(PutLatency(5, kNow + 30).ok());  // in the current, incomplete minute
  ASSERT_TRUE(store_->EvaluateAlarms(kNow).ok());
  EXPECT_EQ(Get("high").state_value, "INSUFFICIENT_DATA");

  clock_.Advance(60);  // that minute is complete now
  ASSERT_TRUE(store_->EvaluateAlarms(clock_.Now()).ok());
  a = Get("high");
  EXPECT_EQ(a.state_value, "ALARM");
  EXPECT_EQ(a.state_reason,
            "Threshold Crossed: 1 datapoint [5.0 (14/11/23 22:14:00)] was greater than the "
            "threshold (3.0).");
  EXPECT_EQ(a.state_updated, kNow + 60);
  auto data = ParseJson(a.state_reason_data);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->GetString("statistic"), "Average");
  EXPECT_EQ(data->Find("recentDatapoints")->list()[0].AsDouble(), 5);
  EXPECT_EQ(data->Find("threshold")->AsDouble(), 3);

  // Same state again: no new transition.
  ASSERT_TRUE(store_->EvaluateAlarms(clock_.Now() + 1).ok());
  EXPECT_EQ(Get("high").state_updated, kNow + 60);

  ASSERT_TRUE(PutLatency(1, clock_.Now() + 10).ok());
  clock_.Advance(60);
  ASSERT_TRUE(store_->EvaluateAlarms(clock_.Now()).ok());
  a = Get("high");
  EXPECT_EQ(a.state_value, "OK");
  EXPECT_EQ(a.state_reason,
            "Threshold Crossed: 1 datapoint [1.0 (14/11/23 22:15:00)] was not greater than the "
            "threshold (3.0).");

  clock_.Advance(60);  // no data in the last minute
  ASSERT_TRUE(store_->EvaluateAlarms(clock_.Now()).ok());
  EXPECT_EQ(Get("high").state_value, "INSUFFICIENT_DATA");

  std::string next;
  AlarmHistoryRequest h;
  h.alarm_name = "high";
  h.type = "StateUpdate";
  auto history = store_->alarms().History(kAcct, kRegion, h, &next);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);  // newest first
  EXPECT_EQ((*history)[0].summary, "Alarm updated from OK to INSUFFICIENT_DATA");
  EXPECT_EQ((*history)[2].summary, "Alarm updated from INSUFFICIENT_DATA to ALARM");
  h.type = "ConfigurationUpdate";
  history = store_->alarms().History(kAcct, kRegion, h, &next);
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].summary, "Alarm \"high\" created");
}

TEST_F(AlarmTest, EvaluatesAtOnceWhenPut) {
  ASSERT_TRUE(PutLatency(10, kNow - 60).ok());
  ASSERT_TRUE(store_->alarms().PutMetricAlarm(kAcct, kRegion, Alarm("now")).ok());
  EXPECT_EQ(Get("now").state_value, "ALARM");
  // An update keeps the state, then re-evaluates with the new threshold.
  MetricAlarm higher = Alarm("now");
  higher.threshold = 100;
  ASSERT_TRUE(store_->alarms().PutMetricAlarm(kAcct, kRegion, higher).ok());
  EXPECT_EQ(Get("now").state_value, "OK");
  EXPECT_EQ(Get("now").threshold, 100);
}

TEST_F(AlarmTest, MOutOfNAndMissingData) {
  MetricAlarm a = Alarm("m-of-n");
  a.evaluation_periods = 3;
  a.datapoints_to_alarm = 2;
  a.comparison_operator = "GreaterThanOrEqualToThreshold";
  ASSERT_TRUE(PutLatency(4, kNow - 180).ok());
  ASSERT_TRUE(PutLatency(1, kNow - 120).ok());
  ASSERT_TRUE(PutLatency(3, kNow - 60).ok());
  ASSERT_TRUE(store_->alarms().PutMetricAlarm(kAcct, kRegion, a).ok());
  MetricAlarm got = Get("m-of-n");
  EXPECT_EQ(got.state_value, "ALARM");
  EXPECT_EQ(got.state_reason,
            "Threshold Crossed: 2 out of the last 3 datapoints [3.0 (14/11/23 22:13:00), 4.0 "
            "(14/11/23 22:11:00)] were greater than or equal to the threshold (3.0) (minimum 2 "
            "datapoints for OK -> ALARM transition).");

  // Pure evaluation of the missing-data treatments.
  std::vector<AlarmDatapoint> none(3);
  for (int i = 0; i < 3; ++i) none[i].timestamp = kNow - 180 + 60 * i;
  a.treat_missing_data = "breaching";
  AlarmEvaluation e = EvaluateAlarm(a, none, kNow);
  EXPECT_EQ(e.state, "ALARM");
  EXPECT_EQ(e.reason,
            "Threshold Crossed: no datapoints were received for 3 periods and 3 missing "
            "datapoints were treated as [Breaching].");
  a.treat_missing_data = "notBreaching";
  EXPECT_EQ(EvaluateAlarm(a, none, kNow).state, "OK");
  a.treat_missing_data = "ignore";
  EXPECT_EQ(EvaluateAlarm(a, none, kNow).state, "");  // keeps the current state
  a.treat_missing_data = "";
  EXPECT_EQ(EvaluateAlarm(a, none, kNow).reason, "Insufficient Data: 3 datapoints were unknown.");

  // One breaching point and two missing: breaching makes 3 of 3.
  std::vector<AlarmDatapoint> one = none;
  one[2].value = 9;
  a.treat_missing_data = "breaching";
  EXPECT_EQ(EvaluateAlarm(a, one, kNow).state, "ALARM");
  a.treat_missing_data = "missing";
  EXPECT_EQ(EvaluateAlarm(a, one, kNow).state, "OK");
}

TEST_F(AlarmTest, PercentileAlarms) {
  std::vector<MetricDatum> data;
  for (int i = 1; i <= 100; ++i) data.push_back(Datum("Latency", i, kNow - 60, {{"Host", "a"}}));
  ASSERT_TRUE(Put("App", data).ok());
  MetricAlarm a = Alarm("p99");
  a.statistic.clear();
  a.extended_statistic = "p99";
  a.threshold = 95;
  ASSERT_TRUE(store_->alarms().PutMetricAlarm(kAcct, kRegion, a).ok());
  EXPECT_EQ(Get("p99").state_value, "ALARM");
}

TEST_F(AlarmTest, ValidationRejectsWhatCloudWatchRejects) {
  struct Case {
    const char* what;
    std::function<void(MetricAlarm&)> mutate;
    const char* fragment;
  };
  const Case cases[] = {
      {"anomaly", [](MetricAlarm& a) { a.comparison_operator = "GreaterThanUpperThreshold"; },
       "anomaly detection"},
      {"period", [](MetricAlarm& a) { a.period = 45; }, "Period"},
      {"too long", [](MetricAlarm& a) { a.evaluation_periods = 1441; }, "more than a day"},
      {"m > n", [](MetricAlarm& a) { a.datapoints_to_alarm = 2; }, "DatapointsToAlarm"},
      {"both stats", [](MetricAlarm& a) { a.extended_statistic = "p90"; }, "Exactly one"},
      {"treat", [](MetricAlarm& a) { a.treat_missing_data = "sometimes"; }, "TreatMissingData"},
      {"action", [](MetricAlarm& a) { a.alarm_actions = {"sns-topic"}; }, "arn"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    MetricAlarm a = Alarm("bad");
    c.mutate(a);
    Status s = store_->alarms().PutMetricAlarm(kAcct, kRegion, a);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), "ValidationError");
    EXPECT_NE(s.message().find(c.fragment), std::string::npos) << s.message();
  }
  EXPECT_EQ(store_->alarms().Get(kAcct, kRegion, "bad").status().code(), "ResourceNotFound");
}

TEST_F(AlarmTest, SetStateDescribeDeleteTagsAndActions) {
  MetricAlarm a = Alarm("b-alarm");
  a.alarm_actions = {"arn:aws:sns:us-east-1:000000000000:ops"};
  ASSERT_TRUE(store_->alarms().PutMetricAlarm(kAcct, kRegion, a).ok());
  ASSERT_TRUE(store_->alarms().PutMetricAlarm(kAcct, kRegion, Alarm("a-alarm")).ok());
  ASSERT_TRUE(store_->alarms().PutMetricAlarm(kAcct, kRegion, Alarm("c-other")).ok());

  ASSERT_TRUE(store_->alarms().SetState(kAcct, kRegion, "b-alarm", "ALARM", "testing", "").ok());
  EXPECT_EQ(Get("b-alarm").state_reason, "testing");
  EXPECT_EQ(store_->alarms().SetState(kAcct, kRegion, "nope", "OK", "x", "").code(),
            "ResourceNotFound");
  EXPECT_EQ(store_->alarms().SetState(kAcct, kRegion, "b-alarm", "OK", "x", "{bad").code(),
            "InvalidFormat");
  // The undelivered action is in the history.
  std::string next;
  AlarmHistoryRequest h;
  h.type = "Action";
  auto actions = store_->alarms().History(kAcct, kRegion, h, &next);
  ASSERT_EQ(actions->size(), 1u);
  EXPECT_EQ((*actions)[0].summary,
            "Failed to execute action arn:aws:sns:us-east-1:000000000000:ops");

  DescribeAlarmsRequest r;
  auto all = store_->alarms().Describe(kAcct, kRegion, r, &next);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].name, "a-alarm");
  r.name_prefix = "b";
  EXPECT_EQ(store_->alarms().Describe(kAcct, kRegion, r, &next)->size(), 1u);
  r = {};
  r.state_value = "ALARM";
  EXPECT_EQ(store_->alarms().Describe(kAcct, kRegion, r, &next)->at(0).name, "b-alarm");
  r = {};
  r.action_prefix = "arn:aws:sns";
  EXPECT_EQ(store_->alarms().Describe(kAcct, kRegion, r, &next)->size(), 1u);
  r = {};
  r.max_records = 2;
  EXPECT_EQ(store_->alarms().Describe(kAcct, kRegion, r, &next)->size(), 2u);
  ASSERT_FALSE(next.empty());
  r.next_token = next;
  auto rest = store_->alarms().Describe(kAcct, kRegion, r, &next);
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ(rest->at(0).name, "c-other");
  EXPECT_TRUE(next.empty());
  r = {};
  r.names = {"a-alarm"};
  r.name_prefix = "a";
  EXPECT_EQ(store_->alarms().Describe(kAcct, kRegion, r, &next).status().code(),
            "InvalidParameterCombination");

  MetricAlarm like;
  like.metric = {"App", "Latency", {{"Host", "a"}}};
  EXPECT_EQ(store_->alarms().DescribeForMetric(kAcct, kRegion, like, true)->size(), 3u);
  like.metric.dimensions.clear();
  EXPECT_EQ(store_->alarms().DescribeForMetric(kAcct, kRegion, like, true)->size(), 0u);

  const std::string arn = AlarmStore::Arn(kRegion, kAcct, "a-alarm");
  ASSERT_TRUE(
      store_->alarms().TagResource(kAcct, kRegion, arn, {{"team", "ml"}, {"env", "x"}}).ok());
  ASSERT_TRUE(store_->alarms().TagResource(kAcct, kRegion, arn, {{"env", "prod"}}).ok());
  ASSERT_TRUE(store_->alarms().UntagResource(kAcct, kRegion, arn, {"team"}).ok());
  auto tags = store_->alarms().ListTags(kAcct, kRegion, arn);
  ASSERT_EQ(tags->size(), 1u);
  EXPECT_EQ(tags->at(0).value, "prod");
  EXPECT_EQ(store_->alarms().ListTags(kAcct, kRegion, arn + "x").status().code(),
            "ResourceNotFoundException");
  EXPECT_EQ(store_->alarms()
                .ListTags(kAcct, kRegion, "arn:aws:cloudwatch:us-east-1:000000000000:dashboard:d")
                .status()
                .code(),
            "ResourceNotFoundException");

  ASSERT_TRUE(store_->alarms().SetActionsEnabled(kAcct, kRegion, {"b-alarm", "ghost"}, false).ok());
  EXPECT_FALSE(Get("b-alarm").actions_enabled);

  Status missing = store_->alarms().Delete(kAcct, kRegion, {"a-alarm", "ghost"});
  EXPECT_EQ(missing.code(), "ResourceNotFound");
  EXPECT_NE(missing.message().find("ghost"), std::string::npos);
  EXPECT_TRUE(Get("a-alarm").name == "a-alarm");  // nothing was deleted
  ASSERT_TRUE(store_->alarms().Delete(kAcct, kRegion, {"a-alarm", "b-alarm"}).ok());
  r = {};
  EXPECT_EQ(store_->alarms().Describe(kAcct, kRegion, r, &next)->size(), 1u);
}

}  // namespace
}  // namespace nimbus::telemetry
