#include "server/workflow/unlock_workflow.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "casework/v1/unlock.pb.h"
#include "server/common/errors.h"
#include "server/common/proto_time.h"
#include "server/workflow/validation.h"

namespace casework::workflow {
namespace {

constexpr char kOpen[] = "OPEN";
constexpr char kVerified[] = "IDENTITY_VERIFIED";
constexpr char kEligible[] = "ELIGIBLE";
constexpr char kDenied[] = "DENIED";
constexpr char kSubmitted[] = "SUBMITTED";
constexpr char kCompleted[] = "COMPLETED";
constexpr char kFailed[] = "FAILED";
constexpr char kEscalated[] = "ESCALATED";
constexpr char kCancelled[] = "CANCELLED";

// What the RPC layer hands the unlock actions: the request and what it looked up.
using Input = internal::UnlockInput;

std::string RuleName(v1::EligibilityRule r) {
  switch (r) {
    case v1::ELIGIBILITY_RULE_DEVICE_NOT_PAID_OFF: return "the device is not fully paid off";
    case v1::ELIGIBILITY_RULE_ACCOUNT_NOT_IN_GOOD_STANDING: return "the account is not in good standing";
    case v1::ELIGIBILITY_RULE_DEVICE_REPORTED_LOST_OR_STOLEN: return "the device is reported lost or stolen";
    default: return "unknown rule";
  }
}

const v1::AccountDevice* DeviceOf(const v1::Account& account, const std::string& imei) {
  for (const auto& d : account.devices()) {
    if (d.imei() == imei) return &d;
  }
  return nullptr;
}

// Checks the IMEI's form and that the device is on the account.
absl::StatusOr<const v1::AccountDevice*> RequireDevice(const v1::Account& account,
                                                       const std::string& imei) {
  if (imei.empty()) return InvalidField("imei", "is required");
  if (imei.size() != 15 || imei.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidField("imei", "must be exactly 15 digits");
  }
  if (!IsImei(imei)) return InvalidField("imei", "has a wrong check digit (Luhn); check for typos");
  const v1::AccountDevice* device = DeviceOf(account, imei);
  if (device == nullptr) {
    return InvalidField("imei", absl::StrCat("is not a device of account ", account.account_number()));
  }
  return device;
}

// Every prerequisite the device and account fail, in a fixed order.
std::vector<v1::EligibilityRule> FailedRules(const v1::Account& account,
                                             const v1::AccountDevice& device) {
  std::vector<v1::EligibilityRule> failed;
  if (device.balance_minor_units() > 0) failed.push_back(v1::ELIGIBILITY_RULE_DEVICE_NOT_PAID_OFF);
  if (account.standing() != v1::ACCOUNT_STANDING_GOOD) {
    failed.push_back(v1::ELIGIBILITY_RULE_ACCOUNT_NOT_IN_GOOD_STANDING);
  }
  if (device.reported_lost_or_stolen()) {
    failed.push_back(v1::ELIGIBILITY_RULE_DEVICE_REPORTED_LOST_OR_STOLEN);
  }
  return failed;
}

std::string Describe(const std::vector<v1::EligibilityRule>& rules) {
  std::vector<std::string> names;
  for (auto r : rules) names.push_back(RuleName(r));
  return absl::StrJoin(names, "; ");
}

class UnlockWorkflow : public Workflow {
 public:
  explicit UnlockWorkflow(const UnlockPolicy& policy) : policy_(policy) { Build(); }

  const WorkflowSpec& spec() const override { return spec_; }

  std::vector<std::pair<std::string, std::string>> IndexKeys(const CaseRecord& r) const override {
    std::vector<std::pair<std::string, std::string>> out = {
        {"account_number", r.unlock().account_number()}, {"imei", r.unlock().imei()}};
    if (r.unlock().identity_failures() >= kRepeatedIdentityFailures) {
      out.push_back({"attention", "identity_failures"});
    }
    return out;
  }

  std::vector<std::pair<std::string, std::string>> UniqueKeys(const CaseRecord& r) const override {
    if (r.unlock().imei().empty() || (r.state() != kSubmitted && r.state() != kEscalated)) return {};
    return {{"open_unlock_imei", r.unlock().imei()}};
  }

