// Both trade-in procedures end to end: a real caseworkd (in-process, port 0,
// RocksDB in a temporary folder, spool notifier) driven through the
// generated gRPC client. The clock is simulated; the timer loop and the
// outbox dispatcher are pumped by the test instead of sleeping.

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "casework/v1/admin.grpc.pb.h"
#include "casework/v1/trade_in.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/test_server.h"

namespace casework {
namespace {

using testing::ErrorReason;
using testing::NamesField;
using testing::TestServer;
using v1::TradeIn;

// Monday 2 March 2026, 10:00 UTC.
const absl::Time kStart = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone());

class TradeInServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  // (Re)starts the server with the fixture's settings and reconnects.
  void Start() {
    auto configure = [this](internal::ServerConfig* config) {
      // The metrics endpoint takes ~2 s to stop (its HTTP server's poll
      // interval), so only the test that reads it turns it on.
      if (serve_metrics_) config->set_metrics_address("127.0.0.1:0");
      if (!rate_limit_) config->mutable_rate_limit()->set_requests_per_second(-1);
      config->mutable_trade_in()->set_reminder_interval_days(reminder_days_);
    };
    test_server_.Restart(configure);
    trade_ins_ = v1::TradeInService::NewStub(test_server_.channel());
    admin_ = v1::AdminService::NewStub(test_server_.channel());
    health_ = grpc::health::v1::Health::NewStub(test_server_.channel());
  }
  void Restart() { Start(); }
  void Pump() { test_server_.Pump(); }
  static std::unique_ptr<grpc::ClientContext> As(const std::string& role) {
    return TestServer::As(role);
  }
  std::vector<internal::OutboxMessage> Spool() { return test_server_.Spool(); }
  std::vector<internal::OutboxMessage> SpoolFor(const std::string& template_id) {
    return test_server_.SpoolFor(template_id);
  }

  // Calls a TradeInService method as `role`.
  template <typename Req, typename Resp>
  grpc::Status Call(grpc::Status (v1::TradeInService::Stub::*method)(grpc::ClientContext*,
                                                                       const Req&, Resp*),
                    const std::string& role, const Req& req, Resp* resp) {
    auto ctx = As(role);
    return ((*trade_ins_).*method)(ctx.get(), req, resp);
  }

  static v1::CreateTradeInRequest NewTradeIn(const std::string& v, const std::string& product,
                                             v1::TradeInProblem problem) {
    v1::CreateTradeInRequest req;
    auto* t = req.mutable_trade_in();
    t->set_v_number(v);
    t->set_s_number("S" + v.substr(1));
    t->set_product_name(product);
    t->set_problem(problem);
    t->set_problem_note("found during intake");
    t->mutable_customer()->set_display_name("Jan de Vries");
    t->mutable_customer()->set_email("jan@example.nl");
    return req;
  }

