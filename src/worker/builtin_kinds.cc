// The built-in worker kinds:
//   test     the trivial payloads the executor's tests use (sleep, echo, fail, exceed-memory,
//            exceed-time, read-file, connect, print-env)
//   command  an arbitrary command line (SageMaker processing and script-mode jobs)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>
#include <vector>

#include "worker/worker_kind.h"

namespace nimbus::worker {
namespace {

double SecondsOf(const Value& spec, std::string_view key, double fallback) {
  const Value* v = spec.Find(key);
  return v != nullptr && v->is_number() ? v->AsDouble() : fallback;
}

void SleepSeconds(double seconds) {
  if (!(seconds > 0)) return;
  timespec left{static_cast<time_t>(seconds),
                static_cast<long>((seconds - std::floor(seconds)) * 1e9)};
  while (::nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
}

int Fail(const WorkerContext& ctx, const std::string& message, int code) {
  std::fprintf(stderr, "%s\n", message.c_str());
  WriteFailure(ctx.job_dir, message);
  return code;
}

int TestSleep(const WorkerContext& ctx, double fallback_seconds) {
  if (ctx.spec.GetBool("ignore_sigterm")) ::signal(SIGTERM, SIG_IGN);
  const double seconds = SecondsOf(ctx.spec, "seconds", fallback_seconds);
  std::printf("sleeping %g s\n", seconds);
  std::fflush(stdout);
  SleepSeconds(seconds);
  std::printf("done\n");
  return static_cast<int>(ctx.spec.GetInt("exit_code", 0));
}

int TestEcho(const WorkerContext& ctx) {
  if (const Value* lines = ctx.spec.Find("lines"); lines != nullptr && lines->is_list()) {
    for (const Value& line : lines->list()) std::printf("%s\n", line.AsString().c_str());
  }
  std::fflush(stdout);
  if (const Value* lines = ctx.spec.Find("stderr_lines"); lines != nullptr && lines->is_list()) {
    for (const Value& line : lines->list()) std::fprintf(stderr, "%s\n", line.AsString().c_str());
  }
  return static_cast<int>(ctx.spec.GetInt("exit_code", 0));
}

// Allocates and touches memory until the address-space limit stops it; refuses to run
// without a limit, which would only invite the kernel's OOM killer onto the machine.
int TestExceedMemory(const WorkerContext& ctx) {
  rlimit limit{};
  ::getrlimit(RLIMIT_AS, &limit);
  if (limit.rlim_cur == RLIM_INFINITY) {
    return Fail(ctx, "exceed-memory needs a memory limit (an instance type)", 2);
  }
  constexpr size_t kChunk = 8 << 20;
  std::vector<char*> blocks;
  blocks.reserve(4096);
  for (;;) {
    char* block = new char[kChunk];
    std::memset(block, 1, kChunk);
    blocks.push_back(block);
    if (blocks.size() % 16 == 0) std::printf("allocated %zu MiB\n", blocks.size() * 8);
  }
}

int TestReadFile(const WorkerContext& ctx) {
  const std::string path = ctx.spec.GetString("path");
  FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) {
    std::printf("cannot read %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) std::fwrite(buffer, 1, n, stdout);
  std::fclose(file);
  std::printf("\n");
  return 0;
}

int TestConnect(const WorkerContext& ctx) {
  const std::string host = ctx.spec.GetString("host", "127.0.0.1");
  const int port = static_cast<int>(ctx.spec.GetInt("port"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Fail(ctx, "connect needs an IPv4 address, got '" + host + "'", 2);
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    std::printf("connect failed: socket: %s\n", std::strerror(errno));
    return 1;
  }
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    rc = ::poll(&p, 1, 2000) == 1 ? 0 : -1;
    int error = rc == 0 ? 0 : ETIMEDOUT;
    socklen_t len = sizeof(error);
    if (rc == 0) ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
    errno = error;
    rc = error == 0 ? 0 : -1;
  }
  ::close(fd);
  if (rc != 0) {
    std::printf("connect failed: %s\n", std::strerror(errno));
    return 1;
  }
  std::printf("connected to %s:%d\n", host.c_str(), port);
  return 0;
}

int TestPrintEnv(const WorkerContext& ctx) {
  if (const Value* names = ctx.spec.Find("names"); names != nullptr && names->is_list()) {
    for (const Value& name : names->list()) {
      const char* value = std::getenv(name.AsString().c_str());
      std::printf("%s=%s\n", name.AsString().c_str(), value ? value : "<unset>");
    }
  }
  return 0;
}

int RunTestKind(const WorkerContext& ctx) {
  const std::string action = ctx.spec.GetString("action");
  if (action == "sleep") return TestSleep(ctx, 0);
  if (action == "exceed-time") return TestSleep(ctx, 3600);
  if (action == "echo") return TestEcho(ctx);
  if (action == "fail") {
    const std::string message = ctx.spec.GetString("message", "test failure requested");
    return Fail(ctx, message, static_cast<int>(ctx.spec.GetInt("exit_code", 1)));
  }
  if (action == "exceed-memory") return TestExceedMemory(ctx);
  if (action == "read-file") return TestReadFile(ctx);
  if (action == "connect") return TestConnect(ctx);
  if (action == "print-env") return TestPrintEnv(ctx);
  return Fail(ctx, "Unknown test action '" + action + "'", 2);
}

// spec: {"argv": ["python3", "train.py"], "workdir": "code", "env": {"NAME": "value"}}.
// A relative workdir is taken from the job directory.
int RunCommandKind(const WorkerContext& ctx) {
  std::vector<std::string> argv;
  if (const Value* list = ctx.spec.Find("argv"); list != nullptr && list->is_list()) {
    for (const Value& arg : list->list()) {
      if (!arg.is_string()) return Fail(ctx, "spec.argv must be a list of strings", 2);
      argv.push_back(arg.AsString());
    }
  }
  if (argv.empty()) return Fail(ctx, "spec.argv must be a non-empty list of strings", 2);
  std::string workdir = ctx.spec.GetString("workdir");
  if (!workdir.empty()) {
    if (workdir[0] != '/') workdir = ctx.job_dir.root() + "/" + workdir;
    if (::chdir(workdir.c_str()) != 0) {
      return Fail(ctx,
                  "Cannot enter the working directory " + workdir + ": " + std::strerror(errno), 2);
    }
  }
  if (const Value* env = ctx.spec.Find("env"); env != nullptr && env->is_map()) {
    for (const auto& [name, value] : env->map()) {
      if (!value.is_string()) return Fail(ctx, "spec.env values must be strings", 2);
      ::setenv(name.c_str(), value.AsString().c_str(), 1);
    }
  }
  // Python buffers a pipe's output; the logs should flow while the job runs.
  ::setenv("PYTHONUNBUFFERED", "1", 0);
  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  std::fflush(nullptr);
  ::execvp(args[0], args.data());
  return Fail(ctx, "Cannot run '" + argv[0] + "': " + std::strerror(errno), 127);
}

}  // namespace

void RegisterBuiltinWorkerKinds() {
  static std::once_flag once;
  std::call_once(once, [] {
    RegisterWorkerKind("test", RunTestKind);
    RegisterWorkerKind("command", RunCommandKind);
  });
}

}  // namespace nimbus::worker
