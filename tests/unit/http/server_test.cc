#include "http/server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/strings.h"
#include "http/client.h"
#include "raw_client.h"

namespace nimbus::http {
namespace {

using testing::ConnectionRefused;
using testing::RawClient;
using testing::RawResponse;

ServerOptions TestOptions() {
  ServerOptions options;
  options.port = 0;
  options.io_threads = 2;
  options.handler_threads = 16;
  options.max_handler_threads = 16;
  options.idle_timeout_seconds = 5;
  options.shutdown_grace_seconds = 5;
  return options;
}

std::unique_ptr<Server> StartServer(Handler handler, ServerOptions options = TestOptions()) {
  auto server = std::make_unique<Server>(options, std::move(handler));
  Status s = server->Start();
  EXPECT_TRUE(s.ok()) << s.ToString();
  return server;
}

Response Text(int status, std::string body) {
  Response resp;
  resp.status = status;
  resp.headers.Set("Content-Type", "text/plain");
  resp.body = std::move(body);
  return resp;
}

// Answers with the request target and the whole body: "<target>|<body>".
Response Echo(Request& req) {
  Result<std::string> body = req.body->ReadAll(64 << 20);
  if (!body.ok()) return Text(400, body.status().message());
  return Text(200, req.target + "|" + *body);
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) & 0xff);
  return s;
}

template <typename Pred>
bool WaitFor(Pred pred, double seconds = 3) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(HttpServerTest, FillsRequestAndAddsDateAndServerHeaders) {
  std::mutex mu;
  Request seen;
  std::string seen_body;
  auto server = StartServer([&](Request& req) {
    std::lock_guard<std::mutex> lock(mu);
    seen.method = req.method;
    seen.target = req.target;
    seen.path = req.path;
    seen.query = req.query;
    seen.headers = req.headers;
    seen.content_length = req.content_length;
    seen.remote_address = req.remote_address;
    seen_body = req.body->ReadAll(1024).value();
    Response resp = Text(201, "made");
    resp.headers.Add("X-Answer", "42");
    return resp;
  });
  Headers headers;
  headers.Add("X-Custom", "some value");
  Result<ClientResponse> resp =
      HttpCall("127.0.0.1", server->port(), "POST", "/a%20b/c?x=1&y=%2F", headers, "hello");
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->status, 201);
  EXPECT_EQ(resp->body, "made");
  EXPECT_EQ(resp->headers.Get("X-Answer"), "42");
  EXPECT_EQ(resp->headers.Get("Server"), "Nimbus");
  EXPECT_TRUE(EndsWith(resp->headers.Get("Date"), " GMT")) << resp->headers.Get("Date");
  EXPECT_EQ(resp->headers.Get("Content-Length"), "4");

  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/a%20b/c?x=1&y=%2F");
  EXPECT_EQ(seen.path, "/a%20b/c");
  EXPECT_EQ(seen.query, "x=1&y=%2F");
  EXPECT_EQ(seen.headers.Get("x-custom"), "some value");
  ASSERT_TRUE(seen.content_length.has_value());
  EXPECT_EQ(*seen.content_length, 5u);
  EXPECT_EQ(seen.remote_address, "127.0.0.1");
  EXPECT_EQ(seen_body, "hello");
}

TEST(HttpServerTest, StreamsLargeBodyToHandlerInPieces) {
  const std::string payload = Pattern(12 * 1024 * 1024 + 17);
  std::atomic<size_t> reads{0};
  auto server = StartServer([&](Request& req) {
    // Small reads (through the staging buffer) and large reads (direct) alternate.
    std::vector<char> buf(1 << 20);
    std::string got;
    size_t sizes[] = {1000, 1 << 20, 16384};
    for (size_t i = 0;; ++i) {
      Result<size_t> n = req.body->Read(buf.data(), sizes[i % 3]);
      if (!n.ok()) return Text(400, n.status().message());
      if (*n == 0) break;
      ++reads;
      got.append(buf.data(), *n);
    }
    return Text(got == payload ? 200 : 422, std::to_string(got.size()));
  });
  Result<ClientResponse> resp =
      HttpCall("127.0.0.1", server->port(), "PUT", "/big", Headers(), payload);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, std::to_string(payload.size()));
  EXPECT_GT(reads.load(), 20u);
}

TEST(HttpServerTest, HandlerReadsBodyBeforeTheRestHasArrived) {
  std::promise<std::string> first_piece;
  auto server = StartServer([&](Request& req) {
    char buf[100];
    Result<size_t> n = req.body->Read(buf, sizeof(buf));
    first_piece.set_value(n.ok() ? std::string(buf, *n) : "error");
    std::string rest = req.body->ReadAll(1024).value();
    return Text(200, rest);
  });
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("PUT /s HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello"));
  auto future = first_piece.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(3)), std::future_status::ready);
  EXPECT_EQ(future.get(), "hello");
  ASSERT_TRUE(client.Send("world"));
  std::optional<RawResponse> resp = client.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->body, "world");
}

