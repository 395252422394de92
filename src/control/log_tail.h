// LogTail: delivers a job's log lines (<job_dir>/logs/<stream>.log, written by the worker as
// "<epoch-ms>\t<text>\n", docs/job-directory.md) to a sink, the lead's bridge to CloudWatch
// Logs, picking up where it left off.
//
// Each stream's delivery offset is kept in <job_dir>/logs/<stream>.offset and advanced only
// after the sink accepted a batch, so delivery resumes after a server restart: at least once,
// in order, with no line skipped (a crash between the sink and the offset write repeats one
// batch). Only complete lines are delivered; a partial last line waits for its newline,
// unless Poll(final=true) is asked once the job has ended. A line without a valid timestamp
// prefix is delivered whole, stamped with the previous line's time (or the file's mtime).
// Batches stay within CloudWatch's PutLogEvents limits (10,000 events; 1 MiB counting
// 26 bytes per event) by default.
//
// Thread-safety: not thread-safe; use one LogTail per job from one thread at a time (two
// LogTails on the same job directory would deliver lines twice).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace nimbus::control {

using LogEvent = std::pair<int64_t, std::string>;  // epoch ms, message
using LogSink =
    std::function<Status(const std::string& stream, const std::vector<LogEvent>& events)>;

struct LogTailOptions {
  size_t max_batch_events = 10000;
  size_t max_batch_bytes = 1024 * 1024;  // message bytes + 26 per event
  size_t read_chunk_bytes = 1024 * 1024;
};

class LogTail {
 public:
  LogTail(std::string job_dir, LogSink sink, LogTailOptions options = {});

  // Delivers what is new in every stream (logs/*.log). Returns the number of events
  // delivered; on a sink or file error, returns it (after the batches that succeeded).
  Result<size_t> Poll(bool final = false);
  // The same for one stream.
  Result<size_t> PollStream(const std::string& stream, bool final = false);

  // The streams present: logs/<stream>.log, sorted.
  std::vector<std::string> Streams() const;

 private:
  Result<int64_t> LoadOffset(const std::string& stream);
  Status SaveOffset(const std::string& stream, int64_t offset);

  std::string logs_dir_;
  LogSink sink_;
  LogTailOptions options_;
  std::map<std::string, int64_t> offsets_;  // cached <stream>.offset values
};

}  // namespace nimbus::control
