#include "telemetry/log_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace nimbus::telemetry {
namespace {

constexpr const char* kAcct = "000000000000";
constexpr const char* kRegion = "us-east-1";
constexpr int64_t kNowMs = 1700000000000;
constexpr int64_t kDayMs = 86400000;

class LogStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-logs-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = store::Database::Open(dir_);
    ASSERT_TRUE(db.ok());
    db_ = std::move(db).value();
    auto logs = LogStore::Open(*db_, clock_);
    ASSERT_TRUE(logs.ok()) << logs.status().ToString();
    logs_ = std::move(logs).value();
  }
  void TearDown() override {
    logs_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  void MakeStream(const std::string& group, const std::string& stream) {
    Status g = logs_->CreateGroup(kAcct, kRegion, group, "", {});
    ASSERT_TRUE(g.ok() || g.code() == "ResourceAlreadyExistsException") << g.ToString();
    ASSERT_TRUE(logs_->CreateStream(kAcct, kRegion, group, stream).ok());
  }

  // Puts n events "<prefix>-<i>" at kNowMs - n + i (ms), in batches.
  void PutMany(const std::string& group, const std::string& stream, int n,
               const std::string& prefix = "e", int64_t base = kNowMs - 100000) {
    std::vector<LogEvent> batch;
    for (int i = 0; i < n; ++i) {
      batch.push_back({base + i, prefix + "-" + std::to_string(i)});
      if (batch.size() == 1000 || i == n - 1) {
        auto r = logs_->Put(kAcct, kRegion, group, stream, batch);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        ASSERT_FALSE(r->any_rejected());
        batch.clear();
      }
    }
  }

  std::vector<std::string> Messages(const std::vector<StoredLogEvent>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.message);
    return out;
  }

  FakeClock clock_{kNowMs / 1000.0};
  std::string dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<LogStore> logs_;
};

TEST_F(LogStoreTest, GroupsAreCreatedOnceAndScopedByAccountAndRegion) {
  ASSERT_TRUE(logs_->CreateGroup(kAcct, kRegion, "/app/web", "key-1", {{"team", "ml"}}).ok());
  Status again = logs_->CreateGroup(kAcct, kRegion, "/app/web", "", {});
  EXPECT_EQ(again.code(), "ResourceAlreadyExistsException");
  // The same name in another region or account is another group.
  EXPECT_TRUE(logs_->CreateGroup(kAcct, "eu-west-1", "/app/web", "", {}).ok());
  EXPECT_TRUE(logs_->CreateGroup("111111111111", kRegion, "/app/web", "", {}).ok());

  auto g = logs_->GetGroup(kAcct, kRegion, "/app/web");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->arn, "arn:aws:logs:us-east-1:000000000000:log-group:/app/web:*");
  EXPECT_EQ(g->creation_time_ms, kNowMs);
  EXPECT_EQ(g->kms_key_id, "key-1");
  EXPECT_FALSE(g->retention_days);
  EXPECT_EQ(logs_->ListTags(kAcct, kRegion, "/app/web")->at("team"), "ml");

  ASSERT_TRUE(logs_->DeleteGroup(kAcct, "eu-west-1", "/app/web").ok());
  EXPECT_TRUE(logs_->GetGroup(kAcct, kRegion, "/app/web").ok());
  Status gone = logs_->DeleteGroup(kAcct, "eu-west-1", "/app/web");
  EXPECT_EQ(gone.code(), "ResourceNotFoundException");
  EXPECT_EQ(gone.message(), "The specified log group does not exist.");
}

TEST_F(LogStoreTest, DescribeGroupsFiltersAndPaginates) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(logs_->CreateGroup(kAcct, kRegion, "/aws/job-" + std::to_string(i), "", {}).ok());
  }
  ASSERT_TRUE(logs_->CreateGroup(kAcct, kRegion, "/other/Job-X", "", {}).ok());
  ASSERT_TRUE(logs_->CreateGroup(kAcct, "eu-west-1", "/aws/job-elsewhere", "", {}).ok());

  std::vector<std::string> names;
  DescribeGroupsRequest request;
  request.prefix = "/aws/";
  request.limit = 3;
  int pages = 0;
  do {
    auto page = logs_->DescribeGroups(kAcct, kRegion, request);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const auto& g : page->groups) names.push_back(g.name);
    request.next_token = page->next_token;
    ++pages;
  } while (!request.next_token.empty());
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(names.size(), 7u);
  EXPECT_EQ(names.front(), "/aws/job-0");
  EXPECT_EQ(names.back(), "/aws/job-6");

  DescribeGroupsRequest pattern;
  pattern.pattern = "JOB-";  // case-insensitive substring
  auto matched = logs_->DescribeGroups(kAcct, kRegion, pattern);
  ASSERT_TRUE(matched.ok());
  EXPECT_EQ(matched->groups.size(), 8u);

  DescribeGroupsRequest both;
  both.prefix = "/aws";
  both.pattern = "job";
  EXPECT_EQ(logs_->DescribeGroups(kAcct, kRegion, both).status().code(),
            "InvalidParameterException");
  DescribeGroupsRequest bad_limit;
  bad_limit.limit = 51;
  EXPECT_EQ(logs_->DescribeGroups(kAcct, kRegion, bad_limit).status().code(),
            "InvalidParameterException");
}