TEST(HttpServerTest, DecodesChunkedBodyAndKeepsConnection) {
  std::mutex mu;
  std::vector<std::optional<uint64_t>> lengths;
  auto server = StartServer([&](Request& req) {
    {
      std::lock_guard<std::mutex> lock(mu);
      lengths.push_back(req.content_length);
    }
    return Echo(req);
  });
  RawClient client(server->port());
  ASSERT_TRUE(
      client.Send("PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
                  "GET /next HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<RawResponse> first = client.ReadResponse();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, "/c|hello world");
  std::optional<RawResponse> second = client.ReadResponse();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "/next|");
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(lengths.size(), 2u);
  EXPECT_FALSE(lengths[0].has_value());
  EXPECT_EQ(lengths[1], std::optional<uint64_t>(0));
}

TEST(HttpServerTest, DecodesLargeChunkedBody) {
  const std::string payload = Pattern(3 * 1024 * 1024 + 5);
  auto server = StartServer([&](Request& req) {
    Result<std::string> body = req.body->ReadAll(8 << 20);
    if (!body.ok()) return Text(400, body.status().message());
    return Text(*body == payload ? 200 : 422, std::to_string(body->size()));
  });
  std::string wire = "PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (size_t pos = 0; pos < payload.size(); pos += 100000) {
    std::string piece = payload.substr(pos, 100000);
    char size_line[32];
    std::snprintf(size_line, sizeof(size_line), "%zx\r\n", piece.size());
    wire += size_line + piece + "\r\n";
  }
  wire += "0\r\n\r\n";
  RawClient client(server->port());
  ASSERT_TRUE(client.Send(wire));
  std::optional<RawResponse> resp = client.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 200) << resp->body;
  EXPECT_EQ(resp->body, std::to_string(payload.size()));
}

TEST(HttpServerTest, MalformedChunkedBodyFailsTheReadAndClosesConnection) {
  std::promise<Status> read_status;
  auto server = StartServer([&](Request& req) {
    Result<std::string> body = req.body->ReadAll(1024);
    read_status.set_value(body.status());
    return Text(400, "bad body");
  });
  RawClient client(server->port());
  ASSERT_TRUE(client.Send(
      "PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n"));
  std::optional<RawResponse> resp = client.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 400);
  EXPECT_EQ(resp->Get("connection"), "close");
  EXPECT_TRUE(client.ReadsEof());
  Status s = read_status.get_future().get();
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kValidation);
}

TEST(HttpServerTest, SendsContinueBeforeReadingBody) {
  auto server = StartServer(Echo);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send(
      "PUT /obj HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  std::optional<RawResponse> interim = client.ReadResponse();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(client.Send("hello"));
  std::optional<RawResponse> final_resp = client.ReadResponse();
  ASSERT_TRUE(final_resp);
  EXPECT_EQ(final_resp->status, 200);
  EXPECT_EQ(final_resp->body, "/obj|hello");
}

// botocore sends Expect: 100-continue on an empty PutObject and waits for the 100.
TEST(HttpServerTest, SendsContinueForAnEmptyBodyAndKeepsTheConnection) {
  auto server = StartServer(Echo);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send(
      "PUT /empty HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"));
  std::optional<RawResponse> interim = client.ReadResponse();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  std::optional<RawResponse> final_resp = client.ReadResponse();
  ASSERT_TRUE(final_resp);
  EXPECT_EQ(final_resp->status, 200);
  EXPECT_EQ(final_resp->body, "/empty|");
  ASSERT_TRUE(client.Send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<RawResponse> next = client.ReadResponse();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "/next|");
}

