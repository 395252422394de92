// Samples a job's worker appends to files of its job directory while it runs, which the
// server turns into CloudWatch metrics — a plain-file channel, so it works the same for a
// local worker and one on another machine over shared storage:
//
//   usage.log    "<epoch-ms>\t<cpu-percent>\t<rss-bytes>\n": CPU time over wall time since
//                the previous sample (100 = one core busy, as SageMaker's CPUUtilization)
//                and resident memory of the payload.
//   metrics.log  "<epoch-ms>\t<name>\t<value>\n": the algorithm's metrics ("train:rmse",
//                "validation:accuracy"), also what the server finds in the job's log with
//                the job's MetricDefinitions.
//
// A LineTail reads the complete lines appended after its committed offset (kept in
// <file>.offset next to the file, written when the caller commits), so a restarted server
// neither loses nor repeats samples; a partial last line waits for its newline.
//
// Thread-safety: a LineTail belongs to one thread; appends are single write(2)s with
// O_APPEND, so concurrent appenders never interleave within a line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace nimbus::control {

struct UsageSample {
  int64_t time_ms = 0;
  double cpu_percent = 0;
  int64_t rss_bytes = 0;
  bool operator==(const UsageSample&) const = default;
};

struct MetricSample {
  int64_t time_ms = 0;
  std::string name;
  double value = 0;
  bool operator==(const MetricSample&) const = default;
};

std::string UsageLogPath(const std::string& job_dir);
std::string MetricLogPath(const std::string& job_dir);

Status AppendUsageSample(const std::string& job_dir, const UsageSample& sample);
Status AppendMetricSample(const std::string& job_dir, const MetricSample& sample);

// nullopt for a malformed line.
std::optional<UsageSample> ParseUsageSample(std::string_view line);
std::optional<MetricSample> ParseMetricSample(std::string_view line);

class LineTail {
 public:
  explicit LineTail(std::string path) : path_(std::move(path)) {}
  // The complete lines after the committed offset (none when the file is missing).
  Result<std::vector<std::string>> Read();
  // Marks what the last Read returned as delivered.
  Status Commit();

 private:
  std::string path_;
  int64_t pending_offset_ = -1;
};

}  // namespace nimbus::control
