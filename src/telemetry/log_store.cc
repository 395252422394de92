#include "telemetry/log_store.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "core/crypto.h"
#include "core/strings.h"

namespace nimbus::telemetry {
namespace {

// Events are a rowid table: the rowid is the ingestion sequence number that orders
// events with equal timestamps, and both indexes end with it implicitly, so that
// (stream, timestamp, seq) and (group, timestamp, seq) are index orders. Events carry no
// foreign key (a per-row check would slow ingestion); deleting a stream or group
// deletes its events in the same transaction. last_event_ms is -1 until the stream has
// an event, so that LastEventTime ordering can use an index.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE log_groups (
  id INTEGER PRIMARY KEY,
  account TEXT NOT NULL,
  region TEXT NOT NULL,
  name TEXT NOT NULL,
  creation_ms INTEGER NOT NULL,
  retention_days INTEGER,
  kms_key_id TEXT NOT NULL DEFAULT '',
  stored_bytes INTEGER NOT NULL DEFAULT 0,
  UNIQUE (account, region, name)
);
CREATE INDEX log_groups_with_retention ON log_groups (retention_days)
  WHERE retention_days IS NOT NULL;
CREATE TABLE log_group_tags (
  group_id INTEGER NOT NULL REFERENCES log_groups (id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (group_id, key)
) WITHOUT ROWID;
CREATE TABLE log_streams (
  id INTEGER PRIMARY KEY,
  group_id INTEGER NOT NULL REFERENCES log_groups (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  creation_ms INTEGER NOT NULL,
  first_event_ms INTEGER,
  last_event_ms INTEGER NOT NULL DEFAULT -1,
  last_ingestion_ms INTEGER,
  stored_bytes INTEGER NOT NULL DEFAULT 0,
  upload_seq INTEGER NOT NULL DEFAULT 0,
  UNIQUE (group_id, name)
);
CREATE INDEX log_streams_by_last_event ON log_streams (group_id, last_event_ms, name);
CREATE TABLE log_events (
  id INTEGER PRIMARY KEY,
  stream_id INTEGER NOT NULL,
  group_id INTEGER NOT NULL,
  timestamp_ms INTEGER NOT NULL,
  ingestion_ms INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX log_events_by_stream ON log_events (stream_id, timestamp_ms);
CREATE INDEX log_events_by_group ON log_events (group_id, timestamp_ms);
)sql";

constexpr int64_t kDayMs = 86400000;
constexpr int64_t kTooOldMs = 14 * kDayMs;
constexpr int64_t kTooNewMs = 2 * 3600 * 1000;
constexpr int64_t kMaxSpanMs = kDayMs;
constexpr int kRetentionDays[] = {1,   3,   5,   7,   14,   30,   60,   90,   120,  150,  180,
                                  365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653};
constexpr size_t kInsertRows = 200;             // rows per multi-row INSERT
constexpr int kReadChunk = 500;                 // rows per read while paging events
constexpr int64_t kMaxResponseBytes = 1048576;  // GetLogEvents/FilterLogEvents cap, as AWS
constexpr int64_t kFilterScanBudget = 100000;   // events examined per FilterLogEvents call
constexpr int kExpireChunk = 5000;              // events deleted per sweep transaction
constexpr size_t kMaxStreamsInSql = 100;        // beyond this, stream filters run in C++
constexpr int64_t kMaxPos = std::numeric_limits<int64_t>::max();
constexpr std::string_view kTokenSalt = "nimbus-logs-token-v1";

// ---- errors

Status GroupNotFound() {
  return Status::Aws("ResourceNotFoundException", 400, "The specified log group does not exist.",
                     ErrorKind::kNotFound);
}
Status StreamNotFound() {
  return Status::Aws("ResourceNotFoundException", 400, "The specified log stream does not exist.",
                     ErrorKind::kNotFound);
}
Status InvalidParameter(std::string message) {
  return Status::Aws("InvalidParameterException", 400, std::move(message));
}
Status InvalidToken() { return InvalidParameter("The specified nextToken is not valid."); }
Status AlreadyExists(std::string message) {
  return Status::Aws("ResourceAlreadyExistsException", 400, std::move(message),
                     ErrorKind::kConflict);
}

// ---- rows

const Value& Col(const store::Row& row, std::string_view name) {
  static const Value kNull;
  auto it = row.find(name);
  return it == row.end() ? kNull : it->second;
}
std::optional<int64_t> OptInt(const store::Row& row, std::string_view name) {
  const Value& v = Col(row, name);
  if (v.is_null()) return std::nullopt;
  return v.AsInt();
}

struct GroupRow {
  int64_t id = 0;
  std::string name;
  int64_t creation_ms = 0;
  std::optional<int> retention_days;
  std::string kms_key_id;
  int64_t stored_bytes = 0;
};

GroupRow ToGroupRow(const store::Row& r) {
  GroupRow g;
  g.id = Col(r, "id").AsInt();
  g.name = Col(r, "name").AsString();
  g.creation_ms = Col(r, "creation_ms").AsInt();
  if (auto days = OptInt(r, "retention_days")) g.retention_days = static_cast<int>(*days);
  g.kms_key_id = Col(r, "kms_key_id").AsString();
  g.stored_bytes = Col(r, "stored_bytes").AsInt();
  return g;
}

Result<GroupRow> FindGroup(store::Session& s, const std::string& account, const std::string& region,
                           const std::string& name) {
  NIMBUS_ASSIGN_OR_RETURN(
      store::Rows rows,
      s.Query("SELECT * FROM log_groups WHERE account = ? AND region = ? AND name = ?",
              {account, region, name}));
  if (rows.empty()) return GroupNotFound();
  return ToGroupRow(rows.front());
}

struct StreamRow {
  int64_t id = 0;
  std::string name;
  int64_t creation_ms = 0;
  std::optional<int64_t> first_event_ms;
  int64_t last_event_ms = -1;
  std::optional<int64_t> last_ingestion_ms;
  int64_t stored_bytes = 0;
  int64_t upload_seq = 0;
};

StreamRow ToStreamRow(const store::Row& r) {
  StreamRow s;
  s.id = Col(r, "id").AsInt();
  s.name = Col(r, "name").AsString();
  s.creation_ms = Col(r, "creation_ms").AsInt();
  s.first_event_ms = OptInt(r, "first_event_ms");
  s.last_event_ms = Col(r, "last_event_ms").AsInt();
  s.last_ingestion_ms = OptInt(r, "last_ingestion_ms");
  s.stored_bytes = Col(r, "stored_bytes").AsInt();
  s.upload_seq = Col(r, "upload_seq").AsInt();
  return s;
}

Result<StreamRow> FindStream(store::Session& s, int64_t group_id, const std::string& name) {
  NIMBUS_ASSIGN_OR_RETURN(
      store::Rows rows,
      s.Query("SELECT * FROM log_streams WHERE group_id = ? AND name = ?", {group_id, name}));
  if (rows.empty()) return StreamNotFound();
  return ToStreamRow(rows.front());
}

std::string SequenceToken(int64_t upload_seq) {
  std::string digits = std::to_string(upload_seq);
  return std::string(56 - std::min<size_t>(56, digits.size()), '0') + digits;
}

// The smallest string greater than every string that starts with prefix (byte order), or
// nullopt when there is none (a prefix of only 0xFF bytes).
std::optional<std::string> PrefixUpperBound(std::string prefix) {
  while (!prefix.empty()) {
    unsigned char last = static_cast<unsigned char>(prefix.back());
    if (last < 0xFF) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::nullopt;
}

// Appends "AND <column> >= ? AND <column> < ?" for a name prefix.
void AddPrefixRange(const std::string& column, const std::string& prefix, std::string& sql,
                    store::Params& params) {
  if (prefix.empty()) return;
  sql += " AND " + column + " >= ?";
  params.push_back(prefix);
  if (auto upper = PrefixUpperBound(prefix)) {
    sql += " AND " + column + " < ?";
    params.push_back(*upper);
  }
}

// ---- tokens

uint64_t CheckValue(std::string_view payload) {
  std::string digest = Sha256(std::string(kTokenSalt) + std::string(payload));
  uint64_t v = 0;
  std::memcpy(&v, digest.data(), sizeof(v));
  return v;
}

// A page token: base64(kind '\n' (len ':' field)* check8).
std::string EncodeToken(std::string_view kind, const std::vector<std::string>& fields) {
  std::string payload(kind);
  payload.push_back('\n');
  for (const std::string& f : fields) {
    payload += std::to_string(f.size());
    payload.push_back(':');
    payload += f;
  }
  uint64_t check = CheckValue(payload);
  payload.append(reinterpret_cast<const char*>(&check), sizeof(check));
  return Base64Encode(payload);
}

std::optional<std::vector<std::string>> DecodeToken(std::string_view kind, std::string_view token,
                                                    size_t field_count) {
  auto raw = Base64Decode(token);
  // Re-encoding must give the token back: the decoder tolerates what we never emit.
  if (!raw || raw->size() < kind.size() + 1 + sizeof(uint64_t) || Base64Encode(*raw) != token) {
    return std::nullopt;
  }
  std::string_view payload(raw->data(), raw->size() - sizeof(uint64_t));
  uint64_t check = 0;
  std::memcpy(&check, raw->data() + payload.size(), sizeof(check));
  if (check != CheckValue(payload)) return std::nullopt;
  if (payload.substr(0, kind.size()) != kind || payload[kind.size()] != '\n') return std::nullopt;
  std::vector<std::string> fields;
  size_t pos = kind.size() + 1;
  while (pos < payload.size()) {
    size_t colon = payload.find(':', pos);
    if (colon == std::string_view::npos) return std::nullopt;
    auto len = ParseInt(payload.substr(pos, colon - pos));
    if (!len || *len < 0 || static_cast<size_t>(*len) > payload.size() - colon - 1) {
      return std::nullopt;
    }
    fields.emplace_back(payload.substr(colon + 1, *len));
    pos = colon + 1 + *len;
  }
  if (fields.size() != field_count) return std::nullopt;
  return fields;
}

// A place in an (timestamp, seq) event order. Bounds are exclusive: (t, 0) sits just
// before every event at time t, because sequence numbers start at 1.
struct Pos {
  int64_t ts = 0;
  int64_t seq = 0;
  auto operator<=>(const Pos&) const = default;
};

std::string Digits20(int64_t v) {
  std::string d = std::to_string(std::max<int64_t>(v, 0));
  return std::string(20 - d.size(), '0') + d;
}

// GetLogEvents' tokens, in AWS's shape: "f/" or "b/" and 56 digits (timestamp, sequence
// number, check digits).
std::string EncodeEventToken(char direction, Pos p) {
  std::string digits = Digits20(p.ts) + Digits20(p.seq);
  std::string check =
      std::to_string(CheckValue(std::string(1, direction) + digits) % 10000000000000000ull);
  digits += std::string(16 - check.size(), '0') + check;
  return std::string(1, direction) + "/" + digits;
}

std::optional<std::pair<char, Pos>> DecodeEventToken(std::string_view token) {
  if (token.size() != 58 || (token[0] != 'f' && token[0] != 'b') || token[1] != '/') {
    return std::nullopt;
  }
  std::string_view digits = token.substr(2);
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  auto ts = ParseInt(digits.substr(0, 20));
  auto seq = ParseInt(digits.substr(20, 20));
  if (!ts || !seq) return std::nullopt;
  Pos p{*ts, *seq};
  if (EncodeEventToken(token[0], p) != token) return std::nullopt;
  return std::make_pair(token[0], p);
}

std::string FilterToken(Pos p) {
  return EncodeToken("filter", {std::to_string(p.ts), std::to_string(p.seq)});
}

std::optional<Pos> DecodeFilterToken(std::string_view token) {
  auto fields = DecodeToken("filter", token, 2);
  if (!fields) return std::nullopt;
  auto ts = ParseInt((*fields)[0]);
  auto seq = ParseInt((*fields)[1]);
  if (!ts || !seq) return std::nullopt;
  return Pos{*ts, *seq};
}

// ---- event reads

// The exclusive bounds that a time window and a retention cutoff put on an event scan.
struct Window {
  Pos lower{-1, 0};
  Pos upper{kMaxPos, 0};
};

Window MakeWindow(std::optional<int64_t> start_ms, std::optional<int64_t> end_ms,
                  std::optional<int> retention_days, int64_t now_ms) {
  Window w;
  if (start_ms) w.lower = std::max(w.lower, Pos{*start_ms, 0});
  if (retention_days) w.lower = std::max(w.lower, Pos{now_ms - *retention_days * kDayMs, 0});
  if (end_ms) w.upper = Pos{*end_ms, 0};
  return w;
}

StoredLogEvent ToEvent(const store::Row& r) {
  StoredLogEvent e;
  e.timestamp_ms = Col(r, "timestamp_ms").AsInt();
  e.ingestion_time_ms = Col(r, "ingestion_ms").AsInt();
  e.message = Col(r, "message").AsString();
  e.event_id = std::to_string(Col(r, "id").AsInt());
  return e;
}

Pos PosOf(const store::Row& r) { return Pos{Col(r, "timestamp_ms").AsInt(), Col(r, "id").AsInt()}; }

// Walks the events of one index key (a stream, a group, or a group's chosen streams)
// that lie strictly between two positions, in (timestamp, seq) order or its reverse, a
// chunk at a time. Each query is one simple index range — "timestamp_ms = t AND id > s"
// or "timestamp_ms >= a AND timestamp_ms < b" — because SQLite seeks on the index's
// implicit rowid only under an equality on timestamp_ms: a row-value bound like
// (timestamp_ms, id) > (t, s) seeks on timestamp_ms alone, which made paging through many
// events with one timestamp quadratic.
class EventCursor {
 public:
  EventCursor(store::Database& db, std::string key_sql, store::Params key_params, Pos lower,
              Pos upper, bool ascending)
      : db_(db),
        key_sql_(std::move(key_sql)),
        key_params_(std::move(key_params)),
        lower_(lower),
        upper_(upper),
        ascending_(ascending) {}

  // The next up to n events (id, stream_id, timestamp_ms, ingestion_ms, message); empty
  // when none are left.
  Result<store::Rows> Next(int n) {
    while (lower_ < upper_) {
      std::string range;
      store::Params params = key_params_;
      Pos exhausted;  // where the cursor stands once this range is read to its end
      if (lower_.ts == upper_.ts) {
        range = "timestamp_ms = ? AND id > ? AND id < ?";
        params.insert(params.end(), {lower_.ts, lower_.seq, upper_.seq});
        exhausted = ascending_ ? upper_ : lower_;
      } else if (ascending_ && lower_.seq > 0) {
        range = "timestamp_ms = ? AND id > ?";
        params.insert(params.end(), {lower_.ts, lower_.seq});
        exhausted = Pos{lower_.ts + 1, 0};
      } else if (ascending_) {
        range = "timestamp_ms >= ? AND timestamp_ms < ?";
        params.insert(params.end(), {lower_.ts, upper_.ts});
        exhausted = Pos{upper_.ts, 0};
      } else if (upper_.seq > 0) {
        range = "timestamp_ms = ? AND id < ?";
        params.insert(params.end(), {upper_.ts, upper_.seq});
        exhausted = Pos{upper_.ts, 0};
      } else {
        range = "timestamp_ms > ? AND timestamp_ms < ?";
        params.insert(params.end(), {lower_.ts, upper_.ts});
        exhausted = Pos{lower_.ts, kMaxPos};
      }
      params.push_back(n);
      NIMBUS_ASSIGN_OR_RETURN(
          store::Rows rows,
          db_.Query("SELECT id, stream_id, timestamp_ms, ingestion_ms, message FROM log_events "
                    "WHERE " +
                        key_sql_ + " AND " + range + " ORDER BY timestamp_ms" +
                        (ascending_ ? ", id" : " DESC, id DESC") + " LIMIT ?",
                    params));
      Pos& cursor = ascending_ ? lower_ : upper_;
      if (!rows.empty()) cursor = PosOf(rows.back());
      if (rows.size() < static_cast<size_t>(n)) cursor = exhausted;
      if (!rows.empty()) return rows;
    }
    return store::Rows{};
  }

 private:
  store::Database& db_;
  const std::string key_sql_;
  const store::Params key_params_;
  Pos lower_;
  Pos upper_;
  const bool ascending_;
};

bool ValidRetention(int days) {
  return std::find(std::begin(kRetentionDays), std::end(kRetentionDays), days) !=
         std::end(kRetentionDays);
}

Status CheckLimit(int limit, int max) {
  if (limit < 1 || limit > max) {
    return InvalidParameter("limit must be between 1 and " + std::to_string(max) + ".");
  }
  return Status::Ok();
}

// Inserts events[begin, end) into a stream and updates the stream's and group's counters.
// REQUIRES: events[begin, end) sorted by timestamp; inside a transaction.
Status InsertEvents(store::Session& s, int64_t group_id, int64_t stream_id,
                    const std::vector<LogEvent>& events, size_t begin, size_t end, int64_t now_ms) {
  if (begin >= end) return Status::Ok();
  int64_t bytes = 0;
  int64_t min_ts = events[begin].timestamp_ms;
  int64_t max_ts = events[begin].timestamp_ms;
  std::string full_sql;
  for (size_t chunk = begin; chunk < end; chunk += kInsertRows) {
    const size_t n = std::min(kInsertRows, end - chunk);
    std::string partial_sql;
    std::string& sql = n == kInsertRows ? full_sql : partial_sql;
    if (sql.empty()) {
      sql =
          "INSERT INTO log_events (stream_id, group_id, timestamp_ms, ingestion_ms, bytes, "
          "message) VALUES ";
      for (size_t i = 0; i < n; ++i) sql += i == 0 ? "(?,?,?,?,?,?)" : ",(?,?,?,?,?,?)";
    }
    store::Params params;
    params.reserve(n * 6);
    for (size_t i = chunk; i < chunk + n; ++i) {
      const LogEvent& e = events[i];
      const int64_t size = static_cast<int64_t>(e.message.size());
      params.insert(params.end(), {stream_id, group_id, e.timestamp_ms, now_ms, size, e.message});
      bytes += size;
      min_ts = std::min(min_ts, e.timestamp_ms);
      max_ts = std::max(max_ts, e.timestamp_ms);
    }
    NIMBUS_RETURN_IF_ERROR(s.Exec(sql, params));
  }
  NIMBUS_RETURN_IF_ERROR(
      s.Exec("UPDATE log_streams SET first_event_ms = MIN(IFNULL(first_event_ms, ?), ?), "
             "last_event_ms = MAX(last_event_ms, ?), last_ingestion_ms = ?, "
             "stored_bytes = stored_bytes + ? WHERE id = ?",
             {min_ts, min_ts, max_ts, now_ms, bytes, stream_id}));
  return s
      .Exec("UPDATE log_groups SET stored_bytes = stored_bytes + ? WHERE id = ?", {bytes, group_id})
      .status();
}

}  // namespace

// ---- LogStore ------------------------------------------------------------------------

Result<std::unique_ptr<LogStore>> LogStore::Open(store::Database& db, const Clock& clock) {
  db.RegisterMigration("logs", 1, kSchemaV1);
  NIMBUS_RETURN_IF_ERROR(db.Migrate());
  return std::unique_ptr<LogStore>(new LogStore(db, clock));
}

bool LogStore::IsValidRetention(int days) { return ValidRetention(days); }

std::string LogStore::GroupArn(const std::string& account, const std::string& region,
                               const std::string& group) {
  return "arn:aws:logs:" + region + ":" + account + ":log-group:" + group + ":*";
}

int64_t LogStore::NowMs() const { return std::llround(clock_.Now() * 1000.0); }

Status LogStore::Append(const std::string& account, const std::string& region,
                        const std::string& group, const std::string& stream,
                        const std::vector<LogEvent>& events) {
  if (group.empty() || stream.empty()) {
    return InvalidParameter("Append needs a log group and a log stream name.");
  }
  std::vector<LogEvent> sorted = events;
  std::stable_sort(sorted.begin(), sorted.end(), [](const LogEvent& a, const LogEvent& b) {
    return a.timestamp_ms < b.timestamp_ms;
  });
  if (!sorted.empty() && sorted.front().timestamp_ms < 0) {
    return InvalidParameter("Log event timestamps must not be negative.");
  }
  const int64_t now = NowMs();
  size_t begin = 0;
  do {
    const size_t end = std::min(sorted.size(), begin + static_cast<size_t>(kMaxBatchEvents));
    NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](store::Session& s) -> Status {
      NIMBUS_RETURN_IF_ERROR(
          s.Exec("INSERT OR IGNORE INTO log_groups (account, region, name, creation_ms) "
                 "VALUES (?, ?, ?, ?)",
                 {account, region, group, now}));
      NIMBUS_ASSIGN_OR_RETURN(GroupRow g, FindGroup(s, account, region, group));
      NIMBUS_RETURN_IF_ERROR(
          s.Exec("INSERT OR IGNORE INTO log_streams (group_id, name, creation_ms) VALUES (?, ?, ?)",
                 {g.id, stream, now}));
      NIMBUS_ASSIGN_OR_RETURN(StreamRow st, FindStream(s, g.id, stream));
      return InsertEvents(s, g.id, st.id, sorted, begin, end, now);
    }));
    begin = end;
  } while (begin < sorted.size());
  return Status::Ok();
}

