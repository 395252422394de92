#include "http/server.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>

#include "core/clock.h"
#include "core/logging.h"
#include "core/strings.h"
#include "http/worker_pool.h"

namespace nimbus::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// Body reads smaller than this go through a per-connection staging buffer of
// kStageBytes, so that a handler reading 16 KiB at a time does not cost one thread
// hand-off per 16 KiB; larger reads land directly in the handler's buffer.
constexpr size_t kDirectReadBytes = 64 * 1024;
constexpr size_t kInitialReadBytes = 16 * 1024;
constexpr size_t kStageBytes = 256 * 1024;
// Small writes of a streamed response are gathered up to this size before a send.
constexpr size_t kWriteCoalesceBytes = 256 * 1024;
// A file body is sent in bursts of at most this much before the io thread turns to other
// connections.
constexpr uint64_t kSendfileBurstBytes = 16 * 1024 * 1024;
// Up to this much of a body the handler left unread is read and dropped to keep the
// connection; with more, the connection is closed instead.
constexpr uint64_t kDrainLimit = 1024 * 1024;
// How long a closing connection keeps reading (and dropping) what the client still
// sends, so that the kernel does not answer it with a reset that destroys our response.
constexpr double kLingerSeconds = 2;
constexpr size_t kLingerChunk = 64 * 1024;
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);
// After answering, a worker waits this long for the client's next request on the same
// connection and handles it itself: a busy keep-alive client then costs one thread wake-up
// per request instead of three (I/O thread, worker, I/O thread again).
constexpr std::chrono::milliseconds kKeepWorker{2};

// The server whose I/O or worker thread this is; lets Stop() know it must not block.
thread_local const void* tls_server = nullptr;

std::chrono::steady_clock::duration Seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(std::max(s, 0.0)));
}

std::string_view ReasonPhrase(int status) {
  auto beast_reason = bhttp::obsolete_reason(bhttp::int_to_status(status));
  std::string_view reason(beast_reason.data(), beast_reason.size());
  return reason.empty() || reason.front() == '<' ? std::string_view("Unknown") : reason;
}

bool IsValidFieldName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c <= ' ' || c == ':' || c == 0x7f) return false;
  }
  return true;
}

