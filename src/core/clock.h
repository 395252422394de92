// Clock: the source of "now", passed in so that tests can freeze or move time
// (LevelDB's Env idea). Times are seconds since the Unix epoch, with fractions.
// Thread-safety: implementations must be safe to call from any thread.
#pragma once

#include <string>

namespace nimbus {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual double Now() const = 0;
};

// The system's real-time clock.
class SystemClock : public Clock {
 public:
  double Now() const override;
  static const SystemClock& Instance();
};

// A clock that stays where tests put it.
class FakeClock : public Clock {
 public:
  explicit FakeClock(double now) : now_(now) {}
  double Now() const override { return now_; }
  void Set(double now) { now_ = now; }
  void Advance(double seconds) { now_ += seconds; }

 private:
  double now_;
};

// 20130524T000000Z (SigV4's basic ISO 8601 form).
std::string FormatAmzDate(double epoch_seconds);
// 2013-05-24T00:00:00.000Z (ISO 8601 as the AWS wire protocols write it).
std::string FormatIso8601(double epoch_seconds);
// Fri, 24 May 2013 00:00:00 GMT
std::string FormatHttpDate(double epoch_seconds);
// Parses the ISO 8601 forms AWS accepts (basic or extended, optional fraction, Z or
// +hh:mm offset). Returns false when text is not such a date.
bool ParseIso8601(const std::string& text, double* epoch_seconds);
// Parses RFC 7231 IMF-fixdate ("Fri, 24 May 2013 00:00:00 GMT").
bool ParseHttpDate(const std::string& text, double* epoch_seconds);

}  // namespace nimbus
