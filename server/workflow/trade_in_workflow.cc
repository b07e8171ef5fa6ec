#include "server/workflow/trade_in_workflow.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "casework/v1/trade_in.pb.h"
#include "server/common/errors.h"
#include "server/common/proto_time.h"
#include "server/workflow/validation.h"

namespace casework::workflow {
namespace {

using v1::TradeInProblem;

constexpr char kProblem[] = "PROBLEM_ORDER";
constexpr char kWaiting[] = "WAITING_FOR_RESPONSE";
constexpr char kApproval[] = "AWAITING_APPROVAL";
constexpr char kTesting[] = "TESTING";
constexpr char kClosed[] = "CLOSED";
constexpr char kCancelled[] = "CANCELLED";

constexpr char kUnlockSecret[] = "unlock_code";

constexpr size_t kMaxShort = 200;
constexpr size_t kMaxUnlockCode = 128;

std::string ProblemName(TradeInProblem p) {
  switch (p) {
    case v1::TRADE_IN_PROBLEM_DEVICE_LOCKED: return "device_locked";
    case v1::TRADE_IN_PROBLEM_PROOF_OF_PURCHASE: return "proof_of_purchase";
    default: return "unspecified";
  }
}

absl::Status RequireProblem(const ActionContext& ctx, TradeInProblem wanted,
                            absl::string_view action) {
  if (ctx.record.trade_in().problem() == wanted) return absl::OkStatus();
  return WithErrorInfo(
      absl::FailedPreconditionError(absl::StrCat(
          action, " applies to ", ProblemName(wanted), " problems; this case is ",
          ProblemName(ctx.record.trade_in().problem()))),
      "WRONG_PROBLEM_TYPE");
}

class TradeInWorkflow : public Workflow {
 public:
  explicit TradeInWorkflow(const TradeInPolicy& policy) : policy_(policy) {
    Build();
  }

  const WorkflowSpec& spec() const override { return spec_; }

  std::vector<std::pair<std::string, std::string>> IndexKeys(
      const CaseRecord& r) const override {
    return {{"v_number", r.trade_in().v_number()},
            {"s_number", r.trade_in().s_number()}};
  }

  std::map<std::string, std::string> TemplateValues(
      const CaseRecord& r) const override {
    const auto& t = r.trade_in();
    return {{"case_id", r.id()},
            {"v_number", t.v_number()},
            {"s_number", t.s_number()},
            {"customer_name", t.customer().display_name()},
            {"product_name", t.product_name()},
            {"problem", ProblemName(t.problem())},
            {"problem_note", t.problem_note()},
            {"rejection_reason", t.proof_of_purchase().rejection_reason()},
            {"reminders_sent", absl::StrCat(t.reminders_sent())}};
  }

  std::string Reference(const CaseRecord& r) const override {
    return r.trade_in().v_number().empty() ? r.id() : r.trade_in().v_number();
  }

  std::vector<std::string> TemplateFields() const override {
    return {"case_id",      "v_number",     "s_number",         "customer_name",
            "product_name", "problem",      "problem_note",     "rejection_reason",
            "reminders_sent", "reminder_number"};
  }

  std::string Recipient(const CaseRecord& r, Audience audience) const override {
    return audience == Audience::kCustomer ? r.trade_in().customer().email()
                                           : policy_.ops_chat_channel;
  }

  std::string LanguageCode(const CaseRecord& r) const override {
    return r.trade_in().customer().language_code();
  }

  std::string NotificationCalendar(const CaseRecord&) const override {
    return policy_.calendar;
  }

 private:
  bool NeedsProofOfPurchase(const std::string& product) const {
    for (const auto& prefix : policy_.proof_of_purchase_products) {
      if (absl::StartsWithIgnoreCase(product, prefix)) return true;
    }
    return false;
  }

