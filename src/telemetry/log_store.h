// telemetry::LogStore: CloudWatch Logs' data — log groups, their log streams and the
// events in them — kept in store::Database and scoped by (account, region). It backs the
// `logs` service and is the sink that job log streaming writes to (Append).
//
// Layout (migrations of component "logs"): log_groups, log_group_tags, log_streams and
// log_events. Events are a rowid table whose rowid is the ingestion sequence number; they
// are indexed by (stream, timestamp, seq) for GetLogEvents and by (group, timestamp, seq)
// for FilterLogEvents and retention sweeps, so that every read is an index range scan.
// Streams and groups carry running counters (stored bytes, first/last event time) that
// writes and sweeps keep up to date in the same transaction as the events.
//
// Behaviour follows CloudWatch Logs: PutLogEvents' validation and partial rejection
// (too old, too new, expired), GetLogEvents' forward/backward tokens ("f/<n>", "b/<n>";
// when nothing is left the token passed in comes back), FilterLogEvents across streams in
// timestamp order, retention periods from AWS's fixed list. Events older than a group's
// retention are never returned; ExpireRetention() deletes them (the server calls it on a
// timer). Pagination tokens are opaque, carry a checksum and are validated: a forged or
// foreign token is InvalidParameterException, never a crash.
//
// Errors are the CloudWatch Logs wire errors (Status::Aws, HTTP 400):
// ResourceNotFoundException, ResourceAlreadyExistsException, InvalidParameterException,
// TooManyTagsException.
//
// Ownership and thread-safety: the store borrows the Database and the Clock, which must
// outlive it. All methods may be called concurrently: every change is one database
// transaction, and reads see committed data only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "store/database.h"
#include "telemetry/filter_pattern.h"

namespace nimbus::telemetry {

struct LogEvent {
  int64_t timestamp_ms = 0;
  std::string message;
};

using LogTags = std::map<std::string, std::string>;

struct LogGroupInfo {
  std::string name;
  std::string arn;  // arn:aws:logs:<region>:<account>:log-group:<name>:*
  int64_t creation_time_ms = 0;
  std::optional<int> retention_days;
  std::string kms_key_id;
  int64_t stored_bytes = 0;
};

struct LogStreamInfo {
  std::string name;
  std::string arn;  // arn:aws:logs:<region>:<account>:log-group:<group>:log-stream:<name>
  int64_t creation_time_ms = 0;
  std::optional<int64_t> first_event_ms;  // absent until the stream holds an event
  std::optional<int64_t> last_event_ms;
  std::optional<int64_t> last_ingestion_ms;
  int64_t stored_bytes = 0;
  std::string upload_sequence_token;
};

struct StoredLogEvent {
  std::string stream;  // set by Filter
  int64_t timestamp_ms = 0;
  int64_t ingestion_time_ms = 0;
  std::string message;
  std::string event_id;
};

struct DescribeGroupsRequest {
  std::string prefix;   // logGroupNamePrefix: case-sensitive prefix
  std::string pattern;  // logGroupNamePattern: case-insensitive substring
  int limit = 50;
  std::string next_token;
};
struct GroupPage {
  std::vector<LogGroupInfo> groups;
  std::string next_token;  // empty on the last page
};

struct DescribeStreamsRequest {
  std::string group;
  std::string prefix;
  bool order_by_last_event_time = false;
  bool descending = false;
  int limit = 50;
  std::string next_token;
};
struct StreamPage {
  std::vector<LogStreamInfo> streams;
  std::string next_token;
};

// PutLogEvents' partial rejection (AWS's RejectedLogEventsInfo); indexes into the batch.
struct PutResult {
  std::optional<int> too_old_end_index;
  std::optional<int> too_new_start_index;
  std::optional<int> expired_end_index;
  int accepted = 0;
  std::string next_sequence_token;
  bool any_rejected() const {
    return too_old_end_index || too_new_start_index || expired_end_index;
  }
};

struct GetEventsRequest {
  std::string group;
  std::string stream;
  std::optional<int64_t> start_time_ms;  // inclusive
  std::optional<int64_t> end_time_ms;    // exclusive
  bool start_from_head = false;
  int limit = 10000;
  std::string next_token;  // "f/..." or "b/..."; decides the direction when set
};
struct GetEventsResult {
  std::vector<StoredLogEvent> events;  // ascending by (timestamp, seq)
  std::string next_forward_token;
  std::string next_backward_token;
};

struct FilterRequest {
  std::string group;
  std::vector<std::string> stream_names;  // at most one of stream_names and stream_prefix
  std::string stream_prefix;
  std::optional<int64_t> start_time_ms;
  std::optional<int64_t> end_time_ms;
  FilterPattern pattern;
  int limit = 10000;
  std::string next_token;
};
struct FilterResult {
  std::vector<StoredLogEvent> events;  // ascending by (timestamp, seq) across streams
  std::vector<std::string> searched_streams;
  bool searched_completely = true;  // false when next_token is set
  std::string next_token;
};

class LogStore {
 public:
  // Registers the "logs" migrations and runs db.Migrate().
  static Result<std::unique_ptr<LogStore>> Open(store::Database& db, const Clock& clock);

