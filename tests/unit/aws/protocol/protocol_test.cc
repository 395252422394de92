// ParseRequest / SerializeResponse / SerializeError per protocol, against the real
// embedded models and the bytes real clients send.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "aws/protocol/bindings.h"
#include "aws/protocol/cbor.h"
#include "aws/protocol/errors.h"
#include "aws/protocol/protocol.h"
#include "core/json.h"
#include "core/strings.h"

#include "test_request.h"

namespace nimbus::aws::protocol {
namespace {

using test_support::Models;
using test_support::Req;

// Resolves and parses, failing the test on error.
struct Parsed {
  ResolvedOperation op;
  Value input;
};

Result<Parsed> ResolveAndParse(const http::Request& r, std::string_view signing_name,
                               std::string_view body) {
  NIMBUS_ASSIGN_OR_RETURN(ResolvedOperation op, Resolve(Models(), r, signing_name, body));
  NIMBUS_ASSIGN_OR_RETURN(Value input, ParseRequest(op, r, body));
  return Parsed{op, input};
}

ResolvedOperation Op(std::string_view service, std::string_view operation, Protocol protocol) {
  const model::ServiceModel* s = Models().Find(service);
  return ResolvedOperation{s, s->FindOperation(operation), protocol, {}};
}

// --- awsJson ---

TEST(JsonProtocolTest, ParsesSageMakerCreateTrainingJob) {
  const char* body = R"({
    "TrainingJobName": "xgb-1",
    "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
    "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
    "HyperParameters": {"max_depth": "5"},
    "InputDataConfig": [{"ChannelName": "train",
      "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/train"}}}],
    "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    "UnknownMember": {"ignored": true}
  })";
  auto p = ResolveAndParse(Req("POST", "/", {{"X-Amz-Target", "SageMaker.CreateTrainingJob"}}),
                           "sagemaker", body);
  ASSERT_TRUE(p.ok()) << p.status().message();
  Value& in = p->input;
  EXPECT_EQ(in.GetString("TrainingJobName"), "xgb-1");
  EXPECT_FALSE(in.Has("UnknownMember"));
  EXPECT_EQ(in["ResourceConfig"].GetInt("InstanceCount"), 1);
  EXPECT_EQ(in["InputDataConfig"].list()[0]["DataSource"]["S3DataSource"].GetString("S3Uri"),
            "s3://b/train");
  EXPECT_TRUE(Validate(*p->op.operation->input, in).ok());
}

TEST(JsonProtocolTest, ParsesLogsPutLogEventsWithLongTimestamps) {
  auto p = ResolveAndParse(
      Req("POST", "/", {{"X-Amz-Target", "Logs_20140328.PutLogEvents"}}), "logs",
      R"({"logGroupName":"g","logStreamName":"s","logEvents":[{"timestamp":1700000000000,"message":"hi"}]})");
  ASSERT_TRUE(p.ok()) << p.status().message();
  Value& ev = p->input["logEvents"].list()[0];
  EXPECT_EQ(ev.GetInt("timestamp"), 1700000000000);
  EXPECT_EQ(ev.GetString("message"), "hi");
}

TEST(JsonProtocolTest, EmptyBodyIsAnEmptyInput) {
  auto p = ResolveAndParse(Req("POST", "/", {{"X-Amz-Target", "SageMaker.ListTrainingJobs"}}),
                           "sagemaker", "");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->input.is_map());
  EXPECT_EQ(p->input.size(), 0u);
}

TEST(JsonProtocolTest, DecodesBlobsAndTimestamps) {
  // rekognition DetectLabels takes Image.Bytes, a blob: base64 on the wire.
  auto p = ResolveAndParse(Req("POST", "/", {{"X-Amz-Target", "RekognitionService.DetectLabels"}}),
                           "rekognition", R"({"Image":{"Bytes":"aGVsbG8="}})");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->input["Image"]["Bytes"], Value::Blob("hello"));

  auto t = ResolveAndParse(
      Req("POST", "/", {{"X-Amz-Target", "SageMaker.ListTrainingJobs"}}), "sagemaker",
      R"({"CreationTimeAfter": 1700000000.5, "CreationTimeBefore": "2023-11-14T22:13:20Z"})");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->input["CreationTimeAfter"], Value::Timestamp(1700000000.5));
  EXPECT_EQ(t->input["CreationTimeBefore"], Value::Timestamp(1700000000));
}

