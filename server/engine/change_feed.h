// Recent case changes in memory, numbered, for live board streams. A
// stream resumes from a number while the feed still holds it; the feed's
// epoch changes with every start, so numbers of a previous run are never
// mistaken for this one's. The feed also keeps the boards' counts, moved
// by each change as it is numbered, so that a board read from it counts
// exactly the changes up to a number.
#ifndef CASEWORK_SERVER_ENGINE_CHANGE_FEED_H_
#define CASEWORK_SERVER_ENGINE_CHANGE_FEED_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace casework::engine {

// One SLA's open clocks (running or paused) past the warning and not
// breached, and past the breach; in a CaseChange, what the change adds to
// them.
struct SlaAttentionCount {
  std::string sla;
  int64_t at_risk = 0;
  int64_t breached = 0;
};

// A kind's cases per state, in workflow order, and per SLA, in policy
// order.
struct BoardCounts {
  std::string kind;
  std::vector<std::pair<std::string, int64_t>> columns;
  std::vector<SlaAttentionCount> slas;
};

struct CaseChange {
  uint64_t sequence = 0;
  std::string kind;
  std::string case_id;
  std::string previous_state;  // empty for a new case
  std::string state;
  int64_t version = 0;
  absl::Time time;
  std::string assignee;  // after the change
  std::vector<SlaAttentionCount> sla_changes;  // the SLAs whose counts move
};

class ChangeFeed {
 public:
  explicit ChangeFeed(size_t capacity = 100000);

  const std::string& epoch() const { return epoch_; }

  // The counts of a kind's board before the first change is published.
  void SetBoard(BoardCounts board);

  // Numbers and stores a change, moves its board's counts, then calls
  // every subscriber.
  void Publish(CaseChange change);

  // The boards of `kinds` (those set) as of the change numbered
  // `*sequence`: they count every change up to it and none after.
  std::vector<BoardCounts> Boards(const std::set<std::string>& kinds, uint64_t* sequence) const;

  // Changes after `sequence`, oldest first; nullopt when the feed no longer
  // holds them all.
  std::optional<std::vector<CaseChange>> Since(uint64_t sequence) const;

  // `wake` runs on the publishing thread after each change and must be
  // quick. After Unsubscribe returns it is never called again.
  int Subscribe(std::function<void()> wake);
  void Unsubscribe(int id);

 private:
  const size_t capacity_;
  const std::string epoch_;
  mutable std::mutex mu_;  // the buffer and the boards
  std::deque<CaseChange> changes_;
  std::map<std::string, BoardCounts> boards_;
  uint64_t last_ = 0;
  std::mutex subscribers_mu_;  // held while subscribers run
  std::map<int, std::function<void()>> subscribers_;
  int next_id_ = 1;
};

}  // namespace casework::engine

#endif  // CASEWORK_SERVER_ENGINE_CHANGE_FEED_H_
