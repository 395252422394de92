// The backend-independent parts of the ObjectStore contract: S3's naming rules, ranges and
// conditional requests.
#include "objects/object_store.h"

#include <cctype>

#include "core/strings.h"

namespace nimbus::objects {
namespace {

std::string_view Unquote(std::string_view etag) {
  etag = Trim(etag);
  if (StartsWith(etag, "W/")) etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

// True when the comma-separated ETag list names etag (or is "*").
bool EtagListMatches(std::string_view list, std::string_view etag) {
  for (const std::string& item : Split(list, ',')) {
    std::string_view candidate = Trim(item);
    if (candidate == "*" || Unquote(candidate) == Unquote(etag)) return true;
  }
  return false;
}

std::optional<uint64_t> ParseUnsigned(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

Status PreconditionFailed() {
  return Status::Aws("PreconditionFailed", 412,
                     "At least one of the pre-conditions you specified did not hold");
}

}  // namespace

std::string_view VersioningStatusName(VersioningStatus status) {
  switch (status) {
    case VersioningStatus::kEnabled:
      return "Enabled";
    case VersioningStatus::kSuspended:
      return "Suspended";
    case VersioningStatus::kUnversioned:
      break;
  }
  return "";
}

std::string& Checksums::Of(ChecksumAlgorithm algorithm) {
  return const_cast<std::string&>(static_cast<const Checksums*>(this)->Of(algorithm));
}

const std::string& Checksums::Of(ChecksumAlgorithm algorithm) const {
  static const std::string kNone;
  switch (algorithm) {
    case ChecksumAlgorithm::kCrc32:
      return crc32;
    case ChecksumAlgorithm::kCrc32c:
      return crc32c;
    case ChecksumAlgorithm::kSha1:
      return sha1;
    case ChecksumAlgorithm::kSha256:
      return sha256;
    case ChecksumAlgorithm::kNone:
      break;
  }
  return kNone;
}

Status CheckConditions(const ObjectInfo& info, const Conditions& c, bool not_modified_is_failure) {
  // Timestamps have one-second resolution on the wire (HTTP dates).
  const double modified = static_cast<double>(static_cast<int64_t>(info.last_modified));
  if (c.if_match) {
    if (!EtagListMatches(*c.if_match, info.etag)) return PreconditionFailed();
  } else if (c.if_unmodified_since && modified > *c.if_unmodified_since) {
    return PreconditionFailed();
  }
  bool not_modified = false;
  if (c.if_none_match) {
    not_modified = EtagListMatches(*c.if_none_match, info.etag);
  } else if (c.if_modified_since) {
    not_modified = modified <= *c.if_modified_since;
  }
  if (not_modified) {
    if (not_modified_is_failure) return PreconditionFailed();
    return Status::Aws("NotModified", 304, "Not Modified");
  }
  return Status::Ok();
}

std::optional<ByteRange> ParseRange(std::string_view header) {
  header = Trim(header);
  if (!StartsWith(header, "bytes=")) return std::nullopt;
  std::string_view spec = Trim(header.substr(6));
  if (spec.find(',') != std::string_view::npos) return std::nullopt;
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string_view a = Trim(spec.substr(0, dash));
  std::string_view b = Trim(spec.substr(dash + 1));
  ByteRange range;
  if (a.empty()) {
    range.suffix_length = ParseUnsigned(b);
    if (!range.suffix_length) return std::nullopt;
    return range;
  }
  range.first = ParseUnsigned(a);
  if (!range.first) return std::nullopt;
  if (!b.empty()) {
    range.last = ParseUnsigned(b);
    if (!range.last || *range.last < *range.first) return std::nullopt;
  }
  return range;
}

Result<ResolvedRange> ResolveRange(const ByteRange& range, uint64_t size) {
  auto invalid = [] {
    return Status::Aws("InvalidRange", 416, "The requested range is not satisfiable");
  };
  if (range.suffix_length) {
    if (*range.suffix_length == 0 || size == 0) return invalid();
    uint64_t n = std::min(*range.suffix_length, size);
    return ResolvedRange{size - n, n};
  }
  uint64_t first = range.first.value_or(0);
  if (first >= size) return invalid();
  uint64_t last = range.last ? std::min(*range.last, size - 1) : size - 1;
  if (last < first) return invalid();
  return ResolvedRange{first, last - first + 1};
}

Status ValidateBucketName(std::string_view name) {
  auto invalid = [] {
    return Status::Aws("InvalidBucketName", 400, "The specified bucket is not valid.");
  };
  if (name.size() < 3 || name.size() > 63) return invalid();
  for (char c : name) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-')) {
      return invalid();
    }
  }
  auto alnum = [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c));
  };
  if (!alnum(name.front()) || !alnum(name.back())) return invalid();
  if (name.find("..") != std::string_view::npos || name.find(".-") != std::string_view::npos ||
      name.find("-.") != std::string_view::npos) {
    return invalid();
  }
  if (StartsWith(name, "xn--") || StartsWith(name, "sthree-") || EndsWith(name, "-s3alias") ||
      EndsWith(name, "--ol-s3")) {
    return invalid();
  }
  // No IPv4 address form (four dot-separated numbers).
  std::vector<std::string> labels = Split(name, '.');
  if (labels.size() == 4) {
    bool all_numeric = true;
    for (const std::string& label : labels) {
      if (label.empty() || label.size() > 3 || !ParseUnsigned(label)) all_numeric = false;
    }
    if (all_numeric) return invalid();
  }
  return Status::Ok();
}

Status ValidateKey(std::string_view key) {
  if (key.empty()) {
    return Status::Aws("InvalidArgument", 400, "Object key must not be empty");
  }
  if (key.size() > 1024) {
    return Status::Aws("KeyTooLongError", 400, "Your key is too long");
  }
  return Status::Ok();
}

}  // namespace nimbus::objects
