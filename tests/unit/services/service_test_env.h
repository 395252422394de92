// A temp data dir with a metadata store, an IamStore on a FakeClock, and a registry with
// the handlers under test, so that tests call handlers directly with Values.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "aws/service.h"
#include "core/clock.h"
#include "iam/iam_store.h"
#include "store/database.h"

namespace nimbus::services::testing {

class ServiceTestEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-svc-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = store::Database::Open(dir_);
    ASSERT_TRUE(db.ok());
    db_ = std::move(db).value();
    auto store = iam::IamStore::Open(*db_, iam::IamOptions{"000000000000", &clock_});
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
    root_ = store_->RootPrincipal();
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  aws::RequestContext Context(const aws::Principal& principal, const std::string& service,
                              const std::string& op) {
    aws::RequestContext ctx;
    ctx.request_id = "req";
    ctx.region = "us-east-1";
    ctx.account_id = "000000000000";
    ctx.service = service;
    ctx.operation = op;
    ctx.principal = principal;
    ctx.clock = &clock_;
    return ctx;
  }

  Result<Value> Call(const std::string& service, const std::string& op, const Value& input,
                     const aws::Principal& principal) {
    const aws::Registration* reg = registry_.Find(service, op);
    if (!reg) return Status::Internal("no handler for " + op);
    aws::RequestContext ctx = Context(principal, service, op);
    return reg->handler(input, ctx);
  }

  std::string Resource(const std::string& service, const std::string& op, const Value& input,
                       const aws::Principal& principal) {
    const aws::Registration* reg = registry_.Find(service, op);
    if (!reg || !reg->resource) return "*";
    return reg->resource(input, Context(principal, service, op));
  }

  aws::Principal UserPrincipal(const std::string& name) {
    auto user = store_->GetUser(name);
    EXPECT_TRUE(user.ok());
    aws::Principal p;
    p.type = aws::Principal::Type::kUser;
    p.name = name;
    p.arn = user->arn;
    p.account_id = "000000000000";
    p.user_id = user->user_id;
    p.access_key_id = "AKIATESTTESTTESTTEST";
    return p;
  }

  FakeClock clock_{1700000000};
  std::string dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<iam::IamStore> store_;
  aws::ServiceRegistry registry_;
  aws::Principal root_;
};

}  // namespace nimbus::services::testing
