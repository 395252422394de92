#include "raw_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace nimbus::http::testing {
namespace {

int ConnectTo(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string TrimSpaces(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

}  // namespace

RawClient::RawClient(uint16_t port, double timeout_seconds) {
  fd_ = ConnectTo(port);
  if (fd_ < 0) return;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout_seconds);
  tv.tv_usec = static_cast<suseconds_t>((timeout_seconds - tv.tv_sec) * 1e6);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

RawClient::~RawClient() { Close(); }

void RawClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawClient::Send(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool RawClient::Fill() {
  char tmp[65536];
  ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
  if (n <= 0) return false;
  buf_.append(tmp, static_cast<size_t>(n));
  return true;
}

bool RawClient::ReadLine(std::string* line) {
  size_t eol;
  while ((eol = buf_.find("\r\n")) == std::string::npos) {
    if (!Fill()) return false;
  }
  *line = buf_.substr(0, eol);
  buf_.erase(0, eol + 2);
  return true;
}

bool RawClient::ReadExactly(size_t n, std::string* out) {
  while (buf_.size() < n) {
    if (!Fill()) return false;
  }
  out->append(buf_, 0, n);
  buf_.erase(0, n);
  return true;
}

std::optional<RawResponse> RawClient::ReadResponse(bool head) {
  RawResponse resp;
  std::string line;
  if (!ReadLine(&line) || line.compare(0, 5, "HTTP/") != 0) return std::nullopt;
  size_t sp = line.find(' ');
  if (sp == std::string::npos) return std::nullopt;
  resp.status = std::atoi(line.c_str() + sp + 1);
  while (true) {
    if (!ReadLine(&line)) return std::nullopt;
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string::npos) return std::nullopt;
    resp.headers[Lower(line.substr(0, colon))] = TrimSpaces(line.substr(colon + 1));
  }
  if (head || resp.status / 100 == 1 || resp.status == 204 || resp.status == 304) return resp;
  if (Lower(resp.Get("transfer-encoding")) == "chunked") {
    while (true) {
      if (!ReadLine(&line)) return std::nullopt;
      size_t size = std::strtoul(line.c_str(), nullptr, 16);
      if (size == 0) break;
      if (!ReadExactly(size, &resp.body) || !ReadLine(&line)) return std::nullopt;
    }
    while (ReadLine(&line) && !line.empty()) {
    }
    return resp;
  }
  if (resp.Has("content-length")) {
    if (!ReadExactly(std::strtoull(resp.Get("content-length").c_str(), nullptr, 10), &resp.body)) {
      return std::nullopt;
    }
    return resp;
  }
  while (Fill()) {
  }
  resp.body = std::move(buf_);
  buf_.clear();
  return resp;
}

bool RawClient::ReadsEof() {
  if (!buf_.empty()) return false;
  char c;
  ssize_t n = ::recv(fd_, &c, 1, 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

bool ConnectionRefused(uint16_t port) {
  int fd = ConnectTo(port);
  if (fd < 0) return true;
  ::close(fd);
  return false;
}

}  // namespace nimbus::http::testing
