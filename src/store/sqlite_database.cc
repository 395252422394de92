// The SQLite backend of store::Database. See database.h for the threading model: one
// writer connection behind a mutex, a pool of reader connections for Query().
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include "core/clock.h"
#include "store/database.h"
#include "store/wal_buffer_vfs.h"

namespace nimbus::store {
namespace {

constexpr int kBusyTimeoutMs = 5000;
// Reader connections kept open between queries: as many as concurrent requests commonly
// read at once (the server's handler threads), since a new one must be opened and prepare
// its statements again (at 32 clients, 8 kept readers cost small GETs a quarter of their rate).
constexpr size_t kMaxIdleReaders = 32;
constexpr size_t kMaxStatements = 128;  // cached prepared statements per connection
// Checkpoints (copying the WAL back into the database file, with its fsyncs) run on a
// thread of their own once this many committed pages wait to be copied, or a second after a
// commit, instead of inside whichever commit crosses SQLite's 1000-page mark while holding
// the writer lock. Should they fall behind (their fsyncs wait for a disk that cannot keep
// up with the commits), the committing thread checkpoints itself beyond
// kInlineCheckpointPages, after the checkpoint under way, so the WAL stays bounded.
constexpr int kCheckpointPages = 1000;
constexpr int kRestartPages = 8000;
constexpr int kInlineCheckpointPages = 12000;
constexpr auto kCheckpointInterval = std::chrono::seconds(1);
// The writer commits at the first level, which survives a crash of the process (the WAL is
// synced at checkpoints only); a durable transaction switches to the second for its commit.
constexpr std::string_view kRelaxedCommits = "PRAGMA synchronous = NORMAL";
constexpr std::string_view kDurableCommits = "PRAGMA synchronous = FULL";

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  if ((rc & 0xff) == SQLITE_CONSTRAINT) return Status::Conflict(std::move(msg));
  return Status::Internal(std::move(msg));
}

// Process-wide settings, made once before SQLite initializes (it refuses them after).
// Memory accounting off: with it on, each allocation SQLite makes takes one global mutex,
// 2-5% of a small PUT's time in the store.
void ConfigureSqlite() {
  static std::once_flag once;
  std::call_once(once, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

// One SQLite connection. Used by one thread at a time (the Database guarantees it).
class Connection {
 public:
  explicit Connection(sqlite3* db) : db_(db) {}
  ~Connection() {
    statements_.clear();
    lru_.clear();  // finalizes every cached statement before the close
    sqlite3_close_v2(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* handle() const { return db_; }

  static Result<std::unique_ptr<Connection>> Open(const std::string& path, bool reader) {
    ConfigureSqlite();
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             WalBufferVfsName());
    auto conn = std::make_unique<Connection>(db);
    if (rc != SQLITE_OK) return SqliteError(db, rc, "cannot open " + path);
    sqlite3_busy_timeout(db, kBusyTimeoutMs);
    NIMBUS_RETURN_IF_ERROR(conn->Script("PRAGMA foreign_keys = ON;"));
    if (reader) {
      NIMBUS_RETURN_IF_ERROR(conn->Script("PRAGMA query_only = ON;"));
    } else {
      NIMBUS_RETURN_IF_ERROR(conn->Script("PRAGMA journal_mode = WAL;"));
      NIMBUS_RETURN_IF_ERROR(conn->Script(kRelaxedCommits));
    }
    return conn;
  }

  // Runs SQL text that may hold several statements and takes no parameters.
  Status Script(std::string_view sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return Status::Ok();
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) return Status::Conflict(msg);
    return Status::Internal("sql script failed: " + msg);
  }

  Result<int64_t> Exec(std::string_view sql, const Params& params) {
    NIMBUS_RETURN_IF_ERROR(Run(sql, params, {}));
    return static_cast<int64_t>(sqlite3_changes(db_));
  }

  Result<Rows> Query(std::string_view sql, const Params& params) {
    Rows rows;
    NIMBUS_RETURN_IF_ERROR(Run(sql, params, [&rows](sqlite3_stmt* stmt, int columns) {
      Row row;
      for (int c = 0; c < columns; ++c) row[sqlite3_column_name(stmt, c)] = Cell(stmt, c);
      rows.push_back(std::move(row));
    }));
    return rows;
  }

  Result<std::vector<Cells>> QueryValues(std::string_view sql, const Params& params) {
    std::vector<Cells> rows;
    NIMBUS_RETURN_IF_ERROR(Run(sql, params, [&rows](sqlite3_stmt* stmt, int columns) {
      Cells& row = rows.emplace_back();
      row.reserve(static_cast<size_t>(columns));
      for (int c = 0; c < columns; ++c) row.push_back(Cell(stmt, c));
    }));
    return rows;
  }

 private:
  Status Bind(sqlite3_stmt* stmt, const Params& params) {
    for (size_t i = 0; i < params.size(); ++i) {
      const Value& v = params[i];
      int idx = static_cast<int>(i) + 1;
      int rc = SQLITE_OK;
      switch (v.type()) {
        case Value::Type::kNull:
          rc = sqlite3_bind_null(stmt, idx);
          break;
        case Value::Type::kBool:
        case Value::Type::kInt:
          rc = sqlite3_bind_int64(stmt, idx, v.AsInt());
          break;
        case Value::Type::kDouble:
        case Value::Type::kTimestamp:
          rc = sqlite3_bind_double(stmt, idx, v.AsDouble());
          break;
        case Value::Type::kString:
          rc = sqlite3_bind_text64(stmt, idx, v.AsString().data(), v.AsString().size(),
                                   SQLITE_TRANSIENT, SQLITE_UTF8);
          break;
        case Value::Type::kBlob:
          rc = sqlite3_bind_blob64(stmt, idx, v.AsString().data(), v.AsString().size(),
                                   SQLITE_TRANSIENT);
          break;
        case Value::Type::kList:
        case Value::Type::kMap:
          return Status::Internal("sql parameter " + std::to_string(idx) +
                                  " is a list or map; store documents as JSON text");
      }
      if (rc != SQLITE_OK) return SqliteError(db_, rc, "cannot bind parameter");
    }
    return Status::Ok();
  }

  static Value Cell(sqlite3_stmt* stmt, int col) {
    switch (sqlite3_column_type(stmt, col)) {
      case SQLITE_INTEGER:
        return Value(static_cast<int64_t>(sqlite3_column_int64(stmt, col)));
      case SQLITE_FLOAT:
        return Value(sqlite3_column_double(stmt, col));
      case SQLITE_TEXT:
        return Value(std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, col)),
                                 sqlite3_column_bytes(stmt, col)));
      case SQLITE_BLOB: {
        const char* data = static_cast<const char*>(sqlite3_column_blob(stmt, col));
        return Value::Blob(std::string(data ? data : "", sqlite3_column_bytes(stmt, col)));
      }
      default:
        return Value();
    }
  }

