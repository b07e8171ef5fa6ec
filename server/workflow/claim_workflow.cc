#include "server/workflow/claim_workflow.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "casework/v1/protection.pb.h"
#include "server/common/errors.h"
#include "server/common/proto_time.h"
#include "server/workflow/enrollment_workflow.h"
#include "server/workflow/validation.h"

namespace casework::workflow {
namespace {

constexpr char kReported[] = "REPORTED";
constexpr char kDocsRequested[] = "DOCUMENTATION_REQUESTED";
constexpr char kUnderReview[] = "UNDER_REVIEW";
constexpr char kWaitingDocs[] = "WAITING_DOCUMENTS";
constexpr char kResolved[] = "RESOLVED";
constexpr char kDenied[] = "DENIED";
constexpr char kReviewSla[] = "review";
constexpr size_t kMaxDocumentBytes = 5 << 20;
constexpr int kMaxDocuments = 20;
constexpr size_t kMaxDescription = 4000;  // the customer's account of the incident
const absl::Duration kBusinessDay = absl::Hours(8);

// What the RPC layer hands the claim actions: the request and what it looked up.
using Input = internal::ClaimInput;

absl::CivilDay DayOf(const google::protobuf::Timestamp& t) {
  return absl::ToCivilDay(FromProto(t), absl::UTCTimeZone());
}

std::string ReasonText(int r) {
  switch (r) {
    case v1::DENIAL_REASON_PERIL_NOT_COVERED: return "the plan does not cover this kind of incident";
    case v1::DENIAL_REASON_PRE_EXISTING: return "the incident happened before the device was protected";
    case v1::DENIAL_REASON_DEVICE_NOT_ON_PLAN: return "the device is not on the plan";
    case v1::DENIAL_REASON_ENROLLMENT_LAPSED: return "the protection plan is no longer active";
    case v1::DENIAL_REASON_NOT_SUPPORTED_BY_EVIDENCE: return "the documents do not support the claim";
    default: return "other";
  }
}

std::string Money(const v1::Money& m) {
  return absl::StrCat(m.currency_code(), " ", m.minor_units() / 100, ".",
                      absl::Dec(m.minor_units() % 100, absl::kZeroPad2));
}

// Every reason the claim is not covered, in a fixed order.
std::vector<v1::DenialReason> CoverageProblems(const internal::ClaimInput& in,
                                               const v1::ReportClaimRequest& req,
                                               absl::CivilDay incident) {
  std::vector<v1::DenialReason> out;
  const auto& e = in.enrollment();
  if (in.enrollment_state() != kEnrollmentActive) out.push_back(v1::DENIAL_REASON_ENROLLMENT_LAPSED);
  const v1::ProtectedDevice* device = nullptr;
  for (const auto& d : e.devices()) {
    if (DeviceKey(d) == DeviceKey(req.device())) {
      device = &d;
    }
  }
  bool pre_existing = incident < DayOf(in.enrollment_create_time());
  if (device == nullptr) {
    out.push_back(v1::DENIAL_REASON_DEVICE_NOT_ON_PLAN);
  } else if (incident < DayOf(device->add_time())) {
    pre_existing = true;
  }
  if (pre_existing) out.push_back(v1::DENIAL_REASON_PRE_EXISTING);
  // The plans in force on the incident date (the first one before any): the
  // one at its start and any the enrollment changed to that day. The date
  // does not say which came first, so what one of them covers is for the
  // review to judge.
  std::vector<std::string> in_force;
  for (const auto& period : e.plan_history()) {
    const absl::CivilDay from = DayOf(period.effective_time());
    if (in_force.empty() || from < incident) {
      in_force = {period.plan_id()};
    } else if (from == incident) {
      in_force.push_back(period.plan_id());
    }
  }
  const bool covered = std::any_of(in_force.begin(), in_force.end(), [&](const std::string& id) {
    auto plan = in.plans().find(id);
    return plan != in.plans().end() &&
           std::find(plan->second.covered_perils().begin(), plan->second.covered_perils().end(),
                     req.peril()) != plan->second.covered_perils().end();
  });
  if (!covered) out.push_back(v1::DENIAL_REASON_PERIL_NOT_COVERED);
  return out;
}

class ClaimWorkflow : public Workflow {
 public:
  ClaimWorkflow() { Build(); }

