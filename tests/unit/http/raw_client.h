// RawClient: a plain POSIX-socket HTTP/1.1 client for the server tests, so that tests
// can send exactly the bytes they mean (garbage, pipelined requests, partial bodies) and
// see exactly what comes back, independently of the server's own HTTP code.
//
// Thread-safety: one RawClient belongs to one thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace nimbus::http::testing {

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  bool Has(const std::string& lower_name) const { return headers.count(lower_name) > 0; }
  std::string Get(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

class RawClient {
 public:
  // Connects to 127.0.0.1:port; every receive gives up after timeout_seconds.
  explicit RawClient(uint16_t port, double timeout_seconds = 5);
  ~RawClient();

  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool Send(std::string_view data);
  // Reads one response (a 1xx one too). For a response to HEAD pass head = true.
  // nullopt when the connection ends, errs or times out first.
  std::optional<RawResponse> ReadResponse(bool head = false);
  // True when the server closes the connection (orderly or by reset) before sending
  // anything more, within the receive timeout.
  bool ReadsEof();
  void Close();

 private:
  bool Fill();  // appends what one recv gives to buf_
  bool ReadLine(std::string* line);
  bool ReadExactly(size_t n, std::string* out);

  int fd_ = -1;
  std::string buf_;
};

// True when nothing listens on 127.0.0.1:port any more.
bool ConnectionRefused(uint16_t port);

}  // namespace nimbus::http::testing
