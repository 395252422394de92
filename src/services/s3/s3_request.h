// The S3 handlers' translation layer: how the request members the protocol engine parsed
// (copy sources, conditional headers, x-amz-tagging, checksum headers, Content-* headers)
// become objects::ObjectStore options, and how stored objects become S3's response members
// (object headers, response-* overrides, Content-Range, url-encoded listings, tag sets,
// owners). Pure functions over Values, kept apart from the handlers so that they can be
// tested without a store or a server.
//
// Thread-safety: every function is reentrant.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/value.h"
#include "http/types.h"
#include "objects/object_store.h"

namespace nimbus::services::s3 {

// x-amz-copy-source: "[/]bucket/key[?versionId=id]", the bucket and key percent-encoded.
struct CopySource {
  std::string bucket;
  std::string key;  // decoded
  std::string version_id;
};
// InvalidArgument when the header does not name a bucket and a key.
Result<CopySource> ParseCopySource(std::string_view header);

// x-amz-copy-source-range: "bytes=first-last" (the only form S3 accepts there).
Result<objects::ByteRange> ParseCopySourceRange(std::string_view header);

// If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since from the members
// <prefix>IfMatch, ... ("" for GetObject/HeadObject, "CopySource" for copies).
objects::Conditions ConditionsFromInput(const Value& input, std::string_view prefix = "");

// x-amz-tagging: a URL query string "k1=v1&k2=v2". InvalidArgument for an empty key or a
// key given twice.
Result<objects::Tags> ParseTaggingHeader(std::string_view header);

// TagSet lists (<TagSet><Tag><Key/><Value/></Tag></TagSet>) to and from tag maps.
Result<objects::Tags> TagsFromTagSet(const Value* tag_set);
Value TagSetValue(const objects::Tags& tags);

// Content-Type/-Encoding/-Disposition/-Language, Cache-Control, Expires (verbatim, from the
// raw header when there is one), x-amz-storage-class and x-amz-meta-*. The aws-chunked
// transfer coding is not part of the object's Content-Encoding and is dropped.
objects::ObjectMetadata MetadataFromInput(const Value& input, const http::Request* request);

// x-amz-checksum-* values the request declares (ChecksumCRC32, ...).
objects::Checksums ChecksumsFromInput(const Value& input);
// Writes each non-empty checksum into out as ChecksumCRC32, ChecksumCRC32C, ...
void AddChecksums(const objects::Checksums& checksums, Value* out);
// The algorithm named by member (x-amz-sdk-checksum-algorithm / x-amz-checksum-algorithm);
// kNone when absent; InvalidRequest for an unknown name.
Result<objects::ChecksumAlgorithm> ChecksumAlgorithmFromInput(const Value& input,
                                                              std::string_view member);

// The response members of GetObject/HeadObject for an object: ETag, Last-Modified, the
// Content-* headers (binary/octet-stream when no type was stored), user metadata, storage
// class, version id, tag count; checksums only with_checksums (x-amz-checksum-mode).
Value ObjectHeaders(const objects::ObjectInfo& info, bool with_checksums);
// Applies GetObject's response-content-type, response-expires, ... overrides to out.
void ApplyResponseOverrides(const Value& input, Value* out);
// "bytes first-last/size".
std::string ContentRange(uint64_t offset, uint64_t length, uint64_t size);

// Version ids as S3 shows them in headers: the "null" version has none.
bool HasVisibleVersion(std::string_view version_id);

// A key, prefix, delimiter or marker in a listing: percent-encoded (keeping '/') when the
// request asked for encoding-type=url, else as is.
std::string ListingText(std::string_view text, bool url_encoded);
// True when input's EncodingType is "url"; InvalidArgument for another value.
Result<bool> UrlEncodingRequested(const Value& input);

// The canonical user id and display name S3 reports as the owner of an account's
// resources: a stable 64-hex-digit id derived from the account id.
Value OwnerValue(std::string_view account_id);

}  // namespace nimbus::services::s3
