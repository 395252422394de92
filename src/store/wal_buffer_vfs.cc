#include "store/wal_buffer_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace nimbus::store {
namespace {

constexpr int kFrameHeaderBytes = 24;     // WAL frame header (SQLite's file format)
constexpr size_t kMaxBuffered = 4 << 20;  // a larger commit goes out in pieces of this size
// The default VFS writes at most 128 KiB - 1 bytes per call (it never needs more than a page).
constexpr size_t kWriteChunk = 64 << 10;

// The WAL index's lock bytes in the -shm file (SQLite's unix VFS: WALINDEX_LOCK_OFFSET).
constexpr off_t kShmLockOffset = 120;

thread_local uint64_t tls_wal_syncs = 0;  // WalSyncsOnThisThread()

// How every file this VFS wraps (the database and its WAL) begins. The wrapped VFS's file
// follows the whole struct in the same allocation.
struct WrappedFile {
  sqlite3_file base;  // first: SQLite sees this
  sqlite3_file* real;
};

// A WAL file.
struct WalFile {
  WrappedFile file;  // first
  char* buffer;      // malloc'd; the bytes of [offset, offset + size)
  size_t size;
  size_t capacity;
  sqlite3_int64 offset;
  bool commit_frame;  // the last write was the header of a commit's final frame
};

sqlite3_vfs* Real(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }
WalFile* Wal(sqlite3_file* file) { return reinterpret_cast<WalFile*>(file); }
sqlite3_file* RealOf(sqlite3_file* file) { return reinterpret_cast<WrappedFile*>(file)->real; }

// The methods that only pass the call on to the wrapped file.
int PassRead(sqlite3_file* file, void* data, int amount, sqlite3_int64 offset) {
  return RealOf(file)->pMethods->xRead(RealOf(file), data, amount, offset);
}
int PassWrite(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  return RealOf(file)->pMethods->xWrite(RealOf(file), data, amount, offset);
}
int PassTruncate(sqlite3_file* file, sqlite3_int64 size) {
  return RealOf(file)->pMethods->xTruncate(RealOf(file), size);
}
int PassSync(sqlite3_file* file, int flags) {
  return RealOf(file)->pMethods->xSync(RealOf(file), flags);
}
int PassFileSize(sqlite3_file* file, sqlite3_int64* size) {
  return RealOf(file)->pMethods->xFileSize(RealOf(file), size);
}
int PassLock(sqlite3_file* file, int lock) {
  return RealOf(file)->pMethods->xLock(RealOf(file), lock);
}
int PassUnlock(sqlite3_file* file, int lock) {
  return RealOf(file)->pMethods->xUnlock(RealOf(file), lock);
}
int PassCheckReservedLock(sqlite3_file* file, int* out) {
  return RealOf(file)->pMethods->xCheckReservedLock(RealOf(file), out);
}
int PassFileControl(sqlite3_file* file, int op, void* arg) {
  return RealOf(file)->pMethods->xFileControl(RealOf(file), op, arg);
}
int PassSectorSize(sqlite3_file* file) { return RealOf(file)->pMethods->xSectorSize(RealOf(file)); }
int PassDeviceCharacteristics(sqlite3_file* file) {
  return RealOf(file)->pMethods->xDeviceCharacteristics(RealOf(file));
}
int PassShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  return RealOf(file)->pMethods->xShmMap(RealOf(file), region, size, extend, out);
}
int PassShmLock(sqlite3_file* file, int offset, int n, int flags) {
  return RealOf(file)->pMethods->xShmLock(RealOf(file), offset, n, flags);
}
void PassShmBarrier(sqlite3_file* file) { RealOf(file)->pMethods->xShmBarrier(RealOf(file)); }
int PassShmUnmap(sqlite3_file* file, int delete_flag) {
  return RealOf(file)->pMethods->xShmUnmap(RealOf(file), delete_flag);
}
int PassFetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  return RealOf(file)->pMethods->xFetch(RealOf(file), offset, amount, out);
}
int PassUnfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  return RealOf(file)->pMethods->xUnfetch(RealOf(file), offset, page);
}

int Flush(WalFile* f) {
  int rc = SQLITE_OK;
  for (size_t done = 0; done < f->size && rc == SQLITE_OK; done += kWriteChunk) {
    const size_t n = std::min(kWriteChunk, f->size - done);
    rc = f->file.real->pMethods->xWrite(f->file.real, f->buffer + done, static_cast<int>(n),
                                        f->offset + static_cast<sqlite3_int64>(done));
  }
  f->size = 0;
  return rc;
}

