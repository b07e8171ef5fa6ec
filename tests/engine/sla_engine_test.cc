// The SLA engine through the real engine, RocksDB and timer loop, with a
// small workflow declared here: a review clock of 3 business days on the
// default calendar that pauses while waiting for the customer. Cases at
// risk or breached are listed while their clock runs.
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "casework/v1/trade_in.pb.h"
#include "gtest/gtest.h"
#include "server/common/proto_time.h"
#include "server/engine/engine.h"
#include "server/notify/dispatcher.h"
#include "server/timers/timer_loop.h"
#include "storage/rocksdb_repository.h"
#include "tests/testing/temp_dir.h"

namespace casework {
namespace {

using workflow::SlaEffect;

class ReviewWorkflow : public workflow::Workflow {
 public:
  ReviewWorkflow() {
    spec_.kind = "review_case";
    spec_.states = {"OPEN", "WAITING_CUSTOMER", "RESOLVED"};
    spec_.final_states = {"RESOLVED"};
    spec_.slas = {{"review",
                   "calendars/default",
                   3 * absl::Hours(8),
                   {{"warning", 2 * absl::Hours(8), sla::RungKind::kWarning},
                    {"breach", 3 * absl::Hours(8), sla::RungKind::kBreach}}}};
    const std::vector<std::string> agent = {workflow::kCsAgent};
    spec_.transitions = {
        {"create", {}, "OPEN", agent, "", {}, {}, nullptr, {{SlaEffect::kStart, "review", ""}}},
        {"wait", {"OPEN"}, "WAITING_CUSTOMER", agent, "", {}, {}, nullptr,
         {{SlaEffect::kPause, "review", "waiting for the customer's documents"}}},
        {"docs_arrived", {"WAITING_CUSTOMER"}, "OPEN", agent, "", {}, {}, nullptr,
         {{SlaEffect::kResume, "review", ""}}},
        {"resolve", {"OPEN"}, "RESOLVED", agent, "", {}, {}, nullptr,
         {{SlaEffect::kStop, "review", ""}}},
    };
    spec_.transitions.push_back(workflow::AssignTransition(spec_, [](const workflow::ActionContext& ctx) {
      return static_cast<const v1::AssignTradeInRequest*>(ctx.input)->assignee();
    }));
  }
  const workflow::WorkflowSpec& spec() const override { return spec_; }
  std::vector<std::pair<std::string, std::string>> IndexKeys(const workflow::CaseRecord&) const override {
    return {};
  }
  std::map<std::string, std::string> TemplateValues(const workflow::CaseRecord&) const override {
    return {};
  }
  std::vector<std::string> TemplateFields() const override { return {}; }
  std::string Recipient(const workflow::CaseRecord&, workflow::Audience) const override { return ""; }
  std::string LanguageCode(const workflow::CaseRecord&) const override { return "en"; }

 private:
  workflow::WorkflowSpec spec_;
};

class SlaEngineTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    timers_.reset();
    engine_.reset();
    calendars_.reset();
    templates_.reset();
    repo_.reset();
    repo_ = *storage::OpenRocksDbRepository({dir_.path() + "/db"});
    templates_ = std::make_unique<notify::TemplateStore>(
        repo_.get(), std::map<std::string, std::vector<std::string>>{});
    calendars_ = std::make_unique<sla::CalendarStore>(repo_.get());
    ASSERT_TRUE(calendars_->Load(clock_.Now()).ok());
    engine_ = std::make_unique<engine::Engine>(repo_.get(), &clock_, templates_.get(),
                                               calendars_.get(), &metrics_);
    feed_ = std::make_unique<engine::ChangeFeed>();
    engine_->SetChangeFeed(feed_.get());
    engine_->Register(std::make_unique<ReviewWorkflow>());
    ASSERT_TRUE(engine_->LoadBoards().ok());
    timers_ = std::make_unique<timers::TimerLoop>(repo_.get(), engine_.get(), &clock_, &metrics_);
  }

  absl::Time At(int m, int d, int hh, int mm = 0) {
    absl::TimeZone ams;
    absl::LoadTimeZone("Europe/Amsterdam", &ams);
    return absl::FromCivil(absl::CivilSecond(2026, m, d, hh, mm, 0), ams);
  }

  std::string Create() {
    v1::CreateTradeInRequest unused;
    auto c = engine_->Create("review_case", "", "", agent_, unused);
    EXPECT_TRUE(c.ok()) << c.status();
    return c->record.id();
  }

