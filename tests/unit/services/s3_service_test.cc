// S3 service: the request-translation helpers, the upload body wrapper, and the handlers
// called directly against a LocalObjectStore in a temp dir.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "aws/service.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/strings.h"
#include "objects/local_object_store.h"
#include "services/s3/s3_request.h"
#include "services/s3/s3_service.h"
#include "services/s3/upload_body.h"
#include "store/database.h"

namespace nimbus::services::s3 {
namespace {

TEST(CopySourceTest, ParsesBucketKeyAndVersionWithOrWithoutLeadingSlash) {
  auto a = ParseCopySource("src-bucket/dir/a%20b%2Bc%3F.txt");
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->bucket, "src-bucket");
  EXPECT_EQ(a->key, "dir/a b+c?.txt");
  EXPECT_EQ(a->version_id, "");

  auto b = ParseCopySource("/src/%E2%82%AC?versionId=v%2B1");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->bucket, "src");
  EXPECT_EQ(b->key, "\xE2\x82\xAC");
  EXPECT_EQ(b->version_id, "v+1");
}

TEST(CopySourceTest, RejectsSourcesWithoutBucketOrKey) {
  for (const char* bad : {"", "bucket", "bucket/", "/key-only", "b/k?versionId="}) {
    auto r = ParseCopySource(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), "InvalidArgument") << bad;
  }
}

TEST(CopySourceTest, RangeMustBeFirstDashLast) {
  auto r = ParseCopySourceRange("bytes=10-29");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->first, 10u);
  EXPECT_EQ(*r->last, 29u);
  EXPECT_FALSE(ParseCopySourceRange("bytes=10-").ok());
  EXPECT_FALSE(ParseCopySourceRange("bytes=-5").ok());
  EXPECT_FALSE(ParseCopySourceRange("items=1-2").ok());
}

TEST(ConditionsTest, MapsPlainAndCopySourceMembers) {
  Value in = Value::Object({{"IfMatch", "\"a\""},
                            {"IfModifiedSince", Value::Timestamp(100)},
                            {"CopySourceIfNoneMatch", "\"b\""},
                            {"CopySourceIfUnmodifiedSince", Value::Timestamp(200)}});
  objects::Conditions plain = ConditionsFromInput(in);
  EXPECT_EQ(plain.if_match, "\"a\"");
  EXPECT_EQ(plain.if_modified_since, 100.0);
  EXPECT_FALSE(plain.if_none_match);
  objects::Conditions copy = ConditionsFromInput(in, "CopySource");
  EXPECT_FALSE(copy.if_match);
  EXPECT_EQ(copy.if_none_match, "\"b\"");
  EXPECT_EQ(copy.if_unmodified_since, 200.0);
}

TEST(TaggingTest, ParsesUrlEncodedHeaderAndRejectsDuplicates) {
  auto tags = ParseTaggingHeader("k1=v1&k%202=v+2&empty=");
  ASSERT_TRUE(tags.ok());
  EXPECT_EQ(*tags, (objects::Tags{{"k1", "v1"}, {"k 2", "v 2"}, {"empty", ""}}));
  EXPECT_EQ(ParseTaggingHeader("a=1&a=2").status().code(), "InvalidArgument");
  EXPECT_EQ(ParseTaggingHeader("=v").status().code(), "InvalidArgument");
  auto from_set = TagsFromTagSet(nullptr);
  ASSERT_TRUE(from_set.ok());
  EXPECT_TRUE(from_set->empty());
  Value set = TagSetValue({{"a", "1"}});
  EXPECT_EQ(set, Value(Value::List{Value::Object({{"Key", "a"}, {"Value", "1"}})}));
}

TEST(MetadataTest, DropsAwsChunkedAndKeepsExpiresVerbatim) {
  http::Request request;
  request.headers.Add("Expires", "not a date, kept as is");
  Value in = Value::Object({{"ContentType", "text/plain"},
                            {"ContentEncoding", "aws-chunked,gzip"},
                            {"StorageClass", "STANDARD"},
                            {"Metadata", Value::Object({{"Mixed-Case", "v"}})}});
  objects::ObjectMetadata m = MetadataFromInput(in, &request);
  EXPECT_EQ(m.content_type, "text/plain");
  EXPECT_EQ(m.content_encoding, "gzip");
  EXPECT_EQ(m.expires, "not a date, kept as is");
  EXPECT_EQ(m.storage_class, "");
  EXPECT_EQ(m.user.at("mixed-case"), "v");
  EXPECT_EQ(MetadataFromInput(Value::Object({{"ContentEncoding", "aws-chunked"}}), nullptr)
                .content_encoding,
            "");
}