bool IsValidFieldValue(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

bool IsHttpParseError(const error_code& ec) {
  static const boost::system::error_category& category =
      bhttp::make_error_code(bhttp::error::bad_method).category();
  return ec.category() == category && ec != bhttp::error::end_of_stream &&
         ec != bhttp::error::partial_message;
}

// A response the server makes up itself (errors, not the handler's).
std::string CannedResponse(int status, std::string_view body, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(ReasonPhrase(status));
  out += "\r\nDate: " + FormatHttpDate(SystemClock::Instance().Now());
  out += "\r\nServer: Nimbus\r\nContent-Type: text/plain\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  out += body;
  return out;
}

class Connection;

// The state shared by the listener and every connection of one Server.
class ServerCore {
 public:
  ServerCore(ServerOptions options, Handler handler);
  ~ServerCore();

  Status Start();
  uint16_t port() const { return port_.load(); }
  void BeginStop();
  void WaitStopped();
  bool OnOwnThread() const { return tls_server == this; }
  size_t active_connections() const;

  const ServerOptions& options() const { return options_; }
  const Handler& handler() const { return handler_; }
  WorkerPool& pool() { return pool_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  // A worker waiting for its connection's next request (Connection::NextRequest) counts
  // itself in with BeginKeep(), which fails when a request already waits for a thread, and
  // out with EndKeep(). While any wait, a request queued for a busy pool signals
  // keep_wake_fd(), an eventfd they poll, and they give their threads up.
  bool BeginKeep() {
    kept_workers_.fetch_add(1);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with WakeKeptWorkers()
    if (!pool_.has_waiting_tasks()) return true;
    EndKeep();
    return false;
  }
  void EndKeep() { kept_workers_.fetch_sub(1, std::memory_order_relaxed); }
  int keep_wake_fd() const { return keep_wake_fd_; }
  // Returns false once the server is stopping: the connection must then be dropped.
  bool Register(const std::shared_ptr<Connection>& conn);
  void Unregister(Connection* conn);

 private:
  void Accept();
  void RunIo();
  void WakeKeptWorkers();
  void Shutdown();
  std::vector<std::shared_ptr<Connection>> Snapshot();

  const ServerOptions options_;
  const Handler handler_;
  asio::io_context ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  tcp::acceptor acceptor_;           // used on its own strand only
  asio::steady_timer accept_retry_;  // same strand as acceptor_
  std::vector<std::thread> io_threads_;
  std::atomic<size_t> kept_workers_{0};
  const int keep_wake_fd_;  // an eventfd; -1 if none could be made (kept workers then time out)
  WorkerPool pool_;         // after kept_workers_ and keep_wake_fd_, which its on_busy hook uses
  std::atomic<uint16_t> port_{0};
  std::atomic<bool> stopping_{false};  // written under mu_

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> conns_;  // guarded by mu_
  bool started_ = false;                                              // guarded by mu_
  bool stop_begun_ = false;                                           // guarded by mu_
  bool stopped_ = false;                                              // guarded by mu_
  std::thread stopper_;
};

// One client connection. Its socket, parser and read buffer are driven on the
// connection's strand, except while a request is being handled: then the worker thread
// running the handler owns the request state and performs socket operations by posting
// them to the strand and waiting for their completion (Await), so that the handler can
// pull the body and push the response with plain blocking calls.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ServerCore* core, tcp::socket socket);
  ~Connection();

  asio::any_io_executor executor() { return stream_.get_executor(); }
  void Start();
  // On the strand. Stop() began: drop the connection unless a request is in flight.
  void OnStop();
  // On the strand. Closes the socket whatever is going on.
  void Close();

  // Worker side, used by the body reader and writer below.
  Result<size_t> ReadBody(char* dst, size_t cap);
  // Writes the interim "100 Continue" response.
  Status SendContinue();
  Result<size_t> ReadStaged(char* dst, size_t n);
  Status Send(const std::vector<asio::const_buffer>& buffers);

 private:
  enum class State { kReadingHeader, kHandling, kClosing, kLingering, kClosed };
  enum class BodyMode { kLength, kChunked };
  struct IoResult {
    error_code ec;
    size_t bytes = 0;
  };

  // Strand side (NewParser also on the worker side, while the worker owns the request).
  void NewParser();
  void ReadHeader();
  void OnHeader(error_code ec);
  void SendErrorAndClose(int status);
  void LingeringClose();
  void Linger();
  void AfterResponse(bool keep_alive);
  void WriteOut(bool keep_alive);
  void ReadChunked(char* dst, size_t cap);
  void SendFileStep();
  void WaitWritable();

  // Worker side.
  // While a worker handles the connection and waits for its next request, the socket is
  // out of the I/O threads' epoll set: registered edge-triggered, it would wake an I/O
  // thread for each request that arrives, only for it to find no operation waiting. It
  // stays out from one request to the next and goes back (Attach) before any of asio's
  // operations runs on it: a kept connection costs no epoll_ctl per request.
  bool Detach();
  bool Attach();
  // Hands the connection back to its strand, to run fn there; the socket is attached first.
  template <typename Fn>
  void ToStrand(Fn fn);
  void Process();
  bool HandleRequest();
  bool SendNow();
  enum class Next { kNone, kReady, kFailed };
  Next NextRequest();
  bool WaitReadable(int fd);
  void ReadAvailable(int fd);
  bool Continue(bool keep_alive);
  Response RunHandler(Request& req);
  bool FinishBody();
  bool BodyDone() const;
  Status BodyFailed(const error_code& ec);
  bool Respond(Response& resp, bool is_head, unsigned version, bool keep_alive);
  bool StreamBody(Response& resp, std::string header, bool chunked, bool keep_alive);
  bool SendFileBody(FileBody file, std::string header, bool keep_alive);
  template <typename StartOp>
  IoResult Await(StartOp start);
  void Complete(error_code ec, size_t bytes);
  auto Completion() {
    return [self = shared_from_this()](error_code ec, size_t n) { self->Complete(ec, n); };
  }

  ServerCore* const core_;
  const std::chrono::steady_clock::duration idle_;
  beast::tcp_stream stream_;
  const int fd_;  // stream_'s socket, also while detached
  // A worker holds the socket out of asio's hands (Detach). Set and cleared by the worker
  // that owns the connection; Close() on the strand reads it.
  std::atomic<bool> detached_{false};
  beast::flat_buffer buffer_;
  std::string remote_address_;
  tcp remote_protocol_ = tcp::v4();
  State state_ = State::kReadingHeader;  // strand only
  std::string canned_;                   // a server-made response being written
  std::string out_header_;               // the response being written by WriteOut()
  std::string out_body_;
  // The file body being sent with sendfile(2) by SendFileStep(), strand side while the
  // worker awaits it.
  FileBody file_;
  uint64_t file_sent_ = 0;
  std::string file_error_;         // a failure of the file (not of the client), to log
  asio::steady_timer send_timer_;  // the idle timeout of a wait for writability
  uint64_t wait_gen_ = 0;          // tells a stale send_timer_ expiry from a live one

  // The request being handled.
  std::optional<bhttp::request_parser<bhttp::buffer_body>> parser_;
  BodyMode body_mode_ = BodyMode::kLength;
  uint64_t body_remaining_ = 0;  // kLength: bytes not yet taken off the connection
  Status body_error_;
  bool expect_continue_ = false;
  bool continue_sent_ = false;
  std::unique_ptr<char[]> stage_;  // allocated on first small read
  size_t stage_pos_ = 0;
  size_t stage_len_ = 0;

  // Hand-off between a worker in Await() and the strand.
  std::mutex io_mu_;
  std::condition_variable io_cv_;
  bool io_done_ = false;  // guarded by io_mu_
  IoResult io_result_;    // guarded by io_mu_
};

// Request::body for a request being handled on a connection.
class ConnectionBodyReader : public BodyReader {
 public:
  explicit ConnectionBodyReader(Connection* conn) : conn_(conn) {}
  Result<size_t> Read(char* buf, size_t n) override { return conn_->ReadStaged(buf, n); }

 private:
  Connection* conn_;
};

// The BodyWriter handed to Response::body_stream. Sends the response header with the
// first bytes of the body, frames the body as chunks or checks it against the declared
// length, and gathers small writes.
class ConnectionBodyWriter : public BodyWriter {
 public:
  ConnectionBodyWriter(Connection* conn, std::string header, bool chunked,
                       std::optional<uint64_t> length)
      : conn_(conn), header_(std::move(header)), chunked_(chunked), length_(length) {}

  Status Write(std::string_view data) override {
    NIMBUS_RETURN_IF_ERROR(error_);
    if (length_ && written_ + data.size() > *length_) {
      return Status::Internal("response body is longer than its stream_length of " +
                              std::to_string(*length_));
    }
    written_ += data.size();
    if (pending_.size() + data.size() < kWriteCoalesceBytes) {
      pending_.append(data);
      return Status::Ok();
    }
    return Flush(data, false);
  }

  // Sends what is pending and ends the body.
  Status Finish() {
    NIMBUS_RETURN_IF_ERROR(error_);
    if (length_ && written_ != *length_) {
      return Status::Internal("response body has " + std::to_string(written_) +
                              " bytes, stream_length said " + std::to_string(*length_));
    }
    return Flush({}, true);
  }

  bool started() const { return header_sent_; }
  bool connection_failed() const { return !error_.ok(); }

 private:
  Status Flush(std::string_view extra, bool last) {
    size_t payload = pending_.size() + extra.size();
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(6);
    if (!header_sent_) buffers.emplace_back(header_.data(), header_.size());
    char size_line[24];
    if (chunked_ && payload > 0) {
      int len = std::snprintf(size_line, sizeof(size_line), "%zx\r\n", payload);
      buffers.emplace_back(size_line, static_cast<size_t>(len));
    }
    if (!pending_.empty()) buffers.emplace_back(pending_.data(), pending_.size());
    if (!extra.empty()) buffers.emplace_back(extra.data(), extra.size());
    if (chunked_ && payload > 0) buffers.emplace_back("\r\n", 2);
    if (chunked_ && last) buffers.emplace_back("0\r\n\r\n", 5);
    if (buffers.empty()) return Status::Ok();
    error_ = conn_->Send(buffers);
    NIMBUS_RETURN_IF_ERROR(error_);
    header_sent_ = true;
    pending_.clear();
    return Status::Ok();
  }

  Connection* conn_;
  std::string header_;
  const bool chunked_;
  const std::optional<uint64_t> length_;
  std::string pending_;
  uint64_t written_ = 0;
  bool header_sent_ = false;
  Status error_;  // sticky: the client went away
};

// ---------------------------------------------------------------------------------------
// Connection

Connection::Connection(ServerCore* core, tcp::socket socket)
    : core_(core),
      idle_(Seconds(core->options().idle_timeout_seconds)),
      stream_(std::move(socket)),
      fd_(stream_.socket().native_handle()),
      send_timer_(stream_.get_executor()) {
  // Room for a typical request whole (header and a small body) in the first read; a
  // flat_buffer otherwise starts at 512 bytes and the body then costs more reads.
  buffer_.reserve(kInitialReadBytes);
  error_code ec;
  stream_.socket().set_option(tcp::no_delay(true), ec);
  auto endpoint = stream_.socket().remote_endpoint(ec);
  if (!ec) remote_address_ = endpoint.address().to_string();
  if (!ec) remote_protocol_ = endpoint.protocol();
}

Connection::~Connection() {
  if (detached_) ::close(fd_);
  core_->Unregister(this);
}

void Connection::Start() {
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
}

void Connection::OnStop() {
  if (state_ == State::kReadingHeader || state_ == State::kLingering) Close();
}

void Connection::Close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  send_timer_.cancel();
  if (detached_) {
    // A worker has the socket: its operations fail from now on, and the descriptor is
    // closed with the socket once the worker is done.
    ::shutdown(fd_, SHUT_RDWR);
    return;
  }
  error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();
}

