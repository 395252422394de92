// The SageMaker runtime (`sagemaker-runtime`, rest-json): InvokeEndpoint and
// InvokeEndpointAsync, the data plane of the endpoints that Endpoints (endpoints.h) keeps.
//
// InvokeEndpoint looks the endpoint up in the live table (a map lookup), has the Router pick
// a variant and instance and forward the body over a pooled Unix-socket connection, and
// answers with the model's body, ContentType, CustomAttributes and InvokedProductionVariant.
// Errors are SageMaker's: ValidationError for an unknown or not-in-service endpoint, an
// unknown TargetVariant or a body over 6 MB (the service model's limit); ModelError
// (424) carrying the model's status and message when the model answers 4xx/5xx;
// ServiceUnavailable (503) when no instance can answer.
//
// Every invocation is counted for CloudWatch (namespace AWS/SageMaker, dimensions
// EndpointName and VariantName): Invocations, InvocationsPerInstance, Invocation4XXErrors,
// Invocation5XXErrors, ModelLatency (from asking the router for an instance to the
// model's whole answer) and OverheadLatency (the rest, from the request's arrival:
// authentication, parsing, routing), in microseconds. Counts are aggregated in memory,
// latencies as histograms of two significant digits, and written once a second (counts as
// statistic sets, latencies as value/count arrays, so CloudWatch answers their
// percentiles); the request path pays one lock of a per-thread stripe and a map lookup. Captured
// data goes to the endpoint's DataCaptureWriter.
//
// InvokeEndpointAsync (endpoints whose config has AsyncInferenceConfig) queues the request:
// a small pool of threads reads InputLocation from S3, invokes as above, and writes the
// answer to <S3OutputPath>/<InferenceId>.out (or the error to
// <S3FailurePath>/<InferenceId>-error.out). The queue is in memory: requests accepted but
// not yet run are lost if the server stops.
//
// Thread-safety: handlers run concurrently; shared state is guarded inside.
#pragma once

#include <array>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "aws/service.h"
#include "services/sagemaker/endpoints.h"

namespace nimbus::services {

class EndpointRuntime {
 public:
  EndpointRuntime(const SageMakerDeps& deps, Endpoints& endpoints);
  ~EndpointRuntime();

  void Register(aws::ServiceRegistry& registry);
  // Writes the metrics counted since the last flush (the server calls it every second).
  Status FlushMetrics();

 private:
  struct Counters {
    double invocations = 0;
    double errors_4xx = 0;
    double errors_5xx = 0;
    double instances = 1;  // instances in the variant when last invoked
    // Latencies in microseconds, rounded to two significant digits -> count: published as
    // value/count arrays, so that CloudWatch answers percentiles of them.
    std::map<double, double> model_latency;
    std::map<double, double> overhead_latency;
  };
  struct MetricKey {
    std::string account, region, endpoint, variant;
    bool operator<(const MetricKey& o) const {
      return std::tie(account, region, endpoint, variant) <
             std::tie(o.account, o.region, o.endpoint, o.variant);
    }
  };
  struct Outcome {
    int http_status = 200;  // what the model answered, or 5xx for an internal failure
    std::string variant;
    double model_seconds = 0;
  };

  Result<Value> Invoke(const Value& in, aws::RequestContext& ctx);
  Result<Value> InvokeAsync(const Value& in, aws::RequestContext& ctx);
  void Record(const std::string& account, const std::string& region, const std::string& endpoint,
              const Outcome& outcome, double total_seconds, size_t instances);
  void AsyncLoop();

  // Counters are striped by thread, so that concurrent requests rarely share a lock; the
  // flush merges the stripes.
  struct Stripe {
    std::mutex mu;
    std::map<MetricKey, Counters> counters;  // GUARDED_BY(mu)
  };
  static constexpr size_t kStripes = 8;

  SageMakerDeps deps_;
  Endpoints& endpoints_;
  std::array<Stripe, kStripes> stripes_;

  std::mutex async_mu_;
  std::condition_variable async_cv_;
  std::deque<std::function<void()>> async_queue_;  // GUARDED_BY(async_mu_)
  bool stopping_ = false;                          // GUARDED_BY(async_mu_)
  std::vector<std::thread> async_threads_;
};

}  // namespace nimbus::services
