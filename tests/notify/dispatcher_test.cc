#include "server/notify/dispatcher.h"

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/rocksdb_repository.h"
#include "tests/testing/temp_dir.h"

namespace casework::notify {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1767225600);

// A receiver that fails a given number of times before accepting.
class FlakyNotifier : public Notifier {
 public:
  explicit FlakyNotifier(int failures, absl::Status error = absl::UnavailableError("503"),
                         std::string name = "flaky")
      : failures_(failures), error_(error), name_(std::move(name)) {}
  std::string name() const override { return name_; }
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
  std::string name_;
};

internal::RouteConfig Route(const std::string& channel, std::vector<std::string> notifiers,
                            const std::string& prefix = "", const std::string& brand = "") {
  internal::RouteConfig r;
  r.set_channel(channel);
  r.set_template_prefix(prefix);
  r.set_brand(brand);
  for (auto& n : notifiers) r.add_notifiers(n);
  return r;
}

// Every channel to the given notifiers.
std::unique_ptr<Router> RouteAllTo(std::vector<std::shared_ptr<Notifier>> notifiers) {
  internal::RouteConfig all;
  for (const auto& n : notifiers) all.add_notifiers(n->name());
  return *Router::Make(std::move(notifiers), {all});
}

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
  // Queues chat message c2-1 in `lane`.
  void QueueChatMessage(int lane) {
    storage::CaseMutation m;
    m.case_id = "c2";
    internal::OutboxMessage msg;
    msg.set_dedupe_key("c2-1");
    msg.set_channel(v1::CHANNEL_CHAT);
    m.outbox = {{"c2", "c2-1", kT0, msg.SerializeAsString(), 0, lane}};
    ASSERT_TRUE(repo_->Commit(m).ok());
  }
  testing::TempDir dir_;
  std::unique_ptr<storage::Repository> repo_;
  SimulatedClock clock_{kT0};
  metrics::Metrics metrics_;
};

TEST_F(DispatcherTest, RetriesWithBackoffThenDeliversOnce) {
  auto flaky = std::make_shared<FlakyNotifier>(3);
  auto& receiver = *flaky;
  auto router = RouteAllTo({flaky});
  RetryPolicy policy;  // 1 s, doubling
  Dispatcher d(repo_.get(), router.get(), &clock_, &metrics_, policy, 4);
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
  auto flaky = std::make_shared<FlakyNotifier>(100);
  auto& receiver = *flaky;
  auto router = RouteAllTo({flaky});
  RetryPolicy policy;
  policy.max_attempts = 3;
  Dispatcher d(repo_.get(), router.get(), &clock_, &metrics_, policy, 4);
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
  auto flaky = std::make_shared<FlakyNotifier>(100, absl::InvalidArgumentError("bad address"));
  auto& receiver = *flaky;
  auto router = RouteAllTo({flaky});
  Dispatcher d(repo_.get(), router.get(), &clock_, &metrics_, RetryPolicy{}, 4);
  d.RunOnce();
  EXPECT_EQ(receiver.calls, 1);
  EXPECT_EQ(repo_->ListDeadLetters("", "", 10)->size(), 1u);
}

TEST_F(DispatcherTest, ARetryGoesOnlyToTheNotifiersThatFailed) {
  auto steady = std::make_shared<FlakyNotifier>(0, absl::OkStatus(), "steady");
  auto flaky = std::make_shared<FlakyNotifier>(2, absl::UnavailableError("503"), "flaky");
  auto router = RouteAllTo({steady, flaky});
  Dispatcher d(repo_.get(), router.get(), &clock_, &metrics_, RetryPolicy{}, 4);
  for (int i = 0; i < 4; ++i) {
    d.RunOnce();
    clock_.Advance(absl::Minutes(1));
  }
  EXPECT_EQ(steady->calls, 1);
  EXPECT_EQ(flaky->calls, 3);
  EXPECT_EQ(flaky->accepted, std::vector<std::string>{"c1-3"});
  EXPECT_EQ(*repo_->QueueSize(storage::Queue::kOutbox), 0);
}

// The log says a message was delivered: it is handed the message only once
// every other notifier of the route has taken it, wherever a route lists it.
TEST_F(DispatcherTest, TheLogTakesAMessageOnlyOnceTheOthersHave) {
  auto log = std::make_shared<FlakyNotifier>(0, absl::OkStatus(), kLogNotifier);
  auto flaky = std::make_shared<FlakyNotifier>(2, absl::UnavailableError("503"), "flaky");
  auto router = RouteAllTo({log, flaky});
  Dispatcher d(repo_.get(), router.get(), &clock_, &metrics_, RetryPolicy{}, 4);
  for (int i = 0; i < 2; ++i) {
    d.RunOnce();
    clock_.Advance(absl::Minutes(1));
  }
  EXPECT_EQ(flaky->calls, 2);
  EXPECT_EQ(log->calls, 0);
  d.RunOnce();
  EXPECT_EQ(flaky->calls, 3);
  EXPECT_EQ(log->accepted, std::vector<std::string>{"c1-3"});
  EXPECT_EQ(*repo_->QueueSize(storage::Queue::kOutbox), 0);
}