// A fresh parser for the next request, with the server's header limit.
void Connection::NewParser() {
  parser_.emplace();
  parser_->header_limit(
      static_cast<uint32_t>(std::min<size_t>(core_->options().max_header_bytes, UINT32_MAX)));
  // No limit (Boost 1.74 mishandles body_limit(boost::none): it rejects every length).
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
}

void Connection::ReadHeader() {
  if (state_ == State::kClosed) return;
  if (core_->stopping()) return Close();
  state_ = State::kReadingHeader;
  NewParser();
  stream_.expires_after(idle_);
  bhttp::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](error_code ec, size_t) { self->OnHeader(ec); });
}

void Connection::OnHeader(error_code ec) {
  if (state_ == State::kClosed) return;
  if (ec) {
    if (ec == bhttp::error::header_limit) return SendErrorAndClose(431);
    if (IsHttpParseError(ec)) return SendErrorAndClose(400);
    return Close();  // the client went away, timed out, or Stop() closed an idle connection
  }
  state_ = State::kHandling;
  if (!core_->pool().Submit([self = shared_from_this()] { self->Process(); })) Close();
}

void Connection::SendErrorAndClose(int status) {
  state_ = State::kClosing;
  std::string body = status == 431 ? "request header block is too large\n" : "malformed request\n";
  canned_ = CannedResponse(status, body, false);
  stream_.expires_after(idle_);
  asio::async_write(stream_, asio::buffer(canned_),
                    [self = shared_from_this()](error_code ec, size_t) {
                      if (ec) return self->Close();
                      self->LingeringClose();
                    });
}

void Connection::LingeringClose() {
  if (state_ == State::kClosed) return;
  state_ = State::kLingering;
  error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (ec) return Close();
  stream_.expires_after(Seconds(std::min(kLingerSeconds, core_->options().idle_timeout_seconds)));
  Linger();
}

void Connection::Linger() {
  buffer_.clear();
  stream_.async_read_some(buffer_.prepare(kLingerChunk),
                          [self = shared_from_this()](error_code ec, size_t) {
                            if (ec || self->state_ != State::kLingering) return self->Close();
                            self->Linger();
                          });
}

