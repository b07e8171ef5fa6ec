// The repository: how casework stores cases, their timelines, secondary
// indexes, durable timers and the notification outbox.
//
// Every transaction touches exactly one case (a "partition"), so the
// interface fits an embedded engine (RocksDB) and a replicated SQL database
// alike. Record contents are opaque bytes here: the repository never
// interprets a case, an event or a message.
//
// Thread safety: every method may be called concurrently from any thread.
#ifndef CASEWORK_STORAGE_REPOSITORY_H_
#define CASEWORK_STORAGE_REPOSITORY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace casework::storage {

// An entry of a non-unique secondary index: (index, key) -> case id.
// Example: index "state", key "trade_in/PROBLEM_ORDER".
struct IndexEntry {
  std::string index;
  std::string key;
};

// An entry of a unique index: (space, key) -> exactly one case id.
// Example: space "request_id", key the client's request id.
struct UniqueKey {
  std::string space;
  std::string key;
};

// The two durable queues. Both are ordered by due time.
enum class Queue { kTimers, kOutbox };

// The outbox is kept in this many lanes, each ordered by due time on its
// own, so that claiming one lane's items never walks past another's. The
// timers have one.
inline constexpr int kOutboxLanes = 4;

// An item of a queue, identified by (case_id, name). A timer's name is its
// rung ("reminder/1"); an outbox item's name is its dedupe key.
struct QueueItem {
  std::string case_id;
  std::string name;
  absl::Time due;
  std::string payload;
  // Set by Claim: proves that the caller holds the lease. Completion with a
  // token that is no longer current is refused (fencing).
  uint64_t fencing_token = 0;
  // Outbox items: the lane, 0 to kOutboxLanes - 1. Timers: 0.
  int lane = 0;
};

// A copy of the whole store, taken while it serves.
struct BackupInfo {
  int64_t id = 0;  // counts up from 1 in its folder
  absl::Time create_time;
  int64_t size_bytes = 0;  // the files it is made of, shared ones included
  int64_t file_count = 0;
  // CreateBackup answered with the backup an earlier call of the same
  // request_id took.
  bool repeated = false;
  // A file of it is missing or unreadable; only `id` is known.
  bool damaged = false;
  // CreateBackup: how many damaged backups older than this one it deleted.
  int damaged_removed = 0;
};

// One write of WriteRecords: put `value`, or delete when `erase`.
struct RecordWrite {
  std::string space;
  std::string key;
  std::string value;
  bool erase = false;
};

// Everything one change of a case writes, applied all or nothing.
struct CaseMutation {
  std::string case_id;
  // Version the caller read. 0 means "the case must not exist yet".
  int64_t expected_version = 0;
  // The new case record.
  std::string record;
  // Timeline events to append, numbered from first_event_sequence.
  int64_t first_event_sequence = 1;
  std::vector<std::string> events;
  std::vector<IndexEntry> index_add;
  std::vector<IndexEntry> index_remove;
  // Adding a unique key owned by another case fails with ALREADY_EXISTS.
  std::vector<UniqueKey> unique_add;
  std::vector<UniqueKey> unique_remove;
  // Timers to arm; an armed timer of the same name on this case is replaced.
  std::vector<QueueItem> timers_arm;
  // Timer names of this case to cancel (absent names are ignored).
  std::vector<std::string> timers_cancel;
  // A claimed timer this mutation consumes: the commit fails with ABORTED
  // unless the timer is still armed with the same due time and the claim's
  // fencing token is current. This makes a timer's effects exactly-once.
  std::optional<QueueItem> consume_timer;
  // Messages to deliver; the item's name is its dedupe key.
  std::vector<QueueItem> outbox;
  // Attachments to store under this case: attachment id -> bytes.
  std::map<std::string, std::string> attachments_put;
  std::vector<std::string> attachments_delete;
  // Counter deltas (e.g. board counts), applied atomically with the rest.
  std::map<std::string, int64_t> counter_deltas;
  // Records changed together with the case (e.g. a directory entry the
  // case corrected).
  std::vector<RecordWrite> record_writes;
  // Timeline events rewritten in place, by sequence (an erase of personal
  // data keeps the timeline's shape).
  std::map<int64_t, std::string> events_replace;
  // Removes every pending outbox item, dead letter and attachment of the
  // case (before this mutation's own outbox and attachments are added).
  bool purge = false;
};

