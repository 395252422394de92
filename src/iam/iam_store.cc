#include "iam/iam_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/crypto.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/strings.h"
#include "iam/internal/aws_managed_policies.h"

namespace nimbus::iam {
namespace {

using store::Params;
using store::Row;
using store::Rows;
using store::Session;

constexpr int kMaxAccessKeysPerUser = 2;
constexpr int kMaxPolicyVersions = 5;
constexpr int kMaxAttachedPolicies = 10;
constexpr size_t kMaxTagsPerEntity = 50;
constexpr size_t kManagedPolicySizeQuota = 6144;
constexpr size_t kUserPolicySizeQuota = 2048;
constexpr size_t kRolePolicySizeQuota = 10240;
constexpr size_t kTrustPolicySizeQuota = 2048;
constexpr int64_t kMinSessionSeconds = 900;

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE iam_root_keys (
  access_key_id TEXT PRIMARY KEY,
  secret TEXT NOT NULL,
  create_date REAL NOT NULL);
CREATE TABLE iam_users (
  id INTEGER PRIMARY KEY,
  user_id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL UNIQUE COLLATE NOCASE,
  path TEXT NOT NULL,
  create_date REAL NOT NULL);
CREATE TABLE iam_roles (
  id INTEGER PRIMARY KEY,
  role_id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL UNIQUE COLLATE NOCASE,
  path TEXT NOT NULL,
  create_date REAL NOT NULL,
  trust_policy TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  max_session_duration INTEGER NOT NULL);
CREATE TABLE iam_access_keys (
  access_key_id TEXT PRIMARY KEY,
  user_row INTEGER NOT NULL REFERENCES iam_users(id),
  secret TEXT NOT NULL,
  status TEXT NOT NULL,
  create_date REAL NOT NULL,
  last_used_date REAL,
  last_used_service TEXT,
  last_used_region TEXT);
CREATE INDEX iam_access_keys_by_user ON iam_access_keys(user_row);
CREATE TABLE iam_policies (
  id INTEGER PRIMARY KEY,
  policy_id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL UNIQUE COLLATE NOCASE,
  path TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  default_version TEXT NOT NULL,
  next_version INTEGER NOT NULL,
  create_date REAL NOT NULL,
  update_date REAL NOT NULL);
CREATE TABLE iam_policy_versions (
  policy_row INTEGER NOT NULL REFERENCES iam_policies(id) ON DELETE CASCADE,
  version_id TEXT NOT NULL,
  document TEXT NOT NULL,
  create_date REAL NOT NULL,
  PRIMARY KEY (policy_row, version_id));
CREATE TABLE iam_tags (
  entity TEXT NOT NULL,
  entity_row INTEGER NOT NULL,
  key TEXT NOT NULL COLLATE NOCASE,
  value TEXT NOT NULL,
  PRIMARY KEY (entity, entity_row, key));
CREATE TABLE iam_attachments (
  entity TEXT NOT NULL,
  entity_row INTEGER NOT NULL,
  policy_arn TEXT NOT NULL,
  PRIMARY KEY (entity, entity_row, policy_arn));
CREATE INDEX iam_attachments_by_policy ON iam_attachments(policy_arn);
CREATE TABLE iam_inline_policies (
  entity TEXT NOT NULL,
  entity_row INTEGER NOT NULL,
  name TEXT NOT NULL,
  document TEXT NOT NULL,
  PRIMARY KEY (entity, entity_row, name));
CREATE TABLE iam_sessions (
  access_key_id TEXT PRIMARY KEY,
  secret TEXT NOT NULL,
  session_token TEXT NOT NULL,
  expiration REAL NOT NULL,
  principal TEXT NOT NULL);
CREATE INDEX iam_sessions_by_expiration ON iam_sessions(expiration);
)sql";

Status NoSuchEntity(std::string msg) {
  return Status::Aws("NoSuchEntity", 404, std::move(msg), ErrorKind::kNotFound);
}
Status AlreadyExists(std::string msg) {
  return Status::Aws("EntityAlreadyExists", 409, std::move(msg), ErrorKind::kConflict);
}
Status DeleteConflict(std::string msg) {
  return Status::Aws("DeleteConflict", 409, std::move(msg), ErrorKind::kConflict);
}
Status LimitExceeded(std::string msg) {
  return Status::Aws("LimitExceeded", 409, std::move(msg), ErrorKind::kConflict);
}
Status InvalidInput(std::string msg) { return Status::Aws("InvalidInput", 400, std::move(msg)); }
Status StsValidation(std::string msg) {
  return Status::Aws("ValidationError", 400, std::move(msg));
}
Status AccessDenied(std::string msg) { return Status(ErrorKind::kAccessDenied, std::move(msg)); }

const char* EntityTag(EntityKind kind) { return kind == EntityKind::kUser ? "user" : "role"; }
const char* EntityTable(EntityKind kind) {
  return kind == EntityKind::kUser ? "iam_users" : "iam_roles";
}

Status NoSuchNamed(EntityKind kind, const std::string& name) {
  return NoSuchEntity(std::string("The ") + EntityTag(kind) + " with name " + name +
                      " cannot be found.");
}

std::string NewId(std::string_view prefix) {
  return std::string(prefix) + RandomString(16, kUpperAlnum);
}
std::string NewSecret() {
  return RandomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
}

// The name at the end of an IAM ARN's resource part: ".../role/a/b/Name" -> "Name".
std::string LastSegment(std::string_view arn) {
  size_t slash = arn.rfind('/');
  return std::string(slash == std::string_view::npos ? arn : arn.substr(slash + 1));
}

Status CheckPolicySize(const std::string& document, size_t quota, std::string_view quota_name) {
  if (PolicySize(document) > quota) {
    return LimitExceeded("Cannot exceed quota for " + std::string(quota_name) + ": " +
                         std::to_string(quota));
  }
  return Status::Ok();
}

Result<std::vector<Tag>> LoadTags(Session& s, EntityKind kind, int64_t row) {
  NIMBUS_ASSIGN_OR_RETURN(Rows rows, s.Query("SELECT key, value FROM iam_tags WHERE entity = ? "
                                             "AND entity_row = ? ORDER BY key",
                                             {EntityTag(kind), row}));
  std::vector<Tag> tags;
  for (Row& r : rows) tags.push_back(Tag{r["key"].AsString(), r["value"].AsString()});
  return tags;
}

Status SaveTags(Session& s, EntityKind kind, int64_t row, const std::vector<Tag>& tags) {
  for (const Tag& t : tags) {
    NIMBUS_RETURN_IF_ERROR(
        s.Exec("INSERT INTO iam_tags (entity, entity_row, key, value) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (entity, entity_row, key) DO UPDATE SET value = excluded.value",
               {EntityTag(kind), row, t.key, t.value}));
  }
  NIMBUS_ASSIGN_OR_RETURN(
      Rows count, s.Query("SELECT COUNT(*) AS n FROM iam_tags WHERE entity = ? AND entity_row = ?",
                          {EntityTag(kind), row}));
  if (static_cast<size_t>(count[0]["n"].AsInt()) > kMaxTagsPerEntity) {
    return LimitExceeded("The number of tags has reached the maximum limit.");
  }
  return Status::Ok();
}

Status DeleteEntityChildren(Session& s, EntityKind kind, int64_t row) {
  return s.Exec("DELETE FROM iam_tags WHERE entity = ? AND entity_row = ?", {EntityTag(kind), row})
      .status();
}

Value PrincipalToValue(const aws::Principal& p) {
  static const char* kTypes[] = {"anonymous", "root", "user", "assumed-role"};
  return Value::Object({{"type", kTypes[static_cast<int>(p.type)]},
                        {"arn", p.arn},
                        {"account_id", p.account_id},
                        {"user_id", p.user_id},
                        {"name", p.name},
                        {"role_arn", p.role_arn},
                        {"session_name", p.session_name}});
}

aws::Principal PrincipalFromValue(const Value& v) {
  aws::Principal p;
  const std::string type = v.GetString("type");
  p.type = type == "root"           ? aws::Principal::Type::kRoot
           : type == "user"         ? aws::Principal::Type::kUser
           : type == "assumed-role" ? aws::Principal::Type::kAssumedRole
                                    : aws::Principal::Type::kAnonymous;
  p.arn = v.GetString("arn");
  p.account_id = v.GetString("account_id");
  p.user_id = v.GetString("user_id");
  p.name = v.GetString("name");
  p.role_arn = v.GetString("role_arn");
  p.session_name = v.GetString("session_name");
  return p;
}

// Writes the shared-credentials file atomically with mode 0600.
Status WriteCredentialsFile(const std::string& path, const std::string& key_id,
                            const std::string& secret) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Internal("cannot write " + tmp + ": " + std::strerror(errno));
  const std::string text =
      "[default]\naws_access_key_id = " + key_id + "\naws_secret_access_key = " + secret + "\n";
  bool ok = ::fchmod(fd, 0600) == 0 &&
            ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::Internal("cannot write " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

User RowToUser(Row& r, const IamStore& store) {
  return User{
      r["name"].AsString(),        r["path"].AsString(),
      r["user_id"].AsString(),     store.UserArn(r["path"].AsString(), r["name"].AsString()),
      r["create_date"].AsDouble(), {}};
}

Role RowToRole(Row& r, const IamStore& store) {
  return Role{r["name"].AsString(),
              r["path"].AsString(),
              r["role_id"].AsString(),
              store.RoleArn(r["path"].AsString(), r["name"].AsString()),
              r["create_date"].AsDouble(),
              r["trust_policy"].AsString(),
              r["description"].AsString(),
              r["max_session_duration"].AsInt(),
              {}};
}

AccessKey RowToKey(Row& r) {
  return AccessKey{r["access_key_id"].AsString(),     r["secret"].AsString(),
                   r["user_name"].AsString(),         r["status"].AsString(),
                   r["create_date"].AsDouble(),       r["last_used_date"].AsDouble(),
                   r["last_used_service"].AsString(), r["last_used_region"].AsString()};
}

ManagedPolicy FromAws(const internal::AwsManagedPolicy& p, int64_t attachments) {
  return ManagedPolicy{p.name,
                       "/",
                       p.policy_id,
                       p.arn,
                       "v1",
                       p.description,
                       p.create_date,
                       p.update_date,
                       attachments,
                       /*aws_managed=*/true,
                       {}};
}

}  // namespace

Result<std::unique_ptr<IamStore>> IamStore::Open(store::Database& db, IamOptions options) {
  db.RegisterMigration("iam", 1, kSchemaV1);
  NIMBUS_RETURN_IF_ERROR(db.Migrate());
  return std::unique_ptr<IamStore>(new IamStore(db, std::move(options)));
}

std::string IamStore::UserArn(std::string_view path, std::string_view name) const {
  return "arn:aws:iam::" + account_id() + ":user" + std::string(path) + std::string(name);
}
std::string IamStore::RoleArn(std::string_view path, std::string_view name) const {
  return "arn:aws:iam::" + account_id() + ":role" + std::string(path) + std::string(name);
}
std::string IamStore::PolicyArn(std::string_view path, std::string_view name) const {
  return "arn:aws:iam::" + account_id() + ":policy" + std::string(path) + std::string(name);
}

aws::Principal IamStore::RootPrincipal() const {
  aws::Principal p;
  p.type = aws::Principal::Type::kRoot;
  p.arn = "arn:aws:iam::" + account_id() + ":root";
  p.account_id = account_id();
  p.user_id = account_id();
  p.access_key_id = root_access_key_id();
  return p;
}

// --- Root credentials ---------------------------------------------------------------------

Status IamStore::BootstrapRoot(const std::string& data_dir) {
  const char* env_id = std::getenv("NIMBUS_ROOT_ACCESS_KEY_ID");
  const char* env_secret = std::getenv("NIMBUS_ROOT_SECRET_ACCESS_KEY");
  if (env_id && env_secret && *env_id && *env_secret) {
    std::lock_guard<std::mutex> lock(root_mu_);
    root_key_id_ = env_id;
    root_secret_ = env_secret;
    return Status::Ok();
  }
  std::string key_id, secret;
  NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(Rows rows, s.Query("SELECT access_key_id, secret FROM iam_root_keys "
                                               "ORDER BY create_date LIMIT 1"));
    if (!rows.empty()) {
      key_id = rows[0]["access_key_id"].AsString();
      secret = rows[0]["secret"].AsString();
      return Status::Ok();
    }
    key_id = NewId("AKIA");
    secret = NewSecret();
    return s
        .Exec("INSERT INTO iam_root_keys (access_key_id, secret, create_date) VALUES (?, ?, ?)",
              {key_id, secret, clock().Now()})
        .status();
  }));
  {
    std::lock_guard<std::mutex> lock(root_mu_);
    root_key_id_ = key_id;
    root_secret_ = secret;
  }
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  const std::string path = (std::filesystem::path(data_dir) / "credentials").string();
  if (std::filesystem::exists(path, ec)) return Status::Ok();
  return WriteCredentialsFile(path, key_id, secret);
}

