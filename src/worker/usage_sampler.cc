#include "worker/usage_sampler.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "control/job_samples.h"
#include "core/logging.h"
#include "core/strings.h"

namespace nimbus::worker {
namespace {

int64_t EpochMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

GroupUsage MeasureProcessGroup(pid_t pgid) {
  GroupUsage usage;
  static const double kTicks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  static const int64_t kPage = ::sysconf(_SC_PAGESIZE);
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return usage;
  while (const dirent* entry = ::readdir(proc)) {
    auto pid = ParseInt(entry->d_name);
    if (!pid) continue;
    std::ifstream in("/proc/" + std::string(entry->d_name) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> f;
    std::string field;
    while (fields >> field && f.size() < 22) f.push_back(field);
    // f[0] is field 3 (state): pgrp is field 5, utime..cstime 14..17, rss 24.
    if (f.size() < 22 || ParseInt(f[2]).value_or(-1) != pgid) continue;
    double ticks = 0;
    for (int i = 11; i <= 14; ++i) ticks += static_cast<double>(ParseInt(f[i]).value_or(0));
    usage.cpu_seconds += ticks / kTicks;
    usage.rss_bytes += ParseInt(f[21]).value_or(0) * kPage;
  }
  ::closedir(proc);
  return usage;
}

UsageSampler::UsageSampler(std::string job_dir, pid_t pgid, double start_monotonic, double interval)
    : job_dir_(std::move(job_dir)),
      pgid_(pgid),
      interval_(interval),
      next_due_(start_monotonic + std::min(1.0, interval)),
      last_time_(start_monotonic) {}

void UsageSampler::MaybeSample(double now) {
  if (now < next_due_) return;
  next_due_ = now + interval_;
  GroupUsage usage = MeasureProcessGroup(pgid_);
  Append(now, std::max(last_cpu_, usage.cpu_seconds), usage.rss_bytes);
}

void UsageSampler::Final(double now, double total_cpu_seconds, int64_t peak_rss_bytes) {
  if (now - last_time_ < 0.01) return;
  Append(now, std::max(last_cpu_, total_cpu_seconds), peak_rss_bytes);
}

void UsageSampler::Append(double now, double cpu_seconds, int64_t rss_bytes) {
  double elapsed = now - last_time_;
  control::UsageSample sample;
  sample.time_ms = EpochMs();
  sample.cpu_percent = elapsed > 0 ? (cpu_seconds - last_cpu_) / elapsed * 100 : 0;
  sample.rss_bytes = rss_bytes;
  last_time_ = now;
  last_cpu_ = cpu_seconds;
  if (Status s = control::AppendUsageSample(job_dir_, sample); !s.ok()) {
    Log(LogLevel::kWarn, "worker.usage_write_failed", {{"error", s.message()}});
  }
}

}  // namespace nimbus::worker
