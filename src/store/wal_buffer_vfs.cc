#include "store/wal_buffer_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace nimbus::store {
namespace {

constexpr int kFrameHeaderBytes = 24;     // WAL frame header (SQLite's file format)
constexpr size_t kMaxBuffered = 4 << 20;  // a larger commit goes out in pieces of this size
// The default VFS writes at most 128 KiB - 1 bytes per call (it never needs more than a page).
constexpr size_t kWriteChunk = 64 << 10;

thread_local uint64_t tls_wal_syncs = 0;  // WalSyncsOnThisThread()

// A WAL file: the wrapped VFS's file follows this struct in the same allocation.
struct WalFile {
  sqlite3_file base;  // first: SQLite sees this
  sqlite3_file* real;
  char* buffer;  // malloc'd; the bytes of [offset, offset + size)
  size_t size;
  size_t capacity;
  sqlite3_int64 offset;
  bool commit_frame;  // the last write was the header of a commit's final frame
};

sqlite3_vfs* Real(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }
WalFile* Wal(sqlite3_file* file) { return reinterpret_cast<WalFile*>(file); }
sqlite3_file* RealOf(sqlite3_file* file) { return Wal(file)->real; }

int Flush(WalFile* f) {
  int rc = SQLITE_OK;
  for (size_t done = 0; done < f->size && rc == SQLITE_OK; done += kWriteChunk) {
    const size_t n = std::min(kWriteChunk, f->size - done);
    rc = f->real->pMethods->xWrite(f->real, f->buffer + done, static_cast<int>(n),
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
    return f->real->pMethods->xWrite(f->real, data, amount, offset);
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
  const int closed = f->real->pMethods->xClose(f->real);
  return flushed != SQLITE_OK ? flushed : closed;
}

int WalRead(sqlite3_file* file, void* data, int amount, sqlite3_int64 offset) {
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  return RealOf(file)->pMethods->xRead(RealOf(file), data, amount, offset);
}

int WalTruncate(sqlite3_file* file, sqlite3_int64 size) {
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  return RealOf(file)->pMethods->xTruncate(RealOf(file), size);
}

int WalSync(sqlite3_file* file, int flags) {
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  ++tls_wal_syncs;
  return RealOf(file)->pMethods->xSync(RealOf(file), flags);
}

int WalFileSize(sqlite3_file* file, sqlite3_int64* size) {
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  return RealOf(file)->pMethods->xFileSize(RealOf(file), size);
}

int WalFileControl(sqlite3_file* file, int op, void* arg) {
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  return RealOf(file)->pMethods->xFileControl(RealOf(file), op, arg);
}

// The rest pass straight through.
int WalLock(sqlite3_file* file, int lock) {
  return RealOf(file)->pMethods->xLock(RealOf(file), lock);
}
int WalUnlock(sqlite3_file* file, int lock) {
  return RealOf(file)->pMethods->xUnlock(RealOf(file), lock);
}
int WalCheckReservedLock(sqlite3_file* file, int* out) {
  return RealOf(file)->pMethods->xCheckReservedLock(RealOf(file), out);
}
int WalSectorSize(sqlite3_file* file) { return RealOf(file)->pMethods->xSectorSize(RealOf(file)); }
int WalDeviceCharacteristics(sqlite3_file* file) {
  return RealOf(file)->pMethods->xDeviceCharacteristics(RealOf(file));
}
int WalShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  return RealOf(file)->pMethods->xShmMap(RealOf(file), region, size, extend, out);
}
int WalShmLock(sqlite3_file* file, int offset, int n, int flags) {
  return RealOf(file)->pMethods->xShmLock(RealOf(file), offset, n, flags);
}
void WalShmBarrier(sqlite3_file* file) { RealOf(file)->pMethods->xShmBarrier(RealOf(file)); }
int WalShmUnmap(sqlite3_file* file, int delete_flag) {
  return RealOf(file)->pMethods->xShmUnmap(RealOf(file), delete_flag);
}
int WalFetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  if (int rc = Flush(Wal(file)); rc != SQLITE_OK) return rc;
  return RealOf(file)->pMethods->xFetch(RealOf(file), offset, amount, out);
}
int WalUnfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  return RealOf(file)->pMethods->xUnfetch(RealOf(file), offset, page);
}

const sqlite3_io_methods kWalMethods = {
    3,
    WalClose,
    WalRead,
    WalWrite,
    WalTruncate,
    WalSync,
    WalFileSize,
    WalLock,
    WalUnlock,
    WalCheckReservedLock,
    WalFileControl,
    WalSectorSize,
    WalDeviceCharacteristics,
    WalShmMap,
    WalShmLock,
    WalShmBarrier,
    WalShmUnmap,
    WalFetch,
    WalUnfetch,
};

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  sqlite3_vfs* real = Real(vfs);
  if ((flags & SQLITE_OPEN_WAL) == 0) {
    // Every other file is the default VFS's own, in the space SQLite allocated.
    return real->xOpen(real, name, file, flags, out_flags);
  }
  WalFile* f = Wal(file);
  std::memset(f, 0, sizeof(WalFile));
  f->real = reinterpret_cast<sqlite3_file*>(f + 1);
  const int rc = real->xOpen(real, name, f->real, flags, out_flags);
  // SQLite calls xClose only on a file whose pMethods is set.
  if (rc == SQLITE_OK && f->real->pMethods != nullptr) f->base.pMethods = &kWalMethods;
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
    vfs.szOsFile = static_cast<int>(sizeof(WalFile)) + real->szOsFile;
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
