// The dispatcher's own decisions, with fake credentials and authorization and the real
// embedded models: authentication outcomes, authorization, missing handlers, and how
// streamed bodies reach the response.
#include "aws/dispatcher.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <memory>
#include <set>
#include <string>

#include "aws/sigv4/sigv4.h"
#include "core/strings.h"

namespace nimbus::aws {
namespace {

constexpr double kNow = 1764115200;  // 2025-11-26T00:00:00Z
constexpr char kKey[] = "AKIATESTKEY000000001";
constexpr char kSecret[] = "testsecrettestsecrettestsecrettestsecret";

class FakeCredentials : public CredentialStore {
 public:
  Result<Credential> Lookup(std::string_view access_key_id) override {
    if (access_key_id != kKey) return Status::NotFound("no such key");
    Credential c;
    c.secret_access_key = kSecret;
    c.principal.type = Principal::Type::kUser;
    c.principal.arn = "arn:aws:iam::123456789012:user/alice";
    c.principal.account_id = "123456789012";
    return c;
  }
};

class FakeAuthorizer : public Authorizer {
 public:
  Status Authorize(const Principal& principal, std::string_view action,
                   std::string_view resource) override {
    last_action = std::string(action);
    last_resource = std::string(resource);
    if (denied.count(last_action)) return Status::AccessDenied("denied " + last_action);
    return Status::Ok();
  }
  std::set<std::string> denied;
  std::string last_action, last_resource;
};

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest()
      : clock_(kNow),
        dispatcher_(model::ModelRegistry::Embedded(), services_, credentials_, authorizer_, clock_,
                    DispatcherOptions{}) {}

