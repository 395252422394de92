#include "aws/sigv4/sigv4.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "core/crypto.h"
#include "core/strings.h"

namespace nimbus::aws::sigv4 {
namespace {

// AWS's SigV4 test suite (aws-sig-v4-test-suite, as kept in awslabs/aws-c-auth).
constexpr char kSuiteKey[] = "AKIDEXAMPLE";
constexpr char kSuiteSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr double kSuiteTime = 1440938160;  // 20150830T123600Z
constexpr char kSuiteScope[] = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
constexpr char kStsToken[] =
    "AQoDYXdzEPT//////////"
    "wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx"
    "7"
    "mSEI/qkPpKPi/"
    "kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6f"
    "E8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+"
    "scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSI"
    "lTJabIQwj2ICCR/oLxBA==";

// The S3 documentation's examples.
constexpr char kS3Key[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kS3Secret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr double kS3Time = 1369353600;  // 20130524T000000Z

http::Request MakeRequest(std::string method, std::string target,
                          std::vector<std::pair<std::string, std::string>> headers) {
  http::Request request;
  request.method = std::move(method);
  request.target = std::move(target);
  request.SplitTarget();
  for (auto& [name, value] : headers) request.headers.Add(std::move(name), std::move(value));
  return request;
}

http::Request SuiteRequest(std::string method, std::string target,
                           std::vector<std::pair<std::string, std::string>> extra = {}) {
  std::vector<std::pair<std::string, std::string>> headers = {{"Host", "example.amazonaws.com"}};
  for (auto& h : extra) headers.push_back(std::move(h));
  headers.emplace_back("X-Amz-Date", "20150830T123600Z");
  return MakeRequest(std::move(method), std::move(target), std::move(headers));
}

std::string SuiteAuthorization(std::string_view signed_headers, std::string_view signature) {
  return "AWS4-HMAC-SHA256 Credential=" + std::string(kSuiteScope) +
         ", SignedHeaders=" + std::string(signed_headers) + ", Signature=" + std::string(signature);
}

VerifyOptions At(double now, bool s3 = false) {
  VerifyOptions options;
  options.now = now;
  options.s3 = s3;
  return options;
}

std::string BodyHash(std::string_view body) { return HexEncode(Sha256(body)); }

struct SuiteVector {
  const char* name;
  const char* method;
  const char* target;  // as on the request line: raw UTF-8 and spaces included
  std::vector<std::pair<std::string, std::string>> headers;  // besides Host and X-Amz-Date
  const char* body;
  const char* token;
  const char* signed_headers;
  const char* signature;  // published by AWS
};

const std::vector<SuiteVector>& SuiteVectors() {
  static const auto* vectors = new std::vector<SuiteVector>{
      {"get-vanilla",
       "GET",
       "/",
       {},
       "",
       "",
       "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-vanilla-query-order-key-case",
       "GET",
       "/?Param2=value2&Param1=value1",
       {},
       "",
       "",
       "host;x-amz-date",
       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {"get-vanilla-query-order-encoded",
       "GET",
       "/?Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
       {},
       "",
       "",
       "host;x-amz-date",
       "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"},
      {"get-vanilla-query-unreserved",
       "GET",
       "/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
       {},
       "",
       "",
       "host;x-amz-date",
       "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
      {"get-vanilla-utf8-query",
       "GET",
       "/?\xE1\x88\xB4=bar",
       {},
       "",
       "",
       "host;x-amz-date",
       "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
      {"get-header-value-trim",
       "GET",
       "/",
       {{"My-Header1", " value1"}, {"My-Header2", "\"a   b   c\""}},
       "",
       "",
       "host;my-header1;my-header2;x-amz-date",
       "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
      {"get-header-key-duplicate",
       "GET",
       "/",
       {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
       "",
       "",
       "host;my-header1;x-amz-date",
       "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
      {"get-utf8",
       "GET",
       "/\xE1\x88\xB4",
       {},
       "",
       "",
       "host;x-amz-date",
       "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
      {"get-space",
       "GET",
       "/example space/",
       {},
       "",
       "",
       "host;x-amz-date",
       "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
      {"get-slash-dot-slash",
       "GET",
       "/./",
       {},
       "",
       "",
       "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-relative-relative",
       "GET",
       "/example1/example2/../..",
       {},
       "",
       "",
       "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-slashes",
       "GET",
       "//example//",
       {},
       "",
       "",
       "host;x-amz-date",
       "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
      {"post-x-www-form-urlencoded",
       "POST",
       "/",
       {{"Content-Type", "application/x-www-form-urlencoded"}},
       "Param1=value1",
       "",
       "content-type;host;x-amz-date",
       "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
      {"post-sts-header-before",
       "POST",
       "/",
       {},
       "",
       kStsToken,
       "host;x-amz-date;x-amz-security-token",
       "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
      {"get-vanilla-with-session-token",
       "GET",
       "/",
       {},
       "",
       "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
       "host;x-amz-date;x-amz-security-token",
       "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"},
  };
  return *vectors;
}

TEST(SigV4Test, SignRequestReproducesTheAwsTestSuite) {
  for (const auto& v : SuiteVectors()) {
    SCOPED_TRACE(v.name);
    http::Request request = SuiteRequest(v.method, v.target, v.headers);
    std::string signature = SignRequest(request, kSuiteKey, kSuiteSecret, "us-east-1", "service",
                                        kSuiteTime, v.body, v.token);
    EXPECT_EQ(signature, v.signature);
    EXPECT_EQ(request.headers.Get("Authorization"),
              SuiteAuthorization(v.signed_headers, v.signature));
  }
}

TEST(SigV4Test, VerifiesTheAwsTestSuiteRequests) {
  for (const auto& v : SuiteVectors()) {
    SCOPED_TRACE(v.name);
    http::Request request = SuiteRequest(v.method, v.target, v.headers);
    if (*v.token) request.headers.Add("X-Amz-Security-Token", v.token);
    request.headers.Add("Authorization", SuiteAuthorization(v.signed_headers, v.signature));
    Result<SignedRequest> parsed = Parse(request);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(parsed->session_token, v.token);
    Status status = Verify(*parsed, request, kSuiteSecret, BodyHash(v.body), At(kSuiteTime));
    EXPECT_TRUE(status.ok()) << status.ToString();
  }
}

TEST(SigV4Test, BuildingBlocksMatchThePublishedFormUrlencodedVector) {
  http::Request request =
      SuiteRequest("POST", "/", {{"Content-Type", "application/x-www-form-urlencoded"}});
  std::string canonical =
      CanonicalRequest(request, {"content-type", "host", "x-amz-date"}, BodyHash("Param1=value1"),
                       /*s3=*/false, /*presigned=*/false);
  EXPECT_EQ(canonical,
            "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n"
            "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "content-type;host;x-amz-date\n"
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  std::string sts =
      StringToSign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", canonical);
  EXPECT_EQ(sts,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281");
  EXPECT_EQ(Signature(SigningKey(kSuiteSecret, "20150830", "us-east-1", "service"), sts),
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}

TEST(SigV4Test, GetVanillaStringToSignMatchesTheSuite) {
  http::Request request = SuiteRequest("GET", "/");
  EXPECT_EQ(
      StringToSign("20150830T123600Z", "20150830/us-east-1/service/aws4_request",
                   CanonicalRequest(request, {"host", "x-amz-date"}, kEmptySha256, false, false)),
      "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
      "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
}

TEST(SigV4Test, SigningKeyMatchesDocumentedDerivations) {
  EXPECT_EQ(HexEncode(SigningKey(kSuiteSecret, "20150830", "us-east-1", "service")),
            "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75");
  // The IAM example of the SigV4 documentation.
  EXPECT_EQ(HexEncode(SigningKey(kSuiteSecret, "20120215", "us-east-1", "iam")),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
  // Served from the cache the second time, and keyed on every part.
  EXPECT_EQ(HexEncode(SigningKey(kSuiteSecret, "20150830", "us-east-1", "service")),
            "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75");
  EXPECT_NE(SigningKey(kSuiteSecret, "20150830", "us-east-2", "service"),
            SigningKey(kSuiteSecret, "20150830", "us-east-1", "service"));
  EXPECT_NE(SigningKey("other", "20150830", "us-east-1", "service"),
            SigningKey(kSuiteSecret, "20150830", "us-east-1", "service"));
}

TEST(SigV4Test, CanonicalUriEncodesTwiceAndNormalizesExceptForS3) {
  EXPECT_EQ(CanonicalUri("/a%20b/c", false), "/a%2520b/c");
  EXPECT_EQ(CanonicalUri("/a%20b/c", true), "/a%20b/c");
  EXPECT_EQ(CanonicalUri("/a/./b/../c//d/", false), "/a/c/d/");
  EXPECT_EQ(CanonicalUri("/a/./b/../c//d/", true), "/a/./b/../c//d/");
  EXPECT_EQ(CanonicalUri("/../..", false), "/");
  EXPECT_EQ(CanonicalUri("", false), "/");
  EXPECT_EQ(CanonicalUri("", true), "/");
  EXPECT_EQ(CanonicalUri("/model:v1/~x", false), "/model%3Av1/~x");
}

TEST(SigV4Test, CanonicalQuerySortsAndReencodes) {
  EXPECT_EQ(CanonicalQuery("b=2&a=1&A=0", false), "A=0&a=1&b=2");
  EXPECT_EQ(CanonicalQuery("a=2&a=1", false), "a=1&a=2");
  EXPECT_EQ(CanonicalQuery("a=x+y", false), "a=x%2By");
  EXPECT_EQ(CanonicalQuery("a=x%20y&b=%7e&c=%2f", false), "a=x%20y&b=~&c=%2F");
  EXPECT_EQ(CanonicalQuery("flag&&x=", false), "flag=&x=");
  EXPECT_EQ(CanonicalQuery("", false), "");
  // Sorted by the encoded name: "%E1..." sorts before letters.
  EXPECT_EQ(CanonicalQuery("z=1&\xE1\x88\xB4=2", false), "%E1%88%B4=2&z=1");
  EXPECT_EQ(CanonicalQuery("X-Amz-Signature=abc&a=1", true), "a=1");
  EXPECT_EQ(CanonicalQuery("X-Amz-Signature=abc&a=1", false), "X-Amz-Signature=abc&a=1");
}

TEST(SigV4Test, CanonicalHeadersTrimCollapseAndJoinValues) {
  http::Request request = MakeRequest(
      "GET", "/",
      {{"Host", "h"}, {"X-Multi", "  one  "}, {"x-multi", "two\t\t three"}, {"X-Other", "a  b"}});
  EXPECT_EQ(CanonicalRequest(request, {"host", "x-multi"}, "UNSIGNED-PAYLOAD", false, false),
            "GET\n/\n\nhost:h\nx-multi:one,two three\n\nhost;x-multi\nUNSIGNED-PAYLOAD");
}

// GET Object with a Range header, from the S3 SigV4 documentation.
http::Request S3GetObject() {
  return MakeRequest("GET", "/test.txt",
                     {{"Host", "examplebucket.s3.amazonaws.com"},
                      {"Range", "bytes=0-9"},
                      {"x-amz-content-sha256", std::string(kEmptySha256)},
                      {"x-amz-date", "20130524T000000Z"}});
}

TEST(SigV4Test, S3GetObjectExampleMatchesTheDocumentation) {
  http::Request request = S3GetObject();
  EXPECT_EQ(
      CanonicalRequest(request, {"host", "range", "x-amz-content-sha256", "x-amz-date"},
                       kEmptySha256, true, false),
      "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  SignRequest(request, kS3Key, kS3Secret, "us-east-1", "s3", kS3Time, "", "", /*s3=*/true);
  EXPECT_EQ(request.headers.Get("Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");

  Result<SignedRequest> parsed = Parse(request);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(PayloadHashBeforeBody(*parsed, true), kEmptySha256);
  EXPECT_TRUE(Verify(*parsed, request, kS3Secret, kEmptySha256, At(kS3Time, true)).ok());
}

TEST(SigV4Test, S3PresignedUrlMatchesTheDocumentation) {
  std::string target = Presign("GET", "examplebucket.s3.amazonaws.com", "/test.txt", "", kS3Key,
                               kS3Secret, "us-east-1", "s3", kS3Time, 86400);
  EXPECT_EQ(target,
            "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");

  http::Request request = MakeRequest("GET", target, {{"Host", "examplebucket.s3.amazonaws.com"}});
  Result<SignedRequest> parsed = Parse(request);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->presigned);
  EXPECT_EQ(parsed->access_key_id, kS3Key);
  EXPECT_EQ(parsed->expires, 86400);
  EXPECT_EQ(PayloadHashBeforeBody(*parsed, true), kUnsignedPayload);
  // Valid long after the 15 minutes of header auth, until it expires.
  EXPECT_TRUE(
      Verify(*parsed, request, kS3Secret, kUnsignedPayload, At(kS3Time + 20 * 3600, true)).ok());
}

TEST(SigV4Test, RejectsExpiredPresignedUrl) {
  std::string target = Presign("GET", "examplebucket.s3.amazonaws.com", "/test.txt", "", kS3Key,
                               kS3Secret, "us-east-1", "s3", kS3Time, 3600);
  http::Request request = MakeRequest("GET", target, {{"Host", "examplebucket.s3.amazonaws.com"}});
  Result<SignedRequest> parsed = Parse(request);
  ASSERT_TRUE(parsed.ok());
  Status status = Verify(*parsed, request, kS3Secret, kUnsignedPayload, At(kS3Time + 3601, true));
  EXPECT_EQ(status.kind(), ErrorKind::kExpiredToken);
  EXPECT_EQ(status.code(), "AccessDenied");
  EXPECT_EQ(status.message(), "Request has expired");
  EXPECT_TRUE(Verify(*parsed, request, kS3Secret, kUnsignedPayload, At(kS3Time + 3599, true)).ok());
  // Not before it was signed, give or take the allowed skew.
  status = Verify(*parsed, request, kS3Secret, kUnsignedPayload, At(kS3Time - 1000, true));
  EXPECT_EQ(status.kind(), ErrorKind::kRequestTimeTooSkewed);
}

TEST(SigV4Test, RejectsPresignedUrlWithBadExpires) {
  for (const char* expires : {"0", "604801", "soon"}) {
    SCOPED_TRACE(expires);
    http::Request request = MakeRequest(
        "GET",
        std::string("/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20130524%2Fus-"
                    "east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=") +
            expires + "&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
        {{"Host", "b.s3.amazonaws.com"}});
    Result<SignedRequest> parsed = Parse(request);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), "AuthorizationQueryParametersError");
  }
}

TEST(SigV4Test, PresignedUrlForOtherServicesSignsTheEmptyBody) {
  std::string target =
      Presign("GET", "sts.amazonaws.com", "/", "Action=GetCallerIdentity", kSuiteKey, kSuiteSecret,
              "us-east-1", "sts", kSuiteTime, 60, "session-token", /*s3=*/false);
  http::Request request = MakeRequest("GET", target, {{"Host", "sts.amazonaws.com"}});
  Result<SignedRequest> parsed = Parse(request);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->session_token, "session-token");
  EXPECT_EQ(PayloadHashBeforeBody(*parsed, false), "");
  EXPECT_TRUE(Verify(*parsed, request, kSuiteSecret, kEmptySha256, At(kSuiteTime + 30)).ok());
  Status status = Verify(*parsed, request, kSuiteSecret, kEmptySha256, At(kSuiteTime + 61));
  EXPECT_EQ(status.kind(), ErrorKind::kExpiredToken);
  // The token is signed: another one does not verify.
  size_t at = target.find("session-token");
  http::Request forged =
      MakeRequest("GET", target.substr(0, at) + "other-token" + target.substr(at + 13),
                  {{"Host", "sts.amazonaws.com"}});
  Result<SignedRequest> forged_parsed = Parse(forged);
  ASSERT_TRUE(forged_parsed.ok());
  EXPECT_EQ(Verify(*forged_parsed, forged, kSuiteSecret, kEmptySha256, At(kSuiteTime)).kind(),
            ErrorKind::kSignatureMismatch);
}

// A signed request to a JSON service, and what Verify says once one thing is changed.
class SigV4VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    request_ = MakeRequest("POST", "/",
                           {{"Host", "api.example.com"},
                            {"Content-Type", "application/x-amz-json-1.1"},
                            {"X-Amz-Target", "Service.Operation"}});
    SignRequest(request_, kSuiteKey, kSuiteSecret, "us-east-1", "service", kSuiteTime, kBody);
  }

  Status VerifyRequest(std::string_view secret = kSuiteSecret, std::string_view body = kBody,
                       double now = kSuiteTime) {
    Result<SignedRequest> parsed = Parse(request_);
    if (!parsed.ok()) return parsed.status();
    return Verify(*parsed, request_, secret, BodyHash(body), At(now));
  }

  static constexpr char kBody[] = "{\"Name\":\"x\"}";
  http::Request request_;
};

TEST_F(SigV4VerifyTest, AcceptsTheSignedRequest) { EXPECT_TRUE(VerifyRequest().ok()); }

TEST_F(SigV4VerifyTest, RejectsTamperedHeader) {
  request_.headers.Set("X-Amz-Target", "Service.OtherOperation");
  Status status = VerifyRequest();
  EXPECT_EQ(status.kind(), ErrorKind::kSignatureMismatch);
  EXPECT_TRUE(status.code().empty());
  EXPECT_EQ(status.message(),
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.");
}

TEST_F(SigV4VerifyTest, RejectsTamperedBody) {
  EXPECT_EQ(VerifyRequest(kSuiteSecret, "{\"Name\":\"y\"}").kind(), ErrorKind::kSignatureMismatch);
}

TEST_F(SigV4VerifyTest, RejectsTamperedPathAndQuery) {
  request_.target = "/?extra=1";
  request_.SplitTarget();
  EXPECT_EQ(VerifyRequest().kind(), ErrorKind::kSignatureMismatch);
}

TEST_F(SigV4VerifyTest, RejectsWrongSecret) {
  EXPECT_EQ(VerifyRequest("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ").kind(),
            ErrorKind::kSignatureMismatch);
}

TEST_F(SigV4VerifyTest, RejectsWrongRegionInScope) {
  std::string authorization = request_.headers.Get("Authorization");
  size_t at = authorization.find("us-east-1");
  authorization.replace(at, 9, "us-west-2");
  request_.headers.Set("Authorization", authorization);
  Result<SignedRequest> parsed = Parse(request_);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->region, "us-west-2");
  EXPECT_EQ(Verify(*parsed, request_, kSuiteSecret, BodyHash(kBody), At(kSuiteTime)).kind(),
            ErrorKind::kSignatureMismatch);
}

TEST_F(SigV4VerifyTest, RejectsRequestTimeSkewedBeyondFifteenMinutes) {
  EXPECT_TRUE(VerifyRequest(kSuiteSecret, kBody, kSuiteTime + 899).ok());
  EXPECT_TRUE(VerifyRequest(kSuiteSecret, kBody, kSuiteTime - 899).ok());
  Status late = VerifyRequest(kSuiteSecret, kBody, kSuiteTime + 1800);
  EXPECT_EQ(late.kind(), ErrorKind::kRequestTimeTooSkewed);
  EXPECT_EQ(late.message(),
            "Signature expired: 20150830T123600Z is now earlier than 20150830T125100Z "
            "(20150830T130600Z - 15 min.)");
  Status early = VerifyRequest(kSuiteSecret, kBody, kSuiteTime - 1800);
  EXPECT_EQ(early.kind(), ErrorKind::kRequestTimeTooSkewed);
  EXPECT_EQ(early.message(),
            "Signature not yet current: 20150830T123600Z is still later than 20150830T122100Z "
            "(20150830T120600Z + 15 min.)");
}

TEST_F(SigV4VerifyTest, RejectsMissingSignedHost) {
  request_.headers.Set("Authorization",
                       SuiteAuthorization("content-type;x-amz-date;x-amz-target", "00"));
  Status status = VerifyRequest();
  EXPECT_EQ(status.kind(), ErrorKind::kSignatureMismatch);
  EXPECT_EQ(status.message(),
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
}

TEST_F(SigV4VerifyTest, RejectsScopeDateOtherThanRequestDate) {
  std::string authorization = request_.headers.Get("Authorization");
  authorization.replace(authorization.find("20150830"), 8, "20150831");
  request_.headers.Set("Authorization", authorization);
  Status status = VerifyRequest();
  EXPECT_EQ(status.kind(), ErrorKind::kSignatureMismatch);
  EXPECT_EQ(status.message(),
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
            "HTTP: '20150831' != '20150830', from '20150830T123600Z'.");
}

TEST_F(SigV4VerifyTest, SignsAndVerifiesSessionToken) {
  SignRequest(request_, kSuiteKey, kSuiteSecret, "us-east-1", "service", kSuiteTime, kBody,
              "the-token");
  Result<SignedRequest> parsed = Parse(request_);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->session_token, "the-token");
  EXPECT_NE(std::find(parsed->signed_headers.begin(), parsed->signed_headers.end(),
                      "x-amz-security-token"),
            parsed->signed_headers.end());
  EXPECT_TRUE(VerifyRequest().ok());
  request_.headers.Set("X-Amz-Security-Token", "another-token");
  EXPECT_EQ(VerifyRequest().kind(), ErrorKind::kSignatureMismatch);
}

TEST_F(SigV4VerifyTest, UnsignedPayloadDeclaredByTheClientIsWhatWasSigned) {
  SignRequestWithPayloadHash(request_, kSuiteKey, kSuiteSecret, "us-east-1", "service", kSuiteTime,
                             kUnsignedPayload);
  Result<SignedRequest> parsed = Parse(request_);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(PayloadHashBeforeBody(*parsed, false), kUnsignedPayload);
  EXPECT_TRUE(Verify(*parsed, request_, kSuiteSecret, kUnsignedPayload, At(kSuiteTime)).ok());
}

TEST(SigV4Test, AcceptsDateHeaderInsteadOfXAmzDate) {
  http::Request request = MakeRequest(
      "GET", "/", {{"Host", "example.amazonaws.com"}, {"Date", "Sun, 30 Aug 2015 12:36:00 GMT"}});
  std::string signature = Signature(
      SigningKey(kSuiteSecret, "20150830", "us-east-1", "service"),
      StringToSign("20150830T123600Z", "20150830/us-east-1/service/aws4_request",
                   CanonicalRequest(request, {"date", "host"}, kEmptySha256, false, false)));
  request.headers.Add("Authorization", SuiteAuthorization("date;host", signature));
  Result<SignedRequest> parsed = Parse(request);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->amz_date, "20150830T123600Z");
  EXPECT_EQ(parsed->request_time, kSuiteTime);
  EXPECT_TRUE(Verify(*parsed, request, kSuiteSecret, kEmptySha256, At(kSuiteTime)).ok());
}

TEST(SigV4Test, S3MessagesForSkewAndMismatch) {
  http::Request request = S3GetObject();
  SignRequest(request, kS3Key, kS3Secret, "us-east-1", "s3", kS3Time, "", "", true);
  Result<SignedRequest> parsed = Parse(request);
  ASSERT_TRUE(parsed.ok());
  Status skew = Verify(*parsed, request, kS3Secret, kEmptySha256, At(kS3Time + 1800, true));
  EXPECT_EQ(skew.kind(), ErrorKind::kRequestTimeTooSkewed);
  EXPECT_EQ(skew.message(),
            "The difference between the request time and the current time is too large.");
  request.headers.Set("Range", "bytes=0-10");
  Status mismatch = Verify(*parsed, request, kS3Secret, kEmptySha256, At(kS3Time, true));
  EXPECT_EQ(mismatch.kind(), ErrorKind::kSignatureMismatch);
  EXPECT_EQ(mismatch.message(),
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.");
}

TEST(SigV4Test, S3RejectsBodyThatDoesNotMatchDeclaredHash) {
  http::Request request = MakeRequest("PUT", "/bucket/key", {{"Host", "s3.amazonaws.com"}});
  SignRequest(request, kS3Key, kS3Secret, "us-east-1", "s3", kS3Time, "payload", "", true);
  Result<SignedRequest> parsed = Parse(request);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->payload_hash, BodyHash("payload"));
  EXPECT_TRUE(Verify(*parsed, request, kS3Secret, BodyHash("payload"), At(kS3Time, true)).ok());
  Status status = Verify(*parsed, request, kS3Secret, BodyHash("tampered"), At(kS3Time, true));
  EXPECT_EQ(status.code(), "XAmzContentSHA256Mismatch");
  EXPECT_EQ(PayloadHashMismatch(true).code(), "XAmzContentSHA256Mismatch");
}

TEST(SigV4Test, S3RequiresContentSha256ForHeaderAuth) {
  http::Request request = MakeRequest("GET", "/bucket/key", {{"Host", "s3.amazonaws.com"}});
  SignRequest(request, kS3Key, kS3Secret, "us-east-1", "s3", kS3Time, "", "", true);
  request.headers.Remove("x-amz-content-sha256");
  Result<SignedRequest> parsed = Parse(request);
  ASSERT_TRUE(parsed.ok());
  Status status = Verify(*parsed, request, kS3Secret, kEmptySha256, At(kS3Time, true));
  EXPECT_EQ(status.code(), "InvalidRequest");
  EXPECT_EQ(status.message(), "Missing required header for this request: x-amz-content-sha256");
}

TEST(SigV4Test, ParseReportsMissingAuthForUnsignedRequests) {
  http::Request request = MakeRequest("GET", "/?a=1", {{"Host", "example.amazonaws.com"}});
  Result<SignedRequest> parsed = Parse(request);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().kind(), ErrorKind::kMissingAuth);
}

TEST(SigV4Test, ParseRejectsIncompleteAuthorizationHeader) {
  http::Request request = SuiteRequest("GET", "/");
  request.headers.Add("Authorization", "AWS4-HMAC-SHA256 Credential=" + std::string(kSuiteScope) +
                                           ", SignedHeaders=host;x-amz-date");
  Result<SignedRequest> parsed = Parse(request);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), "IncompleteSignature");
  EXPECT_EQ(parsed.status().http_status(), 400);
  EXPECT_TRUE(StartsWith(parsed.status().message(),
                         "Authorization header requires 'Signature' parameter."));

  http::Request s3 = S3GetObject();
  s3.headers.Add("Authorization",
                 "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request");
  EXPECT_EQ(Parse(s3).status().code(), "AuthorizationHeaderMalformed");
}

TEST(SigV4Test, ParseRejectsMalformedCredentialAndDate) {
  http::Request bad_scope = SuiteRequest("GET", "/");
  bad_scope.headers.Add("Authorization",
                        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws5, "
                        "SignedHeaders=host;x-amz-date, Signature=00");
  EXPECT_EQ(Parse(bad_scope).status().code(), "IncompleteSignature");

  http::Request no_date = MakeRequest("GET", "/", {{"Host", "example.amazonaws.com"}});
  no_date.headers.Add("Authorization", SuiteAuthorization("host", "00"));
  Result<SignedRequest> parsed = Parse(no_date);
  ASSERT_FALSE(parsed.ok());
  EXPECT_TRUE(StartsWith(parsed.status().message(),
                         "Authorization header requires existence of either a 'X-Amz-Date' or "
                         "a 'Date' header."));

  http::Request bad_date = SuiteRequest("GET", "/");
  bad_date.headers.Set("X-Amz-Date", "2015-08-30T12:36:00Z");
  bad_date.headers.Add("Authorization", SuiteAuthorization("host;x-amz-date", "00"));
  EXPECT_EQ(Parse(bad_date).status().code(), "IncompleteSignature");
}

TEST(SigV4Test, ParseRejectsTwoAuthMechanismsAndOtherAlgorithms) {
  http::Request both = SuiteRequest("GET", "/?X-Amz-Algorithm=AWS4-HMAC-SHA256");
  both.headers.Add("Authorization", SuiteAuthorization("host;x-amz-date", "00"));
  EXPECT_EQ(Parse(both).status().code(), "InvalidArgument");

  http::Request v2 = SuiteRequest("GET", "/");
  v2.headers.Add("Authorization", "AWS AKIDEXAMPLE:c2lnbmF0dXJl");
  EXPECT_EQ(Parse(v2).status().code(), "InvalidRequest");

  http::Request query = MakeRequest(
      "GET",
      "/k?X-Amz-Algorithm=AWS4-HMAC-SHA1&X-Amz-Credential=AKID%2F20130524%2Fus-east-1%2Fs3%2F"
      "aws4_request",
      {{"Host", "b.s3.amazonaws.com"}});
  Result<SignedRequest> parsed = Parse(query);
  EXPECT_EQ(parsed.status().code(), "AuthorizationQueryParametersError");
  EXPECT_EQ(parsed.status().message(), "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
}

TEST(SigV4Test, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abcdef", "abcdef"));
  EXPECT_FALSE(ConstantTimeEquals("abcdef", "abcdeg"));
  EXPECT_FALSE(ConstantTimeEquals("bbcdef", "abcdef"));
  EXPECT_FALSE(ConstantTimeEquals("abcdef", "abcde"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace nimbus::aws::sigv4
