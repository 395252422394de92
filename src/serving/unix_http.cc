#include "serving/unix_http.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "core/strings.h"

namespace nimbus::serving {
namespace {

constexpr size_t kMaxHeaderBytes = 64 * 1024;

Status Errno(std::string what) {
  return Status::Internal(std::move(what) + ": " + std::strerror(errno));
}

// Fills addr for path; paths too long for sun_path go through an O_PATH descriptor of
// their directory, which *dir_fd then holds (the caller closes it after bind/connect).
Result<socklen_t> SocketAddress(const std::string& path, sockaddr_un* addr, int* dir_fd) {
  *dir_fd = -1;
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  std::string target = path;
  if (target.size() >= sizeof(addr->sun_path)) {
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos) return Status::Internal("socket name too long: " + path);
    std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    *dir_fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*dir_fd < 0) return Errno("cannot open " + dir);
    target = "/proc/self/fd/" + std::to_string(*dir_fd) + path.substr(slash);
    if (target.size() >= sizeof(addr->sun_path)) {
      ::close(*dir_fd);
      *dir_fd = -1;
      return Status::Internal("socket name too long: " + path);
    }
  }
  std::memcpy(addr->sun_path, target.data(), target.size());
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + target.size() + 1);
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Status WriteAll(int fd, std::string_view head, std::string_view body) {
  iovec iov[2] = {{const_cast<char*>(head.data()), head.size()},
                  {const_cast<char*>(body.data()), body.size()}};
  int count = body.empty() ? 1 : 2;
  iovec* next = iov;
  while (count > 0) {
    // sendmsg, not writev: MSG_NOSIGNAL turns a peer that went away into EPIPE rather
    // than a SIGPIPE that would kill the process.
    msghdr msg{};
    msg.msg_iov = next;
    msg.msg_iovlen = static_cast<size_t>(count);
    const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write");
    }
    size_t left = static_cast<size_t>(n);
    while (count > 0 && left >= next->iov_len) {
      left -= next->iov_len;
      ++next;
      --count;
    }
    if (count > 0) {
      next->iov_base = static_cast<char*>(next->iov_base) + left;
      next->iov_len -= left;
    }
  }
  return Status::Ok();
}

void AppendHeaders(std::string& out, const HeaderList& headers, size_t body_size, bool keep_alive) {
  for (const auto& [name, value] : headers) {
    out.append(name).append(": ").append(value).append("\r\n");
  }
  out.append("Content-Length: ").append(std::to_string(body_size)).append("\r\n");
  if (!keep_alive) out.append("Connection: close\r\n");
  out.append("\r\n");
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

}  // namespace

std::string_view HttpMessage::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return {};
}

Result<int> UnixListen(const std::string& path, int backlog) {
  sockaddr_un addr;
  int dir_fd = -1;
  NIMBUS_ASSIGN_OR_RETURN(socklen_t len, SocketAddress(path, &addr, &dir_fd));
  ::unlink(addr.sun_path);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (dir_fd >= 0) ::close(dir_fd);
    return Errno("socket");
  }
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0;
  const int bind_errno = errno;
  if (dir_fd >= 0) ::close(dir_fd);
  if (!bound) {
    ::close(fd);
    errno = bind_errno;
    return Errno("cannot bind " + path);
  }
  if (::listen(fd, backlog) != 0) {
    ::close(fd);
    return Errno("listen on " + path);
  }
  return fd;
}

Result<int> UnixConnect(const std::string& path) {
  sockaddr_un addr;
  int dir_fd = -1;
  NIMBUS_ASSIGN_OR_RETURN(socklen_t len, SocketAddress(path, &addr, &dir_fd));
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (dir_fd >= 0) ::close(dir_fd);
    return Errno("socket");
  }
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
  } while (rc != 0 && errno == EINTR);
  const int connect_errno = errno;
  if (dir_fd >= 0) ::close(dir_fd);
  if (rc != 0) {
    ::close(fd);
    errno = connect_errno;
    return Errno("cannot connect to " + path);
  }
  return fd;
}

UnixHttpConnection::~UnixHttpConnection() {
  if (fd_ >= 0) ::close(fd_);
}

