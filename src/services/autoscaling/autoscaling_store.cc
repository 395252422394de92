#include "services/autoscaling/autoscaling_store.h"

#include <utility>

#include "core/json.h"

namespace nimbus::services::autoscaling {
namespace {

constexpr const char* kSchemaV1 = R"sql(
  CREATE TABLE autoscaling_targets (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    namespace TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    dimension TEXT NOT NULL,
    arn TEXT NOT NULL,
    min_capacity INTEGER NOT NULL,
    max_capacity INTEGER NOT NULL,
    role_arn TEXT NOT NULL,
    suspended_in INTEGER NOT NULL,
    suspended_out INTEGER NOT NULL,
    suspended_scheduled INTEGER NOT NULL,
    created REAL NOT NULL,
    last_scale_out REAL NOT NULL DEFAULT 0,
    last_scale_in REAL NOT NULL DEFAULT 0,
    tags TEXT NOT NULL,
    PRIMARY KEY (account, region, namespace, resource_id, dimension)
  );
  CREATE UNIQUE INDEX autoscaling_targets_by_arn ON autoscaling_targets (arn);
  CREATE TABLE autoscaling_policies (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    namespace TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    dimension TEXT NOT NULL,
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    type TEXT NOT NULL,
    configuration TEXT NOT NULL,
    alarms TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (account, region, namespace, resource_id, dimension, name)
  );
  CREATE TABLE autoscaling_activities (
    seq INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    namespace TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    dimension TEXT NOT NULL,
    activity_id TEXT NOT NULL,
    description TEXT NOT NULL,
    cause TEXT NOT NULL,
    details TEXT NOT NULL,
    start_time REAL NOT NULL,
    end_time REAL NOT NULL,
    status_code TEXT NOT NULL,
    status_message TEXT NOT NULL
  );
  CREATE INDEX autoscaling_activities_by_namespace
    ON autoscaling_activities (account, region, namespace, seq);
  CREATE INDEX autoscaling_activities_by_time ON autoscaling_activities (start_time);
)sql";

Status InvalidToken() {
  return Status::Aws("InvalidNextTokenException", 400, "The NextToken value is invalid.");
}

// A cursor is a JSON list of the sort-key strings of the last row of a page.
Result<std::vector<std::string>> ParseCursor(const std::string& cursor, size_t parts) {
  std::vector<std::string> out;
  if (cursor.empty()) return out;
  auto parsed = ParseJson(cursor);
  if (!parsed.ok() || !parsed->is_list() || parsed->list().size() != parts) return InvalidToken();
  for (const Value& v : parsed->list()) {
    if (!v.is_string()) return InvalidToken();
    out.push_back(v.AsString());
  }
  return out;
}

std::string MakeCursor(std::initializer_list<std::string> parts) {
  Value list = Value::MakeList();
  for (const std::string& p : parts) list.Append(p);
  return ToJson(list);
}

Value TagsValue(const std::map<std::string, std::string>& tags) {
  Value map = Value::MakeMap();
  for (const auto& [k, v] : tags) map[k] = v;
  return map;
}

std::map<std::string, std::string> TagsFrom(const std::string& json) {
  std::map<std::string, std::string> tags;
  auto parsed = ParseJson(json);
  if (parsed.ok() && parsed->is_map()) {
    for (const auto& [k, v] : parsed->map()) tags[k] = v.AsString();
  }
  return tags;
}

Value AlarmsValue(const std::vector<PolicyAlarm>& alarms) {
  Value list = Value::MakeList();
  for (const PolicyAlarm& a : alarms) list.Append(Value::Object({{"n", a.name}, {"a", a.arn}}));
  return list;
}

std::vector<PolicyAlarm> AlarmsFrom(const std::string& json) {
  std::vector<PolicyAlarm> alarms;
  auto parsed = ParseJson(json);
  if (parsed.ok() && parsed->is_list()) {
    for (const Value& a : parsed->list()) alarms.push_back({a.GetString("n"), a.GetString("a")});
  }
  return alarms;
}

TargetKey KeyFrom(const store::Row& row) {
  return TargetKey{row.at("namespace").AsString(), row.at("resource_id").AsString(),
                   row.at("dimension").AsString()};
}

ScalableTarget TargetFrom(const store::Row& row) {
  ScalableTarget t;
  t.account = row.at("account").AsString();
  t.region = row.at("region").AsString();
  t.key = KeyFrom(row);
  t.arn = row.at("arn").AsString();
  t.min_capacity = row.at("min_capacity").AsInt();
  t.max_capacity = row.at("max_capacity").AsInt();
  t.role_arn = row.at("role_arn").AsString();
  t.suspended.dynamic_in = row.at("suspended_in").AsInt() != 0;
  t.suspended.dynamic_out = row.at("suspended_out").AsInt() != 0;
  t.suspended.scheduled = row.at("suspended_scheduled").AsInt() != 0;
  t.creation_time = row.at("created").AsDouble();
  t.last_scale_out = row.at("last_scale_out").AsDouble();
  t.last_scale_in = row.at("last_scale_in").AsDouble();
  t.tags = TagsFrom(row.at("tags").AsString());
  return t;
}

ScalingPolicy PolicyFrom(const store::Row& row) {
  ScalingPolicy p;
  p.account = row.at("account").AsString();
  p.region = row.at("region").AsString();
  p.key = KeyFrom(row);
  p.name = row.at("name").AsString();
  p.arn = row.at("arn").AsString();
  p.type = row.at("type").AsString();
  auto config = ParseJson(row.at("configuration").AsString());
  if (config.ok()) p.configuration = std::move(config).value();
  p.alarms = AlarmsFrom(row.at("alarms").AsString());
  p.creation_time = row.at("created").AsDouble();
  return p;
}

ScalingActivity ActivityFrom(const store::Row& row) {
  ScalingActivity a;
  a.seq = row.at("seq").AsInt();
  a.account = row.at("account").AsString();
  a.region = row.at("region").AsString();
  a.key = KeyFrom(row);
  a.activity_id = row.at("activity_id").AsString();
  a.description = row.at("description").AsString();
  a.cause = row.at("cause").AsString();
  a.details = row.at("details").AsString();
  a.start_time = row.at("start_time").AsDouble();
  a.end_time = row.at("end_time").AsDouble();
  a.status_code = row.at("status_code").AsString();
  a.status_message = row.at("status_message").AsString();
  return a;
}

constexpr const char* kTargetWhere =
    "account = ? AND region = ? AND namespace = ? AND resource_id = ? AND dimension = ?";

store::Params TargetParams(const std::string& account, const std::string& region,
                           const TargetKey& key) {
  return {account, region, key.service_namespace, key.resource_id, key.dimension};
}

// " AND column IN (?, ?, ...)" for values, appended to params.
std::string InClause(const char* column, const std::vector<std::string>& values,
                     store::Params& params) {
  if (values.empty()) return "";
  std::string sql = std::string(" AND ") + column + " IN (";
  for (size_t i = 0; i < values.size(); ++i) {
    sql += i ? ", ?" : "?";
    params.push_back(values[i]);
  }
  return sql + ")";
}

}  // namespace

