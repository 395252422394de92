// ResourceStore over store::Database, and the ResourceKind helpers of resource_kind.h.
// The schema is described in metadata_schema.md; keep the two in step.
#include "control/resource_store.h"

#include <algorithm>
#include <bit>
#include <cctype>

#include "core/crypto.h"
#include "core/json.h"
#include "core/strings.h"

namespace nimbus::control {

// ---------------------------------------------------------------------------------------
// ResourceKind helpers

bool StateMachine::Allows(std::string_view from, std::string_view to) const {
  auto it = transitions.find(from);
  return it != transitions.end() && it->second.count(to) > 0;
}

bool StateMachine::IsTerminal(std::string_view status) const { return terminal.count(status) > 0; }

std::string ResourceKind::Arn(std::string_view account, std::string_view region,
                              std::string_view name) const {
  std::string out = "arn:" + PartitionForRegion(region) + ":" + arn_service + ":" +
                    std::string(region) + ":" + std::string(account) + ":" + arn_resource_type;
  out += arn_separator;
  out += lowercase_name_in_arn ? ToLower(name) : std::string(name);
  return out;
}

std::string ResourceKind::NameKey(std::string_view name) const {
  return case_insensitive_names ? ToLower(name) : std::string(name);
}

ErrorWording SageMakerErrors() {
  ErrorWording w;
  w.not_found = {"ResourceNotFound", 400, "Requested resource not found."};
  w.in_use = {"ResourceInUse", 400,
              "{Display} names must be unique within an AWS account and region, and a "
              "{display} with this name already exists ({arn})"};
  w.idempotency_mismatch = {"IdempotentParameterMismatch", 400,
                            "The client token {token} was already used for a different "
                            "request."};
  w.invalid_transition = {"ValidationException", 400,
                          "The request was rejected because the {display} is in status "
                          "{status}."};
  w.invalid_token = {"ValidationException", 400, "Invalid pagination token"};
  w.too_many_tags = {"ValidationException", 400,
                     "A resource can have at most {max} tags; {arn} would have more."};
  w.validation_code = "ValidationException";
  return w;
}

ErrorWording StandardErrors() {
  ErrorWording w;
  w.not_found = {"ResourceNotFoundException", 400, "The {display} {name} does not exist."};
  w.in_use = {"ResourceInUseException", 400, "A {display} named {name} already exists."};
  w.idempotency_mismatch = {"IdempotentParameterMismatchException", 400,
                            "The client token {token} was already used for a different "
                            "request."};
  w.invalid_transition = {"ResourceInUseException", 400,
                          "The {display} {name} is in status {status} and cannot move to "
                          "{target}."};
  w.invalid_token = {"ValidationException", 400, "Invalid pagination token"};
  w.too_many_tags = {"TooManyTagsException", 400,
                     "A resource can have at most {max} tags; {arn} would have more."};
  w.validation_code = "ValidationException";
  return w;
}

ResourceKind SageMakerKind(std::string kind, std::string display_name,
                           std::string arn_resource_type, StateMachine states) {
  ResourceKind k;
  k.service = "sagemaker";
  k.kind = std::move(kind);
  k.display_name = std::move(display_name);
  k.arn_service = "sagemaker";
  k.arn_resource_type = std::move(arn_resource_type);
  k.lowercase_name_in_arn = true;
  k.case_insensitive_names = true;
  k.states = std::move(states);
  k.errors = SageMakerErrors();
  k.default_max_results = 10;
  k.max_max_results = 100;
  return k;
}

std::string PartitionForRegion(std::string_view region) {
  if (StartsWith(region, "cn-")) return "aws-cn";
  if (StartsWith(region, "us-gov-")) return "aws-us-gov";
  return "aws";
}

std::optional<ParsedArn> ParseArn(std::string_view arn) {
  // The resource part may itself hold ':' (Lambda's function:name:alias), so split
  // only the first five fields.
  ParsedArn out;
  std::string* fields[] = {nullptr, &out.partition, &out.service, &out.region, &out.account};
  size_t pos = 0;
  for (int i = 0; i < 5; ++i) {
    size_t colon = arn.find(':', pos);
    if (colon == std::string_view::npos) return std::nullopt;
    std::string_view field = arn.substr(pos, colon - pos);
    if (i == 0 && field != "arn") return std::nullopt;
    if (fields[i]) *fields[i] = std::string(field);
    pos = colon + 1;
  }
  out.resource = std::string(arn.substr(pos));
  if (out.partition.empty() || out.service.empty() || out.resource.empty()) return std::nullopt;
  return out;
}

std::string FormatMessage(std::string_view templ, const MessageVars& vars) {
  std::string out;
  size_t i = 0;
  while (i < templ.size()) {
    if (templ[i] == '{') {
      size_t close = templ.find('}', i);
      if (close != std::string_view::npos) {
        std::string_view name = templ.substr(i + 1, close - i - 1);
        auto it = std::find_if(vars.begin(), vars.end(),
                               [&](const auto& var) { return var.first == name; });
        if (it != vars.end()) {
          out += it->second;
          i = close + 1;
          continue;
        }
      }
    }
    out += templ[i++];
  }
  return out;
}

Status MakeError(const ErrorSpec& spec, ErrorKind kind, const MessageVars& vars) {
  return Status::Aws(spec.code, spec.http_status, FormatMessage(spec.message, vars), kind);
}

// ---------------------------------------------------------------------------------------
// ResourceStore

namespace {

using store::Params;
using store::Row;
using store::Rows;
using store::Session;

constexpr std::string_view kMigrationComponent = "control/resources";
constexpr std::string_view kTokenKeyName = "pagination-hmac-key";
constexpr size_t kTokenKeyBytes = 32;

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE control_resources (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  service TEXT NOT NULL,
  kind TEXT NOT NULL,
  account TEXT NOT NULL,
  region TEXT NOT NULL,
  name TEXT NOT NULL,
  name_key TEXT NOT NULL,
  arn TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL,
  secondary_status TEXT NOT NULL DEFAULT '',
  failure_reason TEXT NOT NULL DEFAULT '',
  body TEXT NOT NULL,
  tags TEXT NOT NULL,
  history TEXT NOT NULL,
  created_at REAL NOT NULL,
  modified_at REAL NOT NULL,
  version INTEGER NOT NULL,
  client_token TEXT,
  request_hash TEXT,
  UNIQUE (service, kind, account, region, name_key));
CREATE UNIQUE INDEX control_resources_by_token
  ON control_resources(service, kind, account, region, client_token)
  WHERE client_token IS NOT NULL;
CREATE INDEX control_resources_by_created
  ON control_resources(service, kind, account, region, created_at, id);
CREATE INDEX control_resources_by_status ON control_resources(service, kind, status, id);
CREATE TABLE control_secrets (
  name TEXT PRIMARY KEY,
  value BLOB NOT NULL,
  created_at REAL NOT NULL);
)sql";

constexpr std::string_view kColumns =
    "id, service, kind, account, region, name, arn, status, secondary_status, "
    "failure_reason, body, tags, history, created_at, modified_at, version, client_token, "
    "request_hash";

// Bodies are stored as JSON text, which alone would turn timestamps into numbers and
// blobs into base64 strings. This encoding keeps every Value kind: a timestamp becomes
// {"$t": seconds}, a blob {"$b": base64}, and a map key that starts with '$' gains one
// more '$', so that no document of the service can be read back as a tagged value.
Value EncodeDoc(const Value& v) {
  switch (v.type()) {
    case Value::Type::kTimestamp:
      return Value::Object({{"$t", Value(v.AsDouble())}});
    case Value::Type::kBlob:
      return Value::Object({{"$b", Value(Base64Encode(v.AsString()))}});
    case Value::Type::kList: {
      Value out = Value::MakeList();
      for (const Value& e : v.list()) out.Append(EncodeDoc(e));
      return out;
    }
    case Value::Type::kMap: {
      Value out = Value::MakeMap();
      for (const auto& [k, e] : v.map())
        out[!k.empty() && k[0] == '$' ? "$" + k : k] = EncodeDoc(e);
      return out;
    }
    default:
      return v;
  }
}

Value DecodeDoc(const Value& v) {
  if (v.is_list()) {
    Value out = Value::MakeList();
    for (const Value& e : v.list()) out.Append(DecodeDoc(e));
    return out;
  }
  if (!v.is_map()) return v;
  if (v.size() == 1) {
    if (const Value* t = v.Find("$t")) return Value::Timestamp(t->AsDouble());
    if (const Value* b = v.Find("$b")) {
      return Value::Blob(Base64Decode(b->AsString()).value_or(std::string()));
    }
  }
  Value out = Value::MakeMap();
  for (const auto& [k, e] : v.map()) {
    out[StartsWith(k, "$$") ? k.substr(1) : k] = DecodeDoc(e);
  }
  return out;
}

// Tags are stored as [[key, value, seq], ...] in order. seq numbers the keys in the order
// they were added and never changes for a key, so that ListTags can page by it.
struct StoredTags {
  Tags tags;
  std::vector<int64_t> seqs;  // parallel to tags
};

std::string TagsJson(const StoredTags& st) {
  Value out = Value::MakeList();
  for (size_t i = 0; i < st.tags.size(); ++i) {
    out.Append(
        Value(Value::List{Value(st.tags[i].key), Value(st.tags[i].value), Value(st.seqs[i])}));
  }
  return ToJson(out);
}

// The stored tags after `tags` replaced them: kept keys keep their seq, new keys follow.
StoredTags Reseq(const StoredTags& old, const Tags& tags) {
  int64_t next = 1;
  for (int64_t s : old.seqs) next = std::max(next, s + 1);
  StoredTags out;
  for (const Tag& t : tags) {
    out.tags.push_back(t);
    int64_t seq = 0;
    for (size_t i = 0; i < old.tags.size(); ++i) {
      if (old.tags[i].key == t.key) seq = old.seqs[i];
    }
    out.seqs.push_back(seq ? seq : next++);
  }
  return out;
}

// Later duplicates overwrite earlier ones in place (AWS's rule for a repeated key).
Tags MergeTags(const Tags& base, const Tags& more) {
  Tags out = base;
  for (const Tag& t : more) {
    auto it = std::find_if(out.begin(), out.end(), [&](const Tag& o) { return o.key == t.key; });
    if (it != out.end()) {
      it->value = t.value;
    } else {
      out.push_back(t);
    }
  }
  return out;
}

std::string HistoryJson(const std::vector<StatusTransition>& history) {
  Value out = Value::MakeList();
  for (const StatusTransition& h : history) {
    out.Append(Value::Object({{"s", Value(h.status)},
                              {"ss", Value(h.secondary_status)},
                              {"m", Value(h.message)},
                              {"t", Value(h.at)}}));
  }
  return ToJson(out);
}

std::string RequestHash(std::string_view name, const Value& body, const Tags& tags) {
  Value tag_list = Value::MakeList();
  for (const Tag& t : tags) tag_list.Append(Value(Value::List{Value(t.key), Value(t.value)}));
  Value request =
      Value::Object({{"name", Value(name)}, {"body", EncodeDoc(body)}, {"tags", tag_list}});
  return HexEncode(Sha256(ToJson(request)));
}

// A row as read, with what the Resource does not show.
struct Loaded {
  int64_t id = 0;
  Resource resource;
  StoredTags stored_tags;
  std::string request_hash;
};

Result<Loaded> FromRow(const Row& row) {
  auto get = [&](std::string_view col) -> const Value& {
    static const Value kNull;
    auto it = row.find(col);
    return it == row.end() ? kNull : it->second;
  };
  Loaded l;
  l.id = get("id").AsInt();
  Resource& r = l.resource;
  r.service = get("service").AsString();
  r.kind = get("kind").AsString();
  r.account = get("account").AsString();
  r.region = get("region").AsString();
  r.name = get("name").AsString();
  r.arn = get("arn").AsString();
  r.status = get("status").AsString();
  r.secondary_status = get("secondary_status").AsString();
  r.failure_reason = get("failure_reason").AsString();
  r.created_at = get("created_at").AsDouble();
  r.modified_at = get("modified_at").AsDouble();
  r.version = get("version").AsInt();
  r.client_token = get("client_token").AsString();
  l.request_hash = get("request_hash").AsString();

  auto corrupt = [&](std::string_view what) {
    return Status::Internal("resource " + r.arn + " has a corrupt " + std::string(what) +
                            " column");
  };
  Result<Value> body = ParseJson(get("body").AsString());
  if (!body.ok()) return corrupt("body");
  r.body = DecodeDoc(*body);
  Result<Value> tags = ParseJson(get("tags").AsString());
  if (!tags.ok() || !tags->is_list()) return corrupt("tags");
  for (const Value& t : tags->list()) {
    if (!t.is_list() || t.size() != 3) return corrupt("tags");
    r.tags.push_back({t.list()[0].AsString(), t.list()[1].AsString()});
    l.stored_tags.seqs.push_back(t.list()[2].AsInt());
  }
  l.stored_tags.tags = r.tags;
  Result<Value> history = ParseJson(get("history").AsString());
  if (!history.ok() || !history->is_list()) return corrupt("history");
  for (const Value& h : history->list()) {
    r.history.push_back({h.GetString("s"), h.GetString("ss"), h.GetString("m"),
                         h.Find("t") ? h.Find("t")->AsDouble() : 0});
  }
  return l;
}

Result<std::vector<Loaded>> FromRows(const Rows& rows) {
  std::vector<Loaded> out;
  out.reserve(rows.size());
  for (const Row& row : rows) {
    NIMBUS_ASSIGN_OR_RETURN(Loaded l, FromRow(row));
    out.push_back(std::move(l));
  }
  return out;
}

MessageVars Vars(const ResourceKind& kind, std::string_view account, std::string_view region,
                 std::string_view name, std::string_view arn = {}) {
  std::string display = kind.Display();
  std::string capital = display;
  if (!capital.empty()) capital[0] = static_cast<char>(std::toupper(capital[0]));
  return {{"name", std::string(name)},
          {"arn", arn.empty() ? kind.Arn(account, region, name) : std::string(arn)},
          {"kind", kind.kind},
          {"display", display},
          {"Display", capital},
          {"account", std::string(account)},
          {"region", std::string(region)},
          {"max", std::to_string(kMaxTagsPerResource)}};
}

MessageVars VarsOf(const ResourceKind& kind, const Resource& r) {
  return Vars(kind, r.account, r.region, r.name, r.arn);
}

Status NotFound(const ResourceKind& kind, std::string_view account, std::string_view region,
                std::string_view name) {
  return MakeError(kind.errors.not_found, ErrorKind::kNotFound, Vars(kind, account, region, name));
}

Status InvalidInput(const ResourceKind& kind, std::string message) {
  return Status::Aws(kind.errors.validation_code, 400, std::move(message));
}

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// AWS's tag pattern is ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$. ASCII is checked exactly; other
// characters are taken to be letters, digits or separators, which covers what real
// clients send without carrying Unicode tables.
bool TagCharsOk(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) continue;
    if (std::isalnum(c) || c == ' ' ||
        std::string_view("_.:/=+-@").find(static_cast<char>(c)) != std::string_view::npos) {
      continue;
    }
    return false;
  }
  return true;
}

