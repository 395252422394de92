#include "aws/sigv4/chunked_payload.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "aws/sigv4/sigv4.h"

namespace nimbus::aws::sigv4 {
namespace {

// The S3 documentation's streaming upload examples: 66560 bytes of 'a' in a 64 KiB chunk
// and a 1 KiB chunk, signed at 20130524T000000Z with the documentation's key.
constexpr char kKey[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr double kTime = 1369353600;  // 20130524T000000Z
constexpr char kAmzDate[] = "20130524T000000Z";
constexpr char kScope[] = "20130524/us-east-1/s3/aws4_request";
constexpr size_t kPayloadSize = 66560;

// Published signatures of the STREAMING-AWS4-HMAC-SHA256-PAYLOAD example.
constexpr char kSeed[] = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
constexpr char kChunk1[] = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";
constexpr char kChunk2[] = "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497";
constexpr char kFinal[] = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9";

// Published signatures of the STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER example.
constexpr char kTrailerSeed[] = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
constexpr char kTrailerChunk1[] =
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2";
constexpr char kTrailerChunk2[] =
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7";
constexpr char kTrailerFinal[] = "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992";

std::string Payload() { return std::string(kPayloadSize, 'a'); }

// The wire of the documentation's example, written out by hand.
std::string ExampleWire() {
  return std::string("10000;chunk-signature=") + kChunk1 + "\r\n" + std::string(65536, 'a') +
         "\r\n400;chunk-signature=" + kChunk2 + "\r\n" + std::string(1024, 'a') +
         "\r\n0;chunk-signature=" + kFinal + "\r\n\r\n";
}

// Hands the body out a few bytes at a time, as a slow client would.
class TrickleReader : public http::BodyReader {
 public:
  TrickleReader(std::string data, size_t step) : data_(std::move(data)), step_(step) {}
  Result<size_t> Read(char* buf, size_t n) override {
    size_t k = std::min({n, step_, data_.size() - pos_});
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    return k;
  }

 private:
  std::string data_;
  size_t step_;
  size_t pos_ = 0;
};

// A signed PUT of the example object, with the body reader attached.
struct Upload {
  http::Request request;
  SignedRequest signed_request;
  std::string seed;
  std::unique_ptr<http::BodyReader> raw;
};

std::unique_ptr<Upload> StartUpload(std::string_view mode, std::string body,
                                    uint64_t decoded_length = kPayloadSize,
                                    std::string_view trailer = "", size_t step = 1 << 20) {
  auto upload = std::make_unique<Upload>();
  http::Request& r = upload->request;
  r.method = "PUT";
  r.target = "/examplebucket/chunkObject.txt";
  r.SplitTarget();
  r.headers.Add("Host", "s3.amazonaws.com");
  r.headers.Add("x-amz-storage-class", "REDUCED_REDUNDANCY");
  r.headers.Add("Content-Encoding", "aws-chunked");
  r.headers.Add("x-amz-decoded-content-length", std::to_string(decoded_length));
  if (mode == kStreamingPayload) r.headers.Add("Content-Length", "66824");
  if (!trailer.empty()) r.headers.Add("x-amz-trailer", std::string(trailer));
  upload->seed =
      SignRequestWithPayloadHash(r, kKey, kSecret, "us-east-1", "s3", kTime, mode, "", true);
  upload->raw = std::make_unique<TrickleReader>(std::move(body), step);
  r.body = upload->raw.get();
  Result<SignedRequest> parsed = Parse(r);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  if (parsed.ok()) upload->signed_request = *parsed;
  return upload;
}

// Reads the whole decoded body in reads of `step` bytes.
Result<std::string> Drain(http::BodyReader& reader, size_t step = 4096) {
  std::string out;
  std::string buf(step, '\0');
  while (true) {
    NIMBUS_ASSIGN_OR_RETURN(size_t n, reader.Read(buf.data(), buf.size()));
    if (n == 0) return out;
    out.append(buf, 0, n);
  }
}

std::unique_ptr<ChunkedBodyReader> MakeReader(const Upload& upload) {
  auto reader = ChunkedBodyReader::Create(upload.request, upload.signed_request, kSecret);
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  return reader.ok() ? std::move(*reader) : nullptr;
}

TEST(ChunkedPayloadTest, SeedSignatureMatchesTheDocumentation) {
  auto upload = StartUpload(kStreamingPayload, ExampleWire());
  EXPECT_EQ(upload->seed, kSeed);
  EXPECT_EQ(upload->request.headers.Get("Authorization"),
            std::string("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                        "aws4_request, SignedHeaders=content-encoding;content-length;host;"
                        "x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;"
                        "x-amz-storage-class, Signature=") +
                kSeed);
  EXPECT_EQ(PayloadHashBeforeBody(upload->signed_request, true), kStreamingPayload);
  VerifyOptions options;
  options.now = kTime;
  options.s3 = true;
  EXPECT_TRUE(
      Verify(upload->signed_request, upload->request, kSecret, kStreamingPayload, options).ok());
}

TEST(ChunkedPayloadTest, ChunkSignaturesMatchTheDocumentation) {
  std::string key = SigningKey(kSecret, "20130524", "us-east-1", "s3");
  EXPECT_EQ(ChunkSignature(key, kAmzDate, kScope, kSeed, std::string(65536, 'a')), kChunk1);
  EXPECT_EQ(ChunkSignature(key, kAmzDate, kScope, kChunk1, std::string(1024, 'a')), kChunk2);
  EXPECT_EQ(ChunkSignature(key, kAmzDate, kScope, kChunk2, ""), kFinal);
}

TEST(ChunkedPayloadTest, EncoderWritesTheDocumentedBody) {
  std::string key = SigningKey(kSecret, "20130524", "us-east-1", "s3");
  EXPECT_EQ(EncodeAwsChunked(Payload(), 65536, kStreamingPayload, key, kAmzDate, kScope, kSeed),
            ExampleWire());
}

TEST(ChunkedPayloadTest, DecodesTheDocumentedBody) {
  auto upload = StartUpload(kStreamingPayload, ExampleWire());
  auto reader = MakeReader(*upload);
  ASSERT_NE(reader, nullptr);
  Result<std::string> body = Drain(*reader);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(*body, Payload());
  EXPECT_TRUE(reader->trailers().empty());
  EXPECT_EQ(reader->decoded_length(), kPayloadSize);
  // The end stays the end.
  char c;
  Result<size_t> again = reader->Read(&c, 1);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);
}

TEST(ChunkedPayloadTest, DecodesWhenTheBodyTricklesInAndIsReadInOddSizes) {
  auto upload = StartUpload(kStreamingPayload, ExampleWire(), kPayloadSize, "", /*step=*/7);
  auto reader = MakeReader(*upload);
  ASSERT_NE(reader, nullptr);
  Result<std::string> body = Drain(*reader, 333);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(*body, Payload());
}

TEST(ChunkedPayloadTest, RejectsBadChunkSignature) {
  std::string wire = ExampleWire();
  wire[std::string("10000;chunk-signature=").size()] = 'b';  // "ad80..." -> "bd80..."
  auto upload = StartUpload(kStreamingPayload, wire);
  auto reader = MakeReader(*upload);
  ASSERT_NE(reader, nullptr);
  char buf[16];
  Result<size_t> n = reader->Read(buf, sizeof(buf));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().kind(), ErrorKind::kSignatureMismatch);
  // No byte of an unverified chunk was handed out, and the error sticks.
  Result<size_t> again = reader->Read(buf, sizeof(buf));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().kind(), ErrorKind::kSignatureMismatch);
}