TEST_F(LogStoreTest, ForgedTokensAreInvalidParameterNeverACrash) {
  ASSERT_TRUE(logs_->CreateGroup(kAcct, kRegion, "g", "", {}).ok());
  MakeStream("g", "s");
  PutMany("g", "s", 5);
  DescribeGroupsRequest groups;
  groups.limit = 1;
  ASSERT_TRUE(logs_->CreateGroup(kAcct, kRegion, "h", "", {}).ok());
  auto page = logs_->DescribeGroups(kAcct, kRegion, groups);
  ASSERT_TRUE(page.ok());
  std::string good = page->next_token;
  ASSERT_FALSE(good.empty());

  std::vector<std::string> forged = {"x",
                                     "AAAA",
                                     "not base64 !!",
                                     good + "A",
                                     good.substr(0, good.size() - 4),
                                     std::string(5000, 'Q')};
  // Flip one character of a valid token.
  std::string flipped = good;
  flipped[2] = flipped[2] == 'A' ? 'B' : 'A';
  forged.push_back(flipped);
  for (const std::string& token : forged) {
    groups.next_token = token;
    EXPECT_EQ(logs_->DescribeGroups(kAcct, kRegion, groups).status().code(),
              "InvalidParameterException")
        << token;
    DescribeStreamsRequest streams;
    streams.group = "g";
    streams.next_token = token;
    EXPECT_EQ(logs_->DescribeStreams(kAcct, kRegion, streams).status().code(),
              "InvalidParameterException");
    FilterRequest filter;
    filter.group = "g";
    filter.next_token = token;
    EXPECT_EQ(logs_->Filter(kAcct, kRegion, filter).status().code(), "InvalidParameterException");
  }
  // A token of one kind is not accepted by another listing.
  DescribeStreamsRequest streams;
  streams.group = "g";
  streams.next_token = good;
  EXPECT_EQ(logs_->DescribeStreams(kAcct, kRegion, streams).status().code(),
            "InvalidParameterException");

  GetEventsRequest get;
  get.group = "g";
  get.stream = "s";
  auto events = logs_->GetEvents(kAcct, kRegion, get);
  ASSERT_TRUE(events.ok());
  std::string f = events->next_forward_token;
  ASSERT_EQ(f.substr(0, 2), "f/");
  ASSERT_EQ(f.size(), 58u);
  std::string tampered = f;
  tampered[10] = tampered[10] == '1' ? '2' : '1';
  for (const std::string& token : {tampered, std::string("f/123"), std::string("x/") + f.substr(2),
                                   f + "0", std::string("b/") + std::string(56, '9')}) {
    get.next_token = token;
    EXPECT_EQ(logs_->GetEvents(kAcct, kRegion, get).status().code(), "InvalidParameterException")
        << token;
  }
}

