#include "services/logs/logs_service.h"

#include "service_test_env.h"

namespace nimbus::services {
namespace {

constexpr int64_t kNowMs = 1700000000000;  // the env's FakeClock

class LogsServiceTest : public testing::ServiceTestEnv {
 protected:
  void SetUp() override {
    ServiceTestEnv::SetUp();
    auto logs = telemetry::LogStore::Open(*db_, clock_);
    ASSERT_TRUE(logs.ok()) << logs.status().ToString();
    logs_ = std::move(logs).value();
    RegisterLogsService(registry_, *logs_);
  }
  void TearDown() override {
    logs_.reset();
    ServiceTestEnv::TearDown();
  }

  Result<Value> Logs(const std::string& op, const Value& input) {
    return Call("logs", op, input, root_);
  }
  Value Ok(const std::string& op, const Value& input) {
    auto out = Logs(op, input);
    EXPECT_TRUE(out.ok()) << op << ": " << out.status().ToString();
    return out.ok() ? *out : Value();
  }
  std::string ErrorCode(const std::string& op, const Value& input) {
    auto out = Logs(op, input);
    return out.ok() ? "OK" : out.status().code();
  }

  void MakeStream(const std::string& group, const std::string& stream) {
    Logs("CreateLogGroup", Value::Object({{"logGroupName", group}}));
    Ok("CreateLogStream", Value::Object({{"logGroupName", group}, {"logStreamName", stream}}));
  }

  Value Events(std::initializer_list<std::pair<int64_t, const char*>> events) {
    Value list = Value::MakeList();
    for (const auto& [ts, message] : events) {
      list.Append(Value::Object({{"timestamp", ts}, {"message", message}}));
    }
    return list;
  }

