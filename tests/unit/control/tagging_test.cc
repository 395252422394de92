#include "control/tagging.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace nimbus::control {
namespace {

constexpr double kT0 = 1700000000.0;

StateMachine SimpleStates() {
  StateMachine s;
  s.initial_status = "Creating";
  s.transitions = {{"Creating", {"Active"}}};
  s.terminal = {"Active"};
  return s;
}

ResourceKind ModelKind() { return SageMakerKind("Model", "model", "model", SimpleStates()); }

ResourceKind RecognizerKind() {
  ResourceKind k;
  k.service = "comprehend";
  k.kind = "EntityRecognizer";
  k.display_name = "entity recognizer";
  k.arn_service = "comprehend";
  k.arn_resource_type = "entity-recognizer";
  k.states = SimpleStates();
  return k;
}

ResourceKind LogGroupKind() {
  ResourceKind k;
  k.service = "logs";
  k.kind = "LogGroup";
  k.display_name = "log group";
  k.arn_service = "logs";
  k.arn_resource_type = "log-group";
  k.arn_separator = ':';
  k.states = SimpleStates();
  k.errors.not_found = {"ResourceNotFoundException", 400,
                        "The specified log group does not exist."};
  k.errors.validation_code = "InvalidParameterException";
  return k;
}

Value TagList(std::initializer_list<std::pair<std::string, std::string>> tags) {
  Value out = Value::MakeList();
  for (const auto& [k, v] : tags)
    out.Append(Value::Object({{"Key", Value(k)}, {"Value", Value(v)}}));
  return out;
}

class TaggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-tagging-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = store::Database::Open(dir_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    auto s = ResourceStore::Open(*db_, {&clock_});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    for (const ResourceKind* k : {&model_, &recognizer_, &log_group_}) store_->RegisterKind(*k);
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string Make(const ResourceKind& kind, const std::string& name, Tags tags = {},
                   const std::string& account = "111111111111") {
    auto r = store_->Create(kind, account, "us-east-1", name, Value::MakeMap(), std::move(tags));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->arn : "";
  }

  std::string dir_;
  FakeClock clock_{kT0};
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<ResourceStore> store_;
  const ResourceKind model_ = ModelKind();
  const ResourceKind recognizer_ = RecognizerKind();
  const ResourceKind log_group_ = LogGroupKind();
};

// ------------------------------------------------------------------ style (1): SageMaker

TEST_F(TaggingTest, SageMakerAddListDelete) {
  const TagStyle style = SageMakerTagStyle();
  const std::string arn = Make(model_, "My-Model", {{"a", "1"}});
  auto added = AddTagsHandler(
      *store_,
      Value::Object({{"ResourceArn", Value(arn)}, {"Tags", TagList({{"b", "2"}, {"a", "9"}})}}),
      style);
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_EQ(*added, Value::Object({{"Tags", TagList({{"b", "2"}, {"a", "9"}})}}));

  auto listed = ListTagsHandler(*store_, Value::Object({{"ResourceArn", Value(arn)}}), style);
  ASSERT_TRUE(listed.ok());
  // "a" keeps its place and takes the new value.
  EXPECT_EQ(*listed, Value::Object({{"Tags", TagList({{"a", "9"}, {"b", "2"}})}}));

  auto deleted = RemoveTagsHandler(
      *store_,
      Value::Object({{"ResourceArn", Value(arn)}, {"TagKeys", Value(Value::List{"a", "absent"})}}),
      style);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(*deleted, Value::MakeMap());
  EXPECT_EQ(store_->Get(model_, "111111111111", "us-east-1", "my-model")->tags, (Tags{{"b", "2"}}));
}

TEST_F(TaggingTest, SageMakerListTagsPaginates) {
  const TagStyle style = SageMakerTagStyle();
  Tags tags;
  for (int i = 0; i < 23; ++i) tags.push_back({"k" + std::to_string(i), std::to_string(i)});
  const std::string arn = Make(model_, "m", tags);
  Tags seen;
  std::string token;
  int pages = 0;
  do {
    Value in = Value::Object({{"ResourceArn", Value(arn)}, {"MaxResults", 5}});
    if (!token.empty()) in["NextToken"] = Value(token);
    auto out = ListTagsHandler(*store_, in, style);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    auto page = ParseTagList(*out->Find("Tags"));
    ASSERT_TRUE(page.ok());
    EXPECT_LE(page->size(), 5u);
    seen.insert(seen.end(), page->begin(), page->end());
    token = out->GetString("NextToken");
    // A tag removed and one added between pages: the pages stay in step.
    if (pages == 0) {
      ASSERT_TRUE(store_->RemoveTags(arn, {"k1"}).ok());
      ASSERT_TRUE(store_->AddTags(arn, {{"late", "x"}}).ok());
    }
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 5);
  Tags want;
  for (int i = 0; i < 23; ++i) want.push_back({"k" + std::to_string(i), std::to_string(i)});
  want.push_back({"late", "x"});
  EXPECT_EQ(seen, want);
}

TEST_F(TaggingTest, ListTagsRejectsBadTokens) {
  const TagStyle style = SageMakerTagStyle();
  Tags tags;
  for (int i = 0; i < 4; ++i) tags.push_back({"k" + std::to_string(i), "v"});
  const std::string arn = Make(model_, "m", tags);
  const std::string other = Make(model_, "n", tags);
  auto first = store_->ListTags(arn, 2, "");
  ASSERT_TRUE(first.ok());
  ASSERT_FALSE(first->next_token.empty());
  auto wrong_arn = store_->ListTags(other, 2, first->next_token);
  EXPECT_EQ(wrong_arn.status().code(), "ValidationException");
  EXPECT_EQ(wrong_arn.status().message(), "Invalid pagination token");
  auto garbage = ListTagsHandler(
      *store_, Value::Object({{"ResourceArn", Value(arn)}, {"NextToken", "bm9wZQ"}}), style);
  EXPECT_EQ(garbage.status().message(), "Invalid pagination token");
  auto fine = store_->ListTags(arn, 2, first->next_token);
  ASSERT_TRUE(fine.ok());
  EXPECT_EQ(fine->tags, (Tags{{"k2", "v"}, {"k3", "v"}}));
  EXPECT_TRUE(fine->next_token.empty());
}

TEST_F(TaggingTest, UnknownArnsUseTheKindsOrTheStylesWording) {
  const TagStyle style = SageMakerTagStyle();
  // A model ARN that names nothing: the kind's not-found.
  auto missing = ListTagsHandler(
      *store_,
      Value::Object({{"ResourceArn", Value(model_.Arn("111111111111", "us-east-1", "ghost"))}}),
      style);
  EXPECT_EQ(missing.status().code(), "ResourceNotFound");
  // An ARN of no registered kind: the style's.
  auto unknown = AddTagsHandler(
      *store_,
      Value::Object({{"ResourceArn", "arn:aws:sagemaker:us-east-1:111111111111:widget/w"},
                     {"Tags", TagList({{"a", "b"}})}}),
      style);
  EXPECT_EQ(unknown.status().code(), "ValidationException");
  EXPECT_NE(unknown.status().message().find("widget/w"), std::string::npos);
  auto not_arn = RemoveTagsHandler(
      *store_, Value::Object({{"ResourceArn", "nonsense"}, {"TagKeys", Value::MakeList()}}), style);
  EXPECT_FALSE(not_arn.ok());
  // Another account's resource is not found for this caller.
  const std::string theirs = Make(model_, "theirs", {}, "222222222222");
  auto foreign = ListTagsHandler(*store_, Value::Object({{"ResourceArn", Value(theirs)}}), style,
                                 "111111111111");
  EXPECT_EQ(foreign.status().code(), "ResourceNotFound");
  EXPECT_TRUE(ListTagsHandler(*store_, Value::Object({{"ResourceArn", Value(theirs)}}), style,
                              "222222222222")
                  .ok());
}

TEST_F(TaggingTest, MissingMembersAreValidationErrors) {
  const TagStyle style = SageMakerTagStyle();
  const std::string arn = Make(model_, "m");
  EXPECT_EQ(
      AddTagsHandler(*store_, Value::Object({{"ResourceArn", Value(arn)}}), style).status().code(),
      "ValidationException");
  EXPECT_EQ(AddTagsHandler(*store_, Value::Object({{"Tags", TagList({{"a", "b"}})}}), style)
                .status()
                .code(),
            "ValidationException");
  EXPECT_EQ(AddTagsHandler(*store_,
                           Value::Object({{"ResourceArn", Value(arn)},
                                          {"Tags", Value(Value::List{Value("not-a-tag")})}}),
                           style)
                .status()
                .code(),
            "ValidationException");
}

// ------------------------------------------------------------------ tag rules

TEST_F(TaggingTest, TagRulesFollowAws) {
  const TagStyle style = ListTagStyle();
  const std::string arn = Make(recognizer_, "r");
  auto add = [&](Value tags) {
    return AddTagsHandler(*store_, Value::Object({{"ResourceArn", Value(arn)}, {"Tags", tags}}),
                          style);
  };
  EXPECT_EQ(add(TagList({{"aws:x", "1"}})).status().code(), "ValidationException");
  EXPECT_EQ(add(TagList({{"AWS:x", "1"}})).status().code(), "ValidationException");
  EXPECT_EQ(add(TagList({{"", "1"}})).status().code(), "ValidationException");
  EXPECT_EQ(add(TagList({{std::string(129, 'k'), "1"}})).status().code(), "ValidationException");
  EXPECT_EQ(add(TagList({{"k", std::string(257, 'v')}})).status().code(), "ValidationException");
  EXPECT_EQ(add(TagList({{"bad#key", "1"}})).status().code(), "ValidationException");
  EXPECT_TRUE(add(TagList({{std::string(128, 'k'), std::string(256, 'v')}})).ok());
  EXPECT_TRUE(add(TagList({{"ok _.:/=+-@ 9", ""}})).ok());
  // Lengths count characters, not bytes: 128 two-byte letters are a valid key.
  std::string wide;
  for (int i = 0; i < 128; ++i) wide += "\xc3\xa9";
  EXPECT_TRUE(add(TagList({{wide, "\xe6\x97\xa5\xe6\x9c\xac"}})).ok());
  EXPECT_EQ(add(TagList({{wide + "\xc3\xa9", "x"}})).status().code(), "ValidationException");
  // Nothing invalid was stored.
  EXPECT_EQ(store_->ListTags(arn, 0, "")->tags.size(), 3u);
}

TEST_F(TaggingTest, AtMostFiftyTags) {
  const TagStyle style = ListTagStyle();
  Tags tags;
  for (int i = 0; i < 49; ++i) tags.push_back({"k" + std::to_string(i), "v"});
  const std::string arn = Make(recognizer_, "r", tags);
  // Overwriting keys does not count; the 50th new key fits; the 51st does not.
  EXPECT_TRUE(store_->AddTags(arn, {{"k0", "new"}, {"k50", "v"}}).ok());
  auto over = AddTagsHandler(
      *store_, Value::Object({{"ResourceArn", Value(arn)}, {"Tags", TagList({{"k51", "v"}})}}),
      style);
  EXPECT_EQ(over.status().code(), "TooManyTagsException");
  EXPECT_NE(over.status().message().find(arn), std::string::npos) << over.status().message();
  EXPECT_EQ(store_->ListTags(arn, 0, "")->tags.size(), 50u);
  // On create too.
  tags.push_back({"k49", "v"});
  tags.push_back({"k50", "v"});
  auto big =
      store_->Create(recognizer_, "111111111111", "us-east-1", "big", Value::MakeMap(), tags);
  EXPECT_EQ(big.status().code(), "TooManyTagsException");
}

// ------------------------------------------------------------------ style (2): list

TEST_F(TaggingTest, TagResourceWithAListOfTags) {
  const TagStyle style = ListTagStyle();
  const std::string arn = Make(recognizer_, "Rec");
  auto tagged =
      AddTagsHandler(*store_,
                     Value::Object({{"ResourceArn", Value(arn)},
                                    {"Tags", TagList({{"env", "prod"}, {"team", "nlp"}})}}),
                     style);
  ASSERT_TRUE(tagged.ok());
  EXPECT_EQ(*tagged, Value::MakeMap());
  auto listed = ListTagsHandler(*store_, Value::Object({{"ResourceArn", Value(arn)}}), style);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, Value::Object({{"ResourceArn", Value(arn)},
                                    {"Tags", TagList({{"env", "prod"}, {"team", "nlp"}})}}));
  ASSERT_TRUE(RemoveTagsHandler(*store_,
                                Value::Object({{"ResourceArn", Value(arn)},
                                               {"TagKeys", Value(Value::List{"env"})}}),
                                style)
                  .ok());
  EXPECT_EQ(store_->ListTags(arn, 0, "")->tags, (Tags{{"team", "nlp"}}));
  auto missing = ListTagsHandler(
      *store_,
      Value::Object({{"ResourceArn", Value(recognizer_.Arn("111111111111", "us-east-1", "gone"))}}),
      style);
  EXPECT_EQ(missing.status().code(), "ResourceNotFoundException");
  EXPECT_NE(missing.status().message().find("gone"), std::string::npos);
}