  // Runs sql; each row it returns goes to on_row (stmt, its column count), when given.
  using RowSink = std::function<void(sqlite3_stmt*, int)>;
  Status Run(std::string_view sql, const Params& params, const RowSink& on_row) {
    NIMBUS_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(sql));
    // Reset even on failure, so that the cached statement holds no lock or half-done step.
    struct Reset {
      sqlite3_stmt* stmt;
      ~Reset() {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
      }
    } reset{stmt};
    if (static_cast<size_t>(sqlite3_bind_parameter_count(stmt)) != params.size()) {
      return Status::Internal("statement takes " +
                              std::to_string(sqlite3_bind_parameter_count(stmt)) +
                              " parameters, got " + std::to_string(params.size()));
    }
    NIMBUS_RETURN_IF_ERROR(Bind(stmt, params));
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      // Counted per row: a step may recompile the statement after a schema change.
      if (on_row) on_row(stmt, sqlite3_column_count(stmt));
    }
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, "statement failed");
    return Status::Ok();
  }

  // The compiled form of sql, from the cache when this connection has run it before:
  // parsing and planning cost more than running most of the small statements the
  // services issue. The least recently used statement is dropped beyond kMaxStatements.
  Result<sqlite3_stmt*> Prepare(std::string_view sql) {
    if (auto it = statements_.find(sql); it != statements_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->stmt;
    }
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return SqliteError(db_, rc, "cannot prepare statement");
    }
    if (stmt == nullptr) return Status::Internal("empty SQL statement");
    if (lru_.size() >= kMaxStatements) {
      statements_.erase(lru_.back().sql);
      lru_.pop_back();
    }
    lru_.push_front(CachedStatement{std::string(sql), stmt});
    statements_.emplace(lru_.front().sql, lru_.begin());
    return stmt;
  }

  struct CachedStatement {
    CachedStatement(std::string text, sqlite3_stmt* s) : sql(std::move(text)), stmt(s) {}
    ~CachedStatement() { sqlite3_finalize(stmt); }
    CachedStatement(CachedStatement&& o) noexcept : sql(std::move(o.sql)), stmt(o.stmt) {
      o.stmt = nullptr;
    }
    CachedStatement(const CachedStatement&) = delete;
    CachedStatement& operator=(const CachedStatement&) = delete;
    CachedStatement& operator=(CachedStatement&&) = delete;
    std::string sql;
    sqlite3_stmt* stmt;
  };

  sqlite3* db_;
  // Most recently used first; statements_ indexes it by SQL text (keys view lru_'s sql).
  std::list<CachedStatement> lru_;
  std::unordered_map<std::string_view, std::list<CachedStatement>::iterator> statements_;
};

