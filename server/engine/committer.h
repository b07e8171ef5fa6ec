// Group commit for case changes. Changes submitted by concurrent callers
// are written together by one thread with one Repository::CommitAll (one
// WAL sync for the lot); each caller's callback then runs on that thread
// with the change's new version or its error. A change submitted while
// nothing is queued or being written is written by the submitting thread
// itself, which spares a lone caller the hand-over to the committer thread
// and back; only one batch is written at a time either way.
//
// A change whose caller's deadline has passed by the time its batch is
// written is not written: its callback gets DEADLINE_EXCEEDED. The caller
// has given up on the answer already, and under a backlog the write would
// only delay the changes of callers still waiting.
//
// A change that CommitAll refuses with ABORTED because an earlier change of
// the same batch touched its case or keys is written again, first in the
// next batch, so callers see the answer a write of their own would have
// given: ABORTED only when the case changed after they read it.
//
// Thread safety: Submit may be called from any thread, including from a
// callback.
#ifndef CASEWORK_SERVER_ENGINE_COMMITTER_H_
#define CASEWORK_SERVER_ENGINE_COMMITTER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/metrics/metrics.h"
#include "storage/repository.h"

namespace casework::engine {

class Committer {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<int64_t> version)>;

  // `repo` and `metrics` (may be null) must outlive the committer. At most
  // `max_batch` changes go into one write.
  Committer(storage::Repository* repo, metrics::Metrics* metrics, size_t max_batch);
  ~Committer();
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Writes `mutation` with the next batch unless `deadline` has passed by
  // then; `done` runs once it is written or refused, on the thread that
  // wrote it (the caller's own when the committer was idle). After Stop,
  // `done` runs at once with UNAVAILABLE (except for a change submitted by
  // a callback, which is still written).
  void Submit(storage::CaseMutation mutation, absl::Time deadline, Done done);

  // Writes every queued change, runs the callbacks, and joins the thread.
  void Stop();

 private:
  struct Item {
    storage::CaseMutation mutation;
    Done done;
    absl::Time submitted;  // for casework_commit_wait_seconds
    absl::Time deadline;
    bool again = false;  // already refused once for a conflict in its batch
  };

  void Run();
  // Answers the changes of `batch` whose deadline has passed, writes the
  // others (WriteLive) and gives up the write turn, which the caller holds.
  void Write(std::vector<Item> batch);
  // Writes `batch` and runs its callbacks; requeues changes refused for a
  // conflict inside the batch.
  void WriteLive(std::vector<Item> batch);

  storage::Repository* repo_;
  metrics::Metrics* metrics_;
  const size_t max_batch_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool writing_ = false;  // a batch is being written (the write turn is taken)
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace casework::engine

#endif  // CASEWORK_SERVER_ENGINE_COMMITTER_H_
