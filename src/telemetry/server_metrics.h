// ServerMetrics: the server's own counters, gauges and histograms, with labels, rendered
// in the Prometheus text exposition format 0.0.4 (HELP and TYPE lines, escaped label
// values, histograms as cumulative _bucket{le=...}, _sum and _count) for GET /metrics.
//
// Families are registered at start-up (AddCounter, AddGauge, AddHistogram,
// AddCallbackGauge); a family's children, one per combination of label values, are made
// on first use by WithLabels and live as long as the registry, so callers may keep the
// returned reference. Registering a name twice returns the first family.
//
// Thread-safety: everything is safe to call from any thread. Increments sit on the request
// path, so they take no lock: each Counter and Histogram is split into cache-line-sized
// shards updated with relaxed atomics by the threads that hash to them, and Render sums
// the shards. WithLabels takes a shared (reader) lock to find an existing child.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"

namespace nimbus::telemetry {

namespace internal {
inline constexpr size_t kMetricShards = 8;
// The shard of the calling thread.
size_t ThreadShard();
}  // namespace internal

class Counter {
 public:
  // REQUIRES: v >= 0 (a counter only goes up).
  void Inc(double v = 1);
  double value() const;

 private:
  struct alignas(64) Shard {
    std::atomic<double> v{0};
  };
  Shard shards_[internal::kMetricShards];
};

class Gauge {
 public:
  void Set(double v) { v_.store(v, std::memory_order_relaxed); }
  void Add(double v) { v_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

class Histogram {
 public:
  // bounds: the upper bounds (le) of the buckets, ascending; +Inf is implied.
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;

 private:
  struct alignas(64) Shard {
    explicit Shard(size_t buckets) : counts(buckets) {}
    std::vector<std::atomic<uint64_t>> counts;  // per bound, then +Inf (not cumulative)
    std::atomic<double> sum{0};
  };
  std::vector<double> bounds_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

// The children of one metric name, keyed by label values.
template <typename T>
class MetricFamily {
 public:
  MetricFamily(std::string name, std::string help, std::string type,
               std::vector<std::string> label_names, std::function<std::unique_ptr<T>()> make)
      : name_(std::move(name)),
        help_(std::move(help)),
        type_(std::move(type)),
        label_names_(std::move(label_names)),
        make_(std::move(make)) {}

  // The child with these label values, one per label name in order (missing values are
  // empty, extra ones ignored).
  T& WithLabels(std::vector<std::string> values) {
    values.resize(label_names_.size());
    {
      std::shared_lock<std::shared_mutex> lock(mu_);
      if (auto it = children_.find(values); it != children_.end()) return *it->second;
    }
    std::unique_lock<std::shared_mutex> lock(mu_);
    auto& slot = children_[std::move(values)];
    if (!slot) slot = make_();
    return *slot;
  }
  T& Get() { return WithLabels({}); }

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::string& type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Calls fn(label values, child) in label order, under the family's reader lock.
  template <typename Fn>
  void ForEach(Fn fn) const {
    std::shared_lock<std::shared_mutex> lock(mu_);
    for (const auto& [values, child] : children_) fn(values, *child);
  }

 private:
  const std::string name_, help_, type_;
  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<T>()> make_;
  mutable std::shared_mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;  // GUARDED_BY(mu_)
};

class ServerMetrics {
 public:
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  ServerMetrics();
  ~ServerMetrics();

  MetricFamily<Counter>& AddCounter(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names = {});
  MetricFamily<Gauge>& AddGauge(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names = {});
  MetricFamily<Histogram>& AddHistogram(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> bounds);
  // A gauge whose value fn computes when the metrics are rendered.
  void AddCallbackGauge(const std::string& name, const std::string& help,
                        std::function<double()> fn);

  // Every family, in registration order, in the text exposition format 0.0.4.
  std::string Render() const;

 private:
  struct Entry;
  Entry* Find(const std::string& name) const;  // REQUIRES: mu_ held

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_;  // GUARDED_BY(mu_)
};

// The HTTP metrics of `nimbus serve`: nimbus_http_requests_total{method,code},
// nimbus_http_request_duration_seconds{method} and nimbus_uptime_seconds (from clock,
// since construction). Methods other than the standard ones count as "other", so that
// clients cannot grow the label set without bound.
class HttpServerMetrics {
 public:
  HttpServerMetrics(ServerMetrics& registry, const Clock& clock);
  void Observe(std::string_view method, int status, double seconds);

 private:
  MetricFamily<Counter>& requests_;
  MetricFamily<Histogram>& duration_;
};

// Wraps an HTTP handler (Response(Request&), both with .method / .status) so that every
// request it answers is counted and timed. m must outlive the returned handler.
template <typename Handler>
auto InstrumentHandler(HttpServerMetrics& m, Handler handler) {
  return [&m, handler = std::move(handler)](auto& request) {
    const auto started = std::chrono::steady_clock::now();
    auto response = handler(request);
    m.Observe(request.method, response.status,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    return response;
  };
}

}  // namespace nimbus::telemetry
