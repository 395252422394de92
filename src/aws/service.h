// What a service handler sees, and how handlers are registered.
//
// A handler is `Result<Value> handler(const Value& input, RequestContext& ctx)`: the input
// was parsed and validated against the operation's input shape by the protocol engine,
// the caller was authenticated (SigV4) and authorized (IAM) before the call, and the
// returned Value is serialized against the operation's output shape. Member names in
// both Values are the model's member names ("UserName", not the wire's "userName").
//
// The credential and authorization interfaces are declared here and implemented by
// iam/, so that the protocol engine does not depend on how identities are stored.
//
// Thread-safety: a ServiceRegistry is filled at start-up and read-only afterwards;
// handlers are called concurrently and must synchronize their own state.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/result.h"
#include "core/value.h"
#include "http/types.h"

namespace nimbus::aws {

// Who is calling.
struct Principal {
  enum class Type { kAnonymous, kRoot, kUser, kAssumedRole };
  Type type = Type::kAnonymous;
  std::string arn;         // arn:aws:iam::123456789012:root / :user/bob / sts ... assumed-role/R/s
  std::string account_id;  // the account the principal belongs to
  std::string user_id;     // AIDA... for users, AROA...:session for assumed roles, account for root
  std::string name;        // user name, or role name for an assumed role
  std::string role_arn;    // for kAssumedRole: the IAM role whose policies apply
  std::string session_name;
  std::string access_key_id;
};

// The secret behind an access key id, and whose it is.
struct Credential {
  std::string secret_access_key;
  std::string session_token;  // non-empty for temporary credentials: the request must match
  double expiration = 0;      // epoch seconds; 0 for keys that never expire
  bool active = true;         // inactive keys are refused like unknown ones
  Principal principal;
};

class CredentialStore {
 public:
  virtual ~CredentialStore() = default;
  // kNotFound when the key is unknown.
  virtual Result<Credential> Lookup(std::string_view access_key_id) = 0;
};

class Authorizer {
 public:
  virtual ~Authorizer() = default;
  // OK when the principal may perform `action` ("iam:CreateUser") on `resource` (an ARN);
  // otherwise a kAccessDenied Status whose message names principal, action and resource.
  virtual Status Authorize(const Principal& principal, std::string_view action,
                           std::string_view resource) = 0;
};

struct RequestContext {
  std::string request_id;
  std::string region;      // from the credential scope, else the server's default
  std::string account_id;  // the account served: the principal's
  std::string service;     // the model's name: "sts", "iam", "cloudwatch", ...
  std::string operation;   // "GetCallerIdentity"
  Principal principal;
  const http::Request* http = nullptr;  // the raw request, for handlers that stream bodies
  const Clock* clock = nullptr;
  // Authorizes the caller for a further action than the operation's own (CopyObject
  // reads its source: s3:GetObject on the source object). Set by the dispatcher.
  std::function<Status(std::string_view action, std::string_view resource)> authorize;
  http::Headers response_headers;  // extra headers a handler wants on its response
  // A handler whose output payload is streamed (S3 GetObject) sets the stream here; it
  // replaces the serialized body. With a length the response has that Content-Length.
  std::function<Status(http::BodyWriter&)> response_stream;
  std::optional<uint64_t> response_stream_length;
  // Like response_stream, for a payload that is a region of an open file: the response
  // sends it with sendfile(2) (or inlines it when it is small). Takes precedence over
  // response_stream.
  std::optional<http::FileBody> response_file;
  // Overrides the HTTP status of a successful response (S3's 206 Partial Content).
  std::optional<int> response_status;
};

using OperationHandler = std::function<Result<Value>(const Value& input, RequestContext& ctx)>;
// Names the resource ARN an operation acts on, for authorization. Without one the
// resource is "*".
using ResourceResolver = std::function<std::string(const Value& input, const RequestContext& ctx)>;

struct Registration {
  OperationHandler handler;
  ResourceResolver resource;
  bool anonymous = false;  // may be called unsigned (e.g. sts:AssumeRoleWithWebIdentity)
  // The IAM action authorized, when it is not "<iam-prefix>:<Operation>" (S3's HeadObject
  // is authorized as "s3:GetObject", ListObjectsV2 as "s3:ListBucket").
  std::string action;
};

class ServiceRegistry {
 public:
  void Register(std::string service, std::string operation, OperationHandler handler,
                ResourceResolver resource = nullptr, bool anonymous = false);
  void Register(std::string service, std::string operation, Registration registration);
  // nullptr when no handler is registered.
  const Registration* Find(std::string_view service, std::string_view operation) const;
  bool HasService(std::string_view service) const;

 private:
  std::map<std::string, std::map<std::string, Registration, std::less<>>, std::less<>> services_;
};

}  // namespace nimbus::aws
