// iam::IamStore: the identities of one account (users, access keys, roles, managed and
// inline policies, STS sessions) kept in store::Database, and the two interfaces the
// request pipeline needs from them: aws::CredentialStore (access key id -> secret and
// principal) and aws::Authorizer (IAM policy evaluation for a principal's request).
//
// Names of users, roles and policies are unique case-insensitively, as in IAM. The
// AWS managed policies (arn:aws:iam::aws:policy/...) are built in and read-only; they can
// be listed and attached. Root credentials come from the environment or are generated
// once by BootstrapRoot() and persisted.
//
// Errors are the IAM wire errors (Status::Aws): NoSuchEntity 404, EntityAlreadyExists
// 409, DeleteConflict 409, LimitExceeded 409, MalformedPolicyDocument 400,
// InvalidInput 400; STS failures use AccessDenied and ValidationError.
//
// Thread-safety: all methods may be called concurrently; the database serializes writes
// and each multi-row change is one transaction.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aws/service.h"
#include "core/clock.h"
#include "core/result.h"
#include "iam/policy.h"
#include "store/database.h"

namespace nimbus::iam {

struct Tag {
  std::string key;
  std::string value;
};

struct User {
  std::string name;
  std::string path;
  std::string user_id;
  std::string arn;
  double create_date = 0;
  std::vector<Tag> tags;
};

struct AccessKey {
  std::string access_key_id;
  std::string secret_access_key;
  std::string user_name;
  std::string status;  // "Active" | "Inactive"
  double create_date = 0;
  double last_used_date = 0;  // 0 when never used
  std::string last_used_service;
  std::string last_used_region;
};

struct Role {
  std::string name;
  std::string path;
  std::string role_id;
  std::string arn;
  double create_date = 0;
  std::string assume_role_policy;  // the JSON document, not URL-encoded
  std::string description;
  int64_t max_session_duration = 3600;
  std::vector<Tag> tags;
};

struct ManagedPolicy {
  std::string name;
  std::string path;
  std::string policy_id;
  std::string arn;
  std::string default_version_id;
  std::string description;
  double create_date = 0;
  double update_date = 0;
  int64_t attachment_count = 0;
  bool aws_managed = false;
  std::vector<Tag> tags;
};

struct PolicyVersion {
  std::string version_id;  // "v1", "v2", ...
  std::string document;
  bool is_default = false;
  double create_date = 0;
};

struct AttachedPolicy {
  std::string policy_name;
  std::string policy_arn;
};

enum class EntityKind { kUser, kRole };

struct PolicyEntity {
  EntityKind kind;
  std::string name;
  std::string id;
};

enum class PolicyScope { kAll, kAws, kLocal };

// Temporary credentials issued by STS.
struct SessionCredentials {
  std::string access_key_id;  // ASIA...
  std::string secret_access_key;
  std::string session_token;
  double expiration = 0;
  aws::Principal principal;  // who the session acts as
};

struct IamOptions {
  std::string account_id = "000000000000";
  const Clock* clock = &SystemClock::Instance();
};

class IamStore : public aws::CredentialStore, public aws::Authorizer {
 public:
  // Registers the "iam" schema migrations, runs db.Migrate() and returns the store.
  // db must outlive it.
  static Result<std::unique_ptr<IamStore>> Open(store::Database& db, IamOptions options = {});

  const std::string& account_id() const { return options_.account_id; }
  const Clock& clock() const { return *options_.clock; }
  std::string UserArn(std::string_view path, std::string_view name) const;
  std::string RoleArn(std::string_view path, std::string_view name) const;
  std::string PolicyArn(std::string_view path, std::string_view name) const;
  aws::Principal RootPrincipal() const;

  // Root credentials: NIMBUS_ROOT_ACCESS_KEY_ID / NIMBUS_ROOT_SECRET_ACCESS_KEY when both
  // are set; otherwise keys generated on first start and persisted, and written (mode
  // 0600, rewritten when missing) to <data_dir>/credentials as the [default] profile of an
  // AWS shared-credentials file.
  Status BootstrapRoot(const std::string& data_dir);
  std::string root_access_key_id() const;
  std::string root_secret_access_key() const;

  // Users.
  Result<User> CreateUser(const std::string& name, const std::string& path,
                          const std::vector<Tag>& tags);
  Result<User> GetUser(const std::string& name);
  Result<std::vector<User>> ListUsers(const std::string& path_prefix);  // by name
  Status UpdateUser(const std::string& name, const std::optional<std::string>& new_name,
                    const std::optional<std::string>& new_path);
  // DeleteConflict while the user has access keys or attached/inline policies.
  Status DeleteUser(const std::string& name);

  // Tags of users and roles (at most 50 per entity: LimitExceeded).
  Status TagEntity(EntityKind kind, const std::string& name, const std::vector<Tag>& tags);
  Status UntagEntity(EntityKind kind, const std::string& name,
                     const std::vector<std::string>& keys);
  Result<std::vector<Tag>> ListEntityTags(EntityKind kind, const std::string& name);