TEST_F(LogStoreTest, StreamsAreDescribedByNameOrLastEventTime) {
  ASSERT_TRUE(logs_->CreateGroup(kAcct, kRegion, "g", "", {}).ok());
  for (const char* name : {"b", "a", "c", "d"})
    ASSERT_TRUE(logs_->CreateStream(kAcct, kRegion, "g", name).ok());
  EXPECT_EQ(logs_->CreateStream(kAcct, kRegion, "g", "a").code(), "ResourceAlreadyExistsException");
  EXPECT_EQ(logs_->CreateStream(kAcct, kRegion, "nope", "a").message(),
            "The specified log group does not exist.");
  // Last events: c oldest, a newest, b and d none.
  ASSERT_TRUE(logs_->Put(kAcct, kRegion, "g", "c", {{kNowMs - 3000, "c1"}}).ok());
  ASSERT_TRUE(
      logs_->Put(kAcct, kRegion, "g", "a", {{kNowMs - 2000, "a1"}, {kNowMs - 1000, "a2"}}).ok());

  DescribeStreamsRequest by_name;
  by_name.group = "g";
  auto page = logs_->DescribeStreams(kAcct, kRegion, by_name);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->streams.size(), 4u);
  EXPECT_EQ(page->streams[0].name, "a");
  EXPECT_EQ(page->streams[0].arn, "arn:aws:logs:us-east-1:000000000000:log-group:g:log-stream:a");
  EXPECT_EQ(page->streams[0].first_event_ms, kNowMs - 2000);
  EXPECT_EQ(page->streams[0].last_event_ms, kNowMs - 1000);
  EXPECT_EQ(page->streams[0].last_ingestion_ms, kNowMs);
  EXPECT_EQ(page->streams[0].stored_bytes, 4);
  EXPECT_FALSE(page->streams[1].last_event_ms);  // b has no events

  // Descending by name, two per page.
  by_name.descending = true;
  by_name.limit = 2;
  std::vector<std::string> names;
  do {
    auto p = logs_->DescribeStreams(kAcct, kRegion, by_name);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    for (const auto& s : p->streams) names.push_back(s.name);
    by_name.next_token = p->next_token;
  } while (!by_name.next_token.empty());
  EXPECT_EQ(names, (std::vector<std::string>{"d", "c", "b", "a"}));

  DescribeStreamsRequest by_time;
  by_time.group = "g";
  by_time.order_by_last_event_time = true;
  by_time.descending = true;
  by_time.limit = 1;
  names.clear();
  do {
    auto p = logs_->DescribeStreams(kAcct, kRegion, by_time);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    for (const auto& s : p->streams) names.push_back(s.name);
    by_time.next_token = p->next_token;
  } while (!by_time.next_token.empty());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "c", "d", "b"}));

  DescribeStreamsRequest prefix;
  prefix.group = "g";
  prefix.prefix = "c";
  EXPECT_EQ(logs_->DescribeStreams(kAcct, kRegion, prefix)->streams.size(), 1u);
  prefix.order_by_last_event_time = true;
  EXPECT_EQ(logs_->DescribeStreams(kAcct, kRegion, prefix).status().code(),
            "InvalidParameterException");

  ASSERT_TRUE(logs_->DeleteStream(kAcct, kRegion, "g", "a").ok());
  EXPECT_EQ(logs_->DeleteStream(kAcct, kRegion, "g", "a").message(),
            "The specified log stream does not exist.");
  EXPECT_EQ(logs_->GetGroup(kAcct, kRegion, "g")->stored_bytes, 2);  // c1 only
}

TEST_F(LogStoreTest, PutValidatesBatchesAsAws) {
  MakeStream("g", "s");
  auto unordered = logs_->Put(kAcct, kRegion, "g", "s", {{kNowMs, "b"}, {kNowMs - 1, "a"}});
  EXPECT_EQ(unordered.status().code(), "InvalidParameterException");
  EXPECT_EQ(unordered.status().message(),
            "Log events in a single PutLogEvents request must be in chronological order.");

  // 1,048,576 bytes counting 26 per event: exactly at the limit passes, one byte over fails.
  std::vector<LogEvent> big(4, {kNowMs, std::string(1048576 / 4 - 26, 'x')});
  EXPECT_TRUE(logs_->Put(kAcct, kRegion, "g", "s", big).ok());
  big.back().message.push_back('x');
  auto too_big = logs_->Put(kAcct, kRegion, "g", "s", big);
  EXPECT_EQ(too_big.status().code(), "InvalidParameterException");
  EXPECT_NE(too_big.status().message().find("1048577"), std::string::npos);

  std::vector<LogEvent> many(10001, {kNowMs, "m"});
  EXPECT_EQ(logs_->Put(kAcct, kRegion, "g", "s", many).status().code(),
            "InvalidParameterException");
  many.pop_back();
  EXPECT_TRUE(logs_->Put(kAcct, kRegion, "g", "s", many).ok());

  auto span = logs_->Put(kAcct, kRegion, "g", "s", {{kNowMs - kDayMs - 1, "a"}, {kNowMs, "b"}});
  EXPECT_EQ(span.status().code(), "InvalidParameterException");

  EXPECT_EQ(logs_->Put(kAcct, kRegion, "g", "nope", {{kNowMs, "x"}}).status().message(),
            "The specified log stream does not exist.");
  EXPECT_EQ(logs_->Put(kAcct, kRegion, "nope", "s", {{kNowMs, "x"}}).status().message(),
            "The specified log group does not exist.");
}

