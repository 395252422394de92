#include "services/s3/s3_request.h"

#include <utility>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/strings.h"

namespace nimbus::services::s3 {
namespace {

using objects::ChecksumAlgorithm;

Status InvalidArgument(std::string msg) {
  return Status::Aws("InvalidArgument", 400, std::move(msg));
}

const Value* Present(const Value& input, std::string_view member) {
  const Value* v = input.Find(member);
  return v && !v->is_null() ? v : nullptr;
}

void SetIfNotEmpty(Value* out, std::string_view member, const std::string& text) {
  if (!text.empty()) (*out)[member] = text;
}

constexpr std::pair<ChecksumAlgorithm, std::string_view> kChecksumMembers[] = {
    {ChecksumAlgorithm::kCrc32, "ChecksumCRC32"},
    {ChecksumAlgorithm::kCrc32c, "ChecksumCRC32C"},
    {ChecksumAlgorithm::kSha1, "ChecksumSHA1"},
    {ChecksumAlgorithm::kSha256, "ChecksumSHA256"},
};

// Removes the aws-chunked coding from a Content-Encoding list.
std::string WithoutAwsChunked(std::string_view encoding) {
  std::string out;
  for (const std::string& item : Split(encoding, ',')) {
    std::string_view coding = Trim(item);
    if (coding.empty() || EqualsIgnoreCase(coding, "aws-chunked")) continue;
    if (!out.empty()) out += ",";
    out += coding;
  }
  return out;
}

}  // namespace

Result<CopySource> ParseCopySource(std::string_view header) {
  std::string_view text = Trim(header);
  std::string_view query;
  if (size_t q = text.find('?'); q != std::string_view::npos) {
    query = text.substr(q + 1);
    text = text.substr(0, q);
  }
  std::string path = UriDecode(text);
  if (!path.empty() && path.front() == '/') path.erase(0, 1);
  size_t slash = path.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == path.size()) {
    return InvalidArgument(
        "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
  }
  CopySource source;
  source.bucket = path.substr(0, slash);
  source.key = path.substr(slash + 1);
  for (const std::string& param : Split(query, '&')) {
    size_t eq = param.find('=');
    std::string name = UriDecode(std::string_view(param).substr(0, eq));
    if (name != "versionId") continue;
    source.version_id = eq == std::string::npos ? "" : UriDecode(param.substr(eq + 1));
    if (source.version_id.empty()) return InvalidArgument("Version id cannot be the empty string");
  }
  return source;
}

Result<objects::ByteRange> ParseCopySourceRange(std::string_view header) {
  std::optional<objects::ByteRange> range = objects::ParseRange(header);
  if (!range || !range->first || !range->last) {
    return InvalidArgument(
        "The x-amz-copy-source-range value must be of the form bytes=first-last where first "
        "and last are the zero-based offsets of the first and last bytes to copy");
  }
  return *range;
}

objects::Conditions ConditionsFromInput(const Value& input, std::string_view prefix) {
  const std::string p(prefix);
  objects::Conditions c;
  if (const Value* v = Present(input, p + "IfMatch")) c.if_match = v->AsString();
  if (const Value* v = Present(input, p + "IfNoneMatch")) c.if_none_match = v->AsString();
  if (const Value* v = Present(input, p + "IfModifiedSince")) c.if_modified_since = v->AsDouble();
  if (const Value* v = Present(input, p + "IfUnmodifiedSince")) {
    c.if_unmodified_since = v->AsDouble();
  }
  return c;
}

Result<objects::Tags> ParseTaggingHeader(std::string_view header) {
  objects::Tags tags;
  for (const std::string& pair : Split(header, '&')) {
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string key = UriDecode(std::string_view(pair).substr(0, eq), true);
    std::string value =
        eq == std::string::npos ? "" : UriDecode(std::string_view(pair).substr(eq + 1), true);
    if (key.empty())
      return InvalidArgument(
          "The header 'x-amz-tagging' shall be encoded as UTF-8 "
          "then URLEncoded URL query parameters without tag name "
          "duplicates.");
    if (!tags.emplace(std::move(key), std::move(value)).second) {
      return InvalidArgument(
          "The header 'x-amz-tagging' shall be encoded as UTF-8 then "
          "URLEncoded URL query parameters without tag name duplicates.");
    }
  }
  return tags;
}

Result<objects::Tags> TagsFromTagSet(const Value* tag_set) {
  objects::Tags tags;
  if (!tag_set || !tag_set->is_list()) return tags;
  for (const Value& tag : tag_set->list()) {
    std::string key = tag.GetString("Key");
    if (!tags.emplace(key, tag.GetString("Value")).second) {
      return Status::Aws("InvalidTag", 400, "Cannot provide multiple Tags with the same key");
    }
  }
  return tags;
}

Value TagSetValue(const objects::Tags& tags) {
  Value list = Value::MakeList();
  for (const auto& [key, value] : tags) {
    list.Append(Value::Object({{"Key", key}, {"Value", value}}));
  }
  return list;
}

objects::ObjectMetadata MetadataFromInput(const Value& input, const http::Request* request) {
  objects::ObjectMetadata m;
  m.content_type = input.GetString("ContentType");
  m.content_encoding = WithoutAwsChunked(input.GetString("ContentEncoding"));
  m.content_disposition = input.GetString("ContentDisposition");
  m.content_language = input.GetString("ContentLanguage");
  m.cache_control = input.GetString("CacheControl");
  if (request && request->headers.Has("Expires")) {
    m.expires = request->headers.Get("Expires");
  } else if (const Value* v = Present(input, "Expires")) {
    m.expires = FormatHttpDate(v->AsDouble());
  }
  m.storage_class = input.GetString("StorageClass");
  if (m.storage_class == "STANDARD") m.storage_class.clear();
  if (const Value* meta = Present(input, "Metadata"); meta && meta->is_map()) {
    for (const auto& [name, value] : meta->map()) m.user[ToLower(name)] = value.AsString();
  }
  return m;
}

objects::Checksums ChecksumsFromInput(const Value& input) {
  objects::Checksums sums;
  for (const auto& [algorithm, member] : kChecksumMembers) {
    sums.Of(algorithm) = input.GetString(member);
  }
  return sums;
}

void AddChecksums(const objects::Checksums& checksums, Value* out) {
  for (const auto& [algorithm, member] : kChecksumMembers) {
    SetIfNotEmpty(out, member, checksums.Of(algorithm));
  }
}

Result<objects::ChecksumAlgorithm> ChecksumAlgorithmFromInput(const Value& input,
                                                              std::string_view member) {
  std::string name = input.GetString(member);
  if (name.empty()) return ChecksumAlgorithm::kNone;
  std::optional<ChecksumAlgorithm> algorithm = objects::ParseChecksumAlgorithm(name);
  if (!algorithm) {
    return Status::Aws("InvalidRequest", 400, "Checksum algorithm " + name + " is not supported");
  }
  return *algorithm;
}

Value ObjectHeaders(const objects::ObjectInfo& info, bool with_checksums) {
  const objects::ObjectMetadata& m = info.metadata;
  Value out = Value::MakeMap();
  out["ETag"] = info.etag;
  out["LastModified"] = Value::Timestamp(info.last_modified);
  out["ContentLength"] = info.size;
  out["AcceptRanges"] = "bytes";
  out["ContentType"] = m.content_type.empty() ? "binary/octet-stream" : m.content_type;
  SetIfNotEmpty(&out, "ContentEncoding", m.content_encoding);
  SetIfNotEmpty(&out, "ContentDisposition", m.content_disposition);
  SetIfNotEmpty(&out, "ContentLanguage", m.content_language);
  SetIfNotEmpty(&out, "CacheControl", m.cache_control);
  // The output member is a timestamp; a string is written verbatim, as S3 returns it.
  SetIfNotEmpty(&out, "Expires", m.expires);
  SetIfNotEmpty(&out, "StorageClass", m.storage_class);
  if (!m.user.empty()) {
    Value meta = Value::MakeMap();
    for (const auto& [name, value] : m.user) meta[name] = value;
    out["Metadata"] = std::move(meta);
  }
  if (HasVisibleVersion(info.version_id)) out["VersionId"] = info.version_id;
  if (info.tag_count > 0) out["TagCount"] = static_cast<uint64_t>(info.tag_count);
  if (with_checksums) AddChecksums(info.checksums, &out);
  return out;
}

void ApplyResponseOverrides(const Value& input, Value* out) {
  constexpr std::pair<std::string_view, std::string_view> kOverrides[] = {
      {"ResponseContentType", "ContentType"},
      {"ResponseContentLanguage", "ContentLanguage"},
      {"ResponseCacheControl", "CacheControl"},
      {"ResponseContentDisposition", "ContentDisposition"},
      {"ResponseContentEncoding", "ContentEncoding"},
  };
  for (const auto& [from, to] : kOverrides) {
    if (const Value* v = Present(input, from)) (*out)[to] = v->AsString();
  }
  if (const Value* v = Present(input, "ResponseExpires")) {
    (*out)["Expires"] = FormatHttpDate(v->AsDouble());
  }
}

std::string ContentRange(uint64_t offset, uint64_t length, uint64_t size) {
  return "bytes " + std::to_string(offset) + "-" + std::to_string(offset + length - 1) + "/" +
         std::to_string(size);
}

bool HasVisibleVersion(std::string_view version_id) {
  return !version_id.empty() && version_id != "null";
}

std::string ListingText(std::string_view text, bool url_encoded) {
  return url_encoded ? UriEncode(text, true) : std::string(text);
}

Result<bool> UrlEncodingRequested(const Value& input) {
  const Value* v = Present(input, "EncodingType");
  if (!v) return false;
  if (v->AsString() == "url") return true;
  return InvalidArgument("Invalid Encoding Method specified in Request");
}

Value OwnerValue(std::string_view account_id) {
  return Value::Object(
      {{"ID", HexEncode(Sha256(account_id))}, {"DisplayName", std::string(account_id)}});
}

}  // namespace nimbus::services::s3