Result<std::unique_ptr<AutoScalingStore>> AutoScalingStore::Open(store::Database& db) {
  db.RegisterMigration("autoscaling", 1, kSchemaV1);
  NIMBUS_RETURN_IF_ERROR(db.Migrate());
  return std::unique_ptr<AutoScalingStore>(new AutoScalingStore(db));
}

// ---------------------------------------------------------------------------------------
// Targets

Result<std::optional<ScalableTarget>> AutoScalingStore::GetTarget(const std::string& account,
                                                                  const std::string& region,
                                                                  const TargetKey& key) {
  NIMBUS_ASSIGN_OR_RETURN(
      store::Rows rows,
      db_.Query(std::string("SELECT * FROM autoscaling_targets WHERE ") + kTargetWhere,
                TargetParams(account, region, key)));
  if (rows.empty()) return std::optional<ScalableTarget>();
  return std::optional<ScalableTarget>(TargetFrom(rows.front()));
}

Result<std::optional<ScalableTarget>> AutoScalingStore::FindTargetByArn(const std::string& account,
                                                                        const std::string& region,
                                                                        const std::string& arn) {
  NIMBUS_ASSIGN_OR_RETURN(
      store::Rows rows,
      db_.Query("SELECT * FROM autoscaling_targets WHERE account = ? AND region = ? AND arn = ?",
                {account, region, arn}));
  if (rows.empty()) return std::optional<ScalableTarget>();
  return std::optional<ScalableTarget>(TargetFrom(rows.front()));
}

