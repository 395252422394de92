// LocalObjectStore: the default ObjectStore backend — object bodies as files under
// <data-dir>/objects/, all metadata in store::Database (tables objects_*).
//
// Layout (see object_store_layout.md):
//   <data-dir>/objects/blobs/<xx>/<id>   one immutable file per object version or staged
//                                        part; <id> is 32 random hex digits, <xx> its first
//                                        two. Names never derive from user keys.
//   <data-dir>/objects/tmp/<id>.tmp      bodies being written
// A write goes: temp file (hashing while the bytes pass) -> fdatasync -> rename into blobs/
// -> fsync of the shard directory -> one durable metadata transaction that makes the new
// version visible and drops the rows of what it replaces -> unlink of replaced blobs. A crash at
// any point leaves each key fully old or fully new; what it leaves behind on disk (temp files,
// blobs renamed but never committed, replaced blobs not yet unlinked) is referenced by no
// metadata row, so it is invisible, and Recover() deletes it at start-up.
// A body of 4 MiB or more whose length is declared is written with O_DIRECT where the file
// system takes it (all but a last partial block), past the page cache.
//
// Thread-safety: safe for concurrent use. Recover() REQUIRES that no other operation runs
// on the same data directory (call it once at start-up, before serving).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/clock.h"
#include "objects/object_store.h"
#include "store/database.h"

namespace nimbus::objects {

// The steps of a write after which a test may simulate a crash.
enum class CrashPoint {
  kTempWritten,  // the body is in the temp file, not yet synced
  kTempSynced,   // the temp file is synced, not yet renamed
  kRenamed,      // the blob is in place, metadata not yet committed
  kCommitted,    // metadata committed, replaced blobs not yet unlinked
};

struct LocalObjectStoreOptions {
  std::string data_dir;                 // blobs live under <data_dir>/objects
  store::Database* db = nullptr;        // not owned; must outlive the store
  const Clock* clock = nullptr;         // defaults to the system clock
  uint64_t min_part_size = 5ull << 20;  // EntityTooSmall below this (except the last part)
  size_t buffer_size = 1u << 20;        // per-stream copy buffer (64 KiB - 1 MiB is sensible)
  // fdatasync blobs and fsync their directories before committing, and commit durably
  // (the WAL synced). Turning it off keeps every write atomic against a process crash but
  // not against power loss: for tests and scratch stores only.
  bool sync_writes = true;
  // PutObject and CopyObject keep a body up to this size in the metadata database instead
  // of a file of its own: one transaction instead of a file's create, write and rename (and
  // its fsyncs). Multipart parts are always files. 0 puts every body in a file.
  uint64_t inline_max_bytes = 64u << 10;
  // Test seam: called at each CrashPoint of every write; returning true makes the operation
  // stop right there — nothing undone, nothing cleaned — and return an internal error, as if
  // the process had died.
  std::function<bool(CrashPoint)> crash_hook;
};

struct RecoveryStats {
  uint64_t temp_files_removed = 0;
  uint64_t orphan_blobs_removed = 0;
};

class LocalObjectStore : public ObjectStore {
 public:
  // Registers the objects_* schema migrations with db (idempotent). Open() calls it.
  static void RegisterMigrations(store::Database& db);
  // Creates the directory layout, applies the migrations and returns the store. Call
  // Recover() afterwards, before serving.
  static Result<std::unique_ptr<LocalObjectStore>> Open(LocalObjectStoreOptions options);

  // Deletes temp files and every blob no metadata row references (left by a crash, by
  // aborted uploads, or by replaced versions whose unlink was interrupted).
  virtual Result<RecoveryStats> Recover() = 0;
};

}  // namespace nimbus::objects
