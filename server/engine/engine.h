// The engine: loads a case, asks its workflow to decide, and commits one
// atomic mutation (case + timeline events + index entries + timers +
// outbox). All services share it; it knows no gRPC.
//
// Thread safety: all methods may be called concurrently. Concurrent changes
// to one case are serialised by the repository's version check.
#ifndef CASEWORK_SERVER_ENGINE_ENGINE_H_
#define CASEWORK_SERVER_ENGINE_ENGINE_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "server/common/clock.h"
#include "server/common/secret_box.h"
#include "server/engine/change_feed.h"
#include "server/engine/committer.h"
#include "server/metrics/metrics.h"
#include "server/notify/templates.h"
#include "server/sla/calendar_store.h"
#include "server/workflow/workflow.h"
#include "storage/repository.h"

namespace casework::engine {

using internal::CaseRecord;

struct CaseView {
  CaseRecord record;
  int64_t version = 0;
  // The case's SLA clocks as of now (consumed time is live).
  std::vector<v1::Sla> slas;
  // Set only by actions that reveal a secret.
  std::string reveal;
};

struct CasePage {
  std::vector<CaseView> cases;
  std::string next_page_token;
};

struct EventPage {
  std::vector<v1::TimelineEvent> events;
  std::string next_page_token;
};

// Receives the result of a change: the case as stored once the change is
// durable, or the error that stopped it (then nothing was written).
using CaseCallback = absl::AnyInvocable<void(absl::StatusOr<CaseView>)>;

// The index of cases that need attention for an SLA: an open clock past its
// warning (at risk) or past its breach, by kind.
inline constexpr char kSlaStatusIndex[] = "sla_status";
inline constexpr char kSlaAtRisk[] = "at_risk";
inline constexpr char kSlaBreached[] = "breached";
// Open cases by who they are given to: "KIND/assignee".
inline constexpr char kAssigneeIndex[] = "assignee";

// An index to list by: ("state", "PROBLEM_ORDER"), ("v_number", "V1234567").
// An empty index lists every case of the kind.
struct ListFilter {
  std::string index;
  std::string value;
};

class Engine {
 public:
  // All pointers must outlive the engine.
  Engine(storage::Repository* repo, const Clock* clock,
         notify::TemplateStore* templates, sla::CalendarStore* calendars,
         metrics::Metrics* metrics);
  ~Engine();

  // Call before serving.
  void Register(std::unique_ptr<workflow::Workflow> workflow);
  // Seals case secrets at rest. Without one (unit tests) they are stored as
  // given.
  void SetSecretBox(const SecretBox* box) { secrets_ = box; }
  // Receives every committed change of a case (for live boards).
  void SetChangeFeed(ChangeFeed* feed) { feed_ = feed; }
  const workflow::Workflow* Find(const std::string& kind) const;
  std::vector<const workflow::Workflow*> workflows() const;
  // The case's resource name in the API, e.g. "tradeIns/{id}".
  std::string ResourceName(const std::string& kind, const std::string& case_id) const;

  // Case changes are decided on the calling thread and written by the
  // committer together with the changes of other callers (one sync for
  // all). `done` runs once: on the calling thread when the change fails
  // before its write, otherwise on the committer's thread once the change
  // is durable. `input` must stay valid until `done` has run. A change that
  // is still waiting to be written when `deadline` passes (the caller's RPC
  // deadline) is not written: DEADLINE_EXCEEDED.
  //
  // Creates a case through the workflow's creating transition. `case_id`
  // empty: a new id. A non-empty `request_id` makes retries return the case
  // the first call created. ALREADY_EXISTS if `case_id` is taken.
  void Create(const std::string& kind, const std::string& case_id,
              const std::string& request_id, const workflow::Actor& actor,
              const google::protobuf::Message& input, absl::Time deadline, CaseCallback done);

  // Runs `action` on a case. `expected_version` < 0 means "no etag": a
  // concurrent change is retried transparently; otherwise a different
  // version fails with ABORTED and nothing changes.
  void Act(const std::string& kind, const std::string& case_id, int64_t expected_version,
           const std::string& action, const workflow::Actor& actor,
           const google::protobuf::Message& input, absl::Time deadline, CaseCallback done);

  // Create and Act for callers that wait for the result (never from a
  // CaseCallback: it runs on the thread that would write the change).
  absl::StatusOr<CaseView> Create(const std::string& kind, const std::string& case_id,
                                  const std::string& request_id,
                                  const workflow::Actor& actor,
                                  const google::protobuf::Message& input);
  absl::StatusOr<CaseView> Act(const std::string& kind, const std::string& case_id,
                               int64_t expected_version, const std::string& action,
                               const workflow::Actor& actor,
                               const google::protobuf::Message& input);

  // Records on its case's timeline what became of a notification:
  // workflow::kNotificationFailedAction (the server, when it became a dead
  // letter) or kNotificationRequeuedAction (an admin sent it again). The
  // message itself is already handled, so a failure here is logged only.
  void NoteNotification(const std::string& action, const workflow::Actor& actor,
                        const internal::OutboxMessage& message);