TEST(JsonProtocolTest, WrongTypesAndBadJsonAreSerializationErrors) {
  struct Case {
    const char* body;
    const char* names;
  };
  const Case cases[] = {
      {R"({"ResourceConfig": {"InstanceCount": "one"}})", "ResourceConfig.InstanceCount"},
      {R"({"TrainingJobName": 5})", "TrainingJobName"},
      {R"({"InputDataConfig": {"a": 1}})", "InputDataConfig"},
      {R"([1, 2])", "object"},
      {R"({"TrainingJobName": )", "JSON"},
  };
  for (const Case& c : cases) {
    auto p = ResolveAndParse(Req("POST", "/", {{"X-Amz-Target", "SageMaker.CreateTrainingJob"}}),
                             "sagemaker", c.body);
    ASSERT_FALSE(p.ok()) << c.body;
    EXPECT_EQ(p.status().kind(), ErrorKind::kSerialization) << c.body;
    EXPECT_NE(p.status().message().find(c.names), std::string::npos) << p.status().message();
  }
  std::string deep(5000, '[');
  auto p = ResolveAndParse(Req("POST", "/", {{"X-Amz-Target", "SageMaker.CreateTrainingJob"}}),
                           "sagemaker", "{\"TrainingJobName\":" + deep);
  EXPECT_EQ(p.status().kind(), ErrorKind::kSerialization);
}

TEST(JsonProtocolTest, SerializesOutputsWithWireNamesAndEpochTimestamps) {
  http::Response r =
      SerializeResponse(Op("sagemaker", "DescribeTrainingJob", Protocol::kJson),
                        Value::Object({{"TrainingJobName", "j"},
                                       {"TrainingJobStatus", "Completed"},
                                       {"CreationTime", Value::Timestamp(1700000000)},
                                       {"NotInTheModel", "dropped"}}),
                        "req-1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.Get("Content-Type"), "application/x-amz-json-1.1");
  EXPECT_EQ(r.headers.Get("x-amzn-RequestId"), "req-1");
  auto body = ParseJson(r.body);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ((*body)["CreationTime"].AsDouble(), 1700000000.0);
  EXPECT_EQ(body->GetString("TrainingJobStatus"), "Completed");
  EXPECT_FALSE(body->Has("NotInTheModel"));

  http::Response null_output =
      SerializeResponse(Op("sagemaker", "DescribeTrainingJob", Protocol::kJson), Value(), "r");
  EXPECT_EQ(null_output.body, "{}");

  http::Response empty =
      SerializeResponse(Op("cloudwatch", "PutMetricData", Protocol::kJson), Value(), "r");
  EXPECT_EQ(empty.body, "{}");
  EXPECT_EQ(empty.headers.Get("Content-Type"), "application/x-amz-json-1.0");

  http::Response blob =
      SerializeResponse(Op("lexv2-runtime", "PutSession", Protocol::kRestJson),
                        Value::Object({{"audioStream", Value::Blob("PCM")}}), "r");
  EXPECT_EQ(blob.body, "PCM");
}

// --- rest-json ---

TEST(RestJsonProtocolTest, ParsesLambdaInvokeHeadersQueryAndPayload) {
  auto p = ResolveAndParse(Req("POST", "/2015-03-31/functions/my-fn/invocations?Qualifier=prod",
                               {{"X-Amz-Invocation-Type", "Event"}, {"X-Amz-Log-Type", "Tail"}}),
                           "lambda", R"({"k": "v"})");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->input.GetString("FunctionName"), "my-fn");
  EXPECT_EQ(p->input.GetString("Qualifier"), "prod");
  EXPECT_EQ(p->input.GetString("InvocationType"), "Event");
  EXPECT_EQ(p->input["Payload"], Value::Blob(R"({"k": "v"})"));
}

TEST(RestJsonProtocolTest, SerializesLambdaInvokeStatusHeadersAndRawPayload) {
  http::Response r = SerializeResponse(Op("lambda", "Invoke", Protocol::kRestJson),
                                       Value::Object({{"StatusCode", 202},
                                                      {"FunctionError", "Unhandled"},
                                                      {"ExecutedVersion", "$LATEST"},
                                                      {"Payload", Value::Blob("{\"ok\":true}")}}),
                                       "rid");
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.headers.Get("X-Amz-Function-Error"), "Unhandled");
  EXPECT_EQ(r.headers.Get("X-Amz-Executed-Version"), "$LATEST");
  EXPECT_EQ(r.body, "{\"ok\":true}");
  EXPECT_EQ(r.headers.Get("Content-Type"), "application/octet-stream");
  EXPECT_EQ(r.headers.Get("x-amzn-RequestId"), "rid");
}

