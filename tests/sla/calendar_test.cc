// Calendar arithmetic tables: weekends, fixed and Easter-based holidays,
// observed shifts, effective years, DST forward and back, two regions.
#include "server/sla/calendar.h"

#include "gtest/gtest.h"

namespace casework::sla {
namespace {

absl::Time At(const Calendar& cal, int y, int m, int d, int hh, int mm = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, 0), cal.zone());
}

Calendar Nl() { return *Calendar::Compile(DefaultCalendar()); }

// A US-style calendar in New York: federal-style holidays with weekend
// shifts, Monday to Friday 09:00-17:00.
Calendar Us() {
  v1::BusinessCalendar c;
  c.set_name("calendars/us");
  c.set_time_zone("America/New_York");
  for (int wd = 1; wd <= 5; ++wd) {
    auto* h = c.add_working_hours();
    h->set_weekday(wd);
    h->set_start_minute(9 * 60);
    h->set_end_minute(17 * 60);
  }
  auto add = [&](const char* name) {
    auto* r = c.add_holidays();
    r->set_name(name);
    return r;
  };
  auto* ny = add("New Year's Day");
  ny->set_month(1), ny->set_day(1), ny->set_observed(v1::OBSERVED_SHIFT_NEAREST_WEEKDAY);
  auto* mem = add("Memorial Day");
  mem->set_month(5), mem->set_weekday(1), mem->set_nth(-1);
  auto* ind = add("Independence Day");
  ind->set_month(7), ind->set_day(4), ind->set_observed(v1::OBSERVED_SHIFT_NEAREST_WEEKDAY);
  auto* labor = add("Labor Day");
  labor->set_month(9), labor->set_weekday(1), labor->set_nth(1);
  auto* thanks = add("Thanksgiving");
  thanks->set_month(11), thanks->set_weekday(4), thanks->set_nth(4);
  auto* xmas = add("Christmas Day");
  xmas->set_month(12), xmas->set_day(25), xmas->set_observed(v1::OBSERVED_SHIFT_NEAREST_WEEKDAY);
  auto* juneteenth = add("Juneteenth");
  juneteenth->set_month(6), juneteenth->set_day(19), juneteenth->set_effective_from_year(2021);
  juneteenth->set_observed(v1::OBSERVED_SHIFT_NEAREST_WEEKDAY);
  return *Calendar::Compile(c);
}

TEST(EasterTest, KnownDates) {
  EXPECT_EQ(EasterSunday(2024), absl::CivilDay(2024, 3, 31));
  EXPECT_EQ(EasterSunday(2025), absl::CivilDay(2025, 4, 20));
  EXPECT_EQ(EasterSunday(2026), absl::CivilDay(2026, 4, 5));
  EXPECT_EQ(EasterSunday(2027), absl::CivilDay(2027, 3, 28));
  EXPECT_EQ(EasterSunday(2038), absl::CivilDay(2038, 4, 25));
}

TEST(CalendarTest, DutchHolidays) {
  const Calendar nl = Nl();
  struct Row { int y, m, d; bool holiday; } rows[] = {
      {2026, 1, 1, true},    // New Year's Day
      {2026, 4, 6, true},    // Easter Monday
      {2026, 4, 27, true},   // King's Day, a Monday
      {2025, 4, 26, true},   // King's Day 2025 fell on a Sunday: Saturday 26th
      {2025, 4, 27, true},   // (the day itself is listed too; it is a Sunday anyway)
      {2026, 5, 14, true},   // Ascension: Easter + 39
      {2026, 5, 25, true},   // Whit Monday: Easter + 50
      {2026, 12, 25, true}, {2026, 12, 26, true},
      {2026, 4, 7, false}, {2026, 5, 13, false}, {2026, 12, 24, false},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(nl.IsHoliday(absl::CivilDay(r.y, r.m, r.d)), r.holiday) << r.y << "-" << r.m << "-" << r.d;
  }
  EXPECT_EQ(nl.HolidaysIn(2026).size(), 7u);
}

