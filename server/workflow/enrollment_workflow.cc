#include "server/workflow/enrollment_workflow.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "casework/v1/protection.pb.h"
#include "server/common/errors.h"
#include "server/common/proto_time.h"
#include "server/workflow/validation.h"

namespace casework::workflow {
namespace {

constexpr char kCancelled[] = "CANCELLED";

// What the RPC layer hands the enrollment actions: the request and what it looked up.
using Input = internal::EnrollmentInput;

bool Eligible(const v1::ProtectionPlan& plan, v1::DeviceCategory c) {
  return std::find(plan.eligible_categories().begin(), plan.eligible_categories().end(), c) !=
         plan.eligible_categories().end();
}

void CheckContact(FieldErrors& errors, const std::string& p, const v1::EnrollmentContact& c) {
  CheckLine(errors, p + "full_name", c.full_name(), 200, /*required=*/true);
  if (!IsEmail(c.email())) errors.Add(p + "email", "must be a valid email address");
  if (!IsE164(c.phone_number())) errors.Add(p + "phone_number", "must be E.164, e.g. +14155550123");
}

// A device to protect under `in`'s plan; one another active enrollment
// protects is named with that enrollment's plan number.
void CheckDevice(FieldErrors& errors, const std::string& p, const v1::ProtectedDevice& d,
                 const internal::EnrollmentInput& in, absl::Time now) {
  const v1::ProtectionPlan& plan = in.plan();
  if (auto other = in.protected_elsewhere().find(DeviceKey(d)); other != in.protected_elsewhere().end()) {
    errors.Add(p + (d.imei().empty() ? "serial_number" : "imei"),
               absl::StrCat("is already protected by plan ", other->second, "; remove it there first"));
  }
  if (d.imei().empty() == d.serial_number().empty()) {
    errors.Add(p + "imei", "set exactly one of imei and serial_number");
  } else if (!d.imei().empty() && !IsImei(d.imei())) {
    errors.Add(p + "imei", "must be 15 digits with a valid check digit");
  } else if (!d.serial_number().empty()) {
    bool ok = d.serial_number().size() >= 4 && d.serial_number().size() <= 40;
    for (char c : d.serial_number()) ok &= absl::ascii_isalnum(static_cast<unsigned char>(c)) != 0;
    if (!ok) errors.Add(p + "serial_number", "must be 4 to 40 letters and digits");
  }
  if (!v1::DeviceCategory_IsValid(d.category()) || d.category() == v1::DEVICE_CATEGORY_UNSPECIFIED) {
    errors.Add(p + "category", "is required: PHONE, TABLET, LAPTOP or WEARABLE");
  } else if (!Eligible(plan, d.category())) {
    errors.Add(p + "category", absl::StrCat("is not eligible for plan ", plan.plan_id()));
  }
  CheckLine(errors, p + "model", d.model(), 100, /*required=*/false);
  absl::CivilDay day;
  if (!absl::ParseCivilTime(d.purchase_date(), &day)) {
    errors.Add(p + "purchase_date", "must be a date as YYYY-MM-DD");
  } else if (IsFutureDay(day, now)) {
    errors.Add(p + "purchase_date", "is in the future");
  }
}

void CheckPayment(FieldErrors& errors, const std::string& field, const std::string& ref) {
  if (ref.empty() || ref.size() > 128 || !IsCleanLine(ref)) {
    errors.Add(field, "is required: the payment provider's token or reference");
  } else if (LooksLikeCardNumber(ref)) {
    errors.Add(field, "looks like a card number; send the payment provider's token instead");
  }
}

absl::Status RequireUsablePlan(const v1::ProtectionPlan& plan, const std::string& field) {
  if (plan.plan_id().empty()) return InvalidField(field, "unknown plan");
  if (plan.retired()) return InvalidField(field, "the plan is retired and takes no new enrollments");
  return absl::OkStatus();
}

std::string Money(const v1::Money& m) {
  const int64_t minor = m.minor_units();
  return absl::StrCat(m.currency_code(), " ", minor / 100, ".", absl::Dec(minor % 100, absl::kZeroPad2));
}

std::string PerilName(int p) {
  std::string name = v1::Peril_Name(static_cast<v1::Peril>(p)).substr(6);
  std::replace(name.begin(), name.end(), '_', ' ');
  return absl::AsciiStrToLower(name);
}

class EnrollmentWorkflow : public Workflow {
 public:
  EnrollmentWorkflow() { Build(); }

  const WorkflowSpec& spec() const override { return spec_; }

