// OTP login support end to end through a real server: verification,
// 1st and 2nd level, a table correction written to the profile directory,
// the test mail in the spool, resolution; and the escalation path to ops.
#include "casework/v1/admin.grpc.pb.h"
#include "casework/v1/otp_support.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/test_server.h"

namespace casework {
namespace {

using testing::NamesField;
using testing::TestServer;
using v1::OtpTicket;
using Stub = v1::OtpSupportService::Stub;

class OtpSupportServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Start();
    otp_ = v1::OtpSupportService::NewStub(server_.channel());
    admin_ = v1::AdminService::NewStub(server_.channel());
    v1::ImportProfilesRequest req;
    req.set_json_lines(
        R"({"profileId": "p-100", "email": "thandi@gmial.com", "cellphone": "+27821234567"})"
        "\n"
        R"({"profileId": "p-200", "email": "sipho@example.co.za", "cellphone": "+27831234567"})"
        "\n"
        R"({"profileId": "bad", "email": "not-an-email"})");
    v1::ImportProfilesResponse resp;
    auto ctx = TestServer::As("admin");
    ASSERT_TRUE(admin_->ImportProfiles(ctx.get(), req, &resp).ok());
    ASSERT_EQ(resp.imported(), 2);
    ASSERT_EQ(resp.failed(), 1);
    EXPECT_EQ(resp.errors(0).field(), "email");
  }

  template <typename Req>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, OtpTicket*),
                    const std::string& role, const Req& req, OtpTicket* out) {
    auto ctx = TestServer::As(role);
    return ((*otp_).*method)(ctx.get(), req, out);
  }

  template <typename Req>
  OtpTicket Ok(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, OtpTicket*),
               const std::string& role, Req req, const OtpTicket& on) {
    req.set_name(on.name());
    OtpTicket out;
    grpc::Status s = Call(method, role, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    return out;
  }

  OtpTicket OpenVerified(const std::string& profile) {
    v1::CreateOtpTicketRequest create;
    create.set_profile_id(profile);
    OtpTicket t;
    EXPECT_TRUE(Call(&Stub::CreateOtpTicket, "cs_agent", create, &t).ok());
    v1::RecordVerificationRequest verify;
    verify.set_passed(true);
    verify.add_passed_question_ids("full_name");
    verify.add_passed_question_ids("last_order");
    return Ok(&Stub::RecordVerification, "cs_agent", verify, t);
  }

  OtpTicket ToSecondLevel(const OtpTicket& t) {
    v1::RecordFirstLevelRequest first;
    first.set_tried_sms(true);
    OtpTicket next = Ok(&Stub::RecordFirstLevel, "cs_agent", first, t);
    EXPECT_EQ(next.state(), v1::OTP_STATE_FIRST_LEVEL);
    EXPECT_NE(next.next_step().find("by email"), std::string::npos);
    first.set_tried_email(true);
    first.set_checked_spam(true);
    return Ok(&Stub::RecordFirstLevel, "cs_agent", first, next);
  }

  TestServer server_{absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone())};
  std::unique_ptr<Stub> otp_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