TEST(HttpServerTest, RejectsWithoutContinueWhenHandlerIgnoresBody) {
  auto server = StartServer([](Request&) { return Text(403, "denied"); });
  RawClient client(server->port());
  ASSERT_TRUE(client.Send(
      "PUT /obj HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  std::optional<RawResponse> resp = client.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 403);  // no 100 Continue first
  EXPECT_EQ(resp->Get("connection"), "close");
  EXPECT_TRUE(client.ReadsEof());
}

TEST(HttpServerTest, StreamsResponseWithStreamLengthAsContentLength) {
  const std::string big = Pattern(600 * 1024);
  auto server = StartServer([&](Request&) {
    Response resp;
    resp.stream_length = 3 + big.size() + 3;
    resp.body_stream = [&](BodyWriter& w) -> Status {
      NIMBUS_RETURN_IF_ERROR(w.Write("abc"));
      NIMBUS_RETURN_IF_ERROR(w.Write(big));
      return w.Write("xyz");
    };
    return resp;
  });
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("GET /s HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<RawResponse> resp = client.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->Get("content-length"), std::to_string(big.size() + 6));
  EXPECT_FALSE(resp->Has("transfer-encoding"));
  EXPECT_TRUE(resp->body == "abc" + big + "xyz");
}

TEST(HttpServerTest, StreamsResponseChunkedWithoutLength) {
  const std::string big = Pattern(300 * 1024);
  auto server = StartServer([&](Request&) {
    Response resp;
    resp.body_stream = [&](BodyWriter& w) -> Status {
      for (int i = 0; i < 3; ++i) NIMBUS_RETURN_IF_ERROR(w.Write("part" + std::to_string(i)));
      return w.Write(big);
    };
    return resp;
  });
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
  for (int i = 0; i < 2; ++i) {
    std::optional<RawResponse> resp = client.ReadResponse();
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->Get("transfer-encoding"), "chunked");
    EXPECT_FALSE(resp->Has("content-length"));
    EXPECT_TRUE(resp->body == "part0part1part2" + big);
  }
}

TEST(HttpServerTest, StreamThatFailsBeforeWritingGives500) {
  auto server = StartServer([](Request&) {
    Response resp;
    resp.body_stream = [](BodyWriter&) { return Status::Internal("disk gone"); };
    return resp;
  });
  Result<ClientResponse> resp = HttpCall("127.0.0.1", server->port(), "GET", "/", Headers(), "");
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->status, 500);
}

TEST(HttpServerTest, HeadResponseHasContentLengthButNoBody) {
  auto server = StartServer([](Request& req) {
    if (req.path == "/declared") {
      Response resp;
      resp.headers.Set("Content-Length", "1234");
      return resp;
    }
    return Text(200, "hello");
  });
  RawClient client(server->port());
  ASSERT_TRUE(
      client.Send("HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n"
                  "HEAD /declared HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /x HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<RawResponse> head = client.ReadResponse(/*head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->Get("content-length"), "5");
  std::optional<RawResponse> declared = client.ReadResponse(/*head=*/true);
  ASSERT_TRUE(declared);
  EXPECT_EQ(declared->Get("content-length"), "1234");
  std::optional<RawResponse> get = client.ReadResponse();
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, "hello");
}

TEST(HttpServerTest, KeepsConnectionAliveUntilConnectionClose) {
  std::atomic<int> calls{0};
  auto server = StartServer([&](Request&) { return Text(200, std::to_string(++calls)); });
  RawClient client(server->port());
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(client.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::optional<RawResponse> resp = client.ReadResponse();
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->body, std::to_string(i));
    EXPECT_FALSE(resp->Has("connection"));
  }
  ASSERT_TRUE(client.Send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::optional<RawResponse> last = client.ReadResponse();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->Get("connection"), "close");
  EXPECT_TRUE(client.ReadsEof());
}

TEST(HttpServerTest, Http10ClosesUnlessKeepAliveAsked) {
  auto server = StartServer(Echo);
  {
    RawClient client(server->port());
    ASSERT_TRUE(client.Send("GET /a HTTP/1.0\r\n\r\n"));
    std::optional<RawResponse> resp = client.ReadResponse();
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->body, "/a|");
    EXPECT_TRUE(client.ReadsEof());
  }
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  std::optional<RawResponse> resp = client.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->Get("connection"), "keep-alive");
  ASSERT_TRUE(client.Send("GET /c HTTP/1.0\r\n\r\n"));
  resp = client.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->body, "/c|");
}

TEST(HttpServerTest, GarbageGets400AndCloseAndServerKeepsServing) {
  auto server = StartServer(Echo);
  for (std::string garbage :
       {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15),
        std::string("GET / HTTP/9\r\n\r\n"), std::string("G@T / HTTP/1.1\r\nHost: x\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nBad Header\r\n\r\n")}) {
    RawClient client(server->port());
    ASSERT_TRUE(client.Send(garbage));
    std::optional<RawResponse> resp = client.ReadResponse();
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 400);
    EXPECT_EQ(resp->Get("connection"), "close");
    EXPECT_TRUE(client.ReadsEof());
  }
  Result<ClientResponse> resp = HttpCall("127.0.0.1", server->port(), "GET", "/ok", Headers(), "");
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->body, "/ok|");
}

TEST(HttpServerTest, OversizedHeaderGets431AndClose) {
  ServerOptions options = TestOptions();
  options.max_header_bytes = 1024;
  std::atomic<int> calls{0};
  auto server = StartServer(
      [&](Request&) {
        ++calls;
        return Text(200, "ok");
      },
      options);
  RawClient client(server->port());
  ASSERT_TRUE(
      client.Send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n"));
  std::optional<RawResponse> resp = client.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 431);
  EXPECT_TRUE(client.ReadsEof());
  EXPECT_EQ(calls.load(), 0);
}