// What a Mutator may not change.
bool SameIdentityAndStatus(const Resource& a, const Resource& b) {
  return a.service == b.service && a.kind == b.kind && a.name == b.name && a.arn == b.arn &&
         a.account == b.account && a.region == b.region && a.status == b.status &&
         a.secondary_status == b.secondary_status && a.history == b.history &&
         a.created_at == b.created_at && a.modified_at == b.modified_at && a.version == b.version &&
         a.client_token == b.client_token;
}

Status WriteBack(Session& s, const Loaded& l) {
  const Resource& r = l.resource;
  return s
      .Exec(
          "UPDATE control_resources SET status = ?, secondary_status = ?, failure_reason = ?, "
          "body = ?, tags = ?, history = ?, modified_at = ?, version = ? WHERE id = ?",
          {r.status, r.secondary_status, r.failure_reason, ToJson(EncodeDoc(r.body)),
           TagsJson(l.stored_tags), HistoryJson(r.history), r.modified_at, r.version, l.id})
      .status();
}

Result<std::optional<Loaded>> SelectOne(Session& s, std::string_view where, const Params& params) {
  NIMBUS_ASSIGN_OR_RETURN(
      Rows rows, s.Query("SELECT " + std::string(kColumns) + " FROM control_resources WHERE " +
                             std::string(where),
                         params));
  if (rows.empty()) return std::optional<Loaded>();
  NIMBUS_ASSIGN_OR_RETURN(Loaded l, FromRow(rows[0]));
  return std::optional<Loaded>(std::move(l));
}

