#include "telemetry/server_metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <thread>

namespace nimbus::telemetry {

namespace internal {

size_t ThreadShard() {
  thread_local const size_t shard =
      std::hash<std::thread::id>()(std::this_thread::get_id()) % kMetricShards;
  return shard;
}

}  // namespace internal

namespace {

// Prometheus' float format: integers without a fraction, +Inf, -Inf, NaN.
std::string PromNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return std::to_string(v);
  return std::string(buf, end);
}

std::string EscapeLabelValue(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// {a="x",b="y"} plus an optional extra label (le for histogram buckets); "" when empty.
std::string Labels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                   std::string_view extra_name = "", std::string_view extra_value = "") {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + EscapeLabelValue(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    out += out.empty() ? "{" : ",";
    out += std::string(extra_name) + "=\"" + EscapeLabelValue(extra_value) + "\"";
  }
  if (!out.empty()) out += "}";
  return out;
}

void Header(std::string& out, const std::string& name, const std::string& help,
            const std::string& type) {
  out += "# HELP " + name + " " + EscapeHelp(help) + "\n";
  out += "# TYPE " + name + " " + type + "\n";
}

}  // namespace

void Counter::Inc(double v) {
  shards_[internal::ThreadShard()].v.fetch_add(v, std::memory_order_relaxed);
}

double Counter::value() const {
  double sum = 0;
  for (const Shard& s : shards_) sum += s.v.load(std::memory_order_relaxed);
  return sum;
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  for (size_t i = 0; i < internal::kMetricShards; ++i) {
    shards_.push_back(std::make_unique<Shard>(bounds_.size() + 1));
  }
}

void Histogram::Observe(double v) {
  // le: the first bound >= v; past the last bound, the +Inf bucket.
  const size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  Shard& s = *shards_[internal::ThreadShard()];
  s.counts[bucket].fetch_add(1, std::memory_order_relaxed);
  s.sum.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snap;
  snap.bounds = bounds_;
  std::vector<uint64_t> counts(bounds_.size() + 1, 0);
  for (const auto& s : shards_) {
    for (size_t i = 0; i < counts.size(); ++i) {
      counts[i] += s->counts[i].load(std::memory_order_relaxed);
    }
    snap.sum += s->sum.load(std::memory_order_relaxed);
  }
  uint64_t running = 0;
  for (uint64_t c : counts) {
    running += c;
    snap.cumulative.push_back(running);
  }
  snap.count = running;
  return snap;
}

struct ServerMetrics::Entry {
  std::string name;
  std::unique_ptr<MetricFamily<Counter>> counter;
  std::unique_ptr<MetricFamily<Gauge>> gauge;
  std::unique_ptr<MetricFamily<Histogram>> histogram;
  std::string help;                  // callback gauges
  std::function<double()> callback;  // callback gauges
};

ServerMetrics::ServerMetrics() = default;
ServerMetrics::~ServerMetrics() = default;

ServerMetrics::Entry* ServerMetrics::Find(const std::string& name) const {
  for (const auto& e : entries_) {
    if (e->name == name) return e.get();
  }
  return nullptr;
}

MetricFamily<Counter>& ServerMetrics::AddCounter(const std::string& name, const std::string& help,
                                                 std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Entry* e = Find(name); e && e->counter) return *e->counter;
  auto e = std::make_unique<Entry>();
  e->name = name;
  e->counter = std::make_unique<MetricFamily<Counter>>(
      name, help, "counter", std::move(label_names), [] { return std::make_unique<Counter>(); });
  entries_.push_back(std::move(e));
  return *entries_.back()->counter;
}

MetricFamily<Gauge>& ServerMetrics::AddGauge(const std::string& name, const std::string& help,
                                             std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Entry* e = Find(name); e && e->gauge) return *e->gauge;
  auto e = std::make_unique<Entry>();
  e->name = name;
  e->gauge = std::make_unique<MetricFamily<Gauge>>(name, help, "gauge", std::move(label_names),
                                                   [] { return std::make_unique<Gauge>(); });
  entries_.push_back(std::move(e));
  return *entries_.back()->gauge;
}

