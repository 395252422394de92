// The usage log of a job: <job_dir>/usage.log, where the worker records how much CPU and
// memory its payload uses as it runs, one line per sample, and the server turns the
// samples into CloudWatch metrics (CPUUtilization, MemoryUtilization), as SageMaker does
// for its jobs. Like the logs, it is a plain file of the job directory, so it works the
// same for a local worker and one on another machine over shared storage.
//
// A line is "<epoch-ms>\t<cpu-percent>\t<rss-bytes>\n"; cpu-percent is the CPU time the
// payload used since the previous sample over the wall time between them (100 = one core
// busy, as SageMaker's CPUUtilization counts). UsageTail reads the lines not read before
// and keeps its offset in <job_dir>/usage.offset, advanced only when the caller commits,
// so a restart neither loses nor repeats samples.
//
// Thread-safety: a UsageTail belongs to one thread; appends come from the worker alone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace nimbus::control {

struct UsageSample {
  int64_t time_ms = 0;
  double cpu_percent = 0;
  int64_t rss_bytes = 0;
  bool operator==(const UsageSample&) const = default;
};

std::string UsageLogPath(const std::string& job_dir);

// Appends one sample line (O_APPEND: one write, so a reader never sees half a line
// unless the writer dies mid-write, and a partial last line is left for later).
Status AppendUsageSample(const std::string& job_dir, const UsageSample& sample);

class UsageTail {
 public:
  explicit UsageTail(std::string job_dir) : job_dir_(std::move(job_dir)) {}
  // The complete lines after the committed offset (malformed lines are skipped).
  Result<std::vector<UsageSample>> Read();
  // Marks what the last Read returned as delivered.
  Status Commit();

 private:
  std::string job_dir_;
  int64_t pending_offset_ = -1;
};

}  // namespace nimbus::control
