#include "core/clock.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace nimbus {
namespace {
std::tm ToTm(double epoch_seconds) {
  std::time_t t = static_cast<std::time_t>(std::floor(epoch_seconds));
  std::tm tm{};
  gmtime_r(&t, &tm);
  return tm;
}

constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
}  // namespace

double SystemClock::Now() const {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

const SystemClock& SystemClock::Instance() {
  static const SystemClock clock;
  return clock;
}

std::string FormatAmzDate(double epoch_seconds) {
  std::tm tm = ToTm(epoch_seconds);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string FormatIso8601(double epoch_seconds) {
  std::tm tm = ToTm(epoch_seconds);
  int millis = static_cast<int>(std::lround((epoch_seconds - std::floor(epoch_seconds)) * 1000));
  if (millis >= 1000) millis = 999;
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

std::string FormatHttpDate(double epoch_seconds) {
  std::tm tm = ToTm(epoch_seconds);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

namespace {
// The n digits of text at offset at, as a number; false unless all n are digits.
bool ReadDigits(const std::string& text, size_t at, size_t n, int* out) {
  if (at + n > text.size()) return false;
  int v = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    v = v * 10 + (text[i] - '0');
  }
  *out = v;
  return true;
}

// The timestamp shapes that every SigV4 request carries, "2013-05-24T00:00:00" and
// "20130524T000000", read without sscanf (which cost more than the rest of a request's
// date handling). The fields are what the sscanf formats below would read from them.
bool ParseExtended(const std::string& t, int* y, int* mo, int* d, int* h, int* mi, int* s) {
  return t.size() >= 19 && t[4] == '-' && t[7] == '-' && t[10] == 'T' && t[13] == ':' &&
         t[16] == ':' && ReadDigits(t, 0, 4, y) && ReadDigits(t, 5, 2, mo) &&
         ReadDigits(t, 8, 2, d) && ReadDigits(t, 11, 2, h) && ReadDigits(t, 14, 2, mi) &&
         ReadDigits(t, 17, 2, s);
}
bool ParseBasic(const std::string& t, int* y, int* mo, int* d, int* h, int* mi, int* s) {
  return t.size() >= 15 && t[8] == 'T' && ReadDigits(t, 0, 4, y) && ReadDigits(t, 4, 2, mo) &&
         ReadDigits(t, 6, 2, d) && ReadDigits(t, 9, 2, h) && ReadDigits(t, 11, 2, mi) &&
         ReadDigits(t, 13, 2, s);
}
}  // namespace

bool ParseIso8601(const std::string& text, double* epoch_seconds) {
  int y, mo, d, h = 0, mi = 0, s = 0;
  size_t pos = 0;
  const char* c = text.c_str();
  int n = 0;
  if (ParseExtended(text, &y, &mo, &d, &h, &mi, &s)) {
    pos = 19;
  } else if (ParseBasic(text, &y, &mo, &d, &h, &mi, &s)) {
    pos = 15;
  } else if (std::sscanf(c, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) == 6) {
    pos = static_cast<size_t>(n);
  } else if (std::sscanf(c, "%4d%2d%2dT%2d%2d%2d%n", &y, &mo, &d, &h, &mi, &s, &n) == 6) {
    pos = static_cast<size_t>(n);
  } else if (std::sscanf(c, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 &&
             static_cast<size_t>(n) == text.size()) {
    pos = static_cast<size_t>(n);
  } else {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return false;
  double frac = 0;
  if (pos < text.size() && text[pos] == '.') {
    size_t start = ++pos;
    double scale = 0.1;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      frac += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return false;
  }
  int offset = 0;
  if (pos < text.size()) {
    if (text[pos] == 'Z' && pos + 1 == text.size()) {
      pos++;
    } else if ((text[pos] == '+' || text[pos] == '-') && text.size() - pos >= 5) {
      int oh = 0, om = 0;
      if (std::sscanf(c + pos + 1, "%2d:%2d", &oh, &om) != 2 &&
          std::sscanf(c + pos + 1, "%2d%2d", &oh, &om) != 2) {
        return false;
      }
      offset = (text[pos] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    } else {
      return false;
    }
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  *epoch_seconds = static_cast<double>(timegm(&tm)) + frac - offset;
  return true;
}

bool ParseHttpDate(const std::string& text, double* epoch_seconds) {
  char wday[4], mon[4], zone[4];
  int d, y, h, mi, s;
  if (std::sscanf(text.c_str(), "%3s, %d %3s %d %d:%d:%d %3s", wday, &d, mon, &y, &h, &mi, &s,
                  zone) != 8) {
    return false;
  }
  int month = -1;
  for (int i = 0; i < 12; ++i) {
    if (std::string_view(mon) == kMonths[i]) month = i;
  }
  if (month < 0) return false;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = month;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  *epoch_seconds = static_cast<double>(timegm(&tm));
  return true;
}

}  // namespace nimbus
