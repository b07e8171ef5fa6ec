// Table tests of the trade-in workflow: no I/O, only Decide().
#include "server/workflow/trade_in_workflow.h"

#include <memory>

#include "casework/v1/trade_in.pb.h"
#include "gtest/gtest.h"
#include "server/common/proto_time.h"

namespace casework::workflow {
namespace {

const absl::Time kNow = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone());

const std::vector<std::string> kStates = {"PROBLEM_ORDER", "WAITING_FOR_RESPONSE",
                                          "AWAITING_APPROVAL", "TESTING", "CLOSED",
                                          "CANCELLED"};

CaseRecord Record(const std::string& state, v1::TradeInProblem problem) {
  CaseRecord r;
  r.set_id("case1");
  r.set_kind("trade_in");
  r.set_state(state);
  auto* t = r.mutable_trade_in();
  t->set_v_number("V1234567");
  t->set_s_number("S7654321");
  t->set_problem(problem);
  t->set_product_name("Galaxy S21");
  t->mutable_customer()->set_display_name("Anna");
  t->mutable_customer()->set_email("anna@example.nl");
  t->mutable_customer()->set_language_code("nl");
  t->set_round(1);
  if (state == "TESTING") {
    auto* s = r.add_secrets();
    s->set_name("unlock_code");
    s->set_value("4321");
  }
  return r;
}

// What the procedure says, written independently of the declaration.
struct Expected {
  std::string action;
  std::vector<std::string> from;
  std::string to;  // "" = unchanged
  std::vector<std::string> roles;
  v1::TradeInProblem problem;
  std::shared_ptr<google::protobuf::Message> input;
};

std::vector<Expected> Procedure() {
  auto unlock = std::make_shared<v1::RecordUnlockCodeRequest>();
  unlock->set_unlock_code("1234");
  auto attach = std::make_shared<v1::AttachProofOfPurchaseRequest>();
  attach->set_content_type("application/pdf");
  attach->set_content("%PDF-1.7 receipt");
  auto reject = std::make_shared<v1::RejectProofOfPurchaseRequest>();
  reject->set_reason("Receipt is for another device");
  auto flag = std::make_shared<v1::FlagProblemRequest>();
  flag->set_problem(v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  flag->set_note("Code does not work");
  auto cancel = std::make_shared<v1::CancelTradeInRequest>();
  cancel->set_reason("Customer withdrew");
  const auto locked = v1::TRADE_IN_PROBLEM_DEVICE_LOCKED;
  const auto proof = v1::TRADE_IN_PROBLEM_PROOF_OF_PURCHASE;
  return {
      {"contact_customer", {"PROBLEM_ORDER"}, "WAITING_FOR_RESPONSE", {"cs_agent"}, locked,
       std::make_shared<v1::ContactCustomerRequest>()},
      {"record_unlock_code", {"PROBLEM_ORDER", "WAITING_FOR_RESPONSE"}, "TESTING",
       {"cs_agent"}, locked, unlock},
      {"attach_proof_of_purchase", {"PROBLEM_ORDER", "WAITING_FOR_RESPONSE"},
       "AWAITING_APPROVAL", {"cs_agent"}, proof, attach},
      {"approve_proof_of_purchase", {"AWAITING_APPROVAL"}, "TESTING", {"approver"}, proof,
       std::make_shared<v1::ApproveProofOfPurchaseRequest>()},
      {"reject_proof_of_purchase", {"AWAITING_APPROVAL"}, "PROBLEM_ORDER", {"approver"}, proof,
       reject},
      {"flag_problem", {"TESTING"}, "PROBLEM_ORDER", {"ops"}, locked, flag},
      {"close", {"TESTING"}, "CLOSED", {"ops"}, locked,
       std::make_shared<v1::CloseTradeInRequest>()},
      {"cancel", {"PROBLEM_ORDER", "WAITING_FOR_RESPONSE", "AWAITING_APPROVAL", "TESTING"},
       "CANCELLED", {"ops", "cs_agent"}, locked, cancel},
      {"reveal_unlock_code", {"TESTING"}, "", {"ops"}, locked,
       std::make_shared<v1::RevealUnlockCodeRequest>()},
  };
}

// Decide() with the default calendar, as the engine would call it.
absl::StatusOr<Decision> DecideWithCalendars(const Workflow& wf, const CaseRecord& before,
                             const std::string& action, const Actor& actor,
                             const google::protobuf::Message* input,
                             const std::string& timer_name, absl::Time now) {
  static const sla::Calendar calendar = *sla::Calendar::Compile(sla::DefaultCalendar());
  const CalendarLookup lookup = [](const std::string& name) -> const sla::Calendar* {
    return name == calendar.name() ? &calendar : nullptr;
  };
  return Decide(wf, before, action, actor, input, timer_name, now, lookup);
}

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class TradeInWorkflowTest : public ::testing::Test {
 protected:
  std::unique_ptr<Workflow> wf_ = NewTradeInWorkflow(TradeInPolicy{});
};

TEST_F(TradeInWorkflowTest, EveryActionStateAndRoleBehavesAsTheProcedureSays) {
  int checked = 0;
  for (const auto& e : Procedure()) {
    for (const auto& state : kStates) {
      for (const auto& role : AllRoles()) {
        SCOPED_TRACE(e.action + " from " + state + " as " + role);
        const CaseRecord before = Record(state, e.problem);
        auto d = DecideWithCalendars(*wf_, before, e.action, {"someone", role}, e.input.get(), "", kNow);
        ++checked;
        if (!Has(e.roles, role)) {
          EXPECT_TRUE(absl::IsPermissionDenied(d.status())) << d.status();
          continue;
        }
        if (!Has(e.from, state)) {
          EXPECT_TRUE(absl::IsFailedPrecondition(d.status())) << d.status();
          continue;
        }
        ASSERT_TRUE(d.ok()) << d.status();
        EXPECT_EQ(d->record.state(), e.to.empty() ? state : e.to);
        EXPECT_FALSE(d->events.empty());
      }
    }
  }
  EXPECT_EQ(checked, 9 * 6 * 6);
}

TEST_F(TradeInWorkflowTest, ActionsForTheOtherProblemAreRefused) {
  v1::RecordUnlockCodeRequest unlock;
  unlock.set_unlock_code("1234");
  auto d = DecideWithCalendars(*wf_, Record("WAITING_FOR_RESPONSE", v1::TRADE_IN_PROBLEM_PROOF_OF_PURCHASE),
                  "record_unlock_code", {"a", "cs_agent"}, &unlock, "", kNow);
  EXPECT_TRUE(absl::IsFailedPrecondition(d.status()));
}

// An undelivered notification is noted on the timeline, in any state,
// closed ones too; only the server notes it, and nothing else moves.
TEST_F(TradeInWorkflowTest, OnlyTheServerNotesAnUndeliveredNotification) {
  internal::OutboxMessage message;
  message.set_template_id("trade_in.contact.device_locked");
  message.set_channel(v1::CHANNEL_EMAIL);
  message.set_attempts(1);
  message.set_dedupe_key("c1-4");
  for (const auto& state : kStates) {
    SCOPED_TRACE(state);
    const CaseRecord before = Record(state, v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
    for (const auto& role : AllRoles()) {
      EXPECT_TRUE(absl::IsPermissionDenied(DecideWithCalendars(*wf_, before, kNotificationFailedAction,
                                                               {"someone", role}, &message, "", kNow)
                                               .status()));
    }
    auto d = DecideWithCalendars(*wf_, before, kNotificationFailedAction, {"system", kSystem}, &message,
                                 "", kNow);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->record.state(), state);
    ASSERT_EQ(d->events.size(), 1u);
    EXPECT_EQ(d->events[0].type(), v1::EVENT_TYPE_NOTIFICATION_FAILED);
    EXPECT_EQ(d->events[0].message(),
              "Email not delivered after 1 attempt; it waits in the dead letters for an admin to send it again");
    EXPECT_TRUE(d->notifications.empty());
    EXPECT_TRUE(d->timers_arm.empty());
    EXPECT_TRUE(d->timers_cancel.empty());
  }
  // Sent again from the dead letters: by an admin only.
  const CaseRecord closed = Record("CLOSED", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  for (const auto& role : AllRoles()) {
    auto again = DecideWithCalendars(*wf_, closed, kNotificationRequeuedAction, {"someone", role}, &message, "", kNow);
    if (role != kAdmin) {
      EXPECT_TRUE(absl::IsPermissionDenied(again.status())) << role;
      continue;
    }
    ASSERT_TRUE(again.ok()) << again.status();
    ASSERT_EQ(again->events.size(), 1u);
    EXPECT_EQ(again->events[0].type(), v1::EVENT_TYPE_NOTIFICATION_QUEUED);
    EXPECT_EQ(again->events[0].message(), "Email sent again from the dead letters");
    EXPECT_EQ(again->record.state(), "CLOSED");
  }
  // Any other input is refused.
  v1::ContactCustomerRequest other;
  EXPECT_TRUE(absl::IsPermissionDenied(DecideWithCalendars(*wf_, Record("TESTING", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED),
                                                           kNotificationFailedAction, {"system", kSystem},
                                                           &other, "", kNow)
                                           .status()));
}

TEST_F(TradeInWorkflowTest, ContactingTheCustomerEmailsTheMacroAndStartsTheResponseClock) {
  v1::ContactCustomerRequest req;
  auto d = DecideWithCalendars(*wf_, Record("PROBLEM_ORDER", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED),
                  "contact_customer", {"a", "cs_agent"}, &req, "", kNow);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->notifications.size(), 1u);
  EXPECT_EQ(d->notifications[0].template_id, "trade_in.contact.device_locked");
  EXPECT_EQ(d->notifications[0].recipient, "anna@example.nl");
  EXPECT_EQ(d->notifications[0].event_message, "Email sent");
  // The response clock's rungs: two reminders a week apart, then no
  // response. Only the first one's timer is armed; each arms the next.
  ASSERT_EQ(d->record.slas_size(), 1);
  EXPECT_EQ(d->record.slas(0).status(), v1::SLA_STATUS_RUNNING);
  const auto& rungs = d->record.slas(0).rungs();
  ASSERT_EQ(rungs.size(), 3);
  EXPECT_EQ(rungs[0].name(), "reminder.1");
  EXPECT_EQ(FromProto(rungs[0].due_time()), kNow + absl::Hours(24 * 7));
  EXPECT_EQ(rungs[1].name(), "reminder.2");
  EXPECT_EQ(FromProto(rungs[1].due_time()), kNow + absl::Hours(24 * 14));
  EXPECT_EQ(rungs[2].name(), "no_response");
  EXPECT_EQ(FromProto(rungs[2].due_time()), kNow + absl::Hours(24 * 21));
  ASSERT_EQ(d->timers_arm.size(), 1u);
  EXPECT_EQ(d->timers_arm[0].name, "sla/response/reminder.1");
  EXPECT_EQ(d->timers_arm[0].due, kNow + absl::Hours(24 * 7));
  EXPECT_EQ(d->record.armed_timers_size(), 1);

  auto pop = DecideWithCalendars(*wf_, Record("PROBLEM_ORDER", v1::TRADE_IN_PROBLEM_PROOF_OF_PURCHASE),
                    "contact_customer", {"a", "cs_agent"}, &req, "", kNow);
  ASSERT_TRUE(pop.ok());
  EXPECT_EQ(pop->notifications[0].template_id, "trade_in.contact.proof_of_purchase");
}

TEST_F(TradeInWorkflowTest, RemindersFollowThePolicyThenTheCaseReturnsToProblemOrders) {
  v1::ContactCustomerRequest req;
  auto d = DecideWithCalendars(*wf_, Record("PROBLEM_ORDER", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED),
                  "contact_customer", {"a", "cs_agent"}, &req, "", kNow);
  ASSERT_TRUE(d.ok());
  CaseRecord r = d->record;
  absl::Time t = kNow + absl::Hours(24 * 7);

  const Actor system{"system", "system"};
  auto first = DecideWithCalendars(*wf_, r, "sla:response/reminder", system, nullptr, "sla/response/reminder.1", t);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->record.state(), "WAITING_FOR_RESPONSE");
  ASSERT_EQ(first->notifications.size(), 1u);
  EXPECT_EQ(first->notifications[0].template_id, "trade_in.reminder");
  EXPECT_EQ(first->notifications[0].event_type, v1::EVENT_TYPE_REMINDER_SENT);
  EXPECT_EQ(first->notifications[0].event_message, "Reminder sent 09-03-2026");
  // Monday 11:00 in Amsterdam is within business hours: no hold.
  EXPECT_EQ(first->notifications[0].not_before, t);
  // The rung after it is armed in the same change.
  ASSERT_EQ(first->timers_arm.size(), 1u);
  EXPECT_EQ(first->timers_arm[0].name, "sla/response/reminder.2");
  EXPECT_EQ(first->timers_arm[0].due, kNow + absl::Hours(24 * 14));
  EXPECT_TRUE(first->timers_cancel.empty());
  EXPECT_EQ(first->record.armed_timers_size(), 1);
  EXPECT_EQ(first->record.trade_in().reminders_sent(), 1);
  // The same rung again changes nothing.
  auto again = DecideWithCalendars(*wf_, first->record, "sla:response/reminder", system, nullptr,
                   "sla/response/reminder.1", t);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed);