TEST(HttpServerTest, ClientDisconnectMidBodyFailsReadWithoutLeaking) {
  std::promise<Status> read_status;
  auto server = StartServer([&](Request& req) {
    if (req.path != "/x") return Text(200, "other");
    Result<std::string> body = req.body->ReadAll(1 << 20);
    read_status.set_value(body.status());
    return Text(200, "unreachable");
  });
  {
    RawClient client(server->port());
    ASSERT_TRUE(client.Send("PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
                            std::string(1000, 'a')));
  }
  auto future = read_status.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(3)), std::future_status::ready);
  Status s = future.get();
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), "IncompleteBody");
  EXPECT_TRUE(WaitFor([&] { return server->active_connections() == 0; }));
  RawClient again(server->port());
  ASSERT_TRUE(again.Send("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_TRUE(again.ReadResponse());
}

TEST(HttpServerTest, ServesManyConcurrentKeepAliveConnections) {
  ServerOptions options = TestOptions();
  options.handler_threads = 8;
  auto server = StartServer(Echo, options);
  constexpr int kClients = 40;
  constexpr int kRequests = 25;
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      RawClient client(server->port());
      for (int i = 0; i < kRequests; ++i) {
        std::string body = "c" + std::to_string(c) + "r" + std::to_string(i);
        if (!client.Send("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body)) {
          return;
        }
        std::optional<RawResponse> resp = client.ReadResponse();
        if (resp && resp->body == "/e|" + body) ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), kClients * kRequests);
}

TEST(HttpServerTest, AnswersPipelinedRequestsInOrder) {
  auto server = StartServer([](Request& req) {
    // Later requests finish faster: order must still be kept.
    if (req.path == "/slow") std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return Echo(req);
  });
  RawClient client(server->port());
  ASSERT_TRUE(client.Send(
      "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
      "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
      "PUT /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nthr\r\n0\r\n\r\n"
      "POST /4 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nfour"));
  const char* expected[] = {"/slow|one", "/2|", "/3|thr", "/4|four"};
  for (const char* want : expected) {
    std::optional<RawResponse> resp = client.ReadResponse();
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->body, want);
  }
}

