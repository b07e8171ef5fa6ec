#include "server/rpc/access.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "server/workflow/claim_workflow.h"
#include "server/workflow/enrollment_workflow.h"
#include "server/workflow/otp_workflow.h"
#include "server/workflow/trade_in_workflow.h"
#include "server/workflow/unlock_workflow.h"

namespace casework::rpc {
namespace {

namespace wf = workflow;

// An entry: either fixed roles (empty: every authenticated role) or a
// workflow action whose transition lists the roles.
struct Rule {
  const char* method;  // "Service/Method" within casework.v1
  std::vector<std::string> roles;
  const char* kind = nullptr;
  const char* action = nullptr;
};

Rule Anyone(const char* method) { return {method, {}}; }
Rule Only(const char* method, std::vector<std::string> roles) { return {method, std::move(roles)}; }
Rule Action(const char* method, const char* kind, const char* action) {
  return {method, {}, kind, action};
}

const std::vector<Rule>& Rules() {
  static const auto* rules = new std::vector<Rule>{
      // Trade-in orders.
      Action("TradeInService/CreateTradeIn", wf::kTradeInKind, wf::kTradeInCreate),
      Anyone("TradeInService/GetTradeIn"),
      Anyone("TradeInService/ListTradeIns"),
      Anyone("TradeInService/GetTradeInBoard"),
      Anyone("TradeInService/ListTradeInEvents"),
      Action("TradeInService/ContactCustomer", wf::kTradeInKind, wf::kTradeInContactCustomer),
      Action("TradeInService/RecordUnlockCode", wf::kTradeInKind, wf::kTradeInRecordUnlockCode),
      Action("TradeInService/RevealUnlockCode", wf::kTradeInKind, wf::kTradeInRevealUnlockCode),
      Action("TradeInService/AttachProofOfPurchase", wf::kTradeInKind, wf::kTradeInAttachProof),
      Only("TradeInService/GetProofOfPurchase", {wf::kApprover, wf::kOps, wf::kCsAgent}),
      Action("TradeInService/ApproveProofOfPurchase", wf::kTradeInKind, wf::kTradeInApproveProof),
      Action("TradeInService/RejectProofOfPurchase", wf::kTradeInKind, wf::kTradeInRejectProof),
      Action("TradeInService/FlagProblem", wf::kTradeInKind, wf::kTradeInFlagProblem),
      Action("TradeInService/CloseTradeIn", wf::kTradeInKind, wf::kTradeInClose),
      Action("TradeInService/CancelTradeIn", wf::kTradeInKind, wf::kTradeInCancel),
      Action("TradeInService/AddTradeInComment", wf::kTradeInKind, wf::kComment),
      Action("TradeInService/AssignTradeIn", wf::kTradeInKind, wf::kAssign),
      Action("TradeInService/RecordCustomerResponse", wf::kTradeInKind,
             wf::kTradeInCustomerResponded),
      // Carrier unlocks.
      Action("UnlockService/CreateUnlockRequest", wf::kUnlockKind, wf::kUnlockCreate),
      Anyone("UnlockService/GetUnlockRequest"),
      Anyone("UnlockService/ListUnlockRequests"),
      Anyone("UnlockService/GetUnlockBoard"),
      Anyone("UnlockService/ListUnlockRequestEvents"),
      Action("UnlockService/VerifyIdentity", wf::kUnlockKind, wf::kUnlockVerifyIdentity),
      Action("UnlockService/CheckEligibility", wf::kUnlockKind, wf::kUnlockCheckEligibility),
      Action("UnlockService/SubmitUnlock", wf::kUnlockKind, wf::kUnlockSubmit),
      Action("UnlockService/CompleteUnlock", wf::kUnlockKind, wf::kUnlockComplete),
      Action("UnlockService/ResendConfirmation", wf::kUnlockKind, wf::kUnlockResendConfirmation),
      Action("UnlockService/EscalateUnlock", wf::kUnlockKind, wf::kUnlockEscalate),
      Action("UnlockService/CancelUnlockRequest", wf::kUnlockKind, wf::kUnlockCancel),
      Action("UnlockService/AddUnlockRequestComment", wf::kUnlockKind, wf::kComment),
      Action("UnlockService/AssignUnlockRequest", wf::kUnlockKind, wf::kAssign),
      // OTP login support.
      Action("OtpSupportService/CreateOtpTicket", wf::kOtpKind, wf::kOtpCreate),
      Anyone("OtpSupportService/GetOtpTicket"),
      Anyone("OtpSupportService/ListOtpTickets"),
      Anyone("OtpSupportService/GetOtpBoard"),
      Anyone("OtpSupportService/ListOtpTicketEvents"),
      Action("OtpSupportService/RecordVerification", wf::kOtpKind, wf::kOtpRecordVerification),
      Action("OtpSupportService/RecordFirstLevel", wf::kOtpKind, wf::kOtpRecordFirstLevel),
      Action("OtpSupportService/CorrectProfileContact", wf::kOtpKind, wf::kOtpCorrectContact),
      Action("OtpSupportService/SendTestMail", wf::kOtpKind, wf::kOtpSendTestMail),
      Action("OtpSupportService/RecordTestMailResult", wf::kOtpKind, wf::kOtpRecordTestMailResult),
      Action("OtpSupportService/RecordOtpResult", wf::kOtpKind, wf::kOtpRecordOtpResult),
      Action("OtpSupportService/DecideEscalation", wf::kOtpKind, wf::kOtpDecideEscalation),
      Action("OtpSupportService/CloseOtpTicket", wf::kOtpKind, wf::kOtpClose),
      Action("OtpSupportService/AddOtpTicketComment", wf::kOtpKind, wf::kComment),
      Action("OtpSupportService/AssignOtpTicket", wf::kOtpKind, wf::kAssign),
      // Device protection: plans, enrollments, claims.
      Anyone("ProtectionClaimService/GetProtectionPlan"),
      Anyone("ProtectionClaimService/ListProtectionPlans"),
      Only("ProtectionClaimService/CreateProtectionPlan", {wf::kAdmin}),
      Only("ProtectionClaimService/UpdateProtectionPlan", {wf::kAdmin}),
      Action("ProtectionClaimService/CreateEnrollment", wf::kEnrollmentKind, wf::kEnrollmentCreate),
      Anyone("ProtectionClaimService/GetEnrollment"),
      Anyone("ProtectionClaimService/ListEnrollments"),
      Anyone("ProtectionClaimService/ListEnrollmentEvents"),
      Action("ProtectionClaimService/UpdateEnrollmentContact", wf::kEnrollmentKind,
             wf::kEnrollmentUpdateContact),
      Action("ProtectionClaimService/UpdatePaymentMethod", wf::kEnrollmentKind,
             wf::kEnrollmentUpdatePayment),
      Action("ProtectionClaimService/AddProtectedDevice", wf::kEnrollmentKind,
             wf::kEnrollmentAddDevice),
      Action("ProtectionClaimService/RemoveProtectedDevice", wf::kEnrollmentKind,
             wf::kEnrollmentRemoveDevice),
      Action("ProtectionClaimService/ChangePlan", wf::kEnrollmentKind, wf::kEnrollmentChangePlan),
      Action("ProtectionClaimService/VerifyEnrollmentContact", wf::kEnrollmentKind,
             wf::kEnrollmentVerifyContact),
      Action("ProtectionClaimService/CancelEnrollment", wf::kEnrollmentKind, wf::kEnrollmentCancel),
      Action("ProtectionClaimService/ReportContactBounced", wf::kEnrollmentKind,
             wf::kEnrollmentContactBounced),
      Action("ProtectionClaimService/AddEnrollmentComment", wf::kEnrollmentKind, wf::kComment),
      Action("ProtectionClaimService/ReportClaim", wf::kClaimKind, wf::kClaimReport),
      Anyone("ProtectionClaimService/GetClaim"),
      Anyone("ProtectionClaimService/ListClaims"),
      Anyone("ProtectionClaimService/GetClaimBoard"),
      Anyone("ProtectionClaimService/ListClaimEvents"),
      Action("ProtectionClaimService/RequestClaimDocuments", wf::kClaimKind,
             wf::kClaimRequestDocuments),
      Action("ProtectionClaimService/AttachClaimDocument", wf::kClaimKind, wf::kClaimAttachDocument),
      Only("ProtectionClaimService/GetClaimDocument", {wf::kCsAgent, wf::kApprover, wf::kTeamLead}),
      Action("ProtectionClaimService/StartClaimReview", wf::kClaimKind, wf::kClaimStartReview),
      Action("ProtectionClaimService/AwaitClaimDocuments", wf::kClaimKind, wf::kClaimAwaitDocuments),
      Action("ProtectionClaimService/ResumeClaimReview", wf::kClaimKind, wf::kClaimResumeReview),
      Action("ProtectionClaimService/ResolveClaim", wf::kClaimKind, wf::kClaimResolve),
      Action("ProtectionClaimService/DenyClaim", wf::kClaimKind, wf::kClaimDeny),
      Action("ProtectionClaimService/AddClaimComment", wf::kClaimKind, wf::kComment),
      Action("ProtectionClaimService/AssignClaim", wf::kClaimKind, wf::kAssign),
      // Administration.
      Anyone("AdminService/GetTemplate"),
      Anyone("AdminService/ListTemplates"),
      Only("AdminService/CreateTemplate", {wf::kAdmin}),
      Only("AdminService/DeleteTemplate", {wf::kAdmin}),
      Only("AdminService/UpdateTemplate", {wf::kAdmin}),
      Only("AdminService/ResetTemplate", {wf::kAdmin}),
      Anyone("AdminService/RenderTemplate"),
      Anyone("AdminService/GetCalendar"),
      Anyone("AdminService/ListCalendars"),
      Only("AdminService/CreateCalendar", {wf::kAdmin}),
      Only("AdminService/UpdateCalendar", {wf::kAdmin}),
      Only("AdminService/DeleteCalendar", {wf::kAdmin}),
      Only("AdminService/GetAccount", {wf::kCsAgent, wf::kTeamLead, wf::kAdmin, wf::kService}),
      Only("AdminService/UpdateAccount", {wf::kAdmin}),
      Only("AdminService/ImportAccounts", {wf::kAdmin}),
      Only("AdminService/GetProfile", {wf::kCsAgent, wf::kTeamLead, wf::kAdmin, wf::kService}),
      Only("AdminService/UpdateProfile", {wf::kAdmin}),
      Only("AdminService/ImportProfiles", {wf::kAdmin}),
      Only("AdminService/ListDeadLetters", {wf::kAdmin, wf::kTeamLead}),
      Only("AdminService/RetryDeadLetter", {wf::kAdmin}),
      Only("AdminService/EraseCustomerData", {wf::kAdmin}),
      Only("AdminService/ListAuditRecords", {wf::kAdmin}),
      Only("AdminService/CreateBackup", {wf::kAdmin}),
      Only("AdminService/ListBackups", {wf::kAdmin}),
      // Live boards.
      Anyone("BoardService/WatchBoards"),
  };
  return *rules;
}

}  // namespace

const std::vector<std::string>& CaseworkServices() {
  static const auto* services = new std::vector<std::string>{
      "casework.v1.TradeInService", "casework.v1.UnlockService", "casework.v1.OtpSupportService",
      "casework.v1.ProtectionClaimService", "casework.v1.AdminService",
      "casework.v1.BoardService"};
  return *services;
}

const workflow::Transition* AccessTable::TransitionOf(const std::string& method) const {
  auto it = transitions_.find(method);
  return it == transitions_.end() ? nullptr : it->second;
}

absl::StatusOr<AccessTable> AccessTable::Build(const std::vector<const workflow::Workflow*>& workflows) {
  AccessTable table;
  for (const Rule& rule : Rules()) {
    const std::string method = absl::StrCat("casework.v1.", rule.method);
    std::vector<std::string> roles = rule.roles;
    if (rule.action != nullptr) {
      const workflow::Workflow* wf = nullptr;
      for (const auto* w : workflows) {
        if (w->spec().kind == rule.kind) wf = w;
      }
      const workflow::Transition* t = wf == nullptr ? nullptr : wf->spec().Find(rule.action);
      if (t == nullptr) {
        return absl::InternalError(
            absl::StrCat("access table: ", method, " names unknown action ", rule.kind, "/", rule.action));
      }
      roles = t->roles;
      table.transitions_[method] = t;
    } else if (roles.empty()) {
      roles = workflow::AllRoles();
    }
    if (!table.roles_.emplace(method, std::move(roles)).second) {
      return absl::InternalError(absl::StrCat("access table: ", method, " appears twice"));
    }
  }
  // Every RPC has an entry, and every entry is an RPC.
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  size_t methods = 0;
  for (const auto& name : CaseworkServices()) {
    const auto* service = pool->FindServiceByName(name);
    if (service == nullptr) return absl::InternalError(absl::StrCat("access table: no service ", name));
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string method = absl::StrCat(name, "/", service->method(i)->name());
      if (!table.roles_.count(method)) {
        return absl::InternalError(absl::StrCat("access table: ", method, " has no entry"));
      }
      ++methods;
    }
  }
  if (methods != table.roles_.size()) {
    return absl::InternalError("access table: an entry names an RPC that does not exist");
  }
  return table;
}

absl::Status AccessTable::Check(const std::string& method, const std::string& role) const {
  auto it = roles_.find(method);
  if (it == roles_.end()) {
    return absl::PermissionDeniedError(absl::StrCat(method, " is not open to any role"));
  }
  if (std::find(it->second.begin(), it->second.end(), role) != it->second.end()) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      method.substr(method.rfind('/') + 1), " requires role ", absl::StrJoin(it->second, " or "),
      "; you are ", role));
}

}  // namespace casework::rpc
