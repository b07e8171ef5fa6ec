// Device protection through a real server: the plan catalogue, enrollment
// with its confirmation, management, and bad input.
#include <thread>

#include "absl/strings/match.h"
#include "casework/v1/admin.grpc.pb.h"
#include "casework/v1/protection.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "server/workflow/enrollment_workflow.h"
#include "storage/repository.h"
#include "tests/testing/test_server.h"

namespace casework {
namespace {

using testing::NamesField;
using testing::TestServer;
using v1::Enrollment;
using Stub = v1::ProtectionClaimService::Stub;

constexpr char kImei[] = "353911100000018";

class ProtectionServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Start();
    stub_ = v1::ProtectionClaimService::NewStub(server_.channel());
    AddPlan("basic", "Basic protection", {v1::PERIL_ACCIDENTAL_DAMAGE, v1::PERIL_THEFT},
            {v1::DEVICE_CATEGORY_PHONE, v1::DEVICE_CATEGORY_TABLET}, 999, false);
    AddPlan("premium", "Premium protection",
            {v1::PERIL_ACCIDENTAL_DAMAGE, v1::PERIL_THEFT, v1::PERIL_MECHANICAL_FAILURE},
            {v1::DEVICE_CATEGORY_PHONE, v1::DEVICE_CATEGORY_TABLET, v1::DEVICE_CATEGORY_LAPTOP},
            1999, false);
    AddPlan("legacy", "Legacy plan", {v1::PERIL_THEFT}, {v1::DEVICE_CATEGORY_PHONE}, 499, true);
  }

  void AddPlan(const std::string& id, const std::string& name, std::vector<v1::Peril> perils,
               std::vector<v1::DeviceCategory> categories, int64_t cents, bool retired) {
    v1::UpdateProtectionPlanRequest req;
    req.set_allow_missing(true);
    auto* p = req.mutable_protection_plan();
    p->set_plan_id(id);
    p->set_display_name(name);
    for (auto x : perils) p->add_covered_perils(x);
    for (auto x : categories) p->add_eligible_categories(x);
    p->mutable_monthly_price()->set_currency_code("USD");
    p->mutable_monthly_price()->set_minor_units(cents);
    p->set_review_business_days(5);
    p->set_retired(retired);
    v1::ProtectionPlan out;
    auto ctx = TestServer::As("admin");
    grpc::Status s = stub_->UpdateProtectionPlan(ctx.get(), req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  v1::CreateEnrollmentRequest NewEnrollment(const std::string& plan) {
    v1::CreateEnrollmentRequest req;
    auto* e = req.mutable_enrollment();
    e->set_plan_id(plan);
    e->mutable_contact()->set_full_name("Lena Park");
    e->mutable_contact()->set_email("Lena.Park@example.com");
    e->mutable_contact()->set_phone_number("+14155550123");
    auto* d = e->add_devices();
    d->set_imei(kImei);
    d->set_category(v1::DEVICE_CATEGORY_PHONE);
    d->set_model("Pixel 8");
    d->set_purchase_date("2026-01-15");
    e->set_payment_method_ref("pm_1Nq8ZxLkdIwHu7ix");
    return req;
  }

  // A premium plan for a tablet known by its serial number.
  v1::CreateEnrollmentRequest NewTabletEnrollment(const std::string& serial) {
    v1::CreateEnrollmentRequest req = NewEnrollment("premium");
    auto* d = req.mutable_enrollment()->mutable_devices(0);
    d->clear_imei();
    d->set_serial_number(serial);
    d->set_category(v1::DEVICE_CATEGORY_TABLET);
    return req;
  }

  // A claim on `e`'s phone; callers change what their case needs.
  static v1::ReportClaimRequest NewClaim(const Enrollment& e, v1::Peril peril, const std::string& date) {
    v1::ReportClaimRequest req;
    req.set_plan_number(e.plan_number());
    req.set_channel(v1::CLAIM_CHANNEL_PHONE);
    req.set_peril(peril);
    req.set_incident_date(date);
    req.set_description("Dropped on the pavement");
    req.set_device(kImei);
    return req;
  }

  v1::Claim Reported(const v1::ReportClaimRequest& req) {
    v1::Claim claim;
    auto ctx = TestServer::As("cs_agent");
    grpc::Status s = stub_->ReportClaim(ctx.get(), req, &claim);
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    return claim;
  }

  template <typename Req>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Enrollment*),
                    const std::string& role, const Req& req, Enrollment* out) {
    auto ctx = TestServer::As(role);
    return ((*stub_).*method)(ctx.get(), req, out);
  }

  template <typename Req>
  Enrollment Ok(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Enrollment*), Req req,
                const Enrollment& on) {
    req.set_name(on.name());
    Enrollment out;
    grpc::Status s = Call(method, "cs_agent", req, &out);
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    return out;
  }

  int Listed(const v1::ListEnrollmentsRequest& req) {
    v1::ListEnrollmentsResponse resp;
    auto ctx = TestServer::As("cs_agent");
    EXPECT_TRUE(stub_->ListEnrollments(ctx.get(), req, &resp).ok());
    return resp.enrollments_size();
  }

  TestServer server_{absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone())};
  std::unique_ptr<Stub> stub_;
};