std::string IamStore::root_access_key_id() const {
  std::lock_guard<std::mutex> lock(root_mu_);
  return root_key_id_;
}

std::string IamStore::root_secret_access_key() const {
  std::lock_guard<std::mutex> lock(root_mu_);
  return root_secret_;
}

// --- Users ----------------------------------------------------------------------------------

Result<int64_t> IamStore::FindEntityRow(Session& s, EntityKind kind, const std::string& name,
                                        std::string* id) {
  NIMBUS_ASSIGN_OR_RETURN(
      Rows rows,
      s.Query(std::string("SELECT id, ") + (kind == EntityKind::kUser ? "user_id" : "role_id") +
                  " AS entity_id FROM " + EntityTable(kind) + " WHERE name = ?",
              {name}));
  if (rows.empty()) return NoSuchNamed(kind, name);
  if (id) *id = rows[0]["entity_id"].AsString();
  return rows[0]["id"].AsInt();
}

Result<User> IamStore::CreateUser(const std::string& name, const std::string& path,
                                  const std::vector<Tag>& tags) {
  User user{name, path, NewId("AIDA"), UserArn(path, name), clock().Now(), tags};
  NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(Rows existing,
                            s.Query("SELECT 1 FROM iam_users WHERE name = ?", {name}));
    if (!existing.empty()) return AlreadyExists("User with name " + name + " already exists.");
    NIMBUS_RETURN_IF_ERROR(
        s.Exec("INSERT INTO iam_users (user_id, name, path, create_date) VALUES (?, ?, ?, ?)",
               {user.user_id, name, path, user.create_date}));
    NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(s, EntityKind::kUser, name));
    return SaveTags(s, EntityKind::kUser, row, tags);
  }));
  return user;
}

Result<User> IamStore::GetUser(const std::string& name) {
  NIMBUS_ASSIGN_OR_RETURN(Rows rows, db_.Query("SELECT * FROM iam_users WHERE name = ?", {name}));
  if (rows.empty()) return NoSuchNamed(EntityKind::kUser, name);
  User user = RowToUser(rows[0], *this);
  NIMBUS_ASSIGN_OR_RETURN(user.tags, LoadTags(db_, EntityKind::kUser, rows[0]["id"].AsInt()));
  return user;
}

