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

std::mutex g_write_mu;  // taken while g_mu is held: buffers go out in the order they filled

// Takes g_buffer and writes it out, releasing lock (on g_mu) before the write itself: a
// thread that logs meanwhile appends to a fresh buffer instead of waiting for the disk.
void Write(std::unique_lock<std::mutex> lock, double now) {
  g_last_write = now;
  if (g_buffer.empty()) return;
  std::string out;
  out.swap(g_buffer);
  g_buffer.reserve(kFlushBytes * 2);
  std::lock_guard<std::mutex> write_lock(g_write_mu);
  lock.unlock();
  std::fwrite(out.data(), 1, out.size(), stderr);
  std::fflush(stderr);
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

void FlushLogs() { Write(std::unique_lock<std::mutex>(g_mu), SteadySeconds()); }
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
  std::unique_lock<std::mutex> lock(g_mu);
  g_buffer += text;
  if (!g_buffering || level >= LogLevel::kWarn || g_buffer.size() >= kFlushBytes ||
      now - g_last_write >= kFlushSeconds) {
    Write(std::move(lock), now);
  }
}

}  // namespace nimbus
