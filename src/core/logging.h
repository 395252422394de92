// Structured logging: one JSON object per line on stderr, e.g.
//   {"ts":"2026-01-01T00:00:00.000Z","level":"info","event":"request","status":200,...}
// Log(Level::kInfo, "request", {{"op", "GetCallerIdentity"}, {"status", 200}});
// Thread-safety: lines from concurrent threads never interleave.
#pragma once

#include <initializer_list>
#include <string_view>
#include <utility>

#include "core/value.h"

namespace nimbus {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
void Log(LogLevel level, std::string_view event,
         std::initializer_list<std::pair<const char*, Value>> fields = {});

}  // namespace nimbus
