#include "serving/script_handler.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/value.h"
#include "serving/unix_http.h"

extern char** environ;

namespace nimbus::serving {
namespace internal {
// script_server.py, compiled in by embed_source.cmake (src/serving/CMakeLists.txt).
extern const char kScriptServerSource[];
}  // namespace internal

namespace {

constexpr char kPython[] = "/usr/bin/python3";
constexpr char kSocketName[] = "model.sock";
constexpr char kCustomAttributesHeader[] = "X-Amzn-SageMaker-Custom-Attributes";
// Loading a model may mean importing torch and reading gigabytes; past this the server
// is taken to be stuck.
constexpr double kStartupTimeoutSeconds = 600;
// SageMaker's limits: /ping answers within 2 seconds, /invocations within 60.
constexpr double kPingTimeoutSeconds = 2;
constexpr double kInvokeTimeoutSeconds = 60;
// SIGTERM → SIGKILL delay when the handler goes away.
constexpr auto kKillGrace = std::chrono::seconds(5);
// How much of the child's stderr is kept for error messages, and how much of that a
// message quotes.
constexpr size_t kTailKeepBytes = 16 << 10;
constexpr size_t kTailLines = 20;
constexpr size_t kTailQuoteBytes = 4000;

using Clock = std::chrono::steady_clock;

void WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // our own stderr is gone: nothing better to do with the bytes
    data += n;
    size -= static_cast<size_t>(n);
  }
}

// The last lines of text (at most kTailLines lines and kTailQuoteBytes bytes), trimmed.
std::string LastLines(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  size_t start = text.size();
  for (size_t lines = 0; start > 0 && lines < kTailLines; ++lines) {
    const size_t newline = text.rfind('\n', start - 1);
    start = newline == std::string_view::npos ? 0 : newline;
    if (newline == std::string_view::npos) break;
  }
  if (start < text.size() && text[start] == '\n') ++start;
  if (text.size() - start > kTailQuoteBytes) start = text.size() - kTailQuoteBytes;
  return std::string(text.substr(start));
}

// Copies the child's stderr to this process's stderr as it arrives (the worker's stderr
// is the job's log) and keeps its end, which becomes the error message when the child
// dies. Owns the pipe's read end. Thread-safe.
class StderrTee {
 public:
  explicit StderrTee(int read_fd) : fd_(read_fd), thread_([this] { Run(); }) {}
  ~StderrTee() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  StderrTee(const StderrTee&) = delete;
  StderrTee& operator=(const StderrTee&) = delete;

  // Waits until the stream ends (the child and all it started have closed it) or the
  // timeout passes, so that Tail() holds the child's last words.
  void WaitForEnd(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return ended_; });
  }
  std::string Tail() const {
    std::lock_guard lock(mu_);
    return LastLines(tail_);
  }

 private:
  void Run() {
    char buffer[16 << 10];
    // Once stopping, only what is already in the pipe is copied, and not forever (a
    // grandchild may hold the pipe open and keep writing).
    int after_stop = 0;
    while (after_stop < 64) {
      if (stop_) ++after_stop;
      pollfd pfd{fd_, POLLIN, 0};
      const int ready = ::poll(&pfd, 1, stop_ ? 0 : 200);
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) break;
      if (ready == 0) {
        if (stop_) break;
        continue;
      }
      const ssize_t n = ::read(fd_, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      WriteAll(STDERR_FILENO, buffer, static_cast<size_t>(n));
      std::lock_guard lock(mu_);
      tail_.append(buffer, static_cast<size_t>(n));
      if (tail_.size() > kTailKeepBytes) tail_.erase(0, tail_.size() - kTailKeepBytes);
    }
    std::lock_guard lock(mu_);
    ended_ = true;
    cv_.notify_all();
  }

  const int fd_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string tail_;    // GUARDED_BY(mu_)
  bool ended_ = false;  // GUARDED_BY(mu_)
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts once the members above exist
};

std::string Describe(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with code " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    return "was killed by signal " + std::to_string(WTERMSIG(wait_status)) + " (" +
           ::strsignal(WTERMSIG(wait_status)) + ")";
  }
  return "stopped (status " + std::to_string(wait_status) + ")";
}

