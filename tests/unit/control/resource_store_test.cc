#include "control/resource_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <thread>
#include <vector>

namespace nimbus::control {
namespace {

constexpr double kT0 = 1700000000.0;

ResourceKind TrainingJobKind() {
  StateMachine states;
  states.initial_status = "InProgress";
  states.initial_secondary_status = "Starting";
  states.transitions = {{"InProgress", {"Completed", "Failed", "Stopping"}},
                        {"Stopping", {"Stopped", "Completed", "Failed"}}};
  states.terminal = {"Completed", "Failed", "Stopped"};
  ResourceKind kind = SageMakerKind("TrainingJob", "training job", "training-job", states);
  // SageMaker answers a missing training job with ValidationException.
  kind.errors.not_found = {"ValidationException", 400, "Requested resource not found."};
  return kind;
}

ResourceKind ClassifierKind() {
  ResourceKind kind;
  kind.service = "comprehend";
  kind.kind = "DocumentClassifier";
  kind.display_name = "document classifier";
  kind.arn_service = "comprehend";
  kind.arn_resource_type = "document-classifier";
  kind.states.initial_status = "SUBMITTED";
  kind.states.transitions = {{"SUBMITTED", {"TRAINING", "IN_ERROR", "STOP_REQUESTED"}},
                             {"TRAINING", {"TRAINED", "IN_ERROR", "STOP_REQUESTED"}},
                             {"STOP_REQUESTED", {"STOPPED"}}};
  kind.states.terminal = {"TRAINED", "IN_ERROR", "STOPPED"};
  kind.errors = StandardErrors();
  return kind;
}

class ResourceStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-resources-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = store::Database::Open(dir_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    OpenStore();
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  void OpenStore() {
    auto s = ResourceStore::Open(*db_, {&clock_});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    store_->RegisterKind(job_);
    store_->RegisterKind(classifier_);
  }

  Resource MustCreate(const std::string& name, const std::string& account = "111111111111",
                      const std::string& region = "us-east-1") {
    auto r = store_->Create(job_, account, region, name, Value::Object({{"Name", Value(name)}}));
    EXPECT_TRUE(r.ok()) << name << ": " << r.status().ToString();
    return r.ok() ? *r : Resource{};
  }

  StatusChange To(std::string status, std::string secondary = "", std::string message = "") {
    return StatusChange{std::move(status), std::move(secondary), std::move(message), {}};
  }

  std::string dir_;
  FakeClock clock_{kT0};
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<ResourceStore> store_;
  const ResourceKind job_ = TrainingJobKind();
  const ResourceKind classifier_ = ClassifierKind();
  const std::string acct_ = "111111111111";
  const std::string region_ = "us-east-1";
};

// ------------------------------------------------------------------ create, get, ARNs

TEST_F(ResourceStoreTest, CreateStartsInTheInitialStatusWithOneHistoryEntry) {
  Value body = Value::Object({{"AlgorithmSpecification", Value::Object({{"TrainingImage", "x"}})}});
  auto r = store_->Create(job_, acct_, region_, "My-Job", body, {{"team", "ml"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->service, "sagemaker");
  EXPECT_EQ(r->kind, "TrainingJob");
  EXPECT_EQ(r->name, "My-Job");
  EXPECT_EQ(r->status, "InProgress");
  EXPECT_EQ(r->secondary_status, "Starting");
  ASSERT_EQ(r->history.size(), 1u);
  EXPECT_EQ(r->history[0], (StatusTransition{"InProgress", "Starting", "", kT0}));
  EXPECT_EQ(r->created_at, kT0);
  EXPECT_EQ(r->modified_at, kT0);
  EXPECT_EQ(r->version, 1);
  EXPECT_EQ(r->body, body);
  EXPECT_EQ(r->tags, (Tags{{"team", "ml"}}));

  auto got = store_->Get(job_, acct_, region_, "My-Job");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->arn, r->arn);
  EXPECT_EQ(got->history, r->history);
  EXPECT_EQ(got->body, body);
}

TEST_F(ResourceStoreTest, SageMakerArnsLowerCaseTheName) {
  Resource r = MustCreate("My-Job");
  EXPECT_EQ(r.arn, "arn:aws:sagemaker:us-east-1:111111111111:training-job/my-job");
  Resource cn = MustCreate("X", acct_, "cn-north-1");
  EXPECT_EQ(cn.arn, "arn:aws-cn:sagemaker:cn-north-1:111111111111:training-job/x");
  EXPECT_EQ(job_.Arn("1", "us-gov-west-1", "A"),
            "arn:aws-us-gov:sagemaker:us-gov-west-1:1:training-job/a");
}

TEST_F(ResourceStoreTest, OtherKindsKeepTheNameCase) {
  auto r = store_->Create(classifier_, acct_, region_, "MyClassifier", Value::MakeMap());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->arn, "arn:aws:comprehend:us-east-1:111111111111:document-classifier/MyClassifier");
  ResourceKind fn;
  fn.arn_service = "lambda";
  fn.arn_resource_type = "function";
  fn.arn_separator = ':';
  EXPECT_EQ(fn.Arn("1", "eu-west-1", "Fn"), "arn:aws:lambda:eu-west-1:1:function:Fn");
}

TEST_F(ResourceStoreTest, NamesAreUniquePerAccountAndRegion) {
  MustCreate("job");
  auto dup = store_->Create(job_, acct_, region_, "job", Value::MakeMap());
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), "ResourceInUse");
  EXPECT_EQ(dup.status().http_status(), 400);
  EXPECT_NE(dup.status().message().find("training-job/job"), std::string::npos)
      << dup.status().message();
  // SageMaker names are case-insensitive.
  EXPECT_EQ(store_->Create(job_, acct_, region_, "JOB", Value::MakeMap()).status().code(),
            "ResourceInUse");
  // Another region, another account, another kind: free.
  EXPECT_TRUE(store_->Create(job_, acct_, "eu-west-1", "job", Value::MakeMap()).ok());
  EXPECT_TRUE(store_->Create(job_, "222222222222", region_, "job", Value::MakeMap()).ok());
  EXPECT_TRUE(store_->Create(classifier_, acct_, region_, "job", Value::MakeMap()).ok());
  // Comprehend names are case-sensitive.
  EXPECT_TRUE(store_->Create(classifier_, acct_, region_, "JOB", Value::MakeMap()).ok());
  EXPECT_EQ(store_->Create(classifier_, acct_, region_, "JOB", Value::MakeMap()).status().code(),
            "ResourceInUseException");
}

