// Device protection through a real server: the plan catalogue, enrollment
// with its confirmation, management, and bad input.
#include "casework/v1/protection.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/workflow/enrollment_workflow.h"
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