Result<std::vector<User>> IamStore::ListUsers(const std::string& path_prefix) {
  NIMBUS_ASSIGN_OR_RETURN(Rows rows,
                          db_.Query("SELECT * FROM iam_users WHERE substr(path, 1, length(?)) = ? "
                                    "ORDER BY name COLLATE NOCASE",
                                    {path_prefix, path_prefix}));
  std::vector<User> users;
  for (Row& r : rows) users.push_back(RowToUser(r, *this));
  return users;
}

Status IamStore::UpdateUser(const std::string& name, const std::optional<std::string>& new_name,
                            const std::optional<std::string>& new_path) {
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(s, EntityKind::kUser, name));
    if (new_name && !EqualsIgnoreCase(*new_name, name)) {
      NIMBUS_ASSIGN_OR_RETURN(Rows existing,
                              s.Query("SELECT 1 FROM iam_users WHERE name = ?", {*new_name}));
      if (!existing.empty()) {
        return AlreadyExists("User with name " + *new_name + " already exists.");
      }
    }
    if (new_name)
      NIMBUS_RETURN_IF_ERROR(
          s.Exec("UPDATE iam_users SET name = ? WHERE id = ?", {*new_name, row}));
    if (new_path)
      NIMBUS_RETURN_IF_ERROR(
          s.Exec("UPDATE iam_users SET path = ? WHERE id = ?", {*new_path, row}));
    return Status::Ok();
  });
}

Status IamStore::DeleteUser(const std::string& name) {
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(s, EntityKind::kUser, name));
    NIMBUS_ASSIGN_OR_RETURN(Rows keys,
                            s.Query("SELECT 1 FROM iam_access_keys WHERE user_row = ?", {row}));
    if (!keys.empty())
      return DeleteConflict("Cannot delete entity, must delete access keys first.");
    NIMBUS_ASSIGN_OR_RETURN(
        Rows attached,
        s.Query("SELECT 1 FROM iam_attachments WHERE entity = 'user' AND entity_row = ?", {row}));
    if (!attached.empty())
      return DeleteConflict("Cannot delete entity, must detach all policies first.");
    NIMBUS_ASSIGN_OR_RETURN(
        Rows inline_policies,
        s.Query("SELECT 1 FROM iam_inline_policies WHERE entity = 'user' AND entity_row = ?",
                {row}));
    if (!inline_policies.empty())
      return DeleteConflict("Cannot delete entity, must delete policies first.");
    NIMBUS_RETURN_IF_ERROR(DeleteEntityChildren(s, EntityKind::kUser, row));
    return s.Exec("DELETE FROM iam_users WHERE id = ?", {row}).status();
  });
}

// --- Tags -----------------------------------------------------------------------------------

Status IamStore::TagEntity(EntityKind kind, const std::string& name, const std::vector<Tag>& tags) {
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(s, kind, name));
    return SaveTags(s, kind, row, tags);
  });
}

Status IamStore::UntagEntity(EntityKind kind, const std::string& name,
                             const std::vector<std::string>& keys) {
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(s, kind, name));
    for (const std::string& key : keys) {
      NIMBUS_RETURN_IF_ERROR(
          s.Exec("DELETE FROM iam_tags WHERE entity = ? AND entity_row = ? AND key = ?",
                 {EntityTag(kind), row, key}));
    }
    return Status::Ok();
  });
}

Result<std::vector<Tag>> IamStore::ListEntityTags(EntityKind kind, const std::string& name) {
  NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(db_, kind, name));
  return LoadTags(db_, kind, row);
}

// --- Access keys ----------------------------------------------------------------------------

Result<AccessKey> IamStore::CreateAccessKey(const std::string& user_name) {
  AccessKey key{NewId("AKIA"), NewSecret(), user_name, "Active", clock().Now(), 0, "", ""};
  NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(Rows user,
                            s.Query("SELECT id, name FROM iam_users WHERE name = ?", {user_name}));
    if (user.empty()) return NoSuchNamed(EntityKind::kUser, user_name);
    key.user_name = user[0]["name"].AsString();
    const int64_t row = user[0]["id"].AsInt();
    NIMBUS_ASSIGN_OR_RETURN(
        Rows count, s.Query("SELECT COUNT(*) AS n FROM iam_access_keys WHERE user_row = ?", {row}));
    if (count[0]["n"].AsInt() >= kMaxAccessKeysPerUser) {
      return LimitExceeded("Cannot exceed quota for AccessKeysPerUser: " +
                           std::to_string(kMaxAccessKeysPerUser));
    }
    return s
        .Exec(
            "INSERT INTO iam_access_keys (access_key_id, user_row, secret, status, create_date) "
            "VALUES (?, ?, ?, ?, ?)",
            {key.access_key_id, row, key.secret_access_key, key.status, key.create_date})
        .status();
  }));
  return key;
}

Result<std::vector<AccessKey>> IamStore::ListAccessKeys(const std::string& user_name) {
  NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(db_, EntityKind::kUser, user_name));
  NIMBUS_ASSIGN_OR_RETURN(
      Rows rows,
      db_.Query("SELECT k.*, u.name AS user_name FROM iam_access_keys k JOIN iam_users u "
                "ON u.id = k.user_row WHERE k.user_row = ? ORDER BY k.create_date",
                {row}));
  std::vector<AccessKey> keys;
  for (Row& r : rows) keys.push_back(RowToKey(r));
  return keys;
}

Status IamStore::UpdateAccessKey(const std::string& user_name, const std::string& access_key_id,
                                 const std::string& status) {
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(s, EntityKind::kUser, user_name));
    NIMBUS_ASSIGN_OR_RETURN(
        int64_t changed,
        s.Exec("UPDATE iam_access_keys SET status = ? WHERE access_key_id = ? AND user_row = ?",
               {status, access_key_id, row}));
    if (changed == 0) {
      return NoSuchEntity("The Access Key with id " + access_key_id + " cannot be found.");
    }
    return Status::Ok();
  });
}

Status IamStore::DeleteAccessKey(const std::string& user_name, const std::string& access_key_id) {
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(s, EntityKind::kUser, user_name));
    NIMBUS_ASSIGN_OR_RETURN(
        int64_t changed,
        s.Exec("DELETE FROM iam_access_keys WHERE access_key_id = ? AND user_row = ?",
               {access_key_id, row}));
    if (changed == 0) {
      return NoSuchEntity("The Access Key with id " + access_key_id + " cannot be found.");
    }
    return Status::Ok();
  });
}

Result<AccessKey> IamStore::GetAccessKey(const std::string& access_key_id) {
  NIMBUS_ASSIGN_OR_RETURN(
      Rows rows,
      db_.Query("SELECT k.*, u.name AS user_name FROM iam_access_keys k JOIN iam_users u "
                "ON u.id = k.user_row WHERE k.access_key_id = ?",
                {access_key_id}));
  if (rows.empty()) {
    return NoSuchEntity("The Access Key with id " + access_key_id + " cannot be found.");
  }
  return RowToKey(rows[0]);
}

Status IamStore::RecordAccessKeyUse(const std::string& access_key_id, const std::string& service,
                                    const std::string& region) {
  return db_
      .Exec(
          "UPDATE iam_access_keys SET last_used_date = ?, last_used_service = ?, "
          "last_used_region = ? WHERE access_key_id = ?",
          {clock().Now(), service, region, access_key_id})
      .status();
}

// --- Roles ----------------------------------------------------------------------------------

