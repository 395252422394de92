#include "services/iam/iam_service.h"

#include "core/strings.h"
#include "service_test_env.h"

namespace nimbus::services {
namespace {

constexpr const char* kTrust =
    R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"Service":"sagemaker.amazonaws.com"}}})";
constexpr const char* kAllowS3 =
    R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}})";

class IamServiceTest : public testing::ServiceTestEnv {
 protected:
  void SetUp() override {
    ServiceTestEnv::SetUp();
    RegisterIamService(registry_, *store_);
  }
  Result<Value> Iam(const std::string& op, const Value& input) {
    return Call("iam", op, input, root_);
  }
};

TEST_F(IamServiceTest, RegistersEveryOperationOfTheBrief) {
  for (const char* op : {"CreateUser",
                         "GetUser",
                         "ListUsers",
                         "UpdateUser",
                         "DeleteUser",
                         "TagUser",
                         "UntagUser",
                         "ListUserTags",
                         "CreateAccessKey",
                         "ListAccessKeys",
                         "UpdateAccessKey",
                         "DeleteAccessKey",
                         "GetAccessKeyLastUsed",
                         "CreateRole",
                         "GetRole",
                         "ListRoles",
                         "UpdateRole",
                         "UpdateAssumeRolePolicy",
                         "DeleteRole",
                         "TagRole",
                         "UntagRole",
                         "ListRoleTags",
                         "CreatePolicy",
                         "GetPolicy",
                         "ListPolicies",
                         "DeletePolicy",
                         "CreatePolicyVersion",
                         "GetPolicyVersion",
                         "ListPolicyVersions",
                         "DeletePolicyVersion",
                         "SetDefaultPolicyVersion",
                         "AttachUserPolicy",
                         "DetachUserPolicy",
                         "ListAttachedUserPolicies",
                         "AttachRolePolicy",
                         "DetachRolePolicy",
                         "ListAttachedRolePolicies",
                         "PutUserPolicy",
                         "GetUserPolicy",
                         "ListUserPolicies",
                         "DeleteUserPolicy",
                         "PutRolePolicy",
                         "GetRolePolicy",
                         "ListRolePolicies",
                         "DeleteRolePolicy",
                         "ListEntitiesForPolicy",
                         "GetAccountSummary"}) {
    EXPECT_NE(registry_.Find("iam", op), nullptr) << op;
  }
}

TEST_F(IamServiceTest, CreateUserReturnsTheModelShape) {
  auto out =
      Iam("CreateUser",
          Value::Object(
              {{"UserName", "bob"},
               {"Path", "/eng/"},
               {"Tags", Value(Value::List{Value::Object({{"Key", "team"}, {"Value", "ml"}})})}}));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const Value& user = *out->Find("User");
  EXPECT_EQ(user.GetString("UserName"), "bob");
  EXPECT_EQ(user.GetString("Path"), "/eng/");
  EXPECT_EQ(user.GetString("Arn"), "arn:aws:iam::000000000000:user/eng/bob");
  EXPECT_TRUE(StartsWith(user.GetString("UserId"), "AIDA"));
  EXPECT_TRUE(user.Find("CreateDate")->is_timestamp());
  EXPECT_EQ(user.Find("CreateDate")->AsDouble(), 1700000000);
  EXPECT_EQ(user.Find("Tags")->list()[0].GetString("Value"), "ml");

  auto dup = Iam("CreateUser", Value::Object({{"UserName", "bob"}}));
  EXPECT_EQ(dup.status().code(), "EntityAlreadyExists");
  EXPECT_EQ(dup.status().http_status(), 409);
}

TEST_F(IamServiceTest, GetUserWithoutNameDescribesTheCaller) {
  ASSERT_TRUE(Iam("CreateUser", Value::Object({{"UserName", "bob"}})).ok());
  auto out = Call("iam", "GetUser", Value::MakeMap(), UserPrincipal("bob"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->Find("User")->GetString("UserName"), "bob");
  auto root = Iam("GetUser", Value::MakeMap());
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->Find("User")->GetString("Arn"), "arn:aws:iam::000000000000:root");
  auto missing = Iam("GetUser", Value::Object({{"UserName", "ghost"}}));
  EXPECT_EQ(missing.status().code(), "NoSuchEntity");
  EXPECT_EQ(missing.status().message(), "The user with name ghost cannot be found.");
}

