#include "control/usage_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "control/job_dir.h"
#include "core/strings.h"

namespace nimbus::control {

std::string UsageLogPath(const std::string& job_dir) { return job_dir + "/usage.log"; }

namespace {

std::string OffsetPath(const std::string& job_dir) { return job_dir + "/usage.offset"; }

}  // namespace

Status AppendUsageSample(const std::string& job_dir, const UsageSample& sample) {
  char line[128];
  int n = std::snprintf(line, sizeof(line), "%" PRId64 "\t%.3f\t%" PRId64 "\n", sample.time_ms,
                        sample.cpu_percent, sample.rss_bytes);
  std::string path = UsageLogPath(job_dir);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Internal("cannot open " + path + ": " + std::strerror(errno));
  ssize_t written = ::write(fd, line, static_cast<size_t>(n));
  ::close(fd);
  if (written != n) return Status::Internal("cannot append to " + path);
  return Status::Ok();
}

Result<std::vector<UsageSample>> UsageTail::Read() {
  int64_t offset = 0;
  if (auto saved = ReadWholeFile(OffsetPath(job_dir_)); saved.ok()) {
    offset = ParseInt(Trim(*saved)).value_or(0);
  }
  auto contents = ReadWholeFile(UsageLogPath(job_dir_));
  std::vector<UsageSample> samples;
  if (!contents.ok()) {
    if (contents.status().kind() == ErrorKind::kNotFound) return samples;
    return contents.status();
  }
  if (offset < 0 || offset > static_cast<int64_t>(contents->size())) offset = 0;
  size_t pos = static_cast<size_t>(offset);
  while (true) {
    size_t end = contents->find('\n', pos);
    if (end == std::string::npos) break;
    std::string line = contents->substr(pos, end - pos);
    pos = end + 1;
    UsageSample sample;
    if (std::sscanf(line.c_str(), "%" SCNd64 "\t%lf\t%" SCNd64, &sample.time_ms,
                    &sample.cpu_percent, &sample.rss_bytes) == 3) {
      samples.push_back(sample);
    }
  }
  pending_offset_ = static_cast<int64_t>(pos);
  return samples;
}

Status UsageTail::Commit() {
  if (pending_offset_ < 0) return Status::Ok();
  return WriteFileAtomic(OffsetPath(job_dir_), std::to_string(pending_offset_));
}

}  // namespace nimbus::control
