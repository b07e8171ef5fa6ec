#include "server/workflow/otp_workflow.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "casework/v1/otp_support.pb.h"
#include "server/common/errors.h"
#include "server/workflow/validation.h"

namespace casework::workflow {
namespace {

constexpr char kVerification[] = "VERIFICATION";
constexpr char kVerificationFailed[] = "VERIFICATION_FAILED";
constexpr char kFirstLevel[] = "FIRST_LEVEL";
constexpr char kSecondLevel[] = "SECOND_LEVEL";
constexpr char kTestMailSent[] = "TEST_MAIL_SENT";
constexpr char kOtpRetry[] = "OTP_RETRY";
constexpr char kWithTeamLead[] = "WITH_TEAM_LEAD";
constexpr char kWithProduct[] = "WITH_PRODUCT";
constexpr char kWithOps[] = "WITH_OPS";
constexpr char kResolved[] = "RESOLVED";
constexpr char kClosed[] = "CLOSED";

constexpr char kResolutionSla[] = "resolution";
constexpr char kTeamLeadSla[] = "team_lead";

constexpr char kNoChangeAdvice[] =
    "contact details cannot be changed on the customer's behalf: the customer must regain "
    "access to the email account linked to the profile, or create a new profile";

// What the RPC layer hands the otp actions: the request and what it looked up.
using Input = internal::OtpInput;

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class OtpWorkflow : public Workflow {
 public:
  explicit OtpWorkflow(const OtpPolicy& policy) : policy_(policy) { Build(); }

  const WorkflowSpec& spec() const override { return spec_; }

  std::vector<std::pair<std::string, std::string>> IndexKeys(const CaseRecord& r) const override {
    std::vector<std::pair<std::string, std::string>> out = {{"profile_id", r.otp().profile_id()}};
    switch (r.otp().escalation_target()) {
      case v1::ESCALATION_TARGET_PRODUCT: out.push_back({"escalation", "product"}); break;
      case v1::ESCALATION_TARGET_OPS: out.push_back({"escalation", "ops"}); break;
      default: break;
    }
    return out;
  }

  std::map<std::string, std::string> TemplateValues(const CaseRecord& r) const override {
    const auto& o = r.otp();
    return {{"case_id", r.id()},
            {"profile_id", o.profile_id()},
            {"suspected_takeover", o.suspected_account_takeover() ? "yes" : "no"},
            {"escalation_note", o.escalation_note()},
            {"next_step", o.next_step()}};
  }

  std::vector<std::string> TemplateFields() const override {
    return {"case_id", "profile_id", "suspected_takeover", "escalation_note", "next_step"};
  }

  std::string Recipient(const CaseRecord& r, Audience audience) const override {
    if (audience == Audience::kCustomer) return r.otp().email();
    if (r.state() == kWithProduct) return policy_.product_channel;
    if (r.state() == kWithOps) return policy_.ops_channel;
    return policy_.team_lead_channel;
  }

  std::string LanguageCode(const CaseRecord&) const override { return "en"; }

 private:
  absl::Status Create(ActionContext& ctx) const {
    const v1::CustomerProfile& p = InputAs<Input>(ctx).profile();
    auto* o = ctx.record.mutable_otp();
    o->set_profile_id(p.profile_id());
    o->set_email(p.email());
    o->set_next_step("Ask the POPI security questions and record which were passed");
    return absl::OkStatus();
  }

  absl::Status RecordVerification(ActionContext& ctx) const {
    auto req = RequestIn<v1::RecordVerificationRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    if (!req->has_passed()) {
      // Said outright: a request that forgot it would end the call.
      return InvalidField("passed", "is required: true when the caller passed the security "
                                    "questions, false to end the call");
    }
    auto* o = ctx.record.mutable_otp();
    if (!req->passed()) {
      ctx.AddEvent(v1::EVENT_TYPE_DECISION, "POPI verification failed; the call was ended");
      o->set_next_step("End the call: the caller could not be verified");
      MoveTo(ctx, kVerificationFailed);
      return ctx.ApplySla({SlaEffect::kStop, kResolutionSla, ""});
    }
    FieldErrors errors;
    if (req->passed_question_ids().empty()) {
      errors.Add("passed_question_ids", "name the security questions the customer passed");
    }
    std::set<std::string> seen;
    for (int i = 0; i < req->passed_question_ids_size(); ++i) {
      const std::string& q = req->passed_question_ids(i);
      const std::string field = absl::StrCat("passed_question_ids[", i, "]");
      if (!Contains(policy_.question_ids, q)) {
        errors.Add(field, absl::StrCat("unknown question; one of ", absl::StrJoin(policy_.question_ids, ", ")));
      } else if (!seen.insert(q).second) {
        errors.Add(field, "appears twice");
      }
    }
    if (!errors.empty()) return errors.ToStatus();
    for (const auto& q : req->passed_question_ids()) o->add_passed_questions(q);
    ctx.AddEvent(v1::EVENT_TYPE_DECISION, "POPI verification passed",
                 {{"questions", absl::StrJoin(req->passed_question_ids(), ",")}});
    o->set_next_step("Ask whether the customer tried the OTP by SMS and by email, and checked spam");
    MoveTo(ctx, kFirstLevel);
    return absl::OkStatus();
  }

  absl::Status RecordFirstLevel(ActionContext& ctx) const {
    auto req = RequestIn<v1::RecordFirstLevelRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    auto* o = ctx.record.mutable_otp();
    o->set_tried_sms(o->tried_sms() || req->tried_sms());
    o->set_tried_email(o->tried_email() || req->tried_email());
    o->set_checked_spam(o->checked_spam() || req->checked_spam());
    ctx.AddEvent(v1::EVENT_TYPE_COMMENT, "1st level troubleshooting recorded",
                 {{"tried_sms", o->tried_sms() ? "true" : "false"},
                  {"tried_email", o->tried_email() ? "true" : "false"},
                  {"checked_spam", o->checked_spam() ? "true" : "false"}});
    if (req->otp_received()) return Resolve(ctx, "OTP received after 1st level troubleshooting");
    if (!o->tried_sms()) {
      o->set_next_step("Walk the customer through requesting the OTP by SMS (Resend OTP)");
    } else if (!o->tried_email()) {
      o->set_next_step("Walk the customer through requesting the OTP by email (Verify using email address)");
    } else if (!o->checked_spam()) {
      o->set_next_step("Ask the customer to check the spam folder for the OTP email");
    } else {
      o->set_next_step(
          "Review the profile email on Admin; correct only typos from the corrections table, "
          "then send a test mail");
      MoveTo(ctx, kSecondLevel);
    }
    return absl::OkStatus();
  }

  absl::Status CorrectContact(ActionContext& ctx) const {
    auto req = RequestIn<v1::CorrectProfileContactRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    const v1::CustomerProfile& profile = InputAs<Input>(ctx).profile();
    auto refuse = [](const std::string& what) {
      return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat(what, "; ", kNoChangeAdvice)),
                           "CONTACT_CHANGE_NOT_ALLOWED");
    };
    if (!req->cellphone().empty() && req->cellphone() != profile.cellphone()) {
      return refuse("the cellphone number cannot be changed");
    }
    if (req->email().empty()) return InvalidField("email", "is required");
    if (!IsEmail(req->email())) return InvalidField("email", "must be a valid email address");
    if (req->email() == profile.email()) return InvalidField("email", "is already the profile email");
    if (!IsAllowedEmailCorrection(policy_.email_domain_corrections, profile.email(), req->email())) {
      return refuse("this email change is not in the corrections table");
    }
    v1::CustomerProfile corrected = profile;
    corrected.set_email(req->email());
    corrected.clear_name();
    corrected.clear_etag();
    ctx.decision.directory_writes.emplace_back(kProfileRecordSpace, profile.profile_id(),
                                               corrected.SerializeAsString());
    ctx.record.mutable_otp()->set_email(req->email());
    ctx.AddEvent(v1::EVENT_TYPE_COMMENT, "Profile email corrected",
                 {{"before", profile.email()}, {"after", req->email()}});
    ctx.record.mutable_otp()->set_next_step("Send a test mail to the corrected address");
    return absl::OkStatus();
  }

