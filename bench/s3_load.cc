// s3_load: the load generator of bench/s3_bench.sh. It drives one S3-style HTTP server
// (Nimbus, or nginx with WebDAV PUT) over keep-alive loopback connections and prints one
// JSON line of results. Every request is SigV4-signed the way the AWS SDKs sign S3
// requests (a server that ignores the Authorization header, like nginx, gets the very same
// bytes), so both servers see identical traffic and the client does identical work.
//
// Large bodies are streamed: a PUT sends a generated 1 MiB pattern over and over (signed
// UNSIGNED-PAYLOAD, so the client never hashes it) and a GET reads straight from the socket
// into a reused buffer and discards it. Neither ever holds the object in memory.
//
// Each concurrent client is a thread with its own blocking connection: with at most a few
// dozen clients that costs less than an event loop's bookkeeping and keeps every client's
// latency honest.
//
// Thread-safety: a Connection belongs to one thread; the signing key cache is shared
// (sigv4 guards it).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <latch>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "aws/sigv4/sigv4.h"
#include "core/crypto.h"
#include "core/strings.h"
#include "http/types.h"

namespace nimbus::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kPatternBytes = 1 << 20;
constexpr size_t kReadBufferBytes = 4 << 20;

struct Options {
  std::string command;
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string bucket = "bench";
  std::string key = "large";
  std::string prefix = "small";
  uint64_t size = 4096;
  int concurrency = 1;
  double duration = 5;
  int keys = 256;
  std::string access_key;
  std::string secret_key;
  std::string region = "us-east-1";
};

// A deterministic, incompressible byte pattern (xorshift64), the same on every run.
std::string MakePattern(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  uint64_t x = seed | 1;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(out.data() + i, &x, std::min<size_t>(8, n - i));
  }
  return out;
}

double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

double WallNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Signs method + target for host with the given payload hash (hex digest or literal) and
// copies the resulting headers onto a Beast request header.
template <class Fields>
void SignInto(const Options& options, std::string_view method, const std::string& target,
              std::string_view payload_hash, bhttp::header<true, Fields>& out) {
  http::Request request;
  request.method = std::string(method);
  request.target = target;
  request.SplitTarget();
  request.headers.Set("Host", options.host + ":" + std::to_string(options.port));
  aws::sigv4::SignRequestWithPayloadHash(request, options.access_key, options.secret_key,
                                         options.region, "s3", WallNow(), payload_hash, "",
                                         /*s3=*/true);
  out.method_string(request.method);
  out.target(target);
  out.version(11);
  for (const auto& [name, value] : request.headers.entries()) out.set(name, value);
}

std::string ObjectTarget(const Options& options, std::string_view key) {
  return "/" + options.bucket + "/" + UriEncode(key, /*keep_slash=*/true);
}

// One keep-alive connection. Any transport error closes it; the next request reconnects.
class Connection {
 public:
  explicit Connection(const Options& options) : options_(options), socket_(ioc_) {}

  bool Ensure(std::string* error) {
    if (socket_.is_open()) return true;
    error_code ec;
    tcp::resolver resolver(ioc_);
    auto endpoints = resolver.resolve(options_.host, std::to_string(options_.port), ec);
    if (!ec) asio::connect(socket_, endpoints, ec);
    if (!ec) socket_.set_option(tcp::no_delay(true), ec);
    if (ec) {
      *error = "connect: " + ec.message();
      Close();
      return false;
    }
    buffer_.clear();
    return true;
  }

  // Sends a request with an in-memory body and reads the whole response. Returns the HTTP
  // status, or 0 with *error set when the exchange failed.
  int RoundTrip(bhttp::request<bhttp::string_body>& request, std::string* body,
                std::string* error) {
    if (!Ensure(error)) return 0;
    request.prepare_payload();
    error_code ec;
    bhttp::write(socket_, request, ec);
    if (ec) return Fail("write", ec, error);
    bhttp::response<bhttp::string_body> response;
    bhttp::read(socket_, buffer_, response, ec);
    if (ec) return Fail("read", ec, error);
    if (!response.keep_alive()) Close();
    if (body != nullptr) *body = std::move(response.body());
    return static_cast<int>(response.result_int());
  }