  sla::SlaPolicy AdjustSlaPolicy(const CaseRecord& r, sla::SlaPolicy p) const override {
    if (!r.unlock().region().empty()) p.calendar = absl::StrCat("calendars/", r.unlock().region());
    return p;
  }

  std::map<std::string, std::string> TemplateValues(const CaseRecord& r) const override {
    const auto& u = r.unlock();
    std::map<std::string, std::string> v = {{"case_id", r.id()},
                                            {"account_number", u.account_number()},
                                            {"customer_name", u.customer_name()},
                                            {"imei", u.imei()},
                                            {"device_model", u.device_model()},
                                            {"failure_reason", u.failure_reason()},
                                            {"escalation_note", u.escalation_note()},
                                            {"expected_from", ""},
                                            {"expected_by", ""}};
    for (const auto& l : r.slas()) {
      if (l.name() != kUnlockSla) continue;
      for (const auto& rung : l.rungs()) {
        if (!rung.has_due_time()) continue;
        const std::string date = CustomerDate(FromProto(rung.due_time()), u.time_zone());
        v[rung.name() == "warning" ? "expected_from" : "expected_by"] = date;
      }
    }
    return v;
  }

  std::vector<std::string> TemplateFields() const override {
    return {"case_id", "account_number", "customer_name", "imei", "device_model",
            "failure_reason", "escalation_note", "expected_from", "expected_by"};
  }

  std::string Recipient(const CaseRecord& r, Audience audience) const override {
    return audience == Audience::kCustomer ? r.unlock().customer_email()
                                           : policy_.tech_support_channel;
  }

  std::string LanguageCode(const CaseRecord&) const override { return "en"; }

 private:
  absl::Status Create(ActionContext& ctx) const {
    const v1::Account& a = InputAs<Input>(ctx).account();
    auto* u = ctx.record.mutable_unlock();
    u->set_account_number(a.account_number());
    u->set_customer_name(a.full_name());
    u->set_customer_email(a.email());
    u->set_region(a.region());
    const sla::Calendar* cal = CalendarToStartOn(ctx.calendars, absl::StrCat("calendars/", a.region()));
    if (cal == nullptr) cal = ctx.calendars("calendars/default");
    u->set_time_zone(cal != nullptr ? cal->proto().time_zone() : "UTC");
    return absl::OkStatus();
  }

  absl::Status VerifyIdentity(ActionContext& ctx) const {
    auto req = RequestIn<v1::VerifyIdentityRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    FieldErrors errors;
    if (req->full_name().empty() || req->full_name().size() > 200) {
      errors.Add("full_name", "is required (at most 200 bytes)");
    }
    if (req->billing_address().empty() || req->billing_address().size() > 500) {
      errors.Add("billing_address", "is required (at most 500 bytes)");
    }
    if (!errors.empty()) return errors.ToStatus();
    const v1::Account& a = InputAs<Input>(ctx).account();
    const bool name_ok = NormalizeForMatch(req->full_name()) == NormalizeForMatch(a.full_name());
    const bool address_ok =
        NormalizeAddressForMatch(req->billing_address()) == NormalizeAddressForMatch(a.billing_address());
    auto* u = ctx.record.mutable_unlock();
    if (name_ok && address_ok) {
      ctx.AddEvent(v1::EVENT_TYPE_DECISION, "Identity verified");
      MoveTo(ctx, kVerified);
      return absl::OkStatus();
    }
    u->set_identity_failures(u->identity_failures() + 1);
    // Which part failed is useful to the agent; the values given are not kept.
    ctx.AddEvent(v1::EVENT_TYPE_DECISION, "Identity verification failed",
                 {{"full_name_matched", name_ok ? "true" : "false"},
                  {"billing_address_matched", address_ok ? "true" : "false"},
                  {"failures", absl::StrCat(u->identity_failures())}});
    return absl::OkStatus();
  }

