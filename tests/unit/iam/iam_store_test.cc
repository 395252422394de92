#include "iam/iam_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace nimbus::iam {
namespace {

constexpr const char* kAccount = "000000000000";
constexpr const char* kAllowAll =
    R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}})";
constexpr const char* kTrustAccount =
    R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole",
        "Principal":{"AWS":"arn:aws:iam::000000000000:root"}}})";

class IamStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-iam-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Closes and reopens database and store, as a server restart does.
  void Reopen() {
    store_.reset();
    db_.reset();
    auto db = store::Database::Open(dir_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    auto store = IamStore::Open(*db_, IamOptions{kAccount, &clock_});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  aws::Principal UserPrincipal(const std::string& name) {
    auto user = store_->GetUser(name);
    EXPECT_TRUE(user.ok());
    aws::Principal p;
    p.type = aws::Principal::Type::kUser;
    p.name = name;
    p.arn = user->arn;
    p.account_id = kAccount;
    p.user_id = user->user_id;
    return p;
  }

  FakeClock clock_{1700000000};
  std::string dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<IamStore> store_;
};

TEST_F(IamStoreTest, CreatesUsersWithAwsShapedIdsAndArns) {
  auto user = store_->CreateUser("bob", "/team/", {{"k", "v"}});
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  EXPECT_EQ(user->arn, "arn:aws:iam::000000000000:user/team/bob");
  EXPECT_EQ(user->user_id.substr(0, 4), "AIDA");
  EXPECT_EQ(user->user_id.size(), 20u);
  EXPECT_EQ(user->create_date, 1700000000);
  auto got = store_->GetUser("bob");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->user_id, user->user_id);
  ASSERT_EQ(got->tags.size(), 1u);
  EXPECT_EQ(got->tags[0].value, "v");
}

TEST_F(IamStoreTest, UserNamesAreUniqueIgnoringCase) {
  ASSERT_TRUE(store_->CreateUser("bob", "/", {}).ok());
  auto again = store_->CreateUser("BOB", "/", {});
  EXPECT_EQ(again.status().code(), "EntityAlreadyExists");
  EXPECT_EQ(again.status().http_status(), 409);
}

TEST_F(IamStoreTest, MissingUserIsNoSuchEntityWithIamMessage) {
  auto user = store_->GetUser("ghost");
  EXPECT_EQ(user.status().code(), "NoSuchEntity");
  EXPECT_EQ(user.status().http_status(), 404);
  EXPECT_EQ(user.status().message(), "The user with name ghost cannot be found.");
}

TEST_F(IamStoreTest, ListUsersFiltersByPathPrefixAndSortsByName) {
  ASSERT_TRUE(store_->CreateUser("zed", "/a/", {}).ok());
  ASSERT_TRUE(store_->CreateUser("amy", "/a/b/", {}).ok());
  ASSERT_TRUE(store_->CreateUser("max", "/", {}).ok());
  auto all = store_->ListUsers("/");
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].name, "amy");
  auto under_a = store_->ListUsers("/a/");
  ASSERT_EQ(under_a->size(), 2u);
  EXPECT_EQ((*under_a)[1].name, "zed");
}

TEST_F(IamStoreTest, UpdateUserRenamesAndKeepsKeys) {
  ASSERT_TRUE(store_->CreateUser("bob", "/", {}).ok());
  auto key = store_->CreateAccessKey("bob");
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(store_->UpdateUser("bob", "robert", "/ops/").ok());
  EXPECT_FALSE(store_->GetUser("bob").ok());
  auto cred = store_->Lookup(key->access_key_id);
  ASSERT_TRUE(cred.ok());
  EXPECT_EQ(cred->principal.arn, "arn:aws:iam::000000000000:user/ops/robert");
}

