#include "server/engine/change_feed.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace casework::engine {

ChangeFeed::ChangeFeed(size_t capacity)
    : capacity_(capacity), epoch_(absl::StrCat(absl::ToUnixMicros(absl::Now()))) {}

void ChangeFeed::Publish(CaseChange change) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    change.sequence = ++last_;
    changes_.push_back(std::move(change));
    if (changes_.size() > capacity_) changes_.pop_front();
  }
  std::lock_guard<std::mutex> lock(subscribers_mu_);
  for (const auto& [id, wake] : subscribers_) wake();
}

std::optional<std::vector<CaseChange>> ChangeFeed::Since(uint64_t sequence) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (sequence > last_) return std::nullopt;
  const uint64_t first = changes_.empty() ? last_ + 1 : changes_.front().sequence;
  if (sequence + 1 < first) return std::nullopt;  // already dropped
  std::vector<CaseChange> out;
  for (auto it = changes_.begin() + (sequence + 1 - first); it != changes_.end(); ++it) out.push_back(*it);
  return out;
}

uint64_t ChangeFeed::last() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_;
}

int ChangeFeed::Subscribe(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(subscribers_mu_);
  subscribers_[next_id_] = std::move(wake);
  return next_id_++;
}

void ChangeFeed::Unsubscribe(int id) {
  std::lock_guard<std::mutex> lock(subscribers_mu_);
  subscribers_.erase(id);
}

}  // namespace casework::engine
