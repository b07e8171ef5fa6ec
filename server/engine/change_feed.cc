#include "server/engine/change_feed.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace casework::engine {

ChangeFeed::ChangeFeed(size_t capacity)
    : capacity_(capacity), epoch_(absl::StrCat(absl::ToUnixMicros(absl::Now()))) {}

namespace {

void Count(std::vector<std::pair<std::string, int64_t>>* columns, const std::string& state,
           int64_t delta) {
  for (auto& [name, count] : *columns) {
    if (name == state) count += delta;
  }
}

}  // namespace

void ChangeFeed::SetBoard(BoardCounts board) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string kind = board.kind;
  boards_[kind] = std::move(board);
}

void ChangeFeed::Publish(CaseChange change) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    change.sequence = ++last_;
    if (auto it = boards_.find(change.kind); it != boards_.end()) {
      BoardCounts& board = it->second;
      if (change.previous_state != change.state) {
        if (!change.previous_state.empty()) Count(&board.columns, change.previous_state, -1);
        Count(&board.columns, change.state, 1);
      }
      for (const auto& moved : change.sla_changes) {
        for (auto& sla : board.slas) {
          if (sla.sla != moved.sla) continue;
          sla.at_risk += moved.at_risk;
          sla.breached += moved.breached;
        }
      }
    }
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

std::vector<BoardCounts> ChangeFeed::Boards(const std::set<std::string>& kinds,
                                            uint64_t* sequence) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<BoardCounts> out;
  for (const auto& kind : kinds) {
    if (auto it = boards_.find(kind); it != boards_.end()) out.push_back(it->second);
  }
  *sequence = last_;
  return out;
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