TEST_F(IamStoreTest, AccessKeysAreLimitedToTwoAndLookUpToTheUser) {
  ASSERT_TRUE(store_->CreateUser("bob", "/", {}).ok());
  auto k1 = store_->CreateAccessKey("bob");
  auto k2 = store_->CreateAccessKey("bob");
  ASSERT_TRUE(k1.ok() && k2.ok());
  EXPECT_EQ(k1->access_key_id.substr(0, 4), "AKIA");
  EXPECT_EQ(k1->access_key_id.size(), 20u);
  EXPECT_EQ(k1->secret_access_key.size(), 40u);
  auto k3 = store_->CreateAccessKey("bob");
  EXPECT_EQ(k3.status().code(), "LimitExceeded");

  auto cred = store_->Lookup(k1->access_key_id);
  ASSERT_TRUE(cred.ok());
  EXPECT_EQ(cred->secret_access_key, k1->secret_access_key);
  EXPECT_EQ(cred->principal.type, aws::Principal::Type::kUser);
  EXPECT_EQ(cred->principal.name, "bob");
  EXPECT_EQ(cred->principal.access_key_id, k1->access_key_id);

  ASSERT_TRUE(store_->UpdateAccessKey("bob", k1->access_key_id, "Inactive").ok());
  EXPECT_EQ(store_->Lookup(k1->access_key_id).status().kind(), ErrorKind::kNotFound);
  ASSERT_TRUE(store_->DeleteAccessKey("bob", k2->access_key_id).ok());
  EXPECT_EQ(store_->Lookup(k2->access_key_id).status().kind(), ErrorKind::kNotFound);
  EXPECT_EQ(store_->DeleteAccessKey("bob", k2->access_key_id).code(), "NoSuchEntity");
  EXPECT_EQ(store_->Lookup("AKIAUNKNOWN0000000000").status().kind(), ErrorKind::kNotFound);
}

TEST_F(IamStoreTest, RecordsAccessKeyUse) {
  ASSERT_TRUE(store_->CreateUser("bob", "/", {}).ok());
  auto key = store_->CreateAccessKey("bob");
  EXPECT_EQ(store_->GetAccessKey(key->access_key_id)->last_used_date, 0);
  clock_.Advance(60);
  ASSERT_TRUE(store_->RecordAccessKeyUse(key->access_key_id, "s3", "us-east-1").ok());
  auto used = store_->GetAccessKey(key->access_key_id);
  EXPECT_EQ(used->last_used_date, 1700000060);
  EXPECT_EQ(used->last_used_service, "s3");
}

TEST_F(IamStoreTest, DeleteUserConflictsUntilKeysAndPoliciesAreGone) {
  ASSERT_TRUE(store_->CreateUser("bob", "/", {{"a", "b"}}).ok());
  auto key = store_->CreateAccessKey("bob");
  ASSERT_TRUE(
      store_->AttachPolicy(EntityKind::kUser, "bob", "arn:aws:iam::aws:policy/ReadOnlyAccess")
          .ok());
  ASSERT_TRUE(store_->PutInlinePolicy(EntityKind::kUser, "bob", "p", kAllowAll).ok());
  EXPECT_EQ(store_->DeleteUser("bob").code(), "DeleteConflict");
  ASSERT_TRUE(store_->DeleteAccessKey("bob", key->access_key_id).ok());
  EXPECT_EQ(store_->DeleteUser("bob").message(),
            "Cannot delete entity, must detach all policies first.");
  ASSERT_TRUE(
      store_->DetachPolicy(EntityKind::kUser, "bob", "arn:aws:iam::aws:policy/ReadOnlyAccess")
          .ok());
  EXPECT_EQ(store_->DeleteUser("bob").code(), "DeleteConflict");
  ASSERT_TRUE(store_->DeleteInlinePolicy(EntityKind::kUser, "bob", "p").ok());
  ASSERT_TRUE(store_->DeleteUser("bob").ok());
  // A new user of the same name starts without the old tags.
  ASSERT_TRUE(store_->CreateUser("bob", "/", {}).ok());
  EXPECT_TRUE(store_->ListEntityTags(EntityKind::kUser, "bob")->empty());
}

TEST_F(IamStoreTest, TagsAreUpsertedRemovedAndLimited) {
  ASSERT_TRUE(store_->CreateRole("r", "/", kTrustAccount, "", 3600, {{"a", "1"}}).ok());
  ASSERT_TRUE(store_->TagEntity(EntityKind::kRole, "r", {{"a", "2"}, {"b", "3"}}).ok());
  auto tags = store_->ListEntityTags(EntityKind::kRole, "r");
  ASSERT_EQ(tags->size(), 2u);
  EXPECT_EQ((*tags)[0].value, "2");
  ASSERT_TRUE(store_->UntagEntity(EntityKind::kRole, "r", {"a"}).ok());
  EXPECT_EQ(store_->ListEntityTags(EntityKind::kRole, "r")->size(), 1u);
  std::vector<Tag> many;
  for (int i = 0; i < 50; ++i) many.push_back({"k" + std::to_string(i), "v"});
  EXPECT_EQ(store_->TagEntity(EntityKind::kRole, "r", many).code(), "LimitExceeded");
  EXPECT_EQ(store_->ListEntityTags(EntityKind::kRole, "r")->size(), 1u);  // rolled back
}