TEST_F(ProtectionServerTest, PlansAreUpdatedByTheirName) {
  auto update = [&](const v1::UpdateProtectionPlanRequest& req, v1::ProtectionPlan* out) {
    auto ctx = TestServer::As("admin");
    return stub_->UpdateProtectionPlan(ctx.get(), req, out);
  };
  auto get = [&](const std::string& name) {
    v1::GetProtectionPlanRequest req;
    req.set_name(name);
    v1::ProtectionPlan out;
    auto ctx = TestServer::As("cs_agent");
    EXPECT_TRUE(stub_->GetProtectionPlan(ctx.get(), req, &out).ok());
    return out;
  };
  // The resource name alone says which plan, as Get takes it.
  v1::UpdateProtectionPlanRequest req;
  *req.mutable_protection_plan() = get("protectionPlans/premium");
  req.mutable_protection_plan()->clear_plan_id();
  req.mutable_protection_plan()->set_display_name("Premium protection plus");
  v1::ProtectionPlan out;
  grpc::Status s = update(req, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.plan_id(), "premium");
  EXPECT_EQ(get("protectionPlans/premium").display_name(), "Premium protection plus");

  // A name and an id that disagree change neither plan.
  req.mutable_protection_plan()->set_plan_id("basic");
  req.mutable_protection_plan()->clear_etag();
  req.mutable_protection_plan()->set_display_name("Which one?");
  EXPECT_TRUE(NamesField(update(req, &out), "protection_plan.name"));
  req.mutable_protection_plan()->set_name("plans/basic");
  EXPECT_TRUE(NamesField(update(req, &out), "protection_plan.name"));
  EXPECT_EQ(get("protectionPlans/premium").display_name(), "Premium protection plus");
  EXPECT_EQ(get("protectionPlans/basic").display_name(), "Basic protection");
}

