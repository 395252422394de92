// Resolve(): how a request finds its service, operation and protocol.
#include <gtest/gtest.h>

#include <string>

#include "aws/protocol/protocol.h"
#include "aws/protocol/routing.h"

#include "test_request.h"

namespace nimbus::aws::protocol {
namespace {

using test_support::Models;
using test_support::Req;

struct RouteCase {
  const char* name;
  http::Request request;
  const char* signing_name;
  const char* body;
  const char* service;
  const char* operation;
  Protocol protocol;
};

TEST(ResolveTest, RoutesEachProtocolFamily) {
  const RouteCase cases[] = {
      {"json target",
       Req("POST", "/",
           {{"X-Amz-Target", "SageMaker.CreateTrainingJob"},
            {"Content-Type", "application/x-amz-json-1.1"}}),
       "sagemaker", "{}", "sagemaker", "CreateTrainingJob", Protocol::kJson},
      {"json target, unsigned", Req("POST", "/", {{"X-Amz-Target", "Logs_20140328.PutLogEvents"}}),
       "", "{}", "logs", "PutLogEvents", Protocol::kJson},
      {"cloudwatch over json 1.0",
       Req("POST", "/", {{"X-Amz-Target", "GraniteServiceVersion20100801.PutMetricData"}}),
       "monitoring", "{}", "cloudwatch", "PutMetricData", Protocol::kJson},
      {"cloudwatch over cbor",
       Req("POST", "/service/GraniteServiceVersion20100801/operation/PutMetricData",
           {{"smithy-protocol", "rpc-v2-cbor"}}),
       "monitoring", "", "cloudwatch", "PutMetricData", Protocol::kRpcV2Cbor},
      {"query form body",
       Req("POST", "/", {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}}),
       "sts", "Action=GetCallerIdentity&Version=2011-06-15", "sts", "GetCallerIdentity",
       Protocol::kQuery},
      {"query action in URL", Req("GET", "/?Action=ListUsers&Version=2010-05-08"), "iam", "", "iam",
       "ListUsers", Protocol::kQuery},
      {"unsigned query picks the service by Version",
       Req("POST", "/", {{"Content-Type", "application/x-www-form-urlencoded"}}), "",
       "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=x", "sts",
       "AssumeRoleWithWebIdentity", Protocol::kQuery},
      {"cloudwatch query",
       Req("POST", "/", {{"Content-Type", "application/x-www-form-urlencoded"}}), "monitoring",
       "Action=PutMetricData&Version=2010-08-01&Namespace=N", "cloudwatch", "PutMetricData",
       Protocol::kQuery},
      {"s3 greedy key", Req("PUT", "/bucket/a/b%20c.txt"), "s3", "", "s3", "PutObject",
       Protocol::kRestXml},
      {"s3 get object", Req("GET", "/bucket/key"), "s3", "", "s3", "GetObject", Protocol::kRestXml},
      {"s3 ?uploads wins over the plain key", Req("POST", "/bucket/key?uploads"), "s3", "", "s3",
       "CreateMultipartUpload", Protocol::kRestXml},
      {"s3 upload part by its required query members",
       Req("PUT", "/bucket/key?partNumber=1&uploadId=abc"), "s3", "", "s3", "UploadPart",
       Protocol::kRestXml},
      {"s3 copy by its required header",
       Req("PUT", "/bucket/key", {{"x-amz-copy-source", "/src/k"}}), "s3", "", "s3", "CopyObject",
       Protocol::kRestXml},
      {"s3 list-type=2", Req("GET", "/bucket?list-type=2&prefix=a"), "s3", "", "s3",
       "ListObjectsV2", Protocol::kRestXml},
      {"s3 list v1", Req("GET", "/bucket?prefix=a"), "s3", "", "s3", "ListObjects",
       Protocol::kRestXml},
      {"s3 create bucket with trailing slash", Req("PUT", "/bucket/"), "s3", "", "s3",
       "CreateBucket", Protocol::kRestXml},
      {"s3 list buckets", Req("GET", "/"), "s3", "", "s3", "ListBuckets", Protocol::kRestXml},
      {"s3 deprecated operation yields to its successor", Req("GET", "/bucket?notification"), "s3",
       "", "s3", "GetBucketNotificationConfiguration", Protocol::kRestXml},
      {"unsigned falls back to s3", Req("GET", "/bucket/key"), "", "", "s3", "GetObject",
       Protocol::kRestXml},
      {"s3 virtual host", Req("GET", "/photos/cat.jpg", {{"Host", "my-bucket.localhost:4566"}}),
       "s3", "", "s3", "GetObject", Protocol::kRestXml},
      {"s3 virtual host bucket root",
       Req("GET", "/?list-type=2", {{"Host", "b.s3.us-east-1.amazonaws.com"}}), "s3", "", "s3",
       "ListObjectsV2", Protocol::kRestXml},
      {"lambda invoke", Req("POST", "/2015-03-31/functions/my-fn/invocations"), "lambda", "{}",
       "lambda", "Invoke", Protocol::kRestJson},
      {"sagemaker runtime among sagemaker services", Req("POST", "/endpoints/ep/invocations"),
       "sagemaker", "", "sagemaker-runtime", "InvokeEndpoint", Protocol::kRestJson},
      {"lambda required literal query", Req("GET", "/2018-10-31/layers?find=LayerVersion&Arn=x"),
       "lambda", "", "lambda", "GetLayerVersionByArn", Protocol::kRestJson},
  };
  for (const RouteCase& c : cases) {
    auto r = Resolve(Models(), c.request, c.signing_name, c.body);
    ASSERT_TRUE(r.ok()) << c.name << ": " << r.status().message();
    EXPECT_EQ(r->service->name, c.service) << c.name;
    EXPECT_EQ(r->operation->name, c.operation) << c.name;
    EXPECT_EQ(r->protocol, c.protocol) << c.name;
  }
}

TEST(ResolveTest, DecodesUriLabels) {
  auto r = Resolve(Models(), Req("PUT", "/bucket/a/b%20c/%E2%82%AC.txt"), "s3", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->uri_labels.at("Bucket"), "bucket");
  EXPECT_EQ(r->uri_labels.at("Key"), "a/b c/\xE2\x82\xAC.txt");

  auto vh =
      Resolve(Models(), Req("GET", "/k%2Fx", {{"Host", "my.bucket.s3.localhost.test"}}), "s3", "");
  ASSERT_TRUE(vh.ok());
  EXPECT_EQ(vh->uri_labels.at("Bucket"), "my.bucket");
  EXPECT_EQ(vh->uri_labels.at("Key"), "k/x");

  auto fn =
      Resolve(Models(), Req("POST", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Ax/invocations"),
              "lambda", "");
  ASSERT_TRUE(fn.ok());
  EXPECT_EQ(fn->uri_labels.at("FunctionName"), "arn:aws:lambda:x");
}

// Each request routes through the operations its thread compiled for the model before:
// registries made and dropped one after another (often at the same address) each route
// to their own operations.
TEST(ResolveTest, EachRegistryRoutesToItsOwnOperations) {
  for (const char* op : {"First", "Second", "Third"}) {
    auto parsed = model::ModelRegistry::ParseServiceModel(
        "demo", std::string(R"({"metadata": {"protocol": "rest-json", "signingName": "demo"},)") +
                    R"("operations": {")" + op +
                    R"(": {"http": {"method": "GET", "requestUri": "/things/{Id}"}}},)" +
                    R"("shapes": {}})");
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    model::ModelRegistry registry;
    registry.Add(std::move(parsed).value());
    auto r = Resolve(registry, Req("GET", "/things/7"), "demo", "");
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->operation->name, op);
    EXPECT_EQ(r->operation, registry.Find("demo")->FindOperation(op));
    EXPECT_EQ(r->uri_labels.at("Id"), "7");
    EXPECT_FALSE(Resolve(registry, Req("GET", "/other/7"), "demo", "").ok());
  }
}

