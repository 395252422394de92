#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "control/job_dir.h"
#include "core/strings.h"
#include "worker/log_capture.h"
#include "worker/supervisor.h"
#include "worker/worker_kind.h"

namespace nimbus::worker {
namespace {

using control::JobDir;
using control::JobState;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/nimbus-worker-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(LineCaptureTest, StampsEachLineWhenItsFirstByteArrived) {
  TempDir tmp;
  const std::string path = tmp.path() + "/out.log";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  ASSERT_GE(fd, 0);
  LineCapture capture(fd);
  ASSERT_TRUE(capture.Feed("first\nsec", 1000).ok());
  ASSERT_TRUE(capture.Feed("ond\r\n", 2000).ok());
  ASSERT_TRUE(capture.Feed("\n", 3000).ok());
  ASSERT_TRUE(capture.Feed("tail without newline", 4000).ok());
  EXPECT_EQ(ReadText(path), "1000\tfirst\n1000\tsecond\n3000\t\n");
  ASSERT_TRUE(capture.Finish(5000).ok());
  EXPECT_EQ(ReadText(path), "1000\tfirst\n1000\tsecond\n3000\t\n4000\ttail without newline\n");
  ASSERT_TRUE(capture.Finish(6000).ok());  // nothing pending: nothing written
  ::close(fd);
}

TEST(LineCaptureTest, CutsOverlongLinesAtCharacterBoundaries) {
  TempDir tmp;
  const std::string path = tmp.path() + "/out.log";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  LineCapture capture(fd, 8);
  // "ééééé" is 10 bytes: cut after 4 characters (8 bytes), never inside one.
  ASSERT_TRUE(capture.Feed("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\n", 7).ok());
  ASSERT_TRUE(capture.Feed("abcdefghijkl", 8).ok());  // a line that never ends
  ASSERT_TRUE(capture.Finish(9).ok());
  ::close(fd);
  EXPECT_EQ(ReadText(path),
            "7\t\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\n7\t\xC3\xA9\n8\tabcdefgh\n8\tijkl\n");
}

TEST(WorkerArgsTest, ParsesFlags) {
  auto options = ParseWorkerArgs({"test", "--spec", "/j/spec.json", "--max-runtime", "1.5",
                                  "--memory-limit", "1048576", "--cpu-limit", "10", "--kill-grace",
                                  "0.5", "--job-id", "abc", "--log-stream", "algo-2"});
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  EXPECT_EQ(options->kind, "test");
  EXPECT_EQ(options->spec_path, "/j/spec.json");
  EXPECT_EQ(options->max_runtime_seconds, 1.5);
  EXPECT_EQ(options->memory_limit_bytes, 1048576);
  EXPECT_EQ(options->cpu_limit_seconds, 10);
  EXPECT_EQ(options->kill_grace_seconds, 0.5);
  EXPECT_EQ(options->job_id, "abc");
  EXPECT_EQ(options->log_stream, "algo-2");
  EXPECT_FALSE(ParseWorkerArgs({"--spec", "/j/spec.json"}).ok());  // no kind
  EXPECT_FALSE(ParseWorkerArgs({"test"}).ok());                    // no spec
  EXPECT_FALSE(ParseWorkerArgs({"test", "--spec"}).ok());
  EXPECT_FALSE(ParseWorkerArgs({"test", "--spec", "x", "--max-runtime", "-1"}).ok());
  EXPECT_FALSE(ParseWorkerArgs({"test", "--spec", "x", "--bogus", "1"}).ok());
  EXPECT_FALSE(ParseWorkerArgs({"test", "--spec", "x", "--log-stream", "../x"}).ok());
  EXPECT_FALSE(ParseWorkerArgs({"test", "other", "--spec", "x"}).ok());
}

TEST(WorkerKindTest, RegistersKinds) {
  RegisterBuiltinWorkerKinds();
  RegisterBuiltinWorkerKinds();
  EXPECT_NE(FindWorkerKind("test"), nullptr);
  EXPECT_NE(FindWorkerKind("command"), nullptr);
  EXPECT_EQ(FindWorkerKind("nope"), nullptr);
  RegisterWorkerKind("custom", [](const WorkerContext&) { return 7; });
  ASSERT_NE(FindWorkerKind("custom"), nullptr);
  EXPECT_EQ((*FindWorkerKind("custom"))(WorkerContext{"custom", "j", JobDir("/x"), Value()}), 7);
  EXPECT_NE(WorkerUsage().find("command"), std::string::npos);
}

// Runs the supervisor in a child process (it installs signal handlers and becomes a subreaper)
// and returns the job's final record.
class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterBuiltinWorkerKinds();
    dir_ = std::make_unique<JobDir>(tmp_.path() + "/job");
    ASSERT_TRUE(dir_->Create().ok());
  }

  control::WorkerRecord Run(const std::string& kind, const Value& spec,
                            SupervisorOptions options = {}) {
    EXPECT_TRUE(control::WriteJsonFile(dir_->SpecPath(), spec).ok());
    options.kind = kind;
    options.spec_path = dir_->SpecPath();
    const pid_t child = ::fork();
    if (child == 0) ::_exit(RunSupervisor(options));
    int status = 0;
    ::waitpid(child, &status, 0);
    auto record = control::ReadWorkerRecord(*dir_);
    EXPECT_TRUE(record.ok() && record->has_value());
    return record.ok() && record->has_value() ? **record : control::WorkerRecord{};
  }

