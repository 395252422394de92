// objects::ObjectStore: the object storage facade (ARCHITECTURE.md §5). The S3 service and
// every internal reader/writer of datasets and artifacts go through it; backends sit behind
// it (LocalObjectStore: files under the data dir + store::Database metadata; a remote S3
// backend later). It speaks S3's model — buckets, keys that are arbitrary byte strings,
// versions and delete markers, multipart uploads — but no HTTP: bodies come in as an
// http::BodyReader and go out as an ObjectReader, both streamed with bounded buffers.
//
// Errors are Status::Aws with S3's codes and messages (NoSuchBucket, NoSuchKey,
// InvalidRange, BadDigest, ...), ready for the protocol layer to serialize.
//
// Thread-safety: an ObjectStore is safe to use from many threads at once; concurrent writes
// to one key resolve last-writer-wins. An ObjectReader belongs to one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "http/types.h"
#include "objects/checksum.h"

namespace nimbus::objects {

enum class VersioningStatus { kUnversioned, kEnabled, kSuspended };
// "" for kUnversioned (S3 omits Status), "Enabled", "Suspended".
std::string_view VersioningStatusName(VersioningStatus status);

// Tag sets of objects and buckets (S3 treats them as key -> value maps).
using Tags = std::map<std::string, std::string>;

struct BucketInfo {
  std::string name;
  std::string region;
  std::string owner;  // the owning account id
  double created = 0;
};

// The system and user metadata stored with an object and returned by Get/Head.
struct ObjectMetadata {
  std::string content_type;  // empty means the caller's default (binary/octet-stream)
  std::string content_encoding;
  std::string content_disposition;
  std::string content_language;
  std::string cache_control;
  std::string expires;  // kept verbatim, as S3 does
  // x-amz-meta-* without the prefix; names lowercase.
  std::map<std::string, std::string> user;
  std::string storage_class;  // empty means STANDARD
  bool operator==(const ObjectMetadata&) const = default;
};

// Checksums as S3 renders them: base64 of the big-endian digest, with "-N" appended for a
// multipart object's checksum of part checksums. Empty when not computed.
struct Checksums {
  std::string crc32;
  std::string crc32c;
  std::string sha1;
  std::string sha256;
  std::string& Of(ChecksumAlgorithm algorithm);
  const std::string& Of(ChecksumAlgorithm algorithm) const;
  bool empty() const { return crc32.empty() && crc32c.empty() && sha1.empty() && sha256.empty(); }
};

// One version of a key: an object or a delete marker.
struct ObjectInfo {
  std::string bucket;
  std::string key;
  std::string version_id;  // "null" for versions written while unversioned/suspended
  bool is_latest = true;
  bool delete_marker = false;
  uint64_t size = 0;
  std::string etag;  // quoted, as on the wire: "\"9e107d9d372bb6826bd81d3542a419d6\""
  double last_modified = 0;
  ObjectMetadata metadata;
  Checksums checksums;
  int parts_count = 0;  // >0 for objects assembled by CompleteMultipartUpload
  size_t tag_count = 0;
};

// HTTP conditional request headers (absent fields are not checked).
struct Conditions {
  std::optional<std::string> if_match;       // ETag list or "*"
  std::optional<std::string> if_none_match;  // ETag list or "*"
  std::optional<double> if_modified_since;
  std::optional<double> if_unmodified_since;
};
// Evaluates conditions against an object, in RFC 7232's order as S3 does: If-Match /
// If-Unmodified-Since failures give PreconditionFailed (412); If-None-Match /
// If-Modified-Since ones give NotModified (304), or PreconditionFailed when
// not_modified_is_failure (CopyObject's x-amz-copy-source-if-* headers).
Status CheckConditions(const ObjectInfo& info, const Conditions& conditions,
                       bool not_modified_is_failure = false);

// A Range header: bytes=first-last, bytes=first-, or bytes=-suffix_length.
struct ByteRange {
  std::optional<uint64_t> first;
  std::optional<uint64_t> last;
  std::optional<uint64_t> suffix_length;
};
// Parses one "bytes=" range. nullopt for syntax S3 ignores (it then serves the whole
// object): other units, several ranges, garbage.
std::optional<ByteRange> ParseRange(std::string_view header);
// Resolves a range against an object size into [offset, offset+length); InvalidRange (416)
// when unsatisfiable.
struct ResolvedRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};
Result<ResolvedRange> ResolveRange(const ByteRange& range, uint64_t size);

// InvalidBucketName unless name follows S3's bucket naming rules.
Status ValidateBucketName(std::string_view name);
// KeyTooLongError beyond 1024 bytes; an empty key is InvalidArgument.
Status ValidateKey(std::string_view key);