TEST(CalendarTest, UsHolidaysWithObservedShiftsAndEffectiveYears) {
  const Calendar us = Us();
  struct Row { int y, m, d; bool holiday; } rows[] = {
      {2026, 5, 25, true},   // last Monday of May
      {2026, 7, 3, true},    // 4 July 2026 is a Saturday: observed Friday 3rd
      {2026, 9, 7, true},    // first Monday of September
      {2026, 11, 26, true},  // fourth Thursday of November
      {2027, 12, 24, true},  // Christmas 2027 is a Saturday: observed Friday 24th
      {2021, 12, 31, true},  // New Year's Day 2022 (Saturday) observed in 2021
      {2020, 6, 19, false},  // Juneteenth only from 2021
      {2023, 6, 19, true},
      {2026, 7, 6, false}, {2026, 5, 18, false},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(us.IsHoliday(absl::CivilDay(r.y, r.m, r.d)), r.holiday) << r.y << "-" << r.m << "-" << r.d;
  }
}

TEST(CalendarTest, AddBusinessTimeSkipsNightsWeekendsAndHolidays) {
  const Calendar nl = Nl();
  const absl::Duration day = nl.BusinessDay();
  EXPECT_EQ(day, absl::Hours(8));
  struct Row {
    absl::Time from;
    absl::Duration add;
    absl::Time want;
  } rows[] = {
      // Within a day.
      {At(nl, 2026, 3, 2, 10), absl::Hours(3), At(nl, 2026, 3, 2, 13)},
      // Across the night.
      {At(nl, 2026, 3, 2, 16), absl::Hours(2), At(nl, 2026, 3, 3, 10)},
      // Friday afternoon + 2 business days = Tuesday afternoon.
      {At(nl, 2026, 3, 6, 15), 2 * day, At(nl, 2026, 3, 10, 15)},
      // Started on a Saturday: counting begins Monday 09:00.
      {At(nl, 2026, 3, 7, 11), absl::Hours(1), At(nl, 2026, 3, 9, 10)},
      // Across Easter Monday (6 April 2026).
      {At(nl, 2026, 4, 3, 12), 1 * day, At(nl, 2026, 4, 7, 12)},
      // Ending exactly at closing time stays on that day.
      {At(nl, 2026, 3, 2, 9), absl::Hours(8), At(nl, 2026, 3, 2, 17)},
      // Across Christmas and Boxing Day 2026 (Friday, Saturday).
      {At(nl, 2026, 12, 24, 16), absl::Hours(2), At(nl, 2026, 12, 28, 10)},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(nl.AddBusinessTime(r.from, r.add), r.want)
        << absl::FormatTime(r.from, nl.zone()) << " + " << r.add;
    EXPECT_EQ(nl.BusinessTimeBetween(r.from, r.want), r.add);
  }
}

TEST(CalendarTest, DaylightSavingChangesDoNotMoveWorkingHours) {
  const Calendar us = Us();
  // DST starts Sunday 8 March 2026 in New York: Friday 16:00 EST + 2 business
  // hours is Monday 10:00 EDT, which is 14:00 UTC (not 15:00).
  const absl::Time friday = At(us, 2026, 3, 6, 16);
  const absl::Time monday = us.AddBusinessTime(friday, absl::Hours(2));
  EXPECT_EQ(monday, absl::FromCivil(absl::CivilSecond(2026, 3, 9, 14, 0, 0), absl::UTCTimeZone()));
  // And back: DST ends Sunday 1 November 2026.
  const absl::Time before = At(us, 2026, 10, 30, 16);
  EXPECT_EQ(us.AddBusinessTime(before, absl::Hours(2)),
            absl::FromCivil(absl::CivilSecond(2026, 11, 2, 15, 0, 0), absl::UTCTimeZone()));

  // A round-the-clock calendar sees the 23- and 25-hour days.
  v1::BusinessCalendar always;
  always.set_name("calendars/always");
  always.set_time_zone("Europe/Amsterdam");
  for (int wd = 1; wd <= 7; ++wd) {
    auto* h = always.add_working_hours();
    h->set_weekday(wd);
    h->set_start_minute(0);
    h->set_end_minute(1440);
  }
  const Calendar cal = *Calendar::Compile(always);
  EXPECT_EQ(cal.BusinessTimeBetween(At(cal, 2026, 3, 29, 0), At(cal, 2026, 3, 30, 0)), absl::Hours(23));
  EXPECT_EQ(cal.BusinessTimeBetween(At(cal, 2026, 10, 25, 0), At(cal, 2026, 10, 26, 0)), absl::Hours(25));
}

