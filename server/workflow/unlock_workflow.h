// Carrier unlock requests (seed 002), as a workflow declaration.
#ifndef CASEWORK_SERVER_WORKFLOW_UNLOCK_WORKFLOW_H_
#define CASEWORK_SERVER_WORKFLOW_UNLOCK_WORKFLOW_H_

#include <memory>
#include <string>

#include "server/workflow/workflow.h"

namespace casework::workflow {

inline constexpr char kUnlockKind[] = "unlock";
// Resource collection of its cases in the API: "unlockRequests/{id}".
inline constexpr char kUnlockCollection[] = "unlockRequests";
inline constexpr char kUnlockCreate[] = "create";
inline constexpr char kUnlockVerifyIdentity[] = "verify_identity";
inline constexpr char kUnlockCheckEligibility[] = "check_eligibility";
inline constexpr char kUnlockSubmit[] = "submit_unlock";
inline constexpr char kUnlockComplete[] = "complete_unlock";
inline constexpr char kUnlockResendConfirmation[] = "resend_confirmation";
inline constexpr char kUnlockEscalate[] = "escalate";
inline constexpr char kUnlockCancel[] = "cancel";
inline constexpr char kUnlockSla[] = "unlock";

// Identity failures from which a request shows up for team leads.
inline constexpr int kRepeatedIdentityFailures = 3;

struct UnlockPolicy {
  // The window told to the customer: from `expected_from_days` to
  // `expected_by_days` business days after submission; the SLA warns at
  // the first and is breached at the second. A business day is the
  // calendar's working day (8 hours on the default calendar).
  int expected_from_days = 2;
  int expected_by_days = 3;
  absl::Duration business_day = absl::Hours(8);
  std::string tech_support_channel = "#tech-support";
};

// Commands take a casework.internal.UnlockInput: the RPC request (packed)
// and the account as the directory has it now.
std::unique_ptr<Workflow> NewUnlockWorkflow(const UnlockPolicy& policy);

}  // namespace casework::workflow

#endif  // CASEWORK_SERVER_WORKFLOW_UNLOCK_WORKFLOW_H_