Result<Role> IamStore::CreateRole(const std::string& name, const std::string& path,
                                  const std::string& assume_role_policy,
                                  const std::string& description, int64_t max_session_duration,
                                  const std::vector<Tag>& tags) {
  NIMBUS_RETURN_IF_ERROR(ParsePolicy(assume_role_policy, PolicyKind::kTrust));
  NIMBUS_RETURN_IF_ERROR(
      CheckPolicySize(assume_role_policy, kTrustPolicySizeQuota, "ACLSizePerRole"));
  if (max_session_duration == 0) max_session_duration = 3600;
  Role role{name,          path,
            NewId("AROA"), RoleArn(path, name),
            clock().Now(), assume_role_policy,
            description,   max_session_duration,
            tags};
  NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(Rows existing,
                            s.Query("SELECT 1 FROM iam_roles WHERE name = ?", {name}));
    if (!existing.empty()) return AlreadyExists("Role with name " + name + " already exists.");
    NIMBUS_RETURN_IF_ERROR(s.Exec(
        "INSERT INTO iam_roles (role_id, name, path, create_date, trust_policy, description, "
        "max_session_duration) VALUES (?, ?, ?, ?, ?, ?, ?)",
        {role.role_id, name, path, role.create_date, assume_role_policy, description,
         max_session_duration}));
    NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(s, EntityKind::kRole, name));
    return SaveTags(s, EntityKind::kRole, row, tags);
  }));
  return role;
}

Result<Role> IamStore::GetRole(const std::string& name) {
  NIMBUS_ASSIGN_OR_RETURN(Rows rows, db_.Query("SELECT * FROM iam_roles WHERE name = ?", {name}));
  if (rows.empty()) return NoSuchNamed(EntityKind::kRole, name);
  Role role = RowToRole(rows[0], *this);
  NIMBUS_ASSIGN_OR_RETURN(role.tags, LoadTags(db_, EntityKind::kRole, rows[0]["id"].AsInt()));
  return role;
}

Result<Role> IamStore::GetRoleByArn(const std::string& arn) {
  auto role = GetRole(LastSegment(arn));
  if (!role.ok() || role->arn != arn) {
    return NoSuchEntity("The role with ARN " + arn + " cannot be found.");
  }
  return role;
}

Result<std::vector<Role>> IamStore::ListRoles(const std::string& path_prefix) {
  NIMBUS_ASSIGN_OR_RETURN(Rows rows,
                          db_.Query("SELECT * FROM iam_roles WHERE substr(path, 1, length(?)) = ? "
                                    "ORDER BY name COLLATE NOCASE",
                                    {path_prefix, path_prefix}));
  std::vector<Role> roles;
  for (Row& r : rows) roles.push_back(RowToRole(r, *this));
  return roles;
}

Status IamStore::UpdateRole(const std::string& name, const std::optional<std::string>& description,
                            std::optional<int64_t> max_session_duration) {
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(s, EntityKind::kRole, name));
    if (description) {
      NIMBUS_RETURN_IF_ERROR(
          s.Exec("UPDATE iam_roles SET description = ? WHERE id = ?", {*description, row}));
    }
    if (max_session_duration) {
      NIMBUS_RETURN_IF_ERROR(s.Exec("UPDATE iam_roles SET max_session_duration = ? WHERE id = ?",
                                    {*max_session_duration, row}));
    }
    return Status::Ok();
  });
}

Status IamStore::UpdateAssumeRolePolicy(const std::string& name, const std::string& document) {
  NIMBUS_RETURN_IF_ERROR(ParsePolicy(document, PolicyKind::kTrust));
  NIMBUS_RETURN_IF_ERROR(CheckPolicySize(document, kTrustPolicySizeQuota, "ACLSizePerRole"));
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(s, EntityKind::kRole, name));
    return s.Exec("UPDATE iam_roles SET trust_policy = ? WHERE id = ?", {document, row}).status();
  });
}

Status IamStore::DeleteRole(const std::string& name) {
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(s, EntityKind::kRole, name));
    NIMBUS_ASSIGN_OR_RETURN(
        Rows attached,
        s.Query("SELECT 1 FROM iam_attachments WHERE entity = 'role' AND entity_row = ?", {row}));
    if (!attached.empty())
      return DeleteConflict("Cannot delete entity, must detach all policies first.");
    NIMBUS_ASSIGN_OR_RETURN(
        Rows inline_policies,
        s.Query("SELECT 1 FROM iam_inline_policies WHERE entity = 'role' AND entity_row = ?",
                {row}));
    if (!inline_policies.empty())
      return DeleteConflict("Cannot delete entity, must delete policies first.");
    NIMBUS_RETURN_IF_ERROR(DeleteEntityChildren(s, EntityKind::kRole, row));
    return s.Exec("DELETE FROM iam_roles WHERE id = ?", {row}).status();
  });
}

// --- Managed policies -----------------------------------------------------------------------

namespace {

struct PolicyRow {
  int64_t row;
  ManagedPolicy policy;
};

Result<int64_t> AttachmentCount(Session& s, const std::string& arn) {
  NIMBUS_ASSIGN_OR_RETURN(
      Rows rows, s.Query("SELECT COUNT(*) AS n FROM iam_attachments WHERE policy_arn = ?", {arn}));
  return rows[0]["n"].AsInt();
}

Status PolicyNotFound(const std::string& arn) {
  return NoSuchEntity("Policy " + arn + " was not found.");
}

Status AwsPolicyReadOnly(const std::string& arn) {
  return InvalidInput("Policy " + arn + " is an AWS managed policy and cannot be modified.");
}

// A customer policy by ARN with its row, or NoSuchEntity.
Result<PolicyRow> LoadCustomerPolicy(Session& s, const IamStore& store, const std::string& arn) {
  NIMBUS_ASSIGN_OR_RETURN(Rows rows,
                          s.Query("SELECT * FROM iam_policies WHERE name = ?", {LastSegment(arn)}));
  if (rows.empty()) return PolicyNotFound(arn);
  Row& r = rows[0];
  ManagedPolicy p{r["name"].AsString(),
                  r["path"].AsString(),
                  r["policy_id"].AsString(),
                  store.PolicyArn(r["path"].AsString(), r["name"].AsString()),
                  r["default_version"].AsString(),
                  r["description"].AsString(),
                  r["create_date"].AsDouble(),
                  r["update_date"].AsDouble(),
                  0,
                  false,
                  {}};
  if (p.arn != arn) return PolicyNotFound(arn);
  NIMBUS_ASSIGN_OR_RETURN(p.attachment_count, AttachmentCount(s, arn));
  return PolicyRow{r["id"].AsInt(), std::move(p)};
}

}  // namespace

Result<ManagedPolicy> IamStore::CreatePolicy(const std::string& name, const std::string& path,
                                             const std::string& document,
                                             const std::string& description,
                                             const std::vector<Tag>& tags) {
  NIMBUS_RETURN_IF_ERROR(ParsePolicy(document, PolicyKind::kIdentity));
  NIMBUS_RETURN_IF_ERROR(CheckPolicySize(document, kManagedPolicySizeQuota, "PolicySize"));
  const double now = clock().Now();
  ManagedPolicy policy{name, path,        NewId("ANPA"), PolicyArn(path, name),
                       "v1", description, now,           now,
                       0,    false,       tags};
  NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(Rows existing,
                            s.Query("SELECT 1 FROM iam_policies WHERE name = ?", {name}));
    if (!existing.empty()) {
      return AlreadyExists("A policy called " + name +
                           " already exists. Duplicate names are not allowed.");
    }
    NIMBUS_RETURN_IF_ERROR(
        s.Exec("INSERT INTO iam_policies (policy_id, name, path, description, default_version, "
               "next_version, create_date, update_date) VALUES (?, ?, ?, ?, 'v1', 2, ?, ?)",
               {policy.policy_id, name, path, description, now, now}));
    NIMBUS_ASSIGN_OR_RETURN(PolicyRow row, LoadCustomerPolicy(s, *this, policy.arn));
    NIMBUS_RETURN_IF_ERROR(
        s.Exec("INSERT INTO iam_policy_versions (policy_row, version_id, document, create_date) "
               "VALUES (?, 'v1', ?, ?)",
               {row.row, document, now}));
    for (const Tag& t : tags) {
      NIMBUS_RETURN_IF_ERROR(
          s.Exec("INSERT INTO iam_tags (entity, entity_row, key, value) VALUES ('policy', ?, ?, ?) "
                 "ON CONFLICT (entity, entity_row, key) DO UPDATE SET value = excluded.value",
                 {row.row, t.key, t.value}));
    }
    return Status::Ok();
  }));
  return policy;
}

