#include "storage/rocksdb_repository.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/merge_operator.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/backup_engine.h"
#include "rocksdb/utilities/table_properties_collectors.h"
#include "rocksdb/write_batch.h"
#include "storage/keys.h"
#include "storage/log_file_system.h"

namespace casework::storage {
namespace {

// At least the highest version of any deleted record (see record_floor_).
constexpr char kRecordFloorCounter[] = "records/version_floor";

// Column families, in the order they are opened.
enum Cf {
  kDefault = 0,
  kCases,
  kEvents,
  kIndex,
  kUnique,
  kQueue,
  kQueueRef,
  kAttachments,
  kCounters,
  kRecords,
  kDead,
  kCfCount
};
constexpr std::array<const char*, kCfCount> kCfNames = {
    "default", "cases",    "events",  "index",   "unique", "queue",
    "queue_ref", "attachments", "counters", "records", "dead"};

// The writes of `batch` ordered by column family and key; writes to one
// key keep their order. The memtable inserts a key next to the one it
// inserted before at little cost, so the interleaved keys of many cases
// (case, event, index entries, case after case) cost much less sorted.
// Merges into one key of `summed_family` (whose operator adds 8-byte
// integers) that follow each other become one merge of their sum: a group
// commit of many cases moves each counter once. `families` are the
// handles indexed by column family id. False, with `sorted` untouched, for
// a batch holding anything but puts, deletes and merges.
bool SortByKey(const rocksdb::WriteBatch& batch,
               const std::vector<rocksdb::ColumnFamilyHandle*>& families,
               uint32_t summed_family, rocksdb::WriteBatch* sorted) {
  enum class Op { kPut, kDelete, kMerge };
  struct Write {
    uint32_t family;
    Op op;
    rocksdb::Slice key, value;  // point into `batch`
  };
  struct Collect : rocksdb::WriteBatch::Handler {
    std::vector<Write> writes;
    rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& k, const rocksdb::Slice& v) override {
      writes.push_back({cf, Op::kPut, k, v});
      return rocksdb::Status::OK();
    }
    rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& k) override {
      writes.push_back({cf, Op::kDelete, k, {}});
      return rocksdb::Status::OK();
    }
    rocksdb::Status MergeCF(uint32_t cf, const rocksdb::Slice& k, const rocksdb::Slice& v) override {
      writes.push_back({cf, Op::kMerge, k, v});
      return rocksdb::Status::OK();
    }
    // Not a write, so Iterate would not fail on it: noted instead.
    void LogData(const rocksdb::Slice&) override { log_data = true; }
    bool log_data = false;
  } collect;
  collect.writes.reserve(batch.Count());
  // Every other kind of write fails here: the handler does not take it.
  if (!batch.Iterate(&collect).ok() || collect.log_data) return false;
  std::stable_sort(collect.writes.begin(), collect.writes.end(),
                   [](const Write& a, const Write& b) {
                     if (a.family != b.family) return a.family < b.family;
                     return a.key.compare(b.key) < 0;
                   });
  auto summable = [&](const Write& w) {
    return w.op == Op::kMerge && w.family == summed_family && w.value.size() == 8;
  };
  rocksdb::WriteBatch out(batch.GetDataSize());
  const std::vector<Write>& writes = collect.writes;
  for (size_t i = 0; i < writes.size(); ++i) {
    const Write& w = writes[i];
    rocksdb::ColumnFamilyHandle* family =
        w.family < families.size() ? families[w.family] : nullptr;
    if (family == nullptr) return false;
    rocksdb::Status s;
    if (summable(w)) {
      int64_t sum = DecodeInt64(absl::string_view(w.value.data(), w.value.size()));
      while (i + 1 < writes.size() && summable(writes[i + 1]) && writes[i + 1].key == w.key) {
        ++i;
        sum += DecodeInt64(absl::string_view(writes[i].value.data(), writes[i].value.size()));
      }
      s = out.Merge(family, w.key, EncodeInt64(sum));
    } else {
      s = w.op == Op::kPut      ? out.Put(family, w.key, w.value)
          : w.op == Op::kDelete ? out.Delete(family, w.key)
                                : out.Merge(family, w.key, w.value);
    }
    if (!s.ok()) return false;
  }
  *sorted = std::move(out);
  return true;
}

// Adds signed 64-bit integers stored as 8 little-endian bytes.
class Int64AddOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& key, const rocksdb::Slice* existing,
             const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger* logger) const override {
    int64_t sum = existing == nullptr
                      ? 0
                      : DecodeInt64(absl::string_view(existing->data(), existing->size()));
    sum += DecodeInt64(absl::string_view(value.data(), value.size()));
    *new_value = EncodeInt64(sum);
    return true;
  }
  const char* Name() const override { return "casework.Int64Add"; }
};

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNoSpace() || s.subcode() == rocksdb::Status::kSpaceLimit) {
    return absl::ResourceExhaustedError(msg);
  }
  if (s.IsIOError() || s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) {
    return absl::UnavailableError(msg);
  }
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  return absl::InternalError(msg);
}

// The tag of a queue's references (its items' keys by case and name).
char QueueTag(Queue q) { return q == Queue::kTimers ? 'T' : 'O'; }

// The tag of the keys of a lane's items: the timers 'T'; the outbox lanes
// 'O' (every outbox item before there were lanes), 'P', 'Q' and 'R'.
char LaneTag(Queue q, int lane) {
  return q == Queue::kTimers ? 'T' : static_cast<char>('O' + lane);
}

absl::Status CheckLane(Queue q, int lane) {
  const int lanes = q == Queue::kTimers ? 1 : kOutboxLanes;
  if (lane < 0 || lane >= lanes) return absl::InvalidArgumentError(absl::StrCat("no queue lane ", lane));
  return absl::OkStatus();
}

bool HasNul(absl::string_view s) {
  return s.find('\0') != absl::string_view::npos;
}

struct Lease {
  std::string owner;
  absl::Time until;
  uint64_t token;
};

class RocksDbRepository : public Repository {
 public:
  RocksDbRepository(rocksdb::DB* db,
                    std::vector<rocksdb::ColumnFamilyHandle*> handles,
                    const RocksDbOptions& options, int64_t record_floor)
      : db_(db), cf_(std::move(handles)), path_(options.path),
        min_free_bytes_(options.min_free_bytes), bulk_load_(options.bulk_load),
        record_floor_(record_floor) {
    sync_.sync = !bulk_load_;
    sync_.disableWAL = bulk_load_;
    for (auto* h : cf_) {
      if (cf_by_id_.size() <= h->GetID()) cf_by_id_.resize(h->GetID() + 1, nullptr);
      cf_by_id_[h->GetID()] = h;
    }
  }

  ~RocksDbRepository() override {
    // A bulk load has no write-ahead log to replay its memtables from; any
    // other store would replay it at the next start (about a second after
    // a busy run) unless they are written out now.
    db_->Flush(rocksdb::FlushOptions(), cf_).PermitUncheckedError();
    for (auto* h : cf_) db_->DestroyColumnFamilyHandle(h);
    db_->Close().PermitUncheckedError();
    delete db_;
  }

