#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/clock.h"
#include "core/compression.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/logging.h"
#include "core/result.h"
#include "core/strings.h"
#include "core/value.h"

namespace nimbus {
namespace {

TEST(StringsTest, Base64RoundTripsEveryLengthAndRejectsGarbage) {
  std::string bytes;
  for (int i = 0; i < 40; ++i) {
    auto decoded = Base64Decode(Base64Encode(bytes));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(*decoded, bytes);
    bytes.push_back(static_cast<char>(i * 37));
  }
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_FALSE(Base64Decode("Zm9v!mFy").has_value());
  EXPECT_FALSE(Base64Decode("Zm8=x").has_value());
}

TEST(StringsTest, UriEncodingFollowsRfc3986) {
  EXPECT_EQ(UriEncode("a b/c~d*e"), "a%20b%2Fc~d%2Ae");
  EXPECT_EQ(UriEncode("a b/c", /*keep_slash=*/true), "a%20b/c");
  EXPECT_EQ(UriDecode("a%20b+c"), "a b+c");
  EXPECT_EQ(UriDecode("a%20b+c", /*plus_as_space=*/true), "a b c");
  EXPECT_EQ(UriDecode("100%"), "100%");
  EXPECT_EQ(UriDecode("%zz"), "%zz");
}

TEST(StringsTest, CaseFoldingIsAsciiOnly) {
  EXPECT_EQ(ToLower("Content-MD5 \xc3\x80Z@[`{"), "content-md5 \xc3\x80z@[`{");
  EXPECT_EQ(ToUpper("x-amz-date \xc3\xa0a@[`{"), "X-AMZ-DATE \xc3\xa0A@[`{");
  EXPECT_TRUE(EqualsIgnoreCase("X-Amz-Content-SHA256", "x-amz-content-sha256"));
  EXPECT_FALSE(EqualsIgnoreCase("\xc3\x80", "\xc3\xa0"));  // no folding beyond ASCII
  EXPECT_FALSE(EqualsIgnoreCase("@", "`"));
  EXPECT_FALSE(EqualsIgnoreCase("abc", "abcd"));
}

TEST(StringsTest, WildcardMatchHandlesStarsAndQuestionMarks) {
  EXPECT_TRUE(WildcardMatch("s3:Get*", "s3:GetObject"));
  EXPECT_TRUE(WildcardMatch("*", ""));
  EXPECT_TRUE(WildcardMatch("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(WildcardMatch("a*b*c", "aXXbYY"));
  EXPECT_TRUE(WildcardMatch("us-????-1", "us-east-1"));
  EXPECT_FALSE(WildcardMatch("S3:GET*", "s3:GetObject"));
  EXPECT_TRUE(WildcardMatch("S3:GET*", "s3:GetObject", /*case_insensitive=*/true));
  EXPECT_TRUE(WildcardMatch("*a*a*a*a*a*a*b", std::string(60, 'a') + "b"));
}

TEST(CompressionTest, GunzipsOneOrSeveralMembersAndRefusesBadOrHugeInput) {
  // `printf 'hello ' | gzip -n` and `printf world | gzip -n`, concatenated.
  const std::string hello = std::string(
      "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcb\x48\xcd\xc9\xc9\x57\x00"
      "\x00\xf6\xf9\x81\xed\x06\x00\x00\x00",
      26);
  const std::string world = std::string(
      "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x2b\xcf\x2f\xca\x49\x01\x00"
      "\x43\x11\x77\x3a\x05\x00\x00\x00",
      25);
  EXPECT_EQ(*Gunzip(hello, 100), "hello ");
  EXPECT_EQ(*Gunzip(hello + world, 100), "hello world");
  EXPECT_FALSE(Gunzip("not gzip", 100).ok());
  EXPECT_FALSE(Gunzip(hello.substr(0, 15), 100).ok());
  EXPECT_FALSE(Gunzip(hello, 3).ok());
}

TEST(ClockTest, FormatsAndParsesAwsDates) {
  EXPECT_EQ(FormatAmzDate(1369353600), "20130524T000000Z");
  EXPECT_EQ(FormatIso8601(1369353600.5), "2013-05-24T00:00:00.500Z");
  EXPECT_EQ(FormatHttpDate(1369353600), "Fri, 24 May 2013 00:00:00 GMT");
  double t = 0;
  ASSERT_TRUE(ParseIso8601("20130524T000000Z", &t));
  EXPECT_EQ(t, 1369353600);
  ASSERT_TRUE(ParseIso8601("2013-05-24T02:00:00+02:00", &t));
  EXPECT_EQ(t, 1369353600);
  ASSERT_TRUE(ParseHttpDate("Fri, 24 May 2013 00:00:00 GMT", &t));
  EXPECT_EQ(t, 1369353600);
  EXPECT_FALSE(ParseIso8601("2013-13-24T00:00:00Z", &t));
  EXPECT_FALSE(ParseIso8601("yesterday", &t));
  // The fixed shapes are read without sscanf; looser ones still parse as before.
  ASSERT_TRUE(ParseIso8601("2013-05-24T00:00:00.250Z", &t));
  EXPECT_EQ(t, 1369353600.25);
  ASSERT_TRUE(ParseIso8601("2013-5-24T0:00:00Z", &t));
  EXPECT_EQ(t, 1369353600);
  ASSERT_TRUE(ParseIso8601("2013-05-24", &t));
  EXPECT_EQ(t, 1369353600);
  ASSERT_TRUE(ParseIso8601("20130524T235960Z", &t));  // a leap second
  EXPECT_EQ(t, 1369353600 + 86400);
  for (const char* bad : {"2013-05-24T0a:00:00Z", "2013052400000Z", "20130524T240000Z",
                          "2013-05-24T00:60:00Z", "2013-05-32T00:00:00Z"}) {
    EXPECT_FALSE(ParseIso8601(bad, &t)) << bad;
  }
}

// Each thread keeps one HMAC context and sets a new key on it per call: a call must never
// see the previous call's key, whatever the keys' lengths (an empty one included).
TEST(CryptoTest, HmacSha256TakesEachCallsOwnKey) {
  const std::string long_key(131, '\xaa');  // RFC 4231 test case 6: hashed first
  const auto check = [&] {
    EXPECT_EQ(HexEncode(HmacSha256(long_key,
                                   "Test Using Larger Than Block-Size Key - Hash Key "
                                   "First")),
              "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    EXPECT_EQ(HexEncode(HmacSha256("", "")),
              "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),  // test case 2
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  };
  check();
  check();
  std::thread other(check);
  other.join();
}

TEST(CryptoTest, DigestsMatchKnownVectors) {
  EXPECT_EQ(HexEncode(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexEncode(Md5("abc")), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(HexEncode(HmacSha256("key", "The quick brown fox jumps over the lazy dog")),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
  EXPECT_EQ(HexEncode(Sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
  StreamingDigest d(StreamingDigest::Algorithm::kSha256);
  d.Update("a");
  d.Update("bc");
  EXPECT_EQ(d.Finish(), Sha256("abc"));
  StreamingDigest md5(StreamingDigest::Algorithm::kMd5);
  md5.Update("ab");
  md5.Update("c");
  EXPECT_EQ(md5.Finish(), Md5("abc"));
  StreamingDigest sha1(StreamingDigest::Algorithm::kSha1);
  sha1.Update("abc");
  EXPECT_EQ(sha1.Finish(), Sha1("abc"));
}

TEST(ValueTest, JsonRoundTripKeepsStructure) {
  Value v = Value::Object({{"a", 1}, {"b", "x"}, {"c", Value::List{true, 2.5, nullptr}}});
  auto parsed = ParseJson(ToJson(v));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, v);
  EXPECT_EQ(v.GetString("b"), "x");
  EXPECT_EQ(v.GetInt("a"), 1);
  EXPECT_EQ(v.GetString("missing", "dflt"), "dflt");
  EXPECT_FALSE(ParseJson("{bad").ok());
}

TEST(JsonTest, ParseBuildsNestedValuesAndRefusesWhatIsNotJson) {
  auto parsed = ParseJson(
      R"( {"l": [1, [2, {"m": {}}], [], {"k": null}], "o": {"x": -3, "y": 1.5e3, "z": false},
          "big": 18446744073709551615, "dup": 1, "dup": "last", "s": "\u00e9\n"} )");
  ASSERT_TRUE(parsed.ok());
  const Value& l = *parsed->Find("l");
  ASSERT_EQ(l.list().size(), 4u);
  EXPECT_EQ(l.list()[0], Value(1));
  EXPECT_EQ(l.list()[1].list()[0], Value(2));
  EXPECT_TRUE(l.list()[1].list()[1].Find("m")->is_map());
  EXPECT_TRUE(l.list()[2].is_list());
  EXPECT_TRUE(l.list()[3].Find("k")->is_null());
  EXPECT_EQ(parsed->Find("o")->GetInt("x"), -3);
  EXPECT_EQ(parsed->Find("o")->Find("y")->AsDouble(), 1500);
  EXPECT_FALSE(parsed->Find("o")->GetBool("z", true));
  EXPECT_EQ(parsed->Find("big")->type(), Value::Type::kInt);
  EXPECT_EQ(parsed->GetString("dup"), "last");
  EXPECT_EQ(parsed->GetString("s"), "\xc3\xa9\n");
  EXPECT_EQ(*ParseJson("7"), Value(7));
  EXPECT_EQ(*ParseJson("[]"), Value::MakeList());
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "{} {}", "[1] x", "nul", "\"\xff\""}) {
    EXPECT_FALSE(ParseJson(bad).ok()) << bad;
  }
}

TEST(JsonTest, AppendJsonStringEscapesAsJsonAndPython) {
  std::string out;
  AppendJsonString(out, "a\"b\\c\n\x01 \xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001 \xc3\xa9\xf0\x9f\x98\x80\"");
  auto parsed = ParseJson(out);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->AsString(), "a\"b\\c\n\x01 \xc3\xa9\xf0\x9f\x98\x80");
  out.clear();
  // json.dumps("é😀\x7f") and an invalid byte, which becomes U+FFFD.
  AppendJsonString(out, "\xc3\xa9\xf0\x9f\x98\x80\x7f\xff", /*ascii_only=*/true);
  EXPECT_EQ(out, "\"\\u00e9\\ud83d\\ude00\\u007f\\ufffd\"");
}

// Runs fn with stderr redirected to a file; returns what was written.
std::string CaptureStderr(const std::function<void()>& fn) {
  std::fflush(stderr);
  char path[] = "/tmp/nimbus-log-XXXXXX";
  const int fd = mkstemp(path);
  const int saved = dup(2);
  dup2(fd, 2);
  fn();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::string out;
  char buf[4096];
  lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  unlink(path);
  return out;
}

TEST(LogTest, WritesOneJsonObjectPerLineWithTheFields) {
  std::string text = CaptureStderr([] {
    Log(LogLevel::kWarn, "thing",
        {{"name", "a\"b"}, {"n", 42}, {"ok", true}, {"x", 2.5}, {"none", Value()}});
  });
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  auto line = ParseJson(text);
  ASSERT_TRUE(line.ok()) << text;
  EXPECT_EQ(line->GetString("level"), "warn");
  EXPECT_EQ(line->GetString("event"), "thing");
  EXPECT_FALSE(line->GetString("ts").empty());
  EXPECT_EQ(line->GetString("name"), "a\"b");
  EXPECT_EQ(line->GetInt("n"), 42);
  EXPECT_TRUE(line->GetBool("ok"));
  EXPECT_EQ(line->Find("x")->AsDouble(), 2.5);
  EXPECT_TRUE(line->Find("none")->is_null());
}

TEST(LogTest, BufferedInfoLinesWaitUntilAWarningOrAFlush) {
  std::string buffered, with_warning, flushed;
  with_warning = CaptureStderr([&] {
    SetLogBuffering(true);
    FlushLogs();  // the last write is now: lines within 100 ms wait
    buffered = CaptureStderr([] { Log(LogLevel::kInfo, "quiet"); });
    Log(LogLevel::kWarn, "loud");
  });
  flushed = CaptureStderr([] {
    FlushLogs();
    Log(LogLevel::kInfo, "later");
    SetLogBuffering(false);
  });
  EXPECT_EQ(buffered, "");
  const size_t quiet = with_warning.find("quiet");
  ASSERT_NE(quiet, std::string::npos) << with_warning;
  EXPECT_LT(quiet, with_warning.find("loud"));
  EXPECT_NE(flushed.find("later"), std::string::npos);
}

// Buffers are written out of the lock that loggers append under; what goes out is still
// every line once, whole, and each thread's lines in their order.
TEST(LogTest, ConcurrentLoggersLoseAndInterleaveNothing) {
  constexpr int kThreads = 8;
  constexpr int kLines = 2000;
  const std::string text = CaptureStderr([] {
    SetLogBuffering(true);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([t] {
        for (int i = 0; i < kLines; ++i) {
          Log(LogLevel::kInfo, "line", {{"thread", t}, {"i", i}, {"pad", std::string(40, 'x')}});
        }
      });
    }
    for (auto& thread : threads) thread.join();
    SetLogBuffering(false);
  });
  std::vector<int> next(kThreads, 0);
  size_t lines = 0;
  for (size_t start = 0; start < text.size();) {
    const size_t end = text.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    auto line = ParseJson(text.substr(start, end - start));
    ASSERT_TRUE(line.ok()) << text.substr(start, end - start);
    const int64_t t = line->GetInt("thread");
    ASSERT_TRUE(t >= 0 && t < kThreads);
    EXPECT_EQ(line->GetInt("i"), next[t]++);
    ++lines;
    start = end + 1;
  }
  EXPECT_EQ(lines, size_t{kThreads} * kLines);
}

TEST(ValueTest, BlobsRenderAsBase64InJson) {
  Value v = Value::Object({{"b", Value::Blob("hi")}});
  EXPECT_EQ(ToJson(v), R"({"b":"aGk="})");
}

Result<int> Half(int x) {
  if (x % 2) return Status::Validation("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  NIMBUS_ASSIGN_OR_RETURN(int h, Half(x));
  NIMBUS_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(ResultTest, MacrosPropagateTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().kind(), ErrorKind::kValidation);
}

}  // namespace
}  // namespace nimbus
