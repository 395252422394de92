#include "services/sagemaker/endpoints.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "control/instance_types.h"
#include "control/job_dir.h"
#include "control/log_tail.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/logging.h"
#include "core/strings.h"
#include "services/sagemaker/sagemaker_common.h"
#include "serving/model_server.h"

namespace nimbus::services {
namespace {

using control::Resource;

constexpr const char* kCreating = "Creating";
constexpr const char* kInService = "InService";
constexpr const char* kUpdating = "Updating";
constexpr const char* kDeleting = "Deleting";
constexpr const char* kFailed = "Failed";
constexpr const char* kLogGroup = "/aws/sagemaker/Endpoints/";
constexpr const char* kServerlessInstanceType = "ml.m5.large";
// A replaced instance keeps its process this long after it left the routing table, and
// until its last request in flight has finished, so that no request is cut off.
constexpr double kDrainSeconds = 2;
constexpr double kMaxDrainSeconds = 60;
constexpr double kPingTimeout = 2;

control::ResourceKind MakeConfigKind() {
  control::StateMachine states;
  states.initial_status = "Created";
  states.terminal = {"Created"};
  control::ResourceKind kind =
      control::SageMakerKind("EndpointConfig", "endpoint configuration", "endpoint-config", states);
  kind.errors.not_found = {"ValidationException", 400,
                           "Could not find endpoint configuration \"{arn}\"."};
  kind.errors.in_use = {"ValidationException", 400,
                        "Cannot create already existing endpoint configuration \"{arn}\"."};
  return kind;
}

control::ResourceKind MakeKind() {
  control::StateMachine states;
  states.initial_status = kCreating;
  states.transitions = {{kCreating, {kInService, kFailed, kDeleting}},
                        {kInService, {kUpdating, kDeleting}},
                        {kUpdating, {kInService, kFailed, kDeleting}},
                        {kFailed, {kUpdating, kDeleting}},
                        {kDeleting, {}}};
  control::ResourceKind kind = control::SageMakerKind("Endpoint", "endpoint", "endpoint", states);
  kind.errors.not_found = {"ValidationException", 400, "Could not find endpoint \"{arn}\"."};
  kind.errors.in_use = {"ValidationException", 400,
                        "Cannot create already existing endpoint \"{arn}\"."};
  kind.errors.invalid_transition = {"ValidationException", 400,
                                    "Cannot update in-progress endpoint \"{arn}\"."};
  return kind;
}

double Num(const Value& v, std::string_view key, double fallback) {
  const Value* m = v.is_map() ? v.Find(key) : nullptr;
  return m && m->is_number() ? m->AsDouble() : fallback;
}

double Now() { return SystemClock::Instance().Now(); }

Result<std::optional<double>> Again(double seconds) { return std::optional<double>(seconds); }

const Value& RuntimeOf(const Resource& endpoint) { return Member(endpoint.body, "_runtime"); }

Value& InstancesOf(Value& runtime) {
  Value& list = runtime["instances"];
  if (!list.is_list()) list = Value::MakeList();
  return list;
}

bool Active(const Value& instance) {
  std::string state = instance.GetString("state");
  return state != "draining" && state != "stopping" && state != "stopped";
}

bool IsFailedState(const std::string& state) { return StartsWith(state, "failed"); }

// Ready instances of the plan's generation and the variant.
int ReadyCount(const Value& runtime, int64_t generation, const std::string& variant) {
  int n = 0;
  if (const Value* list = runtime.Find("instances"); list && list->is_list()) {
    for (const Value& i : list->list()) {
      if (i.GetInt("generation") == generation && i.GetString("variant") == variant &&
          i.GetString("state") == "ready") {
        ++n;
      }
    }
  }
  return n;
}

// Whether every variant of the plan has its desired number of ready instances.
bool PlanSatisfied(const Value& runtime, const Value& plan) {
  const int64_t generation = plan.GetInt("generation");
  for (const Value& variant : Member(plan, "variants").list()) {
    if (ReadyCount(runtime, generation, variant.GetString("name")) < variant.GetInt("count", 1)) {
      return false;
    }
  }
  return true;
}

std::optional<std::string> PlanFailure(const Value& runtime, int64_t generation) {
  if (const Value* list = runtime.Find("instances"); list && list->is_list()) {
    for (const Value& i : list->list()) {
      std::string state = i.GetString("state");
      if (i.GetInt("generation") == generation && IsFailedState(state)) {
        return i.GetString("reason", "The model server failed to start");
      }
    }
  }
  return std::nullopt;
}

Value VariantSummary(const Value& runtime, const Value& plan, const Value* current_plan) {
  Value variants = Value::MakeList();
  const int64_t generation = plan.GetInt("generation");
  for (const Value& variant : Member(plan, "variants").list()) {
    const std::string name = variant.GetString("name");
    Value out = Value::Object({{"VariantName", name}});
    Value images = Value::MakeList();
    for (const Value& image : Member(variant, "images").list()) {
      images.Append(Value::Object({{"SpecifiedImage", image},
                                   {"ResolvedImage", image},
                                   {"ResolutionTime", Value::Timestamp(Num(plan, "at", 0))}}));
    }
    out["DeployedImages"] = std::move(images);
    double current_weight = variant.Find("weight") ? Num(variant, "weight", 1) : 1;
    if (current_plan) {
      for (const Value& v : Member(*current_plan, "variants").list()) {
        if (v.GetString("name") == name)
          current_weight = Num(v, "current_weight", Num(v, "weight", 1));
      }
    }
    out["CurrentWeight"] = Num(variant, "current_weight", current_weight);
    out["DesiredWeight"] = Num(variant, "weight", 1);
    if (const Value* serverless = variant.Find("serverless"); serverless && serverless->is_map()) {
      out["CurrentServerlessConfig"] = *serverless;
      out["DesiredServerlessConfig"] = *serverless;
    } else {
      out["CurrentInstanceCount"] = int64_t{ReadyCount(runtime, generation, name)};
      out["DesiredInstanceCount"] = variant.GetInt("count", 1);
    }
    variants.Append(std::move(out));
  }
  return variants;
}

std::string NewInstanceId(const std::string& variant) {
  std::string clean;
  for (char c : ToLower(variant)) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') clean.push_back(c);
  }
  if (clean.size() > 40) clean.resize(40);
  return clean + "-" + RandomString(12, "0123456789abcdef");
}

}  // namespace