TEST(RestJsonProtocolTest, ParsesBodyMembersBesideUriLabels) {
  // lambda CreateAlias: POST /2015-03-31/functions/{FunctionName}/aliases, body Name etc.
  auto p = ResolveAndParse(Req("POST", "/2015-03-31/functions/fn/aliases"), "lambda",
                           R"({"Name":"live","FunctionVersion":"1","FunctionName":"ignored"})");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->op.operation->name, "CreateAlias");
  EXPECT_EQ(p->input.GetString("FunctionName"), "fn");
  EXPECT_EQ(p->input.GetString("Name"), "live");

  http::Response r =
      SerializeResponse(p->op, Value::Object({{"Name", "live"}, {"FunctionVersion", "1"}}), "r");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.headers.Get("Content-Type"), "application/json");
  EXPECT_EQ(ParseJson(r.body)->GetString("Name"), "live");
}

TEST(RestJsonProtocolTest, ReadsJsonValueHeaders) {
  // lex-runtime PostContent carries sessionAttributes as base64-encoded JSON in a header
  // (the jsonvalue trait); its audio body is a stream left to the handler.
  http::Request r = Req("POST", "/bot/B/alias/A/user/u1/content",
                        {{"x-amz-lex-session-attributes", Base64Encode(R"({"k":"v"})")},
                         {"Content-Type", "audio/l16; rate=16000; channels=1"}});
  auto p = ResolveAndParse(r, "lex", "");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->op.service->name, "lex-runtime");
  EXPECT_EQ(p->input["sessionAttributes"], Value::Object({{"k", "v"}}));
  EXPECT_EQ(p->input.GetString("contentType"), "audio/l16; rate=16000; channels=1");
  EXPECT_TRUE(StreamsRequestBody(*p->op.operation));

  r.headers.Set("x-amz-lex-session-attributes", "!!!");
  EXPECT_EQ(ResolveAndParse(r, "lex", "").status().kind(), ErrorKind::kSerialization);
}

// --- rest-xml bindings (bodies are the XML engineer's) ---

TEST(RestXmlProtocolTest, BindsS3PutObjectHeadersAndLeavesTheStreamingBody) {
  const model::Operation* put = Models().Find("s3")->FindOperation("PutObject");
  EXPECT_TRUE(StreamsRequestBody(*put));
  EXPECT_TRUE(StreamsResponseBody(*Models().Find("s3")->FindOperation("GetObject")));
  EXPECT_FALSE(StreamsRequestBody(*Models().Find("lambda")->FindOperation("Invoke")));
  auto p = ResolveAndParse(Req("PUT", "/bkt/dir/file.txt",
                               {{"Content-Type", "text/plain"},
                                {"x-amz-meta-Owner", "alice"},
                                {"X-Amz-Meta-project", "nimbus"},
                                {"Content-Length", "5"},
                                {"x-amz-storage-class", "STANDARD"}}),
                           "s3", "");
  ASSERT_TRUE(p.ok()) << p.status().message();
  Value& in = p->input;
  EXPECT_EQ(in.GetString("Bucket"), "bkt");
  EXPECT_EQ(in.GetString("Key"), "dir/file.txt");
  EXPECT_EQ(in.GetString("ContentType"), "text/plain");
  EXPECT_EQ(in.GetInt("ContentLength"), 5);
  EXPECT_EQ(in["Metadata"], Value::Object({{"owner", "alice"}, {"project", "nimbus"}}));
  EXPECT_FALSE(in.Has("Body"));
}

TEST(RestXmlProtocolTest, ParsesS3GetObjectQueryAndDateHeaders) {
  auto p = ResolveAndParse(
      Req("GET", "/bkt/k?versionId=v1&partNumber=2",
          {{"If-Modified-Since", "Wed, 21 Oct 2015 07:28:00 GMT"}, {"Range", "bytes=0-9"}}),
      "s3", "");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->input.GetString("VersionId"), "v1");
  EXPECT_EQ(p->input.GetInt("PartNumber"), 2);
  EXPECT_EQ(p->input["IfModifiedSince"], Value::Timestamp(1445412480));
  EXPECT_EQ(p->input.GetString("Range"), "bytes=0-9");

  auto bad = ResolveAndParse(Req("GET", "/bkt/k?partNumber=two"), "s3", "");
  EXPECT_EQ(bad.status().kind(), ErrorKind::kSerialization);
}

