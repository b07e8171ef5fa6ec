#include "server/engine/committer.h"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "storage/rocksdb_repository.h"
#include "tests/testing/temp_dir.h"

namespace casework::engine {
namespace {

// One result a callback hands to the test thread.
class Slot {
 public:
  void Set(absl::StatusOr<int64_t> value) {
    std::lock_guard<std::mutex> lock(mu_);
    value_ = std::move(value);
    set_ = true;
    cv_.notify_all();
  }
  absl::StatusOr<int64_t> Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return set_; });
    return value_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
  absl::StatusOr<int64_t> value_ = 0;
};

// Holds the committer's thread inside a callback until opened, so that
// everything submitted meanwhile goes into one batch.
class Gate {
 public:
  void Hold() {
    std::unique_lock<std::mutex> lock(mu_);
    held_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  void WaitHeld() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return held_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  bool open_ = false;
};

const absl::Time kNoDeadline = absl::InfiniteFuture();

class CommitterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto repo = storage::OpenRocksDbRepository({dir_.path() + "/db"});
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = *std::move(repo);
  }

  static storage::CaseMutation NewCase(const std::string& id) {
    storage::CaseMutation m;
    m.case_id = id;
    m.expected_version = 0;
    m.record = "record-of-" + id;
    m.events = {"created"};
    return m;
  }

  // Writes a change from a thread of its own whose callback keeps the write
  // turn until `gate` opens, so that everything submitted meanwhile queues
  // up for one batch. The thread ends once the gate is open.
  static std::thread HoldCommitter(Committer* committer, Gate* gate) {
    std::thread holder([committer, gate] {
      committer->Submit(NewCase("holder"), kNoDeadline,
                        [gate](absl::StatusOr<int64_t>) { gate->Hold(); });
    });
    gate->WaitHeld();
    return holder;
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::Repository> repo_;
};

TEST_F(CommitterTest, ConcurrentChangesAreAllWrittenAndAnswered) {
  Committer committer(repo_.get(), nullptr, 16);
  constexpr int kThreads = 8, kEach = 50;
  std::vector<Slot> slots(kThreads * kEach);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        Slot* slot = &slots[t * kEach + i];
        committer.Submit(NewCase("c" + std::to_string(t * kEach + i)), kNoDeadline,
                         [slot](absl::StatusOr<int64_t> v) { slot->Set(std::move(v)); });
      }
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < slots.size(); ++i) {
    auto version = slots[i].Wait();
    ASSERT_TRUE(version.ok()) << version.status();
    EXPECT_EQ(*version, 1);
    EXPECT_EQ(repo_->GetCase("c" + std::to_string(i))->record, "record-of-c" + std::to_string(i));
  }
}

TEST_F(CommitterTest, ALoneChangeIsWrittenAndAnsweredOnTheSubmittingThread) {
  Committer committer(repo_.get(), nullptr, 16);
  std::thread::id answered_on;
  absl::StatusOr<int64_t> version = 0;
  committer.Submit(NewCase("alone"), kNoDeadline, [&](absl::StatusOr<int64_t> v) {
    answered_on = std::this_thread::get_id();
    version = std::move(v);
  });
  EXPECT_EQ(answered_on, std::this_thread::get_id());
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, 1);
  EXPECT_EQ(repo_->GetCase("alone")->record, "record-of-alone");
}

TEST_F(CommitterTest, ConflictWithinABatchGetsTheAnswerOfAWriteOfItsOwn) {
  Committer committer(repo_.get(), nullptr, 16);
  Gate gate;
  std::thread holder = HoldCommitter(&committer, &gate);
  // Both wait in the queue and go into one batch: two new cases claiming
  // one unique key. Written alone, the second finds the key taken.
  storage::CaseMutation first = NewCase("a");
  first.unique_add = {{"v_number", "V1"}};
  storage::CaseMutation second = NewCase("b");
  second.unique_add = {{"v_number", "V1"}};
  Slot a, b;
  committer.Submit(first, kNoDeadline, [&](absl::StatusOr<int64_t> v) { a.Set(std::move(v)); });
  committer.Submit(second, kNoDeadline, [&](absl::StatusOr<int64_t> v) { b.Set(std::move(v)); });
  gate.Open();
  holder.join();
  EXPECT_EQ(*a.Wait(), 1);
  EXPECT_TRUE(absl::IsAlreadyExists(b.Wait().status())) << b.Wait().status();
  EXPECT_TRUE(absl::IsNotFound(repo_->GetCase("b").status()));
}