TEST_F(LogStoreTest, PutRejectsTooOldTooNewAndExpiredEventsAndStoresTheRest) {
  MakeStream("g", "s");
  const int64_t old = kNowMs - 14 * kDayMs - 1;
  std::vector<LogEvent> batch = {{old - 5, "old0"},
                                 {old, "old1"},
                                 {kNowMs - 14 * kDayMs + 1000, "ok0"},  // still inside
                                 {kNowMs, "ok1"},
                                 {kNowMs + 2 * 3600 * 1000, "ok2"},  // exactly 2 h ahead
                                 {kNowMs + 2 * 3600 * 1000 + 1, "new0"}};
  // Span > 24 h is refused, so put the old and new ones in separate batches.
  auto first = logs_->Put(kAcct, kRegion, "g", "s", {batch[0], batch[1], batch[2]});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->too_old_end_index, 1);
  EXPECT_FALSE(first->too_new_start_index);
  EXPECT_FALSE(first->expired_end_index);
  EXPECT_EQ(first->accepted, 1);
  auto second = logs_->Put(kAcct, kRegion, "g", "s", {batch[3], batch[4], batch[5]});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->too_new_start_index, 2);
  EXPECT_FALSE(second->too_old_end_index);
  EXPECT_EQ(second->accepted, 2);
  EXPECT_NE(first->next_sequence_token, second->next_sequence_token);

  GetEventsRequest get;
  get.group = "g";
  get.stream = "s";
  get.start_from_head = true;
  auto all = logs_->GetEvents(kAcct, kRegion, get);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Messages(all->events), (std::vector<std::string>{"ok0", "ok1", "ok2"}));

  // With a retention of 1 day, events older than that are reported as expired.
  ASSERT_TRUE(logs_->PutRetention(kAcct, kRegion, "g", 1).ok());
  auto expired =
      logs_->Put(kAcct, kRegion, "g", "s", {{kNowMs - kDayMs - 10, "exp"}, {kNowMs - 20, "fresh"}});
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(expired->expired_end_index, 0);
  EXPECT_FALSE(expired->too_old_end_index);
  EXPECT_EQ(expired->accepted, 1);
}

TEST_F(LogStoreTest, GetEventsPagesForwardAndBackwardWithAwsTokens) {
  MakeStream("g", "s");
  PutMany("g", "s", 25);

  // From the head, 10 at a time, until the forward token comes back unchanged.
  GetEventsRequest get;
  get.group = "g";
  get.stream = "s";
  get.start_from_head = true;
  get.limit = 10;
  std::vector<std::string> seen;
  std::string token;
  int calls = 0;
  while (true) {
    auto r = logs_->GetEvents(kAcct, kRegion, get);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ++calls;
    for (const auto& m : Messages(r->events)) seen.push_back(m);
    if (r->next_forward_token == get.next_token) break;
    get.next_token = r->next_forward_token;
    ASSERT_LT(calls, 10);
  }
  EXPECT_EQ(calls, 4);  // 10 + 10 + 5 + the empty page that returns the same token
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_EQ(seen.front(), "e-0");
  EXPECT_EQ(seen.back(), "e-24");

  // Without startFromHead: the newest events, then backwards.
  GetEventsRequest tail;
  tail.group = "g";
  tail.stream = "s";
  tail.limit = 10;
  auto last = logs_->GetEvents(kAcct, kRegion, tail);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->events.front().message, "e-15");
  EXPECT_EQ(last->events.back().message, "e-24");
  EXPECT_EQ(last->next_backward_token.substr(0, 2), "b/");
  tail.next_token = last->next_backward_token;
  auto before = logs_->GetEvents(kAcct, kRegion, tail);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->events.front().message, "e-5");
  EXPECT_EQ(before->events.back().message, "e-14");
  tail.next_token = before->next_backward_token;
  auto first = logs_->GetEvents(kAcct, kRegion, tail);
  EXPECT_EQ(Messages(first->events), (std::vector<std::string>{"e-0", "e-1", "e-2", "e-3", "e-4"}));
  tail.next_token = first->next_backward_token;
  auto none = logs_->GetEvents(kAcct, kRegion, tail);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->events.empty());
  EXPECT_EQ(none->next_backward_token, tail.next_token);
  // Forward from a backward page continues after its last event.
  tail.next_token = first->next_forward_token;
  auto next = logs_->GetEvents(kAcct, kRegion, tail);
  EXPECT_EQ(next->events.front().message, "e-5");

  // A forward token at the end picks up events written later (tailing).
  GetEventsRequest follow = get;
  auto at_end = logs_->GetEvents(kAcct, kRegion, follow);
  ASSERT_TRUE(at_end->events.empty());
  PutMany("g", "s", 2, "late", kNowMs);
  auto late = logs_->GetEvents(kAcct, kRegion, follow);
  EXPECT_EQ(Messages(late->events), (std::vector<std::string>{"late-0", "late-1"}));
}

