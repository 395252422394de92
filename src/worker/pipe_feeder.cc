#include "worker/pipe_feeder.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

namespace nimbus::worker {
namespace {

std::string FifoPath(const std::string& prefix, int epoch) {
  return prefix + "_" + std::to_string(epoch);
}

Status MakeFifo(const std::string& path) {
  if (::mkfifo(path.c_str(), 0644) != 0 && errno != EEXIST) {
    return Status::Internal("cannot create the pipe " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

PipeFeeder::PipeFeeder(std::string fifo_prefix, std::string source_dir,
                       std::optional<int64_t> shuffle_seed)
    : fifo_prefix_(std::move(fifo_prefix)),
      source_dir_(std::move(source_dir)),
      shuffle_seed_(shuffle_seed) {}

PipeFeeder::~PipeFeeder() { Stop(); }

Status PipeFeeder::Prepare() { return MakeFifo(FifoPath(fifo_prefix_, 0)); }

void PipeFeeder::Start() {
  thread_ = std::thread([this] { Run(); });
}

void PipeFeeder::Stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void PipeFeeder::Run() {
  for (int epoch = 0; !stopping_; ++epoch) {
    const std::string path = FifoPath(fifo_prefix_, epoch);
    // A non-blocking open for writing fails with ENXIO until a reader opens the pipe:
    // poll for one, so that Stop() is never stuck behind an open nobody completes.
    int fd = -1;
    while (!stopping_) {
      fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0 || errno != ENXIO) break;
      ::usleep(20000);
    }
    if (fd < 0) return;
    // Writes block from here on (the reader sets the pace); poll keeps Stop() responsive.
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    bool fed = FeedEpoch(fd, epoch);
    // The next epoch's pipe exists before this one ends: a reader that opens it right
    // after reading to the end must find it.
    if (fed) fed = MakeFifo(FifoPath(fifo_prefix_, epoch + 1)).ok();
    ::close(fd);
    if (!fed) return;
  }
}

bool PipeFeeder::FeedEpoch(int fd, int epoch) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(source_dir_, ec);
       !ec && it != std::filesystem::end(it); it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  if (shuffle_seed_) {
    std::mt19937_64 rng(static_cast<uint64_t>(*shuffle_seed_ + epoch));
    std::shuffle(files.begin(), files.end(), rng);
  }
  std::vector<char> buffer(1 << 20);
  for (const auto& file : files) {
    int in = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) continue;
    ssize_t n;
    while ((n = ::read(in, buffer.data(), buffer.size())) > 0) {
      size_t done = 0;
      while (done < static_cast<size_t>(n)) {
        if (stopping_) {
          ::close(in);
          return false;
        }
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        ssize_t w = ::write(fd, buffer.data() + done, static_cast<size_t>(n) - done);
        if (w < 0) {
          if (errno == EINTR || errno == EAGAIN) continue;
          ::close(in);
          return errno == EPIPE;  // a reader that stopped early ends only the epoch
        }
        done += static_cast<size_t>(w);
      }
    }
    ::close(in);
  }
  return true;
}

}  // namespace nimbus::worker
