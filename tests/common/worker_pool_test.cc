// The worker pool: queued work runs on its named threads, RunAll waits for
// a whole set of tasks, and destruction finishes what was queued.
#include "server/common/worker_pool.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/common/thread_name.h"

namespace casework {
namespace {

TEST(WorkerPoolTest, RunAllReturnsOnlyAfterEveryTaskRanOnThePool) {
  WorkerPool pool(4, "test-pool");
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::set<std::string> names;
  std::vector<int> done(100, 0);
  std::vector<std::function<void()>> tasks;
  for (int i = 0; i < 100; ++i) {
    tasks.push_back([&, i] {
      std::lock_guard<std::mutex> lock(mu);
      threads.insert(std::this_thread::get_id());
      names.insert(ThisThreadName());
      done[i] = 1;
    });
  }
  pool.RunAll(std::move(tasks));
  // No lock needed: RunAll's return is ordered after every task.
  EXPECT_EQ(std::count(done.begin(), done.end(), 1), 100);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
  EXPECT_EQ(names, std::set<std::string>{"test-pool"});
}

TEST(WorkerPoolTest, ALongNameIsCutToWhatLinuxKeeps) {
  WorkerPool pool(1, "outbox-senders-of-webhooks");
  std::string name;
  pool.RunAll({[&name] { name = ThisThreadName(); }});
  EXPECT_EQ(name, "outbox-senders-");
}

TEST(WorkerPoolTest, RunAllOfNothingReturnsAtOnce) {
  WorkerPool pool(1, "test-pool");
  pool.RunAll({});
}

TEST(WorkerPoolTest, DestructionRunsEveryQueuedTask) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(2, "test-pool");
    for (int i = 0; i < 50; ++i) pool.Submit([&ran] { ++ran; });
  }
  EXPECT_EQ(ran.load(), 50);
}

}  // namespace
}  // namespace casework