TEST_F(LogStoreTest, GetEventsAppliesTheTimeWindowAndTieBreaksBySequence) {
  MakeStream("g", "s");
  // Three events share a timestamp: they come back in the order they were put.
  ASSERT_TRUE(logs_
                  ->Put(kAcct, kRegion, "g", "s",
                        {{kNowMs - 30, "a"},
                         {kNowMs - 20, "b1"},
                         {kNowMs - 20, "b2"},
                         {kNowMs - 20, "b3"},
                         {kNowMs - 10, "c"}})
                  .ok());
  GetEventsRequest get;
  get.group = "g";
  get.stream = "s";
  get.start_from_head = true;
  get.start_time_ms = kNowMs - 20;  // inclusive
  get.end_time_ms = kNowMs - 10;    // exclusive
  auto r = logs_->GetEvents(kAcct, kRegion, get);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Messages(r->events), (std::vector<std::string>{"b1", "b2", "b3"}));
  EXPECT_EQ(r->events[0].ingestion_time_ms, kNowMs);

  // Paging one at a time through equal timestamps loses nothing.
  get.limit = 1;
  std::vector<std::string> seen;
  while (true) {
    auto page = logs_->GetEvents(kAcct, kRegion, get);
    ASSERT_TRUE(page.ok());
    for (const auto& m : Messages(page->events)) seen.push_back(m);
    if (page->next_forward_token == get.next_token) break;
    get.next_token = page->next_forward_token;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"b1", "b2", "b3"}));

  GetEventsRequest missing;
  missing.group = "g";
  missing.stream = "nope";
  EXPECT_EQ(logs_->GetEvents(kAcct, kRegion, missing).status().message(),
            "The specified log stream does not exist.");
}

TEST_F(LogStoreTest, GetEventsCapsResponsesAtOneMegabyte) {
  MakeStream("g", "s");
  // 8 events of 200 KB: at most 5 fit in 1 MB (with 26 bytes each).
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(
        logs_->Put(kAcct, kRegion, "g", "s", {{kNowMs - 100 + i, std::string(200 * 1024, 'a' + i)}})
            .ok());
  }
  GetEventsRequest get;
  get.group = "g";
  get.stream = "s";
  get.start_from_head = true;
  auto r = logs_->GetEvents(kAcct, kRegion, get);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->events.size(), 5u);
  get.next_token = r->next_forward_token;
  auto rest = logs_->GetEvents(kAcct, kRegion, get);
  EXPECT_EQ(rest->events.size(), 3u);
  EXPECT_EQ(rest->events.back().message[0], 'h');
}

TEST_F(LogStoreTest, FilterSearchesStreamsInTimeOrderWithPatternsAndPages) {
  MakeStream("g", "web-1");
  MakeStream("g", "web-2");
  MakeStream("g", "db-1");
  // Interleaved timestamps across streams.
  for (int i = 0; i < 30; ++i) {
    const std::string stream = i % 3 == 0 ? "web-1" : i % 3 == 1 ? "web-2" : "db-1";
    const std::string level = i % 2 == 0 ? "ERROR" : "INFO";
    ASSERT_TRUE(logs_
                    ->Put(kAcct, kRegion, "g", stream,
                          {{kNowMs - 1000 + i, level + " request " + std::to_string(i)}})
                    .ok());
  }
  FilterRequest all;
  all.group = "g";
  auto everything = logs_->Filter(kAcct, kRegion, all);
  ASSERT_TRUE(everything.ok());
  ASSERT_EQ(everything->events.size(), 30u);
  for (size_t i = 1; i < everything->events.size(); ++i) {
    EXPECT_LT(everything->events[i - 1].timestamp_ms, everything->events[i].timestamp_ms);
  }
  EXPECT_EQ(everything->events[0].stream, "web-1");
  EXPECT_EQ(everything->events[1].stream, "web-2");
  EXPECT_EQ(everything->searched_streams.size(), 3u);
  EXPECT_TRUE(everything->next_token.empty());
  EXPECT_TRUE(everything->searched_completely);

  FilterRequest errors;
  errors.group = "g";
  errors.stream_prefix = "web-";
  errors.pattern = *FilterPattern::Parse("ERROR");
  errors.limit = 4;
  std::vector<std::string> seen;
  int pages = 0;
  do {
    auto page = logs_->Filter(kAcct, kRegion, errors);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const auto& e : page->events) {
      EXPECT_NE(e.stream, "db-1");
      seen.push_back(e.message);
    }
    errors.next_token = page->next_token;
    ++pages;
  } while (!errors.next_token.empty());
  // ERROR events are the even i; web streams are i % 3 != 2: i in {0,4,6,10,12,16,18,22,24,28}.
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen.front(), "ERROR request 0");
  EXPECT_EQ(seen.back(), "ERROR request 28");

  FilterRequest named;
  named.group = "g";
  named.stream_names = {"db-1", "missing"};
  named.start_time_ms = kNowMs - 1000 + 10;
  named.end_time_ms = kNowMs - 1000 + 20;
  auto db = logs_->Filter(kAcct, kRegion, named);
  ASSERT_TRUE(db.ok());
  std::vector<std::string> db_messages;
  for (const auto& e : db->events) db_messages.push_back(e.message);
  EXPECT_EQ(db_messages,
            (std::vector<std::string>{"INFO request 11", "ERROR request 14", "INFO request 17"}));
  EXPECT_EQ(db->searched_streams, (std::vector<std::string>{"db-1"}));

  FilterRequest both;
  both.group = "g";
  both.stream_names = {"a"};
  both.stream_prefix = "b";
  EXPECT_EQ(logs_->Filter(kAcct, kRegion, both).status().code(), "InvalidParameterException");
  FilterRequest missing;
  missing.group = "nope";
  EXPECT_EQ(logs_->Filter(kAcct, kRegion, missing).status().code(), "ResourceNotFoundException");
}

