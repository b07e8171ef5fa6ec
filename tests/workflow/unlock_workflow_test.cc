// Table tests of the unlock workflow: no I/O, only Decide().
#include "server/workflow/unlock_workflow.h"

#include "absl/strings/str_cat.h"
#include "casework/v1/unlock.pb.h"
#include "gtest/gtest.h"
#include "server/workflow/validation.h"

namespace casework::workflow {
namespace {

const absl::Time kNow = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone());
constexpr char kImei[] = "353911100000018";

const std::vector<std::string> kStates = {"OPEN",      "IDENTITY_VERIFIED", "ELIGIBLE",
                                          "DENIED",    "SUBMITTED",         "COMPLETED",
                                          "FAILED",    "ESCALATED",         "CANCELLED"};

v1::Account GoodAccount() {
  v1::Account a;
  a.set_account_number("ACC-1");
  a.set_full_name("Maria Lopez");
  a.set_billing_address("12 Elm Street, Springfield");
  a.set_email("maria@example.com");
  a.set_standing(v1::ACCOUNT_STANDING_GOOD);
  auto* d = a.add_devices();
  d->set_imei(kImei);
  d->set_model("Pixel 8");
  return a;
}

CaseRecord Record(const std::string& state) {
  CaseRecord r;
  r.set_id("u1");
  r.set_kind("unlock");
  r.set_state(state);
  r.mutable_unlock()->set_account_number("ACC-1");
  r.mutable_unlock()->set_customer_email("maria@example.com");
  if (state != "OPEN" && state != "IDENTITY_VERIFIED") r.mutable_unlock()->set_imei(kImei);
  return r;
}

template <typename T>
internal::UnlockInput Input(const T& request, const v1::Account& account = GoodAccount()) {
  internal::UnlockInput in;
  *in.mutable_account() = account;
  in.mutable_request()->PackFrom(request);
  return in;
}

absl::StatusOr<Decision> DecideAs(const Workflow& wf, const CaseRecord& before, const std::string& action,
                             const std::string& role, const internal::UnlockInput& input) {
  static const sla::Calendar calendar = *sla::Calendar::Compile(sla::DefaultCalendar());
  const CalendarLookup lookup = [](const std::string& name) -> const sla::Calendar* {
    return name == calendar.name() ? &calendar : nullptr;
  };
  return Decide(wf, before, action, {"someone", role}, &input, "", kNow, lookup);
}

struct Expected {
  std::string action;
  std::vector<std::string> from;
  std::string to;
  std::vector<std::string> roles;
  internal::UnlockInput input;
};

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class UnlockWorkflowTest : public ::testing::Test {
 protected:
  std::unique_ptr<Workflow> wf_ = NewUnlockWorkflow(UnlockPolicy{});
};

TEST_F(UnlockWorkflowTest, EveryActionStateAndRoleBehavesAsTheProcedureSays) {
  v1::VerifyIdentityRequest verify;
  verify.set_full_name("MARIA lopez");
  verify.set_billing_address("12 Elm Street Springfield");
  v1::CheckEligibilityRequest check;
  check.set_imei(kImei);
  v1::SubmitUnlockRequest submit;
  v1::CompleteUnlockRequest complete;
  complete.set_success(true);
  v1::EscalateUnlockRequest escalate;
  escalate.set_note("stuck");
  v1::CancelUnlockRequestRequest cancel;
  cancel.set_reason("customer changed their mind");
  const std::vector<Expected> procedure = {
      {"verify_identity", {"OPEN"}, "IDENTITY_VERIFIED", {"cs_agent"}, Input(verify)},
      {"check_eligibility", {"IDENTITY_VERIFIED", "ELIGIBLE", "DENIED", "FAILED", "COMPLETED"},
       "ELIGIBLE", {"cs_agent"}, Input(check)},
      {"submit_unlock", {"ELIGIBLE", "DENIED", "FAILED", "COMPLETED", "ESCALATED"}, "SUBMITTED",
       {"cs_agent"}, Input(submit)},
      {"complete_unlock", {"SUBMITTED", "ESCALATED"}, "COMPLETED", {"service"}, Input(complete)},
      {"resend_confirmation", {"COMPLETED"}, "", {"cs_agent"},
       Input(v1::ResendConfirmationRequest())},
      {"escalate", {"IDENTITY_VERIFIED", "ELIGIBLE", "DENIED", "SUBMITTED", "COMPLETED", "FAILED"},
       "ESCALATED", {"cs_agent", "team_lead"}, Input(escalate)},
      {"cancel", {"OPEN", "IDENTITY_VERIFIED", "ELIGIBLE", "DENIED", "SUBMITTED", "COMPLETED",
                  "FAILED", "ESCALATED"},
       "CANCELLED", {"cs_agent", "team_lead"}, Input(cancel)},
  };
  int checked = 0;
  for (const auto& e : procedure) {
    for (const auto& state : kStates) {
      for (const auto& role : AllRoles()) {
        SCOPED_TRACE(e.action + " from " + state + " as " + role);
        auto d = DecideAs(*wf_, Record(state), e.action, role, e.input);
        ++checked;
        if (!Has(e.roles, role)) {
          EXPECT_TRUE(absl::IsPermissionDenied(d.status())) << d.status();
        } else if (!Has(e.from, state)) {
          EXPECT_TRUE(absl::IsFailedPrecondition(d.status())) << d.status();
          if (state == "OPEN") {
            EXPECT_NE(d.status().message().find("verify the customer's identity first"),
                      absl::string_view::npos);
          }
        } else {
          ASSERT_TRUE(d.ok()) << d.status();
          EXPECT_EQ(d->record.state(), e.to.empty() ? state : e.to);
        }
      }
    }
  }
  EXPECT_EQ(checked, 7 * 9 * 6);
}

TEST_F(UnlockWorkflowTest, IdentityMismatchIsRecordedWithoutTheValues) {
  v1::VerifyIdentityRequest verify;
  verify.set_full_name("Maria Lopez");
  verify.set_billing_address("7 Secret Lane");
  auto d = DecideAs(*wf_, Record("OPEN"), "verify_identity", "cs_agent", Input(verify));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->record.state(), "OPEN");
  EXPECT_EQ(d->record.unlock().identity_failures(), 1);
  for (const auto& e : d->events) EXPECT_EQ(e.SerializeAsString().find("Secret"), std::string::npos);
}

