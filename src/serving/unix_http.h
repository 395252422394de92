// Blocking HTTP/1.1 over Unix-domain stream sockets: the link between the router (in the
// server) and the model servers (in `serve` workers), and between a `serve` worker and a
// script-mode Python model server.
//
// Why Unix sockets: a model server lives in its job directory, which the sandbox shows at
// /opt/ml, so `<job_dir>/serve.sock` is reachable from both sides whatever the sandbox does
// to the network (no port to allocate, none to leak). Paths longer than sun_path allows
// are reached through an O_PATH descriptor of their directory (/proc/self/fd/N/name).
//
// Only what these peers speak is implemented: Content-Length bodies (no chunked
// encoding), keep-alive, no pipelining. Messages are parsed from a per-connection buffer
// with one poll() and one recv() per arriving segment (why poll: see Fill) and written
// with one sendmsg() (MSG_NOSIGNAL: a peer that went away is an error, not a SIGPIPE).
//
// Thread-safety: a UnixHttpConnection belongs to one thread at a time; ConnectionPool is
// thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace nimbus::serving {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpMessage {
  // Requests: method and target. Responses: status.
  std::string method;
  std::string target;
  int status = 0;
  HeaderList headers;  // names as sent
  std::string body;
  bool keep_alive = true;

  // The first header of that name (case-insensitive), or "" when absent.
  std::string_view Header(std::string_view name) const;
};

// Binds and listens on path (removing a stale socket file first). Returns the fd.
Result<int> UnixListen(const std::string& path, int backlog = 128);
// Connects to the socket at path.
Result<int> UnixConnect(const std::string& path);

// One connection: owns the fd (closed by the destructor).
class UnixHttpConnection {
 public:
  explicit UnixHttpConnection(int fd) : fd_(fd) {}
  ~UnixHttpConnection();
  UnixHttpConnection(const UnixHttpConnection&) = delete;
  UnixHttpConnection& operator=(const UnixHttpConnection&) = delete;

  int fd() const { return fd_; }

  // Reads one request (server side). kNotFound when the peer closed cleanly between
  // messages; another error for garbage, a broken connection, or a body over max_body.
  Result<HttpMessage> ReadRequest(size_t max_body = 64 << 20);
  // Reads one response (client side); timeout_seconds bounds the wait (0 = none).
  Result<HttpMessage> ReadResponse(double timeout_seconds = 0, size_t max_body = 64 << 20);
  // Writes a request / response with Content-Length (and Connection: close when
  // !keep_alive). Header names and values must not contain CR or LF.
  Status WriteRequest(std::string_view method, std::string_view target, const HeaderList& headers,
                      std::string_view body);
  Status WriteResponse(int status, const HeaderList& headers, std::string_view body,
                       bool keep_alive = true);

 private:
  Result<HttpMessage> ReadMessage(bool request, double timeout_seconds, size_t max_body);
  // Reads more bytes into buffer_; false on EOF.
  Result<bool> Fill(double timeout_seconds);

  int fd_;
  std::string buffer_;  // its size is the capacity; [start_, end_) are unparsed bytes
  size_t start_ = 0;
  size_t end_ = 0;
};

// Keep-alive connections to one socket path, reused across requests.
class ConnectionPool {
 public:
  explicit ConnectionPool(std::string path, size_t max_idle = 256)
      : path_(std::move(path)), max_idle_(max_idle) {}

  // One round trip. A pooled connection that turns out to be closed by the peer before
  // any byte of the response arrives is retried once on a fresh connection (the request
  // was never processed). Fails when the socket cannot be reached or the exchange breaks.
  Result<HttpMessage> Call(std::string_view method, std::string_view target,
                           const HeaderList& headers, std::string_view body,
                           double timeout_seconds = 60);
  // Closes every idle connection (the server behind it is going away).
  void Clear();
  const std::string& path() const { return path_; }

 private:
  std::unique_ptr<UnixHttpConnection> Acquire(bool* reused);
  void Release(std::unique_ptr<UnixHttpConnection> connection);

  const std::string path_;
  const size_t max_idle_;
  std::mutex mu_;
  std::vector<std::unique_ptr<UnixHttpConnection>> idle_;  // GUARDED_BY(mu_)
};

// Serves HTTP on a listening Unix socket, one (detached) thread per connection (connections are the
// router's pooled keep-alive ones, so there are few and they live long). handle() gets
// each request and returns the response; it runs concurrently on the connection threads.
// Returns when Stop() is called.
class UnixHttpServer {
 public:
  struct Response {
    int status = 200;
    HeaderList headers;
    std::string body;
  };
  using Handle = std::function<Response(const HttpMessage& request)>;

  UnixHttpServer(int listen_fd, Handle handle)
      : listen_fd_(listen_fd), handle_(std::move(handle)) {}
  ~UnixHttpServer();
  // Accepts and serves until Stop(); then waits for the connection threads to end.
  void Run();
  // Safe from any thread or a signal-watching thread.
  void Stop();

 private:
  int listen_fd_;
  Handle handle_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable done_;  // signalled when a connection ends
  std::vector<int> open_fds_;     // GUARDED_BY(mu_)
};

}  // namespace nimbus::serving
