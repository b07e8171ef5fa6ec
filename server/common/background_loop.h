// A thread that runs a step function whenever it is woken or its next
// deadline passes. Shared by the timer loop and the outbox dispatcher.
#ifndef CASEWORK_SERVER_COMMON_BACKGROUND_LOOP_H_
#define CASEWORK_SERVER_COMMON_BACKGROUND_LOOP_H_

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"

namespace casework {

class BackgroundLoop {
 public:
  // `step` does one round of work and returns when it wants to run again
  // (absl::InfiniteFuture(): only when woken). Times are wall-clock. The
  // thread is named `name` (see thread_name.h).
  BackgroundLoop(std::string name, std::function<absl::Time()> step);
  ~BackgroundLoop();  // stops

  void Start();
  // Returns after the current step (if any) has finished.
  void Stop();
  // Runs the step again soon, or no later than `at`.
  void Wake(absl::Time at = absl::InfinitePast());

 private:
  void Run();

  const std::string name_;
  std::function<absl::Time()> step_;
  std::mutex mu_;
  std::condition_variable cv_;
  absl::Time next_ = absl::InfinitePast();
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_BACKGROUND_LOOP_H_
