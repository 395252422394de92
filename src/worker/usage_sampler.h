// UsageSampler: measures the CPU time and resident memory of the payload's process group
// (every process whose group is the payload's, read from /proc) and appends samples to the
// job's usage log (control/job_samples.h): the first after one second, then every
// `interval` seconds, and a last one when the payload ends, from its rusage.
//
// Thread-safety: used by the supervisor's loop only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace nimbus::worker {

struct GroupUsage {
  double cpu_seconds = 0;  // user + system of the live members, plus their reaped children
  int64_t rss_bytes = 0;
};

// The usage of the processes in group pgid; zero when none is left.
GroupUsage MeasureProcessGroup(pid_t pgid);

class UsageSampler {
 public:
  UsageSampler(std::string job_dir, pid_t pgid, double start_monotonic, double interval = 5);

  // When the next sample is due (monotonic seconds).
  double next_due() const { return next_due_; }
  // Takes a sample when one is due.
  void MaybeSample(double now_monotonic);
  // The last sample, from the payload's final CPU time (rusage of the reaped payload).
  void Final(double now_monotonic, double total_cpu_seconds, int64_t peak_rss_bytes);

 private:
  void Append(double now_monotonic, double cpu_seconds, int64_t rss_bytes);

  std::string job_dir_;
  pid_t pgid_;
  double interval_;
  double next_due_;
  double last_time_;
  double last_cpu_ = 0;
};

}  // namespace nimbus::worker