Status AutoScalingStore::PutTarget(const ScalableTarget& t) {
  return db_
      .Exec(
          "INSERT INTO autoscaling_targets (account, region, namespace, resource_id, dimension, "
          "arn, min_capacity, max_capacity, role_arn, suspended_in, suspended_out, "
          "suspended_scheduled, created, last_scale_out, last_scale_in, tags) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT (account, region, namespace, resource_id, dimension) DO UPDATE SET "
          "min_capacity = excluded.min_capacity, max_capacity = excluded.max_capacity, "
          "role_arn = excluded.role_arn, suspended_in = excluded.suspended_in, "
          "suspended_out = excluded.suspended_out, "
          "suspended_scheduled = excluded.suspended_scheduled, tags = excluded.tags",
          {t.account, t.region, t.key.service_namespace, t.key.resource_id, t.key.dimension, t.arn,
           t.min_capacity, t.max_capacity, t.role_arn, t.suspended.dynamic_in ? 1 : 0,
           t.suspended.dynamic_out ? 1 : 0, t.suspended.scheduled ? 1 : 0, t.creation_time,
           t.last_scale_out, t.last_scale_in, ToJson(TagsValue(t.tags))})
      .status();
}

Result<std::optional<std::vector<ScalingPolicy>>> AutoScalingStore::DeleteTarget(
    const std::string& account, const std::string& region, const TargetKey& key) {
  std::optional<std::vector<ScalingPolicy>> deleted;
  NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](store::Session& s) -> Status {
    const store::Params params = TargetParams(account, region, key);
    NIMBUS_ASSIGN_OR_RETURN(
        store::Rows policies,
        s.Query(std::string("SELECT * FROM autoscaling_policies WHERE ") + kTargetWhere, params));
    NIMBUS_ASSIGN_OR_RETURN(
        int64_t n,
        s.Exec(std::string("DELETE FROM autoscaling_targets WHERE ") + kTargetWhere, params));
    if (n == 0) return Status::Ok();
    NIMBUS_RETURN_IF_ERROR(
        s.Exec(std::string("DELETE FROM autoscaling_policies WHERE ") + kTargetWhere, params));
    deleted.emplace();
    for (const store::Row& row : policies) deleted->push_back(PolicyFrom(row));
    return Status::Ok();
  }));
  return deleted;
}

std::string AutoScalingStore::TargetCursor(const ScalableTarget& t) {
  return MakeCursor({t.key.resource_id, t.key.dimension});
}

Result<std::vector<ScalableTarget>> AutoScalingStore::ListTargets(const std::string& account,
                                                                  const std::string& region,
                                                                  const TargetFilter& filter,
                                                                  const std::string& cursor,
                                                                  int limit) {
  NIMBUS_ASSIGN_OR_RETURN(std::vector<std::string> after, ParseCursor(cursor, 2));
  store::Params params{account, region, filter.service_namespace};
  std::string sql =
      "SELECT * FROM autoscaling_targets WHERE account = ? AND region = ? AND namespace = ?";
  sql += InClause("resource_id", filter.resource_ids, params);
  if (!filter.dimension.empty()) {
    sql += " AND dimension = ?";
    params.push_back(filter.dimension);
  }
  if (!after.empty()) {
    sql += " AND (resource_id > ? OR (resource_id = ? AND dimension > ?))";
    params.insert(params.end(), {after[0], after[0], after[1]});
  }
  sql += " ORDER BY resource_id, dimension LIMIT ?";
  params.push_back(limit);
  NIMBUS_ASSIGN_OR_RETURN(store::Rows rows, db_.Query(sql, params));
  std::vector<ScalableTarget> out;
  out.reserve(rows.size());
  for (const store::Row& row : rows) out.push_back(TargetFrom(row));
  return out;
}

