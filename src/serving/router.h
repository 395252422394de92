// Router: the data plane of real-time endpoints (ARCHITECTURE.md §4). For every endpoint
// that is serving it holds a routing table — variants with their weights, each variant's
// model-server instances — published by the endpoint controller as an immutable snapshot
// and swapped atomically, so a blue/green update changes where new requests go without
// disturbing requests in flight (their instances stay alive through shared ownership).
//
// A request picks a variant by weight (or the TargetVariant it names) among the variants
// that have an instance in rotation, then the in-rotation instance with the fewest
// outstanding requests (ties broken by a rotating start), and is sent over that instance's
// pool of keep-alive connections.
//
// Thread-safety: all methods are thread-safe; snapshots are immutable once published, and
// Instance's counters are atomics.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "serving/inference.h"
#include "serving/unix_http.h"

namespace nimbus::serving {

// One model-server process of a variant. Requests are not held back here: the model
// server queues what it cannot compute at once (first come, first served), which measured
// faster than admitting a fixed number at a time from the router.
struct Instance {
  Instance(std::string id, std::string socket_path)
      : id(std::move(id)), pool(std::move(socket_path)) {}
  const std::string id;  // the worker's job id
  ConnectionPool pool;
  std::atomic<int> outstanding{0};
  // Ready and passing /ping; only instances in rotation get requests.
  std::atomic<bool> in_rotation{false};
};

struct VariantRoute {
  std::string name;
  double weight = 1;
  std::vector<std::shared_ptr<Instance>> instances;
};

struct EndpointRoute {
  std::string endpoint_name;
  std::vector<VariantRoute> variants;
};

// What came back from a model server.
struct RoutedResponse {
  std::string variant;
  std::string instance;
  HttpMessage response;
  double model_seconds = 0;  // from sending the request to the full response
};

class Router {
 public:
  // Publishes (or replaces) the table of endpoint `key` (account/region/name).
  void Set(const std::string& key, std::shared_ptr<const EndpointRoute> route);
  void Remove(const std::string& key);
  std::shared_ptr<const EndpointRoute> Find(const std::string& key) const;

  // Sends the invocation to an instance of the endpoint. Errors: kNotFound when
  // target_variant is not one of its variants; kUnavailable-like kInternal ("no instance
  // in rotation") when nothing can answer; kInternal when the exchange with the model
  // server broke (the instance is then left for the controller's health check).
  Result<RoutedResponse> Invoke(const EndpointRoute& route, std::string_view target_variant,
                                const Invocation& invocation, double timeout_seconds = 60);

  // The variant a request would go to (exposed for tests): by weight using `dice` in
  // [0, 1), among variants with an instance in rotation; nullptr when none.
  static const VariantRoute* PickVariant(const EndpointRoute& route, double dice);
  // The in-rotation instance with the fewest outstanding requests; nullptr when none.
  static std::shared_ptr<Instance> PickInstance(const VariantRoute& variant, size_t start);

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const EndpointRoute>> routes_;  // GUARDED_BY(mu_)
  std::atomic<uint64_t> counter_{0};
};

}  // namespace nimbus::serving