const control::ResourceKind& Endpoints::ConfigKind() {
  static const control::ResourceKind kind = MakeConfigKind();
  return kind;
}

const control::ResourceKind& Endpoints::Kind() {
  static const control::ResourceKind kind = MakeKind();
  return kind;
}

Endpoints::Endpoints(const SageMakerDeps& deps, Models& models)
    : deps_(deps),
      models_(models),
      capture_(std::make_unique<DataCaptureWriter>(
          *deps.objects, DataCaptureOptions{deps.capture_flush_seconds})) {}

Endpoints::~Endpoints() = default;

std::string Endpoints::Key(const std::string& account, const std::string& region,
                           const std::string& name) {
  return account + "/" + region + "/" + ToLower(name);
}

void Endpoints::Register(aws::ServiceRegistry& registry) {
  deps_.resources->RegisterKind(ConfigKind());
  deps_.resources->RegisterKind(Kind());
  auto bind = [this](auto method) {
    return [this, method](const Value& in, aws::RequestContext& ctx) {
      return (this->*method)(in, ctx);
    };
  };
  auto config_arn = [](const Value& in, const aws::RequestContext& ctx) {
    return ConfigKind().Arn(ctx.account_id, ctx.region, in.GetString("EndpointConfigName"));
  };
  auto endpoint_arn = [](const Value& in, const aws::RequestContext& ctx) {
    return Kind().Arn(ctx.account_id, ctx.region, in.GetString("EndpointName"));
  };
  registry.Register("sagemaker", "CreateEndpointConfig", bind(&Endpoints::CreateConfig),
                    config_arn);
  registry.Register("sagemaker", "DescribeEndpointConfig", bind(&Endpoints::DescribeConfig),
                    config_arn);
  registry.Register("sagemaker", "ListEndpointConfigs", bind(&Endpoints::ListConfigs));
  registry.Register("sagemaker", "DeleteEndpointConfig", bind(&Endpoints::DeleteConfig),
                    config_arn);
  registry.Register("sagemaker", "CreateEndpoint", bind(&Endpoints::Create), endpoint_arn);
  registry.Register("sagemaker", "UpdateEndpoint", bind(&Endpoints::Update), endpoint_arn);
  registry.Register("sagemaker", "UpdateEndpointWeightsAndCapacities",
                    bind(&Endpoints::UpdateWeightsAndCapacities), endpoint_arn);
  registry.Register("sagemaker", "DescribeEndpoint", bind(&Endpoints::Describe), endpoint_arn);
  registry.Register("sagemaker", "ListEndpoints", bind(&Endpoints::List));
  registry.Register("sagemaker", "DeleteEndpoint", bind(&Endpoints::Delete), endpoint_arn);
  deps_.controllers->Register(kControllerKind, this);
  if (deps_.scalable) deps_.scalable->Register("sagemaker", this);
}

// ---- Endpoint configs --------------------------------------------------------------------

Result<Value> Endpoints::CreateConfig(const Value& in, aws::RequestContext& ctx) {
  const Value& variants = Member(in, "ProductionVariants");
  if (!variants.is_list() || variants.list().empty()) {
    return Invalid("ProductionVariants must contain at least one variant");
  }
  std::set<std::string> names;
  for (const Value& variant : variants.list()) {
    std::string name = variant.GetString("VariantName");
    if (!names.insert(ToLower(name)).second) {
      return Invalid("Variant names must be unique: " + name + " appears more than once");
    }
    NIMBUS_RETURN_IF_ERROR(
        deps_.resources
            ->Get(Models::Kind(), ctx.account_id, ctx.region, variant.GetString("ModelName"))
            .status());
    if (variant.Has("ServerlessConfig")) continue;
    std::string type = variant.GetString("InstanceType");
    if (type.empty()) {
      return Invalid("Variant " + name +
                     ": InstanceType and InitialInstanceCount are required "
                     "unless ServerlessConfig is given");
    }
    if (control::FindInstanceType(type) == nullptr) {
      return Invalid("Variant " + name + ": instance type " + type + " is not one Nimbus knows");
    }
    if (variant.GetInt("InitialInstanceCount", 0) < 1) {
      return Invalid("Variant " + name + ": InitialInstanceCount must be at least 1");
    }
  }
  if (const Value* capture = in.Find("DataCaptureConfig")) {
    NIMBUS_RETURN_IF_ERROR(CaptureSettings::FromConfig(*capture).status());
  }
  NIMBUS_ASSIGN_OR_RETURN(control::Tags tags, ParseTags(in));
  Value body = in;
  body.Erase("Tags");
  NIMBUS_ASSIGN_OR_RETURN(
      Resource config, deps_.resources->Create(ConfigKind(), ctx.account_id, ctx.region,
                                               in.GetString("EndpointConfigName"), std::move(body),
                                               std::move(tags)));
  return Value::Object({{"EndpointConfigArn", config.arn}});
}

