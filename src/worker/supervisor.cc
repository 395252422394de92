#include "worker/supervisor.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <memory>
#include <new>
#include <vector>

#include "control/job_dir.h"
#include "core/logging.h"
#include "core/strings.h"
#include "worker/log_capture.h"
#include "worker/pipe_feeder.h"
#include "worker/usage_sampler.h"
#include "worker/worker_kind.h"

namespace nimbus::worker {
namespace {

using control::JobDir;
using control::JobState;
using control::WorkerRecord;

// How long output is still read after the payload exited, for helpers that escaped its
// process group and still hold the pipe.
constexpr double kDrainSeconds = 2.0;
// How often stop.json is looked for (a stop also arrives as SIGTERM; the file alone is
// enough where no signal can be sent, e.g. from another host over shared storage).
constexpr double kStopCheckSeconds = 0.5;

int g_signal_pipe_write = -1;
volatile sig_atomic_t g_terminate = 0;

void OnSignal(int sig) {
  const int saved = errno;
  if (sig == SIGTERM || sig == SIGINT) g_terminate = 1;
  const char byte = 0;
  [[maybe_unused]] ssize_t ignored = ::write(g_signal_pipe_write, &byte, 1);
  errno = saved;
}

double Monotonic() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

double EpochNow() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

int64_t EpochMs() { return static_cast<int64_t>(EpochNow() * 1000); }

std::string SignalName(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

std::string Mib(int64_t bytes) { return std::to_string(bytes / (1024 * 1024)); }

std::string FormatSeconds(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", seconds);
  return buf;
}

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// The live (non-zombie) children of this process.
std::vector<pid_t> LiveChildren() {
  std::vector<pid_t> children;
  const pid_t self = ::getpid();
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return children;
  while (const dirent* entry = ::readdir(proc)) {
    auto pid = ParseInt(entry->d_name);
    if (!pid) continue;
    auto info = control::ReadProcessInfo(*pid);
    if (info && info->ppid == self && info->state != 'Z') children.push_back(*pid);
  }
  ::closedir(proc);
  return children;
}

void ResetSignalsForChild() {
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGCHLD, SIGPIPE, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// kOrphaned: the job directory was deleted (its server and data are gone), so nobody will
// ever read or stop the job: a model server left by a crashed server would run forever.
enum class StopCause { kNone, kRequested, kMaxRuntime, kOrphaned };

class Supervisor {
 public:
  Supervisor(const SupervisorOptions& options, JobDir dir)
      : options_(options), dir_(std::move(dir)) {}
  int Run();

 private:
  bool WriteRecord();
  int Finish(JobState state, std::string reason);
  int FinishPayload();
  std::string FailureReason(int exit_code, int sig) const;
  [[noreturn]] void RunPayload(const WorkerKindFn& fn, Value spec, int out_fd);
  void BeginStop(StopCause cause, double grace_seconds);
  // Begins a stop when one is due: SIGTERM, stop.json or a deleted job directory (both
  // looked for every kStopCheckSeconds), or the maximum runtime reached.
  void CheckStop(double now, double start, double* next_stop_check);
  bool Orphaned() const;  // the job directory no longer exists
  void CheckPayload();
  void ReapStrays();
  void KillStrays();

  const SupervisorOptions& options_;
  const JobDir dir_;
  WorkerRecord record_;
  int signal_pipe_[2] = {-1, -1};
  int log_fd_ = -1;
  int out_read_fd_ = -1;
  pid_t payload_ = -1;
  bool payload_done_ = false;
  int payload_status_ = 0;
  rusage payload_usage_{};
  StopCause stop_cause_ = StopCause::kNone;
  double kill_at_ = 0;  // monotonic; 0 = no SIGKILL pending
  std::unique_ptr<UsageSampler> usage_;
  std::vector<std::unique_ptr<PipeFeeder>> feeders_;
};

bool Supervisor::WriteRecord() {
  Status status = control::WriteWorkerRecord(dir_, record_);
  if (!status.ok()) {
    Log(LogLevel::kError, "worker.status_write_failed", {{"error", status.message()}});
    return false;
  }
  return true;
}

int Supervisor::Finish(JobState state, std::string reason) {
  record_.state = state;
  record_.reason = std::move(reason);
  record_.ended_at = EpochNow();
  Log(LogLevel::kInfo, "worker.finished",
      {{"job_id", record_.job_id},
       {"state", std::string(control::JobStateName(state))},
       {"exit_code", record_.exit_code},
       {"reason", record_.reason}});
  if (!WriteRecord()) return 1;
  return state == JobState::kSucceeded ? 0 : 1;
}

int Supervisor::Run() {
  record_.job_id = options_.job_id.empty() ? Basename(dir_.root()) : options_.job_id;
  record_.kind = options_.kind;
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  record_.host = host;
  if (auto self = control::IdentifyProcess(::getpid())) record_.process = *self;
  record_.started_at = EpochNow();

  // Signals arrive through a self-pipe, so the loop below sees them in poll().
  if (::pipe2(signal_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    Log(LogLevel::kError, "worker.pipe_failed", {{"error", std::strerror(errno)}});
    return 1;
  }
  g_signal_pipe_write = signal_pipe_[1];
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGCHLD}) ::sigaction(sig, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  // Whatever the payload leaves behind is re-parented here, to be reaped and killed.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);

  // The record goes out before stop.json is read: an executor that writes stop.json and then
  // reads status.json either finds this process to signal or is seen here.
  record_.state = JobState::kRunning;
  if (!WriteRecord()) return 1;
  if (control::ReadStopRequest(dir_)) {
    return Finish(JobState::kStopped, "Stopped by request before the job started");
  }

  const WorkerKindFn* fn = FindWorkerKind(options_.kind);
  if (fn == nullptr)
    return Finish(JobState::kFailed, "Unknown worker kind '" + options_.kind + "'");
  auto spec = control::ReadJsonFile(options_.spec_path);
  if (!spec.ok()) {
    return Finish(JobState::kFailed, "Cannot read the job spec: " + spec.status().message());
  }
  if (Status s = control::MakeDirs(dir_.LogsDir()); !s.ok()) {
    return Finish(JobState::kFailed, s.message());
  }
  const std::string log_path = dir_.LogPath(options_.log_stream);
  log_fd_ = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd_ < 0) {
    return Finish(JobState::kFailed,
                  "Cannot open the log " + log_path + ": " + std::strerror(errno));
  }
  // Pipe-mode channels: their first pipes exist before the payload starts; the feeding
  // threads start after the fork (a forked child must not inherit running threads).
  if (const Value* pipes = spec->Find("pipes"); pipes != nullptr && pipes->is_list()) {
    for (const Value& pipe : pipes->list()) {
      std::string channel = pipe.GetString("channel");
      if (Status s = control::ValidatePathComponent("channel", channel); !s.ok()) {
        return Finish(JobState::kFailed, s.message());
      }
      if (Status s = control::MakeDirs(dir_.DataDir()); !s.ok()) {
        return Finish(JobState::kFailed, s.message());
      }
      std::optional<int64_t> seed;
      if (const Value* s = pipe.Find("shuffle_seed"); s != nullptr && s->is_number()) {
        seed = s->AsInt();
      }
      auto feeder = std::make_unique<PipeFeeder>(dir_.ChannelDir(channel),
                                                 dir_.root() + "/input/pipe/" + channel, seed);
      if (Status s = feeder->Prepare(); !s.ok()) return Finish(JobState::kFailed, s.message());
      feeders_.push_back(std::move(feeder));
    }
  }
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    return Finish(JobState::kFailed, std::string("Cannot create a pipe: ") + std::strerror(errno));
  }
  std::fflush(nullptr);  // nothing buffered may be written twice by the child
  // Until the child has reset its handlers, a SIGTERM for its group would run the inherited
  // handler (which only wakes this process) and be lost: the signals wait, blocked, across
  // the fork, and the child takes them with their default action once it unblocks them.
  sigset_t stops, before;
  sigemptyset(&stops);
  for (int sig : {SIGTERM, SIGINT, SIGCHLD}) sigaddset(&stops, sig);
  ::sigprocmask(SIG_BLOCK, &stops, &before);
  payload_ = ::fork();
  if (payload_ != 0) ::sigprocmask(SIG_SETMASK, &before, nullptr);
  if (payload_ < 0) {
    return Finish(JobState::kFailed,
                  std::string("Cannot start the payload: ") + std::strerror(errno));
  }
  if (payload_ == 0) {
    ::close(out[0]);
    RunPayload(*fn, std::move(spec).value(), out[1]);
  }
  ::setpgid(payload_, payload_);  // also done by the child; whichever runs first wins
  for (auto& feeder : feeders_) feeder->Start();
  ::close(out[1]);
  out_read_fd_ = out[0];
  Log(LogLevel::kInfo, "worker.started",
      {{"job_id", record_.job_id}, {"kind", options_.kind}, {"payload_pid", payload_}});

  LineCapture capture(log_fd_);
  bool capture_failed = false;
  auto feed = [&](std::string_view data) {
    Status s = data.empty() ? capture.Finish(EpochMs()) : capture.Feed(data, EpochMs());
    if (!s.ok() && !capture_failed) {
      capture_failed = true;  // keep the job running; say so once
      Log(LogLevel::kError, "worker.log_write_failed", {{"error", s.message()}});
    }
  };

  const double start = Monotonic();
  usage_ = std::make_unique<UsageSampler>(dir_.root(), payload_, start);
  bool out_open = true;
  double drain_deadline = 0;
  double next_stop_check = start + kStopCheckSeconds;
  std::string buffer(64 * 1024, '\0');
  while (out_open) {
    const double now = Monotonic();
    CheckStop(now, start, &next_stop_check);
    if (kill_at_ > 0 && now >= kill_at_ && !payload_done_) {
      Log(LogLevel::kInfo, "worker.kill", {{"job_id", record_.job_id}});
      ::kill(-payload_, SIGKILL);
      kill_at_ = 0;
    }
    CheckPayload();
    ReapStrays();
    if (!payload_done_) usage_->MaybeSample(now);
    if (payload_done_) {
      if (drain_deadline == 0) drain_deadline = now + kDrainSeconds;
      if (now >= drain_deadline) break;
    }

    double wake = now + kStopCheckSeconds;
    if (options_.max_runtime_seconds > 0 && stop_cause_ == StopCause::kNone) {
      wake = std::min(wake, start + options_.max_runtime_seconds);
    }
    if (kill_at_ > 0) wake = std::min(wake, kill_at_);
    if (!payload_done_) wake = std::min(wake, usage_->next_due());
    if (drain_deadline > 0) wake = std::min(wake, drain_deadline);
    const int timeout_ms = static_cast<int>(std::ceil(std::max(0.0, wake - now) * 1000));
    pollfd fds[2] = {{signal_pipe_[0], POLLIN, 0}, {out_read_fd_, POLLIN, 0}};
    if (::poll(fds, 2, timeout_ms) < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      char drain[64];
      while (::read(signal_pipe_[0], drain, sizeof(drain)) > 0) {
      }
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::read(out_read_fd_, buffer.data(), buffer.size());
      if (n > 0) {
        feed(std::string_view(buffer.data(), static_cast<size_t>(n)));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        out_open = false;
      }
    }
  }
  feed({});
  ::close(out_read_fd_);
  // The payload may have closed its output before it exited.
  while (!payload_done_) {
    if (kill_at_ > 0 && Monotonic() >= kill_at_) {
      ::kill(-payload_, SIGKILL);
      kill_at_ = 0;
    }
    CheckPayload();
    if (!payload_done_) {
      pollfd fd = {signal_pipe_[0], POLLIN, 0};
      ::poll(&fd, 1, 100);
      char drain[64];
      while (::read(signal_pipe_[0], drain, sizeof(drain)) > 0) {
      }
      CheckStop(Monotonic(), start, &next_stop_check);
    }
  }
  KillStrays();
  for (auto& feeder : feeders_) feeder->Stop();
  ::close(log_fd_);
  return FinishPayload();
}

[[noreturn]] void Supervisor::RunPayload(const WorkerKindFn& fn, Value spec, int out_fd) {
  ::setpgid(0, 0);
  ResetSignalsForChild();
  ::close(signal_pipe_[0]);
  ::close(signal_pipe_[1]);
  ::close(log_fd_);
  const int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0 && devnull != 0) {
    ::dup2(devnull, 0);
    ::close(devnull);
  }
  ::dup2(out_fd, 1);
  ::dup2(out_fd, 2);
  if (out_fd > 2) ::close(out_fd);
  if (options_.memory_limit_bytes > 0) {
    const rlimit limit{static_cast<rlim_t>(options_.memory_limit_bytes),
                       static_cast<rlim_t>(options_.memory_limit_bytes)};
    ::setrlimit(RLIMIT_AS, &limit);
  }
  if (options_.cpu_limit_seconds > 0) {
    // The soft limit sends SIGXCPU; the hard one, a little later, SIGKILL.
    const rlimit limit{static_cast<rlim_t>(options_.cpu_limit_seconds),
                       static_cast<rlim_t>(options_.cpu_limit_seconds + 5)};
    ::setrlimit(RLIMIT_CPU, &limit);
  }
  if (::chdir(dir_.root().c_str()) != 0) {
    std::fprintf(stderr, "cannot enter %s: %s\n", dir_.root().c_str(), std::strerror(errno));
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int code = 1;
  try {
    WorkerContext context{options_.kind, record_.job_id, dir_, std::move(spec)};
    code = fn(context);
  } catch (const std::bad_alloc&) {
    std::fputs("MemoryError: out of memory (std::bad_alloc)\n", stderr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  } catch (...) {
    std::fputs("error: unknown exception\n", stderr);
  }
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(code & 0xff);
}

void Supervisor::BeginStop(StopCause cause, double grace_seconds) {
  stop_cause_ = cause;
  record_.state = JobState::kStopping;
  if (cause == StopCause::kMaxRuntime) {
    record_.reason = "MaxRuntimeExceeded";
  }
  const char* name = cause == StopCause::kMaxRuntime ? "MaxRuntimeExceeded"
                     : cause == StopCause::kOrphaned ? "job directory deleted"
                                                     : "request";
  Log(LogLevel::kInfo, "worker.stopping",
      {{"job_id", record_.job_id}, {"cause", name}, {"grace_seconds", grace_seconds}});
  WriteRecord();
  ::kill(-payload_, SIGTERM);
  kill_at_ = Monotonic() + std::max(0.0, grace_seconds);
}

void Supervisor::CheckStop(double now, double start, double* next_stop_check) {
  if (payload_done_ || stop_cause_ != StopCause::kNone) return;
  if (g_terminate) {
    auto request = control::ReadStopRequest(dir_);
    BeginStop(StopCause::kRequested,
              request ? request->grace_seconds : options_.kill_grace_seconds);
  } else if (now >= *next_stop_check) {
    *next_stop_check = now + kStopCheckSeconds;
    if (auto request = control::ReadStopRequest(dir_)) {
      BeginStop(StopCause::kRequested, request->grace_seconds);
    } else if (Orphaned()) {
      BeginStop(StopCause::kOrphaned, options_.kill_grace_seconds);
    }
  }
  if (stop_cause_ == StopCause::kNone && options_.max_runtime_seconds > 0 &&
      now - start >= options_.max_runtime_seconds) {
    BeginStop(StopCause::kMaxRuntime, options_.kill_grace_seconds);
  }
}

bool Supervisor::Orphaned() const {
  struct stat st;
  if (::stat(dir_.root().c_str(), &st) != 0) return errno == ENOENT;
  // In the sandbox the directory is a bind mount, which outlives its deletion outside.
  return st.st_nlink == 0;
}

void Supervisor::CheckPayload() {
  if (payload_done_ || payload_ <= 0) return;
  siginfo_t info{};
  if (::waitid(P_PID, payload_, &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      info.si_pid != payload_) {
    return;
  }
  // The payload is over, as a container whose main process exits: its group goes too. The
  // unreaped payload keeps its pid (the group id) from being reused meanwhile.
  ::kill(-payload_, SIGKILL);
  while (::wait4(payload_, &payload_status_, 0, &payload_usage_) < 0 && errno == EINTR) {
  }
  payload_done_ = true;
}

void Supervisor::ReapStrays() {
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
    if (info.si_pid == payload_ && !payload_done_) {
      CheckPayload();
      continue;
    }
    ::waitpid(info.si_pid, nullptr, 0);
  }
}

void Supervisor::KillStrays() {
  for (int round = 0; round < 100; ++round) {
    ReapStrays();
    const std::vector<pid_t> children = LiveChildren();
    if (children.empty()) return;
    for (pid_t child : children) ::kill(child, SIGKILL);
    ::usleep(10000);
  }
}

std::string Supervisor::FailureReason(int exit_code, int sig) const {
  if (auto failure = dir_.ReadFailure(1024)) return *failure;
  if (sig == SIGXCPU) {
    return "MaxRuntimeExceeded: the job used up its CPU-time limit of " +
           std::to_string(options_.cpu_limit_seconds) + " seconds";
  }
  const int64_t peak = record_.max_rss_bytes;
  const int64_t limit = options_.memory_limit_bytes;
  // RLIMIT_AS counts address space, of which code and libraries take a part, so a payload
  // that failed near its limit (10% or 64 MiB short of it) ran out of memory.
  if (limit > 0 && peak >= limit - std::max<int64_t>(limit / 10, 64LL << 20)) {
    return "OutOfMemory: the job used " + Mib(peak) + " MiB of its " + Mib(limit) +
           " MiB memory limit (the instance type's memory)";
  }
  if (sig == SIGKILL) {
    return "OutOfMemory: the payload was killed by SIGKILL, most likely by the kernel's "
           "out-of-memory killer (peak memory " +
           Mib(peak) + " MiB)";
  }
  if (sig != 0) return "killed by signal " + std::to_string(sig) + " (" + SignalName(sig) + ")";
  return "exit code " + std::to_string(exit_code);
}

int Supervisor::FinishPayload() {
  int sig = 0;
  if (WIFEXITED(payload_status_)) {
    record_.exit_code = WEXITSTATUS(payload_status_);
  } else if (WIFSIGNALED(payload_status_)) {
    sig = WTERMSIG(payload_status_);
    record_.exit_code = 128 + sig;
  }
  record_.signal = sig;
  record_.max_rss_bytes = static_cast<int64_t>(payload_usage_.ru_maxrss) * 1024;
  record_.cpu_seconds = payload_usage_.ru_utime.tv_sec + payload_usage_.ru_utime.tv_usec / 1e6 +
                        payload_usage_.ru_stime.tv_sec + payload_usage_.ru_stime.tv_usec / 1e6;
  if (usage_) usage_->Final(Monotonic(), record_.cpu_seconds, record_.max_rss_bytes);
  switch (stop_cause_) {
    case StopCause::kRequested:
      return Finish(JobState::kStopped, "Stopped by request");
    case StopCause::kOrphaned:
      return Finish(JobState::kStopped, "Stopped: its job directory was deleted");
    case StopCause::kMaxRuntime:
      return Finish(JobState::kFailed,
                    "MaxRuntimeExceeded: the job ran longer than its maximum runtime of " +
                        FormatSeconds(options_.max_runtime_seconds) + " seconds");
    case StopCause::kNone:
      break;
  }
  if (record_.exit_code == 0 && sig == 0) return Finish(JobState::kSucceeded, "");
  return Finish(JobState::kFailed, FailureReason(record_.exit_code, sig));
}

Result<double> ParseNumber(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || errno != 0 || *end != '\0' || value < 0 || !std::isfinite(value)) {
    return Status::Validation(flag + " needs a non-negative number, got '" + text + "'");
  }
  return value;
}

}  // namespace

std::string WorkerUsage() {
  std::string usage =
      "usage: nimbus worker <kind> --spec <job_dir>/spec.json [--job-id ID]\n"
      "         [--log-stream NAME] [--max-runtime SECONDS] [--memory-limit BYTES]\n"
      "         [--cpu-limit SECONDS] [--kill-grace SECONDS]\n"
      "Runs one job in its job directory (docs/job-directory.md). kinds:";
  for (const std::string& kind : WorkerKindNames()) usage += " " + kind;
  return usage + "\n";
}

Result<SupervisorOptions> ParseWorkerArgs(const std::vector<std::string>& args) {
  SupervisorOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!StartsWith(arg, "--")) {
      if (!options.kind.empty()) return Status::Validation("unexpected argument '" + arg + "'");
      options.kind = arg;
      continue;
    }
    if (i + 1 >= args.size()) return Status::Validation(arg + " needs a value");
    const std::string& value = args[++i];
    if (arg == "--spec") {
      options.spec_path = value;
    } else if (arg == "--job-id") {
      options.job_id = value;
    } else if (arg == "--log-stream") {
      NIMBUS_RETURN_IF_ERROR(control::ValidatePathComponent("log stream", value));
      options.log_stream = value;
    } else if (arg == "--max-runtime") {
      NIMBUS_ASSIGN_OR_RETURN(options.max_runtime_seconds, ParseNumber(arg, value));
    } else if (arg == "--memory-limit") {
      NIMBUS_ASSIGN_OR_RETURN(double bytes, ParseNumber(arg, value));
      options.memory_limit_bytes = static_cast<int64_t>(bytes);
    } else if (arg == "--cpu-limit") {
      NIMBUS_ASSIGN_OR_RETURN(double seconds, ParseNumber(arg, value));
      options.cpu_limit_seconds = static_cast<int64_t>(std::ceil(seconds));
    } else if (arg == "--kill-grace") {
      NIMBUS_ASSIGN_OR_RETURN(options.kill_grace_seconds, ParseNumber(arg, value));
    } else {
      return Status::Validation("unknown flag " + arg);
    }
  }
  if (options.kind.empty()) return Status::Validation("the worker kind is missing");
  if (options.spec_path.empty()) return Status::Validation("--spec is required");
  return options;
}

int RunSupervisor(const SupervisorOptions& options) {
  // The job directory is the spec's directory, by absolute path: the payload's cwd changes.
  std::string spec_path = options.spec_path;
  if (char* real = ::realpath(spec_path.c_str(), nullptr)) {
    spec_path = real;
    std::free(real);
  } else if (!StartsWith(spec_path, "/")) {
    char cwd[4096];
    if (::getcwd(cwd, sizeof(cwd)) != nullptr) spec_path = std::string(cwd) + "/" + spec_path;
  }
  SupervisorOptions resolved = options;
  resolved.spec_path = spec_path;
  Supervisor supervisor(resolved, JobDir(Dirname(spec_path)));
  return supervisor.Run();
}

int WorkerMain(const std::vector<std::string>& args) {
  RegisterBuiltinWorkerKinds();
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::fputs(WorkerUsage().c_str(), stdout);
    return 0;
  }
  auto options = ParseWorkerArgs(args);
  if (!options.ok()) {
    std::fprintf(stderr, "nimbus worker: %s\n%s", options.status().message().c_str(),
                 WorkerUsage().c_str());
    return 2;
  }
  return RunSupervisor(*options);
}

}  // namespace nimbus::worker
