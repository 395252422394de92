#include "iam/internal/aws_managed_policies.h"

#include <cctype>

#include "core/crypto.h"
#include "core/strings.h"

namespace nimbus::iam::internal {
namespace {

constexpr double kCreated = 1423247986;  // 2015-02-06T18:39:46Z, when AWS published them
constexpr double kUpdated = 1700000000;

constexpr const char* kAdministratorAccess = R"({
  "Version": "2012-10-17",
  "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
})";

constexpr const char* kPowerUserAccess = R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
    {"Effect": "Allow",
     "Action": ["iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole", "iam:ListRoles",
                "organizations:DescribeOrganization", "account:ListRegions",
                "account:GetAccountInformation"],
     "Resource": "*"}
  ]
})";

constexpr const char* kReadOnlyAccess = R"({
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Action": [
      "cloudwatch:Describe*", "cloudwatch:Get*", "cloudwatch:List*",
      "comprehend:Describe*", "comprehend:List*", "comprehend:Detect*",
      "forecast:Describe*", "forecast:List*", "forecast:Get*",
      "iam:Generate*", "iam:Get*", "iam:List*", "iam:Simulate*",
      "lambda:Get*", "lambda:List*",
      "lex:Describe*", "lex:Get*", "lex:List*",
      "logs:Describe*", "logs:FilterLogEvents", "logs:Get*", "logs:ListTagsForResource",
      "logs:StartQuery", "logs:StopQuery", "logs:TestMetricFilter",
      "personalize:Describe*", "personalize:List*",
      "polly:Describe*", "polly:Get*", "polly:List*", "polly:SynthesizeSpeech",
      "rekognition:Describe*", "rekognition:Detect*", "rekognition:Get*", "rekognition:List*",
      "s3:Get*", "s3:List*", "s3:Describe*",
      "sagemaker:Describe*", "sagemaker:GetSearchSuggestions", "sagemaker:List*",
      "sagemaker:Search",
      "sts:GetAccessKeyInfo", "sts:GetCallerIdentity", "sts:GetSessionToken",
      "textract:Get*", "textract:List*",
      "transcribe:Get*", "transcribe:List*",
      "translate:Get*", "translate:List*"
    ],
    "Resource": "*"
  }]
})";

constexpr const char* kIamFullAccess = R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["iam:*", "organizations:DescribeAccount",
      "organizations:DescribeOrganization", "organizations:DescribeOrganizationalUnit",
      "organizations:DescribePolicy", "organizations:ListChildren", "organizations:ListParents",
      "organizations:ListPoliciesForTarget", "organizations:ListRoots",
      "organizations:ListPolicies", "organizations:ListTargetsForPolicy"],
     "Resource": "*"}
  ]
})";

constexpr const char* kAmazonS3FullAccess = R"({
  "Version": "2012-10-17",
  "Statement": [{"Effect": "Allow", "Action": ["s3:*", "s3-object-lambda:*"], "Resource": "*"}]
})";

constexpr const char* kAmazonS3ReadOnlyAccess = R"({
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Action": ["s3:Get*", "s3:List*", "s3:Describe*", "s3-object-lambda:Get*",
               "s3-object-lambda:List*"],
    "Resource": "*"
  }]
})";

