#include "services/autoscaling/custom_resource.h"

#include <optional>
#include <utility>

#include "core/json.h"
#include "core/strings.h"
#include "http/client.h"

namespace nimbus::services::autoscaling {
namespace {

constexpr std::string_view kDimension = "custom-resource:ResourceType:Property";

struct Url {
  std::string host;
  uint16_t port = 80;
  std::string target;  // path and query
};

Status Invalid(std::string msg) { return Status::Aws("ValidationException", 400, std::move(msg)); }

Result<Url> ParseUrl(const std::string& resource_id) {
  if (StartsWith(resource_id, "https://")) {
    return Invalid("Nimbus reaches custom resources over plain HTTP only: ResourceId " +
                   resource_id + " must be an http:// URL.");
  }
  if (!StartsWith(resource_id, "http://")) {
    return Invalid(
        "The ResourceId of a custom-resource scalable target must be the URL of its "
        "scalable dimension (http://host:port/path), not " +
        resource_id + ".");
  }
  std::string_view rest = std::string_view(resource_id).substr(7);
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  Url url;
  url.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
    auto port = ParseInt(authority.substr(colon + 1));
    if (!port || *port <= 0 || *port > 65535) {
      return Invalid("The ResourceId " + resource_id + " has an invalid port.");
    }
    url.port = static_cast<uint16_t>(*port);
    authority = authority.substr(0, colon);
  }
  url.host = std::string(authority);
  if (url.host.empty()) return Invalid("The ResourceId " + resource_id + " names no host.");
  return url;
}

// One exchange with the resource; the capacity it reports as desired.
Result<double> Exchange(const std::string& resource_id, const std::string& method,
                        const std::string& body, double timeout) {
  NIMBUS_ASSIGN_OR_RETURN(Url url, ParseUrl(resource_id));
  http::Headers headers;
  headers.Set("Accept", "application/json");
  if (!body.empty()) headers.Set("Content-Type", "application/json");
  auto response = http::HttpCall(url.host, url.port, method, url.target, headers, body, timeout);
  if (!response.ok()) {
    return Status::Internal("the custom resource " + resource_id +
                            " could not be reached: " + response.status().message());
  }
  if (response->status < 200 || response->status > 299) {
    return Status::Internal("the custom resource " + resource_id + " answered " + method +
                            " with HTTP " + std::to_string(response->status));
  }
  auto json = ParseJson(response->body);
  const Value* desired = json.ok() ? json->Find("desiredCapacity") : nullptr;
  if (!desired || !desired->is_number()) {
    return Status::Internal("the custom resource " + resource_id +
                            " answered without a numeric desiredCapacity");
  }
  return desired->AsDouble();
}

}  // namespace

Status CustomResourceProvider::Check(const control::ScalableResourceRef& ref) {
  if (ref.dimension != kDimension) {
    return Invalid(
        "Unsupported service namespace, resource type or scalable dimension: the "
        "scalable dimension of a custom resource is " +
        std::string(kDimension) + ", not " + ref.dimension + ".");
  }
  auto capacity = Exchange(ref.resource_id, "GET", "", timeout_);
  if (!capacity.ok()) {
    if (capacity.status().code() == "ValidationException") return capacity.status();
    return Invalid("Unable to read the scalable dimension of custom resource " + ref.resource_id +
                   ": " + capacity.status().message());
  }
  return Status::Ok();
}

Result<double> CustomResourceProvider::GetCapacity(const control::ScalableResourceRef& ref) {
  return Exchange(ref.resource_id, "GET", "", timeout_);
}

Status CustomResourceProvider::SetCapacity(const control::ScalableResourceRef& ref,
                                           double capacity) {
  const std::string body = ToJson(Value::Object({{"desiredCapacity", capacity}}));
  return Exchange(ref.resource_id, "PATCH", body, timeout_).status();
}

Result<control::PredefinedMetricSource> CustomResourceProvider::PredefinedMetric(
    const control::ScalableResourceRef&, std::string_view metric_type) {
  return Status::NotFound("custom resources have no predefined metric " + std::string(metric_type));
}

}  // namespace nimbus::services::autoscaling
