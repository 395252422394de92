#include "worker/usage_sampler.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "control/job_samples.h"

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
  EXPECT_GT(usage.cpu_seconds, 0);
  EXPECT_GT(usage.rss_bytes, 0);
  EXPECT_EQ(MeasureProcessGroup(child).cpu_seconds, 0);  // nobody left in the group

  auto lines = control::LineTail(control::UsageLogPath(dir)).Read();
  ASSERT_TRUE(lines.ok());
  ASSERT_GE(lines->size(), 2u);
  // The spinner gets whatever share of a core a busy machine leaves it: more than nothing,
  // never more than one core (it is one thread).
  double busiest = 0;
  for (const std::string& line : *lines) {
    auto sample = control::ParseUsageSample(line);
    ASSERT_TRUE(sample.has_value()) << line;
    EXPECT_GE(sample->cpu_percent, 0);
    EXPECT_LT(sample->cpu_percent, 130);
    EXPECT_GT(sample->rss_bytes, 0);
    busiest = std::max(busiest, sample->cpu_percent);
  }
  EXPECT_GT(busiest, 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace nimbus::worker
