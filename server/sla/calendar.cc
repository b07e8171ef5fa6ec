#include "server/sla/calendar.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/common/errors.h"

namespace casework::sla {
namespace {

constexpr int kSearchDays = 3660;  // ten years

int WeekdayIndex(absl::CivilDay day) {  // 0 = Monday .. 6 = Sunday
  switch (absl::GetWeekday(day)) {
    case absl::Weekday::monday: return 0;
    case absl::Weekday::tuesday: return 1;
    case absl::Weekday::wednesday: return 2;
    case absl::Weekday::thursday: return 3;
    case absl::Weekday::friday: return 4;
    case absl::Weekday::saturday: return 5;
    case absl::Weekday::sunday: return 6;
  }
  return 0;
}

bool ValidDate(int year, int month, int day) {
  if (month < 1 || month > 12 || day < 1 || day > 31) return false;
  const absl::CivilDay d(year, month, day);
  return d.month() == month && d.day() == day;
}

absl::CivilDay Shift(absl::CivilDay d, v1::ObservedShift shift) {
  const int wd = WeekdayIndex(d);
  switch (shift) {
    case v1::OBSERVED_SHIFT_NEAREST_WEEKDAY:
      if (wd == 5) return d - 1;
      if (wd == 6) return d + 1;
      return d;
    case v1::OBSERVED_SHIFT_NEXT_MONDAY:
      if (wd == 5) return d + 2;
      if (wd == 6) return d + 1;
      return d;
    case v1::OBSERVED_SHIFT_SUNDAY_TO_SATURDAY:
      return wd == 6 ? d - 1 : d;
    default:
      return d;
  }
}

// The date a rule gives in `year`, if any (before the observed shift).
bool RuleDate(const v1::HolidayRule& r, int year, absl::CivilDay* out) {
  if (r.effective_from_year() != 0 && year < r.effective_from_year()) return false;
  if (r.effective_until_year() != 0 && year > r.effective_until_year()) return false;
  if (r.year() != 0) {
    if (r.year() != year) return false;
    *out = absl::CivilDay(r.year(), r.month(), r.day());
    return true;
  }
  if (r.has_easter_offset_days()) {
    *out = EasterSunday(year) + r.easter_offset_days();
    return true;
  }
  if (r.weekday() != 0) {
    const int want = r.weekday() - 1;
    if (r.nth() > 0) {
      absl::CivilDay d(year, r.month(), 1);
      while (WeekdayIndex(d) != want) d += 1;
      d += 7 * (r.nth() - 1);
      if (d.month() != r.month()) return false;
      *out = d;
      return true;
    }
    absl::CivilDay d = absl::CivilDay(absl::CivilMonth(year, r.month()) + 1) - 1;  // last day
    while (WeekdayIndex(d) != want) d -= 1;
    *out = d;
    return true;
  }
  if (!ValidDate(year, r.month(), r.day())) return false;  // e.g. 29 February
  *out = absl::CivilDay(year, r.month(), r.day());
  return true;
}

v1::HolidayRule Fixed(const char* name, int month, int day, v1::ObservedShift shift) {
  v1::HolidayRule r;
  r.set_name(name);
  r.set_month(month);
  r.set_day(day);
  r.set_observed(shift);
  return r;
}

v1::HolidayRule Easter(const char* name, int offset) {
  v1::HolidayRule r;
  r.set_name(name);
  r.set_easter_offset_days(offset);
  return r;
}

}  // namespace

absl::CivilDay EasterSunday(int year) {
  // The anonymous Gregorian algorithm (Meeus/Jones/Butcher).
  const int a = year % 19, b = year / 100, c = year % 100, d = b / 4, e = b % 4;
  const int f = (b + 8) / 25, g = (b - f + 1) / 3;
  const int h = (19 * a + b - d - g + 15) % 30;
  const int i = c / 4, k = c % 4;
  const int l = (32 + 2 * e + 2 * i - h - k) % 7;
  const int m = (a + 11 * h + 22 * l) / 451;
  const int month = (h + l - 7 * m + 114) / 31;
  const int day = ((h + l - 7 * m + 114) % 31) + 1;
  return absl::CivilDay(year, month, day);
}

v1::BusinessCalendar DefaultCalendar() {
  v1::BusinessCalendar c;
  c.set_name("calendars/default");
  c.set_time_zone("Europe/Amsterdam");
  for (int wd = 1; wd <= 5; ++wd) {
    auto* h = c.add_working_hours();
    h->set_weekday(wd);
    h->set_start_minute(9 * 60);
    h->set_end_minute(17 * 60);
  }
  *c.add_holidays() = Fixed("New Year's Day", 1, 1, v1::OBSERVED_SHIFT_NONE);
  *c.add_holidays() = Easter("Easter Monday", 1);
  *c.add_holidays() = Fixed("King's Day", 4, 27, v1::OBSERVED_SHIFT_SUNDAY_TO_SATURDAY);
  *c.add_holidays() = Easter("Ascension Day", 39);
  *c.add_holidays() = Easter("Whit Monday", 50);
  *c.add_holidays() = Fixed("Christmas Day", 12, 25, v1::OBSERVED_SHIFT_NONE);
  *c.add_holidays() = Fixed("Boxing Day", 12, 26, v1::OBSERVED_SHIFT_NONE);
  return c;
}

absl::StatusOr<Calendar> Calendar::Compile(const v1::BusinessCalendar& proto,
                                           const std::string& prefix) {
  FieldErrors errors;
  Calendar cal;
  cal.proto_ = proto;
  if (!absl::LoadTimeZone(proto.time_zone(), &cal.zone_) || proto.time_zone().empty()) {
    errors.Add(prefix + "time_zone", "must be an IANA time zone such as Europe/Amsterdam");
  }
  for (int i = 0; i < proto.working_hours_size(); ++i) {
    const auto& h = proto.working_hours(i);
    const std::string f = absl::StrCat(prefix, "working_hours[", i, "]");
    if (h.weekday() < 1 || h.weekday() > 7) {
      errors.Add(f + ".weekday", "must be 1 (Monday) to 7 (Sunday)");
      continue;
    }
    if (h.start_minute() < 0 || h.end_minute() > 1440 || h.start_minute() >= h.end_minute()) {
      errors.Add(f, "needs 0 <= start_minute < end_minute <= 1440");
      continue;
    }
    auto& day = cal.hours_[h.weekday() - 1];
    for (const auto& [s, e] : day) {
      if (h.start_minute() < e && s < h.end_minute()) {
        errors.Add(f, "overlaps other working hours of the same weekday");
      }
    }
    day.emplace_back(h.start_minute(), h.end_minute());
  }
  for (int i = 0; i < proto.holidays_size(); ++i) {
    const auto& r = proto.holidays(i);
    const std::string f = absl::StrCat(prefix, "holidays[", i, "]");
    const int kinds = (r.year() != 0) + r.has_easter_offset_days() + (r.weekday() != 0);
    if (r.name().empty() || r.name().size() > 100) errors.Add(f + ".name", "is required (at most 100 bytes)");
    if (kinds > 1) {
      errors.Add(f, "set one of: month+day, easter_offset_days, weekday+nth+month, year+month+day");
    } else if (r.has_easter_offset_days()) {
      if (r.easter_offset_days() < -100 || r.easter_offset_days() > 100) {
        errors.Add(f + ".easter_offset_days", "must be within 100 days of Easter");
      }
    } else if (r.weekday() != 0) {
      if (r.weekday() < 1 || r.weekday() > 7) errors.Add(f + ".weekday", "must be 1 to 7");
      if (r.nth() != -1 && (r.nth() < 1 || r.nth() > 5)) errors.Add(f + ".nth", "must be 1 to 5, or -1 for the last");
      if (r.month() < 1 || r.month() > 12) errors.Add(f + ".month", "must be 1 to 12");
    } else if (r.year() != 0) {
      if (!ValidDate(r.year(), r.month(), r.day())) errors.Add(f, "is not a valid date");
    } else if (!ValidDate(2024, r.month(), r.day())) {  // a leap year allows 29 February
      errors.Add(f, "needs a valid month and day");
    }
    if (!v1::ObservedShift_IsValid(r.observed())) errors.Add(f + ".observed", "unknown value");
    if (r.effective_until_year() != 0 && r.effective_until_year() < r.effective_from_year()) {
      errors.Add(f + ".effective_until_year", "is before effective_from_year");
    }
  }
  if (!errors.empty()) return errors.ToStatus();
  for (auto& day : cal.hours_) {
    std::sort(day.begin(), day.end());
    int minutes = 0;
    for (const auto& [s, e] : day) minutes += e - s;
    cal.business_day_ = std::max(cal.business_day_, absl::Minutes(minutes));
  }
  return cal;
}

const std::map<absl::CivilDay, std::string>& Calendar::YearHolidays(int year) const {
  std::lock_guard<std::mutex> lock(cache_->mu);
  auto it = cache_->years.find(year);
  if (it != cache_->years.end()) return it->second;
  std::map<absl::CivilDay, std::string> days;
  // Rules of the neighbouring years can shift into this one (a New Year's
  // Day on Saturday observed on the Friday before).
  for (int y = year - 1; y <= year + 1; ++y) {
    for (const auto& r : proto_.holidays()) {
      absl::CivilDay d;
      if (!RuleDate(r, y, &d)) continue;
      for (absl::CivilDay day : {d, Shift(d, r.observed())}) {
        if (day.year() == year) days.emplace(day, r.name());
      }
    }
  }
  return cache_->years.emplace(year, std::move(days)).first->second;
}

bool Calendar::IsHoliday(absl::CivilDay day) const {
  return YearHolidays(static_cast<int>(day.year())).count(day) > 0;
}

bool Calendar::IsBusinessDay(absl::CivilDay day) const {
  return !hours_[WeekdayIndex(day)].empty() && !IsHoliday(day);
}

std::vector<std::pair<absl::Time, absl::Time>> Calendar::WorkingIntervals(absl::CivilDay day) const {
  std::vector<std::pair<absl::Time, absl::Time>> out;
  if (!IsBusinessDay(day)) return out;
  const absl::CivilSecond midnight(day);
  for (const auto& [s, e] : hours_[WeekdayIndex(day)]) {
    const absl::Time start = absl::FromCivil(midnight + s * 60, zone_);
    const absl::Time end = absl::FromCivil(midnight + e * 60, zone_);
    if (start < end) out.emplace_back(start, end);
  }
  return out;
}

absl::Time Calendar::NextBusinessMoment(absl::Time t) const {
  absl::CivilDay day = absl::ToCivilDay(t, zone_);
  for (int i = 0; i < kSearchDays; ++i, day += 1) {
    for (const auto& [s, e] : WorkingIntervals(day)) {
      if (t < e) return std::max(s, t);
    }
  }
  return absl::InfiniteFuture();
}

absl::Time Calendar::AddBusinessTime(absl::Time t, absl::Duration business) const {
  if (business <= absl::ZeroDuration()) return t;
  absl::Duration left = business;
  absl::CivilDay day = absl::ToCivilDay(t, zone_);
  for (int i = 0; i < kSearchDays; ++i, day += 1) {
    for (const auto& [s, e] : WorkingIntervals(day)) {
      if (e <= t) continue;
      const absl::Time from = std::max(s, t);
      const absl::Duration available = e - from;
      if (left <= available) return from + left;
      left -= available;
    }
  }
  return absl::InfiniteFuture();
}

const std::vector<absl::Duration>& Calendar::YearRunningTotals(int year) const {
  {
    std::lock_guard<std::mutex> lock(cache_->mu);
    auto it = cache_->running_totals.find(year);
    if (it != cache_->running_totals.end()) return it->second;
  }
  // Summed without the lock, which WorkingIntervals takes for the holidays.
  std::vector<absl::Duration> totals = {absl::ZeroDuration()};
  for (absl::CivilDay day(year, 1, 1); day.year() == year; ++day) {
    absl::Duration worked = totals.back();
    for (const auto& [s, e] : WorkingIntervals(day)) worked += e - s;
    totals.push_back(worked);
  }
  std::lock_guard<std::mutex> lock(cache_->mu);
  return cache_->running_totals.emplace(year, std::move(totals)).first->second;
}

absl::Duration Calendar::WholeDaysBetween(absl::CivilDay from, absl::CivilDay to) const {
  // The working time of the days of d's year before d.
  auto before = [this](absl::CivilDay d) {
    return YearRunningTotals(static_cast<int>(d.year()))[absl::GetYearDay(d) - 1];
  };
  absl::Duration total = before(to) - before(from);
  for (int64_t y = from.year(); y < to.year(); ++y) total += YearRunningTotals(static_cast<int>(y)).back();
  return total;
}

absl::Duration Calendar::BusinessTimeBetween(absl::Time a, absl::Time b) const {
  absl::Duration total;
  if (b <= a) return total;
  // The first and the last day in part, the days between them whole: a
  // clock that has run for a year costs what one that ran a day does.
  auto in_part = [&](absl::CivilDay day) {
    for (const auto& [s, e] : WorkingIntervals(day)) {
      const absl::Time from = std::max(s, a), to = std::min(e, b);
      if (from < to) total += to - from;
    }
  };
  const absl::CivilDay first = absl::ToCivilDay(a, zone_);
  const absl::CivilDay last = absl::ToCivilDay(b, zone_);
  in_part(first);
  if (last == first) return total;
  in_part(last);
  return total + WholeDaysBetween(first + 1, last);
}

std::vector<std::pair<absl::CivilDay, std::string>> Calendar::HolidaysIn(int year) const {
  const auto& days = YearHolidays(year);
  return {days.begin(), days.end()};
}

}  // namespace casework::sla