  t += absl::Hours(24 * 7);
  auto second = DecideWithCalendars(*wf_, first->record, "sla:response/reminder", system, nullptr,
                    "sla/response/reminder.2", t);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->notifications[0].event_message, "Reminder sent 16-03-2026");
  ASSERT_EQ(second->timers_arm.size(), 1u);
  EXPECT_EQ(second->timers_arm[0].name, "sla/response/no_response");
  EXPECT_EQ(second->timers_arm[0].due, kNow + absl::Hours(24 * 21));

  t += absl::Hours(24 * 7);
  auto gave_up = DecideWithCalendars(*wf_, second->record, "sla:response/no_response", system, nullptr,
                        "sla/response/no_response", t);
  ASSERT_TRUE(gave_up.ok());
  EXPECT_EQ(gave_up->record.state(), "PROBLEM_ORDER");
  EXPECT_EQ(gave_up->record.trade_in().round(), 2);
  ASSERT_EQ(gave_up->notifications.size(), 1u);
  EXPECT_EQ(gave_up->notifications[0].recipient, "#cs-handling");
  EXPECT_EQ(gave_up->record.armed_timers_size(), 0);
  EXPECT_EQ(gave_up->record.slas(0).status(), v1::SLA_STATUS_STOPPED);
}

TEST_F(TradeInWorkflowTest, RemindersFallingOutsideBusinessHoursAreHeldTillNineOClock) {
  // Contact on Friday 6 March 2026 at 22:00 Amsterdam time.
  absl::TimeZone ams;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Amsterdam", &ams));
  const absl::Time friday = absl::FromCivil(absl::CivilSecond(2026, 3, 6, 22, 0, 0), ams);
  v1::ContactCustomerRequest req;
  auto d = DecideWithCalendars(*wf_, Record("PROBLEM_ORDER", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED),
               "contact_customer", {"a", "cs_agent"}, &req, "", friday);
  ASSERT_TRUE(d.ok());
  const absl::Time due = friday + absl::Hours(24 * 7);
  auto fired = DecideWithCalendars(*wf_, d->record, "sla:response/reminder", {"system", "system"}, nullptr,
                   "sla/response/reminder.1", due);
  ASSERT_TRUE(fired.ok());
  const absl::Time monday_nine = absl::FromCivil(absl::CivilSecond(2026, 3, 16, 9, 0, 0), ams);
  EXPECT_EQ(fired->notifications[0].not_before, monday_nine);
  EXPECT_EQ(fired->notifications[0].event_message, "Reminder sent 16-03-2026");
}

