#include "store/database.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "store/wal_buffer_vfs.h"

namespace nimbus::store {
namespace {

class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-store-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Database> OpenDb() {
    auto db = Database::Open(dir_);
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    return std::move(db).value();
  }

  std::string dir_;
};

TEST_F(DatabaseTest, CreatesMetadataFileInWalMode) {
  auto db = OpenDb();
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/metadata.db"));
  auto rows = db->Query("PRAGMA journal_mode");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0]["journal_mode"].AsString(), "wal");
}

TEST_F(DatabaseTest, BindsParametersAndReturnsTypedCells) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (i INTEGER, d REAL, s TEXT, b BLOB, n TEXT)").ok());
  auto changed = db->Exec("INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                          {int64_t{42}, 1.5, "it's", Value::Blob(std::string("\0\1", 2)), nullptr});
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  EXPECT_EQ(*changed, 1);
  auto rows = db->Query("SELECT * FROM t WHERE s = ?", {"it's"});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  Row& r = (*rows)[0];
  EXPECT_EQ(r["i"], Value(int64_t{42}));
  EXPECT_EQ(r["d"].AsDouble(), 1.5);
  EXPECT_EQ(r["s"].AsString(), "it's");
  EXPECT_TRUE(r["b"].is_blob());
  EXPECT_EQ(r["b"].AsString(), std::string("\0\1", 2));
  EXPECT_TRUE(r["n"].is_null());
}

TEST_F(DatabaseTest, QueryValuesGivesCellsInColumnOrder) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (k TEXT, i INTEGER, b BLOB)").ok());
  ASSERT_TRUE(db->Exec("INSERT INTO t VALUES ('b', 2, ?), ('a', 1, NULL)",
                       {Value::Blob(std::string("\0x", 2))})
                  .ok());
  // Columns in the order selected, not by name; a repeated name keeps both cells.
  auto rows = db->QueryValues("SELECT k, b, i, i * 10 AS k FROM t ORDER BY i");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0], (Cells{"a", nullptr, int64_t{1}, int64_t{10}}));
  const Cells& second = (*rows)[1];
  ASSERT_EQ(second.size(), 4u);
  EXPECT_EQ(second[0].AsString(), "b");
  EXPECT_TRUE(second[1].is_blob());
  EXPECT_EQ(second[1].AsString(), std::string("\0x", 2));
  EXPECT_EQ(second[2].AsInt(), 2);
  EXPECT_EQ(second[3].AsInt(), 20);
  EXPECT_TRUE(db->QueryValues("SELECT * FROM t WHERE i > ?", {int64_t{5}})->empty());
  EXPECT_FALSE(db->QueryValues("SELECT * FROM missing").ok());
  // Inside a transaction it reads the transaction's own writes.
  Status s = db->WithTransaction([](Session& tx) -> Status {
    NIMBUS_RETURN_IF_ERROR(tx.Exec("INSERT INTO t VALUES ('c', 3, NULL)").status());
    NIMBUS_ASSIGN_OR_RETURN(std::vector<Cells> in_tx,
                            tx.QueryValues("SELECT i FROM t WHERE k = 'c'"));
    if (in_tx.size() != 1 || in_tx[0][0].AsInt() != 3) return Status::Internal("not seen");
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(DatabaseTest, WrongParameterCountIsAnError) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (a)").ok());
  EXPECT_FALSE(db->Exec("INSERT INTO t VALUES (?)", {}).ok());
}

TEST_F(DatabaseTest, UniqueViolationIsConflict) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (a TEXT PRIMARY KEY)").ok());
  ASSERT_TRUE(db->Exec("INSERT INTO t VALUES ('x')").ok());
  auto again = db->Exec("INSERT INTO t VALUES ('x')");
  EXPECT_EQ(again.status().kind(), ErrorKind::kConflict);
}

TEST_F(DatabaseTest, ForeignKeysAreEnforced) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE p (id INTEGER PRIMARY KEY)").ok());
  ASSERT_TRUE(db->Exec("CREATE TABLE c (pid INTEGER REFERENCES p(id))").ok());
  EXPECT_EQ(db->Exec("INSERT INTO c VALUES (7)").status().kind(), ErrorKind::kConflict);
}

