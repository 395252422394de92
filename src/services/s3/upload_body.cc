#include "services/s3/upload_body.h"

#include <string>
#include <utility>

#include "aws/sigv4/chunked_payload.h"
#include "aws/sigv4/sigv4.h"
#include "core/crypto.h"
#include "core/strings.h"

namespace nimbus::services::s3 {
namespace {

bool IsHexSha256(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Passes a body through, hashing it; at its end the digest must be the declared one.
class Sha256VerifyingReader : public http::BodyReader {
 public:
  Sha256VerifyingReader(http::BodyReader& inner, std::string expected_hex)
      : inner_(inner),
        expected_hex_(std::move(expected_hex)),
        digest_(StreamingDigest::Algorithm::kSha256) {}

  Result<size_t> Read(char* buf, size_t n) override {
    if (!failed_.ok()) return failed_;
    if (finished_) return size_t{0};
    NIMBUS_ASSIGN_OR_RETURN(size_t got, inner_.Read(buf, n));
    if (got > 0) {
      digest_.Update(std::string_view(buf, got));
      return got;
    }
    finished_ = true;
    if (HexEncode(digest_.Finish()) != expected_hex_) {
      failed_ = aws::sigv4::PayloadHashMismatch(true);
      return failed_;
    }
    return size_t{0};
  }

 private:
  http::BodyReader& inner_;
  std::string expected_hex_;
  StreamingDigest digest_;
  bool finished_ = false;
  Status failed_;
};

}  // namespace

UploadBody::UploadBody(const http::Request& request) : reader_(request.body) {
  if (const auto* chunked = dynamic_cast<const aws::sigv4::ChunkedBodyReader*>(request.body)) {
    chunked_ = chunked;
    declared_length_ = chunked->decoded_length();
    return;
  }
  declared_length_ = request.content_length;
  std::string declared_hash = request.headers.Get("x-amz-content-sha256");
  if (IsHexSha256(declared_hash)) {
    verifier_ = std::make_unique<Sha256VerifyingReader>(*request.body, std::move(declared_hash));
    reader_ = verifier_.get();
  }
}

std::function<Result<objects::Checksums>()> UploadBody::trailing_checksums() const {
  if (!chunked_) return nullptr;
  const aws::sigv4::ChunkedBodyReader* chunked = chunked_;
  return [chunked]() -> Result<objects::Checksums> {
    objects::Checksums sums;
    for (const auto& [name, value] : chunked->trailers()) {
      if (!StartsWith(name, "x-amz-checksum-")) continue;
      std::optional<objects::ChecksumAlgorithm> algorithm =
          objects::ParseChecksumAlgorithm(std::string_view(name).substr(15));
      if (!algorithm) {
        return Status::Aws("InvalidRequest", 400, "Unsupported trailing checksum " + name);
      }
      sums.Of(*algorithm) = std::string(Trim(value));
    }
    return sums;
  };
}

}  // namespace nimbus::services::s3
