#include "control/local_executor.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "control/job_dir.h"
#include "core/strings.h"

#ifndef NIMBUS_TEST_WORKER
#error "NIMBUS_TEST_WORKER must name the worker stand-in binary"
#endif

namespace nimbus::control {
namespace {

using Sandbox = LocalExecutorOptions::Sandbox;

double Now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A small instance type, so that memory tests stay cheap.
constexpr InstanceType kTiny{"ml.test.tiny", 1, 256, 0, {}, 0};

class LocalExecutorTest : public ::testing::TestWithParam<Sandbox> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-exec-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    executor_ = MakeExecutor(GetParam());
    if (GetParam() == Sandbox::kOn) {
      if (!MakeExecutor(Sandbox::kAuto)->sandboxed())
        GTEST_SKIP() << "bubblewrap is not available here";
    }
  }

  void TearDown() override {
    // Whatever a failed test left running goes.
    for (const auto& id : launched_) (void)executor_->Stop(id, JobDirOf(id), 0);
    for (const auto& id : launched_) WaitDone(id, 5);
    std::filesystem::remove_all(root_);
  }

  static std::unique_ptr<LocalExecutor> MakeExecutor(Sandbox mode) {
    LocalExecutorOptions options;
    options.worker_binary = NIMBUS_TEST_WORKER;
    options.use_sandbox = mode;
    options.max_runtime_grace_seconds = 2;
    return std::make_unique<LocalExecutor>(options);
  }

  std::string JobDirOf(const std::string& id) const { return root_ + "/jobs/test/" + id; }

  LaunchRequest Request(const std::string& id, Value spec) {
    LaunchRequest request;
    request.job_id = id;
    request.kind = "test";
    request.job_dir = JobDirOf(id);
    request.spec = std::move(spec);
    return request;
  }

  Status Launch(const LaunchRequest& request) {
    Status status = executor_->Launch(request);
    if (status.ok()) launched_.push_back(request.job_id);
    return status;
  }

