#include "serving/model_server.h"

#include <string>

namespace nimbus::serving {
namespace {

UnixHttpServer::Response Text(int status, std::string body) {
  return {status, {{"Content-Type", "text/plain"}}, std::move(body)};
}

}  // namespace

UnixHttpServer::Response ServeModelRequest(InferenceHandler& handler, int max_concurrency,
                                           const HttpMessage& request) {
  std::string_view path = request.target;
  if (const size_t q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  if (path == "/ping") {
    if (request.method != "GET" && request.method != "HEAD") return Text(405, "use GET /ping");
    return handler.Ping() ? Text(200, "") : Text(503, "the model is not loaded");
  }
  if (path == "/execution-parameters") {
    return {200,
            {{"Content-Type", "application/json"}},
            "{\"MaxConcurrentTransforms\":" + std::to_string(max_concurrency) +
                ",\"BatchStrategy\":\"MultiRecord\",\"MaxPayloadInMB\":6}"};
  }
  if (path != "/invocations") return Text(404, "no such path: " + std::string(path));
  if (request.method != "POST") return Text(405, "use POST /invocations");
  Invocation invocation;
  invocation.content_type = std::string(request.Header("Content-Type"));
  invocation.accept = std::string(request.Header("Accept"));
  invocation.custom_attributes = std::string(request.Header(kCustomAttributesHeader));
  invocation.body = request.body;
  Result<InvocationResult> result = handler.Invoke(invocation);
  if (!result.ok()) return Text(500, result.status().message());
  UnixHttpServer::Response response{result->status, {}, std::move(result->body)};
  if (!result->content_type.empty()) {
    response.headers.emplace_back("Content-Type", std::move(result->content_type));
  }
  if (!result->custom_attributes.empty()) {
    response.headers.emplace_back(kCustomAttributesHeader, std::move(result->custom_attributes));
  }
  return response;
}

}  // namespace nimbus::serving