  void Do(const std::string& id, const std::string& action) {
    v1::CreateTradeInRequest unused;
    auto r = engine_->Act("review_case", id, -1, action, agent_, unused);
    ASSERT_TRUE(r.ok()) << action << ": " << r.status();
  }

  // Advances the simulated clock to `t` and fires whatever fell due.
  // Sets the clock and fires what is due by then, rungs armed by the
  // rungs before them included; how many fired.
  int RunUntil(absl::Time t) {
    clock_.Set(t);
    int fired = 0;
    while (const int pass = timers_->RunOnce()) fired += pass;
    return fired;
  }

  int Count(const std::string& id, v1::EventType type) {
    auto page = engine_->Events("review_case", id, "", 500);
    int n = 0;
    for (const auto& e : page->events) n += e.type() == type;
    return n;
  }

  absl::Time Due(const std::string& id, const std::string& rung) {
    auto c = engine_->Get("review_case", id);
    for (const auto& d : c->slas[0].deadlines()) {
      if (d.rung() == rung) return d.has_due_time() ? FromProto(d.due_time()) : absl::InfiniteFuture();
    }
    return absl::InfinitePast();
  }

  // Commits what `change` adds to a mutation of case `id` that keeps its
  // record, behind the engine's back, as a store written by an older
  // version would have it.
  void AsAnOlderVersionLeftIt(const std::string& id,
                              const std::function<void(storage::CaseMutation*)>& change) {
    auto stored = repo_->GetCase(id);
    ASSERT_TRUE(stored.ok()) << stored.status();
    storage::CaseMutation m;
    m.case_id = id;
    m.expected_version = stored->version;
    m.record = stored->record;
    change(&m);
    ASSERT_TRUE(repo_->Commit(m).ok());
  }

  // The review cases listed under an sla_status value, by id.
  std::vector<std::string> Listed(const char* status) {
    auto page = engine_->List("review_case", {engine::kSlaStatusIndex, status}, "", 500);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<std::string> ids;
    if (page.ok()) {
      for (const auto& c : page->cases) ids.push_back(c.record.id());
    }
    return ids;
  }

  int64_t AtRisk() {
    auto counters = *repo_->GetCounters("sla_at_risk/");
    return counters["sla_at_risk/review_case/review"];
  }
  // The review SLA's open clocks past their breach, as the board tells it.
  int64_t Breached() {
    auto board = engine_->Board("review_case");
    EXPECT_TRUE(board.ok()) << board.status();
    if (!board.ok() || board->slas.size() != 1 || board->slas[0].sla != "review") return -1;
    EXPECT_EQ(board->slas[0].at_risk, AtRisk());
    return board->slas[0].breached;
  }

  // The board as the change feed counts it, and as the store does, as
  // "STATE=n ... review=at_risk/breached".
  static std::string Text(const engine::BoardCounts& board) {
    std::string out;
    for (const auto& [state, n] : board.columns) absl::StrAppend(&out, state, "=", n, " ");
    for (const auto& a : board.slas) absl::StrAppend(&out, a.sla, "=", a.at_risk, "/", a.breached);
    return out;
  }
  std::string FeedBoard() {
    uint64_t sequence = 0;
    auto boards = feed_->Boards({"review_case"}, &sequence);
    return boards.size() == 1 ? Text(boards[0]) : "none";
  }
  std::string StoredBoard() {
    auto board = engine_->Board("review_case");
    return board.ok() ? Text(*board) : board.status().ToString();
  }
  // What the feed's last change moved: "sla:+at_risk/+breached ...".
  std::string LastSlaChanges() {
    auto changes = feed_->Since(0);
    if (!changes.has_value() || changes->empty()) return "none";
    std::string out;
    for (const auto& a : changes->back().sla_changes) {
      absl::StrAppend(&out, a.sla, ":", absl::StrFormat("%+d/%+d", a.at_risk, a.breached));
    }
    return out;
  }

  testing::TempDir dir_;
  SimulatedClock clock_{absl::UnixEpoch()};
  metrics::Metrics metrics_;
  std::unique_ptr<storage::Repository> repo_;
  std::unique_ptr<notify::TemplateStore> templates_;
  std::unique_ptr<sla::CalendarStore> calendars_;
  std::unique_ptr<engine::ChangeFeed> feed_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<timers::TimerLoop> timers_;
  workflow::Actor agent_{"anna", workflow::kCsAgent};
};