bool Reserve(WalFile* f, size_t size) {
  if (size <= f->capacity) return true;
  const size_t capacity = std::max(size, f->capacity * 2);
  char* grown = static_cast<char*>(std::realloc(f->buffer, capacity));
  if (grown == nullptr) return false;
  f->buffer = grown;
  f->capacity = capacity;
  return true;
}

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

int WalWrite(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  WalFile* f = Wal(file);
  const bool ends_commit = f->commit_frame;
  // A frame header's bytes 4-7 hold the database size after a commit, zero otherwise.
  f->commit_frame =
      amount == kFrameHeaderBytes && BigEndian32(static_cast<const unsigned char*>(data) + 4) != 0;
  const size_t bytes = static_cast<size_t>(amount);
  const bool joins = f->size > 0 && offset >= f->offset &&
                     offset <= f->offset + static_cast<sqlite3_int64>(f->size);
  if (!joins) {
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
    f->offset = offset;
  }
  const size_t at = static_cast<size_t>(offset - f->offset);
  if (at + bytes > kMaxBuffered || !Reserve(f, at + bytes)) {
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
    return PassWrite(file, data, amount, offset);
  }
  std::memcpy(f->buffer + at, data, bytes);
  f->size = std::max(f->size, at + bytes);
  return ends_commit ? Flush(f) : SQLITE_OK;
}

int WalClose(sqlite3_file* file) {
  WalFile* f = Wal(file);
  const int flushed = Flush(f);
  std::free(f->buffer);
  f->buffer = nullptr;
  const int closed = f->file.real->pMethods->xClose(f->file.real);
  return flushed != SQLITE_OK ? flushed : closed;
}

int WalRead(sqlite3_file* file, void* data, int amount, sqlite3_int64 offset) {
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  return PassRead(file, data, amount, offset);
}

int WalTruncate(sqlite3_file* file, sqlite3_int64 size) {
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  return PassTruncate(file, size);
}

int WalSync(sqlite3_file* file, int flags) {
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  ++tls_wal_syncs;
  return PassSync(file, flags);
}

int WalFileSize(sqlite3_file* file, sqlite3_int64* size) {
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  return PassFileSize(file, size);
}

int WalFileControl(sqlite3_file* file, int op, void* arg) {
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  return PassFileControl(file, op, arg);
}

int WalFetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  return PassFetch(file, offset, amount, out);
}

const sqlite3_io_methods kWalMethods = {
    3,
    WalClose,
    WalRead,
    WalWrite,
    WalTruncate,
    WalSync,
    WalFileSize,
    PassLock,
    PassUnlock,
    PassCheckReservedLock,
    WalFileControl,
    PassSectorSize,
    PassDeviceCharacteristics,
    PassShmMap,
    PassShmLock,
    PassShmBarrier,
    PassShmUnmap,
    WalFetch,
    PassUnfetch,
};

// ---- The WAL index's locks, kept in this process ------------------------------------------

// The locks of one database's WAL index, shared by this process's connections to it.
struct ShmLocks {
  std::pair<dev_t, ino_t> file;  // the database file's, its key in ShmRegistry()
  std::string shm_path;
  int users = 0;  // open database files; guarded by g_shm_mu
  std::mutex mu;  // guards what follows
  bool decided = false;
  // Whether the locks are this table's (true) or the default VFS's fcntl locks (false).
  bool in_process = false;
  int holder_fd = -1;  // the -shm file, with OFD write locks on all of its lock bytes
  std::array<int, SQLITE_SHM_NLOCK> shared{};
  std::array<bool, SQLITE_SHM_NLOCK> exclusive{};
};

std::mutex g_shm_mu;
std::map<std::pair<dev_t, ino_t>, std::unique_ptr<ShmLocks>>& ShmRegistry() {
  static auto* registry = new std::map<std::pair<dev_t, ino_t>, std::unique_ptr<ShmLocks>>();
  return *registry;
}

ShmLocks* AcquireShmLocks(const char* db_path) {
  struct stat st {};
  if (db_path == nullptr || ::stat(db_path, &st) != 0) return nullptr;
  std::lock_guard<std::mutex> lock(g_shm_mu);
  auto& entry = ShmRegistry()[{st.st_dev, st.st_ino}];
  if (!entry) {
    entry = std::make_unique<ShmLocks>();
    entry->file = {st.st_dev, st.st_ino};
    entry->shm_path = std::string(db_path) + "-shm";
  }
  ++entry->users;
  return entry.get();
}

void ReleaseShmLocks(ShmLocks* locks) {
  std::lock_guard<std::mutex> lock(g_shm_mu);
  if (--locks->users > 0) return;
  if (locks->holder_fd >= 0) ::close(locks->holder_fd);  // drops the OFD locks
  ShmRegistry().erase(locks->file);
}