TEST_F(IamServiceTest, ListUsersPagesWithMarker) {
  for (const char* name : {"e", "d", "c", "b", "a"}) {
    ASSERT_TRUE(Iam("CreateUser", Value::Object({{"UserName", name}})).ok());
  }
  auto page1 = Iam("ListUsers", Value::Object({{"MaxItems", 2}}));
  ASSERT_TRUE(page1.ok());
  ASSERT_EQ(page1->Find("Users")->size(), 2u);
  EXPECT_EQ(page1->Find("Users")->list()[0].GetString("UserName"), "a");
  EXPECT_TRUE(page1->GetBool("IsTruncated"));
  std::vector<std::string> names;
  Value input = Value::Object({{"MaxItems", 2}});
  for (int guard = 0; guard < 5; ++guard) {
    auto page = Iam("ListUsers", input);
    ASSERT_TRUE(page.ok());
    for (const Value& u : page->Find("Users")->list()) names.push_back(u.GetString("UserName"));
    if (!page->GetBool("IsTruncated")) {
      EXPECT_FALSE(page->Has("Marker"));
      break;
    }
    input["Marker"] = page->GetString("Marker");
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(Iam("ListUsers", Value::Object({{"Marker", "!!"}})).status().code(), "InvalidInput");
}

TEST_F(IamServiceTest, AccessKeyLifecycle) {
  ASSERT_TRUE(Iam("CreateUser", Value::Object({{"UserName", "bob"}})).ok());
  auto created = Iam("CreateAccessKey", Value::Object({{"UserName", "bob"}}));
  ASSERT_TRUE(created.ok());
  const Value& key = *created->Find("AccessKey");
  EXPECT_EQ(key.GetString("Status"), "Active");
  EXPECT_EQ(key.GetString("SecretAccessKey").size(), 40u);
  const std::string id = key.GetString("AccessKeyId");

  auto listed = Call("iam", "ListAccessKeys", Value::MakeMap(), UserPrincipal("bob"));
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->Find("AccessKeyMetadata")->size(), 1u);
  EXPECT_FALSE(listed->Find("AccessKeyMetadata")->list()[0].Has("SecretAccessKey"));

  auto last = Iam("GetAccessKeyLastUsed", Value::Object({{"AccessKeyId", id}}));
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->GetString("UserName"), "bob");
  EXPECT_EQ(last->Find("AccessKeyLastUsed")->GetString("ServiceName"), "N/A");
  EXPECT_EQ(Resource("iam", "GetAccessKeyLastUsed", Value::Object({{"AccessKeyId", id}}), root_),
            "arn:aws:iam::000000000000:user/bob");

  ASSERT_TRUE(Iam("UpdateAccessKey",
                  Value::Object({{"UserName", "bob"}, {"AccessKeyId", id}, {"Status", "Inactive"}}))
                  .ok());
  EXPECT_EQ(store_->Lookup(id).status().kind(), ErrorKind::kNotFound);
  auto conflict = Iam("DeleteUser", Value::Object({{"UserName", "bob"}}));
  EXPECT_EQ(conflict.status().code(), "DeleteConflict");
  EXPECT_EQ(conflict.status().http_status(), 409);
  ASSERT_TRUE(
      Iam("DeleteAccessKey", Value::Object({{"UserName", "bob"}, {"AccessKeyId", id}})).ok());
  EXPECT_TRUE(Iam("DeleteUser", Value::Object({{"UserName", "bob"}})).ok());
  // Root has no user to default to.
  EXPECT_EQ(Iam("CreateAccessKey", Value::MakeMap()).status().code(), "ValidationError");
}