TEST_F(IamStoreTest, RolesValidateTrustPolicyAndConflictOnDelete) {
  auto bad = store_->CreateRole("r", "/", R"({"Statement":{"Effect":"Allow"}})", "", 3600, {});
  EXPECT_EQ(bad.status().code(), "MalformedPolicyDocument");
  auto role = store_->CreateRole("r", "/svc/", kTrustAccount, "desc", 0, {});
  ASSERT_TRUE(role.ok()) << role.status().ToString();
  EXPECT_EQ(role->arn, "arn:aws:iam::000000000000:role/svc/r");
  EXPECT_EQ(role->role_id.substr(0, 4), "AROA");
  EXPECT_EQ(role->max_session_duration, 3600);
  EXPECT_TRUE(store_->GetRoleByArn("arn:aws:iam::000000000000:role/svc/r").ok());
  EXPECT_FALSE(store_->GetRoleByArn("arn:aws:iam::000000000000:role/r").ok());
  ASSERT_TRUE(store_->UpdateRole("r", std::string("new"), int64_t{7200}).ok());
  EXPECT_EQ(store_->GetRole("r")->max_session_duration, 7200);
  EXPECT_EQ(store_->GetRole("r")->description, "new");
  EXPECT_EQ(store_->UpdateAssumeRolePolicy("r", "{").code(), "MalformedPolicyDocument");
  ASSERT_TRUE(store_->PutInlinePolicy(EntityKind::kRole, "r", "p", kAllowAll).ok());
  EXPECT_EQ(store_->DeleteRole("r").code(), "DeleteConflict");
  ASSERT_TRUE(store_->DeleteInlinePolicy(EntityKind::kRole, "r", "p").ok());
  EXPECT_TRUE(store_->DeleteRole("r").ok());
  EXPECT_EQ(store_->GetRole("r").status().message(), "The role with name r cannot be found.");
}

TEST_F(IamStoreTest, ManagedPolicyVersionsFollowIamRules) {
  auto bad =
      store_->CreatePolicy("p", "/", R"({"Statement":{"Effect":"Allow","Action":"s3:*"}})", "", {});
  EXPECT_EQ(bad.status().code(), "MalformedPolicyDocument");
  auto policy = store_->CreatePolicy("p", "/", kAllowAll, "d", {});
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  EXPECT_EQ(policy->arn, "arn:aws:iam::000000000000:policy/p");
  EXPECT_EQ(policy->default_version_id, "v1");
  EXPECT_EQ(store_->CreatePolicy("P", "/", kAllowAll, "", {}).status().code(),
            "EntityAlreadyExists");
  for (int i = 2; i <= 5; ++i) {
    auto v = store_->CreatePolicyVersion(policy->arn, kAllowAll, i == 3);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(v->version_id, "v" + std::to_string(i));
  }
  EXPECT_EQ(store_->CreatePolicyVersion(policy->arn, kAllowAll, false).status().code(),
            "LimitExceeded");
  EXPECT_EQ(store_->GetPolicy(policy->arn)->default_version_id, "v3");
  auto versions = store_->ListPolicyVersions(policy->arn);
  ASSERT_EQ(versions->size(), 5u);
  EXPECT_EQ((*versions)[0].version_id, "v5");
  EXPECT_TRUE((*versions)[2].is_default);
  EXPECT_EQ(store_->DeletePolicyVersion(policy->arn, "v3").code(), "DeleteConflict");
  ASSERT_TRUE(store_->SetDefaultPolicyVersion(policy->arn, "v5").ok());
  EXPECT_EQ(store_->SetDefaultPolicyVersion(policy->arn, "v9").code(), "NoSuchEntity");
  for (const char* v : {"v1", "v2", "v3", "v4"}) {
    ASSERT_TRUE(store_->DeletePolicyVersion(policy->arn, v).ok()) << v;
  }
  // Version numbers are never reused.
  EXPECT_EQ(store_->CreatePolicyVersion(policy->arn, kAllowAll, false)->version_id, "v6");
  EXPECT_EQ(store_->DeletePolicy(policy->arn).code(), "DeleteConflict");
  ASSERT_TRUE(store_->DeletePolicyVersion(policy->arn, "v6").ok());

  ASSERT_TRUE(store_->CreateUser("bob", "/", {}).ok());
  ASSERT_TRUE(store_->AttachPolicy(EntityKind::kUser, "bob", policy->arn).ok());
  EXPECT_EQ(store_->GetPolicy(policy->arn)->attachment_count, 1);
  EXPECT_EQ(store_->DeletePolicy(policy->arn).message(),
            "Cannot delete a policy attached to entities.");
  ASSERT_TRUE(store_->DetachPolicy(EntityKind::kUser, "bob", policy->arn).ok());
  ASSERT_TRUE(store_->DeletePolicy(policy->arn).ok());
  EXPECT_EQ(store_->GetPolicy(policy->arn).status().code(), "NoSuchEntity");
}

