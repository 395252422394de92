// aws-chunked: the body encoding of S3 streaming uploads (Content-Encoding: aws-chunked,
// x-amz-decoded-content-length). Each chunk is "<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n";
// a zero-size chunk ends the data, optionally followed by trailing headers
// ("x-amz-checksum-crc32:...\r\n", and "x-amz-trailer-signature:<sig>\r\n" when signed) and a
// blank line. Three modes, named by x-amz-content-sha256:
//   STREAMING-AWS4-HMAC-SHA256-PAYLOAD          signed chunks, no trailers
//   STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER  signed chunks, signed trailers
//   STREAMING-UNSIGNED-PAYLOAD-TRAILER          unsigned chunks, unsigned trailers
// Chunk signatures chain: each one signs the previous (the first signs the request's
// signature, the "seed"), so chunks cannot be dropped, reordered or replayed.
//
// ChunkedBodyReader decodes and verifies such a body as it streams; EncodeAwsChunked()
// produces one (for tests and Nimbus's own outgoing S3 client).
//
// Thread-safety: a ChunkedBodyReader belongs to the one thread reading the request; the free
// functions are reentrant.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/sigv4/sigv4.h"
#include "core/result.h"
#include "http/types.h"

namespace nimbus::aws::sigv4 {

// Trailing headers: lowercase name and value, in the order received.
using Trailers = std::vector<std::pair<std::string, std::string>>;

// hex(HMAC(signing_key, "AWS4-HMAC-SHA256-PAYLOAD\n<amz_date>\n<scope>\n<previous>\n
// <sha256("")>\n<sha256(chunk)>"))
std::string ChunkSignature(std::string_view signing_key, std::string_view amz_date,
                           std::string_view scope, std::string_view previous_signature,
                           std::string_view chunk);
// hex(HMAC(signing_key, "AWS4-HMAC-SHA256-TRAILER\n<amz_date>\n<scope>\n<previous>\n
// <sha256(trailers)>")), the trailers written "name:value\n" each, sorted by name;
// previous_signature is the final (zero-size) chunk's.
std::string TrailerSignature(std::string_view signing_key, std::string_view amz_date,
                             std::string_view scope, std::string_view previous_signature,
                             const Trailers& trailers);

// Encodes payload in chunks of chunk_size bytes (the last may be shorter) in the given mode
// (kStreamingPayload, kStreamingPayloadTrailer or kStreamingUnsignedPayloadTrailer).
// seed_signature is the signature of the request (SignRequestWithPayloadHash's result);
// signing_key, amz_date and scope are those it was signed with. The signing inputs are
// ignored in the unsigned mode.
// REQUIRES: chunk_size > 0; trailers empty in kStreamingPayload mode.
std::string EncodeAwsChunked(std::string_view payload, size_t chunk_size, std::string_view mode,
                             std::string_view signing_key, std::string_view amz_date,
                             std::string_view scope, std::string_view seed_signature,
                             const Trailers& trailers = {});

// Decodes an aws-chunked body. Read() yields the payload chunk by chunk, each chunk only
// once its signature has been verified. Errors (sticky: every later Read returns the same):
// kSignatureMismatch for a bad or missing chunk or trailer signature; kSerialization for
// malformed framing, a truncated body (IncompleteBody), or a decoded length that differs from
// x-amz-decoded-content-length.
class ChunkedBodyReader : public http::BodyReader {
 public:
  // Chunks are held in memory while their signature is checked; SDKs send 64 KiB-8 MiB.
  static constexpr size_t kMaxChunkSize = 16 << 20;
  static constexpr size_t kMaxTrailerBytes = 16 << 10;

  // Wraps request.body, which must outlive the reader. The request must have been verified
  // with Verify() (its signature seeds the chain); secret_access_key is the key it was
  // verified with. Errors: kValidation when x-amz-content-sha256 is not an aws-chunked mode
  // or x-amz-decoded-content-length is missing or not a number (MissingContentLength),
  // kNotImplemented for SigV4a (ECDSA) streaming.
  static Result<std::unique_ptr<ChunkedBodyReader>> Create(const http::Request& request,
                                                           const SignedRequest& signed_request,
                                                           std::string_view secret_access_key);

  Result<size_t> Read(char* buf, size_t n) override;

  // The trailing headers (x-amz-trailer-signature excluded), complete once Read returned 0.
  const Trailers& trailers() const { return trailers_; }
  // x-amz-decoded-content-length: the payload's size.
  uint64_t decoded_length() const { return declared_length_; }

 private:
  enum class LineEnd { kLine, kPartial, kEof };

  ChunkedBodyReader() = default;
  Result<bool> Fill();
  Result<LineEnd> ReadLine(std::string* line, size_t max);
  Status ReadExact(size_t n);
  Status NextChunk();
  Status ReadTrailers();

  http::BodyReader* raw_ = nullptr;
  bool signed_ = false;
  bool trailer_mode_ = false;
  std::string signing_key_;
  std::string amz_date_;
  std::string scope_;
  std::string previous_signature_;
  std::vector<std::string> expected_trailers_;  // from x-amz-trailer
  uint64_t declared_length_ = 0;
  uint64_t decoded_ = 0;

  std::string in_;  // raw bytes read ahead
  size_t in_pos_ = 0;
  std::string chunk_;  // the verified chunk being handed out
  size_t out_pos_ = 0;
  bool done_ = false;
  Status failed_;
  Trailers trailers_;
};

}  // namespace nimbus::aws::sigv4