  absl::Status Create(ActionContext& ctx) const {
    const auto& req = InputAs<v1::CreateTradeInRequest>(ctx);
    const auto& in = req.trade_in();
    FieldErrors errors;
    if (!IsVNumber(in.v_number())) {
      errors.Add("trade_in.v_number", "must be 'V' followed by 6 to 10 digits");
    }
    if (!IsSNumber(in.s_number())) {
      errors.Add("trade_in.s_number", "must be 'S' followed by 6 to 10 digits");
    }
    CheckLine(errors, "trade_in.product_name", in.product_name(), kMaxShort, true);
    CheckNote(errors, "trade_in.problem_note", in.problem_note(), false);
    CheckLine(errors, "trade_in.customer.display_name",
              in.customer().display_name(), kMaxShort, true);
    CheckLine(errors, "trade_in.assignee", in.assignee(), kMaxAssignee, false);
    if (!IsEmail(in.customer().email())) {
      errors.Add("trade_in.customer.email", "must be a valid email address");
    }
    const std::string& lang = in.customer().language_code();
    if (!lang.empty() && lang != "nl" && lang != "en") {
      errors.Add("trade_in.customer.language_code", "must be \"nl\" or \"en\"");
    }
    TradeInProblem problem = in.problem();
    if (!v1::TradeInProblem_IsValid(problem)) {
      errors.Add("trade_in.problem", "unknown value");
    } else if (problem == v1::TRADE_IN_PROBLEM_UNSPECIFIED) {
      if (NeedsProofOfPurchase(in.product_name())) {
        problem = v1::TRADE_IN_PROBLEM_PROOF_OF_PURCHASE;
      } else {
        errors.Add("trade_in.problem",
                   "is required: DEVICE_LOCKED or PROOF_OF_PURCHASE");
      }
    }
    if (!errors.empty()) return errors.ToStatus();

    auto* t = ctx.record.mutable_trade_in();
    t->set_v_number(in.v_number());
    t->set_s_number(in.s_number());
    t->set_problem(problem);
    t->set_problem_note(in.problem_note());
    t->set_product_name(in.product_name());
    *t->mutable_customer() = in.customer();
    if (lang.empty()) t->mutable_customer()->set_language_code("nl");
    t->set_round(1);
    ctx.record.set_assignee(in.assignee());
    return absl::OkStatus();
  }

  absl::Status ContactCustomer(ActionContext& ctx) const {
    ctx.record.mutable_trade_in()->set_reminders_sent(0);
    return absl::OkStatus();
  }

  absl::Status CustomerResponded(ActionContext& ctx) const {
    const auto& req = InputAs<v1::RecordCustomerResponseRequest>(ctx);
    FieldErrors errors;
    if (!v1::ResponseChannel_IsValid(req.channel()) ||
        req.channel() == v1::RESPONSE_CHANNEL_UNSPECIFIED) {
      errors.Add("channel", "is required: EMAIL, PHONE, PORTAL, CHAT or NOTE");
    }
    CheckNote(errors, "note", req.note(), true);
    if (!errors.empty()) return errors.ToStatus();
    ctx.record.mutable_trade_in()->set_reminders_sent(0);
    std::string channel = v1::ResponseChannel_Name(req.channel()).substr(17);
    ctx.AddEvent(v1::EVENT_TYPE_CUSTOMER_RESPONDED, req.note(), {{"channel", absl::AsciiStrToLower(channel)}});
    return absl::OkStatus();
  }

  absl::Status RecordUnlockCode(ActionContext& ctx) const {
    if (auto s = RequireProblem(ctx, v1::TRADE_IN_PROBLEM_DEVICE_LOCKED,
                                "record_unlock_code");
        !s.ok()) {
      return s;
    }
    const auto& req = InputAs<v1::RecordUnlockCodeRequest>(ctx);
    FieldErrors errors;
    CheckLine(errors, "unlock_code", req.unlock_code(), kMaxUnlockCode, true);
    if (!errors.empty()) return errors.ToStatus();
    ctx.record.clear_secrets();
    auto* secret = ctx.record.add_secrets();
    secret->set_name(kUnlockSecret);
    secret->set_value(req.unlock_code());
    ctx.AddEvent(v1::EVENT_TYPE_CUSTOMER_RESPONDED, "Customer provided the unlock code");
    ctx.AddEvent(v1::EVENT_TYPE_SECRET_RECORDED, "Unlock code recorded",
                 {{"secret", kUnlockSecret}});
    return absl::OkStatus();
  }