TEST_F(TradeInWorkflowTest, AnAnswerStopsTheResponseClock) {
  v1::ContactCustomerRequest contact;
  auto d = DecideWithCalendars(*wf_, Record("PROBLEM_ORDER", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED),
                  "contact_customer", {"a", "cs_agent"}, &contact, "", kNow);
  v1::RecordUnlockCodeRequest unlock;
  unlock.set_unlock_code("0000");
  auto answered = DecideWithCalendars(*wf_, d->record, "record_unlock_code", {"a", "cs_agent"}, &unlock, "",
                         kNow + absl::Hours(1));
  ASSERT_TRUE(answered.ok());
  EXPECT_EQ(answered->timers_cancel, std::vector<std::string>{"sla/response/reminder.1"});
  EXPECT_EQ(answered->record.armed_timers_size(), 0);
  EXPECT_EQ(answered->record.slas(0).status(), v1::SLA_STATUS_STOPPED);
  // The code is stored as a secret and appears in no event.
  ASSERT_EQ(answered->record.secrets_size(), 1);
  for (const auto& e : answered->events) {
    EXPECT_EQ(e.message().find("0000"), std::string::npos);
    for (const auto& [k, v] : e.attributes()) EXPECT_NE(v, "0000");
  }
  ASSERT_EQ(answered->notifications.size(), 1u);
  EXPECT_EQ(answered->notifications[0].template_id, "trade_in.ops.test_again");
}

