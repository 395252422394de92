#include "store/wal_buffer_vfs.h"

#include <fcntl.h>
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
  Exec(writer, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
  for (int i = 1; i <= 300; ++i) {
    // Rows of a few pages each, so that every commit has several frames.
    Exec(writer, "INSERT INTO t VALUES (" + std::to_string(i) + ", zeroblob(9000))");
    ASSERT_EQ(One(reader, "SELECT MAX(k) FROM t"), std::to_string(i));
  }
  // The default VFS reads the same WAL: a copy of the files, taken before any checkpoint
  // (the original is this process's alone while it has it open).
  const std::string copy = dir_ + "/copy.db";
  std::filesystem::copy_file(path_, copy);
  std::filesystem::copy_file(path_ + "-wal", copy + "-wal");
  sqlite3* plain = nullptr;
  ASSERT_EQ(sqlite3_open_v2(copy.c_str(), &plain, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  open_.push_back(plain);
  EXPECT_EQ(One(plain, "SELECT COUNT(*) FROM t"), "300");
  EXPECT_EQ(One(plain, "PRAGMA integrity_check"), "ok");
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

  // What the default VFS finds after a checkpoint, once this connection is closed.
  Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  EXPECT_EQ(std::filesystem::file_size(path_ + "-wal"), 0u);
  sqlite3_close(db);
  open_.clear();
  sqlite3* plain = Open(nullptr);
  EXPECT_EQ(One(plain, "SELECT SUM(LENGTH(v)) FROM t"), sum);
  EXPECT_EQ(One(plain, "PRAGMA integrity_check"), "ok");
}

TEST_F(WalBufferVfsTest, TheDatabaseAndWalFilesAreWrapped) {
  sqlite3* db = Open(WalBufferVfsName());
  Exec(db, "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('x')");
  sqlite3_vfs* vfs = nullptr;
  ASSERT_EQ(sqlite3_file_control(db, "main", SQLITE_FCNTL_VFS_POINTER, &vfs), SQLITE_OK);
  EXPECT_STREQ(vfs->zName, WalBufferVfsName());
  sqlite3_file* main = nullptr;
  ASSERT_EQ(sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &main), SQLITE_OK);
  sqlite3_file* wal = nullptr;
  ASSERT_EQ(sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal), SQLITE_OK);
  // Another database of the default VFS, for its methods.
  sqlite3* plain = nullptr;
  ASSERT_EQ(sqlite3_open_v2((dir_ + "/plain.db").c_str(), &plain,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
            SQLITE_OK);
  open_.push_back(plain);
  Exec(plain, "CREATE TABLE t (v TEXT)");
  sqlite3_file* plain_main = nullptr;
  ASSERT_EQ(sqlite3_file_control(plain, "main", SQLITE_FCNTL_FILE_POINTER, &plain_main), SQLITE_OK);
  ASSERT_NE(wal, nullptr);
  EXPECT_NE(main->pMethods, plain_main->pMethods);
  EXPECT_NE(wal->pMethods, plain_main->pMethods);
  EXPECT_NE(wal->pMethods, main->pMethods);
}

// What SQLite in another process does first to read or write: a POSIX lock on one of the
// WAL index's lock bytes. Returns whether it would be refused.
bool ShmLockRefused(const std::string& shm_path, off_t byte) {
  const int fd = ::open(shm_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock lk {};
  lk.l_type = F_RDLCK;
  lk.l_whence = SEEK_SET;
  lk.l_start = byte;
  lk.l_len = 1;
  const bool refused = ::fcntl(fd, F_GETLK, &lk) == 0 && lk.l_type != F_UNLCK;
  ::close(fd);
  return refused;
}

TEST_F(WalBufferVfsTest, OtherProcessesAreKeptOutWhileTheDatabaseIsOpen) {
  sqlite3* writer = Open(WalBufferVfsName());
  sqlite3* reader = Open(WalBufferVfsName());
  Exec(writer, "CREATE TABLE t (k INTEGER PRIMARY KEY); INSERT INTO t VALUES (1)");
  EXPECT_EQ(One(reader, "SELECT COUNT(*) FROM t"), "1");
  // Every lock byte: the write lock (120), the checkpoint and recovery locks, the read marks.
  for (off_t byte = 120; byte < 128; ++byte) {
    EXPECT_TRUE(ShmLockRefused(path_ + "-shm", byte)) << byte;
  }
  // Readers and the writer of this process still go side by side.
  Exec(reader, "BEGIN; SELECT COUNT(*) FROM t");
  Exec(writer, "INSERT INTO t VALUES (2)");
  EXPECT_EQ(One(reader, "SELECT COUNT(*) FROM t"), "1");  // its snapshot
  Exec(reader, "COMMIT");
  EXPECT_EQ(One(reader, "SELECT COUNT(*) FROM t"), "2");

  sqlite3_close(reader);
  sqlite3_close(writer);
  open_.clear();
  EXPECT_FALSE(ShmLockRefused(path_ + "-shm", 123));
  sqlite3* plain = Open(nullptr);
  EXPECT_EQ(One(plain, "SELECT COUNT(*) FROM t"), "2");
}

TEST_F(WalBufferVfsTest, AProcessThatFindsAnotherInTheDatabaseSharesItsLocks) {
  sqlite3* other = Open(nullptr);  // stands for another process, with the default VFS
  Exec(other, "CREATE TABLE t (k INTEGER PRIMARY KEY); INSERT INTO t VALUES (1)");
  Exec(other, "BEGIN; SELECT COUNT(*) FROM t");  // holds a read lock

  sqlite3* writer = Open(WalBufferVfsName());
  Exec(writer, "INSERT INTO t VALUES (2)");
  EXPECT_EQ(One(writer, "SELECT COUNT(*) FROM t"), "2");
  EXPECT_EQ(One(other, "SELECT COUNT(*) FROM t"), "1");  // its snapshot
  Exec(other, "COMMIT");
  EXPECT_EQ(One(other, "SELECT COUNT(*) FROM t"), "2");
  // The default VFS's locks still rule: a write waits for the other's write lock.
  Exec(other, "BEGIN IMMEDIATE");
  sqlite3_busy_timeout(writer, 0);
  EXPECT_EQ(sqlite3_exec(writer, "INSERT INTO t VALUES (3)", nullptr, nullptr, nullptr),
            SQLITE_BUSY);
  Exec(other, "COMMIT");
  Exec(writer, "INSERT INTO t VALUES (3)");
  EXPECT_EQ(One(other, "SELECT COUNT(*) FROM t"), "3");
}

}  // namespace
}  // namespace nimbus::store