MetricFamily<Histogram>& ServerMetrics::AddHistogram(const std::string& name,
                                                     const std::string& help,
                                                     std::vector<std::string> label_names,
                                                     std::vector<double> bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Entry* e = Find(name); e && e->histogram) return *e->histogram;
  auto e = std::make_unique<Entry>();
  e->name = name;
  e->histogram = std::make_unique<MetricFamily<Histogram>>(
      name, help, "histogram", std::move(label_names),
      [bounds] { return std::make_unique<Histogram>(bounds); });
  entries_.push_back(std::move(e));
  return *entries_.back()->histogram;
}

void ServerMetrics::AddCallbackGauge(const std::string& name, const std::string& help,
                                     std::function<double()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Find(name)) return;
  auto e = std::make_unique<Entry>();
  e->name = name;
  e->help = help;
  e->callback = std::move(fn);
  entries_.push_back(std::move(e));
}

std::string ServerMetrics::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& e : entries_) {
    if (e->counter) {
      const auto& f = *e->counter;
      Header(out, f.name(), f.help(), f.type());
      f.ForEach([&](const std::vector<std::string>& values, const Counter& c) {
        out += f.name() + Labels(f.label_names(), values) + " " + PromNumber(c.value()) + "\n";
      });
    } else if (e->gauge) {
      const auto& f = *e->gauge;
      Header(out, f.name(), f.help(), f.type());
      f.ForEach([&](const std::vector<std::string>& values, const Gauge& g) {
        out += f.name() + Labels(f.label_names(), values) + " " + PromNumber(g.value()) + "\n";
      });
    } else if (e->histogram) {
      const auto& f = *e->histogram;
      Header(out, f.name(), f.help(), f.type());
      f.ForEach([&](const std::vector<std::string>& values, const Histogram& h) {
        const Histogram::Snapshot snap = h.Read();
        for (size_t i = 0; i < snap.cumulative.size(); ++i) {
          const std::string le = i < snap.bounds.size() ? PromNumber(snap.bounds[i]) : "+Inf";
          out += f.name() + "_bucket" + Labels(f.label_names(), values, "le", le) + " " +
                 std::to_string(snap.cumulative[i]) + "\n";
        }
        const std::string labels = Labels(f.label_names(), values);
        out += f.name() + "_sum" + labels + " " + PromNumber(snap.sum) + "\n";
        out += f.name() + "_count" + labels + " " + std::to_string(snap.count) + "\n";
      });
    } else if (e->callback) {
      Header(out, e->name, e->help, "gauge");
      out += e->name + " " + PromNumber(e->callback()) + "\n";
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------

HttpServerMetrics::HttpServerMetrics(ServerMetrics& registry, const Clock& clock)
    : requests_(registry.AddCounter("nimbus_http_requests_total",
                                    "HTTP requests answered, by method and status code.",
                                    {"method", "code"})),
      duration_(registry.AddHistogram(
          "nimbus_http_request_duration_seconds",
          "Time from a request's arrival at the handler to its response, by method.", {"method"},
          {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60})) {
  const Clock* c = &clock;
  const double started = clock.Now();
  registry.AddCallbackGauge("nimbus_uptime_seconds", "Seconds since the server started.",
                            [c, started] { return c->Now() - started; });
}

void HttpServerMetrics::Observe(std::string_view method, int status, double seconds) {
  static constexpr std::string_view kMethods[] = {"GET",    "HEAD",    "PUT",  "POST",
                                                  "DELETE", "OPTIONS", "PATCH"};
  std::string m = "other";
  for (std::string_view known : kMethods) {
    if (method == known) m = std::string(known);
  }
  requests_.WithLabels({m, std::to_string(status)}).Inc();
  duration_.WithLabels({m}).Observe(seconds);
}

}  // namespace nimbus::telemetry