  absl::Status CheckEligibility(ActionContext& ctx) const {
    auto req = RequestIn<v1::CheckEligibilityRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    const v1::Account& a = InputAs<Input>(ctx).account();
    auto device = RequireDevice(a, req->imei());
    if (!device.ok()) return device.status();
    auto* u = ctx.record.mutable_unlock();
    u->set_imei(req->imei());
    u->set_device_model((*device)->model());
    const auto failed = FailedRules(a, **device);
    u->clear_failed_rules();
    for (auto r : failed) u->add_failed_rules(r);
    if (failed.empty()) {
      ctx.AddEvent(v1::EVENT_TYPE_DECISION, "Eligible for unlock");
      MoveTo(ctx, kEligible);
    } else {
      ctx.AddEvent(v1::EVENT_TYPE_DECISION, absl::StrCat("Denied: ", Describe(failed)));
      MoveTo(ctx, kDenied);
    }
    return absl::OkStatus();
  }

  absl::Status Submit(ActionContext& ctx) const {
    auto req = RequestIn<v1::SubmitUnlockRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    const v1::Account& a = InputAs<Input>(ctx).account();
    auto* u = ctx.record.mutable_unlock();
    const std::string imei = req->imei().empty() ? u->imei() : req->imei();
    auto device = RequireDevice(a, imei);
    if (!device.ok()) return device.status();
    const auto failed = FailedRules(a, **device);
    if (!failed.empty()) {
      std::vector<std::vector<std::string>> violations;
      for (auto r : failed) {
        violations.push_back({v1::EligibilityRule_Name(r), absl::StrCat("accounts/", a.account_number()),
                              RuleName(r)});
      }
      return WithPreconditionFailure(
          WithErrorInfo(absl::FailedPreconditionError(absl::StrCat(
                            "the device cannot be unlocked yet: ", Describe(failed))),
                        "NOT_ELIGIBLE"),
          violations);
    }
    u->set_imei(imei);
    u->set_device_model((*device)->model());
    u->clear_failed_rules();
    u->clear_failure_reason();
    u->set_submissions(u->submissions() + 1);
    if (auto s = ctx.ApplySla({SlaEffect::kStart, kUnlockSla, ""}); !s.ok()) return s;
    ctx.AddEvent(v1::EVENT_TYPE_COMMENT,
                 absl::StrCat("Unlock request submitted (", u->submissions() == 1 ? "first" : "again",
                              "); the customer is told to expect it within ",
                              policy_.expected_from_days, "-", policy_.expected_by_days,
                              " business days"));
    return absl::OkStatus();
  }

  absl::Status Complete(ActionContext& ctx) const {
    auto req = RequestIn<v1::CompleteUnlockRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    auto* u = ctx.record.mutable_unlock();
    if (req->success()) {
      ctx.AddEvent(v1::EVENT_TYPE_DECISION, "Unlocked by the back end");
      MoveTo(ctx, kCompleted);
      ctx.Notify("unlock.confirmation", v1::CHANNEL_EMAIL, Audience::kCustomer,
                 v1::EVENT_TYPE_NOTIFICATION_QUEUED, "Confirmation with instructions emailed");
    } else {
      FieldErrors errors;
      CheckNote(errors, "failure_reason", req->failure_reason(), /*required=*/true);
      if (!errors.empty()) return errors.ToStatus();
      u->set_failure_reason(req->failure_reason());
      ctx.AddEvent(v1::EVENT_TYPE_DECISION, absl::StrCat("Unlock failed: ", req->failure_reason()));
      MoveTo(ctx, kFailed);
    }
    return ctx.ApplySla({SlaEffect::kStop, kUnlockSla, ""});
  }

  absl::Status Escalate(ActionContext& ctx) const {
    auto req = RequestIn<v1::EscalateUnlockRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    FieldErrors errors;
    CheckNote(errors, "note", req->note(), /*required=*/true);
    if (!errors.empty()) return errors.ToStatus();
    ctx.record.mutable_unlock()->set_escalation_note(req->note());
    ctx.AddEvent(v1::EVENT_TYPE_COMMENT, req->note());
    return absl::OkStatus();
  }