  TradeIn Create(const std::string& v, const std::string& product,
                 v1::TradeInProblem problem, const std::string& request_id = "") {
    v1::CreateTradeInRequest req = NewTradeIn(v, product, problem);
    req.set_request_id(request_id);
    TradeIn out;
    grpc::Status s = Call(&v1::TradeInService::Stub::CreateTradeIn, "ops", req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  template <typename Req>
  TradeIn Act(grpc::Status (v1::TradeInService::Stub::*method)(grpc::ClientContext*,
                                                                 const Req&, TradeIn*),
              const std::string& role, Req req) {
    TradeIn out;
    grpc::Status s = Call(method, role, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    return out;
  }

  std::vector<v1::TimelineEvent> Events(const std::string& name) {
    v1::ListTradeInEventsRequest req;
    req.set_parent(name);
    req.set_page_size(500);
    v1::ListTradeInEventsResponse resp;
    EXPECT_TRUE(Call(&v1::TradeInService::Stub::ListTradeInEvents, "cs_agent", req, &resp).ok());
    return {resp.events().begin(), resp.events().end()};
  }

  std::map<std::string, int64_t> Board() {
    v1::TradeInBoard board;
    EXPECT_TRUE(Call(&v1::TradeInService::Stub::GetTradeInBoard, "cs_agent",
                     v1::GetTradeInBoardRequest(), &board)
                    .ok());
    std::map<std::string, int64_t> out;
    for (const auto& c : board.columns()) out[c.state()] = c.count();
    return out;
  }

  bool serve_metrics_ = false;
  bool rate_limit_ = true;  // per principal, as configured by default
  int reminder_days_ = 0;  // 0: the default
  TestServer test_server_{kStart};
  SimulatedClock& clock_ = test_server_.clock();
  std::unique_ptr<v1::TradeInService::Stub> trade_ins_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

TEST_F(TradeInServerTest, DeviceLockedProcedure) {
  TradeIn t = Create("V1000001", "Galaxy S22", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  EXPECT_EQ(t.state(), v1::TRADE_IN_STATE_PROBLEM_ORDER);
  EXPECT_EQ(Board()["PROBLEM_ORDER"], 1);

  // CS emails the customer with the macro; subject carries the V-number.
  v1::ContactCustomerRequest contact;
  contact.set_name(t.name());
  t = Act(&v1::TradeInService::Stub::ContactCustomer, "cs_agent", contact);
  EXPECT_EQ(t.state(), v1::TRADE_IN_STATE_WAITING_FOR_RESPONSE);
  Pump();
  auto emails = SpoolFor("trade_in.contact.device_locked");
  ASSERT_EQ(emails.size(), 1u);
  EXPECT_EQ(emails[0].recipient(), "jan@example.nl");
  EXPECT_EQ(emails[0].subject(), "Update over je inruil (V1000001)");

  // A week without an answer: one reminder, recorded with its date.
  clock_.Advance(absl::Hours(24 * 7));
  Pump();
  auto reminders = SpoolFor("trade_in.reminder");
  ASSERT_EQ(reminders.size(), 1u);
  EXPECT_NE(reminders[0].subject().find("V1000001"), std::string::npos);
  bool recorded = false;
  for (const auto& e : Events(t.name())) {
    recorded |= e.type() == v1::EVENT_TYPE_REMINDER_SENT && e.message() == "Reminder sent 09-03-2026" &&
                e.actor().principal() == "system";
  }
  EXPECT_TRUE(recorded);
  Pump();
  EXPECT_EQ(SpoolFor("trade_in.reminder").size(), 1u);

  // Written as the old procedure had it, a comment with the PIN, the code
  // would sit on the timeline for everyone: it is refused, naming the note.
  v1::RecordCustomerResponseRequest pasted;
  pasted.set_name(t.name());
  pasted.set_channel(v1::RESPONSE_CHANNEL_EMAIL);
  pasted.set_note("PIN code: 918273");
  TradeIn unchanged;
  grpc::Status refused = Call(&v1::TradeInService::Stub::RecordCustomerResponse, "cs_agent", pasted, &unchanged);
  EXPECT_TRUE(NamesField(refused, "note")) << refused.error_message();
  v1::AddTradeInCommentRequest comment;
  comment.set_name(t.name());
  comment.set_text("customer gave the pin 918273");
  EXPECT_TRUE(NamesField(Call(&v1::TradeInService::Stub::AddTradeInComment, "cs_agent", comment, &unchanged), "text"));
  for (const auto& e : Events(t.name())) EXPECT_EQ(e.message().find("918273"), std::string::npos) << e.message();

  // The customer answers with the PIN: back to testing, ops pinged.
  v1::RecordUnlockCodeRequest unlock;
  unlock.set_name(t.name());
  unlock.set_unlock_code("918273");
  t = Act(&v1::TradeInService::Stub::RecordUnlockCode, "cs_agent", unlock);
  EXPECT_EQ(t.state(), v1::TRADE_IN_STATE_TESTING);
  EXPECT_TRUE(t.unlock_code_stored());
  Pump();
  auto pings = SpoolFor("trade_in.ops.test_again");
  ASSERT_EQ(pings.size(), 1u);
  EXPECT_EQ(pings[0].recipient(), "#cs-handling");
  EXPECT_EQ(pings[0].body().rfind("V1000001 | S1000001 | ", 0), 0u);
  EXPECT_NE(pings[0].body().find("Test again"), std::string::npos);

  // The secret is in no response, event or notification ...
  v1::GetTradeInRequest get;
  get.set_name(t.name());
  TradeIn fetched;
  ASSERT_TRUE(Call(&v1::TradeInService::Stub::GetTradeIn, "ops", get, &fetched).ok());
  EXPECT_EQ(fetched.SerializeAsString().find("918273"), std::string::npos);
  for (const auto& e : Events(t.name())) EXPECT_EQ(e.SerializeAsString().find("918273"), std::string::npos);
  for (const auto& m : Spool()) EXPECT_EQ(m.SerializeAsString().find("918273"), std::string::npos);
  // ... and only ops may reveal it, which is recorded.
  v1::RevealUnlockCodeRequest reveal;
  reveal.set_name(t.name());
  v1::RevealUnlockCodeResponse code;
  EXPECT_EQ(Call(&v1::TradeInService::Stub::RevealUnlockCode, "cs_agent", reveal, &code).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Call(&v1::TradeInService::Stub::RevealUnlockCode, "ops", reveal, &code).ok());
  EXPECT_EQ(code.unlock_code(), "918273");
  EXPECT_EQ(Events(t.name()).back().type(), v1::EVENT_TYPE_SECRET_REVEALED);

  // Wrong code: ops send it back, the round repeats, the secret is wiped.
  v1::FlagProblemRequest flag;
  flag.set_name(t.name());
  flag.set_problem(v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  flag.set_note("PIN rejected by the device");
  t = Act(&v1::TradeInService::Stub::FlagProblem, "ops", flag);
  EXPECT_EQ(t.state(), v1::TRADE_IN_STATE_PROBLEM_ORDER);
  EXPECT_EQ(t.round(), 2);
  EXPECT_FALSE(t.unlock_code_stored());
  EXPECT_EQ(Call(&v1::TradeInService::Stub::RevealUnlockCode, "ops", reveal, &code).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  t = Act(&v1::TradeInService::Stub::ContactCustomer, "cs_agent", contact);
  unlock.set_unlock_code("918274");
  t = Act(&v1::TradeInService::Stub::RecordUnlockCode, "cs_agent", unlock);
  v1::CloseTradeInRequest close;
  close.set_name(t.name());
  close.set_note("Tested: grade A");
  t = Act(&v1::TradeInService::Stub::CloseTradeIn, "ops", close);
  EXPECT_EQ(t.state(), v1::TRADE_IN_STATE_CLOSED);
  EXPECT_FALSE(t.unlock_code_stored());
  auto board = Board();
  EXPECT_EQ(board["CLOSED"], 1);
  EXPECT_EQ(board["PROBLEM_ORDER"] + board["WAITING_FOR_RESPONSE"] + board["TESTING"], 0);
  // Every round is in the timeline, in order.
  auto events = Events(t.name());
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].sequence(), static_cast<int64_t>(i + 1));
  int contacts = 0;
  for (const auto& e : events) contacts += e.message() == "Email sent";
  EXPECT_EQ(contacts, 2);
}

TEST_F(TradeInServerTest, ProofOfPurchaseProcedure) {
  // The configured product list makes this a proof-of-purchase case.
  TradeIn t = Create("V2000002", "iPhone 16 Pro", v1::TRADE_IN_PROBLEM_UNSPECIFIED);
  EXPECT_EQ(t.problem(), v1::TRADE_IN_PROBLEM_PROOF_OF_PURCHASE);
  v1::ContactCustomerRequest contact;
  contact.set_name(t.name());
  Act(&v1::TradeInService::Stub::ContactCustomer, "cs_agent", contact);
  Pump();
  ASSERT_EQ(SpoolFor("trade_in.contact.proof_of_purchase").size(), 1u);

  v1::AttachProofOfPurchaseRequest attach;
  attach.set_name(t.name());
  attach.set_content_type("application/pdf");
  attach.set_content("%PDF-1.7 receipt one");
  attach.set_file_name("receipt.pdf");
  t = Act(&v1::TradeInService::Stub::AttachProofOfPurchase, "cs_agent", attach);
  EXPECT_EQ(t.state(), v1::TRADE_IN_STATE_AWAITING_APPROVAL);
  EXPECT_EQ(t.proof_of_purchase().status(), v1::PROOF_OF_PURCHASE_STATUS_PENDING);

  // Only the approver decides.
  v1::ApproveProofOfPurchaseRequest approve;
  approve.set_name(t.name());
  TradeIn ignored;
  EXPECT_EQ(Call(&v1::TradeInService::Stub::ApproveProofOfPurchase, "cs_agent", approve, &ignored)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  v1::RejectProofOfPurchaseRequest reject;
  reject.set_name(t.name());
  reject.set_reason("Receipt shows another IMEI");
  t = Act(&v1::TradeInService::Stub::RejectProofOfPurchase, "approver", reject);
  EXPECT_EQ(t.state(), v1::TRADE_IN_STATE_PROBLEM_ORDER);
  EXPECT_EQ(t.proof_of_purchase().rejection_reason(), "Receipt shows another IMEI");

  attach.set_content("%PDF-1.7 receipt two");
  t = Act(&v1::TradeInService::Stub::AttachProofOfPurchase, "cs_agent", attach);
  v1::GetProofOfPurchaseRequest get_doc;
  get_doc.set_name(t.name());
  v1::ProofOfPurchase doc;
  ASSERT_TRUE(Call(&v1::TradeInService::Stub::GetProofOfPurchase, "approver", get_doc, &doc).ok());
  EXPECT_EQ(doc.content(), "%PDF-1.7 receipt two");
  EXPECT_EQ(doc.content_type(), "application/pdf");

  approve.set_etag(t.etag());
  t = Act(&v1::TradeInService::Stub::ApproveProofOfPurchase, "approver", approve);
  EXPECT_EQ(t.state(), v1::TRADE_IN_STATE_TESTING);
  EXPECT_EQ(t.proof_of_purchase().status(), v1::PROOF_OF_PURCHASE_STATUS_APPROVED);
  Pump();
  auto pings = SpoolFor("trade_in.ops.proof_approved");
  ASSERT_EQ(pings.size(), 1u);
  EXPECT_EQ(pings[0].body(), "V2000002 | S2000002 | Proof of Purchase approved");
  // Both decisions are on the timeline, the rejection with its reason.
  std::vector<std::string> decisions;
  for (const auto& e : Events(t.name())) {
    if (e.type() == v1::EVENT_TYPE_DECISION && e.actor().role() == "approver") decisions.push_back(e.message());
  }
  EXPECT_EQ(decisions, (std::vector<std::string>{"Proof of purchase rejected: Receipt shows another IMEI",
                                                 "Proof of purchase approved"}));
}

TEST_F(TradeInServerTest, PendingReminderSurvivesRestartsAndFiresOnce) {
  TradeIn t = Create("V3000003", "Pixel 8", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  v1::ContactCustomerRequest contact;
  contact.set_name(t.name());
  Act(&v1::TradeInService::Stub::ContactCustomer, "cs_agent", contact);
  Restart();
  // The reminder fell due while the server was down.
  clock_.Advance(absl::Hours(24 * 7) + absl::Minutes(5));
  Restart();
  Pump();
  EXPECT_EQ(SpoolFor("trade_in.reminder").size(), 1u);
  Restart();
  Pump();
  EXPECT_EQ(SpoolFor("trade_in.reminder").size(), 1u);
  int reminder_events = 0;
  for (const auto& e : Events(t.name())) reminder_events += e.type() == v1::EVENT_TYPE_REMINDER_SENT;
  EXPECT_EQ(reminder_events, 1);
  // The contact email went out exactly once across the restarts.
  EXPECT_EQ(SpoolFor("trade_in.contact.device_locked").size(), 1u);
  v1::GetTradeInRequest get;
  get.set_name(t.name());
  TradeIn fetched;
  ASSERT_TRUE(Call(&v1::TradeInService::Stub::GetTradeIn, "ops", get, &fetched).ok());
  EXPECT_EQ(fetched.reminders_sent(), 1);
}

TEST_F(TradeInServerTest, AfterTheLastReminderTheCaseReturnsToProblemOrders) {
  TradeIn t = Create("V3100003", "Pixel 8", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  v1::ContactCustomerRequest contact;
  contact.set_name(t.name());
  Act(&v1::TradeInService::Stub::ContactCustomer, "cs_agent", contact);
  for (int week = 0; week < 3; ++week) {
    clock_.Advance(absl::Hours(24 * 7));
    Pump();
  }
  EXPECT_EQ(SpoolFor("trade_in.reminder").size(), 2u);
  auto pings = SpoolFor("trade_in.ops.no_response");
  ASSERT_EQ(pings.size(), 1u);
  EXPECT_NE(pings[0].body().find("after 2 reminder(s)"), std::string::npos);
  v1::GetTradeInRequest get;
  get.set_name(t.name());
  TradeIn fetched;
  ASSERT_TRUE(Call(&v1::TradeInService::Stub::GetTradeIn, "ops", get, &fetched).ok());
  EXPECT_EQ(fetched.state(), v1::TRADE_IN_STATE_PROBLEM_ORDER);
  EXPECT_EQ(fetched.round(), 2);
}

TEST_F(TradeInServerTest, BadInputNamesTheFieldAndWritesNothing) {
  v1::CreateTradeInRequest req;
  req.mutable_trade_in()->set_v_number("1234");
  req.mutable_trade_in()->set_s_number("S1234567");
  req.mutable_trade_in()->set_product_name("Pixel");
  req.mutable_trade_in()->set_problem(v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  req.mutable_trade_in()->mutable_customer()->set_display_name("Jan");
  req.mutable_trade_in()->mutable_customer()->set_email("jan@example");
  TradeIn out;
  grpc::Status s = Call(&v1::TradeInService::Stub::CreateTradeIn, "ops", req, &out);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(NamesField(s, "trade_in.v_number"));
  EXPECT_TRUE(NamesField(s, "trade_in.customer.email"));
  EXPECT_FALSE(NamesField(s, "trade_in.s_number"));
  // A request_id is text, as on every create that takes one.
  req.mutable_trade_in()->set_v_number("V1234567");
  req.mutable_trade_in()->mutable_customer()->set_email("jan@example.nl");
  req.set_request_id("retry\x07\x1b[2J");
  s = Call(&v1::TradeInService::Stub::CreateTradeIn, "ops", req, &out);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::ViolatedFields(s), std::vector<std::string>{"request_id"});
  // Names are one line: they end up in subjects, chat lines and table cells.
  req.clear_request_id();
  req.mutable_trade_in()->set_product_name("iPhone\n13");
  req.mutable_trade_in()->mutable_customer()->set_display_name("Jan\tde Vries");
  s = Call(&v1::TradeInService::Stub::CreateTradeIn, "ops", req, &out);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::ViolatedFields(s),
            (std::vector<std::string>{"trade_in.product_name", "trade_in.customer.display_name"}));
  for (const auto& [state, count] : Board()) EXPECT_EQ(count, 0) << state;
  v1::ListTradeInsRequest list;
  v1::ListTradeInsResponse listed;
  ASSERT_TRUE(Call(&v1::TradeInService::Stub::ListTradeIns, "ops", list, &listed).ok());
  EXPECT_EQ(listed.trade_ins_size(), 0);

  v1::GetTradeInRequest get;
  get.set_name("orders/123");
  s = Call(&v1::TradeInService::Stub::GetTradeIn, "ops", get, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(NamesField(s, "name"));
  get.set_name("tradeIns/DOESNOTEXIST");
  EXPECT_EQ(Call(&v1::TradeInService::Stub::GetTradeIn, "ops", get, &out).error_code(),
            grpc::StatusCode::NOT_FOUND);

  TradeIn t = Create("V4000004", "Pixel", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  v1::ContactCustomerRequest contact;
  contact.set_name(t.name());
  contact.set_etag("yesterday");
  s = Call(&v1::TradeInService::Stub::ContactCustomer, "cs_agent", contact, &out);
  EXPECT_TRUE(NamesField(s, "etag"));
  list.set_page_token("garbage");
  s = Call(&v1::TradeInService::Stub::ListTradeIns, "ops", list, &listed);
  EXPECT_TRUE(NamesField(s, "page_token"));
  v1::RecordUnlockCodeRequest unlock;
  unlock.set_name(t.name());
  s = Call(&v1::TradeInService::Stub::RecordUnlockCode, "cs_agent", unlock, &out);
  EXPECT_TRUE(NamesField(s, "unlock_code"));
  // None of that changed the case.
  v1::GetTradeInRequest again;
  again.set_name(t.name());
  ASSERT_TRUE(Call(&v1::TradeInService::Stub::GetTradeIn, "ops", again, &out).ok());
  EXPECT_EQ(out.etag(), t.etag());
  EXPECT_EQ(Events(t.name()).size(), 1u);
}

TEST_F(TradeInServerTest, StaleEtagsAndIllegalTransitionsChangeNothing) {
  TradeIn t = Create("V5000005", "Pixel", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  v1::ContactCustomerRequest contact;
  contact.set_name(t.name());
  contact.set_etag(t.etag());
  TradeIn moved = Act(&v1::TradeInService::Stub::ContactCustomer, "cs_agent", contact);
  // Same etag again: stale.
  v1::CancelTradeInRequest cancel;
  cancel.set_name(t.name());
  cancel.set_etag(t.etag());
  cancel.set_reason("duplicate");
  TradeIn out;
  EXPECT_EQ(Call(&v1::TradeInService::Stub::CancelTradeIn, "cs_agent", cancel, &out).error_code(),
            grpc::StatusCode::ABORTED);
  // Closing is only possible from the testing queue.
  v1::CloseTradeInRequest close;
  close.set_name(t.name());
  grpc::Status s = Call(&v1::TradeInService::Stub::CloseTradeIn, "ops", close, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("WAITING_FOR_RESPONSE"), std::string::npos);
  v1::GetTradeInRequest get;
  get.set_name(t.name());
  ASSERT_TRUE(Call(&v1::TradeInService::Stub::GetTradeIn, "ops", get, &out).ok());
  EXPECT_EQ(out.etag(), moved.etag());
  EXPECT_EQ(out.state(), v1::TRADE_IN_STATE_WAITING_FOR_RESPONSE);
}

TEST_F(TradeInServerTest, RequestIdMakesCreateSafeToRetry) {
  TradeIn first = Create("V6000006", "Pixel", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED, "req-42");
  TradeIn retry = Create("V6000006", "Pixel", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED, "req-42");
  EXPECT_EQ(first.name(), retry.name());
  EXPECT_EQ(Board()["PROBLEM_ORDER"], 1);
}

// What the .proto marks OUTPUT_ONLY is the server's to set: a create that
// carries such fields ignores them.
TEST_F(TradeInServerTest, FieldsTheServerSetsAreIgnoredOnCreate) {
  v1::CreateTradeInRequest req = NewTradeIn("V6000016", "Pixel", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  testing::FillOutputOnly(req.mutable_trade_in());
  // The check sees a field the server repeats, here every one of them.
  EXPECT_EQ(testing::OutputOnlyTaken(req.trade_in(), req.trade_in()).size(), 12u);
  TradeIn out;
  grpc::Status s = Call(&v1::TradeInService::Stub::CreateTradeIn, "ops", req, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(testing::OutputOnlyTaken(req.trade_in(), out), std::vector<std::string>{});
  EXPECT_EQ(out.state(), v1::TRADE_IN_STATE_PROBLEM_ORDER);
  EXPECT_EQ(out.etag(), "1");
  EXPECT_EQ(out.round(), 1);
}

TEST_F(TradeInServerTest, ListsByBoardColumnAndReferenceWithPages) {
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) {
    names.push_back(Create(absl::StrCat("V700000", i), "Pixel", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED).name());
    clock_.Advance(absl::Milliseconds(2));
  }
  v1::ContactCustomerRequest contact;
  contact.set_name(names[4]);
  Act(&v1::TradeInService::Stub::ContactCustomer, "cs_agent", contact);

  v1::ListTradeInsRequest req;
  req.set_state(v1::TRADE_IN_STATE_PROBLEM_ORDER);
  req.set_page_size(3);
  std::vector<std::string> seen;
  for (int page = 0; page < 5; ++page) {
    v1::ListTradeInsResponse resp;
    ASSERT_TRUE(Call(&v1::TradeInService::Stub::ListTradeIns, "cs_agent", req, &resp).ok());
    for (const auto& t : resp.trade_ins()) seen.push_back(t.name());
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(seen, std::vector<std::string>(names.begin(), names.begin() + 4));

  v1::ListTradeInsRequest by_v;
  by_v.set_v_number("V7000004");
  v1::ListTradeInsResponse found;
  ASSERT_TRUE(Call(&v1::TradeInService::Stub::ListTradeIns, "cs_agent", by_v, &found).ok());
  ASSERT_EQ(found.trade_ins_size(), 1);
  EXPECT_EQ(found.trade_ins(0).state(), v1::TRADE_IN_STATE_WAITING_FOR_RESPONSE);
  v1::ListTradeInsRequest by_s;
  by_s.set_s_number("S7000002");
  ASSERT_TRUE(Call(&v1::TradeInService::Stub::ListTradeIns, "cs_agent", by_s, &found).ok());
  EXPECT_EQ(found.trade_ins_size(), 1);
  // Taken by an agent after intake: listed by assignee.
  v1::AssignTradeInRequest assign;
  assign.set_name(names[2]);
  assign.set_assignee("agent:anna");
  EXPECT_EQ(Act(&v1::TradeInService::Stub::AssignTradeIn, "cs_agent", assign).assignee(), "agent:anna");
  v1::ListTradeInsRequest by_assignee;
  by_assignee.set_assignee("agent:anna");
  ASSERT_TRUE(Call(&v1::TradeInService::Stub::ListTradeIns, "cs_agent", by_assignee, &found).ok());
  ASSERT_EQ(found.trade_ins_size(), 1);
  EXPECT_EQ(found.trade_ins(0).name(), names[2]);
  // A token from one query is refused by another.
  req.set_state(v1::TRADE_IN_STATE_CLOSED);
  v1::ListTradeInsResponse resp;
  EXPECT_EQ(Call(&v1::TradeInService::Stub::ListTradeIns, "cs_agent", req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(TradeInServerTest, CallersMustSayWhoTheyAre) {
  grpc::ClientContext ctx;
  v1::TradeInBoard board;
  EXPECT_EQ(trade_ins_->GetTradeInBoard(&ctx, v1::GetTradeInBoardRequest(), &board).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  auto as_stranger = As("superuser");
  EXPECT_EQ(trade_ins_->GetTradeInBoard(as_stranger.get(), v1::GetTradeInBoardRequest(), &board)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(TradeInServerTest, HealthReportsEveryService) {
  for (const char* service : {"", "casework.v1.TradeInService", "casework.v1.AdminService"}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health_->Check(&ctx, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
}

TEST_F(TradeInServerTest, TemplatesAreManagedAndCheckedThroughAdminService) {
  auto ctx = As("admin");
  v1::GetTemplateRequest get;
  get.set_name("templates/trade_in.reminder");
  v1::Template tmpl;
  ASSERT_TRUE(admin_->GetTemplate(ctx.get(), get, &tmpl).ok());
  EXPECT_EQ(tmpl.procedure(), "trade_in");

  v1::UpdateTemplateRequest update;
  *update.mutable_template_() = tmpl;
  update.mutable_template_()->mutable_variants(0)->set_body("Hallo {{nickname}}");
  v1::Template saved;
  auto ctx2 = As("admin");
  grpc::Status s = admin_->UpdateTemplate(ctx2.get(), update, &saved);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(NamesField(s, "template.variants[0].body"));

  // A language variant missing a placeholder the others use is refused.
  for (auto& v : *update.mutable_template_()->mutable_variants()) {
    v.set_body("{{customer_name}}, nog geen reactie over {{v_number}}");
  }
  update.mutable_template_()->mutable_variants(0)->set_body("Nog geen reactie over {{v_number}}");
  auto missing_ctx = As("admin");
  s = admin_->UpdateTemplate(missing_ctx.get(), update, &saved);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(NamesField(s, "template.variants[0]"));

  for (auto& v : *update.mutable_template_()->mutable_variants()) {
    v.set_body("Nog geen reactie over {{v_number}}");
  }
  auto as_agent = As("cs_agent");
  EXPECT_EQ(admin_->UpdateTemplate(as_agent.get(), update, &saved).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  auto ctx3 = As("admin");
  ASSERT_TRUE(admin_->UpdateTemplate(ctx3.get(), update, &saved).ok());
  EXPECT_NE(saved.etag(), tmpl.etag());
  auto ctx4 = As("admin");
  EXPECT_EQ(admin_->UpdateTemplate(ctx4.get(), update, &saved).error_code(),
            grpc::StatusCode::ABORTED);

  v1::RenderTemplateRequest render;
  render.set_name("templates/trade_in.reminder");
  render.set_language_code("nl");
  (*render.mutable_values())["v_number"] = "V1";
  v1::RenderTemplateResponse rendered;
  auto ctx5 = As("cs_agent");
  ASSERT_TRUE(admin_->RenderTemplate(ctx5.get(), render, &rendered).ok());
  EXPECT_EQ(rendered.body(), "Nog geen reactie over V1");
  // With an update_mask, the wording alone: the channel sent is not taken.
  v1::UpdateTemplateRequest wording;
  wording.mutable_template_()->set_name("templates/trade_in.reminder");
  wording.mutable_template_()->set_channel(v1::CHANNEL_SMS);
  *wording.mutable_template_()->mutable_variants() = update.template_().variants();
  wording.mutable_template_()->mutable_variants(0)->set_body("Nog steeds geen reactie over {{v_number}}");
  wording.mutable_update_mask()->add_paths("variants");
  auto masked_ctx = As("admin");
  ASSERT_TRUE(admin_->UpdateTemplate(masked_ctx.get(), wording, &saved).ok());
  EXPECT_EQ(saved.channel(), tmpl.channel());
  EXPECT_EQ(saved.variants(0).body(), "Nog steeds geen reactie over {{v_number}}");

  // Macros of their own: created, listed, rendered; ids are unique.
  v1::CreateTemplateRequest create;
  create.set_template_id("trade_in.pickup_delayed");
  create.mutable_template_()->set_channel(v1::CHANNEL_EMAIL);
  auto* nl = create.mutable_template_()->add_variants();
  nl->set_language_code("nl");
  nl->set_subject("Ophalen later ({{v_number}})");
  nl->set_body("Beste {{customer_name}}, de koerier komt later.");
  v1::Template created;
  auto ctx6 = As("admin");
  s = admin_->CreateTemplate(ctx6.get(), create, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(created.name(), "templates/trade_in.pickup_delayed");
  EXPECT_EQ(created.procedure(), "trade_in");
  auto ctx7 = As("admin");
  EXPECT_EQ(admin_->CreateTemplate(ctx7.get(), create, &created).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  create.set_template_id("unlock.pickup_delayed");  // unlock has no {{v_number}}
  auto ctx8 = As("admin");
  s = admin_->CreateTemplate(ctx8.get(), create, &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(NamesField(s, "template.variants[0].subject"));
  create.set_template_id("Trade In");
  auto ctx9 = As("admin");
  EXPECT_TRUE(NamesField(admin_->CreateTemplate(ctx9.get(), create, &created), "template_id"));
  render.set_name("templates/trade_in.pickup_delayed");
  render.set_language_code("en");  // falls back to the only variant
  (*render.mutable_values())["customer_name"] = "Jan";
  auto ctx10 = As("cs_agent");
  ASSERT_TRUE(admin_->RenderTemplate(ctx10.get(), render, &rendered).ok());
  EXPECT_EQ(rendered.subject(), "Ophalen later (V1)");
  EXPECT_EQ(rendered.language_code(), "nl");
  v1::ListTemplatesRequest list;
  list.set_page_size(500);
  v1::ListTemplatesResponse listed;
  auto ctx11 = As("cs_agent");
  ASSERT_TRUE(admin_->ListTemplates(ctx11.get(), list, &listed).ok());
  bool found = false;
  for (const auto& t : listed.templates()) found |= t.name() == "templates/trade_in.pickup_delayed";
  EXPECT_TRUE(found);

  // The edited reminder goes back to the shipped wording; a stale etag, a
  // template without shipped wording and an agent are refused.
  v1::ResetTemplateRequest reset;
  reset.set_name("templates/trade_in.reminder");
  reset.set_etag(tmpl.etag());
  v1::Template restored;
  s = admin_->ResetTemplate(As("admin").get(), reset, &restored);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(ErrorReason(s), "ETAG_MISMATCH");
  reset.set_etag(saved.etag());
  EXPECT_EQ(admin_->ResetTemplate(As("cs_agent").get(), reset, &restored).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  s = admin_->ResetTemplate(As("admin").get(), reset, &restored);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(restored.variants_size(), tmpl.variants_size());
  for (int i = 0; i < tmpl.variants_size(); ++i) {
    EXPECT_EQ(restored.variants(i).body(), tmpl.variants(i).body());
    EXPECT_EQ(restored.variants(i).subject(), tmpl.variants(i).subject());
  }
  EXPECT_NE(restored.etag(), saved.etag());
  reset.set_name("templates/trade_in.pickup_delayed");
  reset.clear_etag();
  EXPECT_EQ(admin_->ResetTemplate(As("admin").get(), reset, &restored).error_code(), grpc::StatusCode::NOT_FOUND);
  reset.set_name("templates/trade_in.nothing");
  EXPECT_EQ(admin_->ResetTemplate(As("admin").get(), reset, &restored).error_code(), grpc::StatusCode::NOT_FOUND);
  reset.set_name("trade_in.reminder");
  EXPECT_TRUE(NamesField(admin_->ResetTemplate(As("admin").get(), reset, &restored), "name"));

  // A macro an admin made is deleted (etag checked); one casework sends
  // is not, whoever asks.
  v1::DeleteTemplateRequest del;
  del.set_name("templates/trade_in.pickup_delayed");
  del.set_etag("7");
  google::protobuf::Empty deleted;
  s = admin_->DeleteTemplate(As("admin").get(), del, &deleted);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(ErrorReason(s), "ETAG_MISMATCH");
  del.set_etag(created.etag());
  EXPECT_EQ(admin_->DeleteTemplate(As("cs_agent").get(), del, &deleted).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  s = admin_->DeleteTemplate(As("admin").get(), del, &deleted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::GetTemplateRequest gone;
  gone.set_name(del.name());
  EXPECT_EQ(admin_->GetTemplate(As("cs_agent").get(), gone, &tmpl).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(admin_->DeleteTemplate(As("admin").get(), del, &deleted).error_code(), grpc::StatusCode::NOT_FOUND);
  del.set_name("templates/trade_in.reminder");
  del.clear_etag();
  s = admin_->DeleteTemplate(As("admin").get(), del, &deleted);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorReason(s), "SHIPPED_TEMPLATE");
  gone.set_name(del.name());
  EXPECT_TRUE(admin_->GetTemplate(As("cs_agent").get(), gone, &tmpl).ok());
  // Its id is free again, and an etag read before the deletion does not
  // match the macro made in its place.
  const std::string deleted_etag = created.etag();
  create.set_template_id("trade_in.pickup_delayed");
  ASSERT_TRUE(admin_->CreateTemplate(As("admin").get(), create, &created).ok());
  EXPECT_NE(created.etag(), deleted_etag);
  v1::UpdateTemplateRequest stale;
  *stale.mutable_template_() = created;
  stale.mutable_template_()->set_etag(deleted_etag);
  stale.mutable_template_()->mutable_variants(0)->set_body("Written over the new macro");
  s = admin_->UpdateTemplate(As("admin").get(), stale, &saved);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(ErrorReason(s), "ETAG_MISMATCH");
  del.set_name(created.name());
  del.set_etag(deleted_etag);
  EXPECT_EQ(admin_->DeleteTemplate(As("admin").get(), del, &deleted).error_code(), grpc::StatusCode::ABORTED);
  gone.set_name(created.name());
  ASSERT_TRUE(admin_->GetTemplate(As("cs_agent").get(), gone, &tmpl).ok());
  EXPECT_EQ(tmpl.variants(0).body(), created.variants(0).body());
}

TEST_F(TradeInServerTest, ReminderDueAtNightIsHeldUntilNineOnTheNextWorkingDay) {
  absl::TimeZone ams;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Amsterdam", &ams));
  auto local = [&](int m, int d, int hh) {
    return absl::FromCivil(absl::CivilSecond(2026, m, d, hh, 0, 0), ams);
  };
  // Monday 16 March becomes a company holiday (admins edit the calendar).
  auto get_ctx = As("admin");
  v1::GetCalendarRequest get_cal;
  get_cal.set_name("calendars/default");
  v1::BusinessCalendar cal;
  ASSERT_TRUE(admin_->GetCalendar(get_ctx.get(), get_cal, &cal).ok());
  EXPECT_EQ(cal.time_zone(), "Europe/Amsterdam");
  v1::UpdateCalendarRequest update;
  *update.mutable_calendar() = cal;
  update.mutable_calendar()->set_time_zone("Atlantis/Capital");
  v1::BusinessCalendar saved;
  auto bad_ctx = As("admin");
  grpc::Status bad = admin_->UpdateCalendar(bad_ctx.get(), update, &saved);
  ASSERT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(NamesField(bad, "calendar.time_zone"));
  update.mutable_calendar()->set_time_zone("Europe/Amsterdam");
  auto* holiday = update.mutable_calendar()->add_holidays();
  holiday->set_name("Company day");
  holiday->set_year(2026), holiday->set_month(3), holiday->set_day(16);
  auto ok_ctx = As("admin");
  ASSERT_TRUE(admin_->UpdateCalendar(ok_ctx.get(), update, &saved).ok());
  EXPECT_NE(saved.etag(), cal.etag());

  // Contact on Friday 6 March at 22:00: the first reminder falls due on
  // Friday 13 March at 22:00, out of hours; Monday the 16th is a holiday.
  clock_.Set(local(3, 6, 22));
  TradeIn t = Create("V9100009", "Pixel", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  v1::ContactCustomerRequest contact;
  contact.set_name(t.name());
  t = Act(&v1::TradeInService::Stub::ContactCustomer, "cs_agent", contact);
  ASSERT_EQ(t.slas_size(), 1);
  EXPECT_EQ(t.slas(0).name(), "response");
  EXPECT_EQ(absl::FromUnixSeconds(t.next_reminder_time().seconds()), local(3, 13, 22));

  clock_.Set(local(3, 13, 22));
  Pump();
  EXPECT_TRUE(SpoolFor("trade_in.reminder").empty());  // held
  bool recorded = false;
  for (const auto& e : Events(t.name())) {
    if (e.type() != v1::EVENT_TYPE_REMINDER_SENT) continue;
    recorded = true;
    EXPECT_EQ(e.message(), "Reminder sent 17-03-2026");
    EXPECT_EQ(e.attributes().at("held_until"), "2026-03-17T08:00:00Z");
  }
  EXPECT_TRUE(recorded);
  clock_.Set(local(3, 17, 8) + absl::Minutes(59));
  Pump();
  EXPECT_TRUE(SpoolFor("trade_in.reminder").empty());
  clock_.Set(local(3, 17, 9));
  Pump();
  EXPECT_EQ(SpoolFor("trade_in.reminder").size(), 1u);
}

TEST_F(TradeInServerTest, ACustomerResponseOnAnyChannelRestartsTheReminderClock) {
  TradeIn t = Create("V9200009", "Pixel", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  v1::ContactCustomerRequest contact;
  contact.set_name(t.name());
  Act(&v1::TradeInService::Stub::ContactCustomer, "cs_agent", contact);
  clock_.Advance(absl::Hours(24 * 2));  // Wednesday
  v1::RecordCustomerResponseRequest resp;
  resp.set_name(t.name());
  resp.set_channel(v1::RESPONSE_CHANNEL_EMAIL);
  resp.set_note("Customer will remove the Google account this weekend");
  t = Act(&v1::TradeInService::Stub::RecordCustomerResponse, "cs_agent", resp);
  EXPECT_EQ(t.state(), v1::TRADE_IN_STATE_WAITING_FOR_RESPONSE);
  // The week counts from the answer, not from the first email.
  clock_.Advance(absl::Hours(24 * 6));
  Pump();
  EXPECT_TRUE(SpoolFor("trade_in.reminder").empty());
  clock_.Advance(absl::Hours(24 * 1));
  Pump();
  EXPECT_EQ(SpoolFor("trade_in.reminder").size(), 1u);
}

TEST_F(TradeInServerTest, AnEditedReminderPolicyMovesRunningClocks) {
  TradeIn t = Create("V9300009", "Pixel", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  v1::ContactCustomerRequest contact;
  contact.set_name(t.name());
  t = Act(&v1::TradeInService::Stub::ContactCustomer, "cs_agent", contact);
  EXPECT_EQ(absl::FromUnixSeconds(t.next_reminder_time().seconds()), kStart + absl::Hours(24 * 7));
  // Ops shorten the interval to 3 days and restart the server.
  reminder_days_ = 3;
  Restart();
  v1::GetTradeInRequest get;
  get.set_name(t.name());
  ASSERT_TRUE(Call(&v1::TradeInService::Stub::GetTradeIn, "ops", get, &t).ok());
  EXPECT_EQ(absl::FromUnixSeconds(t.next_reminder_time().seconds()), kStart + absl::Hours(24 * 3));
  clock_.Advance(absl::Hours(24 * 3));
  Pump();
  EXPECT_EQ(SpoolFor("trade_in.reminder").size(), 1u);
  // Restarting again with the same policy changes nothing.
  Restart();
  int recomputed = 0;
  for (const auto& e : Events(t.name())) recomputed += e.type() == v1::EVENT_TYPE_SLA_RECOMPUTED;
  EXPECT_EQ(recomputed, 1);
}

TEST_F(TradeInServerTest, MetricsExportRpcBoardTimerAndOutboxFigures) {
  serve_metrics_ = true;
  Restart();
  TradeIn t = Create("V8000008", "Pixel", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  test_server_.clock().Advance(absl::Minutes(20));  // on the board before CS gets to it
  v1::ContactCustomerRequest contact;
  contact.set_name(t.name());
  Act(&v1::TradeInService::Stub::ContactCustomer, "cs_agent", contact);
  Pump();
  ASSERT_GT(test_server_.server().metrics_port(), 0);
  const std::string text = testing::HttpGet(test_server_.server().metrics_port(), "/metrics");
  for (const char* needle :
       {"grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"CreateTradeIn\","
        "grpc_service=\"casework.v1.TradeInService\",grpc_type=\"unary\"} 1",
        "grpc_server_handling_seconds_bucket", "grpc_server_started_total",
        "casework_cases{procedure=\"trade_in\",state=\"WAITING_FOR_RESPONSE\"} 1",
        "casework_cases{procedure=\"trade_in\",state=\"PROBLEM_ORDER\"} 0",
        "casework_timers_pending 1", "casework_outbox_pending 0",  // the first reminder
        "casework_sla_at_risk{procedure=\"trade_in\",sla=\"response\"} 0",
        "casework_sla_breached{procedure=\"trade_in\",sla=\"response\"} 0",
        // The 20 minutes in the first column, in the hour's bucket.
        "casework_time_in_state_seconds_count{procedure=\"trade_in\",state=\"PROBLEM_ORDER\"} 1\n",
        "casework_time_in_state_seconds_sum{procedure=\"trade_in\",state=\"PROBLEM_ORDER\"} 1200\n",
        "casework_time_in_state_seconds_bucket{procedure=\"trade_in\",state=\"PROBLEM_ORDER\",le=\"900\"} 0\n",
        "casework_time_in_state_seconds_bucket{procedure=\"trade_in\",state=\"PROBLEM_ORDER\",le=\"3600\"} 1\n",
        "casework_notifications_total{channel=\"email\",result=\"delivered\"} 1",
        "casework_timer_fire_lag_seconds_count", "casework_build_info",
        // The create and the contact, each written on its own.
        "casework_commit_changes_sum 2", "casework_commit_seconds_count 2",
        "casework_commit_wait_seconds_count 2"}) {
    EXPECT_NE(text.find(needle), std::string::npos) << needle << "\n" << text;
  }
}

TEST_F(TradeInServerTest, MetricsExportTheProcessFigures) {
  serve_metrics_ = true;
  Restart();
  Create("V8000009", "Pixel", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  const std::string text = testing::HttpGet(test_server_.server().metrics_port(), "/metrics");
  auto value = [&text](const std::string& name) {
    const size_t at = text.find("\n" + name + " ");
    EXPECT_NE(at, std::string::npos) << name << "\n" << text;
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size() + 2));
  };
  // The server runs in this process, so its figures are this process's.
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter\n"), std::string::npos);
  EXPECT_GT(value("process_cpu_seconds_total"), 0);
  const double rss = value("process_resident_memory_bytes");
  EXPECT_GT(rss, 4 << 20);
  EXPECT_GE(value("process_virtual_memory_bytes"), rss);
  const double open = value("process_open_fds");
  EXPECT_GT(open, 3);  // stdin, stdout, stderr, and RocksDB's files at least
  EXPECT_GT(value("process_max_fds"), open);
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  const double started = value("process_start_time_seconds");
  EXPECT_LE(started, now);
  EXPECT_GT(started, now - 3600);  // no test binary runs for an hour
}

TEST_F(TradeInServerTest, CreatesWhoseCallersGaveUpBeforeTheyWereWrittenAreNotWritten) {
  // Bursts of creates far beyond what the server writes within their
  // callers' 5 ms: the changes still waiting when their callers give up
  // are answered DEADLINE_EXCEEDED and not written. One principal sends
  // them all, beyond its rate limit.
  rate_limit_ = false;
  Restart();
  const std::string method =
      "grpc_method=\"CreateTradeIn\",grpc_service=\"casework.v1.TradeInService\",grpc_type=\"unary\"}";
  auto started = [&] { return test_server_.Metric("grpc_server_started_total{" + method); };
  auto handled = [&](const char* code) {
    return test_server_.Metric(absl::StrCat("grpc_server_handled_total{grpc_code=\"", code, "\",", method));
  };
  ASSERT_EQ(test_server_.TradeInBoard()["PROBLEM_ORDER"], 0);  // and the channel is connected
  constexpr int kCalls = 1000;
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx = As("ops");
    v1::CreateTradeInRequest req;
    TradeIn resp;
  };
  // Should the server keep up with a burst, another one.
  for (int burst = 0; burst < 5 && handled("DeadlineExceeded") == 0; ++burst) {
    std::vector<Call> calls(kCalls);
    std::mutex mu;
    std::condition_variable cv;
    int answered = 0;
    for (int i = 0; i < kCalls; ++i) {
      Call& c = calls[i];
      c.req = NewTradeIn("V" + std::to_string(9100000 + burst * kCalls + i), "Pixel",
                         v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
      c.ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(5));
      trade_ins_->async()->CreateTradeIn(c.ctx.get(), &c.req, &c.resp, [&](grpc::Status) {
        std::lock_guard<std::mutex> lock(mu);
        if (++answered == kCalls) cv.notify_all();
      });
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return answered == kCalls; });
  }
  // The server goes on reading calls after their clients gave up: wait
  // until every call it started is answered, and none starts, for 0.1 s.
  for (int settled = 0, i = 0; settled < 10 && i < 1000; ++i) {
    const double before = started();
    absl::SleepFor(absl::Milliseconds(10));
    const bool quiet = started() == before && handled("OK") + handled("DeadlineExceeded") == before;
    settled = quiet ? settled + 1 : 0;
  }
  const double written = handled("OK");
  EXPECT_GT(handled("DeadlineExceeded"), 0);
  EXPECT_EQ(written + handled("DeadlineExceeded"), started());
  // The calls answered OK are on the board, and no other.
  EXPECT_EQ(test_server_.Metric("casework_cases{procedure=\"trade_in\",state=\"PROBLEM_ORDER\"}"), written);
}

}  // namespace
}  // namespace casework