  std::unique_ptr<telemetry::LogStore> logs_;
};

TEST_F(LogsServiceTest, LogGroupLifecycleWithTagsAndRetention) {
  Ok("CreateLogGroup", Value::Object({{"logGroupName", "/app/api"},
                                      {"kmsKeyId", "arn:aws:kms:us-east-1:000000000000:key/k"},
                                      {"tags", Value::Object({{"team", "ml"}})}}));
  EXPECT_EQ(ErrorCode("CreateLogGroup", Value::Object({{"logGroupName", "/app/api"}})),
            "ResourceAlreadyExistsException");
  Ok("PutRetentionPolicy", Value::Object({{"logGroupName", "/app/api"}, {"retentionInDays", 30}}));
  EXPECT_EQ(ErrorCode("PutRetentionPolicy",
                      Value::Object({{"logGroupName", "/app/api"}, {"retentionInDays", 2}})),
            "InvalidParameterException");

  Value out = Ok("DescribeLogGroups", Value::Object({{"logGroupNamePrefix", "/app"}}));
  ASSERT_EQ(out.Find("logGroups")->size(), 1u);
  const Value& g = out.Find("logGroups")->list()[0];
  EXPECT_EQ(g.GetString("logGroupName"), "/app/api");
  EXPECT_EQ(g.GetString("arn"), "arn:aws:logs:us-east-1:000000000000:log-group:/app/api:*");
  EXPECT_EQ(g.GetString("logGroupArn"), "arn:aws:logs:us-east-1:000000000000:log-group:/app/api");
  EXPECT_EQ(g.GetInt("retentionInDays"), 30);
  EXPECT_EQ(g.GetInt("creationTime"), kNowMs);
  EXPECT_EQ(g.GetInt("storedBytes", -1), 0);
  EXPECT_EQ(g.GetString("kmsKeyId"), "arn:aws:kms:us-east-1:000000000000:key/k");
  EXPECT_FALSE(out.Has("nextToken"));

  Ok("DeleteRetentionPolicy", Value::Object({{"logGroupName", "/app/api"}}));
  out = Ok("DescribeLogGroups", Value::MakeMap());
  EXPECT_FALSE(out.Find("logGroups")->list()[0].Has("retentionInDays"));

  // Tags through both APIs.
  const std::string arn = "arn:aws:logs:us-east-1:000000000000:log-group:/app/api";
  Ok("TagLogGroup",
     Value::Object({{"logGroupName", "/app/api"}, {"tags", Value::Object({{"env", "dev"}})}}));
  Ok("TagResource",
     Value::Object({{"resourceArn", arn}, {"tags", Value::Object({{"owner", "ana"}})}}));
  out = Ok("ListTagsForResource", Value::Object({{"resourceArn", arn + ":*"}}));
  EXPECT_EQ(*out.Find("tags"), Value::Object({{"team", "ml"}, {"env", "dev"}, {"owner", "ana"}}));
  Ok("UntagResource",
     Value::Object({{"resourceArn", arn}, {"tagKeys", Value::List{Value("team")}}}));
  Ok("UntagLogGroup",
     Value::Object({{"logGroupName", "/app/api"}, {"tags", Value::List{Value("env")}}}));
  out = Ok("ListTagsLogGroup", Value::Object({{"logGroupName", "/app/api"}}));
  EXPECT_EQ(*out.Find("tags"), Value::Object({{"owner", "ana"}}));

  // ARNs of other accounts/regions are not found; other resource types are refused.
  EXPECT_EQ(ErrorCode("ListTagsForResource",
                      Value::Object({{"resourceArn",
                                      "arn:aws:logs:eu-west-1:000000000000:log-group:/app/api"}})),
            "ResourceNotFoundException");
  EXPECT_EQ(ErrorCode("ListTagsForResource",
                      Value::Object(
                          {{"resourceArn", "arn:aws:logs:us-east-1:000000000000:destination:d"}})),
            "InvalidParameterException");
  EXPECT_EQ(ErrorCode("TagResource", Value::Object({{"resourceArn", "nonsense"},
                                                    {"tags", Value::Object({{"a", "b"}})}})),
            "InvalidParameterException");

  // Too many tags: TooManyTagsException by ARN, InvalidParameterException by name.
  Value many = Value::MakeMap();
  for (int i = 0; i < 50; ++i) many["k" + std::to_string(i)] = "v";
  EXPECT_EQ(ErrorCode("TagResource", Value::Object({{"resourceArn", arn}, {"tags", many}})),
            "TooManyTagsException");
  EXPECT_EQ(ErrorCode("TagLogGroup", Value::Object({{"logGroupName", "/app/api"}, {"tags", many}})),
            "InvalidParameterException");

  Ok("DeleteLogGroup", Value::Object({{"logGroupName", "/app/api"}}));
  auto missing = Logs("DeleteLogGroup", Value::Object({{"logGroupName", "/app/api"}}));
  EXPECT_EQ(missing.status().code(), "ResourceNotFoundException");
  EXPECT_EQ(missing.status().message(), "The specified log group does not exist.");
  EXPECT_EQ(missing.status().http_status(), 400);
}

TEST_F(LogsServiceTest, DescribeLogGroupsPaginatesWithNextToken) {
  for (int i = 0; i < 5; ++i) {
    Ok("CreateLogGroup", Value::Object({{"logGroupName", "g" + std::to_string(i)}}));
  }
  std::vector<std::string> names;
  Value input = Value::Object({{"limit", 2}});
  for (int page = 0; page < 5; ++page) {
    Value out = Ok("DescribeLogGroups", input);
    for (const Value& g : out.Find("logGroups")->list())
      names.push_back(g.GetString("logGroupName"));
    if (!out.Has("nextToken")) break;
    input["nextToken"] = out.GetString("nextToken");
  }
  EXPECT_EQ(names, (std::vector<std::string>{"g0", "g1", "g2", "g3", "g4"}));
  EXPECT_EQ(ErrorCode("DescribeLogGroups", Value::Object({{"nextToken", "forged"}})),
            "InvalidParameterException");
  EXPECT_EQ(ErrorCode("DescribeLogGroups",
                      Value::Object({{"logGroupNamePrefix", "g"}, {"logGroupNamePattern", "g"}})),
            "InvalidParameterException");
}

TEST_F(LogsServiceTest, PutGetAndDescribeStreams) {
  MakeStream("g", "s1");
  EXPECT_EQ(
      ErrorCode("CreateLogStream", Value::Object({{"logGroupName", "g"}, {"logStreamName", "s1"}})),
      "ResourceAlreadyExistsException");
  auto no_group =
      Logs("CreateLogStream", Value::Object({{"logGroupName", "x"}, {"logStreamName", "s"}}));
  EXPECT_EQ(no_group.status().message(), "The specified log group does not exist.");

  Value put =
      Ok("PutLogEvents",
         Value::Object({{"logGroupName", "g"},
                        {"logStreamName", "s1"},
                        {"sequenceToken", "whatever-is-ignored"},
                        {"logEvents", Events({{kNowMs - 2, "hello"}, {kNowMs - 1, "world"}})}}));
  EXPECT_FALSE(put.GetString("nextSequenceToken").empty());
  EXPECT_FALSE(put.Has("rejectedLogEventsInfo"));

  Value rejected =
      Ok("PutLogEvents",
         Value::Object(
             {{"logGroupName", "g"},
              {"logStreamName", "s1"},
              {"logEvents", Events({{kNowMs, "now"}, {kNowMs + 3 * 3600 * 1000, "future"}})}}));
  ASSERT_TRUE(rejected.Has("rejectedLogEventsInfo"));
  EXPECT_EQ(rejected.Find("rejectedLogEventsInfo")->GetInt("tooNewLogEventStartIndex", -1), 1);
  EXPECT_FALSE(rejected.Find("rejectedLogEventsInfo")->Has("tooOldLogEventEndIndex"));

  EXPECT_EQ(ErrorCode("PutLogEvents",
                      Value::Object({{"logGroupName", "g"},
                                     {"logStreamName", "s1"},
                                     {"logEvents", Events({{kNowMs, "b"}, {kNowMs - 1, "a"}})}})),
            "InvalidParameterException");
  auto no_stream = Logs("PutLogEvents", Value::Object({{"logGroupName", "g"},
                                                       {"logStreamName", "nope"},
                                                       {"logEvents", Events({{kNowMs, "x"}})}}));
  EXPECT_EQ(no_stream.status().code(), "ResourceNotFoundException");
  EXPECT_EQ(no_stream.status().message(), "The specified log stream does not exist.");

  Value got =
      Ok("GetLogEvents",
         Value::Object({{"logGroupName", "g"}, {"logStreamName", "s1"}, {"startFromHead", true}}));
  const Value::List& events = got.Find("events")->list();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].GetString("message"), "hello");
  EXPECT_EQ(events[0].GetInt("timestamp"), kNowMs - 2);
  EXPECT_EQ(events[0].GetInt("ingestionTime"), kNowMs);
  EXPECT_EQ(got.GetString("nextForwardToken").substr(0, 2), "f/");
  EXPECT_EQ(got.GetString("nextBackwardToken").substr(0, 2), "b/");
  // At the end the same token comes back.
  Value again =
      Ok("GetLogEvents", Value::Object({{"logGroupName", "g"},
                                        {"logStreamName", "s1"},
                                        {"nextToken", got.GetString("nextForwardToken")}}));
  EXPECT_TRUE(again.Find("events")->list().empty());
  EXPECT_EQ(again.GetString("nextForwardToken"), got.GetString("nextForwardToken"));
  EXPECT_EQ(
      ErrorCode(
          "GetLogEvents",
          Value::Object({{"logGroupName", "g"}, {"logStreamName", "s1"}, {"nextToken", "f/1234"}})),
      "InvalidParameterException");

