// CustomResourceProvider: Application Auto Scaling's "custom-resource" namespace, which
// scales a resource of the caller's own (https://github.com/aws/aws-auto-scaling-custom-resource).
// The ResourceId is the URL of the resource's scalable dimension; Application Auto Scaling
// reads it with GET and changes it with PATCH {"desiredCapacity": N}, and the resource
// answers both with {"actualCapacity", "desiredCapacity", "dimensionName", "resourceName",
// "scalableTargetDimensionId", "scalingStatus", "version"}.
//
// Differences from AWS: the URL must be plain http:// (the HTTP client has no TLS; on AWS
// it is an API Gateway https:// endpoint), and requests are not SigV4-signed (AWS signs
// them with the service-linked role). The server makes these requests on behalf of a
// caller allowed to RegisterScalableTarget, to the address that caller named.
//
// Thread-safety: stateless; safe from any thread. Each call is one blocking HTTP exchange
// bounded by the timeout.
#pragma once

#include <string>
#include <string_view>

#include "control/scalable.h"

namespace nimbus::services::autoscaling {

class CustomResourceProvider : public control::ScalableResourceProvider {
 public:
  explicit CustomResourceProvider(double timeout_seconds = 10) : timeout_(timeout_seconds) {}

  Status Check(const control::ScalableResourceRef& ref) override;
  Result<double> GetCapacity(const control::ScalableResourceRef& ref) override;
  Status SetCapacity(const control::ScalableResourceRef& ref, double capacity) override;
  // Custom resources have no predefined metrics: always kNotFound.
  Result<control::PredefinedMetricSource> PredefinedMetric(const control::ScalableResourceRef& ref,
                                                           std::string_view metric_type) override;

 private:
  double timeout_;
};

}  // namespace nimbus::services::autoscaling