Result<Value> Endpoints::DescribeConfig(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(Resource config,
                          deps_.resources->Get(ConfigKind(), ctx.account_id, ctx.region,
                                               in.GetString("EndpointConfigName")));
  Value out = PublicBody(config.body);
  out["EndpointConfigArn"] = config.arn;
  out["CreationTime"] = Value::Timestamp(config.created_at);
  Value& variants = out["ProductionVariants"];
  for (Value& variant : variants.list()) {
    if (!variant.Has("InitialVariantWeight")) variant["InitialVariantWeight"] = 1.0;
  }
  return out;
}

Result<Value> Endpoints::ListConfigs(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(control::ListQuery query, control::ListQueryFromInput(ConfigKind(), in));
  NIMBUS_ASSIGN_OR_RETURN(control::ListPage page,
                          deps_.resources->List(ConfigKind(), ctx.account_id, ctx.region, query));
  Value list = Value::MakeList();
  for (const Resource& config : page.items) {
    list.Append(Value::Object({{"EndpointConfigName", config.name},
                               {"EndpointConfigArn", config.arn},
                               {"CreationTime", Value::Timestamp(config.created_at)}}));
  }
  Value out = Value::Object({{"EndpointConfigs", std::move(list)}});
  if (!page.next_token.empty()) out["NextToken"] = page.next_token;
  return out;
}

Result<Value> Endpoints::DeleteConfig(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_RETURN_IF_ERROR(deps_.resources->Delete(ConfigKind(), ctx.account_id, ctx.region,
                                                 in.GetString("EndpointConfigName")));
  return Value::MakeMap();
}

// ---- Endpoints: handlers -----------------------------------------------------------------

Result<Value> Endpoints::PlanFor(const std::string& account, const std::string& region,
                                 const std::string& config_name, int64_t generation) {
  NIMBUS_ASSIGN_OR_RETURN(Resource config,
                          deps_.resources->Get(ConfigKind(), account, region, config_name));
  Value variants = Value::MakeList();
  for (const Value& variant : Member(config.body, "ProductionVariants").list()) {
    NIMBUS_ASSIGN_OR_RETURN(Resource model, deps_.resources->Get(Models::Kind(), account, region,
                                                                 variant.GetString("ModelName")));
    Value images = Value::MakeList();
    for (const Value& container : Models::Containers(model)) {
      images.Append(container.GetString("Image"));
    }
    Value plan = Value::Object({{"name", variant.GetString("VariantName")},
                                {"model", model.name},
                                {"images", std::move(images)},
                                {"weight", Num(variant, "InitialVariantWeight", 1.0)}});
    if (const Value* serverless = variant.Find("ServerlessConfig")) {
      plan["serverless"] = *serverless;
      plan["instance_type"] = kServerlessInstanceType;
      plan["count"] = int64_t{1};
    } else {
      plan["instance_type"] = variant.GetString("InstanceType");
      plan["count"] = variant.GetInt("InitialInstanceCount", 1);
    }
    variants.Append(std::move(plan));
  }
  Value plan = Value::Object({{"config", config.name},
                              {"generation", generation},
                              {"variants", std::move(variants)},
                              {"at", Now()}});
  if (const Value* capture = config.body.Find("DataCaptureConfig")) plan["capture"] = *capture;
  if (const Value* async = config.body.Find("AsyncInferenceConfig")) plan["async"] = *async;
  return plan;
}

Result<Value> Endpoints::Create(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(
      Value plan, PlanFor(ctx.account_id, ctx.region, in.GetString("EndpointConfigName"), 1));
  NIMBUS_ASSIGN_OR_RETURN(control::Tags tags, ParseTags(in));
  Value body = in;
  body.Erase("Tags");
  body["_runtime"] = Value::Object(
      {{"generation", int64_t{1}}, {"target", std::move(plan)}, {"instances", Value::MakeList()}});
  NIMBUS_ASSIGN_OR_RETURN(
      Resource endpoint,
      deps_.resources->Create(Kind(), ctx.account_id, ctx.region, in.GetString("EndpointName"),
                              std::move(body), std::move(tags)));
  deps_.controllers->Notify(kControllerKind, endpoint.arn);
  return Value::Object({{"EndpointArn", endpoint.arn}});
}

Result<Value> Endpoints::Update(const Value& in, aws::RequestContext& ctx) {
  const std::string name = in.GetString("EndpointName");
  NIMBUS_ASSIGN_OR_RETURN(Resource current,
                          deps_.resources->Get(Kind(), ctx.account_id, ctx.region, name));
  if (current.status != kInService && current.status != kFailed) {
    return Invalid("Cannot update in-progress endpoint \"" + current.arn + "\".");
  }
  const int64_t generation = RuntimeOf(current).GetInt("generation", 1) + 1;
  NIMBUS_ASSIGN_OR_RETURN(Value plan, PlanFor(ctx.account_id, ctx.region,
                                              in.GetString("EndpointConfigName"), generation));
  control::StatusChange change{
      kUpdating, "", "UpdateEndpoint to " + in.GetString("EndpointConfigName"), std::string()};
  NIMBUS_ASSIGN_OR_RETURN(Resource endpoint,
                          deps_.resources->Transition(Kind(), ctx.account_id, ctx.region, name,
                                                      change, [&](Resource& r) {
                                                        Value& runtime = r.body["_runtime"];
                                                        runtime["generation"] = generation;
                                                        runtime["target"] = plan;
                                                        return Status::Ok();
                                                      }));
  deps_.controllers->Notify(kControllerKind, endpoint.arn);
  return Value::Object({{"EndpointArn", endpoint.arn}});
}