void Connection::WriteOut(bool keep_alive) {
  if (state_ == State::kClosed) return;
  std::array<asio::const_buffer, 2> buffers = {asio::buffer(out_header_), asio::buffer(out_body_)};
  stream_.expires_after(idle_);
  asio::async_write(stream_, buffers,
                    [self = shared_from_this(), keep_alive](error_code ec, size_t) {
                      // Give a large body's memory back while the connection sits idle.
                      std::string().swap(self->out_body_);
                      self->AfterResponse(keep_alive && !ec);
                    });
}

void Connection::AfterResponse(bool keep_alive) {
  if (state_ == State::kClosed) return;
  if (!keep_alive) return LingeringClose();
  // The whole request was read, so there is nothing for a lingering close to protect.
  if (core_->stopping()) return Close();
  ReadHeader();
}

void Connection::ReadChunked(char* dst, size_t cap) {
  auto& body = parser_->get().body();
  body.data = dst;
  body.size = cap;
  body.more = true;
  stream_.expires_after(idle_);
  bhttp::async_read_some(stream_, buffer_, *parser_,
                         [self = shared_from_this(), dst, cap](error_code ec, size_t) {
                           if (ec == bhttp::error::need_buffer) ec = {};
                           size_t got = cap - self->parser_->get().body().size;
                           // A read may consume only chunk framing; keep going until data or the
                           // end.
                           if (!ec && got == 0 && !self->parser_->is_done())
                             return self->ReadChunked(dst, cap);
                           self->Complete(ec, got);
                         });
}

// Sends as much of file_ as the socket takes, then waits for it to drain; completes the
// worker's Await() when the file is sent or the send fails.
void Connection::SendFileStep() {
  if (state_ == State::kClosed) return Complete(asio::error::operation_aborted, file_sent_);
  const int sock = stream_.socket().native_handle();
  uint64_t burst = 0;
  while (file_sent_ < file_.length) {
    if (burst >= kSendfileBurstBytes) {
      asio::post(stream_.get_executor(), [self = shared_from_this()] { self->SendFileStep(); });
      return;
    }
    off_t offset = static_cast<off_t>(file_.offset + file_sent_);
    const size_t want =
        static_cast<size_t>(std::min(file_.length - file_sent_, kSendfileBurstBytes - burst));
    ssize_t n = ::sendfile(sock, file_.fd, &offset, want);
    if (n > 0) {
      file_sent_ += static_cast<uint64_t>(n);
      burst += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return WaitWritable();
    if (n == 0) {
      file_error_ = "the file ended after " + std::to_string(file_sent_) + " of " +
                    std::to_string(file_.length) + " bytes";
      return Complete(asio::error::eof, file_sent_);
    }
    const int err = errno;
    if (err != EPIPE && err != ECONNRESET) {
      file_error_ = std::string("sendfile failed: ") + std::strerror(err);
    }
    return Complete(error_code(err, boost::system::system_category()), file_sent_);
  }
  Complete({}, file_sent_);
}

void Connection::WaitWritable() {
  const uint64_t gen = ++wait_gen_;
  send_timer_.expires_after(idle_);
  send_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
    if (ec || gen != self->wait_gen_ || self->state_ == State::kClosed) return;
    error_code ignored;
    self->stream_.socket().cancel(ignored);  // the client stopped reading: time out
  });
  stream_.socket().async_wait(tcp::socket::wait_write, [self = shared_from_this()](error_code ec) {
    ++self->wait_gen_;
    self->send_timer_.cancel();
    if (ec) return self->Complete(ec, self->file_sent_);
    self->SendFileStep();
  });
}

template <typename StartOp>
Connection::IoResult Connection::Await(StartOp start) {
  if (!Attach()) return IoResult{asio::error::bad_descriptor, 0};
  {
    std::lock_guard<std::mutex> lock(io_mu_);
    io_done_ = false;
  }
  asio::post(stream_.get_executor(), [&start] { start(); });
  std::unique_lock<std::mutex> lock(io_mu_);
  io_cv_.wait(lock, [this] { return io_done_; });
  return io_result_;
}

void Connection::Complete(error_code ec, size_t bytes) {
  std::lock_guard<std::mutex> lock(io_mu_);
  io_result_ = {ec, bytes};
  io_done_ = true;
  io_cv_.notify_one();
}

void Connection::Process() {
  tls_server = core_;
  while (HandleRequest()) {
  }
}

// Handles the request parser_ holds and responds. Returns true when the connection's next
// request has been parsed on this thread, to be handled at once; otherwise the strand has
// the connection again.
bool Connection::HandleRequest() {
  auto& msg = parser_->get();
  Request req;
  req.received = std::chrono::steady_clock::now();
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.SplitTarget();
  for (const auto& field : msg) {
    req.headers.Add(std::string(field.name_string()), std::string(field.value()));
  }
  req.remote_address = remote_address_;
  if (parser_->chunked()) {
    body_mode_ = BodyMode::kChunked;
    body_remaining_ = 0;
  } else {
    body_mode_ = BodyMode::kLength;
    body_remaining_ = parser_->content_length().value_or(0);
    req.content_length = body_remaining_;
  }
  body_error_ = Status::Ok();
  stage_pos_ = stage_len_ = 0;
  continue_sent_ = false;
  const bool expects_continue =
      msg.version() >= 11 && EqualsIgnoreCase(Trim(req.headers.Get("Expect")), "100-continue");
  expect_continue_ = expects_continue && !BodyDone();
  // A client that announced an empty body may still wait for 100 Continue before it
  // reads the final response (botocore does, for an empty PutObject); send it at once.
  // A failed write is kept in body_error_, which closes the connection after the handler.
  if (expects_continue && !expect_continue_) static_cast<void>(SendContinue());

  ConnectionBodyReader reader(this);
  req.body = &reader;
  Response resp = RunHandler(req);

  bool keep_alive = msg.keep_alive();
  if (!FinishBody()) keep_alive = false;
  return Respond(resp, msg.method() == bhttp::verb::head, msg.version(), keep_alive);
}

