// LineCapture: turns the payload's output into the job's log stream file
// (<job_dir>/logs/<stream>.log, docs/job-directory.md): every line is written as
// "<epoch-ms>\t<text>\n", stamped when its first byte arrived, so timestamps are right even
// while the server is down and the file is read later. A trailing "\r" is dropped; a line
// longer than max_line_bytes is cut into several (at a UTF-8 character boundary), since a
// CloudWatch Logs event holds at most 256 KiB.
//
// Thread-safety: none; one supervisor thread feeds it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace nimbus::worker {

inline constexpr size_t kMaxLogLineBytes = 256 * 1024 - 1024;

class LineCapture {
 public:
  // fd: the log file, opened for appending; not owned.
  explicit LineCapture(int fd, size_t max_line_bytes = kMaxLogLineBytes)
      : fd_(fd), max_line_bytes_(max_line_bytes) {}

  // Takes bytes read from the payload at now_ms; writes every line they complete.
  Status Feed(std::string_view data, int64_t now_ms);
  // Writes the pending partial line, if any (at end of output).
  Status Finish(int64_t now_ms);

  // Formats one log record (exposed for tests and for LogTail's counterpart).
  static std::string Format(int64_t ms, std::string_view text);

 private:
  void Emit(std::string_view text, int64_t ms, std::string* out);
  Status WriteAll(const std::string& bytes);

  int fd_;
  size_t max_line_bytes_;
  std::string pending_;
  int64_t pending_since_ms_ = 0;
};

}  // namespace nimbus::worker
