// The worker pool: queued work runs on its threads, RunAll waits for a
// whole set of tasks, and destruction finishes what was queued.
#include "server/common/worker_pool.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace casework {
namespace {

TEST(WorkerPoolTest, RunAllReturnsOnlyAfterEveryTaskRanOnThePool) {
  WorkerPool pool(4);
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::vector<int> done(100, 0);
  std::vector<std::function<void()>> tasks;
  for (int i = 0; i < 100; ++i) {
    tasks.push_back([&, i] {
      std::lock_guard<std::mutex> lock(mu);
      threads.insert(std::this_thread::get_id());
      done[i] = 1;
    });
  }
  pool.RunAll(std::move(tasks));
  // No lock needed: RunAll's return is ordered after every task.
  EXPECT_EQ(std::count(done.begin(), done.end(), 1), 100);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
}

TEST(WorkerPoolTest, RunAllOfNothingReturnsAtOnce) {
  WorkerPool pool(1);
  pool.RunAll({});
}

TEST(WorkerPoolTest, DestructionRunsEveryQueuedTask) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(2);
    for (int i = 0; i < 50; ++i) pool.Submit([&ran] { ++ran; });
  }
  EXPECT_EQ(ran.load(), 50);
}

}  // namespace
}  // namespace casework