Result<ManagedPolicy> IamStore::GetPolicy(const std::string& arn) {
  if (const auto* aws = internal::FindAwsManagedPolicy(arn)) {
    NIMBUS_ASSIGN_OR_RETURN(int64_t count, AttachmentCount(db_, arn));
    return FromAws(*aws, count);
  }
  NIMBUS_ASSIGN_OR_RETURN(PolicyRow row, LoadCustomerPolicy(db_, *this, arn));
  NIMBUS_ASSIGN_OR_RETURN(Rows tags,
                          db_.Query("SELECT key, value FROM iam_tags WHERE entity = 'policy' AND "
                                    "entity_row = ? ORDER BY key",
                                    {row.row}));
  for (Row& t : tags) row.policy.tags.push_back(Tag{t["key"].AsString(), t["value"].AsString()});
  return row.policy;
}

Result<std::vector<ManagedPolicy>> IamStore::ListPolicies(PolicyScope scope, bool only_attached,
                                                          const std::string& path_prefix) {
  NIMBUS_ASSIGN_OR_RETURN(
      Rows counts,
      db_.Query("SELECT policy_arn, COUNT(*) AS n FROM iam_attachments GROUP BY policy_arn"));
  std::map<std::string, int64_t> attached;
  for (Row& r : counts) attached[r["policy_arn"].AsString()] = r["n"].AsInt();
  auto count_of = [&](const std::string& arn) {
    auto it = attached.find(arn);
    return it == attached.end() ? int64_t{0} : it->second;
  };
  std::vector<ManagedPolicy> out;
  if (scope != PolicyScope::kLocal) {
    for (const auto& aws : internal::AwsManagedPolicies()) {
      ManagedPolicy p = FromAws(aws, count_of(aws.arn));
      if (StartsWith(p.path, path_prefix)) out.push_back(std::move(p));
    }
  }
  if (scope != PolicyScope::kAws) {
    NIMBUS_ASSIGN_OR_RETURN(
        Rows rows, db_.Query("SELECT * FROM iam_policies WHERE substr(path, 1, length(?)) = ? "
                             "ORDER BY name COLLATE NOCASE",
                             {path_prefix, path_prefix}));
    for (Row& r : rows) {
      std::string arn = PolicyArn(r["path"].AsString(), r["name"].AsString());
      out.push_back(ManagedPolicy{r["name"].AsString(),
                                  r["path"].AsString(),
                                  r["policy_id"].AsString(),
                                  arn,
                                  r["default_version"].AsString(),
                                  r["description"].AsString(),
                                  r["create_date"].AsDouble(),
                                  r["update_date"].AsDouble(),
                                  count_of(arn),
                                  false,
                                  {}});
    }
  }
  if (only_attached) {
    std::erase_if(out, [](const ManagedPolicy& p) { return p.attachment_count == 0; });
  }
  return out;
}

Status IamStore::DeletePolicy(const std::string& arn) {
  if (internal::FindAwsManagedPolicy(arn)) return AwsPolicyReadOnly(arn);
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(PolicyRow row, LoadCustomerPolicy(s, *this, arn));
    if (row.policy.attachment_count > 0) {
      return DeleteConflict("Cannot delete a policy attached to entities.");
    }
    NIMBUS_ASSIGN_OR_RETURN(
        Rows versions,
        s.Query("SELECT COUNT(*) AS n FROM iam_policy_versions WHERE policy_row = ?", {row.row}));
    if (versions[0]["n"].AsInt() > 1) {
      return DeleteConflict(
          "This policy has more than one version. Before you delete a policy, you must delete "
          "the policy's versions. The default version is deleted with the policy.");
    }
    NIMBUS_RETURN_IF_ERROR(
        s.Exec("DELETE FROM iam_tags WHERE entity = 'policy' AND entity_row = ?", {row.row}));
    return s.Exec("DELETE FROM iam_policies WHERE id = ?", {row.row}).status();
  });
}

Result<PolicyVersion> IamStore::CreatePolicyVersion(const std::string& arn,
                                                    const std::string& document,
                                                    bool set_as_default) {
  if (internal::FindAwsManagedPolicy(arn)) return AwsPolicyReadOnly(arn);
  NIMBUS_RETURN_IF_ERROR(ParsePolicy(document, PolicyKind::kIdentity));
  NIMBUS_RETURN_IF_ERROR(CheckPolicySize(document, kManagedPolicySizeQuota, "PolicySize"));
  PolicyVersion version{"", document, set_as_default, clock().Now()};
  NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(PolicyRow row, LoadCustomerPolicy(s, *this, arn));
    NIMBUS_ASSIGN_OR_RETURN(
        Rows versions,
        s.Query("SELECT COUNT(*) AS n FROM iam_policy_versions WHERE policy_row = ?", {row.row}));
    if (versions[0]["n"].AsInt() >= kMaxPolicyVersions) {
      return LimitExceeded(
          "A managed policy can have up to 5 versions. Before you create a new version, you must "
          "delete an existing version.");
    }
    NIMBUS_ASSIGN_OR_RETURN(
        Rows next, s.Query("SELECT next_version FROM iam_policies WHERE id = ?", {row.row}));
    version.version_id = "v" + std::to_string(next[0]["next_version"].AsInt());
    NIMBUS_RETURN_IF_ERROR(
        s.Exec("INSERT INTO iam_policy_versions (policy_row, version_id, document, create_date) "
               "VALUES (?, ?, ?, ?)",
               {row.row, version.version_id, document, version.create_date}));
    return s
        .Exec(
            "UPDATE iam_policies SET next_version = next_version + 1, update_date = ?, "
            "default_version = CASE WHEN ? THEN ? ELSE default_version END WHERE id = ?",
            {version.create_date, set_as_default, version.version_id, row.row})
        .status();
  }));
  return version;
}

Result<PolicyVersion> IamStore::GetPolicyVersion(const std::string& arn,
                                                 const std::string& version_id) {
  if (const auto* aws = internal::FindAwsManagedPolicy(arn)) {
    if (version_id != "v1") {
      return NoSuchEntity("Policy " + arn + " version " + version_id +
                          " does not exist or is not attachable.");
    }
    return PolicyVersion{"v1", aws->document, true, aws->create_date};
  }
  NIMBUS_ASSIGN_OR_RETURN(std::vector<PolicyVersion> versions, ListPolicyVersions(arn));
  for (PolicyVersion& v : versions) {
    if (v.version_id == version_id) return v;
  }
  return NoSuchEntity("Policy " + arn + " version " + version_id +
                      " does not exist or is not attachable.");
}