TEST_F(OtpSupportServerTest, VerifyTroubleshootCorrectTestMailResolveClose) {
  OtpTicket t = OpenVerified("p-100");
  EXPECT_EQ(t.state(), v1::OTP_STATE_FIRST_LEVEL);
  t = ToSecondLevel(t);
  EXPECT_EQ(t.state(), v1::OTP_STATE_SECOND_LEVEL);

  // Not in the table: refused with the advice; a typo from the table: made.
  v1::CorrectProfileContactRequest wrong;
  wrong.set_email("thandi.new@gmail.com");
  wrong.set_name(t.name());
  OtpTicket out;
  grpc::Status refused = Call(&Stub::CorrectProfileContact, "cs_agent", wrong, &out);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("regain access"), std::string::npos);
  v1::CorrectProfileContactRequest fix;
  fix.set_email("thandi@gmail.com");
  t = Ok(&Stub::CorrectProfileContact, "cs_agent", fix, t);
  v1::GetProfileRequest get;
  get.set_name("profiles/p-100");
  v1::CustomerProfile profile;
  auto ctx = TestServer::As("cs_agent");
  ASSERT_TRUE(admin_->GetProfile(ctx.get(), get, &profile).ok());
  EXPECT_EQ(profile.email(), "thandi@gmail.com");

  t = Ok(&Stub::SendTestMail, "cs_agent", v1::SendTestMailRequest(), t);
  EXPECT_EQ(t.state(), v1::OTP_STATE_TEST_MAIL_SENT);
  server_.Pump();
  auto mails = server_.SpoolFor("otp.test_mail");
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_EQ(mails[0].recipient(), "thandi@gmail.com");

  v1::RecordTestMailResultRequest arrived;
  arrived.set_received(true);
  t = Ok(&Stub::RecordTestMailResult, "cs_agent", arrived, t);
  EXPECT_EQ(t.state(), v1::OTP_STATE_OTP_RETRY);
  // Whether the OTP arrived must be said: unsaid, it would escalate.
  v1::RecordOtpResultRequest unsaid;
  unsaid.set_name(t.name());
  OtpTicket unchanged;
  grpc::Status said = Call(&Stub::RecordOtpResult, "cs_agent", unsaid, &unchanged);
  EXPECT_EQ(said.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::ViolatedFields(said), std::vector<std::string>{"received"});
  v1::RecordOtpResultRequest otp;
  otp.set_received(true);
  t = Ok(&Stub::RecordOtpResult, "cs_agent", otp, t);
  EXPECT_EQ(t.state(), v1::OTP_STATE_RESOLVED);

  v1::CloseOtpTicketRequest close;
  close.set_name(t.name());
  grpc::Status s = Call(&Stub::CloseOtpTicket, "cs_agent", close, &out);
  EXPECT_TRUE(NamesField(s, "ticket_form"));
  EXPECT_TRUE(NamesField(s, "query_type"));
  close.set_ticket_form("Mr D Food :: Customer Query");
  close.set_query_type("Mr D Food: One Time Pin Issues");
  t = Ok(&Stub::CloseOtpTicket, "cs_agent", close, t);
  EXPECT_EQ(t.state(), v1::OTP_STATE_CLOSED);
  ASSERT_EQ(t.slas_size(), 1);
  EXPECT_EQ(t.slas(0).status(), v1::SLA_STATUS_STOPPED);

  // The correction is on the timeline with before and after.
  v1::ListOtpTicketEventsRequest events_req;
  events_req.set_parent(t.name());
  v1::ListOtpTicketEventsResponse events;
  auto ctx2 = TestServer::As("team_lead");
  ASSERT_TRUE(otp_->ListOtpTicketEvents(ctx2.get(), events_req, &events).ok());
  bool corrected = false;
  for (const auto& e : events.events()) {
    if (e.message() != "Profile email corrected") continue;
    corrected = e.attributes().at("before") == "thandi@gmial.com" &&
                e.attributes().at("after") == "thandi@gmail.com";
  }
  EXPECT_TRUE(corrected);
}

