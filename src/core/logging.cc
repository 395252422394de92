#include "core/logging.h"

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

#include "core/clock.h"
#include "core/json.h"

namespace nimbus {
namespace {
constexpr size_t kFlushBytes = 16 * 1024;
constexpr double kFlushSeconds = 0.1;

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_buffering{false};
std::mutex g_mu;
std::string g_buffer;     // GUARDED_BY(g_mu): lines not yet written
double g_last_write = 0;  // GUARDED_BY(g_mu): steady seconds

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// REQUIRES: g_mu held.
void WriteLocked(double now) {
  if (!g_buffer.empty()) {
    std::fwrite(g_buffer.data(), 1, g_buffer.size(), stderr);
    std::fflush(stderr);
    g_buffer.clear();
  }
  g_last_write = now;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}
}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }

void SetLogBuffering(bool on) {
  if (!on) FlushLogs();
  g_buffering = on;
}

void FlushLogs() {
  std::lock_guard<std::mutex> lock(g_mu);
  WriteLocked(SteadySeconds());
}
bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void Log(LogLevel level, std::string_view event,
         std::initializer_list<std::pair<const char*, Value>> fields) {
  if (!LogEnabled(level)) return;
  // Written directly rather than through a Value tree: a server logs every request.
  std::string text;
  text.reserve(256);
  text += "{\"ts\":";
  AppendJsonString(text, FormatIso8601(SystemClock::Instance().Now()));
  text += ",\"level\":\"";
  text += LevelName(level);
  text += "\",\"event\":";
  AppendJsonString(text, event);
  for (const auto& [key, value] : fields) {
    text += ',';
    AppendJsonString(text, key);
    text += ':';
    switch (value.type()) {
      case Value::Type::kString:
        AppendJsonString(text, value.AsString());
        break;
      case Value::Type::kInt: {
        char digits[24];
        auto end = std::to_chars(digits, digits + sizeof(digits), value.AsInt()).ptr;
        text.append(digits, end);
        break;
      }
      case Value::Type::kBool:
        text += value.AsBool() ? "true" : "false";
        break;
      default:
        text += ToJson(value);
    }
  }
  text += "}\n";
  const double now = SteadySeconds();
  std::lock_guard<std::mutex> lock(g_mu);
  g_buffer += text;
  if (!g_buffering || level >= LogLevel::kWarn || g_buffer.size() >= kFlushBytes ||
      now - g_last_write >= kFlushSeconds) {
    WriteLocked(now);
  }
}

}  // namespace nimbus
