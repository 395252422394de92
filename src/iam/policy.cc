#include "iam/policy.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>

#include "core/clock.h"
#include "core/json.h"
#include "core/strings.h"
#include "core/value.h"

namespace nimbus::iam {
namespace {

Status Malformed(std::string msg) {
  return Status::Aws("MalformedPolicyDocument", 400, std::move(msg));
}

Status SyntaxError() { return Malformed("Syntax errors in policy."); }

// A string or a list of strings, as IAM accepts almost everywhere. Numbers and bools
// are accepted as their text (condition values such as "aws:MultiFactorAuthPresent": true).
Result<std::vector<std::string>> StringOrList(const Value& v, bool allow_scalars) {
  auto scalar = [&](const Value& e) -> std::optional<std::string> {
    if (e.is_string()) return e.AsString();
    if (!allow_scalars) return std::nullopt;
    if (e.is_bool()) return std::string(e.AsBool() ? "true" : "false");
    if (e.is_int()) return std::to_string(e.AsInt());
    if (e.is_double()) {
      std::string s = std::to_string(e.AsDouble());
      s.erase(s.find_last_not_of('0') + 1);
      if (!s.empty() && s.back() == '.') s.pop_back();
      return s;
    }
    return std::nullopt;
  };
  std::vector<std::string> out;
  if (v.is_list()) {
    for (const Value& e : v.list()) {
      auto s = scalar(e);
      if (!s) return SyntaxError();
      out.push_back(std::move(*s));
    }
    return out;
  }
  auto s = scalar(v);
  if (!s) return SyntaxError();
  out.push_back(std::move(*s));
  return out;
}

Status ParsePrincipal(const Value& v, Statement* st) {
  if (v.is_string()) {
    if (v.AsString() != "*") return Malformed("Invalid principal in policy: " + v.AsString());
    st->principals["*"] = {"*"};
    return Status::Ok();
  }
  if (!v.is_map()) return SyntaxError();
  for (const auto& [type, ids] : v.map()) {
    if (type != "AWS" && type != "Service" && type != "Federated" && type != "CanonicalUser") {
      return Malformed("Invalid principal in policy: \"" + type + "\"");
    }
    NIMBUS_ASSIGN_OR_RETURN(std::vector<std::string> list, StringOrList(ids, false));
    for (const std::string& id : list) {
      bool ok = !id.empty();
      if (type == "AWS") {
        bool account = id.size() == 12 && std::all_of(id.begin(), id.end(), ::isdigit);
        ok = id == "*" || account || StartsWith(id, "arn:aws:iam::") ||
             StartsWith(id, "arn:aws:sts::");
      }
      if (!ok) return Malformed("Invalid principal in policy: \"" + type + "\":\"" + id + "\"");
    }
    st->principals[type] = std::move(list);
  }
  if (st->principals.empty()) return Malformed("Invalid principal in policy: empty Principal");
  return Status::Ok();
}

Status ParseConditions(const Value& v, Statement* st) {
  if (!v.is_map()) return SyntaxError();
  for (const auto& [op, keys] : v.map()) {
    if (!keys.is_map()) return SyntaxError();
    for (const auto& [key, values] : keys.map()) {
      NIMBUS_ASSIGN_OR_RETURN(std::vector<std::string> list, StringOrList(values, true));
      st->conditions.push_back(Condition{op, key, std::move(list)});
    }
  }
  return Status::Ok();
}

Result<Statement> ParseStatement(const Value& v, PolicyKind kind) {
  if (!v.is_map()) return SyntaxError();
  static constexpr std::array<std::string_view, 9> kFields = {
      "Sid",         "Effect",    "Action",       "NotAction", "Resource",
      "NotResource", "Principal", "NotPrincipal", "Condition"};
  for (const auto& [name, unused] : v.map()) {
    if (std::find(kFields.begin(), kFields.end(), name) == kFields.end()) {
      return Malformed("Syntax errors in policy: unknown field " + name + ".");
    }
  }
  Statement st;
  if (const Value* sid = v.Find("Sid")) {
    if (!sid->is_string()) return SyntaxError();
    st.sid = sid->AsString();
  }
  const Value* effect = v.Find("Effect");
  if (!effect) return Malformed("Missing required field Effect");
  if (!effect->is_string() || (effect->AsString() != "Allow" && effect->AsString() != "Deny")) {
    return Malformed("Invalid effect: " +
                     (effect->is_string() ? effect->AsString() : ToJson(*effect)));
  }
  st.allow = effect->AsString() == "Allow";

  const Value* action = v.Find("Action");
  const Value* not_action = v.Find("NotAction");
  if (action && not_action) return Malformed("Statement cannot contain both Action and NotAction.");
  if (!action && !not_action) return Malformed("Policy statement must contain actions.");
  NIMBUS_ASSIGN_OR_RETURN(st.actions, StringOrList(action ? *action : *not_action, false));
  st.not_action = not_action != nullptr;
  if (st.actions.empty()) return Malformed("Policy statement must contain actions.");
  for (const std::string& a : st.actions) {
    size_t colon = a.find(':');
    if (a != "*" && (colon == std::string::npos || colon == 0 || colon + 1 == a.size())) {
      return Malformed(
          "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.");
    }
  }

  const Value* resource = v.Find("Resource");
  const Value* not_resource = v.Find("NotResource");
  if (resource && not_resource) {
    return Malformed("Statement cannot contain both Resource and NotResource.");
  }
  if (kind == PolicyKind::kTrust && (resource || not_resource)) {
    return Malformed(std::string("Has prohibited field ") +
                     (resource ? "Resource" : "NotResource"));
  }
  if (kind == PolicyKind::kIdentity) {
    if (!resource && !not_resource) return Malformed("Policy statement must contain resources.");
    NIMBUS_ASSIGN_OR_RETURN(st.resources,
                            StringOrList(resource ? *resource : *not_resource, false));
    if (st.resources.empty()) return Malformed("Policy statement must contain resources.");
    for (const std::string& r : st.resources) {
      if (r != "*" && !StartsWith(r, "arn:")) {
        return Malformed("Resource " + r + " must be in ARN format or \"*\".");
      }
    }
    st.has_resource = true;
    st.not_resource = not_resource != nullptr;
  }

  const Value* principal = v.Find("Principal");
  const Value* not_principal = v.Find("NotPrincipal");
  if (kind == PolicyKind::kIdentity && (principal || not_principal)) {
    return Malformed("Policy document should not specify a principal.");
  }
  if (kind == PolicyKind::kTrust) {
    if (principal && not_principal) {
      return Malformed("Statement cannot contain both Principal and NotPrincipal.");
    }
    if (!principal && !not_principal) return Malformed("Missing required field Principal");
    NIMBUS_RETURN_IF_ERROR(ParsePrincipal(principal ? *principal : *not_principal, &st));
    st.has_principal = true;
    st.not_principal = not_principal != nullptr;
  }

  if (const Value* cond = v.Find("Condition")) NIMBUS_RETURN_IF_ERROR(ParseConditions(*cond, &st));
  return st;
}

// --- Matching ---------------------------------------------------------------------------

// A pattern character: a wildcard ('*' or '?') unless literal.
struct PatChar {
  char c;
  bool literal;
};
using Pattern = std::vector<PatChar>;

const std::vector<std::string>* FindKey(const ConditionContext& ctx, std::string_view key) {
  for (const auto& [k, v] : ctx) {
    if (EqualsIgnoreCase(k, key)) return &v;
  }
  return nullptr;
}

// Turns policy text into a pattern, substituting ${var} from the context when asked.
// nullopt when a variable has no value (the element then matches nothing), as in AWS.
std::optional<Pattern> Compile(std::string_view text, const ConditionContext& ctx,
                               bool substitute) {
  Pattern out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (substitute && text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      size_t end = text.find('}', i + 2);
      if (end != std::string_view::npos) {
        std::string_view var = text.substr(i + 2, end - i - 2);
        if (var == "*" || var == "?" || var == "$") {
          out.push_back({var[0], true});
        } else {
          const auto* values = FindKey(ctx, var);
          if (!values || values->size() != 1) return std::nullopt;
          for (char c : values->front()) out.push_back({c, true});
        }
        i = end;
        continue;
      }
    }
    out.push_back({text[i], text[i] != '*' && text[i] != '?'});
  }
  return out;
}

bool CharEq(char a, char b, bool ci) {
  return ci ? std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b))
            : a == b;
}