// Writes out_header_ and out_body_ without blocking, while no operation of the strand is
// pending on the socket. Returns true when all of it went; otherwise what is left is in
// out_header_/out_body_ for the strand's WriteOut() (which also sees any error).
bool Connection::SendNow() {
  std::array<iovec, 2> iov = {iovec{out_header_.data(), out_header_.size()},
                              iovec{out_body_.data(), out_body_.size()}};
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = out_body_.empty() ? 1 : 2;
  ssize_t n;
  do {
    n = ::sendmsg(fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return false;
  const size_t sent = static_cast<size_t>(n);
  if (sent == out_header_.size() + out_body_.size()) return true;
  const size_t from_header = std::min(sent, out_header_.size());
  out_header_.erase(0, from_header);
  out_body_.erase(0, sent - from_header);
  return false;
}

// Waits up to kKeepWorker for the next request and parses its header when all of it is
// there (kReady). kNone leaves whatever arrived in buffer_ for the strand's ReadHeader();
// kFailed has handed the connection to the strand (a malformed header to answer, or a
// socket to close). A worker never waits while other connections' requests wait for a
// thread: it gives way as soon as one is queued (ServerCore::keep_wake_fd()).
Connection::Next Connection::NextRequest() {
  if (core_->stopping() || !core_->BeginKeep()) return Next::kNone;
  bool readable = buffer_.size() > 0;  // pipelined
  if (readable) {
    ReadAvailable(fd_);
  } else {
    if (!Detach()) {
      core_->EndKeep();
      return Next::kNone;
    }
    readable = WaitReadable(fd_);
    if (readable) ReadAvailable(fd_);
  }
  core_->EndKeep();
  if (!readable) return Next::kNone;
  const std::string_view data(static_cast<const char*>(buffer_.data().data()), buffer_.size());
  if (data.find("\r\n\r\n") == std::string_view::npos) return Next::kNone;
  NewParser();
  error_code ec;
  // The whole header is buffered: the parser takes it from buffer_, reading nothing.
  buffer_.consume(parser_->put(buffer_.data(), ec));
  if (!ec && parser_->is_header_done()) return Next::kReady;
  // need_more took nothing: the strand reads the header afresh.
  if (!ec || ec == bhttp::error::need_more) return Next::kNone;
  ToStrand([self = shared_from_this(), ec] { self->OnHeader(ec); });
  return Next::kFailed;
}

bool Connection::Detach() {
  if (detached_) return true;
  error_code ec;
  stream_.socket().release(ec);
  if (ec) return false;
  detached_ = true;
  return true;
}

bool Connection::Attach() {
  if (!detached_) return true;
  error_code ec;
  stream_.socket().assign(remote_protocol_, fd_, ec);
  if (ec) return false;  // still detached: ~Connection closes fd_
  detached_ = false;
  return true;
}

template <typename Fn>
void Connection::ToStrand(Fn fn) {
  if (Attach()) {
    asio::post(stream_.get_executor(), std::move(fn));
  } else {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->Close(); });
  }
}

// Up to kKeepWorker: true once fd has data, false on a timeout or once a request of
// another connection waits for a thread.
bool Connection::WaitReadable(int fd) {
  const auto deadline = std::chrono::steady_clock::now() + kKeepWorker;
  std::array<pollfd, 2> p = {pollfd{fd, POLLIN, 0}, pollfd{core_->keep_wake_fd(), POLLIN, 0}};
  while (true) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    const int r = ::poll(p.data(), p.size(), static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    if ((p[0].revents & POLLIN) != 0) return true;
    if ((p[0].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) return false;
    if (p[1].revents != 0) {
      uint64_t signals;
      // Whichever kept worker reads the signal first clears it; every one that saw it
      // checks the queue, and the ones that find a task waiting give way.
      (void)!::read(p[1].fd, &signals, sizeof signals);
      if (core_->pool().has_waiting_tasks()) return false;
    }
  }
}

// Appends what the socket holds (up to kInitialReadBytes) to buffer_, without waiting.
void Connection::ReadAvailable(int fd) {
  auto space = buffer_.prepare(kInitialReadBytes);
  const ssize_t n = ::recv(fd, space.data(), space.size(), MSG_DONTWAIT);
  if (n > 0) buffer_.commit(static_cast<size_t>(n));
}

// After a response: true to handle the next request on this thread (parsed into parser_),
// false once the strand has the connection back.
bool Connection::Continue(bool keep_alive) {
  if (keep_alive) {
    const Next next = NextRequest();
    if (next == Next::kFailed) return false;
    if (next == Next::kReady) {
      // Requests of other connections came in meanwhile: this one queues behind them.
      if (!core_->pool().has_waiting_tasks()) return true;
      if (!core_->pool().Submit([self = shared_from_this()] { self->Process(); })) {
        ToStrand([self = shared_from_this()] { self->Close(); });
      }
      return false;
    }
  }
  ToStrand([self = shared_from_this(), keep_alive] { self->AfterResponse(keep_alive); });
  return false;
}

Response Connection::RunHandler(Request& req) {
  try {
    return core_->handler()(req);
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "http_handler_exception",
        {{"method", req.method}, {"target", req.target}, {"error", e.what()}});
  } catch (...) {
    Log(LogLevel::kError, "http_handler_exception",
        {{"method", req.method}, {"target", req.target}, {"error", "unknown exception"}});
  }
  Response resp;
  resp.status = 500;
  resp.headers.Set("Content-Type", "text/plain");
  resp.body = "internal server error\n";
  return resp;
}

