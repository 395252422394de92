// Structured logging: one JSON object per line on stderr, e.g.
//   {"ts":"2026-01-01T00:00:00.000Z","level":"info","event":"request","status":200,...}
// Log(Level::kInfo, "request", {{"op", "GetCallerIdentity"}, {"status", 200}});
//
// By default each line is written (and flushed) as it is logged. A server turns on
// buffering: info and debug lines then collect in memory and are written together when
// 16 KiB have collected, 100 ms after the last write (checked as lines arrive and by
// FlushLogs(), which the server calls on a timer and before it exits), or with the next
// warning or error, which is always written at once. A request log line thus costs no
// system call of its own; a crash can lose the last 100 ms of info lines.
//
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
void SetLogBuffering(bool on);
// Writes the buffered lines now.
void FlushLogs();
void Log(LogLevel level, std::string_view event,
         std::initializer_list<std::pair<const char*, Value>> fields = {});

}  // namespace nimbus