Result<bool> UnixHttpConnection::Fill(double timeout_seconds) {
  constexpr size_t kMinRead = 16 * 1024;
  if (start_ == end_) start_ = end_ = 0;
  if (buffer_.size() - end_ < kMinRead && start_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  // buffer_'s size is its capacity (end_ marks the data): it grows, and is zero-filled,
  // only when a message does not fit.
  if (buffer_.size() - end_ < kMinRead)
    buffer_.resize(std::max<size_t>(64 * 1024, buffer_.size() * 2));
  // Wait with poll(), then read without blocking. A read() blocked on a Unix stream
  // socket sleeps on the socket's one wait queue and is woken by every write-space wakeup
  // too, i.e. each time the peer consumes what this side sent; a request/response
  // exchange then costs each side a spurious context switch. poll() waits for POLLIN only.
  const int timeout_ms =
      timeout_seconds > 0 ? static_cast<int>(std::ceil(timeout_seconds * 1000)) : -1;
  ssize_t n;
  while (true) {
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Errno("poll");
    if (ready == 0) return Status::Internal("timed out waiting for the model server");
    n = ::recv(fd_, buffer_.data() + end_, buffer_.size() - end_, MSG_DONTWAIT);
    if (n >= 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) break;
  }
  if (n > 0) end_ += static_cast<size_t>(n);
  if (n < 0) return Errno("read");
  return n > 0;
}

Result<HttpMessage> UnixHttpConnection::ReadMessage(bool request, double timeout_seconds,
                                                    size_t max_body) {
  size_t header_end;
  bool any = start_ < end_;
  while ((header_end = std::string_view(buffer_.data(), end_).find("\r\n\r\n", start_)) ==
         std::string_view::npos) {
    if (end_ - start_ > kMaxHeaderBytes) return Status::Internal("header too large");
    NIMBUS_ASSIGN_OR_RETURN(bool more, Fill(timeout_seconds));
    if (!more) {
      if (!any) return Status::NotFound("connection closed");
      return Status::Internal("connection closed in the middle of a message");
    }
    any = true;
  }
  HttpMessage message;
  std::string_view head(buffer_.data() + start_, header_end - start_);
  size_t line_end = head.find("\r\n");
  std::string_view first = head.substr(0, line_end);
  if (request) {
    const size_t sp1 = first.find(' ');
    const size_t sp2 = first.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return Status::Internal("bad request line");
    message.method = std::string(first.substr(0, sp1));
    message.target = std::string(first.substr(sp1 + 1, sp2 - sp1 - 1));
    message.keep_alive = first.substr(sp2 + 1) != "HTTP/1.0";
  } else {
    if (first.size() < 12 || !StartsWith(first, "HTTP/1.")) {
      return Status::Internal("bad status line");
    }
    int status = 0;
    auto [p, ec] = std::from_chars(first.data() + 9, first.data() + 12, status);
    if (ec != std::errc()) return Status::Internal("bad status line");
    message.status = status;
    message.keep_alive = first[7] != '0';
  }
  size_t content_length = 0;
  size_t pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(pos, end - pos);
    pos = end + 2;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = Trim(line.substr(0, colon));
    std::string_view value = Trim(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "content-length")) {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), content_length);
      if (ec != std::errc()) return Status::Internal("bad Content-Length");
      continue;
    }
    if (EqualsIgnoreCase(name, "transfer-encoding")) {
      return Status::Internal("chunked bodies are not supported on this link");
    }
    if (EqualsIgnoreCase(name, "connection")) {
      if (EqualsIgnoreCase(value, "close")) message.keep_alive = false;
      if (EqualsIgnoreCase(value, "keep-alive")) message.keep_alive = true;
    }
    message.headers.emplace_back(std::string(name), std::string(value));
  }
  if (content_length > max_body) return Status::Internal("body too large");
  // Relative to start_, which a Fill() that compacts the buffer moves.
  const size_t body_offset = header_end + 4 - start_;
  while (end_ - start_ - body_offset < content_length) {
    NIMBUS_ASSIGN_OR_RETURN(bool more, Fill(timeout_seconds));
    if (!more) return Status::Internal("connection closed in the middle of a body");
  }
  message.body.assign(buffer_.data() + start_ + body_offset, content_length);
  start_ += body_offset + content_length;
  if (start_ == end_) start_ = end_ = 0;
  return message;
}

Result<HttpMessage> UnixHttpConnection::ReadRequest(size_t max_body) {
  return ReadMessage(true, 0, max_body);
}

