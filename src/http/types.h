// HTTP message types shared by the server, the AWS protocol layer and the services.
// A Request hands its body out as a pull stream (BodyReader) so that large uploads are
// never required to fit in memory; a Response either carries a small body in `body`,
// produces a large one through `body_stream`, or names a region of an open file that the
// server sends with sendfile(2) (`body_file`).
//
// Thread-safety: a Request/Response belongs to the one thread handling it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace nimbus::http {

// An ordered multimap of header fields with case-insensitive names.
class Headers {
 public:
  using Entry = std::pair<std::string, std::string>;

  void Add(std::string name, std::string value);
  // Replaces every field of that name with one.
  void Set(std::string name, std::string value);
  void Remove(std::string_view name);
  const std::string* Find(std::string_view name) const;  // first match or nullptr
  std::string Get(std::string_view name, std::string_view fallback = "") const;
  bool Has(std::string_view name) const { return Find(name) != nullptr; }
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
};

// Pull interface to a request body.
class BodyReader {
 public:
  virtual ~BodyReader() = default;
  // Reads up to n bytes into buf. Returns 0 at the end of the body, and an error when
  // the client disconnects or the body is malformed (bad chunk encoding, bad signature).
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
  // Reads the rest of the body. More than limit bytes gives a kValidation error naming
  // the limit (the rest is left unread).
  Result<std::string> ReadAll(size_t limit);
};

// A body held in memory: for tests and for internal callers.
class StringBodyReader : public BodyReader {
 public:
  explicit StringBodyReader(std::string data) : data_(std::move(data)) {}
  Result<size_t> Read(char* buf, size_t n) override;

 private:
  std::string data_;
  size_t pos_ = 0;
};

// Push interface for a streamed response body.
class BodyWriter {
 public:
  virtual ~BodyWriter() = default;
  // Sends data to the client; an error means the client went away.
  virtual Status Write(std::string_view data) = 0;
};

struct Request {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // the request-target exactly as sent: "/a%20b?x=1"
  std::string path;    // the path part of target, still percent-encoded
  std::string query;   // the query part of target without '?', still percent-encoded
  Headers headers;
  std::optional<uint64_t> content_length;  // absent for Transfer-Encoding: chunked
  BodyReader* body = nullptr;              // never null when handed to a Handler
  std::string remote_address;
  // When the request's header had been read (a handler's latency is measured from here).
  std::chrono::steady_clock::time_point received{};

  // The query parameters in order, percent-decoded ('+' stays '+', as AWS signs it).
  std::vector<std::pair<std::string, std::string>> QueryParams() const;
  // Fills path and query from target.
  void SplitTarget();
};

// A response body sent straight from an open file: `length` bytes of `fd` from `offset`.
// `keep_alive` owns whatever keeps fd open; the server holds it until the body is sent.
struct FileBody {
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::shared_ptr<void> keep_alive;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  // When set, the body is produced by this callback instead of `body`. With
  // stream_length set the response has that Content-Length; otherwise it is chunked.
  std::function<Status(BodyWriter&)> body_stream;
  std::optional<uint64_t> stream_length;
  // When set, the body is this file region instead of `body` or `body_stream`, with its
  // length as Content-Length.
  std::optional<FileBody> body_file;
};

using Handler = std::function<Response(Request&)>;

}  // namespace nimbus::http