TEST(HttpServerTest, KeptConnectionTakesAHeaderThatArrivesInPieces) {
  auto server = StartServer(Echo);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na"));
  std::optional<RawResponse> first = client.ReadResponse();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, "/1|a");
  // The next header comes in three parts, the last after the worker stopped waiting.
  ASSERT_TRUE(client.Send("POST /2 HTTP/1.1\r\nHo"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_TRUE(client.Send("st: x\r\nContent-Length: 2\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(client.Send("\r\nbc"));
  std::optional<RawResponse> second = client.ReadResponse();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "/2|bc");
  // Back to back: each next request is there while the worker still waits.
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(client.Send("GET /n" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::optional<RawResponse> resp = client.ReadResponse();
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->body, "/n" + std::to_string(i) + "|");
  }
}

TEST(HttpServerTest, KeptConnectionAlternatesBetweenItsWorkerAndTheIoThreads) {
  auto server = StartServer(Echo);
  RawClient client(server->port());
  for (int i = 0; i < 20; ++i) {
    // Every other request comes after the worker stopped waiting for it, so that the
    // connection goes back and forth between a worker and the I/O threads' epoll set.
    if (i % 2 == 1) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const std::string body(static_cast<size_t>(100 * i), static_cast<char>('a' + i));
    ASSERT_TRUE(client.Send("POST /" + std::to_string(i) +
                            " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body));
    std::optional<RawResponse> resp = client.ReadResponse();
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->body, "/" + std::to_string(i) + "|" + body);
  }
}

// Stop() gives up on a request that outlives the grace period even when its worker took
// it straight off a kept connection, with the socket out of the I/O threads' hands.
TEST(HttpServerTest, StopAfterGraceEndsAKeptConnectionsRequest) {
  ServerOptions options = TestOptions();
  options.shutdown_grace_seconds = 0.3;
  std::promise<void> entered;
  std::atomic<bool> release{false};
  auto server = StartServer(
      [&](Request& req) {
        if (req.target == "/slow") {
          entered.set_value();
          WaitFor([&] { return release.load(); }, 10);
        }
        return Text(200, "ok");
      },
      options);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(client.ReadResponse());
  ASSERT_TRUE(client.Send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  entered.get_future().wait();
  std::thread stopper([&] { server->Stop(); });
  // Past the grace period the client sees its connection end, while the handler runs on.
  EXPECT_TRUE(client.ReadsEof());
  release = true;
  stopper.join();
  EXPECT_EQ(server->active_connections(), 0u);
}

TEST(HttpServerTest, MalformedRequestAfterAKeptResponseGets400) {
  auto server = StartServer(Echo);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<RawResponse> ok = client.ReadResponse();
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  ASSERT_TRUE(client.Send("GET /bad HTTP/1.1\r\nBad Header\r\n\r\n"));
  std::optional<RawResponse> bad = client.ReadResponse();
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(bad->Get("connection"), "close");
}

TEST(HttpServerTest, LargeInMemoryBodyToASlowReaderArrivesWhole) {
  const std::string big = Pattern(8 * 1024 * 1024 + 3);
  auto server = StartServer([&](Request& req) {
    if (req.path == "/big") return Text(200, big);
    return Text(200, "after");
  });
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
  // More than the socket buffers hold: the worker's write stops short and the rest follows.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::optional<RawResponse> resp = client.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->Get("content-length"), std::to_string(big.size()));
  EXPECT_TRUE(resp->body == big);
  ASSERT_TRUE(client.Send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<RawResponse> next = client.ReadResponse();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "after");
}

TEST(HttpServerTest, HandlersBlockedForLongDoNotStarveOtherRequests) {
  ServerOptions options = TestOptions();
  options.handler_threads = 2;
  options.max_handler_threads = 4;
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> blocked{0};
  auto server = StartServer(
      [&](Request& req) {
        if (req.path == "/block") {
          ++blocked;
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return release; });
        }
        return Echo(req);
      },
      options);
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < 3; ++i) {
    slow.push_back(std::make_unique<RawClient>(server->port()));
    ASSERT_TRUE(slow.back()->Send("GET /block HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  // Two handler threads, three requests that hold theirs: the third gets a thread of its
  // own once it has waited, and so does a request that arrives after them.
  EXPECT_TRUE(WaitFor([&] { return blocked.load() == 3; }));
  RawClient other(server->port());
  ASSERT_TRUE(other.Send("GET /other HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<RawResponse> answer = other.ReadResponse();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(blocked.load(), 3);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  for (auto& client : slow) {
    std::optional<RawResponse> resp = client->ReadResponse();
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 200);
  }
}

TEST(HttpServerTest, BusyKeepAliveConnectionsDoNotStarveOthers) {
  ServerOptions options = TestOptions();
  options.handler_threads = 8;  // fewer threads than busy connections
  options.max_handler_threads = 8;
  auto server = StartServer(
      [](Request& req) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return Echo(req);
      },
      options);
  constexpr int kClients = 24;
  std::vector<int> answered(kClients, 0);
  std::vector<std::thread> clients;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      RawClient client(server->port());
      // Each client sends its next request the moment it has the answer.
      while (std::chrono::steady_clock::now() < until) {
        if (!client.Send("GET /c HTTP/1.1\r\nHost: x\r\n\r\n")) return;
        std::optional<RawResponse> resp = client.ReadResponse();
        if (!resp || resp->status != 200) return;
        ++answered[c];
      }
    });
  }
  for (auto& t : clients) t.join();
  // Served in turn: no connection gets far more than another.
  const int least = *std::min_element(answered.begin(), answered.end());
  const int most = *std::max_element(answered.begin(), answered.end());
  EXPECT_GE(least, 10);
  EXPECT_GE(least * 3, most) << "least " << least << ", most " << most;
}

TEST(HttpServerTest, DrainsSmallUnreadBodyAndKeepsConnection) {
  auto server = StartServer([](Request& req) { return Text(200, req.path); });
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n" +
                          std::string(20000, 'z') + "GET /second HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<RawResponse> first = client.ReadResponse();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, "/first");
  EXPECT_FALSE(first->Has("connection"));
  std::optional<RawResponse> second = client.ReadResponse();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "/second");
}

TEST(HttpServerTest, ClosesConnectionWhenLargeBodyIsLeftUnread) {
  auto server = StartServer([](Request&) { return Text(413, "too big"); });
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n" +
                          std::string(65536, 'a')));
  std::optional<RawResponse> resp = client.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 413);
  EXPECT_EQ(resp->Get("connection"), "close");
  EXPECT_TRUE(client.ReadsEof());
}