  absl::Status Cancel(ActionContext& ctx) const {
    auto req = RequestIn<v1::CancelUnlockRequestRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    FieldErrors errors;
    CheckNote(errors, "reason", req->reason(), /*required=*/true);
    if (!errors.empty()) return errors.ToStatus();
    ctx.AddEvent(v1::EVENT_TYPE_COMMENT, req->reason());
    return ctx.ApplySla({SlaEffect::kStop, kUnlockSla, ""});
  }

  void Build() {
    spec_.kind = kUnlockKind;
    spec_.collection = kUnlockCollection;
    spec_.states = {kOpen, kVerified, kEligible, kDenied, kSubmitted,
                    kCompleted, kFailed, kEscalated, kCancelled};
    spec_.final_states = {kCancelled};
    spec_.state_hints = {{kOpen, "verify the customer's identity first (VerifyIdentity)"}};
    spec_.slas = {{kUnlockSla,
                   "calendars/default",
                   policy_.business_day * policy_.expected_by_days,
                   {{"warning", policy_.business_day * policy_.expected_from_days, sla::RungKind::kWarning},
                    {"breach", policy_.business_day * policy_.expected_by_days, sla::RungKind::kBreach}}}};
    auto bind = [this](absl::Status (UnlockWorkflow::*fn)(ActionContext&) const) {
      return [this, fn](ActionContext& ctx) { return (this->*fn)(ctx); };
    };
    const std::vector<std::string> agents = {kCsAgent};
    const std::vector<std::string> agents_and_leads = {kCsAgent, kTeamLead};
    spec_.transitions = {
        {kUnlockCreate, {}, kOpen, agents, "Customer asks for an unlock", {}, {},
         bind(&UnlockWorkflow::Create)},
        {kUnlockVerifyIdentity, {kOpen}, "", agents, "Match full name and billing address", {}, {},
         bind(&UnlockWorkflow::VerifyIdentity)},
        {kUnlockCheckEligibility, {kVerified, kEligible, kDenied, kFailed, kCompleted}, "", agents,
         "Check the three prerequisites", {}, {}, bind(&UnlockWorkflow::CheckEligibility)},
        {kUnlockSubmit, {kEligible, kDenied, kFailed, kCompleted, kEscalated}, kSubmitted, agents,
         "Submit (or resubmit) the unlock with the IMEI",
         {{"unlock.submitted", v1::CHANNEL_EMAIL, Audience::kCustomer,
           "Customer emailed the expected window"}},
         {}, bind(&UnlockWorkflow::Submit)},
        {kUnlockComplete, {kSubmitted, kEscalated}, "", {kService},
         "The unlocking back end reports the result", {}, {}, bind(&UnlockWorkflow::Complete)},
        {kUnlockResendConfirmation, {kCompleted}, "", agents,
         "Confirmation not received: send again, advise the spam folder",
         {{"unlock.confirmation_resend", v1::CHANNEL_EMAIL, Audience::kCustomer,
           "Confirmation emailed again (spam folder advice)"}},
         {}, nullptr},
        {kUnlockEscalate, {kVerified, kEligible, kDenied, kSubmitted, kCompleted, kFailed},
         kEscalated, agents_and_leads, "Hand over to technical support",
         {{"unlock.escalated", v1::CHANNEL_CHAT, Audience::kOps, "Technical support pinged"}},
         {}, bind(&UnlockWorkflow::Escalate)},
        {kUnlockCancel, {kOpen, kVerified, kEligible, kDenied, kSubmitted, kCompleted, kFailed, kEscalated},
         kCancelled, agents_and_leads, "Stop the request", {}, {}, bind(&UnlockWorkflow::Cancel)},
        CommentTransition(spec_.states, RequestText<Input>(&v1::AddUnlockRequestCommentRequest::text)),
        AssignTransition(spec_, RequestText<Input>(&v1::AssignUnlockRequestRequest::assignee)),
    };
  }

  UnlockPolicy policy_;
  WorkflowSpec spec_;
};

}  // namespace

std::unique_ptr<Workflow> NewUnlockWorkflow(const UnlockPolicy& policy) {
  return std::make_unique<UnlockWorkflow>(policy);
}

}  // namespace casework::workflow