TEST(RestXmlProtocolTest, SerializesS3GetObjectHeadersAndIds) {
  http::Response r =
      SerializeResponse(Op("s3", "GetObject", Protocol::kRestXml),
                        Value::Object({{"ContentType", "text/plain"},
                                       {"ContentLength", 5},
                                       {"ETag", "\"abc\""},
                                       {"LastModified", Value::Timestamp(1445412480)},
                                       {"Metadata", Value::Object({{"owner", "alice"}})},
                                       {"Body", Value::Blob("hello")}}),
                        "REQ");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(r.headers.Get("Content-Type"), "text/plain");
  EXPECT_EQ(r.headers.Get("Last-Modified"), "Wed, 21 Oct 2015 07:28:00 GMT");
  EXPECT_EQ(r.headers.Get("x-amz-meta-owner"), "alice");
  EXPECT_EQ(r.headers.Get("ETag"), "\"abc\"");
  EXPECT_EQ(r.headers.Get("x-amz-request-id"), "REQ");
  EXPECT_TRUE(r.headers.Has("x-amz-id-2"));
}

// --- Smithy RPC v2 CBOR ---

TEST(CborProtocolTest, ParsesCloudWatchPutMetricData) {
  Value wire = Value::Object(
      {{"Namespace", "App"},
       {"MetricData", Value(Value::List{Value::Object(
                          {{"MetricName", "Latency"},
                           {"Value", 12.5},
                           {"Timestamp", Value::Timestamp(1700000000)},
                           {"Dimensions", Value(Value::List{Value::Object(
                                              {{"Name", "Host"}, {"Value", "a"}})})}})})}});
  auto p = ResolveAndParse(
      Req("POST", "/service/GraniteServiceVersion20100801/operation/PutMetricData",
          {{"smithy-protocol", "rpc-v2-cbor"}, {"Content-Type", "application/cbor"}}),
      "monitoring", EncodeCbor(wire));
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->op.protocol, Protocol::kRpcV2Cbor);
  Value& datum = p->input["MetricData"].list()[0];
  EXPECT_EQ(datum.GetString("MetricName"), "Latency");
  EXPECT_EQ(datum["Value"].AsDouble(), 12.5);
  EXPECT_EQ(datum["Timestamp"], Value::Timestamp(1700000000));
  EXPECT_EQ(datum["Dimensions"].list()[0].GetString("Value"), "a");
  EXPECT_TRUE(Validate(*p->op.operation->input, p->input).ok());

  auto bad =
      ResolveAndParse(Req("POST", "/service/GraniteServiceVersion20100801/operation/PutMetricData",
                          {{"smithy-protocol", "rpc-v2-cbor"}}),
                      "monitoring", std::string("\xa1\x61", 2));
  EXPECT_EQ(bad.status().kind(), ErrorKind::kSerialization);
}

TEST(CborProtocolTest, SerializesOutputsAsCborMaps) {
  ResolvedOperation op = Op("cloudwatch", "GetMetricData", Protocol::kRpcV2Cbor);
  http::Response r = SerializeResponse(
      op,
      Value::Object({{"MetricDataResults",
                      Value(Value::List{Value::Object(
                          {{"Id", "m1"},
                           {"Timestamps", Value(Value::List{Value::Timestamp(1700000000)})},
                           {"Values", Value(Value::List{1.5})}})})}}),
      "rid");
  EXPECT_EQ(r.headers.Get("Content-Type"), "application/cbor");
  EXPECT_EQ(r.headers.Get("smithy-protocol"), "rpc-v2-cbor");
  auto back = DecodeCbor(r.body);
  ASSERT_TRUE(back.ok());
  Value& res = (*back)["MetricDataResults"].list()[0];
  EXPECT_EQ(res["Timestamps"].list()[0], Value::Timestamp(1700000000));
  EXPECT_EQ(res["Values"].list()[0], Value(1.5));

  http::Response empty =
      SerializeResponse(Op("cloudwatch", "PutMetricData", Protocol::kRpcV2Cbor), Value(), "r");
  EXPECT_EQ(empty.body, std::string("\xa0", 1));
}

// --- query (bodies are the XML engineer's; routing and parameters are ours) ---