Result<Value> Endpoints::UpdateWeightsAndCapacities(const Value& in, aws::RequestContext& ctx) {
  const std::string name = in.GetString("EndpointName");
  NIMBUS_ASSIGN_OR_RETURN(Resource current,
                          deps_.resources->Get(Kind(), ctx.account_id, ctx.region, name));
  if (current.status != kInService) {
    return Invalid("Cannot update in-progress endpoint \"" + current.arn + "\".");
  }
  const Value& serving = Member(RuntimeOf(current), "serving");
  std::map<std::string, const Value*> desired;
  for (const Value& d : Member(in, "DesiredWeightsAndCapacities").list()) {
    std::string variant = d.GetString("VariantName");
    bool found = false;
    for (const Value& v : Member(serving, "variants").list())
      found |= v.GetString("name") == variant;
    if (!found) {
      return Invalid("The variant name(s) [" + variant + "] is/are not present in endpoint \"" +
                     current.arn + "\".");
    }
    if (d.Has("DesiredInstanceCount") && d.GetInt("DesiredInstanceCount") < 1) {
      return Invalid("DesiredInstanceCount of variant " + variant + " must be at least 1");
    }
    desired[variant] = &d;
  }
  control::StatusChange change{kUpdating, "", "UpdateEndpointWeightsAndCapacities", std::string()};
  NIMBUS_ASSIGN_OR_RETURN(Resource endpoint,
                          deps_.resources->Transition(
                              Kind(), ctx.account_id, ctx.region, name, change, [&](Resource& r) {
                                for (Value& v : r.body["_runtime"]["serving"]["variants"].list()) {
                                  auto it = desired.find(v.GetString("name"));
                                  if (it == desired.end()) continue;
                                  if (const Value* w = it->second->Find("DesiredWeight"))
                                    v["weight"] = w->AsDouble();
                                  if (const Value* c = it->second->Find("DesiredInstanceCount"))
                                    v["count"] = c->AsInt();
                                }
                                return Status::Ok();
                              }));
  deps_.controllers->Notify(kControllerKind, endpoint.arn);
  return Value::Object({{"EndpointArn", endpoint.arn}});
}

Result<Value> Endpoints::Describe(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(
      Resource endpoint,
      deps_.resources->Get(Kind(), ctx.account_id, ctx.region, in.GetString("EndpointName")));
  const Value& runtime = RuntimeOf(endpoint);
  const Value* serving = runtime.Find("serving");
  const Value* target = runtime.Find("target");
  Value out = Value::Object({{"EndpointName", endpoint.name},
                             {"EndpointArn", endpoint.arn},
                             {"EndpointStatus", endpoint.status},
                             {"CreationTime", Value::Timestamp(endpoint.created_at)},
                             {"LastModifiedTime", Value::Timestamp(endpoint.modified_at)}});
  const Value* shown = serving ? serving : target;
  out["EndpointConfigName"] =
      shown ? shown->GetString("config") : endpoint.body.GetString("EndpointConfigName");
  if (shown) out["ProductionVariants"] = VariantSummary(runtime, *shown, nullptr);
  if (serving && target) {
    Value pending =
        Value::Object({{"EndpointConfigName", target->GetString("config")},
                       {"ProductionVariants", VariantSummary(runtime, *target, serving)},
                       {"StartTime", Value::Timestamp(Num(*target, "at", 0))}});
    out["PendingDeploymentSummary"] = std::move(pending);
  }
  if (shown) {
    if (const Value* capture = shown->Find("capture")) {
      auto settings = CaptureSettings::FromConfig(*capture);
      if (settings.ok()) {
        out["DataCaptureConfig"] = Value::Object(
            {{"EnableCapture", settings->enabled},
             {"CaptureStatus", settings->enabled ? "Started" : "Stopped"},
             {"CurrentSamplingPercentage", static_cast<int64_t>(settings->sampling_percentage)},
             {"DestinationS3Uri", settings->destination}});
      }
    }
    if (const Value* async = shown->Find("async")) out["AsyncInferenceConfig"] = *async;
  }
  if (!endpoint.failure_reason.empty()) out["FailureReason"] = endpoint.failure_reason;
  return out;
}

Result<Value> Endpoints::List(const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(control::ListQuery query, control::ListQueryFromInput(Kind(), in));
  NIMBUS_ASSIGN_OR_RETURN(control::ListPage page,
                          deps_.resources->List(Kind(), ctx.account_id, ctx.region, query));
  Value list = Value::MakeList();
  for (const Resource& endpoint : page.items) {
    list.Append(Value::Object({{"EndpointName", endpoint.name},
                               {"EndpointArn", endpoint.arn},
                               {"CreationTime", Value::Timestamp(endpoint.created_at)},
                               {"LastModifiedTime", Value::Timestamp(endpoint.modified_at)},
                               {"EndpointStatus", endpoint.status}}));
  }
  Value out = Value::Object({{"Endpoints", std::move(list)}});
  if (!page.next_token.empty()) out["NextToken"] = page.next_token;
  return out;
}

Result<Value> Endpoints::Delete(const Value& in, aws::RequestContext& ctx) {
  const std::string name = in.GetString("EndpointName");
  NIMBUS_ASSIGN_OR_RETURN(Resource current,
                          deps_.resources->Get(Kind(), ctx.account_id, ctx.region, name));
  if (current.status != kDeleting) {
    NIMBUS_ASSIGN_OR_RETURN(
        current, deps_.resources->Transition(Kind(), ctx.account_id, ctx.region, name,
                                             {kDeleting, "", "DeleteEndpoint", std::string()}));
  }
  // Gone from the data plane at once, as on SageMaker.
  router_.Remove(Key(ctx.account_id, ctx.region, name));
  {
    std::unique_lock<std::shared_mutex> lock(live_mu_);
    live_.erase(Key(ctx.account_id, ctx.region, name));
  }
  deps_.controllers->Notify(kControllerKind, current.arn);
  return Value::MakeMap();
}

