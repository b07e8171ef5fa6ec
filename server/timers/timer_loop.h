// Fires durable timers when they fall due. Each round claims the timers due
// now (cost proportional to those, not to all armed timers), fires them
// through the engine, and sleeps until the next due time or until a commit
// arms an earlier one. The timers of one case fire in due order; timers of
// different cases fire in chunks that commit with one write each, several
// chunks at once, so that a burst of due timers shares its fsyncs instead
// of paying one each.
#ifndef CASEWORK_SERVER_TIMERS_TIMER_LOOP_H_
#define CASEWORK_SERVER_TIMERS_TIMER_LOOP_H_

#include <string>

#include "server/common/background_loop.h"
#include "server/common/clock.h"
#include "server/common/worker_pool.h"
#include "server/engine/engine.h"
#include "server/metrics/metrics.h"
#include "storage/repository.h"

namespace casework::timers {

class TimerLoop {
 public:
  TimerLoop(storage::Repository* repo, engine::Engine* engine, const Clock* clock,
            metrics::Metrics* metrics);

  // Fires everything due at the clock's current time; returns how many
  // timers fired. Safe to call from tests with a simulated clock.
  int RunOnce();

  // Runs RunOnce on a background thread (production); the thread waits on
  // the real clock.
  void Start();
  void Stop();
  // A commit armed a timer due at `due`.
  void Armed(absl::Time due);

 private:
  absl::Time Step();

  storage::Repository* repo_;
  engine::Engine* engine_;
  const Clock* clock_;
  metrics::Metrics* metrics_;
  std::string owner_;
  WorkerPool firing_;
  BackgroundLoop loop_;
};

}  // namespace casework::timers

#endif  // CASEWORK_SERVER_TIMERS_TIMER_LOOP_H_