TEST(QueryProtocolTest, ParsesStsAssumeRoleFromTheFormBody) {
  auto p = ResolveAndParse(
      Req("POST", "/", {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}}),
      "sts",
      "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2FR"
      "&RoleSessionName=s+1&DurationSeconds=900");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->input.GetString("RoleArn"), "arn:aws:iam::123456789012:role/R");
  EXPECT_EQ(p->input.GetString("RoleSessionName"), "s 1");
  EXPECT_EQ(p->input.GetInt("DurationSeconds"), 900);
  Status v = Validate(*p->op.operation->input, p->input);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.message().find("roleSessionName"), std::string::npos) << v.message();
}

TEST(QueryProtocolTest, SerializesGetCallerIdentity) {
  http::Response r = SerializeResponse(Op("sts", "GetCallerIdentity", Protocol::kQuery),
                                       Value::Object({{"Account", "123456789012"},
                                                      {"Arn", "arn:aws:iam::123456789012:root"},
                                                      {"UserId", "123456789012"}}),
                                       "rid-9");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.Get("Content-Type"), "text/xml");
  EXPECT_NE(r.body.find("<GetCallerIdentityResult>"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("<Account>123456789012</Account>"), std::string::npos);
  EXPECT_NE(r.body.find("<RequestId>rid-9</RequestId>"), std::string::npos);
}

// --- errors ---

struct ErrorCase {
  ErrorKind kind;
  const char* json;
  int json_status;
  const char* query;
  int query_status;
  const char* rest_xml;
  int rest_xml_status;
};

TEST(ErrorTest, MapsEveryKindPerFamily) {
  const ErrorCase cases[] = {
      {ErrorKind::kValidation, "ValidationException", 400, "ValidationError", 400,
       "InvalidArgument", 400},
      {ErrorKind::kSerialization, "SerializationException", 400, "MalformedInput", 400,
       "MalformedXML", 400},
      {ErrorKind::kMissingAction, "UnknownOperationException", 400, "InvalidAction", 400,
       "NotImplemented", 501},
      {ErrorKind::kNotImplemented, "NotImplemented", 501, "NotImplemented", 501, "NotImplemented",
       501},
      {ErrorKind::kAccessDenied, "AccessDeniedException", 400, "AccessDenied", 403, "AccessDenied",
       403},
      {ErrorKind::kUnrecognizedClient, "UnrecognizedClientException", 400, "InvalidClientTokenId",
       403, "InvalidAccessKeyId", 403},
      {ErrorKind::kSignatureMismatch, "InvalidSignatureException", 400, "SignatureDoesNotMatch",
       403, "SignatureDoesNotMatch", 403},
      {ErrorKind::kMissingAuth, "MissingAuthenticationTokenException", 400,
       "MissingAuthenticationToken", 403, "AccessDenied", 403},
      {ErrorKind::kExpiredToken, "ExpiredTokenException", 400, "ExpiredToken", 400, "ExpiredToken",
       400},
      {ErrorKind::kRequestTimeTooSkewed, "InvalidSignatureException", 400, "SignatureDoesNotMatch",
       403, "RequestTimeTooSkewed", 403},
      {ErrorKind::kNotFound, "ResourceNotFoundException", 400, "NoSuchEntity", 404, "NoSuchKey",
       404},
      {ErrorKind::kConflict, "ResourceInUseException", 400, "EntityAlreadyExists", 409, "Conflict",
       409},
      {ErrorKind::kThrottling, "ThrottlingException", 400, "Throttling", 400, "SlowDown", 503},
      {ErrorKind::kInternal, "InternalFailure", 500, "InternalFailure", 500, "InternalError", 500},
  };
  for (const ErrorCase& c : cases) {
    Status s(c.kind, "m");
    WireError j = MapError(s, ErrorFamily::kJson);
    WireError q = MapError(s, ErrorFamily::kQuery);
    WireError x = MapError(s, ErrorFamily::kRestXml);
    EXPECT_EQ(j.code, c.json);
    EXPECT_EQ(j.http_status, c.json_status) << c.json;
    EXPECT_EQ(q.code, c.query);
    EXPECT_EQ(q.http_status, c.query_status) << c.query;
    EXPECT_EQ(x.code, c.rest_xml);
    EXPECT_EQ(x.http_status, c.rest_xml_status) << c.rest_xml;
  }
  WireError explicit_code = MapError(Status::Aws("NoSuchEntity", 404, "x"), ErrorFamily::kJson);
  EXPECT_EQ(explicit_code.code, "NoSuchEntity");
  EXPECT_EQ(explicit_code.http_status, 404);
  WireError code_only =
      MapError(Status(ErrorKind::kNotFound, "NoSuchBucket", 0, "x"), ErrorFamily::kRestXml);
  EXPECT_EQ(code_only.code, "NoSuchBucket");
  EXPECT_EQ(code_only.http_status, 404);
}