TEST(ObjectHeadersTest, DefaultsTypeHidesNullVersionAndGatesChecksums) {
  objects::ObjectInfo info;
  info.etag = "\"abc\"";
  info.size = 5;
  info.version_id = "null";
  info.metadata.user = {{"a", "1"}};
  info.checksums.crc32 = "AAAAAA==";
  Value h = ObjectHeaders(info, false);
  EXPECT_EQ(h.GetString("ContentType"), "binary/octet-stream");
  EXPECT_FALSE(h.Has("VersionId"));
  EXPECT_FALSE(h.Has("ChecksumCRC32"));
  EXPECT_EQ(h.Find("Metadata")->GetString("a"), "1");
  info.version_id = "v1";
  h = ObjectHeaders(info, true);
  EXPECT_EQ(h.GetString("VersionId"), "v1");
  EXPECT_EQ(h.GetString("ChecksumCRC32"), "AAAAAA==");

  Value in = Value::Object({{"ResponseContentType", "text/csv"},
                            {"ResponseExpires", Value::Timestamp(0)},
                            {"ResponseCacheControl", "no-cache"}});
  ApplyResponseOverrides(in, &h);
  EXPECT_EQ(h.GetString("ContentType"), "text/csv");
  EXPECT_EQ(h.GetString("CacheControl"), "no-cache");
  EXPECT_EQ(h.GetString("Expires"), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(ContentRange(10, 10, 1024), "bytes 10-19/1024");
}

TEST(ListingTest, UrlEncodesKeysButKeepsSlashes) {
  EXPECT_EQ(ListingText("a b+c/\xC3\xBC", true), "a%20b%2Bc/%C3%BC");
  EXPECT_EQ(ListingText("a b", false), "a b");
  EXPECT_TRUE(*UrlEncodingRequested(Value::Object({{"EncodingType", "url"}})));
  EXPECT_FALSE(*UrlEncodingRequested(Value::MakeMap()));
  EXPECT_EQ(UrlEncodingRequested(Value::Object({{"EncodingType", "base64"}})).status().code(),
            "InvalidArgument");
}

std::string ReadAll(http::BodyReader& reader, Status* status) {
  std::string out;
  char buf[7];
  while (true) {
    Result<size_t> n = reader.Read(buf, sizeof(buf));
    if (!n.ok()) {
      *status = n.status();
      return out;
    }
    if (*n == 0) return out;
    out.append(buf, *n);
  }
}

TEST(UploadBodyTest, FailsTheLastReadWhenTheDeclaredSha256Differs) {
  http::StringBodyReader raw("actual body");
  http::Request request;
  request.body = &raw;
  request.content_length = 11;
  request.headers.Add("x-amz-content-sha256", HexEncode(Sha256("another body")));
  UploadBody body(request);
  EXPECT_EQ(body.declared_length(), 11u);
  EXPECT_FALSE(body.trailing_checksums());
  Status status;
  ReadAll(body.reader(), &status);
  EXPECT_EQ(status.code(), "XAmzContentSHA256Mismatch");
}

TEST(UploadBodyTest, PassesBodiesWhoseHashMatchesOrIsNotDeclared) {
  for (std::string declared : {HexEncode(Sha256("good body")), std::string("UNSIGNED-PAYLOAD")}) {
    http::StringBodyReader raw("good body");
    http::Request request;
    request.body = &raw;
    request.headers.Add("x-amz-content-sha256", declared);
    UploadBody body(request);
    Status status;
    EXPECT_EQ(ReadAll(body.reader(), &status), "good body");
    EXPECT_TRUE(status.ok()) << status.message();
  }
}

// The handlers, called as the dispatcher calls them, against a real LocalObjectStore.
class S3HandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-s3svc-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = store::Database::Open(dir_);
    ASSERT_TRUE(db.ok());
    db_ = std::move(db).value();
    objects::LocalObjectStoreOptions options;
    options.data_dir = dir_;
    options.db = db_.get();
    options.clock = &clock_;
    options.sync_writes = false;
    auto store = objects::LocalObjectStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(store).value();
    RegisterS3Service(registry_, *store_);
    ASSERT_TRUE(Call("CreateBucket", Value::Object({{"Bucket", "bkt"}})).ok());
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  Result<Value> Call(const std::string& op, const Value& input, std::string body = "") {
    const aws::Registration* reg = registry_.Find("s3", op);
    if (!reg) return Status::Internal("no handler for " + op);
    raw_ = std::make_unique<http::StringBodyReader>(body);
    request_ = http::Request();
    request_.body = raw_.get();
    request_.content_length = body.size();
    ctx_ = aws::RequestContext();
    ctx_.account_id = "000000000000";
    ctx_.clock = &clock_;
    ctx_.http = &request_;
    return reg->handler(input, ctx_);
  }

  // The response body the handler left in ctx_: its file region, or its stream's output.
  std::string Streamed() {
    if (ctx_.response_file) {
      std::string out(ctx_.response_file->length, '\0');
      EXPECT_EQ(::pread(ctx_.response_file->fd, out.data(), out.size(),
                        static_cast<off_t>(ctx_.response_file->offset)),
                static_cast<ssize_t>(out.size()));
      return out;
    }
    struct Sink : http::BodyWriter {
      Status Write(std::string_view data) override {
        out.append(data);
        return Status::Ok();
      }
      std::string out;
    } sink;
    EXPECT_TRUE(ctx_.response_stream);
    if (ctx_.response_stream) EXPECT_TRUE(ctx_.response_stream(sink).ok());
    return sink.out;
  }

  FakeClock clock_{1700000000};
  std::string dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<objects::LocalObjectStore> store_;
  aws::ServiceRegistry registry_;
  std::unique_ptr<http::StringBodyReader> raw_;
  http::Request request_;
  aws::RequestContext ctx_;
};