TEST_F(TradeInWorkflowTest, ACustomerResponseRestartsTheReminderClock) {
  v1::ContactCustomerRequest contact;
  auto d = DecideWithCalendars(*wf_, Record("PROBLEM_ORDER", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED),
               "contact_customer", {"a", "cs_agent"}, &contact, "", kNow);
  v1::RecordCustomerResponseRequest resp;
  resp.set_channel(v1::RESPONSE_CHANNEL_PHONE);
  resp.set_note("Will remove the iCloud lock tonight");
  const absl::Time later = kNow + absl::Hours(24 * 3);
  auto r = DecideWithCalendars(*wf_, d->record, "customer_responded", {"a", "cs_agent"}, &resp, "", later);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->record.state(), "WAITING_FOR_RESPONSE");
  ASSERT_EQ(r->timers_arm.size(), 1u);
  EXPECT_EQ(r->timers_arm[0].name, "sla/response/reminder.1");
  EXPECT_EQ(r->timers_arm[0].due, later + absl::Hours(24 * 7));
  resp.set_channel(v1::RESPONSE_CHANNEL_UNSPECIFIED);
  EXPECT_TRUE(absl::IsInvalidArgument(
      DecideWithCalendars(*wf_, d->record, "customer_responded", {"a", "cs_agent"}, &resp, "", later).status()));
}

