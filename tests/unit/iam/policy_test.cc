#include "iam/policy.h"

#include <gtest/gtest.h>

namespace nimbus::iam {
namespace {

PolicyDocument MustParse(const std::string& json, PolicyKind kind = PolicyKind::kIdentity) {
  auto doc = ParsePolicy(json, kind);
  EXPECT_TRUE(doc.ok()) << json << ": " << doc.status().ToString();
  return doc.ok() ? *doc : PolicyDocument{};
}

struct MalformedCase {
  const char* json;
  PolicyKind kind;
  const char* message_part;
};

TEST(PolicyParseTest, RejectsMalformedDocumentsNamingTheProblem) {
  const MalformedCase cases[] = {
      {"{not json", PolicyKind::kIdentity, "Syntax errors"},
      {"[]", PolicyKind::kIdentity, "Syntax errors"},
      {R"({"Version":"2012-10-17"})", PolicyKind::kIdentity, "Statement"},
      {R"({"Version":"2013-01-01","Statement":[]})", PolicyKind::kIdentity, "Version"},
      {R"({"Statement":{"Action":"s3:*","Resource":"*"}})", PolicyKind::kIdentity,
       "Missing required field Effect"},
      {R"({"Statement":{"Effect":"Alow","Action":"s3:*","Resource":"*"}})", PolicyKind::kIdentity,
       "Invalid effect: Alow"},
      {R"({"Statement":{"Effect":"Allow","Resource":"*"}})", PolicyKind::kIdentity,
       "must contain actions"},
      {R"({"Statement":{"Effect":"Allow","Action":"s3:*"}})", PolicyKind::kIdentity,
       "must contain resources"},
      {R"({"Statement":{"Effect":"Allow","Action":"GetObject","Resource":"*"}})",
       PolicyKind::kIdentity, "prefaced by a vendor"},
      {R"({"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"bucket"}})",
       PolicyKind::kIdentity, "ARN format"},
      {R"({"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Principal":"*"}})",
       PolicyKind::kIdentity, "principal"},
      {R"({"Statement":{"Effect":"Allow","Action":["s3:*",3],"Resource":"*"}})",
       PolicyKind::kIdentity, "Syntax errors"},
      {R"({"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Bogus":1}})",
       PolicyKind::kIdentity, "Bogus"},
      {R"({"Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}})", PolicyKind::kTrust,
       "Missing required field Principal"},
      {R"({"Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Principal":"*","Resource":"*"}})",
       PolicyKind::kTrust, "prohibited field Resource"},
      {R"({"Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"AWS":"bob"}}})",
       PolicyKind::kTrust, "Invalid principal"},
  };
  for (const auto& c : cases) {
    auto doc = ParsePolicy(c.json, c.kind);
    ASSERT_FALSE(doc.ok()) << c.json;
    EXPECT_EQ(doc.status().code(), "MalformedPolicyDocument") << c.json;
    EXPECT_EQ(doc.status().http_status(), 400);
    EXPECT_NE(doc.status().message().find(c.message_part), std::string::npos)
        << c.json << " -> " << doc.status().message();
  }
}

TEST(PolicyParseTest, AcceptsStatementObjectAndStringOrListForms) {
  PolicyDocument doc = MustParse(R"({"Version":"2012-10-17","Statement":{"Sid":"One",
      "Effect":"Deny","NotAction":"iam:*","NotResource":["arn:aws:s3:::a","arn:aws:s3:::b"],
      "Condition":{"Bool":{"aws:SecureTransport":false},"NumericLessThan":{"k":[1,2.5]}}}})");
  ASSERT_EQ(doc.statements.size(), 1u);
  const Statement& st = doc.statements[0];
  EXPECT_EQ(st.sid, "One");
  EXPECT_FALSE(st.allow);
  EXPECT_TRUE(st.not_action);
  EXPECT_TRUE(st.not_resource);
  EXPECT_EQ(st.resources.size(), 2u);
  ASSERT_EQ(st.conditions.size(), 2u);
  EXPECT_EQ(st.conditions[0].values, std::vector<std::string>{"false"});
  EXPECT_EQ(st.conditions[1].values, (std::vector<std::string>{"1", "2.5"}));
}