  absl::Status RevealUnlockCode(ActionContext& ctx) const {
    for (const auto& s : ctx.record.secrets()) {
      if (s.name() == kUnlockSecret) {
        ctx.decision.reveal = s.value();
        ctx.AddEvent(v1::EVENT_TYPE_SECRET_REVEALED, "Unlock code revealed",
                     {{"secret", kUnlockSecret}});
        return absl::OkStatus();
      }
    }
    return WithErrorInfo(
        absl::FailedPreconditionError("no unlock code is stored for this case"),
        "NO_SECRET");
  }

  absl::Status AttachProof(ActionContext& ctx) const {
    if (auto s = RequireProblem(ctx, v1::TRADE_IN_PROBLEM_PROOF_OF_PURCHASE,
                                "attach_proof_of_purchase");
        !s.ok()) {
      return s;
    }
    const auto& req = InputAs<v1::AttachProofOfPurchaseRequest>(ctx);
    FieldErrors errors;
    const std::string& type = req.content_type();
    if (type != "application/pdf" && type != "image/jpeg" && type != "image/png") {
      errors.Add("content_type", "must be application/pdf, image/jpeg or image/png");
    }
    if (req.content().empty()) {
      errors.Add("content", "is required");
    } else if (req.content().size() > policy_.max_document_bytes) {
      errors.Add("content", absl::StrCat("must be at most ",
                                         policy_.max_document_bytes, " bytes"));
    } else if (errors.empty() && SniffDocumentType(req.content()) != type) {
      errors.Add("content", absl::StrCat("is not a ", type, " document"));
    }
    CheckLine(errors, "file_name", req.file_name(), kMaxShort, false);
    if (!errors.empty()) return errors.ToStatus();

    auto* proof = ctx.record.mutable_trade_in()->mutable_proof_of_purchase();
    proof->set_status(v1::PROOF_OF_PURCHASE_STATUS_PENDING);
    proof->set_content_type(type);
    proof->set_size_bytes(static_cast<int64_t>(req.content().size()));
    proof->set_file_name(req.file_name());
    proof->clear_rejection_reason();
    ctx.decision.attachments_put[kProofAttachment] = req.content();
    ctx.AddEvent(v1::EVENT_TYPE_CUSTOMER_RESPONDED, "Customer sent a proof of purchase");
    ctx.AddEvent(v1::EVENT_TYPE_ATTACHMENT_ADDED, "Proof of purchase attached",
                 {{"content_type", type},
                  {"size_bytes", absl::StrCat(req.content().size())}});
    return absl::OkStatus();
  }

  absl::Status ApproveProof(ActionContext& ctx) const {
    ctx.record.mutable_trade_in()->mutable_proof_of_purchase()->set_status(
        v1::PROOF_OF_PURCHASE_STATUS_APPROVED);
    ctx.AddEvent(v1::EVENT_TYPE_DECISION, "Proof of purchase approved");
    return absl::OkStatus();
  }

  absl::Status RejectProof(ActionContext& ctx) const {
    const auto& req = InputAs<v1::RejectProofOfPurchaseRequest>(ctx);
    FieldErrors errors;
    CheckNote(errors, "reason", req.reason(), true);
    if (!errors.empty()) return errors.ToStatus();
    auto* t = ctx.record.mutable_trade_in();
    t->mutable_proof_of_purchase()->set_status(v1::PROOF_OF_PURCHASE_STATUS_REJECTED);
    t->mutable_proof_of_purchase()->set_rejection_reason(req.reason());
    t->set_problem_note(absl::StrCat("Proof of purchase rejected: ", req.reason()));
    t->set_round(t->round() + 1);
    ctx.AddEvent(v1::EVENT_TYPE_DECISION, absl::StrCat("Proof of purchase rejected: ", req.reason()),
                 {{"reason", req.reason()}});
    return absl::OkStatus();
  }

