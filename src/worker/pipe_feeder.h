// PipeFeeder: SageMaker's Pipe input mode for one channel. The algorithm reads epoch e of
// the channel from the named pipe /opt/ml/input/data/<channel>_<e>; the feeder creates
// <channel>_0 up front, and for each epoch waits for a reader, streams every file of the
// channel's staged data into the pipe (sorted by path, as one stream), closes it, and
// creates the next epoch's pipe. Nimbus stages the S3 data in the job directory first
// (input/pipe/<channel>/), so a Pipe-mode job reads a stream exactly as on SageMaker
// without the data ever being visible as files to it.
//
// Thread-safety: Start() runs a thread; Stop() ends it (a pending open is abandoned) and
// joins. Both from the owning thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>

#include "core/result.h"

namespace nimbus::worker {

class PipeFeeder {
 public:
  // fifo_prefix: ".../input/data/<channel>"; source_dir: the staged files. With a
  // shuffle seed (the channel's ShuffleConfig), each epoch streams the files in another
  // order, drawn from seed + epoch.
  PipeFeeder(std::string fifo_prefix, std::string source_dir,
             std::optional<int64_t> shuffle_seed = std::nullopt);
  ~PipeFeeder();

  // Creates the first epoch's pipe. REQUIRES: before the payload starts.
  Status Prepare();
  void Start();
  void Stop();

 private:
  void Run();
  // Streams the channel into one opened pipe; false when stopping or the reader left.
  bool FeedEpoch(int fd, int epoch);

  std::string fifo_prefix_;
  std::string source_dir_;
  std::optional<int64_t> shuffle_seed_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace nimbus::worker