  TempDir tmp_;
  std::unique_ptr<JobDir> dir_;
};

TEST_F(SupervisorTest, RunsARegisteredKindInTheJobDirectory) {
  RegisterWorkerKind("inproc", [](const WorkerContext& ctx) {
    char cwd[4096];
    std::printf("cwd=%s job=%s x=%lld\n", ::getcwd(cwd, sizeof(cwd)), ctx.job_id.c_str(),
                static_cast<long long>(ctx.spec.GetInt("x")));
    return 0;
  });
  const auto record = Run("inproc", Value::Object({{"x", 42}}));
  EXPECT_EQ(record.state, JobState::kSucceeded);
  EXPECT_EQ(record.job_id, "job");
  EXPECT_EQ(record.kind, "inproc");
  EXPECT_GT(record.process.pid, 0);
  EXPECT_GT(record.ended_at, 0);
  const std::string log = ReadText(dir_->LogPath("algo-1"));
  EXPECT_NE(
      log.find("\tcwd=" + std::filesystem::canonical(dir_->root()).string() + " job=job x=42\n"),
      std::string::npos)
      << log;
}

TEST_F(SupervisorTest, ReportsSignalsAndExitCodes) {
  RegisterWorkerKind("segv", [](const WorkerContext&) {
    ::raise(SIGSEGV);
    return 0;
  });
  auto record = Run("segv", Value::MakeMap());
  EXPECT_EQ(record.state, JobState::kFailed);
  EXPECT_EQ(record.signal, SIGSEGV);
  EXPECT_EQ(record.exit_code, 128 + SIGSEGV);
  EXPECT_EQ(record.reason, "killed by signal 11 (SIGSEGV)");

  RegisterWorkerKind("throws",
                     [](const WorkerContext&) -> int { throw std::runtime_error("boom"); });
  record = Run("throws", Value::MakeMap());
  EXPECT_EQ(record.state, JobState::kFailed);
  EXPECT_EQ(record.reason, "exit code 1");
  EXPECT_NE(ReadText(dir_->LogPath("algo-1")).find("\terror: boom\n"), std::string::npos);
}

TEST_F(SupervisorTest, EndsHelpersThePayloadLeftBehind) {
  // The payload starts a helper in a session of its own (out of its process group) that
  // keeps its stdout open, then exits. The worker must not wait for the helper.
  const std::string pid_file = dir_->root() + "/helper.pid";
  RegisterWorkerKind("leaky", [pid_file](const WorkerContext&) {
    const pid_t helper = ::fork();
    if (helper == 0) {
      ::setsid();
      ::sleep(30);
      ::_exit(0);
    }
    std::ofstream(pid_file) << helper;
    std::printf("left a helper behind\n");
    return 0;
  });
  const auto start = std::chrono::steady_clock::now();
  const auto record = Run("leaky", Value::MakeMap());
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(record.state, JobState::kSucceeded);
  EXPECT_LT(took, 6.0);
  const pid_t helper = std::atoi(ReadText(pid_file).c_str());
  ASSERT_GT(helper, 0);
  EXPECT_FALSE(control::IdentifyProcess(helper).has_value()) << "the helper still runs";
}

TEST_F(SupervisorTest, HonoursAStopRequestWrittenBeforeItStarted) {
  ASSERT_TRUE(control::WriteStopRequest(*dir_, control::StopRequest{1, 1}).ok());
  const auto record = Run("test", Value::Object({{"action", "sleep"}, {"seconds", 30}}));
  EXPECT_EQ(record.state, JobState::kStopped);
}

TEST_F(SupervisorTest, FailsCleanlyOnABadSpec) {
  ASSERT_TRUE(control::WriteFileAtomic(dir_->SpecPath(), "{broken").ok());
  SupervisorOptions options;
  options.kind = "test";
  options.spec_path = dir_->SpecPath();
  const pid_t child = ::fork();
  if (child == 0) ::_exit(RunSupervisor(options));
  int status = 0;
  ::waitpid(child, &status, 0);
  auto record = control::ReadWorkerRecord(*dir_);
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_EQ((*record)->state, JobState::kFailed);
  EXPECT_TRUE(StartsWith((*record)->reason, "Cannot read the job spec")) << (*record)->reason;
}

TEST_F(SupervisorTest, ACpuLimitEndsAJobThatSpins) {
  RegisterWorkerKind("spin", [](const WorkerContext&) {
    volatile unsigned long x = 0;
    for (;;) x = x + 1;
    return 0;
  });
  SupervisorOptions options;
  options.cpu_limit_seconds = 1;
  const auto record = Run("spin", Value::MakeMap(), options);
  EXPECT_EQ(record.state, JobState::kFailed);
  EXPECT_TRUE(StartsWith(record.reason, "MaxRuntimeExceeded: ")) << record.reason;
  EXPECT_GE(record.cpu_seconds, 0.9);
}

}  // namespace
}  // namespace nimbus::worker