// ------------------------------------------------------------------ style (3): map

TEST_F(TaggingTest, TagResourceWithAMapOfTags) {
  const TagStyle style = MapTagStyle("resourceArn", "tags", "tagKeys");
  const std::string arn = Make(log_group_, "/aws/app");
  EXPECT_EQ(arn, "arn:aws:logs:us-east-1:111111111111:log-group:/aws/app");
  auto tagged = AddTagsHandler(
      *store_,
      Value::Object({{"resourceArn", Value(arn)},
                     {"tags", Value::Object({{"env", Value("dev")}, {"owner", Value("me")}})}}),
      style);
  ASSERT_TRUE(tagged.ok()) << tagged.status().ToString();
  auto listed = ListTagsHandler(*store_, Value::Object({{"resourceArn", Value(arn)}}), style);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(
      *listed,
      Value::Object({{"tags", Value::Object({{"env", Value("dev")}, {"owner", Value("me")}})}}));
  ASSERT_TRUE(RemoveTagsHandler(*store_,
                                Value::Object({{"resourceArn", Value(arn)},
                                               {"tagKeys", Value(Value::List{"owner"})}}),
                                style)
                  .ok());
  EXPECT_EQ(store_->ListTags(arn, 0, "")->tags, (Tags{{"env", "dev"}}));
  // The kind's own wording and validation code.
  auto missing = ListTagsHandler(
      *store_,
      Value::Object({{"resourceArn", "arn:aws:logs:us-east-1:111111111111:log-group:nope"}}),
      style);
  EXPECT_EQ(missing.status().code(), "ResourceNotFoundException");
  EXPECT_EQ(missing.status().message(), "The specified log group does not exist.");
  auto bad = AddTagsHandler(*store_,
                            Value::Object({{"resourceArn", Value(arn)},
                                           {"tags", Value::Object({{"aws:x", Value("1")}})}}),
                            style);
  EXPECT_EQ(bad.status().code(), "InvalidParameterException");
  auto not_string = AddTagsHandler(
      *store_,
      Value::Object({{"resourceArn", Value(arn)}, {"tags", Value::Object({{"n", Value(1)}})}}),
      style);
  EXPECT_EQ(not_string.status().code(), "ValidationException");
}