// Glob match with backtracking over the last '*'.
bool Glob(const Pattern& p, std::string_view s, bool ci) {
  size_t pi = 0, si = 0, star = std::string::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && !p[pi].literal && p[pi].c == '*') {
      star = pi++;
      mark = si;
    } else if (pi < p.size() && ((!p[pi].literal && p[pi].c == '?') ||
                                 (p[pi].literal && CharEq(p[pi].c, s[si], ci)))) {
      ++pi;
      ++si;
    } else if (star != std::string::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && !p[pi].literal && p[pi].c == '*') ++pi;
  return pi == p.size();
}

std::string Literal(const Pattern& p) {
  std::string s;
  for (const PatChar& c : p) s.push_back(c.c);
  return s;
}

// Splits an ARN into its six colon-separated parts (the last keeps its colons).
std::vector<Pattern> SplitArn(const Pattern& p) {
  std::vector<Pattern> parts(1);
  for (const PatChar& c : p) {
    if (c.c == ':' && parts.size() < 6) {
      parts.emplace_back();
    } else {
      parts.back().push_back(c);
    }
  }
  return parts;
}

bool ArnLike(const Pattern& pattern, std::string_view arn) {
  std::vector<Pattern> pp = SplitArn(pattern);
  Pattern arn_pat;
  for (char c : arn) arn_pat.push_back({c, true});
  std::vector<Pattern> ap = SplitArn(arn_pat);
  if (pp.size() != 6 || ap.size() != 6) return false;
  for (size_t i = 0; i < 6; ++i) {
    if (!Glob(pp[i], Literal(ap[i]), false)) return false;
  }
  return true;
}