TEST(ResolveTest, UnknownOperationsAreMissingActionErrorsNamingThem) {
  auto target = Resolve(Models(), Req("POST", "/", {{"X-Amz-Target", "SageMaker.FlyToTheMoon"}}),
                        "sagemaker", "{}");
  ASSERT_FALSE(target.ok());
  EXPECT_EQ(target.status().kind(), ErrorKind::kMissingAction);
  EXPECT_NE(target.status().message().find("FlyToTheMoon"), std::string::npos);
  EXPECT_NE(target.status().message().find("sagemaker"), std::string::npos);

  auto prefix = Resolve(Models(), Req("POST", "/", {{"X-Amz-Target", "Nope_2020.Go"}}), "", "{}");
  EXPECT_EQ(prefix.status().kind(), ErrorKind::kMissingAction);

  auto action =
      Resolve(Models(), Req("POST", "/", {{"Content-Type", "application/x-www-form-urlencoded"}}),
              "iam", "Action=DoMagic&Version=2010-05-08");
  ASSERT_FALSE(action.ok());
  EXPECT_EQ(action.status().kind(), ErrorKind::kMissingAction);
  EXPECT_EQ(action.status().message(), "Could not find operation DoMagic for version 2010-05-08");

  auto no_action =
      Resolve(Models(), Req("POST", "/", {{"Content-Type", "application/x-www-form-urlencoded"}}),
              "sts", "Version=2011-06-15");
  EXPECT_EQ(no_action.status().kind(), ErrorKind::kMissingAction);

  auto path = Resolve(Models(), Req("DELETE", "/2015-03-31/nothing-here"), "lambda", "");
  EXPECT_EQ(path.status().kind(), ErrorKind::kMissingAction);

  auto json_no_target = Resolve(Models(), Req("POST", "/"), "sagemaker", "{}");
  EXPECT_EQ(json_no_target.status().kind(), ErrorKind::kMissingAction);

  auto cbor =
      Resolve(Models(), Req("POST", "/service/X/operation", {{"smithy-protocol", "rpc-v2-cbor"}}),
              "monitoring", "");
  EXPECT_EQ(cbor.status().kind(), ErrorKind::kMissingAction);
}

