#include "control/local_executor.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "control/job_dir.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/strings.h"

extern char** environ;

namespace nimbus::control {
namespace {

constexpr const char* kLostReason = "The worker process exited unexpectedly";
constexpr const char* kGlibcTunables = "glibc.malloc.hugetlb=1";
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string RealPath(const std::string& path) {
  char* real = ::realpath(path.c_str(), nullptr);
  if (real == nullptr) return path;
  std::string result = real;
  std::free(real);
  return result;
}

std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::vector<std::string> dirs = Split(path ? path : "", ':');
  dirs.push_back("/usr/bin");
  for (const std::string& dir : dirs) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// A message from the launching children to Launch, through a close-on-exec pipe.
struct SpawnMessage {
  int32_t tag;  // kWorkerPid or kExecErrno
  int64_t value;
};
constexpr int32_t kWorkerPid = 1;
constexpr int32_t kExecErrno = 2;

// Starts argv detached from this process: a first child starts a new session and forks the
// worker, then exits at once, so the worker is re-parented (to init or a subreaper) and no
// signal or exit of the server reaches it. Returns the worker's pid once it has exec'd.
Result<pid_t> SpawnDetached(std::vector<std::string> argv, std::vector<std::string> env,
                            const std::string& cwd, const std::string& log_path) {
  // Everything the children need is prepared here: between fork and exec they may only make
  // async-signal-safe calls (this process has other threads).
  std::vector<char*> c_argv = CStrings(argv);
  std::vector<char*> c_env = CStrings(env);
  const long max_fd = std::min<long>(::sysconf(_SC_OPEN_MAX), 65536);
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return Status::Internal("cannot open " + log_path + ": " + std::strerror(errno));
  }
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int report[2];
  if (null_fd < 0 || ::pipe2(report, O_CLOEXEC) != 0) {
    Status status =
        Status::Internal(std::string("cannot prepare the launch: ") + std::strerror(errno));
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return status;
  }