TEST_F(LogStoreTest, FilterPagesAreCompleteWhenManyEventsDoNotMatch) {
  MakeStream("g", "s");
  PutMany("g", "s", 3000, "noise");
  ASSERT_TRUE(logs_->Put(kAcct, kRegion, "g", "s", {{kNowMs, "needle"}}).ok());
  FilterRequest find;
  find.group = "g";
  find.pattern = *FilterPattern::Parse("needle");
  auto r = logs_->Filter(kAcct, kRegion, find);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->events.size(), 1u);
  EXPECT_EQ(r->events[0].message, "needle");
  EXPECT_TRUE(r->next_token.empty());
}

TEST_F(LogStoreTest, RetentionHidesAndExpiresOldEvents) {
  MakeStream("g", "s");
  MakeStream("keep", "s");
  // Events 10, 5 and 0 days old.
  for (int days : {10, 5, 0}) {
    ASSERT_TRUE(
        logs_
            ->Put(kAcct, kRegion, "g", "s", {{kNowMs - days * kDayMs, "g-" + std::to_string(days)}})
            .ok());
    ASSERT_TRUE(logs_
                    ->Put(kAcct, kRegion, "keep", "s",
                          {{kNowMs - days * kDayMs, "k-" + std::to_string(days)}})
                    .ok());
  }
  EXPECT_EQ(logs_->PutRetention(kAcct, kRegion, "g", 4).code(), "InvalidParameterException");
  EXPECT_EQ(logs_->PutRetention(kAcct, kRegion, "nope", 7).code(), "ResourceNotFoundException");
  EXPECT_TRUE(LogStore::IsValidRetention(3653));
  EXPECT_FALSE(LogStore::IsValidRetention(0));
  ASSERT_TRUE(logs_->PutRetention(kAcct, kRegion, "g", 7).ok());
  EXPECT_EQ(logs_->GetGroup(kAcct, kRegion, "g")->retention_days, 7);

  // Reads hide the expired event before any sweep.
  GetEventsRequest get;
  get.group = "g";
  get.stream = "s";
  get.start_from_head = true;
  EXPECT_EQ(Messages(logs_->GetEvents(kAcct, kRegion, get)->events),
            (std::vector<std::string>{"g-5", "g-0"}));
  FilterRequest filter;
  filter.group = "g";
  EXPECT_EQ(logs_->Filter(kAcct, kRegion, filter)->events.size(), 2u);
  EXPECT_EQ(logs_->GetGroup(kAcct, kRegion, "g")->stored_bytes, 10);

  // The sweep deletes it and fixes the counters; the group without retention keeps all.
  auto swept = logs_->ExpireRetention(kNowMs);
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(*swept, 1);
  EXPECT_EQ(logs_->GetGroup(kAcct, kRegion, "g")->stored_bytes, 6);
  DescribeStreamsRequest streams;
  streams.group = "g";
  auto s = logs_->DescribeStreams(kAcct, kRegion, streams);
  EXPECT_EQ(s->streams[0].first_event_ms, kNowMs - 5 * kDayMs);
  EXPECT_EQ(s->streams[0].stored_bytes, 6);
  EXPECT_EQ(logs_->GetGroup(kAcct, kRegion, "keep")->stored_bytes, 10);
  EXPECT_EQ(*logs_->ExpireRetention(kNowMs), 0);

  // Time passes (FakeClock): the 5-day-old event expires 3 days later.
  clock_.Advance(3 * 86400);
  EXPECT_EQ(Messages(logs_->GetEvents(kAcct, kRegion, get)->events),
            (std::vector<std::string>{"g-0"}));
  EXPECT_EQ(*logs_->ExpireRetention(kNowMs + 3 * kDayMs), 1);

  // Without retention nothing expires.
  ASSERT_TRUE(logs_->DeleteRetention(kAcct, kRegion, "g").ok());
  EXPECT_FALSE(logs_->GetGroup(kAcct, kRegion, "g")->retention_days);
  EXPECT_EQ(*logs_->ExpireRetention(kNowMs + 3650 * kDayMs), 0);
}

TEST_F(LogStoreTest, ExpireRetentionWorksInChunksOverManyEvents) {
  MakeStream("g", "a");
  MakeStream("g", "b");
  PutMany("g", "a", 6000, "x", kNowMs - 2 * kDayMs);
  PutMany("g", "b", 1500, "y", kNowMs - 2 * kDayMs);
  PutMany("g", "b", 10, "z", kNowMs);
  ASSERT_TRUE(logs_->PutRetention(kAcct, kRegion, "g", 1).ok());
  auto swept = logs_->ExpireRetention(kNowMs);
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(*swept, 7500);
  FilterRequest filter;
  filter.group = "g";
  auto left = logs_->Filter(kAcct, kRegion, filter);
  EXPECT_EQ(left->events.size(), 10u);
  DescribeStreamsRequest streams;
  streams.group = "g";
  auto s = logs_->DescribeStreams(kAcct, kRegion, streams);
  EXPECT_EQ(s->streams[0].stored_bytes, 0);
  EXPECT_FALSE(s->streams[0].first_event_ms);
  EXPECT_EQ(s->streams[1].first_event_ms, kNowMs);
}

