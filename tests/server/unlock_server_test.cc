// Carrier unlock requests end to end through a real server: account
// import, identity, eligibility, submission with the expected window on the
// region's calendar (across a weekend and a holiday), SLA warning,
// completion, troubleshooting and bad input.
#include <algorithm>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "casework/v1/admin.grpc.pb.h"
#include "casework/v1/boards.grpc.pb.h"
#include "casework/v1/unlock.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/common/proto_time.h"
#include "server/sla/calendar_store.h"
#include "tests/testing/test_server.h"

namespace casework {
namespace {

using testing::ErrorReason;
using testing::NamesField;
using testing::PreconditionTypes;
using testing::TestServer;
using v1::UnlockRequest;

constexpr char kPhoneA[] = "+12125550100";
constexpr char kImeiPaid[] = "353911100000018";
constexpr char kImeiOwing[] = "353911100000026";
constexpr char kImeiBad[] = "353911100000034";
constexpr char kImeiElsewhere[] = "490154203237518";  // valid, on no account

absl::TimeZone NewYork() {
  absl::TimeZone tz;
  absl::LoadTimeZone("America/New_York", &tz);
  return tz;
}

absl::Time Ny(int m, int d, int hh, int mm = 0) {
  return absl::FromCivil(absl::CivilSecond(2026, m, d, hh, mm, 0), NewYork());
}

class UnlockServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Start();
    Connect();
    AddUsCalendar();
    ImportAccounts();
  }

  void Connect() {
    unlock_ = v1::UnlockService::NewStub(server_.channel());
    admin_ = v1::AdminService::NewStub(server_.channel());
  }

  void AddUsCalendar() {
    v1::UpdateCalendarRequest req;
    req.set_allow_missing(true);
    auto* c = req.mutable_calendar();
    c->set_name("calendars/us");
    c->set_time_zone("America/New_York");
    for (int wd = 1; wd <= 5; ++wd) {
      auto* h = c->add_working_hours();
      h->set_weekday(wd);
      h->set_start_minute(9 * 60);
      h->set_end_minute(17 * 60);
    }
    auto* july4 = c->add_holidays();
    july4->set_name("Independence Day");
    july4->set_month(7);
    july4->set_day(4);
    july4->set_observed(v1::OBSERVED_SHIFT_NEAREST_WEEKDAY);
    v1::BusinessCalendar saved;
    auto ctx = TestServer::As("admin");
    ASSERT_TRUE(admin_->UpdateCalendar(ctx.get(), req, &saved).ok());
  }

  void ImportAccounts() {
    v1::ImportAccountsRequest req;
    req.set_json_lines(absl::StrCat(
        R"({"accountNumber": "ACC-1001", "fullName": "Maria Lopez", "billingAddress": "12 Elm Street, Springfield",)",
        R"( "phoneNumber": ")", kPhoneA, R"(", "email": "maria@example.com", "standing": "ACCOUNT_STANDING_GOOD", "region": "us",)",
        R"( "devices": [{"imei": ")", kImeiPaid, R"(", "model": "Pixel 8"},)",
        R"( {"imei": ")", kImeiOwing, R"(", "model": "Galaxy S23", "balanceMinorUnits": "12000", "currencyCode": "USD"}]})", "\n",
        R"({"accountNumber": "ACC-2002", "fullName": "Sam Poe", "billingAddress": "1 Main St", "email": "sam@example.com",)",
        R"( "standing": "past_due", "region": "us", "devices": [{"imei": ")", kImeiBad,
        R"(", "model": "iPhone 14", "balanceMinorUnits": "5000", "currencyCode": "USD", "reportedLostOrStolen": true}]})", "\n",
        "\n",
        R"({"accountNumber": "ACC-3003", "fullName": "Bad Row", "billingAddress": "x", "standing": "ACCOUNT_STANDING_GOOD",)",
        R"( "devices": [{"imei": "12345"}]})", "\n",
        R"({"accountNumber": "ACC-4004", "fullName": )", "\n"));
    v1::ImportAccountsResponse resp;
    auto ctx = TestServer::As("admin");
    ASSERT_TRUE(admin_->ImportAccounts(ctx.get(), req, &resp).ok());
    import_ = resp;
  }

  template <typename Req>
  grpc::Status Call(grpc::Status (v1::UnlockService::Stub::*method)(grpc::ClientContext*, const Req&,
                                                                    UnlockRequest*),
                    const std::string& role, const Req& req, UnlockRequest* out) {
    auto ctx = TestServer::As(role);
    return ((*unlock_).*method)(ctx.get(), req, out);
  }

  template <typename Req>
  UnlockRequest Ok(grpc::Status (v1::UnlockService::Stub::*method)(grpc::ClientContext*, const Req&,
                                                                   UnlockRequest*),
                   const std::string& role, const Req& req) {
    UnlockRequest out;
    grpc::Status s = Call(method, role, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    return out;
  }

  UnlockRequest Open(const std::string& account) {
    v1::CreateUnlockRequestRequest req;
    req.set_account_number(account);
    return Ok(&v1::UnlockService::Stub::CreateUnlockRequest, "cs_agent", req);
  }

  UnlockRequest Verify(const UnlockRequest& r, const std::string& name, const std::string& address) {
    v1::VerifyIdentityRequest req;
    req.set_name(r.name());
    req.set_full_name(name);
    req.set_billing_address(address);
    return Ok(&v1::UnlockService::Stub::VerifyIdentity, "cs_agent", req);
  }

  UnlockRequest Check(const UnlockRequest& r, const std::string& imei) {
    v1::CheckEligibilityRequest req;
    req.set_name(r.name());
    req.set_imei(imei);
    return Ok(&v1::UnlockService::Stub::CheckEligibility, "cs_agent", req);
  }

  std::vector<v1::TimelineEvent> Events(const std::string& name) {
    v1::ListUnlockRequestEventsRequest req;
    req.set_parent(name);
    v1::ListUnlockRequestEventsResponse resp;
    auto ctx = TestServer::As("team_lead");
    EXPECT_TRUE(unlock_->ListUnlockRequestEvents(ctx.get(), req, &resp).ok());
    return {resp.events().begin(), resp.events().end()};
  }

  TestServer server_{Ny(7, 2, 15)};  // Thursday 2 July 2026, 15:00 in New York
  std::unique_ptr<v1::UnlockService::Stub> unlock_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  v1::ImportAccountsResponse import_;
};

