#include "control/log_tail.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "control/job_dir.h"

namespace nimbus::control {
namespace {

class LogTailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-logtail-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = std::make_unique<JobDir>(root_ + "/job");
    ASSERT_TRUE(dir_->Create().ok());
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  void Append(const std::string& stream, const std::string& bytes) {
    const int fd = ::open(dir_->LogPath(stream).c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }

  LogSink Collect() {
    return [this](const std::string& stream, const std::vector<LogEvent>& events) {
      ++batches_;
      for (const LogEvent& e : events) got_.push_back({stream, e});
      return fail_next_ ? (fail_next_ = false, Status::Internal("sink down")) : Status::Ok();
    };
  }

  std::vector<std::string> Messages() const {
    std::vector<std::string> out;
    for (const auto& [stream, event] : got_) out.push_back(event.second);
    return out;
  }

  std::string root_;
  std::unique_ptr<JobDir> dir_;
  std::vector<std::pair<std::string, LogEvent>> got_;
  int batches_ = 0;
  bool fail_next_ = false;
};

TEST_F(LogTailTest, DeliversLinesWithTheirTimestampsAndKeepsTheOffset) {
  Append("algo-1", "1700000000123\tfirst line\n1700000000456\tsecond\twith tab\n");
  LogTail tail(dir_->root(), Collect());
  auto n = tail.Poll();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 2u);
  ASSERT_EQ(got_.size(), 2u);
  EXPECT_EQ(got_[0].first, "algo-1");
  EXPECT_EQ(got_[0].second, (LogEvent{1700000000123, "first line"}));
  EXPECT_EQ(got_[1].second, (LogEvent{1700000000456, "second\twith tab"}));
  EXPECT_EQ(*ReadWholeFile(dir_->LogOffsetPath("algo-1")),
            std::to_string(std::filesystem::file_size(dir_->LogPath("algo-1"))) + "\n");
  // Nothing new: nothing delivered.
  EXPECT_EQ(*tail.Poll(), 0u);
  Append("algo-1", "1700000001000\tthird\n");
  EXPECT_EQ(*tail.Poll(), 1u);
  EXPECT_EQ(Messages().back(), "third");
}

TEST_F(LogTailTest, WaitsForTheRestOfAPartialLine) {
  Append("algo-1", "1700000000001\tcomplete\n1700000000002\thalf of a li");
  LogTail tail(dir_->root(), Collect());
  EXPECT_EQ(*tail.Poll(), 1u);
  EXPECT_EQ(Messages(), (std::vector<std::string>{"complete"}));
  Append("algo-1", "ne\n1700000000003\tnext\n");
  EXPECT_EQ(*tail.Poll(), 2u);
  EXPECT_EQ(Messages(), (std::vector<std::string>{"complete", "half of a line", "next"}));
  EXPECT_EQ(got_[1].second.first, 1700000000002);
  // Once the job is over, a last line without newline is delivered too.
  Append("algo-1", "1700000000004\tno newline at the end");
  EXPECT_EQ(*tail.Poll(), 0u);
  EXPECT_EQ(*tail.Poll(/*final=*/true), 1u);
  EXPECT_EQ(Messages().back(), "no newline at the end");
  EXPECT_EQ(*tail.Poll(true), 0u);
}

TEST_F(LogTailTest, ResumesFromThePersistedOffsetAfterARestart) {
  Append("algo-1", "1\ta\n2\tb\n");
  {
    LogTail tail(dir_->root(), Collect());
    EXPECT_EQ(*tail.Poll(), 2u);
  }
  Append("algo-1", "3\tc\n");
  LogTail restarted(dir_->root(), Collect());
  EXPECT_EQ(*restarted.Poll(), 1u);
  EXPECT_EQ(Messages(), (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(LogTailTest, RedeliversWhatTheSinkRefused) {
  Append("algo-1", "1\ta\n2\tb\n");
  LogTail tail(dir_->root(), Collect());
  fail_next_ = true;
  auto failed = tail.Poll();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message(), "sink down");
  EXPECT_FALSE(std::filesystem::exists(dir_->LogOffsetPath("algo-1")));
  got_.clear();
  EXPECT_EQ(*tail.Poll(), 2u);
  EXPECT_EQ(Messages(), (std::vector<std::string>{"a", "b"}));
  // A fresh LogTail agrees: nothing left.
  LogTail again(dir_->root(), Collect());
  EXPECT_EQ(*again.Poll(), 0u);
}

TEST_F(LogTailTest, SplitsBatchesAtTheLimits) {
  std::string text;
  for (int i = 0; i < 25; ++i)
    text += std::to_string(1000 + i) + "\tline " + std::to_string(i) + "\n";
  Append("algo-1", text);
  LogTailOptions options;
  options.max_batch_events = 10;
  options.read_chunk_bytes = 7;  // lines straddle reads
  LogTail tail(dir_->root(), Collect(), options);
  EXPECT_EQ(*tail.Poll(), 25u);
  EXPECT_GE(batches_, 3);
  ASSERT_EQ(got_.size(), 25u);
  for (int i = 0; i < 25; ++i) {
    EXPECT_EQ(got_[i].second, (LogEvent{1000 + i, "line " + std::to_string(i)}));
  }
  // Byte budget: each event counts 26 bytes more than its message.
  got_.clear();
  batches_ = 0;
  Append("b", "1\t" + std::string(100, 'x') + "\n2\t" + std::string(100, 'y') + "\n");
  LogTailOptions small;
  small.max_batch_bytes = 200;
  LogTail bytes(dir_->root(), Collect(), small);
  EXPECT_EQ(*bytes.PollStream("b"), 2u);
  EXPECT_EQ(batches_, 2);
}

TEST_F(LogTailTest, HandlesSeveralStreamsAndUnstampedLines) {
  Append("algo-1", "100\tfrom one\n");
  Append("algo-2", "200\tfrom two\nno stamp here\r\n\n");
  LogTail tail(dir_->root(), Collect());
  EXPECT_EQ(tail.Streams(), (std::vector<std::string>{"algo-1", "algo-2"}));
  EXPECT_EQ(*tail.Poll(), 4u);
  ASSERT_EQ(got_.size(), 4u);
  EXPECT_EQ(got_[0].first, "algo-1");
  EXPECT_EQ(got_[1].first, "algo-2");
  // An unstamped line keeps the previous line's time; a trailing \r is dropped.
  EXPECT_EQ(got_[2].second, (LogEvent{200, "no stamp here"}));
  EXPECT_EQ(got_[3].second, (LogEvent{200, ""}));
  EXPECT_EQ(*tail.PollStream("missing"), 0u);
}

TEST_F(LogTailTest, StartsOverWhenTheLogIsReplaced) {
  Append("algo-1", "1\tan old, long line\n");
  LogTail tail(dir_->root(), Collect());
  EXPECT_EQ(*tail.Poll(), 1u);
  std::filesystem::remove(dir_->LogPath("algo-1"));
  Append("algo-1", "2\tnew\n");
  EXPECT_EQ(*tail.Poll(), 1u);
  EXPECT_EQ(Messages().back(), "new");
}

}  // namespace
}  // namespace nimbus::control
