// Named places where crash tests stop the process as kill -9 would. A point
// is armed by setting CASEWORK_CRASH_POINT to its name before start; unset
// (always, in production) each point costs one load of a cached flag.
//
// Points: "outbox.after_deliver" (a receiver accepted, the outbox does not
// know yet), "commit.before_write", "commit.after_write" (synced, not yet
// acknowledged), "timer.before_commit".
#ifndef CASEWORK_SERVER_COMMON_CRASH_POINT_H_
#define CASEWORK_SERVER_COMMON_CRASH_POINT_H_

#include "absl/strings/string_view.h"

namespace casework {

// Ends the process with SIGKILL if `name` is the armed point.
void CrashPoint(absl::string_view name);

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_CRASH_POINT_H_
