#include "storage/rocksdb_repository.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/merge_operator.h"
#include "rocksdb/perf_context.h"
#include "rocksdb/perf_level.h"
#include "storage/keys.h"
#include "storage/log_file_system.h"
#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"

namespace casework::storage {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1767225600);  // 2026-01-01

class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    repo_.reset();
    auto repo = OpenRocksDbRepository({dir_.path() + "/db"});
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = *std::move(repo);
  }

  CaseMutation NewCase(const std::string& id, const std::string& state) {
    CaseMutation m;
    m.case_id = id;
    m.expected_version = 0;
    m.record = "record-of-" + id;
    m.events = {"created"};
    m.index_add = {{"state", state}};
    m.counter_deltas["board/" + state] = 1;
    return m;
  }

  // The second version of a case created at version 1, with one event.
  static CaseMutation Update(const std::string& id, const std::string& record,
                             const std::string& event) {
    CaseMutation m;
    m.case_id = id;
    m.expected_version = 1;
    m.record = record;
    m.first_event_sequence = 2;
    m.events = {event};
    return m;
  }

  // The change that fires a claimed timer of a case created at version 1.
  static CaseMutation FireReminder(const QueueItem& claimed) {
    CaseMutation fire = Update(claimed.case_id, "fired", "reminder sent");
    fire.consume_timer = claimed;
    return fire;
  }

  testing::TempDir dir_;
  std::unique_ptr<Repository> repo_;
};

TEST_F(RepositoryTest, CommitThenGetReturnsRecordAndVersion) {
  ASSERT_EQ(*repo_->Commit(NewCase("c1", "OPEN")), 1);
  auto got = repo_->GetCase("c1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->record, "record-of-c1");
  EXPECT_TRUE(absl::IsNotFound(repo_->GetCase("nope").status()));
}

TEST_F(RepositoryTest, StaleVersionIsAbortedAndWritesNothing) {
  ASSERT_TRUE(repo_->Commit(NewCase("c1", "OPEN")).ok());
  CaseMutation stale = NewCase("c1", "OTHER");
  stale.expected_version = 0;  // case is at 1
  stale.events = {"should not appear"};
  EXPECT_TRUE(absl::IsAborted(repo_->Commit(stale).status()));
  EXPECT_EQ(repo_->GetCase("c1")->record, "record-of-c1");
  EXPECT_EQ(repo_->ListEvents("c1", 0, 10)->size(), 1u);
  EXPECT_TRUE(repo_->ListCases({"state", "OTHER"}, "", 10)->empty());
  EXPECT_EQ((*repo_->GetCounters("board/"))["board/OPEN"], 1);
  EXPECT_EQ(repo_->GetCounters("board/")->count("board/OTHER"), 0u);
}

TEST_F(RepositoryTest, UpdateMovesIndexEntriesAndCounters) {
  ASSERT_TRUE(repo_->Commit(NewCase("c1", "OPEN")).ok());
  CaseMutation m = Update("c1", "v2", "moved");
  m.index_remove = {{"state", "OPEN"}};
  m.index_add = {{"state", "DONE"}};
  m.counter_deltas = {{"board/OPEN", -1}, {"board/DONE", 1}};
  ASSERT_EQ(*repo_->Commit(m), 2);
  EXPECT_TRUE(repo_->ListCases({"state", "OPEN"}, "", 10)->empty());
  ASSERT_EQ(repo_->ListCases({"state", "DONE"}, "", 10)->size(), 1u);
  auto counters = *repo_->GetCounters("board/");
  EXPECT_EQ(counters["board/OPEN"], 0);
  EXPECT_EQ(counters["board/DONE"], 1);
  auto events = *repo_->ListEvents("c1", 0, 10);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].sequence, 2);
  EXPECT_EQ(events[1].event, "moved");
  EXPECT_EQ(repo_->ListEvents("c1", 1, 10)->size(), 1u);
}

TEST_F(RepositoryTest, WritesToOneKeyKeepTheirOrderInABatchOfManyCases) {
  // A batch's writes reach the memtable in key order; a key written twice
  // (removed and added again, a timer re-armed at the same time) must end
  // as its last write left it.
  constexpr int kCases = 24;
  std::vector<CaseMutation> creates, updates;
  for (int i = 0; i < kCases; ++i) {
    CaseMutation m = NewCase("c" + std::to_string(i), "OPEN");
    m.timers_arm = {{m.case_id, "reminder/1", kT0 + absl::Hours(1), "trade_in", 0}};
    creates.push_back(m);
  }
  for (const auto& r : repo_->CommitAll(creates)) ASSERT_TRUE(r.ok()) << r.status();
  for (int i = 0; i < kCases; ++i) {
    CaseMutation m = Update("c" + std::to_string(i), "second", "noted");
    m.index_remove = {{"state", "OPEN"}};
    m.index_add = {{"state", "OPEN"}};
    m.timers_arm = {{m.case_id, "reminder/1", kT0 + absl::Hours(1), "trade_in", 0}};
    updates.push_back(m);
  }
  for (const auto& r : repo_->CommitAll(updates)) ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(repo_->ListCases({"state", "OPEN"}, "", 100)->size(), static_cast<size_t>(kCases));
  auto due = *repo_->Claim(Queue::kTimers, kT0 + absl::Hours(2), 100, "me", absl::Seconds(30));
  EXPECT_EQ(due.size(), static_cast<size_t>(kCases));
  for (int i = 0; i < kCases; ++i) {
    EXPECT_EQ(repo_->ListEvents("c" + std::to_string(i), 0, 10)->size(), 2u) << i;
  }
}