TEST_F(UnlockWorkflowTest, EligibilityEvaluatesAllRules) {
  struct Row {
    int64_t balance;
    v1::AccountStanding standing;
    bool stolen;
    int failed;
  } rows[] = {
      {0, v1::ACCOUNT_STANDING_GOOD, false, 0},
      {100, v1::ACCOUNT_STANDING_GOOD, false, 1},
      {0, v1::ACCOUNT_STANDING_SUSPENDED, false, 1},
      {0, v1::ACCOUNT_STANDING_GOOD, true, 1},
      {100, v1::ACCOUNT_STANDING_PAST_DUE, true, 3},
  };
  for (const auto& row : rows) {
    v1::Account a = GoodAccount();
    a.set_standing(row.standing);
    a.mutable_devices(0)->set_balance_minor_units(row.balance);
    a.mutable_devices(0)->set_currency_code("USD");
    a.mutable_devices(0)->set_reported_lost_or_stolen(row.stolen);
    v1::CheckEligibilityRequest check;
    check.set_imei(kImei);
    auto d = DecideAs(*wf_, Record("IDENTITY_VERIFIED"), "check_eligibility", "cs_agent", Input(check, a));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->record.unlock().failed_rules_size(), row.failed);
    EXPECT_EQ(d->record.state(), row.failed == 0 ? "ELIGIBLE" : "DENIED");
    v1::SubmitUnlockRequest submit;
    auto s = DecideAs(*wf_, Record("DENIED"), "submit_unlock", "cs_agent", Input(submit, a));
    EXPECT_EQ(s.ok(), row.failed == 0) << s.status();
  }
}

TEST_F(UnlockWorkflowTest, SubmitStartsTheBusinessDayClockAndHoldsTheDevice) {
  v1::SubmitUnlockRequest submit;
  auto d = DecideAs(*wf_, Record("ELIGIBLE"), "submit_unlock", "cs_agent", Input(submit));
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->record.slas_size(), 1);
  EXPECT_EQ(d->record.slas(0).calendar(), "calendars/default");
  // Its next rung, the warning, is armed; the breach is armed when the
  // warning fires.
  ASSERT_EQ(d->timers_arm.size(), 1u);
  EXPECT_EQ(d->timers_arm[0].name, "sla/unlock/warning");
  EXPECT_EQ(wf_->UniqueKeys(d->record),
            (std::vector<std::pair<std::string, std::string>>{{"open_unlock_imei", kImei}}));
  ASSERT_EQ(d->notifications.size(), 1u);
  EXPECT_EQ(d->notifications[0].template_id, "unlock.submitted");
  // Monday 11:00 Amsterdam + 2 and 3 business days.
  EXPECT_EQ(d->notifications[0].values.at("expected_from"), "4 March 2026");
  EXPECT_EQ(d->notifications[0].values.at("expected_by"), "5 March 2026");
}

TEST(LuhnTest, Imeis) {
  EXPECT_TRUE(IsImei("490154203237518"));
  EXPECT_TRUE(IsImei("353911100000018"));
  EXPECT_FALSE(IsImei("490154203237517"));
  EXPECT_FALSE(IsImei("49015420323751"));
  EXPECT_FALSE(IsImei("4901542032375180"));
  EXPECT_FALSE(IsImei("49015420323751a"));
  // The check digit that makes an IMEI of a payload.
  EXPECT_EQ(LuhnCheckDigit("49015420323751"), '8');
  EXPECT_EQ(LuhnCheckDigit("35391110000001"), '8');
  for (const char* payload : {"00000000000000", "12345678901234", "99999999999999"}) {
    EXPECT_TRUE(IsImei(absl::StrCat(payload, std::string(1, LuhnCheckDigit(payload))))) << payload;
  }
  EXPECT_TRUE(IsE164("+14155550123"));
  EXPECT_FALSE(IsE164("14155550123"));
  EXPECT_FALSE(IsE164("+0123"));
  EXPECT_EQ(NormalizeForMatch("  12 Elm St., Apt #4  "), "12 elm st apt 4");
  EXPECT_EQ(NormalizeAddressForMatch("12 North Elm Street, Apartment 4"), "12 n elm st apt 4");
  EXPECT_EQ(NormalizeAddressForMatch("12 N. Elm St., Apt #4"), "12 n elm st apt 4");
  EXPECT_NE(NormalizeAddressForMatch("12 Elm Road"), NormalizeAddressForMatch("12 Elm Street"));
  EXPECT_NE(NormalizeAddressForMatch("12 Elmstreet"), NormalizeAddressForMatch("12 Elm St"));
}

}  // namespace
}  // namespace casework::workflow
