#include "objects/checksum.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "core/strings.h"

namespace nimbus::objects {
namespace {

TEST(ChecksumTest, Crc32cMatchesCheckValue) {
  EXPECT_EQ(Crc32c(0, "123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(0, ""), 0u);
}

TEST(ChecksumTest, Crc32cIsIncrementalAcrossUnalignedChunks) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 31 + 7));
  const uint32_t whole = Crc32c(0, data);
  for (size_t split : {1u, 3u, 7u, 8u, 9u, 500u, 999u}) {
    uint32_t c = Crc32c(0, std::string_view(data).substr(0, split));
    c = Crc32c(c, std::string_view(data).substr(split));
    EXPECT_EQ(c, whole) << split;
  }
}

TEST(ChecksumTest, Crc32cOfZerosMatchesRfc3720Vector) {
  // RFC 3720 B.4: 32 bytes of zeros -> 0x8A9136AA; 32 bytes of 0xFF -> 0x62A8AB43.
  EXPECT_EQ(Crc32c(0, std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(0, std::string(32, '\xff')), 0x62A8AB43u);
}

TEST(ChecksumTest, Crc32MatchesCheckValue) { EXPECT_EQ(Crc32(0, "123456789"), 0xCBF43926u); }

TEST(ChecksumTest, MultiChecksumComputesEnabledAlgorithmsInOnePass) {
  MultiChecksum sums;
  sums.Enable(ChecksumAlgorithm::kCrc32);
  sums.Enable(ChecksumAlgorithm::kCrc32c);
  sums.Enable(ChecksumAlgorithm::kSha256);
  sums.Update("1234");
  sums.Update("56789");
  sums.Finish();
  EXPECT_EQ(HexEncode(sums.Md5()), "25f9e794323b453885f5181f1b624d0b");
  EXPECT_EQ(HexEncode(sums.Digest(ChecksumAlgorithm::kCrc32)), "cbf43926");
  EXPECT_EQ(HexEncode(sums.Digest(ChecksumAlgorithm::kCrc32c)), "e3069283");
  EXPECT_EQ(HexEncode(sums.Digest(ChecksumAlgorithm::kSha256)),
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225");
  EXPECT_EQ(sums.Digest(ChecksumAlgorithm::kSha1), "");
  EXPECT_FALSE(sums.enabled(ChecksumAlgorithm::kSha1));
}

// The pipeline hashes in submission order, whatever the fill of each buffer, and reuses a
// buffer only once it is hashed: the caller overwrites a buffer as soon as it gets it back,
// so a buffer handed out too early corrupts the digests.
TEST(ChecksumTest, PipelineDigestsEqualInLineHashing) {
  std::string data;
  uint32_t x = 12345;
  for (int i = 0; i < 3'000'000; ++i) {
    x = x * 1103515245 + 12345;
    data.push_back(static_cast<char>(x >> 24));
  }
  MultiChecksum direct;
  direct.Enable(ChecksumAlgorithm::kCrc32c);
  direct.Enable(ChecksumAlgorithm::kSha256);
  direct.Update(data);
  direct.Finish();
  for (size_t buffers : {2u, 4u}) {
    MultiChecksum sums;
    sums.Enable(ChecksumAlgorithm::kCrc32c);
    sums.Enable(ChecksumAlgorithm::kSha256);
    {
      ChecksumPipeline pipeline(sums, 64 << 10, buffers);
      size_t at = 0;
      for (size_t step = 1; at < data.size(); step = step * 7 % 70001 + 1) {
        char* buf = pipeline.Buffer();
        const size_t n = std::min({step, pipeline.buffer_size(), data.size() - at});
        std::memcpy(buf, data.data() + at, n);
        pipeline.Submit(n);
        at += n;
      }
      pipeline.Drain();
    }
    sums.Finish();
    EXPECT_EQ(sums.Md5(), direct.Md5()) << buffers;
    EXPECT_EQ(sums.Digest(ChecksumAlgorithm::kCrc32c), direct.Digest(ChecksumAlgorithm::kCrc32c));
    EXPECT_EQ(sums.Digest(ChecksumAlgorithm::kSha256), direct.Digest(ChecksumAlgorithm::kSha256));
  }
}

TEST(ChecksumTest, APipelineLeftUndrainedStops) {
  MultiChecksum sums;
  ChecksumPipeline pipeline(sums, 1 << 20, 2);
  for (int i = 0; i < 2; ++i) {
    std::memset(pipeline.Buffer(), 'a', 1 << 20);
    pipeline.Submit(1 << 20);
  }
}

TEST(ChecksumTest, AlgorithmNamesRoundTrip) {
  EXPECT_EQ(ParseChecksumAlgorithm("crc32c"), ChecksumAlgorithm::kCrc32c);
  EXPECT_EQ(ParseChecksumAlgorithm("SHA1"), ChecksumAlgorithm::kSha1);
  EXPECT_FALSE(ParseChecksumAlgorithm("md5").has_value());
  EXPECT_EQ(ChecksumAlgorithmName(ChecksumAlgorithm::kSha256), "SHA256");
  EXPECT_EQ(Base64Encode(ComputeChecksum(ChecksumAlgorithm::kCrc32, "hello")), "NhCmhg==");
}

}  // namespace
}  // namespace nimbus::objects