TEST_F(RepositoryTest, AGroupCommitMovesEachCounterOnce) {
  constexpr int kCases = 24;
  std::vector<CaseMutation> creates;
  for (int i = 0; i < kCases; ++i) {
    CaseMutation m = NewCase("c" + std::to_string(i), "OPEN");
    m.timers_arm = {{m.case_id, "reminder/1", kT0 + absl::Hours(1), "trade_in", 0}};
    creates.push_back(m);
  }
  for (const auto& r : repo_->CommitAll(creates)) ASSERT_TRUE(r.ok()) << r.status();
  auto counters = repo_->GetCounters("");
  ASSERT_TRUE(counters.ok()) << counters.status();
  EXPECT_EQ((*counters)["board/OPEN"], kCases);
  EXPECT_EQ(*repo_->QueueSize(Queue::kTimers), kCases);

  // The write-ahead log holds what the commit wrote. Opened read-only
  // beside the repository (which flushes when it closes), the store replays
  // the log into a memtable: one merge operand per merge written.
  // A merged key reads as absent unless its family has a merge operator;
  // listing the operands calls on none of it.
  struct ListOnly : rocksdb::AssociativeMergeOperator {
    bool Merge(const rocksdb::Slice&, const rocksdb::Slice*, const rocksdb::Slice&,
               std::string*, rocksdb::Logger*) const override {
      return false;
    }
    const char* Name() const override { return "casework.Int64Add"; }
  };
  rocksdb::DBOptions options;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const char* name : {"default", "cases", "events", "index", "unique", "queue",
                           "queue_ref", "attachments", "counters", "records", "dead"}) {
    families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  families[8].options.merge_operator = std::make_shared<ListOnly>();
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::DB::OpenForReadOnly(options, dir_.path() + "/db", families, &handles, &raw);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  absl::Cleanup close = [&] {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  };
  rocksdb::ColumnFamilyHandle* counters_family = handles[8];
  for (const std::string key : {"board/OPEN", "queue/timers"}) {
    std::vector<rocksdb::PinnableSlice> operands(kCases);
    rocksdb::GetMergeOperandsOptions limit;
    limit.expected_max_number_of_operands = kCases;
    int count = 0;
    s = db->GetMergeOperands(rocksdb::ReadOptions(), counters_family, key, operands.data(),
                             &limit, &count);
    ASSERT_TRUE(s.ok()) << key << ": " << s.ToString();
    ASSERT_EQ(count, 1) << key;
    EXPECT_EQ(DecodeInt64(operands[0].ToString()), kCases) << key;
  }
}

TEST_F(RepositoryTest, ListPagesThroughAnIndexInIdOrder) {
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(repo_->Commit(NewCase("c" + std::to_string(i), "OPEN")).ok());
  ASSERT_TRUE(repo_->Commit(NewCase("x", "OPENED")).ok());  // a key sharing a prefix
  std::vector<std::string> seen;
  std::string after;
  for (;;) {
    auto page = repo_->ListCases({"state", "OPEN"}, after, 3);
    ASSERT_TRUE(page.ok());
    if (page->empty()) break;
    for (const auto& c : *page) seen.push_back(c.case_id);
    after = page->back().case_id;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"c0", "c1", "c2", "c3", "c4", "c5", "c6"}));
}

TEST_F(RepositoryTest, UniqueKeyBelongsToOneCase) {
  CaseMutation a = NewCase("a", "OPEN");
  a.unique_add = {{"request_id", "r1"}};
  ASSERT_TRUE(repo_->Commit(a).ok());
  CaseMutation b = NewCase("b", "OPEN");
  b.unique_add = {{"request_id", "r1"}};
  EXPECT_TRUE(absl::IsAlreadyExists(repo_->Commit(b).status()));
  EXPECT_TRUE(absl::IsNotFound(repo_->GetCase("b").status()));
  EXPECT_EQ(*repo_->LookupUnique({"request_id", "r1"}), "a");
}

