// Resolve() and SniffProtocol(): which service, operation and protocol a request is.
#include "aws/protocol/routing.h"

#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "aws/protocol/protocol.h"
#include "core/strings.h"

namespace nimbus::aws::protocol {
namespace {

using model::Operation;
using model::ServiceModel;

constexpr std::string_view kCborProtocol = "smithy-rpc-v2-cbor";

struct Token {
  std::string text;  // literal text, or the label name
  bool label = false;
  bool greedy = false;
};

std::vector<Token> Tokenize(std::string_view path_template) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < path_template.size()) {
    size_t open = path_template.find('{', i);
    if (open == std::string_view::npos) {
      tokens.push_back({std::string(path_template.substr(i)), false, false});
      break;
    }
    if (open > i) tokens.push_back({std::string(path_template.substr(i, open - i)), false, false});
    size_t close = path_template.find('}', open);
    if (close == std::string_view::npos) {
      tokens.push_back({std::string(path_template.substr(open)), false, false});
      break;
    }
    std::string name(path_template.substr(open + 1, close - open - 1));
    bool greedy = !name.empty() && name.back() == '+';
    if (greedy) name.pop_back();
    tokens.push_back({std::move(name), true, greedy});
    i = close + 1;
  }
  return tokens;
}

// A request URI template ("/{Bucket}/{Key+}?uploads") taken apart once: routing a rest
// request tries every operation of the method, so splitting each template per request
// cost more than the matching.
struct Route {
  struct QueryLiteral {
    std::string name;
    std::string value;
    bool any_value = false;  // "?uploads": present with any value
  };
  // The path template ends in no '/', so a request path's one trailing '/' may be dropped
  // ("PUT /bucket/").
  bool trailing_slash_optional = false;
  std::vector<QueryLiteral> query;
  std::vector<Token> tokens;
  int literal_chars = 0;
  int non_greedy = 1;
};

