#include "server/notify/dispatcher.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "server/common/crash_point.h"
#include "server/common/log.h"

namespace casework::notify {
namespace {
constexpr int kBatch = 64;
constexpr absl::Duration kLease = absl::Seconds(60);
constexpr absl::Duration kMaxSleep = absl::Seconds(5);

bool IsPermanent(const absl::Status& s) {
  return absl::IsInvalidArgument(s) || absl::IsFailedPrecondition(s);
}

// The channel of each outbox lane.
constexpr v1::Channel kLaneChannels[storage::kOutboxLanes] = {v1::CHANNEL_EMAIL, v1::CHANNEL_CHAT,
                                                             v1::CHANNEL_SMS, v1::CHANNEL_WEBHOOK};
}  // namespace

int OutboxLane(v1::Channel channel) {
  for (int lane = 1; lane < storage::kOutboxLanes; ++lane) {
    if (kLaneChannels[lane] == channel) return lane;
  }
  return 0;
}

absl::Duration Backoff(const RetryPolicy& policy, int attempt, double jitter) {
  absl::Duration d = policy.initial_backoff;
  for (int i = 1; i < attempt && d < policy.max_backoff; ++i) d *= 2;
  d = std::min(d, policy.max_backoff);
  return d * (0.8 + 0.4 * jitter);
}

// One lane per channel, each with its own part of the outbox. The first
// lane, email's, also holds what was queued before there were lanes, of
// any channel; each message goes to the notifiers of its own channel
// whichever lane carries it.
struct Dispatcher::Lane {
  Lane(int i, int threads)
      : index(i), senders(threads, absl::StrCat("send-", ChannelLabel(kLaneChannels[i]))) {}

