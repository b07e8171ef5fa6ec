// Trade-in problem orders (seeds 000 "device is locked" and 001 "proof of
// purchase"), as a workflow declaration.
#ifndef CASEWORK_SERVER_WORKFLOW_TRADE_IN_WORKFLOW_H_
#define CASEWORK_SERVER_WORKFLOW_TRADE_IN_WORKFLOW_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/workflow/workflow.h"

namespace casework::workflow {

inline constexpr char kTradeInKind[] = "trade_in";
// Resource collection of its cases in the API: "tradeIns/{id}".
inline constexpr char kTradeInCollection[] = "tradeIns";

// Actions, for the RPC layer.
inline constexpr char kTradeInCreate[] = "create";
inline constexpr char kTradeInContactCustomer[] = "contact_customer";
inline constexpr char kTradeInRecordUnlockCode[] = "record_unlock_code";
inline constexpr char kTradeInRevealUnlockCode[] = "reveal_unlock_code";
inline constexpr char kTradeInAttachProof[] = "attach_proof_of_purchase";
inline constexpr char kTradeInApproveProof[] = "approve_proof_of_purchase";
inline constexpr char kTradeInRejectProof[] = "reject_proof_of_purchase";
inline constexpr char kTradeInFlagProblem[] = "flag_problem";
inline constexpr char kTradeInClose[] = "close";
inline constexpr char kTradeInCancel[] = "cancel";
inline constexpr char kTradeInCustomerResponded[] = "customer_responded";
// The SLA clock that runs while waiting for the customer; its rungs are the
// reminders ("reminder.1", "reminder.2", ...) and "no_response".
inline constexpr char kTradeInResponseSla[] = "response";
// Attachment id of the proof of purchase.
inline constexpr char kProofAttachment[] = "proof_of_purchase";

// Reminder policy (documented in README, "Trade-in reminders"): after the
// contact email, a reminder every `reminder_interval` up to `max_reminders`;
// `no_response_after` the last one the case returns to PROBLEM_ORDER as
// "no response" and ops are pinged. The schedule is the "response" SLA
// clock in calendar time; reminder emails are held until the next business
// hour of `calendar`.
struct TradeInPolicy {
  absl::Duration reminder_interval = absl::Hours(24 * 7);
  int max_reminders = 2;
  absl::Duration no_response_after = absl::Hours(24 * 7);
  // Case-insensitive product-name prefixes that need a proof of purchase.
  std::vector<std::string> proof_of_purchase_products = {"iPhone 16"};
  std::string ops_chat_channel = "#cs-handling";
  // Calendar for business-hours holds and for the dates written in the
  // timeline ("Reminder sent DD-MM-YYYY").
  std::string calendar = "calendars/default";
  size_t max_document_bytes = 5 << 20;
};

std::unique_ptr<Workflow> NewTradeInWorkflow(const TradeInPolicy& policy);

}  // namespace casework::workflow

#endif  // CASEWORK_SERVER_WORKFLOW_TRADE_IN_WORKFLOW_H_
