#include "control/job_samples.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "control/job_dir.h"
#include "core/strings.h"

namespace nimbus::control {
namespace {

Status AppendLine(const std::string& path, const std::string& line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Internal("cannot open " + path + ": " + std::strerror(errno));
  ssize_t written = ::write(fd, line.data(), line.size());
  ::close(fd);
  if (written != static_cast<ssize_t>(line.size())) {
    return Status::Internal("cannot append to " + path);
  }
  return Status::Ok();
}

}  // namespace

std::string UsageLogPath(const std::string& job_dir) { return job_dir + "/usage.log"; }
std::string MetricLogPath(const std::string& job_dir) { return job_dir + "/metrics.log"; }

Status AppendUsageSample(const std::string& job_dir, const UsageSample& sample) {
  char line[128];
  std::snprintf(line, sizeof(line), "%" PRId64 "\t%.3f\t%" PRId64 "\n", sample.time_ms,
                sample.cpu_percent, sample.rss_bytes);
  return AppendLine(UsageLogPath(job_dir), line);
}

Status AppendMetricSample(const std::string& job_dir, const MetricSample& sample) {
  if (sample.name.find_first_of("\t\n") != std::string::npos || !std::isfinite(sample.value)) {
    return Status::Validation("a metric needs a name without tabs or newlines and a finite value");
  }
  char value[64];
  std::snprintf(value, sizeof(value), "%.17g", sample.value);
  return AppendLine(MetricLogPath(job_dir),
                    std::to_string(sample.time_ms) + "\t" + sample.name + "\t" + value + "\n");
}

std::optional<UsageSample> ParseUsageSample(std::string_view line) {
  UsageSample sample;
  std::string text(line);
  if (std::sscanf(text.c_str(), "%" SCNd64 "\t%lf\t%" SCNd64, &sample.time_ms, &sample.cpu_percent,
                  &sample.rss_bytes) != 3) {
    return std::nullopt;
  }
  return sample;
}

std::optional<MetricSample> ParseMetricSample(std::string_view line) {
  size_t first = line.find('\t');
  size_t second = first == std::string_view::npos ? first : line.find('\t', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  auto ms = ParseInt(line.substr(0, first));
  std::string value(line.substr(second + 1));
  char* end = nullptr;
  double v = std::strtod(value.c_str(), &end);
  if (!ms || value.empty() || *end != '\0' || !std::isfinite(v)) return std::nullopt;
  return MetricSample{*ms, std::string(line.substr(first + 1, second - first - 1)), v};
}

Result<std::vector<std::string>> LineTail::Read() {
  int64_t offset = 0;
  if (auto saved = ReadWholeFile(path_ + ".offset"); saved.ok()) {
    offset = ParseInt(Trim(*saved)).value_or(0);
  }
  std::vector<std::string> lines;
  auto contents = ReadWholeFile(path_);
  if (!contents.ok()) {
    if (contents.status().kind() == ErrorKind::kNotFound) return lines;
    return contents.status();
  }
  if (offset < 0 || offset > static_cast<int64_t>(contents->size())) offset = 0;
  size_t pos = static_cast<size_t>(offset);
  while (true) {
    size_t end = contents->find('\n', pos);
    if (end == std::string::npos) break;
    lines.push_back(contents->substr(pos, end - pos));
    pos = end + 1;
  }
  pending_offset_ = static_cast<int64_t>(pos);
  return lines;
}

Status LineTail::Commit() {
  if (pending_offset_ < 0) return Status::Ok();
  return WriteFileAtomic(path_ + ".offset", std::to_string(pending_offset_));
}

}  // namespace nimbus::control
