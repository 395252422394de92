// The multipart upload operations.
#include <string>
#include <utility>
#include <vector>

#include "core/strings.h"
#include "services/s3/internal/handlers.h"
#include "services/s3/s3_request.h"
#include "services/s3/upload_body.h"

namespace nimbus::services::s3::internal {
namespace {

using objects::ObjectStore;

Status InvalidArgument(std::string msg) {
  return Status::Aws("InvalidArgument", 400, std::move(msg));
}

Result<int> PartNumber(const Value& in) {
  int64_t n = in.GetInt("PartNumber", 0);
  if (n < 1 || n > 10000) {
    return InvalidArgument("Part number must be an integer between 1 and 10000, inclusive");
  }
  return static_cast<int>(n);
}

Result<Value> CreateMultipartUpload(ObjectStore& store, const Value& in, aws::RequestContext& ctx) {
  objects::CreateMultipartOptions options;
  options.metadata = MetadataFromInput(in, ctx.http);
  if (const Value* tagging = in.Find("Tagging"); tagging && tagging->is_string()) {
    NIMBUS_ASSIGN_OR_RETURN(options.tags, ParseTaggingHeader(tagging->AsString()));
  }
  NIMBUS_ASSIGN_OR_RETURN(options.checksum_algorithm,
                          ChecksumAlgorithmFromInput(in, "ChecksumAlgorithm"));
  NIMBUS_ASSIGN_OR_RETURN(
      objects::MultipartUpload upload,
      store.CreateMultipartUpload(in.GetString("Bucket"), in.GetString("Key"), options));
  Value out = Value::Object(
      {{"Bucket", upload.bucket}, {"Key", upload.key}, {"UploadId", upload.upload_id}});
  if (upload.checksum_algorithm != objects::ChecksumAlgorithm::kNone) {
    out["ChecksumAlgorithm"] =
        std::string(objects::ChecksumAlgorithmName(upload.checksum_algorithm));
  }
  return out;
}

Result<Value> UploadPart(ObjectStore& store, const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(int part_number, PartNumber(in));
  objects::UploadPartOptions options;
  if (const Value* md5 = in.Find("ContentMD5"); md5 && md5->is_string()) {
    options.content_md5 = md5->AsString();
  }
  options.expected = ChecksumsFromInput(in);
  UploadBody body(*ctx.http);
  options.content_length = body.declared_length();
  options.trailing_checksums = body.trailing_checksums();
  NIMBUS_ASSIGN_OR_RETURN(
      objects::PartInfo part,
      store.UploadPart(in.GetString("Bucket"), in.GetString("Key"), in.GetString("UploadId"),
                       part_number, body.reader(), options));
  Value out = Value::Object({{"ETag", part.etag}});
  AddChecksums(part.checksums, &out);
  return out;
}

Result<Value> UploadPartCopy(ObjectStore& store, const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(int part_number, PartNumber(in));
  NIMBUS_ASSIGN_OR_RETURN(CopySource source, AuthorizedCopySource(in, ctx));
  objects::UploadPartCopyOptions options;
  options.source_bucket = source.bucket;
  options.source_key = source.key;
  options.source_version_id = source.version_id;
  options.source_conditions = ConditionsFromInput(in, "CopySource");
  if (const Value* range = in.Find("CopySourceRange"); range && range->is_string()) {
    NIMBUS_ASSIGN_OR_RETURN(options.source_range, ParseCopySourceRange(range->AsString()));
  }
  NIMBUS_ASSIGN_OR_RETURN(objects::PartInfo part,
                          store.UploadPartCopy(in.GetString("Bucket"), in.GetString("Key"),
                                               in.GetString("UploadId"), part_number, options));
  Value result =
      Value::Object({{"ETag", part.etag}, {"LastModified", Value::Timestamp(part.last_modified)}});
  AddChecksums(part.checksums, &result);
  Value out = Value::Object({{"CopyPartResult", std::move(result)}});
  if (HasVisibleVersion(source.version_id)) out["CopySourceVersionId"] = source.version_id;
  return out;
}

Result<Value> CompleteMultipartUpload(ObjectStore& store, const Value& in,
                                      aws::RequestContext& ctx) {
  std::vector<objects::CompletedPart> parts;
  if (const Value* upload = in.Find("MultipartUpload")) {
    if (const Value* list = upload->Find("Parts"); list && list->is_list()) {
      for (const Value& p : list->list()) {
        objects::CompletedPart part;
        part.part_number = static_cast<int>(p.GetInt("PartNumber"));
        part.etag = p.GetString("ETag");
        part.checksums = ChecksumsFromInput(p);
        parts.push_back(std::move(part));
      }
    }
  }
  const std::string bucket = in.GetString("Bucket");
  const std::string key = in.GetString("Key");
  NIMBUS_ASSIGN_OR_RETURN(
      objects::ObjectInfo info,
      store.CompleteMultipartUpload(bucket, key, in.GetString("UploadId"), parts));
  std::string host = ctx.http ? ctx.http->headers.Get("Host") : "";
  std::string location = "/" + bucket + "/" + UriEncode(key, true);
  if (!host.empty()) location = "http://" + host + location;
  Value out = Value::Object(
      {{"Location", location}, {"Bucket", bucket}, {"Key", key}, {"ETag", info.etag}});
  if (HasVisibleVersion(info.version_id)) out["VersionId"] = info.version_id;
  AddChecksums(info.checksums, &out);
  return out;
}

Result<Value> AbortMultipartUpload(ObjectStore& store, const Value& in, aws::RequestContext&) {
  NIMBUS_RETURN_IF_ERROR(store.AbortMultipartUpload(in.GetString("Bucket"), in.GetString("Key"),
                                                    in.GetString("UploadId")));
  return Value::MakeMap();
}

Result<Value> ListParts(ObjectStore& store, const Value& in, aws::RequestContext& ctx) {
  objects::ListPartsOptions options;
  options.part_number_marker = static_cast<int>(in.GetInt("PartNumberMarker", 0));
  int64_t max_parts = in.GetInt("MaxParts", 1000);
  if (max_parts < 0) return InvalidArgument("Argument max-parts must be >= 0");
  options.max_parts = static_cast<int>(std::min<int64_t>(max_parts, 1000));
  NIMBUS_ASSIGN_OR_RETURN(objects::ListPartsResult result,
                          store.ListParts(in.GetString("Bucket"), in.GetString("Key"),
                                          in.GetString("UploadId"), options));
  Value parts = Value::MakeList();
  for (const objects::PartInfo& p : result.parts) {
    Value v = Value::Object({{"PartNumber", p.part_number},
                             {"LastModified", Value::Timestamp(p.last_modified)},
                             {"ETag", p.etag},
                             {"Size", p.size}});
    AddChecksums(p.checksums, &v);
    parts.Append(std::move(v));
  }
  const Value owner = OwnerValue(ctx.account_id);
  Value out = Value::Object({{"Bucket", result.upload.bucket},
                             {"Key", result.upload.key},
                             {"UploadId", result.upload.upload_id},
                             {"PartNumberMarker", options.part_number_marker},
                             {"MaxParts", options.max_parts},
                             {"IsTruncated", result.truncated},
                             {"Initiator", owner},
                             {"Owner", owner},
                             {"StorageClass", result.upload.metadata.storage_class.empty()
                                                  ? "STANDARD"
                                                  : result.upload.metadata.storage_class}});
  if (result.truncated) out["NextPartNumberMarker"] = result.next_part_number_marker;
  if (parts.size() > 0) out["Parts"] = std::move(parts);
  if (result.upload.checksum_algorithm != objects::ChecksumAlgorithm::kNone) {
    out["ChecksumAlgorithm"] =
        std::string(objects::ChecksumAlgorithmName(result.upload.checksum_algorithm));
  }
  return out;
}

Result<Value> ListMultipartUploads(ObjectStore& store, const Value& in, aws::RequestContext& ctx) {
  NIMBUS_ASSIGN_OR_RETURN(bool url, UrlEncodingRequested(in));
  objects::ListUploadsOptions options;
  options.prefix = in.GetString("Prefix");
  options.delimiter = in.GetString("Delimiter");
  options.key_marker = in.GetString("KeyMarker");
  options.upload_id_marker = in.GetString("UploadIdMarker");
  int64_t max_uploads = in.GetInt("MaxUploads", 1000);
  if (max_uploads < 0) return InvalidArgument("Argument max-uploads must be >= 0");
  options.max_uploads = static_cast<int>(std::min<int64_t>(max_uploads, 1000));
  const std::string bucket = in.GetString("Bucket");
  NIMBUS_ASSIGN_OR_RETURN(objects::ListUploadsResult result,
                          store.ListMultipartUploads(bucket, options));
  const Value owner = OwnerValue(ctx.account_id);
  Value uploads = Value::MakeList();
  for (const objects::MultipartUpload& u : result.uploads) {
    Value v = Value::Object(
        {{"UploadId", u.upload_id},
         {"Key", ListingText(u.key, url)},
         {"Initiated", Value::Timestamp(u.initiated)},
         {"StorageClass", u.metadata.storage_class.empty() ? "STANDARD" : u.metadata.storage_class},
         {"Owner", owner},
         {"Initiator", owner}});
    if (u.checksum_algorithm != objects::ChecksumAlgorithm::kNone) {
      v["ChecksumAlgorithm"] = std::string(objects::ChecksumAlgorithmName(u.checksum_algorithm));
    }
    uploads.Append(std::move(v));
  }
  Value out = Value::Object({{"Bucket", bucket},
                             {"KeyMarker", ListingText(options.key_marker, url)},
                             {"UploadIdMarker", options.upload_id_marker},
                             {"Prefix", ListingText(options.prefix, url)},
                             {"MaxUploads", options.max_uploads},
                             {"IsTruncated", result.truncated}});
  if (!options.delimiter.empty()) out["Delimiter"] = ListingText(options.delimiter, url);
  if (result.truncated) {
    out["NextKeyMarker"] = ListingText(result.next_key_marker, url);
    out["NextUploadIdMarker"] = result.next_upload_id_marker;
  }
  if (uploads.size() > 0) out["Uploads"] = std::move(uploads);
  if (!result.common_prefixes.empty()) {
    Value prefixes = Value::MakeList();
    for (const std::string& p : result.common_prefixes) {
      prefixes.Append(Value::Object({{"Prefix", ListingText(p, url)}}));
    }
    out["CommonPrefixes"] = std::move(prefixes);
  }
  if (url) out["EncodingType"] = "url";
  return out;
}

}  // namespace

void RegisterMultipartHandlers(aws::ServiceRegistry& registry, objects::ObjectStore& store) {
  Add(registry, store, "CreateMultipartUpload", CreateMultipartUpload);
  Add(registry, store, "UploadPart", UploadPart);
  Add(registry, store, "UploadPartCopy", UploadPartCopy);
  Add(registry, store, "CompleteMultipartUpload", CompleteMultipartUpload);
  Add(registry, store, "AbortMultipartUpload", AbortMultipartUpload);
  Add(registry, store, "ListParts", ListParts);
  Add(registry, store, "ListMultipartUploads", ListMultipartUploads);
}

}  // namespace nimbus::services::s3::internal
