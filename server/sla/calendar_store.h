// The business calendars of a server, stored as records and kept compiled
// in memory. The default calendar is installed on first start.
#ifndef CASEWORK_SERVER_SLA_CALENDAR_STORE_H_
#define CASEWORK_SERVER_SLA_CALENDAR_STORE_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/sla/calendar.h"
#include "storage/repository.h"

namespace casework::sla {

class CalendarStore {
 public:
  // `repo` must outlive the store. Thread-safe.
  explicit CalendarStore(storage::Repository* repo);

  // Installs the default calendar if missing and compiles every stored one.
  absl::Status Load(absl::Time now);

  // The compiled calendar "calendars/{id}", or null. A deleted one is
  // still found, marked retired(), for the clocks that ran on it.
  std::shared_ptr<const Calendar> Get(const std::string& name) const;

  // The stored calendar with its etag; NOT_FOUND naming it.
  absl::StatusOr<v1::BusinessCalendar> GetProto(const std::string& name) const;
  absl::StatusOr<std::vector<v1::BusinessCalendar>> List(const std::string& after_name,
                                                         int limit) const;

  // Validates (INVALID_ARGUMENT naming "calendar.<field>") and stores.
  // `expected_version` < 0 skips the etag check and 0 creates only.
  // NOT_FOUND when missing and not `allow_missing`; ABORTED when the etag
  // is stale; ALREADY_EXISTS when creating one that exists.
  absl::StatusOr<v1::BusinessCalendar> Put(v1::BusinessCalendar calendar,
                                           int64_t expected_version, bool allow_missing,
                                           absl::Time now);

  // Deletes a calendar at `expected_version` (< 0: any), keeping it as
  // retired and noting that the clocks on it are to move off it (see
  // PendingMoves). FAILED_PRECONDITION for the default calendar.
  absl::Status Retire(const std::string& name, int64_t expected_version);
  // Deleted calendars whose clocks have not all moved off yet; MoveDone
  // says they have.
  absl::StatusOr<std::vector<std::string>> PendingMoves() const;
  absl::Status MoveDone(const std::string& name);

 private:
  storage::Repository* repo_;
  // Held by every write, so that a delete and an edit of one calendar
  // cannot interleave.
  std::mutex write_mu_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const Calendar>> compiled_;
  std::map<std::string, std::shared_ptr<const Calendar>> retired_;
};

// OK for "calendars/{id}" with an id of 1-63 of a-z, 0-9, '-' and '_';
// otherwise INVALID_ARGUMENT naming `field`.
absl::Status CheckCalendarName(const std::string& name, std::string field);

}  // namespace casework::sla

#endif  // CASEWORK_SERVER_SLA_CALENDAR_STORE_H_