TEST_F(RepositoryTest, ClaimReturnsOnlyDueTimersAndLeasesThem) {
  CaseMutation m = NewCase("c1", "OPEN");
  m.timers_arm = {{"c1", "soon", kT0 + absl::Seconds(10), "p1", 0},
                  {"c1", "later", kT0 + absl::Hours(1), "p2", 0}};
  ASSERT_TRUE(repo_->Commit(m).ok());
  EXPECT_EQ(*repo_->QueueSize(Queue::kTimers), 2);
  EXPECT_TRUE(repo_->Claim(Queue::kTimers, kT0, 10, "me", absl::Seconds(30))->empty());

  auto due = *repo_->Claim(Queue::kTimers, kT0 + absl::Seconds(10), 10, "me", absl::Seconds(30));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].name, "soon");
  EXPECT_EQ(due[0].payload, "p1");
  // Leased: a second claim within the lease sees nothing.
  EXPECT_TRUE(repo_->Claim(Queue::kTimers, kT0 + absl::Seconds(11), 10, "other", absl::Seconds(30))->empty());
  // After the lease, it is claimable again with a new token; the old token is fenced off.
  auto again = *repo_->Claim(Queue::kTimers, kT0 + absl::Seconds(41), 10, "other", absl::Seconds(30));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_NE(again[0].fencing_token, due[0].fencing_token);
  EXPECT_TRUE(absl::IsAborted(repo_->Complete(Queue::kTimers, due[0])));
  EXPECT_TRUE(repo_->Complete(Queue::kTimers, again[0]).ok());
  EXPECT_EQ(*repo_->QueueSize(Queue::kTimers), 1);
  EXPECT_EQ(**repo_->NextDue(Queue::kTimers), kT0 + absl::Hours(1));
}

TEST_F(RepositoryTest, ConsumingATimerInACommitHappensOnce) {
  CaseMutation m = NewCase("c1", "OPEN");
  m.timers_arm = {{"c1", "reminder/1", kT0, "trade_in", 0}};
  ASSERT_TRUE(repo_->Commit(m).ok());
  auto due = *repo_->Claim(Queue::kTimers, kT0, 10, "me", absl::Seconds(30));
  ASSERT_EQ(due.size(), 1u);

  CaseMutation fire = FireReminder(due[0]);
  ASSERT_TRUE(repo_->Commit(fire).ok());
  // The same claim cannot be consumed twice, even with the right version.
  fire.expected_version = 2;
  EXPECT_TRUE(absl::IsAborted(repo_->Commit(fire).status()));
  EXPECT_EQ(repo_->ListEvents("c1", 0, 10)->size(), 2u);
  EXPECT_EQ(*repo_->QueueSize(Queue::kTimers), 0);
}

TEST_F(RepositoryTest, CommitAllWritesThePassingMutationsAndReportsEachOne) {
  ASSERT_TRUE(repo_->Commit(NewCase("c1", "OPEN")).ok());
  CaseMutation timer_case = NewCase("c2", "OPEN");
  timer_case.timers_arm = {{"c2", "reminder/1", kT0, "trade_in", 0}};
  ASSERT_TRUE(repo_->Commit(timer_case).ok());
  auto claimed = *repo_->Claim(Queue::kTimers, kT0, 10, "me", absl::Seconds(30));
  ASSERT_EQ(claimed.size(), 1u);

  CaseMutation stale = NewCase("c1", "CLOSED");  // c1 is at version 1, not 0
  stale.counter_deltas = {{"board/OPEN", -1}, {"board/CLOSED", 1}};
  CaseMutation fire = FireReminder(claimed[0]);
  fire.outbox = {{"c2", "c2-2", kT0, "reminder email", 0}};
  CaseMutation fresh = NewCase("c3", "OPEN");
  CaseMutation same_case_again = NewCase("c3", "OPEN");
  same_case_again.record = "second";
  CaseMutation bad_shape = NewCase("", "OPEN");

  auto results = repo_->CommitAll({stale, fire, fresh, same_case_again, bad_shape});
  ASSERT_EQ(results.size(), 5u);
  EXPECT_TRUE(absl::IsAborted(results[0].status())) << results[0].status();
  ASSERT_TRUE(results[1].ok()) << results[1].status();
  EXPECT_EQ(*results[1], 2);
  ASSERT_TRUE(results[2].ok()) << results[2].status();
  EXPECT_EQ(*results[2], 1);
  EXPECT_TRUE(absl::IsAborted(results[3].status())) << results[3].status();
  EXPECT_TRUE(absl::IsInvalidArgument(results[4].status())) << results[4].status();

  // The refused ones wrote nothing; the others all of theirs.
  EXPECT_EQ(repo_->GetCase("c1")->record, "record-of-c1");
  EXPECT_EQ(repo_->GetCase("c2")->record, "fired");
  EXPECT_EQ(repo_->ListEvents("c2", 0, 10)->size(), 2u);
  EXPECT_EQ(repo_->GetCase("c3")->record, "record-of-c3");
  EXPECT_EQ((*repo_->GetCounters("board/"))["board/OPEN"], 3);
  EXPECT_EQ(repo_->GetCounters("board/")->count("board/CLOSED"), 0u);
  EXPECT_EQ(*repo_->QueueSize(Queue::kTimers), 0);
  EXPECT_EQ(*repo_->QueueSize(Queue::kOutbox), 1);
  // The consumed claim cannot be consumed again.
  fire.expected_version = 2;
  EXPECT_TRUE(absl::IsAborted(repo_->CommitAll({fire})[0].status()));
  Reopen();
  EXPECT_EQ(repo_->GetCase("c2")->version, 2);
  EXPECT_EQ(repo_->GetCase("c3")->version, 1);
}

