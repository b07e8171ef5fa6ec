// The background loop: its step runs on a thread of the loop's name, again
// when woken for a time before the one it planned, and not after Stop.
#include "server/common/background_loop.h"

#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/common/thread_name.h"

namespace casework {
namespace {

TEST(BackgroundLoopTest, StepsRunOnANamedThreadWhenWoken) {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<std::string> steps;  // the thread name of each step
  BackgroundLoop loop("test-loop", [&] {
    std::lock_guard<std::mutex> lock(mu);
    steps.push_back(ThisThreadName());
    changed.notify_all();
    return absl::InfiniteFuture();  // only when woken
  });
  auto wait_for = [&](size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return changed.wait_for(lock, std::chrono::seconds(10), [&] { return steps.size() >= n; });
  };
  loop.Start();
  ASSERT_TRUE(wait_for(1));
  loop.Wake();
  ASSERT_TRUE(wait_for(2));
  loop.Stop();
  loop.Wake();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(steps, (std::vector<std::string>{"test-loop", "test-loop"}));
}

// Times thread `tid` of this process gave up its CPU to wait.
int64_t WaitsOf(pid_t tid) {
  std::ifstream status("/proc/self/task/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::stoll(line.substr(24));
  }
  return -1;
}

TEST(BackgroundLoopTest, AWakeForLaterThanPlannedLeavesTheThreadAsleep) {
  std::atomic<pid_t> tid{0};
  std::atomic<int> steps{0};
  BackgroundLoop loop("test-loop", [&] {
    tid = gettid();
    ++steps;
    return absl::Now() + absl::Hours(1);
  });
  loop.Start();
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (steps == 0 && absl::Now() < give_up) std::this_thread::yield();
  ASSERT_EQ(steps, 1);
  // Let the thread reach its wait for the planned hour.
  absl::SleepFor(absl::Milliseconds(50));
  const int64_t before = WaitsOf(tid);
  ASSERT_GE(before, 0);
  for (int i = 0; i < 1000; ++i) {
    loop.Wake(absl::Now() + absl::Hours(2));
    std::this_thread::yield();
  }
  EXPECT_LE(WaitsOf(tid) - before, 2);
  EXPECT_EQ(steps, 1);
  loop.Wake(absl::Now());  // before the planned hour: runs now
  while (steps == 1 && absl::Now() < give_up) std::this_thread::yield();
  EXPECT_EQ(steps, 2);
}

}  // namespace
}  // namespace casework