// The statements of one transaction, on the writer connection.
class TxSession : public Session {
 public:
  explicit TxSession(Connection& conn) : conn_(conn) {}
  Result<int64_t> Exec(std::string_view sql, const Params& params) override {
    return conn_.Exec(sql, params);
  }
  Result<Rows> Query(std::string_view sql, const Params& params) override {
    return conn_.Query(sql, params);
  }
  Result<std::vector<Cells>> QueryValues(std::string_view sql, const Params& params) override {
    return conn_.QueryValues(sql, params);
  }

 private:
  Connection& conn_;
};

class SqliteDatabase : public Database {
 public:
  SqliteDatabase(std::string path, std::unique_ptr<Connection> writer,
                 std::unique_ptr<Connection> checkpointer)
      : path_(std::move(path)),
        writer_(std::move(writer)),
        checkpointer_(std::move(checkpointer)),
        checkpoint_thread_([this] { CheckpointLoop(); }) {
    sqlite3_wal_hook(writer_->handle(), &SqliteDatabase::OnCommit, this);
  }

  ~SqliteDatabase() override {
    {
      std::lock_guard<std::mutex> lock(checkpoint_mu_);
      closing_ = true;
    }
    checkpoint_cv_.notify_all();
    checkpoint_thread_.join();
  }

  Result<int64_t> Exec(std::string_view sql, const Params& params) override {
    if (InTransaction()) return writer_->Exec(sql, params);
    std::lock_guard<std::mutex> lock(write_mu_);
    return writer_->Exec(sql, params);
  }

  Result<Rows> Query(std::string_view sql, const Params& params) override {
    return Read([&](Connection& c) { return c.Query(sql, params); });
  }

  Result<std::vector<Cells>> QueryValues(std::string_view sql, const Params& params) override {
    return Read([&](Connection& c) { return c.QueryValues(sql, params); });
  }

  Status WithTransaction(const std::function<Status(Session&)>& fn) override {
    return Transact(fn, /*durable=*/false);
  }

  Status WithDurableTransaction(const std::function<Status(Session&)>& fn) override {
    return Transact(fn, /*durable=*/true);
  }

  void RegisterMigration(std::string component, int version, std::string sql) override {
    std::lock_guard<std::mutex> lock(migrations_mu_);
    migrations_[std::move(component)][version] = std::move(sql);
  }

  Status Migrate() override {
    std::map<std::string, std::map<int, std::string>> migrations;
    {
      std::lock_guard<std::mutex> lock(migrations_mu_);
      migrations = migrations_;
    }
    NIMBUS_RETURN_IF_ERROR(WithTransaction([](Session& s) -> Status {
      return s
          .Exec(
              "CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, "
              "version INTEGER NOT NULL, applied_at REAL NOT NULL, "
              "PRIMARY KEY (component, version))")
          .status();
    }));
    for (const auto& [component, versions] : migrations) {
      for (const auto& [version, sql] : versions) {
        NIMBUS_RETURN_IF_ERROR(WithTransaction([&](Session& s) -> Status {
          NIMBUS_ASSIGN_OR_RETURN(
              Rows done,
              s.Query("SELECT 1 FROM schema_migrations WHERE component = ? AND version = ?",
                      {component, version}));
          if (!done.empty()) return Status::Ok();
          Status applied = writer_->Script(sql);
          if (!applied.ok()) {
            return Status::Internal("migration " + component + " v" + std::to_string(version) +
                                    " failed: " + applied.message());
          }
          return s
              .Exec(
                  "INSERT INTO schema_migrations (component, version, applied_at) "
                  "VALUES (?, ?, ?)",
                  {component, version, SystemClock::Instance().Now()})
              .status();
        }));
      }
    }
    return Status::Ok();
  }

 private:
  bool InTransaction() const { return owner_.load() == std::this_thread::get_id(); }