TEST(PolicyParseTest, PolicySizeIgnoresWhitespace) {
  EXPECT_EQ(PolicySize(" {\n \"a\" : 1 }\t"), 7u);
}

struct EvalCase {
  const char* name;
  const char* policy;
  const char* action;
  const char* resource;
  Decision expected;
};

TEST(PolicyEvalTest, ActionsResourcesAndEffects) {
  const EvalCase cases[] = {
      {"star allows all", R"({"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}})",
       "iam:CreateUser", "arn:aws:iam::1:user/x", Decision::kAllow},
      {"prefix wildcard", R"({"Statement":{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}})",
       "s3:GetObject", "arn:aws:s3:::b/k", Decision::kAllow},
      {"prefix wildcard misses",
       R"({"Statement":{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}})", "s3:PutObject",
       "arn:aws:s3:::b/k", Decision::kImplicitDeny},
      {"action case-insensitive",
       R"({"Statement":{"Effect":"Allow","Action":"IAM:createuser","Resource":"*"}})",
       "iam:CreateUser", "*", Decision::kAllow},
      {"question mark",
       R"({"Statement":{"Effect":"Allow","Action":"s3:?etObject","Resource":"*"}})", "s3:GetObject",
       "*", Decision::kAllow},
      {"resource case-sensitive",
       R"({"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::Bucket/*"}})",
       "s3:GetObject", "arn:aws:s3:::bucket/k", Decision::kImplicitDeny},
      {"resource wildcard",
       R"({"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::bucket/*"}})",
       "s3:GetObject", "arn:aws:s3:::bucket/a/b", Decision::kAllow},
      {"deny beats allow",
       R"({"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
          {"Effect":"Deny","Action":"iam:Delete*","Resource":"*"}]})",
       "iam:DeleteUser", "*", Decision::kExplicitDeny},
      {"deny elsewhere does not block",
       R"({"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
          {"Effect":"Deny","Action":"iam:Delete*","Resource":"*"}]})",
       "iam:CreateUser", "*", Decision::kAllow},
      {"not action", R"({"Statement":{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}})",
       "s3:GetObject", "*", Decision::kAllow},
      {"not action excludes",
       R"({"Statement":{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}})", "iam:GetUser", "*",
       Decision::kImplicitDeny},
      {"not resource",
       R"({"Statement":{"Effect":"Deny","Action":"*","NotResource":"arn:aws:s3:::safe/*"}})",
       "s3:PutObject", "arn:aws:s3:::other/k", Decision::kExplicitDeny},
      {"not resource spares",
       R"({"Statement":{"Effect":"Deny","Action":"*","NotResource":"arn:aws:s3:::safe/*"}})",
       "s3:PutObject", "arn:aws:s3:::safe/k", Decision::kImplicitDeny},
      {"username variable",
       R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:*AccessKey*",
          "Resource":"arn:aws:iam::000000000000:user/${aws:username}"}})",
       "iam:CreateAccessKey", "arn:aws:iam::000000000000:user/bob", Decision::kAllow},
      {"username variable other user",
       R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:*AccessKey*",
          "Resource":"arn:aws:iam::000000000000:user/${aws:username}"}})",
       "iam:CreateAccessKey", "arn:aws:iam::000000000000:user/alice", Decision::kImplicitDeny},
      {"variables literal in 2008 version",
       R"({"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"iam:*",
          "Resource":"arn:aws:iam::000000000000:user/${aws:username}"}})",
       "iam:GetUser", "arn:aws:iam::000000000000:user/bob", Decision::kImplicitDeny},
      {"escaped star is literal",
       R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*",
          "Resource":"arn:aws:s3:::b/${*}"}})",
       "s3:GetObject", "arn:aws:s3:::b/anything", Decision::kImplicitDeny},
      {"unknown operator voids statement",
       R"({"Statement":{"Effect":"Deny","Action":"*","Resource":"*",
          "Condition":{"StringSortOf":{"aws:username":"bob"}}}})",
       "s3:GetObject", "*", Decision::kImplicitDeny},
  };
  for (const auto& c : cases) {
    PolicyDocument doc = MustParse(c.policy);
    EvalRequest req{c.action, c.resource, {}, {{"aws:username", {"bob"}}}};
    EXPECT_EQ(Evaluate(doc, req), c.expected) << c.name;
  }
}

TEST(PolicyEvalTest, CombinesPoliciesDenyFirst) {
  std::vector<PolicyDocument> docs = {
      MustParse(R"({"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}})"),
      MustParse(R"({"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*"}})")};
  EXPECT_EQ(Evaluate(docs, EvalRequest{"s3:GetObject", "*", {}, {}}), Decision::kExplicitDeny);
  EXPECT_EQ(Evaluate(docs, EvalRequest{"iam:GetUser", "*", {}, {}}), Decision::kAllow);
  EXPECT_EQ(Evaluate(std::vector<PolicyDocument>{}, EvalRequest{"iam:GetUser", "*", {}, {}}),
            Decision::kImplicitDeny);
}

struct ConditionCase {
  const char* op;
  const char* key;
  std::vector<std::string> values;
  bool expected;
};

TEST(PolicyConditionTest, Operators) {
  ConditionContext ctx = {
      {"aws:username", {"bob"}},
      {"aws:PrincipalArn", {"arn:aws:iam::000000000000:user/bob"}},
      {"aws:SecureTransport", {"true"}},
      {"n", {"10"}},
      {"aws:CurrentTime", {"2024-06-01T12:00:00Z"}},
      {"aws:SourceIp", {"10.1.2.3"}},
      {"ip6", {"2001:db8::1"}},
      {"tags", {"a", "b"}},
  };
  const ConditionCase cases[] = {
      {"StringEquals", "aws:username", {"bob"}, true},
      {"StringEquals", "AWS:USERNAME", {"alice", "bob"}, true},
      {"StringEquals", "aws:username", {"Bob"}, false},
      {"StringEqualsIgnoreCase", "aws:username", {"BOB"}, true},
      {"StringNotEquals", "aws:username", {"alice"}, true},
      {"StringNotEquals", "aws:username", {"bob"}, false},
      {"StringNotEqualsIgnoreCase", "aws:username", {"BOB"}, false},
      {"StringLike", "aws:username", {"b*"}, true},
      {"StringLike", "aws:username", {"a*"}, false},
      {"StringNotLike", "aws:username", {"a*"}, true},
      {"StringEquals", "missing", {"x"}, false},
      {"StringNotEquals", "missing", {"x"}, true},
      {"StringEqualsIfExists", "missing", {"x"}, true},
      {"StringEqualsIfExists", "aws:username", {"x"}, false},
      {"StringEquals", "aws:username", {"${aws:username}"}, true},
      {"ArnLike", "aws:PrincipalArn", {"arn:aws:iam::*:user/*"}, true},
      {"ArnLike", "aws:PrincipalArn", {"arn:aws:iam::*:role/*"}, false},
      {"ArnEquals", "aws:PrincipalArn", {"arn:aws:iam::000000000000:user/bob"}, true},
      {"ArnNotLike", "aws:PrincipalArn", {"arn:aws:iam::*:role/*"}, true},
      {"ArnNotEquals", "aws:PrincipalArn", {"arn:aws:iam::000000000000:user/bob"}, false},
      {"ArnLike", "aws:PrincipalArn", {"arn:aws:iam::*"}, false},
      {"Bool", "aws:SecureTransport", {"true"}, true},
      {"Bool", "aws:SecureTransport", {"false"}, false},
      {"NumericEquals", "n", {"10"}, true},
      {"NumericNotEquals", "n", {"10"}, false},
      {"NumericLessThan", "n", {"11"}, true},
      {"NumericLessThan", "n", {"10"}, false},
      {"NumericLessThanEquals", "n", {"10"}, true},
      {"NumericGreaterThan", "n", {"9.5"}, true},
      {"NumericGreaterThanEquals", "n", {"11"}, false},
      {"NumericEquals", "n", {"ten"}, false},
      {"DateLessThan", "aws:CurrentTime", {"2025-01-01T00:00:00Z"}, true},
      {"DateGreaterThan", "aws:CurrentTime", {"2025-01-01T00:00:00Z"}, false},
      {"DateGreaterThan", "aws:CurrentTime", {"1700000000"}, true},
      {"DateEquals", "aws:CurrentTime", {"2024-06-01T12:00:00Z"}, true},
      {"Null", "missing", {"true"}, true},
      {"Null", "aws:username", {"true"}, false},
      {"Null", "aws:username", {"false"}, true},
      {"IpAddress", "aws:SourceIp", {"10.0.0.0/8"}, true},
      {"IpAddress", "aws:SourceIp", {"192.168.0.0/16", "10.1.2.3"}, true},
      {"IpAddress", "aws:SourceIp", {"10.1.3.0/24"}, false},
      {"NotIpAddress", "aws:SourceIp", {"10.1.3.0/24"}, true},
      {"IpAddress", "ip6", {"2001:db8::/32"}, true},
      {"IpAddress", "ip6", {"2001:db9::/32"}, false},
      {"ForAnyValue:StringEquals", "tags", {"b", "z"}, true},
      {"ForAnyValue:StringEquals", "tags", {"z"}, false},
      {"ForAnyValue:StringEquals", "missing", {"z"}, false},
      {"ForAllValues:StringEquals", "tags", {"a", "b", "c"}, true},
      {"ForAllValues:StringEquals", "tags", {"a"}, false},
      {"ForAllValues:StringEquals", "missing", {"a"}, true},
      {"ForAllValues:StringNotLike", "tags", {"z*"}, true},
      {"ForAnyValue:StringNotEquals", "tags", {"a"}, true},
      {"StringSortOf", "aws:username", {"bob"}, false},
      {"NullIfExists", "aws:username", {"false"}, false},
  };
  for (const auto& c : cases) {
    Condition cond{c.op, c.key, c.values};
    EXPECT_EQ(ConditionHolds(cond, ctx, /*substitute_variables=*/true), c.expected)
        << c.op << " " << c.key << " " << c.values[0];
  }
}