struct StoredCase {
  std::string case_id;
  int64_t version = 0;
  std::string record;
};

struct StoredEvent {
  int64_t sequence = 0;
  std::string event;
};

// A small versioned key-value record (templates, directories, settings).
struct StoredRecord {
  std::string key;
  int64_t version = 0;
  std::string value;
};

class Repository {
 public:
  virtual ~Repository() = default;

  // Applies `mutation` atomically and durably (synced before returning OK).
  // Returns the new version. Errors:
  //   ABORTED: expected_version is stale, or consume_timer is gone/fenced;
  //   ALREADY_EXISTS: a unique key belongs to another case;
  //   RESOURCE_EXHAUSTED / UNAVAILABLE: the disk refused the write.
  // On any error nothing was written.
  virtual absl::StatusOr<int64_t> Commit(const CaseMutation& mutation) = 0;

  // Commits several mutations with one durable write: each is checked as
  // Commit checks it, and those that pass are written together and synced
  // once. Returns one result per mutation, as Commit would. A mutation that
  // shares its case, a unique key or a record with an earlier one of the
  // call fails with ABORTED (commit it again on its own).
  virtual std::vector<absl::StatusOr<int64_t>> CommitAll(
      const std::vector<CaseMutation>& mutations) = 0;

  // NOT_FOUND if the case does not exist; DATA_LOSS if it is damaged.
  virtual absl::StatusOr<StoredCase> GetCase(const std::string& case_id) = 0;

  // Cases in (index, key), ordered by case id, starting after `after_case_id`
  // (empty: from the start). At most `limit` cases. Cost is proportional to
  // the page, not to the index or the store.
  virtual absl::StatusOr<std::vector<StoredCase>> ListCases(
      const IndexEntry& index, const std::string& after_case_id,
      int limit) = 0;

  // Case id owning a unique key, or NOT_FOUND.
  virtual absl::StatusOr<std::string> LookupUnique(const UniqueKey& key) = 0;

  // Timeline events of a case with sequence > after_sequence, at most limit.
  virtual absl::StatusOr<std::vector<StoredEvent>> ListEvents(
      const std::string& case_id, int64_t after_sequence, int limit) = 0;

  // NOT_FOUND if absent.
  virtual absl::StatusOr<std::string> GetAttachment(
      const std::string& case_id, const std::string& attachment_id) = 0;

  // Current values of all counters whose name starts with `prefix`.
  virtual absl::StatusOr<std::map<std::string, int64_t>> GetCounters(
      const std::string& prefix) = 0;

  // Items of `lane` of `queue` due at or before `now` that nobody holds a
  // lease on, oldest first, at most `limit`. Each returned item is leased
  // to `owner` until now + lease and carries a fresh fencing token. Cost is
  // proportional to the lane's items due, not to all items.
  virtual absl::StatusOr<std::vector<QueueItem>> Claim(
      Queue queue, absl::Time now, int limit, const std::string& owner,
      absl::Duration lease, int lane = 0) = 0;

  // Removes a claimed item. ABORTED if the fencing token is not current.
  virtual absl::Status Complete(Queue queue, const QueueItem& item) = 0;

  // Moves a claimed item to a new due time with a new payload (a retry) and
  // releases the lease. ABORTED if the fencing token is not current.
  virtual absl::Status Reschedule(Queue queue, const QueueItem& item,
                                  absl::Time new_due,
                                  const std::string& new_payload) = 0;

  // Moves a claimed outbox item to the dead letters, with its final payload.
  virtual absl::Status DeadLetter(const QueueItem& item,
                                  const std::string& final_payload) = 0;