constexpr const char* kAmazonSageMakerFullAccess = R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "AllowAllNonAdminSageMakerActions", "Effect": "Allow",
     "NotAction": ["sagemaker:CreateDomain", "sagemaker:CreateUserProfile",
                   "sagemaker:DeleteDomain", "sagemaker:DeleteUserProfile",
                   "sagemaker:UpdateDomain", "sagemaker:UpdateUserProfile"],
     "Resource": "arn:aws:sagemaker:*:*:*"},
    {"Sid": "AllowSupportingServices", "Effect": "Allow",
     "Action": ["sagemaker:*", "application-autoscaling:*", "cloudwatch:DeleteAlarms",
                "cloudwatch:DescribeAlarms", "cloudwatch:GetMetricData",
                "cloudwatch:GetMetricStatistics", "cloudwatch:ListMetrics",
                "cloudwatch:PutMetricAlarm", "cloudwatch:PutMetricData",
                "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CreateRepository",
                "ecr:Describe*", "ecr:GetAuthorizationToken", "ecr:GetDownloadUrlForLayer",
                "iam:ListRoles", "kms:DescribeKey", "kms:ListAliases", "lambda:ListFunctions",
                "logs:CreateLogDelivery", "logs:CreateLogGroup", "logs:CreateLogStream",
                "logs:DescribeLogStreams", "logs:GetLogEvents", "logs:PutLogEvents"],
     "Resource": "*"},
    {"Effect": "Allow",
     "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
     "Resource": ["arn:aws:s3:::*SageMaker*", "arn:aws:s3:::*Sagemaker*",
                  "arn:aws:s3:::*sagemaker*"]},
    {"Effect": "Allow",
     "Action": ["s3:CreateBucket", "s3:GetBucketLocation", "s3:ListBucket",
                "s3:ListAllMyBuckets", "s3:GetBucketCors", "s3:PutBucketCors"],
     "Resource": "*"},
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
     "Condition": {"StringEqualsIgnoreCase": {"s3:ExistingObjectTag/SageMaker": "true"}}},
    {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::*:role/*",
     "Condition": {"StringEquals": {"iam:PassedToService": [
       "sagemaker.amazonaws.com", "glue.amazonaws.com", "robomaker.amazonaws.com",
       "states.amazonaws.com"]}}},
    {"Effect": "Allow", "Action": "iam:CreateServiceLinkedRole", "Resource": "*",
     "Condition": {"StringEquals": {"iam:AWSServiceName": [
       "sagemaker.application-autoscaling.amazonaws.com", "robomaker.amazonaws.com"]}}}
  ]
})";

constexpr const char* kCloudWatchFullAccess = R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow",
     "Action": ["autoscaling:Describe*", "cloudwatch:*", "logs:*", "sns:*",
                "iam:GetPolicy", "iam:GetPolicyVersion", "iam:GetRole", "oam:ListSinks"],
     "Resource": "*"},
    {"Effect": "Allow", "Action": "iam:CreateServiceLinkedRole",
     "Resource": "arn:aws:iam::*:role/aws-service-role/events.amazonaws.com/AWSServiceRoleForCloudWatchEvents*",
     "Condition": {"StringLike": {"iam:AWSServiceName": "events.amazonaws.com"}}}
  ]
})";

constexpr const char* kCloudWatchLogsFullAccess = R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "CloudWatchLogsFullAccess", "Effect": "Allow",
     "Action": ["logs:*", "cloudwatch:GenerateQuery"], "Resource": "*"}
  ]
})";

AwsManagedPolicy Make(const char* name, const char* description, const char* document) {
  std::string id = HexEncode(Sha256(name)).substr(0, 16);
  for (char& c : id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return AwsManagedPolicy{name,        std::string("arn:aws:iam::aws:policy/") + name,
                          "ANPA" + id, description,
                          document,    kCreated,
                          kUpdated};
}

}  // namespace

const std::vector<AwsManagedPolicy>& AwsManagedPolicies() {
  static const std::vector<AwsManagedPolicy> kPolicies = {
      Make("AdministratorAccess", "Provides full access to AWS services and resources.",
           kAdministratorAccess),
      Make("AmazonS3FullAccess",
           "Provides full access to all buckets via the AWS Management Console.",
           kAmazonS3FullAccess),
      Make("AmazonS3ReadOnlyAccess",
           "Provides read only access to all buckets via the AWS Management Console.",
           kAmazonS3ReadOnlyAccess),
      Make("AmazonSageMakerFullAccess",
           "Provides full access to Amazon SageMaker via the AWS Management Console and SDK. "
           "Also provides select access to related services (e.g., S3, ECR, CloudWatch Logs).",
           kAmazonSageMakerFullAccess),
      Make("CloudWatchFullAccess", "Provides full access to CloudWatch.", kCloudWatchFullAccess),
      Make("CloudWatchLogsFullAccess", "Provides full access to CloudWatch Logs",
           kCloudWatchLogsFullAccess),
      Make("IAMFullAccess", "Provides full access to IAM via the AWS Management Console.",
           kIamFullAccess),
      Make("PowerUserAccess",
           "Provides full access to AWS services and resources, but does not allow management "
           "of Users and groups.",
           kPowerUserAccess),
      Make("ReadOnlyAccess", "Provides read-only access to AWS services and resources.",
           kReadOnlyAccess),
  };
  return kPolicies;
}

const AwsManagedPolicy* FindAwsManagedPolicy(std::string_view arn) {
  for (const AwsManagedPolicy& p : AwsManagedPolicies()) {
    if (p.arn == arn) return &p;
  }
  return nullptr;
}

}  // namespace nimbus::iam::internal
