#include "control/log_tail.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "control/job_dir.h"
#include "core/logging.h"
#include "core/strings.h"

namespace nimbus::control {
namespace {

constexpr size_t kEventOverheadBytes = 26;  // what PutLogEvents counts per event

LogEvent ParseLine(std::string_view line, int64_t* last_ms) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const size_t tab = line.find('\t');
  if (tab != std::string_view::npos && tab > 0 && tab <= 19) {
    if (auto ms = ParseInt(line.substr(0, tab)); ms && *ms >= 0) {
      *last_ms = *ms;
      return {*ms, std::string(line.substr(tab + 1))};
    }
  }
  return {*last_ms, std::string(line)};
}

}  // namespace

LogTail::LogTail(std::string job_dir, LogSink sink, LogTailOptions options)
    : logs_dir_(JobDir(std::move(job_dir)).LogsDir()), sink_(std::move(sink)), options_(options) {
  options_.max_batch_events = std::max<size_t>(options_.max_batch_events, 1);
  options_.read_chunk_bytes = std::max<size_t>(options_.read_chunk_bytes, 1);
}

std::vector<std::string> LogTail::Streams() const {
  std::vector<std::string> streams;
  DIR* dir = ::opendir(logs_dir_.c_str());
  if (dir == nullptr) return streams;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name.size() > 4 && EndsWith(name, ".log") && name[0] != '.') {
      streams.emplace_back(name.substr(0, name.size() - 4));
    }
  }
  ::closedir(dir);
  std::sort(streams.begin(), streams.end());
  return streams;
}

Result<size_t> LogTail::Poll(bool final) {
  size_t total = 0;
  for (const std::string& stream : Streams()) {
    NIMBUS_ASSIGN_OR_RETURN(size_t n, PollStream(stream, final));
    total += n;
  }
  return total;
}

Result<int64_t> LogTail::LoadOffset(const std::string& stream) {
  if (auto it = offsets_.find(stream); it != offsets_.end()) return it->second;
  int64_t offset = 0;
  auto text = ReadWholeFile(logs_dir_ + "/" + stream + ".offset");
  if (text.ok()) {
    auto parsed = ParseInt(Trim(*text));
    if (parsed && *parsed >= 0) {
      offset = *parsed;
    } else {
      Log(LogLevel::kWarn, "log_tail.bad_offset", {{"stream", stream}, {"dir", logs_dir_}});
    }
  } else if (text.status().kind() != ErrorKind::kNotFound) {
    return text.status();
  }
  offsets_[stream] = offset;
  return offset;
}

Status LogTail::SaveOffset(const std::string& stream, int64_t offset) {
  offsets_[stream] = offset;
  return WriteFileAtomic(logs_dir_ + "/" + stream + ".offset", std::to_string(offset) + "\n");
}

Result<size_t> LogTail::PollStream(const std::string& stream, bool final) {
  const std::string path = logs_dir_ + "/" + stream + ".log";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return size_t{0};
    return Status::Internal("cannot open " + path + ": " + std::strerror(errno));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return Status::Internal("cannot stat " + path + ": " + std::strerror(errno));
  }
  NIMBUS_ASSIGN_OR_RETURN(int64_t offset, LoadOffset(stream));
  if (offset > st.st_size) {
    // Logs only grow: a shorter file is a new one.
    Log(LogLevel::kWarn, "log_tail.truncated",
        {{"path", path}, {"offset", offset}, {"size", int64_t{st.st_size}}});
    offset = 0;
  }
  int64_t last_ms = int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1000000;

  size_t delivered = 0;
  std::vector<LogEvent> batch;
  size_t batch_bytes = 0;
  int64_t batch_end = offset;  // file offset just past the batch's last line
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::Ok();
    NIMBUS_RETURN_IF_ERROR(sink_(stream, batch));
    delivered += batch.size();
    batch.clear();
    batch_bytes = 0;
    return SaveOffset(stream, batch_end);
  };
  auto add = [&](std::string_view line, int64_t end) -> Status {
    LogEvent event = ParseLine(line, &last_ms);
    const size_t bytes = event.second.size() + kEventOverheadBytes;
    if (!batch.empty() && (batch.size() >= options_.max_batch_events ||
                           batch_bytes + bytes > options_.max_batch_bytes)) {
      NIMBUS_RETURN_IF_ERROR(flush());
    }
    batch.push_back(std::move(event));
    batch_bytes += bytes;
    batch_end = end;
    return Status::Ok();
  };

  std::string buffer;  // unconsumed bytes, starting at file offset buffer_start
  int64_t buffer_start = offset;
  std::string chunk(options_.read_chunk_bytes, '\0');
  // Reads up to the size seen at the start: a poll's work is bounded while the job writes.
  for (bool eof = false; !eof;) {
    const int64_t at = buffer_start + static_cast<int64_t>(buffer.size());
    const size_t want = static_cast<size_t>(std::min<int64_t>(
        static_cast<int64_t>(chunk.size()), std::max<int64_t>(st.st_size - at, 0)));
    const ssize_t n = want == 0 ? 0 : ::pread(fd, chunk.data(), want, at);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Internal("cannot read " + path + ": " + std::strerror(errno));
    }
    eof = n == 0;
    buffer.append(chunk.data(), static_cast<size_t>(n));
    size_t pos = 0;
    for (size_t nl; (nl = buffer.find('\n', pos)) != std::string::npos; pos = nl + 1) {
      NIMBUS_RETURN_IF_ERROR(add(std::string_view(buffer).substr(pos, nl - pos),
                                 buffer_start + static_cast<int64_t>(nl + 1)));
    }
    if (eof && final && pos < buffer.size()) {
      NIMBUS_RETURN_IF_ERROR(add(std::string_view(buffer).substr(pos),
                                 buffer_start + static_cast<int64_t>(buffer.size())));
      pos = buffer.size();
    }
    buffer.erase(0, pos);
    buffer_start += static_cast<int64_t>(pos);
  }
  NIMBUS_RETURN_IF_ERROR(flush());
  return delivered;
}

}  // namespace nimbus::control