Result<std::vector<PolicyVersion>> IamStore::ListPolicyVersions(const std::string& arn) {
  if (const auto* aws = internal::FindAwsManagedPolicy(arn)) {
    return std::vector<PolicyVersion>{PolicyVersion{"v1", aws->document, true, aws->create_date}};
  }
  std::vector<PolicyVersion> out;
  // Reads only: no transaction, so that they never wait on the writer.
  auto collect = [&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(PolicyRow row, LoadCustomerPolicy(s, *this, arn));
    NIMBUS_ASSIGN_OR_RETURN(Rows rows,
                            s.Query("SELECT * FROM iam_policy_versions WHERE policy_row = ? "
                                    "ORDER BY CAST(substr(version_id, 2) AS INTEGER) DESC",
                                    {row.row}));
    for (Row& r : rows) {
      out.push_back(PolicyVersion{r["version_id"].AsString(), r["document"].AsString(),
                                  r["version_id"].AsString() == row.policy.default_version_id,
                                  r["create_date"].AsDouble()});
    }
    return Status::Ok();
  };
  NIMBUS_RETURN_IF_ERROR(collect(db_));
  return out;
}

Status IamStore::DeletePolicyVersion(const std::string& arn, const std::string& version_id) {
  if (internal::FindAwsManagedPolicy(arn)) return AwsPolicyReadOnly(arn);
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(PolicyRow row, LoadCustomerPolicy(s, *this, arn));
    if (row.policy.default_version_id == version_id) {
      return DeleteConflict("Cannot delete the default version of a policy.");
    }
    NIMBUS_ASSIGN_OR_RETURN(
        int64_t changed,
        s.Exec("DELETE FROM iam_policy_versions WHERE policy_row = ? AND version_id = ?",
               {row.row, version_id}));
    if (changed == 0) {
      return NoSuchEntity("Policy " + arn + " version " + version_id + " does not exist.");
    }
    return Status::Ok();
  });
}

Status IamStore::SetDefaultPolicyVersion(const std::string& arn, const std::string& version_id) {
  if (internal::FindAwsManagedPolicy(arn)) return AwsPolicyReadOnly(arn);
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(PolicyRow row, LoadCustomerPolicy(s, *this, arn));
    NIMBUS_ASSIGN_OR_RETURN(
        Rows exists,
        s.Query("SELECT 1 FROM iam_policy_versions WHERE policy_row = ? AND version_id = ?",
                {row.row, version_id}));
    if (exists.empty()) {
      return NoSuchEntity("Policy " + arn + " version " + version_id + " does not exist.");
    }
    return s
        .Exec("UPDATE iam_policies SET default_version = ?, update_date = ? WHERE id = ?",
              {version_id, clock().Now(), row.row})
        .status();
  });
}

// --- Attachments and inline policies --------------------------------------------------------

Status IamStore::AttachPolicy(EntityKind kind, const std::string& name,
                              const std::string& policy_arn) {
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(s, kind, name));
    if (!internal::FindAwsManagedPolicy(policy_arn) &&
        !LoadCustomerPolicy(s, *this, policy_arn).ok()) {
      return NoSuchEntity("Policy " + policy_arn + " does not exist or is not attachable.");
    }
    NIMBUS_RETURN_IF_ERROR(s.Exec(
        "INSERT OR IGNORE INTO iam_attachments (entity, entity_row, policy_arn) VALUES (?, ?, ?)",
        {EntityTag(kind), row, policy_arn}));
    NIMBUS_ASSIGN_OR_RETURN(
        Rows count,
        s.Query("SELECT COUNT(*) AS n FROM iam_attachments WHERE entity = ? AND entity_row = ?",
                {EntityTag(kind), row}));
    if (count[0]["n"].AsInt() > kMaxAttachedPolicies) {
      return LimitExceeded(std::string("Cannot exceed quota for ") +
                           (kind == EntityKind::kUser ? "PoliciesPerUser" : "PoliciesPerRole") +
                           ": " + std::to_string(kMaxAttachedPolicies));
    }
    return Status::Ok();
  });
}

Status IamStore::DetachPolicy(EntityKind kind, const std::string& name,
                              const std::string& policy_arn) {
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(s, kind, name));
    NIMBUS_ASSIGN_OR_RETURN(
        int64_t changed,
        s.Exec("DELETE FROM iam_attachments WHERE entity = ? AND entity_row = ? AND policy_arn = ?",
               {EntityTag(kind), row, policy_arn}));
    if (changed == 0) return NoSuchEntity("Policy " + policy_arn + " was not found.");
    return Status::Ok();
  });
}

Result<std::vector<AttachedPolicy>> IamStore::ListAttachedPolicies(EntityKind kind,
                                                                   const std::string& name,
                                                                   const std::string& path_prefix) {
  NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(db_, kind, name));
  NIMBUS_ASSIGN_OR_RETURN(
      Rows rows,
      db_.Query("SELECT policy_arn FROM iam_attachments WHERE entity = ? AND entity_row = ? "
                "ORDER BY policy_arn",
                {EntityTag(kind), row}));
  std::vector<AttachedPolicy> out;
  for (Row& r : rows) {
    const std::string arn = r["policy_arn"].AsString();
    // The path is the ARN's resource part between "policy" and the name.
    size_t start = arn.find(":policy/");
    std::string path =
        start == std::string::npos ? "/" : arn.substr(start + 7, arn.rfind('/') - start - 6);
    if (!StartsWith(path, path_prefix)) continue;
    out.push_back(AttachedPolicy{LastSegment(arn), arn});
  }
  return out;
}

Result<std::vector<PolicyEntity>> IamStore::ListEntitiesForPolicy(const std::string& policy_arn) {
  if (!internal::FindAwsManagedPolicy(policy_arn)) {
    NIMBUS_RETURN_IF_ERROR(LoadCustomerPolicy(db_, *this, policy_arn));
  }
  NIMBUS_ASSIGN_OR_RETURN(
      Rows rows,
      db_.Query(
          "SELECT 'user' AS entity, u.name AS name, u.user_id AS id FROM iam_attachments a "
          "JOIN iam_users u ON a.entity = 'user' AND a.entity_row = u.id WHERE a.policy_arn = ? "
          "UNION ALL "
          "SELECT 'role', r.name, r.role_id FROM iam_attachments a "
          "JOIN iam_roles r ON a.entity = 'role' AND a.entity_row = r.id WHERE a.policy_arn = ? "
          "ORDER BY 1, 2",
          {policy_arn, policy_arn}));
  std::vector<PolicyEntity> out;
  for (Row& r : rows) {
    out.push_back(
        PolicyEntity{r["entity"].AsString() == "user" ? EntityKind::kUser : EntityKind::kRole,
                     r["name"].AsString(), r["id"].AsString()});
  }
  return out;
}

Status IamStore::PutInlinePolicy(EntityKind kind, const std::string& name,
                                 const std::string& policy_name, const std::string& document) {
  NIMBUS_RETURN_IF_ERROR(ParsePolicy(document, PolicyKind::kIdentity));
  NIMBUS_RETURN_IF_ERROR(kind == EntityKind::kUser
                             ? CheckPolicySize(document, kUserPolicySizeQuota, "UserPolicySize")
                             : CheckPolicySize(document, kRolePolicySizeQuota, "RolePolicySize"));
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(s, kind, name));
    return s
        .Exec(
            "INSERT INTO iam_inline_policies (entity, entity_row, name, document) VALUES (?, ?, ?, "
            "?) "
            "ON CONFLICT (entity, entity_row, name) DO UPDATE SET document = excluded.document",
            {EntityTag(kind), row, policy_name, document})
        .status();
  });
}

Result<std::string> IamStore::GetInlinePolicy(EntityKind kind, const std::string& name,
                                              const std::string& policy_name) {
  NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(db_, kind, name));
  NIMBUS_ASSIGN_OR_RETURN(Rows rows,
                          db_.Query("SELECT document FROM iam_inline_policies WHERE entity = ? AND "
                                    "entity_row = ? AND name = ?",
                                    {EntityTag(kind), row, policy_name}));
  if (rows.empty()) {
    return NoSuchEntity(std::string("The ") + EntityTag(kind) + " policy with name " + policy_name +
                        " cannot be found.");
  }
  return rows[0]["document"].AsString();
}