// A byte range of one stored object, read with bounded buffers. The underlying file stays
// readable even if the object is overwritten or deleted meanwhile.
class ObjectReader : public http::BodyReader {
 public:
  virtual uint64_t offset() const = 0;  // first byte of the range within the object
  virtual uint64_t length() const = 0;  // bytes in the range
  // Streams the rest of the range to writer in chunks of at most 1 MiB.
  virtual Status WriteTo(http::BodyWriter& writer) = 0;
  // Where the rest of the range lies in an open file, for readers backed by one (so that
  // it can be sent with sendfile(2)); nullopt otherwise. The fd stays open, and the
  // region valid, as long as the reader lives.
  struct FileRegion {
    int fd;
    uint64_t offset;  // within the file
    uint64_t length;
  };
  virtual std::optional<FileRegion> file_region() const { return std::nullopt; }
};

struct PutOptions {
  ObjectMetadata metadata;
  Tags tags;
  // Content-MD5 header (base64): InvalidDigest when malformed, BadDigest on mismatch.
  std::optional<std::string> content_md5;
  // x-amz-checksum-algorithm / x-amz-sdk-checksum-algorithm: computed and stored.
  ChecksumAlgorithm checksum_algorithm = ChecksumAlgorithm::kNone;
  // x-amz-checksum-* headers: each present value is computed, verified and stored.
  Checksums expected;
  // Checksums that arrive as trailers after the body (aws-chunked): called after the body
  // has been read in full; the values are verified like `expected`.
  std::function<Result<Checksums>()> trailing_checksums;
  // Declared Content-Length; a body of another length fails with IncompleteBody.
  std::optional<uint64_t> content_length;
};

struct GetOptions {
  std::string version_id;  // empty: the latest version
  std::optional<ByteRange> range;
  Conditions conditions;
};

struct GetResult {
  ObjectInfo info;
  bool partial = false;  // a range was applied (206)
  std::unique_ptr<ObjectReader> body;
};

struct DeleteResult {
  std::string version_id;      // the version removed, or the new delete marker's id
  bool delete_marker = false;  // a marker was created or the removed version was one
};

struct DeleteObjectsEntry {
  std::string key;
  std::string version_id;
};
struct DeleteObjectsResult {
  std::string key;
  std::string version_id;  // as requested
  Status status;           // per-key error (the batch itself succeeds)
  DeleteResult result;
};

enum class Directive { kCopy, kReplace };

struct CopyOptions {
  std::string source_bucket;
  std::string source_key;
  std::string source_version_id;
  Conditions source_conditions;  // x-amz-copy-source-if-*
  Directive metadata_directive = Directive::kCopy;
  ObjectMetadata metadata;  // with kReplace
  Directive tagging_directive = Directive::kCopy;
  Tags tags;  // with kReplace
  ChecksumAlgorithm checksum_algorithm = ChecksumAlgorithm::kNone;
};

struct CopyResult {
  ObjectInfo info;  // the new object
  std::string source_version_id;
};

struct ListOptions {
  std::string prefix;
  std::string delimiter;
  // ListObjects' marker or ListObjectsV2's start-after: keys after it.
  std::string start_after;
  // ListObjectsV2's continuation-token (takes precedence over start_after).
  std::string continuation_token;
  int max_keys = 1000;
};

struct ListResult {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_marker;              // the last key or prefix returned (v1 NextMarker)
  std::string next_continuation_token;  // opaque (v2), set when truncated
};

struct ListVersionsOptions {
  std::string prefix;
  std::string delimiter;
  std::string key_marker;
  std::string version_id_marker;
  int max_keys = 1000;
};

struct ListVersionsResult {
  std::vector<ObjectInfo> versions;  // objects and delete markers, newest first per key
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_key_marker;
  std::string next_version_id_marker;
};

struct MultipartUpload {
  std::string upload_id;
  std::string bucket;
  std::string key;
  double initiated = 0;
  ObjectMetadata metadata;
  Tags tags;
  ChecksumAlgorithm checksum_algorithm = ChecksumAlgorithm::kNone;
};

struct CreateMultipartOptions {
  ObjectMetadata metadata;
  Tags tags;
  ChecksumAlgorithm checksum_algorithm = ChecksumAlgorithm::kNone;
};

struct PartInfo {
  int part_number = 0;
  std::string etag;  // quoted
  uint64_t size = 0;
  double last_modified = 0;
  Checksums checksums;
};

struct UploadPartOptions {
  std::optional<std::string> content_md5;
  Checksums expected;
  std::function<Result<Checksums>()> trailing_checksums;
  std::optional<uint64_t> content_length;
};

struct UploadPartCopyOptions {
  std::string source_bucket;
  std::string source_key;
  std::string source_version_id;
  Conditions source_conditions;
  std::optional<ByteRange> source_range;  // x-amz-copy-source-range (first-last only)
};

struct CompletedPart {
  int part_number = 0;
  std::string etag;  // quoted or not
  Checksums checksums;
};