  absl::Status FlagProblem(ActionContext& ctx) const {
    const auto& req = InputAs<v1::FlagProblemRequest>(ctx);
    FieldErrors errors;
    if (!v1::TradeInProblem_IsValid(req.problem()) ||
        req.problem() == v1::TRADE_IN_PROBLEM_UNSPECIFIED) {
      errors.Add("problem", "is required: DEVICE_LOCKED or PROOF_OF_PURCHASE");
    }
    CheckNote(errors, "note", req.note(), true);
    if (!errors.empty()) return errors.ToStatus();
    auto* t = ctx.record.mutable_trade_in();
    t->set_problem(req.problem());
    t->set_problem_note(req.note());
    t->set_round(t->round() + 1);
    t->set_reminders_sent(0);
    ctx.AddEvent(v1::EVENT_TYPE_COMMENT, req.note(),
                 {{"problem", ProblemName(req.problem())}});
    return absl::OkStatus();
  }

  absl::Status WithNote(ActionContext& ctx, const std::string& field,
                        const std::string& text, bool required) const {
    FieldErrors errors;
    CheckNote(errors, field, text, required);
    if (!errors.empty()) return errors.ToStatus();
    if (!text.empty()) ctx.AddEvent(v1::EVENT_TYPE_COMMENT, text);
    return absl::OkStatus();
  }

  // A reminder rung of the response clock fell due: email the customer
  // (held until business hours) and record "Reminder sent DD-MM-YYYY".
  absl::Status Reminder(ActionContext& ctx) const {
    auto* t = ctx.record.mutable_trade_in();
    const int number = t->reminders_sent() + 1;
    t->set_reminders_sent(number);
    const absl::Time send_at = ctx.NextBusinessHour();
    const sla::Calendar* cal = CalendarToStartOn(ctx.calendars, policy_.calendar);
    const absl::TimeZone zone = cal != nullptr ? cal->zone() : absl::UTCTimeZone();
    ctx.Notify("trade_in.reminder", v1::CHANNEL_EMAIL, Audience::kCustomer,
               v1::EVENT_TYPE_REMINDER_SENT,
               absl::StrCat("Reminder sent ", absl::FormatTime("%d-%m-%Y", send_at, zone)),
               {{"reminder_number", absl::StrCat(number)}}, send_at);
    return absl::OkStatus();
  }

  absl::Status NoResponse(ActionContext& ctx) const {
    auto* t = ctx.record.mutable_trade_in();
    const std::string note = absl::StrCat("No response from the customer after ",
                                          t->reminders_sent(), " reminder(s)");
    t->set_problem_note(note);
    t->set_round(t->round() + 1);
    ctx.AddEvent(v1::EVENT_TYPE_DEADLINE_PASSED, note);
    return absl::OkStatus();
  }