TEST_F(RepositoryTest, ArmingReplacesAndCancelRemovesByName) {
  CaseMutation m = NewCase("c1", "OPEN");
  m.timers_arm = {{"c1", "reminder", kT0 + absl::Hours(1), "", 0}};
  ASSERT_TRUE(repo_->Commit(m).ok());
  CaseMutation rearm;
  rearm.case_id = "c1";
  rearm.expected_version = 1;
  rearm.timers_arm = {{"c1", "reminder", kT0 + absl::Hours(2), "", 0}};
  ASSERT_TRUE(repo_->Commit(rearm).ok());
  EXPECT_EQ(*repo_->QueueSize(Queue::kTimers), 1);
  EXPECT_EQ(**repo_->NextDue(Queue::kTimers), kT0 + absl::Hours(2));
  CaseMutation cancel;
  cancel.case_id = "c1";
  cancel.expected_version = 2;
  cancel.timers_cancel = {"reminder", "never-armed"};
  ASSERT_TRUE(repo_->Commit(cancel).ok());
  EXPECT_EQ(*repo_->QueueSize(Queue::kTimers), 0);
  EXPECT_FALSE(repo_->NextDue(Queue::kTimers)->has_value());
}

TEST_F(RepositoryTest, OutboxRetryAndDeadLetter) {
  CaseMutation m = NewCase("c1", "OPEN");
  m.outbox = {{"c1", "c1-2", kT0, "msg", 0}};
  ASSERT_TRUE(repo_->Commit(m).ok());
  auto due = *repo_->Claim(Queue::kOutbox, kT0, 10, "d", absl::Seconds(60));
  ASSERT_EQ(due.size(), 1u);
  ASSERT_TRUE(repo_->Reschedule(Queue::kOutbox, due[0], kT0 + absl::Seconds(5), "msg-try2").ok());
  EXPECT_TRUE(repo_->Claim(Queue::kOutbox, kT0 + absl::Seconds(4), 10, "d", absl::Seconds(60))->empty());
  due = *repo_->Claim(Queue::kOutbox, kT0 + absl::Seconds(5), 10, "d", absl::Seconds(60));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].payload, "msg-try2");
  ASSERT_TRUE(repo_->DeadLetter(due[0], "final").ok());
  EXPECT_EQ(*repo_->QueueSize(Queue::kOutbox), 0);
  auto dead = *repo_->ListDeadLetters("", "", 10);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].name, "c1-2");
  EXPECT_EQ(dead[0].payload, "final");
  ASSERT_TRUE(repo_->RetryDeadLetter("c1", "c1-2", kT0 + absl::Seconds(6)).ok());
  EXPECT_TRUE(repo_->ListDeadLetters("", "", 10)->empty());
  EXPECT_EQ(repo_->Claim(Queue::kOutbox, kT0 + absl::Seconds(6), 10, "d", absl::Seconds(60))->size(), 1u);
}

