#include "store/wal_buffer_vfs.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace nimbus::store {
namespace {

class WalBufferVfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nimbus-walvfs-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/t.db";
  }
  void TearDown() override {
    for (sqlite3* db : open_) sqlite3_close(db);
    std::filesystem::remove_all(dir_);
  }

  // vfs: nullptr for SQLite's default.
  sqlite3* Open(const char* vfs) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
              SQLITE_OK);
    open_.push_back(db);
    Exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
    return db;
  }

  static void Exec(sqlite3* db, const std::string& sql) {
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << (error ? error : "") << " in " << sql;
    sqlite3_free(error);
  }

  static std::string One(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(stmt, 0);
      out = text ? reinterpret_cast<const char*>(text) : "";
    }
    sqlite3_finalize(stmt);
    return out;
  }

  std::string dir_;
  std::string path_;
  std::vector<sqlite3*> open_;
};

TEST_F(WalBufferVfsTest, EveryCommitIsVisibleToOtherConnectionsAtOnce) {
  sqlite3* writer = Open(WalBufferVfsName());
  sqlite3* reader = Open(WalBufferVfsName());
  sqlite3* plain = Open(nullptr);  // the default VFS reads the same WAL
  Exec(writer, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
  for (int i = 1; i <= 300; ++i) {
    // Rows of a few pages each, so that every commit has several frames.
    Exec(writer, "INSERT INTO t VALUES (" + std::to_string(i) + ", zeroblob(9000))");
    ASSERT_EQ(One(reader, "SELECT MAX(k) FROM t"), std::to_string(i));
    ASSERT_EQ(One(plain, "SELECT COUNT(*) FROM t"), std::to_string(i));
  }
}

TEST_F(WalBufferVfsTest, LargeAndRolledBackTransactionsLeaveAConsistentDatabase) {
  sqlite3* db = Open(WalBufferVfsName());
  // A small page cache makes SQLite spill pages to the WAL before the commit.
  Exec(db, "PRAGMA cache_size = 20; CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
  Exec(db,
       "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
       "INSERT INTO t SELECT i, randomblob(3000) FROM n; ROLLBACK;");
  EXPECT_EQ(One(db, "SELECT COUNT(*) FROM t"), "0");
  // Over 6 MB in one commit: more than the buffer holds and than one write may carry.
  Exec(db,
       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
       "INSERT INTO t SELECT i, randomblob(3000) FROM n");
  Exec(db, "UPDATE t SET v = zeroblob(100) WHERE k % 3 = 0");
  const std::string sum = One(db, "SELECT SUM(LENGTH(v)) FROM t");
  EXPECT_EQ(sum, std::to_string(1334 * 3000 + 666 * 100));
  EXPECT_EQ(One(db, "PRAGMA integrity_check"), "ok");

  // What a fresh connection of the default VFS finds, before and after a checkpoint.
  sqlite3* plain = Open(nullptr);
  EXPECT_EQ(One(plain, "SELECT SUM(LENGTH(v)) FROM t"), sum);
  Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  EXPECT_EQ(One(plain, "SELECT SUM(LENGTH(v)) FROM t"), sum);
  EXPECT_EQ(One(plain, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(std::filesystem::file_size(path_ + "-wal"), 0u);
}

TEST_F(WalBufferVfsTest, OnlyWalFilesAreWrapped) {
  sqlite3* db = Open(WalBufferVfsName());
  Exec(db, "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('x')");
  sqlite3_vfs* vfs = nullptr;
  ASSERT_EQ(sqlite3_file_control(db, "main", SQLITE_FCNTL_VFS_POINTER, &vfs), SQLITE_OK);
  EXPECT_STREQ(vfs->zName, WalBufferVfsName());
  sqlite3_file* main = nullptr;
  ASSERT_EQ(sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &main), SQLITE_OK);
  sqlite3_file* wal = nullptr;
  ASSERT_EQ(sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal), SQLITE_OK);
  // The database file is the default VFS's own; the WAL file has other methods.
  sqlite3* plain = Open(nullptr);
  sqlite3_file* plain_main = nullptr;
  ASSERT_EQ(sqlite3_file_control(plain, "main", SQLITE_FCNTL_FILE_POINTER, &plain_main), SQLITE_OK);
  EXPECT_EQ(main->pMethods, plain_main->pMethods);
  ASSERT_NE(wal, nullptr);
  EXPECT_NE(wal->pMethods, main->pMethods);
}

}  // namespace
}  // namespace nimbus::store
