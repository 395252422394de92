// Validate(): constraint checks and AWS's exact wording.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "aws/protocol/pattern.h"
#include "aws/protocol/protocol.h"

namespace nimbus::aws::protocol {
namespace {

const model::Shape& Input(std::string_view service, std::string_view op) {
  const model::ServiceModel* s = model::ModelRegistry::Embedded().Find(service);
  return *s->FindOperation(op)->input;
}

struct Case {
  const char* name;
  const model::Shape* shape;
  Value input;
  std::string message;  // "" when valid; "?" when checked separately
};

TEST(ValidateTest, ReportsConstraintsInAwsWording) {
  const model::Shape& create_user = Input("iam", "CreateUser");
  const model::Shape& assume = Input("sts", "AssumeRole");
  const model::Shape& training = Input("sagemaker", "CreateTrainingJob");
  const model::Shape& list_jobs = Input("sagemaker", "ListTrainingJobs");
  const model::Shape& put_metric = Input("cloudwatch", "PutMetricData");

  Value good_training =
      Value::Object({{"TrainingJobName", "job-1"},
                     {"RoleArn", "arn:aws:iam::123456789012:role/R"},
                     {"AlgorithmSpecification", Value::Object({{"TrainingInputMode", "File"}})},
                     {"OutputDataConfig", Value::Object({{"S3OutputPath", "s3://b/o"}})},
                     {"ResourceConfig", Value::Object({{"InstanceType", "ml.m5.large"},
                                                       {"InstanceCount", 1},
                                                       {"VolumeSizeInGB", 10}})},
                     {"StoppingCondition", Value::Object({{"MaxRuntimeInSeconds", 60}})}});
  Value bad_instance = good_training;
  bad_instance["ResourceConfig"]["InstanceType"] = Value("ml.huge");
  bad_instance["ResourceConfig"]["VolumeSizeInGB"] = Value(0);

  const Case cases[] = {
      {"valid user", &create_user, Value::Object({{"UserName", "alice"}}), ""},
      {"missing required", &create_user, Value::MakeMap(),
       "1 validation error detected: Value null at 'userName' failed to satisfy constraint: "
       "Member must not be null"},
      {"explicit null", &create_user, Value::Object({{"UserName", Value()}}),
       "1 validation error detected: Value null at 'userName' failed to satisfy constraint: "
       "Member must not be null"},
      {"too long and bad pattern", &create_user,
       Value::Object({{"UserName", std::string(65, 'a') + " "}}),
       "2 validation errors detected: Value '" + std::string(65, 'a') +
           " ' at 'userName' failed to satisfy constraint: Member must have length less than "
           "or equal to 64; Value '" +
           std::string(65, 'a') +
           " ' at 'userName' failed to satisfy constraint: Member must satisfy regular "
           "expression pattern: [\\w+=,.@-]+"},
      {"empty string", &create_user, Value::Object({{"UserName", ""}}),
       "2 validation errors detected: Value '' at 'userName' failed to satisfy constraint: "
       "Member must have length greater than or equal to 1; Value '' at 'userName' failed to "
       "satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"},
      {"number range", &assume,
       Value::Object({{"RoleArn", "arn:aws:iam::123456789012:role/RoleName"},
                      {"RoleSessionName", "s"},
                      {"DurationSeconds", 100}}),
       "2 validation errors detected: Value 's' at 'roleSessionName' failed to satisfy "
       "constraint: Member must have length greater than or equal to 2; Value '100' at "
       "'durationSeconds' failed to satisfy constraint: Member must have value greater than or "
       "equal to 900"},
      {"valid training job", &training, good_training, ""},
      {"nested enum and value", &training, bad_instance, "?"},
      {"list length", &list_jobs, Value::Object({{"MaxResults", 101}}),
       "1 validation error detected: Value '101' at 'maxResults' failed to satisfy constraint: "
       "Member must have value less than or equal to 100"},
      {"list of structures uses .N.member", &put_metric,
       Value::Object({{"Namespace", "N"},
                      {"MetricData", Value(Value::List{Value::Object({{"MetricName", "ok"}}),
                                                       Value::Object({{"Value", 1.0}})})}}),
       "1 validation error detected: Value null at 'metricData.2.member.metricName' failed to "
       "satisfy constraint: Member must not be null"},
  };
  for (const Case& c : cases) {
    Status s = Validate(*c.shape, c.input);
    if (c.message == "?") continue;
    if (c.message.empty()) {
      EXPECT_TRUE(s.ok()) << c.name << ": " << s.message();
      continue;
    }
    ASSERT_FALSE(s.ok()) << c.name;
    EXPECT_EQ(s.kind(), ErrorKind::kValidation) << c.name;
    EXPECT_EQ(s.message(), c.message) << c.name;
  }

  Status nested = Validate(training, bad_instance);
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.message().rfind("2 validation errors detected: ", 0), 0u) << nested.message();
  EXPECT_NE(nested.message().find(
                "Value 'ml.huge' at 'resourceConfig.instanceType' failed to "
                "satisfy constraint: Member must satisfy enum value set: [ml.m4.xlarge, "),
            std::string::npos)
      << nested.message();
  EXPECT_NE(nested.message().find("Value '0' at 'resourceConfig.volumeSizeInGB' failed to satisfy "
                                  "constraint: Member must have value greater than or equal to 1"),
            std::string::npos)
      << nested.message();
}

TEST(ValidateTest, ReportsScalarCollectionsAsAWhole) {
  // IAM CreateUser Tags: list (max 50) of Tag {Key 1..128 pattern, Value 0..256}.
  const model::Shape& create_user = Input("iam", "CreateUser");
  Value tags = Value::MakeList();
  for (int i = 0; i < 51; ++i) tags.Append(Value::Object({{"Key", "k"}, {"Value", "v"}}));
  Status s = Validate(create_user, Value::Object({{"UserName", "u"}, {"Tags", tags}}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("at 'tags' failed to satisfy constraint: Member must have length "
                             "less than or equal to 50"),
            std::string::npos)
      << s.message();

  // SageMaker CreateTrainingJob HyperParameters: map<string(max 256), string(max 2500)>.
  const model::Shape& training = Input("sagemaker", "CreateTrainingJob");
  const model::Shape* hp = training.FindMember("HyperParameters")->shape;
  Status m = Validate(*hp, Value::Object({{std::string(300, 'k'), "v"}}));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("failed to satisfy constraint: Map keys must satisfy constraint: "
                             "[Member must have length less than or equal to 256"),
            std::string::npos)
      << m.message();
}

TEST(ValidateTest, HidesSensitiveValues) {
  // STS AssumeRoleWithWebIdentity WebIdentityToken is sensitive (min 4).
  const model::Shape& in = Input("sts", "AssumeRoleWithWebIdentity");
  Status s = Validate(in, Value::Object({{"RoleArn", "arn:aws:iam::123456789012:role/RoleName"},
                                         {"RoleSessionName", "session"},
                                         {"WebIdentityToken", "x"}}));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "1 validation error detected: Value at 'webIdentityToken' failed to satisfy "
            "constraint: Member must have length greater than or equal to 4");
}

