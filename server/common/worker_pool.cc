#include "server/common/worker_pool.h"

#include "server/common/thread_name.h"

namespace casework {

WorkerPool::WorkerPool(int threads, std::string name) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this, name] {
      NameThisThread(name);
      Run();
    });
  }
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::Submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void WorkerPool::RunAll(std::vector<std::function<void()>> tasks) {
  std::mutex done_mu;
  std::condition_variable done;
  size_t running = tasks.size();
  for (auto& task : tasks) {
    Submit([&, task = std::move(task)] {
      task();
      // Notified under the lock: the waiter cannot return (and destroy
      // `done`) before this task lets go of it.
      std::lock_guard<std::mutex> lock(done_mu);
      if (--running == 0) done.notify_one();
    });
  }
  std::unique_lock<std::mutex> lock(done_mu);
  done.wait(lock, [&] { return running == 0; });
}

void WorkerPool::Run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace casework