  // A signed STS query request, like the AWS CLI sends.
  http::Response CallSts(const std::string& body, bool sign = true,
                         const std::string& secret = kSecret) {
    http::Request request;
    request.method = "POST";
    request.target = "/";
    request.SplitTarget();
    request.headers.Add("Host", "127.0.0.1:4566");
    request.headers.Add("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
    if (sign) sigv4::SignRequest(request, kKey, secret, "us-east-1", "sts", kNow, body);
    http::StringBodyReader reader(body);
    request.body = &reader;
    return dispatcher_.Handle(request);
  }

  FakeClock clock_;
  ServiceRegistry services_;
  FakeCredentials credentials_;
  FakeAuthorizer authorizer_;
  Dispatcher dispatcher_;
};

const std::string kGetCallerIdentity = "Action=GetCallerIdentity&Version=2011-06-15";

TEST_F(DispatcherTest, PassesTheAuthenticatedPrincipalToTheHandler) {
  std::string seen;
  services_.Register("sts", "GetCallerIdentity", [&](const Value&, RequestContext& ctx) {
    seen = ctx.principal.arn;
    return Result<Value>(Value::Object({{"Arn", ctx.principal.arn}}));
  });
  http::Response response = CallSts(kGetCallerIdentity);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(seen, "arn:aws:iam::123456789012:user/alice");
  EXPECT_NE(response.body.find("<Arn>arn:aws:iam::123456789012:user/alice</Arn>"),
            std::string::npos);
  EXPECT_EQ(authorizer_.last_action, "sts:GetCallerIdentity");
  EXPECT_FALSE(response.headers.Get("x-amzn-RequestId").empty());
}

TEST_F(DispatcherTest, RefusesUnsignedWrongSecretAndUnknownKey) {
  services_.Register("sts", "GetCallerIdentity",
                     [](const Value&, RequestContext&) { return Result<Value>(Value::MakeMap()); });
  http::Response unsigned_response = CallSts(kGetCallerIdentity, /*sign=*/false);
  EXPECT_EQ(unsigned_response.status, 403);
  EXPECT_NE(unsigned_response.body.find("MissingAuthenticationToken"), std::string::npos);
  http::Response wrong = CallSts(kGetCallerIdentity, true, std::string(40, 'x'));
  EXPECT_EQ(wrong.status, 403);
  EXPECT_NE(wrong.body.find("SignatureDoesNotMatch"), std::string::npos);
}

TEST_F(DispatcherTest, DeniedActionNeverReachesTheHandler) {
  bool called = false;
  services_.Register("sts", "GetCallerIdentity", [&](const Value&, RequestContext&) {
    called = true;
    return Result<Value>(Value::MakeMap());
  });
  authorizer_.denied.insert("sts:GetCallerIdentity");
  http::Response response = CallSts(kGetCallerIdentity);
  EXPECT_EQ(response.status, 403);
  EXPECT_NE(response.body.find("<Code>AccessDenied</Code>"), std::string::npos);
  EXPECT_FALSE(called);
}

TEST_F(DispatcherTest, RegisteredActionNameAndResourceAreWhatIsAuthorized) {
  Registration registration;
  registration.handler = [](const Value&, RequestContext&) {
    return Result<Value>(Value::MakeMap());
  };
  registration.resource = [](const Value&, const RequestContext&) {
    return std::string("arn:aws:sts::123456789012:thing");
  };
  registration.action = "sts:SomethingElse";
  services_.Register("sts", "GetCallerIdentity", std::move(registration));
  EXPECT_EQ(CallSts(kGetCallerIdentity).status, 200);
  EXPECT_EQ(authorizer_.last_action, "sts:SomethingElse");
  EXPECT_EQ(authorizer_.last_resource, "arn:aws:sts::123456789012:thing");
}

TEST_F(DispatcherTest, KnownOperationWithoutHandlerIsNotImplemented) {
  http::Response response = CallSts("Action=GetSessionToken&Version=2011-06-15");
  EXPECT_EQ(response.status, 501);
  EXPECT_NE(response.body.find("GetSessionToken"), std::string::npos);
}

TEST_F(DispatcherTest, SmallStreamsAreInlinedAndLargeOnesStreamed) {
  size_t size = 0;
  services_.Register("sts", "GetCallerIdentity", [&](const Value&, RequestContext& ctx) {
    ctx.response_stream = [&size](http::BodyWriter& writer) {
      return writer.Write(std::string(size, 'z'));
    };
    ctx.response_stream_length = size;
    return Result<Value>(Value::MakeMap());
  });
  size = 1000;
  http::Response small = CallSts(kGetCallerIdentity);
  EXPECT_EQ(small.body, std::string(1000, 'z'));
  EXPECT_FALSE(small.body_stream);
  size = 1 << 20;
  http::Response large = CallSts(kGetCallerIdentity);
  EXPECT_TRUE(large.body.empty());
  ASSERT_TRUE(large.body_stream);
  EXPECT_EQ(large.stream_length, uint64_t{1} << 20);
}

TEST_F(DispatcherTest, FailingSmallStreamBecomesAnError) {
  services_.Register("sts", "GetCallerIdentity", [](const Value&, RequestContext& ctx) {
    ctx.response_stream = [](http::BodyWriter&) { return Status::Internal("disk gone"); };
    ctx.response_stream_length = 10;
    ctx.response_status = 206;
    return Result<Value>(Value::MakeMap());
  });
  http::Response response = CallSts(kGetCallerIdentity);
  EXPECT_EQ(response.status, 500);
  EXPECT_NE(response.body.find("InternalFailure"), std::string::npos);
}

TEST_F(DispatcherTest, SmallFileBodiesAreInlinedAndLargeOnesSentAsFiles) {
  std::string path = ::testing::TempDir() + "nimbus_dispatch_file_XXXXXX";
  const int fd = ::mkstemp(path.data());
  ASSERT_GE(fd, 0);
  ::unlink(path.c_str());
  const std::string data = std::string(10, 'a') + std::string(1 << 20, 'b');
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  auto owner = std::shared_ptr<int>(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
  uint64_t offset = 0;
  uint64_t length = 0;
  services_.Register("sts", "GetCallerIdentity", [&](const Value&, RequestContext& ctx) {
    ctx.response_file = http::FileBody{fd, offset, length, owner};
    return Result<Value>(Value::MakeMap());
  });
  offset = 8;
  length = 4;
  http::Response small = CallSts(kGetCallerIdentity);
  EXPECT_EQ(small.body, "aabb");
  EXPECT_FALSE(small.body_file);
  offset = 10;
  length = 1 << 20;
  http::Response large = CallSts(kGetCallerIdentity);
  EXPECT_TRUE(large.body.empty());
  ASSERT_TRUE(large.body_file);
  EXPECT_EQ(large.body_file->fd, fd);
  EXPECT_EQ(large.body_file->offset, 10u);
  EXPECT_EQ(large.body_file->length, uint64_t{1} << 20);
  EXPECT_EQ(large.body_file->keep_alive, owner);
  // A small file region that cannot be read in full becomes an error, not a short body.
  offset = data.size() - 2;
  length = 100;
  EXPECT_EQ(CallSts(kGetCallerIdentity).status, 500);
}

}  // namespace
}  // namespace nimbus::aws