// ---- groups

Status LogStore::CreateGroup(const std::string& account, const std::string& region,
                             const std::string& group, const std::string& kms_key_id,
                             const LogTags& tags) {
  if (tags.size() > static_cast<size_t>(kMaxTags)) {
    return InvalidParameter("A log group can have at most 50 tags.");
  }
  const int64_t now = NowMs();
  return db_.WithTransaction([&](store::Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(
        store::Rows existing,
        s.Query("SELECT id FROM log_groups WHERE account = ? AND region = ? AND name = ?",
                {account, region, group}));
    if (!existing.empty()) return AlreadyExists("The specified log group already exists");
    NIMBUS_RETURN_IF_ERROR(
        s.Exec("INSERT INTO log_groups (account, region, name, creation_ms, kms_key_id) "
               "VALUES (?, ?, ?, ?, ?)",
               {account, region, group, now, kms_key_id}));
    NIMBUS_ASSIGN_OR_RETURN(GroupRow g, FindGroup(s, account, region, group));
    for (const auto& [key, value] : tags) {
      NIMBUS_RETURN_IF_ERROR(
          s.Exec("INSERT INTO log_group_tags (group_id, key, value) VALUES (?, ?, ?)",
                 {g.id, key, value}));
    }
    return Status::Ok();
  });
}