// Working time over long spans (weeks to years, across year ends,
// holidays and DST changes) is what each day's working intervals add up to.
TEST(CalendarTest, BusinessTimeOverLongSpansIsTheSumOfTheDays) {
  auto day_by_day = [](const Calendar& cal, absl::Time a, absl::Time b) {
    absl::Duration total;
    for (absl::CivilDay d = absl::ToCivilDay(a, cal.zone()); d <= absl::ToCivilDay(b, cal.zone()); ++d) {
      for (const auto& [s, e] : cal.WorkingIntervals(d)) {
        if (std::max(s, a) < std::min(e, b)) total += std::min(e, b) - std::max(s, a);
      }
    }
    return total;
  };
  for (const Calendar& cal : {Nl(), Us()}) {
    for (int from = 0; from < 40; ++from) {
      // Starts every 29 days and 5 hours from mid-2024, spans of up to three years.
      const absl::Time a = At(cal, 2024, 6, 1, 7) + from * (absl::Hours(24 * 29) + absl::Hours(5));
      for (absl::Duration span : {absl::Hours(30), absl::Hours(24 * 9 + 3), absl::Hours(24 * 100),
                                  absl::Hours(24 * 400 + 11), absl::Hours(24 * 1100 + 2)}) {
        EXPECT_EQ(cal.BusinessTimeBetween(a, a + span), day_by_day(cal, a, a + span))
            << cal.name() << " from " << absl::FormatTime(a, cal.zone()) << " for " << span;
      }
    }
  }
  // 2025 in the Netherlands: 261 weekdays, 6 of them holidays, 8 hours each.
  const Calendar nl = Nl();
  EXPECT_EQ(nl.BusinessTimeBetween(At(nl, 2025, 1, 1, 0), At(nl, 2026, 1, 1, 0)), absl::Hours(255 * 8));
}

TEST(CalendarTest, NextBusinessMoment) {
  const Calendar nl = Nl();
  EXPECT_EQ(nl.NextBusinessMoment(At(nl, 2026, 3, 2, 2)), At(nl, 2026, 3, 2, 9));
  EXPECT_EQ(nl.NextBusinessMoment(At(nl, 2026, 3, 2, 12)), At(nl, 2026, 3, 2, 12));
  EXPECT_EQ(nl.NextBusinessMoment(At(nl, 2026, 3, 6, 17, 30)), At(nl, 2026, 3, 9, 9));
  EXPECT_EQ(nl.NextBusinessMoment(At(nl, 2026, 12, 24, 18)), At(nl, 2026, 12, 28, 9));
}

TEST(CalendarTest, BadCalendarsNameTheField) {
  v1::BusinessCalendar c = DefaultCalendar();
  c.set_time_zone("Mars/Olympus");
  c.mutable_working_hours(0)->set_end_minute(8 * 60);
  auto* r = c.add_holidays();
  r->set_name("Bad");
  r->set_month(2);
  r->set_day(30);
  auto compiled = Calendar::Compile(c);
  ASSERT_TRUE(absl::IsInvalidArgument(compiled.status()));
  const std::string msg(compiled.status().message());
  EXPECT_NE(msg.find("calendar.time_zone"), std::string::npos);
  EXPECT_NE(msg.find("calendar.working_hours[0]"), std::string::npos);
  EXPECT_NE(msg.find("calendar.holidays[7]"), std::string::npos);
}

TEST(CalendarTest, NoWorkingTimeNeverEnds) {
  v1::BusinessCalendar c;
  c.set_name("calendars/closed");
  c.set_time_zone("UTC");
  const Calendar closed = *Calendar::Compile(c);
  EXPECT_EQ(closed.AddBusinessTime(absl::UnixEpoch(), absl::Hours(1)), absl::InfiniteFuture());
}

}  // namespace
}  // namespace casework::sla
