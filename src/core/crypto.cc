#include "core/crypto.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace nimbus {
namespace {
// The algorithms, fetched from OpenSSL's default provider once: EVP_sha256() and friends
// make every call look the implementation up again, which costs more than hashing a small
// request (SigV4 hashes two and signs one per request).
const EVP_MD* Fetched(const char* name, const EVP_MD* fallback) {
  const EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  return md != nullptr ? md : fallback;
}

const EVP_MD* Md(StreamingDigest::Algorithm a) {
  static const EVP_MD* const md5 = Fetched("MD5", EVP_md5());
  static const EVP_MD* const sha1 = Fetched("SHA1", EVP_sha1());
  static const EVP_MD* const sha256 = Fetched("SHA256", EVP_sha256());
  switch (a) {
    case StreamingDigest::Algorithm::kMd5:
      return md5;
    case StreamingDigest::Algorithm::kSha1:
      return sha1;
    case StreamingDigest::Algorithm::kSha256:
      return sha256;
  }
  return sha256;
}

// Each thread's HMAC-SHA256 context, set up once. HMAC() looks the MAC and the digest up
// by name on every call, under the provider store's locks: with a server's worker threads
// signing at once, that cost more than the MAC itself.
class HmacContext {
 public:
  HmacContext() {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
    if (mac == nullptr) return;
    ctx_ = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);  // the context holds its own reference
    char digest[] = OSSL_DIGEST_NAME_SHA2_256;
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_END};
    if (ctx_ != nullptr && EVP_MAC_CTX_set_params(ctx_, params) != 1) {
      EVP_MAC_CTX_free(ctx_);
      ctx_ = nullptr;
    }
  }
  ~HmacContext() { EVP_MAC_CTX_free(ctx_); }
  HmacContext(const HmacContext&) = delete;
  HmacContext& operator=(const HmacContext&) = delete;

  EVP_MAC_CTX* get() const { return ctx_; }

 private:
  EVP_MAC_CTX* ctx_ = nullptr;
};

std::string Digest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}
}  // namespace

std::string Sha256(std::string_view data) {
  return Digest(Md(StreamingDigest::Algorithm::kSha256), data);
}
std::string Md5(std::string_view data) {
  return Digest(Md(StreamingDigest::Algorithm::kMd5), data);
}
std::string Sha1(std::string_view data) {
  return Digest(Md(StreamingDigest::Algorithm::kSha1), data);
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  thread_local const HmacContext hmac;
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t len = 0;
  // An empty key must still be a key: EVP_MAC_init() keeps the previous one for nullptr.
  static const unsigned char kNoKey = 0;
  const auto* key_bytes =
      key.empty() ? &kNoKey : reinterpret_cast<const unsigned char*>(key.data());
  if (hmac.get() == nullptr || EVP_MAC_init(hmac.get(), key_bytes, key.size(), nullptr) != 1 ||
      EVP_MAC_update(hmac.get(), reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1 ||
      EVP_MAC_final(hmac.get(), out, &len, sizeof(out)) != 1) {
    throw std::runtime_error("HMAC-SHA256 failed");  // libcrypto without SHA-256: unusable
  }
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("RAND_bytes failed");  // no entropy: nothing safe to do
  }
  return out;
}

struct StreamingDigest::Impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

StreamingDigest::StreamingDigest(Algorithm algorithm) : impl_(std::make_unique<Impl>()) {
  EVP_DigestInit_ex(impl_->ctx, Md(algorithm), nullptr);
}
StreamingDigest::~StreamingDigest() = default;

void StreamingDigest::Update(std::string_view data) {
  EVP_DigestUpdate(impl_->ctx, data.data(), data.size());
}

std::string StreamingDigest::Finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

}  // namespace nimbus
