// store::Database: the metadata store every subsystem shares (ARCHITECTURE.md §5).
//
// A backend-neutral facade over a relational database: statements are SQL with `?`
// placeholders, parameters and result cells are Values (null, int, double, string, blob;
// bools are stored as 0/1 and timestamps as epoch seconds), a row maps column names to
// Values (QueryValues() gives each row's cells in column order instead, for hot paths that
// would rather not pay for a map per row). The default backend is SQLite on
// <data-dir>/metadata.db in WAL mode with a busy timeout and foreign keys on; a PostgreSQL
// backend can implement the same interface.
//
// Schema: each component registers numbered migrations (RegisterMigration) before
// Migrate() runs them; applied ones are recorded in the table schema_migrations
// (component, version, applied_at), so Migrate() is idempotent across restarts. Each
// migration runs in its own transaction together with its record.
//
// Errors: a constraint violation (unique key, foreign key) is kConflict; any other
// database failure is kInternal, with SQLite's message.
//
// Thread-safety: a Database is safe to use from many threads at once. Writes are
// serialized: Exec() and WithTransaction() run on the single writer connection under a
// mutex, so a transaction never sees another thread's half-done writes. Query() outside a
// transaction reads from a pool of reader connections, concurrently with the writer (WAL
// snapshot isolation: a read sees every transaction committed before it started). A
// thread inside WithTransaction() that calls Exec()/Query() on the Database itself stays
// in its transaction (nested WithTransaction() calls become savepoints) rather than
// deadlocking.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/value.h"

namespace nimbus::store {

using Params = std::vector<Value>;
using Row = Value::Map;
using Rows = std::vector<Row>;
using Cells = std::vector<Value>;  // one row's cells, in the statement's column order

// The statements available inside a transaction.
class Session {
 public:
  virtual ~Session() = default;
  // Runs one statement; returns the number of rows it changed.
  virtual Result<int64_t> Exec(std::string_view sql, const Params& params = {}) = 0;
  virtual Result<Rows> Query(std::string_view sql, const Params& params = {}) = 0;
  virtual Result<std::vector<Cells>> QueryValues(std::string_view sql,
                                                 const Params& params = {}) = 0;
};

class Database : public Session {
 public:
  // Opens (creating when needed) <data_dir>/metadata.db; creates data_dir too.
  static Result<std::unique_ptr<Database>> Open(const std::string& data_dir);
  // Opens the SQLite database file at path.
  static Result<std::unique_ptr<Database>> OpenFile(const std::string& path);

  ~Database() override = default;

  // fn runs inside one transaction: it commits when fn returns OK and rolls back when fn
  // returns an error (which WithTransaction then returns) or the commit fails. The commit
  // survives a crash of the process; a power loss or kernel crash may undo the last commits
  // (never half of one): what most metadata can afford, at no fsync per commit.
  virtual Status WithTransaction(const std::function<Status(Session&)>& fn) = 0;
  // As WithTransaction, and an OK commit is on stable storage, surviving a power loss too:
  // for writes acknowledged as durable, such as an S3 PUT. Costs an fsync per commit. Inside
  // a durable transaction it is a savepoint like any nested call; inside one that is not,
  // it fails with kInternal (the outer commit's durability is fixed when it begins).
  virtual Status WithDurableTransaction(const std::function<Status(Session&)>& fn) = 0;

  // Registers migration `version` (1, 2, ...) of `component`; sql may hold several
  // statements. REQUIRES: called before Migrate(), once per (component, version).
  virtual void RegisterMigration(std::string component, int version, std::string sql) = 0;
  // Applies every registered migration not yet recorded, in version order per component.
  virtual Status Migrate() = 0;
};

}  // namespace nimbus::store