// Each outbox lane is ordered on its own: a lane's claim reads its own
// items, however many of another lane's fell due before them.
TEST_F(RepositoryTest, EachOutboxLaneIsClaimedWithoutReadingTheOthers) {
  CaseMutation a = NewCase("a", "OPEN");
  for (int i = 0; i < 300; ++i) a.outbox.push_back({"a", absl::StrCat("a-", i), kT0, "email", 0, 0});
  ASSERT_TRUE(repo_->Commit(a).ok());
  CaseMutation b = NewCase("b", "OPEN");
  b.outbox = {{"b", "b-1", kT0 + absl::Seconds(1), "chat 1", 0, 2}, {"b", "b-2", kT0 + absl::Seconds(2), "chat 2", 0, 2}};
  ASSERT_TRUE(repo_->Commit(b).ok());
  EXPECT_EQ(*repo_->QueueSize(Queue::kOutbox), 302);
  EXPECT_EQ(*repo_->NextDue(Queue::kOutbox, 2), kT0 + absl::Seconds(1));
  EXPECT_EQ(*repo_->NextDue(Queue::kOutbox, 1), std::nullopt);

  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  absl::Cleanup no_counts = [] { rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable); };
  rocksdb::get_perf_context()->Reset();
  auto lane2 = *repo_->Claim(Queue::kOutbox, kT0 + absl::Minutes(1), 10, "d", absl::Seconds(60), 2);
  EXPECT_LT(rocksdb::get_perf_context()->next_on_memtable_count, 10u);
  ASSERT_EQ(lane2.size(), 2u);
  EXPECT_EQ(lane2[0].payload, "chat 1");
  EXPECT_EQ(lane2[1].lane, 2);
  // A retry stays in its lane.
  ASSERT_TRUE(repo_->Reschedule(Queue::kOutbox, lane2[0], kT0 + absl::Minutes(2), "chat 1, again").ok());
  ASSERT_TRUE(repo_->Complete(Queue::kOutbox, lane2[1]).ok());
  auto lane0 = *repo_->Claim(Queue::kOutbox, kT0 + absl::Minutes(5), 500, "d", absl::Seconds(60));
  EXPECT_EQ(lane0.size(), 300u);
  auto retried = *repo_->Claim(Queue::kOutbox, kT0 + absl::Minutes(5), 10, "d", absl::Seconds(60), 2);
  ASSERT_EQ(retried.size(), 1u);
  EXPECT_EQ(retried[0].payload, "chat 1, again");

  // A dead letter goes back to the lane its rewrite names.
  ASSERT_TRUE(repo_->DeadLetter(retried[0], "chat 1, dead").ok());
  ASSERT_TRUE(repo_->RetryDeadLetter("b", "b-1", kT0 + absl::Minutes(6), [](QueueItem* item) {
                     item->payload += ", retried";
                     item->lane = 3;
                   }).ok());
  auto lane3 = *repo_->Claim(Queue::kOutbox, kT0 + absl::Minutes(6), 10, "d", absl::Seconds(60), 3);
  ASSERT_EQ(lane3.size(), 1u);
  EXPECT_EQ(lane3[0].payload, "chat 1, dead, retried");

  // There are four lanes, and the timers have one.
  EXPECT_TRUE(absl::IsInvalidArgument(repo_->Claim(Queue::kOutbox, kT0, 10, "d", absl::Seconds(60), 4).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(repo_->Claim(Queue::kTimers, kT0, 10, "d", absl::Seconds(60), 1).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(repo_->NextDue(Queue::kOutbox, -1).status()));
  CaseMutation c = NewCase("c", "OPEN");
  c.outbox = {{"c", "c-1", kT0, "x", 0, 4}};
  EXPECT_TRUE(absl::IsInvalidArgument(repo_->Commit(c).status()));
  EXPECT_TRUE(absl::IsNotFound(repo_->GetCase("c").status()));
}

TEST_F(RepositoryTest, EverythingSurvivesReopen) {
  CaseMutation m = NewCase("c1", "OPEN");
  m.timers_arm = {{"c1", "t", kT0, "", 0}};
  m.outbox = {{"c1", "c1-1", kT0, "msg", 0}};
  m.attachments_put = {{"doc", std::string("%PDF-1.4 bytes")}};
  ASSERT_TRUE(repo_->Commit(m).ok());
  ASSERT_TRUE(repo_->PutRecord("templates", "a", 0, "body").ok());
  Reopen();
  EXPECT_EQ(repo_->GetCase("c1")->version, 1);
  EXPECT_EQ(*repo_->QueueSize(Queue::kTimers), 1);
  EXPECT_EQ(*repo_->QueueSize(Queue::kOutbox), 1);
  EXPECT_EQ(*repo_->GetAttachment("c1", "doc"), "%PDF-1.4 bytes");
  EXPECT_EQ(repo_->GetRecord("templates", "a")->value, "body");
  EXPECT_EQ(repo_->Claim(Queue::kTimers, kT0, 10, "me", absl::Seconds(1))->size(), 1u);
}

TEST_F(RepositoryTest, BackupsAreKeptToTheirCountAndOneIsRestoredInPlace) {
  const std::string folder = dir_.path() + "/backups";
  EXPECT_TRUE(repo_->ListBackups(folder)->empty());
  ASSERT_TRUE(repo_->Commit(NewCase("c1", "OPEN")).ok());
  auto first = repo_->CreateBackup(folder, 2, "");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->id, 1);
  EXPECT_GT(first->size_bytes, 0);
  ASSERT_TRUE(repo_->Commit(NewCase("c2", "OPEN")).ok());
  ASSERT_TRUE(repo_->CreateBackup(folder, 2, "").ok());
  ASSERT_TRUE(repo_->Commit(NewCase("c3", "OPEN")).ok());
  ASSERT_TRUE(repo_->CreateBackup(folder, 2, "").ok());
  auto listed = repo_->ListBackups(folder);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].id, 2);
  EXPECT_EQ((*listed)[1].id, 3);

  // Not over a store that is open.
  EXPECT_EQ(RestoreRocksDbBackup(folder, 2, dir_.path() + "/db").status().code(),
            absl::StatusCode::kFailedPrecondition);
  repo_.reset();
  EXPECT_EQ(RestoreRocksDbBackup(folder, 1, dir_.path() + "/db").status().code(), absl::StatusCode::kNotFound);
  auto restored = RestoreRocksDbBackup(folder, 2, dir_.path() + "/db");
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->id, 2);
  Reopen();
  EXPECT_TRUE(repo_->GetCase("c2").ok());
  EXPECT_EQ(repo_->GetCase("c3").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*repo_->GetCounters("board/"))["board/OPEN"], 2);

  // A backup with a file missing is refused as damaged, not as absent,
  // and the store stays where it is.
  repo_.reset();
  int removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(folder + "/private/3")) {
    if (absl::StartsWith(entry.path().filename().string(), "MANIFEST")) {
      removed += std::filesystem::remove(entry.path()) ? 1 : 0;
    }
  }
  ASSERT_EQ(removed, 1);
  // Listed, marked damaged, among the others.
  Reopen();
  auto with_damaged = repo_->ListBackups(folder);
  ASSERT_TRUE(with_damaged.ok()) << with_damaged.status();
  ASSERT_EQ(with_damaged->size(), 2u);
  EXPECT_EQ((*with_damaged)[0].id, 2);
  EXPECT_FALSE((*with_damaged)[0].damaged);
  EXPECT_EQ((*with_damaged)[1].id, 3);
  EXPECT_TRUE((*with_damaged)[1].damaged);
  repo_.reset();
  for (int64_t which : {int64_t{3}, int64_t{0}}) {  // by its id, and as the latest
    auto damaged = RestoreRocksDbBackup(folder, which, dir_.path() + "/db");
    EXPECT_EQ(damaged.status().code(), absl::StatusCode::kDataLoss) << damaged.status();
    EXPECT_TRUE(absl::StrContains(damaged.status().message(), "backup 3 is damaged")) << damaged.status();
  }
  Reopen();
  EXPECT_TRUE(repo_->GetCase("c2").ok());
}