bool Connection::BodyDone() const {
  return body_mode_ == BodyMode::kLength ? body_remaining_ == 0 : parser_->is_done();
}

// Leaves the connection at the start of the next request, or says it cannot be.
bool Connection::FinishBody() {
  if (!body_error_.ok()) return false;
  if (BodyDone()) return true;
  // The client holds the body back until it sees 100 Continue, which it will not get.
  if (expect_continue_ && !continue_sent_) return false;
  if (body_mode_ == BodyMode::kLength && body_remaining_ > kDrainLimit) return false;
  if (!stage_) stage_ = std::make_unique<char[]>(kStageBytes);
  uint64_t drained = 0;
  while (drained <= kDrainLimit) {
    Result<size_t> n = ReadBody(stage_.get(), kStageBytes);
    if (!n.ok()) return false;
    if (*n == 0) return true;
    drained += *n;
  }
  return false;
}

Status Connection::BodyFailed(const error_code& ec) {
  if (ec == beast::error::timeout) {
    body_error_ = Status::Aws("RequestTimeout", 400,
                              "the client sent no request body data within the idle timeout");
  } else if (IsHttpParseError(ec)) {
    body_error_ = Status::Validation("malformed chunked request body: " + ec.message());
  } else {
    body_error_ =
        Status::Aws("IncompleteBody", 400,
                    "the connection ended before the whole request body arrived: " + ec.message());
  }
  return body_error_;
}

Result<size_t> Connection::ReadStaged(char* dst, size_t n) {
  if (n == 0) return size_t{0};
  if (stage_pos_ == stage_len_) {
    if (n >= kDirectReadBytes) return ReadBody(dst, n);
    if (!stage_) stage_ = std::make_unique<char[]>(kStageBytes);
    NIMBUS_ASSIGN_OR_RETURN(size_t got, ReadBody(stage_.get(), kStageBytes));
    stage_pos_ = 0;
    stage_len_ = got;
    if (got == 0) return size_t{0};
  }
  size_t k = std::min(n, stage_len_ - stage_pos_);
  std::memcpy(dst, stage_.get() + stage_pos_, k);
  stage_pos_ += k;
  return k;
}

Status Connection::SendContinue() {
  continue_sent_ = true;
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  IoResult r = Await([&] {
    stream_.expires_after(idle_);
    asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()), Completion());
  });
  if (r.ec) return BodyFailed(r.ec);
  return Status::Ok();
}

Result<size_t> Connection::ReadBody(char* dst, size_t cap) {
  NIMBUS_RETURN_IF_ERROR(body_error_);
  if (cap == 0 || BodyDone()) return size_t{0};
  if (expect_continue_ && !continue_sent_) NIMBUS_RETURN_IF_ERROR(SendContinue());
  if (body_mode_ == BodyMode::kChunked) {
    IoResult r = Await([&] { ReadChunked(dst, cap); });
    if (r.ec) return BodyFailed(r.ec);
    return r.bytes;
  }
  size_t want = static_cast<size_t>(std::min<uint64_t>(cap, body_remaining_));
  if (buffer_.size() > 0) {  // body bytes that arrived with the header
    size_t k = std::min(want, buffer_.size());
    std::memcpy(dst, buffer_.data().data(), k);
    buffer_.consume(k);
    body_remaining_ -= k;
    return k;
  }
  // While a worker handles the request, no operation of the strand is pending on the
  // socket, so the worker may take what has already arrived itself: two thread hand-offs
  // fewer. Only when nothing is there does it wait through the strand.
  const ssize_t ready = ::recv(fd_, dst, want, MSG_DONTWAIT);
  if (ready > 0) {
    body_remaining_ -= static_cast<uint64_t>(ready);
    return static_cast<size_t>(ready);
  }
  IoResult r = Await([&] {
    stream_.expires_after(idle_);
    asio::async_read(stream_, asio::buffer(dst, want),
                     asio::transfer_at_least(std::min(want, kDirectReadBytes)), Completion());
  });
  body_remaining_ -= r.bytes;
  if (r.ec) return BodyFailed(r.ec);
  return r.bytes;
}

Status Connection::Send(const std::vector<asio::const_buffer>& buffers) {
  IoResult r = Await([&] {
    stream_.expires_after(idle_);
    asio::async_write(stream_, buffers, Completion());
  });
  if (r.ec) return Status::Internal("the client went away: " + r.ec.message());
  return Status::Ok();
}

