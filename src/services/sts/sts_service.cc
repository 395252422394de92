#include "services/sts/sts_service.h"

#include <string>

namespace nimbus::services {
namespace {

Value CredentialsValue(const iam::SessionCredentials& c) {
  return Value::Object({{"AccessKeyId", c.access_key_id},
                        {"SecretAccessKey", c.secret_access_key},
                        {"SessionToken", c.session_token},
                        {"Expiration", Value::Timestamp(c.expiration)}});
}

}  // namespace

void RegisterStsService(aws::ServiceRegistry& registry, iam::IamStore& store) {
  iam::IamStore* s = &store;
  registry.Register("sts", "GetCallerIdentity",
                    [](const Value&, aws::RequestContext& ctx) -> Result<Value> {
                      return Value::Object({{"UserId", ctx.principal.user_id},
                                            {"Account", ctx.principal.account_id},
                                            {"Arn", ctx.principal.arn}});
                    });
  registry.Register(
      "sts", "AssumeRole",
      [s](const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        if (in.Has("Policy") || in.Has("PolicyArns")) {
          return Status::Aws("ValidationError", 400,
                             "Session policies (Policy, PolicyArns) are not supported by Nimbus.");
        }
        NIMBUS_ASSIGN_OR_RETURN(
            iam::SessionCredentials creds,
            s->AssumeRole(ctx.principal, in.GetString("RoleArn"), in.GetString("RoleSessionName"),
                          in.GetInt("DurationSeconds", 3600)));
        Value out = Value::Object(
            {{"Credentials", CredentialsValue(creds)},
             {"AssumedRoleUser", Value::Object({{"AssumedRoleId", creds.principal.user_id},
                                                {"Arn", creds.principal.arn}})},
             {"PackedPolicySize", 0}});
        if (in.Has("SourceIdentity")) out["SourceIdentity"] = in.GetString("SourceIdentity");
        return out;
      },
      [](const Value& in, const aws::RequestContext&) { return in.GetString("RoleArn"); });
  registry.Register(
      "sts", "GetSessionToken", [s](const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(iam::SessionCredentials creds,
                                s->GetSessionToken(ctx.principal, in.GetInt("DurationSeconds", 0)));
        return Value::Object({{"Credentials", CredentialsValue(creds)}});
      });
  registry.Register("sts", "GetAccessKeyInfo",
                    [s](const Value&, aws::RequestContext&) -> Result<Value> {
                      return Value::Object({{"Account", s->account_id()}});
                    });
}

}  // namespace nimbus::services
