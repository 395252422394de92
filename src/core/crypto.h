// Hashes and MACs over OpenSSL's libcrypto: what SigV4, S3 ETags and checksums need.
// All functions return raw digest bytes; HexEncode them for display.
// Thread-safety: every function is reentrant.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace nimbus {

std::string Sha256(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);
std::string Md5(std::string_view data);
std::string Sha1(std::string_view data);
// Cryptographically secure random bytes.
std::string RandomBytes(size_t n);

// Incremental digest for streamed bodies (hash while the bytes pass through).
class StreamingDigest {
 public:
  enum class Algorithm { kMd5, kSha1, kSha256 };
  explicit StreamingDigest(Algorithm algorithm);
  ~StreamingDigest();
  StreamingDigest(const StreamingDigest&) = delete;
  StreamingDigest& operator=(const StreamingDigest&) = delete;

  void Update(std::string_view data);
  // Returns the digest; the object must not be updated afterwards.
  std::string Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nimbus