// Backups share the table files they have in common, so one that changes
// on disk (its size kept) spoils every backup holding it, new ones too.
TEST_F(RepositoryTest, ATableFileThatRotsInTheBackupsIsCopiedAgainWithoutTheBackupsHoldingIt) {
  const std::string folder = dir_.path() + "/backups";
  ASSERT_TRUE(repo_->Commit(NewCase("c1", "OPEN")).ok());
  ASSERT_TRUE(repo_->Compact().ok());  // c1 in a table file
  ASSERT_TRUE(repo_->CreateBackup(folder, 5, "").ok());
  ASSERT_TRUE(repo_->Commit(NewCase("c2", "OPEN")).ok());
  ASSERT_TRUE(repo_->CreateBackup(folder, 5, "").ok());
  ASSERT_GT(testing::SpoilFiles(folder + "/shared_checksum", ".sst", 100), 0);
  // A restore refuses such a backup before it moves the store aside.
  repo_.reset();
  auto refused = RestoreRocksDbBackup(folder, 0, dir_.path() + "/db");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "backup 2 failed its check")) << refused.status();
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_FALSE(absl::StrContains(entry.path().filename().string(), "replaced")) << entry.path();
  }
  Reopen();
  ASSERT_TRUE(repo_->Commit(NewCase("c3", "OPEN")).ok());

  auto taken = repo_->CreateBackup(folder, 5, "");
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->damaged_removed, 2);
  auto listed = repo_->ListBackups(folder);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, taken->id);
  EXPECT_FALSE((*listed)[0].damaged);

  repo_.reset();
  auto restored = RestoreRocksDbBackup(folder, 0, dir_.path() + "/db");
  ASSERT_TRUE(restored.ok()) << restored.status();
  Reopen();
  for (const char* id : {"c1", "c2", "c3"}) EXPECT_TRUE(repo_->GetCase(id).ok()) << id;
}

TEST_F(RepositoryTest, StoreLogKeepsToInfoLevel) {
  ASSERT_TRUE(repo_->Commit(NewCase("c1", "OPEN")).ok());
  Reopen();  // opening again replaces the MANIFEST and deletes the old one
  std::ifstream log(dir_.path() + "/db/LOG");
  ASSERT_TRUE(log.is_open());
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) {
    ++lines;
    EXPECT_EQ(line.find("[DEBUG]"), std::string::npos) << line;
  }
  EXPECT_GT(lines, 0);
}

// The newest write-ahead log in `folder` ("" if there is none).
std::string NewestLog(const std::string& folder) {
  std::string newest;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.path().extension() == ".log" && entry.path().string() > newest) {
      newest = entry.path().string();
    }
  }
  return newest;
}

// The write-ahead log is written over zeros laid down ahead of it
// (storage/log_file_system.h). A crash leaves the log as it was: its
// records, then zeros to the end of a chunk. A copy of the store taken
// while it is open is what a kill -9 leaves; it opens with every commit.
TEST_F(RepositoryTest, ALogWrittenOverZerosAheadOfItReadsBackEveryCommitAfterACrash) {
  constexpr int kCases = 500;
  for (int i = 0; i < kCases; ++i) {
    ASSERT_TRUE(repo_->Commit(NewCase(absl::StrCat("c", i), "OPEN")).ok());
  }
  const std::string log = NewestLog(dir_.path() + "/db");
  ASSERT_FALSE(log.empty());
  const std::string bytes = testing::ReadFile(log);
  const size_t records = bytes.find_last_not_of('\0') + 1;
  EXPECT_GT(records, kCases * 50u);
  EXPECT_EQ(bytes.size() % kLogZeroChunk, 0u) << bytes.size();
  EXPECT_GT(bytes.size(), records);

  std::filesystem::copy(dir_.path() + "/db", dir_.path() + "/crashed",
                        std::filesystem::copy_options::recursive);
  auto crashed = OpenRocksDbRepository({dir_.path() + "/crashed"});
  ASSERT_TRUE(crashed.ok()) << crashed.status();
  for (int i = 0; i < kCases; ++i) {
    auto got = (*crashed)->GetCase(absl::StrCat("c", i));
    ASSERT_TRUE(got.ok()) << i << ": " << got.status();
    EXPECT_EQ(got->record, absl::StrCat("record-of-c", i));
  }
  EXPECT_EQ((*crashed)->GetCounters("board/")->at("board/OPEN"), kCases);
}