  absl::StatusOr<int64_t> Commit(const CaseMutation& m) override;
  std::vector<absl::StatusOr<int64_t>> CommitAll(
      const std::vector<CaseMutation>& mutations) override;
  absl::StatusOr<StoredCase> GetCase(const std::string& case_id) override;
  absl::StatusOr<std::vector<StoredCase>> ListCases(
      const IndexEntry& index, const std::string& after_case_id,
      int limit) override;
  absl::StatusOr<std::string> LookupUnique(const UniqueKey& key) override;
  absl::StatusOr<std::vector<StoredEvent>> ListEvents(
      const std::string& case_id, int64_t after_sequence, int limit) override;
  absl::StatusOr<std::string> GetAttachment(
      const std::string& case_id, const std::string& attachment_id) override;
  absl::StatusOr<std::map<std::string, int64_t>> GetCounters(
      const std::string& prefix) override;
  absl::StatusOr<std::vector<QueueItem>> Claim(
      Queue queue, absl::Time now, int limit, const std::string& owner,
      absl::Duration lease, int lane) override;
  absl::Status Complete(Queue queue, const QueueItem& item) override;
  absl::Status Reschedule(Queue queue, const QueueItem& item,
                          absl::Time new_due,
                          const std::string& new_payload) override;
  absl::Status DeadLetter(const QueueItem& item,
                          const std::string& final_payload) override;
  absl::StatusOr<std::vector<QueueItem>> ListDeadLetters(
      const std::string& after_case_id, const std::string& after_name,
      int limit) override;
  absl::Status RetryDeadLetter(
      const std::string& case_id, const std::string& name, absl::Time due,
      const std::function<void(QueueItem*)>& rewrite) override;
  absl::StatusOr<std::optional<absl::Time>> NextDue(Queue queue, int lane) override;
  absl::StatusOr<int64_t> QueueSize(Queue queue) override;
  std::map<std::string, int64_t> StoreFigures() override;
  absl::Status Compact() override;
  absl::StatusOr<BackupInfo> CreateBackup(const std::string& folder, int keep,
                                          const std::string& request_id) override;
  absl::StatusOr<std::vector<BackupInfo>> ListBackups(const std::string& folder) override;
  absl::StatusOr<StoredRecord> GetRecord(const std::string& space,
                                         const std::string& key) override;
  absl::StatusOr<int64_t> PutRecord(const std::string& space,
                                    const std::string& key,
                                    int64_t expected_version,
                                    const std::string& value) override;
  absl::Status DeleteRecord(const std::string& space, const std::string& key,
                            int64_t expected_version) override;
  absl::StatusOr<std::vector<StoredRecord>> ListRecords(
      const std::string& space, const std::string& after_key,
      int limit) override;
  absl::Status WriteRecords(const std::vector<RecordWrite>& writes) override;

 private:
  static constexpr size_t kStripes = 512;

  rocksdb::ColumnFamilyHandle* cf(Cf c) const { return cf_[c]; }

  // Locks the stripes for `keys` in a fixed order (no deadlocks).
  class StripeLock {
   public:
    StripeLock(RocksDbRepository* repo, const std::vector<std::string>& keys) {
      for (const auto& k : keys) {
        stripes_.push_back(std::hash<std::string>{}(k) % kStripes);
      }
      std::sort(stripes_.begin(), stripes_.end());
      stripes_.erase(std::unique(stripes_.begin(), stripes_.end()),
                     stripes_.end());
      for (size_t s : stripes_) repo->stripes_[s].lock();
      repo_ = repo;
    }
    ~StripeLock() {
      for (auto it = stripes_.rbegin(); it != stripes_.rend(); ++it) {
        repo_->stripes_[*it].unlock();
      }
    }

   private:
    RocksDbRepository* repo_;
    std::vector<size_t> stripes_;
  };

  // Reads the queue key a (case, name) item is stored under, if any.
  absl::StatusOr<std::optional<std::string>> FindQueueKey(
      Queue queue, const std::string& case_id, const std::string& name);
  // Checks that `item` is still in the queue and that its token is current.
  absl::StatusOr<std::string> CheckClaim(Queue queue, const QueueItem& item);
  void DropLease(const std::string& queue_key);
  // Adds "remove the item stored under queue_key" to a batch.
  void BatchRemoveQueueItem(rocksdb::WriteBatch* batch, Queue queue,
                            const std::string& queue_key,
                            const std::string& case_id,
                            const std::string& name);
  void BatchPutQueueItem(rocksdb::WriteBatch* batch, Queue queue,
                         const QueueItem& item);
  // Adds "remove the case's outbox items, dead letters and attachments" to
  // a batch. REQUIRES: the case's stripe is locked.
  absl::Status BatchPurge(rocksdb::WriteBatch* batch, const std::string& case_id,
                          std::vector<std::string>* dropped_leases);
  absl::Status Write(rocksdb::WriteBatch* batch, absl::string_view what);
  // Checks what a mutation may contain and lists the keys to lock for it.
  static absl::Status CheckShape(const CaseMutation& m, std::vector<std::string>* lock_keys);
  // Checks a mutation against the store and adds its writes to `batch`;
  // returns the case's new version. REQUIRES: its keys are locked.
  absl::StatusOr<int64_t> Stage(const CaseMutation& m, rocksdb::WriteBatch* batch,
                                std::vector<std::string>* dropped_leases);
  // Adds record writes to a batch and sets `deleted` to the highest
  // version among the records it deletes (0: none). REQUIRES: their
  // stripes are locked.
  absl::Status BatchRecordWrites(rocksdb::WriteBatch* batch,
                                 const std::vector<RecordWrite>& writes, int64_t* deleted);
  // Adds the deletion of a record at `version` to a batch: the stored
  // floor rises to at least `version`. `floor` is RecordFloor(), or more
  // for a batch that deletes other records before. Once the batch is
  // written, the caller raises the floor (RaiseRecordFloor) before it
  // unlocks the record's stripe. REQUIRES: its stripe is locked.
  void BatchRecordDelete(rocksdb::WriteBatch* batch, const std::string& key, int64_t version,
                         int64_t floor);
  void RaiseRecordFloor(int64_t version);
  // The version a record made anew starts above.
  int64_t RecordFloor() const { return record_floor_.load(); }

  // RESOURCE_EXHAUSTED while the file system has less than
  // min_free_bytes_ free.
  absl::Status CheckFreeSpace() const;

  rocksdb::DB* db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cf_;
  std::vector<rocksdb::ColumnFamilyHandle*> cf_by_id_;  // cf_ by RocksDB's id, for SortByKey
  std::string path_;
  int64_t min_free_bytes_;
  bool bulk_load_;
  rocksdb::WriteOptions sync_;
  std::array<std::mutex, kStripes> stripes_;

  // At least the highest version of any record deleted so far; a record
  // made anew starts above it, so an etag read before a deletion never
  // matches the record that takes the deleted one's name. The counter
  // kRecordFloorCounter holds it too, or more.
  std::atomic<int64_t> record_floor_;

  std::mutex backup_mu_;  // one backup at a time

  std::mutex leases_mu_;
  std::unordered_map<std::string, Lease> leases_;  // by queue key
  uint64_t next_token_ = 1;                        // guarded by leases_mu_
};

std::string QueueCounter(Queue q) {
  return q == Queue::kTimers ? "queue/timers" : "queue/outbox";
}

absl::Status RocksDbRepository::CheckFreeSpace() const {
  if (min_free_bytes_ <= 0) return absl::OkStatus();
  struct statvfs fs;
  if (::statvfs(path_.c_str(), &fs) != 0) return absl::OkStatus();  // writes will tell
  const int64_t free_bytes = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
  if (free_bytes >= min_free_bytes_) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "the data folder's disk is nearly full (", free_bytes >> 20, " MiB free, writes need ",
      min_free_bytes_ >> 20, " MiB); reads still work, writes resume once space is freed"));
}

