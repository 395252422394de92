// Checksums that S3 computes over object bodies: CRC32 (zlib's polynomial), CRC32C
// (Castagnoli), both by Intel's ISA-L, SHA1 and SHA256, plus the MD5 that
// becomes the ETag. A MultiChecksum hashes a stream once for every algorithm asked of it, so
// a PUT computes everything while the bytes pass through. S3 renders checksums as the
// base64 of their big-endian bytes (x-amz-checksum-crc32: "yZRlqg==").
//
// Thread-safety: the free functions are reentrant; a MultiChecksum belongs to one thread
// (a ChecksumPipeline lends it to a helper thread).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace nimbus::objects {

enum class ChecksumAlgorithm { kNone, kCrc32, kCrc32c, kSha1, kSha256 };

// "CRC32", "CRC32C", "SHA1", "SHA256" (as in x-amz-checksum-algorithm); kNone is "".
std::string_view ChecksumAlgorithmName(ChecksumAlgorithm algorithm);
// Parses the names above, case-insensitively; nullopt for anything else.
std::optional<ChecksumAlgorithm> ParseChecksumAlgorithm(std::string_view name);
// Raw digest length in bytes (4, 4, 20, 32; 0 for kNone).
size_t ChecksumLength(ChecksumAlgorithm algorithm);

// Incremental CRC-32C: pass the previous value (0 to start) and the next bytes.
uint32_t Crc32c(uint32_t crc, std::string_view data);
// Incremental CRC-32 (IEEE, as zlib computes it).
uint32_t Crc32(uint32_t crc, std::string_view data);

// Hashes one stream with MD5 and any subset of the checksum algorithms.
class MultiChecksum {
 public:
  MultiChecksum();
  ~MultiChecksum();
  MultiChecksum(const MultiChecksum&) = delete;
  MultiChecksum& operator=(const MultiChecksum&) = delete;

  // Adds an algorithm to compute. REQUIRES: before the first Update().
  void Enable(ChecksumAlgorithm algorithm);
  bool enabled(ChecksumAlgorithm algorithm) const;
  void Update(std::string_view data);
  // Finishes every digest; Md5()/Digest() are valid afterwards. Call once.
  void Finish();
  // Raw MD5 digest (16 bytes).
  const std::string& Md5() const { return md5_; }
  // Raw digest of an enabled algorithm; empty when it was not enabled.
  std::string Digest(ChecksumAlgorithm algorithm) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string md5_;
};

// Feeds a MultiChecksum from a helper thread, so that hashing a large body overlaps reading
// it from the socket and writing it to disk (MD5 alone runs at about 700 MB/s on one core:
// done in line, it halved the speed of a large PUT). The caller fills buffers in turn and
// submits each; the helper hashes them in order; a buffer comes back for filling once it
// is hashed.
//
//   ChecksumPipeline pipeline(sums, 256 << 10);
//   while ((n = Read(pipeline.Buffer(), pipeline.buffer_size())) > 0) {
//     pipeline.Submit(n);  // then the buffer may still be read, e.g. written out
//   }
//   pipeline.Drain();  // sums has seen every byte
//
// Each buffer starts at a kBufferAlignment boundary, so that it may be written with O_DIRECT.
//
// Thread-safety: one caller thread; sums must not be touched elsewhere until Drain().
class ChecksumPipeline {
 public:
  static constexpr size_t kBufferAlignment = 4096;

  ChecksumPipeline(MultiChecksum& sums, size_t buffer_size, size_t buffers = 3);
  ~ChecksumPipeline();  // stops the helper (what is still queued is not hashed)
  ChecksumPipeline(const ChecksumPipeline&) = delete;
  ChecksumPipeline& operator=(const ChecksumPipeline&) = delete;

  size_t buffer_size() const { return buffer_size_; }
  // The next buffer to fill (buffer_size() bytes); waits while the helper still hashes it.
  // The same buffer until Submit().
  char* Buffer();
  // Queues the first n bytes of Buffer() for hashing. The caller may go on reading them
  // until its next Buffer() call.
  void Submit(size_t n);
  // Returns once every submitted byte is hashed.
  void Drain();

 private:
  void Hash();

  MultiChecksum& sums_;
  const size_t buffer_size_;
  std::unique_ptr<char[]> storage_;  // every buffer, with room to align the first
  std::vector<char*> buffers_;       // into storage_
  std::vector<size_t> lengths_;      // of each buffer's submission
  std::mutex mu_;
  std::condition_variable changed_;
  uint64_t submitted_ = 0;  // GUARDED_BY(mu_)
  uint64_t hashed_ = 0;     // GUARDED_BY(mu_)
  bool stop_ = false;       // GUARDED_BY(mu_)
  std::thread helper_;
};

// Digest of data in one call (raw bytes); used for multipart checksums-of-checksums.
std::string ComputeChecksum(ChecksumAlgorithm algorithm, std::string_view data);

}  // namespace nimbus::objects