  // Sends a request whose body is `size` bytes of `pattern` repeated, written as it goes.
  int StreamingPut(bhttp::request<bhttp::empty_body>& request, uint64_t size,
                   const std::string& pattern, std::string* error) {
    if (!Ensure(error)) return 0;
    request.content_length(size);
    error_code ec;
    bhttp::request_serializer<bhttp::empty_body> serializer(request);
    bhttp::write_header(socket_, serializer, ec);
    if (ec) return Fail("write header", ec, error);
    for (uint64_t sent = 0; sent < size;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(pattern.size(), size - sent));
      asio::write(socket_, asio::buffer(pattern.data(), n), ec);
      if (ec) return Fail("write body", ec, error);
      sent += n;
    }
    bhttp::response<bhttp::string_body> response;
    bhttp::read(socket_, buffer_, response, ec);
    if (ec) return Fail("read", ec, error);
    if (!response.keep_alive()) Close();
    if (response.result_int() >= 300) *error = response.body().substr(0, 400);
    return static_cast<int>(response.result_int());
  }

  // Sends a bodiless request and reads the response body into a reused buffer, counting and
  // discarding it. *received is the number of body bytes.
  int StreamingGet(bhttp::request<bhttp::empty_body>& request, uint64_t* received,
                   std::string* error) {
    *received = 0;
    if (!Ensure(error)) return 0;
    error_code ec;
    bhttp::write(socket_, request, ec);
    if (ec) return Fail("write", ec, error);
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    bhttp::read_header(socket_, buffer_, parser, ec);
    if (ec) return Fail("read header", ec, error);
    int status = static_cast<int>(parser.get().result_int());
    read_buffer_.resize(kReadBufferBytes);
    if (parser.content_length() && !parser.chunked()) {
      // Fast path: what the header read already buffered, then straight from the socket.
      uint64_t remaining = *parser.content_length();
      size_t buffered = static_cast<size_t>(std::min<uint64_t>(buffer_.size(), remaining));
      buffer_.consume(buffered);
      remaining -= buffered;
      *received += buffered;
      while (remaining > 0) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(read_buffer_.size(), remaining));
        size_t n = socket_.read_some(asio::buffer(read_buffer_.data(), want), ec);
        if (ec) return Fail("read body", ec, error);
        remaining -= n;
        *received += n;
      }
    } else {
      while (!parser.is_done()) {
        parser.get().body().data = read_buffer_.data();
        parser.get().body().size = read_buffer_.size();
        bhttp::read(socket_, buffer_, parser, ec);
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec) return Fail("read body", ec, error);
        *received += read_buffer_.size() - parser.get().body().size;
      }
    }
    if (!parser.get().keep_alive()) Close();
    return status;
  }

 private:
  int Fail(const char* what, error_code ec, std::string* error) {
    *error = std::string(what) + ": " + ec.message();
    Close();
    return 0;
  }

  void Close() {
    error_code ignored;
    socket_.close(ignored);
    buffer_.clear();
  }

  const Options& options_;
  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::vector<char> read_buffer_;
};

// Per-client tallies of a timed run.
struct ClientStats {
  uint64_t ok = 0;
  uint64_t errors = 0;
  std::string first_error;
  std::vector<double> latencies;  // seconds, successful operations only
};