  // logGroupIdentifier: a name or an ARN, never together with logGroupName.
  Value by_arn =
      Ok("GetLogEvents",
         Value::Object({{"logGroupIdentifier", "arn:aws:logs:us-east-1:000000000000:log-group:g"},
                        {"logStreamName", "s1"}}));
  EXPECT_EQ(by_arn.Find("events")->size(), 3u);
  EXPECT_EQ(ErrorCode("GetLogEvents", Value::Object({{"logGroupIdentifier", "g"},
                                                     {"logGroupName", "g"},
                                                     {"logStreamName", "s1"}})),
            "InvalidParameterException");

  MakeStream("g", "s2");
  Value streams = Ok(
      "DescribeLogStreams",
      Value::Object({{"logGroupName", "g"}, {"orderBy", "LastEventTime"}, {"descending", true}}));
  const Value::List& list = streams.Find("logStreams")->list();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].GetString("logStreamName"), "s1");
  EXPECT_EQ(list[0].GetInt("firstEventTimestamp"), kNowMs - 2);
  EXPECT_EQ(list[0].GetInt("lastEventTimestamp"), kNowMs);
  EXPECT_EQ(list[0].GetInt("lastIngestionTime"), kNowMs);
  EXPECT_EQ(list[0].GetInt("storedBytes"), 13);
  EXPECT_EQ(list[0].GetString("arn"),
            "arn:aws:logs:us-east-1:000000000000:log-group:g:log-stream:s1");
  EXPECT_FALSE(list[1].Has("lastEventTimestamp"));
  EXPECT_EQ(ErrorCode("DescribeLogStreams", Value::Object({{"logGroupName", "g"},
                                                           {"orderBy", "LastEventTime"},
                                                           {"logStreamNamePrefix", "s"}})),
            "InvalidParameterException");
  EXPECT_EQ(ErrorCode("DescribeLogStreams", Value::Object({{"logGroupName", "nope"}})),
            "ResourceNotFoundException");

  Ok("DeleteLogStream", Value::Object({{"logGroupName", "g"}, {"logStreamName", "s1"}}));
  EXPECT_EQ(
      ErrorCode("DeleteLogStream", Value::Object({{"logGroupName", "g"}, {"logStreamName", "s1"}})),
      "ResourceNotFoundException");
}

