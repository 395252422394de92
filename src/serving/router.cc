#include "serving/router.h"

#include <chrono>

#include "serving/model_server.h"

namespace nimbus::serving {
namespace {

bool HasInstanceInRotation(const VariantRoute& variant) {
  for (const auto& instance : variant.instances) {
    if (instance->in_rotation.load(std::memory_order_relaxed)) return true;
  }
  return false;
}

// A cheap, well-spread number in [0, 1) from a counter (splitmix64).
double Dice(uint64_t n) {
  uint64_t z = n * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

}  // namespace

void Router::Set(const std::string& key, std::shared_ptr<const EndpointRoute> route) {
  std::lock_guard<std::mutex> lock(mu_);
  routes_[key] = std::move(route);
}

void Router::Remove(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  routes_.erase(key);
}

std::shared_ptr<const EndpointRoute> Router::Find(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = routes_.find(key);
  return it == routes_.end() ? nullptr : it->second;
}

const VariantRoute* Router::PickVariant(const EndpointRoute& route, double dice) {
  double total = 0;
  const VariantRoute* last = nullptr;
  for (const VariantRoute& variant : route.variants) {
    if (variant.weight > 0 && HasInstanceInRotation(variant)) total += variant.weight;
  }
  if (total <= 0) {
    // All weights zero: SageMaker then routes nowhere but to named targets; Nimbus
    // falls back to any variant that can answer rather than failing the request.
    for (const VariantRoute& variant : route.variants) {
      if (HasInstanceInRotation(variant)) return &variant;
    }
    return nullptr;
  }
  double point = dice * total;
  for (const VariantRoute& variant : route.variants) {
    if (variant.weight <= 0 || !HasInstanceInRotation(variant)) continue;
    last = &variant;
    if (point < variant.weight) return &variant;
    point -= variant.weight;
  }
  return last;
}

std::shared_ptr<Instance> Router::PickInstance(const VariantRoute& variant, size_t start) {
  std::shared_ptr<Instance> best;
  int best_outstanding = 0;
  const size_t n = variant.instances.size();
  for (size_t i = 0; i < n; ++i) {
    const auto& instance = variant.instances[(start + i) % n];
    if (!instance->in_rotation.load(std::memory_order_relaxed)) continue;
    const int outstanding = instance->outstanding.load(std::memory_order_relaxed);
    if (!best || outstanding < best_outstanding) {
      best = instance;
      best_outstanding = outstanding;
    }
  }
  return best;
}

Result<RoutedResponse> Router::Invoke(const EndpointRoute& route, std::string_view target_variant,
                                      const Invocation& invocation, double timeout_seconds) {
  const uint64_t n = counter_.fetch_add(1, std::memory_order_relaxed);
  const VariantRoute* variant = nullptr;
  if (!target_variant.empty()) {
    for (const VariantRoute& v : route.variants) {
      if (v.name == target_variant) variant = &v;
    }
    if (variant == nullptr) {
      return Status::NotFound("The variant \"" + std::string(target_variant) +
                              "\" is not a production variant of endpoint \"" +
                              route.endpoint_name + "\".");
    }
  } else {
    variant = PickVariant(route, Dice(n));
  }
  std::shared_ptr<Instance> instance =
      variant ? PickInstance(*variant, static_cast<size_t>(n)) : nullptr;
  if (!instance) {
    return Status::Internal("No instance of endpoint \"" + route.endpoint_name +
                            "\" is in service to answer the request.");
  }
  HeaderList headers;
  headers.reserve(3);
  if (!invocation.content_type.empty())
    headers.emplace_back("Content-Type", invocation.content_type);
  if (!invocation.accept.empty()) headers.emplace_back("Accept", invocation.accept);
  if (!invocation.custom_attributes.empty()) {
    headers.emplace_back(kCustomAttributesHeader, invocation.custom_attributes);
  }
  instance->outstanding.fetch_add(1, std::memory_order_relaxed);
  const auto start = std::chrono::steady_clock::now();
  Result<HttpMessage> response =
      instance->pool.Call("POST", "/invocations", headers, invocation.body, timeout_seconds);
  const auto end = std::chrono::steady_clock::now();
  instance->outstanding.fetch_sub(1, std::memory_order_relaxed);
  if (!response.ok()) return response.status();
  RoutedResponse out;
  out.variant = variant->name;
  out.instance = instance->id;
  out.response = std::move(*response);
  out.model_seconds = std::chrono::duration<double>(end - start).count();
  return out;
}

}  // namespace nimbus::serving