Route CompileRoute(std::string_view request_uri) {
  Route route;
  const size_t q = request_uri.find('?');
  const std::string_view path_template = request_uri.substr(0, q);
  route.trailing_slash_optional = !path_template.empty() && path_template.back() != '/';
  if (q != std::string_view::npos) {
    for (const std::string& literal : Split(request_uri.substr(q + 1), '&')) {
      if (literal.empty()) continue;
      const size_t eq = literal.find('=');
      if (eq == std::string::npos) {
        route.query.push_back({literal, "", true});
      } else {
        route.query.push_back({literal.substr(0, eq), literal.substr(eq + 1), false});
      }
    }
  }
  route.tokens = Tokenize(path_template);
  for (const Token& t : route.tokens) {
    if (!t.label) route.literal_chars += static_cast<int>(t.text.size());
    if (t.greedy) route.non_greedy = 0;
  }
  return route;
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Each thread's compiled routes, by template text (so that entries never go stale, whatever
// model registries come and go).
const Route& CompiledRoute(std::string_view request_uri) {
  thread_local std::unordered_map<std::string, Route, StringHash, std::equal_to<>> routes;
  if (auto it = routes.find(request_uri); it != routes.end()) return it->second;
  return routes.emplace(std::string(request_uri), CompileRoute(request_uri)).first->second;
}

// The operations of a rest service that answer one method, with their compiled routes.
struct RestRoute {
  const Operation* op;
  const Route* route;
};

// Each thread's RestRoutes, by ServiceModel::id and then method. An id is never reused, so
// an entry cannot outlive its model and be taken for another's; entries of models gone
// are dropped wholesale now and then.
using RestRouteCache =
    std::unordered_map<uint64_t, std::map<std::string, std::vector<RestRoute>, std::less<>>>;
RestRouteCache& RestRoutesOfThread() {
  constexpr size_t kMaxModels = 64;
  thread_local RestRouteCache cache;
  if (cache.size() > kMaxModels) cache.clear();
  return cache;
}

// REQUIRES: no reference it returned is used after the next RestRoutesOfThread().
const std::vector<RestRoute>& RestRoutes(RestRouteCache& cache, const ServiceModel& s,
                                         std::string_view method) {
  auto& by_method = cache[s.id];
  if (auto it = by_method.find(method); it != by_method.end()) return it->second;
  std::vector<RestRoute> routes;
  for (const auto& [name, op] : s.operations) {
    if (EqualsIgnoreCase(op.http_method, method)) {
      routes.push_back({&op, &CompiledRoute(op.request_uri)});
    }
  }
  return by_method.emplace(std::string(method), std::move(routes)).first->second;
}

// Backtracking match of tokens[ti..] against path[pi..]; a label takes at least one
// character and, unless greedy, no '/'.
bool MatchTokens(const std::vector<Token>& tokens, size_t ti, std::string_view path, size_t pi,
                 std::map<std::string, std::string>* labels) {
  if (ti == tokens.size()) return pi == path.size();
  const Token& t = tokens[ti];
  if (!t.label) {
    if (path.substr(pi, t.text.size()) != t.text) return false;
    return MatchTokens(tokens, ti + 1, path, pi + t.text.size(), labels);
  }
  size_t limit = path.size();
  if (!t.greedy) {
    size_t slash = path.find('/', pi);
    if (slash != std::string_view::npos) limit = slash;
  }
  for (size_t end = limit; end > pi; --end) {
    if (MatchTokens(tokens, ti + 1, path, end, labels)) {
      (*labels)[t.text] = UriDecode(path.substr(pi, end - pi));
      return true;
    }
  }
  return false;
}

bool HasParam(const Params& params, std::string_view key, std::string_view value, bool any_value) {
  for (const auto& [k, v] : params) {
    if (k == key && (any_value || v == value)) return true;
  }
  return false;
}

// Matches a request's path and query against route.
std::optional<RouteScore> MatchRoute(const Route& route, std::string_view path, const Params& query,
                                     std::map<std::string, std::string>* labels) {
  RouteScore score;
  for (const Route::QueryLiteral& literal : route.query) {
    if (!HasParam(query, literal.name, literal.value, literal.any_value)) return std::nullopt;
    ++score.query_literals;
  }
  score.literal_chars = route.literal_chars;
  score.non_greedy = route.non_greedy;
  labels->clear();
  if (MatchTokens(route.tokens, 0, path, 0, labels)) return score;
  // A trailing slash the template does not have is tolerated.
  if (route.trailing_slash_optional && path.size() > 1 && path.back() == '/') {
    labels->clear();
    if (MatchTokens(route.tokens, 0, path.substr(0, path.size() - 1), 0, labels)) return score;
  }
  return std::nullopt;
}

std::string_view Param(const Params& params, std::string_view key) {
  for (const auto& [k, v] : params) {
    if (k == key) return v;
  }
  return {};
}

bool Speaks(const ServiceModel& s, std::string_view protocol) {
  return s.protocol == protocol ||
         std::find(s.protocols.begin(), s.protocols.end(), protocol) != s.protocols.end();
}

bool IsRest(const ServiceModel& s) { return s.protocol == "rest-json" || s.protocol == "rest-xml"; }

Status UnknownOperation(std::string_view op, const ServiceModel& s) {
  return Status(ErrorKind::kMissingAction,
                "Operation " + std::string(op) + " is not supported by service " + s.name + ".");
}

// The required header/querystring members a request carries, minus those it lacks.
int RequiredBound(const Operation& op, const http::Request& request, const Params& query) {
  if (!op.input) return 0;
  int score = 0;
  for (const model::Member& m : op.input->members) {
    if (!op.input->IsRequired(m.name)) continue;
    bool present;
    if (m.location == "header") {
      present = request.headers.Has(m.WireName());
    } else if (m.location == "querystring") {
      present = HasParam(query, m.WireName(), "", true);
    } else {
      continue;
    }
    score += present ? 1 : -1;
  }
  return score;
}

Result<ResolvedOperation> ResolveCbor(const model::ModelRegistry& models,
                                      const http::Request& request, std::string_view signing_name) {
  // /service/<ServiceName>/operation/<Operation>
  std::vector<std::string> parts = Split(request.path, '/');
  if (parts.size() != 5 || !parts[0].empty() || parts[1] != "service" || parts[3] != "operation") {
    return Status(ErrorKind::kMissingAction,
                  "RPC v2 CBOR requests must address /service/<Service>/operation/<Operation>");
  }
  std::string service_name = UriDecode(parts[2]);
  std::string op_name = UriDecode(parts[4]);
  const ServiceModel* service = nullptr;
  if (!signing_name.empty()) {
    for (const ServiceModel* s : models.FindBySigningName(signing_name)) {
      if (s->target_prefix == service_name || s->name == service_name) {
        service = s;
        break;
      }
    }
  }
  if (!service) service = models.FindByTargetPrefix(service_name);
  if (!service) {
    return Status(ErrorKind::kMissingAction, "Unknown service " + service_name + ".");
  }
  const Operation* op = service->FindOperation(op_name);
  if (!op) return UnknownOperation(op_name, *service);
  return ResolvedOperation{service, op, Protocol::kRpcV2Cbor, {}};
}

Result<ResolvedOperation> ResolveTarget(const model::ModelRegistry& models, std::string_view target,
                                        std::string_view signing_name) {
  size_t dot = target.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == target.size()) {
    return Status(ErrorKind::kMissingAction,
                  "X-Amz-Target '" + std::string(target) + "' is not <prefix>.<Operation>.");
  }
  std::string_view prefix = target.substr(0, dot);
  std::string_view op_name = target.substr(dot + 1);
  const ServiceModel* service = nullptr;
  if (!signing_name.empty()) {
    for (const ServiceModel* s : models.FindBySigningName(signing_name)) {
      if (s->target_prefix == prefix) service = s;
    }
  }
  if (!service) service = models.FindByTargetPrefix(prefix);
  if (!service) {
    return Status(ErrorKind::kMissingAction,
                  "No service answers X-Amz-Target prefix " + std::string(prefix) + ".");
  }
  const Operation* op = service->FindOperation(op_name);
  if (!op) return UnknownOperation(op_name, *service);
  return ResolvedOperation{service, op, Protocol::kJson, {}};
}