std::optional<double> ParseNumber(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return d;
}

std::optional<double> ParseDate(const std::string& s) {
  double t = 0;
  if (ParseIso8601(s, &t)) return t;
  return ParseNumber(s);
}

// An address as 16 bytes (IPv4 mapped into ::ffff:0:0/96) and whether it was IPv4.
std::optional<std::pair<std::array<unsigned char, 16>, bool>> ParseIp(const std::string& s) {
  std::array<unsigned char, 16> bytes{};
  in_addr v4;
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    bytes[10] = bytes[11] = 0xff;
    std::memcpy(&bytes[12], &v4, 4);
    return std::make_pair(bytes, true);
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(bytes.data(), &v6, 16);
    return std::make_pair(bytes, false);
  }
  return std::nullopt;
}

bool IpInCidr(const std::string& ip, const std::string& cidr) {
  size_t slash = cidr.find('/');
  auto net = ParseIp(cidr.substr(0, slash));
  auto addr = ParseIp(ip);
  if (!net || !addr) return false;
  int bits = net->second ? 32 : 128;
  if (slash != std::string::npos) {
    auto parsed = ParseInt(std::string_view(cidr).substr(slash + 1));
    if (!parsed || *parsed < 0 || *parsed > bits) return false;
    bits = static_cast<int>(*parsed);
  }
  if (net->second) bits += 96;
  for (int i = 0; i < bits; ++i) {
    int byte = i / 8, bit = 7 - i % 8;
    if (((net->first[byte] >> bit) & 1) != ((addr->first[byte] >> bit) & 1)) return false;
  }
  return true;
}