// A write torn by a crash (the start of its record on disk, the rest
// still zeros) was never acknowledged: the store opens without it and
// with every commit before it.
TEST_F(RepositoryTest, AWriteTornOverTheZerosAheadOfTheLogIsDroppedAlone) {
  constexpr int kCases = 100;
  for (int i = 0; i < kCases; ++i) {
    ASSERT_TRUE(repo_->Commit(NewCase(absl::StrCat("c", i), "OPEN")).ok());
  }
  CaseMutation big = NewCase("torn", "OPEN");
  big.record = std::string(4000, 'r');
  ASSERT_TRUE(repo_->Commit(big).ok());
  std::filesystem::copy(dir_.path() + "/db", dir_.path() + "/crashed",
                        std::filesystem::copy_options::recursive);
  const std::string log = NewestLog(dir_.path() + "/crashed");
  std::string bytes = testing::ReadFile(log);
  const size_t records = bytes.find_last_not_of('\0') + 1;
  // The last record's second half never reached the disk.
  std::fill(bytes.begin() + static_cast<long>(records - 2000), bytes.end(), '\0');
  testing::WriteFile(log, bytes);

  auto crashed = OpenRocksDbRepository({dir_.path() + "/crashed"});
  ASSERT_TRUE(crashed.ok()) << crashed.status();
  EXPECT_TRUE(absl::IsNotFound((*crashed)->GetCase("torn").status()));
  for (int i = 0; i < kCases; ++i) {
    EXPECT_TRUE((*crashed)->GetCase(absl::StrCat("c", i)).ok()) << i;
  }
  EXPECT_EQ((*crashed)->GetCounters("board/")->at("board/OPEN"), kCases);
}

// A backup copies the live log up to the length of its records when the
// backup begins: neither the zeros ahead of them nor records written over
// those zeros while it copies, which no answer before the backup's covered.
TEST_F(RepositoryTest, ABackupCopiesTheLiveLogToItsRecordsAndNoFurther) {
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(repo_->Commit(NewCase(absl::StrCat("c", i), "OPEN")).ok());
  }
  const std::string folder = dir_.path() + "/backups";
  auto backup = repo_->CreateBackup(folder, 2, "");
  ASSERT_TRUE(backup.ok()) << backup.status();
  const std::string live = testing::ReadFile(NewestLog(dir_.path() + "/db"));
  const std::string copy = testing::ReadFile(NewestLog(folder + "/private/1"));
  EXPECT_GT(copy.size(), 100 * 50u);
  EXPECT_LT(copy.size(), kLogZeroChunk);
  EXPECT_EQ(live.size() % kLogZeroChunk, 0u);
  EXPECT_EQ(copy, live.substr(0, copy.size()));
}

TEST_F(RepositoryTest, SecondOpenOfTheSameFolderIsRefused) {
  auto second = OpenRocksDbRepository({dir_.path() + "/db"});
  EXPECT_FALSE(second.ok());
}

TEST_F(RepositoryTest, RecordsHaveVersions) {
  EXPECT_EQ(*repo_->PutRecord("s", "k", 0, "one"), 1);
  EXPECT_TRUE(absl::IsAborted(repo_->PutRecord("s", "k", 0, "dup").status()));
  EXPECT_EQ(*repo_->PutRecord("s", "k", 1, "two"), 2);
  EXPECT_EQ(*repo_->PutRecord("s", "k", -1, "three"), 3);
  ASSERT_TRUE(repo_->PutRecord("s", "l", 0, "x").ok());
  ASSERT_TRUE(repo_->PutRecord("t", "m", 0, "other space").ok());
  auto all = *repo_->ListRecords("s", "", 10);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].value, "three");
  EXPECT_EQ(repo_->ListRecords("s", "k", 10)->size(), 1u);

  // A delete checks the version as a write does.
  EXPECT_TRUE(absl::IsAborted(repo_->DeleteRecord("s", "k", 2)));
  EXPECT_EQ(repo_->GetRecord("s", "k")->value, "three");
  ASSERT_TRUE(repo_->DeleteRecord("s", "k", 3).ok());
  EXPECT_TRUE(absl::IsNotFound(repo_->GetRecord("s", "k").status()));
  EXPECT_TRUE(absl::IsNotFound(repo_->DeleteRecord("s", "k", -1)));
  ASSERT_TRUE(repo_->DeleteRecord("s", "l", -1).ok());
  EXPECT_TRUE(repo_->ListRecords("s", "", 10)->empty());
  EXPECT_EQ(repo_->ListRecords("t", "", 10)->size(), 1u);
}