  const WorkflowSpec& spec() const override { return spec_; }

  std::vector<std::pair<std::string, std::string>> IndexKeys(const CaseRecord& r) const override {
    return {{"plan_number", r.claim().plan_number()}};
  }

  sla::SlaPolicy AdjustSlaPolicy(const CaseRecord& r, sla::SlaPolicy p) const override {
    const int days = std::max(1, r.claim().review_business_days());
    p.budget = kBusinessDay * days;
    p.rungs = {{"warning", p.budget * 4 / 5, sla::RungKind::kWarning},
               {"breach", p.budget, sla::RungKind::kBreach}};
    return p;
  }

  std::map<std::string, std::string> TemplateValues(const CaseRecord& r) const override {
    const auto& c = r.claim();
    std::vector<std::string> reasons;
    for (int x : c.denial_reasons()) reasons.push_back(ReasonText(x));
    std::string expected;
    for (const auto& l : r.slas()) {
      for (const auto& rung : l.rungs()) {
        if (l.name() == kReviewSla && rung.name() == "breach" && rung.has_due_time()) {
          expected = CustomerDate(FromProto(rung.due_time()), c.time_zone());
        }
      }
    }
    std::string resolution = c.resolution() == v1::RESOLUTION_UNSPECIFIED
                                 ? ""
                                 : absl::AsciiStrToLower(v1::Resolution_Name(c.resolution()).substr(11));
    return {{"case_id", r.id()},
            {"plan_number", c.plan_number()},
            {"customer_name", c.customer_name()},
            {"expected_decision", expected},
            {"denial_reasons", absl::StrJoin(reasons, "; ")},
            {"resolution", resolution},
            {"amount", c.has_reimbursement() ? Money(c.reimbursement()) : ""},
            {"documents_needed",
             !c.documents_note().empty()
                 ? c.documents_note()
                 : absl::StrCat("proof of your device protection (your plan number ", c.plan_number(),
                                "), the device details, a description of what happened, ",
                                c.peril() == v1::PERIL_THEFT ? "photos or receipts, and the police report"
                                                             : "and photos or receipts")}};
  }

  std::vector<std::string> TemplateFields() const override {
    return {"case_id", "plan_number", "customer_name", "expected_decision",
            "denial_reasons", "resolution", "amount", "documents_needed"};
  }

  std::string Recipient(const CaseRecord& r, Audience) const override {
    return r.claim().customer_email();
  }

  std::string LanguageCode(const CaseRecord&) const override { return "en"; }