enum class BaseOp {
  kStringEquals,
  kStringEqualsIgnoreCase,
  kStringLike,
  kArnLike,
  kNumericEquals,
  kNumericLessThan,
  kNumericLessThanEquals,
  kNumericGreaterThan,
  kNumericGreaterThanEquals,
  kDateEquals,
  kDateLessThan,
  kDateLessThanEquals,
  kDateGreaterThan,
  kDateGreaterThanEquals,
  kBool,
  kBinaryEquals,
  kIpAddress,
  kNull,
};

struct ParsedOp {
  BaseOp base;
  bool negated = false;
  bool if_exists = false;
  enum { kSingle, kAnyValue, kAllValues } set = kSingle;
};

std::optional<ParsedOp> ParseOperator(std::string_view op) {
  ParsedOp out;
  if (StartsWith(ToLower(op), "foranyvalue:")) {
    out.set = ParsedOp::kAnyValue;
    op.remove_prefix(12);
  } else if (StartsWith(ToLower(op), "forallvalues:")) {
    out.set = ParsedOp::kAllValues;
    op.remove_prefix(13);
  }
  std::string name = ToLower(op);
  if (EndsWith(name, "ifexists")) {
    out.if_exists = true;
    name.resize(name.size() - 8);
  }
  static const std::map<std::string, std::pair<BaseOp, bool>> kOps = {
      {"stringequals", {BaseOp::kStringEquals, false}},
      {"stringnotequals", {BaseOp::kStringEquals, true}},
      {"stringequalsignorecase", {BaseOp::kStringEqualsIgnoreCase, false}},
      {"stringnotequalsignorecase", {BaseOp::kStringEqualsIgnoreCase, true}},
      {"stringlike", {BaseOp::kStringLike, false}},
      {"stringnotlike", {BaseOp::kStringLike, true}},
      {"arnequals", {BaseOp::kArnLike, false}},
      {"arnlike", {BaseOp::kArnLike, false}},
      {"arnnotequals", {BaseOp::kArnLike, true}},
      {"arnnotlike", {BaseOp::kArnLike, true}},
      {"numericequals", {BaseOp::kNumericEquals, false}},
      {"numericnotequals", {BaseOp::kNumericEquals, true}},
      {"numericlessthan", {BaseOp::kNumericLessThan, false}},
      {"numericlessthanequals", {BaseOp::kNumericLessThanEquals, false}},
      {"numericgreaterthan", {BaseOp::kNumericGreaterThan, false}},
      {"numericgreaterthanequals", {BaseOp::kNumericGreaterThanEquals, false}},
      {"dateequals", {BaseOp::kDateEquals, false}},
      {"datenotequals", {BaseOp::kDateEquals, true}},
      {"datelessthan", {BaseOp::kDateLessThan, false}},
      {"datelessthanequals", {BaseOp::kDateLessThanEquals, false}},
      {"dategreaterthan", {BaseOp::kDateGreaterThan, false}},
      {"dategreaterthanequals", {BaseOp::kDateGreaterThanEquals, false}},
      {"bool", {BaseOp::kBool, false}},
      {"binaryequals", {BaseOp::kBinaryEquals, false}},
      {"ipaddress", {BaseOp::kIpAddress, false}},
      {"notipaddress", {BaseOp::kIpAddress, true}},
      {"null", {BaseOp::kNull, false}},
  };
  auto it = kOps.find(name);
  if (it == kOps.end()) return std::nullopt;
  out.base = it->second.first;
  out.negated = it->second.second;
  if (out.base == BaseOp::kNull && (out.if_exists || out.set != ParsedOp::kSingle)) {
    return std::nullopt;
  }
  return out;
}