  absl::Status RecordTestMailResult(ActionContext& ctx) const {
    auto req = RequestIn<v1::RecordTestMailResultRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    FieldErrors errors;
    if (!req->has_received()) {
      errors.Add("received", "is required: true when the test mail arrived, false when not");
    } else if (!req->received() && req->checked_spam() && !req->has_recent_emails_received()) {
      errors.Add("recent_emails_received",
                 "is required when the test mail is not in the spam folder either: true when other "
                 "recent emails from us arrive, false to escalate to the team lead");
    }
    if (!errors.empty()) return errors.ToStatus();
    auto* o = ctx.record.mutable_otp();
    if (req->received()) {
      ctx.AddEvent(v1::EVENT_TYPE_CUSTOMER_RESPONDED, "Test mail received");
      o->set_next_step("Ask the customer to request the OTP by email again");
      MoveTo(ctx, kOtpRetry);
      return absl::OkStatus();
    }
    o->set_checked_spam(o->checked_spam() || req->checked_spam());
    if (!req->checked_spam()) {
      o->set_next_step("Ask the customer to look for the test mail in the spam folder");
      ctx.AddEvent(v1::EVENT_TYPE_CUSTOMER_RESPONDED, "Test mail not seen; spam not checked yet");
      return absl::OkStatus();
    }
    if (req->recent_emails_received()) {
      o->set_next_step("The customer gets our other emails: check the profile email again and resend the test mail");
      ctx.AddEvent(v1::EVENT_TYPE_CUSTOMER_RESPONDED, "Test mail not received, other emails do arrive");
      MoveTo(ctx, kSecondLevel);
      return absl::OkStatus();
    }
    return EscalateToTeamLead(ctx, "Test mail not received, nothing in spam, no recent emails",
                              req->suspected_account_takeover());
  }