// Admins adding the same plan at once: one of them makes it and the others
// are told it exists, instead of overwriting it in turn.
TEST_F(ProtectionServerTest, APlanIsCreatedOnceWhenAdminsRaceToAddIt) {
  constexpr int kAdmins = 6;
  std::vector<grpc::Status> answers(kAdmins);
  std::vector<v1::ProtectionPlan> made(kAdmins);
  std::vector<std::thread> admins;
  for (int i = 0; i < kAdmins; ++i) {
    admins.emplace_back([&, i] {
      v1::CreateProtectionPlanRequest req;
      auto* p = req.mutable_protection_plan();
      p->set_plan_id("gold");
      p->set_display_name("Gold protection " + std::to_string(i));
      p->add_covered_perils(v1::PERIL_THEFT);
      p->add_eligible_categories(v1::DEVICE_CATEGORY_PHONE);
      p->mutable_monthly_price()->set_currency_code("USD");
      p->mutable_monthly_price()->set_minor_units(2999);
      p->set_review_business_days(3);
      auto ctx = TestServer::As("admin");
      answers[i] = stub_->CreateProtectionPlan(ctx.get(), req, &made[i]);
    });
  }
  for (auto& t : admins) t.join();
  int winner = -1;
  for (int i = 0; i < kAdmins; ++i) {
    if (answers[i].ok()) {
      EXPECT_EQ(winner, -1) << "a second create succeeded";
      winner = i;
    } else {
      EXPECT_EQ(answers[i].error_code(), grpc::StatusCode::ALREADY_EXISTS) << answers[i].error_message();
      EXPECT_EQ(answers[i].error_message(), "protectionPlans/gold already exists");
    }
  }
  ASSERT_NE(winner, -1);
  EXPECT_EQ(made[winner].etag(), "1");
  v1::GetProtectionPlanRequest get;
  get.set_name("protectionPlans/gold");
  v1::ProtectionPlan stored;
  auto ctx = TestServer::As("cs_agent");
  ASSERT_TRUE(stub_->GetProtectionPlan(ctx.get(), get, &stored).ok());
  EXPECT_EQ(stored.display_name(), made[winner].display_name());
  EXPECT_EQ(stored.etag(), "1");

  // A plan that exists is not created again, and a bad one names its field.
  v1::CreateProtectionPlanRequest again;
  *again.mutable_protection_plan() = stored;
  again.mutable_protection_plan()->clear_name();
  again.mutable_protection_plan()->set_plan_id("basic");
  v1::ProtectionPlan out;
  auto ctx2 = TestServer::As("admin");
  EXPECT_EQ(stub_->CreateProtectionPlan(ctx2.get(), again, &out).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  again.mutable_protection_plan()->set_plan_id("silver");
  again.mutable_protection_plan()->set_review_business_days(0);
  auto ctx3 = TestServer::As("admin");
  EXPECT_TRUE(NamesField(stub_->CreateProtectionPlan(ctx3.get(), again, &out), "protection_plan.review_business_days"));
  auto ctx4 = TestServer::As("cs_agent");
  get.set_name("protectionPlans/silver");
  EXPECT_EQ(stub_->GetProtectionPlan(ctx4.get(), get, &stored).error_code(), grpc::StatusCode::NOT_FOUND);
}

// An update_mask changes the fields it names and keeps the rest; the
// whole plan is still checked, and a change made since the read is kept.
TEST_F(ProtectionServerTest, AnUpdateMaskChangesOnlyTheFieldsItNames) {
  auto update = [&](v1::UpdateProtectionPlanRequest req, v1::ProtectionPlan* out) {
    auto ctx = TestServer::As("admin");
    return stub_->UpdateProtectionPlan(ctx.get(), req, out);
  };
  auto get = [&](const std::string& id) {
    v1::GetProtectionPlanRequest req;
    req.set_name("protectionPlans/" + id);
    v1::ProtectionPlan out;
    auto ctx = TestServer::As("cs_agent");
    grpc::Status s = stub_->GetProtectionPlan(ctx.get(), req, &out);
    EXPECT_TRUE(s.ok() || s.error_code() == grpc::StatusCode::NOT_FOUND) << s.error_message();
    return out;
  };
  const v1::ProtectionPlan before = get("premium");
  // Only the name is sent, with a value for a field outside the mask.
  v1::UpdateProtectionPlanRequest req;
  req.mutable_protection_plan()->set_plan_id("premium");
  req.mutable_protection_plan()->set_display_name("Premium plus");
  req.mutable_protection_plan()->set_retired(true);
  req.mutable_update_mask()->add_paths("display_name");
  v1::ProtectionPlan out;
  grpc::Status s = update(req, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::ProtectionPlan expected = before;
  expected.set_display_name("Premium plus");
  expected.set_etag("2");
  EXPECT_EQ(out.SerializeAsString(), expected.SerializeAsString()) << out.DebugString();
  EXPECT_EQ(get("premium").SerializeAsString(), expected.SerializeAsString());

  // A field inside a message field; the currency stays.
  req.mutable_update_mask()->set_paths(0, "monthly_price.minor_units");
  req.mutable_protection_plan()->mutable_monthly_price()->set_minor_units(2499);
  ASSERT_TRUE(update(req, &out).ok());
  EXPECT_EQ(out.monthly_price().minor_units(), 2499);
  EXPECT_EQ(out.monthly_price().currency_code(), "USD");
  EXPECT_EQ(out.display_name(), "Premium plus");

  // The merged plan is checked whole: emptying a list it needs is refused.
  req.mutable_update_mask()->set_paths(0, "covered_perils");
  EXPECT_TRUE(NamesField(update(req, &out), "protection_plan.covered_perils"));
  // Paths the plan does not have, and "*" beside others, name the mask.
  req.mutable_update_mask()->set_paths(0, "price");
  EXPECT_TRUE(NamesField(update(req, &out), "update_mask"));
  req.mutable_update_mask()->set_paths(0, "*");
  req.mutable_update_mask()->add_paths("retired");
  EXPECT_TRUE(NamesField(update(req, &out), "update_mask"));
  EXPECT_EQ(get("premium").etag(), "3");
  // A stale etag is refused as without a mask.
  req.mutable_update_mask()->Clear();
  req.mutable_update_mask()->add_paths("retired");
  req.mutable_protection_plan()->set_etag("2");
  EXPECT_EQ(update(req, &out).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_FALSE(get("premium").retired());
  req.mutable_protection_plan()->clear_etag();
  ASSERT_TRUE(update(req, &out).ok());
  EXPECT_TRUE(out.retired());
  EXPECT_EQ(out.display_name(), "Premium plus");

  // "*" replaces the plan whole, as no mask does.
  req.mutable_update_mask()->set_paths(0, "*");
  EXPECT_TRUE(NamesField(update(req, &out), "protection_plan.covered_perils"));
  // A plan that does not exist: NOT_FOUND, or made as sent with allow_missing.
  req.mutable_update_mask()->set_paths(0, "display_name");
  *req.mutable_protection_plan() = before;
  req.mutable_protection_plan()->clear_name();
  req.mutable_protection_plan()->clear_etag();
  req.mutable_protection_plan()->set_plan_id("platinum");
  EXPECT_EQ(update(req, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  req.set_allow_missing(true);
  ASSERT_TRUE(update(req, &out).ok());
  EXPECT_EQ(get("platinum").covered_perils_size(), before.covered_perils_size());
}

TEST_F(ProtectionServerTest, FieldsTheServerSetsAreIgnoredOnEnrollment) {
  v1::CreateEnrollmentRequest req = NewEnrollment("basic");
  testing::FillOutputOnly(req.mutable_enrollment());
  EXPECT_EQ(testing::OutputOnlyTaken(req.enrollment(), req.enrollment()).size(), 8u);
  v1::Enrollment out;
  grpc::Status s = Call(&Stub::CreateEnrollment, "cs_agent", req, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(testing::OutputOnlyTaken(req.enrollment(), out), std::vector<std::string>{});
  EXPECT_EQ(out.state(), v1::ENROLLMENT_STATE_ACTIVE);
  EXPECT_TRUE(absl::StartsWith(out.plan_number(), "DP-")) << out.plan_number();
}

TEST_F(ProtectionServerTest, EnrollConfirmAndManage) {
  Enrollment e;
  ASSERT_TRUE(Call(&Stub::CreateEnrollment, "cs_agent", NewEnrollment("basic"), &e).ok());
  EXPECT_TRUE(workflow::IsPlanNumber(e.plan_number())) << e.plan_number();
  EXPECT_EQ(e.contact_status(), v1::CONTACT_STATUS_VERIFIED);
  server_.Pump();
  auto confirmations = server_.SpoolFor("enrollment.confirmation");
  ASSERT_EQ(confirmations.size(), 1u);
  EXPECT_EQ(confirmations[0].recipient(), "Lena.Park@example.com");
  EXPECT_NE(confirmations[0].subject().find(e.plan_number()), std::string::npos);
  EXPECT_NE(confirmations[0].body().find("USD 9.99"), std::string::npos);
  EXPECT_NE(confirmations[0].body().find("accidental damage, theft"), std::string::npos);

  v1::ListEnrollmentsRequest by;
  by.set_plan_number(e.plan_number());
  EXPECT_EQ(Listed(by), 1);
  by.Clear();
  by.set_email("lena.park@EXAMPLE.com");
  EXPECT_EQ(Listed(by), 1);
  by.Clear();
  by.set_device(kImei);
  EXPECT_EQ(Listed(by), 1);

  // A laptop is not covered by the basic plan; after an upgrade it is.
  v1::AddProtectedDeviceRequest laptop;
  laptop.mutable_device()->set_serial_number("C02XK1ABJGH5");
  laptop.mutable_device()->set_category(v1::DEVICE_CATEGORY_LAPTOP);
  laptop.mutable_device()->set_purchase_date("2025-11-30");
  laptop.set_name(e.name());
  Enrollment out;
  EXPECT_TRUE(NamesField(Call(&Stub::AddProtectedDevice, "cs_agent", laptop, &out), "device.category"));
  v1::ChangePlanRequest upgrade;
  upgrade.set_plan_id("premium");
  e = Ok(&Stub::ChangePlan, upgrade, e);
  EXPECT_EQ(e.plan_id(), "premium");
  e = Ok(&Stub::AddProtectedDevice, laptop, e);
  EXPECT_EQ(e.devices_size(), 2);
  v1::RemoveProtectedDeviceRequest remove;
  remove.set_device(kImei);
  e = Ok(&Stub::RemoveProtectedDevice, remove, e);
  ASSERT_EQ(e.devices_size(), 1);
  remove.set_device("C02XK1ABJGH5");
  remove.set_name(e.name());
  EXPECT_EQ(Call(&Stub::RemoveProtectedDevice, "cs_agent", remove, &out).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  v1::UpdateEnrollmentContactRequest contact;
  contact.mutable_contact()->set_full_name("Lena Park");
  contact.mutable_contact()->set_email("lena@example.org");
  contact.mutable_contact()->set_phone_number("+14155550199");
  contact.set_etag(e.etag());
  e = Ok(&Stub::UpdateEnrollmentContact, contact, e);
  EXPECT_EQ(e.contact().email(), "lena@example.org");
  // The old etag is stale now.
  contact.set_name(e.name());
  EXPECT_EQ(Call(&Stub::UpdateEnrollmentContact, "cs_agent", contact, &out).error_code(),
            grpc::StatusCode::ABORTED);

  v1::CancelEnrollmentRequest cancel;
  cancel.set_reason("Customer switched provider");
  e = Ok(&Stub::CancelEnrollment, cancel, e);
  EXPECT_EQ(e.state(), v1::ENROLLMENT_STATE_CANCELLED);

  // Notes go on the timeline in any state; an empty one is refused.
  v1::AddEnrollmentCommentRequest note;
  note.set_name(e.name());
  EXPECT_TRUE(NamesField(Call(&Stub::AddEnrollmentComment, "cs_agent", note, &out), "text"));
  note.set_text("Customer called: wants the last month refunded");
  e = Ok(&Stub::AddEnrollmentComment, note, e);
  EXPECT_EQ(e.state(), v1::ENROLLMENT_STATE_CANCELLED);
  v1::ListEnrollmentEventsRequest events_req;
  events_req.set_parent(e.name());
  v1::ListEnrollmentEventsResponse events;
  auto ctx = TestServer::As("team_lead");
  ASSERT_TRUE(stub_->ListEnrollmentEvents(ctx.get(), events_req, &events).ok());
  ASSERT_GT(events.events_size(), 0);
  const auto& last = events.events(events.events_size() - 1);
  EXPECT_EQ(last.type(), v1::EVENT_TYPE_COMMENT);
  EXPECT_EQ(last.message(), "Customer called: wants the last month refunded");
  EXPECT_EQ(last.actor().role(), "cs_agent");
}

// A device is on one active enrollment at a time: a second plan for it is
// refused naming the plan that has it, until that plan lets it go.
TEST_F(ProtectionServerTest, ADeviceIsProtectedByOnePlanAtATime) {
  Enrollment first;
  ASSERT_TRUE(Call(&Stub::CreateEnrollment, "cs_agent", NewEnrollment("basic"), &first).ok());
  Enrollment second;
  grpc::Status s = Call(&Stub::CreateEnrollment, "cs_agent", NewEnrollment("premium"), &second);
  EXPECT_TRUE(NamesField(s, "enrollment.devices[0].imei"));
  EXPECT_NE(s.error_message().find("already protected by plan " + first.plan_number()), std::string::npos)
      << s.error_message();
  v1::ListEnrollmentsRequest by_device;
  by_device.set_device(kImei);
  EXPECT_EQ(Listed(by_device), 1);

  // Another enrollment may not take it either, until the first lets it go.
  const v1::CreateEnrollmentRequest tablet = NewTabletEnrollment("DMPX1234ABCD");
  ASSERT_TRUE(Call(&Stub::CreateEnrollment, "cs_agent", tablet, &second).ok());
  v1::AddProtectedDeviceRequest add;
  add.set_name(second.name());
  add.mutable_device()->set_imei(kImei);
  add.mutable_device()->set_category(v1::DEVICE_CATEGORY_PHONE);
  add.mutable_device()->set_purchase_date("2026-01-15");
  Enrollment out;
  s = Call(&Stub::AddProtectedDevice, "cs_agent", add, &out);
  EXPECT_TRUE(NamesField(s, "device.imei"));
  EXPECT_NE(s.error_message().find(first.plan_number()), std::string::npos) << s.error_message();
  v1::CancelEnrollmentRequest cancel;
  cancel.set_reason("Phone sold");
  Ok(&Stub::CancelEnrollment, cancel, first);
  second = Ok(&Stub::AddProtectedDevice, add, second);
  EXPECT_EQ(second.devices_size(), 2);
  // And the first cannot come back to it: it is cancelled, and a new plan
  // for the phone is refused while the second has it.
  s = Call(&Stub::CreateEnrollment, "cs_agent", NewEnrollment("basic"), &out);
  EXPECT_NE(s.error_message().find("already protected by plan " + second.plan_number()), std::string::npos)
      << s.error_message();
}

// A serial number is the same device however its letters are typed.
TEST_F(ProtectionServerTest, SerialNumbersMatchInEitherCase) {
  const v1::CreateEnrollmentRequest tablet = NewTabletEnrollment("dmpx1234abcd");
  Enrollment e;
  ASSERT_TRUE(Call(&Stub::CreateEnrollment, "cs_agent", tablet, &e).ok());
  v1::ListEnrollmentsRequest by_device;
  by_device.set_device("DMPX1234ABCD");
  EXPECT_EQ(Listed(by_device), 1);
  Enrollment out;
  EXPECT_TRUE(NamesField(Call(&Stub::CreateEnrollment, "cs_agent", NewTabletEnrollment("DMPX1234ABCD"), &out),
                         "enrollment.devices[0].serial_number"));
  v1::ReportClaimRequest report = NewClaim(e, v1::PERIL_ACCIDENTAL_DAMAGE, "2026-03-02");
  report.set_device("Dmpx1234Abcd");
  EXPECT_EQ(Reported(report).state(), v1::CLAIM_STATE_REPORTED);
  v1::AddProtectedDeviceRequest phone;
  phone.mutable_device()->set_imei(kImei);
  phone.mutable_device()->set_category(v1::DEVICE_CATEGORY_PHONE);
  phone.mutable_device()->set_purchase_date("2026-01-15");
  e = Ok(&Stub::AddProtectedDevice, phone, e);
  v1::RemoveProtectedDeviceRequest remove;
  remove.set_device("DMPX1234ABCD");
  e = Ok(&Stub::RemoveProtectedDevice, remove, e);
  ASSERT_EQ(e.devices_size(), 1);
  EXPECT_EQ(e.devices(0).imei(), kImei);
}

// An older version indexed a serial number as it was typed; the one-time
// upgrade puts its entry in capitals, where lists now look.
TEST_F(ProtectionServerTest, AnOlderStoresLowerCaseSerialIsIndexedAgainOnce) {
  const v1::CreateEnrollmentRequest tablet = NewTabletEnrollment("dmpx1234abcd");
  Enrollment e;
  ASSERT_TRUE(Call(&Stub::CreateEnrollment, "cs_agent", tablet, &e).ok());
  // What the older version wrote.
  const std::string id = e.name().substr(e.name().find('/') + 1);
  auto& repo = server_.server().repository();
  auto stored = repo.GetCase(id);
  ASSERT_TRUE(stored.ok()) << stored.status();
  storage::CaseMutation m;
  m.case_id = id;
  m.expected_version = stored->version;
  m.record = stored->record;
  m.index_remove.push_back({"device", "enrollment/DMPX1234ABCD"});
  m.index_add.push_back({"device", "enrollment/dmpx1234abcd"});
  ASSERT_TRUE(repo.Commit(m).ok());
  ASSERT_TRUE(repo.WriteRecords({{"store_upgrades", "former_index_keys", "", true}}).ok());
  v1::ListEnrollmentsRequest by_device;
  by_device.set_device("dmpx1234abcd");
  EXPECT_EQ(Listed(by_device), 0);

  auto& engine = server_.server().engine();
  EXPECT_EQ(*engine.ReplaceFormerIndexKeys(), 1);
  EXPECT_EQ(Listed(by_device), 1);
  auto stale = engine.List("enrollment", {"device", "dmpx1234abcd"}, "", 10);
  ASSERT_TRUE(stale.ok()) << stale.status();
  EXPECT_TRUE(stale->cases.empty());
  EXPECT_EQ(*engine.ReplaceFormerIndexKeys(), 0);
}

TEST_F(ProtectionServerTest, BadEnrollmentsNameTheFieldAndWriteNothing) {
  auto req = NewEnrollment("basic");
  req.mutable_enrollment()->set_payment_method_ref("4111 1111 1111 1111");
  req.mutable_enrollment()->mutable_contact()->set_phone_number("415-555-0123");
  req.mutable_enrollment()->mutable_devices(0)->set_imei("353911100000019");
  req.mutable_enrollment()->mutable_devices(0)->set_purchase_date("2027-01-01");
  Enrollment out;
  grpc::Status s = Call(&Stub::CreateEnrollment, "cs_agent", req, &out);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(NamesField(s, "enrollment.payment_method_ref"));
  EXPECT_TRUE(NamesField(s, "enrollment.contact.phone_number"));
  EXPECT_TRUE(NamesField(s, "enrollment.devices[0].imei"));
  EXPECT_TRUE(NamesField(s, "enrollment.devices[0].purchase_date"));
  EXPECT_TRUE(NamesField(Call(&Stub::CreateEnrollment, "cs_agent", NewEnrollment("gold"), &out),
                         "enrollment.plan_id"));
  EXPECT_TRUE(NamesField(Call(&Stub::CreateEnrollment, "cs_agent", NewEnrollment("legacy"), &out),
                         "enrollment.plan_id"));
  v1::ListEnrollmentsRequest all;
  EXPECT_EQ(Listed(all), 0);
  server_.Pump();
  EXPECT_TRUE(server_.Spool().empty());
}

absl::Time Utc(int m, int d, int hh) {
  return absl::FromCivil(absl::CivilSecond(2026, m, d, hh, 0, 0), absl::UTCTimeZone());
}

TEST_F(ProtectionServerTest, CoverageRulesDenyAndExplain) {
  Enrollment e;
  ASSERT_TRUE(Call(&Stub::CreateEnrollment, "cs_agent", NewEnrollment("basic"), &e).ok());
  struct Row {
    v1::Peril peril;
    std::string date;
    std::string device;
    std::vector<v1::DenialReason> reasons;
  } rows[] = {
      {v1::PERIL_ACCIDENTAL_DAMAGE, "2026-02-20", kImei, {v1::DENIAL_REASON_PRE_EXISTING}},
      {v1::PERIL_MECHANICAL_FAILURE, "2026-03-02", kImei, {v1::DENIAL_REASON_PERIL_NOT_COVERED}},
      {v1::PERIL_THEFT, "2026-03-02", "490154203237518", {v1::DENIAL_REASON_DEVICE_NOT_ON_PLAN}},
  };
  for (const auto& row : rows) {
    v1::ReportClaimRequest report = NewClaim(e, row.peril, row.date);
    report.set_device(row.device);
    v1::Claim claim;
    auto ctx = TestServer::As("cs_agent");
    ASSERT_TRUE(stub_->ReportClaim(ctx.get(), report, &claim).ok());
    EXPECT_EQ(claim.state(), v1::CLAIM_STATE_DENIED) << row.date;
    std::vector<v1::DenialReason> reasons;
    for (int r : claim.denial_reasons()) reasons.push_back(static_cast<v1::DenialReason>(r));
    EXPECT_EQ(reasons, row.reasons);
  }
  server_.Pump();
  auto denied = server_.SpoolFor("claim.denied");
  ASSERT_EQ(denied.size(), 3u);
  int explained = 0;
  for (const auto& m : denied) {
    explained += m.body().find("before the device was protected") != std::string::npos;
    explained += m.body().find("does not cover this kind of incident") != std::string::npos;
    explained += m.body().find("the device is not on the plan") != std::string::npos;
  }
  EXPECT_EQ(explained, 3);
  // Once cancelled, nothing is covered any more.
  v1::CancelEnrollmentRequest cancel;
  cancel.set_reason("Customer moved abroad");
  Ok(&Stub::CancelEnrollment, cancel, e);
  const v1::ReportClaimRequest late = NewClaim(e, v1::PERIL_THEFT, "2026-03-02");
  v1::Claim lapsed;
  {
    auto ctx = TestServer::As("cs_agent");
    ASSERT_TRUE(stub_->ReportClaim(ctx.get(), late, &lapsed).ok());
  }
  ASSERT_EQ(lapsed.denial_reasons_size(), 1);
  EXPECT_EQ(lapsed.denial_reasons(0), v1::DENIAL_REASON_ENROLLMENT_LAPSED);
  // A plan number with a wrong check digit is refused naming the field.
  v1::ReportClaimRequest bad;
  bad.set_plan_number(e.plan_number().substr(0, 13) + (e.plan_number()[13] == '0' ? "1" : "0"));
  v1::Claim claim;
  auto ctx = TestServer::As("cs_agent");
  EXPECT_TRUE(NamesField(stub_->ReportClaim(ctx.get(), bad, &claim), "plan_number"));
}

// Claims are judged by the plan in force on the incident date. On the day
// the plan changed both were, so a peril either of them covers goes to
// review rather than being denied on the spot.
TEST_F(ProtectionServerTest, ClaimsAreJudgedByThePlanInForceOnTheIncidentDate) {
  Enrollment e;
  ASSERT_TRUE(Call(&Stub::CreateEnrollment, "cs_agent", NewEnrollment("premium"), &e).ok());
  server_.clock().Set(Utc(3, 10, 15));
  v1::ChangePlanRequest downgrade;
  downgrade.set_plan_id("basic");
  e = Ok(&Stub::ChangePlan, downgrade, e);
  ASSERT_EQ(e.plan_id(), "basic");
  server_.clock().Set(Utc(3, 12, 10));
  auto report = [&](const std::string& date) {
    return Reported(NewClaim(e, v1::PERIL_MECHANICAL_FAILURE, date));
  };
  EXPECT_EQ(report("2026-03-05").state(), v1::CLAIM_STATE_REPORTED);
  EXPECT_EQ(report("2026-03-10").state(), v1::CLAIM_STATE_REPORTED);
  const v1::Claim after = report("2026-03-11");
  EXPECT_EQ(after.state(), v1::CLAIM_STATE_DENIED);
  ASSERT_EQ(after.denial_reasons_size(), 1);
  EXPECT_EQ(after.denial_reasons(0), v1::DENIAL_REASON_PERIL_NOT_COVERED);
}

// The decision date the customer is told is the day the review ends where
// the review clock runs, not in UTC.
TEST_F(ProtectionServerTest, TheDecisionDateIsTheDayInTheCalendarsTimeZone) {
  auto admin = v1::AdminService::NewStub(server_.channel());
  v1::GetCalendarRequest get;
  get.set_name("calendars/default");
  v1::UpdateCalendarRequest update;
  {
    auto ctx = TestServer::As("admin");
    ASSERT_TRUE(admin->GetCalendar(ctx.get(), get, update.mutable_calendar()).ok());
  }
  update.mutable_calendar()->set_time_zone("America/Los_Angeles");
  v1::BusinessCalendar saved;
  {
    auto ctx = TestServer::As("admin");
    ASSERT_TRUE(admin->UpdateCalendar(ctx.get(), update, &saved).ok());
  }
  Enrollment e;
  ASSERT_TRUE(Call(&Stub::CreateEnrollment, "cs_agent", NewEnrollment("basic"), &e).ok());
  // Monday 16 March, 08:00 in Los Angeles (UTC-7): five business days of
  // 09:00-17:00 end on Friday at 17:00 there, Saturday 00:00 in UTC.
  server_.clock().Set(Utc(3, 16, 15));
  v1::Claim c = Reported(NewClaim(e, v1::PERIL_ACCIDENTAL_DAMAGE, "2026-03-15"));
  v1::StartClaimReviewRequest start;
  start.set_name(c.name());
  {
    auto ctx = TestServer::As("cs_agent");
    ASSERT_TRUE(stub_->StartClaimReview(ctx.get(), start, &c).ok());
  }
  EXPECT_EQ(absl::FromUnixSeconds(c.expected_decision_time().seconds()), Utc(3, 21, 0));
  server_.Pump();
  auto told = server_.SpoolFor("claim.review_started");
  ASSERT_EQ(told.size(), 1u);
  EXPECT_NE(told[0].body().find("by 20 March 2026."), std::string::npos) << told[0].body();
}

// A customer's "today" may already be tomorrow in UTC.
TEST_F(ProtectionServerTest, AnIncidentDatedTodayEastOfUtcIsNotInTheFuture) {
  Enrollment e;
  ASSERT_TRUE(Call(&Stub::CreateEnrollment, "cs_agent", NewEnrollment("basic"), &e).ok());
  // 20:00 UTC on 2 March is already 3 March in Sydney (UTC+11) and in
  // Auckland, but 4 March nowhere.
  server_.clock().Set(Utc(3, 2, 20));
  v1::ReportClaimRequest report = NewClaim(e, v1::PERIL_ACCIDENTAL_DAMAGE, "2026-03-03");
  v1::Claim c;
  {
    auto ctx = TestServer::As("cs_agent");
    grpc::Status s = stub_->ReportClaim(ctx.get(), report, &c);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(c.state(), v1::CLAIM_STATE_REPORTED);
  report.set_incident_date("2026-03-04");
  auto ctx = TestServer::As("cs_agent");
  EXPECT_TRUE(NamesField(stub_->ReportClaim(ctx.get(), report, &c), "incident_date"));
}

TEST_F(ProtectionServerTest, ClaimWithDocumentsPausedReviewAndReimbursement) {
  Enrollment e;
  ASSERT_TRUE(Call(&Stub::CreateEnrollment, "cs_agent", NewEnrollment("basic"), &e).ok());
  server_.clock().Set(Utc(3, 12, 10));  // Thursday
  const v1::ReportClaimRequest report = NewClaim(e, v1::PERIL_ACCIDENTAL_DAMAGE, "2026-03-10");
  v1::Claim c;
  {
    auto ctx = TestServer::As("cs_agent");
    ASSERT_TRUE(stub_->ReportClaim(ctx.get(), report, &c).ok());
  }
  EXPECT_EQ(c.state(), v1::CLAIM_STATE_REPORTED);
  auto act = [&](auto method, auto req, const std::string& role = "cs_agent") {
    req.set_name(c.name());
    v1::Claim out;
    auto ctx = TestServer::As(role);
    grpc::Status s = ((*stub_).*method)(ctx.get(), req, &out);
    if (s.ok()) c = out;
    return s;
  };
  ASSERT_TRUE(act(&Stub::RequestClaimDocuments, v1::RequestClaimDocumentsRequest()).ok());
  EXPECT_EQ(c.state(), v1::CLAIM_STATE_DOCUMENTATION_REQUESTED);
  v1::AttachClaimDocumentRequest photo;
  photo.set_kind(v1::DOCUMENT_KIND_PHOTO);
  photo.set_content_type("image/png");
  photo.set_content(std::string("\x89PNG\r\n\x1a\n", 8) + "pixels");
  ASSERT_TRUE(act(&Stub::AttachClaimDocument, photo).ok());
  EXPECT_EQ(c.documents_size(), 1);

  // The document reads back whole, for the roles that handle claims.
  v1::GetClaimDocumentRequest get_doc;
  get_doc.set_name(c.name());
  get_doc.set_document_id(c.documents(0).document_id());
  auto get = [&](const std::string& role, v1::ClaimDocumentContent* out) {
    auto ctx = TestServer::As(role);
    return stub_->GetClaimDocument(ctx.get(), get_doc, out);
  };
  v1::ClaimDocumentContent doc;
  ASSERT_TRUE(get("approver", &doc).ok());
  EXPECT_EQ(doc.content(), photo.content());
  EXPECT_EQ(doc.document().document_id(), c.documents(0).document_id());
  EXPECT_EQ(doc.document().kind(), v1::DOCUMENT_KIND_PHOTO);
  EXPECT_EQ(doc.document().content_type(), "image/png");
  EXPECT_EQ(get("ops", &doc).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  get_doc.set_document_id("doc-9");
  EXPECT_EQ(get("cs_agent", &doc).error_code(), grpc::StatusCode::NOT_FOUND);
  get_doc.clear_document_id();
  EXPECT_TRUE(NamesField(get("cs_agent", &doc), "document_id"));

  // A bounced contact address blocks the review until it is confirmed.
  {
    v1::ReportContactBouncedRequest bounced;
    bounced.set_name(e.name());
    Enrollment out;
    auto ctx = TestServer::As("service");
    ASSERT_TRUE(stub_->ReportContactBounced(ctx.get(), bounced, &out).ok());
    EXPECT_EQ(out.contact_status(), v1::CONTACT_STATUS_BOUNCED);
  }
  grpc::Status blocked = act(&Stub::StartClaimReview, v1::StartClaimReviewRequest());
  EXPECT_EQ(blocked.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(blocked.error_message().find("bouncing"), std::string::npos);
  Ok(&Stub::VerifyEnrollmentContact, v1::VerifyEnrollmentContactRequest(), e);

  ASSERT_TRUE(act(&Stub::StartClaimReview, v1::StartClaimReviewRequest()).ok());
  EXPECT_EQ(c.state(), v1::CLAIM_STATE_UNDER_REVIEW);
  // The review is given to an approver, who finds it under their name.
  v1::AssignClaimRequest assign;
  assign.set_assignee("approver:kim");
  ASSERT_TRUE(act(&Stub::AssignClaim, assign, "team_lead").ok());
  EXPECT_EQ(c.assignee(), "approver:kim");
  {
    v1::ListClaimsRequest mine;
    mine.set_assignee("approver:kim");
    v1::ListClaimsResponse listed;
    auto ctx = TestServer::As("approver");
    ASSERT_TRUE(stub_->ListClaims(ctx.get(), mine, &listed).ok());
    ASSERT_EQ(listed.claims_size(), 1);
    EXPECT_EQ(listed.claims(0).name(), c.name());
  }
  // 5 business days (40 working hours) from Thursday 11:00 in Amsterdam.
  EXPECT_EQ(absl::FromUnixSeconds(c.expected_decision_time().seconds()), Utc(3, 19, 10));

  // Waiting on the customer pauses the clock; the weekend and the waiting
  // time do not count, and the customer is told the new date.
  // The agent says what is still missing; a note that is not text changes
  // nothing.
  server_.clock().Set(Utc(3, 13, 10));
  v1::AwaitClaimDocumentsRequest await;
  await.set_note(std::string("a photo\x01", 8));
  EXPECT_TRUE(NamesField(act(&Stub::AwaitClaimDocuments, await), "note"));
  EXPECT_EQ(c.state(), v1::CLAIM_STATE_UNDER_REVIEW);
  await.set_note("a photo of the back of the phone");
  ASSERT_TRUE(act(&Stub::AwaitClaimDocuments, await).ok());
  EXPECT_EQ(c.state(), v1::CLAIM_STATE_WAITING_DOCUMENTS);
  EXPECT_EQ(c.documents_note(), "a photo of the back of the phone");
  server_.Pump();
  auto asked = server_.SpoolFor("claim.documents_requested");
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_NE(asked[0].body().find("proof of your device protection (your plan number " + e.plan_number() +
                                 "), the device details, a description of what happened, and photos or "
                                 "receipts."),
            std::string::npos) << asked[0].body();
  EXPECT_EQ(asked[0].body().find("police"), std::string::npos) << asked[0].body();  // not a theft
  EXPECT_NE(asked[1].body().find("we need a few documents: a photo of the back of the phone."),
            std::string::npos) << asked[1].body();
  EXPECT_FALSE(c.has_expected_decision_time());
  server_.clock().Set(Utc(3, 16, 10));
  ASSERT_TRUE(act(&Stub::ResumeClaimReview, v1::ResumeClaimReviewRequest()).ok());
  EXPECT_EQ(absl::FromUnixSeconds(c.expected_decision_time().seconds()), Utc(3, 20, 10));
  server_.Pump();
  auto told = server_.SpoolFor("claim.review_started");
  ASSERT_EQ(told.size(), 2u);
  EXPECT_NE(told[0].body().find("by 19 March 2026."), std::string::npos) << told[0].body();
  EXPECT_NE(told[1].body().find("by 20 March 2026."), std::string::npos) << told[1].body();

  v1::ResolveClaimRequest resolve;
  resolve.set_resolution(v1::RESOLUTION_REIMBURSEMENT);
  EXPECT_EQ(act(&Stub::ResolveClaim, resolve).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(NamesField(act(&Stub::ResolveClaim, resolve, "approver"), "reimbursement.minor_units"));
  resolve.mutable_reimbursement()->set_currency_code("USD");
  resolve.mutable_reimbursement()->set_minor_units(25000);
  ASSERT_TRUE(act(&Stub::ResolveClaim, resolve, "approver").ok());
  EXPECT_EQ(c.state(), v1::CLAIM_STATE_RESOLVED);
  ASSERT_EQ(c.slas_size(), 1);
  EXPECT_EQ(c.slas(0).status(), v1::SLA_STATUS_STOPPED);
  EXPECT_EQ(c.slas(0).pause_count(), 1);
  server_.Pump();
  auto resolved = server_.SpoolFor("claim.resolved");
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_NE(resolved[0].body().find("reimbursement USD 250.00"), std::string::npos);
}

TEST_F(ProtectionServerTest, TheftNeedsAPoliceReportBeforeReview) {
  Enrollment e;
  ASSERT_TRUE(Call(&Stub::CreateEnrollment, "cs_agent", NewEnrollment("basic"), &e).ok());
  v1::Claim c = Reported(NewClaim(e, v1::PERIL_THEFT, "2026-03-02"));
  v1::StartClaimReviewRequest start;
  start.set_name(c.name());
  auto ctx2 = TestServer::As("cs_agent");
  grpc::Status s = stub_->StartClaimReview(ctx2.get(), start, &c);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("police report"), std::string::npos);
  // The customer is asked for it with the standard list.
  v1::RequestClaimDocumentsRequest ask;
  ask.set_name(c.name());
  auto ask_ctx = TestServer::As("cs_agent");
  ASSERT_TRUE(stub_->RequestClaimDocuments(ask_ctx.get(), ask, &c).ok());
  server_.Pump();
  auto asked = server_.SpoolFor("claim.documents_requested");
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_NE(asked[0].body().find("photos or receipts, and the police report."), std::string::npos)
      << asked[0].body();
  // An approver may deny it with a reason code.
  v1::DenyClaimRequest deny;
  deny.set_name(c.name());
  auto ctx3 = TestServer::As("approver");
  EXPECT_TRUE(NamesField(stub_->DenyClaim(ctx3.get(), deny, &c), "reason"));
  deny.set_reason(v1::DENIAL_REASON_NOT_SUPPORTED_BY_EVIDENCE);
  deny.set_note("No police report after three requests");
  auto ctx4 = TestServer::As("approver");
  ASSERT_TRUE(stub_->DenyClaim(ctx4.get(), deny, &c).ok());
  EXPECT_EQ(c.state(), v1::CLAIM_STATE_DENIED);
  // A decided claim still takes notes; an empty one is refused.
  v1::AddClaimCommentRequest note;
  note.set_name(c.name());
  const std::string decided_etag = c.etag();
  auto empty_ctx = TestServer::As("cs_agent");
  EXPECT_TRUE(NamesField(stub_->AddClaimComment(empty_ctx.get(), note, &c), "text"));
  note.set_text("Customer disputes the denial by phone");
  auto note_ctx = TestServer::As("cs_agent");
  ASSERT_TRUE(stub_->AddClaimComment(note_ctx.get(), note, &c).ok());
  EXPECT_EQ(c.state(), v1::CLAIM_STATE_DENIED);
  EXPECT_NE(c.etag(), decided_etag);
  v1::ListClaimEventsRequest events_req;
  events_req.set_parent(c.name());
  v1::ListClaimEventsResponse events;
  auto events_ctx = TestServer::As("approver");
  ASSERT_TRUE(stub_->ListClaimEvents(events_ctx.get(), events_req, &events).ok());
  ASSERT_GT(events.events_size(), 0);
  bool denied_with_note = false;
  for (const auto& e : events.events()) {
    denied_with_note |= e.type() == v1::EVENT_TYPE_DECISION &&
                        e.message() ==
                            "Denied: the documents do not support the claim (No police report after three requests)";
  }
  EXPECT_TRUE(denied_with_note);
  EXPECT_EQ(events.events(events.events_size() - 1).type(), v1::EVENT_TYPE_COMMENT);
  EXPECT_EQ(events.events(events.events_size() - 1).message(), "Customer disputes the denial by phone");
  // A decided claim is no one's work any more.
  v1::AssignClaimRequest assign;
  assign.set_name(c.name());
  assign.set_assignee("agent:lee");
  auto assign_ctx = TestServer::As("approver");
  EXPECT_EQ(stub_->AssignClaim(assign_ctx.get(), assign, &c).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  v1::ListClaimsRequest list;
  list.set_state(v1::CLAIM_STATE_DENIED);
  v1::ListClaimsResponse denied;
  auto ctx5 = TestServer::As("team_lead");
  ASSERT_TRUE(stub_->ListClaims(ctx5.get(), list, &denied).ok());
  EXPECT_EQ(denied.claims_size(), 1);
  v1::ClaimBoard board;
  auto ctx6 = TestServer::As("team_lead");
  ASSERT_TRUE(stub_->GetClaimBoard(ctx6.get(), v1::GetClaimBoardRequest(), &board).ok());
  EXPECT_EQ(board.columns(5).state(), "DENIED");
  EXPECT_EQ(board.columns(5).count(), 1);
}

TEST(PlanNumberTest, FormatAndCheckDigit) {
  const std::string n = workflow::FormatPlanNumber("48217730");
  EXPECT_EQ(n.substr(0, 13), "DP-4821-7730-");
  EXPECT_TRUE(workflow::IsPlanNumber(n));
  std::string typo = n;
  typo[4] = typo[4] == '9' ? '8' : typo[4] + 1;
  EXPECT_FALSE(workflow::IsPlanNumber(typo));
  EXPECT_TRUE(workflow::LooksLikeCardNumber("4111-1111-1111-1111"));
  EXPECT_FALSE(workflow::LooksLikeCardNumber("pm_1Nq8ZxLkdIwHu7ix"));
  EXPECT_FALSE(workflow::LooksLikeCardNumber("4111111111111112"));
}

}  // namespace
}  // namespace casework
