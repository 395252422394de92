// UploadBody: the body of an S3 upload (PutObject, UploadPart) as the object store reads it.
// The dispatcher does not read these bodies: the handler streams ctx.http->body into the
// store. That body is either the raw one or, for aws-chunked uploads, the dispatcher's
// decoding sigv4::ChunkedBodyReader, whose x-amz-checksum-* trailers the store verifies once
// the body is read. When the request declared the hex SHA-256 of its body in
// x-amz-content-sha256 (signed before the body arrived), the body is hashed as it streams and
// its last Read fails with XAmzContentSHA256Mismatch on a difference, so the store discards
// it and nothing is stored.
//
// Thread-safety: an UploadBody belongs to the thread handling its request.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "core/result.h"
#include "http/types.h"
#include "objects/object_store.h"

namespace nimbus::aws::sigv4 {
class ChunkedBodyReader;
}  // namespace nimbus::aws::sigv4

namespace nimbus::services::s3 {

class UploadBody {
 public:
  // REQUIRES: request.body is set and outlives the UploadBody.
  explicit UploadBody(const http::Request& request);
  UploadBody(const UploadBody&) = delete;
  UploadBody& operator=(const UploadBody&) = delete;

  http::BodyReader& reader() { return *reader_; }
  // The payload length the request declared (x-amz-decoded-content-length for aws-chunked,
  // else Content-Length); absent when it declared none.
  const std::optional<uint64_t>& declared_length() const { return declared_length_; }
  // For aws-chunked bodies: the checksums of the trailers, read once the body is consumed.
  // Empty otherwise.
  std::function<Result<objects::Checksums>()> trailing_checksums() const;

 private:
  http::BodyReader* reader_ = nullptr;
  std::unique_ptr<http::BodyReader> verifier_;
  const aws::sigv4::ChunkedBodyReader* chunked_ = nullptr;
  std::optional<uint64_t> declared_length_;
};

}  // namespace nimbus::services::s3