void PrintResult(const Options& options, uint64_t ops, uint64_t errors, uint64_t bytes,
                 double seconds, std::vector<double> latencies, const std::string& error) {
  std::sort(latencies.begin(), latencies.end());
  auto percentile = [&](double p) {
    if (latencies.empty()) return 0.0;
    size_t i = static_cast<size_t>(p * static_cast<double>(latencies.size() - 1));
    return latencies[i] * 1000;
  };
  std::string escaped;
  for (char c : error) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
  }
  std::printf(
      "{\"command\":\"%s\",\"concurrency\":%d,\"ops\":%llu,\"errors\":%llu,\"bytes\":%llu,"
      "\"seconds\":%.4f,\"ops_per_s\":%.1f,\"mib_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
      "\"error\":\"%s\"}\n",
      options.command.c_str(), options.concurrency, static_cast<unsigned long long>(ops),
      static_cast<unsigned long long>(errors), static_cast<unsigned long long>(bytes), seconds,
      seconds > 0 ? static_cast<double>(ops) / seconds : 0.0,
      seconds > 0 ? static_cast<double>(bytes) / seconds / (1 << 20) : 0.0, percentile(0.5),
      percentile(0.99), escaped.c_str());
  std::fflush(stdout);
}

int CreateBucket(const Options& options) {
  Connection connection(options);
  bhttp::request<bhttp::string_body> request;
  SignInto(options, "PUT", "/" + options.bucket, aws::sigv4::kEmptySha256, request);
  std::string body, error;
  auto start = SteadyClock::now();
  int status = connection.RoundTrip(request, &body, &error);
  // 409 BucketAlreadyOwnedByYou: a rerun on the same data dir.
  bool ok = (status >= 200 && status < 300) || status == 409;
  if (!ok && error.empty()) error = "HTTP " + std::to_string(status) + ": " + body.substr(0, 400);
  PrintResult(options, ok ? 1 : 0, ok ? 0 : 1, 0, SecondsSince(start), {}, error);
  return ok ? 0 : 1;
}

int PutLarge(const Options& options) {
  Connection connection(options);
  std::string pattern = MakePattern(kPatternBytes, 0x5eed);
  bhttp::request<bhttp::empty_body> request;
  SignInto(options, "PUT", ObjectTarget(options, options.key), aws::sigv4::kUnsignedPayload,
           request);
  std::string error;
  auto start = SteadyClock::now();
  int status = connection.StreamingPut(request, options.size, pattern, &error);
  double seconds = SecondsSince(start);
  bool ok = status >= 200 && status < 300;
  if (!ok && status != 0) error = "HTTP " + std::to_string(status) + ": " + error;
  PrintResult(options, ok ? 1 : 0, ok ? 0 : 1, ok ? options.size : 0, seconds, {seconds}, error);
  return ok ? 0 : 1;
}

int GetLarge(const Options& options) {
  Connection connection(options);
  bhttp::request<bhttp::empty_body> request;
  SignInto(options, "GET", ObjectTarget(options, options.key), aws::sigv4::kEmptySha256, request);
  std::string error;
  uint64_t received = 0;
  auto start = SteadyClock::now();
  int status = connection.StreamingGet(request, &received, &error);
  double seconds = SecondsSince(start);
  bool ok = status == 200 && received == options.size;
  if (!ok && error.empty()) {
    error = "HTTP " + std::to_string(status) + ", " + std::to_string(received) + " of " +
            std::to_string(options.size) + " bytes";
  }
  PrintResult(options, ok ? 1 : 0, ok ? 0 : 1, received, seconds, {seconds}, error);
  return ok ? 0 : 1;
}

// One small PUT of `body` (whose hex SHA-256 is body_hash) to key.
bool PutSmall(const Options& options, Connection& connection, const std::string& key,
              const std::string& body, const std::string& body_hash, std::string* error) {
  bhttp::request<bhttp::string_body> request;
  SignInto(options, "PUT", ObjectTarget(options, key), body_hash, request);
  request.body() = body;
  std::string response_body;
  int status = connection.RoundTrip(request, &response_body, error);
  if (status >= 200 && status < 300) return true;
  if (status != 0) *error = "HTTP " + std::to_string(status) + ": " + response_body.substr(0, 400);
  return false;
}

