// The embedded default Repository, on RocksDB.
#ifndef CASEWORK_STORAGE_ROCKSDB_REPOSITORY_H_
#define CASEWORK_STORAGE_ROCKSDB_REPOSITORY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "storage/repository.h"

namespace casework::storage {

struct RocksDbOptions {
  // Folder of the database; created if missing.
  std::string path;
  // Block cache for reads.
  size_t block_cache_bytes = 64 << 20;
  // Writes are refused (RESOURCE_EXHAUSTED) while the folder's file system
  // has less free space than this, so that the store never runs out in the
  // middle of a log write or a flush. 0 turns the check off.
  int64_t min_free_bytes = 0;
  // For the benchmark loader only: writes go to the memtables without the
  // write-ahead log or a sync, and everything is flushed to table files when
  // the store closes. A crash during a bulk load loses the load.
  bool bulk_load = false;
};

// Opens (or creates) the store. Every acknowledged write is synced to the
// write-ahead log; concurrent writers share one fsync (group commit). Only
// one process may open a folder at a time (FAILED_PRECONDITION otherwise),
// which is what makes in-memory claim leases sufficient for fencing.
// Closing happens when the returned object is destroyed.
absl::StatusOr<std::unique_ptr<Repository>> OpenRocksDbRepository(
    const RocksDbOptions& options);

// Puts backup `id` of `backup_folder` (0: the newest) in place of the
// store at `path`, which no process may have open (FAILED_PRECONDITION).
// A store already at `path` is kept, renamed to `path` + ".replaced-" and
// the time. A damaged backup, or one whose files fail their checksums, is
// refused (DATA_LOSS) before anything moves. Returns the backup restored.
absl::StatusOr<BackupInfo> RestoreRocksDbBackup(const std::string& backup_folder, int64_t id,
                                                const std::string& path);

}  // namespace casework::storage

#endif  // CASEWORK_STORAGE_ROCKSDB_REPOSITORY_H_
