// Notifications that cannot be delivered end as dead letters that an
// admin can list and send again, through a real server.
#include <fstream>

#include "absl/strings/str_cat.h"
#include "casework/v1/admin.grpc.pb.h"
#include "casework/v1/trade_in.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/test_server.h"

namespace casework {
namespace {

using testing::TestServer;

TEST(DeadLetterServerTest, FailedDeliveriesAreDeadLetteredListedAndRetried) {
  TestServer server(absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone()));
  // A spool "folder" that is a file: every delivery fails.
  const std::string blocked = server.data_dir() + "-blocked";
  std::ofstream(blocked) << "not a folder";
  server.Start([&](internal::ServerConfig* c) {
    c->mutable_notifier()->set_spool_dir(blocked);
    c->mutable_notifier()->set_max_attempts(2);
    c->mutable_notifier()->set_initial_backoff_ms(1000);
    c->mutable_notifier()->set_max_backoff_ms(1000);
  });
  auto trade_ins = v1::TradeInService::NewStub(server.channel());
  v1::CreateTradeInRequest create;
  auto* t = create.mutable_trade_in();
  t->set_v_number("V5550001");
  t->set_s_number("S5550001");
  t->set_product_name("Pixel");
  t->set_problem(v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  t->mutable_customer()->set_display_name("Jan");
  t->mutable_customer()->set_email("jan@example.nl");
  v1::TradeIn created;
  ASSERT_TRUE(trade_ins->CreateTradeIn(TestServer::As("ops").get(), create, &created).ok());
  v1::ContactCustomerRequest contact;
  contact.set_name(created.name());
  ASSERT_TRUE(trade_ins->ContactCustomer(TestServer::As("cs_agent").get(), contact, &created).ok());
  server.Pump();                                 // attempt 1 fails
  server.clock().Advance(absl::Seconds(2));
  server.Pump();                                 // attempt 2 fails: dead letter

  auto admin = v1::AdminService::NewStub(server.channel());
  v1::ListDeadLettersResponse dead;
  EXPECT_EQ(admin->ListDeadLetters(TestServer::As("cs_agent").get(), v1::ListDeadLettersRequest(), &dead)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(admin->ListDeadLetters(TestServer::As("team_lead").get(), v1::ListDeadLettersRequest(), &dead).ok());
  ASSERT_EQ(dead.dead_letters_size(), 1);
  EXPECT_EQ(dead.dead_letters(0).template_id(), "trade_in.contact.device_locked");
  EXPECT_EQ(dead.dead_letters(0).attempts(), 2);
  EXPECT_FALSE(dead.dead_letters(0).last_error().empty());
  // The agent waiting for the customer's answer sees it on the timeline,
  // without the receiver's error (which may quote the address).
  auto failures = [&] {
    v1::ListTradeInEventsRequest req;
    req.set_parent(created.name());
    v1::ListTradeInEventsResponse events;
    EXPECT_TRUE(trade_ins->ListTradeInEvents(TestServer::As("cs_agent").get(), req, &events).ok());
    std::vector<v1::TimelineEvent> out;
    for (const auto& e : events.events()) {
      if (e.type() == v1::EVENT_TYPE_NOTIFICATION_FAILED) out.push_back(e);
    }
    return out;
  };
  auto failed = failures();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].message(),
            "Email not delivered after 2 attempts; it waits in the dead letters for an admin to send it again");
  EXPECT_EQ(failed[0].actor().role(), "system");
  EXPECT_EQ(failed[0].attributes().at("template"), "trade_in.contact.device_locked");
  EXPECT_EQ("deadLetters/" + failed[0].attributes().at("dedupe_key"), dead.dead_letters(0).name());

  // Retried while the channel is still broken: a full round of attempts again.
  v1::RetryDeadLetterRequest early;
  early.set_name(dead.dead_letters(0).name());
  v1::DeadLetter requeued;
  ASSERT_TRUE(admin->RetryDeadLetter(TestServer::As("admin").get(), early, &requeued).ok());
  // The answer says what went back out: the same message, its attempts reset.
  EXPECT_EQ(requeued.name(), dead.dead_letters(0).name());
  EXPECT_EQ(requeued.case_id(), dead.dead_letters(0).case_id());
  EXPECT_EQ(requeued.template_id(), "trade_in.contact.device_locked");
  EXPECT_EQ(requeued.channel(), v1::CHANNEL_EMAIL);
  EXPECT_EQ(requeued.attempts(), 0);
  EXPECT_EQ(requeued.last_error(), dead.dead_letters(0).last_error());
  server.Pump();  // attempt 1 of 2 fails: not dead yet
  v1::ListDeadLettersResponse still;
  ASSERT_TRUE(admin->ListDeadLetters(TestServer::As("admin").get(), v1::ListDeadLettersRequest(), &still).ok());
  EXPECT_EQ(still.dead_letters_size(), 0);
  server.clock().Advance(absl::Seconds(2));
  server.Pump();  // attempt 2 fails: dead again
  ASSERT_TRUE(admin->ListDeadLetters(TestServer::As("admin").get(), v1::ListDeadLettersRequest(), &dead).ok());
  ASSERT_EQ(dead.dead_letters_size(), 1);
  EXPECT_EQ(failures().size(), 2u);

  // Ops fix the channel (here: the spool folder) and send it again.
  server.Restart([&](internal::ServerConfig* c) { c->mutable_notifier()->clear_spool_dir(); });
  admin = v1::AdminService::NewStub(server.channel());
  v1::RetryDeadLetterRequest retry;
  retry.set_name(dead.dead_letters(0).name());
  v1::DeadLetter retried;
  ASSERT_TRUE(admin->RetryDeadLetter(TestServer::As("admin").get(), retry, &retried).ok());
  server.Pump();
  auto sent = server.SpoolFor("trade_in.contact.device_locked");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ("deadLetters/" + sent[0].dedupe_key(), dead.dead_letters(0).name());
  // Each time an admin sent it again is on the timeline too, in their name.
  v1::ListTradeInEventsRequest events_req;
  events_req.set_parent(created.name());
  v1::ListTradeInEventsResponse events;
  trade_ins = v1::TradeInService::NewStub(server.channel());  // the restarted server
  ASSERT_TRUE(trade_ins->ListTradeInEvents(TestServer::As("cs_agent").get(), events_req, &events).ok());
  std::vector<std::string> story;
  for (const auto& e : events.events()) {
    if (e.type() == v1::EVENT_TYPE_NOTIFICATION_QUEUED || e.type() == v1::EVENT_TYPE_NOTIFICATION_FAILED) {
      story.push_back(absl::StrCat(e.actor().role(), ": ", e.message()));
    }
  }
  const std::string lost =
      "system: Email not delivered after 2 attempts; it waits in the dead letters for an admin to send it again";
  EXPECT_EQ(story, (std::vector<std::string>{"cs_agent: Email sent", lost,
                                             "admin: Email sent again from the dead letters", lost,
                                             "admin: Email sent again from the dead letters"}));
  v1::ListDeadLettersResponse after;
  ASSERT_TRUE(admin->ListDeadLetters(TestServer::As("admin").get(), v1::ListDeadLettersRequest(), &after).ok());
  EXPECT_EQ(after.dead_letters_size(), 0);
  EXPECT_EQ(admin->RetryDeadLetter(TestServer::As("admin").get(), retry, &retried).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace casework