  // A durable transaction runs under synchronous = FULL, which syncs the WAL as part of the
  // commit: a commit whose sync fails is not committed. SQLite refuses to change the level
  // inside a transaction, hence the rule against durable savepoints in relaxed ones.
  Status Transact(const std::function<Status(Session&)>& fn, bool durable) {
    TxSession session(*writer_);
    if (InTransaction()) {
      if (durable && !durable_) {
        return Status::Internal(
            "a durable transaction cannot nest in one that is not: the outer transaction "
            "must be durable itself");
      }
      // Nested: a savepoint, so that an inner failure undoes only the inner writes. Named
      // by depth, so that its statements are the same each time and stay compiled.
      const std::string name = "sp" + std::to_string(++savepoint_depth_);
      Status status = writer_->Exec("SAVEPOINT " + name, {}).status();
      if (status.ok()) {
        status = fn(session);
        if (!status.ok()) (void)writer_->Exec("ROLLBACK TO " + name, {});
        Status released = writer_->Exec("RELEASE " + name, {}).status();
        if (status.ok()) status = released;
      }
      --savepoint_depth_;
      return status;
    }
    std::lock_guard<std::mutex> lock(write_mu_);
    if (durable) NIMBUS_RETURN_IF_ERROR(writer_->Exec(kDurableCommits, {}).status());
    durable_ = durable;
    Status status = writer_->Exec("BEGIN IMMEDIATE", {}).status();
    if (status.ok()) {
      owner_.store(std::this_thread::get_id());
      status = fn(session);
      if (status.ok()) status = writer_->Exec("COMMIT", {}).status();
      owner_.store(std::thread::id());
      if (!status.ok()) (void)writer_->Exec("ROLLBACK", {});
    }
    // Should this fail, later commits stay synced: slower, never less safe.
    if (durable) (void)writer_->Exec(kRelaxedCommits, {});
    return status;
  }

