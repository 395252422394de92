// Server: the asynchronous HTTP/1.1 server every AWS API is served through. Sockets are
// driven by Boost.Asio on a few I/O threads; each request's Handler runs on a worker pool
// (ServerOptions::handler_threads, growing up to max_handler_threads while handlers block
// for long: see WorkerPool) because handlers block (SQLite, disk, reading large bodies).
// The handler pulls the request body from the connection as it arrives (Request::body), so
// uploads of any size are streamed, never buffered whole, and a streamed response body
// (Response::body_stream) is pushed to the socket as it is made.
//
// The handler must read what it wants of the request body before it returns: the unread
// rest is then drained (up to 1 MiB) or the connection is closed, so body_stream cannot
// read the request body. body_stream's small writes are gathered up to 256 KiB before they
// are sent (there is no flush), which suits downloads, not low-latency event streams.
//
// A worker writes a response held in memory itself, then
// waits up to 2 ms for the connection's next request and handles that too, so that a busy
// keep-alive client costs one thread wake-up per request (the socket leaves the I/O
// threads' epoll set meanwhile, so that its request does not wake them too). It waits for
// none while other connections' requests wait for a thread, gives way as soon as one
// arrives, and queues behind them when they do.
//
// Keep-alive and pipelining follow HTTP/1.1: requests on one connection are handled one
// at a time, in order. Garbage gets 400, an oversized header block 431, a throwing handler
// 500; idle and slow clients time out after idle_timeout_seconds.
//
// Thread-safety: Start() must be called once, before the other members. Stop(), Wait()
// and port() may be called from any thread, Stop() also from a handler or a signal-watching
// thread. The destructor must not run on a handler thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "http/types.h"

namespace nimbus::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 4566;  // 0 = pick a free port
  size_t io_threads = 2;
  size_t handler_threads = 16;      // concurrent requests being handled, as a rule
  size_t max_handler_threads = 64;  // ... and while requests wait on blocked handlers
  size_t max_header_bytes = 64 * 1024;
  double idle_timeout_seconds = 120;  // keep-alive idle / slow-client timeout
  double shutdown_grace_seconds = 30;
};

class Server {
 public:
  Server(ServerOptions options, Handler handler);
  ~Server();  // stops if running

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens; an error (with the reason) if the address cannot be bound.
  Status Start();
  // The bound port (after Start).
  uint16_t port() const;
  // Blocks until Stop() has completed.
  void Wait();
  // Graceful stop: stops accepting, closes idle keep-alive connections, lets in-flight
  // requests finish (responses then carry Connection: close) for up to
  // shutdown_grace_seconds, then closes what is left. Idempotent. Blocks until done,
  // except when called from one of the server's own threads, where it only begins the stop.
  void Stop();

  // Open connections (idle, busy or closing). For tests and metrics.
  size_t active_connections() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nimbus::http
