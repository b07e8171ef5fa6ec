// SLA clocks as ledgers: a budget, the time consumed, `running_since`, and
// every pause with its reason. Deadlines (rung due times) are derived from
// the ledger, so pauses and calendar or policy edits move them exactly.
// Pure code.
#ifndef CASEWORK_SERVER_SLA_LEDGER_H_
#define CASEWORK_SERVER_SLA_LEDGER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "casework/internal/records.pb.h"
#include "casework/v1/common.pb.h"
#include "server/sla/calendar.h"

namespace casework::sla {

using internal::SlaLedger;

enum class RungKind { kReminder = 1, kWarning = 2, kBreach = 3 };

struct RungPolicy {
  // "reminder.1", "warning", "breach". A ".N" suffix makes a series.
  std::string name;
  // Due when this much of the budget has been consumed.
  absl::Duration at;
  RungKind kind;
};

struct SlaPolicy {
  // The ledger's name on the case, e.g. "response", "review".
  std::string sla;
  // Calendar resource name for business time; empty for calendar time.
  std::string calendar;
  absl::Duration budget;
  std::vector<RungPolicy> rungs;
};

// The name of the durable timer of a rung: "sla/{sla}/{rung}".
std::string RungTimerName(const std::string& sla, const std::string& rung);
// Splits a rung timer name; false if it is not one.
bool ParseRungTimerName(const std::string& timer, std::string* sla, std::string* rung);

// Identifies a policy's content (name, calendar, budget, rungs); a ledger
// started from an older version of the policy has another fingerprint.
std::string PolicyFingerprint(const SlaPolicy& policy);

// A new running ledger.
SlaLedger Start(const SlaPolicy& policy, absl::Time now);

// Moves a ledger onto an edited policy: new calendar, budget and rungs,
// keeping what was consumed and which rungs (by name) already fired.
void ApplyPolicy(SlaLedger* ledger, const SlaPolicy& policy, absl::Time now,
                 const Calendar* old_calendar, const Calendar* new_calendar);

// Budget consumed at `now`.
absl::Duration Consumed(const SlaLedger& ledger, absl::Time now, const Calendar* calendar);
// Time spent paused up to `now`.
absl::Duration PausedTime(const SlaLedger& ledger, absl::Time now);

// FAILED_PRECONDITION unless running.
absl::Status Pause(SlaLedger* ledger, const std::string& reason, const v1::Actor& actor,
                   absl::Time now, const Calendar* calendar);
// FAILED_PRECONDITION unless paused.
absl::Status Resume(SlaLedger* ledger, absl::Time now);
// Stops a running or paused ledger for good (no-op when stopped).
void Stop(SlaLedger* ledger, absl::Time now, const Calendar* calendar);

// Recomputes every rung's due time: while running, running_since plus the
// rest of the rung's budget on the calendar; otherwise cleared. A rung whose
// point was already consumed is due at once.
void Derive(SlaLedger* ledger, const Calendar* calendar);

// The API view.
v1::Sla ToApi(const SlaLedger& ledger, absl::Time now, const Calendar* calendar);

}  // namespace casework::sla

#endif  // CASEWORK_SERVER_SLA_LEDGER_H_