TEST_F(UnlockServerTest, ImportReportsEveryBadRowAndWritesOnlyWholeRows) {
  EXPECT_EQ(import_.imported(), 2);
  EXPECT_EQ(import_.failed(), 2);
  ASSERT_GE(import_.errors_size(), 2);
  EXPECT_EQ(import_.errors(0).line(), 4);
  EXPECT_EQ(import_.errors(0).field(), "devices[0].imei");
  EXPECT_EQ(import_.errors(import_.errors_size() - 1).line(), 5);
  v1::GetAccountRequest get;
  get.set_name("accounts/ACC-3003");
  v1::Account account;
  auto ctx = TestServer::As("cs_agent");
  EXPECT_EQ(admin_->GetAccount(ctx.get(), get, &account).error_code(), grpc::StatusCode::NOT_FOUND);
  // A standing given by its short name, as errors name it, is taken.
  get.set_name("accounts/ACC-2002");
  auto ctx2 = TestServer::As("cs_agent");
  ASSERT_TRUE(admin_->GetAccount(ctx2.get(), get, &account).ok());
  EXPECT_EQ(account.standing(), v1::ACCOUNT_STANDING_PAST_DUE);
}

// The rows of one import are written together, and each row is checked
// against the rows before it: an account given twice moves its phone
// number, the number it gave up is free for the next row, and the number
// it took is not.
TEST_F(UnlockServerTest, ImportRowsSeeTheRowsBeforeThemAndAreWrittenOnce) {
  auto row = [](const std::string& number, const std::string& phone) {
    return absl::StrCat(R"({"accountNumber": ")", number, R"(", "fullName": "Row )", number,
                        R"(", "billingAddress": "1 Row Road", "phoneNumber": ")", phone,
                        R"(", "standing": "ACCOUNT_STANDING_GOOD", "region": "us"})", "\n");
  };
  constexpr char kFirst[] = "+12125550171";
  constexpr char kSecond[] = "+12125550172";
  v1::ImportAccountsRequest req;
  req.set_json_lines(absl::StrCat(row("ACC-5005", kFirst), row("ACC-5005", kSecond), row("ACC-6006", kFirst),
                                  row("ACC-7007", kSecond)));
  v1::ImportAccountsResponse resp;
  ASSERT_TRUE(admin_->ImportAccounts(TestServer::As("admin").get(), req, &resp).ok());
  EXPECT_EQ(resp.imported(), 3);
  EXPECT_EQ(resp.failed(), 1);
  ASSERT_EQ(resp.errors_size(), 1);
  EXPECT_EQ(resp.errors(0).line(), 4);
  EXPECT_EQ(resp.errors(0).field(), "phone_number");
  EXPECT_EQ(resp.errors(0).description(), "belongs to another account");

  v1::GetAccountRequest get;
  get.set_name("accounts/ACC-5005");
  v1::Account account;
  ASSERT_TRUE(admin_->GetAccount(TestServer::As("admin").get(), get, &account).ok());
  EXPECT_EQ(account.phone_number(), kSecond);
  EXPECT_EQ(account.etag(), "1");  // written once, though given twice
  get.set_name("accounts/ACC-7007");
  EXPECT_EQ(admin_->GetAccount(TestServer::As("admin").get(), get, &account).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // Requests opened by phone number find the accounts the rows left.
  v1::CreateUnlockRequestRequest create;
  create.set_phone_number(kFirst);
  EXPECT_EQ(Ok(&v1::UnlockService::Stub::CreateUnlockRequest, "cs_agent", create).account_number(), "ACC-6006");
  create.set_phone_number(kSecond);
  EXPECT_EQ(Ok(&v1::UnlockService::Stub::CreateUnlockRequest, "cs_agent", create).account_number(), "ACC-5005");
}

TEST_F(UnlockServerTest, OfTwoChangesFromOneReadOnlyOneIsWritten) {
  // Eight admins read ACC-1001 and save it at once, each with the etag
  // they read: one change is written, the others are told it is stale.
  v1::GetAccountRequest get;
  get.set_name("accounts/ACC-1001");
  v1::Account read;
  ASSERT_TRUE(admin_->GetAccount(TestServer::As("admin").get(), get, &read).ok());
  std::vector<grpc::Status> results(8);
  std::vector<std::thread> admins;
  for (size_t i = 0; i < results.size(); ++i) {
    admins.emplace_back([&, i] {
      v1::UpdateAccountRequest update;
      *update.mutable_account() = read;
      update.mutable_account()->set_full_name(absl::StrCat("Maria Lopez ", i));
      v1::Account saved;
      results[i] = admin_->UpdateAccount(TestServer::As("admin").get(), update, &saved);
    });
  }
  for (auto& t : admins) t.join();
  int written = 0;
  for (const auto& s : results) {
    if (s.ok()) {
      ++written;
      continue;
    }
    EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED) << s.error_message();
    EXPECT_EQ(ErrorReason(s), "ETAG_MISMATCH");
  }
  EXPECT_EQ(written, 1);

  // Calendars are records with etags too: a stale one is the same error.
  v1::GetCalendarRequest get_cal;
  get_cal.set_name("calendars/us");
  v1::BusinessCalendar cal;
  ASSERT_TRUE(admin_->GetCalendar(TestServer::As("admin").get(), get_cal, &cal).ok());
  v1::UpdateCalendarRequest update;
  *update.mutable_calendar() = cal;
  v1::BusinessCalendar saved;
  ASSERT_TRUE(admin_->UpdateCalendar(TestServer::As("admin").get(), update, &saved).ok());
  grpc::Status stale = admin_->UpdateCalendar(TestServer::As("admin").get(), update, &saved);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(ErrorReason(stale), "ETAG_MISMATCH");
  EXPECT_EQ(stale.error_message(), "etag mismatch: calendars/us has changed since it was read; read it again");
}

