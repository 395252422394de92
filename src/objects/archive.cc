#include "objects/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <vector>

namespace nimbus::objects {
namespace {

namespace fs = std::filesystem;

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

Status ArchiveError(archive* a, const std::string& what) {
  const char* message = archive_error_string(a);
  return Status::Validation(what + ": " + (message ? message : "libarchive error"));
}

// A safe relative path inside the target: no absolute path, no "..".
bool SafeEntryPath(const std::string& path) {
  if (path.empty() || path[0] == '/') return false;
  for (const auto& part : fs::path(path)) {
    if (part == "..") return false;
  }
  return true;
}

}  // namespace

Status CreateTarGz(const std::string& dir, const std::string& archive_path) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_directory(dir)) {
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (it->is_regular_file(ec)) files.push_back(it->path());
    }
  }
  if (ec) return Status::Internal("cannot list " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  ArchivePtr out(archive_write_new());
  archive_write_add_filter_gzip(out.get());
  archive_write_set_format_pax_restricted(out.get());
  if (archive_write_open_filename(out.get(), archive_path.c_str()) != ARCHIVE_OK) {
    return ArchiveError(out.get(), "cannot create " + archive_path);
  }
  std::vector<char> buffer(1 << 20);
  for (const fs::path& file : files) {
    std::string rel = fs::relative(file, dir, ec).generic_string();
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return Status::Internal("cannot stat " + file.string());
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, rel.c_str());
    archive_entry_set_size(entry, st.st_size);
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, st.st_mode & 0777);
    archive_entry_set_mtime(entry, st.st_mtime, 0);
    int rc = archive_write_header(out.get(), entry);
    archive_entry_free(entry);
    if (rc != ARCHIVE_OK) return ArchiveError(out.get(), "cannot add " + rel);
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::Internal("cannot open " + file.string());
    ssize_t n;
    while ((n = ::read(fd, buffer.data(), buffer.size())) > 0) {
      if (archive_write_data(out.get(), buffer.data(), static_cast<size_t>(n)) < 0) {
        ::close(fd);
        return ArchiveError(out.get(), "cannot write " + rel);
      }
    }
    ::close(fd);
    if (n < 0) return Status::Internal("cannot read " + file.string());
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK) {
    return ArchiveError(out.get(), "cannot finish " + archive_path);
  }
  return Status::Ok();
}

Status ExtractArchive(const std::string& archive_path, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Internal("cannot create " + dir + ": " + ec.message());
  ArchivePtr in(archive_read_new());
  archive_read_support_filter_all(in.get());
  archive_read_support_format_tar(in.get());
  archive_read_support_format_gnutar(in.get());
  if (archive_read_open_filename(in.get(), archive_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return ArchiveError(in.get(), "cannot read " + archive_path);
  }
  std::vector<char> buffer(1 << 20);
  archive_entry* entry = nullptr;
  int rc;
  while ((rc = archive_read_next_header(in.get(), &entry)) == ARCHIVE_OK) {
    std::string path = archive_entry_pathname(entry);
    while (path.size() >= 2 && path.compare(0, 2, "./") == 0) path = path.substr(2);
    if (path.empty()) continue;
    if (!SafeEntryPath(path)) {
      return Status::Validation("the archive entry '" + path + "' points outside its directory");
    }
    fs::path target = fs::path(dir) / path;
    mode_t type = archive_entry_filetype(entry);
    if (type == AE_IFDIR) {
      fs::create_directories(target, ec);
      continue;
    }
    if (type != AE_IFREG) {
      return Status::Validation("the archive entry '" + path +
                                "' is a link or special file, which is not extracted");
    }
    fs::create_directories(target.parent_path(), ec);
    int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    (archive_entry_perm(entry) & 0777) | 0600);
    if (fd < 0) return Status::Internal("cannot create " + target.string());
    la_ssize_t n;
    while ((n = archive_read_data(in.get(), buffer.data(), buffer.size())) > 0) {
      if (::write(fd, buffer.data(), static_cast<size_t>(n)) != n) {
        ::close(fd);
        return Status::Internal("cannot write " + target.string());
      }
    }
    ::close(fd);
    if (n < 0) return ArchiveError(in.get(), "cannot extract " + path);
  }
  if (rc != ARCHIVE_EOF) return ArchiveError(in.get(), "cannot read " + archive_path);
  return Status::Ok();
}

}  // namespace nimbus::objects