TEST_F(DatabaseTest, TransactionCommitsTogether) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (a INTEGER)").ok());
  Status s = db->WithTransaction([](Session& tx) -> Status {
    NIMBUS_RETURN_IF_ERROR(tx.Exec("INSERT INTO t VALUES (1)"));
    return tx.Exec("INSERT INTO t VALUES (2)").status();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(db->Query("SELECT * FROM t")->size(), 2u);
}

TEST_F(DatabaseTest, TransactionRollsBackWhenFunctionFails) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (a INTEGER)").ok());
  Status s = db->WithTransaction([](Session& tx) -> Status {
    NIMBUS_RETURN_IF_ERROR(tx.Exec("INSERT INTO t VALUES (1)"));
    return Status::Validation("changed my mind");
  });
  EXPECT_EQ(s.kind(), ErrorKind::kValidation);
  EXPECT_EQ(db->Query("SELECT * FROM t")->size(), 0u);
}

TEST_F(DatabaseTest, TransactionRollsBackWhenStatementFails) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (a INTEGER UNIQUE)").ok());
  Status s = db->WithTransaction([](Session& tx) -> Status {
    NIMBUS_RETURN_IF_ERROR(tx.Exec("INSERT INTO t VALUES (1)"));
    return tx.Exec("INSERT INTO t VALUES (1)").status();
  });
  EXPECT_EQ(s.kind(), ErrorKind::kConflict);
  EXPECT_EQ(db->Query("SELECT * FROM t")->size(), 0u);
}

TEST_F(DatabaseTest, NestedTransactionFailureUndoesOnlyInnerWrites) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (a INTEGER)").ok());
  Status s = db->WithTransaction([&](Session& tx) -> Status {
    NIMBUS_RETURN_IF_ERROR(tx.Exec("INSERT INTO t VALUES (1)"));
    Status inner = db->WithTransaction([](Session& tx2) -> Status {
      NIMBUS_RETURN_IF_ERROR(tx2.Exec("INSERT INTO t VALUES (2)"));
      return Status::Conflict("inner");
    });
    EXPECT_EQ(inner.kind(), ErrorKind::kConflict);
    // The Database itself, used from the transaction's thread, sees the transaction.
    EXPECT_EQ(db->Query("SELECT * FROM t")->size(), 1u);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto rows = db->Query("SELECT a FROM t");
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0]["a"].AsInt(), 1);
}

// Durability is seen through the WAL syncs a commit makes on its own thread. The checkpoint
// thread syncs as well, and a commit that restarts a checkpointed WAL syncs the new WAL's
// header, but neither comes near once per commit over a burst of commits.
TEST_F(DatabaseTest, DurableCommitsSyncTheWalAndRelaxedOnesDoNot) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (a INTEGER)").ok());
  constexpr int kCommits = 20;
  const uint64_t before = WalSyncsOnThisThread();
  for (int i = 0; i < kCommits; ++i) {
    ASSERT_TRUE(db->WithTransaction([&](Session& tx) {
                    return tx.Exec("INSERT INTO t VALUES (?)", {int64_t{i}}).status();
                  }).ok());
  }
  const uint64_t relaxed = WalSyncsOnThisThread() - before;
  EXPECT_LT(relaxed, static_cast<uint64_t>(kCommits) / 2);
  for (int i = 0; i < kCommits; ++i) {
    ASSERT_TRUE(db->WithDurableTransaction([&](Session& tx) {
                    return tx.Exec("INSERT INTO t VALUES (?)", {int64_t{i}}).status();
                  }).ok());
  }
  const uint64_t durable = WalSyncsOnThisThread() - before - relaxed;
  EXPECT_GE(durable, static_cast<uint64_t>(kCommits));
  // The connection went back to relaxed commits.
  const uint64_t after_durable = WalSyncsOnThisThread();
  for (int i = 0; i < kCommits; ++i) {
    ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (?)", {int64_t{i}}).ok());
  }
  EXPECT_LT(WalSyncsOnThisThread() - after_durable, static_cast<uint64_t>(kCommits) / 2);
  EXPECT_EQ(db->Query("SELECT * FROM t")->size(), 3u * kCommits);
}

