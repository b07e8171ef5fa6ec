#include "server/common/crash_point.h"
#include "server/engine/engine.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/common/errors.h"
#include "server/common/ids.h"
#include "server/common/log.h"
#include "server/common/personal_data.h"
#include "server/common/proto_time.h"
#include "server/engine/page_token.h"
#include "server/notify/dispatcher.h"

namespace casework::engine {
namespace {

std::string SecretContext(const CaseRecord& r, const internal::SecretRecord& s) {
  return absl::StrCat(r.id(), "/", s.name());
}

constexpr int kConflictRetries = 8;
// Changes written with one sync at most.
constexpr size_t kMaxBatch = 256;
constexpr char kErasedText[] = "[erased]";

using IndexSet = std::set<std::pair<std::string, std::string>>;

// A clock past its warning that has not breached and still runs (or is
// paused).
bool AtRisk(const internal::SlaLedger& l) {
  return l.warned() && !l.breached() && l.status() != v1::SLA_STATUS_STOPPED;
}

// A clock past its breach that still runs (or is paused).
bool BreachedOpen(const internal::SlaLedger& l) {
  return l.breached() && l.status() != v1::SLA_STATUS_STOPPED;
}

// Every index entry of a record: the generic ones plus the workflow's.
// Index names are qualified by kind so kinds never mix.
IndexSet IndexesOf(const workflow::Workflow& wf, const CaseRecord& r) {
  const std::string& kind = r.kind();
  IndexSet out = {{"kind", kind}, {"state", absl::StrCat(kind, "/", r.state())}};
  // Someone's work: their open cases.
  if (!r.assignee().empty() && !wf.spec().IsFinal(r.state())) {
    out.insert({kAssigneeIndex, absl::StrCat(kind, "/", r.assignee())});
  }
  // Cases whose clocks a calendar edit can move.
  for (const auto& l : r.slas()) {
    if (l.status() == v1::SLA_STATUS_STOPPED) continue;
    out.insert({"sla_policy", absl::StrCat(kind, "/", l.name())});
    if (!l.calendar().empty()) out.insert({"sla_calendar", absl::StrCat(kind, "/", l.calendar())});
    // A clock that runs on a stand-in because its own calendar (its
    // region's) does not exist moves when that calendar is created.
    for (const auto& policy : wf.spec().slas) {
      if (policy.sla != l.name()) continue;
      const std::string wanted = wf.AdjustSlaPolicy(r, policy).calendar;
      if (!wanted.empty() && wanted != l.calendar()) {
        out.insert({"sla_calendar", absl::StrCat(kind, "/", wanted)});
      }
    }
    if (AtRisk(l)) out.insert({kSlaStatusIndex, absl::StrCat(kind, "/", kSlaAtRisk)});
    if (l.breached()) out.insert({kSlaStatusIndex, absl::StrCat(kind, "/", kSlaBreached)});
  }
  for (const auto& [index, key] : wf.IndexKeys(r)) {
    if (!key.empty()) out.insert({index, absl::StrCat(kind, "/", key)});
  }
  // Whose personal data the case holds, for an erase.
  for (const auto& subject : PersonalSubjects(r)) {
    out.insert({"subject", absl::StrCat(kind, "/", subject)});
  }
  return out;
}

// Event types whose message is free text someone wrote.
bool HasFreeText(v1::EventType type) {
  switch (type) {
    case v1::EVENT_TYPE_COMMENT:
    case v1::EVENT_TYPE_DECISION:
    case v1::EVENT_TYPE_CUSTOMER_RESPONDED:
    case v1::EVENT_TYPE_DEADLINE_PASSED:
      return true;
    default:
      return false;
  }
}

// Removes an event's free text and personal attributes. False when there
// was nothing to remove.
bool RedactEvent(v1::TimelineEvent* e) {
  bool changed = false;
  if (HasFreeText(e->type()) && !e->message().empty() && e->message() != kErasedText) {
    e->set_message(kErasedText);
    changed = true;
  }
  auto* attributes = e->mutable_attributes();
  for (auto it = attributes->begin(); it != attributes->end();) {
    if (IsPersonalKey(it->first)) {
      it = attributes->erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  return changed;
}

std::string ChannelName(v1::Channel c) {
  switch (c) {
    case v1::CHANNEL_EMAIL: return "email";
    case v1::CHANNEL_CHAT: return "chat";
    case v1::CHANNEL_SMS: return "sms";
    case v1::CHANNEL_WEBHOOK: return "webhook";
    default: return "unspecified";
  }
}

// Starts a change with a callback and waits for its result.
absl::StatusOr<CaseView> Await(absl::FunctionRef<void(CaseCallback)> start) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<absl::StatusOr<CaseView>> result;
  start([&](absl::StatusOr<CaseView> r) {
    std::lock_guard<std::mutex> lock(mu);
    result = std::move(r);
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return result.has_value(); });
  return *std::move(result);
}

}  // namespace

std::string BoardCounter(const std::string& kind, const std::string& state) {
  return absl::StrCat("board/", kind, "/", state);
}

Engine::Engine(storage::Repository* repo, const Clock* clock,
               notify::TemplateStore* templates, sla::CalendarStore* calendars,
               metrics::Metrics* metrics)
    : repo_(repo),
      clock_(clock),
      templates_(templates),
      calendars_(calendars),
      metrics_(metrics),
      committer_(repo, metrics, kMaxBatch) {}

Engine::~Engine() { Stop(); }

void Engine::Stop() { committer_.Stop(); }

workflow::CalendarLookup Engine::Calendars(
    std::map<std::string, std::shared_ptr<const sla::Calendar>>* held) const {
  return [this, held](const std::string& name) -> const sla::Calendar* {
    auto cal = calendars_->Get(name);
    if (cal == nullptr) return nullptr;
    (*held)[name] = cal;
    return cal.get();
  };
}

void Engine::FillSlas(CaseView* view) const {
  view->slas.clear();
  const absl::Time now = clock_->Now();
  for (const auto& l : view->record.slas()) {
    auto cal = l.calendar().empty() ? nullptr : calendars_->Get(l.calendar());
    view->slas.push_back(sla::ToApi(l, now, cal.get()));
  }
}

namespace {
std::string AtRiskCounter(const std::string& kind, const std::string& sla) {
  return absl::StrCat("sla_at_risk/", kind, "/", sla);
}
std::string BreachedCounter(const std::string& kind, const std::string& sla) {
  return absl::StrCat("sla_breached/", kind, "/", sla);
}
}  // namespace

void Engine::CountSlaChanges(const CaseRecord& before, const CaseRecord& after, Staged* staged) {
  const std::string kind = after.kind();
  std::vector<std::function<void()>>& after_commit = staged->after_commit;
  // The open clocks that need attention, counted in the store and, once
  // written, the gauges and the change feed, as a clock goes from `from`
  // to `to`.
  auto count_attention = [&](const std::string& sla, const internal::SlaLedger& from,
                             const internal::SlaLedger& to) {
    const int risk = static_cast<int>(AtRisk(to)) - static_cast<int>(AtRisk(from));
    const int late = static_cast<int>(BreachedOpen(to)) - static_cast<int>(BreachedOpen(from));
    if (risk == 0 && late == 0) return;
    if (risk != 0) staged->mutation.counter_deltas[AtRiskCounter(kind, sla)] += risk;
    if (late != 0) staged->mutation.counter_deltas[BreachedCounter(kind, sla)] += late;
    std::vector<SlaAttentionCount>& moved = staged->sla_changes;
    if (moved.empty() || moved.back().sla != sla) moved.push_back({sla, 0, 0});
    moved.back().at_risk += risk;
    moved.back().breached += late;
    if (moved.back().at_risk == 0 && moved.back().breached == 0) moved.pop_back();
  };
  for (const auto& l : after.slas()) {
    internal::SlaLedger old;
    for (const auto& b : before.slas()) {
      if (b.name() == l.name()) old = b;
    }
    const std::string name = l.name();
    // A restarted clock begins a new ledger: compare with a blank one.
    if (old.start_time().seconds() != l.start_time().seconds() ||
        old.start_time().nanos() != l.start_time().nanos()) {
      count_attention(name, old, internal::SlaLedger());
      old = internal::SlaLedger();
    }
    if (l.warned() && !old.warned()) after_commit.push_back([=] { metrics_->SlaWarning(kind, name); });
    if (l.breached() && !old.breached()) after_commit.push_back([=] { metrics_->SlaBreached(kind, name); });
    count_attention(name, old, l);
    if (l.status() == v1::SLA_STATUS_STOPPED && old.status() != v1::SLA_STATUS_STOPPED &&
        old.status() != v1::SLA_STATUS_UNSPECIFIED) {
      const absl::Duration consumed = absl::Seconds(l.consumed_seconds());
      const absl::Duration paused = sla::PausedTime(l, FromProto(l.stop_time()));
      after_commit.push_back([=] { metrics_->SlaStopped(kind, name, consumed, paused); });
    }
  }
}

void Engine::Register(std::unique_ptr<workflow::Workflow> workflow) {
  const std::string kind = workflow->spec().kind;
  workflows_[kind] = std::move(workflow);
}

const workflow::Workflow* Engine::Find(const std::string& kind) const {
  auto it = workflows_.find(kind);
  return it == workflows_.end() ? nullptr : it->second.get();
}

std::vector<const workflow::Workflow*> Engine::workflows() const {
  std::vector<const workflow::Workflow*> out;
  for (const auto& [kind, wf] : workflows_) out.push_back(wf.get());
  return out;
}

void Engine::SetCommitListener(CommitListener listener) {
  listener_ = std::move(listener);
}

std::string Engine::ResourceName(const std::string& kind, const std::string& case_id) const {
  const workflow::Workflow* wf = Find(kind);
  return absl::StrCat(wf != nullptr ? wf->spec().collection : kind, "/", case_id);
}

absl::StatusOr<const workflow::Workflow*> Engine::Require(const std::string& kind) const {
  const workflow::Workflow* wf = Find(kind);
  if (wf == nullptr) return absl::InternalError(absl::StrCat("no workflow for ", kind));
  return wf;
}

absl::Status Engine::LoadBoards() {
  for (const auto& [kind, wf] : workflows_) {
    auto board = Board(kind);
    if (!board.ok()) return board.status();
    for (const auto& [state, count] : board->columns) metrics_->SetCases(kind, state, count);
    for (const auto& t : wf->spec().transitions) {
      if (absl::StartsWith(t.action, "sla:") || absl::StartsWith(t.action, "timer:")) {
        metrics_->DeclareTimer(kind, t.action);
      }
    }
    for (const auto& policy : wf->spec().slas) metrics_->DeclareSla(kind, policy.sla);
    for (const auto& a : board->slas) metrics_->SetSlaAttention(kind, a.sla, a.at_risk, a.breached);
    if (feed_ != nullptr) feed_->SetBoard(*std::move(board));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Engine::RecomputeCalendar(const std::string& calendar) {
  int changed = 0;
  for (const auto& [kind, wf] : workflows_) {
    auto n = Recompute(kind, {"sla_calendar", calendar}, [](const CaseRecord&) { return true; });
    if (!n.ok()) return n.status();
    changed += *n;
  }
  return changed;
}

absl::StatusOr<int> Engine::MoveOffDeletedCalendars() {
  auto pending = calendars_->PendingMoves();
  if (!pending.ok()) return pending.status();
  int changed = 0;
  for (const std::string& name : *pending) {
    auto n = RecomputeCalendar(name);
    if (!n.ok()) return n.status();
    changed += *n;
    if (auto done = calendars_->MoveDone(name); !done.ok()) return done;
    Log(LogLevel::kInfo, "calendar_deleted_clocks_moved", {{"calendar", name}, {"cases", absl::StrCat(*n)}});
  }
  return changed;
}

absl::StatusOr<int> Engine::RecomputePolicies() {
  int changed = 0;
  for (const auto& [kind, wf] : workflows_) {
    for (const auto& policy : wf->spec().slas) {
      const std::string fingerprint = sla::PolicyFingerprint(policy);
      const std::string key = absl::StrCat(kind, "/", policy.sla);
      auto applied = repo_->GetRecord("sla_policies", key);
      if (applied.ok() && applied->value == fingerprint) continue;
      if (!applied.ok() && !absl::IsNotFound(applied.status())) return applied.status();
      auto n = Recompute(kind, {"sla_policy", policy.sla}, [&](const CaseRecord& r) {
        for (const auto& l : r.slas()) {
          if (l.name() == policy.sla && l.policy() != fingerprint) return true;
        }
        return false;
      });
      if (!n.ok()) return n.status();
      changed += *n;
      auto put = repo_->PutRecord("sla_policies", key, -1, fingerprint);
      if (!put.ok()) return put.status();
      Log(LogLevel::kInfo, "sla_policy_applied",
          {{"procedure", kind}, {"sla", policy.sla}, {"cases", absl::StrCat(*n)}});
    }
  }
  return changed;
}

void Engine::NoteNotification(const std::string& action, const workflow::Actor& actor,
                              const internal::OutboxMessage& message) {
  auto noted = Act(message.brand(), message.case_id(), -1, action, actor, message);
  if (!noted.ok() && !absl::IsNotFound(noted.status())) {
    Log(LogLevel::kWarning, "notification_not_on_timeline",
        {{"dedupe_key", message.dedupe_key()}, {"action", action},
         {"error", std::string(noted.status().message())}});
  }
}

absl::StatusOr<internal::OutboxMessage> Engine::RetryDeadLetter(const std::string& case_id,
                                                                const std::string& key,
                                                                const workflow::Actor& actor) {
  internal::OutboxMessage message;
  bool parsed = false;
  auto requeued = repo_->RetryDeadLetter(case_id, key, clock_->Now(), [&](storage::QueueItem* item) {
    parsed = message.ParseFromString(item->payload);
    if (!parsed) return;
    message.set_attempts(0);
    item->payload = message.SerializeAsString();
    item->lane = notify::OutboxLane(message.channel());
  });
  if (!requeued.ok()) return requeued;
  if (parsed) {
    NoteNotification(workflow::kNotificationRequeuedAction, actor, message);
  } else {
    message.Clear();
    message.set_case_id(case_id);
    message.set_dedupe_key(key);
  }
  if (listener_) listener_(false, absl::InfinitePast(), {message.channel()});
  return message;
}

absl::StatusOr<int> Engine::UpgradeOnce(const std::string& name,
                                        const std::function<absl::StatusOr<int>()>& upgrade) {
  constexpr char kSpace[] = "store_upgrades";
  auto done = repo_->GetRecord(kSpace, name);
  if (done.ok()) return 0;
  if (!absl::IsNotFound(done.status())) return done.status();
  const absl::Time start = absl::Now();
  auto changed = upgrade();
  if (!changed.ok()) return changed.status();
  auto put = repo_->PutRecord(kSpace, name, 0, "done");
  if (!put.ok()) return put.status();
  Log(LogLevel::kInfo, "store_upgraded",
      {{"upgrade", name},
       {"cases", absl::StrCat(*changed)},
       {"seconds", absl::StrCat(absl::ToDoubleSeconds(absl::Now() - start))}});
  return *changed;
}

absl::Status Engine::ForEachCase(
    const storage::IndexEntry& entry,
    const std::function<absl::Status(storage::StoredCase&, CaseRecord&)>& visit) {
  std::string after;
  for (;;) {
    auto page = repo_->ListCases(entry, after, kMaxPageSize);
    if (!page.ok()) return page.status();
    for (auto& stored : *page) {
      CaseRecord record;
      if (!record.ParseFromString(stored.record)) {
        return absl::DataLossError(absl::StrCat("case ", stored.case_id, ": record is damaged"));
      }
      if (absl::Status s = visit(stored, record); !s.ok()) return s;
    }
    if (static_cast<int>(page->size()) < kMaxPageSize) return absl::OkStatus();
    after = page->back().case_id;
  }
}

absl::Status Engine::RewriteIndexes(
    const storage::IndexEntry& entry,
    const std::function<void(const CaseRecord&, storage::CaseMutation*)>& rewrite) {
  return ForEachCase(entry, [&](storage::StoredCase& stored, CaseRecord& record) -> absl::Status {
    storage::CaseMutation m;
    rewrite(record, &m);
    if (m.index_add.empty() && m.index_remove.empty()) return absl::OkStatus();
    m.case_id = stored.case_id;
    m.expected_version = stored.version;
    m.record = stored.record;
    return repo_->Commit(m).status();
  });
}

absl::StatusOr<int> Engine::UpgradeStore() {
  auto sla = IndexSlaStatus();
  if (!sla.ok()) return sla.status();
  auto assignees = DropClosedAssignees();
  if (!assignees.ok()) return assignees.status();
  auto former = ReplaceFormerIndexKeys();
  if (!former.ok()) return former.status();
  auto breached = CountBreachedClocks();
  if (!breached.ok()) return breached.status();
  return *sla + *assignees + *former + *breached;
}

absl::StatusOr<int> Engine::IndexSlaStatus() {
  return UpgradeOnce("sla_status_index", [&]() -> absl::StatusOr<int> {
    std::set<std::string> indexed;  // a case with two clocks is met twice
    // Only a case with a clock that has not stopped can need an entry.
    for (const auto& [kind, wf] : workflows_) {
      const workflow::Workflow& flow = *wf;  // a structured binding is not captured
      for (const auto& policy : flow.spec().slas) {
        const storage::IndexEntry running{"sla_policy", absl::StrCat(kind, "/", policy.sla)};
        auto s = RewriteIndexes(running, [&](const CaseRecord& r, storage::CaseMutation* m) {
          if (indexed.count(r.id())) return;
          for (const auto& [index, key] : IndexesOf(flow, r)) {
            if (index == kSlaStatusIndex) m->index_add.push_back({index, key});
          }
          if (!m->index_add.empty()) indexed.insert(r.id());
        });
        if (!s.ok()) return s;
      }
    }
    return static_cast<int>(indexed.size());
  });
}

absl::StatusOr<int> Engine::CountBreachedClocks() {
  return UpgradeOnce("sla_breached_counter", [&]() -> absl::StatusOr<int> {
    // The counts the cases call for, written at once as deltas from the
    // counters as they are, so that an upgrade cut short and run again
    // does not count twice.
    std::map<std::string, int64_t> wanted;
    std::optional<storage::StoredCase> carrier;  // a case to commit the deltas with
    int cases = 0;
    for (const auto& [kind, wf] : workflows_) {
      const storage::IndexEntry breached{kSlaStatusIndex, absl::StrCat(kind, "/", kSlaBreached)};
      const std::string& of_kind = kind;  // a structured binding is not captured
      auto s = ForEachCase(breached, [&](storage::StoredCase& stored, CaseRecord& record) {
        for (const auto& l : record.slas()) {
          if (BreachedOpen(l)) ++wanted[BreachedCounter(of_kind, l.name())];
        }
        ++cases;
        if (!carrier) carrier = stored;
        return absl::OkStatus();
      });
      if (!s.ok()) return s;
    }
    if (!carrier) return 0;
    auto counters = repo_->GetCounters("sla_breached/");
    if (!counters.ok()) return counters.status();
    storage::CaseMutation m;
    m.case_id = carrier->case_id;
    m.expected_version = carrier->version;
    m.record = carrier->record;
    for (const auto& [name, count] : wanted) m.counter_deltas[name] = count;
    for (const auto& [name, count] : *counters) m.counter_deltas[name] -= count;
    auto written = repo_->Commit(m);
    if (!written.ok()) return written.status();
    return cases;
  });
}

absl::StatusOr<int> Engine::DropClosedAssignees() {
  return UpgradeOnce("assignee_open_cases", [&]() -> absl::StatusOr<int> {
    int dropped = 0;
    for (const auto& [kind, wf] : workflows_) {
      for (const auto& state : wf->spec().final_states) {
        const storage::IndexEntry closed{"state", absl::StrCat(kind, "/", state)};
        auto s = RewriteIndexes(closed, [&](const CaseRecord& r, storage::CaseMutation* m) {
          if (r.assignee().empty()) return;
          m->index_remove.push_back({kAssigneeIndex, absl::StrCat(r.kind(), "/", r.assignee())});
          ++dropped;
        });
        if (!s.ok()) return s;
      }
    }
    return dropped;
  });
}

absl::StatusOr<int> Engine::ReplaceFormerIndexKeys() {
  return UpgradeOnce("former_index_keys", [&]() -> absl::StatusOr<int> {
    int replaced = 0;
    for (const auto& [kind, wf] : workflows_) {
      const workflow::Workflow& flow = *wf;  // a structured binding is not captured
      if (!flow.spec().has_former_index_keys) continue;
      for (const auto& state : flow.spec().states) {
        const storage::IndexEntry in_state{"state", absl::StrCat(kind, "/", state)};
        auto s = RewriteIndexes(in_state, [&](const CaseRecord& r, storage::CaseMutation* m) {
          const auto former = flow.FormerIndexKeys(r);
          if (former.empty()) return;
          for (const auto& [index, key] : former) {
            m->index_remove.push_back({index, absl::StrCat(r.kind(), "/", key)});
          }
          for (const auto& [index, key] : IndexesOf(flow, r)) m->index_add.push_back({index, key});
          ++replaced;
        });
        if (!s.ok()) return s;
      }
    }
    return replaced;
  });
}

absl::StatusOr<int> Engine::Recompute(const std::string& kind, const ListFilter& filter,
                                      const std::function<bool(const CaseRecord&)>& wanted) {
  int changed = 0;
  const workflow::Actor system{"system", workflow::kSystem};
  const internal::CaseRecord none;
  {
    std::string token;
    do {
      auto page = List(kind, filter, token, kMaxPageSize);
      if (!page.ok()) return page.status();
      for (const auto& c : page->cases) {
        if (!wanted(c.record)) continue;
        auto result = Act(kind, c.record.id(), -1, workflow::kRecomputeSlaAction, system, none);
        if (result.ok()) {
          if (result->version != c.version) ++changed;
        } else if (!absl::IsNotFound(result.status())) {
          return result.status();
        }
      }
      token = page->next_page_token;
    } while (!token.empty());
  }
  return changed;
}

absl::Status Engine::SealSecrets(CaseRecord* record) const {
  if (secrets_ == nullptr) return absl::OkStatus();
  for (auto& s : *record->mutable_secrets()) {
    if (s.value().empty()) continue;  // already sealed
    auto sealed = secrets_->Seal(s.value(), SecretContext(*record, s));
    if (!sealed.ok()) return sealed.status();
    s.set_key_id(sealed->key_id);
    s.set_nonce(sealed->nonce);
    s.set_ciphertext(sealed->ciphertext);
    s.clear_value();
  }
  return absl::OkStatus();
}

absl::Status Engine::OpenSecrets(CaseRecord* record) const {
  if (secrets_ == nullptr) return absl::OkStatus();
  for (auto& s : *record->mutable_secrets()) {
    if (s.ciphertext().empty()) continue;
    auto plain = secrets_->Open({s.key_id(), s.nonce(), s.ciphertext()}, SecretContext(*record, s));
    if (!plain.ok()) {
      return absl::DataLossError(absl::StrCat("case ", record->id(), ": secret ", s.name(), ": ",
                                              plain.status().message()));
    }
    s.set_value(*std::move(plain));
    s.clear_key_id();
    s.clear_nonce();
    s.clear_ciphertext();
  }
  return absl::OkStatus();
}

absl::StatusOr<CaseView> Engine::Load(const std::string& kind, const std::string& case_id) {
  auto stored = repo_->GetCase(case_id);
  if (!stored.ok()) return stored.status();
  CaseView view;
  view.version = stored->version;
  if (!view.record.ParseFromString(stored->record)) {
    return absl::DataLossError(absl::StrCat("case ", case_id, ": record is damaged"));
  }
  if (view.record.kind() != kind) {
    // Another procedure's case: for this service it does not exist.
    return absl::NotFoundError(absl::StrCat("case ", case_id, " not found"));
  }
  return view;
}

void Engine::Create(const std::string& kind, const std::string& case_id,
                    const std::string& request_id, const workflow::Actor& actor,
                    const google::protobuf::Message& input, absl::Time deadline,
                    CaseCallback done) {
  auto wf = Require(kind);
  if (!wf.ok()) return done(wf.status());
  storage::UniqueKey request_key{"request_id", absl::StrCat(kind, "/", request_id)};
  if (!request_id.empty()) {
    auto owner = repo_->LookupUnique(request_key);
    if (owner.ok()) return done(Get(kind, *owner));
    if (!absl::IsNotFound(owner.status())) return done(owner.status());
  }
  const absl::Time now = clock_->Now();
  CaseRecord before;
  before.set_id(case_id.empty() ? NewCaseId(now) : case_id);
  before.set_kind(kind);
  before.set_request_id(request_id);
  std::map<std::string, std::shared_ptr<const sla::Calendar>> held;
  auto decision =
      workflow::Decide(**wf, before, "create", actor, &input, "", now, Calendars(&held));
  if (!decision.ok()) return done(decision.status());
  auto staged = Stage(**wf, before, 0, *std::move(decision), actor, now, request_id, nullptr);
  if (!staged.ok()) return done(staged.status());
  Write(*std::move(staged), deadline,
        [this, kind, id = before.id(), request_key = std::move(request_key),
         by_request = !request_id.empty(),
         done = std::move(done)](absl::StatusOr<CaseView> created) mutable {
          if (absl::IsAlreadyExists(created.status()) && by_request) {
            // A concurrent call with the same request id won the race.
            auto owner = repo_->LookupUnique(request_key);
            if (owner.ok()) return done(Get(kind, *owner));
          }
          if (absl::IsAborted(created.status())) {
            return done(absl::AlreadyExistsError(absl::StrCat("case ", id, " already exists")));
          }
          done(std::move(created));
        });
}

void Engine::Act(const std::string& kind, const std::string& case_id, int64_t expected_version,
                 const std::string& action, const workflow::Actor& actor,
                 const google::protobuf::Message& input, absl::Time deadline,
                 CaseCallback done) {
  ActAttempt({kind, case_id, expected_version, action, actor, &input, deadline}, 0,
             std::move(done));
}

absl::StatusOr<CaseView> Engine::Create(const std::string& kind, const std::string& case_id,
                                        const std::string& request_id,
                                        const workflow::Actor& actor,
                                        const google::protobuf::Message& input) {
  return Await([&](CaseCallback done) {
    Create(kind, case_id, request_id, actor, input, absl::InfiniteFuture(), std::move(done));
  });
}

absl::StatusOr<CaseView> Engine::Act(const std::string& kind, const std::string& case_id,
                                     int64_t expected_version, const std::string& action,
                                     const workflow::Actor& actor,
                                     const google::protobuf::Message& input) {
  return Await([&](CaseCallback done) {
    Act(kind, case_id, expected_version, action, actor, input, absl::InfiniteFuture(),
        std::move(done));
  });
}

void Engine::ActAttempt(ActRequest request, int attempt, CaseCallback done) {
  auto staged = StageAct(request);
  if (!staged.ok()) return done(staged.status());
  if (!staged->changed) {
    CaseView view;
    view.record = std::move(staged->record);
    view.version = staged->before_version;
    FillSlas(&view);
    return done(std::move(view));
  }
  const absl::Time deadline = request.deadline;
  Write(*std::move(staged), deadline, [this, request = std::move(request), attempt,
                                       done = std::move(done)](absl::StatusOr<CaseView> result) mutable {
    if (absl::IsAborted(result.status()) && request.expected_version < 0 &&
        attempt < kConflictRetries) {
      // Someone else changed the case in between: decide again.
      return ActAttempt(std::move(request), attempt + 1, std::move(done));
    }
    if (absl::IsAborted(result.status()) && request.expected_version >= 0) {
      // ... after the caller's etag was checked: it is stale all the same.
      return done(EtagMismatch(absl::StrCat("case ", request.case_id)));
    }
    done(std::move(result));
  });
}

absl::StatusOr<Engine::Staged> Engine::StageAct(const ActRequest& request) {
  auto wf = Require(request.kind);
  if (!wf.ok()) return wf.status();
  auto current = Load(request.kind, request.case_id);
  if (!current.ok()) return current.status();
  if (request.expected_version >= 0 && current->version != request.expected_version) {
    return EtagMismatch(absl::StrCat("case ", request.case_id));
  }
  const absl::Time now = clock_->Now();
  std::map<std::string, std::shared_ptr<const sla::Calendar>> held;
  if (auto s = OpenSecrets(&current->record); !s.ok()) return s;
  auto decision = workflow::Decide(**wf, current->record, request.action, request.actor,
                                   request.input, "", now, Calendars(&held));
  if (!decision.ok()) return decision.status();
  if (!decision->changed) {
    // Nothing to record (e.g. deadlines already right).
    Staged same;
    same.changed = false;
    same.record = std::move(current->record);
    same.before_version = current->version;
    return same;
  }
  return Stage(**wf, current->record, current->version, *std::move(decision), request.actor,
               now, "", nullptr);
}

void Engine::Write(Staged staged, absl::Time deadline, CaseCallback done) {
  storage::CaseMutation mutation = std::move(staged.mutation);
  committer_.Submit(std::move(mutation), deadline,
                    [this, staged = std::move(staged),
                     done = std::move(done)](absl::StatusOr<int64_t> version) mutable {
                      if (!version.ok()) return done(version.status());
                      done(Publish(std::move(staged), *version));
                    });
}

absl::Status Engine::FireTimer(const storage::QueueItem& timer) {
  // A concurrent change of the case makes the commit fail with ABORTED:
  // decide again on the new version. If the timer itself is gone, every
  // attempt aborts and the last error is returned.
  absl::Status last;
  for (int attempt = 0; attempt < kConflictRetries; ++attempt) {
    last = FireTimerOnce(timer);
    if (!absl::IsAborted(last)) return last;
  }
  return last;
}

absl::Status Engine::FireTimerOnce(const storage::QueueItem& timer) {
  auto staged = StageTimer(timer);
  if (!staged.ok() || !staged->has_value()) return staged.status();
  CrashPoint("timer.before_commit");
  auto version = repo_->Commit((*staged)->mutation);
  if (!version.ok()) return version.status();
  CrashPoint("commit.after_write");
  PublishTimer(timer, **std::move(staged), *version);
  return absl::OkStatus();
}

std::vector<absl::Status> Engine::FireTimers(const std::vector<storage::QueueItem>& timers) {
  std::vector<absl::Status> out(timers.size());
  std::vector<Staged> staged;
  std::vector<size_t> which;
  for (size_t i = 0; i < timers.size(); ++i) {
    auto one = StageTimer(timers[i]);
    if (!one.ok()) {
      out[i] = one.status();
    } else if (one->has_value()) {
      staged.push_back(**std::move(one));
      which.push_back(i);
    }
  }
  if (staged.empty()) return out;
  std::vector<storage::CaseMutation> mutations;
  mutations.reserve(staged.size());
  for (auto& s : staged) mutations.push_back(std::move(s.mutation));
  CrashPoint("timer.before_commit");
  auto versions = repo_->CommitAll(mutations);
  CrashPoint("commit.after_write");
  for (size_t k = 0; k < staged.size(); ++k) {
    const storage::QueueItem& timer = timers[which[k]];
    if (versions[k].ok()) {
      PublishTimer(timer, std::move(staged[k]), *versions[k]);
    } else if (absl::IsAborted(versions[k].status())) {
      // The case changed after it was read: decide again, on its own.
      out[which[k]] = FireTimer(timer);
    } else {
      out[which[k]] = versions[k].status();
    }
  }
  return out;
}

absl::StatusOr<std::optional<Engine::Staged>> Engine::StageTimer(
    const storage::QueueItem& timer) {
  auto stored = repo_->GetCase(timer.case_id);
  if (!stored.ok()) {
    if (!absl::IsNotFound(stored.status())) return stored.status();
    if (auto s = repo_->Complete(storage::Queue::kTimers, timer); !s.ok()) return s;
    return std::nullopt;
  }
  CaseRecord record;
  if (!record.ParseFromString(stored->record)) {
    return absl::DataLossError(absl::StrCat("case ", timer.case_id, ": record is damaged"));
  }
  if (auto s = OpenSecrets(&record); !s.ok()) return s;
  auto wf = Require(record.kind());
  if (!wf.ok()) return wf.status();
  const std::string action = workflow::TimerAction(timer.name);
  const absl::Time now = clock_->Now();
  const workflow::Actor system{"system", workflow::kSystem};
  std::map<std::string, std::shared_ptr<const sla::Calendar>> held;
  auto decision = workflow::Decide(**wf, record, action, system, nullptr, timer.name, now,
                                   Calendars(&held));
  if (!decision.ok() && !absl::IsFailedPrecondition(decision.status())) return decision.status();
  if (!decision.ok() || !decision->changed) {
    // The case has moved on; the timer no longer applies.
    if (auto s = repo_->Complete(storage::Queue::kTimers, timer); !s.ok()) return s;
    return std::nullopt;
  }
  return Stage(**wf, record, stored->version, *std::move(decision), system, now, "", &timer);
}

void Engine::PublishTimer(const storage::QueueItem& timer, Staged staged, int64_t version) {
  const std::string kind = staged.record.kind();
  const absl::Duration lag = staged.now - timer.due;
  Publish(std::move(staged), version);
  metrics_->TimerFired(kind, workflow::TimerAction(timer.name), lag);
}

absl::StatusOr<Engine::Staged> Engine::Stage(
    const workflow::Workflow& wf, const CaseRecord& before, int64_t before_version,
    workflow::Decision decision, const workflow::Actor& actor, absl::Time now,
    const std::string& request_id, const storage::QueueItem* consume_timer,
    const std::function<void(storage::CaseMutation*)>& amend) {
  Staged staged;
  staged.before_state = before.state();
  staged.before_version = before_version;
  staged.now = now;
  staged.reveal = std::move(decision.reveal);
  CaseRecord& record = decision.record;
  storage::CaseMutation& m = staged.mutation;
  m.case_id = record.id();
  m.expected_version = before_version;
  if (consume_timer != nullptr) m.consume_timer = *consume_timer;
  if (!request_id.empty()) {
    m.unique_add.push_back({"request_id", absl::StrCat(record.kind(), "/", request_id)});
  }

  // Render every notification first: a template problem fails the whole
  // command and nothing is written.
  std::vector<std::pair<const workflow::NotificationRequest*, notify::RenderedMessage>> rendered;
  for (const auto& n : decision.notifications) {
    auto msg = templates_->Render(n.template_id, n.language_code, n.values);
    if (!msg.ok()) return msg.status();
    rendered.emplace_back(&n, *std::move(msg));
  }

  int64_t sequence = before.event_count();
  m.first_event_sequence = sequence + 1;
  auto stamp = [&](v1::TimelineEvent& e) {
    e.set_sequence(++sequence);
    *e.mutable_create_time() = ToProto(now);
    e.mutable_actor()->set_principal(actor.principal);
    e.mutable_actor()->set_role(actor.role);
    m.events.push_back(e.SerializeAsString());
  };
  for (auto& e : decision.events) stamp(e);
  for (const auto& [request, msg] : rendered) {
    v1::TimelineEvent e;
    e.set_type(request->event_type);
    e.set_message(request->event_message);
    (*e.mutable_attributes())["template"] = request->template_id;
    (*e.mutable_attributes())["channel"] = ChannelName(request->channel);
    const absl::Time due = std::max(now, request->not_before);
    if (due > now) {
      (*e.mutable_attributes())["held_until"] =
          absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", due, absl::UTCTimeZone());
    }
    stamp(e);

    internal::OutboxMessage out;
    out.set_dedupe_key(absl::StrCat(record.id(), "-", e.sequence()));
    out.set_case_id(record.id());
    out.set_template_id(request->template_id);
    out.set_channel(request->channel);
    out.set_recipient(request->recipient);
    out.set_brand(record.kind());
    out.set_reference(wf.Reference(record));
    out.set_language_code(msg.language_code);
    out.set_subject(msg.subject);
    out.set_body(msg.body);
    *out.mutable_create_time() = ToProto(now);
    m.outbox.push_back(
        {record.id(), out.dedupe_key(), due, out.SerializeAsString(), 0, notify::OutboxLane(request->channel)});
    staged.outbox_channels.push_back(request->channel);
  }
  record.set_event_count(sequence);

  IndexSet old_indexes = before_version > 0 ? IndexesOf(wf, before) : IndexSet();
  IndexSet new_indexes = IndexesOf(wf, record);
  for (const auto& e : old_indexes) {
    if (!new_indexes.count(e)) m.index_remove.push_back({e.first, e.second});
  }
  for (const auto& e : new_indexes) {
    if (!old_indexes.count(e)) m.index_add.push_back({e.first, e.second});
  }
  {
    std::set<std::pair<std::string, std::string>> old_keys, new_keys;
    if (before_version > 0) {
      for (const auto& k : wf.UniqueKeys(before)) old_keys.insert(k);
    }
    for (const auto& k : wf.UniqueKeys(record)) new_keys.insert(k);
    for (const auto& k : old_keys) {
      if (!new_keys.count(k)) m.unique_remove.push_back({k.first, k.second});
    }
    for (const auto& k : new_keys) {
      if (!old_keys.count(k)) m.unique_add.push_back({k.first, k.second});
    }
  }
  const bool moved = before_version == 0 || before.state() != record.state();
  staged.moved = moved;
  if (moved) {
    if (before_version > 0) {
      m.counter_deltas[BoardCounter(record.kind(), before.state())] -= 1;
      // How long it stayed; never below zero, should the wall clock have
      // been set back.
      if (before.has_state_change_time()) {
        const absl::Duration stayed =
            std::max(absl::ZeroDuration(), now - FromProto(before.state_change_time()));
        staged.after_commit.push_back([this, kind = record.kind(), state = before.state(), stayed] {
          metrics_->LeftState(kind, state, stayed);
        });
      }
    }
    m.counter_deltas[BoardCounter(record.kind(), record.state())] += 1;
  }

  for (const auto& t : decision.timers_arm) {
    m.timers_arm.push_back({record.id(), t.name, t.due, record.kind(), 0});
    staged.earliest = std::min(staged.earliest, t.due);
  }
  m.timers_cancel = decision.timers_cancel;
  m.attachments_put = std::move(decision.attachments_put);
  m.attachments_delete = std::move(decision.attachments_delete);
  for (auto& [space, key, value] : decision.directory_writes) {
    m.record_writes.push_back({space, key, std::move(value), false});
  }
  CountSlaChanges(before, record, &staged);
  {
    CaseRecord stored = record;
    if (auto s = SealSecrets(&stored); !s.ok()) return s;
    m.record = stored.SerializeAsString();
  }
  if (amend) amend(&m);
  staged.armed_timer = !m.timers_arm.empty();
  staged.record = std::move(record);
  return staged;
}

CaseView Engine::Publish(Staged staged, int64_t version) {
  const CaseRecord& record = staged.record;
  const bool existed = staged.before_version > 0;
  for (const auto& f : staged.after_commit) f();
  for (const auto& a : staged.sla_changes) {
    metrics_->AddSlaAttention(record.kind(), a.sla, a.at_risk, a.breached);
  }
  if (feed_ != nullptr) {
    feed_->Publish({0, record.kind(), record.id(), existed ? staged.before_state : "",
                    record.state(), version, staged.now, record.assignee(),
                    std::move(staged.sla_changes)});
  }
  if (staged.moved) {
    if (existed) metrics_->AddCases(record.kind(), staged.before_state, -1);
    metrics_->AddCases(record.kind(), record.state(), 1);
  }
  if (listener_ && (staged.armed_timer || !staged.outbox_channels.empty())) {
    listener_(staged.armed_timer, staged.earliest, staged.outbox_channels);
  }
  CaseView view;
  view.record = std::move(staged.record);
  view.version = version;
  view.reveal = std::move(staged.reveal);
  FillSlas(&view);
  return view;
}

absl::StatusOr<std::vector<CaseView>> Engine::FindBySubject(const std::string& subject) {
  std::vector<CaseView> out;
  for (const auto& [kind, wf] : workflows_) {
    const storage::IndexEntry index{"subject", absl::StrCat(kind, "/", subject)};
    auto s = ForEachCase(index, [&out](storage::StoredCase& stored, CaseRecord& record) {
      CaseView view;
      view.version = stored.version;
      view.record = std::move(record);
      out.push_back(std::move(view));
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
  }
  return out;
}

bool Engine::IsClosed(const CaseRecord& record) const {
  const workflow::Workflow* wf = Find(record.kind());
  return wf != nullptr && wf->spec().IsFinal(record.state());
}

absl::StatusOr<int> Engine::ErasePersonalData(const std::string& case_id,
                                              const workflow::Actor& actor) {
  for (int attempt = 0;; ++attempt) {
    auto stored = repo_->GetCase(case_id);
    if (!stored.ok()) return stored.status();
    CaseRecord before;
    if (!before.ParseFromString(stored->record)) {
      return absl::DataLossError(absl::StrCat("case ", case_id, ": record is damaged"));
    }
    auto wf = Require(before.kind());
    if (!wf.ok()) return wf.status();
    if (!IsClosed(before)) {
      return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat(
                               "case ", case_id, " is open (", before.state(), "); close it first")),
                           "CASE_OPEN");
    }
    // The timeline keeps every event; free text and personal attributes go.
    std::map<int64_t, std::string> rewritten;
    for (int64_t after = 0;;) {
      auto events = repo_->ListEvents(case_id, after, kMaxPageSize);
      if (!events.ok()) return events.status();
      for (const auto& stored_event : *events) {
        v1::TimelineEvent e;
        if (!e.ParseFromString(stored_event.event)) {
          return absl::DataLossError(absl::StrCat("case ", case_id, ": event ",
                                                  stored_event.sequence, " is damaged"));
        }
        if (RedactEvent(&e)) rewritten[stored_event.sequence] = e.SerializeAsString();
        after = stored_event.sequence;
      }
      if (events->size() < static_cast<size_t>(kMaxPageSize)) break;
    }
    const absl::Time now = clock_->Now();
    workflow::Decision decision;
    decision.record = before;
    casework::ErasePersonalData(&decision.record);
    *decision.record.mutable_erase_time() = ToProto(now);
    v1::TimelineEvent event;
    event.set_type(v1::EVENT_TYPE_PERSONAL_DATA_ERASED);
    event.set_message("Personal data erased");
    decision.events.push_back(std::move(event));
    const int redacted = static_cast<int>(rewritten.size());
    auto staged = Stage(**wf, before, stored->version, std::move(decision), actor, now, "",
                        nullptr, [&](storage::CaseMutation* m) {
                          m->events_replace = std::move(rewritten);
                          m->purge = true;
                        });
    if (!staged.ok()) return staged.status();
    auto result = Await([&](CaseCallback done) {
      Write(*std::move(staged), absl::InfiniteFuture(), std::move(done));
    });
    if (absl::IsAborted(result.status()) && attempt < kConflictRetries) continue;
    if (!result.ok()) return result.status();
    return redacted;
  }
}

absl::StatusOr<CaseView> Engine::Get(const std::string& kind, const std::string& case_id) {
  auto view = Load(kind, case_id);
  if (view.ok()) FillSlas(&*view);
  return view;
}

absl::StatusOr<CasePage> Engine::List(const std::string& kind, const ListFilter& filter,
                                      const std::string& page_token, int page_size) {
  auto page_limit = PageLimit(page_size);
  if (!page_limit.ok()) return page_limit.status();
  storage::IndexEntry index = filter.index.empty()
                                  ? storage::IndexEntry{"kind", kind}
                                  : storage::IndexEntry{filter.index,
                                                        absl::StrCat(kind, "/", filter.value)};
  const std::string scope = absl::StrCat(index.index, "\n", index.key);
  auto after = DecodePageToken(page_token, scope);
  if (!after.ok()) return after.status();
  const int limit = *page_limit;
  // One extra row tells whether another page follows.
  auto stored = repo_->ListCases(index, *after, limit + 1);
  if (!stored.ok()) return stored.status();
  CasePage page;
  page.cases.reserve(std::min<size_t>(stored->size(), limit));
  for (auto& s : *stored) {
    if (static_cast<int>(page.cases.size()) == limit) {
      page.next_page_token = EncodePageToken(scope, page.cases.back().record.id());
      break;
    }
    CaseView& view = page.cases.emplace_back();
    view.version = s.version;
    if (!view.record.ParseFromString(s.record)) {
      return absl::DataLossError(absl::StrCat("case ", s.case_id, ": record is damaged"));
    }
    FillSlas(&view);
  }
  return page;
}

absl::StatusOr<BoardCounts> Engine::Board(const std::string& kind) {
  auto wf = Require(kind);
  if (!wf.ok()) return wf.status();
  auto states = repo_->GetCounters(absl::StrCat("board/", kind, "/"));
  if (!states.ok()) return states.status();
  auto at_risk = repo_->GetCounters(AtRiskCounter(kind, ""));
  if (!at_risk.ok()) return at_risk.status();
  auto breached = repo_->GetCounters(BreachedCounter(kind, ""));
  if (!breached.ok()) return breached.status();
  auto value = [](const std::map<std::string, int64_t>& counters, const std::string& name) {
    auto it = counters.find(name);
    return it == counters.end() ? int64_t{0} : it->second;
  };
  BoardCounts out;
  out.kind = kind;
  for (const auto& state : (*wf)->spec().states) {
    out.columns.emplace_back(state, value(*states, BoardCounter(kind, state)));
  }
  for (const auto& policy : (*wf)->spec().slas) {
    out.slas.push_back({policy.sla, value(*at_risk, AtRiskCounter(kind, policy.sla)),
                        value(*breached, BreachedCounter(kind, policy.sla))});
  }
  return out;
}

absl::StatusOr<EventPage> Engine::Events(const std::string& kind, const std::string& case_id,
                                         const std::string& page_token, int page_size) {
  auto page_limit = PageLimit(page_size);
  if (!page_limit.ok()) return page_limit.status();
  auto current = Load(kind, case_id);
  if (!current.ok()) return current.status();
  const std::string scope = absl::StrCat("events\n", case_id);
  auto after = DecodePageToken(page_token, scope);
  if (!after.ok()) return after.status();
  int64_t after_sequence = 0;
  if (!after->empty() && !absl::SimpleAtoi(*after, &after_sequence)) {
    return InvalidField("page_token", "is not a token this query issued");
  }
  const int limit = *page_limit;
  auto stored = repo_->ListEvents(case_id, after_sequence, limit + 1);
  if (!stored.ok()) return stored.status();
  EventPage page;
  for (const auto& s : *stored) {
    if (static_cast<int>(page.events.size()) == limit) {
      page.next_page_token = EncodePageToken(scope, absl::StrCat(page.events.back().sequence()));
      break;
    }
    v1::TimelineEvent e;
    if (!e.ParseFromString(s.event)) {
      return absl::DataLossError(
          absl::StrCat("case ", case_id, ": event ", s.sequence, " is damaged"));
    }
    page.events.push_back(std::move(e));
  }
  return page;
}

absl::StatusOr<std::string> Engine::GetAttachment(const std::string& kind,
                                                  const std::string& case_id,
                                                  const std::string& attachment_id) {
  auto current = Load(kind, case_id);
  if (!current.ok()) return current.status();
  return repo_->GetAttachment(case_id, attachment_id);
}

}  // namespace casework::engine