TEST(ChunkedPayloadTest, RejectsTamperedChunkData) {
  std::string wire = ExampleWire();
  wire[wire.find("\r\naaaa") + 100] = 'b';
  auto upload = StartUpload(kStreamingPayload, wire);
  auto reader = MakeReader(*upload);
  ASSERT_NE(reader, nullptr);
  Result<std::string> body = Drain(*reader);
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.status().kind(), ErrorKind::kSignatureMismatch);
}

TEST(ChunkedPayloadTest, RejectsChunkSignedForAnotherRequest) {
  // Right chunks, but the request's own signature differs (another object key): the chain's
  // seed does not match, so the first chunk fails.
  auto upload = StartUpload(kStreamingPayload, ExampleWire());
  upload->request.target = "/examplebucket/other.txt";
  upload->request.SplitTarget();
  upload->seed = SignRequestWithPayloadHash(upload->request, kKey, kSecret, "us-east-1", "s3",
                                            kTime, kStreamingPayload, "", true);
  Result<SignedRequest> parsed = Parse(upload->request);
  ASSERT_TRUE(parsed.ok());
  upload->signed_request = *parsed;
  auto reader = MakeReader(*upload);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(Drain(*reader).status().kind(), ErrorKind::kSignatureMismatch);
}

TEST(ChunkedPayloadTest, RejectsDecodedLengthOtherThanDeclared) {
  std::string key = SigningKey(kSecret, "20130524", "us-east-1", "s3");
  for (uint64_t declared : {kPayloadSize - 1, kPayloadSize + 1}) {
    SCOPED_TRACE(declared);
    // x-amz-decoded-content-length is signed, so the chain starts from this request's seed.
    auto upload = StartUpload(kStreamingPayload, "", declared);
    upload->raw = std::make_unique<TrickleReader>(
        EncodeAwsChunked(Payload(), 65536, kStreamingPayload, key, kAmzDate, kScope, upload->seed),
        1 << 20);
    upload->request.body = upload->raw.get();
    auto reader = MakeReader(*upload);
    ASSERT_NE(reader, nullptr);
    Result<std::string> body = Drain(*reader);
    ASSERT_FALSE(body.ok());
    EXPECT_EQ(body.status().kind(), ErrorKind::kSerialization);
    EXPECT_EQ(body.status().code(), "IncompleteBody");
  }
}