TEST_F(OtpSupportServerTest, EscalationToTheTeamLeadAndOnToOps) {
  OtpTicket t = ToSecondLevel(OpenVerified("p-200"));
  t = Ok(&Stub::SendTestMail, "cs_agent", v1::SendTestMailRequest(), t);
  v1::RecordTestMailResultRequest missing;
  missing.set_name(t.name());
  missing.set_received(false);
  missing.set_checked_spam(true);
  missing.set_suspected_account_takeover(true);
  OtpTicket unchanged;
  grpc::Status unsaid = Call(&Stub::RecordTestMailResult, "cs_agent", missing, &unchanged);
  EXPECT_EQ(testing::ViolatedFields(unsaid), std::vector<std::string>{"recent_emails_received"});
  missing.set_recent_emails_received(false);
  t = Ok(&Stub::RecordTestMailResult, "cs_agent", missing, t);
  EXPECT_EQ(t.state(), v1::OTP_STATE_WITH_TEAM_LEAD);
  EXPECT_TRUE(t.suspected_account_takeover());
  server_.Pump();
  auto tl = server_.SpoolFor("otp.escalated_team_lead");
  ASSERT_EQ(tl.size(), 1u);
  EXPECT_EQ(tl[0].recipient(), "#mrd-team-leads");
  EXPECT_NE(tl[0].body().find("suspected account takeover: yes"), std::string::npos);

  v1::DecideEscalationRequest decide;
  decide.set_target(v1::ESCALATION_TARGET_OPS);
  decide.set_note("Emails bounce at the provider; please check the mail relay");
  decide.set_name(t.name());
  OtpTicket out;
  EXPECT_EQ(Call(&Stub::DecideEscalation, "cs_agent", decide, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  t = Ok(&Stub::DecideEscalation, "team_lead", decide, t);
  EXPECT_EQ(t.state(), v1::OTP_STATE_WITH_OPS);
  server_.Pump();
  auto ops = server_.SpoolFor("otp.escalated");
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].recipient(), "#mrd-ops");
  EXPECT_NE(ops[0].body().find("mail relay"), std::string::npos);
  // The timeline says the decision with the team lead's reason.
  v1::ListOtpTicketEventsRequest events_req;
  events_req.set_parent(t.name());
  v1::ListOtpTicketEventsResponse events;
  ASSERT_TRUE(otp_->ListOtpTicketEvents(TestServer::As("team_lead").get(), events_req, &events).ok());
  std::vector<std::string> decisions;
  for (const auto& e : events.events()) {
    if (e.type() == v1::EVENT_TYPE_DECISION) decisions.push_back(e.message());
  }
  ASSERT_FALSE(decisions.empty());
  EXPECT_EQ(decisions.back(), "Escalated to ops: Emails bounce at the provider; please check the mail relay");

  v1::ListOtpTicketsRequest list;
  list.set_escalation_target(v1::ESCALATION_TARGET_OPS);
  v1::ListOtpTicketsResponse listed;
  auto ctx = TestServer::As("team_lead");
  ASSERT_TRUE(otp_->ListOtpTickets(ctx.get(), list, &listed).ok());
  ASSERT_EQ(listed.otp_tickets_size(), 1);
  // The team lead clock ran from the escalation to the decision.
  for (const auto& sla : listed.otp_tickets(0).slas()) {
    if (sla.name() == "team_lead") {
      EXPECT_EQ(sla.status(), v1::SLA_STATUS_STOPPED);
    }
  }
}

TEST_F(OtpSupportServerTest, NotesGoOnTheTimeline) {
  OtpTicket t = OpenVerified("p-100");
  v1::AddOtpTicketCommentRequest note;
  note.set_name(t.name());
  note.set_text(std::string(2001, 'x'));
  OtpTicket out;
  EXPECT_TRUE(NamesField(Call(&Stub::AddOtpTicketComment, "cs_agent", note, &out), "text"));
  note.set_text("Customer on a prepaid SIM abroad");
  OtpTicket noted = Ok(&Stub::AddOtpTicketComment, "cs_agent", note, t);
  EXPECT_EQ(noted.state(), t.state());
  EXPECT_EQ(noted.etag(), absl::StrCat(std::stoi(t.etag()) + 1));
  v1::ListOtpTicketEventsRequest events_req;
  events_req.set_parent(t.name());
  v1::ListOtpTicketEventsResponse events;
  auto ctx = TestServer::As("team_lead");
  ASSERT_TRUE(otp_->ListOtpTicketEvents(ctx.get(), events_req, &events).ok());
  ASSERT_GT(events.events_size(), 0);
  const auto& last = events.events(events.events_size() - 1);
  EXPECT_EQ(last.type(), v1::EVENT_TYPE_COMMENT);
  EXPECT_EQ(last.message(), "Customer on a prepaid SIM abroad");
  EXPECT_EQ(last.actor().role(), "cs_agent");

  // The team lead gives the ticket to someone; it is listed under them.
  v1::AssignOtpTicketRequest assign;
  assign.set_assignee("agent:thabo");
  EXPECT_EQ(Ok(&Stub::AssignOtpTicket, "team_lead", assign, noted).assignee(), "agent:thabo");
  v1::ListOtpTicketsRequest list;
  list.set_assignee("agent:thabo");
  v1::ListOtpTicketsResponse listed;
  auto list_ctx = TestServer::As("cs_agent");
  ASSERT_TRUE(otp_->ListOtpTickets(list_ctx.get(), list, &listed).ok());
  ASSERT_EQ(listed.otp_tickets_size(), 1);
  EXPECT_EQ(listed.otp_tickets(0).name(), t.name());
  EXPECT_EQ(listed.otp_tickets(0).assignee(), "agent:thabo");
}