// Admins changing different fields of one account at once, each with an
// update_mask and no etag: every change acknowledged is in the account,
// and one that lost the race is refused, never silently undone.
TEST_F(UnlockServerTest, MaskedUpdatesAtOnceKeepEveryAcknowledgedChange) {
  const std::vector<std::pair<std::string, std::string>> changes = {
      {"full_name", "Maria L. Lopez"}, {"billing_address", "14 Elm Street, Springfield"},
      {"email", "maria.lopez@example.com"}, {"region", "ca"}};
  std::vector<grpc::Status> results(changes.size());
  std::vector<std::thread> admins;
  for (size_t i = 0; i < changes.size(); ++i) {
    admins.emplace_back([&, i] {
      v1::UpdateAccountRequest update;
      update.mutable_account()->set_name("accounts/ACC-1001");
      const auto* field = v1::Account::descriptor()->FindFieldByName(changes[i].first);
      update.mutable_account()->GetReflection()->SetString(update.mutable_account(), field, changes[i].second);
      update.mutable_update_mask()->add_paths(changes[i].first);
      v1::Account saved;
      results[i] = admin_->UpdateAccount(TestServer::As("admin").get(), update, &saved);
    });
  }
  for (auto& t : admins) t.join();
  v1::GetAccountRequest get;
  get.set_name("accounts/ACC-1001");
  v1::Account now;
  ASSERT_TRUE(admin_->GetAccount(TestServer::As("admin").get(), get, &now).ok());
  int written = 0;
  for (size_t i = 0; i < changes.size(); ++i) {
    const auto* field = v1::Account::descriptor()->FindFieldByName(changes[i].first);
    const std::string value = now.GetReflection()->GetString(now, field);
    if (results[i].ok()) {
      ++written;
      EXPECT_EQ(value, changes[i].second) << changes[i].first << " was acknowledged and lost";
    } else {
      EXPECT_EQ(results[i].error_code(), grpc::StatusCode::ABORTED) << results[i].error_message();
      EXPECT_NE(value, changes[i].second) << changes[i].first;
    }
  }
  EXPECT_GE(written, 1);
  EXPECT_EQ(now.etag(), absl::StrCat(1 + written));
  // What no mask named is as imported.
  EXPECT_EQ(now.devices_size(), 2);
  EXPECT_EQ(now.phone_number(), kPhoneA);

  // A calendar's time zone alone; its hours and holidays stay.
  v1::UpdateCalendarRequest zone;
  zone.mutable_calendar()->set_name("calendars/us");
  zone.mutable_calendar()->set_time_zone("America/Chicago");
  zone.mutable_update_mask()->add_paths("time_zone");
  v1::BusinessCalendar cal;
  ASSERT_TRUE(admin_->UpdateCalendar(TestServer::As("admin").get(), zone, &cal).ok());
  EXPECT_EQ(cal.time_zone(), "America/Chicago");
  EXPECT_EQ(cal.working_hours_size(), 5);
  EXPECT_EQ(cal.holidays_size(), 1);
  zone.mutable_update_mask()->set_paths(0, "timezone");
  EXPECT_TRUE(testing::NamesField(admin_->UpdateCalendar(TestServer::As("admin").get(), zone, &cal), "update_mask"));
}

TEST_F(UnlockServerTest, VerifiedEligibleSubmittedWarnedCompleted) {
  v1::CreateUnlockRequestRequest create;
  create.set_phone_number(kPhoneA);
  UnlockRequest r = Ok(&v1::UnlockService::Stub::CreateUnlockRequest, "cs_agent", create);
  EXPECT_EQ(r.state(), v1::UNLOCK_STATE_OPEN);
  EXPECT_EQ(r.account_number(), "ACC-1001");

  // Nothing but identity verification before identity is verified.
  v1::CheckEligibilityRequest early;
  early.set_name(r.name());
  early.set_imei(kImeiPaid);
  UnlockRequest ignored;
  grpc::Status s = Call(&v1::UnlockService::Stub::CheckEligibility, "cs_agent", early, &ignored);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("verify the customer's identity first"), std::string::npos);

  r = Verify(r, "Maria Lopez", "99 Wrong Road");
  EXPECT_EQ(r.state(), v1::UNLOCK_STATE_OPEN);
  EXPECT_EQ(r.identity_failures(), 1);
  for (const auto& e : Events(r.name())) {
    EXPECT_EQ(e.SerializeAsString().find("Wrong Road"), std::string::npos);
  }
  // Typed as people type it: case, spaces, punctuation and the usual
  // abbreviations do not matter.
  r = Verify(r, "  maria LOPEZ ", "12 Elm St. Springfield.");
  EXPECT_EQ(r.state(), v1::UNLOCK_STATE_IDENTITY_VERIFIED);

  r = Check(r, kImeiPaid);
  EXPECT_EQ(r.state(), v1::UNLOCK_STATE_ELIGIBLE);
  EXPECT_EQ(r.device_model(), "Pixel 8");

  v1::SubmitUnlockRequest submit;
  submit.set_name(r.name());
  r = Ok(&v1::UnlockService::Stub::SubmitUnlock, "cs_agent", submit);
  EXPECT_EQ(r.state(), v1::UNLOCK_STATE_SUBMITTED);
  // Friday 3 July is the observed Independence Day, then a weekend: two and
  // three business days after Thursday 15:00 are Tuesday and Wednesday.
  EXPECT_EQ(FromProto(r.expected_from_time()), Ny(7, 7, 15));
  EXPECT_EQ(FromProto(r.expected_by_time()), Ny(7, 8, 15));
  server_.Pump();
  auto told = server_.SpoolFor("unlock.submitted");
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].recipient(), "maria@example.com");
  EXPECT_NE(told[0].body().find("between 7 July 2026 and 8 July 2026"), std::string::npos) << told[0].body();

  server_.clock().Set(Ny(7, 7, 15));
  server_.Pump();
  int warnings = 0;
  for (const auto& e : Events(r.name())) warnings += e.type() == v1::EVENT_TYPE_SLA_WARNING;
  EXPECT_EQ(warnings, 1);

  v1::CompleteUnlockRequest complete;
  complete.set_name(r.name());
  complete.set_success(true);
  EXPECT_EQ(Call(&v1::UnlockService::Stub::CompleteUnlock, "cs_agent", complete, &ignored).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  r = Ok(&v1::UnlockService::Stub::CompleteUnlock, "service", complete);
  EXPECT_EQ(r.state(), v1::UNLOCK_STATE_COMPLETED);
  EXPECT_EQ(r.slas(0).status(), v1::SLA_STATUS_STOPPED);
  EXPECT_FALSE(r.slas(0).breached());
  server_.Pump();
  ASSERT_EQ(server_.SpoolFor("unlock.confirmation").size(), 1u);

  // "I did not get the email": send it again with the spam-folder advice.
  v1::ResendConfirmationRequest resend;
  resend.set_name(r.name());
  r = Ok(&v1::UnlockService::Stub::ResendConfirmation, "cs_agent", resend);
  server_.Pump();
  auto again = server_.SpoolFor("unlock.confirmation_resend");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_NE(again[0].body().find("spam"), std::string::npos);
  // The breach rung was cancelled with the clock.
  server_.clock().Set(Ny(7, 20, 9));
  server_.Pump();
  for (const auto& e : Events(r.name())) EXPECT_NE(e.type(), v1::EVENT_TYPE_SLA_BREACHED);
}

