// SLA ledgers with a simulated clock: pauses, resumes, stops, and deadlines
// derived on a business calendar.
#include "server/sla/ledger.h"

#include "gtest/gtest.h"
#include "server/common/proto_time.h"

namespace casework::sla {
namespace {

class LedgerTest : public ::testing::Test {
 protected:
  absl::Time At(int m, int d, int hh, int mm = 0) const {
    return absl::FromCivil(absl::CivilSecond(2026, m, d, hh, mm, 0), cal_.zone());
  }
  absl::Time Due(const SlaLedger& l, const std::string& rung) const {
    for (const auto& r : l.rungs()) {
      if (r.name() == rung) return r.has_due_time() ? FromProto(r.due_time()) : absl::InfiniteFuture();
    }
    return absl::InfinitePast();
  }

  const Calendar cal_ = *Calendar::Compile(DefaultCalendar());
  // 3 business days, warning after 2.
  const SlaPolicy policy_{"review", "calendars/default", 3 * absl::Hours(8),
                          {{"warning", 2 * absl::Hours(8), RungKind::kWarning},
                           {"breach", 3 * absl::Hours(8), RungKind::kBreach}}};
  v1::Actor agent_;
};

TEST_F(LedgerTest, DeadlinesAreBusinessDaysFromTheStart) {
  SlaLedger l = Start(policy_, At(3, 6, 15));  // Friday 15:00
  Derive(&l, &cal_);
  EXPECT_EQ(Due(l, "warning"), At(3, 10, 15));  // Tuesday 15:00
  EXPECT_EQ(Due(l, "breach"), At(3, 11, 15));   // Wednesday 15:00
  EXPECT_EQ(Consumed(l, At(3, 9, 12), &cal_), absl::Hours(5));  // Fri 2h + Mon 3h
}

TEST_F(LedgerTest, PausedMeansNotConsuming) {
  SlaLedger l = Start(policy_, At(3, 2, 9));  // Monday 09:00
  ASSERT_TRUE(Pause(&l, "waiting for documents", agent_, At(3, 2, 13), &cal_).ok());
  Derive(&l, &cal_);
  EXPECT_EQ(Due(l, "breach"), absl::InfiniteFuture());  // no deadline while paused
  EXPECT_EQ(Consumed(l, At(3, 5, 13), &cal_), absl::Hours(4));
  EXPECT_TRUE(absl::IsFailedPrecondition(Pause(&l, "again", agent_, At(3, 3, 9), &cal_)));
  // Three days later the documents arrive: 20 business hours remain.
  ASSERT_TRUE(Resume(&l, At(3, 5, 13)).ok());
  Derive(&l, &cal_);
  EXPECT_EQ(Due(l, "breach"), At(3, 9, 17));  // Thu 4h + Fri 8h + Mon 8h: Monday at closing
  EXPECT_EQ(cal_.BusinessTimeBetween(At(3, 5, 13), Due(l, "breach")), absl::Hours(20));
  EXPECT_EQ(PausedTime(l, At(3, 6, 9)), absl::Hours(72));
  // A second pause/resume cycle adds up.
  ASSERT_TRUE(Pause(&l, "customer on holiday", agent_, At(3, 6, 9), &cal_).ok());
  ASSERT_TRUE(Resume(&l, At(3, 9, 9)).ok());
  EXPECT_EQ(l.pauses_size(), 2);
  EXPECT_EQ(Consumed(l, At(3, 9, 9), &cal_), absl::Hours(8));  // 4 + Thu 13-17 (4)
  Stop(&l, At(3, 9, 10), &cal_);
  EXPECT_EQ(l.status(), v1::SLA_STATUS_STOPPED);
  EXPECT_EQ(l.consumed_seconds(), 9 * 3600);
  EXPECT_EQ(Consumed(l, At(3, 20, 10), &cal_), absl::Hours(9));  // frozen once stopped
}

TEST_F(LedgerTest, CalendarEditsMoveDeadlinesEarlierAndLater) {
  SlaLedger l = Start(policy_, At(4, 1, 9));  // Wednesday 1 April 2026
  Derive(&l, &cal_);
  EXPECT_EQ(Due(l, "breach"), At(4, 3, 17));  // Friday 17:00

  // A new holiday on Thursday 2 April moves the breach later...
  v1::BusinessCalendar edited = DefaultCalendar();
  auto* h = edited.add_holidays();
  h->set_name("Company day");
  h->set_year(2026), h->set_month(4), h->set_day(2);
  const Calendar later = *Calendar::Compile(edited);
  Derive(&l, &later);
  EXPECT_EQ(Due(l, "breach"), At(4, 7, 17));  // skips Thu and Easter Monday

  // ...and longer working days move it earlier.
  v1::BusinessCalendar longer = DefaultCalendar();
  for (auto& wh : *longer.mutable_working_hours()) wh.set_end_minute(21 * 60);
  const Calendar earlier = *Calendar::Compile(longer);
  Derive(&l, &earlier);
  EXPECT_EQ(Due(l, "breach"), At(4, 2, 21));  // 12h Wed + 12h Thu = 24h
}

TEST_F(LedgerTest, FiredRungsHaveNoDeadlineAndOverdueRungsAreDueAtOnce) {
  SlaLedger l = Start(policy_, At(3, 2, 9));
  l.mutable_rungs(0)->set_fired(true);
  Derive(&l, &cal_);
  EXPECT_EQ(Due(l, "warning"), absl::InfiniteFuture());
  // A policy edit shortening the warning below what is consumed: due now.
  ASSERT_TRUE(Pause(&l, "x", agent_, At(3, 3, 9), &cal_).ok());
  l.mutable_rungs(0)->set_fired(false);
  l.mutable_rungs(0)->set_at_seconds(3600);
  ASSERT_TRUE(Resume(&l, At(3, 3, 10)).ok());
  Derive(&l, &cal_);
  EXPECT_EQ(Due(l, "warning"), At(3, 3, 10));
}

TEST_F(LedgerTest, CalendarTimeLedgersIgnoreNightsAndWeekends) {
  const SlaPolicy wall{"response", "", absl::Hours(24 * 21),
                       {{"reminder.1", absl::Hours(24 * 7), RungKind::kReminder}}};
  SlaLedger l = Start(wall, At(3, 6, 22));
  Derive(&l, nullptr);
  EXPECT_EQ(Due(l, "reminder.1"), At(3, 13, 22));
  v1::Sla api = ToApi(l, At(3, 7, 22), nullptr);
  EXPECT_EQ(api.consumed().seconds(), 24 * 3600);
  EXPECT_EQ(api.deadlines(0).rung(), "reminder.1");
}

TEST_F(LedgerTest, RungTimerNames) {
  std::string sla, rung;
  EXPECT_EQ(RungTimerName("review", "warning"), "sla/review/warning");
  ASSERT_TRUE(ParseRungTimerName("sla/response/reminder.2", &sla, &rung));
  EXPECT_EQ(sla, "response");
  EXPECT_EQ(rung, "reminder.2");
  EXPECT_FALSE(ParseRungTimerName("reminder/1", &sla, &rung));
  EXPECT_FALSE(ParseRungTimerName("sla/x", &sla, &rung));
}

}  // namespace
}  // namespace casework::sla