  absl::Status RecordOtpResult(ActionContext& ctx) const {
    auto req = RequestIn<v1::RecordOtpResultRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    if (!req->has_received()) {
      return InvalidField("received", "is required: true when the OTP arrived, false to "
                                      "escalate to the team lead");
    }
    if (req->received()) return Resolve(ctx, "OTP received after the test mail");
    return EscalateToTeamLead(ctx, "OTP still not received after the test mail arrived", false);
  }

  absl::Status DecideEscalation(ActionContext& ctx) const {
    auto req = RequestIn<v1::DecideEscalationRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    FieldErrors errors;
    if (req->target() != v1::ESCALATION_TARGET_PRODUCT && req->target() != v1::ESCALATION_TARGET_OPS) {
      errors.Add("target", "is required: PRODUCT or OPS");
    }
    CheckNote(errors, "note", req->note(), /*required=*/true);
    if (!errors.empty()) return errors.ToStatus();
    auto* o = ctx.record.mutable_otp();
    o->set_escalation_target(req->target());
    o->set_escalation_note(req->note());
    const bool product = req->target() == v1::ESCALATION_TARGET_PRODUCT;
    ctx.AddEvent(v1::EVENT_TYPE_DECISION,
                 absl::StrCat("Escalated to ", product ? "the product team" : "ops", ": ", req->note()),
                 {{"note", req->note()}});
    o->set_next_step(absl::StrCat("Waiting on ", product ? "the product team" : "ops"));
    MoveTo(ctx, product ? kWithProduct : kWithOps);
    if (auto s = ctx.ApplySla({SlaEffect::kStop, kTeamLeadSla, ""}); !s.ok()) return s;
    ctx.Notify("otp.escalated", v1::CHANNEL_CHAT, Audience::kOps,
               v1::EVENT_TYPE_NOTIFICATION_QUEUED,
               absl::StrCat(product ? "Product team" : "Ops", " pinged"));
    return absl::OkStatus();
  }

  absl::Status Close(ActionContext& ctx) const {
    auto req = RequestIn<v1::CloseOtpTicketRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    FieldErrors errors;
    if (!Contains(policy_.ticket_forms, req->ticket_form())) {
      errors.Add("ticket_form", absl::StrCat("is required, one of: ", absl::StrJoin(policy_.ticket_forms, " | ")));
    }
    if (!Contains(policy_.query_types, req->query_type())) {
      errors.Add("query_type", absl::StrCat("is required, one of: ", absl::StrJoin(policy_.query_types, " | ")));
    }
    if (!errors.empty()) return errors.ToStatus();
    auto* o = ctx.record.mutable_otp();
    o->set_ticket_form(req->ticket_form());
    o->set_query_type(req->query_type());
    o->set_next_step("");
    ctx.AddEvent(v1::EVENT_TYPE_COMMENT, "Ticket classified and closed",
                 {{"ticket_form", req->ticket_form()}, {"query_type", req->query_type()}});
    return ctx.ApplySla({SlaEffect::kStop, kResolutionSla, ""});
  }

  absl::Status Resolve(ActionContext& ctx, const std::string& why) const {
    ctx.AddEvent(v1::EVENT_TYPE_CUSTOMER_RESPONDED, why);
    ctx.record.mutable_otp()->set_next_step("Close the ticket with the helpdesk classification");
    MoveTo(ctx, kResolved);
    return ctx.ApplySla({SlaEffect::kStop, kResolutionSla, ""});
  }

  absl::Status EscalateToTeamLead(ActionContext& ctx, const std::string& why, bool takeover) const {
    auto* o = ctx.record.mutable_otp();
    o->set_suspected_account_takeover(takeover);
    ctx.AddEvent(v1::EVENT_TYPE_DECISION, absl::StrCat("Escalated to the team lead: ", why),
                 {{"suspected_account_takeover", takeover ? "true" : "false"}});
    o->set_next_step(absl::StrCat("Tell the customer that ", kNoChangeAdvice,
                                  "; the team lead decides on product or ops"));
    MoveTo(ctx, kWithTeamLead);
    if (auto s = ctx.ApplySla({SlaEffect::kStart, kTeamLeadSla, ""}); !s.ok()) return s;
    ctx.Notify("otp.escalated_team_lead", v1::CHANNEL_CHAT, Audience::kOps,
               v1::EVENT_TYPE_NOTIFICATION_QUEUED, "Team lead pinged");
    return absl::OkStatus();
  }