TEST(ErrorTest, JsonBodiesCarryTheErrorsOwnMembersAndTheServicesValidationCode) {
  const model::ServiceModel* runtime = Models().Find("sagemaker-runtime");
  Status model_error = Status::Aws("ModelError", 424, "Received client error (400)")
                           .WithDetails(std::make_shared<const Value>(Value::Object(
                               {{"OriginalStatusCode", 400}, {"OriginalMessage", "bad row"}})));
  http::Response r = SerializeError(runtime, Protocol::kRestJson, model_error, "r1");
  EXPECT_EQ(r.status, 424);
  EXPECT_EQ(*ParseJson(r.body), Value::Object({{"__type", "ModelError"},
                                               {"message", "Received client error (400)"},
                                               {"OriginalStatusCode", 400},
                                               {"OriginalMessage", "bad row"}}));
  // sagemaker-runtime models ValidationError, not ValidationException.
  http::Response invalid =
      SerializeError(runtime, Protocol::kRestJson, Status::Validation("too long"), "r2");
  EXPECT_EQ(invalid.headers.Get("x-amzn-ErrorType"), "ValidationError");
}

TEST(ErrorTest, SerializesPerProtocol) {
  const model::ServiceModel* sm = Models().Find("sagemaker");
  Status st = Status::Validation("bad thing");

  http::Response json = SerializeError(sm, Protocol::kJson, st, "r1");
  EXPECT_EQ(json.status, 400);
  EXPECT_EQ(json.headers.Get("x-amzn-ErrorType"), "ValidationException");
  EXPECT_EQ(json.headers.Get("Content-Type"), "application/x-amz-json-1.1");
  EXPECT_EQ(json.headers.Get("x-amzn-RequestId"), "r1");
  EXPECT_EQ(*ParseJson(json.body),
            Value::Object({{"__type", "ValidationException"}, {"message", "bad thing"}}));

  http::Response rest =
      SerializeError(Models().Find("lambda"), Protocol::kRestJson, Status::NotFound("no fn"), "r2");
  EXPECT_EQ(rest.headers.Get("x-amzn-ErrorType"), "ResourceNotFoundException");
  EXPECT_EQ(rest.headers.Get("Content-Type"), "application/json");

  http::Response cbor = SerializeError(Models().Find("cloudwatch"), Protocol::kRpcV2Cbor,
                                       Status::Aws("ResourceNotFound", 404, "gone"), "r3");
  EXPECT_EQ(cbor.status, 404);
  EXPECT_EQ(cbor.headers.Get("smithy-protocol"), "rpc-v2-cbor");
  EXPECT_EQ(*DecodeCbor(cbor.body),
            Value::Object({{"__type", "ResourceNotFound"}, {"message", "gone"}}));

  http::Response query = SerializeError(Models().Find("iam"), Protocol::kQuery,
                                        Status::NotFound("The user x cannot be found."), "r4");
  EXPECT_EQ(query.status, 404);
  EXPECT_EQ(query.headers.Get("Content-Type"), "text/xml");
  EXPECT_NE(query.body.find("<Code>NoSuchEntity</Code>"), std::string::npos) << query.body;
  EXPECT_NE(query.body.find("<Type>Sender</Type>"), std::string::npos);

  http::Response xml = SerializeError(Models().Find("s3"), Protocol::kRestXml,
                                      Status::NotFound("The specified key does not exist."), "r5");
  EXPECT_EQ(xml.status, 404);
  EXPECT_NE(xml.body.find("<Code>NoSuchKey</Code>"), std::string::npos) << xml.body;
  EXPECT_EQ(xml.headers.Get("x-amz-request-id"), "r5");
  EXPECT_TRUE(xml.headers.Has("x-amz-id-2"));

  http::Response unresolved =
      SerializeError(nullptr, Protocol::kJson, Status(ErrorKind::kMissingAction, "?"), "r6");
  EXPECT_EQ(unresolved.headers.Get("Content-Type"), "application/x-amz-json-1.0");
}

}  // namespace
}  // namespace nimbus::aws::protocol
