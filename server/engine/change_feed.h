// Recent case changes in memory, numbered, for live board streams. A
// stream resumes from a number while the feed still holds it; the feed's
// epoch changes with every start, so numbers of a previous run are never
// mistaken for this one's.
#ifndef CASEWORK_SERVER_ENGINE_CHANGE_FEED_H_
#define CASEWORK_SERVER_ENGINE_CHANGE_FEED_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace casework::engine {

struct CaseChange {
  uint64_t sequence = 0;
  std::string kind;
  std::string case_id;
  std::string previous_state;  // empty for a new case
  std::string state;
  int64_t version = 0;
  absl::Time time;
  std::string assignee;  // after the change
};

class ChangeFeed {
 public:
  explicit ChangeFeed(size_t capacity = 100000);

  const std::string& epoch() const { return epoch_; }

  // Numbers and stores a change, then calls every subscriber.
  void Publish(CaseChange change);

  // Changes after `sequence`, oldest first; nullopt when the feed no longer
  // holds them all.
  std::optional<std::vector<CaseChange>> Since(uint64_t sequence) const;
  uint64_t last() const;

  // `wake` runs on the publishing thread after each change and must be
  // quick. After Unsubscribe returns it is never called again.
  int Subscribe(std::function<void()> wake);
  void Unsubscribe(int id);

 private:
  const size_t capacity_;
  const std::string epoch_;
  mutable std::mutex mu_;  // the buffer
  std::deque<CaseChange> changes_;
  uint64_t last_ = 0;
  std::mutex subscribers_mu_;  // held while subscribers run
  std::map<int, std::function<void()>> subscribers_;
  int next_id_ = 1;
};

}  // namespace casework::engine

#endif  // CASEWORK_SERVER_ENGINE_CHANGE_FEED_H_