TEST_F(LogStoreTest, AppendCreatesGroupAndStreamAndSortsEvents) {
  ASSERT_TRUE(logs_
                  ->Append(kAcct, kRegion, "/aws/sagemaker/TrainingJobs", "job/algo-1",
                           {{kNowMs + 2, "third"}, {kNowMs, "first"}, {kNowMs + 1, "second"}})
                  .ok());
  ASSERT_TRUE(logs_
                  ->Append(kAcct, kRegion, "/aws/sagemaker/TrainingJobs", "job/algo-1",
                           {{kNowMs + 3, "fourth"}})
                  .ok());
  // More than one AWS batch at once.
  std::vector<LogEvent> lots(12000, {kNowMs + 4, "bulk"});
  ASSERT_TRUE(
      logs_->Append(kAcct, kRegion, "/aws/sagemaker/TrainingJobs", "job/algo-1", lots).ok());
  GetEventsRequest get;
  get.group = "/aws/sagemaker/TrainingJobs";
  get.stream = "job/algo-1";
  get.start_from_head = true;
  get.limit = 4;
  EXPECT_EQ(Messages(logs_->GetEvents(kAcct, kRegion, get)->events),
            (std::vector<std::string>{"first", "second", "third", "fourth"}));
  EXPECT_EQ(logs_->GetGroup(kAcct, kRegion, "/aws/sagemaker/TrainingJobs")->stored_bytes,
            5 + 6 + 5 + 6 + 12000 * 4);
  EXPECT_EQ(logs_->Append(kAcct, kRegion, "", "s", {}).code(), "InvalidParameterException");
}

TEST_F(LogStoreTest, TagsAreAddedReplacedRemovedAndLimited) {
  ASSERT_TRUE(logs_->CreateGroup(kAcct, kRegion, "g", "", {{"a", "1"}}).ok());
  ASSERT_TRUE(logs_->TagGroup(kAcct, kRegion, "g", {{"a", "2"}, {"b", "3"}}).ok());
  EXPECT_EQ(*logs_->ListTags(kAcct, kRegion, "g"), (LogTags{{"a", "2"}, {"b", "3"}}));
  ASSERT_TRUE(logs_->UntagGroup(kAcct, kRegion, "g", {"a", "zzz"}).ok());
  EXPECT_EQ(*logs_->ListTags(kAcct, kRegion, "g"), (LogTags{{"b", "3"}}));
  LogTags fifty;
  for (int i = 0; i < 50; ++i) fifty["k" + std::to_string(i)] = "v";
  EXPECT_EQ(logs_->TagGroup(kAcct, kRegion, "g", fifty).code(), "TooManyTagsException");
  EXPECT_EQ(logs_->ListTags(kAcct, kRegion, "g")->size(), 1u);
  EXPECT_EQ(logs_->ListTags(kAcct, kRegion, "nope").status().code(), "ResourceNotFoundException");
  // Deleting the group drops its tags, streams and events.
  MakeStream("g", "s");
  PutMany("g", "s", 3);
  ASSERT_TRUE(logs_->DeleteGroup(kAcct, kRegion, "g").ok());
  ASSERT_TRUE(logs_->CreateGroup(kAcct, kRegion, "g", "", {}).ok());
  EXPECT_TRUE(logs_->ListTags(kAcct, kRegion, "g")->empty());
  DescribeStreamsRequest streams;
  streams.group = "g";
  EXPECT_TRUE(logs_->DescribeStreams(kAcct, kRegion, streams)->streams.empty());
  auto count = db_->Query("SELECT COUNT(*) AS n FROM log_events");
  EXPECT_EQ(count->front().at("n").AsInt(), 0);
}

TEST_F(LogStoreTest, DataSurvivesReopening) {
  MakeStream("g", "s");
  PutMany("g", "s", 3);
  logs_.reset();
  db_.reset();
  auto db = store::Database::Open(dir_);
  ASSERT_TRUE(db.ok());
  db_ = std::move(db).value();
  auto logs = LogStore::Open(*db_, clock_);
  ASSERT_TRUE(logs.ok());
  logs_ = std::move(logs).value();
  GetEventsRequest get;
  get.group = "g";
  get.stream = "s";
  EXPECT_EQ(logs_->GetEvents(kAcct, kRegion, get)->events.size(), 3u);
}