TEST_F(SlaEngineTest, WarningAndBreachFireOnceAtTheRightBusinessMoment) {
  clock_.Set(At(3, 6, 15));  // Friday 15:00
  const std::string id = Create();
  EXPECT_EQ(Due(id, "warning"), At(3, 10, 15));
  EXPECT_EQ(RunUntil(At(3, 10, 14, 59)), 0);
  EXPECT_EQ(RunUntil(At(3, 10, 15)), 1);
  EXPECT_EQ(Count(id, v1::EVENT_TYPE_SLA_WARNING), 1);
  EXPECT_EQ(AtRisk(), 1);
  EXPECT_EQ(Breached(), 0);
  EXPECT_EQ(RunUntil(At(3, 11, 15)), 1);
  EXPECT_EQ(Count(id, v1::EVENT_TYPE_SLA_BREACHED), 1);
  EXPECT_EQ(AtRisk(), 0);
  EXPECT_EQ(Breached(), 1);
  EXPECT_EQ(RunUntil(At(3, 20, 9)), 0);
  EXPECT_EQ(Count(id, v1::EVENT_TYPE_SLA_WARNING), 1);
  EXPECT_TRUE(engine_->Get("review_case", id)->slas[0].breached());
}

TEST_F(SlaEngineTest, CasesAtRiskAndBreachedAreListedWhileTheirClockRuns) {
  using Ids = std::vector<std::string>;
  clock_.Set(At(3, 6, 15));  // Friday 15:00
  const std::string late = Create();
  clock_.Set(At(3, 10, 9));
  const std::string fresh = Create();
  RunUntil(At(3, 10, 15));
  EXPECT_EQ(Listed(engine::kSlaAtRisk), Ids{late});
  EXPECT_EQ(Listed(engine::kSlaBreached), Ids{});
  RunUntil(At(3, 11, 15));
  EXPECT_EQ(Listed(engine::kSlaAtRisk), Ids{});
  EXPECT_EQ(Listed(engine::kSlaBreached), Ids{late});
  EXPECT_EQ(Breached(), 1);
  Do(late, "resolve");  // the clock stops: nothing left to attend to
  EXPECT_EQ(Listed(engine::kSlaBreached), Ids{});
  EXPECT_EQ(Breached(), 0);
  RunUntil(At(3, 12, 10));
  EXPECT_EQ(Listed(engine::kSlaAtRisk), Ids{fresh});

  // A store from before the index: the entry is missing, and a change
  // that keeps the case at risk would not add it. The one-time upgrade
  // does, and only once.
  AsAnOlderVersionLeftIt(fresh, [](storage::CaseMutation* m) {
    m->index_remove.push_back({engine::kSlaStatusIndex, absl::StrCat("review_case/", engine::kSlaAtRisk)});
  });
  EXPECT_EQ(Listed(engine::kSlaAtRisk), Ids{});
  EXPECT_EQ(*engine_->IndexSlaStatus(), 1);
  EXPECT_EQ(Listed(engine::kSlaAtRisk), Ids{fresh});
  EXPECT_EQ(*engine_->IndexSlaStatus(), 0);
}

// A store from before the count of breached clocks: the one-time upgrade
// counts them from the cases, and only once.
TEST_F(SlaEngineTest, TheBreachedCountOfAnOlderStoreIsSetFromItsCases) {
  clock_.Set(At(3, 6, 15));  // Friday 15:00
  const std::string first = Create(), second = Create(), closed = Create();
  RunUntil(At(3, 11, 15));
  Do(closed, "resolve");
  EXPECT_EQ(Breached(), 2);
  // An older version kept no count: its store holds none.
  AsAnOlderVersionLeftIt(first, [](storage::CaseMutation* m) {
    m->counter_deltas["sla_breached/review_case/review"] = -2;
  });
  EXPECT_EQ(Breached(), 0);

  EXPECT_EQ(*engine_->CountBreachedClocks(), 2);  // the cases it read
  EXPECT_EQ(Breached(), 2);
  EXPECT_EQ(*engine_->CountBreachedClocks(), 0);
  EXPECT_EQ(Breached(), 2);
  // And the count goes on from there.
  Do(second, "resolve");
  EXPECT_EQ(Breached(), 1);
}