// Chooses, once, who keeps the locks. This process keeps them when it can hold write locks
// on every lock byte of the -shm file: open file description locks, which conflict with the
// fcntl locks of SQLite in any other process (and with those of the default VFS in this
// one), so nothing else can read or write the database while this process has it open.
// Another process already in the database (holding one of those locks) makes this process
// use the default VFS's locks, as before. Called with locks->mu held.
void DecideShmLocks(ShmLocks* locks) {
  if (locks->decided) return;
  locks->decided = true;
  const int fd = ::open(locks->shm_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  struct flock lk {};
  lk.l_type = F_WRLCK;
  lk.l_whence = SEEK_SET;
  lk.l_start = kShmLockOffset;
  lk.l_len = SQLITE_SHM_NLOCK;
  if (::fcntl(fd, F_OFD_SETLK, &lk) != 0) {
    ::close(fd);
    return;
  }
  locks->holder_fd = fd;
  locks->in_process = true;
}

// A database file.
struct DbFile {
  WrappedFile file;      // first
  ShmLocks* locks;       // nullptr: the default VFS's locks
  uint32_t shared_mask;  // the WAL-index locks this connection holds
  uint32_t exclusive_mask;
};

DbFile* Db(sqlite3_file* file) { return reinterpret_cast<DbFile*>(file); }

// The semantics of the default VFS's unixShmLock: a shared lock waits for no one but an
// exclusive holder; an exclusive one for no other connection holding any lock on its bytes.
// Never blocks: SQLite retries on SQLITE_BUSY.
int LockInProcess(DbFile* f, int offset, int n, int flags) {
  ShmLocks& l = *f->locks;
  const uint32_t mask = ((1u << n) - 1) << offset;
  if ((flags & SQLITE_SHM_UNLOCK) != 0) {
    // Whichever kind the connection holds, as the default VFS does: SQLite may release an
    // exclusive lock as a shared one.
    for (int i = offset; i < offset + n; ++i) {
      if ((f->shared_mask & (1u << i)) != 0) --l.shared[i];
      if ((f->exclusive_mask & (1u << i)) != 0) l.exclusive[i] = false;
    }
    f->shared_mask &= ~mask;
    f->exclusive_mask &= ~mask;
    return SQLITE_OK;
  }
  if ((flags & SQLITE_SHM_SHARED) != 0) {
    if ((f->shared_mask & mask) != 0) return SQLITE_OK;
    if (l.exclusive[offset]) return SQLITE_BUSY;
    ++l.shared[offset];
    f->shared_mask |= mask;
    return SQLITE_OK;
  }
  for (int i = offset; i < offset + n; ++i) {
    const int own_shared = (f->shared_mask >> i) & 1;
    const bool own_exclusive = ((f->exclusive_mask >> i) & 1) != 0;
    if ((l.exclusive[i] && !own_exclusive) || l.shared[i] > own_shared) return SQLITE_BUSY;
  }
  for (int i = offset; i < offset + n; ++i) l.exclusive[i] = true;
  f->exclusive_mask |= mask;
  return SQLITE_OK;
}

int DbShmLock(sqlite3_file* file, int offset, int n, int flags) {
  DbFile* f = Db(file);
  if (f->locks != nullptr) {
    std::lock_guard<std::mutex> lock(f->locks->mu);
    DecideShmLocks(f->locks);
    if (f->locks->in_process) return LockInProcess(f, offset, n, flags);
  }
  return PassShmLock(file, offset, n, flags);
}

int DbShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  DbFile* f = Db(file);
  const int rc = PassShmMap(file, region, size, extend, out);
  if (rc == SQLITE_OK && f->locks != nullptr) {
    std::lock_guard<std::mutex> lock(f->locks->mu);
    DecideShmLocks(f->locks);  // the -shm file exists now
  }
  return rc;
}

// Drops whatever WAL-index locks the connection still holds.
void DropShmLocks(DbFile* f) {
  if (f->locks == nullptr) return;
  std::lock_guard<std::mutex> lock(f->locks->mu);
  if (!f->locks->in_process) return;
  LockInProcess(f, 0, SQLITE_SHM_NLOCK, SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE);
}

int DbShmUnmap(sqlite3_file* file, int delete_flag) {
  DropShmLocks(Db(file));
  return PassShmUnmap(file, delete_flag);
}

int DbClose(sqlite3_file* file) {
  DbFile* f = Db(file);
  DropShmLocks(f);
  const int rc = f->file.real->pMethods->xClose(f->file.real);
  if (f->locks != nullptr) ReleaseShmLocks(f->locks);
  f->locks = nullptr;
  return rc;
}