absl::Status RocksDbRepository::Write(rocksdb::WriteBatch* batch,
                                      absl::string_view what) {
  // Refusing early keeps RocksDB from running out of space in the middle
  // of a log write or a flush.
  if (auto st = CheckFreeSpace(); !st.ok()) return st;
  rocksdb::WriteBatch sorted;
  if (batch->Count() > 1 && SortByKey(*batch, cf_by_id_, cf(kCounters)->GetID(), &sorted)) {
    batch = &sorted;
  }
  return FromRocks(db_->Write(sync_, batch), what);
}

absl::StatusOr<std::optional<std::string>> RocksDbRepository::FindQueueKey(
    Queue queue, const std::string& case_id, const std::string& name) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kQueueRef),
                               QueueRefKey(QueueTag(queue), case_id, name),
                               &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "read queue reference");
  return std::optional<std::string>(std::move(value));
}

void RocksDbRepository::BatchRemoveQueueItem(rocksdb::WriteBatch* batch,
                                             Queue queue,
                                             const std::string& queue_key,
                                             const std::string& case_id,
                                             const std::string& name) {
  batch->Delete(cf(kQueue), queue_key);
  batch->Delete(cf(kQueueRef), QueueRefKey(QueueTag(queue), case_id, name));
  batch->Merge(cf(kCounters), QueueCounter(queue), EncodeInt64(-1));
}

void RocksDbRepository::BatchPutQueueItem(rocksdb::WriteBatch* batch,
                                          Queue queue, const QueueItem& item) {
  std::string key = QueueKey(LaneTag(queue, item.lane), item.due, item.case_id, item.name);
  batch->Put(cf(kQueue), key, item.payload);
  batch->Put(cf(kQueueRef), QueueRefKey(QueueTag(queue), item.case_id, item.name),
             key);
  batch->Merge(cf(kCounters), QueueCounter(queue), EncodeInt64(1));
}

absl::Status RocksDbRepository::BatchPurge(rocksdb::WriteBatch* batch,
                                         const std::string& case_id,
                                         std::vector<std::string>* dropped_leases) {
  // Every key family below starts with the case id and a NUL (the outbox
  // references after their queue tag).
  auto each = [&](Cf family, const std::string& prefix,
                  const std::function<void(const rocksdb::Slice&, const rocksdb::Slice&)>& f)
      -> absl::Status {
    const std::string upper = PrefixUpperBound(prefix);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(family)));
    for (it->Seek(prefix); it->Valid(); it->Next()) f(it->key(), it->value());
    return FromRocks(it->status(), absl::StrCat("purge case ", case_id));
  };
  const std::string case_prefix = case_id + std::string(1, '\0');
  absl::Status st = each(kQueueRef, QueueRefKey(QueueTag(Queue::kOutbox), case_id, ""),
                         [&](const rocksdb::Slice& key, const rocksdb::Slice& queue_key) {
                           batch->Delete(cf(kQueue), queue_key);
                           batch->Delete(cf(kQueueRef), key);
                           batch->Merge(cf(kCounters), QueueCounter(Queue::kOutbox),
                                        EncodeInt64(-1));
                           dropped_leases->push_back(queue_key.ToString());
                         });
  if (!st.ok()) return st;
  st = each(kDead, case_prefix, [&](const rocksdb::Slice& key, const rocksdb::Slice&) {
    batch->Delete(cf(kDead), key);
    batch->Merge(cf(kCounters), "queue/dead", EncodeInt64(-1));
  });
  if (!st.ok()) return st;
  return each(kAttachments, case_prefix, [&](const rocksdb::Slice& key, const rocksdb::Slice&) {
    batch->Delete(cf(kAttachments), key);
  });
}

void RocksDbRepository::DropLease(const std::string& queue_key) {
  std::lock_guard<std::mutex> lock(leases_mu_);
  leases_.erase(queue_key);
}

absl::StatusOr<std::string> RocksDbRepository::CheckClaim(
    Queue queue, const QueueItem& item) {
  std::string key = QueueKey(LaneTag(queue, item.lane), item.due, item.case_id, item.name);
  {
    std::lock_guard<std::mutex> lock(leases_mu_);
    auto it = leases_.find(key);
    if (it == leases_.end() || it->second.token != item.fencing_token) {
      return absl::AbortedError(absl::StrCat("claim on ", item.case_id, "/",
                                             item.name, " is no longer held"));
    }
  }
  std::string ignored;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kQueue), key, &ignored);
  if (s.IsNotFound()) {
    DropLease(key);
    return absl::AbortedError(
        absl::StrCat("queue item ", item.case_id, "/", item.name, " is gone"));
  }
  if (!s.ok()) return FromRocks(s, "read queue item");
  return key;
}