TEST_F(TradeInWorkflowTest, LeavingTheTestingQueueWipesTheUnlockCode) {
  v1::CloseTradeInRequest close;
  auto d = DecideWithCalendars(*wf_, Record("TESTING", v1::TRADE_IN_PROBLEM_DEVICE_LOCKED), "close",
                  {"o", "ops"}, &close, "", kNow);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->record.secrets_size(), 0);
  bool wiped = false;
  for (const auto& e : d->events) wiped |= e.type() == v1::EVENT_TYPE_SECRET_WIPED;
  EXPECT_TRUE(wiped);
}

TEST_F(TradeInWorkflowTest, CreateValidatesEveryFieldAndNamesIt) {
  v1::CreateTradeInRequest req;
  req.mutable_trade_in()->set_v_number("V12");
  req.mutable_trade_in()->mutable_customer()->set_email("not-an-email");
  req.mutable_trade_in()->mutable_customer()->set_language_code("de");
  CaseRecord before;
  before.set_id("new");
  before.set_kind("trade_in");
  auto d = DecideWithCalendars(*wf_, before, "create", {"o", "ops"}, &req, "", kNow);
  ASSERT_TRUE(absl::IsInvalidArgument(d.status()));
  for (const char* field : {"trade_in.v_number", "trade_in.s_number", "trade_in.product_name",
                            "trade_in.customer.display_name", "trade_in.customer.email",
                            "trade_in.customer.language_code", "trade_in.problem"}) {
    EXPECT_NE(d.status().message().find(field), absl::string_view::npos) << field;
  }
}

