#include "server/engine/committer.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "server/common/crash_point.h"
#include "server/common/thread_name.h"

namespace casework::engine {

namespace {
// The committer whose callbacks this thread is running, if any: their
// follow-up changes are still written after Stop.
thread_local const Committer* answering = nullptr;
}  // namespace

Committer::Committer(storage::Repository* repo, metrics::Metrics* metrics, size_t max_batch)
    : repo_(repo), metrics_(metrics), max_batch_(max_batch), thread_([this] {
        NameThisThread("committer");
        Run();
      }) {}

Committer::~Committer() { Stop(); }

void Committer::Submit(storage::CaseMutation mutation, absl::Time deadline, Done done) {
  Item item{std::move(mutation), std::move(done), absl::Now(), deadline};
  std::vector<Item> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool refused = stopping_ && answering != this;
    if (!refused && (writing_ || !queue_.empty() || stopping_)) {
      queue_.push_back(std::move(item));
      if (!writing_) cv_.notify_one();
      return;
    }
    if (!refused) {
      writing_ = true;  // idle: this thread writes the change itself
      batch.push_back(std::move(item));
    }
  }
  if (batch.empty()) return item.done(absl::UnavailableError("the server is stopping"));
  Write(std::move(batch));
}

void Committer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void Committer::Run() {
  for (;;) {
    std::vector<Item> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return !writing_ && (!queue_.empty() || stopping_); });
      if (queue_.empty()) return;
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      writing_ = true;
    }
    Write(std::move(batch));
  }
}

void Committer::Write(std::vector<Item> batch) {
  // Changes whose callers have given up are answered, not written.
  const auto live_end = std::stable_partition(
      batch.begin(), batch.end(), [now = absl::Now()](const Item& item) { return item.deadline > now; });
  answering = this;
  for (auto it = live_end; it != batch.end(); ++it) {
    it->done(absl::DeadlineExceededError(
        "the call's deadline passed while its change waited to be written; nothing was changed"));
  }
  answering = nullptr;
  batch.erase(live_end, batch.end());
  if (!batch.empty()) WriteLive(std::move(batch));
  std::lock_guard<std::mutex> lock(mu_);
  writing_ = false;
  if (!queue_.empty() || stopping_) cv_.notify_one();
}

void Committer::WriteLive(std::vector<Item> batch) {
  std::vector<storage::CaseMutation> mutations;
  mutations.reserve(batch.size());
  for (auto& item : batch) mutations.push_back(std::move(item.mutation));
  CrashPoint("commit.before_write");
  const absl::Time started = absl::Now();
  std::vector<absl::StatusOr<int64_t>> versions = repo_->CommitAll(mutations);
  if (metrics_ != nullptr) {
    metrics_->CaseCommit(mutations.size(), absl::Now() - started);
    // Each change once: a change written again is not counted again.
    for (const auto& item : batch) {
      if (!item.again) metrics_->CommitWaited(started - item.submitted);
    }
  }
  CrashPoint("commit.after_write");
  // Refused for a conflict with an earlier change of this batch: written
  // again ahead of everything queued since.
  std::vector<Item> again;
  if (batch.size() > 1) {
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!absl::IsAborted(versions[i].status()) || batch[i].again) continue;
      batch[i].mutation = std::move(mutations[i]);
      batch[i].again = true;
      again.push_back(std::move(batch[i]));
      batch[i].done = nullptr;
    }
  }
  if (!again.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = again.rbegin(); it != again.rend(); ++it) queue_.push_front(std::move(*it));
  }
  // The turn is held until the callbacks are done, so changes are published
  // in the order they were written.
  answering = this;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].done) batch[i].done(std::move(versions[i]));
  }
  answering = nullptr;
}

}  // namespace casework::engine