std::optional<LiveEndpoint> Endpoints::Live(const std::string& account, const std::string& region,
                                            const std::string& name) const {
  std::shared_lock<std::shared_mutex> lock(live_mu_);
  auto it = live_.find(Key(account, region, name));
  if (it == live_.end()) return std::nullopt;
  return it->second;
}

// ---- Endpoints: controller ---------------------------------------------------------------

Result<std::vector<std::string>> Endpoints::Pending() {
  NIMBUS_ASSIGN_OR_RETURN(std::vector<Resource> endpoints,
                          deps_.resources->ListNonTerminal(Kind()));
  std::vector<std::string> arns;
  for (const Resource& endpoint : endpoints) arns.push_back(endpoint.arn);
  return arns;
}

Result<std::optional<double>> Endpoints::Reconcile(const std::string& arn) {
  Result<Resource> endpoint = deps_.resources->GetByArn(Kind(), arn);
  if (!endpoint.ok()) {
    if (endpoint.status().code() == Kind().errors.not_found.code ||
        endpoint.status().kind() == ErrorKind::kNotFound) {
      return std::optional<double>();
    }
    return endpoint.status();
  }
  if (endpoint->status == kDeleting) return DeleteEndpoint(*endpoint);
  return ReconcileEndpoint(*endpoint);
}

std::shared_ptr<serving::Instance> Endpoints::LiveInstance(const std::string& id,
                                                           const std::string& job_dir) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = instances_[id];
  if (!slot) {
    slot = std::make_shared<serving::Instance>(id, job_dir + "/" + serving::kModelServerSocket);
  }
  return slot;
}

void Endpoints::DropInstance(const std::string& id) {
  std::shared_ptr<serving::Instance> dropped;
  bool release = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = instances_.find(id);
    if (it != instances_.end()) {
      dropped = it->second;
      instances_.erase(it);
    }
    release = scheduled_.erase(id) > 0;
  }
  if (dropped) {
    dropped->in_rotation = false;
    dropped->pool.Clear();
  }
  if (release && deps_.hosting_scheduler) (void)deps_.hosting_scheduler->Release(id);
}

std::string Endpoints::Step(const Resource& endpoint, Value& instance, bool* changed) {
  const std::string id = instance.GetString("id");
  std::string state = instance.GetString("state");
  auto set_state = [&](const std::string& next) {
    if (next != state) {
      instance["state"] = next;
      state = next;
      *changed = true;
    }
  };
  auto dir = control::JobDir::ForJob(deps_.data_dir, "endpoint", id);
  if (!dir.ok()) {
    instance["reason"] = dir.status().message();
    set_state("failed");
    return state;
  }
  const std::string type = instance.GetString("instance_type");

  if (state == "queued") {
    bool admitted = deps_.hosting_scheduler == nullptr;
    if (!admitted) {
      std::unique_lock<std::mutex> lock(mu_);
      if (!scheduled_.count(id)) {
        scheduled_.insert(id);
        lock.unlock();
        const std::string arn = endpoint.arn;
        control::JobRequest request{id, endpoint.account, type, 1, [this, arn](const std::string&) {
                                      deps_.controllers->Notify(kControllerKind, arn);
                                    }};
        Status submitted = deps_.hosting_scheduler->Submit(std::move(request));
        if (!submitted.ok()) {
          std::lock_guard<std::mutex> relock(mu_);
          scheduled_.erase(id);
          instance["reason"] = submitted.message();
          set_state("failed");
          return state;
        }
      }
      admitted = deps_.hosting_scheduler->Position(id) == std::optional<size_t>(0);
    }
    if (!admitted) return state;
    set_state("admitted");
  }

  if (state == "admitted") {
    auto model = deps_.resources->Get(Models::Kind(), endpoint.account, endpoint.region,
                                      instance.GetString("model"));
    const control::InstanceType* instance_type = control::FindInstanceType(type);
    const int threads = instance_type ? std::max(1, instance_type->vcpus) : 1;
    Result<std::vector<serving::ContainerSpec>> specs =
        model.ok() ? dir->Create().ok() ? models_.Stage(*model, dir->root(), threads)
                                        : Result<std::vector<serving::ContainerSpec>>(
                                              Status::Internal("cannot create " + dir->root()))
                   : Result<std::vector<serving::ContainerSpec>>(model.status());
    if (!specs.ok()) {
      instance["reason"] = specs.status().message();
      set_state("failed");
      return state;
    }
    Value containers = Value::MakeList();
    for (const auto& spec : *specs) containers.Append(serving::ContainerSpecToValue(spec));
    control::LaunchRequest request;
    request.job_id = id;
    request.kind = "serve";
    request.job_dir = dir->root();
    request.spec =
        Value::Object({{"containers", std::move(containers)}, {"threads", int64_t{threads}}});
    request.instance = instance_type;
    request.network = !model->body.GetBool("EnableNetworkIsolation", false);
    Status launched = deps_.executor->Launch(request);
    if (!launched.ok()) {
      instance["reason"] = "cannot start the model server: " + launched.message();
      set_state("failed");
      return state;
    }
    instance["launched_at"] = Now();
    set_state("launched");
    return state;
  }

  if (state == "launched" || state == "ready") {
    if (deps_.hosting_scheduler) {
      // Launched by an earlier server process: count it against capacity again.
      std::unique_lock<std::mutex> lock(mu_);
      if (scheduled_.insert(id).second) {
        lock.unlock();
        (void)deps_.hosting_scheduler->Adopt({id, endpoint.account, type, 1, nullptr});
      }
    }
    Result<control::JobStatus> status = deps_.executor->Poll(id, dir->root());
    std::shared_ptr<serving::Instance> live = LiveInstance(id, dir->root());
    if (!status.ok() && status.status().kind() != ErrorKind::kNotFound) {
      // Unreadable for now (a status file being replaced): look again next time.
      return state;
    }
    if (!status.ok() || control::IsTerminal(status->state)) {
      live->in_rotation = false;
      live->pool.Clear();
      std::string reason = status.ok() ? status->reason : status.status().message();
      if (state == "launched") {
        instance["reason"] =
            reason.empty() ? "The model server exited before it was ready" : reason;
        set_state("failed");
        return state;
      }
      // A serving instance died: replace it in the same directory (the model is staged).
      Log(LogLevel::kWarn, "endpoint.instance_replaced",
          {{"endpoint", endpoint.arn}, {"instance", id}, {"reason", reason}});
      instance["restarts"] = instance.GetInt("restarts") + 1;
      set_state("admitted");
      return Step(endpoint, instance, changed);
    }
    auto ping = live->pool.Call("GET", "/ping", {}, {}, kPingTimeout);
    const bool healthy = ping.ok() && ping->status == 200;
    live->in_rotation = healthy;
    if (healthy) set_state("ready");
    return state;
  }

  if (state == "draining") {
    std::shared_ptr<serving::Instance> live = LiveInstance(id, dir->root());
    live->in_rotation = false;
    const double since = Num(instance, "draining_since", Now());
    const double waited = Now() - since;
    if ((waited >= kDrainSeconds && live->outstanding.load() == 0) || waited >= kMaxDrainSeconds) {
      (void)deps_.executor->Stop(id, dir->root(), deps_.stop_grace_seconds);
      set_state("stopping");
    }
    return state;
  }

  if (state == "stopping" || IsFailedState(state)) {
    Result<control::JobStatus> status = deps_.executor->Poll(id, dir->root());
    if (!status.ok() || control::IsTerminal(status->state)) {
      if (state == "stopping") set_state("stopped");
    } else if (IsFailedState(state)) {
      (void)deps_.executor->Stop(id, dir->root(), deps_.stop_grace_seconds);
    }
  }
  return state;
}