  JobStatus WaitDone(const std::string& id, double timeout_seconds = 10) {
    const double deadline = Now() + timeout_seconds;
    JobStatus last;
    while (Now() < deadline) {
      auto status = executor_->Poll(id, JobDirOf(id));
      if (status.ok()) {
        last = *status;
        if (IsTerminal(last.state)) return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "job " << id << " did not end; last state " << JobStateName(last.state);
    return last;
  }

  void WaitRunning(const std::string& id) {
    const double deadline = Now() + 10;
    while (Now() < deadline) {
      auto status = executor_->Poll(id, JobDirOf(id));
      ASSERT_TRUE(status.ok()) << status.status().ToString();
      if (status->state == JobState::kRunning) return;
      ASSERT_FALSE(IsTerminal(status->state)) << JobStateName(status->state);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "job " << id << " never ran";
  }

  std::string Log(const std::string& id) { return ReadText(JobDirOf(id) + "/logs/algo-1.log"); }

  std::string root_;
  std::unique_ptr<LocalExecutor> executor_;
  std::vector<std::string> launched_;
};

TEST_P(LocalExecutorTest, EchoLinesLandInTheLogWithTimestamps) {
  const double before = Now();
  Value spec = Value::Object({{"action", "echo"}});
  spec["lines"] = Value(Value::List{"hello", "wörld"});
  spec["stderr_lines"] = Value(Value::List{"to stderr"});
  ASSERT_TRUE(Launch(Request("echo", spec)).ok());
  const JobStatus status = WaitDone("echo");
  const double after = Now();
  EXPECT_EQ(status.state, JobState::kSucceeded) << status.reason;
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_GE(status.started_at, before - 1);
  EXPECT_GE(status.ended_at, status.started_at);
  EXPECT_LE(status.ended_at, after + 1);

  std::vector<std::string> texts;
  for (const std::string& line : Split(Log("echo"), '\n')) {
    if (line.empty()) continue;
    const size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const auto ms = ParseInt(line.substr(0, tab));
    ASSERT_TRUE(ms.has_value()) << line;
    EXPECT_GE(*ms, static_cast<int64_t>(before * 1000) - 1000);
    EXPECT_LE(*ms, static_cast<int64_t>(after * 1000) + 1000);
    texts.push_back(line.substr(tab + 1));
  }
  EXPECT_EQ(texts, (std::vector<std::string>{"hello", "wörld", "to stderr"}));
}

TEST_P(LocalExecutorTest, SleepThenStopEndsStoppedWithinTheGrace) {
  ASSERT_TRUE(
      Launch(Request("sleepy", Value::Object({{"action", "sleep"}, {"seconds", 30}}))).ok());
  // Running is recorded before the payload starts: a stop before it would end the job
  // without a signal. The payload's first line says it is asleep.
  const double deadline = Now() + 10;
  while (Log("sleepy").find("sleeping") == std::string::npos && Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const double stop_at = Now();
  ASSERT_TRUE(executor_->Stop("sleepy", JobDirOf("sleepy"), 3).ok());
  const JobStatus status = WaitDone("sleepy", 5);
  EXPECT_EQ(status.state, JobState::kStopped);
  EXPECT_LT(Now() - stop_at, 3.0);  // the payload dies of SIGTERM; no need to wait out the grace
  EXPECT_EQ(status.exit_code, 128 + SIGTERM);
  // Stopping a finished job changes nothing.
  ASSERT_TRUE(executor_->Stop("sleepy", JobDirOf("sleepy"), 1).ok());
  EXPECT_EQ(executor_->Poll("sleepy", JobDirOf("sleepy"))->state, JobState::kStopped);
}

// Whether a live process has `text` in its command line (a zombie's is empty).
bool AnyProcessMentions(const std::string& text) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST_P(LocalExecutorTest, ADeletedJobDirectoryStopsTheWorker) {
  // Launched around the fixture: with its directory gone there is nothing to poll or stop.
  ASSERT_TRUE(
      executor_->Launch(Request("orphan", Value::Object({{"action", "sleep"}, {"seconds", 60}})))
          .ok());
  const double deadline = Now() + 10;
  while (Log("orphan").find("sleeping") == std::string::npos && Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::string dir = JobDirOf("orphan");
  ASSERT_TRUE(AnyProcessMentions(dir));  // the supervisor's --spec (and bwrap's --bind)
  std::filesystem::remove_all(dir);
  // Noticed within half a second; the payload dies of SIGTERM, the supervisor exits.
  const double gone_by = Now() + 5;
  while (AnyProcessMentions(dir) && Now() < gone_by) {
    executor_->Poll("orphan", dir);  // reaps a launcher that is this process's child
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(AnyProcessMentions(dir));
}

TEST_P(LocalExecutorTest, StopEscalatesToSigkillAfterTheGrace) {
  ASSERT_TRUE(Launch(Request("stubborn",
                             Value::Object(
                                 {{"action", "sleep"}, {"seconds", 30}, {"ignore_sigterm", true}})))
                  .ok());
  WaitRunning("stubborn");
  // The payload is still reading its spec when the worker reports Running: give it a moment
  // to ignore SIGTERM, or it dies of it and the test proves nothing.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const double stop_at = Now();
  ASSERT_TRUE(executor_->Stop("stubborn", JobDirOf("stubborn"), 0.4).ok());
  bool saw_stopping = false;
  for (int i = 0; i < 100 && !saw_stopping; ++i) {
    auto polled = executor_->Poll("stubborn", JobDirOf("stubborn"));
    saw_stopping = polled.ok() && polled->state == JobState::kStopping;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(saw_stopping);
  const JobStatus status = WaitDone("stubborn", 5);
  EXPECT_EQ(status.state, JobState::kStopped);
  EXPECT_EQ(status.exit_code, 128 + SIGKILL);
  EXPECT_GE(Now() - stop_at, 0.35);
}

TEST_P(LocalExecutorTest, StopRightAfterLaunchStopsTheJob) {
  ASSERT_TRUE(Launch(Request("early", Value::Object({{"action", "sleep"}, {"seconds", 30}}))).ok());
  const double stop_at = Now();
  ASSERT_TRUE(executor_->Stop("early", JobDirOf("early"), 3).ok());
  EXPECT_EQ(WaitDone("early", 5).state, JobState::kStopped);
  // Whatever step the worker was at (before the payload, or forking it), the stop needs no
  // SIGKILL after the grace.
  EXPECT_LT(Now() - stop_at, 3.0);
}

TEST_P(LocalExecutorTest, FailReportsTheFailureFile) {
  ASSERT_TRUE(Launch(Request("fail", Value::Object({{"action", "fail"},
                                                    {"message", "ClientError: eta must be > 0"},
                                                    {"exit_code", 2}})))
                  .ok());
  const JobStatus status = WaitDone("fail");
  EXPECT_EQ(status.state, JobState::kFailed);
  EXPECT_EQ(status.exit_code, 2);
  EXPECT_EQ(status.reason, "ClientError: eta must be > 0");
}

TEST_P(LocalExecutorTest, ANonZeroExitWithoutFailureFileNamesTheCode) {
  ASSERT_TRUE(
      Launch(Request("exit3", Value::Object({{"action", "sleep"}, {"exit_code", 3}}))).ok());
  const JobStatus status = WaitDone("exit3");
  EXPECT_EQ(status.state, JobState::kFailed);
  EXPECT_EQ(status.exit_code, 3);
  EXPECT_EQ(status.reason, "exit code 3");
}

TEST_P(LocalExecutorTest, ExceedingMemoryFailsWithAnOutOfMemoryReason) {
  LaunchRequest request = Request("hog", Value::Object({{"action", "exceed-memory"}}));
  request.instance = &kTiny;
  ASSERT_TRUE(Launch(request).ok());
  const JobStatus status = WaitDone("hog", 20);
  EXPECT_EQ(status.state, JobState::kFailed);
  EXPECT_TRUE(StartsWith(status.reason, "OutOfMemory: ")) << status.reason;
  EXPECT_NE(status.reason.find("256 MiB"), std::string::npos) << status.reason;
}

TEST_P(LocalExecutorTest, ExceedingMaxRuntimeFails) {
  LaunchRequest request = Request("slow", Value::Object({{"action", "exceed-time"}}));
  request.max_runtime_seconds = 1;
  request.instance = &kTiny;
  const double start = Now();
  ASSERT_TRUE(Launch(request).ok());
  const JobStatus status = WaitDone("slow", 10);
  EXPECT_EQ(status.state, JobState::kFailed);
  EXPECT_TRUE(StartsWith(status.reason, "MaxRuntimeExceeded: ")) << status.reason;
  EXPECT_GE(Now() - start, 1.0);
  EXPECT_LT(Now() - start, 4.0);
}

TEST_P(LocalExecutorTest, ANewExecutorReattachesToARunningJob) {
  ASSERT_TRUE(Launch(Request("kept", Value::Object({{"action", "sleep"}, {"seconds", 30}}))).ok());
  WaitRunning("kept");
  // As after a server restart: another executor, knowing only the job directory.
  auto other = MakeExecutor(GetParam());
  auto polled = other->Poll("kept", JobDirOf("kept"));
  ASSERT_TRUE(polled.ok());
  EXPECT_EQ(polled->state, JobState::kRunning);
  EXPECT_GT(polled->started_at, 0);
  EXPECT_EQ(other->Launch(Request("kept", Value::Object({{"action", "echo"}}))).kind(),
            ErrorKind::kConflict);
  ASSERT_TRUE(other->Stop("kept", JobDirOf("kept"), 2).ok());
  EXPECT_EQ(WaitDone("kept", 5).state, JobState::kStopped);
}

TEST_P(LocalExecutorTest, TheWorkerSurvivesTheDeathOfItsLauncher) {
  // A child process plays the server: it launches the job and dies of SIGKILL.
  const pid_t server = ::fork();
  if (server == 0) {
    auto executor = MakeExecutor(GetParam());
    LaunchRequest request =
        Request("orphan", Value::Object({{"action", "sleep"}, {"seconds", 0.5}}));
    if (!executor->Launch(request).ok()) ::_exit(1);
    ::raise(SIGKILL);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(server, &wstatus, 0), server);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "the launch failed";
  launched_.push_back("orphan");
  const JobStatus status = WaitDone("orphan", 10);
  EXPECT_EQ(status.state, JobState::kSucceeded) << status.reason;
  EXPECT_NE(Log("orphan").find("\tdone\n"), std::string::npos);
}

TEST_P(LocalExecutorTest, AWorkerKilledWithoutAFinalStatusIsLost) {
  ASSERT_TRUE(
      Launch(Request("doomed", Value::Object({{"action", "sleep"}, {"seconds", 30}}))).ok());
  WaitRunning("doomed");
  // The supervisor is the launched process itself, or (sandboxed) bwrap's only child, PID 1
  // of the sandbox: killing it ends the whole sandbox.
  auto launch = ReadJsonFile(JobDirOf("doomed") + "/launch.json");
  ASSERT_TRUE(launch.ok());
  const pid_t launcher = static_cast<pid_t>(launch->GetInt("pid"));
  auto children_of = [](pid_t parent) {
    std::vector<pid_t> children;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      auto pid = ParseInt(entry.path().filename().string());
      if (!pid) continue;
      auto info = ReadProcessInfo(*pid);
      if (info && info->ppid == parent && info->state != 'Z') children.push_back(*pid);
    }
    return children;
  };
  pid_t supervisor = launcher;
  if (launch->GetBool("sandboxed")) {
    const auto children = children_of(launcher);
    ASSERT_EQ(children.size(), 1u);
    supervisor = children[0];
  }
  // Running is recorded before the payload starts.
  std::vector<pid_t> payloads;
  for (int i = 0; i < 200 && payloads.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    payloads = children_of(supervisor);
  }
  ASSERT_EQ(payloads.size(), 1u);
  ASSERT_EQ(::kill(supervisor, SIGKILL), 0);
  // Unsandboxed, the payload would sleep on as an orphan.
  ::kill(-payloads[0], SIGKILL);
  const JobStatus status = WaitDone("doomed", 5);
  EXPECT_EQ(status.state, JobState::kLost);
  EXPECT_EQ(status.reason, "The worker process exited unexpectedly");
  // The verdict is recorded, so it holds for everyone from now on.
  auto after = ReadWorkerRecord(JobDir(JobDirOf("doomed")));
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_EQ((*after)->state, JobState::kLost);
}

TEST_P(LocalExecutorTest, PassesTheEnvironmentAndRunsCommands) {
  ::setenv("NIMBUS_TEST_SERVER_SECRET", "do-not-leak", 1);
  LaunchRequest env = Request("env", Value::Object({{"action", "print-env"}}));
  env.spec["names"] =
      Value(Value::List{"SM_MODEL_DIR", "SM_HPS", "NIMBUS_TEST_SERVER_SECRET", "GLIBC_TUNABLES"});
  env.env = {{"SM_MODEL_DIR", "/opt/ml/model"}, {"SM_HPS", "{\"eta\": 0.1}"}};
  ASSERT_TRUE(Launch(env).ok());
  EXPECT_EQ(WaitDone("env").state, JobState::kSucceeded);
  const std::string log = Log("env");
  EXPECT_NE(log.find("\tSM_MODEL_DIR=/opt/ml/model\n"), std::string::npos) << log;
  EXPECT_NE(log.find("\tSM_HPS={\"eta\": 0.1}\n"), std::string::npos) << log;
  // The server's own environment does not leak into jobs.
  EXPECT_NE(log.find("\tNIMBUS_TEST_SERVER_SECRET=<unset>\n"), std::string::npos) << log;
  // malloc's large blocks are backed by transparent huge pages.
  EXPECT_NE(log.find("\tGLIBC_TUNABLES=glibc.malloc.hugetlb=1\n"), std::string::npos) << log;

  LaunchRequest cmd = Request("cmd", Value::Object({{"workdir", "code"}}));
  cmd.kind = "command";
  cmd.spec["argv"] =
      Value(Value::List{"/bin/sh", "-c", "echo \"in $(pwd)\"; echo $GREETING; exit 4"});
  cmd.spec["env"] = Value::Object({{"GREETING", "hi there"}});
  ASSERT_TRUE(Launch(cmd).ok());
  const JobStatus status = WaitDone("cmd");
  EXPECT_EQ(status.state, JobState::kFailed);
  EXPECT_EQ(status.exit_code, 4);
  EXPECT_EQ(status.reason, "exit code 4");
  EXPECT_NE(
      Log("cmd").find("\tin " + std::filesystem::canonical(JobDirOf("cmd")).string() + "/code\n"),
      std::string::npos)
      << Log("cmd");
  EXPECT_NE(Log("cmd").find("\thi there\n"), std::string::npos);

  LaunchRequest missing = Request("missing", Value::Object({}));
  missing.kind = "command";
  missing.spec["argv"] = Value(Value::List{"/no/such/program"});
  ASSERT_TRUE(Launch(missing).ok());
  const JobStatus missing_status = WaitDone("missing");
  EXPECT_EQ(missing_status.state, JobState::kFailed);
  EXPECT_EQ(missing_status.exit_code, 127);
  EXPECT_TRUE(StartsWith(missing_status.reason, "Cannot run '/no/such/program'"))
      << missing_status.reason;
}

TEST_P(LocalExecutorTest, RejectsBadRequestsAndUnknownJobs) {
  EXPECT_EQ(executor_->Poll("ghost", JobDirOf("ghost")).status().kind(), ErrorKind::kNotFound);
  EXPECT_EQ(executor_->Stop("ghost", JobDirOf("ghost"), 1).kind(), ErrorKind::kNotFound);
  EXPECT_EQ(executor_->Launch(Request("../x", Value())).code(), "ValidationException");
  LaunchRequest unknown = Request("unknown-kind", Value::MakeMap());
  unknown.kind = "no-such-kind";
  ASSERT_TRUE(Launch(unknown).ok());
  const JobStatus status = WaitDone("unknown-kind");
  EXPECT_EQ(status.state, JobState::kFailed);
  EXPECT_EQ(status.reason, "Unknown worker kind 'no-such-kind'");
  // A finished job directory can be launched again; the old outcome does not linger.
  ASSERT_TRUE(Launch(Request("unknown-kind", Value::Object({{"action", "echo"}}))).ok());
  EXPECT_EQ(WaitDone("unknown-kind").state, JobState::kSucceeded);
}

INSTANTIATE_TEST_SUITE_P(Modes, LocalExecutorTest, ::testing::Values(Sandbox::kOff, Sandbox::kOn),
                         [](const auto& info) {
                           return info.param == Sandbox::kOff ? "Unsandboxed" : "Sandboxed";
                         });

// The sandbox itself: what a payload can and cannot reach.
class SandboxTest : public LocalExecutorTest {};

TEST_P(SandboxTest, ThePayloadCannotReadFilesOutsideItsJobDirectory) {
  const std::string secret = root_ + "/secret.txt";
  std::ofstream(secret) << "top secret";
  LaunchRequest request =
      Request("peek", Value::Object({{"action", "read-file"}, {"path", secret}}));
  ASSERT_TRUE(Launch(request).ok());
  const JobStatus status = WaitDone("peek");
  if (GetParam() == Sandbox::kOff) {
    // The control: without the sandbox the same payload does read it.
    EXPECT_EQ(status.state, JobState::kSucceeded);
    EXPECT_NE(Log("peek").find("top secret"), std::string::npos);
    return;
  }
  EXPECT_EQ(status.state, JobState::kFailed);
  EXPECT_EQ(Log("peek").find("top secret"), std::string::npos);
  EXPECT_NE(Log("peek").find("cannot read"), std::string::npos) << Log("peek");
  // Nor through another process's view of the filesystem: no host process is visible.
  const std::string via_proc = "/proc/" + std::to_string(::getpid()) + "/root" + secret;
  ASSERT_TRUE(
      Launch(Request("peek-proc", Value::Object({{"action", "read-file"}, {"path", via_proc}})))
          .ok());
  EXPECT_EQ(WaitDone("peek-proc").state, JobState::kFailed);
  EXPECT_EQ(Log("peek-proc").find("top secret"), std::string::npos) << Log("peek-proc");
  // Its own directory is there, at its path and at /opt/ml.
  const std::pair<std::string, std::string> own[] = {{"own", JobDirOf("own") + "/spec.json"},
                                                     {"own-optml", "/opt/ml/spec.json"}};
  for (const auto& [id, path] : own) {
    ASSERT_TRUE(Launch(Request(id, Value::Object({{"action", "read-file"}, {"path", path}}))).ok());
    EXPECT_EQ(WaitDone(id).state, JobState::kSucceeded) << path << ": " << Log(id);
    EXPECT_NE(Log(id).find("read-file"), std::string::npos) << Log(id);
  }
}

TEST_P(SandboxTest, ThePayloadHasNoNetworkUnlessAllowed) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener, 8), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);

  LaunchRequest isolated =
      Request("isolated", Value::Object({{"action", "connect"}, {"port", port}}));
  isolated.network = false;
  ASSERT_TRUE(Launch(isolated).ok());
  LaunchRequest open = Request("open", Value::Object({{"action", "connect"}, {"port", port}}));
  open.network = true;
  ASSERT_TRUE(Launch(open).ok());
  const JobStatus isolated_status = WaitDone("isolated");
  const JobStatus open_status = WaitDone("open");
  ::close(listener);
  EXPECT_EQ(open_status.state, JobState::kSucceeded) << Log("open");
  if (GetParam() == Sandbox::kOff) {
    EXPECT_EQ(isolated_status.state, JobState::kSucceeded);  // no sandbox, no isolation
  } else {
    EXPECT_EQ(isolated_status.state, JobState::kFailed) << Log("isolated");
    EXPECT_NE(Log("isolated").find("connect failed"), std::string::npos) << Log("isolated");
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, SandboxTest, ::testing::Values(Sandbox::kOff, Sandbox::kOn),
                         [](const auto& info) {
                           return info.param == Sandbox::kOff ? "Unsandboxed" : "Sandboxed";
                         });

TEST(LocalExecutorCommandTest, BuildsTheBubblewrapCommand) {
  LocalExecutorOptions options;
  options.worker_binary = NIMBUS_TEST_WORKER;
  options.use_sandbox = Sandbox::kOn;
  LocalExecutor executor(options);
  if (!executor.sandboxed()) GTEST_SKIP() << "bubblewrap is not available here";
  LaunchRequest request;
  request.job_id = "j";
  request.kind = "test";
  request.instance = FindInstanceType("ml.m5.xlarge");
  request.instance_count = 2;
  request.max_runtime_seconds = 60;
  auto cmd = executor.BuildCommand(request, "/data/jobs/test/j");
  ASSERT_TRUE(cmd.ok());
  std::string joined;
  for (const std::string& arg : *cmd) joined += arg + " ";
  EXPECT_NE(joined.find("--bind /data/jobs/test/j /data/jobs/test/j "), std::string::npos);
  EXPECT_NE(joined.find("--bind /data/jobs/test/j /opt/ml "), std::string::npos);
  EXPECT_NE(joined.find("--unshare-net"), std::string::npos);
  EXPECT_NE(joined.find("--tmpfs /tmp"), std::string::npos);
  EXPECT_EQ(joined.find("--die-with-parent"), std::string::npos);
  EXPECT_NE(joined.find(" worker test --spec /data/jobs/test/j/spec.json "), std::string::npos);
  // 2 × 16 GiB of memory; 2 × 4 vCPU × 60 s of CPU.
  EXPECT_NE(joined.find("--memory-limit 34359738368 "), std::string::npos) << joined;
  EXPECT_NE(joined.find("--max-runtime 60 "), std::string::npos);
  EXPECT_NE(joined.find("--cpu-limit 480 "), std::string::npos);
  request.network = true;
  cmd = executor.BuildCommand(request, "/data/jobs/test/j");
  joined.clear();
  for (const std::string& arg : *cmd) joined += arg + " ";
  EXPECT_EQ(joined.find("--unshare-net"), std::string::npos);
}

}  // namespace
}  // namespace nimbus::control
