#include "control/pagination.h"

#include <gtest/gtest.h>

#include <cctype>
#include <vector>

#include "core/crypto.h"

namespace nimbus::control {
namespace {

const Value kPosition = Value::Object({{"k", Value("job-17")}, {"i", Value(int64_t{42})}});

TEST(PageTokenCodecTest, RoundTripsThePositionForTheSameQuery) {
  PageTokenCodec codec(RandomBytes(32));
  std::string token = codec.Encode("query-a", kPosition);
  std::optional<Value> back = codec.Decode("query-a", token);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, kPosition);
}

TEST(PageTokenCodecTest, TokenIsUrlSafe) {
  PageTokenCodec codec(RandomBytes(32));
  for (int i = 0; i < 50; ++i) {
    std::string token = codec.Encode("q", Value::Object({{"i", Value(int64_t{i} * 7919)}}));
    for (char c : token) {
      EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << token;
    }
  }
}

TEST(PageTokenCodecTest, RejectsATokenOfAnotherQuery) {
  PageTokenCodec codec(RandomBytes(32));
  std::string token = codec.Encode("query-a", kPosition);
  EXPECT_FALSE(codec.Decode("query-b", token).has_value());
  EXPECT_FALSE(codec.Decode("", token).has_value());
}

TEST(PageTokenCodecTest, RejectsATokenMintedUnderAnotherKey) {
  PageTokenCodec ours(RandomBytes(32));
  PageTokenCodec theirs(RandomBytes(32));
  EXPECT_FALSE(ours.Decode("q", theirs.Encode("q", kPosition)).has_value());
}

TEST(PageTokenCodecTest, RejectsEveryTruncation) {
  PageTokenCodec codec(RandomBytes(32));
  std::string token = codec.Encode("q", kPosition);
  for (size_t len = 0; len < token.size(); ++len) {
    EXPECT_FALSE(codec.Decode("q", token.substr(0, len)).has_value()) << len;
  }
}

TEST(PageTokenCodecTest, RejectsEverySingleCharacterChange) {
  PageTokenCodec codec(RandomBytes(32));
  const std::string token = codec.Encode("q", kPosition);
  for (size_t i = 0; i < token.size(); ++i) {
    for (char c : std::string("AZaz09-_")) {
      if (c == token[i]) continue;
      std::string tampered = token;
      tampered[i] = c;
      EXPECT_FALSE(codec.Decode("q", tampered).has_value()) << "position " << i;
    }
  }
}

TEST(PageTokenCodecTest, RejectsGarbage) {
  PageTokenCodec codec(RandomBytes(32));
  for (const std::string& garbage : std::vector<std::string>{
           "", "x", "!!!!", "null", "eyJrIjoxfQ", "AAAA", "a b c", std::string(5000, 'A')}) {
    EXPECT_FALSE(codec.Decode("q", garbage).has_value()) << garbage;
  }
  // A well-formed envelope whose MAC is wrong.
  std::string forged(1, '\x01');
  forged += R"({"i":1,"k":"a"})";
  forged += std::string(32, '\0');
  EXPECT_FALSE(codec.Decode("q", Base64UrlEncode(forged)).has_value());
}

TEST(Base64UrlTest, RoundTripsAndRejectsNonCanonicalText) {
  for (const std::string& bytes :
       std::vector<std::string>{std::string(), std::string("f"), std::string("fo"),
                                std::string("foo"), std::string("\xfb\xff\xfe", 3)}) {
    std::string text = Base64UrlEncode(bytes);
    EXPECT_EQ(text.find('='), std::string::npos);
    auto back = Base64UrlDecode(text);
    ASSERT_TRUE(back.has_value()) << text;
    EXPECT_EQ(*back, bytes);
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_FALSE(Base64UrlDecode("-_9").has_value());   // leftover bits set
  EXPECT_FALSE(Base64UrlDecode("Zg==").has_value());  // padding is not ours
  EXPECT_FALSE(Base64UrlDecode("Z").has_value());     // no byte string has this length
  EXPECT_FALSE(Base64UrlDecode("+/8").has_value());   // standard alphabet
}

}  // namespace
}  // namespace nimbus::control
