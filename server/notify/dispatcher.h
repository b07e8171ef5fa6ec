// Delivers the outbox: claims due messages, hands them to the notifier,
// and completes, retries (exponential backoff with jitter) or dead-letters
// each. A message's dedupe key stays the same across retries.
#ifndef CASEWORK_SERVER_NOTIFY_DISPATCHER_H_
#define CASEWORK_SERVER_NOTIFY_DISPATCHER_H_

#include <string>

#include "absl/time/time.h"
#include "server/common/background_loop.h"
#include "server/common/clock.h"
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

class Dispatcher {
 public:
  Dispatcher(storage::Repository* repo, Notifier* notifier, const Clock* clock,
             metrics::Metrics* metrics, RetryPolicy policy);

  // Delivers everything due now; returns how many messages were accepted.
  int RunOnce();

  void Start();
  void Stop();
  void Wake();

 private:
  absl::Time Step();
  void Handle(const storage::QueueItem& item);

  storage::Repository* repo_;
  Notifier* notifier_;
  const Clock* clock_;
  metrics::Metrics* metrics_;
  RetryPolicy policy_;
  std::string owner_;
  int delivered_in_round_ = 0;
  BackgroundLoop loop_;
};

}  // namespace casework::notify

#endif  // CASEWORK_SERVER_NOTIFY_DISPATCHER_H_