Status LogStore::DeleteGroup(const std::string& account, const std::string& region,
                             const std::string& group) {
  return db_.WithTransaction([&](store::Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(GroupRow g, FindGroup(s, account, region, group));
    NIMBUS_RETURN_IF_ERROR(s.Exec("DELETE FROM log_events WHERE group_id = ?", {g.id}));
    // Streams and tags go with the group (ON DELETE CASCADE).
    return s.Exec("DELETE FROM log_groups WHERE id = ?", {g.id}).status();
  });
}

Result<LogGroupInfo> LogStore::GetGroup(const std::string& account, const std::string& region,
                                        const std::string& group) {
  NIMBUS_ASSIGN_OR_RETURN(GroupRow g, FindGroup(db_, account, region, group));
  return LogGroupInfo{g.name,        GroupArn(account, region, g.name),
                      g.creation_ms, g.retention_days,
                      g.kms_key_id,  g.stored_bytes};
}

Result<GroupPage> LogStore::DescribeGroups(const std::string& account, const std::string& region,
                                           const DescribeGroupsRequest& request) {
  if (!request.prefix.empty() && !request.pattern.empty()) {
    return InvalidParameter(
        "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive parameters.");
  }
  NIMBUS_RETURN_IF_ERROR(CheckLimit(request.limit, 50));
  std::string sql = "SELECT * FROM log_groups WHERE account = ? AND region = ?";
  store::Params params{account, region};
  if (!request.next_token.empty()) {
    auto fields = DecodeToken("groups", request.next_token, 1);
    if (!fields) return InvalidToken();
    sql += " AND name > ?";
    params.push_back((*fields)[0]);
  }
  AddPrefixRange("name", request.prefix, sql, params);
  if (!request.pattern.empty()) {
    // Group names are ASCII (the model's pattern), so SQLite's ASCII lower() suffices.
    sql += " AND instr(lower(name), ?) > 0";
    params.push_back(ToLower(request.pattern));
  }
  sql += " ORDER BY name LIMIT ?";
  params.push_back(request.limit + 1);
  NIMBUS_ASSIGN_OR_RETURN(store::Rows rows, db_.Query(sql, params));
  GroupPage page;
  for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(request.limit); ++i) {
    GroupRow g = ToGroupRow(rows[i]);
    page.groups.push_back(LogGroupInfo{g.name, GroupArn(account, region, g.name), g.creation_ms,
                                       g.retention_days, g.kms_key_id, g.stored_bytes});
  }
  if (rows.size() > static_cast<size_t>(request.limit)) {
    page.next_token = EncodeToken("groups", {page.groups.back().name});
  }
  return page;
}

