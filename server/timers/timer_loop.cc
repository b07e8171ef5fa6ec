#include "server/timers/timer_loop.h"

#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/common/log.h"

namespace casework::timers {
namespace {
constexpr int kBatch = 1024;
// Timers that commit with one write, and such chunks in flight at once.
constexpr size_t kChunk = 128;
constexpr int kFireThreads = 4;
constexpr absl::Duration kLease = absl::Seconds(30);
// Upper bound on a sleep, so a clock jump cannot strand due timers.
constexpr absl::Duration kMaxSleep = absl::Seconds(5);
}  // namespace

TimerLoop::TimerLoop(storage::Repository* repo, engine::Engine* engine,
                     const Clock* clock, metrics::Metrics* metrics)
    : repo_(repo),
      engine_(engine),
      clock_(clock),
      metrics_(metrics),
      owner_(absl::StrCat("timers-", getpid())),
      firing_(kFireThreads, "timer-fire"),
      loop_("timers", [this] { return Step(); }) {}

int TimerLoop::RunOnce() {
  std::atomic<int> fired{0};
  for (;;) {
    auto due = repo_->Claim(storage::Queue::kTimers, clock_->Now(), kBatch, owner_, kLease);
    if (!due.ok()) {
      Log(LogLevel::kError, "timer_claim_failed", {{"error", std::string(due.status().message())}});
      break;
    }
    if (due->empty()) break;
    // Claimed oldest first, so each case's list is in due order. A wave
    // takes the next timer of every case; it fires in chunks of different
    // cases that each commit with one durable write, several at once.
    std::map<std::string, std::vector<const storage::QueueItem*>> by_case;
    for (const auto& timer : *due) by_case[timer.case_id].push_back(&timer);
    for (size_t wave = 0;; ++wave) {
      std::vector<std::vector<storage::QueueItem>> chunks(1);
      for (const auto& [id, timers] : by_case) {
        if (wave >= timers.size()) continue;
        if (chunks.back().size() == kChunk) chunks.emplace_back();
        chunks.back().push_back(*timers[wave]);
      }
      if (chunks.back().empty()) break;
      std::vector<std::function<void()>> tasks;
      for (const auto& chunk : chunks) {
        tasks.push_back([this, &chunk, &fired] {
          const std::vector<absl::Status> results = engine_->FireTimers(chunk);
          for (size_t i = 0; i < chunk.size(); ++i) {
            if (results[i].ok()) {
              ++fired;
            } else if (!absl::IsAborted(results[i])) {
              // Left leased; it is claimed again when the lease runs out.
              Log(LogLevel::kError, "timer_fire_failed",
                  {{"case_id", chunk[i].case_id}, {"timer", chunk[i].name},
                   {"error", std::string(results[i].message())}});
            }
          }
        });
      }
      firing_.RunAll(std::move(tasks));
    }
    if (static_cast<int>(due->size()) < kBatch) break;
  }
  if (auto pending = repo_->QueueSize(storage::Queue::kTimers); pending.ok()) {
    metrics_->SetTimersPending(*pending);
  }
  return fired.load();
}

absl::Time TimerLoop::Step() {
  const int done = RunOnce();
  const absl::Time now = absl::Now();
  auto next = repo_->NextDue(storage::Queue::kTimers);
  if (!next.ok() || !next->has_value()) return now + kMaxSleep;
  // A due head that this round could not handle is leased (its work failed
  // and waits for the lease to run out): look again in a second, not at once.
  const absl::Duration min_sleep = done == 0 ? absl::Seconds(1) : absl::Milliseconds(10);
  return std::min(std::max(**next, now + min_sleep), now + kMaxSleep);
}

void TimerLoop::Start() { loop_.Start(); }
void TimerLoop::Stop() { loop_.Stop(); }
void TimerLoop::Armed(absl::Time due) { loop_.Wake(due); }

}  // namespace casework::timers