// Whether one context value matches one policy value under the (positive) base operator.
bool Matches(BaseOp op, const std::string& actual, const std::string& expected,
             const ConditionContext& ctx, bool substitute) {
  auto compare = [](std::optional<double> a, std::optional<double> b, auto cmp) {
    return a && b && cmp(*a, *b);
  };
  switch (op) {
    case BaseOp::kStringEquals:
    case BaseOp::kStringEqualsIgnoreCase:
    case BaseOp::kStringLike:
    case BaseOp::kArnLike: {
      auto pattern = Compile(expected, ctx, substitute);
      if (!pattern) return false;
      if (op == BaseOp::kStringLike) return Glob(*pattern, actual, false);
      if (op == BaseOp::kArnLike) return ArnLike(*pattern, actual);
      if (op == BaseOp::kStringEquals) return Literal(*pattern) == actual;
      return EqualsIgnoreCase(Literal(*pattern), actual);
    }
    case BaseOp::kNumericEquals:
      return compare(ParseNumber(actual), ParseNumber(expected), std::equal_to<>());
    case BaseOp::kNumericLessThan:
      return compare(ParseNumber(actual), ParseNumber(expected), std::less<>());
    case BaseOp::kNumericLessThanEquals:
      return compare(ParseNumber(actual), ParseNumber(expected), std::less_equal<>());
    case BaseOp::kNumericGreaterThan:
      return compare(ParseNumber(actual), ParseNumber(expected), std::greater<>());
    case BaseOp::kNumericGreaterThanEquals:
      return compare(ParseNumber(actual), ParseNumber(expected), std::greater_equal<>());
    case BaseOp::kDateEquals:
      return compare(ParseDate(actual), ParseDate(expected), std::equal_to<>());
    case BaseOp::kDateLessThan:
      return compare(ParseDate(actual), ParseDate(expected), std::less<>());
    case BaseOp::kDateLessThanEquals:
      return compare(ParseDate(actual), ParseDate(expected), std::less_equal<>());
    case BaseOp::kDateGreaterThan:
      return compare(ParseDate(actual), ParseDate(expected), std::greater<>());
    case BaseOp::kDateGreaterThanEquals:
      return compare(ParseDate(actual), ParseDate(expected), std::greater_equal<>());
    case BaseOp::kBool:
      return EqualsIgnoreCase(actual, expected);
    case BaseOp::kBinaryEquals:
      return actual == expected;
    case BaseOp::kIpAddress:
      return IpInCidr(actual, expected);
    case BaseOp::kNull:
      return false;  // handled by ConditionHolds
  }
  return false;
}

bool ActionMatches(const Statement& st, std::string_view action) {
  bool any = false;
  for (const std::string& a : st.actions) {
    if (WildcardMatch(a, action, /*case_insensitive=*/true)) {
      any = true;
      break;
    }
  }
  return st.not_action ? !any : any;
}

bool ResourceMatches(const Statement& st, const EvalRequest& req, bool substitute) {
  if (!st.has_resource) return true;
  bool any = false;
  for (const std::string& r : st.resources) {
    auto pattern = Compile(r, req.context, substitute);
    if (pattern && Glob(*pattern, req.resource, false)) {
      any = true;
      break;
    }
  }
  return st.not_resource ? !any : any;
}

bool PrincipalMatches(const Statement& st, const EvalRequest& req) {
  if (!st.has_principal) return true;
  bool any = st.principals.count("*") > 0;
  for (const auto& [type, ids] : st.principals) {
    if (any) break;
    auto caller = req.principal.find(type);
    if (caller == req.principal.end()) continue;
    for (const std::string& id : ids) {
      if (id == "*" ||
          std::find(caller->second.begin(), caller->second.end(), id) != caller->second.end()) {
        any = true;
        break;
      }
    }
  }
  return st.not_principal ? !any : any;
}

}  // namespace