 private:
  absl::Status Report(ActionContext& ctx) const {
    auto req = RequestIn<v1::ReportClaimRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    FieldErrors errors;
    if (!v1::ClaimChannel_IsValid(req->channel()) || req->channel() == v1::CLAIM_CHANNEL_UNSPECIFIED) {
      errors.Add("channel", "is required: WEB, APP or PHONE");
    }
    if (!v1::Peril_IsValid(req->peril()) || req->peril() == v1::PERIL_UNSPECIFIED) {
      errors.Add("peril", "is required: ACCIDENTAL_DAMAGE, THEFT or MECHANICAL_FAILURE");
    }
    absl::CivilDay incident;
    if (!absl::ParseCivilTime(req->incident_date(), &incident)) {
      errors.Add("incident_date", "must be a date as YYYY-MM-DD");
    } else if (IsFutureDay(incident, ctx.now)) {
      errors.Add("incident_date", "is in the future");
    }
    CheckText(errors, "description", req->description(), kMaxDescription, /*required=*/true);
    if (req->device().empty() || req->device().size() > 40) errors.Add("device", "is required: IMEI or serial");
    if (!errors.empty()) return errors.ToStatus();

    const internal::ClaimInput& in = InputAs<Input>(ctx);
    auto* c = ctx.record.mutable_claim();
    c->set_plan_number(in.enrollment().plan_number());
    c->set_enrollment_id(in.enrollment_id());
    c->set_channel(req->channel());
    c->set_peril(req->peril());
    c->set_incident_date(req->incident_date());
    c->set_description(req->description());
    c->set_device(req->device());
    c->set_customer_name(in.enrollment().contact().full_name());
    c->set_customer_email(in.enrollment().contact().email());
    auto current = in.plans().find(in.enrollment().plan_id());
    c->set_review_business_days(current != in.plans().end() ? current->second.review_business_days() : 5);
    const sla::Calendar* calendar = CalendarToStartOn(ctx.calendars, spec_.slas.front().calendar);
    c->set_time_zone(calendar != nullptr ? calendar->proto().time_zone() : "UTC");
    const auto problems = CoverageProblems(in, *req, incident);
    if (!problems.empty()) {
      std::vector<std::string> texts;
      for (auto p : problems) {
        c->add_denial_reasons(p);
        texts.push_back(ReasonText(p));
      }
      ctx.AddEvent(v1::EVENT_TYPE_DECISION, absl::StrCat("Not covered: ", absl::StrJoin(texts, "; ")));
      MoveTo(ctx, kDenied);
      ctx.Notify("claim.denied", v1::CHANNEL_EMAIL, Audience::kCustomer,
                 v1::EVENT_TYPE_NOTIFICATION_QUEUED, "Customer told the claim is not covered");
    }
    return absl::OkStatus();
  }

  absl::Status AttachDocument(ActionContext& ctx) const {
    auto req = RequestIn<v1::AttachClaimDocumentRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    FieldErrors errors;
    if (!v1::DocumentKind_IsValid(req->kind()) || req->kind() == v1::DOCUMENT_KIND_UNSPECIFIED) {
      errors.Add("kind", "is required: PHOTO, RECEIPT, POLICE_REPORT, PROOF_OF_PROTECTION or OTHER");
    }
    const std::string& type = req->content_type();
    if (type != "application/pdf" && type != "image/jpeg" && type != "image/png") {
      errors.Add("content_type", "must be application/pdf, image/jpeg or image/png");
    }
    if (req->content().empty()) {
      errors.Add("content", "is required");
    } else if (req->content().size() > kMaxDocumentBytes) {
      errors.Add("content", absl::StrCat("must be at most ", kMaxDocumentBytes, " bytes"));
    } else if (errors.empty() && SniffDocumentType(req->content()) != type) {
      errors.Add("content", absl::StrCat("is not a ", type, " document"));
    }
    if (!errors.empty()) return errors.ToStatus();
    auto* c = ctx.record.mutable_claim();
    if (c->documents_size() >= kMaxDocuments) {
      return absl::FailedPreconditionError(absl::StrCat("a claim holds at most ", kMaxDocuments, " documents"));
    }
    auto* doc = c->add_documents();
    doc->set_document_id(absl::StrCat("doc-", c->documents_size()));
    doc->set_kind(req->kind());
    doc->set_content_type(type);
    doc->set_size_bytes(static_cast<int64_t>(req->content().size()));
    ctx.decision.attachments_put[doc->document_id()] = req->content();
    ctx.AddEvent(v1::EVENT_TYPE_ATTACHMENT_ADDED, "Document attached",
                 {{"kind", v1::DocumentKind_Name(req->kind())}, {"document_id", doc->document_id()}});
    return absl::OkStatus();
  }

