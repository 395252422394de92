#include "services/sts/sts_service.h"

#include "core/strings.h"
#include "service_test_env.h"

namespace nimbus::services {
namespace {

constexpr const char* kTrustAccount =
    R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"AWS":"000000000000"}}})";

class StsServiceTest : public testing::ServiceTestEnv {
 protected:
  void SetUp() override {
    ServiceTestEnv::SetUp();
    RegisterStsService(registry_, *store_);
    ASSERT_TRUE(store_->CreateUser("bob", "/", {}).ok());
    ASSERT_TRUE(store_->CreateRole("Trainer", "/", kTrustAccount, "", 7200, {}).ok());
  }
};

TEST_F(StsServiceTest, GetCallerIdentityDescribesThePrincipal) {
  auto out = Call("sts", "GetCallerIdentity", Value::MakeMap(), UserPrincipal("bob"));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->GetString("Arn"), "arn:aws:iam::000000000000:user/bob");
  EXPECT_EQ(out->GetString("Account"), "000000000000");
  EXPECT_TRUE(StartsWith(out->GetString("UserId"), "AIDA"));
  auto root = Call("sts", "GetCallerIdentity", Value::MakeMap(), root_);
  EXPECT_EQ(root->GetString("Arn"), "arn:aws:iam::000000000000:root");
  EXPECT_EQ(root->GetString("UserId"), "000000000000");
}

TEST_F(StsServiceTest, AssumeRoleReturnsCredentialsAndAssumedRoleUser) {
  const Value input = Value::Object({{"RoleArn", "arn:aws:iam::000000000000:role/Trainer"},
                                     {"RoleSessionName", "job-1"},
                                     {"DurationSeconds", 7200}});
  EXPECT_EQ(Resource("sts", "AssumeRole", input, root_), "arn:aws:iam::000000000000:role/Trainer");
  auto out = Call("sts", "AssumeRole", input, UserPrincipal("bob"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const Value& creds = *out->Find("Credentials");
  EXPECT_TRUE(StartsWith(creds.GetString("AccessKeyId"), "ASIA"));
  EXPECT_EQ(creds.GetString("SecretAccessKey").size(), 40u);
  EXPECT_FALSE(creds.GetString("SessionToken").empty());
  EXPECT_TRUE(creds.Find("Expiration")->is_timestamp());
  EXPECT_EQ(creds.Find("Expiration")->AsDouble(), 1700000000 + 7200);
  const Value& user = *out->Find("AssumedRoleUser");
  EXPECT_EQ(user.GetString("Arn"), "arn:aws:sts::000000000000:assumed-role/Trainer/job-1");
  EXPECT_EQ(user.GetString("AssumedRoleId"), store_->GetRole("Trainer")->role_id + ":job-1");

  // The new keys identify the session.
  auto cred = store_->Lookup(creds.GetString("AccessKeyId"));
  ASSERT_TRUE(cred.ok());
  auto who = Call("sts", "GetCallerIdentity", Value::MakeMap(), cred->principal);
  EXPECT_EQ(who->GetString("Arn"), "arn:aws:sts::000000000000:assumed-role/Trainer/job-1");
  clock_.Advance(7201);
  EXPECT_EQ(store_->Lookup(creds.GetString("AccessKeyId")).status().kind(),
            ErrorKind::kExpiredToken);
}

TEST_F(StsServiceTest, AssumeRoleErrorsAsStsReturnsThem) {
  auto missing = Call(
      "sts", "AssumeRole",
      Value::Object({{"RoleArn", "arn:aws:iam::000000000000:role/Nope"}, {"RoleSessionName", "s"}}),
      UserPrincipal("bob"));
  // The wire code (AccessDenied, 403 for STS's query protocol) comes from the error table.
  EXPECT_EQ(missing.status().kind(), ErrorKind::kAccessDenied);
  EXPECT_EQ(missing.status().message(),
            "User: arn:aws:iam::000000000000:user/bob is not authorized to perform: "
            "sts:AssumeRole on resource: arn:aws:iam::000000000000:role/Nope");
  auto too_long = Call("sts", "AssumeRole",
                       Value::Object({{"RoleArn", "arn:aws:iam::000000000000:role/Trainer"},
                                      {"RoleSessionName", "s"},
                                      {"DurationSeconds", 7201}}),
                       root_);
  EXPECT_EQ(too_long.status().code(), "ValidationError");
  EXPECT_EQ(too_long.status().http_status(), 400);
  auto session_policy = Call("sts", "AssumeRole",
                             Value::Object({{"RoleArn", "arn:aws:iam::000000000000:role/Trainer"},
                                            {"RoleSessionName", "s"},
                                            {"Policy", "{}"}}),
                             root_);
  EXPECT_EQ(session_policy.status().code(), "ValidationError");
}

TEST_F(StsServiceTest, GetSessionTokenIssuesKeysForTheUser) {
  auto out = Call("sts", "GetSessionToken", Value::Object({{"DurationSeconds", 900}}),
                  UserPrincipal("bob"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const Value& creds = *out->Find("Credentials");
  EXPECT_EQ(creds.Find("Expiration")->AsDouble(), 1700000000 + 900);
  auto cred = store_->Lookup(creds.GetString("AccessKeyId"));
  ASSERT_TRUE(cred.ok());
  EXPECT_EQ(cred->principal.arn, "arn:aws:iam::000000000000:user/bob");
  EXPECT_EQ(cred->session_token, creds.GetString("SessionToken"));
  auto again = Call("sts", "GetSessionToken", Value::MakeMap(), cred->principal);
  EXPECT_EQ(again.status().kind(), ErrorKind::kAccessDenied);
}

TEST_F(StsServiceTest, GetAccessKeyInfoNamesTheAccount) {
  auto out = Call("sts", "GetAccessKeyInfo",
                  Value::Object({{"AccessKeyId", "AKIAXXXXXXXXXXXXXXXX"}}), root_);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->GetString("Account"), "000000000000");
}

}  // namespace
}  // namespace nimbus::services