Result<PolicyDocument> ParsePolicy(std::string_view json, PolicyKind kind) {
  auto parsed = ParseJson(json);
  if (!parsed.ok()) return SyntaxError();
  const Value& root = *parsed;
  if (!root.is_map()) return SyntaxError();
  for (const auto& [name, unused] : root.map()) {
    if (name != "Version" && name != "Id" && name != "Statement") {
      return Malformed("Syntax errors in policy: unknown field " + name + ".");
    }
  }
  PolicyDocument doc;
  if (const Value* version = root.Find("Version")) {
    if (!version->is_string() ||
        (version->AsString() != "2012-10-17" && version->AsString() != "2008-10-17")) {
      return Malformed(
          "The policy failed legacy parsing: Version must be 2012-10-17 or 2008-10-17.");
    }
    doc.version = version->AsString();
  }
  const Value* statements = root.Find("Statement");
  if (!statements) return Malformed("Missing required field Statement");
  if (statements->is_list()) {
    if (statements->list().empty()) return Malformed("Missing required field Statement");
    for (const Value& st : statements->list()) {
      NIMBUS_ASSIGN_OR_RETURN(Statement parsed_st, ParseStatement(st, kind));
      doc.statements.push_back(std::move(parsed_st));
    }
  } else {
    NIMBUS_ASSIGN_OR_RETURN(Statement parsed_st, ParseStatement(*statements, kind));
    doc.statements.push_back(std::move(parsed_st));
  }
  return doc;
}

size_t PolicySize(std::string_view json) {
  return static_cast<size_t>(std::count_if(json.begin(), json.end(), [](char c) {
    return !std::isspace(static_cast<unsigned char>(c));
  }));
}

bool ConditionHolds(const Condition& condition, const ConditionContext& context,
                    bool substitute_variables) {
  std::optional<ParsedOp> op = ParseOperator(condition.op);
  if (!op) return false;
  const std::vector<std::string>* actual = FindKey(context, condition.key);
  const bool present = actual && !actual->empty();
  if (op->base == BaseOp::kNull) {
    for (const std::string& v : condition.values) {
      if (EqualsIgnoreCase(v, "true") && !present) return true;
      if (EqualsIgnoreCase(v, "false") && present) return true;
    }
    return false;
  }
  auto any_match = [&](const std::string& a) {
    for (const std::string& expected : condition.values) {
      if (Matches(op->base, a, expected, context, substitute_variables)) return true;
    }
    return false;
  };
  auto pred = [&](const std::string& a) { return op->negated ? !any_match(a) : any_match(a); };
  switch (op->set) {
    case ParsedOp::kSingle:
      if (!present) return op->if_exists || op->negated;
      return op->negated ? std::all_of(actual->begin(), actual->end(), pred)
                         : std::any_of(actual->begin(), actual->end(), pred);
    case ParsedOp::kAnyValue:
      if (!present) return op->if_exists;
      return std::any_of(actual->begin(), actual->end(), pred);
    case ParsedOp::kAllValues:
      if (!present) return true;
      return std::all_of(actual->begin(), actual->end(), pred);
  }
  return false;
}

Decision Evaluate(const PolicyDocument& policy, const EvalRequest& request) {
  const bool substitute = policy.version == "2012-10-17";
  Decision decision = Decision::kImplicitDeny;
  for (const Statement& st : policy.statements) {
    if (!ActionMatches(st, request.action) || !ResourceMatches(st, request, substitute) ||
        !PrincipalMatches(st, request)) {
      continue;
    }
    bool conditions_hold = std::all_of(
        st.conditions.begin(), st.conditions.end(),
        [&](const Condition& c) { return ConditionHolds(c, request.context, substitute); });
    if (!conditions_hold) continue;
    if (!st.allow) return Decision::kExplicitDeny;
    decision = Decision::kAllow;
  }
  return decision;
}

Decision Evaluate(const std::vector<PolicyDocument>& policies, const EvalRequest& request) {
  Decision decision = Decision::kImplicitDeny;
  for (const PolicyDocument& p : policies) {
    Decision d = Evaluate(p, request);
    if (d == Decision::kExplicitDeny) return d;
    if (d == Decision::kAllow) decision = d;
  }
  return decision;
}

}  // namespace nimbus::iam
