// Delivers the outbox: claims due messages, hands them to the router, and
// completes, retries (exponential backoff with jitter) or dead-letters
// each. A message's dedupe key stays the same across retries, and a retry
// goes only to the notifiers that have not accepted it yet. Each channel
// has its own lane (a thread, and its own part of the outbox), so a slow
// or failing channel holds up only its own messages. A lane sends the
// messages of several cases at once, and the messages of one case one
// after another, in order.
#ifndef CASEWORK_SERVER_NOTIFY_DISPATCHER_H_
#define CASEWORK_SERVER_NOTIFY_DISPATCHER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/common/background_loop.h"
#include "server/common/clock.h"
#include "server/common/worker_pool.h"
#include "server/metrics/metrics.h"
#include "server/notify/notifier.h"
#include "storage/repository.h"

namespace casework::notify {

struct RetryPolicy {
  int max_attempts = 8;
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Minutes(5);
};

// The delay before attempt `attempt + 1`, given `attempt` failures so far;
// `jitter` in [0, 1) spreads retries by up to +-20%.
absl::Duration Backoff(const RetryPolicy& policy, int attempt, double jitter);

// The outbox lane (storage::QueueItem::lane) of a message of `channel`:
// chat, SMS and webhooks have their own; email and anything else, lane 0.
int OutboxLane(v1::Channel channel);

class Dispatcher {
 public:
  // Each lane sends up to `senders` messages at once, of as many cases,
  // each over a connection of its own: a receiver a few milliseconds away
  // spends most of a message's time in round trips.
  Dispatcher(storage::Repository* repo, Router* router, const Clock* clock,
             metrics::Metrics* metrics, RetryPolicy policy, int senders);
  ~Dispatcher();

  // Delivers everything due now, lane by lane; returns how many messages
  // were accepted.
  int RunOnce();

  // Called on a lane's thread with each message just moved to the dead
  // letters (its attempts and last error set). Set before Start().
  using DeadLetterListener = std::function<void(const internal::OutboxMessage&)>;
  void SetDeadLetterListener(DeadLetterListener listener) { dead_letter_listener_ = std::move(listener); }

  void Start();
  void Stop();
  // New messages of these channels were queued: wakes their lanes (a
  // channel without a lane of its own goes with email).
  void Wake(const std::vector<v1::Channel>& channels);

 private:
  struct Lane;
  // One claim of a lane's due messages and their delivery.
  struct Round {
    int claimed = 0;
    int delivered = 0;
  };
  Round RunLane(Lane& lane);
  absl::Time Step(Lane& lane);
  // True when delivered.
  bool Handle(const storage::QueueItem& item);
  void UpdateGauges();

  storage::Repository* repo_;
  Router* router_;
  const Clock* clock_;
  metrics::Metrics* metrics_;
  RetryPolicy policy_;
  const int senders_;
  std::string owner_;
  DeadLetterListener dead_letter_listener_;
  std::vector<std::unique_ptr<Lane>> lanes_;
};

}  // namespace casework::notify

#endif  // CASEWORK_SERVER_NOTIFY_DISPATCHER_H_
