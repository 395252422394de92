// The embedded service models: the merge of aws-sdk v2 and botocore, metadata, lazy
// loading, and the parser's handling of the service-2 format.
#include "aws/model/model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

namespace nimbus::aws::model {
namespace {

const ServiceModel& Service(std::string_view name) {
  const ServiceModel* s = ModelRegistry::Embedded().Find(name);
  EXPECT_NE(s, nullptr) << name;
  return *s;
}

TEST(ModelTest, EmbedsEveryServedService) {
  for (const char* name : {"sts",
                           "iam",
                           "cloudwatch",
                           "logs",
                           "s3",
                           "sagemaker",
                           "sagemaker-runtime",
                           "sagemaker-featurestore-runtime",
                           "comprehend",
                           "translate",
                           "polly",
                           "transcribe",
                           "textract",
                           "rekognition",
                           "lexv2-models",
                           "lexv2-runtime",
                           "lex-models",
                           "lex-runtime",
                           "forecast",
                           "forecastquery",
                           "personalize",
                           "personalize-runtime",
                           "personalize-events",
                           "lambda"}) {
    const ServiceModel* s = ModelRegistry::Embedded().Find(name);
    ASSERT_NE(s, nullptr) << name;
    EXPECT_FALSE(s->operations.empty()) << name;
    EXPECT_FALSE(s->protocol.empty()) << name;
  }
  EXPECT_EQ(ModelRegistry::Embedded().Find("ec2"), nullptr);
}

TEST(ModelTest, HasOperationsOnlyTheNewerAwsSdkModelKnows) {
  // Absent from botocore 1.29's sagemaker model, present in aws-sdk 2.1693.0.
  const ServiceModel& sm = Service("sagemaker");
  const Operation* op = sm.FindOperation("CreateMlflowTrackingServer");
  ASSERT_NE(op, nullptr);
  ASSERT_NE(op->input, nullptr);
  EXPECT_NE(op->input->FindMember("TrackingServerName"), nullptr);
  EXPECT_NE(sm.FindOperation("CreateInferenceComponent"), nullptr);
}

TEST(ModelTest, CopiesConstraintsFromBotocore) {
  const ServiceModel& iam = Service("iam");
  const Operation* op = iam.FindOperation("CreateUser");
  ASSERT_NE(op, nullptr);
  const Member* user = op->input->FindMember("UserName");
  ASSERT_NE(user, nullptr);
  EXPECT_EQ(user->shape->min, 1);
  EXPECT_EQ(user->shape->max, 64);
  EXPECT_EQ(user->shape->pattern, "[\\w+=,.@-]+");
  EXPECT_TRUE(op->input->IsRequired("UserName"));
  EXPECT_EQ(op->result_wrapper, "CreateUserResult");
  // Error shapes come from botocore with their query error codes.
  auto it = std::find_if(op->errors.begin(), op->errors.end(),
                         [](const Shape* s) { return s->name == "EntityAlreadyExistsException"; });
  ASSERT_NE(it, op->errors.end());
  EXPECT_EQ((*it)->error_code, "EntityAlreadyExists");
  EXPECT_EQ((*it)->error_http_status, 409);

  const ServiceModel& sm = Service("sagemaker");
  const Shape* req = sm.FindOperation("CreateTrainingJob")->input;
  const Shape* rc = req->FindMember("ResourceConfig")->shape;
  const Shape* type = rc->FindMember("InstanceType")->shape;
  EXPECT_NE(std::find(type->enum_values.begin(), type->enum_values.end(), "ml.m5.large"),
            type->enum_values.end());
  EXPECT_EQ(req->FindMember("TrainingJobName")->shape->max, 63);
}

TEST(ModelTest, KeepsProtocolMetadataAndOverrides) {
  const ServiceModel& cw = Service("cloudwatch");
  EXPECT_EQ(cw.protocol, "query");
  EXPECT_EQ(cw.signing_name, "monitoring");
  EXPECT_EQ(cw.iam_prefix, "cloudwatch");
  EXPECT_EQ(cw.target_prefix, "GraniteServiceVersion20100801");
  EXPECT_EQ(cw.json_version, "1.0");
  EXPECT_NE(std::find(cw.protocols.begin(), cw.protocols.end(), "smithy-rpc-v2-cbor"),
            cw.protocols.end());
  EXPECT_TRUE(Service("iam").global);
  EXPECT_FALSE(Service("sts").global);
  EXPECT_EQ(Service("sts").signing_name, "sts");
  EXPECT_EQ(Service("sts").xml_namespace, "https://sts.amazonaws.com/doc/2011-06-15/");
  EXPECT_EQ(Service("sagemaker-runtime").signing_name, "sagemaker");
  EXPECT_EQ(Service("sagemaker-runtime").iam_prefix, "sagemaker");
  EXPECT_EQ(Service("logs").target_prefix, "Logs_20140328");
  EXPECT_EQ(Service("logs").json_version, "1.1");
}

TEST(ModelTest, ParsesRestBindingsAndTraits) {
  const ServiceModel& s3 = Service("s3");
  const Operation* put = s3.FindOperation("PutObject");
  ASSERT_NE(put, nullptr);
  EXPECT_EQ(put->http_method, "PUT");
  EXPECT_EQ(put->request_uri, "/{Bucket}/{Key+}");
  const Member* body = put->input->FindMember("Body");
  ASSERT_NE(body, nullptr);
  EXPECT_TRUE(body->streaming);
  EXPECT_EQ(put->input->payload, "Body");
  const Member* meta = put->input->FindMember("Metadata");
  EXPECT_EQ(meta->location, "headers");
  EXPECT_EQ(meta->location_name, "x-amz-meta-");
  const Member* key = put->input->FindMember("Key");
  EXPECT_EQ(key->location, "uri");

  const Operation* create = s3.FindOperation("CreateBucket");
  const Member* conf = create->input->FindMember("CreateBucketConfiguration");
  EXPECT_EQ(conf->xml_namespace_uri, "http://s3.amazonaws.com/doc/2006-03-01/");

  const Operation* invoke = Service("lambda").FindOperation("Invoke");
  EXPECT_EQ(invoke->output->FindMember("StatusCode")->location, "statusCode");
  EXPECT_EQ(invoke->input->payload, "Payload");
}

TEST(ModelTest, FindsServicesBySigningNameAndTargetPrefix) {
  const ModelRegistry& models = ModelRegistry::Embedded();
  std::vector<std::string> names;
  for (const ServiceModel* s : models.FindBySigningName("sagemaker")) names.push_back(s->name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"sagemaker", "sagemaker-featurestore-runtime",
                                             "sagemaker-runtime"}));
  EXPECT_EQ(models.FindByTargetPrefix("Logs_20140328")->name, "logs");
  EXPECT_EQ(models.FindByTargetPrefix("AWSShineFrontendService_20170701")->name, "translate");
  EXPECT_EQ(models.FindByTargetPrefix("Nope"), nullptr);
}