// Live boards count from the change feed: each change says how it moves
// the SLA counts, and the feed's board stays the store's through warnings,
// breaches, pauses, stops and a restart.
TEST_F(SlaEngineTest, TheChangeFeedCountsTheBoardAsTheStoreDoes) {
  clock_.Set(At(3, 6, 15));  // Friday 15:00
  const std::string first = Create(), second = Create(), paused = Create();
  EXPECT_EQ(FeedBoard(), "OPEN=3 WAITING_CUSTOMER=0 RESOLVED=0 review=0/0");
  EXPECT_EQ(LastSlaChanges(), "");
  Do(paused, "wait");
  EXPECT_EQ(RunUntil(At(3, 10, 15)), 2);
  EXPECT_EQ(LastSlaChanges(), "review:+1/+0");
  EXPECT_EQ(FeedBoard(), "OPEN=2 WAITING_CUSTOMER=1 RESOLVED=0 review=2/0");
  EXPECT_EQ(FeedBoard(), StoredBoard());
  Do(second, "resolve");  // at risk, then stopped
  EXPECT_EQ(LastSlaChanges(), "review:-1/+0");
  EXPECT_EQ(RunUntil(At(3, 11, 15)), 1);
  EXPECT_EQ(LastSlaChanges(), "review:-1/+1");
  EXPECT_EQ(FeedBoard(), "OPEN=1 WAITING_CUSTOMER=1 RESOLVED=1 review=0/1");
  EXPECT_EQ(FeedBoard(), StoredBoard());
  Do(paused, "docs_arrived");  // resumes: nothing was used while it waited
  EXPECT_EQ(LastSlaChanges(), "");
  Do(first, "resolve");
  EXPECT_EQ(LastSlaChanges(), "review:+0/-1");
  EXPECT_EQ(FeedBoard(), "OPEN=1 WAITING_CUSTOMER=0 RESOLVED=2 review=0/0");
  EXPECT_EQ(FeedBoard(), StoredBoard());

  EXPECT_EQ(RunUntil(At(3, 13, 15)), 1);  // two business days after resuming
  Open();  // restart: the new feed starts from the store
  EXPECT_EQ(FeedBoard(), "OPEN=1 WAITING_CUSTOMER=0 RESOLVED=2 review=1/0");
  EXPECT_EQ(FeedBoard(), StoredBoard());
}

TEST_F(SlaEngineTest, PausesStopTheClockAndResumingMovesTheDeadline) {
  clock_.Set(At(3, 2, 9));  // Monday 09:00
  const std::string id = Create();
  clock_.Set(At(3, 2, 13));
  Do(id, "wait");  // 4 business hours consumed
  EXPECT_EQ(Due(id, "breach"), absl::InfiniteFuture());
  // While paused nothing fires, however long it takes.
  EXPECT_EQ(RunUntil(At(3, 13, 9)), 0);
  auto view = engine_->Get("review_case", id);
  EXPECT_EQ(view->slas[0].status(), v1::SLA_STATUS_PAUSED);
  EXPECT_EQ(view->slas[0].pause_reason(), "waiting for the customer's documents");
  EXPECT_EQ(view->slas[0].consumed().seconds(), 4 * 3600);
  clock_.Set(At(3, 13, 9));  // Friday 09:00: documents arrive
  Do(id, "docs_arrived");
  // 12 business hours to the warning: Fri 8h + Mon 4h.
  EXPECT_EQ(Due(id, "warning"), At(3, 16, 13));
  EXPECT_EQ(RunUntil(At(3, 16, 12, 59)), 0);
  EXPECT_EQ(RunUntil(At(3, 16, 13)), 1);
  clock_.Set(At(3, 16, 14));
  Do(id, "resolve");
  // The breach rung was cancelled with the clock.
  EXPECT_EQ(RunUntil(At(4, 30, 9)), 0);
  EXPECT_EQ(Count(id, v1::EVENT_TYPE_SLA_BREACHED), 0);
  EXPECT_EQ(AtRisk(), 0);
  auto stopped = engine_->Get("review_case", id);
  EXPECT_EQ(stopped->slas[0].status(), v1::SLA_STATUS_STOPPED);
  EXPECT_EQ(stopped->slas[0].consumed().seconds(), 17 * 3600);
  EXPECT_EQ(stopped->slas[0].paused().seconds(), 11 * 86400 - 4 * 3600);
}