const sqlite3_io_methods kDbMethods = {
    3,
    DbClose,
    PassRead,
    PassWrite,
    PassTruncate,
    PassSync,
    PassFileSize,
    PassLock,
    PassUnlock,
    PassCheckReservedLock,
    PassFileControl,
    PassSectorSize,
    PassDeviceCharacteristics,
    DbShmMap,
    DbShmLock,
    PassShmBarrier,
    DbShmUnmap,
    PassFetch,
    PassUnfetch,
};

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  sqlite3_vfs* real = Real(vfs);
  if ((flags & SQLITE_OPEN_MAIN_DB) != 0) {
    DbFile* f = Db(file);
    std::memset(f, 0, sizeof(DbFile));
    f->file.real = reinterpret_cast<sqlite3_file*>(f + 1);
    const int rc = real->xOpen(real, name, f->file.real, flags, out_flags);
    if (rc == SQLITE_OK && f->file.real->pMethods != nullptr) {
      f->locks = AcquireShmLocks(name);
      f->file.base.pMethods = &kDbMethods;
    }
    return rc;
  }
  if ((flags & SQLITE_OPEN_WAL) == 0) {
    // Every other file is the default VFS's own, in the space SQLite allocated.
    return real->xOpen(real, name, file, flags, out_flags);
  }
  WalFile* f = Wal(file);
  std::memset(f, 0, sizeof(WalFile));
  f->file.real = reinterpret_cast<sqlite3_file*>(f + 1);
  const int rc = real->xOpen(real, name, f->file.real, flags, out_flags);
  // SQLite calls xClose only on a file whose pMethods is set.
  if (rc == SQLITE_OK && f->file.real->pMethods != nullptr) f->file.base.pMethods = &kWalMethods;
  return rc;
}

int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return Real(vfs)->xDelete(Real(vfs), name, sync_dir);
}
int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return Real(vfs)->xAccess(Real(vfs), name, flags, out);
}
int FullPathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  return Real(vfs)->xFullPathname(Real(vfs), name, size, out);
}
void* DlOpen(sqlite3_vfs* vfs, const char* name) { return Real(vfs)->xDlOpen(Real(vfs), name); }
void DlError(sqlite3_vfs* vfs, int size, char* out) { Real(vfs)->xDlError(Real(vfs), size, out); }
void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return Real(vfs)->xDlSym(Real(vfs), handle, symbol);
}
void DlClose(sqlite3_vfs* vfs, void* handle) { Real(vfs)->xDlClose(Real(vfs), handle); }
int Randomness(sqlite3_vfs* vfs, int size, char* out) {
  return Real(vfs)->xRandomness(Real(vfs), size, out);
}
int Sleep(sqlite3_vfs* vfs, int microseconds) { return Real(vfs)->xSleep(Real(vfs), microseconds); }
int CurrentTime(sqlite3_vfs* vfs, double* out) { return Real(vfs)->xCurrentTime(Real(vfs), out); }
int GetLastError(sqlite3_vfs* vfs, int size, char* out) {
  return Real(vfs)->xGetLastError(Real(vfs), size, out);
}
int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return Real(vfs)->xCurrentTimeInt64(Real(vfs), out);
}

}  // namespace

uint64_t WalSyncsOnThisThread() { return tls_wal_syncs; }

const char* WalBufferVfsName() {
  static sqlite3_vfs vfs;
  static std::once_flag once;
  std::call_once(once, [] {
    sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
    vfs.iVersion = 2;
    vfs.szOsFile = static_cast<int>(std::max(sizeof(WalFile), sizeof(DbFile))) + real->szOsFile;
    vfs.mxPathname = real->mxPathname;
    vfs.zName = "nimbus-wal-buffer";
    vfs.pAppData = real;
    vfs.xOpen = Open;
    vfs.xDelete = Delete;
    vfs.xAccess = Access;
    vfs.xFullPathname = FullPathname;
    vfs.xDlOpen = DlOpen;
    vfs.xDlError = DlError;
    vfs.xDlSym = DlSym;
    vfs.xDlClose = DlClose;
    vfs.xRandomness = Randomness;
    vfs.xSleep = Sleep;
    vfs.xCurrentTime = CurrentTime;
    vfs.xGetLastError = GetLastError;
    vfs.xCurrentTimeInt64 = CurrentTimeInt64;
    sqlite3_vfs_register(&vfs, /*makeDflt=*/0);
  });
  return vfs.zName;
}

}  // namespace nimbus::store