Result<std::vector<ScalableTarget>> AutoScalingStore::AllTargets() {
  NIMBUS_ASSIGN_OR_RETURN(store::Rows rows,
                          db_.Query("SELECT * FROM autoscaling_targets ORDER BY account, region, "
                                    "namespace, resource_id, dimension"));
  std::vector<ScalableTarget> out;
  out.reserve(rows.size());
  for (const store::Row& row : rows) out.push_back(TargetFrom(row));
  return out;
}

Status AutoScalingStore::RecordScaling(const std::string& account, const std::string& region,
                                       const TargetKey& key, bool out, double when) {
  store::Params params{when};
  for (Value& v : TargetParams(account, region, key)) params.push_back(std::move(v));
  return db_
      .Exec(std::string("UPDATE autoscaling_targets SET ") +
                (out ? "last_scale_out" : "last_scale_in") + " = ? WHERE " + kTargetWhere,
            params)
      .status();
}

// ---------------------------------------------------------------------------------------
// Policies

Result<std::optional<ScalingPolicy>> AutoScalingStore::GetPolicy(const std::string& account,
                                                                 const std::string& region,
                                                                 const TargetKey& key,
                                                                 const std::string& name) {
  store::Params params = TargetParams(account, region, key);
  params.push_back(name);
  NIMBUS_ASSIGN_OR_RETURN(store::Rows rows,
                          db_.Query(std::string("SELECT * FROM autoscaling_policies WHERE ") +
                                        kTargetWhere + " AND name = ?",
                                    params));
  if (rows.empty()) return std::optional<ScalingPolicy>();
  return std::optional<ScalingPolicy>(PolicyFrom(rows.front()));
}

Status AutoScalingStore::PutPolicy(const ScalingPolicy& p) {
  return db_
      .Exec(
          "INSERT INTO autoscaling_policies (account, region, namespace, resource_id, dimension, "
          "name, arn, type, configuration, alarms, created) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT (account, region, namespace, resource_id, dimension, name) DO UPDATE SET "
          "type = excluded.type, configuration = excluded.configuration, "
          "alarms = excluded.alarms",
          {p.account, p.region, p.key.service_namespace, p.key.resource_id, p.key.dimension, p.name,
           p.arn, p.type, ToJson(p.configuration), ToJson(AlarmsValue(p.alarms)), p.creation_time})
      .status();
}

Result<bool> AutoScalingStore::DeletePolicy(const std::string& account, const std::string& region,
                                            const TargetKey& key, const std::string& name) {
  store::Params params = TargetParams(account, region, key);
  params.push_back(name);
  NIMBUS_ASSIGN_OR_RETURN(
      int64_t n, db_.Exec(std::string("DELETE FROM autoscaling_policies WHERE ") + kTargetWhere +
                              " AND name = ?",
                          params));
  return n > 0;
}

std::string AutoScalingStore::PolicyCursor(const ScalingPolicy& p) {
  return MakeCursor({p.key.resource_id, p.key.dimension, p.name});
}