absl::Status RocksDbRepository::CheckShape(const CaseMutation& m,
                                           std::vector<std::string>* lock_keys) {
  if (m.case_id.empty() || HasNul(m.case_id)) {
    return absl::InvalidArgumentError("case id must be non-empty, without NUL");
  }
  for (const auto& e : m.index_add) {
    if (HasNul(e.index) || HasNul(e.key)) {
      return absl::InvalidArgumentError("index keys must not contain NUL");
    }
  }
  for (const auto& u : m.unique_add) {
    if (HasNul(u.space) || HasNul(u.key)) {
      return absl::InvalidArgumentError("unique keys must not contain NUL");
    }
  }
  lock_keys->push_back(CaseLockKey(m.case_id));
  for (const auto& u : m.unique_add) lock_keys->push_back(UniqueLockKey(u.space, u.key));
  for (const auto& w : m.record_writes) {
    if (HasNul(w.space) || HasNul(w.key) || w.key.empty()) {
      return absl::InvalidArgumentError("record keys must be non-empty, without NUL");
    }
    if (w.erase) return absl::InvalidArgumentError("a change of a case deletes no records");
    lock_keys->push_back(RecordLockKey(w.space, w.key));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> RocksDbRepository::Commit(const CaseMutation& m) {
  std::vector<std::string> lock_keys;
  if (auto st = CheckShape(m, &lock_keys); !st.ok()) return st;
  StripeLock lock(this, lock_keys);
  rocksdb::WriteBatch batch;
  std::vector<std::string> dropped_leases;
  auto version = Stage(m, &batch, &dropped_leases);
  if (!version.ok()) return version.status();
  if (auto st = Write(&batch, absl::StrCat("commit case ", m.case_id)); !st.ok()) {
    return st;
  }
  for (const auto& k : dropped_leases) DropLease(k);
  return version;
}

std::vector<absl::StatusOr<int64_t>> RocksDbRepository::CommitAll(
    const std::vector<CaseMutation>& mutations) {
  std::vector<absl::StatusOr<int64_t>> out(mutations.size(), absl::StatusOr<int64_t>(0));
  std::vector<std::vector<std::string>> keys(mutations.size());
  std::vector<std::string> all_keys;
  for (size_t i = 0; i < mutations.size(); ++i) {
    if (absl::Status shape = CheckShape(mutations[i], &keys[i]); !shape.ok()) out[i] = shape;
    all_keys.insert(all_keys.end(), keys[i].begin(), keys[i].end());
  }
  StripeLock lock(this, all_keys);
  rocksdb::WriteBatch batch;
  std::vector<std::string> dropped_leases;
  std::set<std::string> taken;
  bool any = false;
  for (size_t i = 0; i < mutations.size(); ++i) {
    if (!out[i].ok()) continue;
    const CaseMutation& m = mutations[i];
    // A mutation sharing a case, unique key or record with an earlier one
    // of this call would be checked against the store without it.
    std::vector<std::string> shared = keys[i];
    for (const auto& u : m.unique_remove) shared.push_back(UniqueLockKey(u.space, u.key));
    if (std::any_of(shared.begin(), shared.end(), [&](const std::string& k) { return taken.count(k); })) {
      out[i] = absl::AbortedError(absl::StrCat("case ", m.case_id, ": another change of this batch comes first"));
      continue;
    }
    std::vector<std::string> leases;
    batch.SetSavePoint();
    out[i] = Stage(m, &batch, &leases);
    if (!out[i].ok()) {
      batch.RollbackToSavePoint().PermitUncheckedError();
      continue;
    }
    taken.insert(shared.begin(), shared.end());
    dropped_leases.insert(dropped_leases.end(), leases.begin(), leases.end());
    any = true;
  }
  if (!any) return out;
  if (auto st = Write(&batch, "commit cases"); !st.ok()) {
    for (auto& r : out) {
      if (r.ok()) r = st;
    }
    return out;
  }
  for (const auto& k : dropped_leases) DropLease(k);
  return out;
}

absl::StatusOr<int64_t> RocksDbRepository::Stage(const CaseMutation& m,
                                                 rocksdb::WriteBatch* batch_out,
                                                 std::vector<std::string>* leases_out) {
  rocksdb::WriteBatch& batch = *batch_out;
  std::vector<std::string>& dropped_leases = *leases_out;
  // Compare-and-swap on the version.
  rocksdb::PinnableSlice current;  // only its version is read: not copied out
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cf(kCases), m.case_id, &current);
  int64_t version = 0;
  if (s.ok()) {
    if (current.size() < 8) {
      return absl::DataLossError(
          absl::StrCat("case ", m.case_id, ": record is damaged"));
    }
    version = DecodeInt64(absl::string_view(current.data(), 8));
  } else if (!s.IsNotFound()) {
    return FromRocks(s, absl::StrCat("read case ", m.case_id));
  }
  if (version != m.expected_version) {
    return absl::AbortedError(absl::StrCat("case ", m.case_id, " is at version ",
                                           version, ", not ",
                                           m.expected_version));
  }

  for (const auto& u : m.unique_add) {
    std::string owner;
    rocksdb::Status us = db_->Get(rocksdb::ReadOptions(), cf(kUnique),
                                  UniqueKeyBytes(u.space, u.key), &owner);
    if (us.ok() && owner != m.case_id) {
      return absl::AlreadyExistsError(
          absl::StrCat(u.space, " is already used by case ", owner));
    }
    if (!us.ok() && !us.IsNotFound()) return FromRocks(us, "read unique key");
  }

  if (m.consume_timer) {
    auto key = CheckClaim(Queue::kTimers, *m.consume_timer);
    if (!key.ok()) return key.status();
    BatchRemoveQueueItem(&batch, Queue::kTimers, *key, m.case_id,
                         m.consume_timer->name);
    dropped_leases.push_back(*key);
  }

  if (m.purge) {
    if (auto st = BatchPurge(&batch, m.case_id, &dropped_leases); !st.ok()) return st;
  }

  const int64_t new_version = version + 1;
  batch.Put(cf(kCases), m.case_id, EncodeInt64(new_version) + m.record);
  for (const auto& [sequence, event] : m.events_replace) {
    if (sequence < 1 || sequence >= m.first_event_sequence) {
      return absl::InvalidArgumentError("only existing events can be replaced");
    }
    batch.Put(cf(kEvents), EventKey(m.case_id, sequence), event);
  }
  for (size_t i = 0; i < m.events.size(); ++i) {
    batch.Put(cf(kEvents),
              EventKey(m.case_id, m.first_event_sequence + static_cast<int64_t>(i)),
              m.events[i]);
  }
  for (const auto& e : m.index_remove) {
    batch.Delete(cf(kIndex), IndexKeyBytes(e.index, e.key, m.case_id));
  }
  for (const auto& e : m.index_add) {
    batch.Put(cf(kIndex), IndexKeyBytes(e.index, e.key, m.case_id), "");
  }
  for (const auto& u : m.unique_remove) {
    batch.Delete(cf(kUnique), UniqueKeyBytes(u.space, u.key));
  }
  for (const auto& u : m.unique_add) {
    batch.Put(cf(kUnique), UniqueKeyBytes(u.space, u.key), m.case_id);
  }

  // Timers: cancel, then arm (arming replaces a timer of the same name).
  auto remove_timer = [&](const std::string& name) -> absl::Status {
    if (m.consume_timer && m.consume_timer->name == name) return absl::OkStatus();
    if (version == 0) return absl::OkStatus();  // a new case has no timers yet
    auto existing = FindQueueKey(Queue::kTimers, m.case_id, name);
    if (!existing.ok()) return existing.status();
    if (existing->has_value()) {
      BatchRemoveQueueItem(&batch, Queue::kTimers, **existing, m.case_id, name);
      dropped_leases.push_back(**existing);
    }
    return absl::OkStatus();
  };
  for (const auto& name : m.timers_cancel) {
    if (auto st = remove_timer(name); !st.ok()) return st;
  }
  for (const auto& t : m.timers_arm) {
    if (t.case_id != m.case_id || HasNul(t.name)) {
      return absl::InvalidArgumentError("timer must belong to the case");
    }
    if (std::find(m.timers_cancel.begin(), m.timers_cancel.end(), t.name) ==
        m.timers_cancel.end()) {
      if (auto st = remove_timer(t.name); !st.ok()) return st;
    }
    BatchPutQueueItem(&batch, Queue::kTimers, t);
  }
  for (const auto& o : m.outbox) {
    if (o.case_id != m.case_id || HasNul(o.name)) {
      return absl::InvalidArgumentError("outbox item must belong to the case");
    }
    if (auto st = CheckLane(Queue::kOutbox, o.lane); !st.ok()) return st;
    BatchPutQueueItem(&batch, Queue::kOutbox, o);
  }
  for (const auto& [id, bytes] : m.attachments_put) {
    batch.Put(cf(kAttachments), AttachmentKey(m.case_id, id), bytes);
  }
  for (const auto& id : m.attachments_delete) {
    batch.Delete(cf(kAttachments), AttachmentKey(m.case_id, id));
  }
  for (const auto& [name, delta] : m.counter_deltas) {
    if (delta != 0) batch.Merge(cf(kCounters), name, EncodeInt64(delta));
  }
  int64_t deleted = 0;  // none: CheckShape refuses deletions
  if (auto st = BatchRecordWrites(&batch, m.record_writes, &deleted); !st.ok()) return st;
  return new_version;
}

absl::StatusOr<StoredCase> RocksDbRepository::GetCase(const std::string& case_id) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kCases), case_id, &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("case ", case_id, " not found"));
  }
  if (!s.ok()) return FromRocks(s, absl::StrCat("read case ", case_id));
  if (value.size() < 8) {
    return absl::DataLossError(absl::StrCat("case ", case_id, ": record is damaged"));
  }
  StoredCase out;
  out.case_id = case_id;
  out.version = DecodeInt64(absl::string_view(value).substr(0, 8));
  out.record = value.substr(8);
  return out;
}

