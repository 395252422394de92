#include "objects/transfer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/json.h"

namespace nimbus::objects {
namespace {

namespace fs = std::filesystem;

constexpr size_t kBufferSize = 1 << 20;

Status Errno(std::string_view what, const std::string& path) {
  return Status::Internal(std::string(what) + " " + path + ": " + std::strerror(errno));
}

// Closes on scope exit.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

class FileReader : public http::BodyReader {
 public:
  explicit FileReader(int fd) : fd_(fd) {}
  Result<size_t> Read(char* buf, size_t n) override {
    while (true) {
      ssize_t r = ::read(fd_, buf, n);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Status::Internal(std::string("cannot read file: ") + std::strerror(errno));
      return static_cast<size_t>(r);
    }
  }

 private:
  int fd_;
};

// The path of key below the prefix's folder, or an error when it is not a safe one.
Result<std::string> RelativePath(const std::string& prefix, const std::string& key) {
  std::string rel;
  if (!prefix.empty() && prefix.back() != '/' && key.size() > prefix.size() &&
      key.compare(0, prefix.size(), prefix) == 0 && key[prefix.size()] == '/') {
    rel = key.substr(prefix.size() + 1);  // the prefix names a "folder" without its '/'
  } else {
    size_t slash = prefix.rfind('/');
    rel = slash == std::string::npos ? key : key.substr(slash + 1);
  }
  if (rel.empty() || rel.find('\0') != std::string::npos) {
    return Status::Validation("S3 key '" + key + "' cannot be stored as a file");
  }
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    std::string_view part(rel.data() + start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return Status::Validation("S3 key '" + key +
                                "' cannot be stored as a file: it has an empty, '.' or '..' "
                                "path component");
    }
    start = end + 1;
  }
  return rel;
}

Status EnsureParent(const std::string& path) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return Status::Internal("cannot create directory for " + path + ": " + ec.message());
  return Status::Ok();
}

Result<TransferStats> Download(ObjectStore& store, const std::string& bucket,
                               const std::string& key, const std::string& path) {
  NIMBUS_RETURN_IF_ERROR(EnsureParent(path));
  NIMBUS_ASSIGN_OR_RETURN(GetResult got, store.GetObject(bucket, key, GetOptions{}));
  FdGuard out{::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  if (out.fd < 0) return Errno("cannot create", path);
  std::vector<char> buf(kBufferSize);
  uint64_t total = 0;
  while (true) {
    NIMBUS_ASSIGN_OR_RETURN(size_t n, got.body->Read(buf.data(), buf.size()));
    if (n == 0) break;
    size_t done = 0;
    while (done < n) {
      ssize_t w = ::write(out.fd, buf.data() + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Errno("cannot write", path);
      done += static_cast<size_t>(w);
    }
    total += n;
  }
  return TransferStats{1, static_cast<int64_t>(total)};
}

void Add(TransferStats& into, const TransferStats& s) {
  into.files += s.files;
  into.bytes += s.bytes;
}

}  // namespace

Result<S3Location> ParseS3Uri(std::string_view uri) {
  constexpr std::string_view kScheme = "s3://";
  if (uri.substr(0, kScheme.size()) != kScheme) {
    return Status::Validation(std::string(uri).append(" is not an S3 URI (s3://bucket/key)"));
  }
  std::string_view rest = uri.substr(kScheme.size());
  size_t slash = rest.find('/');
  S3Location loc;
  loc.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) loc.key = std::string(rest.substr(slash + 1));
  if (loc.bucket.empty()) {
    return Status::Validation(std::string(uri).append(" names no bucket"));
  }
  return loc;
}

Result<TransferStats> DownloadObject(ObjectStore& store, const std::string& bucket,
                                     const std::string& key, const std::string& path) {
  return Download(store, bucket, key, path);
}

