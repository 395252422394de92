#include "objects/object_store.h"

#include <gtest/gtest.h>

namespace nimbus::objects {
namespace {

ObjectInfo Object(std::string etag, double modified) {
  ObjectInfo info;
  info.etag = std::move(etag);
  info.last_modified = modified;
  return info;
}

TEST(BucketNameTest, AcceptsS3Names) {
  for (const std::string& name : {std::string("abc"), std::string("my-bucket.data"),
                                  std::string("a1b2c3"), std::string(63, 'a')}) {
    EXPECT_TRUE(ValidateBucketName(name).ok()) << name;
  }
}

TEST(BucketNameTest, RejectsBadNamesWithInvalidBucketName) {
  for (std::string name :
       {std::string("ab"), std::string(64, 'a'), std::string("Upper"), std::string("under_score"),
        std::string("-start"), std::string("end-"), std::string("a..b"), std::string("192.168.5.4"),
        std::string("xn--abc"), std::string("a.-b"), std::string("sp ace")}) {
    Status s = ValidateBucketName(name);
    EXPECT_EQ(s.code(), "InvalidBucketName") << name;
    EXPECT_EQ(s.http_status(), 400);
  }
}

TEST(KeyTest, RejectsKeysLongerThan1024Bytes) {
  EXPECT_TRUE(ValidateKey(std::string(1024, 'k')).ok());
  EXPECT_EQ(ValidateKey(std::string(1025, 'k')).code(), "KeyTooLongError");
  EXPECT_EQ(ValidateKey("").code(), "InvalidArgument");
}

TEST(RangeTest, ParsesTheThreeForms) {
  auto r = ParseRange("bytes=2-5");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->first, 2u);
  EXPECT_EQ(*r->last, 5u);
  r = ParseRange("bytes=7-");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->first, 7u);
  EXPECT_FALSE(r->last);
  r = ParseRange("bytes=-3");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->suffix_length, 3u);
}

TEST(RangeTest, IgnoresSyntaxS3Ignores) {
  EXPECT_FALSE(ParseRange("items=0-1"));
  EXPECT_FALSE(ParseRange("bytes=0-1,3-4"));
  EXPECT_FALSE(ParseRange("bytes=5-2"));
  EXPECT_FALSE(ParseRange("bytes=x-"));
}

TEST(RangeTest, ResolvesAndClampsAgainstSize) {
  auto r = ResolveRange(*ParseRange("bytes=2-100"), 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->offset, 2u);
  EXPECT_EQ(r->length, 8u);
  r = ResolveRange(*ParseRange("bytes=-4"), 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->offset, 6u);
  EXPECT_EQ(r->length, 4u);
  r = ResolveRange(*ParseRange("bytes=-40"), 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->offset, 0u);
  EXPECT_EQ(r->length, 10u);
}

TEST(RangeTest, UnsatisfiableRangeIsInvalidRange416) {
  for (auto [header, size] : {std::pair{"bytes=10-", 10}, std::pair{"bytes=0-", 0},
                              std::pair{"bytes=-0", 10}, std::pair{"bytes=-5", 0}}) {
    auto r = ResolveRange(*ParseRange(header), size);
    ASSERT_FALSE(r.ok()) << header;
    EXPECT_EQ(r.status().code(), "InvalidRange");
    EXPECT_EQ(r.status().http_status(), 416);
  }
}

TEST(ConditionsTest, IfMatchMismatchIsPreconditionFailed) {
  Conditions c;
  c.if_match = "\"other\"";
  Status s = CheckConditions(Object("\"abc\"", 100), c);
  EXPECT_EQ(s.code(), "PreconditionFailed");
  EXPECT_EQ(s.http_status(), 412);
  c.if_match = "\"x\", abc";
  EXPECT_TRUE(CheckConditions(Object("\"abc\"", 100), c).ok());
  c.if_match = std::string(1, '*');
  EXPECT_TRUE(CheckConditions(Object("\"abc\"", 100), c).ok());
}

TEST(ConditionsTest, IfNoneMatchHitIsNotModifiedOrFailureForCopy) {
  Conditions c;
  c.if_none_match = "\"abc\"";
  Status s = CheckConditions(Object("\"abc\"", 100), c);
  EXPECT_EQ(s.code(), "NotModified");
  EXPECT_EQ(s.http_status(), 304);
  EXPECT_EQ(CheckConditions(Object("\"abc\"", 100), c, true).code(), "PreconditionFailed");
  EXPECT_TRUE(CheckConditions(Object("\"def\"", 100), c).ok());
}

TEST(ConditionsTest, DatesFollowRfc7232Precedence) {
  Conditions c;
  c.if_modified_since = 200;
  EXPECT_EQ(CheckConditions(Object("\"e\"", 150), c).code(), "NotModified");
  EXPECT_TRUE(CheckConditions(Object("\"e\"", 250), c).ok());
  // If-None-Match present: If-Modified-Since is ignored.
  c.if_none_match = "\"zzz\"";
  EXPECT_TRUE(CheckConditions(Object("\"e\"", 150), c).ok());

  Conditions u;
  u.if_unmodified_since = 200;
  EXPECT_EQ(CheckConditions(Object("\"e\"", 250), u).code(), "PreconditionFailed");
  EXPECT_TRUE(CheckConditions(Object("\"e\"", 200.7), u).ok());  // second resolution
  // If-Match true wins over a failing If-Unmodified-Since, as S3 documents.
  u.if_match = "\"e\"";
  EXPECT_TRUE(CheckConditions(Object("\"e\"", 250), u).ok());
}

}  // namespace
}  // namespace nimbus::objects