Status LogStore::PutRetention(const std::string& account, const std::string& region,
                              const std::string& group, int days) {
  if (!ValidRetention(days)) {
    return InvalidParameter(
        "1 validation error detected: Value '" + std::to_string(days) +
        "' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value "
        "set: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, "
        "2192, 2557, 2922, 3288, 3653]");
  }
  return db_.WithTransaction([&](store::Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(GroupRow g, FindGroup(s, account, region, group));
    return s.Exec("UPDATE log_groups SET retention_days = ? WHERE id = ?", {days, g.id}).status();
  });
}

Status LogStore::DeleteRetention(const std::string& account, const std::string& region,
                                 const std::string& group) {
  return db_.WithTransaction([&](store::Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(GroupRow g, FindGroup(s, account, region, group));
    return s.Exec("UPDATE log_groups SET retention_days = NULL WHERE id = ?", {g.id}).status();
  });
}

Status LogStore::TagGroup(const std::string& account, const std::string& region,
                          const std::string& group, const LogTags& tags) {
  return db_.WithTransaction([&](store::Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(GroupRow g, FindGroup(s, account, region, group));
    NIMBUS_ASSIGN_OR_RETURN(store::Rows rows,
                            s.Query("SELECT key FROM log_group_tags WHERE group_id = ?", {g.id}));
    std::unordered_set<std::string> keys;
    for (const auto& r : rows) keys.insert(Col(r, "key").AsString());
    for (const auto& [key, value] : tags) keys.insert(key);
    if (keys.size() > static_cast<size_t>(kMaxTags)) {
      return Status::Aws("TooManyTagsException", 400, "A resource can have no more than 50 tags.");
    }
    for (const auto& [key, value] : tags) {
      NIMBUS_RETURN_IF_ERROR(
          s.Exec("INSERT OR REPLACE INTO log_group_tags (group_id, key, value) VALUES (?, ?, ?)",
                 {g.id, key, value}));
    }
    return Status::Ok();
  });
}

