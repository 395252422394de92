// Scalable resources: how Application Auto Scaling (services/autoscaling) changes the
// capacity of a resource another service owns, without knowing that service. The owner
// (SageMaker for "sagemaker" endpoint variants) registers a ScalableResourceProvider for
// its ServiceNamespace; the autoscaling service registers targets against it and, when a
// policy fires, sets the new capacity through it.
//
// Resource ids and dimensions are Application Auto Scaling's: for SageMaker
// "endpoint/<EndpointName>/variant/<VariantName>" and
// "sagemaker:variant:DesiredInstanceCount".
//
// Thread-safety: providers are called from request handlers and the autoscaling task at
// once and must be thread-safe. The registry is filled at start-up and read-only after.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace nimbus::control {

struct ScalableResourceRef {
  std::string account;
  std::string region;
  std::string resource_id;
  std::string dimension;
};

// What the scaling engine needs to know of a resource to apply a predefined metric.
struct PredefinedMetricSource {
  std::string ns;                                               // "AWS/SageMaker"
  std::string metric_name;                                      // "Invocations"
  std::vector<std::pair<std::string, std::string>> dimensions;  // name, value
};

class ScalableResourceProvider {
 public:
  virtual ~ScalableResourceProvider() = default;
  // OK when the resource exists and the dimension is one it scales; otherwise the
  // ValidationException Application Auto Scaling returns, naming the resource.
  virtual Status Check(const ScalableResourceRef& ref) = 0;
  // The capacity the resource has now (the variant's desired instance count).
  virtual Result<double> GetCapacity(const ScalableResourceRef& ref) = 0;
  // Asks the owner to move to `capacity` (already within the target's min/max); the
  // owner may refuse (e.g. an endpoint that is Updating) with an error saying why.
  virtual Status SetCapacity(const ScalableResourceRef& ref, double capacity) = 0;
  // The metric behind a predefined metric type ("SageMakerVariantInvocationsPerInstance"):
  // the engine divides its per-minute Sum by the current capacity. kNotFound for types
  // this namespace does not have.
  virtual Result<PredefinedMetricSource> PredefinedMetric(const ScalableResourceRef& ref,
                                                          std::string_view metric_type) = 0;
};

class ScalableResourceRegistry {
 public:
  void Register(std::string service_namespace, ScalableResourceProvider* provider) {
    providers_[std::move(service_namespace)] = provider;
  }
  // nullptr when no service registered the namespace.
  ScalableResourceProvider* Find(std::string_view service_namespace) const {
    auto it = providers_.find(std::string(service_namespace));
    return it == providers_.end() ? nullptr : it->second;
  }

 private:
  std::map<std::string, ScalableResourceProvider*> providers_;
};

}  // namespace nimbus::control