TEST_F(IamServiceTest, RolesReturnUrlEncodedTrustPolicies) {
  auto created = Iam("CreateRole", Value::Object({{"RoleName", "SageMakerRole"},
                                                  {"AssumeRolePolicyDocument", kTrust},
                                                  {"Description", "training"}}));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const Value& role = *created->Find("Role");
  EXPECT_EQ(role.GetString("Arn"), "arn:aws:iam::000000000000:role/SageMakerRole");
  EXPECT_EQ(role.GetInt("MaxSessionDuration"), 3600);
  EXPECT_EQ(role.GetString("AssumeRolePolicyDocument"), UriEncode(kTrust));
  EXPECT_EQ(UriDecode(role.GetString("AssumeRolePolicyDocument")), kTrust);

  ASSERT_TRUE(Iam("UpdateRole",
                  Value::Object({{"RoleName", "SageMakerRole"}, {"MaxSessionDuration", 7200}}))
                  .ok());
  auto got = Iam("GetRole", Value::Object({{"RoleName", "SageMakerRole"}}));
  EXPECT_EQ(got->Find("Role")->GetInt("MaxSessionDuration"), 7200);
  EXPECT_EQ(got->Find("Role")->GetString("Description"), "training");

  auto malformed = Iam("UpdateAssumeRolePolicy",
                       Value::Object({{"RoleName", "SageMakerRole"},
                                      {"PolicyDocument", R"({"Statement":{"Effect":"Allow"}})"}}));
  EXPECT_EQ(malformed.status().code(), "MalformedPolicyDocument");
  EXPECT_EQ(malformed.status().http_status(), 400);

  ASSERT_TRUE(Iam("TagRole", Value::Object({{"RoleName", "SageMakerRole"},
                                            {"Tags", Value(Value::List{Value::Object(
                                                         {{"Key", "k"}, {"Value", "v"}})})}}))
                  .ok());
  EXPECT_EQ(
      Iam("ListRoleTags", Value::Object({{"RoleName", "SageMakerRole"}}))->Find("Tags")->size(),
      1u);
  auto roles = Iam("ListRoles", Value::MakeMap());
  ASSERT_EQ(roles->Find("Roles")->size(), 1u);
  EXPECT_EQ(Resource("iam", "GetRole", Value::Object({{"RoleName", "SageMakerRole"}}), root_),
            "arn:aws:iam::000000000000:role/SageMakerRole");
}