Status LogStore::UntagGroup(const std::string& account, const std::string& region,
                            const std::string& group, const std::vector<std::string>& keys) {
  return db_.WithTransaction([&](store::Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(GroupRow g, FindGroup(s, account, region, group));
    for (const std::string& key : keys) {
      NIMBUS_RETURN_IF_ERROR(
          s.Exec("DELETE FROM log_group_tags WHERE group_id = ? AND key = ?", {g.id, key}));
    }
    return Status::Ok();
  });
}

Result<LogTags> LogStore::ListTags(const std::string& account, const std::string& region,
                                   const std::string& group) {
  NIMBUS_ASSIGN_OR_RETURN(GroupRow g, FindGroup(db_, account, region, group));
  NIMBUS_ASSIGN_OR_RETURN(
      store::Rows rows,
      db_.Query("SELECT key, value FROM log_group_tags WHERE group_id = ?", {g.id}));
  LogTags tags;
  for (const auto& r : rows) tags[Col(r, "key").AsString()] = Col(r, "value").AsString();
  return tags;
}

// ---- streams

Status LogStore::CreateStream(const std::string& account, const std::string& region,
                              const std::string& group, const std::string& stream) {
  const int64_t now = NowMs();
  return db_.WithTransaction([&](store::Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(GroupRow g, FindGroup(s, account, region, group));
    NIMBUS_ASSIGN_OR_RETURN(
        store::Rows existing,
        s.Query("SELECT id FROM log_streams WHERE group_id = ? AND name = ?", {g.id, stream}));
    if (!existing.empty()) return AlreadyExists("The specified log stream already exists");
    return s
        .Exec("INSERT INTO log_streams (group_id, name, creation_ms) VALUES (?, ?, ?)",
              {g.id, stream, now})
        .status();
  });
}