// Sends the response; returns Continue()'s answer, or false when the strand finishes it.
bool Connection::Respond(Response& resp, bool is_head, unsigned version, bool keep_alive) {
  if (resp.status < 200 || resp.status > 599) {
    Log(LogLevel::kError, "http_bad_status", {{"status", resp.status}});
    resp = Response();
    resp.status = 500;
  }
  const int status = resp.status;
  const std::string* connection = resp.headers.Find("Connection");
  if (connection && ToLower(*connection).find("close") != std::string::npos) keep_alive = false;
  if (core_->stopping()) keep_alive = false;

  // Framing: Content-Length, chunked, or (HTTP/1.0 streams) the end of the connection.
  const bool file = resp.body_file.has_value();
  const bool streamed = static_cast<bool>(resp.body_stream) || file;
  const bool sends_body = !is_head && status != 204 && status != 304;
  std::string length;
  bool chunked = false;
  if (status == 204) {
  } else if (!sends_body) {
    // HEAD and 304 describe the body they do not carry.
    if (const std::string* declared = resp.headers.Find("Content-Length")) {
      length = *declared;
    } else if (status != 304 && file) {
      length = std::to_string(resp.body_file->length);
    } else if (status != 304 && streamed && resp.stream_length) {
      length = std::to_string(*resp.stream_length);
    } else if (status != 304 && !streamed) {
      length = std::to_string(resp.body.size());
    }
  } else if (!streamed) {
    length = std::to_string(resp.body.size());
  } else if (file) {
    length = std::to_string(resp.body_file->length);
  } else if (resp.stream_length) {
    length = std::to_string(*resp.stream_length);
  } else if (version >= 11) {
    chunked = true;
  } else {
    keep_alive = false;
  }

  std::string header;
  header.reserve(256);
  header += "HTTP/1.1 ";
  header += std::to_string(status);
  header += ' ';
  header += ReasonPhrase(status);
  header += "\r\n";
  bool has_date = false;
  bool has_server = false;
  for (const auto& [name, value] : resp.headers.entries()) {
    if (EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Transfer-Encoding") ||
        EqualsIgnoreCase(name, "Connection")) {
      continue;
    }
    if (!IsValidFieldName(name) || !IsValidFieldValue(value)) {
      Log(LogLevel::kWarn, "http_bad_response_header", {{"name", name}});
      continue;
    }
    has_date = has_date || EqualsIgnoreCase(name, "Date");
    has_server = has_server || EqualsIgnoreCase(name, "Server");
    header += name;
    header += ": ";
    header += value;
    header += "\r\n";
  }
  if (!has_date) header += "Date: " + FormatHttpDate(SystemClock::Instance().Now()) + "\r\n";
  if (!has_server) header += "Server: Nimbus\r\n";
  if (!length.empty()) header += "Content-Length: " + length + "\r\n";
  if (chunked) header += "Transfer-Encoding: chunked\r\n";
  if (!keep_alive) {
    header += "Connection: close\r\n";
  } else if (version < 11) {
    header += "Connection: keep-alive\r\n";
  }
  header += "\r\n";

  if (!sends_body || !streamed) {
    out_header_ = std::move(header);
    if (sends_body) out_body_ = std::move(resp.body);
    if (SendNow()) {
      if (out_body_.capacity() > kInitialReadBytes) std::string().swap(out_body_);
      return Continue(keep_alive);
    }
    // The client is not taking it as fast: the strand writes the rest.
    ToStrand([self = shared_from_this(), keep_alive] { self->WriteOut(keep_alive); });
    return false;
  }
  keep_alive = file ? SendFileBody(std::move(*resp.body_file), std::move(header), keep_alive)
                    : StreamBody(resp, std::move(header), chunked, keep_alive);
  return Continue(keep_alive);
}

// Runs body_stream; returns whether the connection may carry another request.
bool Connection::StreamBody(Response& resp, std::string header, bool chunked, bool keep_alive) {
  ConnectionBodyWriter writer(this, std::move(header), chunked, resp.stream_length);
  Status s;
  try {
    s = resp.body_stream(writer);
  } catch (const std::exception& e) {
    s = Status::Internal(std::string("body_stream threw: ") + e.what());
  } catch (...) {
    s = Status::Internal("body_stream threw an unknown exception");
  }
  if (s.ok()) s = writer.Finish();
  if (s.ok()) return keep_alive;
  if (writer.connection_failed()) return false;
  Log(LogLevel::kError, "http_body_stream_failed", {{"error", s.ToString()}});
  // Nothing sent yet: the client can still be told. Otherwise the connection is closed
  // with the body cut short (no final chunk), which the client sees as a failure.
  if (!writer.started()) {
    canned_ = CannedResponse(500, "internal server error\n", keep_alive);
    return Send({asio::buffer(canned_)}).ok() && keep_alive;
  }
  return false;
}

// Sends the header and then the file with sendfile(2), all on the strand; returns whether
// the connection may carry another request.
bool Connection::SendFileBody(FileBody file, std::string header, bool keep_alive) {
  file_ = std::move(file);
  file_sent_ = 0;
  file_error_.clear();
  out_header_ = std::move(header);
  IoResult r = Await([&] {
    error_code ec;
    stream_.socket().native_non_blocking(true, ec);
    if (ec) return Complete(ec, 0);
    stream_.expires_after(idle_);
    asio::async_write(stream_, asio::buffer(out_header_),
                      [self = shared_from_this()](error_code ec, size_t) {
                        if (ec) return self->Complete(ec, 0);
                        self->SendFileStep();
                      });
  });
  if (!file_error_.empty())
    Log(LogLevel::kError, "http_file_body_failed", {{"error", file_error_}});
  file_ = FileBody();  // closes the file as soon as it is sent
  return keep_alive && !r.ec;
}

// ---------------------------------------------------------------------------------------
// ServerCore

