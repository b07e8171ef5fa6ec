// AdminService.EraseCustomerData end to end: a real caseworkd (in-process,
// RocksDB in a temporary folder, spool notifier) holding trade-ins, a
// profile and an account of one customer and a trade-in of another. The
// erase must refuse while a case is open, report without changing anything
// for validate_only, then remove the customer's data from cases, timelines,
// attachments, directories, spool copies and the RocksDB files, while the
// cases keep their states, timeline shape and SLA figures.
#include <filesystem>

#include "absl/strings/match.h"
#include "casework/v1/admin.grpc.pb.h"
#include "casework/v1/trade_in.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/test_server.h"

namespace casework {
namespace {

using testing::NamesField;
using testing::PreconditionTypes;
using testing::TestServer;
using v1::TradeIn;

const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone());

// What the erase must remove, each also written by the test somewhere.
const char kEmail[] = "jan.devries@example.nl";
const char kName[] = "Jan de Vries";
const char kPhone[] = "+31612345678";
const char kNote[] = "Jan says his neighbour Karel has the box";
const char kReceipt[] = "%PDF-1.7 receipt of Jan de Vries, Dorpsstraat 7";

class PrivacyEraseServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Start();
    trade_ins_ = v1::TradeInService::NewStub(server_.channel());
    admin_ = v1::AdminService::NewStub(server_.channel());
  }

  TradeIn Create(const std::string& v, const std::string& email) {
    v1::CreateTradeInRequest req;
    auto* t = req.mutable_trade_in();
    t->set_v_number(v);
    t->set_s_number("S" + v.substr(1));
    t->set_product_name("iPhone 16 Pro");  // a proof-of-purchase product
    t->mutable_customer()->set_display_name(email == kEmail ? kName : "Piet Jansen");
    t->mutable_customer()->set_email(email);
    TradeIn out;
    auto ctx = TestServer::As("ops");
    grpc::Status s = trade_ins_->CreateTradeIn(ctx.get(), req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  // Contacts the customer, takes a receipt, comments and cancels.
  void WorkAndCancel(const TradeIn& t) {
    TradeIn out;
    v1::ContactCustomerRequest contact;
    contact.set_name(t.name());
    auto ctx = TestServer::As("cs_agent");
    ASSERT_TRUE(trade_ins_->ContactCustomer(ctx.get(), contact, &out).ok());
    v1::AttachProofOfPurchaseRequest attach;
    attach.set_name(t.name());
    attach.set_content_type("application/pdf");
    attach.set_content(kReceipt);
    attach.set_file_name("jan-devries-receipt.pdf");
    ctx = TestServer::As("cs_agent");
    ASSERT_TRUE(trade_ins_->AttachProofOfPurchase(ctx.get(), attach, &out).ok());
    v1::AddTradeInCommentRequest comment;
    comment.set_name(t.name());
    comment.set_text(kNote);
    ctx = TestServer::As("cs_agent");
    ASSERT_TRUE(trade_ins_->AddTradeInComment(ctx.get(), comment, &out).ok());
    Cancel(t);
  }

  void Cancel(const TradeIn& t) {
    TradeIn out;
    v1::CancelTradeInRequest cancel;
    cancel.set_name(t.name());
    cancel.set_reason(absl::StrCat("Customer ", kName, " withdrew"));
    auto ctx = TestServer::As("ops");
    grpc::Status s = trade_ins_->CancelTradeIn(ctx.get(), cancel, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  TradeIn Get(const std::string& name) {
    v1::GetTradeInRequest req;
    req.set_name(name);
    TradeIn out;
    auto ctx = TestServer::As("ops");
    EXPECT_TRUE(trade_ins_->GetTradeIn(ctx.get(), req, &out).ok());
    return out;
  }

  std::vector<v1::TimelineEvent> Events(const std::string& name) {
    v1::ListTradeInEventsRequest req;
    req.set_parent(name);
    req.set_page_size(500);
    v1::ListTradeInEventsResponse resp;
    auto ctx = TestServer::As("ops");
    EXPECT_TRUE(trade_ins_->ListTradeInEvents(ctx.get(), req, &resp).ok());
    return {resp.events().begin(), resp.events().end()};
  }

  grpc::Status Erase(bool validate_only, v1::EraseCustomerDataResponse* resp,
                     const std::string& role = "admin") {
    v1::EraseCustomerDataRequest req;
    req.set_email("Jan.DeVries@Example.nl");  // addresses match regardless of case
    req.set_phone_number(kPhone);
    req.set_reason("privacy request PR-2026-114");
    req.set_validate_only(validate_only);
    auto ctx = TestServer::As(role);
    return admin_->EraseCustomerData(ctx.get(), req, resp);
  }

  // Every file of the data folder (RocksDB files, spool, keys) in one string.
  std::string DataFolderBytes() {
    std::string all;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(server_.data_dir())) {
      if (!entry.is_regular_file()) continue;
      all += testing::ReadFile(entry.path().string());
    }
    return all;
  }

  TestServer server_{kStart};
  std::unique_ptr<v1::TradeInService::Stub> trade_ins_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

TEST_F(PrivacyEraseServerTest, ErasesTheCustomerAndKeepsTheSkeleton) {
  v1::ImportProfilesRequest profiles;
  profiles.set_json_lines(absl::StrCat(R"({"profileId": "p-jan", "email": ")", kEmail,
                                       R"(", "cellphone": "+27821234567"})", "\n",
                                       R"({"profileId": "p-other", "email": "x@example.com"})"));
  v1::ImportProfilesResponse imported_profiles;
  auto ctx = TestServer::As("admin");
  ASSERT_TRUE(admin_->ImportProfiles(ctx.get(), profiles, &imported_profiles).ok());
  ASSERT_EQ(imported_profiles.imported(), 2);
  v1::ImportAccountsRequest accounts;
  accounts.set_json_lines(absl::StrCat(
      R"({"accountNumber": "ACC-7007", "fullName": ")", kName,
      R"(", "billingAddress": "Dorpsstraat 7", "phoneNumber": ")", kPhone,
      R"(", "email": "jan@work.example", "standing": "ACCOUNT_STANDING_GOOD"})"));
  v1::ImportAccountsResponse imported_accounts;
  ctx = TestServer::As("admin");
  ASSERT_TRUE(admin_->ImportAccounts(ctx.get(), accounts, &imported_accounts).ok());
  ASSERT_EQ(imported_accounts.imported(), 1);

  TradeIn first = Create("V3000001", kEmail);
  WorkAndCancel(first);
  TradeIn second = Create("V3000002", kEmail);
  TradeIn other = Create("V3000003", "piet@example.nl");
  server_.Pump();
  ASSERT_FALSE(server_.Spool().empty());

  // Erasing needs the admin role, a reason and an address.
  v1::EraseCustomerDataResponse resp;
  EXPECT_EQ(Erase(false, &resp, "team_lead").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::EraseCustomerDataRequest empty;
  ctx = TestServer::As("admin");
  grpc::Status bad = admin_->EraseCustomerData(ctx.get(), empty, &resp);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(NamesField(bad, "email"));
  EXPECT_TRUE(NamesField(bad, "reason"));

  // The second trade-in is open: nothing happens, and the error says which.
  const TradeIn first_before = Get(first.name());
  grpc::Status refused = Erase(false, &resp);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(PreconditionTypes(refused), std::vector<std::string>{"CASE_OPEN"});
  EXPECT_NE(refused.error_details().find(second.name()), std::string::npos);
  EXPECT_EQ(Get(first.name()).SerializeAsString(), first_before.SerializeAsString());

  Cancel(second);
  const auto events_before = Events(first.name());
  const TradeIn cancelled = Get(first.name());

  // validate_only reports the same set and changes nothing.
  v1::EraseCustomerDataResponse preview;
  ASSERT_TRUE(Erase(true, &preview).ok());
  EXPECT_EQ(preview.cases_size(), 2);
  EXPECT_EQ(preview.directory_records_erased(), 2);  // profile by email, account by phone
  EXPECT_TRUE(preview.audit_record().empty());
  EXPECT_EQ(Get(first.name()).SerializeAsString(), cancelled.SerializeAsString());

  grpc::Status erased = Erase(false, &resp);
  ASSERT_TRUE(erased.ok()) << erased.error_message();
  std::vector<std::string> names(resp.cases().begin(), resp.cases().end());
  std::sort(names.begin(), names.end());
  std::vector<std::string> expected = {first.name(), second.name()};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(names, expected);
  EXPECT_GT(resp.events_redacted(), 0);
  EXPECT_EQ(resp.directory_records_erased(), 2);
  EXPECT_GE(resp.spool_files_removed(), 1);
  ASSERT_FALSE(resp.audit_record().empty());

  // The case keeps its state, SLA figures and timeline shape.
  const TradeIn after = Get(first.name());
  EXPECT_EQ(after.state(), v1::TRADE_IN_STATE_CANCELLED);
  EXPECT_EQ(after.v_number(), "V3000001");
  EXPECT_TRUE(after.customer().email().empty());
  EXPECT_TRUE(after.customer().display_name().empty());
  EXPECT_TRUE(after.proof_of_purchase().file_name().empty());
  EXPECT_EQ(after.slas_size(), cancelled.slas_size());
  for (int i = 0; i < after.slas_size(); ++i) {
    EXPECT_EQ(after.slas(i).status(), cancelled.slas(i).status());
    EXPECT_EQ(after.slas(i).consumed().seconds(), cancelled.slas(i).consumed().seconds());
  }
  const auto events_after = Events(first.name());
  ASSERT_EQ(events_after.size(), events_before.size() + 1);
  for (size_t i = 0; i < events_before.size(); ++i) {
    EXPECT_EQ(events_after[i].type(), events_before[i].type());
    EXPECT_EQ(events_after[i].create_time().seconds(), events_before[i].create_time().seconds());
    EXPECT_EQ(events_after[i].to_state(), events_before[i].to_state());
    EXPECT_EQ(events_after[i].actor().principal(), events_before[i].actor().principal());
    EXPECT_EQ(events_after[i].SerializeAsString().find("Jan"), std::string::npos)
        << events_after[i].ShortDebugString();
  }
  EXPECT_EQ(events_after.back().type(), v1::EVENT_TYPE_PERSONAL_DATA_ERASED);
  EXPECT_EQ(events_after.back().actor().role(), "admin");

  // The receipt and the directory records are gone; the other customer's
  // case is untouched; the board still counts both cancelled cases.
  v1::GetProofOfPurchaseRequest get_doc;
  get_doc.set_name(first.name());
  v1::ProofOfPurchase doc;
  ctx = TestServer::As("approver");
  EXPECT_EQ(trade_ins_->GetProofOfPurchase(ctx.get(), get_doc, &doc).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::GetProfileRequest get_profile;
  get_profile.set_name("profiles/p-jan");
  v1::CustomerProfile profile;
  ctx = TestServer::As("admin");
  EXPECT_EQ(admin_->GetProfile(ctx.get(), get_profile, &profile).error_code(),
            grpc::StatusCode::NOT_FOUND);
  get_profile.set_name("profiles/p-other");
  ctx = TestServer::As("admin");
  EXPECT_TRUE(admin_->GetProfile(ctx.get(), get_profile, &profile).ok());
  v1::GetAccountRequest get_account;
  get_account.set_name("accounts/ACC-7007");
  v1::Account account;
  ctx = TestServer::As("admin");
  EXPECT_EQ(admin_->GetAccount(ctx.get(), get_account, &account).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Get(other.name()).customer().email(), "piet@example.nl");
  v1::GetTradeInBoardRequest board_req;
  v1::TradeInBoard board;
  ctx = TestServer::As("ops");
  ASSERT_TRUE(trade_ins_->GetTradeInBoard(ctx.get(), board_req, &board).ok());
  int64_t cancelled_count = 0;
  for (const auto& c : board.columns()) {
    if (c.state() == "CANCELLED") cancelled_count = c.count();
  }
  EXPECT_EQ(cancelled_count, 2);

  // Nothing of the customer is left on disk: not in RocksDB's files (the
  // erase compacts them), not in the spool.
  const std::string bytes = DataFolderBytes();
  for (const std::string& needle : {std::string(kEmail), std::string(kName), std::string(kNote),
                                   std::string(kReceipt), std::string("jan@work.example"),
                                   std::string("Dorpsstraat 7")}) {
    EXPECT_FALSE(absl::StrContains(bytes, needle)) << needle;
  }
  EXPECT_TRUE(absl::StrContains(bytes, "piet@example.nl"));  // the scan does see data

  // The act is in the audit log, without the address itself.
  v1::ListAuditRecordsRequest list;
  v1::ListAuditRecordsResponse audit;
  ctx = TestServer::As("admin");
  ASSERT_TRUE(admin_->ListAuditRecords(ctx.get(), list, &audit).ok());
  ASSERT_EQ(audit.audit_records_size(), 1);
  const auto& record = audit.audit_records(0);
  EXPECT_EQ(record.name(), resp.audit_record());
  EXPECT_EQ(record.action(), "EraseCustomerData");
  EXPECT_EQ(record.reason(), "privacy request PR-2026-114");
  EXPECT_EQ(record.actor().role(), "admin");
  EXPECT_EQ(record.subject_digests_size(), 2);
  EXPECT_EQ(record.counts().at("cases"), 2);
  EXPECT_EQ(record.SerializeAsString().find("example.nl"), std::string::npos);

  // A second erase finds nothing more.
  v1::EraseCustomerDataResponse again;
  ASSERT_TRUE(Erase(false, &again).ok());
  EXPECT_EQ(again.cases_size(), 0);
  EXPECT_EQ(again.directory_records_erased(), 0);
}

}  // namespace
}  // namespace casework
