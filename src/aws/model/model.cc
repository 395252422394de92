#include "aws/model/model.h"

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "aws/model/embedded.h"
#include "core/logging.h"

namespace nimbus::aws::model {
namespace {

using Json = nlohmann::ordered_json;

// IAM action prefixes that differ from the SigV4 signing name.
constexpr std::pair<std::string_view, std::string_view> kIamPrefixOverrides[] = {
    {"monitoring", "cloudwatch"},
};

// Services served from one region for the whole partition.
constexpr std::string_view kGlobalServices[] = {"iam"};

Result<ShapeType> ParseShapeType(std::string_view type) {
  static const std::pair<std::string_view, ShapeType> kTypes[] = {
      {"structure", ShapeType::kStructure},
      {"list", ShapeType::kList},
      {"map", ShapeType::kMap},
      {"string", ShapeType::kString},
      {"integer", ShapeType::kInteger},
      {"long", ShapeType::kLong},
      {"float", ShapeType::kFloat},
      {"double", ShapeType::kDouble},
      {"bigdecimal", ShapeType::kBigDecimal},
      {"boolean", ShapeType::kBoolean},
      {"blob", ShapeType::kBlob},
      {"timestamp", ShapeType::kTimestamp},
  };
  for (const auto& [name, t] : kTypes) {
    if (name == type) return t;
  }
  return Status::Internal("unknown shape type '" + std::string(type) + "'");
}

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool Bool(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

// Fills a member reference from its JSON ({"shape": ..., traits...}).
Status ParseMember(const ServiceModel& service, const Json& ref, std::string name, Member* m) {
  std::string target = Str(ref, "shape");
  m->shape = service.FindShape(target);
  if (!m->shape) return Status::Internal("unknown shape '" + target + "'");
  m->name = std::move(name);
  m->location = Str(ref, "location");
  m->location_name = Str(ref, "locationName");
  m->query_name = Str(ref, "queryName");
  m->flattened = Bool(ref, "flattened");
  m->xml_attribute = Bool(ref, "xmlAttribute");
  if (auto it = ref.find("xmlNamespace"); it != ref.end()) {
    if (it->is_object()) {
      m->xml_namespace_uri = Str(*it, "uri");
      m->xml_namespace_prefix = Str(*it, "prefix");
    } else if (it->is_string()) {
      m->xml_namespace_uri = it->get<std::string>();
    }
  }
  m->timestamp_format = Str(ref, "timestampFormat");
  m->streaming = Bool(ref, "streaming") || m->shape->streaming;
  m->idempotency_token = Bool(ref, "idempotencyToken");
  m->host_label = Bool(ref, "hostLabel");
  m->json_value = Bool(ref, "jsonvalue");
  return Status::Ok();
}

// First pass: the shape's own facts (no references).
Status ParseShapeProps(const Json& j, Shape* shape) {
  NIMBUS_ASSIGN_OR_RETURN(shape->type,
                          ParseShapeType(Str(j, "type").empty() ? "string" : Str(j, "type")));
  if (auto it = j.find("required"); it != j.end() && it->is_array()) {
    for (const auto& r : *it) {
      if (r.is_string()) shape->required.push_back(r.get<std::string>());
    }
  }
  shape->payload = Str(j, "payload");
  shape->is_union = Bool(j, "union");
  shape->is_document = Bool(j, "document");
  shape->exception = Bool(j, "exception");
  if (auto it = j.find("error"); it != j.end() && it->is_object()) {
    shape->error_code = Str(*it, "code");
    if (auto s = it->find("httpStatusCode"); s != it->end() && s->is_number_integer()) {
      shape->error_http_status = s->get<int>();
    }
    if (auto f = it->find("senderFault"); f != it->end() && f->is_boolean()) {
      shape->error_sender_fault = f->get<bool>();
    }
  }
  if (Bool(j, "fault")) shape->error_sender_fault = false;
  if (auto it = j.find("min"); it != j.end() && it->is_number()) shape->min = it->get<double>();
  if (auto it = j.find("max"); it != j.end() && it->is_number()) shape->max = it->get<double>();
  shape->pattern = Str(j, "pattern");
  if (auto it = j.find("enum"); it != j.end() && it->is_array()) {
    for (const auto& e : *it) {
      if (e.is_string()) shape->enum_values.push_back(e.get<std::string>());
    }
  }
  shape->sensitive = Bool(j, "sensitive");
  shape->streaming = Bool(j, "streaming");
  shape->flattened = Bool(j, "flattened");
  shape->timestamp_format = Str(j, "timestampFormat");
  shape->location_name = Str(j, "locationName");
  if (auto it = j.find("xmlNamespace"); it != j.end() && it->is_object()) {
    shape->xml_namespace_uri = Str(*it, "uri");
  }
  return Status::Ok();
}

// Second pass: members, list members, map keys and values.
Status ParseShapeRefs(const ServiceModel& service, const Json& j, Shape* shape) {
  if (auto it = j.find("members"); it != j.end() && it->is_object()) {
    for (const auto& [name, ref] : it->items()) {
      Member m;
      NIMBUS_RETURN_IF_ERROR(ParseMember(service, ref, name, &m));
      shape->members.push_back(std::move(m));
    }
  }
  for (const char* key : {"member", "key", "value"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_object()) continue;
    Member m;
    NIMBUS_RETURN_IF_ERROR(ParseMember(service, *it, "", &m));
    if (std::string_view(key) == "member") {
      shape->member = std::move(m);
    } else if (std::string_view(key) == "key") {
      shape->key = std::move(m);
    } else {
      shape->value = std::move(m);
    }
  }
  if (shape->type == ShapeType::kList && !shape->member) {
    return Status::Internal("list shape '" + shape->name + "' has no member");
  }
  if (shape->type == ShapeType::kMap && (!shape->key || !shape->value)) {
    return Status::Internal("map shape '" + shape->name + "' has no key or value");
  }
  return Status::Ok();
}

Status ParseOperation(const ServiceModel& service, const std::string& name, const Json& j,
                      Operation* op) {
  op->name = name;
  if (auto http = j.find("http"); http != j.end() && http->is_object()) {
    if (std::string m = Str(*http, "method"); !m.empty()) op->http_method = m;
    if (std::string u = Str(*http, "requestUri"); !u.empty()) op->request_uri = u;
    if (auto rc = http->find("responseCode"); rc != http->end() && rc->is_number_integer()) {
      op->http_response_code = rc->get<int>();
    }
  }
  auto shape_of = [&](const Json& ref, const Shape** out) -> Status {
    std::string target = Str(ref, "shape");
    *out = service.FindShape(target);
    if (!*out) return Status::Internal("operation " + name + ": unknown shape '" + target + "'");
    return Status::Ok();
  };
  if (auto in = j.find("input"); in != j.end() && in->is_object()) {
    NIMBUS_RETURN_IF_ERROR(shape_of(*in, &op->input));
    op->input_location_name = Str(*in, "locationName");
    if (auto ns = in->find("xmlNamespace"); ns != in->end() && ns->is_object()) {
      op->input_xml_namespace = Str(*ns, "uri");
    }
  }
  if (auto out = j.find("output"); out != j.end() && out->is_object()) {
    NIMBUS_RETURN_IF_ERROR(shape_of(*out, &op->output));
    op->result_wrapper = Str(*out, "resultWrapper");
  }
  if (auto errs = j.find("errors"); errs != j.end() && errs->is_array()) {
    for (const auto& e : *errs) {
      const Shape* s = nullptr;
      NIMBUS_RETURN_IF_ERROR(shape_of(e, &s));
      op->errors.push_back(s);
    }
  }
  op->auth_none = Str(j, "authtype") == "none";
  op->deprecated = Bool(j, "deprecated");
  return Status::Ok();
}

Result<std::unique_ptr<ServiceModel>> ParseDocument(std::string_view name, const Json& doc) {
  auto service = std::make_unique<ServiceModel>();
  service->name = std::string(name);
  const Json& md = doc.at("metadata");
  service->api_version = Str(md, "apiVersion");
  service->protocol = Str(md, "protocol");
  if (auto it = md.find("protocols"); it != md.end() && it->is_array()) {
    for (const auto& p : *it) {
      if (p.is_string()) service->protocols.push_back(p.get<std::string>());
    }
  }
  if (service->protocols.empty()) service->protocols.push_back(service->protocol);
  service->json_version = Str(md, "jsonVersion");
  service->target_prefix = Str(md, "targetPrefix");
  service->endpoint_prefix = Str(md, "endpointPrefix");
  service->signing_name = Str(md, "signingName");
  if (service->signing_name.empty()) service->signing_name = service->endpoint_prefix;
  service->service_id = Str(md, "serviceId");
  service->xml_namespace = Str(md, "xmlNamespace");
  service->iam_prefix = service->signing_name;
  for (const auto& [signing, prefix] : kIamPrefixOverrides) {
    if (service->signing_name == signing) service->iam_prefix = std::string(prefix);
  }
  service->global = std::find(std::begin(kGlobalServices), std::end(kGlobalServices),
                              service->name) != std::end(kGlobalServices);

  const Json& shapes = doc.at("shapes");
  for (const auto& [shape_name, j] : shapes.items()) {
    auto shape = std::make_unique<Shape>();
    shape->name = shape_name;
    Status st = ParseShapeProps(j, shape.get());
    if (!st.ok()) return Status::Internal("shape " + shape_name + ": " + st.message());
    service->shapes.emplace(shape_name, std::move(shape));
  }
  for (const auto& [shape_name, j] : shapes.items()) {
    Status st = ParseShapeRefs(*service, j, service->shapes.at(shape_name).get());
    if (!st.ok()) return Status::Internal("shape " + shape_name + ": " + st.message());
  }
  for (const auto& [op_name, j] : doc.at("operations").items()) {
    Operation op;
    NIMBUS_RETURN_IF_ERROR(ParseOperation(*service, op_name, j, &op));
    service->operations.emplace(op_name, std::move(op));
  }
  return service;
}

std::string Inflate(const internal::EmbeddedModel& m) {
  std::string out(m.raw_size, '\0');
  uLongf out_len = static_cast<uLongf>(out.size());
  int rc = uncompress(reinterpret_cast<Bytef*>(out.data()), &out_len, m.data,
                      static_cast<uLong>(m.size));
  if (rc != Z_OK) return std::string();
  out.resize(out_len);
  return out;
}

}  // namespace

const Member* Shape::FindMember(std::string_view member_name) const {
  for (const Member& m : members) {
    if (m.name == member_name) return &m;
  }
  return nullptr;
}

bool Shape::IsRequired(std::string_view member_name) const {
  return std::find(required.begin(), required.end(), member_name) != required.end();
}

const Operation* ServiceModel::FindOperation(std::string_view operation) const {
  auto it = operations.find(operation);
  return it == operations.end() ? nullptr : &it->second;
}

const Shape* ServiceModel::FindShape(std::string_view shape) const {
  auto it = shapes.find(shape);
  return it == shapes.end() ? nullptr : it->second.get();
}

struct ModelRegistry::Lazy {
  const internal::EmbeddedModel* source = nullptr;
  std::once_flag once;
  std::unique_ptr<ServiceModel> model;
};

ModelRegistry::ModelRegistry() = default;
ModelRegistry::~ModelRegistry() = default;

Result<std::unique_ptr<ServiceModel>> ModelRegistry::ParseServiceModel(std::string_view name,
                                                                       std::string_view json) {
  Json doc = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::Internal("service model " + std::string(name) + " is not valid JSON");
  }
  try {
    return ParseDocument(name, doc);
  } catch (const nlohmann::json::exception& e) {
    return Status::Internal("service model " + std::string(name) + ": " + e.what());
  }
}

const ModelRegistry& ModelRegistry::Embedded() {
  static const ModelRegistry* registry = [] {
    auto* r = new ModelRegistry();
    for (const internal::EmbeddedModel& m : internal::EmbeddedModels()) {
      auto lazy = std::make_unique<Lazy>();
      lazy->source = &m;
      r->lazy_.push_back(std::move(lazy));
    }
    return r;
  }();
  return *registry;
}

const ServiceModel* ModelRegistry::Load(Lazy& lazy) const {
  std::call_once(lazy.once, [&lazy] {
    std::string json = Inflate(*lazy.source);
    auto parsed = ParseServiceModel(lazy.source->name, json);
    if (!parsed.ok()) {
      Log(LogLevel::kError, "model_load_failed",
          {{"service", lazy.source->name}, {"error", parsed.status().message()}});
      return;
    }
    lazy.model = std::move(parsed).value();
  });
  return lazy.model.get();
}

uint64_t NewServiceModelId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void ModelRegistry::Add(std::unique_ptr<ServiceModel> model) {
  std::string name = model->name;
  services_[name] = std::move(model);
}

const ServiceModel* ModelRegistry::Find(std::string_view name) const {
  if (auto it = services_.find(name); it != services_.end()) return it->second.get();
  for (const auto& lazy : lazy_) {
    if (lazy->source->name == name) return Load(*lazy);
  }
  return nullptr;
}

std::vector<const ServiceModel*> ModelRegistry::FindBySigningName(
    std::string_view signing_name) const {
  std::vector<const ServiceModel*> out;
  for (const auto& [name, model] : services_) {
    if (model->signing_name == signing_name) out.push_back(model.get());
  }
  for (const auto& lazy : lazy_) {
    if (lazy->source->signing_name != signing_name || services_.count(lazy->source->name)) {
      continue;
    }
    if (const ServiceModel* m = Load(*lazy)) out.push_back(m);
  }
  return out;
}

const ServiceModel* ModelRegistry::FindByTargetPrefix(std::string_view target_prefix) const {
  if (target_prefix.empty()) return nullptr;
  for (const auto& [name, model] : services_) {
    if (model->target_prefix == target_prefix) return model.get();
  }
  for (const auto& lazy : lazy_) {
    if (lazy->source->target_prefix == target_prefix && !services_.count(lazy->source->name)) {
      return Load(*lazy);
    }
  }
  return nullptr;
}

std::vector<const ServiceModel*> ModelRegistry::services() const {
  std::vector<const ServiceModel*> out;
  for (const auto& [name, model] : services_) out.push_back(model.get());
  for (const auto& lazy : lazy_) {
    if (services_.count(lazy->source->name)) continue;
    if (const ServiceModel* m = Load(*lazy)) out.push_back(m);
  }
  return out;
}

}  // namespace nimbus::aws::model