// The child's environment: this process's, then the container's Environment, then
// SM_MODEL_DIR, as a SageMaker container sees them.
std::vector<std::string> ChildEnvironment(const ContainerSpec& spec, const std::string& model_dir) {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    const size_t eq = text.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    env.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  // As the framework images set them: logs reach the job's log as they are written, and
  // the user's code directory is not littered with __pycache__.
  env.emplace("PYTHONUNBUFFERED", "TRUE");
  env.emplace("PYTHONDONTWRITEBYTECODE", "TRUE");
  for (const auto& [name, value] : spec.environment) {
    if (name.empty() || name.find('=') != std::string::npos) continue;
    env[name] = value;
  }
  if (!model_dir.empty()) env["SM_MODEL_DIR"] = model_dir;
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [name, value] : env) out.push_back(name + "=" + value);
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::string Absolute(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  return ec ? path : absolute.lexically_normal().string();
}

// Starts argv with env; stdin is /dev/null, stdout is ours, stderr is stderr_fd. The child
// starts with default signal handling and an empty mask whatever this process has set
// (a blocked SIGTERM would make the destructor wait for the grace period).
Result<pid_t> Spawn(std::vector<std::string> argv, std::vector<std::string> env, int stderr_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, stderr_fd, STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> c_argv = CStrings(argv);
  std::vector<char*> c_env = CStrings(env);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, c_argv[0], &actions, &attr, c_argv.data(), c_env.data());
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return Status::Internal(std::string("Cannot start ") + argv[0] + ": " + std::strerror(rc));
  }
  return pid;
}

class ScriptHandler final : public InferenceHandler {
 public:
  ScriptHandler(std::string program, std::string socket_path)
      : program_(std::move(program)), socket_path_(std::move(socket_path)), pool_(socket_path_) {}

  ~ScriptHandler() override {
    Terminate();
    pool_.Clear();
    tee_.reset();
    ::unlink(socket_path_.c_str());
  }

  // Starts the child and waits until it answers /ping (the model is loaded) or fails.
  Status Start(const ContainerSpec& spec) {
    const std::string model_dir = Absolute(spec.model_dir);
    const Value spec_value = Value::Object({{"model_dir", model_dir},
                                            {"code_dir", Absolute(spec.code_dir)},
                                            {"program", program_},
                                            {"threads", int64_t{std::max(1, spec.threads)}}});
    // A socket left by an earlier server in this directory must not look like this one.
    ::unlink(socket_path_.c_str());
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      return Status::Internal(std::string("Cannot create a pipe: ") + std::strerror(errno));
    }
    Result<pid_t> pid =
        Spawn({kPython, "-c", internal::kScriptServerSource, socket_path_, ToJson(spec_value)},
              ChildEnvironment(spec, model_dir), pipe_fds[1]);
    ::close(pipe_fds[1]);
    tee_ = std::make_unique<StderrTee>(pipe_fds[0]);
    if (!pid.ok()) return pid.status();
    {
      std::lock_guard lock(mu_);
      pid_ = *pid;
    }