TEST_F(TradeInWorkflowTest, ConfiguredProductsNeedAProofOfPurchase) {
  v1::CreateTradeInRequest req;
  auto* t = req.mutable_trade_in();
  t->set_v_number("V1234567");
  t->set_s_number("S1234567");
  t->set_product_name("iPhone 16 Pro 256GB");
  t->mutable_customer()->set_display_name("Piet");
  t->mutable_customer()->set_email("piet@example.nl");
  CaseRecord before;
  before.set_id("new");
  before.set_kind("trade_in");
  auto d = DecideWithCalendars(*wf_, before, "create", {"o", "ops"}, &req, "", kNow);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->record.state(), "PROBLEM_ORDER");
  EXPECT_EQ(d->record.trade_in().problem(), v1::TRADE_IN_PROBLEM_PROOF_OF_PURCHASE);
  EXPECT_EQ(d->record.trade_in().customer().language_code(), "nl");
}

TEST_F(TradeInWorkflowTest, DocumentsMustBeWhatTheySayAndSmallEnough) {
  v1::AttachProofOfPurchaseRequest req;
  req.set_content_type("application/pdf");
  req.set_content("\x89PNG\r\n\x1a\n...");
  const auto before = Record("WAITING_FOR_RESPONSE", v1::TRADE_IN_PROBLEM_PROOF_OF_PURCHASE);
  auto d = DecideWithCalendars(*wf_, before, "attach_proof_of_purchase", {"a", "cs_agent"}, &req, "", kNow);
  EXPECT_TRUE(absl::IsInvalidArgument(d.status()));
  req.set_content_type("text/html");
  d = DecideWithCalendars(*wf_, before, "attach_proof_of_purchase", {"a", "cs_agent"}, &req, "", kNow);
  EXPECT_TRUE(absl::IsInvalidArgument(d.status()));
  req.set_content_type("application/pdf");
  req.set_content("%PDF-" + std::string(6 << 20, 'x'));
  d = DecideWithCalendars(*wf_, before, "attach_proof_of_purchase", {"a", "cs_agent"}, &req, "", kNow);
  EXPECT_TRUE(absl::IsInvalidArgument(d.status()));
}

TEST_F(TradeInWorkflowTest, DotListsEveryStateAndTransition) {
  const std::string dot = ToDot(wf_->spec());
  for (const auto& s : kStates) EXPECT_NE(dot.find(s), std::string::npos) << s;
  EXPECT_NE(dot.find("PROBLEM_ORDER -> WAITING_FOR_RESPONSE"), std::string::npos);
  EXPECT_NE(dot.find("AWAITING_APPROVAL -> TESTING"), std::string::npos);
}

}  // namespace
}  // namespace casework::workflow