TEST(HttpServerTest, IdleAndSlowClientsTimeOut) {
  ServerOptions options = TestOptions();
  options.idle_timeout_seconds = 0.3;
  std::promise<Status> body_status;
  auto server = StartServer(
      [&](Request& req) {
        Result<std::string> body = req.body->ReadAll(1024);
        body_status.set_value(body.status());
        return Text(200, "unreachable");
      },
      options);
  auto start = std::chrono::steady_clock::now();
  RawClient idle(server->port());
  RawClient slow_header(server->port());
  ASSERT_TRUE(slow_header.Send("GET / HTTP/1.1\r\nHost:"));
  RawClient slow_body(server->port());
  ASSERT_TRUE(slow_body.Send("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab"));
  EXPECT_TRUE(idle.ReadsEof());
  EXPECT_TRUE(slow_header.ReadsEof());
  // A stalled body costs the connection; the handler learns why from its read.
  EXPECT_TRUE(slow_body.ReadsEof());
  Status s = body_status.get_future().get();
  EXPECT_EQ(s.code(), "RequestTimeout");
  double elapsed = SecondsSince(start);
  EXPECT_GE(elapsed, 0.25);
  EXPECT_LT(elapsed, 3.0);
}

TEST(HttpServerTest, ThrowingHandlerGets500AndServerKeepsServing) {
  auto server = StartServer([](Request& req) -> Response {
    if (req.path == "/boom") throw std::runtime_error("kaboom");
    return Text(200, "fine");
  });
  RawClient client(server->port());
  ASSERT_TRUE(
      client.Send("GET /boom HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<RawResponse> boom = client.ReadResponse();
  ASSERT_TRUE(boom);
  EXPECT_EQ(boom->status, 500);
  std::optional<RawResponse> ok = client.ReadResponse();
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "fine");
}

TEST(HttpServerTest, SlowHandlerDoesNotStallOtherConnections) {
  ServerOptions options = TestOptions();
  options.io_threads = 1;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto server = StartServer(
      [&](Request& req) {
        if (req.path == "/block") released.wait();
        return Text(200, req.path);
      },
      options);
  RawClient blocked(server->port());
  ASSERT_TRUE(blocked.Send("GET /block HTTP/1.1\r\nHost: x\r\n\r\n"));
  Result<ClientResponse> fast =
      HttpCall("127.0.0.1", server->port(), "GET", "/fast", Headers(), "", 2);
  ASSERT_TRUE(fast.ok()) << fast.status().ToString();
  EXPECT_EQ(fast->body, "/fast");
  release.set_value();
  std::optional<RawResponse> resp = blocked.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->body, "/block");
}

TEST(HttpServerTest, StopFinishesInFlightRequestAndRefusesNewConnections) {
  std::promise<void> entered;
  auto server = StartServer([&](Request& req) {
    entered.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    return Text(200, "done");
  });
  const uint16_t port = server->port();
  auto call = std::async(std::launch::async, [port] {
    return HttpCall("127.0.0.1", port, "GET", "/slow", Headers(), "", 5);
  });
  entered.get_future().wait();
  std::thread stopper([&] { server->Stop(); });
  EXPECT_TRUE(WaitFor([&] { return ConnectionRefused(port); }, 1));
  Result<ClientResponse> resp = call.get();
  stopper.join();
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "done");
  EXPECT_EQ(resp->headers.Get("Connection"), "close");
  server->Wait();  // already stopped: returns at once
  EXPECT_EQ(server->active_connections(), 0u);
}

TEST(HttpServerTest, StopClosesIdleKeepAliveConnectionsPromptly) {
  ServerOptions options = TestOptions();
  options.shutdown_grace_seconds = 10;
  auto server = StartServer(Echo, options);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(client.ReadResponse());
  auto start = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(SecondsSince(start), 2.0);
  EXPECT_TRUE(client.ReadsEof());
  server->Stop();  // idempotent
}

TEST(HttpServerTest, StopFromHandlerThreadDoesNotDeadlock) {
  Server* self = nullptr;
  auto server = StartServer([&](Request&) {
    self->Stop();  // only begins the stop on a server thread
    return Text(200, "bye");
  });
  self = server.get();
  Result<ClientResponse> resp = HttpCall("127.0.0.1", server->port(), "GET", "/", Headers(), "");
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->body, "bye");
  server->Wait();
}

TEST(HttpServerTest, StartFailsWhenPortIsTaken) {
  auto first = StartServer(Echo);
  ServerOptions options = TestOptions();
  options.port = first->port();
  Server second(options, Echo);
  Status s = second.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(std::to_string(first->port())), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("in use"), std::string::npos) << s.message();
}

// A file holding data, opened for reading and unlinked, for FileBody responses.
class OpenFile {
 public:
  explicit OpenFile(const std::string& data) {
    std::string path = ::testing::TempDir() + "nimbus_file_body_XXXXXX";
    int fd = ::mkstemp(path.data());
    EXPECT_GE(fd, 0);
    ::unlink(path.c_str());
    EXPECT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    fd_ = std::shared_ptr<int>(new int(fd), [](int* p) {
      ::close(*p);
      delete p;
    });
  }
  FileBody Region(uint64_t offset, uint64_t length) const {
    return FileBody{*fd_, offset, length, fd_};
  }
  // Whether anyone but this object still holds the file open.
  bool shared() const { return fd_.use_count() > 1; }