  // AWS's limits and fixed values.
  static constexpr int kMaxBatchEvents = 10000;
  static constexpr int64_t kMaxBatchBytes = 1048576;
  static constexpr int64_t kEventOverheadBytes = 26;
  static constexpr int kMaxTags = 50;
  static bool IsValidRetention(int days);
  static std::string GroupArn(const std::string& account, const std::string& region,
                              const std::string& group);

  // The internal writer used by job log streaming: creates the group and the stream when
  // missing and stores every event (sorted by timestamp; no age checks), in one
  // transaction per chunk of the AWS batch size.
  Status Append(const std::string& account, const std::string& region, const std::string& group,
                const std::string& stream, const std::vector<LogEvent>& events);

  // ---- groups
  Status CreateGroup(const std::string& account, const std::string& region,
                     const std::string& group, const std::string& kms_key_id, const LogTags& tags);
  // Deletes the group with its streams, events and tags.
  Status DeleteGroup(const std::string& account, const std::string& region,
                     const std::string& group);
  Result<LogGroupInfo> GetGroup(const std::string& account, const std::string& region,
                                const std::string& group);
  Result<GroupPage> DescribeGroups(const std::string& account, const std::string& region,
                                   const DescribeGroupsRequest& request);
  // REQUIRES: IsValidRetention(days) (else InvalidParameterException).
  Status PutRetention(const std::string& account, const std::string& region,
                      const std::string& group, int days);
  Status DeleteRetention(const std::string& account, const std::string& region,
                         const std::string& group);
  // Adds or replaces tags; more than kMaxTags in all is TooManyTagsException.
  Status TagGroup(const std::string& account, const std::string& region, const std::string& group,
                  const LogTags& tags);
  Status UntagGroup(const std::string& account, const std::string& region, const std::string& group,
                    const std::vector<std::string>& keys);
  Result<LogTags> ListTags(const std::string& account, const std::string& region,
                           const std::string& group);

  // ---- streams
  Status CreateStream(const std::string& account, const std::string& region,
                      const std::string& group, const std::string& stream);
  Status DeleteStream(const std::string& account, const std::string& region,
                      const std::string& group, const std::string& stream);
  Result<StreamPage> DescribeStreams(const std::string& account, const std::string& region,
                                     const DescribeStreamsRequest& request);

  // ---- events
  // PutLogEvents: validates the batch as AWS does (chronological order, count, bytes,
  // 24-hour span) and stores every event that is neither too old (> 14 days), too new
  // (> 2 hours ahead) nor past the group's retention; those are reported in PutResult.
  Result<PutResult> Put(const std::string& account, const std::string& region,
                        const std::string& group, const std::string& stream,
                        const std::vector<LogEvent>& events);
  Result<GetEventsResult> GetEvents(const std::string& account, const std::string& region,
                                    const GetEventsRequest& request);
  Result<FilterResult> Filter(const std::string& account, const std::string& region,
                              const FilterRequest& request);

  // Deletes every event older than its group's retention as of now_ms (epoch ms), in
  // bounded transactions; returns the number of events deleted.
  Result<int64_t> ExpireRetention(int64_t now_ms);

 private:
  LogStore(store::Database& db, const Clock& clock) : db_(db), clock_(clock) {}
  int64_t NowMs() const;

  store::Database& db_;
  const Clock& clock_;
};

}  // namespace nimbus::telemetry