  // Runs a read on the writer inside this thread's transaction, else on a pooled reader.
  template <typename Fn>
  std::invoke_result_t<Fn, Connection&> Read(const Fn& fn) {
    if (InTransaction()) return fn(*writer_);
    NIMBUS_ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader, AcquireReader());
    std::invoke_result_t<Fn, Connection&> result = fn(*reader);
    ReleaseReader(std::move(reader));
    return result;
  }

  Result<std::unique_ptr<Connection>> AcquireReader() {
    {
      std::lock_guard<std::mutex> lock(readers_mu_);
      if (!idle_readers_.empty()) {
        auto conn = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        return conn;
      }
    }
    return Connection::Open(path_, /*reader=*/true);
  }

  void ReleaseReader(std::unique_ptr<Connection> conn) {
    std::lock_guard<std::mutex> lock(readers_mu_);
    if (idle_readers_.size() < kMaxIdleReaders) idle_readers_.push_back(std::move(conn));
  }

  // SQLite's WAL hook: runs on the writer after each commit with the WAL's size in pages.
  static int OnCommit(void* self, sqlite3* db, const char* schema, int pages) {
    auto* database = static_cast<SqliteDatabase*>(self);
    if (pages >= kInlineCheckpointPages) {
      // With the writer lock held, this copies the whole WAL (unless a reader needs some of
      // it), so the next commit starts it over.
      std::lock_guard<std::mutex> running(database->checkpoint_run_mu_);
      sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      return SQLITE_OK;
    }
    bool due;
    {
      std::lock_guard<std::mutex> lock(database->checkpoint_mu_);
      // The WAL only shrinks when the writer restarts it from its start.
      if (pages < database->wal_pages_) {
        database->checkpointed_pages_ = 0;
        ++database->wal_restarts_;
      }
      database->wal_pages_ = pages;
      due = database->PendingPages() >= kCheckpointPages;
    }
    if (due) database->checkpoint_cv_.notify_one();
    return SQLITE_OK;
  }

  // Pages committed to the WAL and not yet copied into the database. Guarded by
  // checkpoint_mu_.
  int PendingPages() const { return wal_pages_ - checkpointed_pages_; }

  void CheckpointLoop() {
    std::unique_lock<std::mutex> lock(checkpoint_mu_);
    while (!closing_) {
      checkpoint_cv_.wait_for(lock, kCheckpointInterval,
                              [this] { return closing_ || PendingPages() >= kCheckpointPages; });
      if (closing_) break;
      if (PendingPages() <= 0) continue;
      uint64_t restarts = wal_restarts_;
      lock.unlock();
      int copied_pages = 0;
      int rc = Checkpoint(&copied_pages);
      lock.lock();
      if (rc == SQLITE_OK && restarts == wal_restarts_ && wal_pages_ > copied_pages &&
          wal_pages_ >= kRestartPages) {
        // The writer restarts the WAL from its start only once all of it is copied, which
        // the commits made during a checkpoint prevent: under a steady stream of them the WAL
        // would grow to kInlineCheckpointPages. The few pages they added are copied with the
        // writer held off (write_mu_ before checkpoint_mu_, as in a commit). That costs the
        // writers a pause of two fsyncs, so only a WAL grown past kRestartPages gets it.
        lock.unlock();
        SyncFiles();
        {
          std::lock_guard<std::mutex> writer(write_mu_);
          restarts = wal_restarts_;
          rc = Checkpoint(&copied_pages);
        }
        lock.lock();
      }
      // Without this, a WAL that a reader keeps from being copied whole would be checkpointed
      // again after every commit, each time with two fsyncs. A WAL restarted meanwhile is
      // another WAL: its pages all count as pending.
      if (rc == SQLITE_OK && restarts == wal_restarts_) checkpointed_pages_ = copied_pages;
    }
  }

  // Syncs the WAL and the database file while the writer runs, so that the fsyncs of a
  // checkpoint that holds it off have only the pages written since to flush. The database
  // file is synced only by a checkpoint that copies the whole WAL, so without this the held
  // one wrote back every page that the checkpoints before it copied: 20-30 ms, four times a
  // second under a stream of small PUTs.
  void SyncFiles() {
    for (int op : {SQLITE_FCNTL_JOURNAL_POINTER, SQLITE_FCNTL_FILE_POINTER}) {
      sqlite3_file* file = nullptr;
      sqlite3_file_control(checkpointer_->handle(), nullptr, op, &file);
      if (file != nullptr && file->pMethods != nullptr) {
        file->pMethods->xSync(file, SQLITE_SYNC_NORMAL);
      }
    }
  }

  // PASSIVE: copies what no reader still needs, waiting for neither readers nor the writer.
  int Checkpoint(int* copied_pages) {
    std::lock_guard<std::mutex> running(checkpoint_run_mu_);
    return sqlite3_wal_checkpoint_v2(checkpointer_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                     nullptr, copied_pages);
  }

  const std::string path_;
  std::mutex write_mu_;  // held for a whole transaction or autocommit statement
  std::unique_ptr<Connection> writer_;
  std::atomic<std::thread::id> owner_{};  // the thread inside a transaction, if any
  int savepoint_depth_ = 0;               // guarded by write_mu_
  bool durable_ = false;                  // the open transaction's; guarded by write_mu_

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;

  std::mutex migrations_mu_;
  std::map<std::string, std::map<int, std::string>> migrations_;

  std::unique_ptr<Connection> checkpointer_;  // used by checkpoint_thread_ only
  std::mutex checkpoint_mu_;
  // Held through each checkpoint: one that a commit makes waits for the checkpointer's to
  // end, where SQLite would refuse it (only one checkpoint runs at a time). After write_mu_.
  std::mutex checkpoint_run_mu_;
  std::condition_variable checkpoint_cv_;
  int wal_pages_ = 0;           // pages in the WAL after the last commit; guarded by checkpoint_mu_
  int checkpointed_pages_ = 0;  // of those, copied into the database; guarded by checkpoint_mu_
  // Times the WAL was seen to start over; guarded by checkpoint_mu_, and written by commits
  // only, so that write_mu_ holds it still as well.
  uint64_t wal_restarts_ = 0;
  bool closing_ = false;           // guarded by checkpoint_mu_
  std::thread checkpoint_thread_;  // last: starts once the rest is built
};

}  // namespace

Result<std::unique_ptr<Database>> Database::OpenFile(const std::string& path) {
  NIMBUS_ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer,
                          Connection::Open(path, /*reader=*/false));
  NIMBUS_RETURN_IF_ERROR(writer->Script("PRAGMA wal_autocheckpoint = 0;"));
  NIMBUS_ASSIGN_OR_RETURN(std::unique_ptr<Connection> checkpointer,
                          Connection::Open(path, /*reader=*/false));
  return std::unique_ptr<Database>(
      new SqliteDatabase(path, std::move(writer), std::move(checkpointer)));
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Status::Internal("cannot create data directory " + data_dir + ": " + ec.message());
  return OpenFile((std::filesystem::path(data_dir) / "metadata.db").string());
}

}  // namespace nimbus::store