Result<HttpMessage> UnixHttpConnection::ReadResponse(double timeout_seconds, size_t max_body) {
  return ReadMessage(false, timeout_seconds, max_body);
}

Status UnixHttpConnection::WriteRequest(std::string_view method, std::string_view target,
                                        const HeaderList& headers, std::string_view body) {
  std::string head;
  head.reserve(256);
  head.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: model\r\n");
  AppendHeaders(head, headers, body.size(), true);
  return WriteAll(fd_, head, body);
}

Status UnixHttpConnection::WriteResponse(int status, const HeaderList& headers,
                                         std::string_view body, bool keep_alive) {
  std::string head;
  head.reserve(256);
  head.append("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(Reason(status));
  head.append("\r\n");
  AppendHeaders(head, headers, body.size(), keep_alive);
  return WriteAll(fd_, head, body);
}

// ---- ConnectionPool ---------------------------------------------------------------------

std::unique_ptr<UnixHttpConnection> ConnectionPool::Acquire(bool* reused) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.empty()) {
    *reused = false;
    return nullptr;
  }
  *reused = true;
  auto connection = std::move(idle_.back());
  idle_.pop_back();
  return connection;
}

void ConnectionPool::Release(std::unique_ptr<UnixHttpConnection> connection) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(connection));
}

void ConnectionPool::Clear() {
  std::vector<std::unique_ptr<UnixHttpConnection>> drop;
  std::lock_guard<std::mutex> lock(mu_);
  drop.swap(idle_);
}

Result<HttpMessage> ConnectionPool::Call(std::string_view method, std::string_view target,
                                         const HeaderList& headers, std::string_view body,
                                         double timeout_seconds) {
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    std::unique_ptr<UnixHttpConnection> connection = Acquire(&reused);
    if (!connection) {
      NIMBUS_ASSIGN_OR_RETURN(int fd, UnixConnect(path_));
      connection = std::make_unique<UnixHttpConnection>(fd);
    }
    Status written = connection->WriteRequest(method, target, headers, body);
    Result<HttpMessage> response =
        written.ok() ? connection->ReadResponse(timeout_seconds) : Result<HttpMessage>(written);
    if (response.ok()) {
      if (response->keep_alive) Release(std::move(connection));
      return response;
    }
    // A kept-alive connection the server closed meanwhile: it never saw the request.
    const bool stale =
        reused && (!written.ok() || response.status().kind() == ErrorKind::kNotFound);
    if (!stale || attempt > 0) {
      if (response.status().kind() == ErrorKind::kNotFound) {
        return Status::Internal("the model server closed the connection without answering");
      }
      return response.status();
    }
  }
}

// ---- UnixHttpServer ---------------------------------------------------------------------

UnixHttpServer::~UnixHttpServer() { Stop(); }

void UnixHttpServer::Stop() {
  if (stopping_.exchange(true)) return;
  ::shutdown(listen_fd_, SHUT_RDWR);
  std::lock_guard<std::mutex> lock(mu_);
  for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
}

void UnixHttpServer::Run() {
  while (!stopping_.load()) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (stopping_.load()) break;
      if (errno == EMFILE || errno == ENFILE) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      break;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_.load()) {
        ::close(fd);
        break;
      }
      open_fds_.push_back(fd);
    }
    // Detached: a connection's thread ends with it; Run waits for open_fds_ to empty.
    std::thread([this, fd] {
      auto connection = std::make_unique<UnixHttpConnection>(fd);
      while (!stopping_.load()) {
        Result<HttpMessage> request = connection->ReadRequest();
        if (!request.ok()) {
          if (request.status().kind() != ErrorKind::kNotFound) {
            (void)connection->WriteResponse(400, {{"Content-Type", "text/plain"}},
                                            request.status().message(), false);
          }
          break;
        }
        Response response = handle_(*request);
        if (!connection
                 ->WriteResponse(response.status, response.headers, response.body,
                                 request->keep_alive)
                 .ok() ||
            !request->keep_alive) {
          break;
        }
      }
      // Closed under the lock, so that Stop() never shuts down a reused descriptor; the
      // last touch of `this`: Run() may return as soon as the lock is released.
      std::lock_guard<std::mutex> lock(mu_);
      std::erase(open_fds_, fd);
      connection.reset();
      done_.notify_all();
    }).detach();
  }
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [this] { return open_fds_.empty(); });
}

}  // namespace nimbus::serving