TEST_F(IamStoreTest, AwsManagedPoliciesAreListableAttachableAndReadOnly) {
  auto aws = store_->ListPolicies(PolicyScope::kAws, false, "/");
  ASSERT_TRUE(aws.ok());
  EXPECT_EQ(aws->size(), 9u);
  ASSERT_TRUE(store_->CreatePolicy("mine", "/", kAllowAll, "", {}).ok());
  EXPECT_EQ(store_->ListPolicies(PolicyScope::kLocal, false, "/")->size(), 1u);
  EXPECT_EQ(store_->ListPolicies(PolicyScope::kAll, false, "/")->size(), 10u);
  EXPECT_TRUE(store_->ListPolicies(PolicyScope::kAll, true, "/")->empty());

  const std::string admin = "arn:aws:iam::aws:policy/AdministratorAccess";
  for (const auto& p : *aws) {
    auto v = store_->GetPolicyVersion(p.arn, p.default_version_id);
    ASSERT_TRUE(v.ok()) << p.arn;
    EXPECT_TRUE(ParsePolicy(v->document, PolicyKind::kIdentity).ok()) << p.arn;
  }
  ASSERT_TRUE(store_->CreateRole("r", "/", kTrustAccount, "", 3600, {}).ok());
  ASSERT_TRUE(store_->AttachPolicy(EntityKind::kRole, "r", admin).ok());
  auto attached = store_->ListPolicies(PolicyScope::kAll, true, "/");
  ASSERT_EQ(attached->size(), 1u);
  EXPECT_EQ((*attached)[0].attachment_count, 1);
  auto entities = store_->ListEntitiesForPolicy(admin);
  ASSERT_EQ(entities->size(), 1u);
  EXPECT_EQ((*entities)[0].name, "r");
  EXPECT_EQ(store_->DeletePolicy(admin).code(), "InvalidInput");
  EXPECT_EQ(store_->CreatePolicyVersion(admin, kAllowAll, true).status().code(), "InvalidInput");
  EXPECT_EQ(store_->AttachPolicy(EntityKind::kRole, "r", "arn:aws:iam::aws:policy/Nope").code(),
            "NoSuchEntity");
}

TEST_F(IamStoreTest, AttachmentsAreLimitedToTen) {
  ASSERT_TRUE(store_->CreateUser("bob", "/", {}).ok());
  for (int i = 0; i < 10; ++i) {
    auto p = store_->CreatePolicy("p" + std::to_string(i), "/", kAllowAll, "", {});
    ASSERT_TRUE(store_->AttachPolicy(EntityKind::kUser, "bob", p->arn).ok());
  }
  auto extra = store_->CreatePolicy("p10", "/", kAllowAll, "", {});
  EXPECT_EQ(store_->AttachPolicy(EntityKind::kUser, "bob", extra->arn).code(), "LimitExceeded");
  EXPECT_EQ(store_->ListAttachedPolicies(EntityKind::kUser, "bob", "/")->size(), 10u);
}