Result<std::optional<Loaded>> SelectByName(Session& s, const ResourceKind& kind,
                                           std::string_view account, std::string_view region,
                                           std::string_view name) {
  return SelectOne(s, "service = ? AND kind = ? AND account = ? AND region = ? AND name_key = ?",
                   {kind.service, kind.kind, account, region, kind.NameKey(name)});
}

// The row an ARN names, or nullopt (also for another account's resource when
// caller_account is given). kind: the registered kind the ARN names, if any.
Result<std::optional<Loaded>> SelectByArn(Session& s, const ResourceKind* kind,
                                          std::string_view arn, std::string_view caller_account) {
  const std::string key = kind && kind->lowercase_name_in_arn ? ToLower(arn) : std::string(arn);
  NIMBUS_ASSIGN_OR_RETURN(std::optional<Loaded> l, SelectOne(s, "arn = ?", {key}));
  if (l && !caller_account.empty() && l->resource.account != caller_account) {
    return std::optional<Loaded>();
  }
  return l;
}

// The AWS tag rules (see ResourceStore::ValidateTags); vars fill the too-many message.
Status CheckTags(const ResourceKind& kind, const Tags& tags, const MessageVars& vars) {
  if (tags.size() > kMaxTagsPerResource) {
    return MakeError(kind.errors.too_many_tags, ErrorKind::kValidation, vars);
  }
  for (size_t i = 0; i < tags.size(); ++i) {
    const Tag& t = tags[i];
    const size_t key_len = Utf8Length(t.key);
    if (key_len < 1 || key_len > kMaxTagKeyLength) {
      return InvalidInput(kind, "Tag keys must be 1 to " + std::to_string(kMaxTagKeyLength) +
                                    " characters long; got \"" + t.key + "\".");
    }
    if (Utf8Length(t.value) > kMaxTagValueLength) {
      return InvalidInput(kind, "The value of tag \"" + t.key + "\" is longer than " +
                                    std::to_string(kMaxTagValueLength) + " characters.");
    }
    if (!TagCharsOk(t.key) || !TagCharsOk(t.value)) {
      return InvalidInput(kind, "Tag \"" + t.key +
                                    "\" has characters outside letters, digits, spaces and "
                                    "_.:/=+-@.");
    }
    if (ToLower(t.key.substr(0, 4)) == "aws:") {
      return InvalidInput(
          kind, "Tag keys starting with \"aws:\" are reserved for AWS use: \"" + t.key + "\".");
    }
    for (size_t j = 0; j < i; ++j) {
      if (tags[j].key == t.key) {
        return InvalidInput(kind, "Tag key \"" + t.key + "\" appears more than once.");
      }
    }
  }
  return Status::Ok();
}