struct ListPartsOptions {
  int part_number_marker = 0;
  int max_parts = 1000;
};

struct ListPartsResult {
  MultipartUpload upload;
  std::vector<PartInfo> parts;
  bool truncated = false;
  int next_part_number_marker = 0;
};

struct ListUploadsOptions {
  std::string prefix;
  std::string delimiter;
  std::string key_marker;
  std::string upload_id_marker;
  int max_uploads = 1000;
};

struct ListUploadsResult {
  std::vector<MultipartUpload> uploads;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_key_marker;
  std::string next_upload_id_marker;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // --- Buckets -------------------------------------------------------------------------
  // InvalidBucketName, BucketAlreadyOwnedByYou (same owner), BucketAlreadyExists.
  virtual Status CreateBucket(const std::string& bucket, const std::string& region,
                              const std::string& owner) = 0;
  virtual Result<BucketInfo> HeadBucket(const std::string& bucket) = 0;
  // BucketNotEmpty while objects, versions, delete markers or uploads remain.
  virtual Status DeleteBucket(const std::string& bucket) = 0;
  // Every bucket of owner (all buckets when owner is empty), by name.
  virtual Result<std::vector<BucketInfo>> ListBuckets(const std::string& owner) = 0;
  virtual Result<VersioningStatus> GetBucketVersioning(const std::string& bucket) = 0;
  // REQUIRES: status is kEnabled or kSuspended (a bucket never returns to unversioned).
  virtual Status PutBucketVersioning(const std::string& bucket, VersioningStatus status) = 0;
  virtual Result<Tags> GetBucketTags(const std::string& bucket) = 0;
  virtual Status PutBucketTags(const std::string& bucket, const Tags& tags) = 0;
  virtual Status DeleteBucketTags(const std::string& bucket) = 0;
  // The notification configuration document (opaque to the store; "" when none).
  virtual Result<std::string> GetBucketNotification(const std::string& bucket) = 0;
  virtual Status PutBucketNotification(const std::string& bucket, const std::string& document) = 0;

  // --- Objects -------------------------------------------------------------------------
  virtual Result<ObjectInfo> PutObject(const std::string& bucket, const std::string& key,
                                       http::BodyReader& body, const PutOptions& options) = 0;
  virtual Result<GetResult> GetObject(const std::string& bucket, const std::string& key,
                                      const GetOptions& options) = 0;
  virtual Result<ObjectInfo> HeadObject(const std::string& bucket, const std::string& key,
                                        const GetOptions& options) = 0;
  virtual Result<DeleteResult> DeleteObject(const std::string& bucket, const std::string& key,
                                            const std::string& version_id) = 0;
  virtual Result<std::vector<DeleteObjectsResult>> DeleteObjects(
      const std::string& bucket, const std::vector<DeleteObjectsEntry>& entries) = 0;
  virtual Result<CopyResult> CopyObject(const std::string& bucket, const std::string& key,
                                        const CopyOptions& options) = 0;
  virtual Result<ListResult> ListObjects(const std::string& bucket, const ListOptions& options) = 0;
  virtual Result<ListVersionsResult> ListObjectVersions(const std::string& bucket,
                                                        const ListVersionsOptions& options) = 0;
  virtual Result<Tags> GetObjectTags(const std::string& bucket, const std::string& key,
                                     const std::string& version_id) = 0;
  virtual Status PutObjectTags(const std::string& bucket, const std::string& key,
                               const std::string& version_id, const Tags& tags) = 0;

  // --- Multipart uploads ---------------------------------------------------------------
  virtual Result<MultipartUpload> CreateMultipartUpload(const std::string& bucket,
                                                        const std::string& key,
                                                        const CreateMultipartOptions& options) = 0;
  virtual Result<PartInfo> UploadPart(const std::string& bucket, const std::string& key,
                                      const std::string& upload_id, int part_number,
                                      http::BodyReader& body, const UploadPartOptions& options) = 0;
  virtual Result<PartInfo> UploadPartCopy(const std::string& bucket, const std::string& key,
                                          const std::string& upload_id, int part_number,
                                          const UploadPartCopyOptions& options) = 0;
  virtual Result<ListPartsResult> ListParts(const std::string& bucket, const std::string& key,
                                            const std::string& upload_id,
                                            const ListPartsOptions& options) = 0;
  virtual Result<ListUploadsResult> ListMultipartUploads(const std::string& bucket,
                                                         const ListUploadsOptions& options) = 0;
  virtual Status AbortMultipartUpload(const std::string& bucket, const std::string& key,
                                      const std::string& upload_id) = 0;
  virtual Result<ObjectInfo> CompleteMultipartUpload(const std::string& bucket,
                                                     const std::string& key,
                                                     const std::string& upload_id,
                                                     const std::vector<CompletedPart>& parts) = 0;
};

}  // namespace nimbus::objects
