#include "services/iam/iam_service.h"

#include <optional>
#include <string>
#include <vector>

#include "core/strings.h"

namespace nimbus::services {
namespace {

using iam::EntityKind;
using iam::IamStore;

constexpr int64_t kDefaultMaxItems = 100;

Status InvalidInput(std::string msg) { return Status::Aws("InvalidInput", 400, std::move(msg)); }

std::optional<std::string> OptString(const Value& input, std::string_view key) {
  const Value* v = input.Find(key);
  if (!v || v->is_null()) return std::nullopt;
  return v->AsString();
}

std::vector<iam::Tag> TagsFrom(const Value& input) {
  std::vector<iam::Tag> tags;
  if (const Value* list = input.Find("Tags")) {
    for (const Value& t : list->list()) tags.push_back({t.GetString("Key"), t.GetString("Value")});
  }
  return tags;
}

Value TagsValue(const std::vector<iam::Tag>& tags) {
  Value out = Value::MakeList();
  for (const iam::Tag& t : tags) out.Append(Value::Object({{"Key", t.key}, {"Value", t.value}}));
  return out;
}

Value UserValue(const iam::User& u) {
  Value v = Value::Object({{"Path", u.path},
                           {"UserName", u.name},
                           {"UserId", u.user_id},
                           {"Arn", u.arn},
                           {"CreateDate", Value::Timestamp(u.create_date)}});
  if (!u.tags.empty()) v["Tags"] = TagsValue(u.tags);
  return v;
}

Value RoleValue(const iam::Role& r) {
  Value v = Value::Object({{"Path", r.path},
                           {"RoleName", r.name},
                           {"RoleId", r.role_id},
                           {"Arn", r.arn},
                           {"CreateDate", Value::Timestamp(r.create_date)},
                           {"AssumeRolePolicyDocument", UriEncode(r.assume_role_policy)},
                           {"MaxSessionDuration", r.max_session_duration},
                           {"RoleLastUsed", Value::MakeMap()}});
  if (!r.description.empty()) v["Description"] = r.description;
  if (!r.tags.empty()) v["Tags"] = TagsValue(r.tags);
  return v;
}

Value PolicyValue(const iam::ManagedPolicy& p) {
  Value v = Value::Object({{"PolicyName", p.name},
                           {"PolicyId", p.policy_id},
                           {"Arn", p.arn},
                           {"Path", p.path},
                           {"DefaultVersionId", p.default_version_id},
                           {"AttachmentCount", p.attachment_count},
                           {"PermissionsBoundaryUsageCount", 0},
                           {"IsAttachable", true},
                           {"CreateDate", Value::Timestamp(p.create_date)},
                           {"UpdateDate", Value::Timestamp(p.update_date)}});
  if (!p.description.empty()) v["Description"] = p.description;
  if (!p.tags.empty()) v["Tags"] = TagsValue(p.tags);
  return v;
}

Value VersionValue(const iam::PolicyVersion& pv, bool with_document) {
  Value v = Value::Object({{"VersionId", pv.version_id},
                           {"IsDefaultVersion", pv.is_default},
                           {"CreateDate", Value::Timestamp(pv.create_date)}});
  if (with_document) v["Document"] = UriEncode(pv.document);
  return v;
}

Value KeyMetadataValue(const iam::AccessKey& k) {
  return Value::Object({{"UserName", k.user_name},
                        {"AccessKeyId", k.access_key_id},
                        {"Status", k.status},
                        {"CreateDate", Value::Timestamp(k.create_date)}});
}

// Marker/MaxItems paging over a complete, ordered list: the marker is the offset of the
// next item, opaque to clients.
template <typename T, typename Fn>
Result<Value> Page(const std::vector<T>& items, const Value& input, const char* member,
                   Fn to_value) {
  size_t start = 0;
  if (auto marker = OptString(input, "Marker")) {
    auto decoded = Base64Decode(*marker);
    auto offset = decoded ? ParseInt(*decoded) : std::nullopt;
    if (!offset || *offset < 0) return InvalidInput("Invalid Marker.");
    start = static_cast<size_t>(*offset);
  }
  const int64_t max_items = input.GetInt("MaxItems", kDefaultMaxItems);
  Value out = Value::MakeMap();
  Value& list = out[member];
  list = Value::MakeList();
  size_t i = start;
  for (; i < items.size() && static_cast<int64_t>(i - start) < max_items; ++i) {
    list.Append(to_value(items[i]));
  }
  out["IsTruncated"] = i < items.size();
  if (i < items.size()) out["Marker"] = Base64Encode(std::to_string(i));
  return out;
}

// The user an operation addresses: UserName, or the calling user when it is omitted.
Result<std::string> TargetUser(const Value& input, const aws::RequestContext& ctx) {
  if (auto name = OptString(input, "UserName")) return *name;
  if (ctx.principal.type == aws::Principal::Type::kUser) return ctx.principal.name;
  return Status::Aws("ValidationError", 400,
                     "Must specify userName when calling with non-User credentials");
}

iam::PolicyScope ScopeFrom(const Value& input) {
  const std::string scope = input.GetString("Scope", "All");
  if (scope == "AWS") return iam::PolicyScope::kAws;
  if (scope == "Local") return iam::PolicyScope::kLocal;
  return iam::PolicyScope::kAll;
}

Value Empty() { return Value::MakeMap(); }

}  // namespace

void RegisterIamService(aws::ServiceRegistry& registry, IamStore& store) {
  IamStore* s = &store;
  auto reg = [&registry](const char* op, aws::OperationHandler handler,
                         aws::ResourceResolver resource = nullptr) {
    registry.Register("iam", op, std::move(handler), std::move(resource));
  };

  // Resolvers: the ARN of the entity acted on, with its stored path when it exists.
  auto user_arn_of = [s](const std::string& name, const std::string& fallback_path) {
    auto user = s->GetUser(name);
    return user.ok() ? user->arn : s->UserArn(fallback_path, name);
  };
  aws::ResourceResolver user_resource = [user_arn_of](const Value& in,
                                                      const aws::RequestContext& ctx) {
    auto name = TargetUser(in, ctx);
    if (!name.ok()) return ctx.principal.arn;
    return user_arn_of(*name, in.GetString("Path", "/"));
  };
  aws::ResourceResolver role_resource = [s](const Value& in, const aws::RequestContext&) {
    const std::string name = in.GetString("RoleName");
    auto role = s->GetRole(name);
    return role.ok() ? role->arn : s->RoleArn(in.GetString("Path", "/"), name);
  };
  aws::ResourceResolver policy_resource = [s](const Value& in, const aws::RequestContext&) {
    if (in.Has("PolicyArn")) return in.GetString("PolicyArn");
    return s->PolicyArn(in.GetString("Path", "/"), in.GetString("PolicyName"));
  };

  // --- Users ---
  reg(
      "CreateUser",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(
            iam::User user,
            s->CreateUser(in.GetString("UserName"), in.GetString("Path", "/"), TagsFrom(in)));
        return Value::Object({{"User", UserValue(user)}});
      },
      user_resource);
  reg(
      "GetUser",
      [s](const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        if (!in.Has("UserName") && ctx.principal.type == aws::Principal::Type::kRoot) {
          // The root identity: IAM answers with the account's own ARN and id.
          return Value::Object({{"User", Value::Object({{"Path", "/"},
                                                        {"UserName", "root"},
                                                        {"UserId", s->account_id()},
                                                        {"Arn", ctx.principal.arn},
                                                        {"CreateDate", Value::Timestamp(0)}})}});
        }
        NIMBUS_ASSIGN_OR_RETURN(std::string name, TargetUser(in, ctx));
        NIMBUS_ASSIGN_OR_RETURN(iam::User user, s->GetUser(name));
        return Value::Object({{"User", UserValue(user)}});
      },
      user_resource);
  reg("ListUsers", [s](const Value& in, aws::RequestContext&) -> Result<Value> {
    NIMBUS_ASSIGN_OR_RETURN(std::vector<iam::User> users,
                            s->ListUsers(in.GetString("PathPrefix", "/")));
    return Page(users, in, "Users", [](const iam::User& u) {
      iam::User without_tags = u;
      without_tags.tags.clear();
      return UserValue(without_tags);
    });
  });
  reg(
      "UpdateUser",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(s->UpdateUser(in.GetString("UserName"), OptString(in, "NewUserName"),
                                             OptString(in, "NewPath")));
        return Empty();
      },
      user_resource);
  reg(
      "DeleteUser",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(s->DeleteUser(in.GetString("UserName")));
        return Empty();
      },
      user_resource);
  reg(
      "TagUser",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(
            s->TagEntity(EntityKind::kUser, in.GetString("UserName"), TagsFrom(in)));
        return Empty();
      },
      user_resource);
  reg(
      "UntagUser",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        std::vector<std::string> keys;
        if (const Value* k = in.Find("TagKeys")) {
          for (const Value& key : k->list()) keys.push_back(key.AsString());
        }
        NIMBUS_RETURN_IF_ERROR(s->UntagEntity(EntityKind::kUser, in.GetString("UserName"), keys));
        return Empty();
      },
      user_resource);
  reg(
      "ListUserTags",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(std::vector<iam::Tag> tags,
                                s->ListEntityTags(EntityKind::kUser, in.GetString("UserName")));
        return Page(tags, in, "Tags", [](const iam::Tag& t) {
          return Value::Object({{"Key", t.key}, {"Value", t.value}});
        });
      },
      user_resource);

  // --- Access keys ---
  reg(
      "CreateAccessKey",
      [s](const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(std::string name, TargetUser(in, ctx));
        NIMBUS_ASSIGN_OR_RETURN(iam::AccessKey key, s->CreateAccessKey(name));
        Value v = KeyMetadataValue(key);
        v["SecretAccessKey"] = key.secret_access_key;
        return Value::Object({{"AccessKey", std::move(v)}});
      },
      user_resource);
  reg(
      "ListAccessKeys",
      [s](const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(std::string name, TargetUser(in, ctx));
        NIMBUS_ASSIGN_OR_RETURN(std::vector<iam::AccessKey> keys, s->ListAccessKeys(name));
        return Page(keys, in, "AccessKeyMetadata", KeyMetadataValue);
      },
      user_resource);
  reg(
      "UpdateAccessKey",
      [s](const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(std::string name, TargetUser(in, ctx));
        NIMBUS_RETURN_IF_ERROR(
            s->UpdateAccessKey(name, in.GetString("AccessKeyId"), in.GetString("Status")));
        return Empty();
      },
      user_resource);
  reg(
      "DeleteAccessKey",
      [s](const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(std::string name, TargetUser(in, ctx));
        NIMBUS_RETURN_IF_ERROR(s->DeleteAccessKey(name, in.GetString("AccessKeyId")));
        return Empty();
      },
      user_resource);
  reg(
      "GetAccessKeyLastUsed",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(iam::AccessKey key, s->GetAccessKey(in.GetString("AccessKeyId")));
        Value used = Value::Object({{"ServiceName", "N/A"}, {"Region", "N/A"}});
        if (key.last_used_date > 0) {
          used = Value::Object({{"LastUsedDate", Value::Timestamp(key.last_used_date)},
                                {"ServiceName", key.last_used_service},
                                {"Region", key.last_used_region}});
        }
        return Value::Object({{"UserName", key.user_name}, {"AccessKeyLastUsed", std::move(used)}});
      },
      [s](const Value& in, const aws::RequestContext&) {
        auto key = s->GetAccessKey(in.GetString("AccessKeyId"));
        if (!key.ok()) return std::string("*");
        auto user = s->GetUser(key->user_name);
        return user.ok() ? user->arn : std::string("*");
      });

  // --- Roles ---
  reg(
      "CreateRole",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(
            iam::Role role,
            s->CreateRole(in.GetString("RoleName"), in.GetString("Path", "/"),
                          in.GetString("AssumeRolePolicyDocument"), in.GetString("Description"),
                          in.GetInt("MaxSessionDuration", 3600), TagsFrom(in)));
        return Value::Object({{"Role", RoleValue(role)}});
      },
      role_resource);
  reg(
      "GetRole",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(iam::Role role, s->GetRole(in.GetString("RoleName")));
        return Value::Object({{"Role", RoleValue(role)}});
      },
      role_resource);
  reg("ListRoles", [s](const Value& in, aws::RequestContext&) -> Result<Value> {
    NIMBUS_ASSIGN_OR_RETURN(std::vector<iam::Role> roles,
                            s->ListRoles(in.GetString("PathPrefix", "/")));
    return Page(roles, in, "Roles", [](const iam::Role& r) {
      Value v = RoleValue(r);
      v.Erase("Tags");
      v.Erase("RoleLastUsed");
      return v;
    });
  });
  reg(
      "UpdateRole",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        std::optional<int64_t> max_duration;
        if (in.Has("MaxSessionDuration")) max_duration = in.GetInt("MaxSessionDuration");
        NIMBUS_RETURN_IF_ERROR(
            s->UpdateRole(in.GetString("RoleName"), OptString(in, "Description"), max_duration));
        return Empty();
      },
      role_resource);
  reg(
      "UpdateAssumeRolePolicy",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(
            s->UpdateAssumeRolePolicy(in.GetString("RoleName"), in.GetString("PolicyDocument")));
        return Empty();
      },
      role_resource);
  reg(
      "DeleteRole",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(s->DeleteRole(in.GetString("RoleName")));
        return Empty();
      },
      role_resource);
  reg(
      "TagRole",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(
            s->TagEntity(EntityKind::kRole, in.GetString("RoleName"), TagsFrom(in)));
        return Empty();
      },
      role_resource);
  reg(
      "UntagRole",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        std::vector<std::string> keys;
        if (const Value* k = in.Find("TagKeys")) {
          for (const Value& key : k->list()) keys.push_back(key.AsString());
        }
        NIMBUS_RETURN_IF_ERROR(s->UntagEntity(EntityKind::kRole, in.GetString("RoleName"), keys));
        return Empty();
      },
      role_resource);
  reg(
      "ListRoleTags",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(std::vector<iam::Tag> tags,
                                s->ListEntityTags(EntityKind::kRole, in.GetString("RoleName")));
        return Page(tags, in, "Tags", [](const iam::Tag& t) {
          return Value::Object({{"Key", t.key}, {"Value", t.value}});
        });
      },
      role_resource);

  // --- Managed policies ---
  reg(
      "CreatePolicy",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(
            iam::ManagedPolicy p,
            s->CreatePolicy(in.GetString("PolicyName"), in.GetString("Path", "/"),
                            in.GetString("PolicyDocument"), in.GetString("Description"),
                            TagsFrom(in)));
        Value v = PolicyValue(p);
        v.Erase("Description");  // CreatePolicy omits it, as IAM does
        return Value::Object({{"Policy", std::move(v)}});
      },
      policy_resource);
  reg(
      "GetPolicy",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(iam::ManagedPolicy p, s->GetPolicy(in.GetString("PolicyArn")));
        return Value::Object({{"Policy", PolicyValue(p)}});
      },
      policy_resource);
  reg("ListPolicies", [s](const Value& in, aws::RequestContext&) -> Result<Value> {
    NIMBUS_ASSIGN_OR_RETURN(std::vector<iam::ManagedPolicy> policies,
                            s->ListPolicies(ScopeFrom(in), in.GetBool("OnlyAttached"),
                                            in.GetString("PathPrefix", "/")));
    return Page(policies, in, "Policies", [](const iam::ManagedPolicy& p) {
      Value v = PolicyValue(p);
      v.Erase("Description");
      v.Erase("Tags");
      return v;
    });
  });
  reg(
      "DeletePolicy",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(s->DeletePolicy(in.GetString("PolicyArn")));
        return Empty();
      },
      policy_resource);
  reg(
      "CreatePolicyVersion",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(
            iam::PolicyVersion pv,
            s->CreatePolicyVersion(in.GetString("PolicyArn"), in.GetString("PolicyDocument"),
                                   in.GetBool("SetAsDefault")));
        return Value::Object({{"PolicyVersion", VersionValue(pv, false)}});
      },
      policy_resource);
  reg(
      "GetPolicyVersion",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(
            iam::PolicyVersion pv,
            s->GetPolicyVersion(in.GetString("PolicyArn"), in.GetString("VersionId")));
        return Value::Object({{"PolicyVersion", VersionValue(pv, true)}});
      },
      policy_resource);
  reg(
      "ListPolicyVersions",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(std::vector<iam::PolicyVersion> versions,
                                s->ListPolicyVersions(in.GetString("PolicyArn")));
        return Page(versions, in, "Versions",
                    [](const iam::PolicyVersion& pv) { return VersionValue(pv, false); });
      },
      policy_resource);
  reg(
      "DeletePolicyVersion",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(
            s->DeletePolicyVersion(in.GetString("PolicyArn"), in.GetString("VersionId")));
        return Empty();
      },
      policy_resource);
  reg(
      "SetDefaultPolicyVersion",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(
            s->SetDefaultPolicyVersion(in.GetString("PolicyArn"), in.GetString("VersionId")));
        return Empty();
      },
      policy_resource);
  reg(
      "ListEntitiesForPolicy",
      [s](const Value& in, aws::RequestContext&) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(std::vector<iam::PolicyEntity> entities,
                                s->ListEntitiesForPolicy(in.GetString("PolicyArn")));
        const std::string filter = in.GetString("EntityFilter");
        Value out = Value::Object({{"PolicyGroups", Value::MakeList()},
                                   {"PolicyUsers", Value::MakeList()},
                                   {"PolicyRoles", Value::MakeList()},
                                   {"IsTruncated", false}});
        for (const iam::PolicyEntity& e : entities) {
          if (e.kind == EntityKind::kUser && (filter.empty() || filter == "User")) {
            out["PolicyUsers"].Append(Value::Object({{"UserName", e.name}, {"UserId", e.id}}));
          } else if (e.kind == EntityKind::kRole && (filter.empty() || filter == "Role")) {
            out["PolicyRoles"].Append(Value::Object({{"RoleName", e.name}, {"RoleId", e.id}}));
          }
        }
        return out;
      },
      policy_resource);

  // --- Attachments and inline policies, for users and roles alike ---
  struct EntityOps {
    EntityKind kind;
    const char* noun;         // "User" | "Role"
    const char* name_member;  // "UserName" | "RoleName"
    aws::ResourceResolver resource;
  };
  for (const EntityOps& e : {EntityOps{EntityKind::kUser, "User", "UserName", user_resource},
                             EntityOps{EntityKind::kRole, "Role", "RoleName", role_resource}}) {
    const std::string noun = e.noun;
    const std::string member = e.name_member;
    const EntityKind kind = e.kind;
    reg(("Attach" + noun + "Policy").c_str(),
        [s, kind, member](const Value& in, aws::RequestContext&) -> Result<Value> {
          NIMBUS_RETURN_IF_ERROR(
              s->AttachPolicy(kind, in.GetString(member), in.GetString("PolicyArn")));
          return Empty();
        },
        e.resource);
    reg(("Detach" + noun + "Policy").c_str(),
        [s, kind, member](const Value& in, aws::RequestContext&) -> Result<Value> {
          NIMBUS_RETURN_IF_ERROR(
              s->DetachPolicy(kind, in.GetString(member), in.GetString("PolicyArn")));
          return Empty();
        },
        e.resource);
    reg(("ListAttached" + noun + "Policies").c_str(),
        [s, kind, member](const Value& in, aws::RequestContext&) -> Result<Value> {
          NIMBUS_ASSIGN_OR_RETURN(
              std::vector<iam::AttachedPolicy> attached,
              s->ListAttachedPolicies(kind, in.GetString(member), in.GetString("PathPrefix", "/")));
          return Page(attached, in, "AttachedPolicies", [](const iam::AttachedPolicy& a) {
            return Value::Object({{"PolicyName", a.policy_name}, {"PolicyArn", a.policy_arn}});
          });
        },
        e.resource);
    reg(("Put" + noun + "Policy").c_str(),
        [s, kind, member](const Value& in, aws::RequestContext&) -> Result<Value> {
          NIMBUS_RETURN_IF_ERROR(s->PutInlinePolicy(kind, in.GetString(member),
                                                    in.GetString("PolicyName"),
                                                    in.GetString("PolicyDocument")));
          return Empty();
        },
        e.resource);
    reg(("Get" + noun + "Policy").c_str(),
        [s, kind, member](const Value& in, aws::RequestContext&) -> Result<Value> {
          NIMBUS_ASSIGN_OR_RETURN(
              std::string document,
              s->GetInlinePolicy(kind, in.GetString(member), in.GetString("PolicyName")));
          return Value::Object({{member, in.GetString(member)},
                                {"PolicyName", in.GetString("PolicyName")},
                                {"PolicyDocument", UriEncode(document)}});
        },
        e.resource);
    reg(("List" + noun + "Policies").c_str(),
        [s, kind, member](const Value& in, aws::RequestContext&) -> Result<Value> {
          NIMBUS_ASSIGN_OR_RETURN(std::vector<std::string> names,
                                  s->ListInlinePolicies(kind, in.GetString(member)));
          return Page(names, in, "PolicyNames", [](const std::string& n) { return Value(n); });
        },
        e.resource);
    reg(("Delete" + noun + "Policy").c_str(),
        [s, kind, member](const Value& in, aws::RequestContext&) -> Result<Value> {
          NIMBUS_RETURN_IF_ERROR(
              s->DeleteInlinePolicy(kind, in.GetString(member), in.GetString("PolicyName")));
          return Empty();
        },
        e.resource);
  }

  reg("GetAccountSummary", [s](const Value&, aws::RequestContext&) -> Result<Value> {
    NIMBUS_ASSIGN_OR_RETURN(auto summary, s->AccountSummary());
    Value map = Value::MakeMap();
    for (const auto& [key, n] : summary) map[key] = n;
    return Value::Object({{"SummaryMap", std::move(map)}});
  });
}

}  // namespace nimbus::services