 private:
  std::shared_ptr<int> fd_;
};

Response FileResponse(FileBody body) {
  Response resp;
  resp.headers.Set("Content-Type", "application/octet-stream");
  resp.body_file = std::move(body);
  return resp;
}

// A request its worker takes straight off a kept connection finds the socket out of the
// I/O threads' epoll set; whatever the handler does through them (a body that arrives
// late, a streamed response, a file body) must still work, and so must the next request.
TEST(HttpServerTest, KeptConnectionServesBodiesThatNeedTheIoThreads) {
  const std::string big = Pattern(700 * 1024);
  OpenFile file(big);
  auto server = StartServer([&](Request& req) {
    if (req.target == "/file") return FileResponse(file.Region(0, big.size()));
    Result<std::string> body = req.body->ReadAll(1 << 20);
    if (!body.ok()) return Text(400, body.status().message());
    Response resp;
    resp.stream_length = body->size() + big.size();
    resp.body_stream = [&big, got = *body](BodyWriter& w) -> Status {
      NIMBUS_RETURN_IF_ERROR(w.Write(got));
      return w.Write(big);
    };
    return resp;
  });
  RawClient client(server->port());
  for (int i = 0; i < 6; ++i) {
    if (i % 3 == 2) {
      ASSERT_TRUE(client.Send("GET /file HTTP/1.1\r\nHost: x\r\n\r\n"));
      std::optional<RawResponse> resp = client.ReadResponse();
      ASSERT_TRUE(resp);
      EXPECT_TRUE(resp->body == big) << i;
      continue;
    }
    // The header first, the body only once the worker has begun to wait for it.
    ASSERT_TRUE(client.Send("PUT /s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(client.Send("body" + std::to_string(i)));
    std::optional<RawResponse> resp = client.ReadResponse();
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 200);
    EXPECT_TRUE(resp->body == "body" + std::to_string(i) + big) << i;
  }
}

TEST(HttpServerTest, SendsFileBodyWholeAndByRegionOnOneConnection) {
  const std::string data = Pattern(3 * 1024 * 1024 + 17);
  OpenFile file(data);
  auto server = StartServer([&](Request& req) {
    if (req.path == "/all") return FileResponse(file.Region(0, data.size()));
    if (req.path == "/part") return FileResponse(file.Region(1000, 2 * 1024 * 1024 + 5));
    if (req.path == "/empty") return FileResponse(file.Region(5, 0));
    return Text(200, "text");
  });
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("GET /all HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<RawResponse> all = client.ReadResponse();
  ASSERT_TRUE(all);
  EXPECT_EQ(all->status, 200);
  EXPECT_EQ(all->Get("content-length"), std::to_string(data.size()));
  EXPECT_EQ(all->Get("content-type"), "application/octet-stream");
  EXPECT_TRUE(all->body == data);

  ASSERT_TRUE(
      client.Send("GET /part HTTP/1.1\r\nHost: x\r\n\r\nGET /empty HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /text HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<RawResponse> part = client.ReadResponse();
  ASSERT_TRUE(part);
  EXPECT_EQ(part->Get("content-length"), std::to_string(2 * 1024 * 1024 + 5));
  EXPECT_TRUE(part->body == data.substr(1000, 2 * 1024 * 1024 + 5));
  std::optional<RawResponse> empty = client.ReadResponse();
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->Get("content-length"), "0");
  EXPECT_EQ(empty->body, "");
  std::optional<RawResponse> text = client.ReadResponse();
  ASSERT_TRUE(text);
  EXPECT_EQ(text->body, "text");
  EXPECT_FALSE(text->Has("connection"));
  // The server let go of the file once each body was sent.
  EXPECT_TRUE(WaitFor([&] { return !file.shared(); }));
}

TEST(HttpServerTest, SmallFileBodiesGoOutWhole) {
  const std::string data = Pattern(64 * 1024 + 1);
  OpenFile file(data);
  auto server = StartServer([&](Request& req) {
    if (req.path == "/small") return FileResponse(file.Region(7, 4096));
    if (req.path == "/limit") return FileResponse(file.Region(1, 64 * 1024));
    return FileResponse(file.Region(0, data.size()));
  });
  RawClient client(server->port());
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(client.Send("GET /small HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::optional<RawResponse> small = client.ReadResponse();
    ASSERT_TRUE(small);
    EXPECT_TRUE(small->body == data.substr(7, 4096));
    ASSERT_TRUE(client.Send("GET /limit HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::optional<RawResponse> limit = client.ReadResponse();
    ASSERT_TRUE(limit);
    EXPECT_TRUE(limit->body == data.substr(1, 64 * 1024));
    ASSERT_TRUE(client.Send("GET /whole HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::optional<RawResponse> whole = client.ReadResponse();
    ASSERT_TRUE(whole);
    EXPECT_TRUE(whole->body == data);
  }
  EXPECT_TRUE(WaitFor([&] { return !file.shared(); }));
}

TEST(HttpServerTest, HeadOfFileBodyHasItsLengthButNoBody) {
  const std::string data = Pattern(1024 * 1024);
  OpenFile file(data);
  auto server = StartServer([&](Request& req) {
    if (req.path == "/file") return FileResponse(file.Region(10, data.size() - 10));
    return Text(200, "after");
  });
  RawClient client(server->port());
  ASSERT_TRUE(
      client.Send("HEAD /file HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<RawResponse> head = client.ReadResponse(/*head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Get("content-length"), std::to_string(data.size() - 10));
  std::optional<RawResponse> next = client.ReadResponse();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "after");  // not file bytes: the HEAD response carried none
}

TEST(HttpServerTest, ClientDisconnectMidFileBodyDoesNotWedgeTheServer) {
  const std::string data = Pattern(64 * 1024 * 1024);
  OpenFile file(data);
  auto server = StartServer([&](Request& req) {
    if (req.path == "/big") return FileResponse(file.Region(0, data.size()));
    return Text(200, "still here");
  });
  {
    RawClient client(server->port());
    ASSERT_TRUE(client.Send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(WaitFor([&] { return file.shared(); }));  // the server is sending it
    // Let the server fill the socket buffers and wait for the client to read.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(WaitFor([&] { return server->active_connections() == 0; }));
  EXPECT_TRUE(WaitFor([&] { return !file.shared(); }));
  RawClient again(server->port());
  ASSERT_TRUE(again.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<RawResponse> resp = again.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->body, "still here");
  again.Close();
  const auto start = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(SecondsSince(start), 2.0);
}

TEST(HttpServerTest, ClientThatStopsReadingAFileBodyTimesOut) {
  const std::string data = Pattern(64 * 1024 * 1024);
  OpenFile file(data);
  ServerOptions options = TestOptions();
  options.idle_timeout_seconds = 0.5;
  auto server =
      StartServer([&](Request&) { return FileResponse(file.Region(0, data.size())); }, options);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(WaitFor([&] { return file.shared(); }));  // the server is sending it
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(WaitFor([&] { return server->active_connections() == 0; }, 4));
  EXPECT_GE(SecondsSince(start), 0.3);
  EXPECT_TRUE(WaitFor([&] { return !file.shared(); }));
}

TEST(HttpServerTest, StopWhileClientStallsOnFileBodyEndsAfterGrace) {
  const std::string data = Pattern(64 * 1024 * 1024);
  OpenFile file(data);
  ServerOptions options = TestOptions();
  options.shutdown_grace_seconds = 0.5;
  auto server =
      StartServer([&](Request&) { return FileResponse(file.Region(0, data.size())); }, options);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(WaitFor([&] { return file.shared(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(SecondsSince(start), 3.0);
  EXPECT_EQ(server->active_connections(), 0u);
  EXPECT_FALSE(file.shared());
}

TEST(HttpClientTest, FailsWhenNothingListens) {
  auto server = StartServer(Echo);
  uint16_t port = server->port();
  server->Stop();
  Result<ClientResponse> resp = HttpCall("127.0.0.1", port, "GET", "/", Headers(), "", 2);
  EXPECT_FALSE(resp.ok());
}

TEST(HttpClientTest, TimesOutOnSlowServer) {
  auto server = StartServer([](Request&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return Text(200, "late");
  });
  auto start = std::chrono::steady_clock::now();
  Result<ClientResponse> resp =
      HttpCall("127.0.0.1", server->port(), "GET", "/", Headers(), "", 0.1);
  EXPECT_FALSE(resp.ok());
  EXPECT_LT(SecondsSince(start), 0.4);
}

TEST(HttpClientTest, SkipsContinueAndReadsHeadWithoutBody) {
  auto server = StartServer([](Request& req) {
    Result<std::string> body = req.body->ReadAll(1024);
    return Text(200, req.method + ":" + body.value());
  });
  Headers headers;
  headers.Add("Expect", "100-continue");
  Result<ClientResponse> put = HttpCall("127.0.0.1", server->port(), "PUT", "/", headers, "data");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->status, 200);
  EXPECT_EQ(put->body, "PUT:data");
  Result<ClientResponse> head = HttpCall("127.0.0.1", server->port(), "HEAD", "/", Headers(), "");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->body, "");
  EXPECT_EQ(head->headers.Get("Content-Length"), "5");
}

}  // namespace
}  // namespace nimbus::http