Result<ResolvedOperation> ResolveQuery(const model::ModelRegistry& models,
                                       std::string_view signing_name, const Params& params) {
  std::string_view action = Param(params, "Action");
  std::string_view version = Param(params, "Version");
  if (action.empty()) {
    return Status(ErrorKind::kMissingAction, "The request must contain the parameter Action.");
  }
  std::vector<const ServiceModel*> candidates =
      signing_name.empty() ? models.services() : models.FindBySigningName(signing_name);
  const ServiceModel* fallback = nullptr;
  for (const ServiceModel* s : candidates) {
    if (!Speaks(*s, "query") && !Speaks(*s, "ec2")) continue;
    const Operation* op = s->FindOperation(action);
    if (!op) continue;
    if (version.empty() || s->api_version == version) {
      return ResolvedOperation{s, op, Protocol::kQuery, {}};
    }
    if (!fallback) fallback = s;
  }
  if (fallback) {
    return ResolvedOperation{fallback, fallback->FindOperation(action), Protocol::kQuery, {}};
  }
  std::string msg = "Could not find operation " + std::string(action);
  if (!version.empty()) msg += " for version " + std::string(version);
  return Status(ErrorKind::kMissingAction, msg);
}

Result<ResolvedOperation> ResolveRest(const model::ModelRegistry& models,
                                      const http::Request& request, std::string_view signing_name) {
  std::vector<const ServiceModel*> candidates;
  if (signing_name.empty()) {
    if (const ServiceModel* s3 = models.Find("s3")) candidates.push_back(s3);
  } else {
    for (const ServiceModel* s : models.FindBySigningName(signing_name)) {
      if (IsRest(*s)) candidates.push_back(s);
    }
  }
  if (candidates.empty()) {
    return Status(ErrorKind::kMissingAction,
                  "The request names no operation (no X-Amz-Target or Action) for service " +
                      std::string(signing_name) + ".");
  }
  RestRouteCache& routes = RestRoutesOfThread();
  Params query = request.QueryParams();
  std::string path = request.path.empty() ? "/" : request.path;
  std::string bucket;
  ResolvedOperation best;
  RouteScore best_score;
  for (const ServiceModel* s : candidates) {
    std::string service_path = path;
    if (s->name == "s3") {
      bucket = VirtualHostBucket(request.headers.Get("Host"));
      if (!bucket.empty()) {
        service_path = "/" + UriEncode(bucket) + (path == "/" ? "" : path);
      }
    }
    for (const RestRoute& candidate : RestRoutes(routes, *s, request.method)) {
      const Operation& op = *candidate.op;
      std::map<std::string, std::string> labels;
      std::optional<RouteScore> score = MatchRoute(*candidate.route, service_path, query, &labels);
      if (!score) continue;
      score->required_bound = RequiredBound(op, request, query);
      // On a tie, a deprecated operation yields to its successor on the same route
      // (GetBucketNotification / GetBucketNotificationConfiguration).
      const bool successor =
          !(*score < best_score) && best.operation && best.operation->deprecated && !op.deprecated;
      if (!best.operation || best_score < *score || successor) {
        best = ResolvedOperation{
            s, &op, s->protocol == "rest-json" ? Protocol::kRestJson : Protocol::kRestXml,
            std::move(labels)};
        best_score = *score;
      }
    }
  }
  if (!best.operation) {
    return Status(ErrorKind::kMissingAction, "No operation of " + candidates.front()->name +
                                                 " matches " + request.method + " " + path + ".");
  }
  return best;
}

}  // namespace