void Endpoints::ShipLogs(const Resource& endpoint, const Value& instance) {
  if (deps_.logs == nullptr) return;
  auto dir = control::JobDir::ForJob(deps_.data_dir, "endpoint", instance.GetString("id"));
  if (!dir.ok() || !std::filesystem::exists(dir->LogsDir())) return;
  telemetry::LogStore* logs = deps_.logs;
  const std::string stream = instance.GetString("variant") + "/" + instance.GetString("id");
  control::LogTail tail(dir->root(),
                        [&](const std::string&, const std::vector<control::LogEvent>& events) {
                          std::vector<telemetry::LogEvent> batch;
                          batch.reserve(events.size());
                          for (const auto& [ms, message] : events) batch.push_back({ms, message});
                          return logs->Append(endpoint.account, endpoint.region,
                                              kLogGroup + endpoint.name, stream, batch);
                        });
  (void)tail.Poll(false);
}

void Endpoints::Publish(const Resource& endpoint, const Value& runtime) {
  const std::string key = Key(endpoint.account, endpoint.region, endpoint.name);
  const Value* serving = runtime.Find("serving");
  if (serving == nullptr) return;
  auto route = std::make_shared<serving::EndpointRoute>();
  route->endpoint_name = endpoint.name;
  const int64_t generation = serving->GetInt("generation");
  for (const Value& variant : Member(*serving, "variants").list()) {
    serving::VariantRoute v;
    v.name = variant.GetString("name");
    v.weight = Num(variant, "weight", 1);
    for (const Value& instance : Member(runtime, "instances").list()) {
      if (instance.GetInt("generation") != generation || instance.GetString("variant") != v.name ||
          instance.GetString("state") != "ready") {
        continue;
      }
      auto dir = control::JobDir::ForJob(deps_.data_dir, "endpoint", instance.GetString("id"));
      if (dir.ok()) {
        v.instances.push_back(LiveInstance(instance.GetString("id"), dir->root()));
      }
    }
    route->variants.push_back(std::move(v));
  }
  auto capture = std::make_shared<CaptureSettings>();
  if (const Value* config = serving->Find("capture")) {
    if (auto settings = CaptureSettings::FromConfig(*config); settings.ok()) *capture = *settings;
  }
  router_.Set(key, route);
  std::unique_lock<std::shared_mutex> lock(live_mu_);
  live_[key] = LiveEndpoint{std::move(route), std::move(capture), endpoint.arn};
}

