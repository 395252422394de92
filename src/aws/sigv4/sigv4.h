// AWS Signature Version 4: parsing, verification and signing of HTTP requests, as a pure
// library that knows nothing of IAM. The caller looks the access key up, then calls Verify()
// with the secret; Verify() checks the scope, the request time (or presigned expiry) and the
// signature, and returns the AWS error the request deserves.
//
// Two ways of carrying a signature are understood: the Authorization header
// ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...") and the presigned
// query (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders,
// X-Amz-Signature). S3's rules differ in places (no path normalization, single URI encoding,
// UNSIGNED-PAYLOAD and STREAMING-* payloads, x-amz-content-sha256 required): VerifyOptions::s3
// selects them. The aws-chunked body of streaming uploads is decoded and its chunk
// signatures verified by ChunkedBodyReader (chunked_payload.h).
//
// Thread-safety: every function is reentrant. SigningKey() keeps a process-wide LRU cache of
// derived keys behind a mutex.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/status.h"
#include "http/types.h"

namespace nimbus::aws::sigv4 {

inline constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
inline constexpr std::string_view kStreamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
inline constexpr std::string_view kStreamingPayloadTrailer =
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
inline constexpr std::string_view kStreamingUnsignedPayloadTrailer =
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
// Hex SHA-256 of the empty string.
inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// The longest validity of a presigned URL: seven days.
inline constexpr int64_t kMaxPresignExpires = 604800;

// What a request claims about its signature.
struct SignedRequest {
  bool presigned = false;  // X-Amz-Algorithm in the query
  std::string access_key_id;
  std::string date;  // scope date yyyymmdd
  std::string region, service;
  std::string amz_date;     // the request time in basic ISO 8601, as it enters the string to sign
  double request_time = 0;  // epoch seconds
  int64_t expires = 0;      // presigned X-Amz-Expires (seconds)
  std::vector<std::string> signed_headers;  // lowercase, in the order given
  std::string signature;                    // hex
  std::string session_token;                // X-Amz-Security-Token (header or query), "" if none
  std::string payload_hash;                 // x-amz-content-sha256 value ("" if absent)

  // "20150830/us-east-1/service/aws4_request"
  std::string Scope() const;
};

// Reads the SigV4 claims of a request. kMissingAuth when the request carries no SigV4 at all
// (no Authorization header and no X-Amz-Algorithm query parameter); otherwise malformed
// requests get the error AWS returns, with an explicit code (IncompleteSignature for most
// services; AuthorizationHeaderMalformed / AuthorizationQueryParametersError / AccessDenied
// for S3, recognized from the credential scope).
Result<SignedRequest> Parse(const http::Request& request);

struct VerifyOptions {
  double now = 0;                 // epoch seconds
  double max_skew_seconds = 900;  // 15 minutes
  // S3 rules: no double URI encoding of the path nor normalization, UNSIGNED-PAYLOAD for
  // presigned URLs, x-amz-content-sha256 required for header auth.
  bool s3 = false;
};

// The payload hash to verify the signature with before the body is read, when there is one:
//   - the literal the request declared in x-amz-content-sha256 (UNSIGNED-PAYLOAD, STREAMING-*):
//     that literal is what was signed;
//   - UNSIGNED-PAYLOAD for an S3 presigned URL that declares nothing;
//   - for S3, the declared hex digest: the caller streams the body, hashes it on the way and
//     answers PayloadHashMismatch() if the digest differs (S3 bodies can be 5 GiB).
// Empty when the caller must hash the body first (services other than S3).
std::string_view PayloadHashBeforeBody(const SignedRequest& signed_request, bool s3);

// The error for a body whose SHA-256 is not the declared x-amz-content-sha256
// (S3: XAmzContentSHA256Mismatch; other services: a signature mismatch).
Status PayloadHashMismatch(bool s3);

// Verifies a parsed request against the secret of its access key.
// payload_hash: hex SHA-256 of the body as received (the caller computes it), or the value
// PayloadHashBeforeBody() gave. When the request declared a literal (UNSIGNED-PAYLOAD,
// STREAMING-*), the declared literal is what was signed and is used whatever is passed.
// Returns OK; kSignatureMismatch (message as AWS words it, code left to the protocol layer);
// kRequestTimeTooSkewed; kExpiredToken for an expired presigned URL (S3: AccessDenied "Request
// has expired"); S3-specific errors with explicit codes (XAmzContentSHA256Mismatch,
// InvalidRequest for a missing x-amz-content-sha256, AuthorizationHeaderMalformed for a scope
// date that is not the request's date).
Status Verify(const SignedRequest& signed_request, const http::Request& request,
              std::string_view secret_access_key, std::string_view payload_hash,
              const VerifyOptions& options);

// Signs a request with an Authorization header, as the AWS SDKs do: sets X-Amz-Date (and
// X-Amz-Security-Token when session_token is set, x-amz-content-sha256 for S3 or for a literal
// payload hash), then signs every header but user-agent, expect and x-amzn-trace-id.
// REQUIRES: request has a Host header; request.path/query are filled (or target is, and
// they are split from it). Returns the signature (the seed of aws-chunked signing).
std::string SignRequest(http::Request& request, std::string_view access_key_id,
                        std::string_view secret, std::string_view region, std::string_view service,
                        double now, std::string_view payload, std::string_view session_token = "",
                        bool s3 = false);
// The same with the payload hash given: a hex digest or a literal (UNSIGNED-PAYLOAD,
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD, ...).
std::string SignRequestWithPayloadHash(http::Request& request, std::string_view access_key_id,
                                       std::string_view secret, std::string_view region,
                                       std::string_view service, double now,
                                       std::string_view payload_hash,
                                       std::string_view session_token = "", bool s3 = false);

// A presigned URL's request-target: path + "?" + query + the X-Amz-* parameters. path is
// URI-encoded as it will be sent; query is the encoded query without '?' (may be empty).
// Only host is signed. S3 signs UNSIGNED-PAYLOAD, other services the empty body's hash.
std::string Presign(std::string_view method, std::string_view host, std::string_view path,
                    std::string_view query, std::string_view access_key_id, std::string_view secret,
                    std::string_view region, std::string_view service, double now, int64_t expires,
                    std::string_view session_token = "", bool s3 = true);

// The building blocks, public so that tests can check each against AWS's published vectors.
std::string CanonicalUri(std::string_view path, bool s3);
std::string CanonicalQuery(std::string_view raw_query, bool presigned);
std::string CanonicalRequest(const http::Request& request,
                             const std::vector<std::string>& signed_headers,
                             std::string_view payload_hash, bool s3, bool presigned);
std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request);
// The derived signing key (raw bytes), cached per (secret, date, region, service).
std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service);
// hex(HMAC-SHA256(signing_key, string_to_sign))
std::string Signature(std::string_view signing_key, std::string_view string_to_sign);
// Compares two signatures in time independent of where they differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace nimbus::aws::sigv4