  // Puts dead letter `key` (its dedupe key) of case `case_id` back in the
  // outbox for a full round of attempts, notes that on the case's timeline
  // in `actor`'s name and tells the commit listener, so that its channel is
  // delivered at once. Returns the message as it goes back out (only its
  // case and dedupe key when the stored payload is damaged).
  absl::StatusOr<internal::OutboxMessage> RetryDeadLetter(const std::string& case_id,
                                                          const std::string& key,
                                                          const workflow::Actor& actor);

  // Writes the changes already submitted; later ones fail with UNAVAILABLE.
  void Stop();

  // The case with its SLA views, for returning to a client.
  absl::StatusOr<CaseView> Get(const std::string& kind, const std::string& case_id);
  // The stored case without SLA views (cheaper; for reading its fields).
  absl::StatusOr<CaseView> Load(const std::string& kind, const std::string& case_id);

  absl::StatusOr<CasePage> List(const std::string& kind, const ListFilter& filter,
                                const std::string& page_token, int page_size);

  // The kind's board as stored: every state in board order with its cases,
  // every SLA in policy order with its open clocks that need attention.
  absl::StatusOr<BoardCounts> Board(const std::string& kind);

  absl::StatusOr<EventPage> Events(const std::string& kind, const std::string& case_id,
                                   const std::string& page_token, int page_size);

  absl::StatusOr<std::string> GetAttachment(const std::string& kind,
                                            const std::string& case_id,
                                            const std::string& attachment_id);

  // Fires a claimed timer: the workflow's "timer:<name prefix>" action runs
  // and the timer is consumed in the same commit, so its effects happen
  // once even if the timer is claimed again after a crash. A timer that no
  // longer applies (the case moved on) is consumed without effect.
  absl::Status FireTimer(const storage::QueueItem& timer);
  // Fires several claimed timers of different cases with one durable write
  // (storage::Repository::CommitAll); a timer whose case changed meanwhile
  // is fired again on its own. One status per timer, as FireTimer returns.
  std::vector<absl::Status> FireTimers(const std::vector<storage::QueueItem>& timers);

  // Called after every commit that armed a timer (with its earliest due
  // time) or queued notifications (with their channels), so the loops can
  // wake up.
  using CommitListener = std::function<void(bool armed_timer, absl::Time earliest_due,
                                            const std::vector<v1::Channel>& outbox_channels)>;
  void SetCommitListener(CommitListener listener);

  // Cases of every kind that name `subject` (see PersonalSubjects), e.g.
  // "email:jan@example.nl".
  absl::StatusOr<std::vector<CaseView>> FindBySubject(const std::string& subject);
  // True when the case is in one of its workflow's final states.
  bool IsClosed(const CaseRecord& record) const;
  // Erases the personal data of a closed case: its personal fields,
  // attachments, pending and dead notifications, and the free text of its
  // timeline, in one commit that records an EVENT_TYPE_PERSONAL_DATA_ERASED
  // event. States, event types and times, and SLA ledgers stay. Returns
  // how many earlier events were redacted. FAILED_PRECONDITION if the case
  // is open.
  absl::StatusOr<int> ErasePersonalData(const std::string& case_id,
                                        const workflow::Actor& actor);

  // Sets the board and SLA attention gauges, and the change feed's boards,
  // from the stored counters. Runs at start, before any case changes.
  absl::Status LoadBoards();

  // Re-derives the SLA deadlines of every case measured on `calendar`
  // (after an edit) and re-arms their timers. Returns how many cases
  // changed.
  absl::StatusOr<int> RecomputeCalendar(const std::string& calendar);
  // Moves the running clocks of every deleted calendar (CalendarStore::
  // Retire) onto the calendars they start on now, once per deletion; also
  // at start, for a deletion the server stopped in the middle of. Returns
  // how many cases changed.
  absl::StatusOr<int> MoveOffDeletedCalendars();

  // Moves running SLA clocks onto edited policies (after a configuration
  // change): only when a policy's fingerprint differs from the one last
  // applied, and then only the cases whose clocks are on an older version.
  // Returns how many cases changed.
  absl::StatusOr<int> RecomputePolicies();

  // Brings the indexes of a store written by an older version up to date,
  // each upgrade once (a record in "store_upgrades" says it is done, and
  // store_upgraded is logged). Must run before anything changes a case: a
  // change only writes the index entries that differ between the case
  // before and after it, so an entry wrong now would stay wrong. Returns
  // how many cases changed.
  absl::StatusOr<int> UpgradeStore();
  // The upgrades UpgradeStore runs: the sla_status entries of clocks at
  // risk or breached, the assignee entries of closed cases removed (the
  // index holds open cases only), and the entries workflows give as former
  // keys replaced with their current ones, and the count of breached open
  // clocks set from the cases.
  absl::StatusOr<int> IndexSlaStatus();
  absl::StatusOr<int> DropClosedAssignees();
  absl::StatusOr<int> ReplaceFormerIndexKeys();
  absl::StatusOr<int> CountBreachedClocks();