TEST_F(IamStoreTest, InlinePolicySizeIsLimited) {
  ASSERT_TRUE(store_->CreateUser("bob", "/", {}).ok());
  std::string big = R"({"Statement":{"Effect":"Allow","Action":"s3:*","Resource":[)";
  for (int i = 0; i < 100; ++i)
    big += (i ? "," : "") + std::string("\"arn:aws:s3:::bucket-") + std::to_string(i) + "/*\"";
  big += "]}}";
  EXPECT_EQ(store_->PutInlinePolicy(EntityKind::kUser, "bob", "big", big).code(), "LimitExceeded");
}

TEST_F(IamStoreTest, AuthorizeEvaluatesIdentityPoliciesWithAwsMessages) {
  ASSERT_TRUE(store_->CreateUser("bob", "/", {}).ok());
  aws::Principal bob = UserPrincipal("bob");
  const std::string target = "arn:aws:iam::000000000000:user/x";
  Status denied = store_->Authorize(bob, "iam:CreateUser", target);
  EXPECT_EQ(denied.kind(), ErrorKind::kAccessDenied);
  EXPECT_EQ(denied.message(),
            "User: arn:aws:iam::000000000000:user/bob is not authorized to perform: "
            "iam:CreateUser on resource: arn:aws:iam::000000000000:user/x because no "
            "identity-based policy allows the iam:CreateUser action");
  EXPECT_TRUE(store_->Authorize(bob, "sts:GetCallerIdentity", "*").ok());
  EXPECT_TRUE(store_->Authorize(store_->RootPrincipal(), "iam:DeleteUser", target).ok());

  ASSERT_TRUE(
      store_->AttachPolicy(EntityKind::kUser, "bob", "arn:aws:iam::aws:policy/ReadOnlyAccess")
          .ok());
  EXPECT_TRUE(store_->Authorize(bob, "iam:GetUser", target).ok());
  EXPECT_FALSE(store_->Authorize(bob, "iam:CreateUser", target).ok());

  ASSERT_TRUE(store_
                  ->PutInlinePolicy(EntityKind::kUser, "bob", "own-keys",
                                    R"({"Version":"2012-10-17","Statement":{"Effect":"Allow",
      "Action":"iam:*AccessKey*","Resource":"arn:aws:iam::*:user/${aws:username}"}})")
                  .ok());
  EXPECT_TRUE(store_->Authorize(bob, "iam:CreateAccessKey", bob.arn).ok());
  EXPECT_FALSE(store_->Authorize(bob, "iam:CreateAccessKey", target).ok());

  ASSERT_TRUE(store_
                  ->PutInlinePolicy(EntityKind::kUser, "bob", "no-get",
                                    R"({"Statement":{"Effect":"Deny","Action":"iam:GetUser",
      "Resource":"*"}})")
                  .ok());
  Status explicit_deny = store_->Authorize(bob, "iam:GetUser", target);
  EXPECT_EQ(explicit_deny.message(),
            "User: arn:aws:iam::000000000000:user/bob is not authorized to perform: iam:GetUser "
            "on resource: arn:aws:iam::000000000000:user/x with an explicit deny in an "
            "identity-based policy");

  // The default version of a customer policy is what counts.
  auto p = store_->CreatePolicy(
      "deny-s3", "/", R"({"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*"}})", "", {});
  ASSERT_TRUE(store_->AttachPolicy(EntityKind::kUser, "bob", p->arn).ok());
  EXPECT_FALSE(store_->Authorize(bob, "s3:GetObject", "arn:aws:s3:::b/k").ok());
  ASSERT_TRUE(store_->CreatePolicyVersion(p->arn, kAllowAll, true).ok());
  EXPECT_TRUE(store_->Authorize(bob, "s3:GetObject", "arn:aws:s3:::b/k").ok());
}