TEST_F(LogsServiceTest, FilterLogEventsWithPatternsAndPagination) {
  MakeStream("g", "a");
  MakeStream("g", "b");
  Ok("PutLogEvents",
     Value::Object({{"logGroupName", "g"},
                    {"logStreamName", "a"},
                    {"logEvents", Events({{kNowMs - 50, R"({"level":"error","ms":120})"},
                                          {kNowMs - 30, R"({"level":"info","ms":5})"}})}}));
  Ok("PutLogEvents",
     Value::Object({{"logGroupName", "g"},
                    {"logStreamName", "b"},
                    {"logEvents", Events({{kNowMs - 40, "plain ERROR line"},
                                          {kNowMs - 20, R"({"level":"error","ms":7})"}})}}));
  Value slow = Ok("FilterLogEvents",
                  Value::Object({{"logGroupName", "g"}, {"filterPattern", "{ $.ms > 100 }"}}));
  ASSERT_EQ(slow.Find("events")->size(), 1u);
  const Value& e = slow.Find("events")->list()[0];
  EXPECT_EQ(e.GetString("logStreamName"), "a");
  EXPECT_EQ(e.GetInt("timestamp"), kNowMs - 50);
  EXPECT_FALSE(e.GetString("eventId").empty());
  EXPECT_EQ(slow.Find("searchedLogStreams")->size(), 2u);
  EXPECT_TRUE(slow.Find("searchedLogStreams")->list()[0].GetBool("searchedCompletely"));

  Value errors =
      Ok("FilterLogEvents", Value::Object({{"logGroupName", "g"},
                                           {"filterPattern", "{ $.level = \"error\" }"},
                                           {"logStreamNames", Value::List{Value("b")}}}));
  ASSERT_EQ(errors.Find("events")->size(), 1u);
  EXPECT_EQ(errors.Find("events")->list()[0].GetInt("timestamp"), kNowMs - 20);

  // One event per page until nextToken disappears.
  std::vector<int64_t> times;
  Value input = Value::Object({{"logGroupName", "g"}, {"limit", 1}});
  for (int i = 0; i < 10; ++i) {
    Value page = Ok("FilterLogEvents", input);
    for (const Value& ev : page.Find("events")->list()) times.push_back(ev.GetInt("timestamp"));
    if (!page.Has("nextToken")) break;
    input["nextToken"] = page.GetString("nextToken");
  }
  EXPECT_EQ(times, (std::vector<int64_t>{kNowMs - 50, kNowMs - 40, kNowMs - 30, kNowMs - 20}));

  auto bad = Logs("FilterLogEvents",
                  Value::Object({{"logGroupName", "g"}, {"filterPattern", "{ $.ms > }"}}));
  EXPECT_EQ(bad.status().code(), "InvalidParameterException");
  EXPECT_EQ(bad.status().message().rfind("Invalid filter pattern", 0), 0u);
  EXPECT_EQ(
      ErrorCode("FilterLogEvents", Value::Object({{"logGroupName", "g"}, {"nextToken", "zz"}})),
      "InvalidParameterException");
  EXPECT_EQ(ErrorCode("FilterLogEvents", Value::Object({{"logGroupName", "nope"}})),
            "ResourceNotFoundException");
}

TEST_F(LogsServiceTest, OperationsAuthorizeOnLogGroupAndStreamArns) {
  const Value group = Value::Object({{"logGroupName", "/app/x"}});
  const Value stream = Value::Object({{"logGroupName", "/app/x"}, {"logStreamName", "s"}});
  const std::string group_arn = "arn:aws:logs:us-east-1:000000000000:log-group:/app/x:*";
  const std::string stream_arn =
      "arn:aws:logs:us-east-1:000000000000:log-group:/app/x:log-stream:s";
  for (const char* op : {"CreateLogGroup", "DeleteLogGroup", "PutRetentionPolicy",
                         "DeleteRetentionPolicy", "TagLogGroup", "UntagLogGroup",
                         "ListTagsLogGroup", "FilterLogEvents", "DescribeLogStreams"}) {
    EXPECT_EQ(Resource("logs", op, group, root_), group_arn) << op;
  }
  EXPECT_EQ(Resource("logs", "CreateLogStream", stream, root_), group_arn);
  for (const char* op : {"PutLogEvents", "GetLogEvents", "DeleteLogStream"}) {
    EXPECT_EQ(Resource("logs", op, stream, root_), stream_arn) << op;
  }
  const Value by_arn =
      Value::Object({{"resourceArn", "arn:aws:logs:us-east-1:000000000000:log-group:/app/x"}});
  EXPECT_EQ(Resource("logs", "TagResource", by_arn, root_),
            "arn:aws:logs:us-east-1:000000000000:log-group:/app/x");
  EXPECT_EQ(Resource("logs", "DescribeLogGroups", Value::MakeMap(), root_), "*");
}

}  // namespace
}  // namespace nimbus::services