bool GetSmall(const Options& options, Connection& connection, const std::string& key,
              std::string* error) {
  bhttp::request<bhttp::string_body> request;
  SignInto(options, "GET", ObjectTarget(options, key), aws::sigv4::kEmptySha256, request);
  std::string body;
  int status = connection.RoundTrip(request, &body, error);
  if (status == 200 && body.size() == options.size) return true;
  if (status != 0) {
    *error = "HTTP " + std::to_string(status) + " with " + std::to_string(body.size()) +
             " bytes: " + body.substr(0, 400);
  }
  return false;
}

std::string PopulatedKey(const Options& options, int i) {
  return options.prefix + "/" + std::to_string(i);
}

int Populate(const Options& options) {
  Connection connection(options);
  std::string body = MakePattern(options.size, 0xb0d7);
  std::string hash = HexEncode(Sha256(body));
  std::string error;
  auto start = SteadyClock::now();
  for (int i = 0; i < options.keys; ++i) {
    if (!PutSmall(options, connection, PopulatedKey(options, i), body, hash, &error)) {
      PrintResult(options, static_cast<uint64_t>(i), 1, 0, SecondsSince(start), {}, error);
      return 1;
    }
  }
  PrintResult(options, static_cast<uint64_t>(options.keys), 0,
              static_cast<uint64_t>(options.keys) * options.size, SecondsSince(start), {}, "");
  return 0;
}

// Runs `concurrency` clients for `duration` seconds; each calls op(client, connection,
// sequence, &error) back to back. The clock starts once every client is connected.
template <class Op>
int Timed(const Options& options, Op op) {
  std::vector<ClientStats> stats(static_cast<size_t>(options.concurrency));
  std::latch ready(options.concurrency + 1);
  std::atomic<bool> go{false};
  std::atomic<int64_t> deadline_ns{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < options.concurrency; ++c) {
    threads.emplace_back([&, c] {
      ClientStats& mine = stats[static_cast<size_t>(c)];
      mine.latencies.reserve(1 << 16);
      Connection connection(options);
      std::string error;
      if (!connection.Ensure(&error)) {
        ++mine.errors;
        mine.first_error = error;
      }
      ready.count_down();
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (uint64_t seq = 0;; ++seq) {
        auto begin = SteadyClock::now();
        if (begin.time_since_epoch().count() >= deadline_ns.load(std::memory_order_relaxed)) break;
        error.clear();
        if (op(c, connection, seq, &error)) {
          ++mine.ok;
          mine.latencies.push_back(SecondsSince(begin));
        } else {
          if (mine.errors++ == 0) mine.first_error = error;
        }
      }
    });
  }
  ready.arrive_and_wait();
  auto start = SteadyClock::now();
  deadline_ns.store((start + std::chrono::duration_cast<SteadyClock::duration>(
                                 std::chrono::duration<double>(options.duration)))
                        .time_since_epoch()
                        .count());
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  double seconds = SecondsSince(start);

  uint64_t ok = 0, errors = 0;
  std::string first_error;
  std::vector<double> latencies;
  for (auto& s : stats) {
    ok += s.ok;
    errors += s.errors;
    if (first_error.empty()) first_error = s.first_error;
    latencies.insert(latencies.end(), s.latencies.begin(), s.latencies.end());
  }
  PrintResult(options, ok, errors, ok * options.size, seconds, std::move(latencies), first_error);
  return errors == 0 ? 0 : 1;
}

int PutSmallTimed(const Options& options) {
  std::string body = MakePattern(options.size, 0x5a11);
  std::string hash = HexEncode(Sha256(body));
  return Timed(options, [&](int client, Connection& connection, uint64_t seq, std::string* error) {
    std::string key = options.prefix + "/" + std::to_string(client) + "/" + std::to_string(seq);
    return PutSmall(options, connection, key, body, hash, error);
  });
}

