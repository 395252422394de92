#include "worker/pipe_feeder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace nimbus::worker {
namespace {

namespace fs = std::filesystem;

class PipeFeederTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-pipe-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/staged/sub");
    fs::create_directories(dir_ + "/data");
    std::ofstream(dir_ + "/staged/a.txt") << "first\n";
    std::ofstream(dir_ + "/staged/sub/b.txt") << "second\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  static std::string ReadAll(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string dir_;
};

TEST_F(PipeFeederTest, StreamsEveryFileOncePerEpochThroughItsOwnPipe) {
  PipeFeeder feeder(dir_ + "/data/train", dir_ + "/staged");
  ASSERT_TRUE(feeder.Prepare().ok());
  EXPECT_TRUE(fs::is_fifo(dir_ + "/data/train_0"));
  feeder.Start();
  EXPECT_EQ(ReadAll(dir_ + "/data/train_0"), "first\nsecond\n");
  while (!fs::exists(dir_ + "/data/train_1")) ::usleep(1000);
  EXPECT_EQ(ReadAll(dir_ + "/data/train_1"), "first\nsecond\n");
  feeder.Stop();
}

TEST_F(PipeFeederTest, AShuffleSeedReordersTheFilesPerEpochAndRepeats) {
  for (int i = 0; i < 8; ++i) std::ofstream(dir_ + "/staged/f" + std::to_string(i)) << i;
  auto epochs = [&](int64_t seed) {
    fs::remove(dir_ + "/data/train_0");
    fs::remove(dir_ + "/data/train_1");
    PipeFeeder feeder(dir_ + "/data/train", dir_ + "/staged", seed);
    EXPECT_TRUE(feeder.Prepare().ok());
    feeder.Start();
    std::string first = ReadAll(dir_ + "/data/train_0");
    while (!fs::exists(dir_ + "/data/train_1")) ::usleep(1000);
    std::string second = ReadAll(dir_ + "/data/train_1");
    feeder.Stop();
    return std::make_pair(first, second);
  };
  auto [a0, a1] = epochs(7);
  auto [b0, b1] = epochs(7);
  EXPECT_EQ(a0, b0);  // the same seed repeats
  EXPECT_EQ(a1, b1);
  EXPECT_NE(a0, a1);  // each epoch has its own order
  std::string sorted0 = a0, sorted1 = a1;
  std::sort(sorted0.begin(), sorted0.end());
  std::sort(sorted1.begin(), sorted1.end());
  EXPECT_EQ(sorted0, sorted1);  // of the same data
}

TEST_F(PipeFeederTest, StopsPromptlyWhenNobodyReads) {
  PipeFeeder feeder(dir_ + "/data/train", dir_ + "/staged");
  ASSERT_TRUE(feeder.Prepare().ok());
  feeder.Start();
  auto begin = std::chrono::steady_clock::now();
  feeder.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(5));
}

}  // namespace
}  // namespace nimbus::worker