TEST_F(IamStoreTest, AssumeRoleIssuesPersistedSessionsThatExpire) {
  ASSERT_TRUE(store_->CreateRole("Worker", "/", kTrustAccount, "", 7200, {}).ok());
  ASSERT_TRUE(store_
                  ->AttachPolicy(EntityKind::kRole, "Worker",
                                 "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
                  .ok());
  auto creds = store_->AssumeRole(store_->RootPrincipal(), "arn:aws:iam::000000000000:role/Worker",
                                  "sess", 1800);
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ(creds->access_key_id.substr(0, 4), "ASIA");
  EXPECT_EQ(creds->expiration, 1700000000 + 1800);
  EXPECT_EQ(creds->principal.arn, "arn:aws:sts::000000000000:assumed-role/Worker/sess");
  EXPECT_EQ(creds->principal.user_id, store_->GetRole("Worker")->role_id + ":sess");

  Reopen();  // sessions survive a restart
  auto cred = store_->Lookup(creds->access_key_id);
  ASSERT_TRUE(cred.ok()) << cred.status().ToString();
  EXPECT_EQ(cred->session_token, creds->session_token);
  EXPECT_EQ(cred->secret_access_key, creds->secret_access_key);
  EXPECT_EQ(cred->principal.type, aws::Principal::Type::kAssumedRole);
  EXPECT_EQ(cred->principal.role_arn, "arn:aws:iam::000000000000:role/Worker");
  EXPECT_EQ(cred->principal.access_key_id, creds->access_key_id);
  // The session acts with the role's policies.
  EXPECT_TRUE(store_->Authorize(cred->principal, "s3:GetObject", "arn:aws:s3:::b/k").ok());
  Status denied = store_->Authorize(cred->principal, "s3:PutObject", "arn:aws:s3:::b/k");
  EXPECT_NE(denied.message().find("User: arn:aws:sts::000000000000:assumed-role/Worker/sess"),
            std::string::npos);

  clock_.Advance(1801);
  EXPECT_EQ(store_->Lookup(creds->access_key_id).status().kind(), ErrorKind::kExpiredToken);
}

TEST_F(IamStoreTest, AssumeRoleRefusesUnknownRolesUntrustedCallersAndBadDurations) {
  ASSERT_TRUE(store_->CreateUser("bob", "/", {}).ok());
  aws::Principal bob = UserPrincipal("bob");
  auto missing = store_->AssumeRole(bob, "arn:aws:iam::000000000000:role/Nope", "s", 3600);
  EXPECT_EQ(missing.status().kind(), ErrorKind::kAccessDenied);
  EXPECT_EQ(missing.status().message(),
            "User: arn:aws:iam::000000000000:user/bob is not authorized to perform: "
            "sts:AssumeRole on resource: arn:aws:iam::000000000000:role/Nope");

  ASSERT_TRUE(store_
                  ->CreateRole("SageMaker", "/",
                               R"({"Statement":{"Effect":"Allow","Action":"sts:AssumeRole",
      "Principal":{"Service":"sagemaker.amazonaws.com"}}})",
                               "", 3600, {})
                  .ok());
  EXPECT_EQ(store_->AssumeRole(bob, "arn:aws:iam::000000000000:role/SageMaker", "s", 3600)
                .status()
                .kind(),
            ErrorKind::kAccessDenied);

  ASSERT_TRUE(store_->CreateRole("R", "/", kTrustAccount, "", 3600, {}).ok());
  auto too_long = store_->AssumeRole(bob, "arn:aws:iam::000000000000:role/R", "s", 3601);
  EXPECT_EQ(too_long.status().code(), "ValidationError");
  auto ok = store_->AssumeRole(bob, "arn:aws:iam::000000000000:role/R", "s", 3600);
  ASSERT_TRUE(ok.ok());
  // Role chaining is limited to one hour.
  ASSERT_TRUE(store_->UpdateRole("R", std::nullopt, int64_t{43200}).ok());
  auto chained = store_->AssumeRole(ok->principal, "arn:aws:iam::000000000000:role/R", "s2", 7200);
  EXPECT_EQ(chained.status().code(), "ValidationError");
  EXPECT_TRUE(
      store_->AssumeRole(ok->principal, "arn:aws:iam::000000000000:role/R", "s2", 3600).ok());
}

TEST_F(IamStoreTest, AuthorizeAssumeRoleHonoursTrustNamingTheCaller) {
  ASSERT_TRUE(store_->CreateUser("bob", "/", {}).ok());
  aws::Principal bob = UserPrincipal("bob");
  ASSERT_TRUE(store_
                  ->CreateRole("ForBob", "/",
                               R"({"Statement":{"Effect":"Allow","Action":"sts:AssumeRole",
      "Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"}}})",
                               "", 3600, {})
                  .ok());
  ASSERT_TRUE(store_->CreateRole("ForAccount", "/", kTrustAccount, "", 3600, {}).ok());
  EXPECT_TRUE(
      store_->Authorize(bob, "sts:AssumeRole", "arn:aws:iam::000000000000:role/ForBob").ok());
  // Trusting the account delegates to the account's identity policies.
  EXPECT_FALSE(
      store_->Authorize(bob, "sts:AssumeRole", "arn:aws:iam::000000000000:role/ForAccount").ok());
}