TEST(UriTemplateTest, MatchesLabelsGreedyLabelsAndQueryLiterals) {
  std::map<std::string, std::string> labels;
  EXPECT_TRUE(MatchRequestUri("/{Bucket}/{Key+}", "/b/x/y/z", {}, &labels));
  EXPECT_EQ(labels["Key"], "x/y/z");
  EXPECT_FALSE(MatchRequestUri("/{Bucket}/{Key+}", "/b", {}, &labels));
  EXPECT_FALSE(MatchRequestUri("/{Bucket}/{Key+}", "/b/", {}, &labels));
  EXPECT_FALSE(MatchRequestUri("/{Bucket}", "/b/c", {}, &labels));
  EXPECT_TRUE(MatchRequestUri("/{Bucket}", "/b/", {}, &labels));
  EXPECT_FALSE(MatchRequestUri("/{Bucket}?uploads", "/b", {}, &labels));
  auto s = MatchRequestUri("/{Bucket}?uploads", "/b", {{"uploads", ""}}, &labels);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->query_literals, 1);
  EXPECT_FALSE(MatchRequestUri("/{Bucket}?list-type=2", "/b", {{"list-type", "1"}}, &labels));
  EXPECT_TRUE(MatchRequestUri("/a/{X}/c", "/a/%2F/c", {}, &labels));
  EXPECT_EQ(labels["X"], "/");
  EXPECT_FALSE(MatchRequestUri("/a/{X}/c", "/a//c", {}, &labels));
}

TEST(UriTemplateTest, MoreSpecificTemplatesScoreHigher) {
  std::map<std::string, std::string> labels;
  auto plain = *MatchRequestUri("/{Bucket}/{Key+}", "/b/k", {{"uploads", ""}}, &labels);
  auto uploads = *MatchRequestUri("/{Bucket}/{Key+}?uploads", "/b/k", {{"uploads", ""}}, &labels);
  EXPECT_TRUE(plain < uploads);
  auto label = *MatchRequestUri("/fns/{Name}", "/fns/x", {}, &labels);
  auto literal = *MatchRequestUri("/fns/x", "/fns/x", {}, &labels);
  EXPECT_TRUE(label < literal);
}

TEST(VirtualHostTest, FindsBucketsInHostNames) {
  EXPECT_EQ(VirtualHostBucket("b.localhost:4566"), "b");
  EXPECT_EQ(VirtualHostBucket("My-Bucket.localhost"), "my-bucket");
  EXPECT_EQ(VirtualHostBucket("b.s3.us-west-2.amazonaws.com"), "b");
  EXPECT_EQ(VirtualHostBucket("localhost:4566"), "");
  EXPECT_EQ(VirtualHostBucket("127.0.0.1:4566"), "");
  EXPECT_EQ(VirtualHostBucket("s3.amazonaws.com"), "");
  EXPECT_EQ(VirtualHostBucket("[::1]:4566"), "");
}

TEST(SniffProtocolTest, JudgesFromHeadersPathAndService) {
  const model::ServiceModel* sm = Models().Find("sagemaker");
  const model::ServiceModel* s3 = Models().Find("s3");
  EXPECT_EQ(
      SniffProtocol(Req("POST", "/service/X/operation/Y", {{"smithy-protocol", "rpc-v2-cbor"}}),
                    nullptr),
      Protocol::kRpcV2Cbor);
  EXPECT_EQ(SniffProtocol(Req("POST", "/", {{"X-Amz-Target", "A.B"}}), nullptr), Protocol::kJson);
  EXPECT_EQ(SniffProtocol(Req("POST", "/", {{"Content-Type", "application/x-www-form-urlencoded"}}),
                          nullptr),
            Protocol::kQuery);
  EXPECT_EQ(SniffProtocol(Req("GET", "/?Action=ListUsers"), nullptr), Protocol::kQuery);
  EXPECT_EQ(SniffProtocol(Req("POST", "/"), sm), Protocol::kJson);
  EXPECT_EQ(SniffProtocol(Req("GET", "/b/k"), s3), Protocol::kRestXml);
  EXPECT_EQ(SniffProtocol(Req("GET", "/b/k"), Models().Find("lambda")), Protocol::kRestJson);
  EXPECT_EQ(SniffProtocol(Req("GET", "/b/k"), nullptr), Protocol::kRestXml);
}

TEST(FormParamsTest, DecodesPlusAndPercentEscapes) {
  Params p = ParseFormParams("Action=X&Name=a+b%2Bc&Empty=&Flag");
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[1].second, "a b+c");
  EXPECT_EQ(p[2].second, "");
  EXPECT_EQ(p[3].first, "Flag");
}

}  // namespace
}  // namespace nimbus::aws::protocol
