// Checksums that S3 computes over object bodies: CRC32 (zlib's polynomial), CRC32C
// (Castagnoli, a slicing-by-8 table implementation), SHA1 and SHA256, plus the MD5 that
// becomes the ETag. A MultiChecksum hashes a stream once for every algorithm asked of it, so
// a PUT computes everything while the bytes pass through. S3 renders checksums as the
// base64 of their big-endian bytes (x-amz-checksum-crc32: "yZRlqg==").
//
// Thread-safety: the free functions are reentrant; a MultiChecksum belongs to one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

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

// Digest of data in one call (raw bytes); used for multipart checksums-of-checksums.
std::string ComputeChecksum(ChecksumAlgorithm algorithm, std::string_view data);

}  // namespace nimbus::objects