// Applies a mutator and checks that it kept to what it may change.
Status ApplyMutator(const ResourceKind& kind, const ResourceStore::Mutator& fn, Loaded& l) {
  if (!fn) return Status::Ok();
  const Resource before = l.resource;
  NIMBUS_RETURN_IF_ERROR(fn(l.resource));
  if (!SameIdentityAndStatus(before, l.resource)) {
    return Status::Internal("a resource mutator may change only body, failure_reason and tags (" +
                            before.arn + "); status changes go through Transition()");
  }
  if (l.resource.tags != before.tags) {
    NIMBUS_RETURN_IF_ERROR(CheckTags(kind, l.resource.tags, VarsOf(kind, l.resource)));
    l.stored_tags = Reseq(l.stored_tags, l.resource.tags);
  }
  return Status::Ok();
}

int64_t DoubleBits(double d) { return std::bit_cast<int64_t>(d); }

}  // namespace

Result<std::unique_ptr<ResourceStore>> ResourceStore::Open(store::Database& db,
                                                           ResourceStoreOptions options) {
  db.RegisterMigration(std::string(kMigrationComponent), 1, kSchemaV1);
  NIMBUS_RETURN_IF_ERROR(db.Migrate());
  // INSERT OR IGNORE then read: servers sharing a database agree on the first key.
  std::string key;
  NIMBUS_RETURN_IF_ERROR(db.WithTransaction([&](Session& s) -> Status {
    NIMBUS_RETURN_IF_ERROR(
        s.Exec("INSERT OR IGNORE INTO control_secrets (name, value, created_at) VALUES (?, ?, ?)",
               {kTokenKeyName, Value::Blob(RandomBytes(kTokenKeyBytes)), options.clock->Now()})
            .status());
    NIMBUS_ASSIGN_OR_RETURN(
        Rows rows, s.Query("SELECT value FROM control_secrets WHERE name = ?", {kTokenKeyName}));
    if (rows.empty() || rows[0]["value"].AsString().size() < kTokenKeyBytes) {
      return Status::Internal("the pagination key in control_secrets is missing or short");
    }
    key = rows[0]["value"].AsString();
    return Status::Ok();
  }));
  auto store = std::unique_ptr<ResourceStore>(new ResourceStore(db, options, std::move(key)));
  store->default_kind_.display_name = "resource";
  return store;
}

void ResourceStore::RegisterKind(const ResourceKind& kind) {
  std::lock_guard<std::mutex> lock(kinds_mu_);
  auto& slot = kinds_[{kind.service, kind.kind}];
  if (slot) {
    *slot = kind;
  } else {
    slot = std::make_unique<ResourceKind>(kind);
  }
}

