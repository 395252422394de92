#include "control/job_samples.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace nimbus::control {
namespace {

class JobSamplesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-samples-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<UsageSample> ReadUsage(LineTail& tail) {
    std::vector<UsageSample> samples;
    auto lines = tail.Read();
    for (const auto& line : *lines) {
      if (auto s = ParseUsageSample(line)) samples.push_back(*s);
    }
    return samples;
  }
  std::string dir_;
};

TEST_F(JobSamplesTest, ReadsEachSampleOnceAcrossTailsAndWaitsForPartialLines) {
  ASSERT_TRUE(AppendUsageSample(dir_, {1000, 150.5, 1 << 20}).ok());
  ASSERT_TRUE(AppendUsageSample(dir_, {2000, 99.25, 2 << 20}).ok());
  {
    LineTail tail(UsageLogPath(dir_));
    auto samples = ReadUsage(tail);
    ASSERT_EQ(samples.size(), 2u);
    EXPECT_EQ(samples[0], (UsageSample{1000, 150.5, 1 << 20}));
    EXPECT_EQ(samples[1].cpu_percent, 99.25);
    ASSERT_TRUE(tail.Commit().ok());
  }
  std::ofstream(UsageLogPath(dir_), std::ios::app) << "3000\t5";  // a writer mid-line
  LineTail restarted(UsageLogPath(dir_));
  EXPECT_TRUE(ReadUsage(restarted).empty());
  std::ofstream(UsageLogPath(dir_), std::ios::app) << ".0\t42\ngarbage\n";
  auto samples = ReadUsage(restarted);
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0], (UsageSample{3000, 5.0, 42}));
}

TEST_F(JobSamplesTest, AnUncommittedReadIsReadAgain) {
  ASSERT_TRUE(AppendUsageSample(dir_, {1000, 1, 1}).ok());
  LineTail tail(UsageLogPath(dir_));
  EXPECT_EQ(tail.Read()->size(), 1u);
  EXPECT_EQ(LineTail(UsageLogPath(dir_)).Read()->size(), 1u);
  EXPECT_TRUE(LineTail(dir_ + "/missing.log").Read()->empty());
}

TEST_F(JobSamplesTest, MetricSamplesRoundTripAndRejectBadNames) {
  ASSERT_TRUE(AppendMetricSample(dir_, {1000, "validation:rmse", 0.125}).ok());
  ASSERT_TRUE(AppendMetricSample(dir_, {2000, "train:auc", 1e-9}).ok());
  EXPECT_FALSE(AppendMetricSample(dir_, {3000, "bad\tname", 1}).ok());
  EXPECT_FALSE(AppendMetricSample(dir_, {3000, "nan", std::nan("")}).ok());
  auto lines = LineTail(MetricLogPath(dir_)).Read();
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_EQ(*ParseMetricSample((*lines)[0]), (MetricSample{1000, "validation:rmse", 0.125}));
  EXPECT_EQ(ParseMetricSample((*lines)[1])->value, 1e-9);
  EXPECT_FALSE(ParseMetricSample("12\tname\tx").has_value());
  EXPECT_FALSE(ParseMetricSample("12 name 3").has_value());
}

}  // namespace
}  // namespace nimbus::control
