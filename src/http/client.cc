#include "http/client.h"

#include <chrono>
#include <exception>
#include <limits>
#include <optional>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace nimbus::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// One exchange, driven by callbacks on a private io_context. The stream's deadline
// covers everything from connect to the last byte of the response.
class Exchange {
 public:
  Exchange(asio::io_context& ioc, bhttp::request<bhttp::string_body> request)
      : stream_(ioc), request_(std::move(request)) {}

  void Run(const tcp::resolver::results_type& endpoints, double timeout_seconds) {
    stream_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(timeout_seconds)));
    stream_.async_connect(endpoints, [this](error_code ec, const tcp::endpoint&) {
      if (ec) return Fail("connect", ec);
      bhttp::async_write(stream_, request_, [this](error_code ec, size_t) {
        if (ec) return Fail("write", ec);
        ReadResponse();
      });
    });
  }

  const std::optional<Status>& error() const { return error_; }
  bhttp::response_parser<bhttp::string_body>& parser() { return *parser_; }

 private:
  void ReadResponse() {
    parser_.emplace();
    // Boost 1.74 mishandles body_limit(boost::none): it rejects every length.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    if (request_.method() == bhttp::verb::head) parser_->skip(true);
    bhttp::async_read(stream_, buffer_, *parser_, [this](error_code ec, size_t) {
      if (ec) return Fail("read", ec);
      if (parser_->get().result_int() / 100 == 1) return ReadResponse();  // 100 Continue
      error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream_.close();
    });
  }

  void Fail(const char* step, const error_code& ec) {
    error_ = Status::Internal(std::string("HTTP ") + step + " failed: " + ec.message());
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bhttp::request<bhttp::string_body> request_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  std::optional<Status> error_;
};

}  // namespace

Result<ClientResponse> HttpCall(const std::string& host, uint16_t port, const std::string& method,
                                const std::string& target, const Headers& headers,
                                std::string_view body, double timeout_seconds) {
  try {
    bhttp::request<bhttp::string_body> request;
    request.method_string(method);
    request.target(target);
    request.version(11);
    for (const auto& [name, value] : headers.entries()) request.insert(name, value);
    if (!headers.Has("Host")) request.set(bhttp::field::host, host + ":" + std::to_string(port));
    request.body().assign(body.data(), body.size());
    if (!headers.Has("Content-Length") && !headers.Has("Transfer-Encoding")) {
      request.prepare_payload();
    }

    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    error_code ec;
    auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) return Status::Internal("cannot resolve " + host + ": " + ec.message());

    Exchange exchange(ioc, std::move(request));
    exchange.Run(endpoints, timeout_seconds);
    ioc.run();
    if (exchange.error()) return *exchange.error();

    auto& message = exchange.parser().get();
    ClientResponse out;
    out.status = static_cast<int>(message.result_int());
    for (const auto& field : message) {
      out.headers.Add(std::string(field.name_string()), std::string(field.value()));
    }
    out.body = std::move(message.body());
    return out;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("HTTP call failed: ") + e.what());
  }
}

}  // namespace nimbus::http
