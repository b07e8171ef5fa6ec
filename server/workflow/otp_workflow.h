// OTP login support (seed 004), as a workflow declaration.
#ifndef CASEWORK_SERVER_WORKFLOW_OTP_WORKFLOW_H_
#define CASEWORK_SERVER_WORKFLOW_OTP_WORKFLOW_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "server/workflow/workflow.h"

namespace casework::workflow {

inline constexpr char kOtpKind[] = "otp";
// Resource collection of its cases in the API: "otpTickets/{id}".
inline constexpr char kOtpCollection[] = "otpTickets";
// Where the embedded profile directory keeps profiles; the workflow writes a
// corrected profile there in the same commit as the ticket.
inline constexpr char kProfileRecordSpace[] = "profiles";

inline constexpr char kOtpCreate[] = "create";
inline constexpr char kOtpRecordVerification[] = "record_verification";
inline constexpr char kOtpRecordFirstLevel[] = "record_first_level";
inline constexpr char kOtpCorrectContact[] = "correct_contact";
inline constexpr char kOtpSendTestMail[] = "send_test_mail";
inline constexpr char kOtpRecordTestMailResult[] = "record_test_mail_result";
inline constexpr char kOtpRecordOtpResult[] = "record_otp_result";
inline constexpr char kOtpDecideEscalation[] = "decide_escalation";
inline constexpr char kOtpClose[] = "close";

struct OtpPolicy {
  std::vector<std::string> question_ids;
  // Email domain typo -> correct domain.
  std::map<std::string, std::string> email_domain_corrections;
  std::vector<std::string> ticket_forms;
  std::vector<std::string> query_types;
  std::string team_lead_channel = "#mrd-team-leads";
  std::string product_channel = "#mrd-product";
  std::string ops_channel = "#mrd-ops";
  // Time to resolution, and time waiting on the team lead, in business time
  // on the default calendar.
  absl::Duration resolution_budget = absl::Hours(8);
  absl::Duration resolution_warning = absl::Hours(6);
  absl::Duration team_lead_budget = absl::Hours(4);
  absl::Duration team_lead_warning = absl::Hours(2);
};

// Commands take a casework.internal.OtpInput: the RPC request (packed) and
// the profile as the directory has it now.
std::unique_ptr<Workflow> NewOtpWorkflow(const OtpPolicy& policy);

// Whether changing `current` to `wanted` is one of the allowed corrections:
// same local part, and the domain corrected as the table says.
bool IsAllowedEmailCorrection(const std::map<std::string, std::string>& corrections,
                              const std::string& current, const std::string& wanted);

}  // namespace casework::workflow

#endif  // CASEWORK_SERVER_WORKFLOW_OTP_WORKFLOW_H_