  std::vector<std::pair<std::string, std::string>> IndexKeys(const CaseRecord& r) const override {
    const auto& e = r.enrollment();
    std::vector<std::pair<std::string, std::string>> out = {
        {"plan_number", e.plan_number()}, {"email", absl::AsciiStrToLower(e.contact().email())}};
    for (const auto& d : e.devices()) out.push_back({"device", DeviceKey(d)});
    return out;
  }

  // Serial numbers were indexed as typed before DeviceKey put them in
  // capitals.
  std::vector<std::pair<std::string, std::string>> FormerIndexKeys(const CaseRecord& r) const override {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& d : r.enrollment().devices()) {
      if (d.imei().empty() && d.serial_number() != DeviceKey(d)) out.push_back({"device", d.serial_number()});
    }
    return out;
  }

  // A device is protected by one active enrollment at a time.
  std::vector<std::pair<std::string, std::string>> UniqueKeys(const CaseRecord& r) const override {
    std::vector<std::pair<std::string, std::string>> out = {{"plan_number", r.enrollment().plan_number()}};
    if (r.state() == kEnrollmentActive) {
      for (const auto& d : r.enrollment().devices()) out.push_back({"protected_device", DeviceKey(d)});
    }
    return out;
  }

  std::map<std::string, std::string> TemplateValues(const CaseRecord& r) const override {
    const auto& e = r.enrollment();
    std::vector<std::string> devices;
    for (const auto& d : e.devices()) {
      devices.push_back(absl::StrCat(d.model().empty() ? "device" : d.model(), " (", DeviceKey(d), ")"));
    }
    return {{"case_id", r.id()},
            {"plan_number", e.plan_number()},
            {"customer_name", e.contact().full_name()},
            {"plan_id", e.plan_id()},
            {"devices", absl::StrJoin(devices, ", ")}};
  }

  std::vector<std::string> TemplateFields() const override {
    return {"case_id", "plan_number", "customer_name", "plan_id", "devices",
            "plan_name", "covered_perils", "monthly_price", "review_days"};
  }

  std::string Recipient(const CaseRecord& r, Audience) const override {
    return r.enrollment().contact().email();
  }

  std::string LanguageCode(const CaseRecord&) const override { return "en"; }

 private:
  // The confirmation with the plan summary.
  static void Confirm(ActionContext& ctx, const v1::ProtectionPlan& plan, const std::string& what) {
    std::vector<std::string> perils;
    for (int p : plan.covered_perils()) perils.push_back(PerilName(p));
    ctx.Notify("enrollment.confirmation", v1::CHANNEL_EMAIL, Audience::kCustomer,
               v1::EVENT_TYPE_NOTIFICATION_QUEUED, what,
               {{"plan_name", plan.display_name()},
                {"covered_perils", absl::StrJoin(perils, ", ")},
                {"monthly_price", Money(plan.monthly_price())},
                {"review_days", absl::StrCat(plan.review_business_days())}});
  }

  absl::Status Create(ActionContext& ctx) const {
    auto req = RequestIn<v1::CreateEnrollmentRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    const v1::ProtectionPlan& plan = InputAs<Input>(ctx).plan();
    const auto& in = req->enrollment();
    if (auto s = RequireUsablePlan(plan, "enrollment.plan_id"); !s.ok()) return s;
    FieldErrors errors;
    CheckContact(errors, "enrollment.contact.", in.contact());
    if (in.devices().empty()) errors.Add("enrollment.devices", "enroll at least one device");
    std::set<std::string> keys;
    for (int i = 0; i < in.devices_size(); ++i) {
      const std::string p = absl::StrCat("enrollment.devices[", i, "].");
      CheckDevice(errors, p, in.devices(i), InputAs<Input>(ctx), ctx.now);
      if (!keys.insert(DeviceKey(in.devices(i))).second) errors.Add(p + "imei", "appears twice");
    }
    CheckPayment(errors, "enrollment.payment_method_ref", in.payment_method_ref());
    if (!errors.empty()) return errors.ToStatus();
    auto* e = ctx.record.mutable_enrollment();
    e->set_plan_number(InputAs<Input>(ctx).plan_number());
    e->set_plan_id(plan.plan_id());
    *e->mutable_contact() = in.contact();
    e->set_contact_status(v1::CONTACT_STATUS_VERIFIED);
    for (auto d : in.devices()) {
      *d.mutable_add_time() = ToProto(ctx.now);
      *e->add_devices() = std::move(d);
    }
    e->set_payment_method_ref(in.payment_method_ref());
    auto* period = e->add_plan_history();
    period->set_plan_id(plan.plan_id());
    *period->mutable_effective_time() = ToProto(ctx.now);
    Confirm(ctx, plan, "Enrollment confirmation with the plan summary emailed");
    return absl::OkStatus();
  }