 private:
  // A change decided, rendered and turned into a mutation, not yet written.
  struct Staged {
    storage::CaseMutation mutation;
    CaseRecord record;  // the case after the change, secrets open
    std::string before_state;
    int64_t before_version = 0;
    bool moved = false;  // created or changed state
    bool armed_timer = false;
    std::vector<v1::Channel> outbox_channels;  // of the notifications it queues
    absl::Time now;
    absl::Time earliest = absl::InfiniteFuture();  // of the timers it arms
    std::string reveal;
    std::vector<std::function<void()>> after_commit;
    std::vector<SlaAttentionCount> sla_changes;  // see CountSlaChanges
    // False when the decision changed nothing: there is nothing to write,
    // and `record` is the case as it is, at `before_version`.
    bool changed = true;
  };

  // Secret values <-> their sealed form, in place.
  absl::Status SealSecrets(CaseRecord* record) const;
  absl::Status OpenSecrets(CaseRecord* record) const;
  // An Act call, kept for deciding again after a conflict.
  struct ActRequest {
    std::string kind;
    std::string case_id;
    int64_t expected_version = -1;
    std::string action;
    workflow::Actor actor;
    const google::protobuf::Message* input = nullptr;
    absl::Time deadline = absl::InfiniteFuture();
  };

  // Runs `upgrade` unless the store records `name` as done; then records it.
  absl::StatusOr<int> UpgradeOnce(const std::string& name,
                                  const std::function<absl::StatusOr<int>()>& upgrade);
  // Calls `visit` with every case of `entry`, stored and parsed, a page at
  // a time; stops at the first error, its own or the store's.
  absl::Status ForEachCase(
      const storage::IndexEntry& entry,
      const std::function<absl::Status(storage::StoredCase&, CaseRecord&)>& visit);
  // Writes, for every case of `entry`, the index changes `rewrite` puts in
  // the mutation it is given (nothing when it leaves them empty).
  absl::Status RewriteIndexes(
      const storage::IndexEntry& entry,
      const std::function<void(const CaseRecord&, storage::CaseMutation*)>& rewrite);
  // Decides `request` on the case as stored now and stages the change.
  absl::StatusOr<Staged> StageAct(const ActRequest& request);
  void ActAttempt(ActRequest request, int attempt, CaseCallback done);
  // Writes a staged change through the committer unless `deadline` passes
  // first; `done` receives the case as stored (published) or the error.
  void Write(Staged staged, absl::Time deadline, CaseCallback done);
  // What a change writes, or the error that stops it (nothing written).
  absl::StatusOr<Staged> Stage(const workflow::Workflow& wf, const CaseRecord& before,
                               int64_t before_version, workflow::Decision decision,
                               const workflow::Actor& actor, absl::Time now,
                               const std::string& request_id,
                               const storage::QueueItem* consume_timer,
                               const std::function<void(storage::CaseMutation*)>& amend =
                                   nullptr);
  // After the write: counters, feed, metrics, listener; the case as stored.
  CaseView Publish(Staged staged, int64_t version);
  absl::StatusOr<const workflow::Workflow*> Require(const std::string& kind) const;
  absl::Status FireTimerOnce(const storage::QueueItem& timer);
  // The firing of a timer, staged; nullopt when it no longer applies (it
  // has been consumed without effect).
  absl::StatusOr<std::optional<Staged>> StageTimer(const storage::QueueItem& timer);
  void PublishTimer(const storage::QueueItem& timer, Staged staged, int64_t version);
  void FillSlas(CaseView* view) const;
  absl::StatusOr<int> Recompute(const std::string& kind, const ListFilter& filter,
                                const std::function<bool(const CaseRecord&)>& wanted);
  // A lookup that keeps the calendars it hands out alive in `held`.
  workflow::CalendarLookup Calendars(
      std::map<std::string, std::shared_ptr<const sla::Calendar>>* held) const;
  // Counts the clocks that need attention in the store (in the staged
  // mutation) and says how the counts move (in `sla_changes`, for the
  // gauges and the change feed once written); queues the SLA metrics.
  void CountSlaChanges(const CaseRecord& before, const CaseRecord& after, Staged* staged);

  storage::Repository* repo_;
  const Clock* clock_;
  notify::TemplateStore* templates_;
  sla::CalendarStore* calendars_;
  metrics::Metrics* metrics_;
  std::map<std::string, std::unique_ptr<workflow::Workflow>> workflows_;
  CommitListener listener_;
  const SecretBox* secrets_ = nullptr;
  ChangeFeed* feed_ = nullptr;
  Committer committer_;  // last: its callbacks use everything above
};

// The counter holding the number of cases of `kind` in `state`.
std::string BoardCounter(const std::string& kind, const std::string& state);

}  // namespace casework::engine

#endif  // CASEWORK_SERVER_ENGINE_ENGINE_H_
