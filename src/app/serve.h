// `nimbus serve`: wires the subsystems together — data directory, metadata store, IAM,
// the embedded service models, the service handlers, the dispatcher and the HTTP
// server — then serves until SIGINT or SIGTERM, finishing in-flight requests.
#pragma once

#include "app/config.h"

namespace nimbus::app {

inline constexpr const char* kVersion = "0.1.0";

// Returns the process exit code: 0 after a clean shutdown, 1 when start-up fails.
int RunServe(const ServeConfig& config);

}  // namespace nimbus::app
