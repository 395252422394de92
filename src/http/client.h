// HttpCall: a small blocking HTTP/1.1 client for tests and internal calls (model-server
// workers, health checks). One call is one connection: connect, send the request, read
// the whole response into memory, close. Interim 1xx responses are skipped. Not meant for
// large bodies, TLS or connection reuse.
//
// Thread-safety: HttpCall may be called from any number of threads at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"
#include "http/types.h"

namespace nimbus::http {

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;
};

// Sends `method target` with headers and body to host:port. A Host header is added when
// headers has none, and Content-Length unless headers carry Content-Length or
// Transfer-Encoding. Fails (kInternal, with the reason) when the connection cannot be
// made, breaks, the response is malformed, or the whole exchange takes longer than
// timeout_seconds.
Result<ClientResponse> HttpCall(const std::string& host, uint16_t port, const std::string& method,
                                const std::string& target, const Headers& headers,
                                std::string_view body, double timeout_seconds = 30);

}  // namespace nimbus::http
