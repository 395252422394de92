// The router and the Unix-socket HTTP wire under it: real model servers (UnixHttpServer +
// ServeModelRequest over a scripted handler) on sockets in a temp directory.
#include "serving/router.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "serving/model_server.h"
#include "serving/unix_http.h"

namespace nimbus::serving {
namespace {

// Echoes the request, prefixed with its name; "fail" bodies answer 400, "slow" ones after
// 300 ms.
class EchoHandler : public InferenceHandler {
 public:
  explicit EchoHandler(std::string name) : name_(std::move(name)) {}
  Result<InvocationResult> Invoke(const Invocation& request) override {
    calls++;
    if (request.body == "fail") return InvocationResult{400, "text/plain", "bad row 1", ""};
    if (request.body == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return InvocationResult{
        200, "text/csv",
        name_ + ":" + request.content_type + ":" + request.accept + ":" + request.body,
        request.custom_attributes};
  }
  bool Ping() override { return healthy.load(); }
  std::atomic<int> calls{0};
  std::atomic<bool> healthy{true};

 private:
  std::string name_;
};

class ModelServerProcess {
 public:
  ModelServerProcess(const std::string& path, std::string name) : handler(std::move(name)) {
    auto fd = UnixListen(path);
    EXPECT_TRUE(fd.ok()) << fd.status().ToString();
    server = std::make_unique<UnixHttpServer>(
        *fd, [this](const HttpMessage& request) { return ServeModelRequest(handler, 2, request); });
    thread = std::thread([this] { server->Run(); });
  }
  ~ModelServerProcess() {
    server->Stop();
    thread.join();
  }
  EchoHandler handler;
  std::unique_ptr<UnixHttpServer> server;
  std::thread thread;
};

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-router-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(RouterTest, ForwardsHeadersAndBodyAndKeepsConnectionsAlive) {
  ModelServerProcess model(dir_ + "/a.sock", "a");
  ConnectionPool pool(dir_ + "/a.sock");
  for (int i = 0; i < 20; ++i) {
    auto response = pool.Call(
        "POST", "/invocations",
        {{"Content-Type", "text/csv"}, {"Accept", "text/csv"}, {kCustomAttributesHeader, "k=v"}},
        "1,2," + std::to_string(i));
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "a:text/csv:text/csv:1,2," + std::to_string(i));
    EXPECT_EQ(response->Header("x-amzn-sagemaker-custom-attributes"), "k=v");
  }
  auto ping = pool.Call("GET", "/ping", {}, "");
  ASSERT_TRUE(ping.ok());
  EXPECT_EQ(ping->status, 200);
  model.handler.healthy = false;
  ping = pool.Call("GET", "/ping", {}, "");
  ASSERT_TRUE(ping.ok());
  EXPECT_EQ(ping->status, 503);
  auto missing = pool.Call("GET", "/nope", {}, "");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
}

TEST_F(RouterTest, LongSocketPathsAreReachedThroughTheirDirectory) {
  std::string deep = dir_ + "/" + std::string(60, 'd') + "/" + std::string(60, 'e');
  std::filesystem::create_directories(deep);
  ModelServerProcess model(deep + "/serve.sock", "deep");
  ConnectionPool pool(deep + "/serve.sock");
  auto response = pool.Call("POST", "/invocations", {}, "x");
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->body, "deep:::x");
}

TEST_F(RouterTest, AServerThatWentAwayIsAnErrorAndAFreshOneIsReachedAgain) {
  ConnectionPool pool(dir_ + "/b.sock");
  {
    ModelServerProcess model(dir_ + "/b.sock", "b1");
    ASSERT_TRUE(pool.Call("POST", "/invocations", {}, "x").ok());
  }
  EXPECT_FALSE(pool.Call("POST", "/invocations", {}, "x").ok());
  ModelServerProcess again(dir_ + "/b.sock", "b2");
  auto response = pool.Call("POST", "/invocations", {}, "x");
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->body, "b2:::x");
}

TEST_F(RouterTest, AnAnswerLateForTheTimeoutFailsAndLargeBodiesArriveWhole) {
  ModelServerProcess model(dir_ + "/t.sock", "t");
  ConnectionPool pool(dir_ + "/t.sock");
  auto late = pool.Call("POST", "/invocations", {}, "slow", 0.05);
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.status().message().find("timed out"), std::string::npos)
      << late.status().ToString();
  auto in_time = pool.Call("POST", "/invocations", {}, "slow", 5);
  ASSERT_TRUE(in_time.ok()) << in_time.status().ToString();
  EXPECT_EQ(in_time->body, "t:::slow");
  std::string large(5 << 20, 'x');
  for (size_t i = 0; i < large.size(); i += 4093) large[i] = static_cast<char>('a' + i % 26);
  auto echoed = pool.Call("POST", "/invocations", {}, large);
  ASSERT_TRUE(echoed.ok()) << echoed.status().ToString();
  EXPECT_EQ(echoed->body, "t:::" + large);
}

