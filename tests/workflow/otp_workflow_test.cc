// Table tests of the OTP support workflow: no I/O, only Decide().
#include "server/workflow/otp_workflow.h"

#include "casework/v1/otp_support.pb.h"
#include "gtest/gtest.h"

namespace casework::workflow {
namespace {

const absl::Time kNow = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone());

OtpPolicy Policy() {
  OtpPolicy p;
  p.question_ids = {"full_name", "date_of_birth", "last_order"};
  p.email_domain_corrections = {{"gmial.com", "gmail.com"}, {"gmail.co", "gmail.com"}};
  p.ticket_forms = {"Mr D Food :: Customer Query"};
  p.query_types = {"Mr D Food: One Time Pin Issues"};
  return p;
}

v1::CustomerProfile Profile(const std::string& email = "thandi@gmial.com") {
  v1::CustomerProfile p;
  p.set_profile_id("p-100");
  p.set_email(email);
  p.set_cellphone("+27821234567");
  return p;
}

template <typename T>
internal::OtpInput Input(const T& request, const v1::CustomerProfile& profile = Profile()) {
  internal::OtpInput in;
  *in.mutable_profile() = profile;
  in.mutable_request()->PackFrom(request);
  return in;
}

CaseRecord Record(const std::string& state) {
  CaseRecord r;
  r.set_id("t1");
  r.set_kind("otp");
  r.set_state(state);
  r.mutable_otp()->set_profile_id("p-100");
  r.mutable_otp()->set_email("thandi@gmial.com");
  return r;
}

absl::StatusOr<Decision> DecideAs(const Workflow& wf, const CaseRecord& before,
                                  const std::string& action, const std::string& role,
                                  const internal::OtpInput& input) {
  static const sla::Calendar calendar = *sla::Calendar::Compile(sla::DefaultCalendar());
  const CalendarLookup lookup = [](const std::string& name) -> const sla::Calendar* {
    return name == calendar.name() ? &calendar : nullptr;
  };
  return Decide(wf, before, action, {"someone", role}, &input, "", kNow, lookup);
}

class OtpWorkflowTest : public ::testing::Test {
 protected:
  std::unique_ptr<Workflow> wf_ = NewOtpWorkflow(Policy());
};

TEST_F(OtpWorkflowTest, NothingHappensBeforePopiVerification) {
  v1::RecordFirstLevelRequest first;
  v1::CorrectProfileContactRequest correct;
  correct.set_email("thandi@gmail.com");
  v1::CloseOtpTicketRequest close;
  close.set_ticket_form("Mr D Food :: Customer Query");
  close.set_query_type("Mr D Food: One Time Pin Issues");
  const std::vector<std::pair<std::string, internal::OtpInput>> jumps = {
      {"record_first_level", Input(first)},
      {"correct_contact", Input(correct)},
      {"send_test_mail", Input(v1::SendTestMailRequest())},
      {"record_test_mail_result", Input(v1::RecordTestMailResultRequest())},
      {"record_otp_result", Input(v1::RecordOtpResultRequest())},
      {"close", Input(close)},
  };
  for (const auto& [action, input] : jumps) {
    auto d = DecideAs(*wf_, Record("VERIFICATION"), action, "cs_agent", input);
    ASSERT_TRUE(absl::IsFailedPrecondition(d.status())) << action << " " << d.status();
    EXPECT_NE(d.status().message().find("POPI verification first"), absl::string_view::npos);
  }
  auto tl = DecideAs(*wf_, Record("VERIFICATION"), "decide_escalation", "cs_agent",
                     Input(v1::DecideEscalationRequest()));
  EXPECT_TRUE(absl::IsPermissionDenied(tl.status()));
}

TEST_F(OtpWorkflowTest, VerificationRecordsQuestionIdsOnly) {
  v1::RecordVerificationRequest req;
  req.set_passed(true);
  req.add_passed_question_ids("full_name");
  req.add_passed_question_ids("favourite_colour");
  auto bad = DecideAs(*wf_, Record("VERIFICATION"), "record_verification", "cs_agent", Input(req));
  ASSERT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_NE(bad.status().message().find("passed_question_ids[1]"), absl::string_view::npos);
  req.set_passed_question_ids(1, "last_order");
  auto ok = DecideAs(*wf_, Record("VERIFICATION"), "record_verification", "cs_agent", Input(req));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->record.state(), "FIRST_LEVEL");
  v1::RecordVerificationRequest failed;
  failed.set_passed(false);
  auto ended = DecideAs(*wf_, Record("VERIFICATION"), "record_verification", "cs_agent", Input(failed));
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(ended->record.state(), "VERIFICATION_FAILED");
}

TEST_F(OtpWorkflowTest, FirstLevelSaysWhatToTryNext) {
  struct Row {
    bool sms, email, spam, received;
    std::string state;
    std::string step_contains;
  } rows[] = {
      {false, true, true, false, "FIRST_LEVEL", "by SMS"},
      {true, false, true, false, "FIRST_LEVEL", "by email"},
      {true, true, false, false, "FIRST_LEVEL", "spam"},
      {true, true, true, false, "SECOND_LEVEL", "test mail"},
      {true, false, false, true, "RESOLVED", "Close"},
  };
  for (const auto& row : rows) {
    v1::RecordFirstLevelRequest req;
    req.set_tried_sms(row.sms);
    req.set_tried_email(row.email);
    req.set_checked_spam(row.spam);
    req.set_otp_received(row.received);
    auto d = DecideAs(*wf_, Record("FIRST_LEVEL"), "record_first_level", "cs_agent", Input(req));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->record.state(), row.state);
    EXPECT_NE(d->record.otp().next_step().find(row.step_contains), std::string::npos)
        << d->record.otp().next_step();
  }
}