TEST_F(ResourceStoreTest, EmptyNameIsRejected) {
  EXPECT_EQ(store_->Create(job_, acct_, region_, "", Value::MakeMap()).status().code(),
            "ValidationException");
}

TEST_F(ResourceStoreTest, NotFoundUsesTheKindsWording) {
  auto job = store_->Get(job_, acct_, region_, "nope");
  EXPECT_EQ(job.status().code(), "ValidationException");
  EXPECT_EQ(job.status().message(), "Requested resource not found.");
  EXPECT_EQ(job.status().kind(), ErrorKind::kNotFound);
  auto cls = store_->Get(classifier_, acct_, region_, "nope");
  EXPECT_EQ(cls.status().code(), "ResourceNotFoundException");
  EXPECT_NE(cls.status().message().find("nope"), std::string::npos);
  // A resource of another account or region is not visible.
  MustCreate("mine");
  EXPECT_FALSE(store_->Get(job_, "222222222222", region_, "mine").ok());
  EXPECT_FALSE(store_->Get(job_, acct_, "eu-west-1", "mine").ok());
}

TEST_F(ResourceStoreTest, GetIsCaseInsensitiveForSageMakerNames) {
  MustCreate("My-Job");
  auto r = store_->Get(job_, acct_, region_, "my-JOB");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->name, "My-Job");
}

TEST_F(ResourceStoreTest, GetByArn) {
  Resource r = MustCreate("My-Job");
  auto by_arn = store_->GetByArn(r.arn);
  ASSERT_TRUE(by_arn.ok()) << by_arn.status().ToString();
  EXPECT_EQ(by_arn->name, "My-Job");
  auto mixed_case =
      store_->GetByArn(job_, "arn:aws:sagemaker:us-east-1:111111111111:training-job/MY-JOB");
  EXPECT_TRUE(mixed_case.ok());
  // Another kind's ARN is not a training job.
  auto cls = store_->Create(classifier_, acct_, region_, "c", Value::MakeMap());
  ASSERT_TRUE(cls.ok());
  EXPECT_EQ(store_->GetByArn(job_, cls->arn).status().code(), "ValidationException");
  EXPECT_EQ(store_->GetByArn(cls->arn)->name, "c");
  EXPECT_EQ(store_->GetByArn(classifier_.Arn(acct_, region_, "gone")).status().code(),
            "ResourceNotFoundException");
  EXPECT_EQ(store_->GetByArn("arn:aws:unknown:us-east-1:1:thing/x").status().kind(),
            ErrorKind::kNotFound);
}

