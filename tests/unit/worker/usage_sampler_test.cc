#include "worker/usage_sampler.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "control/usage_log.h"

namespace nimbus::worker {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

TEST(UsageSamplerTest, MeasuresABusyProcessGroup) {
  char tmpl[] = "/tmp/nimbus-sampler-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  pid_t child = ::fork();
  if (child == 0) {
    ::setpgid(0, 0);
    volatile uint64_t spin = 0;
    while (true) spin = spin + 1;
  }
  ::setpgid(child, child);
  double start = Now();
  UsageSampler sampler(dir, child, start, 0.2);
  while (Now() < start + 1.5) {
    sampler.MaybeSample(Now());
    ::usleep(20000);
  }
  GroupUsage usage = MeasureProcessGroup(child);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_GT(usage.cpu_seconds, 0.3);
  EXPECT_GT(usage.rss_bytes, 0);
  EXPECT_EQ(MeasureProcessGroup(child).cpu_seconds, 0);  // nobody left in the group

  auto samples = control::UsageTail(dir).Read();
  ASSERT_TRUE(samples.ok());
  ASSERT_GE(samples->size(), 2u);
  // A spinning process keeps (most of) one core busy: about 100%.
  EXPECT_GT(samples->back().cpu_percent, 30);
  EXPECT_LT(samples->back().cpu_percent, 150);
  EXPECT_GT(samples->back().rss_bytes, 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace nimbus::worker