  const int index;
  WorkerPool senders;
  std::unique_ptr<BackgroundLoop> loop;
};

Dispatcher::Dispatcher(storage::Repository* repo, Router* router, const Clock* clock,
                       metrics::Metrics* metrics, RetryPolicy policy, int senders)
    : repo_(repo),
      router_(router),
      clock_(clock),
      metrics_(metrics),
      policy_(policy),
      senders_(senders),
      owner_(absl::StrCat("outbox-", getpid())) {
  for (int i = 0; i < storage::kOutboxLanes; ++i) {
    auto lane = std::make_unique<Lane>(i, senders_);
    Lane* raw = lane.get();
    lane->loop = std::make_unique<BackgroundLoop>(absl::StrCat("outbox-", ChannelLabel(kLaneChannels[i])),
                                                  [this, raw] { return Step(*raw); });
    lanes_.push_back(std::move(lane));
  }
}

Dispatcher::~Dispatcher() { Stop(); }

bool Dispatcher::Handle(const storage::QueueItem& item) {
  internal::OutboxMessage message;
  if (!message.ParseFromString(item.payload)) {
    Log(LogLevel::kError, "outbox_item_damaged", {{"case_id", item.case_id}, {"dedupe_key", item.name}});
    repo_->DeadLetter(item, item.payload).IgnoreError();
    return false;
  }
  const std::string channel = ChannelLabel(message.channel());
  const absl::Time started = clock_->Now();
  absl::Status s = router_->Deliver(&message);
  const absl::Duration took = clock_->Now() - started;
  if (s.ok()) {
    CrashPoint("outbox.after_deliver");
    absl::Status done = repo_->Complete(storage::Queue::kOutbox, item);
    if (!done.ok()) {
      // Delivered but not recorded: it will be delivered again with the same
      // dedupe key, which receivers drop.
      Log(LogLevel::kWarning, "outbox_complete_failed",
          {{"dedupe_key", item.name}, {"error", std::string(done.message())}});
    }
    metrics_->NotificationResult(channel, "delivered", took);
    return true;
  }
  message.set_attempts(message.attempts() + 1);
  message.set_last_error(std::string(s.message()));
  if (IsPermanent(s) || message.attempts() >= policy_.max_attempts) {
    metrics_->NotificationResult(channel, "dead_letter", took);
    Log(LogLevel::kError, "notification_dead_lettered",
        {{"dedupe_key", item.name}, {"channel", channel},
         {"attempts", absl::StrCat(message.attempts())}, {"error", std::string(s.message())}});
    absl::Status dead = repo_->DeadLetter(item, message.SerializeAsString());
    if (dead.ok() && dead_letter_listener_) dead_letter_listener_(message);
    return false;
  }
  thread_local std::mt19937 rng(std::random_device{}());
  const double jitter = std::uniform_real_distribution<double>(0, 1)(rng);
  const absl::Time retry_at = clock_->Now() + Backoff(policy_, message.attempts(), jitter);
  metrics_->NotificationResult(channel, "retry", took);
  Log(LogLevel::kWarning, "notification_retry",
      {{"dedupe_key", item.name}, {"channel", channel},
       {"attempts", absl::StrCat(message.attempts())}, {"error", std::string(s.message())}});
  repo_->Reschedule(storage::Queue::kOutbox, item, retry_at, message.SerializeAsString())
      .IgnoreError();
  return false;
}

Dispatcher::Round Dispatcher::RunLane(Lane& lane) {
  Round round;
  auto due = repo_->Claim(storage::Queue::kOutbox, clock_->Now(), kBatch, owner_, kLease, lane.index);
  if (!due.ok()) {
    Log(LogLevel::kError, "outbox_claim_failed", {{"error", std::string(due.status().message())}});
    return round;
  }
  round.claimed = static_cast<int>(due->size());
  // The cases in the order their first message was claimed, dealt out to
  // the senders in turn; each sender keeps its messages in claim order.
  std::vector<std::vector<const storage::QueueItem*>> shares(senders_);
  std::map<std::string, size_t> sender_of;
  for (const auto& item : *due) {
    const size_t sender = sender_of.emplace(item.case_id, sender_of.size() % senders_).first->second;
    shares[sender].push_back(&item);
  }
  std::atomic<int> delivered{0};
  std::vector<std::function<void()>> sends;
  for (const auto& share : shares) {
    if (share.empty()) continue;
    sends.push_back([this, &share, &delivered] {
      for (const storage::QueueItem* item : share) delivered += Handle(*item) ? 1 : 0;
    });
  }
  if (sends.size() == 1) {
    sends[0]();  // one case: no hand-off to the senders
  } else {
    lane.senders.RunAll(std::move(sends));
  }
  round.delivered = delivered;
  return round;
}

void Dispatcher::UpdateGauges() {
  metrics_->SetStore(repo_->StoreFigures());
  if (auto pending = repo_->QueueSize(storage::Queue::kOutbox); pending.ok()) {
    metrics_->SetOutboxPending(*pending);
  }
  if (auto dead = repo_->GetCounters("queue/dead"); dead.ok()) {
    auto it = dead->find("queue/dead");
    metrics_->SetDeadLetters(it == dead->end() ? 0 : it->second);
  }
}

int Dispatcher::RunOnce() {
  int delivered = 0;
  for (auto& lane : lanes_) {
    for (;;) {
      const Round round = RunLane(*lane);
      delivered += round.delivered;
      if (round.claimed < kBatch) break;
    }
  }
  UpdateGauges();
  return delivered;
}

absl::Time Dispatcher::Step(Lane& lane) {
  // One batch per step, so that Stop need not wait for a backlog to drain.
  const Round round = RunLane(lane);
  const absl::Time now = absl::Now();
  if (round.claimed == kBatch) return now;  // more may be due: at once
  UpdateGauges();
  // Until the lane's next message is due (a retry, one held for business
  // hours); new messages of its channel wake it sooner.
  auto next = repo_->NextDue(storage::Queue::kOutbox, lane.index);
  if (!next.ok() || !next->has_value()) return now + kMaxSleep;
  // Due messages it could not deliver or claim (retries scheduled, a claim
  // still held): look again in a second, not at once.
  const absl::Duration min_sleep =
      round.delivered == 0 ? absl::Seconds(1) : absl::Milliseconds(10);
  return std::min(std::max(**next, now + min_sleep), now + kMaxSleep);
}

void Dispatcher::Start() {
  for (auto& lane : lanes_) lane->loop->Start();
}
void Dispatcher::Stop() {
  for (auto& lane : lanes_) lane->loop->Stop();
}
void Dispatcher::Wake(const std::vector<v1::Channel>& channels) {
  for (auto& lane : lanes_) {
    if (std::any_of(channels.begin(), channels.end(),
                    [&](v1::Channel ch) { return OutboxLane(ch) == lane->index; })) {
      lane->loop->Wake();
    }
  }
}

}  // namespace casework::notify