TEST_F(ResourceStoreTest, BodyKeepsEveryValueKind) {
  Value body = Value::Object({
      {"When", Value::Timestamp(kT0 + 0.25)},
      {"Bytes", Value::Blob(std::string("\0\xff", 2))},
      {"$t", Value(1)},
      {"$$x", Value("dollar")},
      {"Int", Value(int64_t{7})},
      {"Double", Value(7.0)},
      {"List", Value(Value::List{Value(true), Value(), Value::Object({{"$b", Value("no")}})})},
  });
  auto r = store_->Create(job_, acct_, region_, "doc", body);
  ASSERT_TRUE(r.ok());
  auto back = store_->Get(job_, acct_, region_, "doc");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->body, body);
  EXPECT_TRUE(back->body.Find("When")->is_timestamp());
  EXPECT_TRUE(back->body.Find("Bytes")->is_blob());
  EXPECT_TRUE(back->body.Find("Int")->is_int());
  EXPECT_TRUE(back->body.Find("Double")->is_double());
}

// ------------------------------------------------------------------ state machine

TEST_F(ResourceStoreTest, LegalTransitionsAppendHistory) {
  MustCreate("job");
  clock_.Advance(10);
  auto r =
      store_->Transition(job_, acct_, region_, "job", To("InProgress", "Training", "Training"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  clock_.Advance(10);
  r = store_->Transition(job_, acct_, region_, "job", To("Stopping", "Stopping", "User asked"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  clock_.Advance(10);
  r = store_->Transition(job_, acct_, region_, "job", To("Stopped", "Stopped"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, "Stopped");
  EXPECT_EQ(r->version, 4);
  EXPECT_EQ(r->modified_at, kT0 + 30);
  std::vector<StatusTransition> want = {{"InProgress", "Starting", "", kT0},
                                        {"InProgress", "Training", "Training", kT0 + 10},
                                        {"Stopping", "Stopping", "User asked", kT0 + 20},
                                        {"Stopped", "Stopped", "", kT0 + 30}};
  EXPECT_EQ(r->history, want);
  EXPECT_EQ(store_->Get(job_, acct_, region_, "job")->history, want);
}

TEST_F(ResourceStoreTest, IllegalTransitionNamesTheStatus) {
  MustCreate("job");
  ASSERT_TRUE(store_->Transition(job_, acct_, region_, "job", To("Completed", "Completed")).ok());
  auto stop = store_->Transition(job_, acct_, region_, "job", To("Stopping"));
  ASSERT_FALSE(stop.ok());
  EXPECT_EQ(stop.status().code(), "ValidationException");
  EXPECT_EQ(stop.status().message(),
            "The request was rejected because the training job is in status Completed.");
  auto back = store_->Transition(job_, acct_, region_, "job", To("InProgress"));
  EXPECT_FALSE(back.ok());
  auto unknown = store_->Transition(job_, acct_, region_, "job", To("Exploded"));
  EXPECT_FALSE(unknown.ok());
  auto r = store_->Get(job_, acct_, region_, "job");
  EXPECT_EQ(r->status, "Completed");
  EXPECT_EQ(r->history.size(), 2u);

  auto cls = store_->Create(classifier_, acct_, region_, "c", Value::MakeMap());
  ASSERT_TRUE(cls.ok());
  auto bad = store_->Transition(classifier_, acct_, region_, "c", To("TRAINED"));
  EXPECT_EQ(bad.status().code(), "ResourceInUseException");
  EXPECT_NE(bad.status().message().find("SUBMITTED"), std::string::npos);
  EXPECT_NE(bad.status().message().find("TRAINED"), std::string::npos);
}

TEST_F(ResourceStoreTest, ReplayingTheCurrentStatusIsANoOp) {
  MustCreate("job");
  auto a = store_->Transition(job_, acct_, region_, "job", To("InProgress", "Training"));
  ASSERT_TRUE(a.ok());
  clock_.Advance(5);
  auto b = store_->Transition(job_, acct_, region_, "job", To("InProgress", "Training"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->version, a->version);
  EXPECT_EQ(b->modified_at, a->modified_at);
  EXPECT_EQ(b->history.size(), 2u);
}

TEST_F(ResourceStoreTest, FailureReasonAndBodyChangeWithTheStatus) {
  MustCreate("job");
  StatusChange fail = To("Failed", "Failed", "AlgorithmError");
  fail.failure_reason = "AlgorithmError: exit code 1";
  auto r = store_->Transition(job_, acct_, region_, "job", fail, [](Resource& res) {
    EXPECT_EQ(res.status, "Failed");  // the mutator sees the new status
    res.body["TrainingEndTime"] = Value::Timestamp(kT0);
    return Status::Ok();
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->failure_reason, "AlgorithmError: exit code 1");
  auto got = store_->Get(job_, acct_, region_, "job");
  EXPECT_EQ(got->failure_reason, "AlgorithmError: exit code 1");
  EXPECT_TRUE(got->body.Has("TrainingEndTime"));
}

TEST_F(ResourceStoreTest, AFailingMutatorAbortsTheTransition) {
  MustCreate("job");
  auto r = store_->Transition(job_, acct_, region_, "job", To("Completed"), [](Resource& res) {
    res.body["X"] = 1;
    return Status::Aws("ValidationException", 400, "no");
  });
  EXPECT_EQ(r.status().message(), "no");
  auto got = store_->Get(job_, acct_, region_, "job");
  EXPECT_EQ(got->status, "InProgress");
  EXPECT_FALSE(got->body.Has("X"));
  EXPECT_EQ(got->version, 1);
}

TEST_F(ResourceStoreTest, ListNonTerminalSpansAccountsAndRegions) {
  MustCreate("a");
  MustCreate("b", "222222222222");
  MustCreate("c", acct_, "eu-west-1");
  MustCreate("done");
  ASSERT_TRUE(store_->Transition(job_, acct_, region_, "done", To("Completed")).ok());
  MustCreate("stopping");
  ASSERT_TRUE(store_->Transition(job_, acct_, region_, "stopping", To("Stopping")).ok());
  ASSERT_TRUE(store_->Create(classifier_, acct_, region_, "other-kind", Value::MakeMap()).ok());
  auto open = store_->ListNonTerminal(job_);
  ASSERT_TRUE(open.ok());
  std::vector<std::string> names;
  for (const Resource& r : *open) names.push_back(r.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c", "stopping"}));
}

// ------------------------------------------------------------------ update, delete

TEST_F(ResourceStoreTest, UpdateBumpsVersionAndModifiedTime) {
  MustCreate("job");
  clock_.Advance(3);
  auto r = store_->Update(job_, acct_, region_, "job", [](Resource& res) {
    EXPECT_EQ(res.version, 1);
    res.body["Extra"] = "yes";
    return Status::Ok();
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version, 2);
  EXPECT_EQ(r->modified_at, kT0 + 3);
  EXPECT_EQ(r->created_at, kT0);
  EXPECT_EQ(store_->Get(job_, acct_, region_, "job")->body.GetString("Extra"), "yes");
}

TEST_F(ResourceStoreTest, UpdateRefusesStatusChangesAndLeavesTheRowAlone) {
  MustCreate("job");
  auto r = store_->Update(job_, acct_, region_, "job", [](Resource& res) {
    res.status = "Completed";
    res.body["X"] = 1;
    return Status::Ok();
  });
  EXPECT_EQ(r.status().kind(), ErrorKind::kInternal);
  auto got = store_->Get(job_, acct_, region_, "job");
  EXPECT_EQ(got->status, "InProgress");
  EXPECT_FALSE(got->body.Has("X"));
  EXPECT_EQ(store_->Update(job_, acct_, region_, "nope", nullptr).status().code(),
            "ValidationException");
}

TEST_F(ResourceStoreTest, UpdateValidatesChangedTags) {
  MustCreate("job");
  auto r = store_->Update(job_, acct_, region_, "job", [](Resource& res) {
    res.tags.push_back({"aws:reserved", "x"});
    return Status::Ok();
  });
  EXPECT_EQ(r.status().code(), "ValidationException");
  EXPECT_TRUE(store_->Get(job_, acct_, region_, "job")->tags.empty());
}

TEST_F(ResourceStoreTest, OptimisticConcurrencyThroughTheMutator) {
  Resource seen = MustCreate("job");
  ASSERT_TRUE(
      store_->Update(job_, acct_, region_, "job", [](Resource&) { return Status::Ok(); }).ok());
  auto stale = store_->Update(job_, acct_, region_, "job", [&](Resource& res) -> Status {
    if (res.version != seen.version) return Status::Conflict("stale");
    return Status::Ok();
  });
  EXPECT_EQ(stale.status().message(), "stale");
}

TEST_F(ResourceStoreTest, DeleteRemovesAndMayBeRefused) {
  MustCreate("job");
  Status refused = store_->Delete(job_, acct_, region_, "job", [](const Resource& r) {
    return r.status == "InProgress" ? Status::Aws("ValidationException", 400, "in progress")
                                    : Status::Ok();
  });
  EXPECT_EQ(refused.message(), "in progress");
  EXPECT_TRUE(store_->Get(job_, acct_, region_, "job").ok());
  EXPECT_TRUE(store_->Delete(job_, acct_, region_, "job").ok());
  EXPECT_FALSE(store_->Get(job_, acct_, region_, "job").ok());
  EXPECT_EQ(store_->Delete(job_, acct_, region_, "job").code(), "ValidationException");
  // The name is free again.
  EXPECT_TRUE(store_->Create(job_, acct_, region_, "job", Value::MakeMap()).ok());
}

// ------------------------------------------------------------------ idempotency

TEST_F(ResourceStoreTest, SameClientTokenAndRequestReturnsTheSameResource) {
  Value body = Value::Object({{"Spec", "a"}});
  bool created = false;
  auto first =
      store_->Create(classifier_, acct_, region_, "c", body, {{"k", "v"}}, "tok-1", &created);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(created);
  ASSERT_TRUE(store_->Transition(classifier_, acct_, region_, "c", To("TRAINING")).ok());
  clock_.Advance(60);
  auto again =
      store_->Create(classifier_, acct_, region_, "c", body, {{"k", "v"}}, "tok-1", &created);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(created);
  EXPECT_EQ(again->arn, first->arn);
  EXPECT_EQ(again->created_at, first->created_at);
  EXPECT_EQ(again->status, "TRAINING");  // as it is now
  EXPECT_EQ(again->client_token, "tok-1");
}

TEST_F(ResourceStoreTest, SameClientTokenWithAnotherRequestIsAMismatch) {
  ASSERT_TRUE(
      store_->Create(classifier_, acct_, region_, "c", Value::Object({{"Spec", "a"}}), {}, "tok-1")
          .ok());
  auto other_body =
      store_->Create(classifier_, acct_, region_, "c", Value::Object({{"Spec", "b"}}), {}, "tok-1");
  EXPECT_EQ(other_body.status().code(), "IdempotentParameterMismatchException");
  EXPECT_NE(other_body.status().message().find("tok-1"), std::string::npos);
  auto other_name =
      store_->Create(classifier_, acct_, region_, "d", Value::Object({{"Spec", "a"}}), {}, "tok-1");
  EXPECT_EQ(other_name.status().code(), "IdempotentParameterMismatchException");
  auto other_tags = store_->Create(classifier_, acct_, region_, "c", Value::Object({{"Spec", "a"}}),
                                   {{"k", "v"}}, "tok-1");
  EXPECT_EQ(other_tags.status().code(), "IdempotentParameterMismatchException");
  // Without the token, the name is simply in use.
  EXPECT_EQ(store_->Create(classifier_, acct_, region_, "c", Value::Object({{"Spec", "a"}}))
                .status()
                .code(),
            "ResourceInUseException");
  // Tokens are scoped to the account.
  EXPECT_TRUE(store_
                  ->Create(classifier_, "222222222222", region_, "c",
                           Value::Object({{"Spec", "b"}}), {}, "tok-1")
                  .ok());
}

// ------------------------------------------------------------------ listing

class ResourceListTest : public ResourceStoreTest {
 protected:
  struct Made {
    std::string name;
    double created;
    std::string status;
    int64_t order;  // creation order = the store's tiebreaker order
  };

  // 37 jobs; creation times repeat (ties must break by creation order), names are not in
  // creation order, statuses vary.
  void MakeMany() {
    const char* statuses[] = {"InProgress", "Completed", "Failed", "Stopping"};
    for (int i = 0; i < 37; ++i) {
      const std::string name = "job-" + std::to_string((i * 17) % 37 + 100);
      clock_.Set(kT0 + (i / 3));  // three per second
      Resource r = MustCreate(name);
      const std::string status = statuses[(i * 7) % 4];
      if (status != "InProgress") {
        ASSERT_TRUE(store_->Transition(job_, acct_, region_, name, To(status)).ok());
      }
      made_.push_back({name, r.created_at, status, i});
    }
    MustCreate("other-account", "222222222222");
    MustCreate("other-region", acct_, "eu-west-1");
  }

  std::vector<std::string> Expected(SortBy by, SortOrder order,
                                    const std::function<bool(const Made&)>& keep = nullptr) {
    std::vector<Made> v;
    for (const Made& m : made_) {
      if (!keep || keep(m)) v.push_back(m);
    }
    auto key_less = [&](const Made& a, const Made& b) {
      switch (by) {
        case SortBy::kName:
          return std::tie(a.name, a.order) < std::tie(b.name, b.order);
        case SortBy::kStatus:
          return std::tie(a.status, a.order) < std::tie(b.status, b.order);
        case SortBy::kCreationTime:
          return std::tie(a.created, a.order) < std::tie(b.created, b.order);
      }
      return false;
    };
    std::sort(v.begin(), v.end(), key_less);
    if (order == SortOrder::kDescending) std::reverse(v.begin(), v.end());
    std::vector<std::string> names;
    for (const Made& m : v) names.push_back(m.name);
    return names;
  }

  // Pages through a query; fails the test on error.
  std::vector<std::string> All(ListQuery q, int* pages = nullptr) {
    std::vector<std::string> names;
    int n = 0;
    do {
      auto page = store_->List(job_, acct_, region_, q);
      EXPECT_TRUE(page.ok()) << page.status().ToString();
      if (!page.ok()) break;
      EXPECT_LE(page->items.size(), static_cast<size_t>(q.max_results.value_or(10)));
      for (const Resource& r : page->items) names.push_back(r.name);
      q.next_token = page->next_token;
      if (++n > 100) break;
    } while (!q.next_token.empty());
    if (pages) *pages = n;
    return names;
  }

  std::vector<Made> made_;
};

TEST_F(ResourceListTest, EverySortOrderPagesThroughEveryItemOnce) {
  MakeMany();
  for (SortBy by : {SortBy::kCreationTime, SortBy::kName, SortBy::kStatus}) {
    for (SortOrder order : {SortOrder::kAscending, SortOrder::kDescending}) {
      for (int max : {1, 5, 10, 36, 37, 100}) {
        ListQuery q;
        q.sort_by = by;
        q.sort_order = order;
        q.max_results = max;
        int pages = 0;
        EXPECT_EQ(All(q, &pages), Expected(by, order))
            << "sort " << static_cast<int>(by) << " order " << static_cast<int>(order) << " max "
            << max;
        EXPECT_EQ(pages, (37 + max - 1) / max) << max;  // no empty trailing page
      }
    }
  }
}

TEST_F(ResourceListTest, DefaultsAreNewestFirstInPagesOfTen) {
  MakeMany();
  auto page = store_->List(job_, acct_, region_, ListQuery{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 10u);
  std::vector<std::string> want = Expected(SortBy::kCreationTime, SortOrder::kDescending);
  EXPECT_EQ(page->items[0].name, want[0]);
  EXPECT_FALSE(page->next_token.empty());
}

TEST_F(ResourceListTest, FiltersCombine) {
  MakeMany();
  ListQuery q;
  q.name_contains = "JOB-1";  // case-insensitive: job-100..job-136 minus none; narrow below
  q.creation_time_after = kT0 + 2;
  q.creation_time_before = kT0 + 10;
  q.status_equals = "Completed";
  q.sort_by = SortBy::kName;
  q.sort_order = SortOrder::kAscending;
  q.max_results = 2;
  auto want = Expected(SortBy::kName, SortOrder::kAscending, [](const Made& m) {
    return m.name.find("job-1") != std::string::npos && m.created > kT0 + 2 &&
           m.created < kT0 + 10 && m.status == "Completed";
  });
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(All(q), want);

  ListQuery narrow;
  narrow.name_contains = "-12";
  narrow.max_results = 3;
  narrow.sort_by = SortBy::kName;
  narrow.sort_order = SortOrder::kDescending;
  EXPECT_EQ(All(narrow), Expected(SortBy::kName, SortOrder::kDescending, [](const Made& m) {
              return m.name.find("-12") != std::string::npos;
            }));
}

TEST_F(ResourceListTest, LastModifiedFilters) {
  MakeMany();
  clock_.Set(kT0 + 1000);
  ASSERT_TRUE(
      store_->Update(job_, acct_, region_, made_[4].name, [](Resource&) { return Status::Ok(); })
          .ok());
  ListQuery q;
  q.last_modified_time_after = kT0 + 999;
  EXPECT_EQ(All(q), (std::vector<std::string>{made_[4].name}));
  ListQuery before;
  before.last_modified_time_before = kT0 + 999;
  before.max_results = 100;
  EXPECT_EQ(All(before).size(), 36u);
}

TEST_F(ResourceListTest, MaxResultsOutOfRangeIsRejected) {
  MakeMany();
  for (int bad : {0, -1, 101}) {
    ListQuery q;
    q.max_results = bad;
    auto page = store_->List(job_, acct_, region_, q);
    EXPECT_EQ(page.status().code(), "ValidationException") << bad;
  }
}

TEST_F(ResourceListTest, BadTokensAreRejectedCleanly) {
  MakeMany();
  ListQuery q;
  q.max_results = 5;
  q.sort_by = SortBy::kName;
  auto first = store_->List(job_, acct_, region_, q);
  ASSERT_TRUE(first.ok());
  const std::string token = first->next_token;
  ASSERT_FALSE(token.empty());

  auto expect_invalid = [&](ListQuery query, const std::string& what, const std::string& acct) {
    auto page = store_->List(job_, acct, region_, query);
    ASSERT_FALSE(page.ok()) << what;
    EXPECT_EQ(page.status().code(), "ValidationException") << what;
    EXPECT_EQ(page.status().message(), "Invalid pagination token") << what;
  };
  ListQuery forged = q;
  forged.next_token = "eyJrIjoiam9iLTEwMCIsImkiOjF9";
  expect_invalid(forged, "forged", acct_);
  ListQuery truncated = q;
  truncated.next_token = token.substr(0, token.size() - 3);
  expect_invalid(truncated, "truncated", acct_);
  ListQuery tampered = q;
  tampered.next_token = token;
  tampered.next_token[token.size() / 2] = tampered.next_token[token.size() / 2] == 'A' ? 'B' : 'A';
  expect_invalid(tampered, "tampered", acct_);
  ListQuery other_sort = q;
  other_sort.next_token = token;
  other_sort.sort_by = SortBy::kCreationTime;
  expect_invalid(other_sort, "other sort", acct_);
  ListQuery other_order = q;
  other_order.next_token = token;
  other_order.sort_order = SortOrder::kAscending;
  expect_invalid(other_order, "other order", acct_);
  ListQuery other_filter = q;
  other_filter.next_token = token;
  other_filter.status_equals = "Completed";
  expect_invalid(other_filter, "other filter", acct_);
  ListQuery same = q;
  same.next_token = token;
  expect_invalid(same, "other account", "222222222222");

  // The page size may change between pages.
  ListQuery bigger = q;
  bigger.next_token = token;
  bigger.max_results = 50;
  auto rest = store_->List(job_, acct_, region_, bigger);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->items.size(), 32u);
  EXPECT_TRUE(rest->next_token.empty());
}

TEST_F(ResourceListTest, PagesAreStableUnderInsertsBetweenPages) {
  MakeMany();
  for (SortBy by : {SortBy::kCreationTime, SortBy::kName}) {
    for (SortOrder order : {SortOrder::kAscending, SortOrder::kDescending}) {
      const std::vector<std::string> before = Expected(by, order);
      ListQuery q;
      q.sort_by = by;
      q.sort_order = order;
      q.max_results = 4;
      std::vector<std::string> seen;
      std::vector<std::string> added;
      do {
        auto page = store_->List(job_, acct_, region_, q);
        ASSERT_TRUE(page.ok()) << page.status().ToString();
        for (const Resource& r : page->items) seen.push_back(r.name);
        q.next_token = page->next_token;
        // New resources that sort before, among and after the existing ones.
        for (const char* prefix : {"a-", "job-115x-", "zz-"}) {
          const int n = static_cast<int>(added.size());
          clock_.Set(kT0 + (n % 3 == 0 ? -5 : n % 3 == 1 ? 6 : 50));
          added.push_back(std::string(prefix) + std::to_string(n));
          MustCreate(added.back());
        }
      } while (!q.next_token.empty());
      // Every resource that existed before the first page appears exactly once, in order.
      std::vector<std::string> old_seen;
      std::set<std::string> unique;
      for (const std::string& n : seen) {
        EXPECT_TRUE(unique.insert(n).second) << "duplicate " << n;
        if (std::find(before.begin(), before.end(), n) != before.end()) old_seen.push_back(n);
      }
      EXPECT_EQ(old_seen, before);
      for (const std::string& n : added) ASSERT_TRUE(store_->Delete(job_, acct_, region_, n).ok());
    }
  }
}

TEST_F(ResourceListTest, TokensSurviveARestart) {
  MakeMany();
  ListQuery q;
  q.max_results = 20;
  auto first = store_->List(job_, acct_, region_, q);
  ASSERT_TRUE(first.ok());
  OpenStore();  // a new store on the same database: the key is persisted
  q.next_token = first->next_token;
  auto second = store_->List(job_, acct_, region_, q);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->items.size(), 17u);
}

TEST_F(ResourceStoreTest, ListQueryFromSageMakerInput) {
  Value input = Value::Object({{"NameContains", "abc"},
                               {"CreationTimeAfter", Value::Timestamp(kT0)},
                               {"CreationTimeBefore", Value(kT0 + 5)},
                               {"StatusEquals", "Completed"},
                               {"SortBy", "Name"},
                               {"SortOrder", "Ascending"},
                               {"MaxResults", 7},
                               {"NextToken", "t"}});
  auto q = ListQueryFromInput(job_, input);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->name_contains, "abc");
  EXPECT_EQ(q->creation_time_after, kT0);
  EXPECT_EQ(q->creation_time_before, kT0 + 5);
  EXPECT_EQ(q->status_equals, "Completed");
  EXPECT_EQ(q->sort_by, SortBy::kName);
  EXPECT_EQ(q->sort_order, SortOrder::kAscending);
  EXPECT_EQ(q->max_results, 7);
  EXPECT_EQ(q->next_token, "t");

  auto defaults = ListQueryFromInput(job_, Value::MakeMap());
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->sort_by, SortBy::kCreationTime);
  EXPECT_EQ(defaults->sort_order, SortOrder::kDescending);
  EXPECT_FALSE(defaults->max_results.has_value());

  EXPECT_EQ(ListQueryFromInput(job_, Value::Object({{"SortBy", "Size"}})).status().code(),
            "ValidationException");
  EXPECT_EQ(ListQueryFromInput(job_, Value::Object({{"SortOrder", "Up"}})).status().code(),
            "ValidationException");
}

// ------------------------------------------------------------------ concurrency

TEST_F(ResourceStoreTest, ExactlyOneConcurrentCreateWins) {
  constexpr int kThreads = 8;
  std::atomic<int> wins{0}, in_use{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto r = store_->Create(job_, acct_, region_, "race", Value::Object({{"Thread", Value(i)}}));
      if (r.ok()) {
        ++wins;
      } else if (r.status().code() == "ResourceInUse") {
        ++in_use;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(in_use.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
}

TEST_F(ResourceStoreTest, ConcurrentCreatesWithOneTokenAllGetTheOneResource) {
  constexpr int kThreads = 8;
  std::atomic<int> created_count{0};
  std::vector<std::string> arns(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      bool created = false;
      auto r = store_->Create(classifier_, acct_, region_, "c", Value::Object({{"S", "x"}}), {},
                              "token", &created);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      arns[i] = r->arn;
      if (created) ++created_count;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created_count.load(), 1);
  for (const std::string& arn : arns) EXPECT_EQ(arn, arns[0]);
}

TEST_F(ResourceStoreTest, ConcurrentUpdatesLoseNothing) {
  MustCreate("counter");
  constexpr int kThreads = 8;
  constexpr int kEach = 25;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < kEach; ++j) {
        auto r = store_->Update(job_, acct_, region_, "counter", [](Resource& res) {
          res.body["Count"] = Value(res.body.GetInt("Count") + 1);
          return Status::Ok();
        });
        ASSERT_TRUE(r.ok()) << r.status().ToString();
      }
    });
  }
  // Readers run alongside and always see a whole document.
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done) {
      auto r = store_->Get(job_, acct_, region_, "counter");
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->version, r->body.GetInt("Count") + 1);
    }
  });
  for (auto& t : threads) t.join();
  done = true;
  reader.join();
  auto r = store_->Get(job_, acct_, region_, "counter");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body.GetInt("Count"), kThreads * kEach);
  EXPECT_EQ(r->version, kThreads * kEach + 1);
}

}  // namespace
}  // namespace nimbus::control
