// The object-level operations: put, get, head, delete, batch delete, copy, the three
// listings and object tagging.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "services/s3/internal/handlers.h"
#include "services/s3/s3_request.h"
#include "services/s3/upload_body.h"

namespace nimbus::services::s3::internal {
namespace {

using objects::ObjectInfo;
using objects::ObjectStore;

Status InvalidArgument(std::string msg) {
  return Status::Aws("InvalidArgument", 400, std::move(msg));
}

std::optional<std::string> OptString(const Value& input, std::string_view member) {
  const Value* v = input.Find(member);
  if (!v || v->is_null()) return std::nullopt;
  return v->AsString();
}

Result<objects::Directive> DirectiveFromInput(const Value& input, std::string_view member) {
  std::string text = input.GetString(member, "COPY");
  if (text == "COPY") return objects::Directive::kCopy;
  if (text == "REPLACE") return objects::Directive::kReplace;
  return InvalidArgument("Unknown " + std::string(member) + " value: " + text);
}

Result<int> MaxKeys(const Value& input, std::string_view member) {
  int64_t n = input.GetInt(member, 1000);
  if (n < 0) return InvalidArgument("Argument " + std::string(member) + " must be >= 0");
  return static_cast<int>(std::min<int64_t>(n, 1000));
}

// The first checksum algorithm an object carries, as listings report it.
Value ChecksumAlgorithmList(const objects::Checksums& sums) {
  Value list = Value::MakeList();
  for (objects::ChecksumAlgorithm a :
       {objects::ChecksumAlgorithm::kCrc32, objects::ChecksumAlgorithm::kCrc32c,
        objects::ChecksumAlgorithm::kSha1, objects::ChecksumAlgorithm::kSha256}) {
    if (!sums.Of(a).empty()) {
      list.Append(std::string(objects::ChecksumAlgorithmName(a)));
      break;
    }
  }
  return list;
}

std::string StorageClass(const ObjectInfo& info) {
  return info.metadata.storage_class.empty() ? "STANDARD" : info.metadata.storage_class;
}

Value CommonPrefixes(const std::vector<std::string>& prefixes, bool url) {
  Value list = Value::MakeList();
  for (const std::string& p : prefixes) {
    list.Append(Value::Object({{"Prefix", ListingText(p, url)}}));
  }
  return list;
}

// --- Put / Get / Head / Delete ------------------------------------------------------------

Result<Value> PutObject(ObjectStore& store, const Value& in, aws::RequestContext& ctx) {
  objects::PutOptions options;
  options.metadata = MetadataFromInput(in, ctx.http);
  if (auto tagging = OptString(in, "Tagging")) {
    NIMBUS_ASSIGN_OR_RETURN(options.tags, ParseTaggingHeader(*tagging));
  }
  options.content_md5 = OptString(in, "ContentMD5");
  NIMBUS_ASSIGN_OR_RETURN(options.checksum_algorithm,
                          ChecksumAlgorithmFromInput(in, "ChecksumAlgorithm"));
  options.expected = ChecksumsFromInput(in);
  UploadBody body(*ctx.http);
  options.content_length = body.declared_length();
  options.trailing_checksums = body.trailing_checksums();
  NIMBUS_ASSIGN_OR_RETURN(
      ObjectInfo info,
      store.PutObject(in.GetString("Bucket"), in.GetString("Key"), body.reader(), options));
  Value out = Value::Object({{"ETag", info.etag}});
  if (HasVisibleVersion(info.version_id)) out["VersionId"] = info.version_id;
  AddChecksums(info.checksums, &out);
  return out;
}

bool ChecksumModeEnabled(const Value& in) { return in.GetString("ChecksumMode") == "ENABLED"; }

Status CheckPartNumber(const Value& in, const ObjectInfo& info) {
  const Value* part = in.Find("PartNumber");
  if (!part || part->is_null()) return Status::Ok();
  if (info.parts_count > 0) {
    return Status::NotImplemented("Reading one part of a multipart object is not supported yet");
  }
  if (part->AsInt() != 1) {
    return Status::Aws("InvalidPartNumber", 416, "The requested partnumber is not satisfiable");
  }
  return Status::Ok();
}

Result<Value> GetObject(ObjectStore& store, const Value& in, aws::RequestContext& ctx) {
  objects::GetOptions options;
  options.version_id = in.GetString("VersionId");
  if (auto range = OptString(in, "Range")) options.range = objects::ParseRange(*range);
  options.conditions = ConditionsFromInput(in);
  NIMBUS_ASSIGN_OR_RETURN(objects::GetResult got,
                          store.GetObject(in.GetString("Bucket"), in.GetString("Key"), options));
  NIMBUS_RETURN_IF_ERROR(CheckPartNumber(in, got.info));
  Value out = ObjectHeaders(got.info, ChecksumModeEnabled(in) && !got.partial);
  ApplyResponseOverrides(in, &out);
  const uint64_t length = got.body->length();
  out["ContentLength"] = length;
  if (got.partial) {
    out["ContentRange"] = ContentRange(got.body->offset(), length, got.info.size);
    ctx.response_status = 206;
  }
  std::shared_ptr<objects::ObjectReader> reader = std::move(got.body);
  if (std::optional<objects::ObjectReader::FileRegion> region = reader->file_region()) {
    ctx.response_file = http::FileBody{region->fd, region->offset, region->length, reader};
    return out;
  }
  ctx.response_stream = [reader](http::BodyWriter& writer) { return reader->WriteTo(writer); };
  ctx.response_stream_length = length;
  return out;
}

Result<Value> HeadObject(ObjectStore& store, const Value& in, aws::RequestContext& ctx) {
  objects::GetOptions options;
  options.version_id = in.GetString("VersionId");
  options.conditions = ConditionsFromInput(in);
  NIMBUS_ASSIGN_OR_RETURN(ObjectInfo info,
                          store.HeadObject(in.GetString("Bucket"), in.GetString("Key"), options));
  NIMBUS_RETURN_IF_ERROR(CheckPartNumber(in, info));
  std::optional<objects::ByteRange> range;
  if (auto text = OptString(in, "Range")) range = objects::ParseRange(*text);
  Value out = ObjectHeaders(info, ChecksumModeEnabled(in) && !range);
  if (range) {
    NIMBUS_ASSIGN_OR_RETURN(objects::ResolvedRange r, objects::ResolveRange(*range, info.size));
    out["ContentLength"] = r.length;
    ctx.response_headers.Set("Content-Range", ContentRange(r.offset, r.length, info.size));
    ctx.response_status = 206;
  }
  return out;
}

Result<Value> DeleteObject(ObjectStore& store, const Value& in, aws::RequestContext&) {
  NIMBUS_ASSIGN_OR_RETURN(
      objects::DeleteResult result,
      store.DeleteObject(in.GetString("Bucket"), in.GetString("Key"), in.GetString("VersionId")));
  Value out = Value::MakeMap();
  if (result.delete_marker) out["DeleteMarker"] = true;
  if (HasVisibleVersion(result.version_id)) out["VersionId"] = result.version_id;
  return out;
}

Result<Value> DeleteObjects(ObjectStore& store, const Value& in, aws::RequestContext&) {
  const Value* del = in.Find("Delete");
  const Value* objects_list = del ? del->Find("Objects") : nullptr;
  if (!objects_list || !objects_list->is_list() || objects_list->size() == 0) {
    return Status::Aws("MalformedXML", 400,
                       "The XML you provided was not well-formed or did not validate against our "
                       "published schema");
  }
  if (objects_list->size() > 1000) {
    return Status::Aws("MalformedXML", 400, "The request may not name more than 1000 keys");
  }
  const bool quiet = del->GetBool("Quiet");
  std::vector<objects::DeleteObjectsEntry> entries;
  for (const Value& o : objects_list->list()) {
    entries.push_back({o.GetString("Key"), o.GetString("VersionId")});
  }
  NIMBUS_ASSIGN_OR_RETURN(std::vector<objects::DeleteObjectsResult> results,
                          store.DeleteObjects(in.GetString("Bucket"), entries));
  Value deleted = Value::MakeList();
  Value errors = Value::MakeList();
  for (const objects::DeleteObjectsResult& r : results) {
    if (!r.status.ok()) {
      Value e =
          Value::Object({{"Key", r.key},
                         {"Code", r.status.code().empty() ? "InternalError" : r.status.code()},
                         {"Message", r.status.message()}});
      if (!r.version_id.empty()) e["VersionId"] = r.version_id;
      errors.Append(std::move(e));
      continue;
    }
    if (quiet) continue;
    Value d = Value::Object({{"Key", r.key}});
    if (!r.version_id.empty()) d["VersionId"] = r.version_id;
    if (r.result.delete_marker) {
      d["DeleteMarker"] = true;
      if (HasVisibleVersion(r.result.version_id)) {
        d["DeleteMarkerVersionId"] = r.result.version_id;
      }
    }
    deleted.Append(std::move(d));
  }
  Value out = Value::MakeMap();
  if (deleted.size() > 0) out["Deleted"] = std::move(deleted);
  if (errors.size() > 0) out["Errors"] = std::move(errors);
  return out;
}

// --- Copy -----------------------------------------------------------------------------------

Result<Value> CopyObject(ObjectStore& store, const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(CopySource source, AuthorizedCopySource(in, ctx));
  objects::CopyOptions options;
  options.source_bucket = source.bucket;
  options.source_key = source.key;
  options.source_version_id = source.version_id;
  options.source_conditions = ConditionsFromInput(in, "CopySource");
  NIMBUS_ASSIGN_OR_RETURN(options.metadata_directive, DirectiveFromInput(in, "MetadataDirective"));
  if (options.metadata_directive == objects::Directive::kReplace) {
    options.metadata = MetadataFromInput(in, ctx.http);
  }
  NIMBUS_ASSIGN_OR_RETURN(options.tagging_directive, DirectiveFromInput(in, "TaggingDirective"));
  if (options.tagging_directive == objects::Directive::kReplace) {
    NIMBUS_ASSIGN_OR_RETURN(options.tags, ParseTaggingHeader(in.GetString("Tagging")));
  }
  NIMBUS_ASSIGN_OR_RETURN(options.checksum_algorithm,
                          ChecksumAlgorithmFromInput(in, "ChecksumAlgorithm"));
  NIMBUS_ASSIGN_OR_RETURN(objects::CopyResult copied,
                          store.CopyObject(in.GetString("Bucket"), in.GetString("Key"), options));
  Value result = Value::Object(
      {{"ETag", copied.info.etag}, {"LastModified", Value::Timestamp(copied.info.last_modified)}});
  AddChecksums(copied.info.checksums, &result);
  Value out = Value::Object({{"CopyObjectResult", std::move(result)}});
  if (HasVisibleVersion(copied.info.version_id)) out["VersionId"] = copied.info.version_id;
  if (HasVisibleVersion(copied.source_version_id)) {
    out["CopySourceVersionId"] = copied.source_version_id;
  }
  return out;
}

// --- Listings -----------------------------------------------------------------------------

Value ListedObject(const ObjectInfo& info, bool url, const Value* owner) {
  Value o = Value::Object({{"Key", ListingText(info.key, url)},
                           {"LastModified", Value::Timestamp(info.last_modified)},
                           {"ETag", info.etag},
                           {"Size", info.size},
                           {"StorageClass", StorageClass(info)}});
  Value algorithms = ChecksumAlgorithmList(info.checksums);
  if (algorithms.size() > 0) o["ChecksumAlgorithm"] = std::move(algorithms);
  if (owner) o["Owner"] = *owner;
  return o;
}

Result<Value> ListObjects(ObjectStore& store, const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(bool url, UrlEncodingRequested(in));
  objects::ListOptions options;
  options.prefix = in.GetString("Prefix");
  options.delimiter = in.GetString("Delimiter");
  options.start_after = in.GetString("Marker");
  NIMBUS_ASSIGN_OR_RETURN(options.max_keys, MaxKeys(in, "MaxKeys"));
  const std::string bucket = in.GetString("Bucket");
  NIMBUS_ASSIGN_OR_RETURN(objects::ListResult result, store.ListObjects(bucket, options));
  const Value owner = OwnerValue(ctx.account_id);
  Value contents = Value::MakeList();
  for (const ObjectInfo& info : result.objects) contents.Append(ListedObject(info, url, &owner));
  Value out = Value::Object({{"Name", bucket},
                             {"Prefix", options.prefix},
                             {"Marker", ListingText(options.start_after, url)},
                             {"MaxKeys", options.max_keys},
                             {"IsTruncated", result.truncated}});
  if (!options.delimiter.empty()) out["Delimiter"] = ListingText(options.delimiter, url);
  if (result.truncated) out["NextMarker"] = ListingText(result.next_marker, url);
  if (contents.size() > 0) out["Contents"] = std::move(contents);
  if (!result.common_prefixes.empty()) {
    out["CommonPrefixes"] = CommonPrefixes(result.common_prefixes, url);
  }
  if (url) out["EncodingType"] = "url";
  return out;
}

Result<Value> ListObjectsV2(ObjectStore& store, const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(bool url, UrlEncodingRequested(in));
  objects::ListOptions options;
  options.prefix = in.GetString("Prefix");
  options.delimiter = in.GetString("Delimiter");
  options.start_after = in.GetString("StartAfter");
  options.continuation_token = in.GetString("ContinuationToken");
  NIMBUS_ASSIGN_OR_RETURN(options.max_keys, MaxKeys(in, "MaxKeys"));
  const std::string bucket = in.GetString("Bucket");
  NIMBUS_ASSIGN_OR_RETURN(objects::ListResult result, store.ListObjects(bucket, options));
  const Value owner = OwnerValue(ctx.account_id);
  const Value* owner_if_fetched = in.GetBool("FetchOwner") ? &owner : nullptr;
  Value contents = Value::MakeList();
  for (const ObjectInfo& info : result.objects) {
    contents.Append(ListedObject(info, url, owner_if_fetched));
  }
  Value out = Value::Object(
      {{"Name", bucket},
       {"Prefix", ListingText(options.prefix, url)},
       {"MaxKeys", options.max_keys},
       {"KeyCount", static_cast<uint64_t>(result.objects.size() + result.common_prefixes.size())},
       {"IsTruncated", result.truncated}});
  if (!options.delimiter.empty()) out["Delimiter"] = ListingText(options.delimiter, url);
  if (!options.start_after.empty()) out["StartAfter"] = ListingText(options.start_after, url);
  if (!options.continuation_token.empty()) out["ContinuationToken"] = options.continuation_token;
  if (result.truncated) out["NextContinuationToken"] = result.next_continuation_token;
  if (contents.size() > 0) out["Contents"] = std::move(contents);
  if (!result.common_prefixes.empty()) {
    out["CommonPrefixes"] = CommonPrefixes(result.common_prefixes, url);
  }
  if (url) out["EncodingType"] = "url";
  return out;
}

Result<Value> ListObjectVersions(ObjectStore& store, const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(bool url, UrlEncodingRequested(in));
  objects::ListVersionsOptions options;
  options.prefix = in.GetString("Prefix");
  options.delimiter = in.GetString("Delimiter");
  options.key_marker = in.GetString("KeyMarker");
  options.version_id_marker = in.GetString("VersionIdMarker");
  NIMBUS_ASSIGN_OR_RETURN(options.max_keys, MaxKeys(in, "MaxKeys"));
  const std::string bucket = in.GetString("Bucket");
  NIMBUS_ASSIGN_OR_RETURN(objects::ListVersionsResult result,
                          store.ListObjectVersions(bucket, options));
  const Value owner = OwnerValue(ctx.account_id);
  Value versions = Value::MakeList();
  Value markers = Value::MakeList();
  for (const ObjectInfo& info : result.versions) {
    Value v = Value::Object({{"Key", ListingText(info.key, url)},
                             {"VersionId", info.version_id},
                             {"IsLatest", info.is_latest},
                             {"LastModified", Value::Timestamp(info.last_modified)},
                             {"Owner", owner}});
    if (info.delete_marker) {
      markers.Append(std::move(v));
      continue;
    }
    v["ETag"] = info.etag;
    v["Size"] = info.size;
    v["StorageClass"] = StorageClass(info);
    Value algorithms = ChecksumAlgorithmList(info.checksums);
    if (algorithms.size() > 0) v["ChecksumAlgorithm"] = std::move(algorithms);
    versions.Append(std::move(v));
  }
  Value out = Value::Object({{"Name", bucket},
                             {"Prefix", ListingText(options.prefix, url)},
                             {"KeyMarker", ListingText(options.key_marker, url)},
                             {"VersionIdMarker", options.version_id_marker},
                             {"MaxKeys", options.max_keys},
                             {"IsTruncated", result.truncated}});
  if (!options.delimiter.empty()) out["Delimiter"] = ListingText(options.delimiter, url);
  if (result.truncated) {
    out["NextKeyMarker"] = ListingText(result.next_key_marker, url);
    out["NextVersionIdMarker"] = result.next_version_id_marker;
  }
  if (versions.size() > 0) out["Versions"] = std::move(versions);
  if (markers.size() > 0) out["DeleteMarkers"] = std::move(markers);
  if (!result.common_prefixes.empty()) {
    out["CommonPrefixes"] = CommonPrefixes(result.common_prefixes, url);
  }
  if (url) out["EncodingType"] = "url";
  return out;
}

// --- Tagging --------------------------------------------------------------------------------

Value WithVersion(const Value& in) {
  Value out = Value::MakeMap();
  std::string version = in.GetString("VersionId");
  if (HasVisibleVersion(version)) out["VersionId"] = version;
  return out;
}

Result<Value> GetObjectTagging(ObjectStore& store, const Value& in, aws::RequestContext&) {
  NIMBUS_ASSIGN_OR_RETURN(
      objects::Tags tags,
      store.GetObjectTags(in.GetString("Bucket"), in.GetString("Key"), in.GetString("VersionId")));
  Value out = WithVersion(in);
  out["TagSet"] = TagSetValue(tags);
  return out;
}

Result<Value> PutObjectTagging(ObjectStore& store, const Value& in, aws::RequestContext&) {
  const Value* tagging = in.Find("Tagging");
  if (!tagging) {
    return Status::Aws("MalformedXML", 400,
                       "The XML you provided was not well-formed or did not validate against our "
                       "published schema");
  }
  NIMBUS_ASSIGN_OR_RETURN(objects::Tags tags, TagsFromTagSet(tagging->Find("TagSet")));
  NIMBUS_RETURN_IF_ERROR(store.PutObjectTags(in.GetString("Bucket"), in.GetString("Key"),
                                             in.GetString("VersionId"), tags));
  return WithVersion(in);
}

Result<Value> DeleteObjectTagging(ObjectStore& store, const Value& in, aws::RequestContext&) {
  NIMBUS_RETURN_IF_ERROR(store.PutObjectTags(in.GetString("Bucket"), in.GetString("Key"),
                                             in.GetString("VersionId"), objects::Tags{}));
  return WithVersion(in);
}

}  // namespace

void RegisterObjectHandlers(aws::ServiceRegistry& registry, objects::ObjectStore& store) {
  Add(registry, store, "PutObject", PutObject);
  Add(registry, store, "GetObject", GetObject);
  Add(registry, store, "HeadObject", HeadObject);
  Add(registry, store, "DeleteObject", DeleteObject);
  Add(registry, store, "DeleteObjects", DeleteObjects);
  Add(registry, store, "CopyObject", CopyObject);
  Add(registry, store, "ListObjects", ListObjects);
  Add(registry, store, "ListObjectsV2", ListObjectsV2);
  Add(registry, store, "ListObjectVersions", ListObjectVersions);
  Add(registry, store, "GetObjectTagging", GetObjectTagging);
  Add(registry, store, "PutObjectTagging", PutObjectTagging);
  Add(registry, store, "DeleteObjectTagging", DeleteObjectTagging);
}

}  // namespace nimbus::services::s3::internal