absl::StatusOr<std::vector<StoredCase>> RocksDbRepository::ListCases(
    const IndexEntry& index, const std::string& after_case_id, int limit) {
  std::vector<StoredCase> out;
  if (limit <= 0) return out;
  const std::string prefix = IndexPrefix(index.index, index.key);
  const std::string upper = PrefixUpperBound(prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kIndex)));

  std::string start = prefix + after_case_id;
  it->Seek(start);
  std::vector<std::string> ids;
  for (; it->Valid() && static_cast<int>(ids.size()) < limit; it->Next()) {
    absl::string_view id = absl::string_view(it->key().data(), it->key().size())
                               .substr(prefix.size());
    if (!after_case_id.empty() && id == after_case_id) continue;
    ids.emplace_back(id);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "list index");

  // One batched read: keys that share a file or block look up its filter,
  // index and data block once.
  std::vector<rocksdb::Slice> keys(ids.begin(), ids.end());
  std::vector<rocksdb::PinnableSlice> values(ids.size());
  std::vector<rocksdb::Status> statuses(ids.size());
  db_->MultiGet(rocksdb::ReadOptions(), cf(kCases), keys.size(), keys.data(),
                values.data(), statuses.data());
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    // An index entry always commits with its case; a missing case can only
    // mean damage.
    if (!statuses[i].ok() || values[i].size() < 8) {
      return absl::DataLossError(
          absl::StrCat("case ", ids[i], " is indexed but unreadable"));
    }
    StoredCase& c = out.emplace_back();
    c.case_id = std::move(ids[i]);
    const absl::string_view value(values[i].data(), values[i].size());
    c.version = DecodeInt64(value.substr(0, 8));
    c.record = std::string(value.substr(8));
  }
  return out;
}

absl::StatusOr<std::string> RocksDbRepository::LookupUnique(const UniqueKey& key) {
  std::string owner;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kUnique),
                               UniqueKeyBytes(key.space, key.key), &owner);
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat(key.space, " not found"));
  if (!s.ok()) return FromRocks(s, "read unique key");
  return owner;
}

absl::StatusOr<std::vector<StoredEvent>> RocksDbRepository::ListEvents(
    const std::string& case_id, int64_t after_sequence, int limit) {
  std::vector<StoredEvent> out;
  const std::string prefix = case_id + '\0';
  const std::string upper = PrefixUpperBound(prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kEvents)));
  for (it->Seek(EventKey(case_id, after_sequence + 1));
       it->Valid() && static_cast<int>(out.size()) < limit; it->Next()) {
    StoredEvent e;
    e.sequence = static_cast<int64_t>(
        DecodeBigEndian64(absl::string_view(it->key().data(), it->key().size())
                              .substr(prefix.size())));
    e.event = it->value().ToString();
    out.push_back(std::move(e));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "list events");
  return out;
}

absl::StatusOr<std::string> RocksDbRepository::GetAttachment(
    const std::string& case_id, const std::string& attachment_id) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kAttachments),
                               AttachmentKey(case_id, attachment_id), &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("attachment ", attachment_id,
                                            " of case ", case_id, " not found"));
  }
  if (!s.ok()) return FromRocks(s, "read attachment");
  return value;
}

absl::StatusOr<std::map<std::string, int64_t>> RocksDbRepository::GetCounters(
    const std::string& prefix) {
  std::map<std::string, int64_t> out;
  const std::string upper = PrefixUpperBound(prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  if (!prefix.empty()) ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kCounters)));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    out[it->key().ToString()] = DecodeInt64(
        absl::string_view(it->value().data(), it->value().size()));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read counters");
  return out;
}

absl::StatusOr<std::vector<QueueItem>> RocksDbRepository::Claim(
    Queue queue, absl::Time now, int limit, const std::string& owner,
    absl::Duration lease, int lane) {
  if (auto st = CheckLane(queue, lane); !st.ok()) return st;
  std::vector<QueueItem> out;
  const char tag = LaneTag(queue, lane);
  const std::string lower(1, tag);
  // Everything due at or before `now`: keys below tag + due(now + 1us).
  const std::string upper = QueueKeyPrefix(tag, now + absl::Microseconds(1));
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kQueue)));
  std::lock_guard<std::mutex> lock(leases_mu_);
  for (it->Seek(lower); it->Valid() && static_cast<int>(out.size()) < limit;
       it->Next()) {
    std::string key = it->key().ToString();
    auto held = leases_.find(key);
    if (held != leases_.end() && held->second.until > now) continue;
    QueueItem item;
    if (!ParseQueueKey(key, &item.due, &item.case_id, &item.name)) {
      return absl::DataLossError("damaged queue key");
    }
    item.payload = it->value().ToString();
    item.lane = lane;
    item.fencing_token = next_token_++;
    leases_[key] = Lease{owner, now + lease, item.fencing_token};
    out.push_back(std::move(item));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "claim queue items");
  return out;
}

absl::Status RocksDbRepository::Complete(Queue queue, const QueueItem& item) {
  StripeLock lock(this, {CaseLockKey(item.case_id)});
  auto key = CheckClaim(queue, item);
  if (!key.ok()) return key.status();
  rocksdb::WriteBatch batch;
  BatchRemoveQueueItem(&batch, queue, *key, item.case_id, item.name);
  if (auto st = Write(&batch, "complete queue item"); !st.ok()) return st;
  DropLease(*key);
  return absl::OkStatus();
}

absl::Status RocksDbRepository::Reschedule(Queue queue, const QueueItem& item,
                                           absl::Time new_due,
                                           const std::string& new_payload) {
  StripeLock lock(this, {CaseLockKey(item.case_id)});
  auto key = CheckClaim(queue, item);
  if (!key.ok()) return key.status();
  rocksdb::WriteBatch batch;
  BatchRemoveQueueItem(&batch, queue, *key, item.case_id, item.name);
  QueueItem moved = item;
  moved.due = new_due;
  moved.payload = new_payload;
  BatchPutQueueItem(&batch, queue, moved);
  if (auto st = Write(&batch, "reschedule queue item"); !st.ok()) return st;
  DropLease(*key);
  return absl::OkStatus();
}

absl::Status RocksDbRepository::DeadLetter(const QueueItem& item,
                                           const std::string& final_payload) {
  StripeLock lock(this, {CaseLockKey(item.case_id)});
  auto key = CheckClaim(Queue::kOutbox, item);
  if (!key.ok()) return key.status();
  rocksdb::WriteBatch batch;
  BatchRemoveQueueItem(&batch, Queue::kOutbox, *key, item.case_id, item.name);
  batch.Put(cf(kDead), DeadKey(item.case_id, item.name), final_payload);
  batch.Merge(cf(kCounters), "queue/dead", EncodeInt64(1));
  if (auto st = Write(&batch, "dead-letter outbox item"); !st.ok()) return st;
  DropLease(*key);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<QueueItem>> RocksDbRepository::ListDeadLetters(
    const std::string& after_case_id, const std::string& after_name, int limit) {
  std::vector<QueueItem> out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), cf(kDead)));
  const std::string start =
      after_case_id.empty() ? std::string() : DeadKey(after_case_id, after_name);
  for (it->Seek(start); it->Valid() && static_cast<int>(out.size()) < limit;
       it->Next()) {
    if (!start.empty() && it->key() == start) continue;
    QueueItem item;
    std::string key = it->key().ToString();
    size_t nul = key.find('\0');
    if (nul == std::string::npos) return absl::DataLossError("damaged dead letter key");
    item.case_id = key.substr(0, nul);
    item.name = key.substr(nul + 1);
    item.payload = it->value().ToString();
    out.push_back(std::move(item));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "list dead letters");
  return out;
}