// Blocks every delivery until released.
class StuckNotifier : public Notifier {
 public:
  std::string name() const override { return "stuck"; }
  absl::Status Deliver(const internal::OutboxMessage&) override {
    entered.set_value();
    release.get_future().wait();
    return absl::OkStatus();
  }
  std::promise<void> entered;
  std::promise<void> release;
};

TEST_F(DispatcherTest, ASlowChannelDoesNotHoldUpAnother) {
  QueueChatMessage(OutboxLane(v1::CHANNEL_CHAT));

  auto stuck = std::make_shared<StuckNotifier>();
  auto chat = std::make_shared<FlakyNotifier>(0, absl::OkStatus(), "chat");
  auto router = *Router::Make({stuck, chat}, {Route("email", {"stuck"}), Route("chat", {"chat"})});
  // One sender a lane: only a lane of its own gets the chat message past
  // the stuck email.
  Dispatcher d(repo_.get(), router.get(), &clock_, &metrics_, RetryPolicy{}, 1);
  d.Start();
  auto entered = stuck->entered.get_future();
  ASSERT_EQ(entered.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  // The email lane is stuck inside its delivery; the chat lane goes on.
  for (int i = 0; i < 3000 && *repo_->QueueSize(storage::Queue::kOutbox) > 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(*repo_->QueueSize(storage::Queue::kOutbox), 1);
  stuck->release.set_value();
  d.Stop();
  EXPECT_EQ(chat->accepted, std::vector<std::string>{"c2-1"});
}

// A message queued before the outbox had lanes is in the first lane,
// whatever its channel, and goes to its channel's notifiers from there.
TEST_F(DispatcherTest, AChatMessageInTheFirstLaneGoesToTheChatNotifiers) {
  QueueChatMessage(0);
  auto mail = std::make_shared<FlakyNotifier>(0, absl::OkStatus(), "mail");
  auto chat = std::make_shared<FlakyNotifier>(0, absl::OkStatus(), "chat");
  auto router = *Router::Make({mail, chat}, {Route("email", {"mail"}), Route("chat", {"chat"})});
  Dispatcher d(repo_.get(), router.get(), &clock_, &metrics_, RetryPolicy{}, 4);
  EXPECT_EQ(d.RunOnce(), 2);
  EXPECT_EQ(mail->accepted, std::vector<std::string>{"c1-3"});
  EXPECT_EQ(chat->accepted, std::vector<std::string>{"c2-1"});
  EXPECT_EQ(*repo_->QueueSize(storage::Queue::kOutbox), 0);
}

// Holds each delivery until four are in flight at once (or ten seconds
// have passed), and records what it saw.
class GateNotifier : public Notifier {
 public:
  std::string name() const override { return "gate"; }
  absl::Status Deliver(const internal::OutboxMessage& m) override {
    const std::string case_id = m.dedupe_key().substr(0, m.dedupe_key().find('-'));
    std::unique_lock<std::mutex> lock(mu_);
    if (!in_flight_cases_.insert(case_id).second) one_case_at_once = false;
    max_in_flight = std::max(max_in_flight, static_cast<int>(in_flight_cases_.size()));
    if (in_flight_cases_.size() == 4) open_ = true;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return open_; });
    open_ = true;
    by_case[case_id].push_back(m.dedupe_key());
    in_flight_cases_.erase(case_id);
    return absl::OkStatus();
  }
  int max_in_flight = 0;
  bool one_case_at_once = true;
  std::map<std::string, std::vector<std::string>> by_case;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  std::set<std::string> in_flight_cases_;
};

