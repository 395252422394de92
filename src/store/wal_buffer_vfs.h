// A SQLite VFS that gathers the writes of a commit to the write-ahead log into one.
//
// SQLite appends each page of a commit to the WAL with two writes (a 24-byte frame header,
// then the page), so a commit of 8 pages costs 16 pwrite calls; on a virtual machine that
// is ~30 µs per commit against ~4 µs for one write of the same bytes. This VFS wraps the
// default one: writes to a WAL file collect in memory and reach the file in one write when
// the frame that ends a commit (its header's commit field is non-zero) has been added,
// and before anything that reads, sizes, syncs, truncates or closes the file. Other
// connections learn of a commit only from the WAL index, which SQLite updates after the
// commit's frames are written, so they never read a frame that is still in memory. The
// database file itself and every other file are the default VFS's, untouched.
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