    const Clock::time_point deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(kStartupTimeoutSeconds));
    auto pause = std::chrono::milliseconds(10);
    while (true) {
      if (Exited()) {
        tee_->WaitForEnd(std::chrono::seconds(2));
        const std::string tail = tee_->Tail();
        return Status::Validation("The model server for " + program_ + " " + ExitDescription() +
                                  " before it was ready" +
                                  (tail.empty() ? " (it wrote nothing to stderr)" : ":\n" + tail));
      }
      if (::access(socket_path_.c_str(), F_OK) == 0) {
        Result<HttpMessage> ping = pool_.Call("GET", "/ping", {}, "", kPingTimeoutSeconds);
        if (ping.ok() && ping->status == 200) return Status::Ok();
      }
      if (Clock::now() > deadline) {
        Terminate();
        return Status::Validation(
            "The model server for " + program_ + " did not answer /ping within " +
            std::to_string(static_cast<int>(kStartupTimeoutSeconds)) + " seconds of starting");
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(200));
    }
  }

  Result<InvocationResult> Invoke(const Invocation& request) override {
    // Checked first: a write to a dead server's connection must not be attempted at all.
    if (Exited()) return DeadServer();
    HeaderList headers;
    if (!request.content_type.empty()) headers.emplace_back("Content-Type", request.content_type);
    if (!request.accept.empty()) headers.emplace_back("Accept", request.accept);
    if (!request.custom_attributes.empty()) {
      headers.emplace_back(kCustomAttributesHeader, request.custom_attributes);
    }
    Result<HttpMessage> response =
        pool_.Call("POST", "/invocations", headers, request.body, kInvokeTimeoutSeconds);
    if (!response.ok()) {
      // A dying server closes its sockets a moment before it can be reaped: give it that
      // moment, so that the answer says it died rather than that it refused.
      if (ExitedWithin(std::chrono::milliseconds(500))) return DeadServer();
      return Status::Internal("The model server for " + program_ +
                              " did not answer: " + response.status().message());
    }
    InvocationResult result;
    result.status = response->status;
    result.content_type = std::string(response->Header("Content-Type"));
    result.custom_attributes = std::string(response->Header(kCustomAttributesHeader));
    result.body = std::move(response->body);
    return result;
  }

  bool Ping() override {
    if (Exited()) return false;
    Result<HttpMessage> ping = pool_.Call("GET", "/ping", {}, "", kPingTimeoutSeconds);
    return ping.ok() && ping->status == 200;
  }

 private:
  // Whether the child is gone; the first call that finds it so reaps it and records how.
  bool Exited() {
    std::lock_guard lock(mu_);
    if (pid_ < 0) return true;
    int wait_status = 0;
    const pid_t r = ::waitpid(pid_, &wait_status, WNOHANG);
    if (r == 0) return false;
    if (r == pid_) {
      exit_ = Describe(wait_status);
    } else {
      // ECHILD: reaped elsewhere (SIGCHLD ignored, a subreaper's sweep): gone all the same.
      exit_ = std::string("is gone (") + std::strerror(errno) + ")";
    }
    pid_ = -1;
    return true;
  }

  bool ExitedWithin(std::chrono::milliseconds timeout) {
    const Clock::time_point give_up = Clock::now() + timeout;
    while (!Exited()) {
      if (Clock::now() >= give_up) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  std::string ExitDescription() {
    std::lock_guard lock(mu_);
    return exit_;
  }

  Status DeadServer() {
    tee_->WaitForEnd(std::chrono::milliseconds(500));
    const std::string tail = tee_->Tail();
    return Status::Internal("The model server for " + program_ + " " + ExitDescription() +
                            (tail.empty() ? "" : ":\n" + tail));
  }

  // SIGTERM, then SIGKILL after the grace period; reaps the child.
  void Terminate() {
    std::lock_guard lock(mu_);
    if (pid_ < 0) return;
    int wait_status = 0;
    ::kill(pid_, SIGTERM);
    const Clock::time_point give_up = Clock::now() + kKillGrace;
    pid_t r = 0;
    while ((r = ::waitpid(pid_, &wait_status, WNOHANG)) == 0 && Clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (r == 0) {
      ::kill(pid_, SIGKILL);
      while ((r = ::waitpid(pid_, &wait_status, 0)) < 0 && errno == EINTR) {
      }
    }
    exit_ = r == pid_ ? Describe(wait_status) : "is gone";
    pid_ = -1;
  }

  const std::string program_;
  const std::string socket_path_;
  ConnectionPool pool_;
  std::unique_ptr<StderrTee> tee_;  // set by Start, before any other thread sees this
  std::mutex mu_;
  pid_t pid_ = -1;    // GUARDED_BY(mu_); -1 before the start and once reaped
  std::string exit_;  // GUARDED_BY(mu_): how the child ended
};

}  // namespace

Result<std::unique_ptr<InferenceHandler>> MakeScriptHandler(const ContainerSpec& spec,
                                                            const std::string& work_dir) {
  std::string program = spec.program;
  if (program.empty()) {
    auto it = spec.environment.find("SAGEMAKER_PROGRAM");
    program = it != spec.environment.end() && !it->second.empty() ? it->second : "inference.py";
  }
  if (::access(kPython, X_OK) != 0) {
    return Status::Internal(std::string("Script-mode models need ") + kPython + ": " +
                            std::strerror(errno));
  }
  if (!work_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(work_dir, ec);
    if (ec) return Status::Internal("Cannot create " + work_dir + ": " + ec.message());
  }
  const std::string socket_path = work_dir.empty() ? kSocketName : work_dir + "/" + kSocketName;
  auto handler = std::make_unique<ScriptHandler>(program, socket_path);
  NIMBUS_RETURN_IF_ERROR(handler->Start(spec));
  return std::unique_ptr<InferenceHandler>(std::move(handler));
}

}  // namespace nimbus::serving