TEST_F(UnlockServerTest, ARegionWithoutACalendarUsesTheDefaultAndTheTimelineSaysSo) {
  v1::ImportAccountsRequest req;
  req.set_json_lines(absl::StrCat(
      R"({"accountNumber": "ACC-5005", "fullName": "Lee Chan", "billingAddress": "5 Bay Road",)",
      R"( "email": "lee@example.com", "standing": "ACCOUNT_STANDING_GOOD", "region": "ca",)",
      R"( "devices": [{"imei": "356938035643809", "model": "Pixel 9"}]})"));
  v1::ImportAccountsResponse imported;
  ASSERT_TRUE(admin_->ImportAccounts(TestServer::As("admin").get(), req, &imported).ok());
  ASSERT_EQ(imported.imported(), 1);
  UnlockRequest r = Check(Verify(Open("ACC-5005"), "Lee Chan", "5 Bay Rd"), "356938035643809");
  v1::SubmitUnlockRequest submit;
  submit.set_name(r.name());
  r = Ok(&v1::UnlockService::Stub::SubmitUnlock, "cs_agent", submit);
  ASSERT_EQ(r.slas_size(), 1);
  EXPECT_EQ(r.slas(0).calendar(), "calendars/default");
  std::vector<std::string> started;
  for (const auto& e : Events(r.name())) {
    if (e.type() == v1::EVENT_TYPE_SLA_STARTED) started.push_back(e.message());
  }
  EXPECT_EQ(started, std::vector<std::string>{
                         "SLA unlock started on calendars/default: calendars/ca does not exist"});
  // Once the region's calendar is made, the clock runs on it: the window
  // is measured again in its hours (Los Angeles, three hours behind).
  const absl::Time expected_by = absl::FromUnixSeconds(r.expected_by_time().seconds());
  v1::CreateCalendarRequest ca;
  ca.mutable_calendar()->set_name("calendars/ca");
  ca.mutable_calendar()->set_time_zone("America/Los_Angeles");
  for (int wd = 1; wd <= 5; ++wd) {
    auto* h = ca.mutable_calendar()->add_working_hours();
    h->set_weekday(wd);
    h->set_start_minute(9 * 60);
    h->set_end_minute(17 * 60);
  }
  v1::BusinessCalendar saved;
  ASSERT_TRUE(admin_->CreateCalendar(TestServer::As("admin").get(), ca, &saved).ok());
  v1::GetUnlockRequestRequest get;
  get.set_name(r.name());
  UnlockRequest moved = Ok(&v1::UnlockService::Stub::GetUnlockRequest, "cs_agent", get);
  ASSERT_EQ(moved.slas_size(), 1);
  EXPECT_EQ(moved.slas(0).calendar(), "calendars/ca");
  EXPECT_NE(absl::FromUnixSeconds(moved.expected_by_time().seconds()), expected_by);
  bool recomputed = false;
  for (const auto& e : Events(r.name())) recomputed |= e.type() == v1::EVENT_TYPE_SLA_RECOMPUTED;
  EXPECT_TRUE(recomputed);
  // With the region's calendar there, nothing to say.
  UnlockRequest us = Check(Verify(Open("ACC-1001"), "Maria Lopez", "12 Elm Street, Springfield"), kImeiPaid);
  submit.set_name(us.name());
  us = Ok(&v1::UnlockService::Stub::SubmitUnlock, "cs_agent", submit);
  EXPECT_EQ(us.slas(0).calendar(), "calendars/us");
  for (const auto& e : Events(us.name())) {
    if (e.type() == v1::EVENT_TYPE_SLA_STARTED) {
      EXPECT_EQ(e.message(), "SLA unlock started");
    }
  }
}