  void Build() {
    spec_.kind = kOtpKind;
    spec_.collection = kOtpCollection;
    spec_.states = {kVerification, kVerificationFailed, kFirstLevel, kSecondLevel,
                    kTestMailSent, kOtpRetry,           kWithTeamLead, kWithProduct,
                    kWithOps,      kResolved,           kClosed};
    spec_.final_states = {kClosed};
    spec_.state_hints = {
        {kVerification, "complete the POPI verification first (RecordVerification)"},
        {kVerificationFailed, "the caller failed POPI verification; only closing is possible"}};
    spec_.slas = {
        {kResolutionSla, "calendars/default", policy_.resolution_budget,
         {{"warning", policy_.resolution_warning, sla::RungKind::kWarning},
          {"breach", policy_.resolution_budget, sla::RungKind::kBreach}}},
        {kTeamLeadSla, "calendars/default", policy_.team_lead_budget,
         {{"warning", policy_.team_lead_warning, sla::RungKind::kWarning},
          {"breach", policy_.team_lead_budget, sla::RungKind::kBreach}}}};
    auto bind = [this](absl::Status (OtpWorkflow::*fn)(ActionContext&) const) {
      return [this, fn](ActionContext& ctx) { return (this->*fn)(ctx); };
    };
    const std::vector<std::string> agents = {kCsAgent};
    spec_.transitions = {
        {kOtpCreate, {}, kVerification, agents, "Customer calls: no OTP arrives", {}, {},
         bind(&OtpWorkflow::Create), {{SlaEffect::kStart, kResolutionSla, ""}}},
        {kOtpRecordVerification, {kVerification}, "", agents, "POPI security questions", {}, {},
         bind(&OtpWorkflow::RecordVerification)},
        {kOtpRecordFirstLevel, {kFirstLevel}, "", agents, "SMS, email and spam", {}, {},
         bind(&OtpWorkflow::RecordFirstLevel)},
        {kOtpCorrectContact, {kSecondLevel}, "", agents, "Correct a typo from the table", {}, {},
         bind(&OtpWorkflow::CorrectContact)},
        {kOtpSendTestMail, {kSecondLevel}, kTestMailSent, agents, "Send a test mail",
         {{"otp.test_mail", v1::CHANNEL_EMAIL, Audience::kCustomer, "Test mail sent"}}, {},
         [](ActionContext& ctx) {
           ctx.record.mutable_otp()->set_next_step("Ask whether the test mail arrived");
           return absl::OkStatus();
         }},
        {kOtpRecordTestMailResult, {kTestMailSent}, "", agents, "Did the test mail arrive?", {}, {},
         bind(&OtpWorkflow::RecordTestMailResult)},
        {kOtpRecordOtpResult, {kOtpRetry}, "", agents, "Did the OTP arrive this time?", {}, {},
         bind(&OtpWorkflow::RecordOtpResult)},
        {kOtpDecideEscalation, {kWithTeamLead}, "", {kTeamLead}, "Team lead: product or ops", {}, {},
         bind(&OtpWorkflow::DecideEscalation)},
        {kOtpClose, {kResolved, kWithProduct, kWithOps, kVerificationFailed}, kClosed,
         {kCsAgent, kTeamLead}, "Close with the helpdesk classification", {}, {},
         bind(&OtpWorkflow::Close)},
        CommentTransition(spec_.states, RequestText<Input>(&v1::AddOtpTicketCommentRequest::text)),
        AssignTransition(spec_, RequestText<Input>(&v1::AssignOtpTicketRequest::assignee)),
    };
  }

  OtpPolicy policy_;
  WorkflowSpec spec_;
};

}  // namespace

bool IsAllowedEmailCorrection(const std::map<std::string, std::string>& corrections,
                              const std::string& current, const std::string& wanted) {
  const size_t a = current.rfind('@'), b = wanted.rfind('@');
  if (a == std::string::npos || b == std::string::npos) return false;
  if (current.substr(0, a) != wanted.substr(0, b)) return false;
  auto it = corrections.find(absl::AsciiStrToLower(current.substr(a + 1)));
  return it != corrections.end() && it->second == absl::AsciiStrToLower(wanted.substr(b + 1));
}

std::unique_ptr<Workflow> NewOtpWorkflow(const OtpPolicy& policy) {
  return std::make_unique<OtpWorkflow>(policy);
}

}  // namespace casework::workflow