Result<std::optional<double>> Endpoints::ReconcileEndpoint(const Resource& endpoint) {
  Value runtime = RuntimeOf(endpoint);
  bool changed = false;
  const Value* target = runtime.Find("target");
  const Value* serving = runtime.Find("serving");
  const Value* desired = target ? target : serving;
  Value& instances = InstancesOf(runtime);

  if (endpoint.status == kFailed) {
    // Nothing serves a failed endpoint: stop whatever is left of its instances.
    for (Value& instance : instances.list()) {
      if (Active(instance) && !IsFailedState(instance.GetString("state"))) {
        instance["state"] = "draining";
        instance["draining_since"] = Now() - kDrainSeconds;
        changed = true;
      }
    }
    desired = nullptr;
  }

  // Desired instances: add what is missing, drain what is extra or of another generation.
  std::set<int64_t> generations;
  if (serving) generations.insert(serving->GetInt("generation"));
  if (target) generations.insert(target->GetInt("generation"));
  for (Value& instance : instances.list()) {
    if (Active(instance) && !generations.count(instance.GetInt("generation"))) {
      instance["state"] = "draining";
      instance["draining_since"] = Now();
      changed = true;
    }
  }
  auto plan_instances = [&](const Value& plan) {
    const int64_t generation = plan.GetInt("generation");
    for (const Value& variant : Member(plan, "variants").list()) {
      const std::string name = variant.GetString("name");
      std::vector<Value*> active;
      for (Value& instance : instances.list()) {
        if (instance.GetInt("generation") == generation && instance.GetString("variant") == name &&
            Active(instance)) {
          active.push_back(&instance);
        }
      }
      const int64_t want = variant.GetInt("count", 1);
      // Extra ones: drain those not yet serving first.
      std::stable_sort(active.begin(), active.end(), [](const Value* a, const Value* b) {
        return (a->GetString("state") == "ready") > (b->GetString("state") == "ready");
      });
      for (int64_t k = want; k < static_cast<int64_t>(active.size()); ++k) {
        (*active[k])["state"] = "draining";
        (*active[k])["draining_since"] = Now();
        changed = true;
      }
      for (int64_t k = static_cast<int64_t>(active.size()); k < want; ++k) {
        instances.Append(Value::Object({{"id", NewInstanceId(name)},
                                        {"variant", name},
                                        {"model", variant.GetString("model")},
                                        {"instance_type", variant.GetString("instance_type")},
                                        {"generation", generation},
                                        {"state", "queued"}}));
        changed = true;
      }
    }
  };
  if (desired) {
    if (serving) plan_instances(*serving);
    if (target) plan_instances(*target);
  }

  bool settled = true;
  for (Value& instance : instances.list()) {
    const std::string before = instance.GetString("state");
    const std::string after = Step(endpoint, instance, &changed);
    if (after != "ready" && after != "stopped" && !IsFailedState(after)) settled = false;
    if (before != "stopped") ShipLogs(endpoint, instance);
  }
  // Forget instances that are over.
  Value kept = Value::MakeList();
  for (Value& instance : instances.list()) {
    const std::string state = instance.GetString("state");
    const bool failed_and_stopped =
        IsFailedState(state) &&
        (!target || instance.GetInt("generation") != target->GetInt("generation"));
    if (state == "stopped" || (failed_and_stopped && endpoint.status != kCreating)) {
      DropInstance(instance.GetString("id"));
      changed = true;
      continue;
    }
    kept.Append(std::move(instance));
  }
  instances = std::move(kept);

  std::optional<control::StatusChange> change;
  if (target && endpoint.status != kFailed) {
    const int64_t generation = target->GetInt("generation");
    if (auto failure = PlanFailure(runtime, generation)) {
      for (Value& instance : instances.list()) {
        if (instance.GetInt("generation") == generation && Active(instance)) {
          instance["state"] = "draining";
          instance["draining_since"] = Now() - kDrainSeconds;
        }
      }
      if (serving) {
        // Roll back: the old config keeps serving.
        change = control::StatusChange{kInService, "", "Update rolled back",
                                       "Failed to update endpoint: " + *failure};
      } else {
        change = control::StatusChange{kFailed, "", *failure, *failure};
      }
      runtime.Erase("target");
      changed = true;
    } else if (PlanSatisfied(runtime, *target)) {
      runtime["serving"] = *target;
      runtime.Erase("target");
      change = control::StatusChange{kInService, "", "", std::string()};
      changed = true;
    }
  } else if (endpoint.status == kUpdating && serving && PlanSatisfied(runtime, *serving)) {
    change = control::StatusChange{kInService, "", "", std::string()};
  }

  Publish(endpoint, runtime);
  if (changed || change) {
    auto write = [&runtime](Resource& r) {
      r.body["_runtime"] = runtime;
      return Status::Ok();
    };
    Result<Resource> written =
        change ? deps_.resources->Transition(Kind(), endpoint.account, endpoint.region,
                                             endpoint.name, *change, write)
               : deps_.resources->Update(Kind(), endpoint.account, endpoint.region, endpoint.name,
                                         write);
    if (!written.ok()) return written.status();
    if (change && change->status == kFailed) return Again(0.5);
  }
  if (endpoint.status == kFailed && instances.list().empty()) return std::optional<double>();
  return Again(settled && !runtime.Has("target") ? 2.0 : 0.25);
}

Result<std::optional<double>> Endpoints::DeleteEndpoint(const Resource& endpoint) {
  router_.Remove(Key(endpoint.account, endpoint.region, endpoint.name));
  {
    std::unique_lock<std::shared_mutex> lock(live_mu_);
    live_.erase(Key(endpoint.account, endpoint.region, endpoint.name));
  }
  Value runtime = RuntimeOf(endpoint);
  Value& instances = InstancesOf(runtime);
  bool changed = false;
  bool all_stopped = true;
  for (Value& instance : instances.list()) {
    std::string state = instance.GetString("state");
    if (state == "queued" || state == "admitted") {
      instance["state"] = "stopped";
      changed = true;
    } else if (state != "stopped" && state != "stopping") {
      // In-flight requests were already cut off from routing; stop at once.
      instance["state"] = "draining";
      instance["draining_since"] = Now() - kMaxDrainSeconds;
      changed = true;
    }
    state = Step(endpoint, instance, &changed);
    ShipLogs(endpoint, instance);
    if (state != "stopped") all_stopped = false;
  }
  if (!all_stopped) {
    if (changed) {
      NIMBUS_RETURN_IF_ERROR(deps_.resources
                                 ->Update(Kind(), endpoint.account, endpoint.region, endpoint.name,
                                          [&runtime](Resource& r) {
                                            r.body["_runtime"] = runtime;
                                            return Status::Ok();
                                          })
                                 .status());
    }
    return Again(0.25);
  }
  for (const Value& instance : instances.list()) {
    const std::string id = instance.GetString("id");
    DropInstance(id);
    if (auto dir = control::JobDir::ForJob(deps_.data_dir, "endpoint", id); dir.ok()) {
      std::error_code ec;
      std::filesystem::remove_all(dir->root(), ec);
    }
  }
  Status deleted =
      deps_.resources->Delete(Kind(), endpoint.account, endpoint.region, endpoint.name);
  if (!deleted.ok() && deleted.kind() != ErrorKind::kNotFound &&
      deleted.code() != Kind().errors.not_found.code) {
    return deleted;
  }
  return std::optional<double>();
}

