// The file system the store runs RocksDB on: the default one, except that
// the write-ahead log is written over zeros laid down ahead of it.
//
// Every acknowledged write ends in an fdatasync of the log. When the write
// made the file longer, that sync must also write the file's inode (its
// size), a second I/O it waits for; when the write landed inside the file,
// it need not. So a log file is extended with zeros a chunk at a time, and
// RocksDB's appends overwrite them: one sync in a chunk writes the inode,
// the others write the data alone.
//
// RocksDB's log reader skips zero-filled space (its own block padding is
// zeros), so a log cut short by a crash reads as before: the records
// written, then zeros. A log closed in the usual way is cut back to its
// records, and while it is open the file system reports its records'
// length as its size, so that a backup copies the records alone.
#ifndef CASEWORK_STORAGE_LOG_FILE_SYSTEM_H_
#define CASEWORK_STORAGE_LOG_FILE_SYSTEM_H_

#include <cstddef>

#include "rocksdb/env.h"

namespace casework::storage {

// Bytes of zeros a log file is extended by at a time.
inline constexpr size_t kLogZeroChunk = 256 << 10;

// The process's one Env with that file system; it lives as long as the
// process, like rocksdb::Env::Default().
rocksdb::Env* LogAheadEnv();

}  // namespace casework::storage

#endif  // CASEWORK_STORAGE_LOG_FILE_SYSTEM_H_