TEST_F(RouterTest, PicksVariantsByWeightAndSkipsOnesOutOfRotation) {
  auto a = std::make_shared<Instance>("a", dir_ + "/a.sock");
  auto b = std::make_shared<Instance>("b", dir_ + "/b.sock");
  a->in_rotation = true;
  b->in_rotation = true;
  EndpointRoute route{"e", {{"A", 3, {a}}, {"B", 1, {b}}}};
  std::map<std::string, int> picks;
  for (int i = 0; i < 4000; ++i) picks[Router::PickVariant(route, (i + 0.5) / 4000)->name]++;
  EXPECT_EQ(picks["A"], 3000);
  EXPECT_EQ(picks["B"], 1000);
  b->in_rotation = false;
  EXPECT_EQ(Router::PickVariant(route, 0.99)->name, "A");
  a->in_rotation = false;
  EXPECT_EQ(Router::PickVariant(route, 0.5), nullptr);
  // Zero weights everywhere still answer through any variant that can.
  b->in_rotation = true;
  EndpointRoute zero{"e", {{"A", 0, {a}}, {"B", 0, {b}}}};
  EXPECT_EQ(Router::PickVariant(zero, 0.5)->name, "B");
}

TEST_F(RouterTest, PicksTheInstanceWithFewestOutstandingRequests) {
  auto a = std::make_shared<Instance>("a", "unused");
  auto b = std::make_shared<Instance>("b", "unused");
  auto c = std::make_shared<Instance>("c", "unused");
  for (auto& i : {a, b, c}) i->in_rotation = true;
  a->outstanding = 3;
  b->outstanding = 1;
  c->outstanding = 2;
  VariantRoute variant{"V", 1, {a, b, c}};
  EXPECT_EQ(Router::PickInstance(variant, 0)->id, "b");
  b->in_rotation = false;
  EXPECT_EQ(Router::PickInstance(variant, 0)->id, "c");
  c->outstanding = 3;
  // Ties rotate with the start position.
  EXPECT_EQ(Router::PickInstance(variant, 0)->id, "a");
  EXPECT_EQ(Router::PickInstance(variant, 2)->id, "c");
}

TEST_F(RouterTest, InvokesTargetVariantsAndReportsModelErrorsAsAnswers) {
  ModelServerProcess ma(dir_ + "/a.sock", "a");
  ModelServerProcess mb(dir_ + "/b.sock", "b");
  auto a = std::make_shared<Instance>("a", dir_ + "/a.sock");
  auto b = std::make_shared<Instance>("b", dir_ + "/b.sock");
  a->in_rotation = true;
  b->in_rotation = true;
  EndpointRoute route{"e", {{"A", 1, {a}}, {"B", 1, {b}}}};
  Router router;
  auto routed = router.Invoke(route, "B", Invocation{"text/csv", "", "", "1"});
  ASSERT_TRUE(routed.ok()) << routed.status().ToString();
  EXPECT_EQ(routed->variant, "B");
  EXPECT_EQ(routed->response.body, "b:text/csv::1");
  EXPECT_GT(routed->model_seconds, 0);
  auto error = router.Invoke(route, "A", Invocation{"text/csv", "", "", "fail"});
  ASSERT_TRUE(error.ok());
  EXPECT_EQ(error->response.status, 400);
  EXPECT_EQ(error->response.body, "bad row 1");
  auto unknown = router.Invoke(route, "C", Invocation{});
  EXPECT_EQ(unknown.status().kind(), ErrorKind::kNotFound);
  EXPECT_EQ(a->outstanding.load(), 0);
}

TEST_F(RouterTest, ConcurrentRequestsAreSpreadOverInstances) {
  ModelServerProcess ma(dir_ + "/a.sock", "a");
  ModelServerProcess mb(dir_ + "/b.sock", "b");
  auto a = std::make_shared<Instance>("a", dir_ + "/a.sock");
  auto b = std::make_shared<Instance>("b", dir_ + "/b.sock");
  a->in_rotation = true;
  b->in_rotation = true;
  EndpointRoute route{"e", {{"V", 1, {a, b}}}};
  Router router;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        auto r = router.Invoke(route, "", Invocation{"text/csv", "", "", "1"});
        if (r.ok() && r->response.status == 200) ok++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 800);
  EXPECT_GT(ma.handler.calls.load(), 100);
  EXPECT_GT(mb.handler.calls.load(), 100);
}

}  // namespace
}  // namespace nimbus::serving