TEST_F(IamStoreTest, GetSessionTokenActsAsTheUser) {
  ASSERT_TRUE(store_->CreateUser("bob", "/", {}).ok());
  aws::Principal bob = UserPrincipal("bob");
  auto creds = store_->GetSessionToken(bob, 0);
  ASSERT_TRUE(creds.ok());
  EXPECT_EQ(creds->expiration, 1700000000 + 43200);
  auto cred = store_->Lookup(creds->access_key_id);
  ASSERT_TRUE(cred.ok());
  EXPECT_EQ(cred->principal.type, aws::Principal::Type::kUser);
  EXPECT_EQ(cred->principal.arn, bob.arn);
  EXPECT_EQ(store_->GetSessionToken(cred->principal, 0).status().kind(), ErrorKind::kAccessDenied);
  EXPECT_EQ(store_->GetSessionToken(bob, 600).status().code(), "ValidationError");
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(IamStoreTest, BootstrapRootGeneratesPersistsAndWritesCredentialsFile) {
  unsetenv("NIMBUS_ROOT_ACCESS_KEY_ID");
  unsetenv("NIMBUS_ROOT_SECRET_ACCESS_KEY");
  ASSERT_TRUE(store_->BootstrapRoot(dir_).ok());
  const std::string id = store_->root_access_key_id();
  const std::string secret = store_->root_secret_access_key();
  EXPECT_EQ(id.substr(0, 4), "AKIA");
  EXPECT_EQ(secret.size(), 40u);
  const std::string path = dir_ + "/credentials";
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(ReadFile(path),
            "[default]\naws_access_key_id = " + id + "\naws_secret_access_key = " + secret + "\n");
  auto cred = store_->Lookup(id);
  ASSERT_TRUE(cred.ok());
  EXPECT_EQ(cred->principal.type, aws::Principal::Type::kRoot);
  EXPECT_EQ(cred->principal.arn, "arn:aws:iam::000000000000:root");

  std::filesystem::remove(path);
  Reopen();
  ASSERT_TRUE(store_->BootstrapRoot(dir_).ok());
  EXPECT_EQ(store_->root_access_key_id(), id);
  EXPECT_NE(ReadFile(path).find(secret), std::string::npos);
}

TEST_F(IamStoreTest, BootstrapRootPrefersEnvironmentKeys) {
  setenv("NIMBUS_ROOT_ACCESS_KEY_ID", "AKIAENVENVENVENVENV1", 1);
  setenv("NIMBUS_ROOT_SECRET_ACCESS_KEY", "env-secret", 1);
  Status s = store_->BootstrapRoot(dir_);
  unsetenv("NIMBUS_ROOT_ACCESS_KEY_ID");
  unsetenv("NIMBUS_ROOT_SECRET_ACCESS_KEY");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(store_->root_access_key_id(), "AKIAENVENVENVENVENV1");
  EXPECT_EQ(store_->Lookup("AKIAENVENVENVENVENV1")->secret_access_key, "env-secret");
}

TEST_F(IamStoreTest, ConcurrentCreatesOfOneNameYieldOneUser) {
  std::atomic<int> created{0}, conflicts{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto u = store_->CreateUser(i % 2 ? "dup" : "DUP", "/", {});
      if (u.ok()) ++created;
      if (u.status().code() == "EntityAlreadyExists") ++conflicts;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(conflicts.load(), 7);
}

TEST_F(IamStoreTest, AccountSummaryCountsEntities) {
  ASSERT_TRUE(store_->CreateUser("a", "/", {}).ok());
  ASSERT_TRUE(store_->CreatePolicy("p", "/", kAllowAll, "", {}).ok());
  auto summary = store_->AccountSummary();
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->at("Users"), 1);
  EXPECT_EQ(summary->at("Policies"), 1);
  EXPECT_EQ(summary->at("AccessKeysPerUserQuota"), 2);
}

}  // namespace
}  // namespace nimbus::iam