  const pid_t middle = ::fork();
  if (middle == 0) {
    ::setsid();
    const pid_t worker = ::fork();
    if (worker != 0) {
      const SpawnMessage m{kWorkerPid, worker < 0 ? -int64_t{errno} : int64_t{worker}};
      [[maybe_unused]] ssize_t n = ::write(report[1], &m, sizeof(m));
      ::_exit(0);
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    int err_fd = report[1];
    if (err_fd < 3) err_fd = ::fcntl(report[1], F_DUPFD_CLOEXEC, 3);
    // No descriptor of the server (sockets, the database) may leak into the job.
    bool closed = true;
    if (err_fd > 3 && ::close_range(3, err_fd - 1, 0) != 0) closed = false;
    if (::close_range(err_fd + 1, ~0U, 0) != 0) closed = false;
    if (!closed) {
      for (int fd = 3; fd < max_fd; ++fd) {
        if (fd != err_fd) ::close(fd);
      }
    }
    if (::chdir(cwd.c_str()) == 0) ::execve(c_argv[0], c_argv.data(), c_env.data());
    const SpawnMessage m{kExecErrno, errno};
    [[maybe_unused]] ssize_t n = ::write(err_fd, &m, sizeof(m));
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(report[1]);
  ::close(log_fd);
  ::close(null_fd);
  if (middle < 0) {
    ::close(report[0]);
    return Status::Internal(std::string("cannot fork: ") + std::strerror(fork_errno));
  }
  while (::waitpid(middle, nullptr, 0) < 0 && errno == EINTR) {
  }
  // Reads until every writer is gone: the worker's copy closes when it execs.
  int64_t worker = 0;
  int exec_errno = 0;
  SpawnMessage m;
  for (;;) {
    const ssize_t n = ::read(report[0], &m, sizeof(m));
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof(m))) break;
    if (m.tag == kWorkerPid) worker = m.value;
    if (m.tag == kExecErrno) exec_errno = static_cast<int>(m.value);
  }
  ::close(report[0]);
  if (worker < 0) {
    return Status::Internal(std::string("cannot fork: ") +
                            std::strerror(static_cast<int>(-worker)));
  }
  if (exec_errno != 0) {
    return Status::Internal("cannot run " + argv[0] + ": " + std::strerror(exec_errno));
  }
  if (worker == 0) return Status::Internal("the worker launch reported no pid");
  return static_cast<pid_t>(worker);
}

// Runs a short command as a direct child and returns its exit status (-1 when it could not
// run).
int RunQuietly(std::vector<std::string> argv) {
  std::vector<char*> c_argv = CStrings(argv);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, c_argv[0], &actions, nullptr, c_argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::optional<ProcessIdentity> LauncherOf(const JobDir& dir) {
  auto launch = ReadJsonFile(dir.LaunchPath());
  if (!launch.ok()) return std::nullopt;
  return ProcessIdentity{launch->GetInt("pid"), launch->GetInt("pid_start_time"),
                         launch->GetString("boot_id"), launch->GetString("pid_namespace")};
}

// When this server is the launched process's parent (it runs as PID 1 of a container, or
// as a subreaper), its zombie is ours to collect.
void ReapIfOurs(const std::optional<ProcessIdentity>& process) {
  if (!process || process->pid <= 0) return;
  auto info = ReadProcessInfo(process->pid);
  if (info && info->state == 'Z' && info->ppid == ::getpid() &&
      info->start_time == process->start_time) {
    ::waitpid(static_cast<pid_t>(process->pid), nullptr, WNOHANG);
  }
}

// Whether the job's worker still runs. Its own record names it when it shares this PID
// namespace (unsandboxed); a sandboxed worker is PID 1 of its own namespace, and the launched
// process (bwrap, in this namespace) lives exactly as long as it does.
bool WorkerAlive(const std::optional<WorkerRecord>& record, const JobDir& dir) {
  if (record && record->process.pid > 0 && InThisPidNamespace(record->process)) {
    return IsAlive(record->process);
  }
  auto launcher = LauncherOf(dir);
  return launcher && IsAlive(*launcher);
}

// The pid, in this namespace, of the worker to signal; 0 when it is not running.
pid_t WorkerPid(const std::optional<WorkerRecord>& record, const JobDir& dir) {
  if (record && record->process.pid > 0 && InThisPidNamespace(record->process)) {
    return IsAlive(record->process) ? static_cast<pid_t>(record->process.pid) : 0;
  }
  auto launcher = LauncherOf(dir);
  if (!launcher || !IsAlive(*launcher)) return 0;
  // bwrap --as-pid-1 runs the worker as its only child.
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return 0;
  pid_t worker = 0;
  while (const dirent* entry = ::readdir(proc)) {
    auto pid = ParseInt(entry->d_name);
    if (!pid) continue;
    auto info = ReadProcessInfo(*pid);
    if (info && info->ppid == launcher->pid && info->state != 'Z') {
      worker = static_cast<pid_t>(*pid);
      break;
    }
  }
  ::closedir(proc);
  return worker;
}

JobStatus StatusOf(const WorkerRecord& record) {
  JobStatus status;
  status.state = record.state;
  status.exit_code = record.exit_code;
  status.reason = record.reason;
  status.started_at = record.started_at;
  status.ended_at = record.ended_at;
  return status;
}

std::string TailOf(const std::string& path, size_t bytes) {
  auto text = ReadWholeFile(path);
  if (!text.ok()) return {};
  return std::string(Trim(text->size() > bytes ? text->substr(text->size() - bytes) : *text));
}

JobStatus MarkLost(const JobDir& dir, WorkerRecord record, const std::string& job_id) {
  record.state = JobState::kLost;
  record.reason = kLostReason;
  record.ended_at = SystemClock::Instance().Now();
  if (record.job_id.empty()) record.job_id = job_id;
  Log(LogLevel::kWarn, "executor.worker_lost",
      {{"job_id", job_id},
       {"job_dir", dir.root()},
       {"worker_log", TailOf(dir.WorkerLogPath(), 1024)}});
  // Recorded, so the verdict is stable and later polls are cheap.
  if (Status s = WriteWorkerRecord(dir, record); !s.ok()) {
    Log(LogLevel::kError, "executor.status_write_failed", {{"error", s.message()}});
  }
  return StatusOf(record);
}

}  // namespace

LocalExecutor::LocalExecutor(LocalExecutorOptions options) : options_(std::move(options)) {
  if (options_.worker_binary.empty()) options_.worker_binary = "/proc/self/exe";
  options_.worker_binary = RealPath(options_.worker_binary);
}

void LocalExecutor::ProbeSandbox() {
  if (options_.use_sandbox == LocalExecutorOptions::Sandbox::kOff) return;
  std::string bwrap = options_.bwrap_binary.empty() ? FindOnPath("bwrap") : options_.bwrap_binary;
  if (bwrap.empty()) {
    bwrap_error_ = "bubblewrap (bwrap) is not installed";
  } else {
    // Installed is not enough: it needs user namespaces (or privileges) to work.
    const int rc = RunQuietly({bwrap, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
                               "--unshare-net", "--unshare-pid", "--as-pid-1", "--", "/bin/sh",
                               "-c", "exit 0"});
    if (rc == 0) {
      options_.bwrap_binary = bwrap;
      use_bwrap_ = true;
    } else {
      bwrap_error_ = bwrap + " does not work here (exit status " + std::to_string(rc) + ")";
    }
  }
  if (!use_bwrap_ && options_.use_sandbox == LocalExecutorOptions::Sandbox::kAuto) {
    Log(LogLevel::kWarn, "executor.no_sandbox",
        {{"reason", bwrap_error_},
         {"effect", "jobs run unsandboxed: they can see the whole machine and network"}});
  }
}

bool LocalExecutor::sandboxed() {
  std::call_once(probe_once_, [this] { ProbeSandbox(); });
  return use_bwrap_;
}

Result<std::vector<std::string>> LocalExecutor::BuildCommand(const LaunchRequest& request,
                                                             const std::string& job_dir) {
  const JobDir dir(job_dir);
  std::vector<std::string> worker = {
      options_.worker_binary, "worker",   request.kind,   "--spec",
      dir.SpecPath(),         "--job-id", request.job_id, "--log-stream",
      options_.log_stream};
  char grace[32];
  std::snprintf(grace, sizeof(grace), "%g", options_.max_runtime_grace_seconds);
  worker.insert(worker.end(), {"--kill-grace", grace});
  const int count = std::max(request.instance_count, 1);
  if (request.instance != nullptr) {
    const int64_t bytes = request.instance->memory_mib * count * (int64_t{1} << 20);
    worker.insert(worker.end(), {"--memory-limit", std::to_string(bytes)});
  }
  if (request.max_runtime_seconds > 0) {
    worker.insert(worker.end(), {"--max-runtime", std::to_string(request.max_runtime_seconds)});
    if (request.instance != nullptr) {
      const int64_t cpu = int64_t{request.instance->vcpus} * count * request.max_runtime_seconds;
      worker.insert(worker.end(), {"--cpu-limit", std::to_string(cpu)});
    }
  }

  if (!sandboxed()) {
    if (options_.use_sandbox == LocalExecutorOptions::Sandbox::kOn) {
      return Status::Internal("the job sandbox is required but unavailable: " + bwrap_error_);
    }
    return worker;
  }
  std::vector<std::string> cmd = {options_.bwrap_binary, "--ro-bind", "/usr", "/usr"};
  // Merged-/usr systems have /bin, /lib … as symlinks into /usr: recreate them as such.
  for (const char* top : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    struct stat st;
    if (::lstat(top, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      const ssize_t n = ::readlink(top, target, sizeof(target) - 1);
      if (n <= 0) continue;
      cmd.insert(cmd.end(), {"--symlink", std::string(target, static_cast<size_t>(n)), top});
    } else if (S_ISDIR(st.st_mode)) {
      cmd.insert(cmd.end(), {"--ro-bind", top, top});
    }
  }
  cmd.insert(cmd.end(),
             {"--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"});
  // After the fresh /tmp, so that paths under /tmp are bound on top of it.
  if (!StartsWith(options_.worker_binary, "/usr/")) {
    cmd.insert(cmd.end(), {"--ro-bind", options_.worker_binary, options_.worker_binary});
  }
  cmd.insert(cmd.end(), {"--bind", job_dir, job_dir, "--bind", job_dir, "/opt/ml", "--unshare-ipc",
                         "--unshare-uts", "--unshare-cgroup-try"});
  // Its own PID namespace, with the worker as PID 1: no other process (and none of their
  // /proc/<pid>/root or environ) is visible, and when the worker ends, everything in the
  // sandbox ends with it.
  cmd.insert(cmd.end(), {"--unshare-pid", "--as-pid-1"});
  if (!request.network) cmd.push_back("--unshare-net");
  cmd.insert(cmd.end(), {"--chdir", job_dir, "--"});
  cmd.insert(cmd.end(), worker.begin(), worker.end());
  return cmd;
}

Status LocalExecutor::Launch(const LaunchRequest& request) {
  NIMBUS_RETURN_IF_ERROR(ValidatePathComponent("job id", request.job_id));
  NIMBUS_RETURN_IF_ERROR(ValidatePathComponent("job kind", request.kind));
  if (request.job_dir.empty()) return Status::Validation("the job directory is missing");
  if (request.instance_count < 1) return Status::Validation("InstanceCount must be at least 1");
  NIMBUS_RETURN_IF_ERROR(JobDir(request.job_dir).Create());
  // The sandbox binds the directory by its real path.
  const JobDir dir(RealPath(request.job_dir));

  NIMBUS_ASSIGN_OR_RETURN(auto record, ReadWorkerRecord(dir));
  if ((!record || !IsTerminal(record->state)) && WorkerAlive(record, dir)) {
    return Status::Conflict("a worker for job '" + request.job_id + "' is still running in " +
                            dir.root());
  }
  // A fresh attempt: nothing of an earlier one may be mistaken for this one's.
  for (const std::string& stale :
       {dir.StatusPath(), dir.StopPath(), dir.LaunchPath(), dir.FailurePath()}) {
    ::unlink(stale.c_str());
  }
  NIMBUS_RETURN_IF_ERROR(WriteJsonFile(dir.SpecPath(), request.spec));
  NIMBUS_ASSIGN_OR_RETURN(std::vector<std::string> command, BuildCommand(request, dir.root()));

  std::map<std::string, std::string> env;
  const char* path = std::getenv("PATH");
  env["PATH"] = path && *path ? path : kDefaultPath;
  env["LANG"] = "C.UTF-8";
  if (use_bwrap_) {
    env["HOME"] = "/tmp";
  } else if (const char* home = std::getenv("HOME")) {
    env["HOME"] = home;
  }
  if (const char* tz = std::getenv("TZ")) env["TZ"] = tz;
  // glibc's malloc backs its large blocks with transparent huge pages (madvise), one page
  // fault per 2 MiB instead of per 4 KiB: a worker filling a few hundred MB of training data
  // spends far less time faulting (7 ms instead of 130 ms per 40 MB on a VM).
  env["GLIBC_TUNABLES"] = kGlibcTunables;
  for (const auto& [name, value] : request.env) env[name] = value;
  std::vector<std::string> env_list;
  for (const auto& [name, value] : env) env_list.push_back(name + "=" + value);

  const double launched_at = SystemClock::Instance().Now();
  NIMBUS_ASSIGN_OR_RETURN(
      pid_t pid, SpawnDetached(command, std::move(env_list), dir.root(), dir.WorkerLogPath()));
  const ProcessIdentity launcher = IdentifyProcess(pid).value_or(ProcessIdentity{pid, 0, {}, {}});
  Value command_value = Value::MakeList();
  for (const std::string& arg : command) command_value.Append(arg);
  Value launch = Value::Object({{"job_id", request.job_id},
                                {"kind", request.kind},
                                {"launched_at", launched_at},
                                {"pid", int64_t{pid}},
                                {"pid_start_time", launcher.start_time},
                                {"boot_id", launcher.boot_id},
                                {"pid_namespace", launcher.pid_namespace},
                                {"sandboxed", use_bwrap_},
                                {"command", command_value}});
  NIMBUS_RETURN_IF_ERROR(WriteJsonFile(dir.LaunchPath(), launch));
  Log(LogLevel::kInfo, "executor.launched",
      {{"job_id", request.job_id},
       {"kind", request.kind},
       {"pid", int64_t{pid}},
       {"sandboxed", use_bwrap_}});
  return Status::Ok();
}

Result<JobStatus> LocalExecutor::Poll(const std::string& job_id, const std::string& job_dir) {
  const JobDir dir(job_dir);
  NIMBUS_ASSIGN_OR_RETURN(auto record, ReadWorkerRecord(dir));
  if (record && IsTerminal(record->state)) {
    ReapIfOurs(LauncherOf(dir));
    return StatusOf(*record);
  }
  if (!record) {
    auto launch = ReadJsonFile(dir.LaunchPath());
    if (!launch.ok()) {
      if (launch.status().kind() == ErrorKind::kNotFound) {
        return Status::NotFound("no worker was launched for job '" + job_id + "' in " + job_dir);
      }
      return launch.status();
    }
  }
  if (WorkerAlive(record, dir)) {
    if (record) return StatusOf(*record);
    JobStatus starting;  // launched, not yet reported
    starting.state = JobState::kStarting;
    return starting;
  }
  // The process is gone; it may have written its final record just before.
  ReapIfOurs(LauncherOf(dir));
  NIMBUS_ASSIGN_OR_RETURN(record, ReadWorkerRecord(dir));
  if (record && IsTerminal(record->state)) return StatusOf(*record);
  return MarkLost(dir, record ? *record : WorkerRecord{}, job_id);
}

Status LocalExecutor::Stop(const std::string& job_id, const std::string& job_dir,
                           double grace_seconds) {
  const JobDir dir(job_dir);
  NIMBUS_ASSIGN_OR_RETURN(auto record, ReadWorkerRecord(dir));
  if (record && IsTerminal(record->state)) return Status::Ok();
  if (!record && !LauncherOf(dir)) {
    return Status::NotFound("no worker was launched for job '" + job_id + "' in " + job_dir);
  }
  // The request goes out before status.json is read again: a worker that starts meanwhile
  // either finds stop.json or has recorded itself to be signalled (worker/supervisor.cc).
  NIMBUS_RETURN_IF_ERROR(
      WriteStopRequest(dir, StopRequest{SystemClock::Instance().Now(), grace_seconds}));
  NIMBUS_ASSIGN_OR_RETURN(record, ReadWorkerRecord(dir));
  if (record && !IsTerminal(record->state)) {
    if (const pid_t pid = WorkerPid(record, dir); pid > 0) ::kill(pid, SIGTERM);
  }
  return Status::Ok();
}

}  // namespace nimbus::control