TEST(ModelTest, LoadsLazilyOnceUnderConcurrency) {
  const ModelRegistry& models = ModelRegistry::Embedded();
  std::vector<const ServiceModel*> seen(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] { seen[i] = models.Find("rekognition"); });
  }
  for (auto& t : threads) t.join();
  for (const ServiceModel* s : seen) EXPECT_EQ(s, seen[0]);
  ASSERT_NE(seen[0], nullptr);
}

TEST(ModelTest, ParsesAHandWrittenModelAndRejectsDanglingReferences) {
  auto parsed = ModelRegistry::ParseServiceModel("demo", R"({
    "metadata": {"protocol": "json", "jsonVersion": "1.0", "targetPrefix": "Demo",
                 "endpointPrefix": "demo", "apiVersion": "2020-01-01"},
    "operations": {"Go": {"name": "Go", "input": {"shape": "GoIn"}}},
    "shapes": {
      "GoIn": {"type": "structure", "required": ["N"],
               "members": {"N": {"shape": "Num", "locationName": "n"}}},
      "Num": {"type": "integer", "min": 1, "max": 9}
    }})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const ServiceModel& m = **parsed;
  EXPECT_EQ(m.signing_name, "demo");
  EXPECT_EQ(m.protocols, std::vector<std::string>{"json"});
  const Member* n = m.FindOperation("Go")->input->FindMember("N");
  EXPECT_EQ(n->WireName(), "n");
  EXPECT_EQ(n->shape->type, ShapeType::kInteger);
  EXPECT_EQ(n->shape->max, 9);

  auto dangling = ModelRegistry::ParseServiceModel("bad", R"({
    "metadata": {"protocol": "json"}, "operations": {},
    "shapes": {"S": {"type": "list", "member": {"shape": "Missing"}}}})");
  EXPECT_FALSE(dangling.ok());
  EXPECT_FALSE(ModelRegistry::ParseServiceModel("bad", "{not json").ok());

  ModelRegistry registry;
  registry.Add(std::move(parsed).value());
  EXPECT_EQ(registry.FindByTargetPrefix("Demo")->name, "demo");
  EXPECT_EQ(registry.services().size(), 1u);
}

}  // namespace
}  // namespace nimbus::aws::model