Result<std::vector<std::string>> IamStore::ListInlinePolicies(EntityKind kind,
                                                              const std::string& name) {
  NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(db_, kind, name));
  NIMBUS_ASSIGN_OR_RETURN(
      Rows rows,
      db_.Query("SELECT name FROM iam_inline_policies WHERE entity = ? AND entity_row = ? "
                "ORDER BY name",
                {EntityTag(kind), row}));
  std::vector<std::string> out;
  for (Row& r : rows) out.push_back(r["name"].AsString());
  return out;
}

Status IamStore::DeleteInlinePolicy(EntityKind kind, const std::string& name,
                                    const std::string& policy_name) {
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(int64_t row, FindEntityRow(s, kind, name));
    NIMBUS_ASSIGN_OR_RETURN(
        int64_t changed,
        s.Exec("DELETE FROM iam_inline_policies WHERE entity = ? AND entity_row = ? AND name = ?",
               {EntityTag(kind), row, policy_name}));
    if (changed == 0) {
      return NoSuchEntity(std::string("The ") + EntityTag(kind) + " policy with name " +
                          policy_name + " cannot be found.");
    }
    return Status::Ok();
  });
}

Result<std::map<std::string, int64_t>> IamStore::AccountSummary() {
  NIMBUS_ASSIGN_OR_RETURN(Rows rows,
                          db_.Query("SELECT (SELECT COUNT(*) FROM iam_users) AS users, "
                                    "(SELECT COUNT(*) FROM iam_policies) AS policies, "
                                    "(SELECT COUNT(*) FROM iam_policy_versions) AS versions"));
  Row& r = rows[0];
  return std::map<std::string, int64_t>{
      {"Users", r["users"].AsInt()},
      {"UsersQuota", 5000},
      {"Groups", 0},
      {"GroupsQuota", 300},
      {"GroupsPerUserQuota", 10},
      {"Policies", r["policies"].AsInt()},
      {"PoliciesQuota", 1500},
      {"PolicySizeQuota", static_cast<int64_t>(kManagedPolicySizeQuota)},
      {"PolicyVersionsInUse", r["versions"].AsInt()},
      {"PolicyVersionsInUseQuota", 10000},
      {"VersionsPerPolicyQuota", kMaxPolicyVersions},
      {"UserPolicySizeQuota", static_cast<int64_t>(kUserPolicySizeQuota)},
      {"GroupPolicySizeQuota", 5120},
      {"AccessKeysPerUserQuota", kMaxAccessKeysPerUser},
      {"AttachedPoliciesPerUserQuota", kMaxAttachedPolicies},
      {"AttachedPoliciesPerRoleQuota", kMaxAttachedPolicies},
      {"AttachedPoliciesPerGroupQuota", kMaxAttachedPolicies},
      {"AccountAccessKeysPresent", root_access_key_id().empty() ? 0 : 1},
      {"AccountMFAEnabled", 0},
      {"MFADevices", 0},
      {"MFADevicesInUse", 0},
      {"ServerCertificates", 0},
      {"ServerCertificatesQuota", 20},
      {"SigningCertificatesPerUserQuota", 2},
      {"AccountSigningCertificatesPresent", 0},
      {"GlobalEndpointTokenVersion", 1},
  };
}

// --- STS ------------------------------------------------------------------------------------

Result<SessionCredentials> IamStore::IssueSession(const aws::Principal& principal,
                                                  int64_t duration_seconds) {
  SessionCredentials creds;
  creds.access_key_id = NewId("ASIA");
  creds.secret_access_key = NewSecret();
  creds.session_token = Base64Encode(RandomBytes(120));
  const double now = clock().Now();
  creds.expiration = now + static_cast<double>(duration_seconds);
  creds.principal = principal;
  creds.principal.access_key_id = creds.access_key_id;
  NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_RETURN_IF_ERROR(s.Exec("DELETE FROM iam_sessions WHERE expiration < ?", {now}));
    return s
        .Exec(
            "INSERT INTO iam_sessions (access_key_id, secret, session_token, expiration, "
            "principal) "
            "VALUES (?, ?, ?, ?, ?)",
            {creds.access_key_id, creds.secret_access_key, creds.session_token, creds.expiration,
             ToJson(PrincipalToValue(principal))})
        .status();
  }));
  return creds;
}

namespace {

std::string NotAuthorized(const std::string& who, std::string_view action,
                          std::string_view resource) {
  return "User: " + who + " is not authorized to perform: " + std::string(action) +
         " on resource: " + std::string(resource);
}

// The identifiers a caller matches in a trust policy's "AWS" principal.
std::vector<std::string> TrustIdentifiers(const aws::Principal& caller, bool arns_only) {
  std::vector<std::string> ids = {caller.arn};
  if (!caller.role_arn.empty()) ids.push_back(caller.role_arn);
  if (!arns_only) {
    ids.push_back(caller.account_id);
    ids.push_back("arn:aws:iam::" + caller.account_id + ":root");
  }
  return ids;
}

ConditionContext RequestContextKeys(const aws::Principal& p, double now) {
  ConditionContext ctx = {
      {"aws:userid", {p.user_id}},
      {"aws:PrincipalAccount", {p.account_id}},
      {"aws:CurrentTime", {FormatIso8601(now)}},
      {"aws:EpochTime", {std::to_string(static_cast<int64_t>(now))}},
  };
  switch (p.type) {
    case aws::Principal::Type::kUser:
      ctx["aws:username"] = {p.name};
      ctx["aws:PrincipalArn"] = {p.arn};
      ctx["aws:PrincipalType"] = {"User"};
      break;
    case aws::Principal::Type::kAssumedRole:
      ctx["aws:PrincipalArn"] = {p.role_arn};
      ctx["aws:PrincipalType"] = {"AssumedRole"};
      break;
    case aws::Principal::Type::kRoot:
      ctx["aws:PrincipalArn"] = {p.arn};
      ctx["aws:PrincipalType"] = {"Account"};
      break;
    case aws::Principal::Type::kAnonymous:
      ctx["aws:PrincipalType"] = {"Anonymous"};
      break;
  }
  return ctx;
}

}  // namespace