bool RouteScore::operator<(const RouteScore& o) const {
  return std::tie(query_literals, literal_chars, required_bound, non_greedy) <
         std::tie(o.query_literals, o.literal_chars, o.required_bound, o.non_greedy);
}

std::optional<RouteScore> MatchRequestUri(std::string_view request_uri, std::string_view path,
                                          const Params& query,
                                          std::map<std::string, std::string>* labels) {
  return MatchRoute(CompiledRoute(request_uri), path, query, labels);
}

std::string VirtualHostBucket(std::string_view host) {
  std::string h = ToLower(host);
  if (!h.empty() && h.front() == '[') return "";  // IPv6 literal
  if (size_t colon = h.rfind(':'); colon != std::string::npos) h.resize(colon);
  constexpr std::string_view kLocal = ".localhost";
  if (h.size() > kLocal.size() && EndsWith(h, kLocal)) {
    return h.substr(0, h.size() - kLocal.size());
  }
  size_t s3 = h.find(".s3.");
  if (s3 != std::string::npos && s3 > 0) return h.substr(0, s3);
  return "";
}

Params ParseFormParams(std::string_view body) {
  Params out;
  for (const std::string& pair : Split(body, '&')) {
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    if (eq == std::string::npos) {
      out.emplace_back(UriDecode(pair, true), "");
    } else {
      out.emplace_back(UriDecode(std::string_view(pair).substr(0, eq), true),
                       UriDecode(std::string_view(pair).substr(eq + 1), true));
    }
  }
  return out;
}

bool IsFormRequest(const http::Request& request) {
  return EqualsIgnoreCase(request.method, "POST") &&
         StartsWith(ToLower(request.headers.Get("Content-Type")),
                    "application/x-www-form-urlencoded");
}

std::string_view ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kJson:
      return "json";
    case Protocol::kRestJson:
      return "rest-json";
    case Protocol::kRestXml:
      return "rest-xml";
    case Protocol::kQuery:
      return "query";
    case Protocol::kRpcV2Cbor:
      return kCborProtocol;
  }
  return "";
}

Result<ResolvedOperation> Resolve(const model::ModelRegistry& models, const http::Request& request,
                                  std::string_view signing_name, std::string_view body) {
  if (EqualsIgnoreCase(request.headers.Get("smithy-protocol"), "rpc-v2-cbor")) {
    return ResolveCbor(models, request, signing_name);
  }
  if (const std::string* target = request.headers.Find("X-Amz-Target")) {
    return ResolveTarget(models, *target, signing_name);
  }
  Params url_params = request.QueryParams();
  bool form = IsFormRequest(request);
  if (form || HasParam(url_params, "Action", "", true)) {
    Params params = url_params;
    if (form) {
      Params body_params = ParseFormParams(body);
      params.insert(params.end(), body_params.begin(), body_params.end());
    }
    bool rest_service = false;
    if (!signing_name.empty()) {
      for (const ServiceModel* s : models.FindBySigningName(signing_name)) {
        rest_service = rest_service || IsRest(*s);
      }
    }
    // For a rest service (S3 signs as "s3"), a form post without Action, or an Action
    // that names no query operation, is an ordinary rest request: route it by path.
    if (!rest_service || HasParam(params, "Action", "", true)) {
      auto resolved = ResolveQuery(models, signing_name, params);
      if (resolved.ok() || !rest_service) return resolved;
    }
  }
  return ResolveRest(models, request, signing_name);
}

Protocol SniffProtocol(const http::Request& request, const model::ServiceModel* service) {
  if (EqualsIgnoreCase(request.headers.Get("smithy-protocol"), "rpc-v2-cbor")) {
    return Protocol::kRpcV2Cbor;
  }
  if (request.headers.Has("X-Amz-Target")) return Protocol::kJson;
  if (IsFormRequest(request)) return Protocol::kQuery;
  for (const auto& [k, v] : request.QueryParams()) {
    if (k == "Action") return Protocol::kQuery;
  }
  if (!service) return Protocol::kRestXml;
  if (service->protocol == "json") return Protocol::kJson;
  if (service->protocol == "rest-json") return Protocol::kRestJson;
  if (service->protocol == "query" || service->protocol == "ec2") return Protocol::kQuery;
  return Protocol::kRestXml;
}

}  // namespace nimbus::aws::protocol