  // Access keys (at most 2 per user: LimitExceeded).
  Result<AccessKey> CreateAccessKey(const std::string& user_name);
  Result<std::vector<AccessKey>> ListAccessKeys(const std::string& user_name);
  Status UpdateAccessKey(const std::string& user_name, const std::string& access_key_id,
                         const std::string& status);
  Status DeleteAccessKey(const std::string& user_name, const std::string& access_key_id);
  // Any user key by id (NoSuchEntity when unknown), for GetAccessKeyLastUsed.
  Result<AccessKey> GetAccessKey(const std::string& access_key_id);
  // Records a successful use of a user access key (for GetAccessKeyLastUsed).
  Status RecordAccessKeyUse(const std::string& access_key_id, const std::string& service,
                            const std::string& region);

  // Roles. The trust policy is validated (MalformedPolicyDocument).
  Result<Role> CreateRole(const std::string& name, const std::string& path,
                          const std::string& assume_role_policy, const std::string& description,
                          int64_t max_session_duration, const std::vector<Tag>& tags);
  Result<Role> GetRole(const std::string& name);
  Result<Role> GetRoleByArn(const std::string& arn);
  Result<std::vector<Role>> ListRoles(const std::string& path_prefix);
  Status UpdateRole(const std::string& name, const std::optional<std::string>& description,
                    std::optional<int64_t> max_session_duration);
  Status UpdateAssumeRolePolicy(const std::string& name, const std::string& document);
  // DeleteConflict while policies are attached or inline.
  Status DeleteRole(const std::string& name);

  // Managed policies. Documents are validated; at most 5 versions per policy.
  Result<ManagedPolicy> CreatePolicy(const std::string& name, const std::string& path,
                                     const std::string& document, const std::string& description,
                                     const std::vector<Tag>& tags);
  Result<ManagedPolicy> GetPolicy(const std::string& arn);
  Result<std::vector<ManagedPolicy>> ListPolicies(PolicyScope scope, bool only_attached,
                                                  const std::string& path_prefix);
  // DeleteConflict while attached or while it has non-default versions.
  Status DeletePolicy(const std::string& arn);
  Result<PolicyVersion> CreatePolicyVersion(const std::string& arn, const std::string& document,
                                            bool set_as_default);
  Result<PolicyVersion> GetPolicyVersion(const std::string& arn, const std::string& version_id);
  Result<std::vector<PolicyVersion>> ListPolicyVersions(const std::string& arn);
  // DeleteConflict for the default version.
  Status DeletePolicyVersion(const std::string& arn, const std::string& version_id);
  Status SetDefaultPolicyVersion(const std::string& arn, const std::string& version_id);

  // Attachments of managed policies to users and roles (at most 10 each).
  Status AttachPolicy(EntityKind kind, const std::string& name, const std::string& policy_arn);
  Status DetachPolicy(EntityKind kind, const std::string& name, const std::string& policy_arn);
  Result<std::vector<AttachedPolicy>> ListAttachedPolicies(EntityKind kind, const std::string& name,
                                                           const std::string& path_prefix);
  Result<std::vector<PolicyEntity>> ListEntitiesForPolicy(const std::string& policy_arn);

  // Inline policies.
  Status PutInlinePolicy(EntityKind kind, const std::string& name, const std::string& policy_name,
                         const std::string& document);
  Result<std::string> GetInlinePolicy(EntityKind kind, const std::string& name,
                                      const std::string& policy_name);
  Result<std::vector<std::string>> ListInlinePolicies(EntityKind kind, const std::string& name);
  Status DeleteInlinePolicy(EntityKind kind, const std::string& name,
                            const std::string& policy_name);

  // GetAccountSummary's SummaryMap.
  Result<std::map<std::string, int64_t>> AccountSummary();

  // STS. AssumeRole: the role must exist and its trust policy allow the caller
  // (AccessDenied otherwise); duration_seconds must lie in 900..MaxSessionDuration
  // (ValidationError). GetSessionToken: temporary keys acting as the caller (a user or root).
  Result<SessionCredentials> AssumeRole(const aws::Principal& caller, const std::string& role_arn,
                                        const std::string& session_name, int64_t duration_seconds);
  Result<SessionCredentials> GetSessionToken(const aws::Principal& caller,
                                             int64_t duration_seconds);

  // aws::CredentialStore: root keys, active user keys, unexpired session keys. Unknown and
  // inactive keys are kNotFound; expired sessions kExpiredToken.
  Result<aws::Credential> Lookup(std::string_view access_key_id) override;
  // aws::Authorizer: root may do anything, sts:GetCallerIdentity is always allowed;
  // others need an identity policy that allows and none that denies. sts:AssumeRole is
  // also allowed when the role's trust policy names the caller's own ARN.
  Status Authorize(const aws::Principal& principal, std::string_view action,
                   std::string_view resource) override;

 private:
  IamStore(store::Database& db, IamOptions options) : db_(db), options_(std::move(options)) {}

  Result<int64_t> FindEntityRow(store::Session& s, EntityKind kind, const std::string& name,
                                std::string* id = nullptr);
  Result<std::vector<PolicyDocument>> EffectivePolicies(EntityKind kind, const std::string& name);
  Result<SessionCredentials> IssueSession(const aws::Principal& principal,
                                          int64_t duration_seconds);

  store::Database& db_;
  const IamOptions options_;
  mutable std::mutex root_mu_;
  std::string root_key_id_;  // guarded by root_mu_
  std::string root_secret_;  // guarded by root_mu_
};

}  // namespace nimbus::iam
