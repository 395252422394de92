#include "core/logging.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "core/clock.h"
#include "core/json.h"

namespace nimbus {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_mu;

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
bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void Log(LogLevel level, std::string_view event,
         std::initializer_list<std::pair<const char*, Value>> fields) {
  if (!LogEnabled(level)) return;
  Value line = Value::Object({{"ts", FormatIso8601(SystemClock::Instance().Now())},
                              {"level", LevelName(level)},
                              {"event", std::string(event)}});
  for (const auto& [k, v] : fields) line[k] = v;
  std::string text = ToJson(line);
  text.push_back('\n');
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

}  // namespace nimbus