TEST_F(CommitterTest, StaleVersionIsStillAborted) {
  ASSERT_TRUE(repo_->Commit(NewCase("c1")).ok());
  Committer committer(repo_.get(), nullptr, 16);
  Gate gate;
  std::thread holder = HoldCommitter(&committer, &gate);
  storage::CaseMutation update = NewCase("c1");
  update.expected_version = 1;
  update.record = "second";
  update.first_event_sequence = 2;
  storage::CaseMutation stale = update;  // read version 1 too
  stale.record = "lost";
  Slot first, second;
  committer.Submit(update, kNoDeadline, [&](absl::StatusOr<int64_t> v) { first.Set(std::move(v)); });
  committer.Submit(stale, kNoDeadline, [&](absl::StatusOr<int64_t> v) { second.Set(std::move(v)); });
  gate.Open();
  holder.join();
  EXPECT_EQ(*first.Wait(), 2);
  EXPECT_TRUE(absl::IsAborted(second.Wait().status()));
  EXPECT_EQ(repo_->GetCase("c1")->record, "second");
}

TEST_F(CommitterTest, StopWritesWhatIsQueuedAndRefusesLaterChanges) {
  Committer committer(repo_.get(), nullptr, 16);
  Gate gate;
  std::thread holder = HoldCommitter(&committer, &gate);
  Slot queued, follow_up;
  for (int i = 0; i < 20; ++i) {
    committer.Submit(NewCase("q" + std::to_string(i)), kNoDeadline, [](absl::StatusOr<int64_t>) {});
  }
  committer.Submit(NewCase("queued"), kNoDeadline, [&](absl::StatusOr<int64_t> v) {
    queued.Set(std::move(v));
    // A callback's own follow-up change is written even while stopping.
    committer.Submit(NewCase("follow-up"), kNoDeadline,
                     [&](absl::StatusOr<int64_t> w) { follow_up.Set(std::move(w)); });
  });
  std::thread stopper([&] { committer.Stop(); });
  // Stop has begun once a new change is refused; until then probes queue up.
  std::string refused;
  for (int i = 0; i < 1000000 && refused.empty(); ++i) {
    const std::string id = "probe" + std::to_string(i);
    committer.Submit(NewCase(id), kNoDeadline, [&, id](absl::StatusOr<int64_t> v) {
      if (absl::IsUnavailable(v.status())) refused = id;
    });
    std::this_thread::yield();
  }
  ASSERT_FALSE(refused.empty());
  gate.Open();
  holder.join();
  stopper.join();
  EXPECT_EQ(*queued.Wait(), 1);
  EXPECT_EQ(*follow_up.Wait(), 1);
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(repo_->GetCase("q" + std::to_string(i)).ok()) << i;
  EXPECT_TRUE(repo_->GetCase("follow-up").ok());
  EXPECT_TRUE(absl::IsNotFound(repo_->GetCase(refused).status()));
}

TEST_F(CommitterTest, AChangeWhoseDeadlineHasPassedIsAnsweredAndNotWritten) {
  Committer committer(repo_.get(), nullptr, 16);
  const absl::Time passed = absl::Now() - absl::Seconds(1);
  Gate gate;
  std::thread holder = HoldCommitter(&committer, &gate);
  // Queued behind the held batch: one whose caller has given up, one whose
  // caller waits; they go into one batch.
  Slot late, timely;
  committer.Submit(NewCase("late"), passed,
                   [&](absl::StatusOr<int64_t> v) { late.Set(std::move(v)); });
  committer.Submit(NewCase("timely"), kNoDeadline,
                   [&](absl::StatusOr<int64_t> v) { timely.Set(std::move(v)); });
  gate.Open();
  holder.join();
  EXPECT_TRUE(absl::IsDeadlineExceeded(late.Wait().status())) << late.Wait().status();
  EXPECT_EQ(*timely.Wait(), 1);
  EXPECT_TRUE(absl::IsNotFound(repo_->GetCase("late").status()));
  EXPECT_EQ(repo_->GetCase("timely")->record, "record-of-timely");

  // A batch of nothing but late changes gives the write turn back: the
  // next change is written.
  Gate again;
  holder = HoldCommitter(&committer, &again);
  Slot late2;
  committer.Submit(NewCase("late2"), passed,
                   [&](absl::StatusOr<int64_t> v) { late2.Set(std::move(v)); });
  again.Open();
  holder.join();
  EXPECT_TRUE(absl::IsDeadlineExceeded(late2.Wait().status()));
  Slot after;
  committer.Submit(NewCase("after"), kNoDeadline,
                   [&](absl::StatusOr<int64_t> v) { after.Set(std::move(v)); });
  EXPECT_EQ(*after.Wait(), 1);
  EXPECT_TRUE(absl::IsNotFound(repo_->GetCase("late2").status()));
}

}  // namespace
}  // namespace casework::engine