absl::Status RocksDbRepository::RetryDeadLetter(
    const std::string& case_id, const std::string& name, absl::Time due,
    const std::function<void(QueueItem*)>& rewrite) {
  StripeLock lock(this, {CaseLockKey(case_id)});
  std::string payload;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kDead),
                               DeadKey(case_id, name), &payload);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("dead letter ", name, " not found"));
  }
  if (!s.ok()) return FromRocks(s, "read dead letter");
  rocksdb::WriteBatch batch;
  batch.Delete(cf(kDead), DeadKey(case_id, name));
  batch.Merge(cf(kCounters), "queue/dead", EncodeInt64(-1));
  QueueItem item{case_id, name, due, std::move(payload)};
  if (rewrite) rewrite(&item);
  if (auto st = CheckLane(Queue::kOutbox, item.lane); !st.ok()) return st;
  BatchPutQueueItem(&batch, Queue::kOutbox, item);
  return Write(&batch, "retry dead letter");
}

absl::StatusOr<std::optional<absl::Time>> RocksDbRepository::NextDue(Queue queue, int lane) {
  if (auto st = CheckLane(queue, lane); !st.ok()) return st;
  const std::string prefix(1, LaneTag(queue, lane));
  const std::string upper = PrefixUpperBound(prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kQueue)));
  it->Seek(prefix);
  if (!it->status().ok()) return FromRocks(it->status(), "peek queue");
  if (!it->Valid()) return std::optional<absl::Time>();
  QueueItem item;
  if (!ParseQueueKey(it->key().ToString(), &item.due, &item.case_id, &item.name)) {
    return absl::DataLossError("damaged queue key");
  }
  return std::optional<absl::Time>(item.due);
}

absl::Status RocksDbRepository::Compact() {
  // A flush moves the memtables to files, so the write-ahead log holding
  // the old values is no longer needed and is deleted; the compaction then
  // rewrites every file without the deleted and overwritten values.
  rocksdb::FlushOptions flush;
  flush.wait = true;
  if (auto st = FromRocks(db_->Flush(flush, cf_), "flush"); !st.ok()) return st;
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (auto* family : cf_) {
    if (auto st = FromRocks(db_->CompactRange(options, family, nullptr, nullptr), "compact");
        !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

BackupInfo FromRocksBackup(const rocksdb::BackupInfo& b) {
  BackupInfo out;
  out.id = b.backup_id;
  out.create_time = absl::FromUnixSeconds(b.timestamp);
  out.size_bytes = static_cast<int64_t>(b.size);
  out.file_count = b.number_files;
  return out;
}

// The backups in `folder`, through a BackupEngine (which makes the folder
// when missing) or a BackupEngineReadOnly.
template <typename Engine>
absl::StatusOr<std::unique_ptr<Engine>> OpenBackups(const std::string& folder) {
  rocksdb::BackupEngineOptions options(folder);
  options.sync = true;  // a backup that was answered is on disk
  Engine* engine = nullptr;
  rocksdb::IOStatus s = Engine::Open(options, rocksdb::Env::Default(), &engine);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open backups in ", folder));
  return std::unique_ptr<Engine>(engine);
}

// Every backup `engine` knows, oldest first: the good ones in full, and
// the damaged ones, which RocksDB lists apart, by id alone.
std::vector<BackupInfo> AllBackups(const rocksdb::BackupEngineReadOnlyBase& engine) {
  std::vector<rocksdb::BackupInfo> infos;
  engine.GetBackupInfo(&infos);
  std::vector<BackupInfo> out;
  for (const auto& b : infos) out.push_back(FromRocksBackup(b));
  std::vector<rocksdb::BackupID> damaged;
  engine.GetCorruptedBackups(&damaged);
  for (auto id : damaged) {
    BackupInfo b;
    b.id = id;
    b.damaged = true;
    out.push_back(b);
  }
  std::sort(out.begin(), out.end(), [](const BackupInfo& a, const BackupInfo& b) { return a.id < b.id; });
  return out;
}

// Deletes the backups in `engine` with a file that no longer matches its
// checksum, and returns how many.
absl::StatusOr<int> DeleteSpoiledBackups(rocksdb::BackupEngine& engine) {
  std::vector<rocksdb::BackupInfo> infos;
  engine.GetBackupInfo(&infos);
  int spoiled = 0;
  for (const auto& b : infos) {
    rocksdb::IOStatus checked = engine.VerifyBackup(b.backup_id, /*verify_with_checksum=*/true);
    if (checked.ok()) continue;
    if (!checked.IsCorruption()) return FromRocks(checked, "check backup");
    if (auto st = FromRocks(engine.DeleteBackup(b.backup_id), "delete a spoiled backup"); !st.ok()) return st;
    ++spoiled;
  }
  return spoiled;
}

absl::StatusOr<BackupInfo> RocksDbRepository::CreateBackup(const std::string& folder, int keep,
                                                           const std::string& request_id) {
  std::lock_guard<std::mutex> lock(backup_mu_);
  auto engine = OpenBackups<rocksdb::BackupEngine>(folder);
  if (!engine.ok()) return engine.status();
  // The request_id travels in the backup's own metadata, so it is
  // forgotten with the backup.
  const std::string metadata = request_id.empty() ? "" : absl::StrCat("request_id=", request_id);
  if (!metadata.empty()) {
    std::vector<rocksdb::BackupInfo> infos;
    (*engine)->GetBackupInfo(&infos);
    for (const auto& b : infos) {
      if (b.app_metadata != metadata) continue;
      BackupInfo earlier = FromRocksBackup(b);
      earlier.repeated = true;
      return earlier;
    }
  }
  if (auto st = CheckFreeSpace(); !st.ok()) return st;
  // The live write-ahead log is copied with the table files, so nothing
  // acknowledged is left out and the memtables need no flush.
  rocksdb::BackupID id = 0;
  int removed = 0;
  for (int attempt = 1;; ++attempt) {
    if (auto st = FromRocks(
            (*engine)->CreateNewBackupWithMetadata(rocksdb::CreateBackupOptions(), db_, metadata, &id),
            "back up");
        !st.ok()) {
      return st;
    }
    // Every file there, read back against its checksum, before older
    // backups are let go. A table file the new backup shares with older
    // ones is not copied again, so one that changed on disk since shows
    // here. The backups holding it could not be restored; they go, the new
    // one too, and the backup taken again copies the file afresh.
    rocksdb::IOStatus checked = (*engine)->VerifyBackup(id, /*verify_with_checksum=*/true);
    if (checked.ok()) break;
    if (!checked.IsCorruption()) return FromRocks(checked, "check backup");
    if (auto st = FromRocks((*engine)->DeleteBackup(id), "delete a spoiled backup"); !st.ok()) return st;
    auto spoiled = DeleteSpoiledBackups(**engine);  // the older ones
    if (!spoiled.ok()) return spoiled.status();
    removed += *spoiled;
    if (attempt == 2) {
      return absl::DataLossError(absl::StrCat("a backup taken twice did not read back as written (",
                                              checked.ToString(), "); check the disk of ", folder));
    }
  }
  if (keep > 0) {
    if (auto st = FromRocks((*engine)->PurgeOldBackups(keep), "delete old backups"); !st.ok()) return st;
  }
  // A damaged backup is never restored; with a good one taken after it,
  // it only holds disk space (rotation counts good backups alone).
  std::vector<rocksdb::BackupID> damaged;
  (*engine)->GetCorruptedBackups(&damaged);
  for (auto old : damaged) {
    if (old >= id) continue;
    if (auto st = FromRocks((*engine)->DeleteBackup(old), "delete a damaged backup"); !st.ok()) return st;
    ++removed;
  }
  rocksdb::BackupInfo info;
  if (auto st = FromRocks((*engine)->GetBackupInfo(id, &info), "read backup"); !st.ok()) return st;
  BackupInfo taken = FromRocksBackup(info);
  taken.damaged_removed = removed;
  return taken;
}

absl::StatusOr<std::vector<BackupInfo>> RocksDbRepository::ListBackups(const std::string& folder) {
  std::error_code ec;
  if (!std::filesystem::exists(folder, ec)) return std::vector<BackupInfo>{};
  auto engine = OpenBackups<rocksdb::BackupEngineReadOnly>(folder);
  if (!engine.ok()) return engine.status();
  return AllBackups(**engine);
}

std::map<std::string, int64_t> RocksDbRepository::StoreFigures() {
  auto sum = [&](const std::string& property) {
    uint64_t total = 0;
    for (auto* h : cf_) {
      uint64_t v = 0;
      if (db_->GetIntProperty(h, property, &v)) total += v;
    }
    return static_cast<int64_t>(total);
  };
  uint64_t delayed = 0, stopped = 0, cache = 0;
  db_->GetIntProperty(rocksdb::DB::Properties::kActualDelayedWriteRate, &delayed);
  db_->GetIntProperty(rocksdb::DB::Properties::kBlockCacheUsage, &cache);  // one shared cache
  db_->GetIntProperty(rocksdb::DB::Properties::kIsWriteStopped, &stopped);
  return {{"sst_bytes", sum(rocksdb::DB::Properties::kTotalSstFilesSize)},
          {"memtable_bytes", sum(rocksdb::DB::Properties::kCurSizeAllMemTables)},
          {"pending_compaction_bytes", sum(rocksdb::DB::Properties::kEstimatePendingCompactionBytes)},
          {"block_cache_bytes", static_cast<int64_t>(cache)},
          {"delayed_write_rate", static_cast<int64_t>(delayed)},
          {"write_stopped", static_cast<int64_t>(stopped)}};
}

absl::StatusOr<int64_t> RocksDbRepository::QueueSize(Queue queue) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kCounters),
                               QueueCounter(queue), &value);
  if (s.IsNotFound()) return 0;
  if (!s.ok()) return FromRocks(s, "read queue size");
  return DecodeInt64(value);
}