TEST_F(DatabaseTest, DurableTransactionsNestOnlyInDurableOnes) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (a INTEGER)").ok());
  Status s = db->WithDurableTransaction([&](Session& tx) -> Status {
    NIMBUS_RETURN_IF_ERROR(tx.Exec("INSERT INTO t VALUES (1)"));
    NIMBUS_RETURN_IF_ERROR(db->WithTransaction(
        [](Session& inner) { return inner.Exec("INSERT INTO t VALUES (2)").status(); }));
    return db->WithDurableTransaction(
        [](Session& inner) { return inner.Exec("INSERT INTO t VALUES (3)").status(); });
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  s = db->WithTransaction([&](Session& tx) -> Status {
    NIMBUS_RETURN_IF_ERROR(tx.Exec("INSERT INTO t VALUES (4)"));
    Status inner = db->WithDurableTransaction(
        [](Session& in) { return in.Exec("INSERT INTO t VALUES (5)").status(); });
    EXPECT_EQ(inner.kind(), ErrorKind::kInternal);
    EXPECT_NE(inner.message().find("cannot nest"), std::string::npos) << inner.ToString();
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto rows = db->Query("SELECT a FROM t ORDER BY a");
  ASSERT_EQ(rows->size(), 4u);
  EXPECT_EQ((*rows)[3]["a"].AsInt(), 4);
}

TEST_F(DatabaseTest, RepeatedStatementsRebindEveryRun) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)").ok());
  for (int64_t i = 0; i < 50; ++i) {
    ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (?, ?)", {i, "v" + std::to_string(i)}).ok());
  }
  for (int64_t i = 0; i < 50; ++i) {
    auto rows = db->Query("SELECT v FROM t WHERE k = ?", {i});
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(rows->size(), 1u);
    EXPECT_EQ((*rows)[0]["v"].AsString(), "v" + std::to_string(i));
  }
}

TEST_F(DatabaseTest, FailedStatementCanRunAgain) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (k INTEGER PRIMARY KEY)").ok());
  ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (?)", {int64_t{1}}).ok());
  EXPECT_EQ(db->Exec("INSERT INTO t VALUES (?)", {int64_t{1}}).status().kind(),
            ErrorKind::kConflict);
  EXPECT_TRUE(db->Exec("INSERT INTO t VALUES (?)", {int64_t{2}}).ok());
  auto rows = db->Query("SELECT COUNT(*) AS n FROM t");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0]["n"].AsInt(), 2);
}

TEST_F(DatabaseTest, ManyDistinctStatementsAndSchemaChangesStayCorrect) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (a INTEGER)").ok());
  ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (1)").ok());
  // More distinct statements than any connection keeps compiled.
  for (int i = 0; i < 400; ++i) {
    auto rows = db->Query("SELECT a + " + std::to_string(i) + " AS x FROM t");
    ASSERT_TRUE(rows.ok());
    EXPECT_EQ((*rows)[0]["x"].AsInt(), 1 + i);
  }
  // A statement compiled before the table changed sees the new table.
  ASSERT_TRUE(db->Query("SELECT * FROM t").ok());
  ASSERT_TRUE(db->Exec("DROP TABLE t").ok());
  ASSERT_TRUE(db->Exec("CREATE TABLE t (a INTEGER, b TEXT)").ok());
  ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (7, 'seven')").ok());
  auto rows = db->Query("SELECT * FROM t");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0]["b"].AsString(), "seven");
}

TEST_F(DatabaseTest, ReadsSeeCommitsMadeAfterTheSameStatementRanBefore) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (a INTEGER)").ok());
  for (int64_t i = 1; i <= 5; ++i) {
    auto rows = db->Query("SELECT COUNT(*) AS n FROM t");
    ASSERT_TRUE(rows.ok());
    EXPECT_EQ((*rows)[0]["n"].AsInt(), i - 1);  // no reader stays on an old snapshot
    ASSERT_TRUE(db->WithTransaction([&](Session& s) {
                    return s.Exec("INSERT INTO t VALUES (?)", {i}).status();
                  }).ok());
  }
}