  void Build() {
    using v1::CHANNEL_CHAT;
    using v1::CHANNEL_EMAIL;
    spec_.kind = kTradeInKind;
    spec_.collection = kTradeInCollection;
    spec_.states = {kProblem, kWaiting, kApproval, kTesting, kClosed, kCancelled};
    spec_.final_states = {kClosed, kCancelled};
    spec_.secret_states = {kTesting};
    const std::vector<std::string> open = {kProblem, kWaiting, kApproval, kTesting};
    auto bind = [this](absl::Status (TradeInWorkflow::*fn)(ActionContext&) const) {
      return [this, fn](ActionContext& ctx) { return (this->*fn)(ctx); };
    };
    const NotifySpec ping_test_again{"trade_in.ops.test_again", CHANNEL_CHAT,
                                     Audience::kOps, "Ops pinged: test again"};
    const SlaEffect start_response{SlaEffect::kStart, kTradeInResponseSla, ""};
    const SlaEffect stop_response{SlaEffect::kStop, kTradeInResponseSla, ""};

    sla::SlaPolicy response;
    response.sla = kTradeInResponseSla;  // calendar time: no calendar
    for (int i = 1; i <= policy_.max_reminders; ++i) {
      response.rungs.push_back({absl::StrCat("reminder.", i), policy_.reminder_interval * i,
                                sla::RungKind::kReminder});
    }
    response.budget = policy_.reminder_interval * policy_.max_reminders + policy_.no_response_after;
    response.rungs.push_back({"no_response", response.budget, sla::RungKind::kReminder});
    spec_.slas = {response};
    spec_.transitions = {
        {kTradeInCreate, {}, kProblem, {kOps}, "Ops flag a problem order", {}, {},
         bind(&TradeInWorkflow::Create)},
        {kTradeInContactCustomer, {kProblem}, kWaiting, {kCsAgent},
         "Email the customer with the macro for the problem",
         {{"trade_in.contact.{problem}", CHANNEL_EMAIL, Audience::kCustomer, "Email sent"}},
         {}, bind(&TradeInWorkflow::ContactCustomer), {start_response}},
        {kTradeInCustomerResponded, {kWaiting}, "", {kCsAgent},
         "Customer answered without the code or proof yet: wait again", {}, {},
         bind(&TradeInWorkflow::CustomerResponded), {start_response}},
        {kTradeInRecordUnlockCode, {kProblem, kWaiting}, kTesting, {kCsAgent},
         "Customer gave the unlock code: back to testing", {ping_test_again}, {},
         bind(&TradeInWorkflow::RecordUnlockCode), {stop_response}},
        {kTradeInRevealUnlockCode, {kTesting}, "", {kOps},
         "Show the unlock code to ops (recorded)", {}, {},
         bind(&TradeInWorkflow::RevealUnlockCode)},
        {kTradeInAttachProof, {kProblem, kWaiting}, kApproval, {kCsAgent},
         "Customer sent a proof of purchase", {}, {},
         bind(&TradeInWorkflow::AttachProof), {stop_response}},
        {kTradeInApproveProof, {kApproval}, kTesting, {kApprover},
         "Proof approved: back to testing",
         {{"trade_in.ops.proof_approved", CHANNEL_CHAT, Audience::kOps,
           "Ops pinged: proof of purchase approved"}},
         {}, bind(&TradeInWorkflow::ApproveProof)},
        {kTradeInRejectProof, {kApproval}, kProblem, {kApprover},
         "Proof rejected: contact the customer again", {}, {},
         bind(&TradeInWorkflow::RejectProof)},
        {kTradeInFlagProblem, {kTesting}, kProblem, {kOps},
         "Ops cannot proceed (wrong code, another lock, proof needed)", {}, {},
         bind(&TradeInWorkflow::FlagProblem)},
        {kTradeInClose, {kTesting}, kClosed, {kOps}, "Ops tested the device", {}, {},
         [this](ActionContext& ctx) {
           return WithNote(ctx, "note", InputAs<v1::CloseTradeInRequest>(ctx).note(), false);
         }},
        {kTradeInCancel, open, kCancelled, {kOps, kCsAgent}, "Stop the case", {}, {},
         [this](ActionContext& ctx) {
           return WithNote(ctx, "reason", InputAs<v1::CancelTradeInRequest>(ctx).reason(), true);
         },
         {stop_response}},
        CommentTransition(spec_.states,
                          [](const ActionContext& ctx) { return InputAs<v1::AddTradeInCommentRequest>(ctx).text(); }),
        AssignTransition(spec_, [](const ActionContext& ctx) { return InputAs<v1::AssignTradeInRequest>(ctx).assignee(); }),
        {"sla:response/reminder", {kWaiting}, "", {kSystem},
         "Customer has not answered: send a reminder", {}, {},
         bind(&TradeInWorkflow::Reminder)},
        {"sla:response/no_response", {kWaiting}, kProblem, {kSystem},
         "No answer after the last reminder: back to problem orders",
         {{"trade_in.ops.no_response", CHANNEL_CHAT, Audience::kOps,
           "Ops pinged: no response", /*business_hours=*/true}},
         {}, bind(&TradeInWorkflow::NoResponse), {stop_response}},
    };
  }

  TradeInPolicy policy_;
  WorkflowSpec spec_;
};

}  // namespace

std::unique_ptr<Workflow> NewTradeInWorkflow(const TradeInPolicy& policy) {
  return std::make_unique<TradeInWorkflow>(policy);
}

}  // namespace casework::workflow