const ResourceKind* ResourceStore::FindKind(std::string_view service, std::string_view kind) const {
  std::lock_guard<std::mutex> lock(kinds_mu_);
  auto it = kinds_.find({std::string(service), std::string(kind)});
  return it == kinds_.end() ? nullptr : it->second.get();
}

const ResourceKind* ResourceStore::FindKindByArn(std::string_view arn) const {
  std::optional<ParsedArn> parsed = ParseArn(arn);
  if (!parsed) return nullptr;
  std::lock_guard<std::mutex> lock(kinds_mu_);
  const ResourceKind* best = nullptr;
  for (const auto& [key, kind] : kinds_) {
    if (kind->arn_service != parsed->service) continue;
    const std::string prefix = kind->arn_resource_type + kind->arn_separator;
    // Two kinds may share a resource type (SageMaker's versioned and unversioned model
    // packages); the longest type, the most specific, wins.
    if (StartsWith(parsed->resource, prefix) &&
        (!best || best->arn_resource_type.size() < kind->arn_resource_type.size())) {
      best = kind.get();
    }
  }
  return best;
}

const ResourceKind& ResourceStore::KindOf(std::string_view service, std::string_view kind) const {
  const ResourceKind* k = FindKind(service, kind);
  return k ? *k : default_kind_;
}

Status ResourceStore::NotFoundByArn(std::string_view arn) const {
  const ResourceKind* kind = FindKindByArn(arn);
  if (!kind) {
    return Status(ErrorKind::kNotFound, "no resource has the ARN " + std::string(arn));
  }
  std::optional<ParsedArn> parsed = ParseArn(arn);
  std::string_view name =
      std::string_view(parsed->resource).substr(kind->arn_resource_type.size() + 1);
  return MakeError(kind->errors.not_found, ErrorKind::kNotFound,
                   Vars(*kind, parsed->account, parsed->region, name, arn));
}

Status ResourceStore::ValidateTags(const ResourceKind& kind, const Tags& tags) {
  MessageVars vars = Vars(kind, "", "", "");
  for (auto& [name, value] : vars) {
    if (name == "arn") value = "the resource";
  }
  return CheckTags(kind, tags, vars);
}

Result<Resource> ResourceStore::Create(const ResourceKind& kind, std::string_view account,
                                       std::string_view region, std::string_view name, Value body,
                                       Tags tags, std::string_view client_token, bool* created) {
  if (name.empty()) return InvalidInput(kind, "The " + kind.Display() + " name must not be empty.");
  tags = MergeTags({}, tags);
  const std::string arn = kind.Arn(account, region, name);
  NIMBUS_RETURN_IF_ERROR(CheckTags(kind, tags, Vars(kind, account, region, name, arn)));
  const std::string hash = RequestHash(name, body, tags);
  const double now = Now();

  Resource result;
  bool inserted = false;
  Status status = db_.WithTransaction([&](Session& s) -> Status {
    if (!client_token.empty()) {
      NIMBUS_ASSIGN_OR_RETURN(
          std::optional<Loaded> prior,
          SelectOne(s,
                    "service = ? AND kind = ? AND account = ? AND region = ? AND "
                    "client_token = ?",
                    {kind.service, kind.kind, account, region, client_token}));
      if (prior) {
        if (prior->request_hash != hash) {
          MessageVars vars = Vars(kind, account, region, name, arn);
          vars.emplace_back("token", std::string(client_token));
          return MakeError(kind.errors.idempotency_mismatch, ErrorKind::kValidation, vars);
        }
        result = std::move(prior->resource);
        return Status::Ok();
      }
    }
    NIMBUS_ASSIGN_OR_RETURN(std::optional<Loaded> existing,
                            SelectByName(s, kind, account, region, name));
    if (existing) {
      return MakeError(kind.errors.in_use, ErrorKind::kConflict,
                       Vars(kind, account, region, name, existing->resource.arn));
    }
    Loaded l;
    Resource& r = l.resource;
    r.service = kind.service;
    r.kind = kind.kind;
    r.name = std::string(name);
    r.arn = arn;
    r.account = std::string(account);
    r.region = std::string(region);
    r.status = kind.states.initial_status;
    r.secondary_status = kind.states.initial_secondary_status;
    r.history.push_back({r.status, r.secondary_status, "", now});
    r.body = std::move(body);
    r.tags = tags;
    r.created_at = now;
    r.modified_at = now;
    r.version = 1;
    r.client_token = std::string(client_token);
    l.stored_tags = Reseq({}, r.tags);
    Result<int64_t> insert = s.Exec(
        "INSERT INTO control_resources (service, kind, account, region, name, name_key, arn, "
        "status, secondary_status, failure_reason, body, tags, history, created_at, "
        "modified_at, version, client_token, request_hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, 1, ?, ?)",
        {r.service, r.kind, r.account, r.region, r.name, kind.NameKey(name), r.arn, r.status,
         r.secondary_status, ToJson(EncodeDoc(r.body)), TagsJson(l.stored_tags),
         HistoryJson(r.history), now, now, client_token.empty() ? Value() : Value(client_token),
         hash});
    if (insert.status().kind() == ErrorKind::kConflict) {
      // Another name with the same ARN (names differing in case, ARN lower-cased).
      return MakeError(kind.errors.in_use, ErrorKind::kConflict,
                       Vars(kind, account, region, name, arn));
    }
    NIMBUS_RETURN_IF_ERROR(insert.status());
    result = std::move(r);
    inserted = true;
    return Status::Ok();
  });
  NIMBUS_RETURN_IF_ERROR(status);
  if (created) *created = inserted;
  return result;
}

