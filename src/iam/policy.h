// IAM policy documents: parsing, validation and evaluation, as pure functions.
//
// ParsePolicy turns a JSON policy (Version; Statement as an object or a list; Sid; Effect;
// Action/NotAction; Resource/NotResource; Principal/NotPrincipal; Condition; a string or
// a list wherever IAM allows either) into a PolicyDocument, or a MalformedPolicyDocument
// error (HTTP 400) that names the problem, as the IAM APIs that take documents return.
//
// Evaluate applies AWS's logic to a request: an explicit Deny in any statement wins, else
// an Allow, else the implicit deny. Actions match case-insensitively with `*`/`?`
// wildcards ("s3:Get*"), resources case-sensitively. Conditions support the String*,
// Arn*, Bool, Numeric*, Date*, Null and IpAddress/NotIpAddress operators, their
// ...IfExists forms and the ForAnyValue:/ForAllValues: set qualifiers; an operator Nimbus
// does not know makes its statement not apply. In documents of Version 2012-10-17, policy
// variables (${aws:username}, ${aws:userid}, ${aws:PrincipalAccount}, any context key,
// and ${*} ${?} ${$}) are substituted in Resource and condition values.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace nimbus::iam {

struct Condition {
  std::string op;   // as written: "ForAnyValue:StringLikeIfExists"
  std::string key;  // "aws:username"
  std::vector<std::string> values;
};

struct Statement {
  std::string sid;
  bool allow = false;
  // Action or NotAction (not_action); both absent only in trust policies, where IAM
  // still requires one, so it is never empty after ParsePolicy.
  std::vector<std::string> actions;
  bool not_action = false;
  bool has_resource = false;  // false: the statement applies to any resource
  std::vector<std::string> resources;
  bool not_resource = false;
  bool has_principal = false;
  // "AWS" / "Service" / "Federated" / "CanonicalUser" -> identifiers; "*" alone is
  // stored as {"*": {"*"}}.
  std::map<std::string, std::vector<std::string>> principals;
  bool not_principal = false;
  std::vector<Condition> conditions;
};

struct PolicyDocument {
  std::string version;  // "2012-10-17", "2008-10-17", or "" when absent
  std::vector<Statement> statements;
};

enum class PolicyKind {
  kIdentity,  // attached to a user or role: no Principal, Resource required
  kTrust,     // a role's AssumeRolePolicyDocument: Principal required, no Resource
};

// Errors: MalformedPolicyDocument (400) naming the problem.
Result<PolicyDocument> ParsePolicy(std::string_view json, PolicyKind kind);

// The size IAM counts against its policy size quotas: characters other than whitespace.
size_t PolicySize(std::string_view json);

// Condition context: key (matched case-insensitively) -> values. A key with several
// values is multivalued (for ForAnyValue/ForAllValues).
using ConditionContext = std::map<std::string, std::vector<std::string>>;

struct EvalRequest {
  std::string action;    // "iam:CreateUser"
  std::string resource;  // an ARN, or "*"
  // For trust policies: the caller's identifiers per principal type, e.g.
  // {"AWS": {"arn:aws:iam::000000000000:user/bob", "000000000000",
  //          "arn:aws:iam::000000000000:root"}} or {"Service": {"sagemaker.amazonaws.com"}}.
  std::map<std::string, std::vector<std::string>> principal;
  ConditionContext context;
};

enum class Decision { kImplicitDeny, kAllow, kExplicitDeny };

Decision Evaluate(const PolicyDocument& policy, const EvalRequest& request);
// The combined decision over several policies (explicit deny > allow > implicit deny).
Decision Evaluate(const std::vector<PolicyDocument>& policies, const EvalRequest& request);

// Whether one condition holds in context (exposed for table-driven tests).
bool ConditionHolds(const Condition& condition, const ConditionContext& context,
                    bool substitute_variables);

}  // namespace nimbus::iam