ServerCore::ServerCore(ServerOptions options, Handler handler)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      ioc_(static_cast<int>(std::max<size_t>(options_.io_threads, 1))),
      acceptor_(asio::make_strand(ioc_)),
      accept_retry_(acceptor_.get_executor()),
      keep_wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      pool_(std::max<size_t>(options_.handler_threads, 1), options_.max_handler_threads,
            [this] { WakeKeptWorkers(); }) {}

ServerCore::~ServerCore() {
  BeginStop();
  WaitStopped();
  if (stopper_.joinable()) stopper_.join();
  pool_.Shutdown();  // no thread left to signal keep_wake_fd_ once it is closed
  if (keep_wake_fd_ >= 0) ::close(keep_wake_fd_);
}

void ServerCore::WakeKeptWorkers() {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with BeginKeep()
  if (kept_workers_.load(std::memory_order_relaxed) == 0) return;
  const uint64_t one = 1;
  (void)!::write(keep_wake_fd_, &one, sizeof one);
}

Status ServerCore::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_ || stop_begun_) return Status::Internal("the HTTP server was already started");
  }
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  error_code ec;
  tcp::resolver resolver(ioc_);
  auto endpoints = resolver.resolve(options_.host, std::to_string(options_.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return Status::Internal("cannot resolve " + where + ": " +
                            (ec ? ec.message() : std::string("no address")));
  }
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    acceptor_.close(ignored);
    return Status::Internal("cannot listen on " + where + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint(ec).port();
  {
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
  }
  work_.emplace(ioc_.get_executor());
  asio::post(acceptor_.get_executor(), [this] { Accept(); });
  for (size_t i = 0; i < std::max<size_t>(options_.io_threads, 1); ++i) {
    io_threads_.emplace_back([this] { RunIo(); });
  }
  Log(LogLevel::kInfo, "http_listening",
      {{"host", options_.host}, {"port", static_cast<int>(port_.load())}});
  return Status::Ok();
}

void ServerCore::RunIo() {
  tls_server = this;
  // sendfile(2) has no MSG_NOSIGNAL: with SIGPIPE blocked on the io threads, a write to a
  // client that went away fails with EPIPE instead of killing the process.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  while (true) {
    try {
      ioc_.run();
      return;
    } catch (const std::exception& e) {
      Log(LogLevel::kError, "http_io_exception", {{"error", e.what()}});
    }
  }
}

void ServerCore::Accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;
    if (ec) {
      // Out of descriptors and the like: wait a little rather than spin.
      Log(LogLevel::kWarn, "http_accept_failed", {{"error", ec.message()}});
      accept_retry_.expires_after(kAcceptRetryDelay);
      accept_retry_.async_wait([this](error_code ec) {
        if (!ec && acceptor_.is_open()) Accept();
      });
      return;
    }
    auto conn = std::make_shared<Connection>(this, std::move(socket));
    if (Register(conn)) conn->Start();
    Accept();
  });
}

bool ServerCore::Register(const std::shared_ptr<Connection>& conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return false;
  conns_.emplace(conn.get(), conn);
  return true;
}

void ServerCore::Unregister(Connection* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (conns_.erase(conn) > 0 && conns_.empty()) cv_.notify_all();
}

size_t ServerCore::active_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return conns_.size();
}

std::vector<std::shared_ptr<Connection>> ServerCore::Snapshot() {
  std::vector<std::shared_ptr<Connection>> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.reserve(conns_.size());
  for (auto& [ptr, weak] : conns_) {
    if (auto conn = weak.lock()) out.push_back(std::move(conn));
  }
  return out;
}

void ServerCore::BeginStop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_begun_) return;
  stop_begun_ = true;
  stopping_ = true;
  if (!started_) {
    stopped_ = true;
    cv_.notify_all();
    return;
  }
  stopper_ = std::thread([this] { Shutdown(); });
}

void ServerCore::WaitStopped() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return stopped_; });
}

void ServerCore::Shutdown() {
  asio::post(acceptor_.get_executor(), [this] {
    error_code ec;
    acceptor_.close(ec);
    accept_retry_.cancel();
  });
  for (auto& conn : Snapshot()) {
    asio::post(conn->executor(), [conn] { conn->OnStop(); });
  }
  const auto deadline = std::chrono::steady_clock::now() + Seconds(options_.shutdown_grace_seconds);
  bool drained;
  {
    std::unique_lock<std::mutex> lock(mu_);
    drained = cv_.wait_until(lock, deadline, [this] { return conns_.empty(); });
  }
  if (!drained) {
    Log(LogLevel::kWarn, "http_shutdown_grace_expired",
        {{"connections", static_cast<uint64_t>(active_connections())}});
    // Requests still running now see their socket fail and finish quickly.
    for (auto& conn : Snapshot()) {
      asio::post(conn->executor(), [conn] { conn->Close(); });
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return conns_.empty(); });
  }
  pool_.Shutdown();
  work_.reset();
  ioc_.stop();
  for (auto& t : io_threads_) t.join();
  io_threads_.clear();
  Log(LogLevel::kInfo, "http_stopped", {{"port", static_cast<int>(port_.load())}});
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  cv_.notify_all();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Server

class Server::Impl : public ServerCore {
 public:
  using ServerCore::ServerCore;
};

Server::Server(ServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() = default;

Status Server::Start() { return impl_->Start(); }

uint16_t Server::port() const { return impl_->port(); }

void Server::Wait() { impl_->WaitStopped(); }

void Server::Stop() {
  impl_->BeginStop();
  if (!impl_->OnOwnThread()) impl_->WaitStopped();
}

size_t Server::active_connections() const { return impl_->active_connections(); }

}  // namespace nimbus::http