Result<Resource> ResourceStore::Get(const ResourceKind& kind, std::string_view account,
                                    std::string_view region, std::string_view name) {
  NIMBUS_ASSIGN_OR_RETURN(std::optional<Loaded> l, SelectByName(db_, kind, account, region, name));
  if (!l) return NotFound(kind, account, region, name);
  return std::move(l->resource);
}

Result<Resource> ResourceStore::GetByArn(const ResourceKind& kind, std::string_view arn) {
  const std::string key = kind.lowercase_name_in_arn ? ToLower(arn) : std::string(arn);
  NIMBUS_ASSIGN_OR_RETURN(
      std::optional<Loaded> l,
      SelectOne(db_, "arn = ? AND service = ? AND kind = ?", {key, kind.service, kind.kind}));
  if (!l) {
    std::optional<ParsedArn> parsed = ParseArn(arn);
    std::string_view resource = parsed ? std::string_view(parsed->resource) : arn;
    size_t sep = resource.find(kind.arn_separator);
    return MakeError(
        kind.errors.not_found, ErrorKind::kNotFound,
        Vars(kind, parsed ? parsed->account : "", parsed ? parsed->region : "",
             sep == std::string_view::npos ? resource : resource.substr(sep + 1), arn));
  }
  return std::move(l->resource);
}

Result<Resource> ResourceStore::GetByArn(std::string_view arn) {
  const ResourceKind* kind = FindKindByArn(arn);
  if (kind) return GetByArn(*kind, arn);
  NIMBUS_ASSIGN_OR_RETURN(std::optional<Loaded> l, SelectByArn(db_, nullptr, arn, {}));
  if (!l) return NotFoundByArn(arn);
  return std::move(l->resource);
}

Result<Resource> ResourceStore::Update(const ResourceKind& kind, std::string_view account,
                                       std::string_view region, std::string_view name,
                                       const Mutator& fn) {
  Resource result;
  NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(std::optional<Loaded> l, SelectByName(s, kind, account, region, name));
    if (!l) return NotFound(kind, account, region, name);
    NIMBUS_RETURN_IF_ERROR(ApplyMutator(kind, fn, *l));
    l->resource.version += 1;
    l->resource.modified_at = Now();
    NIMBUS_RETURN_IF_ERROR(WriteBack(s, *l));
    result = std::move(l->resource);
    return Status::Ok();
  }));
  return result;
}

Result<Resource> ResourceStore::Transition(const ResourceKind& kind, std::string_view account,
                                           std::string_view region, std::string_view name,
                                           const StatusChange& change, const Mutator& also) {
  if (change.status.empty()) return Status::Internal("Transition() needs a target status");
  Resource result;
  NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(std::optional<Loaded> l, SelectByName(s, kind, account, region, name));
    if (!l) return NotFound(kind, account, region, name);
    Resource& r = l->resource;
    const bool status_moves = change.status != r.status;
    const bool secondary_moves = change.secondary_status != r.secondary_status;
    const bool reason_moves = change.failure_reason && *change.failure_reason != r.failure_reason;
    if (!status_moves && !secondary_moves && !reason_moves && !also) {
      result = std::move(r);
      return Status::Ok();
    }
    if (status_moves && !kind.states.Allows(r.status, change.status)) {
      MessageVars vars = VarsOf(kind, r);
      vars.emplace_back("status", r.status);
      vars.emplace_back("target", change.status);
      return MakeError(kind.errors.invalid_transition, ErrorKind::kConflict, vars);
    }
    const double now = Now();
    if (status_moves || secondary_moves) {
      r.status = change.status;
      r.secondary_status = change.secondary_status;
      r.history.push_back({r.status, r.secondary_status, change.message, now});
    }
    if (change.failure_reason) r.failure_reason = *change.failure_reason;
    NIMBUS_RETURN_IF_ERROR(ApplyMutator(kind, also, *l));
    r.version += 1;
    r.modified_at = now;
    NIMBUS_RETURN_IF_ERROR(WriteBack(s, *l));
    result = std::move(r);
    return Status::Ok();
  }));
  return result;
}

Status ResourceStore::Delete(const ResourceKind& kind, std::string_view account,
                             std::string_view region, std::string_view name, const Check& check) {
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(std::optional<Loaded> l, SelectByName(s, kind, account, region, name));
    if (!l) return NotFound(kind, account, region, name);
    if (check) NIMBUS_RETURN_IF_ERROR(check(l->resource));
    return s.Exec("DELETE FROM control_resources WHERE id = ?", {l->id}).status();
  });
}