TEST_F(S3HandlersTest, PutThenRangedGetStreamsThePartialBodyWith206) {
  auto put = Call("PutObject", Value::Object({{"Bucket", "bkt"}, {"Key", "k"}}), "0123456789");
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_EQ(put->GetString("ETag"), "\"" + HexEncode(Md5("0123456789")) + "\"");

  auto got =
      Call("GetObject", Value::Object({{"Bucket", "bkt"}, {"Key", "k"}, {"Range", "bytes=2-4"}}));
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(ctx_.response_status, 206);
  EXPECT_EQ(got->GetString("ContentRange"), "bytes 2-4/10");
  // A small object lives in the metadata database and streams from memory.
  EXPECT_FALSE(ctx_.response_file);
  EXPECT_EQ(ctx_.response_stream_length, 3u);
  EXPECT_EQ(Streamed(), "234");

  auto whole = Call("GetObject", Value::Object({{"Bucket", "bkt"}, {"Key", "k"}}));
  ASSERT_TRUE(whole.ok());
  EXPECT_FALSE(ctx_.response_status);
  EXPECT_EQ(Streamed(), "0123456789");
}

TEST_F(S3HandlersTest, LargerObjectsAreServedFromTheirBlobFiles) {
  std::string body(100 << 10, 'z');
  body[70000] = '!';
  ASSERT_TRUE(Call("PutObject", Value::Object({{"Bucket", "bkt"}, {"Key", "k"}}), body).ok());
  auto got = Call("GetObject",
                  Value::Object({{"Bucket", "bkt"}, {"Key", "k"}, {"Range", "bytes=69999-70001"}}));
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(ctx_.response_status, 206);
  // Served from the blob file (sendfile), not through a stream.
  ASSERT_TRUE(ctx_.response_file);
  EXPECT_FALSE(ctx_.response_stream);
  EXPECT_EQ(ctx_.response_file->length, 3u);
  EXPECT_TRUE(ctx_.response_file->keep_alive);
  EXPECT_EQ(Streamed(), "z!z");
}