Status LogStore::DeleteStream(const std::string& account, const std::string& region,
                              const std::string& group, const std::string& stream) {
  return db_.WithTransaction([&](store::Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(GroupRow g, FindGroup(s, account, region, group));
    NIMBUS_ASSIGN_OR_RETURN(StreamRow st, FindStream(s, g.id, stream));
    NIMBUS_RETURN_IF_ERROR(s.Exec("DELETE FROM log_events WHERE stream_id = ?", {st.id}));
    NIMBUS_RETURN_IF_ERROR(
        s.Exec("UPDATE log_groups SET stored_bytes = MAX(0, stored_bytes - ?) WHERE id = ?",
               {st.stored_bytes, g.id}));
    return s.Exec("DELETE FROM log_streams WHERE id = ?", {st.id}).status();
  });
}

Result<StreamPage> LogStore::DescribeStreams(const std::string& account, const std::string& region,
                                             const DescribeStreamsRequest& request) {
  if (request.order_by_last_event_time && !request.prefix.empty()) {
    return InvalidParameter("Cannot order by LastEventTime with a logStreamNamePrefix.");
  }
  NIMBUS_RETURN_IF_ERROR(CheckLimit(request.limit, 50));
  NIMBUS_ASSIGN_OR_RETURN(GroupRow g, FindGroup(db_, account, region, request.group));
  const std::string kind =
      std::string(request.order_by_last_event_time ? "streams-time" : "streams-name") +
      (request.descending ? "-desc" : "-asc");
  const char* cmp = request.descending ? "<" : ">";
  const char* dir = request.descending ? " DESC" : "";
  std::string sql = "SELECT * FROM log_streams WHERE group_id = ?";
  store::Params params{g.id};
  if (!request.next_token.empty()) {
    auto fields = DecodeToken(kind, request.next_token, request.order_by_last_event_time ? 2 : 1);
    if (!fields) return InvalidToken();
    if (request.order_by_last_event_time) {
      auto last = ParseInt((*fields)[0]);
      if (!last) return InvalidToken();
      sql += std::string(" AND (last_event_ms, name) ") + cmp + " (?, ?)";
      params.push_back(*last);
      params.push_back((*fields)[1]);
    } else {
      sql += std::string(" AND name ") + cmp + " ?";
      params.push_back((*fields)[0]);
    }
  }
  AddPrefixRange("name", request.prefix, sql, params);
  sql += request.order_by_last_event_time
             ? std::string(" ORDER BY last_event_ms") + dir + ", name" + dir
             : std::string(" ORDER BY name") + dir;
  sql += " LIMIT ?";
  params.push_back(request.limit + 1);
  NIMBUS_ASSIGN_OR_RETURN(store::Rows rows, db_.Query(sql, params));
  StreamPage page;
  StreamRow last;
  for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(request.limit); ++i) {
    last = ToStreamRow(rows[i]);
    LogStreamInfo info;
    info.name = last.name;
    info.arn = "arn:aws:logs:" + region + ":" + account + ":log-group:" + g.name +
               ":log-stream:" + last.name;
    info.creation_time_ms = last.creation_ms;
    info.first_event_ms = last.first_event_ms;
    if (last.last_event_ms >= 0) info.last_event_ms = last.last_event_ms;
    info.last_ingestion_ms = last.last_ingestion_ms;
    info.stored_bytes = last.stored_bytes;
    info.upload_sequence_token = SequenceToken(last.upload_seq);
    page.streams.push_back(std::move(info));
  }
  if (rows.size() > static_cast<size_t>(request.limit)) {
    page.next_token = request.order_by_last_event_time
                          ? EncodeToken(kind, {std::to_string(last.last_event_ms), last.name})
                          : EncodeToken(kind, {last.name});
  }
  return page;
}

// ---- events