// ---- Autoscaling -------------------------------------------------------------------------

Status Endpoints::ParseVariantRef(const control::ScalableResourceRef& ref, std::string* endpoint,
                                  std::string* variant) const {
  // endpoint/<EndpointName>/variant/<VariantName>
  std::vector<std::string> parts = Split(ref.resource_id, '/');
  if (parts.size() != 4 || parts[0] != "endpoint" || parts[2] != "variant") {
    return Status::Aws(
        "ValidationException", 400,
        "Unsupported resource ID " + ref.resource_id +
            ": SageMaker resources are endpoint/<EndpointName>/variant/<VariantName>");
  }
  if (ref.dimension != "sagemaker:variant:DesiredInstanceCount" &&
      ref.dimension != "sagemaker:variant:DesiredProvisionedConcurrency") {
    return Status::Aws(
        "ValidationException", 400,
        "Unsupported scalable dimension " + ref.dimension + " for " + ref.resource_id);
  }
  *endpoint = parts[1];
  *variant = parts[3];
  return Status::Ok();
}

Status Endpoints::Check(const control::ScalableResourceRef& ref) {
  return GetCapacity(ref).status();
}

Result<double> Endpoints::GetCapacity(const control::ScalableResourceRef& ref) {
  std::string name, variant;
  NIMBUS_RETURN_IF_ERROR(ParseVariantRef(ref, &name, &variant));
  auto endpoint = deps_.resources->Get(Kind(), ref.account, ref.region, name);
  const Value* plan = nullptr;
  if (endpoint.ok()) {
    const Value& runtime = RuntimeOf(*endpoint);
    plan = runtime.Find("serving") ? runtime.Find("serving") : runtime.Find("target");
  }
  if (plan) {
    for (const Value& v : Member(*plan, "variants").list()) {
      if (v.GetString("name") == variant) return static_cast<double>(v.GetInt("count", 1));
    }
  }
  return Status::Aws("ValidationException", 400,
                     "The endpoint variant " + ref.resource_id + " does not exist");
}

Status Endpoints::SetCapacity(const control::ScalableResourceRef& ref, double capacity) {
  std::string name, variant;
  NIMBUS_RETURN_IF_ERROR(ParseVariantRef(ref, &name, &variant));
  NIMBUS_ASSIGN_OR_RETURN(Resource endpoint,
                          deps_.resources->Get(Kind(), ref.account, ref.region, name));
  if (endpoint.status != kInService) {
    return Status::Aws("ValidationException", 400,
                       "Endpoint " + name + " is " + endpoint.status +
                           "; its capacity can change only while it is InService");
  }
  const int64_t count = std::max<int64_t>(1, static_cast<int64_t>(std::llround(capacity)));
  NIMBUS_ASSIGN_OR_RETURN(double current, GetCapacity(ref));
  if (deps_.hosting_scheduler && count > current) {
    std::string type;
    for (const Value& v : Member(Member(RuntimeOf(endpoint), "serving"), "variants").list()) {
      if (v.GetString("name") == variant) type = v.GetString("instance_type");
    }
    const control::InstanceType* instance_type = control::FindInstanceType(type);
    if (instance_type) {
      control::SchedulerSnapshot snapshot = deps_.hosting_scheduler->Snapshot();
      control::Resources demand = deps_.hosting_scheduler->DemandFor(
          *instance_type, static_cast<int>(count - static_cast<int64_t>(current)));
      control::Resources free{snapshot.capacity.vcpus - snapshot.used.vcpus,
                              snapshot.capacity.memory_mib - snapshot.used.memory_mib,
                              snapshot.capacity.gpus - snapshot.used.gpus};
      if (!demand.FitsIn(free)) {
        return Status::Aws("ValidationException", 400,
                           "Insufficient capacity to provision " +
                               std::to_string(count - static_cast<int64_t>(current)) +
                               " more instance(s) of " + type + " for " + ref.resource_id);
      }
    }
  }
  Value in = Value::Object({{"EndpointName", name},
                            {"DesiredWeightsAndCapacities",
                             Value(Value::List{Value::Object(
                                 {{"VariantName", variant}, {"DesiredInstanceCount", count}})})}});
  aws::RequestContext ctx;
  ctx.account_id = ref.account;
  ctx.region = ref.region;
  return UpdateWeightsAndCapacities(in, ctx).status();
}

Result<control::PredefinedMetricSource> Endpoints::PredefinedMetric(
    const control::ScalableResourceRef& ref, std::string_view metric_type) {
  std::string name, variant;
  NIMBUS_RETURN_IF_ERROR(ParseVariantRef(ref, &name, &variant));
  if (metric_type != "SageMakerVariantInvocationsPerInstance") {
    return Status::NotFound("Predefined metric type " + std::string(metric_type) +
                            " is not available for SageMaker variants");
  }
  return control::PredefinedMetricSource{
      "AWS/SageMaker", "Invocations", {{"EndpointName", name}, {"VariantName", variant}}};
}

}  // namespace nimbus::services