Result<SessionCredentials> IamStore::AssumeRole(const aws::Principal& caller,
                                                const std::string& role_arn,
                                                const std::string& session_name,
                                                int64_t duration_seconds) {
  const Status denied = AccessDenied(NotAuthorized(caller.arn, "sts:AssumeRole", role_arn));
  auto role = GetRoleByArn(role_arn);
  if (!role.ok()) return denied;
  auto trust = ParsePolicy(role->assume_role_policy, PolicyKind::kTrust);
  if (!trust.ok()) return denied;
  EvalRequest req{"sts:AssumeRole",
                  role->arn,
                  {{"AWS", TrustIdentifiers(caller, false)}},
                  RequestContextKeys(caller, clock().Now())};
  if (Evaluate(*trust, req) != Decision::kAllow) return denied;
  if (duration_seconds == 0) duration_seconds = 3600;
  if (caller.type == aws::Principal::Type::kAssumedRole && duration_seconds > 3600) {
    return StsValidation(
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role "
        "chaining.");
  }
  if (duration_seconds < kMinSessionSeconds || duration_seconds > role->max_session_duration) {
    return StsValidation(
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.");
  }
  aws::Principal session;
  session.type = aws::Principal::Type::kAssumedRole;
  session.arn = "arn:aws:sts::" + account_id() + ":assumed-role/" + role->name + "/" + session_name;
  session.account_id = account_id();
  session.user_id = role->role_id + ":" + session_name;
  session.name = role->name;
  session.role_arn = role->arn;
  session.session_name = session_name;
  return IssueSession(session, duration_seconds);
}

Result<SessionCredentials> IamStore::GetSessionToken(const aws::Principal& caller,
                                                     int64_t duration_seconds) {
  if (caller.type == aws::Principal::Type::kAssumedRole ||
      StartsWith(caller.access_key_id, "ASIA")) {
    return AccessDenied("Cannot call GetSessionToken with session credentials");
  }
  if (caller.type != aws::Principal::Type::kUser && caller.type != aws::Principal::Type::kRoot) {
    return AccessDenied("GetSessionToken requires the long-term credentials of a user");
  }
  if (duration_seconds == 0)
    duration_seconds = caller.type == aws::Principal::Type::kRoot ? 3600 : 43200;
  const int64_t max = caller.type == aws::Principal::Type::kRoot ? 3600 : 129600;
  if (duration_seconds < kMinSessionSeconds || duration_seconds > max) {
    return StsValidation("The requested DurationSeconds must be between " +
                         std::to_string(kMinSessionSeconds) + " and " + std::to_string(max) +
                         " seconds.");
  }
  return IssueSession(caller, duration_seconds);
}

// --- CredentialStore and Authorizer ---------------------------------------------------------

Result<aws::Credential> IamStore::Lookup(std::string_view access_key_id) {
  const std::string id(access_key_id);
  {
    std::lock_guard<std::mutex> lock(root_mu_);
    if (!root_key_id_.empty() && id == root_key_id_) {
      aws::Credential cred;
      cred.secret_access_key = root_secret_;
      cred.principal.type = aws::Principal::Type::kRoot;
      cred.principal.arn = "arn:aws:iam::" + account_id() + ":root";
      cred.principal.account_id = account_id();
      cred.principal.user_id = account_id();
      cred.principal.access_key_id = id;
      return cred;
    }
  }
  const Status unknown = Status::NotFound("The security token included in the request is invalid.");
  if (StartsWith(id, "ASIA")) {
    NIMBUS_ASSIGN_OR_RETURN(Rows rows,
                            db_.Query("SELECT * FROM iam_sessions WHERE access_key_id = ?", {id}));
    if (rows.empty()) return unknown;
    Row& r = rows[0];
    if (r["expiration"].AsDouble() <= clock().Now()) {
      return Status(ErrorKind::kExpiredToken,
                    "The security token included in the request is expired");
    }
    auto principal = ParseJson(r["principal"].AsString());
    if (!principal.ok()) return Status::Internal("corrupt session record for " + id);
    aws::Credential cred;
    cred.secret_access_key = r["secret"].AsString();
    cred.session_token = r["session_token"].AsString();
    cred.expiration = r["expiration"].AsDouble();
    cred.principal = PrincipalFromValue(*principal);
    cred.principal.access_key_id = id;
    return cred;
  }
  NIMBUS_ASSIGN_OR_RETURN(
      Rows rows,
      db_.Query("SELECT k.secret, k.status, u.name, u.path, u.user_id FROM iam_access_keys k "
                "JOIN iam_users u ON u.id = k.user_row WHERE k.access_key_id = ?",
                {id}));
  if (rows.empty() || rows[0]["status"].AsString() != "Active") return unknown;
  Row& r = rows[0];
  aws::Credential cred;
  cred.secret_access_key = r["secret"].AsString();
  cred.principal.type = aws::Principal::Type::kUser;
  cred.principal.name = r["name"].AsString();
  cred.principal.arn = UserArn(r["path"].AsString(), cred.principal.name);
  cred.principal.account_id = account_id();
  cred.principal.user_id = r["user_id"].AsString();
  cred.principal.access_key_id = id;
  return cred;
}

Result<std::vector<PolicyDocument>> IamStore::EffectivePolicies(EntityKind kind,
                                                                const std::string& name) {
  std::vector<std::string> documents;
  // Reads only: no transaction, so that they never wait on the writer.
  auto collect = [&](Session& s) -> Status {
    auto row = FindEntityRow(s, kind, name);
    if (!row.ok()) return Status::Ok();  // a deleted identity has no permissions
    NIMBUS_ASSIGN_OR_RETURN(
        Rows inline_docs,
        s.Query("SELECT document FROM iam_inline_policies WHERE entity = ? AND entity_row = ?",
                {EntityTag(kind), *row}));
    for (Row& r : inline_docs) documents.push_back(r["document"].AsString());
    NIMBUS_ASSIGN_OR_RETURN(
        Rows attached,
        s.Query("SELECT policy_arn FROM iam_attachments WHERE entity = ? AND entity_row = ?",
                {EntityTag(kind), *row}));
    for (Row& r : attached) {
      const std::string arn = r["policy_arn"].AsString();
      if (const auto* aws = internal::FindAwsManagedPolicy(arn)) {
        documents.push_back(aws->document);
        continue;
      }
      NIMBUS_ASSIGN_OR_RETURN(
          Rows doc,
          s.Query("SELECT v.document FROM iam_policies p JOIN iam_policy_versions v "
                  "ON v.policy_row = p.id AND v.version_id = p.default_version WHERE p.name = ?",
                  {LastSegment(arn)}));
      if (!doc.empty()) documents.push_back(doc[0]["document"].AsString());
    }
    return Status::Ok();
  };
  NIMBUS_RETURN_IF_ERROR(collect(db_));
  std::vector<PolicyDocument> policies;
  for (const std::string& d : documents) {
    auto parsed = ParsePolicy(d, PolicyKind::kIdentity);
    if (parsed.ok()) policies.push_back(std::move(parsed).value());
  }
  return policies;
}

Status IamStore::Authorize(const aws::Principal& principal, std::string_view action,
                           std::string_view resource) {
  if (principal.type == aws::Principal::Type::kRoot) return Status::Ok();
  if (EqualsIgnoreCase(action, "sts:GetCallerIdentity")) return Status::Ok();
  const std::string who = principal.arn.empty() ? "anonymous" : principal.arn;
  if (principal.type == aws::Principal::Type::kAnonymous) {
    return AccessDenied(NotAuthorized(who, action, resource) +
                        " because no identity-based policy allows the " + std::string(action) +
                        " action");
  }
  const bool is_user = principal.type == aws::Principal::Type::kUser;
  NIMBUS_ASSIGN_OR_RETURN(
      std::vector<PolicyDocument> policies,
      EffectivePolicies(is_user ? EntityKind::kUser : EntityKind::kRole,
                        is_user ? principal.name : LastSegment(principal.role_arn)));
  EvalRequest req{
      std::string(action), std::string(resource), {}, RequestContextKeys(principal, clock().Now())};
  const Decision decision = Evaluate(policies, req);
  if (decision == Decision::kAllow) return Status::Ok();
  if (decision == Decision::kExplicitDeny) {
    return AccessDenied(NotAuthorized(who, action, resource) +
                        " with an explicit deny in an identity-based policy");
  }
  // A trust policy that names the caller itself grants sts:AssumeRole without an identity
  // policy, as in AWS within one account.
  if (EqualsIgnoreCase(action, "sts:AssumeRole")) {
    auto role = GetRoleByArn(std::string(resource));
    if (role.ok()) {
      auto trust = ParsePolicy(role->assume_role_policy, PolicyKind::kTrust);
      EvalRequest trust_req{
          "sts:AssumeRole", role->arn, {{"AWS", TrustIdentifiers(principal, true)}}, req.context};
      if (trust.ok() && Evaluate(*trust, trust_req) == Decision::kAllow) return Status::Ok();
    }
  }
  return AccessDenied(NotAuthorized(who, action, resource) +
                      " because no identity-based policy allows the " + std::string(action) +
                      " action");
}

}  // namespace nimbus::iam