TEST_F(IamServiceTest, ManagedPolicyVersionsAndAttachments) {
  auto created =
      Iam("CreatePolicy",
          Value::Object({{"PolicyName", "s3"}, {"Path", "/team/"}, {"PolicyDocument", kAllowS3}}));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::string arn = created->Find("Policy")->GetString("Arn");
  EXPECT_EQ(arn, "arn:aws:iam::000000000000:policy/team/s3");
  EXPECT_EQ(created->Find("Policy")->GetString("DefaultVersionId"), "v1");

  auto version = Iam("GetPolicyVersion", Value::Object({{"PolicyArn", arn}, {"VersionId", "v1"}}));
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version->Find("PolicyVersion")->GetString("Document"), UriEncode(kAllowS3));
  EXPECT_TRUE(version->Find("PolicyVersion")->GetBool("IsDefaultVersion"));

  auto v2 = Iam(
      "CreatePolicyVersion",
      Value::Object({{"PolicyArn", arn}, {"PolicyDocument", kAllowS3}, {"SetAsDefault", true}}));
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->Find("PolicyVersion")->GetString("VersionId"), "v2");
  auto versions = Iam("ListPolicyVersions", Value::Object({{"PolicyArn", arn}}));
  EXPECT_EQ(versions->Find("Versions")->size(), 2u);

  ASSERT_TRUE(Iam("CreateUser", Value::Object({{"UserName", "bob"}})).ok());
  ASSERT_TRUE(
      Iam("CreateRole", Value::Object({{"RoleName", "r"}, {"AssumeRolePolicyDocument", kTrust}}))
          .ok());
  ASSERT_TRUE(
      Iam("AttachUserPolicy", Value::Object({{"UserName", "bob"}, {"PolicyArn", arn}})).ok());
  ASSERT_TRUE(Iam("AttachRolePolicy", Value::Object({{"RoleName", "r"}, {"PolicyArn", arn}})).ok());
  ASSERT_TRUE(
      Iam("AttachRolePolicy",
          Value::Object({{"RoleName", "r"},
                         {"PolicyArn", "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"}}))
          .ok());

  auto attached = Iam("ListAttachedRolePolicies", Value::Object({{"RoleName", "r"}}));
  ASSERT_EQ(attached->Find("AttachedPolicies")->size(), 2u);
  auto team_only =
      Iam("ListAttachedRolePolicies", Value::Object({{"RoleName", "r"}, {"PathPrefix", "/team/"}}));
  ASSERT_EQ(team_only->Find("AttachedPolicies")->size(), 1u);
  EXPECT_EQ(team_only->Find("AttachedPolicies")->list()[0].GetString("PolicyName"), "s3");

  auto entities = Iam("ListEntitiesForPolicy", Value::Object({{"PolicyArn", arn}}));
  ASSERT_TRUE(entities.ok());
  EXPECT_EQ(entities->Find("PolicyUsers")->list()[0].GetString("UserName"), "bob");
  EXPECT_EQ(entities->Find("PolicyRoles")->list()[0].GetString("RoleName"), "r");
  auto users_only =
      Iam("ListEntitiesForPolicy", Value::Object({{"PolicyArn", arn}, {"EntityFilter", "User"}}));
  EXPECT_EQ(users_only->Find("PolicyRoles")->size(), 0u);

  EXPECT_EQ(Iam("GetPolicy", Value::Object({{"PolicyArn", arn}}))
                ->Find("Policy")
                ->GetInt("AttachmentCount"),
            2);
  EXPECT_EQ(Iam("DeletePolicy", Value::Object({{"PolicyArn", arn}})).status().code(),
            "DeleteConflict");

  auto aws_attached =
      Iam("ListPolicies", Value::Object({{"Scope", "AWS"}, {"OnlyAttached", true}}));
  ASSERT_EQ(aws_attached->Find("Policies")->size(), 1u);
  EXPECT_EQ(aws_attached->Find("Policies")->list()[0].GetString("PolicyName"),
            "AmazonSageMakerFullAccess");
  auto local = Iam("ListPolicies", Value::Object({{"Scope", "Local"}}));
  EXPECT_EQ(local->Find("Policies")->size(), 1u);
  auto all = Iam("ListPolicies", Value::MakeMap());
  EXPECT_EQ(all->Find("Policies")->size(), 10u);

  ASSERT_TRUE(
      Iam("DetachUserPolicy", Value::Object({{"UserName", "bob"}, {"PolicyArn", arn}})).ok());
  EXPECT_EQ(Iam("DetachUserPolicy", Value::Object({{"UserName", "bob"}, {"PolicyArn", arn}}))
                .status()
                .code(),
            "NoSuchEntity");
}

TEST_F(IamServiceTest, InlinePoliciesRoundTripUrlEncoded) {
  ASSERT_TRUE(Iam("CreateUser", Value::Object({{"UserName", "bob"}})).ok());
  ASSERT_TRUE(
      Iam("PutUserPolicy",
          Value::Object({{"UserName", "bob"}, {"PolicyName", "s3"}, {"PolicyDocument", kAllowS3}}))
          .ok());
  auto got = Iam("GetUserPolicy", Value::Object({{"UserName", "bob"}, {"PolicyName", "s3"}}));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->GetString("UserName"), "bob");
  EXPECT_EQ(UriDecode(got->GetString("PolicyDocument")), kAllowS3);
  auto names = Iam("ListUserPolicies", Value::Object({{"UserName", "bob"}}));
  EXPECT_EQ(names->Find("PolicyNames")->list()[0].AsString(), "s3");
  auto bad = Iam(
      "PutUserPolicy",
      Value::Object({{"UserName", "bob"},
                     {"PolicyName", "x"},
                     {"PolicyDocument", R"({"Statement":[{"Effect":"Allow","Action":"s3:*"}]})"}}));
  EXPECT_EQ(bad.status().code(), "MalformedPolicyDocument");
  EXPECT_NE(bad.status().message().find("resources"), std::string::npos);
  ASSERT_TRUE(
      Iam("DeleteUserPolicy", Value::Object({{"UserName", "bob"}, {"PolicyName", "s3"}})).ok());
  EXPECT_EQ(Iam("GetUserPolicy", Value::Object({{"UserName", "bob"}, {"PolicyName", "s3"}}))
                .status()
                .message(),
            "The user policy with name s3 cannot be found.");

  ASSERT_TRUE(
      Iam("CreateRole", Value::Object({{"RoleName", "r"}, {"AssumeRolePolicyDocument", kTrust}}))
          .ok());
  ASSERT_TRUE(
      Iam("PutRolePolicy",
          Value::Object({{"RoleName", "r"}, {"PolicyName", "p"}, {"PolicyDocument", kAllowS3}}))
          .ok());
  auto role_policy = Iam("GetRolePolicy", Value::Object({{"RoleName", "r"}, {"PolicyName", "p"}}));
  EXPECT_EQ(role_policy->GetString("RoleName"), "r");
  EXPECT_EQ(
      Iam("ListRolePolicies", Value::Object({{"RoleName", "r"}}))->Find("PolicyNames")->size(), 1u);
}