Result<ListPage> ResourceStore::List(const ResourceKind& kind, std::string_view account,
                                     std::string_view region, const ListQuery& query) {
  const int limit = query.max_results.value_or(kind.default_max_results);
  if (limit < 1 || limit > kind.max_max_results) {
    return InvalidInput(kind, "MaxResults must be between 1 and " +
                                  std::to_string(kind.max_max_results) + "; got " +
                                  std::to_string(limit) + ".");
  }
  const bool ascending = query.sort_order == SortOrder::kAscending;
  std::string column;
  switch (query.sort_by) {
    case SortBy::kCreationTime:
      column = "created_at";
      break;
    case SortBy::kName:
      column = "name";
      break;
    case SortBy::kStatus:
      column = "status";
      break;
  }

  // Everything that defines the query except the page size; timestamps as bit patterns
  // so that the fingerprint is exact.
  auto opt_time = [](const std::optional<double>& t) {
    return t ? Value(DoubleBits(*t)) : Value();
  };
  const std::string fingerprint = ToJson(Value::Object({
      {"op", Value("list")},
      {"service", Value(kind.service)},
      {"kind", Value(kind.kind)},
      {"account", Value(account)},
      {"region", Value(region)},
      {"name_contains", Value(ToLower(query.name_contains))},
      {"created_after", opt_time(query.creation_time_after)},
      {"created_before", opt_time(query.creation_time_before)},
      {"modified_after", opt_time(query.last_modified_time_after)},
      {"modified_before", opt_time(query.last_modified_time_before)},
      {"status", Value(query.status_equals)},
      {"sort_by", Value(column)},
      {"ascending", Value(ascending)},
  }));

  std::string sql = "SELECT " + std::string(kColumns) +
                    " FROM control_resources WHERE service = ? AND kind = ? AND account = ? AND "
                    "region = ?";
  Params params = {kind.service, kind.kind, account, region};
  if (!query.name_contains.empty()) {
    sql += " AND instr(lower(name), ?) > 0";
    params.push_back(ToLower(query.name_contains));
  }
  auto time_filter = [&](const std::optional<double>& t, const char* clause) {
    if (!t) return;
    sql += clause;
    params.push_back(*t);
  };
  time_filter(query.creation_time_after, " AND created_at > ?");
  time_filter(query.creation_time_before, " AND created_at < ?");
  time_filter(query.last_modified_time_after, " AND modified_at > ?");
  time_filter(query.last_modified_time_before, " AND modified_at < ?");
  if (!query.status_equals.empty()) {
    sql += " AND status = ?";
    params.push_back(query.status_equals);
  }
  const char* op = ascending ? ">" : "<";
  if (!query.next_token.empty()) {
    std::optional<Value> position = tokens_.Decode(fingerprint, query.next_token);
    const Value* key = position ? position->Find("k") : nullptr;
    const Value* id = position ? position->Find("i") : nullptr;
    const bool key_ok =
        key && (query.sort_by == SortBy::kCreationTime ? key->is_int() : key->is_string());
    if (!key_ok || !id || !id->is_int()) {
      return MakeError(kind.errors.invalid_token, ErrorKind::kValidation,
                       Vars(kind, account, region, ""));
    }
    Value key_param =
        query.sort_by == SortBy::kCreationTime ? Value(std::bit_cast<double>(key->AsInt())) : *key;
    sql += " AND (" + column + " " + op + " ? OR (" + column + " = ? AND id " + op + " ?))";
    params.push_back(key_param);
    params.push_back(key_param);
    params.push_back(id->AsInt());
  }
  const char* dir = ascending ? "ASC" : "DESC";
  sql += " ORDER BY " + column + " " + dir + ", id " + dir + " LIMIT ?";
  params.push_back(int64_t{limit} + 1);

  NIMBUS_ASSIGN_OR_RETURN(Rows rows, db_.Query(sql, params));
  NIMBUS_ASSIGN_OR_RETURN(std::vector<Loaded> loaded, FromRows(rows));
  ListPage page;
  const bool more = loaded.size() > static_cast<size_t>(limit);
  if (more) loaded.resize(limit);
  if (more) {
    const Loaded& last = loaded.back();
    Value key;
    switch (query.sort_by) {
      case SortBy::kCreationTime:
        key = Value(DoubleBits(last.resource.created_at));
        break;
      case SortBy::kName:
        key = Value(last.resource.name);
        break;
      case SortBy::kStatus:
        key = Value(last.resource.status);
        break;
    }
    page.next_token = tokens_.Encode(fingerprint, Value::Object({{"k", key}, {"i", last.id}}));
  }
  for (Loaded& l : loaded) page.items.push_back(std::move(l.resource));
  return page;
}

Result<std::vector<Resource>> ResourceStore::ListNonTerminal(const ResourceKind& kind) {
  std::string sql =
      "SELECT " + std::string(kColumns) + " FROM control_resources WHERE service = ? AND kind = ?";
  Params params = {kind.service, kind.kind};
  if (!kind.states.terminal.empty()) {
    sql += " AND status NOT IN (";
    bool first = true;
    for (const std::string& t : kind.states.terminal) {
      sql += first ? "?" : ", ?";
      first = false;
      params.push_back(t);
    }
    sql += ")";
  }
  sql += " ORDER BY id";
  NIMBUS_ASSIGN_OR_RETURN(Rows rows, db_.Query(sql, params));
  NIMBUS_ASSIGN_OR_RETURN(std::vector<Loaded> loaded, FromRows(rows));
  std::vector<Resource> out;
  out.reserve(loaded.size());
  for (Loaded& l : loaded) out.push_back(std::move(l.resource));
  return out;
}

Result<Tags> ResourceStore::AddTags(std::string_view arn, const Tags& tags,
                                    std::string_view caller_account) {
  const ResourceKind* arn_kind = FindKindByArn(arn);
  Tags result;
  NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(std::optional<Loaded> l, SelectByArn(s, arn_kind, arn, caller_account));
    if (!l) return NotFoundByArn(arn);
    Resource& r = l->resource;
    const ResourceKind& kind = KindOf(r.service, r.kind);
    Tags merged = MergeTags(r.tags, tags);
    NIMBUS_RETURN_IF_ERROR(CheckTags(kind, merged, VarsOf(kind, r)));
    r.tags = merged;
    l->stored_tags = Reseq(l->stored_tags, merged);
    r.version += 1;
    r.modified_at = Now();
    NIMBUS_RETURN_IF_ERROR(WriteBack(s, *l));
    result = std::move(merged);
    return Status::Ok();
  }));
  return result;
}