TEST_F(DatabaseTest, CheckpointsKeepTheWalSmallUnderManyCommits) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)").ok());
  const Value page = Value::Blob(std::string(4000, 'x'));
  // About 16000 pages (64 MB) of commits without a pause. The WAL starts over only once
  // all of it is copied, which a steady stream of commits prevents. The checkpointer copies
  // the last pages with the writer held off once the WAL passes 8000 pages; should its
  // fsyncs fall behind the commits, the committer copies the WAL itself at 12000 pages
  // (49 MB). Without either, the WAL would grow to hold all 64 MB.
  for (int64_t i = 0; i < 16000; ++i) {
    ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (?, ?)", {i, page}).ok());
  }
  EXPECT_LT(std::filesystem::file_size(dir_ + "/metadata.db-wal"), 56u << 20);
  auto rows = db->Query("SELECT COUNT(*) AS n FROM t");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0]["n"].AsInt(), 16000);
  db.reset();
  auto again = OpenDb();
  rows = again->Query("SELECT COUNT(*) AS n FROM t");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0]["n"].AsInt(), 16000);
}

TEST_F(DatabaseTest, MigrationsApplyOnceAcrossRestarts) {
  {
    auto db = OpenDb();
    db->RegisterMigration("widgets", 1, "CREATE TABLE w (a INTEGER); INSERT INTO w VALUES (1);");
    ASSERT_TRUE(db->Migrate().ok());
    ASSERT_TRUE(db->Migrate().ok());
  }
  auto db = OpenDb();
  db->RegisterMigration("widgets", 1, "CREATE TABLE w (a INTEGER); INSERT INTO w VALUES (1);");
  db->RegisterMigration("widgets", 2, "ALTER TABLE w ADD COLUMN b TEXT;");
  db->RegisterMigration("gadgets", 1, "CREATE TABLE g (x TEXT);");
  Status s = db->Migrate();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(db->Query("SELECT * FROM w")->size(), 1u);
  auto recorded = db->Query("SELECT component, version FROM schema_migrations ORDER BY 1, 2");
  ASSERT_TRUE(recorded.ok());
  ASSERT_EQ(recorded->size(), 3u);
  EXPECT_EQ((*recorded)[0]["component"].AsString(), "gadgets");
  EXPECT_EQ((*recorded)[2]["version"].AsInt(), 2);
  EXPECT_TRUE(db->Exec("INSERT INTO w (a, b) VALUES (2, 'x')").ok());
}

TEST_F(DatabaseTest, FailedMigrationIsNotRecordedAndLeavesNoTrace) {
  auto db = OpenDb();
  db->RegisterMigration("bad", 1, "CREATE TABLE half (a INTEGER); THIS IS NOT SQL;");
  Status s = db->Migrate();
  EXPECT_EQ(s.kind(), ErrorKind::kInternal);
  EXPECT_NE(s.message().find("bad v1"), std::string::npos);
  EXPECT_TRUE(db->Query("SELECT * FROM schema_migrations WHERE component = 'bad'")->empty());
  EXPECT_FALSE(db->Query("SELECT * FROM half").ok());
}

TEST_F(DatabaseTest, ConcurrentWritersAndReadersLoseNothing) {
  auto db = OpenDb();
  ASSERT_TRUE(db->Exec("CREATE TABLE counter (n INTEGER)").ok());
  ASSERT_TRUE(db->Exec("INSERT INTO counter VALUES (0)").ok());
  ASSERT_TRUE(db->Exec("CREATE TABLE log (thread INTEGER, i INTEGER)").ok());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Read-modify-write: only correct if transactions are serialized.
        Status s = db->WithTransaction([&](Session& tx) -> Status {
          NIMBUS_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT n FROM counter"));
          int64_t n = rows[0]["n"].AsInt();
          NIMBUS_RETURN_IF_ERROR(tx.Exec("UPDATE counter SET n = ?", {n + 1}));
          return tx.Exec("INSERT INTO log VALUES (?, ?)", {t, i}).status();
        });
        if (!s.ok()) ++failures;
        if (!db->Query("SELECT COUNT(*) AS c FROM log").ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ((*db->Query("SELECT n FROM counter"))[0].at("n").AsInt(), kThreads * kPerThread);
  EXPECT_EQ((*db->Query("SELECT COUNT(*) AS c FROM log"))[0].at("c").AsInt(),
            kThreads * kPerThread);
}

}  // namespace
}  // namespace nimbus::store