TEST_F(IamServiceTest, TagsOnUsers) {
  ASSERT_TRUE(Iam("CreateUser", Value::Object({{"UserName", "bob"}})).ok());
  ASSERT_TRUE(
      Iam("TagUser", Value::Object({{"UserName", "bob"},
                                    {"Tags", Value(Value::List{
                                                 Value::Object({{"Key", "a"}, {"Value", "1"}}),
                                                 Value::Object({{"Key", "b"}, {"Value", "2"}})})}}))
          .ok());
  ASSERT_TRUE(
      Iam("UntagUser", Value::Object({{"UserName", "bob"}, {"TagKeys", Value(Value::List{"a"})}}))
          .ok());
  auto tags = Iam("ListUserTags", Value::Object({{"UserName", "bob"}}));
  ASSERT_EQ(tags->Find("Tags")->size(), 1u);
  EXPECT_EQ(tags->Find("Tags")->list()[0].GetString("Key"), "b");
  EXPECT_FALSE(tags->GetBool("IsTruncated"));
  ASSERT_TRUE(Iam("UpdateUser", Value::Object({{"UserName", "bob"}, {"NewUserName", "rob"}})).ok());
  EXPECT_EQ(Iam("ListUserTags", Value::Object({{"UserName", "rob"}}))->Find("Tags")->size(), 1u);
}

TEST_F(IamServiceTest, ResourceResolversNameTheEntityArn) {
  ASSERT_TRUE(Iam("CreateUser", Value::Object({{"UserName", "bob"}, {"Path", "/ops/"}})).ok());
  EXPECT_EQ(
      Resource("iam", "CreateUser", Value::Object({{"UserName", "new"}, {"Path", "/x/"}}), root_),
      "arn:aws:iam::000000000000:user/x/new");
  EXPECT_EQ(Resource("iam", "DeleteUser", Value::Object({{"UserName", "bob"}}), root_),
            "arn:aws:iam::000000000000:user/ops/bob");
  EXPECT_EQ(Resource("iam", "AttachUserPolicy",
                     Value::Object({{"UserName", "bob"},
                                    {"PolicyArn", "arn:aws:iam::aws:policy/ReadOnlyAccess"}}),
                     root_),
            "arn:aws:iam::000000000000:user/ops/bob");
  EXPECT_EQ(Resource("iam", "ListAccessKeys", Value::MakeMap(), UserPrincipal("bob")),
            "arn:aws:iam::000000000000:user/ops/bob");
  EXPECT_EQ(Resource("iam", "CreatePolicy", Value::Object({{"PolicyName", "p"}}), root_),
            "arn:aws:iam::000000000000:policy/p");
  EXPECT_EQ(Resource("iam", "DeletePolicy", Value::Object({{"PolicyArn", "arn:x"}}), root_),
            "arn:x");
}

TEST_F(IamServiceTest, AccountSummaryUsesModelKeys) {
  ASSERT_TRUE(Iam("CreateUser", Value::Object({{"UserName", "bob"}})).ok());
  auto out = Iam("GetAccountSummary", Value::MakeMap());
  ASSERT_TRUE(out.ok());
  const Value& map = *out->Find("SummaryMap");
  EXPECT_EQ(map.GetInt("Users"), 1);
  EXPECT_EQ(map.GetInt("AccessKeysPerUserQuota"), 2);
  EXPECT_FALSE(map.Has("Roles"));  // not a member of the model's summaryKeyType enum
}

}  // namespace
}  // namespace nimbus::services