TEST_F(TaggingTest, LambdaStyleMemberNames) {
  ResourceKind fn;
  fn.service = "lambda";
  fn.kind = "Function";
  fn.arn_service = "lambda";
  fn.arn_resource_type = "function";
  fn.arn_separator = ':';
  fn.states = SimpleStates();
  store_->RegisterKind(fn);
  auto r = store_->Create(fn, "111111111111", "us-east-1", "MyFn", Value::MakeMap());
  ASSERT_TRUE(r.ok());
  const TagStyle style = MapTagStyle("Resource", "Tags", "TagKeys");
  ASSERT_TRUE(AddTagsHandler(*store_,
                             Value::Object({{"Resource", Value(r->arn)},
                                            {"Tags", Value::Object({{"a", Value("b")}})}}),
                             style)
                  .ok());
  auto listed = ListTagsHandler(*store_, Value::Object({{"Resource", Value(r->arn)}}), style);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, Value::Object({{"Tags", Value::Object({{"a", Value("b")}})}}));
}

TEST_F(TaggingTest, TagListConversions) {
  Tags tags = {{"b", "1"}, {"a", ""}};
  EXPECT_EQ(ParseTagList(ToTagList(tags)).value(), tags);
  // Map form has no order of its own.
  EXPECT_EQ(ParseTagMap(ToTagMap(tags)).value(), (Tags{{"a", ""}, {"b", "1"}}));
  auto no_value = ParseTagList(Value(Value::List{Value::Object({{"Key", Value("k")}})}));
  ASSERT_TRUE(no_value.ok());
  EXPECT_EQ(*no_value, (Tags{{"k", ""}}));
  EXPECT_FALSE(ParseTagList(Value("x")).ok());
  EXPECT_FALSE(ParseTagMap(Value::MakeList()).ok());
}

}  // namespace
}  // namespace nimbus::control
