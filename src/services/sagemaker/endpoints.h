// Real-time endpoints: endpoint configs (CreateEndpointConfig …, documents) and endpoints
// (CreateEndpoint, UpdateEndpoint, UpdateEndpointWeightsAndCapacities, DescribeEndpoint,
// ListEndpoints, DeleteEndpoint), with the controller that keeps their model servers running.
//
// Each instance of a production variant is a `serve` worker (worker/serve_kind.h) launched
// through the executor in its own job directory (<data>/jobs/endpoint/<instance-id>), with
// the model's containers staged there (Models::Stage), admitted against the hosting
// scheduler's capacity. The controller reconciles each endpoint:
//   Creating   launch the config's instances; when every one answers /ping, publish the
//              routing table (serving::Router) and move to InService. An instance that
//              fails to start fails the endpoint with the worker's reason.
//   InService  health: an instance that exits is relaunched, one that fails /ping is taken
//              out of rotation until it answers again.
//   Updating   blue/green: a new config's instances come up beside the old ones; only when
//              all answer is the table switched, then the old ones drain (their requests in
//              flight finish) and stop. A new config that fails rolls back: the old one keeps
//              serving and the endpoint returns to InService with the FailureReason. A
//              capacity change (UpdateEndpointWeightsAndCapacities, autoscaling) adds or
//              drains instances of the serving config.
//   Deleting   stop every instance, remove the table, delete the resource.
// The controller's record ("_runtime" in the endpoint's body) lists the serving and target
// configs with their variants' desired counts and weights, and every instance with its
// state; model-server processes survive a server restart and are re-attached from it.
//
// Worker output goes to CloudWatch Logs (/aws/sagemaker/Endpoints/<name>, stream
// <variant>/<instance-id>), as SageMaker writes it.
//
// Thread-safety: the ControllerManager never reconciles one endpoint on two threads;
// handlers run concurrently with it (state in the ResourceStore, the live instances and
// capture settings behind mu_, the routing tables in the Router).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "aws/service.h"
#include "control/controller.h"
#include "control/resource_store.h"
#include "control/scalable.h"
#include "services/sagemaker/data_capture.h"
#include "services/sagemaker/models.h"
#include "services/sagemaker/sagemaker_service.h"
#include "serving/router.h"

namespace nimbus::services {

// What the data plane needs of a serving endpoint, published with its routing table.
struct LiveEndpoint {
  std::shared_ptr<const serving::EndpointRoute> route;
  std::shared_ptr<const CaptureSettings> capture;
  std::string arn;
};

class Endpoints : public control::Controller, public control::ScalableResourceProvider {
 public:
  static const control::ResourceKind& ConfigKind();
  static const control::ResourceKind& Kind();
  static constexpr const char* kControllerKind = "sagemaker:Endpoint";

  Endpoints(const SageMakerDeps& deps, Models& models);
  ~Endpoints() override;
  void Register(aws::ServiceRegistry& registry);

  // The serving state of an endpoint (nullopt: unknown or not in service). Cheap: the data
  // plane calls it on every request.
  std::optional<LiveEndpoint> Live(const std::string& account, const std::string& region,
                                   const std::string& name) const;
  serving::Router& router() { return router_; }
  DataCaptureWriter& capture() { return *capture_; }

  // control::Controller
  Result<std::optional<double>> Reconcile(const std::string& arn) override;
  Result<std::vector<std::string>> Pending() override;

  // control::ScalableResourceProvider ("sagemaker": endpoint/<name>/variant/<variant>,
  // sagemaker:variant:DesiredInstanceCount).
  Status Check(const control::ScalableResourceRef& ref) override;
  Result<double> GetCapacity(const control::ScalableResourceRef& ref) override;
  Status SetCapacity(const control::ScalableResourceRef& ref, double capacity) override;
  Result<control::PredefinedMetricSource> PredefinedMetric(const control::ScalableResourceRef& ref,
                                                           std::string_view metric_type) override;

 private:
  Result<Value> CreateConfig(const Value& in, aws::RequestContext& ctx);
  Result<Value> DescribeConfig(const Value& in, aws::RequestContext& ctx);
  Result<Value> ListConfigs(const Value& in, aws::RequestContext& ctx);
  Result<Value> DeleteConfig(const Value& in, aws::RequestContext& ctx);
  Result<Value> Create(const Value& in, aws::RequestContext& ctx);
  Result<Value> Update(const Value& in, aws::RequestContext& ctx);
  Result<Value> UpdateWeightsAndCapacities(const Value& in, aws::RequestContext& ctx);
  Result<Value> Describe(const Value& in, aws::RequestContext& ctx);
  Result<Value> List(const Value& in, aws::RequestContext& ctx);
  Result<Value> Delete(const Value& in, aws::RequestContext& ctx);

  // The "_runtime" plan for serving an endpoint config: its variants with their counts,
  // weights, instance types and models. Validates that the models exist.
  Result<Value> PlanFor(const std::string& account, const std::string& region,
                        const std::string& config_name, int64_t generation);
  Result<std::optional<double>> ReconcileEndpoint(const control::Resource& endpoint);
  Result<std::optional<double>> DeleteEndpoint(const control::Resource& endpoint);
  // Brings one instance one step forward: stage and launch, then poll and ping. Returns
  // its new state ("queued", "launched", "ready", "failed: <reason>", "stopped").
  std::string Step(const control::Resource& endpoint, Value& instance, bool* changed);
  void Publish(const control::Resource& endpoint, const Value& runtime);
  void ShipLogs(const control::Resource& endpoint, const Value& instance);
  std::shared_ptr<serving::Instance> LiveInstance(const std::string& id,
                                                  const std::string& job_dir);
  void DropInstance(const std::string& id);
  Status ParseVariantRef(const control::ScalableResourceRef& ref, std::string* endpoint,
                         std::string* variant) const;
  static std::string Key(const std::string& account, const std::string& region,
                         const std::string& name);

  SageMakerDeps deps_;
  Models& models_;
  serving::Router router_;
  std::unique_ptr<DataCaptureWriter> capture_;
  mutable std::mutex mu_;
  // Model-server processes this server talks to, by instance id; GUARDED_BY(mu_).
  std::map<std::string, std::shared_ptr<serving::Instance>> instances_;
  // Routing table, capture settings and ARN of each serving endpoint, by Key(). Read on
  // every request, written by the controller: readers share the lock.
  mutable std::shared_mutex live_mu_;
  std::map<std::string, LiveEndpoint> live_;  // GUARDED_BY(live_mu_)
  std::set<std::string> scheduled_;  // instance ids the hosting scheduler holds; GUARDED_BY(mu_)
};

}  // namespace nimbus::services
