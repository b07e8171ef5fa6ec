// Business calendars: a time zone, working hours per weekday and holiday
// rules (fixed dates, Easter-based dates, n-th weekdays, one-off dates, with
// observed-day shifts and effective years). Business-time arithmetic is
// done in local civil time, so it is right across DST changes. Pure code.
#ifndef CASEWORK_SERVER_SLA_CALENDAR_H_
#define CASEWORK_SERVER_SLA_CALENDAR_H_

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "casework/v1/admin.pb.h"

namespace casework::sla {

// Easter Sunday of a Gregorian year.
absl::CivilDay EasterSunday(int year);

// The calendar used when none is named: "calendars/default",
// Europe/Amsterdam, Monday to Friday 09:00-17:00, and the Dutch public
// holidays (New Year's Day, Easter Monday, King's Day (27 April, on a Sunday
// the Saturday before), Ascension Day, Whit Monday, Christmas Day, Boxing
// Day).
v1::BusinessCalendar DefaultCalendar();

class Calendar {
 public:
  // Checks `proto` and compiles it. INVALID_ARGUMENT names the bad field,
  // prefixed with `field_prefix` (e.g. "calendar.").
  static absl::StatusOr<Calendar> Compile(const v1::BusinessCalendar& proto,
                                          const std::string& field_prefix = "calendar.");

  const std::string& name() const { return proto_.name(); }
  const v1::BusinessCalendar& proto() const { return proto_; }
  absl::TimeZone zone() const { return zone_; }
  // A deleted calendar is kept to measure what clocks used on it; no clock
  // starts on it any more.
  bool retired() const { return retired_; }
  Calendar Retired() const {
    Calendar c = *this;
    c.retired_ = true;
    return c;
  }

  bool IsHoliday(absl::CivilDay day) const;
  // Not a holiday and with working hours.
  bool IsBusinessDay(absl::CivilDay day) const;
  // The day's working intervals as instants, in order.
  std::vector<std::pair<absl::Time, absl::Time>> WorkingIntervals(absl::CivilDay day) const;

  // The first instant at or after `t` inside working hours.
  absl::Time NextBusinessMoment(absl::Time t) const;
  // `t` plus `business` of working time; the result lies inside or at the
  // end of a working interval. InfiniteFuture if the calendar has no
  // working time in the next ten years.
  absl::Time AddBusinessTime(absl::Time t, absl::Duration business) const;
  // Working time in [a, b); zero when b <= a.
  absl::Duration BusinessTimeBetween(absl::Time a, absl::Time b) const;
  // The length of a business day (the longest working day of the week):
  // "N business days" is N times this much working time.
  absl::Duration BusinessDay() const { return business_day_; }

  // Observed holidays of a year with their names, in date order.
  std::vector<std::pair<absl::CivilDay, std::string>> HolidaysIn(int year) const;

 private:
  Calendar() = default;
  const std::map<absl::CivilDay, std::string>& YearHolidays(int year) const;
  // Entry k: the working time of the first k days of `year` (k from 0 to
  // the days in the year), worked out once per year.
  const std::vector<absl::Duration>& YearRunningTotals(int year) const;
  // The working time of the whole days from `from` up to, not including, `to`.
  absl::Duration WholeDaysBetween(absl::CivilDay from, absl::CivilDay to) const;

  v1::BusinessCalendar proto_;
  absl::TimeZone zone_;
  // Working intervals per weekday (0 = Monday), in minutes.
  std::vector<std::pair<int, int>> hours_[7];
  absl::Duration business_day_;
  bool retired_ = false;

  struct Cache {
    std::mutex mu;
    std::map<int, std::map<absl::CivilDay, std::string>> years;
    std::map<int, std::vector<absl::Duration>> running_totals;
  };
  std::shared_ptr<Cache> cache_ = std::make_shared<Cache>();
};

}  // namespace casework::sla

#endif  // CASEWORK_SERVER_SLA_CALENDAR_H_