  // Dead letters, ordered by (case id, name), after the given position.
  virtual absl::StatusOr<std::vector<QueueItem>> ListDeadLetters(
      const std::string& after_case_id, const std::string& after_name,
      int limit) = 0;

  // Puts a dead letter back in the outbox, due at `due`, in lane 0; when
  // given, `rewrite` may change the item's payload (e.g. to reset an
  // attempt count) and lane first.
  virtual absl::Status RetryDeadLetter(
      const std::string& case_id, const std::string& name, absl::Time due,
      const std::function<void(QueueItem*)>& rewrite = nullptr) = 0;

  // The earliest due time in `lane` of `queue`, or nullopt when it is empty.
  virtual absl::StatusOr<std::optional<absl::Time>> NextDue(Queue queue, int lane = 0) = 0;

  // Number of items in a queue (maintained, not counted).
  virtual absl::StatusOr<int64_t> QueueSize(Queue queue) = 0;

  // Figures of the underlying store for monitoring: "sst_bytes",
  // "memtable_bytes", "block_cache_bytes", "pending_compaction_bytes", "delayed_write_rate",
  // "write_stopped".
  virtual std::map<std::string, int64_t> StoreFigures() = 0;

  // Rewrites the store's files so that deleted and overwritten values are
  // gone from disk too, not just unreachable (after an erase of personal
  // data). Takes time proportional to the store.
  virtual absl::Status Compact() = 0;

  // Copies the store into `folder` while it serves, consistent as of one
  // moment: everything acknowledged before the call is in it. Backups in a
  // folder share their unchanged files, so each copies what changed since
  // the one before. The new backup is read back against its checksums;
  // when a file it shares no longer matches, the backups holding it are
  // deleted and the backup is taken again. Afterwards only the newest
  // `keep` are kept (0: all). One backup is taken at a time; another call
  // waits for it. A non-empty `request_id` is kept with the backup, and a
  // call with the request_id of a backup still kept answers with that one.
  virtual absl::StatusOr<BackupInfo> CreateBackup(const std::string& folder, int keep,
                                                  const std::string& request_id) = 0;
  // The backups in `folder`, oldest first, damaged ones included; none
  // when it does not exist.
  virtual absl::StatusOr<std::vector<BackupInfo>> ListBackups(const std::string& folder) = 0;

  // Versioned records in a namespace ("templates", ...).
  virtual absl::StatusOr<StoredRecord> GetRecord(const std::string& space,
                                                 const std::string& key) = 0;
  // Writes a record if its version is `expected_version` (0: must not
  // exist; -1: any). Returns the new version; ABORTED on a stale version.
  // A record made again after a deletion never takes a version its key
  // had before, so an etag of the deleted one does not match it.
  virtual absl::StatusOr<int64_t> PutRecord(const std::string& space,
                                            const std::string& key,
                                            int64_t expected_version,
                                            const std::string& value) = 0;
  // Deletes a record at version `expected_version` (-1: any). NOT_FOUND
  // when there is none; ABORTED on a stale version.
  virtual absl::Status DeleteRecord(const std::string& space, const std::string& key,
                                    int64_t expected_version) = 0;
  virtual absl::StatusOr<std::vector<StoredRecord>> ListRecords(
      const std::string& space, const std::string& after_key, int limit) = 0;
  // Applies several record writes atomically and durably (no version
  // checks; each written record's version goes up by one, or starts as
  // PutRecord's would).
  virtual absl::Status WriteRecords(const std::vector<RecordWrite>& writes) = 0;
};

// Calls `visit` for every record of `space`, in key order, a page at a
// time; stops at the first error (of the store or of `visit`).
absl::Status ForEachRecord(Repository& repo, const std::string& space,
                           const std::function<absl::Status(const StoredRecord&)>& visit);

}  // namespace casework::storage

#endif  // CASEWORK_STORAGE_REPOSITORY_H_