Result<TransferStats> DownloadPrefix(ObjectStore& store, const S3Location& location,
                                     const std::string& dir) {
  TransferStats stats;
  ListOptions options;
  options.prefix = location.key;
  while (true) {
    NIMBUS_ASSIGN_OR_RETURN(ListResult page, store.ListObjects(location.bucket, options));
    for (const ObjectInfo& object : page.objects) {
      // Zero-byte "folder" placeholders that consoles create are not files.
      if (!object.key.empty() && object.key.back() == '/' && object.size == 0) continue;
      NIMBUS_ASSIGN_OR_RETURN(std::string rel, RelativePath(location.key, object.key));
      NIMBUS_ASSIGN_OR_RETURN(TransferStats one,
                              Download(store, location.bucket, object.key, dir + "/" + rel));
      Add(stats, one);
    }
    if (!page.truncated) break;
    options.continuation_token = page.next_continuation_token;
  }
  if (stats.files == 0) {
    return Status::Validation("No S3 objects found under S3 URL \"" + location.ToUri() + "\"");
  }
  return stats;
}

Result<TransferStats> DownloadManifest(ObjectStore& store, const S3Location& manifest,
                                       const std::string& dir) {
  NIMBUS_ASSIGN_OR_RETURN(GetResult got, store.GetObject(manifest.bucket, manifest.key, {}));
  NIMBUS_ASSIGN_OR_RETURN(std::string text, got.body->ReadAll(64 << 20));
  auto parsed = ParseJson(text);
  if (!parsed.ok() || !parsed->is_list() || parsed->list().empty() || !parsed->list()[0].is_map() ||
      !parsed->list()[0].Has("prefix")) {
    return Status::Validation("The manifest file " + manifest.ToUri() +
                              " is not a JSON array starting with {\"prefix\": \"s3://...\"}");
  }
  NIMBUS_ASSIGN_OR_RETURN(S3Location prefix, ParseS3Uri(parsed->list()[0].GetString("prefix")));
  if (!prefix.key.empty() && prefix.key.back() != '/') prefix.key += '/';
  TransferStats stats;
  for (size_t i = 1; i < parsed->list().size(); ++i) {
    const Value& entry = parsed->list()[i];
    if (!entry.is_string()) {
      return Status::Validation("The manifest file " + manifest.ToUri() +
                                " has an entry that is not a string");
    }
    std::string key = prefix.key + entry.AsString();
    NIMBUS_ASSIGN_OR_RETURN(std::string rel, RelativePath(prefix.key, key));
    NIMBUS_ASSIGN_OR_RETURN(TransferStats one,
                            Download(store, prefix.bucket, key, dir + "/" + rel));
    Add(stats, one);
  }
  return stats;
}

Result<TransferStats> UploadFile(ObjectStore& store, const std::string& path,
                                 const std::string& bucket, const std::string& key) {
  FdGuard in{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0) return Errno("cannot open", path);
  struct stat st {};
  if (::fstat(in.fd, &st) != 0) return Errno("cannot stat", path);
  FileReader reader(in.fd);
  PutOptions options;
  options.content_length = static_cast<uint64_t>(st.st_size);
  NIMBUS_RETURN_IF_ERROR(store.PutObject(bucket, key, reader, options).status());
  return TransferStats{1, static_cast<int64_t>(st.st_size)};
}

Result<TransferStats> UploadDirectory(ObjectStore& store, const std::string& dir,
                                      const S3Location& location) {
  std::string prefix = location.key;
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  TransferStats stats;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return stats;
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back(it->path());
  }
  if (ec) return Status::Internal("cannot list " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    std::string rel = fs::relative(file, dir, ec).generic_string();
    if (ec) return Status::Internal("cannot relate " + file.string() + ": " + ec.message());
    NIMBUS_ASSIGN_OR_RETURN(TransferStats one,
                            UploadFile(store, file.string(), location.bucket, prefix + rel));
    Add(stats, one);
  }
  return stats;
}

}  // namespace nimbus::objects
