// A fixed set of threads running queued tasks: administrative RPCs that
// write (so that gRPC's own threads never wait on their fsync) and the
// timer loop's chunks of fires.
#ifndef CASEWORK_SERVER_COMMON_WORKER_POOL_H_
#define CASEWORK_SERVER_COMMON_WORKER_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace casework {

class WorkerPool {
 public:
  // The threads are all named `name` (see thread_name.h).
  WorkerPool(int threads, std::string name);
  // Runs every task already queued, then joins the threads.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Submit(std::function<void()> task);
  // Runs every task on the pool and returns when all have finished.
  void RunAll(std::vector<std::function<void()>> tasks);

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_WORKER_POOL_H_