absl::StatusOr<StoredRecord> RocksDbRepository::GetRecord(const std::string& space,
                                                          const std::string& key) {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cf(kRecords), RecordKey(space, key), &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat(space, "/", key, " not found"));
  }
  if (!s.ok()) return FromRocks(s, "read record");
  if (value.size() < 8) return absl::DataLossError(absl::StrCat(space, "/", key, " is damaged"));
  return StoredRecord{key, DecodeInt64(absl::string_view(value).substr(0, 8)),
                      value.substr(8)};
}

absl::StatusOr<int64_t> RocksDbRepository::PutRecord(const std::string& space,
                                                     const std::string& key,
                                                     int64_t expected_version,
                                                     const std::string& value) {
  if (HasNul(space) || HasNul(key) || key.empty()) {
    return absl::InvalidArgumentError("record keys must be non-empty, without NUL");
  }
  StripeLock lock(this, {RecordLockKey(space, key)});
  int64_t version = 0;  // none
  auto current = GetRecord(space, key);
  if (current.ok()) {
    version = current->version;
  } else if (!absl::IsNotFound(current.status())) {
    return current.status();
  }
  if (expected_version >= 0 && expected_version != version) {
    if (version == 0) return absl::AbortedError(absl::StrCat(space, "/", key, " does not exist"));
    return absl::AbortedError(absl::StrCat(space, "/", key, " is at version ",
                                           version, ", not ", expected_version));
  }
  const int64_t next = (version == 0 ? RecordFloor() : version) + 1;
  rocksdb::WriteBatch batch;
  batch.Put(cf(kRecords), RecordKey(space, key), EncodeInt64(next) + value);
  if (auto st = Write(&batch, "write record"); !st.ok()) return st;
  return next;
}

absl::Status RocksDbRepository::DeleteRecord(const std::string& space, const std::string& key,
                                             int64_t expected_version) {
  if (HasNul(space) || HasNul(key) || key.empty()) {
    return absl::InvalidArgumentError("record keys must be non-empty, without NUL");
  }
  StripeLock lock(this, {RecordLockKey(space, key)});
  auto current = GetRecord(space, key);
  if (!current.ok()) return current.status();
  if (expected_version >= 0 && expected_version != current->version) {
    return absl::AbortedError(absl::StrCat(space, "/", key, " is at version ", current->version, ", not ",
                                           expected_version));
  }
  rocksdb::WriteBatch batch;
  BatchRecordDelete(&batch, RecordKey(space, key), current->version, RecordFloor());
  if (auto st = Write(&batch, "delete record"); !st.ok()) return st;
  RaiseRecordFloor(current->version);
  return absl::OkStatus();
}

void RocksDbRepository::BatchRecordDelete(rocksdb::WriteBatch* batch, const std::string& key,
                                          int64_t version, int64_t floor) {
  batch->Delete(cf(kRecords), key);
  // The stored counter is never below the floor in memory, so adding what
  // `version` exceeds that by keeps it at or above `version`, whatever
  // order concurrent deletions land in (their additions commute).
  const int64_t above = version - floor;
  if (above > 0) batch->Merge(cf(kCounters), kRecordFloorCounter, EncodeInt64(above));
}

void RocksDbRepository::RaiseRecordFloor(int64_t version) {
  int64_t floor = record_floor_.load();
  while (floor < version && !record_floor_.compare_exchange_weak(floor, version)) {
  }
}

absl::StatusOr<std::vector<StoredRecord>> RocksDbRepository::ListRecords(
    const std::string& space, const std::string& after_key, int limit) {
  std::vector<StoredRecord> out;
  const std::string prefix = space + '\0';
  const std::string upper = PrefixUpperBound(prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kRecords)));
  for (it->Seek(prefix + after_key);
       it->Valid() && static_cast<int>(out.size()) < limit; it->Next()) {
    std::string key = it->key().ToString().substr(prefix.size());
    if (!after_key.empty() && key == after_key) continue;
    std::string value = it->value().ToString();
    if (value.size() < 8) return absl::DataLossError(absl::StrCat(space, "/", key, " is damaged"));
    out.push_back(StoredRecord{key, DecodeInt64(absl::string_view(value).substr(0, 8)),
                               value.substr(8)});
  }
  if (!it->status().ok()) return FromRocks(it->status(), "list records");
  return out;
}