Status ResourceStore::RemoveTags(std::string_view arn, const std::vector<std::string>& keys,
                                 std::string_view caller_account) {
  const ResourceKind* arn_kind = FindKindByArn(arn);
  return db_.WithTransaction([&](Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(std::optional<Loaded> l, SelectByArn(s, arn_kind, arn, caller_account));
    if (!l) return NotFoundByArn(arn);
    Resource& r = l->resource;
    Tags kept;
    for (const Tag& t : r.tags) {
      if (std::find(keys.begin(), keys.end(), t.key) == keys.end()) kept.push_back(t);
    }
    if (kept.size() == r.tags.size()) return Status::Ok();
    r.tags = kept;
    l->stored_tags = Reseq(l->stored_tags, kept);
    r.version += 1;
    r.modified_at = Now();
    return WriteBack(s, *l);
  });
}

Result<TagPage> ResourceStore::ListTags(std::string_view arn, int max_results,
                                        std::string_view next_token,
                                        std::string_view caller_account) {
  NIMBUS_ASSIGN_OR_RETURN(std::optional<Loaded> l,
                          SelectByArn(db_, FindKindByArn(arn), arn, caller_account));
  if (!l) return NotFoundByArn(arn);
  const ResourceKind& kind = KindOf(l->resource.service, l->resource.kind);
  if (max_results < 0) {
    return InvalidInput(kind,
                        "MaxResults must be positive; got " + std::to_string(max_results) + ".");
  }
  const std::string fingerprint =
      ToJson(Value::Object({{"op", Value("tags")}, {"arn", Value(l->resource.arn)}}));
  int64_t after = 0;
  if (!next_token.empty()) {
    std::optional<Value> position = tokens_.Decode(fingerprint, next_token);
    const Value* seq = position ? position->Find("s") : nullptr;
    if (!seq || !seq->is_int()) {
      return MakeError(kind.errors.invalid_token, ErrorKind::kValidation,
                       VarsOf(kind, l->resource));
    }
    after = seq->AsInt();
  }
  // Keyset over seq, the order in which keys were added: a page boundary stays put
  // when tags are added or removed between pages.
  std::vector<size_t> order;
  for (size_t i = 0; i < l->stored_tags.tags.size(); ++i) {
    if (l->stored_tags.seqs[i] > after) order.push_back(i);
  }
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return l->stored_tags.seqs[a] < l->stored_tags.seqs[b]; });
  TagPage page;
  const size_t limit = max_results == 0 ? order.size() : static_cast<size_t>(max_results);
  for (size_t i = 0; i < order.size() && i < limit; ++i) {
    page.tags.push_back(l->stored_tags.tags[order[i]]);
  }
  if (order.size() > limit) {
    page.next_token = tokens_.Encode(
        fingerprint, Value::Object({{"s", Value(l->stored_tags.seqs[order[limit - 1]])}}));
  }
  return page;
}

Result<ListQuery> ListQueryFromInput(const ResourceKind& kind, const Value& input) {
  ListQuery q;
  q.name_contains = input.GetString("NameContains");
  auto time = [&](std::string_view member, std::optional<double>& out) -> Status {
    const Value* v = input.Find(member);
    if (!v || v->is_null()) return Status::Ok();
    if (v->is_number() || v->is_timestamp()) {
      out = v->AsDouble();
      return Status::Ok();
    }
    double parsed = 0;
    if (v->is_string() && ParseIso8601(v->AsString(), &parsed)) {
      out = parsed;
      return Status::Ok();
    }
    return InvalidInput(kind, std::string(member) + " is not a timestamp.");
  };
  NIMBUS_RETURN_IF_ERROR(time("CreationTimeAfter", q.creation_time_after));
  NIMBUS_RETURN_IF_ERROR(time("CreationTimeBefore", q.creation_time_before));
  NIMBUS_RETURN_IF_ERROR(time("LastModifiedTimeAfter", q.last_modified_time_after));
  NIMBUS_RETURN_IF_ERROR(time("LastModifiedTimeBefore", q.last_modified_time_before));
  q.status_equals = input.GetString("StatusEquals");
  const std::string sort_by = input.GetString("SortBy", "CreationTime");
  if (sort_by == "CreationTime") {
    q.sort_by = SortBy::kCreationTime;
  } else if (sort_by == "Name") {
    q.sort_by = SortBy::kName;
  } else if (sort_by == "Status") {
    q.sort_by = SortBy::kStatus;
  } else {
    return InvalidInput(kind, "Value '" + sort_by +
                                  "' at 'sortBy' failed to satisfy constraint: Member must "
                                  "satisfy enum value set: [Name, CreationTime, Status]");
  }
  const std::string sort_order = input.GetString("SortOrder", "Descending");
  if (sort_order == "Descending") {
    q.sort_order = SortOrder::kDescending;
  } else if (sort_order == "Ascending") {
    q.sort_order = SortOrder::kAscending;
  } else {
    return InvalidInput(kind, "Value '" + sort_order +
                                  "' at 'sortOrder' failed to satisfy constraint: Member must "
                                  "satisfy enum value set: [Ascending, Descending]");
  }
  if (const Value* max = input.Find("MaxResults"); max && !max->is_null()) {
    q.max_results = static_cast<int>(std::clamp<int64_t>(max->AsInt(), -1, 1 << 20));
  }
  q.next_token = input.GetString("NextToken");
  return q;
}

}  // namespace nimbus::control
