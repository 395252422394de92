// A SQLite VFS that gathers the writes of a commit to the write-ahead log into one.
//
// SQLite appends each page of a commit to the WAL with two writes (a 24-byte frame header,
// then the page), so a commit of 8 pages costs 16 pwrite calls; on a virtual machine that
// is ~30 µs per commit against ~4 µs for one write of the same bytes. This VFS wraps the
// default one: writes to a WAL file collect in memory and reach the file in one write when
// the frame that ends a commit (its header's commit field is non-zero) has been added,
// and before anything that reads, sizes, syncs, truncates or closes the file. Other
// connections learn of a commit only from the WAL index, which SQLite updates after the
// commit's frames are written, so they never read a frame that is still in memory.
//
// It also keeps the WAL index's locks in this process. The default VFS takes and drops an
// fcntl lock on the -shm file for each of them, six system calls per write transaction
// (a tenth of a small PUT's time in the store). Here the connections of this process lock
// a table in memory instead, with the default VFS's semantics, while the process holds
// open-file-description write locks on all of the -shm file's lock bytes for as long as it
// has the database open: SQLite in any other process (the sqlite3 shell included) then
// gets SQLITE_BUSY for any read or write. A process that finds another already in the
// database (one of those bytes locked) uses the default VFS's locks instead, as before.
// The database file's own reads and writes, and every file other than the WAL, are the
// default VFS's, untouched.
#pragma once

#include <cstdint>

namespace nimbus::store {

// Registers the VFS on first use (not as the default) and returns its name, for
// sqlite3_open_v2.
const char* WalBufferVfsName();

// How many times this thread has synced a WAL file through the VFS: lets a test see that a
// commit reached stable storage (a commit syncs on the thread that makes it).
uint64_t WalSyncsOnThisThread();

}  // namespace nimbus::store