absl::Status RocksDbRepository::BatchRecordWrites(rocksdb::WriteBatch* batch,
                                                 const std::vector<RecordWrite>& writes,
                                                 int64_t* deleted) {
  *deleted = 0;
  std::map<std::string, int64_t> versions;  // within this batch; 0: none
  for (const auto& w : writes) {
    const std::string key = RecordKey(w.space, w.key);
    auto seen = versions.find(key);
    int64_t version = 0;
    if (seen != versions.end()) {
      version = seen->second;
    } else {
      auto current = GetRecord(w.space, w.key);
      if (current.ok()) {
        version = current->version;
      } else if (!absl::IsNotFound(current.status())) {
        return current.status();
      }
    }
    if (w.erase) {
      if (version > 0) BatchRecordDelete(batch, key, version, std::max(RecordFloor(), *deleted));
      *deleted = std::max(*deleted, version);
      versions[key] = 0;
      continue;
    }
    // Made anew, perhaps after its own deletion earlier in this batch.
    const int64_t next = (version == 0 ? std::max(RecordFloor(), *deleted) : version) + 1;
    versions[key] = next;
    batch->Put(cf(kRecords), key, EncodeInt64(next) + w.value);
  }
  return absl::OkStatus();
}

absl::Status RocksDbRepository::WriteRecords(const std::vector<RecordWrite>& writes) {
  std::vector<std::string> lock_keys;
  for (const auto& w : writes) {
    if (HasNul(w.space) || HasNul(w.key) || w.key.empty()) {
      return absl::InvalidArgumentError("record keys must be non-empty, without NUL");
    }
    lock_keys.push_back(RecordLockKey(w.space, w.key));
  }
  StripeLock lock(this, lock_keys);
  rocksdb::WriteBatch batch;
  int64_t deleted = 0;
  if (auto st = BatchRecordWrites(&batch, writes, &deleted); !st.ok()) return st;
  if (auto st = Write(&batch, "write records"); !st.ok()) return st;
  RaiseRecordFloor(deleted);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Repository>> OpenRocksDbRepository(
    const RocksDbOptions& options) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.max_open_files = 512;
  db_options.keep_log_file_num = 5;
  // The default level depends on how librocksdb was compiled: Debian's
  // build (no NDEBUG) would log every file deletion at DEBUG.
  db_options.info_log_level = rocksdb::InfoLogLevel::INFO_LEVEL;
  // Acknowledged writes are synced through the WAL; never buffer it.
  db_options.manual_wal_flush = false;
  // The log is written over zeros laid down ahead of it, so that most of
  // its syncs write data alone (storage/log_file_system.h).
  db_options.env = LogAheadEnv();
  db_options.paranoid_checks = true;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  // Most point reads of a write look for keys that are not there (a new
  // case, a free unique key, a timer not armed yet): bloom filters answer
  // those without reading data blocks.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const char* name : kCfNames) {
    rocksdb::ColumnFamilyOptions cf_options;
    cf_options.OptimizeLevelStyleCompaction(32 << 20);
    cf_options.write_buffer_size = 16 << 20;
    // Each full memtable is written out at once rather than waiting for a
    // second (OptimizeLevelStyleCompaction's choice): after a crash, less
    // of the log is replayed before the first request is served.
    cf_options.min_write_buffer_number_to_merge = 1;
    // The same for the memtable, where every fresh key is looked up first.
    cf_options.memtable_whole_key_filtering = true;
    cf_options.memtable_prefix_bloom_size_ratio = 0.05;
    cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    if (std::string(name) == "counters") {
      cf_options.merge_operator = std::make_shared<Int64AddOperator>();
      // A hot counter (the timer queue's size during a burst) would
      // otherwise gather thousands of operands in the memtable that every
      // read adds up again; past this many, a write folds them into a value.
      cf_options.max_successive_merges = 64;
    }
    if (std::string(name) == "queue") {
      // Queues delete from their head: compact files full of tombstones so
      // that a seek to the head stays cheap.
      cf_options.table_properties_collector_factories.push_back(
          rocksdb::NewCompactOnDeletionCollectorFactory(4096, 1024));
    }
    descriptors.emplace_back(name, cf_options);
  }
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, descriptors,
                                        &handles, &db);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data folder ", options.path, " is in use by another process: ",
          s.ToString()));
    }
    return FromRocks(s, absl::StrCat("open ", options.path));
  }
  std::string floor;
  s = db->Get(rocksdb::ReadOptions(), handles[kCounters], kRecordFloorCounter, &floor);
  if (!s.ok() && !s.IsNotFound()) {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
    return FromRocks(s, absl::StrCat("read the record counter of ", options.path));
  }
  return std::unique_ptr<Repository>(
      new RocksDbRepository(db, std::move(handles), options, DecodeInt64(floor)));
}

absl::StatusOr<BackupInfo> RestoreRocksDbBackup(const std::string& backup_folder, int64_t id,
                                                const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(backup_folder, ec)) {
    return absl::NotFoundError(absl::StrCat("no backups in ", backup_folder));
  }
  auto engine = OpenBackups<rocksdb::BackupEngineReadOnly>(backup_folder);
  if (!engine.ok()) return engine.status();
  // "latest" is the newest backup taken, damaged or not.
  const std::vector<BackupInfo> all = AllBackups(**engine);
  if (all.empty()) return absl::NotFoundError(absl::StrCat("no backups in ", backup_folder));
  const BackupInfo* chosen = id == 0 ? &all.back() : nullptr;
  for (const auto& b : all) {
    if (b.id == id) chosen = &b;
  }
  if (chosen == nullptr) return absl::NotFoundError(absl::StrCat("no backup ", id, " in ", backup_folder));
  if (chosen->damaged) {
    return absl::DataLossError(
        absl::StrCat("backup ", chosen->id, " is damaged (a file of it is missing or unreadable); restore another"));
  }
  // Read whole against its checksums before the store is moved aside. A
  // missing file reads as NOT_FOUND to RocksDB, but the backup is there.
  if (auto st = FromRocks((*engine)->VerifyBackup(chosen->id, /*verify_with_checksum=*/true), "check");
      !st.ok()) {
    return absl::DataLossError(absl::StrCat("backup ", chosen->id, " failed its check: ", st.message()));
  }

  std::string aside;
  if (std::filesystem::exists(path, ec)) {
    // Refused while a server has the store open; its lock is held until it
    // closes the store.
    rocksdb::FileLock* held = nullptr;
    rocksdb::Status locked = rocksdb::Env::Default()->LockFile(path + "/LOCK", &held);
    if (!locked.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the store at ", path, " is in use; stop caseworkd first: ", locked.ToString()));
    }
    rocksdb::Env::Default()->UnlockFile(held);
    aside = absl::StrCat(path, ".replaced-", absl::FormatTime("%Y%m%dT%H%M%S", absl::Now(), absl::UTCTimeZone()));
    std::filesystem::rename(path, aside, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("cannot move ", path, " aside: ", ec.message()));
  }
  if (auto st = FromRocks((*engine)->RestoreDBFromBackup(chosen->id, path, path), "restore"); !st.ok()) {
    if (aside.empty()) return st;
    return absl::Status(st.code(), absl::StrCat(st.message(), "; the store it was to replace is in ", aside));
  }
  // A restore run as root for a server that runs as its own user: the
  // restored files take the owner of the folder that holds the store.
  struct stat holder;
  const std::string parent = std::filesystem::path(path).parent_path().string();
  if (::geteuid() == 0 && ::stat(parent.empty() ? "." : parent.c_str(), &holder) == 0) {
    bool owned = ::lchown(path.c_str(), holder.st_uid, holder.st_gid) == 0;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(path, ec)) {
      owned = owned && ::lchown(entry.path().c_str(), holder.st_uid, holder.st_gid) == 0;
    }
    if (!owned || ec) {
      return absl::UnavailableError(absl::StrCat("restored into ", path, " but could not give it the owner of ",
                                                 parent, ": ", ec ? ec.message() : std::strerror(errno)));
    }
  }
  return *chosen;
}

}  // namespace casework::storage