TEST_F(UnlockServerTest, EveryCalendarRpcRefusesABadNameAlikeNamingItsField) {
  for (const std::string bad : {"calendars/US", "calendars/", "regions/us", "calendars/a b"}) {
    SCOPED_TRACE(bad);
    google::protobuf::Empty none;
    v1::BusinessCalendar cal;
    v1::GetCalendarRequest get;
    get.set_name(bad);
    const grpc::Status got = admin_->GetCalendar(TestServer::As("cs_agent").get(), get, &cal);
    v1::DeleteCalendarRequest del;
    del.set_name(bad);
    const grpc::Status deleted = admin_->DeleteCalendar(TestServer::As("admin").get(), del, &none);
    v1::CreateCalendarRequest create;
    create.mutable_calendar()->set_name(bad);
    create.mutable_calendar()->set_time_zone("America/New_York");
    const grpc::Status created = admin_->CreateCalendar(TestServer::As("admin").get(), create, &cal);
    for (const grpc::Status* s : {&got, &deleted, &created}) {
      EXPECT_EQ(s->error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    }
    EXPECT_TRUE(testing::NamesField(got, "name"));
    EXPECT_TRUE(testing::NamesField(deleted, "name"));
    EXPECT_TRUE(testing::NamesField(created, "calendar.name"));
    // One rule, said one way, whichever RPC is asked.
    EXPECT_EQ(got.error_message(), deleted.error_message());
    EXPECT_EQ(absl::StrReplaceAll(created.error_message(), {{"calendar.name", "name"}}),
              got.error_message());
  }
}

TEST_F(UnlockServerTest, ADeletedCalendarsClocksGoOnOnTheDefaultWithTheTimeTheyUsed) {
  UnlockRequest r = Check(Verify(Open("ACC-1001"), "Maria Lopez", "12 Elm Street, Springfield"), kImeiPaid);
  v1::SubmitUnlockRequest submit;
  submit.set_name(r.name());
  r = Ok(&v1::UnlockService::Stub::SubmitUnlock, "cs_agent", submit);
  ASSERT_EQ(r.slas(0).calendar(), "calendars/us");
  // Thursday 15:00-17:00 and Monday 9:00-10:00 in New York (Friday is the
  // observed Independence Day): three hours used.
  server_.clock().Set(Ny(7, 6, 10));
  v1::GetUnlockRequestRequest get;
  get.set_name(r.name());
  auto sla_now = [&] {
    UnlockRequest now = Ok(&v1::UnlockService::Stub::GetUnlockRequest, "cs_agent", get);
    EXPECT_EQ(now.slas_size(), 1);
    return now.slas(0);
  };
  ASSERT_EQ(sla_now().consumed().seconds(), 3 * 3600);
  v1::GetCalendarRequest get_us;
  get_us.set_name("calendars/us");
  v1::BusinessCalendar us;
  ASSERT_TRUE(admin_->GetCalendar(TestServer::As("cs_agent").get(), get_us, &us).ok());

  v1::DeleteCalendarRequest del;
  del.set_name("calendars/default");
  google::protobuf::Empty none;
  grpc::Status s = admin_->DeleteCalendar(TestServer::As("admin").get(), del, &none);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorReason(s), "DEFAULT_CALENDAR");
  del.set_name("calendars/us");
  EXPECT_EQ(admin_->DeleteCalendar(TestServer::As("ops").get(), del, &none).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  del.set_etag(absl::StrCat(std::stoll(us.etag()) + 1));
  EXPECT_EQ(admin_->DeleteCalendar(TestServer::As("admin").get(), del, &none).error_code(),
            grpc::StatusCode::ABORTED);
  EXPECT_EQ(sla_now().calendar(), "calendars/us");
  del.set_etag(us.etag());
  s = admin_->DeleteCalendar(TestServer::As("admin").get(), del, &none);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(admin_->GetCalendar(TestServer::As("cs_agent").get(), get_us, &us).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(admin_->DeleteCalendar(TestServer::As("admin").get(), del, &none).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // The clock keeps its three hours and spends the rest of its budget on
  // the default calendar's hours.
  auto on_default = [&](const v1::Sla& sla) {
    EXPECT_EQ(sla.calendar(), "calendars/default");
    EXPECT_EQ(sla.consumed().seconds(), 3 * 3600);
    auto calendar = sla::Calendar::Compile(sla::DefaultCalendar());
    const absl::Time due = calendar->AddBusinessTime(server_.clock().Now(), absl::Seconds(sla.budget().seconds()) - absl::Hours(3));
    bool breach = false;
    for (const auto& d : sla.deadlines()) {
      if (d.rung() != "breach") continue;
      breach = true;
      EXPECT_EQ(FromProto(d.due_time()), due);
    }
    EXPECT_TRUE(breach);
  };
  on_default(sla_now());
  std::vector<std::string> recomputed;
  for (const auto& e : Events(r.name())) {
    if (e.type() == v1::EVENT_TYPE_SLA_RECOMPUTED) recomputed.push_back(e.message());
  }
  EXPECT_EQ(recomputed, std::vector<std::string>{
                            "SLA deadlines recomputed: unlock now on calendars/default (was calendars/us)"});
  // A request submitted now starts on the default, as for a region without
  // a calendar.
  v1::ListCalendarsResponse listed;
  ASSERT_TRUE(admin_->ListCalendars(TestServer::As("cs_agent").get(), v1::ListCalendarsRequest(), &listed).ok());
  for (const auto& c : listed.calendars()) EXPECT_NE(c.name(), "calendars/us");

  // Made again, the region's calendar takes its clocks back; an edit read
  // before the deletion does not overwrite it.
  AddUsCalendar();
  EXPECT_EQ(sla_now().calendar(), "calendars/us");
  EXPECT_EQ(sla_now().consumed().seconds(), 3 * 3600);
  v1::UpdateCalendarRequest stale;
  *stale.mutable_calendar() = us;
  stale.mutable_calendar()->set_etag(del.etag());
  v1::BusinessCalendar updated;
  s = admin_->UpdateCalendar(TestServer::As("admin").get(), stale, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED) << s.error_message();

  // A deletion the server stopped in the middle of (the calendar deleted,
  // its clocks not yet moved) is finished at the next start.
  {
    sla::CalendarStore store(&server_.server().repository());
    ASSERT_TRUE(store.Load(server_.clock().Now()).ok());
    ASSERT_TRUE(store.Retire("calendars/us", -1).ok());
  }
  EXPECT_EQ(sla_now().calendar(), "calendars/us");
  server_.Restart();
  Connect();
  on_default(sla_now());
  sla::CalendarStore store(&server_.server().repository());
  ASSERT_TRUE(store.Load(server_.clock().Now()).ok());
  EXPECT_TRUE(store.PendingMoves()->empty());

  // The request finishes as any other.
  v1::CompleteUnlockRequest complete;
  complete.set_name(r.name());
  complete.set_success(true);
  r = Ok(&v1::UnlockService::Stub::CompleteUnlock, "service", complete);
  EXPECT_EQ(r.state(), v1::UNLOCK_STATE_COMPLETED);
  EXPECT_EQ(r.slas(0).status(), v1::SLA_STATUS_STOPPED);
}

TEST_F(UnlockServerTest, RequestsPastTheirWarningOrBreachAreListedForTeamLeads) {
  auto listed = [&](v1::SlaAttention attention, grpc::Status* status = nullptr) {
    v1::ListUnlockRequestsRequest req;
    req.set_sla_attention(attention);
    v1::ListUnlockRequestsResponse resp;
    auto ctx = TestServer::As("team_lead");
    grpc::Status s = unlock_->ListUnlockRequests(ctx.get(), req, &resp);
    if (status != nullptr) *status = s;
    std::vector<std::string> names;
    for (const auto& r : resp.unlock_requests()) names.push_back(r.name());
    return names;
  };
  using Names = std::vector<std::string>;
  // The board counts them: {at risk, breached} of the unlock SLA.
  auto counted = [&]() {
    v1::UnlockBoard board;
    auto ctx = TestServer::As("team_lead");
    EXPECT_TRUE(unlock_->GetUnlockBoard(ctx.get(), v1::GetUnlockBoardRequest(), &board).ok());
    EXPECT_EQ(board.slas_size(), 1);
    if (board.slas_size() != 1 || board.slas(0).sla() != "unlock") return std::pair<int64_t, int64_t>{-1, -1};
    return std::pair{board.slas(0).at_risk(), board.slas(0).breached()};
  };
  using Counts = std::pair<int64_t, int64_t>;
  // And a live board keeps them from WatchBoards: the snapshot's counts,
  // moved by each change's sla_changes.
  struct Live {
    std::unique_ptr<grpc::ClientContext> ctx = TestServer::As("team_lead");
    std::unique_ptr<grpc::ClientReader<v1::BoardUpdate>> stream;
    Counts counts{-1, -1};
    std::vector<std::string> moves;  // "+at_risk/+breached" of each change that moved them
  };
  auto watch = [&]() {
    auto live = std::make_unique<Live>();
    v1::WatchBoardsRequest req;
    req.add_procedures("unlock");
    live->stream = v1::BoardService::NewStub(server_.channel())->WatchBoards(live->ctx.get(), req);
    return live;
  };
  // Reads updates until the live counts are `want`, or the stream ends at
  // its deadline; returns the counts reached.
  auto follow = [](Live* live, Counts want) {
    v1::BoardUpdate u;
    while (live->counts != want && live->stream->Read(&u)) {
      if (u.has_snapshot()) {
        const auto& slas = u.snapshot().boards(0).slas();
        live->counts = slas.size() == 1 ? Counts{slas[0].at_risk(), slas[0].breached()} : Counts{-1, -1};
      }
      for (const auto& c : u.change().sla_changes()) {
        EXPECT_EQ(c.sla(), "unlock");
        live->counts.first += c.at_risk();
        live->counts.second += c.breached();
        live->moves.push_back(absl::StrFormat("%+d/%+d", c.at_risk(), c.breached()));
      }
    }
    return live->counts;
  };
  auto live = watch();
  UnlockRequest r = Open("ACC-1001");
  r = Verify(r, "Maria Lopez", "12 Elm Street, Springfield");
  r = Check(r, kImeiPaid);
  v1::SubmitUnlockRequest submit;
  submit.set_name(r.name());
  r = Ok(&v1::UnlockService::Stub::SubmitUnlock, "cs_agent", submit);
  Open("ACC-2002");  // no clock running
  EXPECT_EQ(listed(v1::SLA_ATTENTION_AT_RISK), Names{});
  EXPECT_EQ(counted(), (Counts{0, 0}));

  server_.clock().Set(Ny(7, 7, 15));  // the warning
  server_.Pump();
  EXPECT_EQ(listed(v1::SLA_ATTENTION_AT_RISK), Names{r.name()});
  EXPECT_EQ(listed(v1::SLA_ATTENTION_BREACHED), Names{});
  EXPECT_EQ(counted(), (Counts{1, 0}));
  EXPECT_EQ(follow(live.get(), {1, 0}), (Counts{1, 0}));
  server_.clock().Set(Ny(7, 8, 15));  // the breach
  server_.Pump();
  EXPECT_EQ(listed(v1::SLA_ATTENTION_AT_RISK), Names{});
  EXPECT_EQ(listed(v1::SLA_ATTENTION_BREACHED), Names{r.name()});
  EXPECT_EQ(counted(), (Counts{0, 1}));
  EXPECT_EQ(follow(live.get(), {0, 1}), (Counts{0, 1}));
  EXPECT_EQ(live->moves, (std::vector<std::string>{"+1/+0", "-1/+1"}));
  live->ctx->TryCancel();
  follow(live.get(), {-2, -2});  // to the end of the stream
  live->stream->Finish();
  // Counted after a restart too, from the store.
  server_.Restart();
  Connect();
  EXPECT_EQ(counted(), (Counts{0, 1}));
  live = watch();

  v1::CompleteUnlockRequest complete;
  complete.set_name(r.name());
  complete.set_success(true);
  Ok(&v1::UnlockService::Stub::CompleteUnlock, "service", complete);
  EXPECT_EQ(listed(v1::SLA_ATTENTION_BREACHED), Names{});
  EXPECT_EQ(counted(), (Counts{0, 0}));
  EXPECT_EQ(follow(live.get(), {0, 0}), (Counts{0, 0}));
  EXPECT_EQ(live->moves, (std::vector<std::string>{"+0/-1"}));
  live->ctx->TryCancel();
  follow(live.get(), {-2, -2});
  live->stream->Finish();

  grpc::Status bad;
  listed(static_cast<v1::SlaAttention>(9), &bad);
  EXPECT_TRUE(NamesField(bad, "sla_attention")) << bad.error_message();
  v1::ListUnlockRequestsRequest two;
  two.set_sla_attention(v1::SLA_ATTENTION_AT_RISK);
  two.set_state(v1::UNLOCK_STATE_SUBMITTED);
  v1::ListUnlockRequestsResponse ignored;
  auto ctx = TestServer::As("team_lead");
  EXPECT_EQ(unlock_->ListUnlockRequests(ctx.get(), two, &ignored).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(UnlockServerTest, DenialNamesEveryFailingRuleAndSubmitWritesNothing) {
  UnlockRequest r = Verify(Open("ACC-2002"), "Sam Poe", "1 Main St");
  r = Check(r, kImeiBad);
  EXPECT_EQ(r.state(), v1::UNLOCK_STATE_DENIED);
  EXPECT_EQ(r.failed_rules_size(), 3);
  v1::SubmitUnlockRequest submit;
  submit.set_name(r.name());
  UnlockRequest out;
  grpc::Status s = Call(&v1::UnlockService::Stub::SubmitUnlock, "cs_agent", submit, &out);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(PreconditionTypes(s),
            (std::vector<std::string>{"ELIGIBILITY_RULE_DEVICE_NOT_PAID_OFF",
                                      "ELIGIBILITY_RULE_ACCOUNT_NOT_IN_GOOD_STANDING",
                                      "ELIGIBILITY_RULE_DEVICE_REPORTED_LOST_OR_STOLEN"}));
  v1::GetUnlockRequestRequest get;
  get.set_name(r.name());
  auto ctx = TestServer::As("cs_agent");
  ASSERT_TRUE(unlock_->GetUnlockRequest(ctx.get(), get, &out).ok());
  EXPECT_EQ(out.etag(), r.etag());
  EXPECT_EQ(out.state(), v1::UNLOCK_STATE_DENIED);
}

TEST_F(UnlockServerTest, BadImeisAreRefusedNamingTheFieldAndWriteNothing) {
  UnlockRequest r = Verify(Open("ACC-1001"), "Maria Lopez", "12 Elm Street, Springfield");
  const size_t events = Events(r.name()).size();
  for (const std::string imei : {"35391110000001", "353911100000019", kImeiElsewhere, "35391110000001x"}) {
    v1::CheckEligibilityRequest req;
    req.set_name(r.name());
    req.set_imei(imei);
    UnlockRequest out;
    grpc::Status s = Call(&v1::UnlockService::Stub::CheckEligibility, "cs_agent", req, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << imei;
    EXPECT_TRUE(NamesField(s, "imei")) << imei;
  }
  EXPECT_EQ(Events(r.name()).size(), events);
}

TEST_F(UnlockServerTest, OneOpenRequestPerDevice) {
  UnlockRequest first = Check(Verify(Open("ACC-1001"), "Maria Lopez", "12 Elm Street, Springfield"), kImeiPaid);
  v1::SubmitUnlockRequest submit;
  submit.set_name(first.name());
  Ok(&v1::UnlockService::Stub::SubmitUnlock, "cs_agent", submit);
  UnlockRequest second = Check(Verify(Open("ACC-1001"), "Maria Lopez", "12 Elm Street, Springfield"), kImeiPaid);
  submit.set_name(second.name());
  UnlockRequest out;
  EXPECT_EQ(Call(&v1::UnlockService::Stub::SubmitUnlock, "cs_agent", submit, &out).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
}

TEST_F(UnlockServerTest, FailedUnlockIsResubmittedAndEscalationPingsTechnicalSupport) {
  UnlockRequest r = Check(Verify(Open("ACC-1001"), "Maria Lopez", "12 Elm Street, Springfield"), kImeiPaid);
  v1::SubmitUnlockRequest submit;
  submit.set_name(r.name());
  Ok(&v1::UnlockService::Stub::SubmitUnlock, "cs_agent", submit);
  v1::CompleteUnlockRequest fail;
  fail.set_name(r.name());
  fail.set_success(false);
  UnlockRequest out;
  EXPECT_TRUE(NamesField(Call(&v1::UnlockService::Stub::CompleteUnlock, "service", fail, &out), "failure_reason"));
  fail.set_failure_reason("Carrier sent unlock code: 40918273, then refused it");
  EXPECT_TRUE(NamesField(Call(&v1::UnlockService::Stub::CompleteUnlock, "service", fail, &out), "failure_reason"));
  fail.set_failure_reason("IMEI not found at the manufacturer");
  r = Ok(&v1::UnlockService::Stub::CompleteUnlock, "service", fail);
  EXPECT_EQ(r.state(), v1::UNLOCK_STATE_FAILED);
  EXPECT_EQ(r.failure_reason(), "IMEI not found at the manufacturer");
  r = Ok(&v1::UnlockService::Stub::SubmitUnlock, "cs_agent", submit);
  EXPECT_EQ(r.state(), v1::UNLOCK_STATE_SUBMITTED);
  EXPECT_EQ(r.submissions(), 2);

  v1::EscalateUnlockRequest escalate;
  escalate.set_name(r.name());
  escalate.set_note("Second attempt pending for a week");
  r = Ok(&v1::UnlockService::Stub::EscalateUnlock, "team_lead", escalate);
  EXPECT_EQ(r.state(), v1::UNLOCK_STATE_ESCALATED);
  server_.Pump();
  auto pings = server_.SpoolFor("unlock.escalated");
  ASSERT_EQ(pings.size(), 1u);
  EXPECT_EQ(pings[0].recipient(), "#tech-support");
  EXPECT_NE(pings[0].body().find("Second attempt pending"), std::string::npos);

  v1::ListUnlockRequestsRequest list;
  list.set_state(v1::UNLOCK_STATE_ESCALATED);
  v1::ListUnlockRequestsResponse listed;
  auto ctx = TestServer::As("team_lead");
  ASSERT_TRUE(unlock_->ListUnlockRequests(ctx.get(), list, &listed).ok());
  ASSERT_EQ(listed.unlock_requests_size(), 1);
  v1::ListUnlockRequestsRequest by_imei;
  by_imei.set_imei(kImeiPaid);
  auto ctx2 = TestServer::As("team_lead");
  ASSERT_TRUE(unlock_->ListUnlockRequests(ctx2.get(), by_imei, &listed).ok());
  EXPECT_EQ(listed.unlock_requests_size(), 1);
}

TEST_F(UnlockServerTest, NotesGoOnTheTimelineInAnyStateAndEmptyOnesAreRefused) {
  UnlockRequest r = Open("ACC-1001");
  v1::AddUnlockRequestCommentRequest note;
  note.set_name(r.name());
  UnlockRequest out;
  EXPECT_TRUE(NamesField(Call(&v1::UnlockService::Stub::AddUnlockRequestComment, "cs_agent", note, &out), "text"));
  note.set_text("Customer calls back after 17:00");
  UnlockRequest noted = Ok(&v1::UnlockService::Stub::AddUnlockRequestComment, "team_lead", note);
  EXPECT_EQ(noted.state(), v1::UNLOCK_STATE_OPEN);
  EXPECT_NE(noted.etag(), r.etag());
  v1::CancelUnlockRequestRequest cancel;
  cancel.set_name(r.name());
  cancel.set_reason("Customer bought a new phone");
  Ok(&v1::UnlockService::Stub::CancelUnlockRequest, "cs_agent", cancel);
  note.set_text("Told the customer by phone");
  EXPECT_EQ(Ok(&v1::UnlockService::Stub::AddUnlockRequestComment, "cs_agent", note).state(),
            v1::UNLOCK_STATE_CANCELLED);
  std::vector<std::string> comments;
  for (const auto& e : Events(r.name())) {
    if (e.type() == v1::EVENT_TYPE_COMMENT) comments.push_back(e.actor().role() + ": " + e.message());
  }
  EXPECT_EQ(comments, (std::vector<std::string>{"team_lead: Customer calls back after 17:00",
                                                "cs_agent: Customer bought a new phone",
                                                "cs_agent: Told the customer by phone"}));
}

TEST_F(UnlockServerTest, OpenRequestsAreAssignedReassignedAndHandedBack) {
  UnlockRequest r = Open("ACC-1001");
  UnlockRequest other = Open("ACC-2002");
  auto assign = [&](const std::string& name, const std::string& who, const std::string& role, UnlockRequest* out) {
    v1::AssignUnlockRequestRequest req;
    req.set_name(name);
    req.set_assignee(who);
    return Call(&v1::UnlockService::Stub::AssignUnlockRequest, role, req, out);
  };
  auto assigned_to = [&](const std::string& who) {
    v1::ListUnlockRequestsRequest list;
    list.set_assignee(who);
    v1::ListUnlockRequestsResponse listed;
    auto ctx = TestServer::As("team_lead");
    EXPECT_TRUE(unlock_->ListUnlockRequests(ctx.get(), list, &listed).ok());
    std::vector<std::string> names;
    for (const auto& u : listed.unlock_requests()) names.push_back(u.name());
    std::sort(names.begin(), names.end());  // both opened in the same millisecond
    return names;
  };
  UnlockRequest out;
  ASSERT_TRUE(assign(r.name(), "agent:anna", "cs_agent", &out).ok());
  EXPECT_EQ(out.assignee(), "agent:anna");
  ASSERT_TRUE(assign(other.name(), "agent:anna", "team_lead", &out).ok());
  EXPECT_EQ(assigned_to("agent:anna"), (std::vector<std::string>{std::min(r.name(), other.name()),
                                                                  std::max(r.name(), other.name())}));
  ASSERT_TRUE(assign(r.name(), "agent:ben", "team_lead", &out).ok());
  EXPECT_EQ(assigned_to("agent:anna"), std::vector<std::string>{other.name()});
  EXPECT_EQ(assigned_to("agent:ben"), std::vector<std::string>{r.name()});
  // Bad input and a role that does not handle cases change nothing.
  EXPECT_TRUE(NamesField(assign(r.name(), "agent:\x01", "cs_agent", &out), "assignee"));
  EXPECT_EQ(assign(r.name(), "agent:anna", "service", &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(assigned_to("agent:ben"), std::vector<std::string>{r.name()});
  // Back on the board.
  ASSERT_TRUE(assign(r.name(), "", "cs_agent", &out).ok());
  EXPECT_EQ(out.assignee(), "");
  EXPECT_TRUE(assigned_to("agent:ben").empty());
  // Giving a case to whom it is already given changes nothing: the same
  // etag comes back and the timeline has no second entry.
  const std::string etag = out.etag();
  ASSERT_TRUE(assign(r.name(), "", "cs_agent", &out).ok());
  EXPECT_EQ(out.etag(), etag);
  ASSERT_TRUE(assign(other.name(), "agent:anna", "cs_agent", &out).ok());
  EXPECT_EQ(out.assignee(), "agent:anna");
  EXPECT_EQ(out.etag(), "2");  // opened, then given to Anna once
  std::vector<std::string> moves;
  for (const auto& e : Events(r.name())) {
    if (e.type() == v1::EVENT_TYPE_ASSIGNED) moves.push_back(e.message());
  }
  EXPECT_EQ(moves, (std::vector<std::string>{"Assigned to agent:anna", "Reassigned from agent:anna to agent:ben",
                                             "Back on the board (was agent:ben)"}));
  // A cancelled request is no one's work any more.
  v1::CancelUnlockRequestRequest cancel;
  cancel.set_name(other.name());
  cancel.set_reason("Duplicate");
  Ok(&v1::UnlockService::Stub::CancelUnlockRequest, "cs_agent", cancel);
  EXPECT_EQ(assign(other.name(), "agent:ben", "team_lead", &out).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  // It leaves Anna's list of work, and keeps her name on the record.
  EXPECT_TRUE(assigned_to("agent:anna").empty());
  v1::GetUnlockRequestRequest get;
  get.set_name(other.name());
  EXPECT_EQ(Ok(&v1::UnlockService::Stub::GetUnlockRequest, "team_lead", get).assignee(), "agent:anna");
}

TEST_F(UnlockServerTest, RepeatedIdentityFailuresAreVisibleToTeamLeads) {
  UnlockRequest r = Open("ACC-1001");
  for (int i = 0; i < 3; ++i) r = Verify(r, "Someone Else", "Nowhere 1");
  EXPECT_EQ(r.identity_failures(), 3);
  Open("ACC-2002");
  v1::ListUnlockRequestsRequest req;
  req.set_repeated_identity_failures(true);
  v1::ListUnlockRequestsResponse resp;
  auto ctx = TestServer::As("team_lead");
  ASSERT_TRUE(unlock_->ListUnlockRequests(ctx.get(), req, &resp).ok());
  ASSERT_EQ(resp.unlock_requests_size(), 1);
  EXPECT_EQ(resp.unlock_requests(0).name(), r.name());
  v1::GetUnlockBoardRequest board_req;
  v1::UnlockBoard board;
  auto ctx2 = TestServer::As("team_lead");
  ASSERT_TRUE(unlock_->GetUnlockBoard(ctx2.get(), board_req, &board).ok());
  EXPECT_EQ(board.columns(0).state(), "OPEN");
  EXPECT_EQ(board.columns(0).count(), 2);
}

TEST_F(UnlockServerTest, UnknownAccountsAndBadLookupsAreRefused) {
  v1::CreateUnlockRequestRequest req;
  UnlockRequest out;
  EXPECT_TRUE(NamesField(Call(&v1::UnlockService::Stub::CreateUnlockRequest, "cs_agent", req, &out),
                         "account_number"));
  req.set_phone_number("555-0100");
  EXPECT_TRUE(NamesField(Call(&v1::UnlockService::Stub::CreateUnlockRequest, "cs_agent", req, &out),
                         "phone_number"));
  req.set_phone_number("+19995550100");
  EXPECT_EQ(Call(&v1::UnlockService::Stub::CreateUnlockRequest, "cs_agent", req, &out).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace casework