int GetSmallTimed(const Options& options) {
  return Timed(options, [&](int client, Connection& connection, uint64_t seq, std::string* error) {
    // Clients walk the populated keys from different offsets.
    int i = static_cast<int>((seq * 7919 + static_cast<uint64_t>(client) * 104729) %
                             static_cast<uint64_t>(options.keys));
    return GetSmall(options, connection, PopulatedKey(options, i), error);
  });
}

const char kUsage[] =
    "usage: s3_load COMMAND --port P [options]\n"
    "commands:\n"
    "  create-bucket   PUT /BUCKET\n"
    "  put-large       PUT /BUCKET/KEY of --size bytes, streamed (UNSIGNED-PAYLOAD)\n"
    "  get-large       GET /BUCKET/KEY, expecting --size bytes, streamed and discarded\n"
    "  populate        PUT --keys objects of --size bytes at PREFIX/<i>, one connection\n"
    "  put-small       --concurrency clients PUT PREFIX/<client>/<n> for --duration seconds\n"
    "  get-small       --concurrency clients GET populated PREFIX/<i> for --duration seconds\n"
    "options: --host H (127.0.0.1) --port P --bucket B (bench) --key K (large)\n"
    "  --prefix P (small) --size N (4096) --concurrency C (1) --duration S (5) --keys N (256)\n"
    "  --access-key K --secret-key S (default: $NIMBUS_ROOT_ACCESS_KEY_ID /\n"
    "  $NIMBUS_ROOT_SECRET_ACCESS_KEY) --region R (us-east-1)\n"
    "Prints one JSON line: ops, errors, bytes, seconds, ops_per_s, mib_per_s, p50_ms, p99_ms.\n";

std::optional<Options> ParseOptions(int argc, char** argv) {
  if (argc < 2) return std::nullopt;
  Options options;
  options.command = argv[1];
  const char* env_key = std::getenv("NIMBUS_ROOT_ACCESS_KEY_ID");
  const char* env_secret = std::getenv("NIMBUS_ROOT_SECRET_ACCESS_KEY");
  options.access_key = env_key != nullptr ? env_key : "AKIANIMBUSBENCH00001";
  options.secret_key = env_secret != nullptr ? env_secret : "nimbusBenchSecret";
  try {
    for (int i = 2; i < argc; i += 2) {
      std::string flag = argv[i];
      if (i + 1 >= argc) return std::nullopt;
      std::string value = argv[i + 1];
      if (flag == "--host") {
        options.host = value;
      } else if (flag == "--port") {
        options.port = static_cast<uint16_t>(std::stoi(value));
      } else if (flag == "--bucket") {
        options.bucket = value;
      } else if (flag == "--key") {
        options.key = value;
      } else if (flag == "--prefix") {
        options.prefix = value;
      } else if (flag == "--size") {
        options.size = std::stoull(value);
      } else if (flag == "--concurrency") {
        options.concurrency = std::max(1, std::stoi(value));
      } else if (flag == "--duration") {
        options.duration = std::stod(value);
      } else if (flag == "--keys") {
        options.keys = std::max(1, std::stoi(value));
      } else if (flag == "--access-key") {
        options.access_key = value;
      } else if (flag == "--secret-key") {
        options.secret_key = value;
      } else if (flag == "--region") {
        options.region = value;
      } else {
        return std::nullopt;
      }
    }
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (options.port == 0) return std::nullopt;
  return options;
}

int Run(int argc, char** argv) {
  std::optional<Options> options = ParseOptions(argc, argv);
  if (!options) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  static const std::map<std::string, int (*)(const Options&)> kCommands = {
      {"create-bucket", CreateBucket}, {"put-large", PutLarge},      {"get-large", GetLarge},
      {"populate", Populate},          {"put-small", PutSmallTimed}, {"get-small", GetSmallTimed},
  };
  auto it = kCommands.find(options->command);
  if (it == kCommands.end()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  return it->second(*options);
}

}  // namespace
}  // namespace nimbus::bench

int main(int argc, char** argv) {
  try {
    return nimbus::bench::Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "s3_load: %s\n", e.what());
    return 1;
  }
}