Result<std::vector<ScalingPolicy>> AutoScalingStore::ListPolicies(const std::string& account,
                                                                  const std::string& region,
                                                                  const PolicyFilter& filter,
                                                                  const std::string& cursor,
                                                                  int limit) {
  NIMBUS_ASSIGN_OR_RETURN(std::vector<std::string> after, ParseCursor(cursor, 3));
  store::Params params{account, region, filter.service_namespace};
  std::string sql =
      "SELECT * FROM autoscaling_policies WHERE account = ? AND region = ? AND namespace = ?";
  if (!filter.resource_id.empty()) {
    sql += " AND resource_id = ?";
    params.push_back(filter.resource_id);
  }
  if (!filter.dimension.empty()) {
    sql += " AND dimension = ?";
    params.push_back(filter.dimension);
  }
  sql += InClause("name", filter.names, params);
  if (!after.empty()) {
    sql +=
        " AND (resource_id > ? OR (resource_id = ? AND (dimension > ? OR (dimension = ? AND "
        "name > ?))))";
    params.insert(params.end(), {after[0], after[0], after[1], after[1], after[2]});
  }
  sql += " ORDER BY resource_id, dimension, name LIMIT ?";
  params.push_back(limit);
  NIMBUS_ASSIGN_OR_RETURN(store::Rows rows, db_.Query(sql, params));
  std::vector<ScalingPolicy> out;
  out.reserve(rows.size());
  for (const store::Row& row : rows) out.push_back(PolicyFrom(row));
  return out;
}

Result<std::vector<ScalingPolicy>> AutoScalingStore::PoliciesOf(const std::string& account,
                                                                const std::string& region,
                                                                const TargetKey& key) {
  NIMBUS_ASSIGN_OR_RETURN(store::Rows rows,
                          db_.Query(std::string("SELECT * FROM autoscaling_policies WHERE ") +
                                        kTargetWhere + " ORDER BY name",
                                    TargetParams(account, region, key)));
  std::vector<ScalingPolicy> out;
  out.reserve(rows.size());
  for (const store::Row& row : rows) out.push_back(PolicyFrom(row));
  return out;
}

// ---------------------------------------------------------------------------------------
// Activities

Result<int64_t> AutoScalingStore::AddActivity(const ScalingActivity& a) {
  int64_t seq = 0;
  NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](store::Session& s) -> Status {
    NIMBUS_RETURN_IF_ERROR(
        s.Exec("INSERT INTO autoscaling_activities (account, region, namespace, resource_id, "
               "dimension, activity_id, description, cause, details, start_time, end_time, "
               "status_code, status_message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               {a.account, a.region, a.key.service_namespace, a.key.resource_id, a.key.dimension,
                a.activity_id, a.description, a.cause, a.details, a.start_time, a.end_time,
                a.status_code, a.status_message}));
    NIMBUS_ASSIGN_OR_RETURN(store::Rows rows, s.Query("SELECT max(seq) AS seq FROM "
                                                      "autoscaling_activities"));
    if (!rows.empty()) seq = rows.front().at("seq").AsInt();
    return Status::Ok();
  }));
  return seq;
}

Result<std::vector<ScalingActivity>> AutoScalingStore::ListActivities(
    const std::string& account, const std::string& region, const std::string& service_namespace,
    const std::string& resource_id, const std::string& dimension, int64_t before_seq, int limit) {
  store::Params params{account, region, service_namespace};
  std::string sql =
      "SELECT * FROM autoscaling_activities WHERE account = ? AND region = ? AND namespace = ?";
  if (!resource_id.empty()) {
    sql += " AND resource_id = ?";
    params.push_back(resource_id);
  }
  if (!dimension.empty()) {
    sql += " AND dimension = ?";
    params.push_back(dimension);
  }
  if (before_seq > 0) {
    sql += " AND seq < ?";
    params.push_back(before_seq);
  }
  sql += " ORDER BY seq DESC LIMIT ?";
  params.push_back(limit);
  NIMBUS_ASSIGN_OR_RETURN(store::Rows rows, db_.Query(sql, params));
  std::vector<ScalingActivity> out;
  out.reserve(rows.size());
  for (const store::Row& row : rows) out.push_back(ActivityFrom(row));
  return out;
}

Status AutoScalingStore::ExpireActivities(double before) {
  return db_.Exec("DELETE FROM autoscaling_activities WHERE start_time < ?", {before}).status();
}

}  // namespace nimbus::services::autoscaling
