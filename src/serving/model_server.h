// SageMaker's serving contract over HTTP, on top of an InferenceHandler: GET /ping (200
// when the handler's model answers, else 503), POST /invocations (the handler's answer,
// Content-Type and X-Amzn-SageMaker-Custom-Attributes carried both ways), and GET
// /execution-parameters (what batch transform asks a container: {"MaxConcurrentTransforms",
// "BatchStrategy", "MaxPayloadInMB"}). The `serve` worker runs it on a UnixHttpServer.
//
// Thread-safety: ServeModelRequest may run on many threads at once (the handler is
// thread-safe).
#pragma once

#include "serving/inference.h"
#include "serving/unix_http.h"

namespace nimbus::serving {

inline constexpr char kCustomAttributesHeader[] = "X-Amzn-SageMaker-Custom-Attributes";
// The socket a `serve` worker listens on, in its job directory.
inline constexpr char kModelServerSocket[] = "serve.sock";

UnixHttpServer::Response ServeModelRequest(InferenceHandler& handler, int max_concurrency,
                                           const HttpMessage& request);

}  // namespace nimbus::serving