TEST_F(SlaEngineTest, CalendarEditsRecomputeDeadlinesAndReArmTimers) {
  clock_.Set(At(4, 1, 9));  // Wednesday 1 April
  const std::string id = Create();
  EXPECT_EQ(Due(id, "breach"), At(4, 3, 17));
  // Add a company holiday on Thursday: the breach moves past Easter Monday.
  auto cal = *calendars_->GetProto("calendars/default");
  auto* h = cal.add_holidays();
  h->set_name("Company day");
  h->set_year(2026), h->set_month(4), h->set_day(2);
  ASSERT_TRUE(calendars_->Put(cal, -1, false, clock_.Now()).ok());
  EXPECT_EQ(*engine_->RecomputeCalendar("calendars/default"), 1);
  EXPECT_EQ(Due(id, "breach"), At(4, 7, 17));
  EXPECT_EQ(Due(id, "warning"), At(4, 3, 17));
  EXPECT_EQ(Count(id, v1::EVENT_TYPE_SLA_RECOMPUTED), 1);
  // Nothing fires at the old deadlines; the new ones fire once.
  EXPECT_EQ(RunUntil(At(4, 2, 17)), 0);
  EXPECT_EQ(RunUntil(At(4, 3, 16, 59)), 0);
  EXPECT_EQ(RunUntil(At(4, 3, 17)), 1);
  EXPECT_EQ(RunUntil(At(4, 7, 16, 59)), 0);
  EXPECT_EQ(RunUntil(At(4, 7, 17)), 1);
  EXPECT_EQ(Count(id, v1::EVENT_TYPE_SLA_BREACHED), 1);
  // Recomputing again changes nothing.
  EXPECT_EQ(*engine_->RecomputeCalendar("calendars/default"), 0);
}

TEST_F(SlaEngineTest, RungsDueDuringDowntimeFireOnceAfterRestart) {
  clock_.Set(At(3, 2, 9));
  const std::string id = Create();
  Open();  // restart
  clock_.Set(At(3, 20, 9));  // both rungs fell due while "down"
  Open();
  // The warning fires and arms the breach, already due, which fires next.
  EXPECT_EQ(timers_->RunOnce(), 1);
  EXPECT_EQ(timers_->RunOnce(), 1);
  Open();
  EXPECT_EQ(timers_->RunOnce(), 0);
  EXPECT_EQ(Count(id, v1::EVENT_TYPE_SLA_WARNING), 1);
  EXPECT_EQ(Count(id, v1::EVENT_TYPE_SLA_BREACHED), 1);
  EXPECT_EQ(*repo_->QueueSize(storage::Queue::kTimers), 0);
}

// A store from before kept every rung of a running clock armed. Those
// timers still fire each rung once, and firing one arms nothing twice.
TEST_F(SlaEngineTest, RungsArmedByAnOlderVersionFireOnce) {
  clock_.Set(At(3, 2, 9));
  const std::string id = Create();
  EXPECT_EQ(*repo_->QueueSize(storage::Queue::kTimers), 1);  // the warning's
  const absl::Time breach = Due(id, "breach");
  AsAnOlderVersionLeftIt(id, [&](storage::CaseMutation* m) {
    internal::CaseRecord r;
    ASSERT_TRUE(r.ParseFromString(m->record));
    const std::string name = sla::RungTimerName("review", "breach");
    r.add_armed_timers(name);
    m->record = r.SerializeAsString();
    m->timers_arm.push_back({id, name, breach, r.kind(), 0});
  });
  EXPECT_EQ(*repo_->QueueSize(storage::Queue::kTimers), 2);
  EXPECT_EQ(RunUntil(breach), 2);
  EXPECT_EQ(Count(id, v1::EVENT_TYPE_SLA_WARNING), 1);
  EXPECT_EQ(Count(id, v1::EVENT_TYPE_SLA_BREACHED), 1);
  EXPECT_EQ(*repo_->QueueSize(storage::Queue::kTimers), 0);
}

