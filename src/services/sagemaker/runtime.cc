#include "services/sagemaker/runtime.h"

#include <chrono>
#include <cmath>

#include "control/resource_kind.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/logging.h"
#include "http/types.h"
#include "objects/transfer.h"
#include "services/sagemaker/sagemaker_common.h"
#include "serving/model_server.h"

namespace nimbus::services {
namespace {

constexpr int kAsyncThreads = 2;

using SteadyClock = std::chrono::steady_clock;

double Seconds(SteadyClock::time_point from, SteadyClock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

Status ValidationError(std::string message) {
  return Status::Aws("ValidationError", 400, std::move(message));
}

// Two significant digits: at most 90 distinct values per decade.
double Round2(double value) {
  if (value <= 0) return 0;
  const double scale = std::pow(10.0, std::floor(std::log10(value)) - 1);
  return std::round(value / scale) * scale;
}

void MergeSamples(std::map<double, double>& into, const std::map<double, double>& from) {
  for (const auto& [value, count] : from) into[value] += count;
}

std::string LogsLink(const std::string& region, const std::string& account,
                     const std::string& endpoint) {
  return "See https://" + region + ".console.aws.amazon.com/cloudwatch/home?region=" + region +
         "#logEventViewer:group=/aws/sagemaker/Endpoints/" + endpoint + " in account " + account +
         " for more information.";
}

// Joins an S3 prefix URI and a name with exactly one '/'.
std::string JoinUri(std::string prefix, const std::string& name) {
  if (!prefix.empty() && prefix.back() != '/') prefix.push_back('/');
  return prefix + name;
}

}  // namespace

EndpointRuntime::EndpointRuntime(const SageMakerDeps& deps, Endpoints& endpoints)
    : deps_(deps), endpoints_(endpoints) {
  for (int i = 0; i < kAsyncThreads; ++i) async_threads_.emplace_back([this] { AsyncLoop(); });
}

EndpointRuntime::~EndpointRuntime() {
  {
    std::lock_guard<std::mutex> lock(async_mu_);
    stopping_ = true;
  }
  async_cv_.notify_all();
  for (std::thread& t : async_threads_) t.join();
}

void EndpointRuntime::Register(aws::ServiceRegistry& registry) {
  auto arn_of = [](const Value& in, const aws::RequestContext& ctx) {
    return Endpoints::Kind().Arn(ctx.account_id, ctx.region, in.GetString("EndpointName"));
  };
  registry.Register(
      "sagemaker-runtime", "InvokeEndpoint",
      [this](const Value& in, aws::RequestContext& ctx) { return Invoke(in, ctx); }, arn_of);
  registry.Register(
      "sagemaker-runtime", "InvokeEndpointAsync",
      [this](const Value& in, aws::RequestContext& ctx) { return InvokeAsync(in, ctx); }, arn_of);
  if (deps_.controllers) {
    deps_.controllers->Every("sagemaker:invocation-metrics", 1.0,
                             [this] { return FlushMetrics(); });
  }
}

Result<Value> EndpointRuntime::Invoke(const Value& in, aws::RequestContext& ctx) {
  // OverheadLatency counts from the request's arrival: authentication and parsing are
  // part of what Nimbus adds to the model's time.
  const auto start = ctx.http && ctx.http->received != SteadyClock::time_point()
                         ? ctx.http->received
                         : SteadyClock::now();
  const std::string name = in.GetString("EndpointName");
  std::optional<LiveEndpoint> live = endpoints_.Live(ctx.account_id, ctx.region, name);
  if (!live) {
    return ValidationError("Endpoint " + name + " of account " + ctx.account_id + " not found.");
  }
  const Value* body = in.Find("Body");
  serving::Invocation invocation;
  // The service model caps Body at 6 MB, SageMaker's limit: the protocol layer has
  // already refused larger ones with a ValidationError.
  invocation.body = body ? body->AsString() : std::string();
  invocation.content_type = in.GetString("ContentType");
  invocation.accept = in.GetString("Accept");
  invocation.custom_attributes = in.GetString("CustomAttributes");

  Result<serving::RoutedResponse> routed =
      endpoints_.router().Invoke(*live->route, in.GetString("TargetVariant"), invocation);
  size_t instances = 0;
  if (!routed.ok()) {
    if (routed.status().kind() == ErrorKind::kNotFound) {
      return ValidationError(routed.status().message());
    }
    Outcome outcome{503, in.GetString("TargetVariant"), 0};
    if (outcome.variant.empty() && live->route->variants.size() == 1) {
      outcome.variant = live->route->variants[0].name;
    }
    if (!outcome.variant.empty()) {
      Record(ctx.account_id, ctx.region, name, outcome, Seconds(start, SteadyClock::now()), 1);
    }
    return Status::Aws("ServiceUnavailable", 503,
                       "The endpoint " + name + " could not answer: " + routed.status().message(),
                       ErrorKind::kInternal);
  }
  for (const serving::VariantRoute& v : live->route->variants) {
    if (v.name == routed->variant) instances = v.instances.size();
  }
  const serving::HttpMessage& response = routed->response;
  Outcome outcome{response.status, routed->variant, routed->model_seconds};
  Record(ctx.account_id, ctx.region, name, outcome, Seconds(start, SteadyClock::now()), instances);

  const std::string content_type(response.Header("Content-Type"));
  if (live->capture && live->capture->enabled) {
    CaptureRecord record;
    record.endpoint = name;
    record.variant = routed->variant;
    record.inference_id = in.GetString("InferenceId");
    record.time = SystemClock::Instance().Now();
    record.input_content_type = invocation.content_type;
    record.input = std::move(invocation.body);
    record.output_content_type = content_type;
    record.output = response.body;
    endpoints_.capture().Capture(*live->capture, std::move(record));
  }
  if (response.status >= 400) {
    const char* side = response.status >= 500 ? "server" : "client";
    const std::string log_stream_arn = "arn:" + control::PartitionForRegion(ctx.region) +
                                       ":logs:" + ctx.region + ":" + ctx.account_id +
                                       ":log-group:/aws/sagemaker/Endpoints/" + name;
    return Status::Aws("ModelError", 424,
                       std::string("Received ") + side + " error (" +
                           std::to_string(response.status) + ") from primary with message \"" +
                           response.body + "\". " + LogsLink(ctx.region, ctx.account_id, name))
        .WithDetails(std::make_shared<const Value>(
            Value::Object({{"OriginalStatusCode", int64_t{response.status}},
                           {"OriginalMessage", response.body},
                           {"LogStreamArn", log_stream_arn}})));
  }
  Value out =
      Value::Object({{"Body", Value::Blob(std::move(routed->response.body))},
                     {"ContentType", content_type.empty() ? "application/json" : content_type},
                     {"InvokedProductionVariant", routed->variant}});
  if (std::string_view attributes = response.Header(serving::kCustomAttributesHeader);
      !attributes.empty()) {
    out["CustomAttributes"] = std::string(attributes);
  }
  return out;
}

void EndpointRuntime::Record(const std::string& account, const std::string& region,
                             const std::string& endpoint, const Outcome& outcome,
                             double total_seconds, size_t instances) {
  const double model_us = outcome.model_seconds * 1e6;
  const double overhead_us = std::max(0.0, (total_seconds - outcome.model_seconds) * 1e6);
  Stripe& stripe = stripes_[std::hash<std::thread::id>()(std::this_thread::get_id()) % kStripes];
  std::lock_guard<std::mutex> lock(stripe.mu);
  Counters& c = stripe.counters[MetricKey{account, region, endpoint, outcome.variant}];
  c.invocations += 1;
  if (outcome.http_status >= 400 && outcome.http_status < 500) c.errors_4xx += 1;
  if (outcome.http_status >= 500) c.errors_5xx += 1;
  if (instances > 0) c.instances = static_cast<double>(instances);
  if (outcome.model_seconds > 0) c.model_latency[Round2(model_us)] += 1;
  c.overhead_latency[Round2(overhead_us)] += 1;
}

Status EndpointRuntime::FlushMetrics() {
  std::map<MetricKey, Counters> counters;
  for (Stripe& stripe : stripes_) {
    std::map<MetricKey, Counters> taken;
    {
      std::lock_guard<std::mutex> lock(stripe.mu);
      taken.swap(stripe.counters);
    }
    for (auto& [key, c] : taken) {
      auto [it, fresh] = counters.emplace(key, c);
      if (fresh) continue;
      Counters& into = it->second;
      into.invocations += c.invocations;
      into.errors_4xx += c.errors_4xx;
      into.errors_5xx += c.errors_5xx;
      into.instances = c.instances;
      MergeSamples(into.model_latency, c.model_latency);
      MergeSamples(into.overhead_latency, c.overhead_latency);
    }
  }
  if (deps_.metrics == nullptr) return Status::Ok();
  const double now = SystemClock::Instance().Now();
  for (const auto& [key, c] : counters) {
    std::vector<telemetry::Dimension> dimensions = {{"EndpointName", key.endpoint},
                                                    {"VariantName", key.variant}};
    auto count = [&](const char* name, double value) {
      telemetry::MetricDatum d;
      d.metric_name = name;
      d.dimensions = dimensions;
      d.timestamp = now;
      d.statistic_values = telemetry::StatisticValues{1, value, value, value};
      d.unit = "None";
      return d;
    };
    std::vector<telemetry::MetricDatum> data = {
        count("Invocations", c.invocations),
        count("InvocationsPerInstance", c.invocations / std::max(1.0, c.instances)),
        count("Invocation4XXErrors", c.errors_4xx), count("Invocation5XXErrors", c.errors_5xx)};
    for (auto [name, histogram] : {std::pair{"ModelLatency", &c.model_latency},
                                   std::pair{"OverheadLatency", &c.overhead_latency}}) {
      auto latency = [&, name = name] {
        telemetry::MetricDatum d;
        d.metric_name = name;
        d.dimensions = dimensions;
        d.timestamp = now;
        d.unit = "Microseconds";
        return d;
      };
      // PutMetricData takes at most 150 values per datum.
      telemetry::MetricDatum d = latency();
      for (const auto& [value, n] : *histogram) {
        if (d.values.size() == 150) {
          data.push_back(std::move(d));
          d = latency();
        }
        d.values.push_back(value);
        d.counts.push_back(n);
      }
      if (!d.values.empty()) data.push_back(std::move(d));
    }
    Status put = deps_.metrics->Put(key.account, key.region, "AWS/SageMaker", data);
    if (!put.ok()) {
      Log(LogLevel::kWarn, "sagemaker.metrics_dropped",
          {{"endpoint", key.endpoint}, {"error", put.message()}});
    }
  }
  return Status::Ok();
}

// ---- InvokeEndpointAsync -----------------------------------------------------------------

Result<Value> EndpointRuntime::InvokeAsync(const Value& in, aws::RequestContext& ctx) {
  const std::string name = in.GetString("EndpointName");
  std::optional<LiveEndpoint> live = endpoints_.Live(ctx.account_id, ctx.region, name);
  if (!live) {
    return ValidationError("Endpoint " + name + " of account " + ctx.account_id + " not found.");
  }
  NIMBUS_ASSIGN_OR_RETURN(
      control::Resource endpoint,
      deps_.resources->Get(Endpoints::Kind(), ctx.account_id, ctx.region, name));
  const Value& async = Member(Member(Member(endpoint.body, "_runtime"), "serving"), "async");
  const Value& output_config = Member(async, "OutputConfig");
  const std::string output_path = output_config.GetString("S3OutputPath");
  if (output_path.empty()) {
    return ValidationError("Endpoint " + name +
                           " is not configured for asynchronous inference (its endpoint "
                           "configuration has no AsyncInferenceConfig).");
  }
  const std::string input_location = in.GetString("InputLocation");
  NIMBUS_ASSIGN_OR_RETURN(objects::S3Location input, objects::ParseS3Uri(input_location));
  std::string inference_id = in.GetString("InferenceId");
  if (inference_id.empty()) inference_id = NewUuid();
  const std::string output_uri = JoinUri(output_path, inference_id + ".out");
  const std::string failure_path = output_config.GetString("S3FailurePath", output_path);
  const std::string failure_uri = JoinUri(failure_path, inference_id + "-error.out");

  serving::Invocation invocation;
  invocation.content_type = in.GetString("ContentType");
  invocation.accept = in.GetString("Accept");
  invocation.custom_attributes = in.GetString("CustomAttributes");
  const std::string account = ctx.account_id;
  const std::string region = ctx.region;
  auto task = [this, account, region, name, input, invocation, output_uri, failure_uri]() mutable {
    auto write = [this](const std::string& uri, std::string data) {
      auto location = objects::ParseS3Uri(uri);
      if (!location.ok()) return location.status();
      http::StringBodyReader reader(std::move(data));
      return deps_.objects->PutObject(location->bucket, location->key, reader, {}).status();
    };
    auto fail = [&](const std::string& message) {
      Status s = write(failure_uri, message);
      if (!s.ok()) {
        Log(LogLevel::kWarn, "sagemaker.async_failure_lost",
            {{"endpoint", name}, {"error", s.message()}});
      }
    };
    auto object = deps_.objects->GetObject(input.bucket, input.key, {});
    if (!object.ok())
      return fail("Cannot read the input " + input.ToUri() + ": " + object.status().message());
    auto data = object->body->ReadAll(1ull << 30);
    if (!data.ok())
      return fail("Cannot read the input " + input.ToUri() + ": " + data.status().message());
    invocation.body = std::move(*data);
    std::optional<LiveEndpoint> now_live = endpoints_.Live(account, region, name);
    if (!now_live) return fail("Endpoint " + name + " is no longer in service.");
    const auto start = SteadyClock::now();
    auto routed = endpoints_.router().Invoke(*now_live->route, "", invocation, 3600);
    if (!routed.ok()) return fail(routed.status().message());
    Record(account, region, name,
           Outcome{routed->response.status, routed->variant, routed->model_seconds},
           Seconds(start, SteadyClock::now()), 1);
    if (routed->response.status >= 400) {
      return fail("Received error (" + std::to_string(routed->response.status) +
                  ") from the model with message \"" + routed->response.body + "\"");
    }
    Status written = write(output_uri, std::move(routed->response.body));
    if (!written.ok()) fail("Cannot write the output to " + output_uri + ": " + written.message());
  };
  {
    std::lock_guard<std::mutex> lock(async_mu_);
    async_queue_.push_back(std::move(task));
  }
  async_cv_.notify_one();
  return Value::Object({{"InferenceId", inference_id},
                        {"OutputLocation", output_uri},
                        {"FailureLocation", failure_uri}});
}

void EndpointRuntime::AsyncLoop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(async_mu_);
      async_cv_.wait(lock, [this] { return stopping_ || !async_queue_.empty(); });
      if (stopping_) return;
      task = std::move(async_queue_.front());
      async_queue_.pop_front();
    }
    task();
  }
}

}  // namespace nimbus::services