TEST_F(DispatcherTest, MessagesOfSeveralCasesGoOutAtOnceAndOneCasesInOrder) {
  // c1-3 of SetUp, and three messages each of four more cases.
  storage::CaseMutation m;
  for (const char* c : {"a", "b", "d", "e"}) {
    m.case_id = c;
    m.outbox.clear();
    for (int i = 1; i <= 3; ++i) {
      internal::OutboxMessage msg;
      msg.set_dedupe_key(absl::StrCat(c, "-", i));
      msg.set_channel(v1::CHANNEL_EMAIL);
      m.outbox.push_back({c, msg.dedupe_key(), kT0 + absl::Seconds(i), msg.SerializeAsString(), 0});
    }
    ASSERT_TRUE(repo_->Commit(m).ok());
  }
  auto gate = std::make_shared<GateNotifier>();
  auto router = RouteAllTo({gate});
  Dispatcher d(repo_.get(), router.get(), &clock_, &metrics_, RetryPolicy{}, 4);
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(d.RunOnce(), 13);
  EXPECT_EQ(gate->max_in_flight, 4);
  EXPECT_TRUE(gate->one_case_at_once);
  for (const char* c : {"a", "b", "d", "e"}) {
    EXPECT_EQ(gate->by_case[c], (std::vector<std::string>{absl::StrCat(c, "-1"), absl::StrCat(c, "-2"),
                                                           absl::StrCat(c, "-3")}));
  }
  EXPECT_EQ(*repo_->QueueSize(storage::Queue::kOutbox), 0);
}

// Takes a few milliseconds per message and tells when the first arrives.
class SlowNotifier : public Notifier {
 public:
  std::string name() const override { return "slow"; }
  absl::Status Deliver(const internal::OutboxMessage&) override {
    if (delivered.fetch_add(1) == 0) first.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return absl::OkStatus();
  }
  std::atomic<int> delivered{0};
  std::promise<void> first;
};

TEST_F(DispatcherTest, StopDoesNotWaitForABacklogToDrain) {
  constexpr int kMessages = 400;  // two seconds of deliveries
  storage::CaseMutation m;
  m.case_id = "c2";
  for (int i = 0; i < kMessages; ++i) {
    internal::OutboxMessage msg;
    msg.set_dedupe_key("c2-" + std::to_string(i));
    msg.set_channel(v1::CHANNEL_EMAIL);
    m.outbox.push_back({"c2", msg.dedupe_key(), kT0, msg.SerializeAsString(), 0});
  }
  ASSERT_TRUE(repo_->Commit(m).ok());
  auto slow = std::make_shared<SlowNotifier>();
  auto router = RouteAllTo({slow});
  Dispatcher d(repo_.get(), router.get(), &clock_, &metrics_, RetryPolicy{}, 4);
  d.Start();
  ASSERT_EQ(slow->first.get_future().wait_for(std::chrono::seconds(30)),
            std::future_status::ready);
  d.Stop();  // returns once the batch in hand is delivered
  const int delivered = slow->delivered;
  EXPECT_LT(delivered, kMessages + 1);  // c1-3 of SetUp is due too
  EXPECT_EQ(*repo_->QueueSize(storage::Queue::kOutbox), kMessages + 1 - delivered);
}

TEST(RouterTest, TheMostSpecificMatchingRouteDecides) {
  std::vector<std::shared_ptr<Notifier>> all;
  for (const char* n : {"a", "b", "c", "d"}) {
    all.push_back(std::make_shared<FlakyNotifier>(0, absl::OkStatus(), n));
  }
  auto router = *Router::Make(all, {Route("", {"a"}), Route("email", {"b"}),
                                    Route("", {"c"}, "unlock."), Route("", {"d"}, "unlock.", "unlock"),
                                    Route("email", {"a", "b"}, "unlock.confirmation")});
  internal::OutboxMessage m;
  m.set_channel(v1::CHANNEL_CHAT);
  m.set_template_id("trade_in.ops.test_again");
  EXPECT_EQ(router->Targets(m), std::vector<std::string>{"a"});
  m.set_channel(v1::CHANNEL_EMAIL);
  EXPECT_EQ(router->Targets(m), std::vector<std::string>{"b"});
  m.set_template_id("unlock.escalated");
  EXPECT_EQ(router->Targets(m), std::vector<std::string>{"c"});
  m.set_brand("unlock");
  EXPECT_EQ(router->Targets(m), std::vector<std::string>{"d"});
  m.set_template_id("unlock.confirmation_resend");
  EXPECT_EQ(router->Targets(m), (std::vector<std::string>{"a", "b"}));
}

TEST(RouterTest, RoutesMustNameConfiguredNotifiersAndChannels) {
  auto a = std::make_shared<FlakyNotifier>(0, absl::OkStatus(), "a");
  auto unknown = Router::Make({a}, {Route("email", {"smtp"})});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("notifier.routes[0].notifiers"), std::string::npos);
  auto bad_channel = Router::Make({a}, {Route("fax", {"a"})});
  ASSERT_FALSE(bad_channel.ok());
  EXPECT_NE(bad_channel.status().message().find("notifier.routes[0].channel"), std::string::npos);
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