  absl::Status UpdateContact(ActionContext& ctx) const {
    auto req = RequestIn<v1::UpdateEnrollmentContactRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    FieldErrors errors;
    CheckContact(errors, "contact.", req->contact());
    if (!errors.empty()) return errors.ToStatus();
    auto* e = ctx.record.mutable_enrollment();
    std::vector<std::string> changed;
    if (e->contact().full_name() != req->contact().full_name()) changed.push_back("full_name");
    if (e->contact().email() != req->contact().email()) changed.push_back("email");
    if (e->contact().phone_number() != req->contact().phone_number()) changed.push_back("phone_number");
    *e->mutable_contact() = req->contact();
    e->set_contact_status(v1::CONTACT_STATUS_VERIFIED);
    ctx.AddEvent(v1::EVENT_TYPE_COMMENT, "Contact details updated with the customer",
                 {{"changed", absl::StrJoin(changed, ",")}});
    return absl::OkStatus();
  }

  absl::Status UpdatePayment(ActionContext& ctx) const {
    auto req = RequestIn<v1::UpdatePaymentMethodRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    FieldErrors errors;
    CheckPayment(errors, "payment_method_ref", req->payment_method_ref());
    if (!errors.empty()) return errors.ToStatus();
    ctx.record.mutable_enrollment()->set_payment_method_ref(req->payment_method_ref());
    ctx.AddEvent(v1::EVENT_TYPE_COMMENT, "Payment method updated");
    return absl::OkStatus();
  }

  absl::Status AddDevice(ActionContext& ctx) const {
    auto req = RequestIn<v1::AddProtectedDeviceRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    FieldErrors errors;
    CheckDevice(errors, "device.", req->device(), InputAs<Input>(ctx), ctx.now);
    if (!errors.empty()) return errors.ToStatus();
    auto* e = ctx.record.mutable_enrollment();
    for (const auto& d : e->devices()) {
      if (DeviceKey(d) == DeviceKey(req->device())) {
        return InvalidField("device.imei", "is already on this enrollment");
      }
    }
    v1::ProtectedDevice device = req->device();
    *device.mutable_add_time() = ToProto(ctx.now);
    *e->add_devices() = device;
    ctx.AddEvent(v1::EVENT_TYPE_COMMENT, "Device added", {{"device", DeviceKey(device)}});
    return absl::OkStatus();
  }

  absl::Status RemoveDevice(ActionContext& ctx) const {
    auto req = RequestIn<v1::RemoveProtectedDeviceRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    auto* devices = ctx.record.mutable_enrollment()->mutable_devices();
    for (int i = 0; i < devices->size(); ++i) {
      if (DeviceKey(devices->Get(i)) != DeviceKey(req->device())) continue;
      if (devices->size() == 1) {
        return WithErrorInfo(absl::FailedPreconditionError(
                                 "an enrollment protects at least one device; cancel it instead"),
                             "LAST_DEVICE");
      }
      devices->DeleteSubrange(i, 1);
      ctx.AddEvent(v1::EVENT_TYPE_COMMENT, "Device removed", {{"device", req->device()}});
      return absl::OkStatus();
    }
    return InvalidField("device", "is not on this enrollment");
  }

  absl::Status ChangePlan(ActionContext& ctx) const {
    auto req = RequestIn<v1::ChangePlanRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    const v1::ProtectionPlan& plan = InputAs<Input>(ctx).plan();
    if (auto s = RequireUsablePlan(plan, "plan_id"); !s.ok()) return s;
    auto* e = ctx.record.mutable_enrollment();
    if (plan.plan_id() == e->plan_id()) return InvalidField("plan_id", "is the current plan");
    for (const auto& d : e->devices()) {
      if (!Eligible(plan, d.category())) {
        return InvalidField("plan_id", absl::StrCat("does not cover device ", DeviceKey(d),
                                                    "; remove it first"));
      }
    }
    ctx.AddEvent(v1::EVENT_TYPE_COMMENT,
                 absl::StrCat("Plan changed from ", e->plan_id(), " to ", plan.plan_id(),
                              ", effective now"),
                 {{"from", e->plan_id()}, {"to", plan.plan_id()}});
    e->set_plan_id(plan.plan_id());
    auto* period = e->add_plan_history();
    period->set_plan_id(plan.plan_id());
    *period->mutable_effective_time() = ToProto(ctx.now);
    Confirm(ctx, plan, "New plan summary emailed");
    return absl::OkStatus();
  }