Result<PutResult> LogStore::Put(const std::string& account, const std::string& region,
                                const std::string& group, const std::string& stream,
                                const std::vector<LogEvent>& events) {
  if (events.empty()) return InvalidParameter("A batch must hold at least one log event.");
  if (events.size() > static_cast<size_t>(kMaxBatchEvents)) {
    return InvalidParameter(
        "The batch of log events in a single PutLogEvents request cannot "
        "hold more than 10000 events.");
  }
  int64_t batch_bytes = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].timestamp_ms < 0) {
      return InvalidParameter("Log event timestamps must not be negative.");
    }
    if (i > 0 && events[i].timestamp_ms < events[i - 1].timestamp_ms) {
      return InvalidParameter(
          "Log events in a single PutLogEvents request must be in chronological order.");
    }
    batch_bytes += static_cast<int64_t>(events[i].message.size()) + kEventOverheadBytes;
  }
  if (batch_bytes > kMaxBatchBytes) {
    return InvalidParameter("Upload too large: " + std::to_string(batch_bytes) +
                            " bytes exceeds limit of " + std::to_string(kMaxBatchBytes));
  }
  if (events.back().timestamp_ms - events.front().timestamp_ms > kMaxSpanMs) {
    return InvalidParameter(
        "The batch of log events in a single PutLogEvents request cannot span more than 24 "
        "hours.");
  }
  const int64_t now = NowMs();
  PutResult result;
  NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](store::Session& s) -> Status {
    NIMBUS_ASSIGN_OR_RETURN(GroupRow g, FindGroup(s, account, region, group));
    NIMBUS_ASSIGN_OR_RETURN(StreamRow st, FindStream(s, g.id, stream));
    // Events are sorted, so the rejected ones are a prefix (too old, expired) and a
    // suffix (too new) of the batch.
    const int n = static_cast<int>(events.size());
    int first = 0;
    int end = n;
    for (int i = 0; i < n && events[i].timestamp_ms < now - kTooOldMs; ++i) {
      result.too_old_end_index = i;
      first = i + 1;
    }
    if (g.retention_days) {
      const int64_t cutoff = now - *g.retention_days * kDayMs;
      for (int i = 0; i < n && events[i].timestamp_ms < cutoff; ++i) {
        result.expired_end_index = i;
        first = std::max(first, i + 1);
      }
    }
    for (int i = n - 1; i >= first && events[i].timestamp_ms > now + kTooNewMs; --i) {
      result.too_new_start_index = i;
      end = i;
    }
    result.accepted = std::max(0, end - first);
    NIMBUS_RETURN_IF_ERROR(InsertEvents(s, g.id, st.id, events, first, end, now));
    NIMBUS_RETURN_IF_ERROR(
        s.Exec("UPDATE log_streams SET upload_seq = upload_seq + 1 WHERE id = ?", {st.id}));
    result.next_sequence_token = SequenceToken(st.upload_seq + 1);
    return Status::Ok();
  }));
  return result;
}

Result<GetEventsResult> LogStore::GetEvents(const std::string& account, const std::string& region,
                                            const GetEventsRequest& request) {
  NIMBUS_RETURN_IF_ERROR(CheckLimit(request.limit, kMaxBatchEvents));
  std::optional<std::pair<char, Pos>> token;
  if (!request.next_token.empty()) {
    token = DecodeEventToken(request.next_token);
    if (!token) return InvalidToken();
  }
  NIMBUS_ASSIGN_OR_RETURN(GroupRow g, FindGroup(db_, account, region, request.group));
  NIMBUS_ASSIGN_OR_RETURN(StreamRow st, FindStream(db_, g.id, request.stream));
  Window w = MakeWindow(request.start_time_ms, request.end_time_ms, g.retention_days, NowMs());
  const bool forward = token ? token->first == 'f' : request.start_from_head;
  if (token) {
    if (forward) {
      w.lower = std::max(w.lower, token->second);
    } else {
      w.upper = std::min(w.upper, token->second);
    }
  }

  GetEventsResult result;
  int64_t bytes = 0;
  bool full = false;
  EventCursor cursor(db_, "stream_id = ?", {st.id}, w.lower, w.upper, forward);
  while (!full) {
    const int want =
        std::min<int>(kReadChunk, request.limit - static_cast<int>(result.events.size()));
    NIMBUS_ASSIGN_OR_RETURN(store::Rows rows, cursor.Next(want));
    if (rows.empty()) break;
    for (const auto& r : rows) {
      StoredLogEvent e = ToEvent(r);
      const int64_t size = static_cast<int64_t>(e.message.size()) + kEventOverheadBytes;
      if (!result.events.empty() && bytes + size > kMaxResponseBytes) {
        full = true;
        break;
      }
      bytes += size;
      result.events.push_back(std::move(e));
      if (result.events.size() >= static_cast<size_t>(request.limit)) {
        full = true;
        break;
      }
    }
  }
  if (!forward) std::reverse(result.events.begin(), result.events.end());

  if (result.events.empty()) {
    // Nothing (more) in this direction: hand back the token passed in, so that clients
    // see the end; the other direction resumes from the same place.
    Pos here = token ? token->second : std::max(w.lower, Pos{0, 0});
    result.next_forward_token =
        token && token->first == 'f' ? request.next_token : EncodeEventToken('f', here);
    result.next_backward_token =
        token && token->first == 'b' ? request.next_token : EncodeEventToken('b', here);
    return result;
  }
  const auto& first = result.events.front();
  const auto& last = result.events.back();
  result.next_forward_token =
      EncodeEventToken('f', Pos{last.timestamp_ms, *ParseInt(last.event_id)});
  result.next_backward_token =
      EncodeEventToken('b', Pos{first.timestamp_ms, *ParseInt(first.event_id)});
  return result;
}

