#include "telemetry/server_metrics.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace nimbus::telemetry {
namespace {

TEST(ServerMetricsTest, RendersCountersGaugesAndHistogramsInTextFormat004) {
  ServerMetrics m;
  auto& requests = m.AddCounter("app_requests_total", "Requests served.", {"method", "code"});
  requests.WithLabels({"GET", "200"}).Inc();
  requests.WithLabels({"GET", "200"}).Inc(2);
  requests.WithLabels({"PUT", "500"}).Inc();
  m.AddGauge("app_in_flight", "Requests in flight.").Get().Set(3.5);
  auto& latency = m.AddHistogram("app_latency_seconds", "Latency.", {}, {0.1, 1, 0.5});
  latency.Get().Observe(0.0625);
  latency.Get().Observe(0.5);  // le is inclusive
  latency.Get().Observe(0.75);
  latency.Get().Observe(30);
  m.AddCallbackGauge("app_uptime_seconds", "Uptime.", [] { return 42.0; });

  EXPECT_EQ(m.Render(),
            "# HELP app_requests_total Requests served.\n"
            "# TYPE app_requests_total counter\n"
            "app_requests_total{method=\"GET\",code=\"200\"} 3\n"
            "app_requests_total{method=\"PUT\",code=\"500\"} 1\n"
            "# HELP app_in_flight Requests in flight.\n"
            "# TYPE app_in_flight gauge\n"
            "app_in_flight 3.5\n"
            "# HELP app_latency_seconds Latency.\n"
            "# TYPE app_latency_seconds histogram\n"
            "app_latency_seconds_bucket{le=\"0.1\"} 1\n"
            "app_latency_seconds_bucket{le=\"0.5\"} 2\n"
            "app_latency_seconds_bucket{le=\"1\"} 3\n"
            "app_latency_seconds_bucket{le=\"+Inf\"} 4\n"
            "app_latency_seconds_sum 31.3125\n"
            "app_latency_seconds_count 4\n"
            "# HELP app_uptime_seconds Uptime.\n"
            "# TYPE app_uptime_seconds gauge\n"
            "app_uptime_seconds 42\n");
}

TEST(ServerMetricsTest, EscapesLabelValuesAndHelp) {
  ServerMetrics m;
  m.AddCounter("x_total", "Back\\slash and\nnewline.", {"path"}).WithLabels({"a\"b\\c\nd"}).Inc();
  EXPECT_EQ(m.Render(),
            "# HELP x_total Back\\\\slash and\\nnewline.\n"
            "# TYPE x_total counter\n"
            "x_total{path=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(ServerMetricsTest, HistogramLabelsComeBeforeLe) {
  ServerMetrics m;
  m.AddHistogram("h", "H.", {"method"}, {1}).WithLabels({"GET"}).Observe(2);
  const std::string out = m.Render();
  EXPECT_NE(out.find("h_bucket{method=\"GET\",le=\"1\"} 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("h_bucket{method=\"GET\",le=\"+Inf\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("h_sum{method=\"GET\"} 2\n"), std::string::npos) << out;
}

TEST(ServerMetricsTest, RegisteringANameTwiceReturnsTheSameFamily) {
  ServerMetrics m;
  auto& a = m.AddCounter("c_total", "C.");
  auto& b = m.AddCounter("c_total", "C again.");
  EXPECT_EQ(&a, &b);
  a.Get().Inc();
  EXPECT_EQ(b.Get().value(), 1);
}

TEST(ServerMetricsTest, ConcurrentIncrementsAreAllCounted) {
  ServerMetrics m;
  auto& c = m.AddCounter("hits_total", "Hits.", {"code"});
  auto& h = m.AddHistogram("lat", "Lat.", {}, {0.5});
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        c.WithLabels({t % 2 ? "200" : "404"}).Inc();
        h.Get().Observe(i % 2 ? 0.25 : 1.0);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.WithLabels({"200"}).value(), 40000);
  EXPECT_EQ(c.WithLabels({"404"}).value(), 40000);
  const Histogram::Snapshot snap = h.Get().Read();
  EXPECT_EQ(snap.count, 80000u);
  EXPECT_EQ(snap.cumulative[0], 40000u);
  EXPECT_DOUBLE_EQ(snap.sum, 40000 * 0.25 + 40000 * 1.0);
}

struct FakeRequest {
  std::string method;
};
struct FakeResponse {
  int status = 200;
};

TEST(HttpServerMetricsTest, InstrumentedHandlerCountsRequestsAndUptime) {
  ServerMetrics registry;
  FakeClock clock(1000);
  HttpServerMetrics http(registry, clock);
  auto handler = InstrumentHandler(
      http, [](FakeRequest& r) { return FakeResponse{r.method == "GET" ? 200 : 404}; });
  FakeRequest get{"GET"}, del{"DELETE"}, odd{"BREW"};
  handler(get);
  handler(get);
  handler(del);
  handler(odd);
  clock.Advance(12.5);
  const std::string out = registry.Render();
  EXPECT_NE(out.find("nimbus_http_requests_total{method=\"GET\",code=\"200\"} 2\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("nimbus_http_requests_total{method=\"DELETE\",code=\"404\"} 1\n"),
            std::string::npos);
  EXPECT_NE(out.find("nimbus_http_requests_total{method=\"other\",code=\"404\"} 1\n"),
            std::string::npos);
  EXPECT_NE(out.find("nimbus_http_request_duration_seconds_count{method=\"GET\"} 2\n"),
            std::string::npos);
  EXPECT_NE(out.find("# TYPE nimbus_http_request_duration_seconds histogram\n"), std::string::npos);
  EXPECT_NE(out.find("nimbus_uptime_seconds 12.5\n"), std::string::npos);
}

}  // namespace
}  // namespace nimbus::telemetry