  absl::Status VerifyContact(ActionContext& ctx) const {
    ctx.record.mutable_enrollment()->set_contact_status(v1::CONTACT_STATUS_VERIFIED);
    ctx.AddEvent(v1::EVENT_TYPE_COMMENT, "Contact details confirmed with the customer");
    return absl::OkStatus();
  }

  absl::Status Cancel(ActionContext& ctx) const {
    auto req = RequestIn<v1::CancelEnrollmentRequest, Input>(ctx);
    if (!req.ok()) return req.status();
    FieldErrors errors;
    CheckNote(errors, "reason", req->reason(), /*required=*/true);
    if (!errors.empty()) return errors.ToStatus();
    ctx.AddEvent(v1::EVENT_TYPE_COMMENT, req->reason());
    return absl::OkStatus();
  }

  void Build() {
    spec_.kind = kEnrollmentKind;
    spec_.collection = kEnrollmentCollection;
    spec_.states = {kEnrollmentActive, kCancelled};
    spec_.has_former_index_keys = true;
    spec_.final_states = {kCancelled};
    auto bind = [this](absl::Status (EnrollmentWorkflow::*fn)(ActionContext&) const) {
      return [this, fn](ActionContext& ctx) { return (this->*fn)(ctx); };
    };
    const std::vector<std::string> agents = {kCsAgent};
    spec_.transitions = {
        {kEnrollmentCreate, {}, kEnrollmentActive, agents, "Enroll devices on a plan", {}, {},
         bind(&EnrollmentWorkflow::Create)},
        {kEnrollmentUpdateContact, {kEnrollmentActive}, "", agents, "Update contact details", {}, {},
         bind(&EnrollmentWorkflow::UpdateContact)},
        {kEnrollmentUpdatePayment, {kEnrollmentActive}, "", agents, "Update the payment method", {}, {},
         bind(&EnrollmentWorkflow::UpdatePayment)},
        {kEnrollmentAddDevice, {kEnrollmentActive}, "", agents, "Add a device", {}, {},
         bind(&EnrollmentWorkflow::AddDevice)},
        {kEnrollmentRemoveDevice, {kEnrollmentActive}, "", agents, "Remove a device", {}, {},
         bind(&EnrollmentWorkflow::RemoveDevice)},
        {kEnrollmentChangePlan, {kEnrollmentActive}, "", agents, "Upgrade or downgrade", {}, {},
         bind(&EnrollmentWorkflow::ChangePlan)},
        {kEnrollmentVerifyContact, {kEnrollmentActive}, "", agents, "Confirm contact details", {}, {},
         bind(&EnrollmentWorkflow::VerifyContact)},
        {kEnrollmentCancel, {kEnrollmentActive}, kCancelled, {kCsAgent, kTeamLead}, "Cancel", {}, {},
         bind(&EnrollmentWorkflow::Cancel)},
        {kEnrollmentContactBounced, {kEnrollmentActive, kCancelled}, "", {kService},
         "A message to the contact address bounced", {}, {},
         [](ActionContext& ctx) {
           ctx.record.mutable_enrollment()->set_contact_status(v1::CONTACT_STATUS_BOUNCED);
           ctx.AddEvent(v1::EVENT_TYPE_COMMENT, "Contact address bounced");
           return absl::OkStatus();
         }},
        CommentTransition(spec_.states, RequestText<Input>(&v1::AddEnrollmentCommentRequest::text)),
    };
  }

  WorkflowSpec spec_;
};

}  // namespace

std::string FormatPlanNumber(absl::string_view d) {
  return absl::StrCat("DP-", d.substr(0, 4), "-", d.substr(4, 4), "-",
                      std::string(1, LuhnCheckDigit(d)));
}

std::string DeviceKey(const v1::ProtectedDevice& d) {
  return DeviceKey(d.imei().empty() ? d.serial_number() : d.imei());
}

std::string DeviceKey(absl::string_view imei_or_serial) { return absl::AsciiStrToUpper(imei_or_serial); }

bool IsPlanNumber(absl::string_view s) {
  if (s.size() != 14 || s.substr(0, 3) != "DP-" || s[7] != '-' || s[12] != '-') return false;
  const std::string digits = absl::StrCat(s.substr(3, 4), s.substr(8, 4), s.substr(13, 1));
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return LuhnValid(digits);
}

bool LooksLikeCardNumber(absl::string_view s) {
  std::string digits;
  for (char c : s) {
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      digits += c;
    } else if (c != ' ' && c != '-') {
      return false;
    }
  }
  return digits.size() >= 13 && digits.size() <= 19 && LuhnValid(digits);
}

std::unique_ptr<Workflow> NewEnrollmentWorkflow() { return std::make_unique<EnrollmentWorkflow>(); }

}  // namespace casework::workflow
