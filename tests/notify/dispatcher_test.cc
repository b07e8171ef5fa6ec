#include "server/notify/dispatcher.h"

#include <atomic>

#include "gtest/gtest.h"
#include "storage/rocksdb_repository.h"
#include "tests/testing/temp_dir.h"

namespace casework::notify {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1767225600);

// A receiver that fails a given number of times before accepting.
class FlakyNotifier : public Notifier {
 public:
  explicit FlakyNotifier(int failures, absl::Status error = absl::UnavailableError("503"))
      : failures_(failures), error_(error) {}
  std::string name() const override { return "flaky"; }
  absl::Status Deliver(const internal::OutboxMessage& m) override {
    ++calls;
    if (failures_-- > 0) return error_;
    accepted.push_back(m.dedupe_key());
    return absl::OkStatus();
  }
  int calls = 0;
  std::vector<std::string> accepted;

 private:
  int failures_;
  absl::Status error_;
};

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = *storage::OpenRocksDbRepository({dir_.path() + "/db"});
    storage::CaseMutation m;
    m.case_id = "c1";
    internal::OutboxMessage msg;
    msg.set_dedupe_key("c1-3");
    msg.set_channel(v1::CHANNEL_EMAIL);
    m.outbox = {{"c1", "c1-3", kT0, msg.SerializeAsString(), 0}};
    ASSERT_TRUE(repo_->Commit(m).ok());
  }
  testing::TempDir dir_;
  std::unique_ptr<storage::Repository> repo_;
  SimulatedClock clock_{kT0};
  metrics::Metrics metrics_;
};

TEST_F(DispatcherTest, RetriesWithBackoffThenDeliversOnce) {
  FlakyNotifier receiver(3);
  RetryPolicy policy;  // 1 s, doubling
  Dispatcher d(repo_.get(), &receiver, &clock_, &metrics_, policy);
  EXPECT_EQ(d.RunOnce(), 0);
  EXPECT_EQ(receiver.calls, 1);
  EXPECT_EQ(d.RunOnce(), 0);  // not due yet
  EXPECT_EQ(receiver.calls, 1);
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(absl::Seconds(10));
    d.RunOnce();
  }
  EXPECT_EQ(receiver.calls, 4);
  EXPECT_EQ(receiver.accepted, std::vector<std::string>{"c1-3"});
  EXPECT_EQ(*repo_->QueueSize(storage::Queue::kOutbox), 0);
  clock_.Advance(absl::Hours(1));
  d.RunOnce();
  EXPECT_EQ(receiver.calls, 4);
}

TEST_F(DispatcherTest, DeadLettersAfterMaxAttemptsWithTheLastError) {
  FlakyNotifier receiver(100);
  RetryPolicy policy;
  policy.max_attempts = 3;
  Dispatcher d(repo_.get(), &receiver, &clock_, &metrics_, policy);
  for (int i = 0; i < 5; ++i) {
    d.RunOnce();
    clock_.Advance(absl::Minutes(10));
  }
  EXPECT_EQ(receiver.calls, 3);
  auto dead = *repo_->ListDeadLetters("", "", 10);
  ASSERT_EQ(dead.size(), 1u);
  internal::OutboxMessage m;
  ASSERT_TRUE(m.ParseFromString(dead[0].payload));
  EXPECT_EQ(m.attempts(), 3);
  EXPECT_NE(m.last_error().find("503"), std::string::npos);
}

TEST_F(DispatcherTest, PermanentErrorsDeadLetterAtOnce) {
  FlakyNotifier receiver(100, absl::InvalidArgumentError("bad address"));
  Dispatcher d(repo_.get(), &receiver, &clock_, &metrics_, RetryPolicy{});
  d.RunOnce();
  EXPECT_EQ(receiver.calls, 1);
  EXPECT_EQ(repo_->ListDeadLetters("", "", 10)->size(), 1u);
}

TEST(BackoffTest, DoublesUpToTheCapWithBoundedJitter) {
  RetryPolicy p;
  p.initial_backoff = absl::Seconds(1);
  p.max_backoff = absl::Seconds(30);
  EXPECT_EQ(Backoff(p, 1, 0.5), absl::Seconds(1));
  EXPECT_EQ(Backoff(p, 2, 0.5), absl::Seconds(2));
  EXPECT_EQ(Backoff(p, 4, 0.5), absl::Seconds(8));
  EXPECT_EQ(Backoff(p, 20, 0.5), absl::Seconds(30));
  EXPECT_EQ(Backoff(p, 1, 0.0), absl::Milliseconds(800));
  EXPECT_LT(Backoff(p, 1, 0.999), absl::Milliseconds(1200));
}

}  // namespace
}  // namespace casework::notify