TEST_F(LogStoreTest, EventReadsSeekOnTheIndexes) {
  // The shapes of the cursor's queries: each must be an index seek on the key, the
  // timestamp and the sequence number, never a scan or a sort.
  const std::pair<const char*, const char*> queries[] = {
      {"stream_id = 1 AND timestamp_ms = 5 AND id > 7 ORDER BY timestamp_ms, id",
       "(stream_id=? AND timestamp_ms=? AND rowid>?)"},
      {"stream_id = 1 AND timestamp_ms = 5 AND id < 7 ORDER BY timestamp_ms DESC, id DESC",
       "(stream_id=? AND timestamp_ms=? AND rowid<?)"},
      {"stream_id = 1 AND timestamp_ms >= 5 AND timestamp_ms < 9 ORDER BY timestamp_ms, id",
       "(stream_id=? AND timestamp_ms>? AND timestamp_ms<?)"},
      {"group_id = 1 AND timestamp_ms = 5 AND id > 7 ORDER BY timestamp_ms, id",
       "(group_id=? AND timestamp_ms=? AND rowid>?)"},
      {"group_id = 1 AND timestamp_ms > 5 AND timestamp_ms < 9 ORDER BY timestamp_ms, id",
       "(group_id=? AND timestamp_ms>? AND timestamp_ms<?)"},
  };
  for (const auto& [where, expected] : queries) {
    auto plan = db_->Query(std::string("EXPLAIN QUERY PLAN SELECT id, stream_id, timestamp_ms, "
                                       "ingestion_ms, message FROM log_events WHERE ") +
                           where + " LIMIT 5");
    ASSERT_TRUE(plan.ok());
    std::string detail;
    for (const auto& row : *plan) detail += row.at("detail").AsString() + "; ";
    EXPECT_NE(detail.find("INDEX log_events_by_"), std::string::npos) << where << ": " << detail;
    EXPECT_NE(detail.find(expected), std::string::npos) << where << ": " << detail;
    EXPECT_EQ(detail.find("TEMP B-TREE"), std::string::npos) << where << ": " << detail;
  }
}

TEST_F(LogStoreTest, PagingThroughEventsWithOneTimestampLosesNothing) {
  MakeStream("g", "a");
  MakeStream("g", "b");
  // 1,200 events per stream at one millisecond, written in two interleaved rounds.
  for (int round = 0; round < 2; ++round) {
    for (const char* stream : {"a", "b"}) {
      std::vector<LogEvent> batch;
      for (int i = 0; i < 600; ++i) {
        batch.push_back({kNowMs, std::string(stream) + std::to_string(round * 600 + i)});
      }
      ASSERT_TRUE(logs_->Put(kAcct, kRegion, "g", stream, batch).ok());
    }
  }
  GetEventsRequest get;
  get.group = "g";
  get.stream = "a";
  get.start_from_head = true;
  get.limit = 7;
  std::vector<std::string> seen;
  for (int calls = 0; calls < 1000; ++calls) {
    auto page = logs_->GetEvents(kAcct, kRegion, get);
    ASSERT_TRUE(page.ok());
    for (const auto& m : Messages(page->events)) seen.push_back(m);
    if (page->next_forward_token == get.next_token) break;
    get.next_token = page->next_forward_token;
  }
  ASSERT_EQ(seen.size(), 1200u);
  for (int i = 0; i < 1200; ++i) EXPECT_EQ(seen[i], "a" + std::to_string(i));

  // Backwards from the tail.
  GetEventsRequest back;
  back.group = "g";
  back.stream = "b";
  back.limit = 500;
  std::vector<std::string> reversed;
  for (int calls = 0; calls < 100; ++calls) {
    auto page = logs_->GetEvents(kAcct, kRegion, back);
    ASSERT_TRUE(page.ok());
    auto msgs = Messages(page->events);
    reversed.insert(reversed.begin(), msgs.begin(), msgs.end());
    if (page->next_backward_token == back.next_token) break;
    back.next_token = page->next_backward_token;
  }
  ASSERT_EQ(reversed.size(), 1200u);
  EXPECT_EQ(reversed.front(), "b0");
  EXPECT_EQ(reversed.back(), "b1199");

  // Filter across both streams and through a few named streams.
  for (bool named : {false, true}) {
    FilterRequest filter;
    filter.group = "g";
    if (named) filter.stream_names = {"b"};
    filter.limit = 333;
    size_t total = 0;
    for (int calls = 0; calls < 100; ++calls) {
      auto page = logs_->Filter(kAcct, kRegion, filter);
      ASSERT_TRUE(page.ok());
      total += page->events.size();
      if (page->next_token.empty()) break;
      filter.next_token = page->next_token;
    }
    EXPECT_EQ(total, named ? 1200u : 2400u);
  }
}

}  // namespace
}  // namespace nimbus::telemetry