  // Documents asked for, with the agent's note on what to send when the
  // standard list is not the whole story; the customer's email says it.
  template <typename Request>
  absl::Status AskForDocuments(ActionContext& ctx) const {
    auto req = RequestIn<Request, Input>(ctx);
    if (!req.ok()) return req.status();
    FieldErrors errors;
    CheckNote(errors, "note", req->note(), /*required=*/false);
    if (!errors.empty()) return errors.ToStatus();
    ctx.record.mutable_claim()->set_documents_note(req->note());
    if (!req->note().empty()) ctx.AddEvent(v1::EVENT_TYPE_COMMENT, absl::StrCat("Documents asked for: ", req->note()));
    return absl::OkStatus();
  }

  absl::Status StartReview(ActionContext& ctx) const {
    const auto status = InputAs<Input>(ctx).enrollment().contact_status();
    if (status != v1::CONTACT_STATUS_VERIFIED) {
      return WithErrorInfo(
          absl::FailedPreconditionError(absl::StrCat(
              "the enrollment's contact details are ",
              status == v1::CONTACT_STATUS_BOUNCED ? "bouncing" : "not verified",
              ": confirm them with the customer first (VerifyEnrollmentContact or "
              "UpdateEnrollmentContact)")),
          "CONTACT_NOT_VERIFIED");
    }
    const auto& c = ctx.record.claim();
    if (c.peril() == v1::PERIL_THEFT) {
      bool police = false;
      for (const auto& d : c.documents()) police |= d.kind() == v1::DOCUMENT_KIND_POLICE_REPORT;
      if (!police) {
        return WithErrorInfo(absl::FailedPreconditionError(
                                 "a theft claim needs a police report before review"),
                             "DOCUMENT_MISSING");
      }
    }
    return absl::OkStatus();
  }

  absl::Status Resolve(ActionContext& ctx) const {
    auto req = RequestIn<v1::ResolveClaimRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    FieldErrors errors;
    if (!v1::Resolution_IsValid(req->resolution()) || req->resolution() == v1::RESOLUTION_UNSPECIFIED) {
      errors.Add("resolution", "is required: REPAIR, REPLACEMENT or REIMBURSEMENT");
    } else if (req->resolution() == v1::RESOLUTION_REIMBURSEMENT) {
      if (req->reimbursement().currency_code().size() != 3) {
        errors.Add("reimbursement.currency_code", "is required (ISO 4217)");
      }
      if (req->reimbursement().minor_units() <= 0) {
        errors.Add("reimbursement.minor_units", "must be a positive amount");
      }
    } else if (req->has_reimbursement()) {
      errors.Add("reimbursement", "is only for REIMBURSEMENT");
    }
    if (!errors.empty()) return errors.ToStatus();
    auto* c = ctx.record.mutable_claim();
    c->set_resolution(req->resolution());
    if (req->has_reimbursement()) *c->mutable_reimbursement() = req->reimbursement();
    ctx.AddEvent(v1::EVENT_TYPE_DECISION,
                 absl::StrCat("Resolved: ", v1::Resolution_Name(req->resolution()).substr(11),
                              req->has_reimbursement() ? absl::StrCat(" ", Money(req->reimbursement())) : ""));
    return absl::OkStatus();
  }

  absl::Status Deny(ActionContext& ctx) const {
    auto req = RequestIn<v1::DenyClaimRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    FieldErrors errors;
    if (!v1::DenialReason_IsValid(req->reason()) || req->reason() == v1::DENIAL_REASON_UNSPECIFIED) {
      errors.Add("reason", "is required: a denial reason code");
    }
    CheckNote(errors, "note", req->note(), /*required=*/false);
    if (!errors.empty()) return errors.ToStatus();
    ctx.record.mutable_claim()->add_denial_reasons(req->reason());
    ctx.AddEvent(v1::EVENT_TYPE_DECISION,
                 absl::StrCat("Denied: ", ReasonText(req->reason()),
                              req->note().empty() ? "" : absl::StrCat(" (", req->note(), ")")),
                 {{"note", req->note()}});
    return absl::OkStatus();
  }