Result<FilterResult> LogStore::Filter(const std::string& account, const std::string& region,
                                      const FilterRequest& request) {
  if (!request.stream_names.empty() && !request.stream_prefix.empty()) {
    return InvalidParameter(
        "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.");
  }
  NIMBUS_RETURN_IF_ERROR(CheckLimit(request.limit, kMaxBatchEvents));
  std::optional<Pos> resume;
  if (!request.next_token.empty()) {
    resume = DecodeFilterToken(request.next_token);
    if (!resume) return InvalidToken();
  }
  NIMBUS_ASSIGN_OR_RETURN(GroupRow g, FindGroup(db_, account, region, request.group));

  // The streams searched: all, those with the prefix, or those named.
  std::string sql = "SELECT id, name FROM log_streams WHERE group_id = ?";
  store::Params params{g.id};
  AddPrefixRange("name", request.stream_prefix, sql, params);
  sql += " ORDER BY name";
  NIMBUS_ASSIGN_OR_RETURN(store::Rows stream_rows, db_.Query(sql, params));
  std::unordered_set<std::string> wanted(request.stream_names.begin(), request.stream_names.end());
  std::unordered_map<int64_t, std::string> streams;
  FilterResult result;
  for (const auto& r : stream_rows) {
    const std::string& name = Col(r, "name").AsString();
    if (!wanted.empty() && !wanted.count(name)) continue;
    streams.emplace(Col(r, "id").AsInt(), name);
    result.searched_streams.push_back(name);
  }
  if (streams.empty()) return result;
  const bool all_streams = request.stream_names.empty() && request.stream_prefix.empty();

  Window w = MakeWindow(request.start_time_ms, request.end_time_ms, g.retention_days, NowMs());
  if (resume) w.lower = std::max(w.lower, *resume);

  // A few named streams are searched through the stream index; otherwise the group's
  // events are read in order and other streams' events skipped.
  std::string key_sql = "group_id = ?";
  store::Params key_params{g.id};
  if (!all_streams && streams.size() <= kMaxStreamsInSql) {
    key_sql += " AND stream_id IN (";
    for (const auto& [id, name] : streams) {
      key_sql += key_params.size() == 1 ? "?" : ",?";
      key_params.push_back(id);
    }
    key_sql += ")";
  }
  EventCursor cursor(db_, key_sql, key_params, w.lower, w.upper, /*ascending=*/true);
  int64_t scanned = 0;
  int64_t bytes = 0;
  bool stopped = false;  // stopped before the end of the window
  while (!stopped) {
    NIMBUS_ASSIGN_OR_RETURN(store::Rows rows, cursor.Next(kReadChunk));
    if (rows.empty()) break;
    for (const auto& r : rows) {
      auto it = streams.find(Col(r, "stream_id").AsInt());
      const std::string& message = Col(r, "message").AsString();
      if (it != streams.end() && request.pattern.Matches(message)) {
        const int64_t size = static_cast<int64_t>(message.size()) + kEventOverheadBytes;
        if (!result.events.empty() && bytes + size > kMaxResponseBytes) {
          stopped = true;
          break;
        }
        bytes += size;
        StoredLogEvent e = ToEvent(r);
        e.stream = it->second;
        result.events.push_back(std::move(e));
      }
      w.lower = PosOf(r);
      ++scanned;
      if (result.events.size() >= static_cast<size_t>(request.limit) ||
          scanned >= kFilterScanBudget) {
        stopped = true;
        break;
      }
    }
  }
  if (stopped) {
    // Only hand out a token when something is left, so that the last page has none.
    EventCursor rest(db_, key_sql, key_params, w.lower, w.upper, /*ascending=*/true);
    NIMBUS_ASSIGN_OR_RETURN(store::Rows next, rest.Next(1));
    if (!next.empty()) {
      result.next_token = FilterToken(w.lower);
      result.searched_completely = false;
    }
  }
  return result;
}

Result<int64_t> LogStore::ExpireRetention(int64_t now_ms) {
  NIMBUS_ASSIGN_OR_RETURN(
      store::Rows groups,
      db_.Query("SELECT id, retention_days FROM log_groups WHERE retention_days IS NOT NULL"));
  int64_t deleted = 0;
  for (const auto& gr : groups) {
    const int64_t group_id = Col(gr, "id").AsInt();
    const int64_t cutoff = now_ms - Col(gr, "retention_days").AsInt() * kDayMs;
    bool done = false;
    while (!done) {
      NIMBUS_RETURN_IF_ERROR(db_.WithTransaction([&](store::Session& s) -> Status {
        NIMBUS_ASSIGN_OR_RETURN(
            store::Rows rows,
            s.Query("SELECT id, stream_id, timestamp_ms, bytes FROM log_events "
                    "WHERE group_id = ? AND timestamp_ms < ? ORDER BY timestamp_ms, id LIMIT ?",
                    {group_id, cutoff, kExpireChunk}));
        done = rows.size() < static_cast<size_t>(kExpireChunk);
        if (rows.empty()) return Status::Ok();
        std::unordered_map<int64_t, int64_t> stream_bytes;
        int64_t total = 0;
        for (const auto& r : rows) {
          const int64_t b = Col(r, "bytes").AsInt();
          stream_bytes[Col(r, "stream_id").AsInt()] += b;
          total += b;
        }
        // The rows read are the first of the group's (timestamp, seq) order, so every
        // event up to the last of them is one of them.
        const Pos last = PosOf(rows.back());
        NIMBUS_RETURN_IF_ERROR(s.Exec(
            "DELETE FROM log_events WHERE group_id = ? AND timestamp_ms < ?", {group_id, last.ts}));
        NIMBUS_RETURN_IF_ERROR(
            s.Exec("DELETE FROM log_events WHERE group_id = ? AND timestamp_ms = ? AND id <= ?",
                   {group_id, last.ts, last.seq}));
        for (const auto& [stream_id, b] : stream_bytes) {
          NIMBUS_RETURN_IF_ERROR(
              s.Exec("UPDATE log_streams SET stored_bytes = MAX(0, stored_bytes - ?), "
                     "first_event_ms = (SELECT MIN(timestamp_ms) FROM log_events "
                     "WHERE stream_id = ?) WHERE id = ?",
                     {b, stream_id, stream_id}));
        }
        NIMBUS_RETURN_IF_ERROR(
            s.Exec("UPDATE log_groups SET stored_bytes = MAX(0, stored_bytes - ?) WHERE id = ?",
                   {total, group_id}));
        deleted += static_cast<int64_t>(rows.size());
        return Status::Ok();
      }));
    }
  }
  return deleted;
}

}  // namespace nimbus::telemetry
