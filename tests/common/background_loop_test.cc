// The background loop: its step runs on a thread of the loop's name, again
// when woken, and not after Stop.
#include "server/common/background_loop.h"

#include <condition_variable>
#include <mutex>
#include <string>
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

}  // namespace
}  // namespace casework