TEST(PolicyTrustTest, MatchesPrincipals) {
  PolicyDocument trust = MustParse(R"({"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"},
      {"Effect":"Allow","Principal":{"Service":["sagemaker.amazonaws.com"]},"Action":"sts:AssumeRole"}]})",
                                   PolicyKind::kTrust);
  EvalRequest user{
      "sts:AssumeRole",
      "arn:aws:iam::000000000000:role/R",
      {{"AWS",
        {"arn:aws:iam::000000000000:user/bob", "000000000000", "arn:aws:iam::000000000000:root"}}},
      {}};
  EXPECT_EQ(Evaluate(trust, user), Decision::kAllow);
  EvalRequest other_account = user;
  other_account.principal = {{"AWS", {"arn:aws:iam::111111111111:user/eve", "111111111111"}}};
  EXPECT_EQ(Evaluate(trust, other_account), Decision::kImplicitDeny);
  EvalRequest service = user;
  service.principal = {{"Service", {"sagemaker.amazonaws.com"}}};
  EXPECT_EQ(Evaluate(trust, service), Decision::kAllow);
  service.principal = {{"Service", {"lambda.amazonaws.com"}}};
  EXPECT_EQ(Evaluate(trust, service), Decision::kImplicitDeny);

  PolicyDocument anyone =
      MustParse(R"({"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}})",
                PolicyKind::kTrust);
  EXPECT_EQ(Evaluate(anyone, other_account), Decision::kAllow);
  PolicyDocument not_bob = MustParse(
      R"({"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::000000000000:user/bob"},
          "Action":"sts:AssumeRole"}})",
      PolicyKind::kTrust);
  EXPECT_EQ(Evaluate(not_bob, user), Decision::kImplicitDeny);
  EXPECT_EQ(Evaluate(not_bob, other_account), Decision::kExplicitDeny);
}

}  // namespace
}  // namespace nimbus::iam