TEST(ChunkedPayloadTest, RejectsTruncatedBody) {
  std::string wire = ExampleWire();
  auto upload = StartUpload(kStreamingPayload, wire.substr(0, 66000));
  auto reader = MakeReader(*upload);
  ASSERT_NE(reader, nullptr);
  Result<std::string> body = Drain(*reader);
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.status().code(), "IncompleteBody");
}

TEST(ChunkedPayloadTest, RejectsMalformedFraming) {
  const std::string cases[] = {
      "zz;chunk-signature=" + std::string(kChunk1) + "\r\n",
      "10000;chunk-signature=" + std::string(kChunk1) + "\r\n" + std::string(65536, 'a') + "XY",
      "fffffffff;chunk-signature=" + std::string(kChunk1) + "\r\n",
  };
  for (const auto& wire : cases) {
    auto upload = StartUpload(kStreamingPayload, wire);
    auto reader = MakeReader(*upload);
    ASSERT_NE(reader, nullptr);
    Result<std::string> body = Drain(*reader);
    ASSERT_FALSE(body.ok());
    EXPECT_EQ(body.status().kind(), ErrorKind::kSerialization) << body.status().ToString();
  }
}

TEST(ChunkedPayloadTest, RejectsMissingChunkSignatureInSignedMode) {
  auto upload = StartUpload(kStreamingPayload, "400\r\n" + std::string(1024, 'a') + "\r\n", 1024);
  auto reader = MakeReader(*upload);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(Drain(*reader).status().kind(), ErrorKind::kSignatureMismatch);
}

TEST(ChunkedPayloadTest, SignedTrailerExampleChunksMatchTheDocumentation) {
  auto upload = StartUpload(kStreamingPayloadTrailer, "", kPayloadSize, "x-amz-checksum-crc32c");
  EXPECT_EQ(upload->seed, kTrailerSeed);
  std::string key = SigningKey(kSecret, "20130524", "us-east-1", "s3");
  Trailers trailers = {{"x-amz-checksum-crc32c", "sOO8/Q=="}};
  std::string wire = EncodeAwsChunked(Payload(), 65536, kStreamingPayloadTrailer, key, kAmzDate,
                                      kScope, kTrailerSeed, trailers);
  std::string trailer_signature = TrailerSignature(key, kAmzDate, kScope, kTrailerFinal, trailers);
  EXPECT_EQ(wire, std::string("10000;chunk-signature=") + kTrailerChunk1 + "\r\n" +
                      std::string(65536, 'a') + "\r\n400;chunk-signature=" + kTrailerChunk2 +
                      "\r\n" + std::string(1024, 'a') + "\r\n0;chunk-signature=" + kTrailerFinal +
                      "\r\nx-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:" +
                      trailer_signature + "\r\n\r\n");

  auto decode = StartUpload(kStreamingPayloadTrailer, wire, kPayloadSize, "x-amz-checksum-crc32c");
  auto reader = MakeReader(*decode);
  ASSERT_NE(reader, nullptr);
  Result<std::string> body = Drain(*reader);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(*body, Payload());
  EXPECT_EQ(reader->trailers(), trailers);
}

TEST(ChunkedPayloadTest, TrailerSignatureSignsEachTrailerLine) {
  std::string key = SigningKey(kSecret, "20130524", "us-east-1", "s3");
  Trailers one = {{"x-amz-checksum-crc32", "AAAAAA=="}};
  Trailers other = {{"x-amz-checksum-crc32", "AAAAAB=="}};
  EXPECT_NE(TrailerSignature(key, kAmzDate, kScope, kTrailerFinal, one),
            TrailerSignature(key, kAmzDate, kScope, kTrailerFinal, other));
  Trailers ab = {{"x-amz-a", "1"}, {"x-amz-b", "2"}};
  Trailers ba = {{"x-amz-b", "2"}, {"x-amz-a", "1"}};
  EXPECT_EQ(TrailerSignature(key, kAmzDate, kScope, kTrailerFinal, ab),
            TrailerSignature(key, kAmzDate, kScope, kTrailerFinal, ba));
}