  void Build() {
    spec_.kind = kClaimKind;
    spec_.collection = kClaimCollection;
    spec_.states = {kReported, kDocsRequested, kUnderReview, kWaitingDocs, kResolved, kDenied};
    spec_.final_states = {kResolved, kDenied};
    spec_.slas = {{kReviewSla, "calendars/default", kBusinessDay * 5,
                   {{"warning", kBusinessDay * 4, sla::RungKind::kWarning},
                    {"breach", kBusinessDay * 5, sla::RungKind::kBreach}}}};
    auto bind = [this](absl::Status (ClaimWorkflow::*fn)(ActionContext&) const) {
      return [this, fn](ActionContext& ctx) { return (this->*fn)(ctx); };
    };
    const std::vector<std::string> agents = {kCsAgent};
    const std::vector<std::string> approvers = {kApprover};
    const NotifySpec documents{"claim.documents_requested", v1::CHANNEL_EMAIL, Audience::kCustomer,
                               "Customer asked for documents"};
    const NotifySpec timeline{"claim.review_started", v1::CHANNEL_EMAIL, Audience::kCustomer,
                              "Customer told the expected decision date"};
    spec_.transitions = {
        {kClaimReport, {}, kReported, agents, "Customer reports an incident", {}, {},
         bind(&ClaimWorkflow::Report)},
        {kClaimRequestDocuments, {kReported}, kDocsRequested, agents, "Ask for documents",
         {documents}, {}, bind(&ClaimWorkflow::AskForDocuments<v1::RequestClaimDocumentsRequest>)},
        {kClaimAttachDocument, {kReported, kDocsRequested, kUnderReview, kWaitingDocs}, "", agents,
         "Attach a document", {}, {}, bind(&ClaimWorkflow::AttachDocument)},
        {kClaimStartReview, {kReported, kDocsRequested}, kUnderReview, agents, "Start the review",
         {timeline}, {}, bind(&ClaimWorkflow::StartReview), {{SlaEffect::kStart, kReviewSla, ""}}},
        {kClaimAwaitDocuments, {kUnderReview}, kWaitingDocs, agents,
         "Wait for the customer's documents (clock paused)", {documents}, {},
         bind(&ClaimWorkflow::AskForDocuments<v1::AwaitClaimDocumentsRequest>),
         {{SlaEffect::kPause, kReviewSla, "waiting for the customer's documents"}}},
        {kClaimResumeReview, {kWaitingDocs}, kUnderReview, agents,
         "Documents arrived (clock resumed)", {timeline}, {}, nullptr,
         {{SlaEffect::kResume, kReviewSla, ""}}},
        {kClaimResolve, {kUnderReview}, kResolved, approvers, "Repair, replace or reimburse",
         {{"claim.resolved", v1::CHANNEL_EMAIL, Audience::kCustomer, "Customer told the resolution"}},
         {}, bind(&ClaimWorkflow::Resolve), {{SlaEffect::kStop, kReviewSla, ""}}},
        {kClaimDeny, {kReported, kDocsRequested, kUnderReview, kWaitingDocs}, kDenied, approvers,
         "Deny with a reason",
         {{"claim.denied", v1::CHANNEL_EMAIL, Audience::kCustomer, "Customer told the denial"}}, {},
         bind(&ClaimWorkflow::Deny), {{SlaEffect::kStop, kReviewSla, ""}}},
        CommentTransition(spec_.states, RequestText<Input>(&v1::AddClaimCommentRequest::text)),
        AssignTransition(spec_, RequestText<Input>(&v1::AssignClaimRequest::assignee)),
    };
  }

  WorkflowSpec spec_;
};

}  // namespace

std::unique_ptr<Workflow> NewClaimWorkflow() { return std::make_unique<ClaimWorkflow>(); }

}  // namespace casework::workflow