TEST_F(OtpWorkflowTest, CorrectionsTable) {
  const auto table = Policy().email_domain_corrections;
  EXPECT_TRUE(IsAllowedEmailCorrection(table, "thandi@gmial.com", "thandi@gmail.com"));
  EXPECT_TRUE(IsAllowedEmailCorrection(table, "thandi@GMAIL.CO", "thandi@gmail.com"));
  EXPECT_FALSE(IsAllowedEmailCorrection(table, "thandi@gmial.com", "thandi2@gmail.com"));  // other mailbox
  EXPECT_FALSE(IsAllowedEmailCorrection(table, "thandi@gmial.com", "thandi@yahoo.com"));   // near miss
  EXPECT_FALSE(IsAllowedEmailCorrection(table, "thandi@gmail.com", "thandi@gmial.com"));   // backwards
  EXPECT_FALSE(IsAllowedEmailCorrection(table, "thandi@gmaill.com", "thandi@gmail.com"));  // not in table
}

TEST_F(OtpWorkflowTest, OnlyTableCorrectionsAreMadeAndPhonesNeverChange) {
  v1::CorrectProfileContactRequest req;
  req.set_email("thandi@gmail.com");
  auto ok = DecideAs(*wf_, Record("SECOND_LEVEL"), "correct_contact", "cs_agent", Input(req));
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_EQ(ok->directory_writes.size(), 1u);
  EXPECT_EQ(std::get<0>(ok->directory_writes[0]), "profiles");
  v1::CustomerProfile written;
  ASSERT_TRUE(written.ParseFromString(std::get<2>(ok->directory_writes[0])));
  EXPECT_EQ(written.email(), "thandi@gmail.com");
  EXPECT_EQ(written.cellphone(), "+27821234567");

  req.set_email("someone.else@gmail.com");
  auto other = DecideAs(*wf_, Record("SECOND_LEVEL"), "correct_contact", "cs_agent", Input(req));
  ASSERT_TRUE(absl::IsFailedPrecondition(other.status()));
  EXPECT_NE(other.status().message().find("create a new profile"), absl::string_view::npos);

  v1::CorrectProfileContactRequest phone;
  phone.set_email("thandi@gmail.com");
  phone.set_cellphone("+27830000000");
  auto refused = DecideAs(*wf_, Record("SECOND_LEVEL"), "correct_contact", "cs_agent", Input(phone));
  ASSERT_TRUE(absl::IsFailedPrecondition(refused.status()));
  EXPECT_NE(refused.status().message().find("cellphone"), absl::string_view::npos);
}

TEST_F(OtpWorkflowTest, TestMailNotReceivedEscalatesToTheTeamLeadOnlyAfterEveryCheck) {
  v1::RecordTestMailResultRequest req;
  auto unsaid = DecideAs(*wf_, Record("TEST_MAIL_SENT"), "record_test_mail_result", "cs_agent", Input(req));
  ASSERT_TRUE(absl::IsInvalidArgument(unsaid.status()));
  EXPECT_NE(unsaid.status().message().find("received"), absl::string_view::npos);
  req.set_received(false);
  auto no_spam_check = DecideAs(*wf_, Record("TEST_MAIL_SENT"), "record_test_mail_result", "cs_agent", Input(req));
  ASSERT_TRUE(no_spam_check.ok());
  EXPECT_EQ(no_spam_check->record.state(), "TEST_MAIL_SENT");
  req.set_checked_spam(true);
  req.set_suspected_account_takeover(true);
  // Whether other emails from us arrive decides between a second look and
  // the team lead, so it must be said.
  auto other_mail_unsaid =
      DecideAs(*wf_, Record("TEST_MAIL_SENT"), "record_test_mail_result", "cs_agent", Input(req));
  ASSERT_TRUE(absl::IsInvalidArgument(other_mail_unsaid.status()));
  EXPECT_NE(other_mail_unsaid.status().message().find("recent_emails_received"), absl::string_view::npos);
  req.set_recent_emails_received(true);
  auto second_look = DecideAs(*wf_, Record("TEST_MAIL_SENT"), "record_test_mail_result", "cs_agent", Input(req));
  ASSERT_TRUE(second_look.ok());
  EXPECT_EQ(second_look->record.state(), "SECOND_LEVEL");
  req.set_recent_emails_received(false);
  auto escalated = DecideAs(*wf_, Record("TEST_MAIL_SENT"), "record_test_mail_result", "cs_agent", Input(req));
  ASSERT_TRUE(escalated.ok());
  EXPECT_EQ(escalated->record.state(), "WITH_TEAM_LEAD");
  EXPECT_TRUE(escalated->record.otp().suspected_account_takeover());
  ASSERT_EQ(escalated->notifications.size(), 1u);
  EXPECT_EQ(escalated->notifications[0].recipient, "#mrd-team-leads");
}

TEST_F(OtpWorkflowTest, ClosingNeedsTheClassification) {
  v1::CloseOtpTicketRequest req;
  req.set_ticket_form("Mr D Food :: Customer Query");
  auto d = DecideAs(*wf_, Record("RESOLVED"), "close", "cs_agent", Input(req));
  ASSERT_TRUE(absl::IsInvalidArgument(d.status()));
  EXPECT_NE(d.status().message().find("query_type"), absl::string_view::npos);
  EXPECT_EQ(d.status().message().find("ticket_form"), absl::string_view::npos);
}

}  // namespace
}  // namespace casework::workflow