TEST_F(RepositoryTest, ARecordMadeAgainNeverTakesAVersionItsNameHadBefore) {
  ASSERT_EQ(*repo_->PutRecord("s", "k", 0, "one"), 1);
  ASSERT_EQ(*repo_->PutRecord("s", "k", 1, "two"), 2);
  ASSERT_EQ(*repo_->PutRecord("s", "k", 2, "three"), 3);
  ASSERT_TRUE(repo_->DeleteRecord("s", "k", 3).ok());

  // Made again: an etag read before the deletion matches nothing.
  EXPECT_TRUE(absl::IsAborted(repo_->PutRecord("s", "k", 3, "stale").status()));
  const int64_t again = *repo_->PutRecord("s", "k", 0, "again");
  EXPECT_GT(again, 3);
  EXPECT_TRUE(absl::IsAborted(repo_->PutRecord("s", "k", 2, "stale").status()));
  EXPECT_TRUE(absl::IsAborted(repo_->DeleteRecord("s", "k", 3)));
  EXPECT_EQ(repo_->GetRecord("s", "k")->value, "again");

  // So after a restart, and for a deletion by WriteRecords, whose versions
  // climb past the first record's before it goes.
  Reopen();
  ASSERT_EQ(*repo_->PutRecord("s", "k", again, "again, twice"), again + 1);
  ASSERT_TRUE(repo_->WriteRecords({{"s", "k", "", /*erase=*/true}}).ok());
  Reopen();
  ASSERT_TRUE(repo_->WriteRecords({{"s", "k", "third life"}}).ok());
  EXPECT_GT(repo_->GetRecord("s", "k")->version, again + 1);
  // Erased and written again in one batch.
  const int64_t third = repo_->GetRecord("s", "k")->version;
  ASSERT_TRUE(repo_->WriteRecords({{"s", "k", "", true}, {"s", "k", "fourth life"}}).ok());
  EXPECT_GT(repo_->GetRecord("s", "k")->version, third);

  // Versions climb by one per record made and deleted, not faster: an
  // index record moved from key to key a thousand times (an account's
  // phone number changing) stays far from overflowing.
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(repo_->WriteRecords({{"phones", absl::StrCat("+3161234", i), "acct"}}).ok());
    ASSERT_TRUE(repo_->WriteRecords({{"phones", absl::StrCat("+3161234", i), "", true}}).ok());
  }
  ASSERT_EQ(*repo_->PutRecord("phones", "last", 0, "acct"), third + 1000 + 1);

  // A name never deleted starts at 1 in a new store.
  testing::TempDir other;
  auto fresh = OpenRocksDbRepository({other.path() + "/db"});
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(*(*fresh)->PutRecord("s", "k", 0, "first"), 1);
}

TEST_F(RepositoryTest, RecordsDeletedAtOnceAllStayBelowTheirNamesNextVersionsAfterARestart) {
  // Each thread makes, rewrites and deletes records of its own names, to
  // versions that differ from thread to thread, at the same time as the
  // others: the floor kept on disk must cover the highest of them.
  constexpr int kThreads = 4, kEach = 40;
  std::vector<int64_t> highest(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string key = absl::StrCat("t", t);
        auto version = repo_->PutRecord("s", key, 0, "made");
        ASSERT_TRUE(version.ok()) << version.status();
        for (int again = 0; again < (t * 3 + i) % 7; ++again) {
          version = repo_->PutRecord("s", key, *version, "again");
          ASSERT_TRUE(version.ok()) << version.status();
        }
        highest[t] = std::max(highest[t], *version);
        ASSERT_TRUE(repo_->DeleteRecord("s", key, *version).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  Reopen();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_GT(*repo_->PutRecord("s", absl::StrCat("t", t), 0, "after"), highest[t]) << t;
  }
}

TEST_F(RepositoryTest, ConcurrentWritersOnOneCaseNeverLoseAnUpdate) {
  ASSERT_TRUE(repo_->Commit(NewCase("hot", "OPEN")).ok());
  constexpr int kThreads = 8, kEach = 25;
  std::atomic<int> committed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach;) {
        auto current = repo_->GetCase("hot");
        ASSERT_TRUE(current.ok());
        CaseMutation m;
        m.case_id = "hot";
        m.expected_version = current->version;
        m.record = "v";
        m.counter_deltas["hits"] = 1;
        auto r = repo_->Commit(m);
        if (r.ok()) {
          ++committed;
          ++i;
        } else {
          ASSERT_TRUE(absl::IsAborted(r.status())) << r.status();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(committed.load(), kThreads * kEach);
  EXPECT_EQ(repo_->GetCase("hot")->version, 1 + kThreads * kEach);
  EXPECT_EQ((*repo_->GetCounters("hits"))["hits"], kThreads * kEach);
}

}  // namespace
}  // namespace casework::storage