TEST_F(S3HandlersTest, ConditionalGetMapsTo412And304) {
  ASSERT_TRUE(Call("PutObject", Value::Object({{"Bucket", "bkt"}, {"Key", "k"}}), "x").ok());
  auto failed =
      Call("GetObject", Value::Object({{"Bucket", "bkt"}, {"Key", "k"}, {"IfMatch", "\"nope\""}}));
  EXPECT_EQ(failed.status().http_status(), 412);
  auto head = Call("HeadObject", Value::Object({{"Bucket", "bkt"}, {"Key", "k"}}));
  ASSERT_TRUE(head.ok());
  auto not_modified = Call(
      "GetObject",
      Value::Object({{"Bucket", "bkt"}, {"Key", "k"}, {"IfNoneMatch", head->GetString("ETag")}}));
  EXPECT_EQ(not_modified.status().http_status(), 304);
}

TEST_F(S3HandlersTest, CopyObjectReadsTheUrlEncodedSourceAndReplacesMetadata) {
  ASSERT_TRUE(
      Call("PutObject",
           Value::Object(
               {{"Bucket", "bkt"}, {"Key", "a b"}, {"Metadata", Value::Object({{"m", "1"}})}}),
           "src")
          .ok());
  auto copied = Call("CopyObject", Value::Object({{"Bucket", "bkt"},
                                                  {"Key", "dst"},
                                                  {"CopySource", "bkt/a%20b"},
                                                  {"MetadataDirective", "REPLACE"},
                                                  {"Metadata", Value::Object({{"n", "2"}})}}));
  ASSERT_TRUE(copied.ok()) << copied.status().message();
  EXPECT_TRUE(copied->Find("CopyObjectResult")->Has("ETag"));
  auto head = Call("HeadObject", Value::Object({{"Bucket", "bkt"}, {"Key", "dst"}}));
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(*head->Find("Metadata"), Value::Object({{"n", "2"}}));
  auto bad = Call("CopyObject", Value::Object({{"Bucket", "bkt"},
                                               {"Key", "dst"},
                                               {"CopySource", "bkt/a%20b"},
                                               {"MetadataDirective", "MERGE"}}));
  EXPECT_EQ(bad.status().code(), "InvalidArgument");
}

TEST_F(S3HandlersTest, ListObjectsV2EncodesKeysAndPrefixesOnRequest) {
  for (const char* key : {"d e+f", "dir/x"}) {
    ASSERT_TRUE(Call("PutObject", Value::Object({{"Bucket", "bkt"}, {"Key", key}}), "x").ok());
  }
  auto list = Call("ListObjectsV2",
                   Value::Object({{"Bucket", "bkt"}, {"Delimiter", "/"}, {"EncodingType", "url"}}));
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_EQ(list->Find("Contents")->list().at(0).GetString("Key"), "d%20e%2Bf");
  EXPECT_EQ(list->Find("CommonPrefixes")->list().at(0).GetString("Prefix"), "dir/");
  EXPECT_EQ(list->GetInt("KeyCount"), 2);
  EXPECT_EQ(list->GetString("EncodingType"), "url");
  EXPECT_FALSE(list->Find("Contents")->list().at(0).Has("Owner"));
}

TEST_F(S3HandlersTest, NamesBucketAndObjectArnsForAuthorization) {
  const aws::Registration* get = registry_.Find("s3", "GetObject");
  ASSERT_NE(get, nullptr);
  aws::RequestContext ctx;
  EXPECT_EQ(get->resource(Value::Object({{"Bucket", "b"}, {"Key", "a/b"}}), ctx),
            "arn:aws:s3:::b/a/b");
  const aws::Registration* list = registry_.Find("s3", "ListObjectsV2");
  EXPECT_EQ(list->resource(Value::Object({{"Bucket", "b"}}), ctx), "arn:aws:s3:::b");
  EXPECT_EQ(registry_.Find("s3", "ListBuckets")->resource(Value::MakeMap(), ctx), "*");
}

TEST_F(S3HandlersTest, NotificationConfigurationRoundTrips) {
  Value config = Value::Object(
      {{"QueueConfigurations", Value(Value::List{Value::Object(
                                   {{"QueueArn", "arn:aws:sqs:us-east-1:0:q"},
                                    {"Events", Value(Value::List{"s3:ObjectCreated:*"})}})})}});
  ASSERT_TRUE(Call("PutBucketNotificationConfiguration",
                   Value::Object({{"Bucket", "bkt"}, {"NotificationConfiguration", config}}))
                  .ok());
  auto got = Call("GetBucketNotificationConfiguration", Value::Object({{"Bucket", "bkt"}}));
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(*got, config);
}

}  // namespace
}  // namespace nimbus::services::s3