// The assignee index is someone's work: their open cases. A case leaves
// it when it closes and keeps its assignee. A store from before held closed
// cases there too; the one-time upgrade takes them out, and only once.
TEST_F(SlaEngineTest, ClosedCasesLeaveTheirAssigneesListAndOlderStoresAreCleanedOnce) {
  using Ids = std::vector<std::string>;
  clock_.Set(At(3, 2, 9));
  const std::string done = Create();
  const std::string open = Create();
  const std::string both[] = {std::min(done, open), std::max(done, open)};
  v1::AssignTradeInRequest to_anna;
  to_anna.set_assignee("agent:anna");
  for (const auto& id : {done, open}) {
    ASSERT_TRUE(engine_->Act("review_case", id, -1, workflow::kAssign, agent_, to_anna).ok());
  }
  auto mine = [&] {
    auto page = engine_->List("review_case", {engine::kAssigneeIndex, "agent:anna"}, "", 500);
    EXPECT_TRUE(page.ok()) << page.status();
    Ids ids;
    if (page.ok()) {
      for (const auto& c : page->cases) ids.push_back(c.record.id());
    }
    std::sort(ids.begin(), ids.end());  // opened in the same millisecond
    return ids;
  };
  EXPECT_EQ(mine(), Ids(std::begin(both), std::end(both)));
  Do(done, "resolve");
  EXPECT_EQ(mine(), Ids{open});
  EXPECT_EQ(engine_->Get("review_case", done)->record.assignee(), "agent:anna");

  // What an older version left: the closed case still listed.
  AsAnOlderVersionLeftIt(done, [](storage::CaseMutation* m) {
    m->index_add.push_back({engine::kAssigneeIndex, "review_case/agent:anna"});
  });
  EXPECT_EQ(mine(), Ids(std::begin(both), std::end(both)));
  EXPECT_EQ(*engine_->DropClosedAssignees(), 1);
  EXPECT_EQ(mine(), Ids{open});
  EXPECT_EQ(*engine_->DropClosedAssignees(), 0);
}

TEST_F(SlaEngineTest, ADeadLetterSentAgainGoesOutAtOnceAndIsOnTheTimeline) {
  clock_.Set(At(3, 2, 9));
  const std::string id = Create();
  // A chat message to the case that ran out of attempts.
  internal::OutboxMessage lost;
  lost.set_case_id(id);
  lost.set_brand("review_case");
  lost.set_dedupe_key(id + "-7");
  lost.set_channel(v1::CHANNEL_CHAT);
  lost.set_template_id("review.ping");
  lost.set_attempts(3);
  storage::CaseMutation queue;
  queue.case_id = id;
  queue.expected_version = repo_->GetCase(id)->version;
  queue.record = repo_->GetCase(id)->record;
  queue.outbox = {{id, lost.dedupe_key(), clock_.Now(), lost.SerializeAsString(), 0}};
  ASSERT_TRUE(repo_->Commit(queue).ok());
  auto claimed = *repo_->Claim(storage::Queue::kOutbox, clock_.Now(), 10, "test", absl::Minutes(1));
  ASSERT_EQ(claimed.size(), 1u);
  ASSERT_TRUE(repo_->DeadLetter(claimed[0], lost.SerializeAsString()).ok());

  // The dispatcher's lanes learn of it through the commit listener.
  std::vector<v1::Channel> woken;
  engine_->SetCommitListener([&](bool, absl::Time, const std::vector<v1::Channel>& channels) {
    woken.insert(woken.end(), channels.begin(), channels.end());
  });
  const workflow::Actor admin{"root", workflow::kAdmin};
  auto requeued = engine_->RetryDeadLetter(id, lost.dedupe_key(), admin);
  ASSERT_TRUE(requeued.ok()) << requeued.status();
  EXPECT_EQ(requeued->attempts(), 0);
  EXPECT_EQ(requeued->template_id(), "review.ping");
  EXPECT_EQ(woken, std::vector<v1::Channel>{v1::CHANNEL_CHAT});
  // It was queued in lane 0 (as before there were lanes) and goes back in
  // the chat lane.
  EXPECT_TRUE(repo_->Claim(storage::Queue::kOutbox, clock_.Now(), 10, "test", absl::Minutes(1))->empty());
  auto due = *repo_->Claim(storage::Queue::kOutbox, clock_.Now(), 10, "test", absl::Minutes(1),
                           notify::OutboxLane(v1::CHANNEL_CHAT));
  ASSERT_EQ(due.size(), 1u);
  internal::OutboxMessage out;
  ASSERT_TRUE(out.ParseFromString(due[0].payload));
  EXPECT_EQ(out.attempts(), 0);
  EXPECT_EQ(Count(id, v1::EVENT_TYPE_NOTIFICATION_QUEUED), 1);
  EXPECT_EQ(engine_->RetryDeadLetter(id, lost.dedupe_key(), admin).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace casework