TEST_F(OtpSupportServerTest, ProfilesAreUpdatedByTheirName) {
  v1::UpdateProfileRequest req;
  req.mutable_profile()->set_name("profiles/p-200");
  req.mutable_profile()->set_email("sipho@example.com");
  req.mutable_profile()->set_cellphone("+27831234567");
  v1::CustomerProfile out;
  auto ctx = TestServer::As("admin");
  grpc::Status s = admin_->UpdateProfile(ctx.get(), req, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.profile_id(), "p-200");
  EXPECT_EQ(out.email(), "sipho@example.com");

  // Naming one profile and giving the id of another changes neither.
  req.mutable_profile()->set_profile_id("p-100");
  req.mutable_profile()->set_email("someone@example.com");
  auto ctx2 = TestServer::As("admin");
  EXPECT_TRUE(NamesField(admin_->UpdateProfile(ctx2.get(), req, &out), "profile.name"));
  for (const auto& [name, email] : {std::pair{"profiles/p-100", "thandi@gmial.com"},
                                    std::pair{"profiles/p-200", "sipho@example.com"}}) {
    v1::GetProfileRequest get;
    get.set_name(name);
    auto ctx3 = TestServer::As("cs_agent");
    ASSERT_TRUE(admin_->GetProfile(ctx3.get(), get, &out).ok());
    EXPECT_EQ(out.email(), email);
  }

  // With an update_mask only the email changes; the cellphone stays.
  v1::UpdateProfileRequest email_only;
  email_only.mutable_profile()->set_name("profiles/p-200");
  email_only.mutable_profile()->set_email("sipho.n@example.com");
  email_only.mutable_update_mask()->add_paths("email");
  auto ctx4 = TestServer::As("admin");
  ASSERT_TRUE(admin_->UpdateProfile(ctx4.get(), email_only, &out).ok());
  EXPECT_EQ(out.email(), "sipho.n@example.com");
  EXPECT_EQ(out.cellphone(), "+27831234567");
}

TEST_F(OtpSupportServerTest, FailedVerificationEndsTheCallSafely) {
  v1::CreateOtpTicketRequest create;
  create.set_profile_id("p-100");
  OtpTicket t;
  ASSERT_TRUE(Call(&Stub::CreateOtpTicket, "cs_agent", create, &t).ok());
  v1::RecordFirstLevelRequest early;
  early.set_name(t.name());
  OtpTicket out;
  grpc::Status s = Call(&Stub::RecordFirstLevel, "cs_agent", early, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("POPI"), std::string::npos);
  // A request that does not say how verification went is refused, not
  // taken as a failure (which would end the call), and changes nothing.
  v1::RecordVerificationRequest unsaid;
  unsaid.set_name(t.name());
  s = Call(&Stub::RecordVerification, "cs_agent", unsaid, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::ViolatedFields(s), std::vector<std::string>{"passed"});
  v1::GetOtpTicketRequest get;
  get.set_name(t.name());
  ASSERT_TRUE(otp_->GetOtpTicket(TestServer::As("cs_agent").get(), get, &out).ok());
  EXPECT_EQ(out.state(), v1::OTP_STATE_VERIFICATION);
  EXPECT_EQ(out.etag(), t.etag());
  v1::RecordVerificationRequest failed;
  failed.set_passed(false);
  t = Ok(&Stub::RecordVerification, "cs_agent", failed, t);
  EXPECT_EQ(t.state(), v1::OTP_STATE_VERIFICATION_FAILED);
  create.set_profile_id("nobody");
  EXPECT_EQ(Call(&Stub::CreateOtpTicket, "cs_agent", create, &out).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace casework
