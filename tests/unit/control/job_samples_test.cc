#include "control/usage_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace nimbus::control {
namespace {

class UsageLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-usage-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(UsageLogTest, ReadsEachSampleOnceAcrossTailsAndSkipsPartialLines) {
  ASSERT_TRUE(AppendUsageSample(dir_, {1000, 150.5, 1 << 20}).ok());
  ASSERT_TRUE(AppendUsageSample(dir_, {2000, 99.25, 2 << 20}).ok());
  {
    UsageTail tail(dir_);
    auto samples = tail.Read();
    ASSERT_TRUE(samples.ok());
    ASSERT_EQ(samples->size(), 2u);
    EXPECT_EQ((*samples)[0], (UsageSample{1000, 150.5, 1 << 20}));
    EXPECT_EQ((*samples)[1].cpu_percent, 99.25);
    ASSERT_TRUE(tail.Commit().ok());
  }
  std::ofstream(UsageLogPath(dir_), std::ios::app) << "3000\t5";  // a writer mid-line
  UsageTail restarted(dir_);
  EXPECT_TRUE(restarted.Read()->empty());
  std::ofstream(UsageLogPath(dir_), std::ios::app) << ".0\t42\ngarbage\n";
  auto samples = restarted.Read();
  ASSERT_EQ(samples->size(), 1u);
  EXPECT_EQ((*samples)[0], (UsageSample{3000, 5.0, 42}));
}

TEST_F(UsageLogTest, AnUncommittedReadIsReadAgain) {
  ASSERT_TRUE(AppendUsageSample(dir_, {1000, 1, 1}).ok());
  UsageTail tail(dir_);
  EXPECT_EQ(tail.Read()->size(), 1u);
  EXPECT_EQ(UsageTail(dir_).Read()->size(), 1u);
  EXPECT_TRUE(UsageTail(dir_ + "/missing").Read()->empty());
}

}  // namespace
}  // namespace nimbus::control
