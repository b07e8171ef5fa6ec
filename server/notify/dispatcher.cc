#include "server/notify/dispatcher.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "server/common/log.h"

namespace casework::notify {
namespace {
constexpr int kBatch = 64;
constexpr absl::Duration kLease = absl::Seconds(60);
constexpr absl::Duration kMaxSleep = absl::Seconds(5);

bool IsPermanent(const absl::Status& s) {
  return absl::IsInvalidArgument(s) || absl::IsFailedPrecondition(s);
}
}  // namespace

absl::Duration Backoff(const RetryPolicy& policy, int attempt, double jitter) {
  absl::Duration d = policy.initial_backoff;
  for (int i = 1; i < attempt && d < policy.max_backoff; ++i) d *= 2;
  d = std::min(d, policy.max_backoff);
  return d * (0.8 + 0.4 * jitter);
}

Dispatcher::Dispatcher(storage::Repository* repo, Notifier* notifier, const Clock* clock,
                       metrics::Metrics* metrics, RetryPolicy policy)
    : repo_(repo),
      notifier_(notifier),
      clock_(clock),
      metrics_(metrics),
      policy_(policy),
      owner_(absl::StrCat("outbox-", getpid())),
      loop_([this] { return Step(); }) {}

void Dispatcher::Handle(const storage::QueueItem& item) {
  internal::OutboxMessage message;
  if (!message.ParseFromString(item.payload)) {
    Log(LogLevel::kError, "outbox_item_damaged", {{"case_id", item.case_id}, {"dedupe_key", item.name}});
    repo_->DeadLetter(item, item.payload).IgnoreError();
    return;
  }
  const std::string channel = ChannelLabel(message.channel());
  const absl::Time started = clock_->Now();
  absl::Status s = notifier_->Deliver(message);
  const absl::Duration took = clock_->Now() - started;
  if (s.ok()) {
    absl::Status done = repo_->Complete(storage::Queue::kOutbox, item);
    if (!done.ok()) {
      // Delivered but not recorded: it will be delivered again with the same
      // dedupe key, which receivers drop.
      Log(LogLevel::kWarning, "outbox_complete_failed",
          {{"dedupe_key", item.name}, {"error", std::string(done.message())}});
    }
    metrics_->NotificationResult(channel, "delivered", took);
    ++delivered_in_round_;
    return;
  }
  message.set_attempts(message.attempts() + 1);
  message.set_last_error(std::string(s.message()));
  if (IsPermanent(s) || message.attempts() >= policy_.max_attempts) {
    metrics_->NotificationResult(channel, "dead_letter", took);
    Log(LogLevel::kError, "notification_dead_lettered",
        {{"dedupe_key", item.name}, {"channel", channel},
         {"attempts", absl::StrCat(message.attempts())}, {"error", std::string(s.message())}});
    repo_->DeadLetter(item, message.SerializeAsString()).IgnoreError();
    return;
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
}

int Dispatcher::RunOnce() {
  delivered_in_round_ = 0;
  for (;;) {
    auto due = repo_->Claim(storage::Queue::kOutbox, clock_->Now(), kBatch, owner_, kLease);
    if (!due.ok()) {
      Log(LogLevel::kError, "outbox_claim_failed", {{"error", std::string(due.status().message())}});
      break;
    }
    for (const auto& item : *due) Handle(item);
    if (static_cast<int>(due->size()) < kBatch) break;
  }
  if (auto pending = repo_->QueueSize(storage::Queue::kOutbox); pending.ok()) {
    metrics_->SetOutboxPending(*pending);
  }
  if (auto dead = repo_->GetCounters("queue/dead"); dead.ok()) {
    auto it = dead->find("queue/dead");
    metrics_->SetDeadLetters(it == dead->end() ? 0 : it->second);
  }
  return delivered_in_round_;
}

absl::Time Dispatcher::Step() {
  const int done = RunOnce();
  const absl::Time now = absl::Now();
  auto next = repo_->NextDue(storage::Queue::kOutbox);
  if (!next.ok() || !next->has_value()) return now + kMaxSleep;
  // A due head that this round could not handle is leased (its work failed
  // and waits for the lease to run out): look again in a second, not at once.
  const absl::Duration min_sleep = done == 0 ? absl::Seconds(1) : absl::Milliseconds(10);
  return std::min(std::max(**next, now + min_sleep), now + kMaxSleep);
}

void Dispatcher::Start() { loop_.Start(); }
void Dispatcher::Stop() { loop_.Stop(); }
void Dispatcher::Wake() { loop_.Wake(); }

}  // namespace casework::notify
