#include "services/logs/logs_service.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/strings.h"

namespace nimbus::services {
namespace {

using telemetry::LogStore;

Status InvalidParameter(std::string message) {
  return Status::Aws("InvalidParameterException", 400, std::move(message));
}
Status GroupNotFound() {
  return Status::Aws("ResourceNotFoundException", 400, "The specified log group does not exist.",
                     ErrorKind::kNotFound);
}

std::optional<int64_t> OptionalInt(const Value& in, std::string_view member) {
  const Value* v = in.Find(member);
  if (!v || v->is_null()) return std::nullopt;
  return v->AsInt();
}

telemetry::LogTags TagsOf(const Value* tags) {
  telemetry::LogTags out;
  if (tags && tags->is_map()) {
    for (const auto& [key, value] : tags->map()) out[key] = value.AsString();
  }
  return out;
}

Value TagsValue(const telemetry::LogTags& tags) {
  Value out = Value::MakeMap();
  for (const auto& [key, value] : tags) out[key] = value;
  return out;
}

std::vector<std::string> Strings(const Value* list) {
  std::vector<std::string> out;
  if (list && list->is_list()) {
    for (const Value& v : list->list()) out.push_back(v.AsString());
  }
  return out;
}

// The log group an ARN names, when it is one of this account's and region's:
// arn:aws:logs:<region>:<account>:log-group:<name>[:*]. Group names hold no ':'.
Result<std::string> GroupFromArn(std::string_view arn, const aws::RequestContext& ctx) {
  std::vector<std::string> parts = Split(arn, ':');
  if (parts.size() < 7 || parts[0] != "arn" || parts[2] != "logs") {
    return InvalidParameter("Invalid ARN: " + std::string(arn));
  }
  if (parts[5] != "log-group" || parts[6].empty() ||
      !(parts.size() == 7 || (parts.size() == 8 && parts[7] == "*"))) {
    return InvalidParameter(
        "Nimbus supports log group ARNs only "
        "(arn:aws:logs:<region>:<account>:log-group:<name>): " +
        std::string(arn));
  }
  if (parts[3] != ctx.region || parts[4] != ctx.account_id) return GroupNotFound();
  return parts[6];
}

// logGroupName, or logGroupIdentifier (a name or an ARN); exactly one of them.
Result<std::string> GroupOf(const Value& in, const aws::RequestContext& ctx) {
  std::string name = in.GetString("logGroupName");
  std::string identifier = in.GetString("logGroupIdentifier");
  if (!name.empty() && !identifier.empty()) {
    return InvalidParameter(
        "LogGroupName and LogGroupIdentifier are mutually exclusive parameters.");
  }
  if (!name.empty()) return name;
  if (identifier.empty()) {
    return InvalidParameter("Either logGroupName or logGroupIdentifier must be specified.");
  }
  if (StartsWith(identifier, "arn:")) return GroupFromArn(identifier, ctx);
  return identifier;
}

std::string StreamArn(const aws::RequestContext& ctx, const std::string& group,
                      const std::string& stream) {
  return "arn:aws:logs:" + ctx.region + ":" + ctx.account_id + ":log-group:" + group +
         ":log-stream:" + stream;
}

// Authorization resources. A group that cannot be named (bad input) authorizes on "*":
// the handler then answers the input error.
std::string GroupResource(const Value& in, const aws::RequestContext& ctx) {
  auto group = GroupOf(in, ctx);
  if (!group.ok()) return "*";
  return LogStore::GroupArn(ctx.account_id, ctx.region, *group);
}
std::string StreamResource(const Value& in, const aws::RequestContext& ctx) {
  auto group = GroupOf(in, ctx);
  if (!group.ok()) return "*";
  return StreamArn(ctx, *group, in.GetString("logStreamName"));
}
std::string ArnResource(const Value& in, const aws::RequestContext&) {
  return in.GetString("resourceArn", "*");
}

Value GroupValue(const telemetry::LogGroupInfo& g) {
  Value v = Value::Object({{"logGroupName", g.name},
                           {"creationTime", g.creation_time_ms},
                           {"metricFilterCount", 0},
                           {"arn", g.arn},
                           // The ARN without the trailing ":*", as AWS added it later.
                           {"logGroupArn", g.arn.substr(0, g.arn.size() - 2)},
                           {"storedBytes", g.stored_bytes},
                           {"logGroupClass", "STANDARD"}});
  if (g.retention_days) v["retentionInDays"] = *g.retention_days;
  if (!g.kms_key_id.empty()) v["kmsKeyId"] = g.kms_key_id;
  return v;
}

Value StreamValue(const telemetry::LogStreamInfo& s) {
  Value v = Value::Object({{"logStreamName", s.name},
                           {"creationTime", s.creation_time_ms},
                           {"arn", s.arn},
                           {"storedBytes", s.stored_bytes},
                           {"uploadSequenceToken", s.upload_sequence_token}});
  if (s.first_event_ms) v["firstEventTimestamp"] = *s.first_event_ms;
  if (s.last_event_ms) v["lastEventTimestamp"] = *s.last_event_ms;
  if (s.last_ingestion_ms) v["lastIngestionTime"] = *s.last_ingestion_ms;
  return v;
}

Value Empty() { return Value::MakeMap(); }

using Handler = std::function<Result<Value>(LogStore&, const Value&, aws::RequestContext&)>;

}  // namespace

void RegisterLogsService(aws::ServiceRegistry& registry, telemetry::LogStore& store) {
  LogStore* s = &store;
  auto add = [&](const char* op, Handler handler, aws::ResourceResolver resource) {
    registry.Register(
        "logs", op,
        [s, handler = std::move(handler)](const Value& in, aws::RequestContext& ctx) {
          return handler(*s, in, ctx);
        },
        std::move(resource));
  };

  // ---- log groups
  add(
      "CreateLogGroup",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(st.CreateGroup(ctx.account_id, ctx.region,
                                              in.GetString("logGroupName"),
                                              in.GetString("kmsKeyId"), TagsOf(in.Find("tags"))));
        return Empty();
      },
      GroupResource);
  add(
      "DeleteLogGroup",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(
            st.DeleteGroup(ctx.account_id, ctx.region, in.GetString("logGroupName")));
        return Empty();
      },
      GroupResource);
  add(
      "DescribeLogGroups",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        telemetry::DescribeGroupsRequest request;
        request.prefix = in.GetString("logGroupNamePrefix");
        request.pattern = in.GetString("logGroupNamePattern");
        request.limit = static_cast<int>(in.GetInt("limit", 50));
        request.next_token = in.GetString("nextToken");
        NIMBUS_ASSIGN_OR_RETURN(telemetry::GroupPage page,
                                st.DescribeGroups(ctx.account_id, ctx.region, request));
        Value groups = Value::MakeList();
        for (const auto& g : page.groups) groups.Append(GroupValue(g));
        Value out = Value::Object({{"logGroups", std::move(groups)}});
        if (!page.next_token.empty()) out["nextToken"] = page.next_token;
        return out;
      },
      nullptr);
  add(
      "PutRetentionPolicy",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(st.PutRetention(ctx.account_id, ctx.region,
                                               in.GetString("logGroupName"),
                                               static_cast<int>(in.GetInt("retentionInDays"))));
        return Empty();
      },
      GroupResource);
  add(
      "DeleteRetentionPolicy",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(
            st.DeleteRetention(ctx.account_id, ctx.region, in.GetString("logGroupName")));
        return Empty();
      },
      GroupResource);

  // ---- tags, by group name (the older API) and by ARN
  add(
      "TagLogGroup",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        Status status = st.TagGroup(ctx.account_id, ctx.region, in.GetString("logGroupName"),
                                    TagsOf(in.Find("tags")));
        // The older API reports too many tags as a parameter error.
        if (status.code() == "TooManyTagsException") return InvalidParameter(status.message());
        NIMBUS_RETURN_IF_ERROR(status);
        return Empty();
      },
      GroupResource);
  add(
      "UntagLogGroup",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(st.UntagGroup(
            ctx.account_id, ctx.region, in.GetString("logGroupName"), Strings(in.Find("tags"))));
        return Empty();
      },
      GroupResource);
  add(
      "ListTagsLogGroup",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(telemetry::LogTags tags, st.ListTags(ctx.account_id, ctx.region,
                                                                     in.GetString("logGroupName")));
        return Value::Object({{"tags", TagsValue(tags)}});
      },
      GroupResource);
  add(
      "TagResource",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(std::string group, GroupFromArn(in.GetString("resourceArn"), ctx));
        NIMBUS_RETURN_IF_ERROR(
            st.TagGroup(ctx.account_id, ctx.region, group, TagsOf(in.Find("tags"))));
        return Empty();
      },
      ArnResource);
  add(
      "UntagResource",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(std::string group, GroupFromArn(in.GetString("resourceArn"), ctx));
        NIMBUS_RETURN_IF_ERROR(
            st.UntagGroup(ctx.account_id, ctx.region, group, Strings(in.Find("tagKeys"))));
        return Empty();
      },
      ArnResource);
  add(
      "ListTagsForResource",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_ASSIGN_OR_RETURN(std::string group, GroupFromArn(in.GetString("resourceArn"), ctx));
        NIMBUS_ASSIGN_OR_RETURN(telemetry::LogTags tags,
                                st.ListTags(ctx.account_id, ctx.region, group));
        return Value::Object({{"tags", TagsValue(tags)}});
      },
      ArnResource);

  // ---- log streams
  add(
      "CreateLogStream",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(st.CreateStream(ctx.account_id, ctx.region,
                                               in.GetString("logGroupName"),
                                               in.GetString("logStreamName")));
        return Empty();
      },
      GroupResource);
  add(
      "DeleteLogStream",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        NIMBUS_RETURN_IF_ERROR(st.DeleteStream(ctx.account_id, ctx.region,
                                               in.GetString("logGroupName"),
                                               in.GetString("logStreamName")));
        return Empty();
      },
      StreamResource);
  add(
      "DescribeLogStreams",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        telemetry::DescribeStreamsRequest request;
        NIMBUS_ASSIGN_OR_RETURN(request.group, GroupOf(in, ctx));
        request.prefix = in.GetString("logStreamNamePrefix");
        request.order_by_last_event_time = in.GetString("orderBy") == "LastEventTime";
        request.descending = in.GetBool("descending");
        request.limit = static_cast<int>(in.GetInt("limit", 50));
        request.next_token = in.GetString("nextToken");
        NIMBUS_ASSIGN_OR_RETURN(telemetry::StreamPage page,
                                st.DescribeStreams(ctx.account_id, ctx.region, request));
        Value streams = Value::MakeList();
        for (const auto& s : page.streams) streams.Append(StreamValue(s));
        Value out = Value::Object({{"logStreams", std::move(streams)}});
        if (!page.next_token.empty()) out["nextToken"] = page.next_token;
        return out;
      },
      GroupResource);

  // ---- events
  add(
      "PutLogEvents",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        // sequenceToken is accepted and ignored, as AWS has done since 2023.
        std::vector<telemetry::LogEvent> events;
        if (const Value* list = in.Find("logEvents"); list && list->is_list()) {
          events.reserve(list->size());
          for (const Value& e : list->list()) {
            events.push_back({e.GetInt("timestamp"), e.GetString("message")});
          }
        }
        NIMBUS_ASSIGN_OR_RETURN(telemetry::PutResult result,
                                st.Put(ctx.account_id, ctx.region, in.GetString("logGroupName"),
                                       in.GetString("logStreamName"), events));
        Value out = Value::Object({{"nextSequenceToken", result.next_sequence_token}});
        if (result.any_rejected()) {
          Value info = Value::MakeMap();
          if (result.too_new_start_index) {
            info["tooNewLogEventStartIndex"] = *result.too_new_start_index;
          }
          if (result.too_old_end_index) info["tooOldLogEventEndIndex"] = *result.too_old_end_index;
          if (result.expired_end_index) info["expiredLogEventEndIndex"] = *result.expired_end_index;
          out["rejectedLogEventsInfo"] = std::move(info);
        }
        return out;
      },
      StreamResource);
  add(
      "GetLogEvents",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        telemetry::GetEventsRequest request;
        NIMBUS_ASSIGN_OR_RETURN(request.group, GroupOf(in, ctx));
        request.stream = in.GetString("logStreamName");
        request.start_time_ms = OptionalInt(in, "startTime");
        request.end_time_ms = OptionalInt(in, "endTime");
        request.start_from_head = in.GetBool("startFromHead");
        request.limit = static_cast<int>(in.GetInt("limit", LogStore::kMaxBatchEvents));
        request.next_token = in.GetString("nextToken");
        NIMBUS_ASSIGN_OR_RETURN(telemetry::GetEventsResult result,
                                st.GetEvents(ctx.account_id, ctx.region, request));
        Value events = Value::MakeList();
        for (const auto& e : result.events) {
          events.Append(Value::Object({{"timestamp", e.timestamp_ms},
                                       {"message", e.message},
                                       {"ingestionTime", e.ingestion_time_ms}}));
        }
        return Value::Object({{"events", std::move(events)},
                              {"nextForwardToken", result.next_forward_token},
                              {"nextBackwardToken", result.next_backward_token}});
      },
      StreamResource);
  add(
      "FilterLogEvents",
      [](LogStore& st, const Value& in, aws::RequestContext& ctx) -> Result<Value> {
        telemetry::FilterRequest request;
        NIMBUS_ASSIGN_OR_RETURN(request.group, GroupOf(in, ctx));
        request.stream_names = Strings(in.Find("logStreamNames"));
        request.stream_prefix = in.GetString("logStreamNamePrefix");
        request.start_time_ms = OptionalInt(in, "startTime");
        request.end_time_ms = OptionalInt(in, "endTime");
        NIMBUS_ASSIGN_OR_RETURN(request.pattern,
                                telemetry::FilterPattern::Parse(in.GetString("filterPattern")));
        request.limit = static_cast<int>(in.GetInt("limit", LogStore::kMaxBatchEvents));
        request.next_token = in.GetString("nextToken");
        NIMBUS_ASSIGN_OR_RETURN(telemetry::FilterResult result,
                                st.Filter(ctx.account_id, ctx.region, request));
        Value events = Value::MakeList();
        for (const auto& e : result.events) {
          events.Append(Value::Object({{"logStreamName", e.stream},
                                       {"timestamp", e.timestamp_ms},
                                       {"message", e.message},
                                       {"ingestionTime", e.ingestion_time_ms},
                                       {"eventId", e.event_id}}));
        }
        Value searched = Value::MakeList();
        for (const auto& name : result.searched_streams) {
          searched.Append(Value::Object(
              {{"logStreamName", name}, {"searchedCompletely", result.searched_completely}}));
        }
        Value out = Value::Object(
            {{"events", std::move(events)}, {"searchedLogStreams", std::move(searched)}});
        if (!result.next_token.empty()) out["nextToken"] = result.next_token;
        return out;
      },
      GroupResource);
}

}  // namespace nimbus::services