TEST(ValidateTest, AcceptsS3CopySourcesWithoutALeadingSlash) {
  // The model's pattern demands "/bucket/key"; S3 and botocore use "bucket/key".
  const model::Shape& in = Input("s3", "CopyObject");
  for (const char* source : {"src/key", "/src/key", "src/a/b%20c?versionId=1"}) {
    Status s =
        Validate(in, Value::Object({{"Bucket", "dst"}, {"Key", "k"}, {"CopySource", source}}));
    EXPECT_TRUE(s.ok()) << source << ": " << s.message();
  }
}

TEST(PatternTest, UsesRe2WithJavaClassesAndSkipsUnsupportedPatterns) {
  EXPECT_EQ(MatchPattern("[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*", "héllo wörld"), PatternResult::kMatch);
  EXPECT_EQ(MatchPattern("\\p{Alpha}+", "abc"), PatternResult::kMatch);
  EXPECT_EQ(MatchPattern("[\\p{Alnum}_]+", "a_1"), PatternResult::kMatch);
  EXPECT_EQ(MatchPattern("[\\p{Alnum}_]+", "a-1"), PatternResult::kNoMatch);
  EXPECT_EQ(TranslateJavaPattern("[\\p{Alnum}]\\p{Digit}"), "[[:alnum:]][[:digit:]]");
  // Full match, not search.
  EXPECT_EQ(MatchPattern("[a-z]+", "abc1"), PatternResult::kNoMatch);
  size_t before = UnsupportedPatternCount();
  EXPECT_EQ(MatchPattern("^(?!aws:).*", "x"), PatternResult::kUnsupported);
  EXPECT_EQ(MatchPattern("^(?!aws:).*", "y"), PatternResult::kUnsupported);
  EXPECT_EQ(UnsupportedPatternCount(), before + 1);
  // Linear time on input that backtracking engines choke on.
  EXPECT_EQ(MatchPattern("(a+)+b", std::string(100000, 'a')), PatternResult::kNoMatch);
}

TEST(PatternTest, TranslatesJavaUnicodeEscapes) {
  EXPECT_EQ(TranslateJavaPattern("[\\u0020-\\u007E]+"), "[\\x{0020}-\\x{007E}]+");
  EXPECT_EQ(MatchPattern("[\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]+",
                         "{\"Version\": \"2012-10-17\"}\n"),
            PatternResult::kMatch);
  EXPECT_EQ(MatchPattern("[\\u0020-\\u007E]+", "tab\there"), PatternResult::kNoMatch);
}

TEST(PatternTest, RelaxesRepetitionsRe2CannotCountAndPossessiveQuantifiers) {
  EXPECT_EQ(TranslateJavaPattern("[a-z]{1,5000}"), "[a-z]{1,}");
  EXPECT_EQ(TranslateJavaPattern("a{2}b{3,}c{1,9}"), "a{2}b{3,}c{1,9}");
  EXPECT_EQ(TranslateJavaPattern("^[/]?+x*+y++[{]"), "^[/]?x*y+[{]");
  EXPECT_EQ(MatchPattern("\\p{ASCII}{0,8192}", std::string(3000, 'a')), PatternResult::kMatch);
}

TEST(PatternTest, CompilesNearlyEveryPatternOfTheServedModels) {
  std::set<std::string> patterns;
  for (const model::ServiceModel* s : model::ModelRegistry::Embedded().services()) {
    for (const auto& [name, shape] : s->shapes) {
      if (!shape->pattern.empty()) patterns.insert(shape->pattern);
    }
  }
  std::vector<std::string> unsupported;
  for (const std::string& p : patterns) {
    if (MatchPattern(p, "") == PatternResult::kUnsupported) unsupported.push_back(p);
  }
  ASSERT_GT(patterns.size(), 300u);
  EXPECT_LT(unsupported.size() * 25, patterns.size())
      << unsupported.size() << " of " << patterns.size() << " patterns do not compile, e.g. "
      << unsupported.front();
}

}  // namespace
}  // namespace nimbus::aws::protocol