TEST(ChunkedPayloadTest, RejectsTamperedSignedTrailer) {
  std::string key = SigningKey(kSecret, "20130524", "us-east-1", "s3");
  std::string wire =
      EncodeAwsChunked(Payload(), 65536, kStreamingPayloadTrailer, key, kAmzDate, kScope,
                       kTrailerSeed, {{"x-amz-checksum-crc32c", "sOO8/Q=="}});
  std::string tampered = wire;
  tampered.replace(tampered.find("sOO8/Q=="), 8, "AAAAAA==");
  auto upload =
      StartUpload(kStreamingPayloadTrailer, tampered, kPayloadSize, "x-amz-checksum-crc32c");
  auto reader = MakeReader(*upload);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(Drain(*reader).status().kind(), ErrorKind::kSignatureMismatch);

  std::string unsigned_trailer = wire.substr(0, wire.find("x-amz-trailer-signature")) + "\r\n";
  auto missing = StartUpload(kStreamingPayloadTrailer, unsigned_trailer, kPayloadSize,
                             "x-amz-checksum-crc32c");
  auto missing_reader = MakeReader(*missing);
  ASSERT_NE(missing_reader, nullptr);
  EXPECT_EQ(Drain(*missing_reader).status().kind(), ErrorKind::kSignatureMismatch);
}

TEST(ChunkedPayloadTest, DecodesUnsignedPayloadWithTrailer) {
  std::string wire = EncodeAwsChunked("hello world", 5, kStreamingUnsignedPayloadTrailer, "", "",
                                      "", "", {{"x-amz-checksum-crc32", "DUoRhQ=="}});
  EXPECT_EQ(wire,
            "5\r\nhello\r\n5\r\n worl\r\n1\r\nd\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n");
  auto upload = StartUpload(kStreamingUnsignedPayloadTrailer, wire, 11, "x-amz-checksum-crc32");
  auto reader = MakeReader(*upload);
  ASSERT_NE(reader, nullptr);
  Result<std::string> body = Drain(*reader, 3);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(*body, "hello world");
  ASSERT_EQ(reader->trailers().size(), 1u);
  EXPECT_EQ(reader->trailers()[0].first, "x-amz-checksum-crc32");
  EXPECT_EQ(reader->trailers()[0].second, "DUoRhQ==");
}

TEST(ChunkedPayloadTest, AcceptsTrailerLinesEndedByBareNewline) {
  auto upload =
      StartUpload(kStreamingUnsignedPayloadTrailer,
                  "2\r\nhi\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\n\r\n", 2, "x-amz-checksum-crc32");
  auto reader = MakeReader(*upload);
  ASSERT_NE(reader, nullptr);
  Result<std::string> body = Drain(*reader);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(*body, "hi");
  EXPECT_EQ(reader->trailers().size(), 1u);
}

TEST(ChunkedPayloadTest, RejectsMissingDeclaredTrailer) {
  auto upload = StartUpload(kStreamingUnsignedPayloadTrailer, "2\r\nhi\r\n0\r\n\r\n", 2,
                            "x-amz-checksum-crc32");
  auto reader = MakeReader(*upload);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(Drain(*reader).status().kind(), ErrorKind::kSerialization);
}

TEST(ChunkedPayloadTest, RejectsTrailersInPayloadModeWithoutThem) {
  std::string key = SigningKey(kSecret, "20130524", "us-east-1", "s3");
  std::string wire =
      EncodeAwsChunked(Payload(), 65536, kStreamingPayload, key, kAmzDate, kScope, kSeed);
  wire.insert(wire.size() - 2, "x-amz-checksum-crc32:AAAAAA==\r\n");
  auto upload = StartUpload(kStreamingPayload, wire);
  auto reader = MakeReader(*upload);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(Drain(*reader).status().kind(), ErrorKind::kSerialization);
}

TEST(ChunkedPayloadTest, CreateRejectsRequestsThatAreNotAwsChunked) {
  auto upload = StartUpload(kStreamingPayload, ExampleWire());
  SignedRequest plain = upload->signed_request;
  plain.payload_hash = std::string(kEmptySha256);
  EXPECT_EQ(ChunkedBodyReader::Create(upload->request, plain, kSecret).status().kind(),
            ErrorKind::kValidation);

  SignedRequest ecdsa = upload->signed_request;
  ecdsa.payload_hash = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD";
  EXPECT_EQ(ChunkedBodyReader::Create(upload->request, ecdsa, kSecret).status().kind(),
            ErrorKind::kNotImplemented);

  upload->request.headers.Remove("x-amz-decoded-content-length");
  EXPECT_EQ(
      ChunkedBodyReader::Create(upload->request, upload->signed_request, kSecret).status().code(),
      "MissingContentLength");
}

}  // namespace
}  // namespace nimbus::aws::sigv4
