#include "server/common/background_loop.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "server/common/thread_name.h"

namespace casework {

BackgroundLoop::BackgroundLoop(std::string name, std::function<absl::Time()> step)
    : name_(std::move(name)), step_(std::move(step)) {}

BackgroundLoop::~BackgroundLoop() { Stop(); }

void BackgroundLoop::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] {
    NameThisThread(name_);
    Run();
  });
}

void BackgroundLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BackgroundLoop::Wake(absl::Time at) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The thread runs the step by next_ anyway; only an earlier time needs
    // it woken. (A timer armed for next week must not wake the timer loop.)
    if (at >= next_) return;
    next_ = at;
  }
  cv_.notify_all();
}

void BackgroundLoop::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const absl::Time now = absl::Now();
    if (next_ > now) {
      if (next_ == absl::InfiniteFuture()) {
        cv_.wait(lock);
      } else {
        cv_.wait_for(lock, absl::ToChronoNanoseconds(next_ - now));
      }
      continue;
    }
    next_ = absl::InfiniteFuture();
    lock.unlock();
    const absl::Time again = step_();
    lock.lock();
    next_ = std::min(next_, again);
  }
}

}  // namespace casework
