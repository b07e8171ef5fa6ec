// The real channels end to end: a caseworkd whose notifications go to an
// SMTP server (STARTTLS, AUTH), chat and webhook receivers and an SMS
// gateway, all real servers on loopback started by the test
// (tests/testing/sinks.py). What arrives is parsed and checked.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "casework/v1/admin.grpc.pb.h"
#include "casework/v1/trade_in.grpc.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/notify/notifier.h"
#include "tests/testing/process.h"
#include "tests/testing/test_server.h"

namespace casework {
namespace {

using testing::Sink;
using testing::TestServer;

// Monday 2 March 2026, 10:00 UTC.
const absl::Time kStart = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone());

google::protobuf::Struct ParseJson(const std::string& text) {
  google::protobuf::Struct s;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &s).ok()) << text;
  return s;
}

std::string Field(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? "" : it->second.string_value();
}

std::string Header(const google::protobuf::Struct& request, const std::string& name) {
  return Field(request.fields().at("headers").struct_value(), name);
}

v1::TradeIn CreateLockedTradeIn(const std::shared_ptr<grpc::Channel>& channel, const std::string& v) {
  auto stub = v1::TradeInService::NewStub(channel);
  v1::CreateTradeInRequest req;
  auto* t = req.mutable_trade_in();
  t->set_v_number(v);
  t->set_s_number("S" + v.substr(1));
  t->set_product_name("Galaxy S22");
  t->set_problem(v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  t->mutable_customer()->set_display_name("Jan de Vries");
  t->mutable_customer()->set_email("jan@example.nl");
  v1::TradeIn out;
  auto ctx = TestServer::As("ops");
  grpc::Status s = stub->CreateTradeIn(ctx.get(), req, &out);
  EXPECT_TRUE(s.ok()) << s.error_message();
  v1::ContactCustomerRequest contact;
  contact.set_name(out.name());
  auto ctx2 = TestServer::As("cs_agent");
  s = stub->ContactCustomer(ctx2.get(), contact, &out);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return out;
}

class NotifyChannelsTest : public ::testing::Test {
 protected:
  // Starts the server with trade-in messages sent to the webhook "crm" on
  // `port`, signed with the secret in `secret_file`; `more` may change the
  // notifier's settings further.
  void StartWithCrmWebhook(int port, const std::string& secret_file,
                           std::function<void(internal::NotifierConfig*)> more = nullptr) {
    server_.Start([&](internal::ServerConfig* c) {
      auto* n = c->mutable_notifier();
      auto* w = n->add_webhooks();
      w->set_name("crm");
      w->set_url(absl::StrCat("http://127.0.0.1:", port, "/casework"));
      w->set_secret_file(secret_file);
      auto* route = n->add_routes();
      route->set_template_prefix("trade_in.");
      route->add_notifiers("webhook:crm");
      if (more) more(n);
    });
  }

  testing::TempDir dir_;
  TestServer server_{kStart};
};

TEST_F(NotifyChannelsTest, EmailArrivesOnceOverStartTlsWithTheBrandsHeaders) {
  // Named variables, not a structured binding: lambdas below capture them.
  std::string cert, key;
  std::tie(cert, key) = testing::MakeSelfSignedCert(dir_.path());
  ASSERT_FALSE(cert.empty()) << "openssl could not make a certificate";
  Sink smtp("smtp", dir_.path() + "/smtp",
            {"--cert", cert, "--key", key, "--user", "casework", "--password", "s3cret pass"});
  ASSERT_GT(smtp.port(), 0);
  Sink chat("http", dir_.path() + "/chat");
  ASSERT_GT(chat.port(), 0);
  const std::string password_file = testing::WriteFile(dir_.path() + "/smtp-password", "s3cret pass\n");
  server_.Start([&](internal::ServerConfig* c) {
    auto* n = c->mutable_notifier();
    n->mutable_smtp()->set_url(absl::StrCat("smtp://127.0.0.1:", smtp.port()));
    n->mutable_smtp()->set_username("casework");
    n->mutable_smtp()->set_password_file(password_file);
    n->mutable_smtp()->set_ca_file(cert);
    (*n->mutable_brands())["trade_in"].set_from("Inruilservice Café <inruil@example.nl>");
    (*n->mutable_brands())["trade_in"].set_reply_to("Klantenservice <antwoord@example.nl>");
    (*n->mutable_chat()->mutable_channel_urls())["#cs-handling"] =
        absl::StrCat("http://127.0.0.1:", chat.port(), "/hooks/cs-handling");
  });

  // Subjects without the V-number; the Dutch one with non-ASCII text.
  auto admin = v1::AdminService::NewStub(server_.channel());
  v1::GetTemplateRequest get;
  get.set_name("templates/trade_in.contact.device_locked");
  v1::Template tmpl;
  auto ctx = TestServer::As("admin");
  ASSERT_TRUE(admin->GetTemplate(ctx.get(), get, &tmpl).ok());
  for (auto& v : *tmpl.mutable_variants()) {
    v.set_subject(v.language_code() == "nl" ? "Je inruil – één stap nog" : "Your trade-in");
  }
  v1::UpdateTemplateRequest update;
  *update.mutable_template_() = tmpl;
  auto ctx2 = TestServer::As("admin");
  grpc::Status saved = admin->UpdateTemplate(ctx2.get(), update, &tmpl);
  ASSERT_TRUE(saved.ok()) << saved.error_message();

  v1::TradeIn t = CreateLockedTradeIn(server_.channel(), "V1000001");
  server_.Pump();
  ASSERT_TRUE(smtp.WaitForFiles(".json", 1, absl::Seconds(10)));
  server_.Pump();
  auto mails = smtp.Files(".json");
  ASSERT_EQ(mails.size(), 1u);
  auto mail = ParseJson(mails[0]);
  EXPECT_EQ(Field(mail, "Subject"), "Je inruil – één stap nog [V1000001]");
  EXPECT_EQ(Field(mail, "From"), "Inruilservice Café <inruil@example.nl>");
  EXPECT_EQ(Field(mail, "Reply-To"), "Klantenservice <antwoord@example.nl>");
  EXPECT_EQ(Field(mail, "To"), "jan@example.nl");
  EXPECT_EQ(Field(mail, "X-Casework-Reference"), "V1000001");
  const std::string dedupe = Field(mail, "X-Casework-Dedupe-Key");
  EXPECT_EQ(dedupe.rfind(t.name().substr(t.name().find('/') + 1) + "-", 0), 0u) << dedupe;
  EXPECT_EQ(Field(mail, "Message-ID"), absl::StrCat("<", dedupe, "@example.nl>"));
  EXPECT_EQ(Field(mail, "content_type"), "multipart/alternative");
  EXPECT_NE(Field(mail, "text/plain").find("Jan de Vries"), std::string::npos);
  EXPECT_NE(Field(mail, "text/html").find("<p>"), std::string::npos);
  auto envelope = ParseJson(smtp.Files(".env")[0]);
  EXPECT_TRUE(envelope.fields().at("tls").bool_value());
  EXPECT_TRUE(envelope.fields().at("authenticated").bool_value());
  EXPECT_EQ(Field(envelope, "mail_from"), "inruil@example.nl");
  EXPECT_EQ(server_.Metric("casework_notifications_total{channel=\"email\",result=\"delivered\"}"), 1);

  // The PIN arrives: ops are pinged in #cs-handling through its webhook.
  auto stub = v1::TradeInService::NewStub(server_.channel());
  v1::RecordUnlockCodeRequest unlock;
  unlock.set_name(t.name());
  unlock.set_unlock_code("918273");
  auto ctx3 = TestServer::As("cs_agent");
  ASSERT_TRUE(stub->RecordUnlockCode(ctx3.get(), unlock, &t).ok());
  server_.Pump();
  ASSERT_TRUE(chat.WaitForFiles(".json", 1, absl::Seconds(10)));
  auto ping = ParseJson(chat.Files(".json")[0]);
  EXPECT_EQ(Field(ping, "path"), "/hooks/cs-handling");
  auto body = ParseJson(Field(ping, "body"));
  EXPECT_EQ(Field(body, "channel"), "#cs-handling");
  EXPECT_NE(Field(body, "text").find("V1000001"), std::string::npos);
  EXPECT_EQ(Field(body, "text").find("918273"), std::string::npos);
  EXPECT_FALSE(Header(ping, "x-casework-dedupe-key").empty());

  // Later emails go out in the SMTP session of the first, already past
  // STARTTLS and AUTH.
  CreateLockedTradeIn(server_.channel(), "V1000003");
  server_.Pump();
  CreateLockedTradeIn(server_.channel(), "V1000004");
  server_.Pump();
  ASSERT_TRUE(smtp.WaitForFiles(".env", 3, absl::Seconds(10)));
  const auto envelopes = smtp.Files(".env");
  ASSERT_EQ(envelopes.size(), 3u);
  for (const auto& text : envelopes) {
    auto later = ParseJson(text);
    EXPECT_EQ(later.fields().at("peer_port").number_value(), envelope.fields().at("peer_port").number_value());
    EXPECT_TRUE(later.fields().at("tls").bool_value());
    EXPECT_TRUE(later.fields().at("authenticated").bool_value());
  }
}

TEST_F(NotifyChannelsTest, AWebhookFailingThreeTimesIsAcceptedExactlyOnce) {
  Sink hook("http", dir_.path() + "/hook", {"--fail-first", "3"});
  ASSERT_GT(hook.port(), 0);
  const std::string secret = "whsec-0123456789";
  const std::string secret_file = testing::WriteFile(dir_.path() + "/hook-secret", secret);
  StartWithCrmWebhook(hook.port(), secret_file);
  CreateLockedTradeIn(server_.channel(), "V1000002");
  for (int i = 0; i < 8; ++i) {
    server_.Pump();
    server_.clock().Advance(absl::Minutes(1));
  }
  auto requests = hook.Files(".json");
  ASSERT_EQ(requests.size(), 4u);
  std::string key;
  const double port = ParseJson(requests[0]).fields().at("peer_port").number_value();
  for (size_t i = 0; i < requests.size(); ++i) {
    auto r = ParseJson(requests[i]);
    EXPECT_EQ(r.fields().at("status").number_value(), i < 3 ? 500 : 200);
    // Every attempt over the connection of the first: a 5xx answer leaves
    // it open.
    EXPECT_EQ(r.fields().at("peer_port").number_value(), port);
    if (key.empty()) key = Header(r, "x-casework-dedupe-key");
    EXPECT_EQ(Header(r, "x-casework-dedupe-key"), key);
    const std::string body = Field(r, "body");
    EXPECT_EQ(Header(r, "x-casework-signature"),
              notify::WebhookSignature(secret, Header(r, "x-casework-timestamp"), body));
    EXPECT_NE(notify::WebhookSignature("another secret", Header(r, "x-casework-timestamp"), body),
              Header(r, "x-casework-signature"));
    auto payload = ParseJson(body);
    EXPECT_EQ(Field(payload, "dedupe_key"), key);
    EXPECT_EQ(Field(payload, "reference"), "V1000002");
    EXPECT_EQ(Field(payload, "template"), "trade_in.contact.device_locked");
  }
  EXPECT_EQ(server_.Metric("casework_notifications_total{channel=\"email\",result=\"retry\"}"), 3);
  EXPECT_EQ(server_.Metric("casework_notifications_total{channel=\"email\",result=\"delivered\"}"), 1);
  EXPECT_EQ(server_.Metric("casework_outbox_pending"), 0);
}

// notifier.senders_per_channel sets how many messages a channel sends at
// once. The receiver holds every request until four are in flight (or
// three seconds pass): three senders send three at once, over three
// connections, and never a fourth.
TEST_F(NotifyChannelsTest, AChannelSendsAsManyMessagesAtOnceAsItHasSenders) {
  Sink hook("http", dir_.path() + "/hook", {"--gate", "4"});
  ASSERT_GT(hook.port(), 0);
  const std::string secret_file = testing::WriteFile(dir_.path() + "/hook-secret", "k");
  StartWithCrmWebhook(hook.port(), secret_file,
                      [](internal::NotifierConfig* n) { n->set_senders_per_channel(3); });
  constexpr int kCases = 8;  // an email each, to the webhook
  for (int i = 0; i < kCases; ++i) CreateLockedTradeIn(server_.channel(), absl::StrCat("V20000", 10 + i));
  server_.Pump();
  const auto requests = hook.Files(".json");
  ASSERT_EQ(requests.size(), static_cast<size_t>(kCases));
  double most_at_once = 0;
  std::set<double> connections;
  for (const auto& text : requests) {
    auto r = ParseJson(text);
    most_at_once = std::max(most_at_once, r.fields().at("in_flight").number_value());
    connections.insert(r.fields().at("peer_port").number_value());
  }
  EXPECT_EQ(most_at_once, 3);
  EXPECT_EQ(connections.size(), 3u);
  EXPECT_EQ(server_.Metric("casework_outbox_pending"), 0);
}

// A sender count outside 1-16 is refused at start, by name.
TEST(NotifyConfigTest, SendersPerChannelOutOfRangeIsRefused) {
  testing::TempDir dir;
  for (const char* senders : {"17", "-1"}) {
    const std::string config = testing::WriteFile(
        dir.path() + "/caseworkd.json",
        absl::StrCat(R"({"metrics_address":"off","plaintext":true,"auth":{"header_identity":true},)",
                     R"("data_dir":")", dir.path(), R"(/data","notifier":{"senders_per_channel":)", senders,
                     "}}"));
    // Bounded: a server that did start is stopped by `timeout` (124).
    const testing::CommandResult start = testing::RunCommand(
        absl::StrCat("timeout 20 ", CASEWORKD_PATH, " --config=", config, " --listen=127.0.0.1:0 2>&1"));
    EXPECT_EQ(start.exit_code, 2) << senders << ": " << start.out;
    EXPECT_NE(start.out.find("notifier: senders_per_channel must be between 1 and 16"), std::string::npos)
        << start.out;
  }
}

TEST_F(NotifyChannelsTest, TheSmsGatewayGetsTheConfiguredBodyAndToken) {
  Sink gateway("http", dir_.path() + "/sms");
  ASSERT_GT(gateway.port(), 0);
  internal::SmsConfig config;
  config.set_url(absl::StrCat("http://127.0.0.1:", gateway.port(), "/send"));
  config.set_body_template(R"({"msisdn":"{{to}}","message":"{{text}}","ref":"{{dedupe_key}}"})");
  auto sms = notify::NewSmsNotifier(config, "gw-token");
  internal::OutboxMessage m;
  m.set_dedupe_key("c9-4");
  m.set_channel(v1::CHANNEL_SMS);
  m.set_recipient("+27821234567");
  m.set_body("Je code: \"1234\"\nGroet");
  ASSERT_TRUE(sms->Deliver(m).ok());
  auto r = ParseJson(gateway.Files(".json").at(0));
  EXPECT_EQ(Header(r, "authorization"), "Bearer gw-token");
  auto body = ParseJson(Field(r, "body"));
  EXPECT_EQ(Field(body, "msisdn"), "+27821234567");
  EXPECT_EQ(Field(body, "message"), "Je code: \"1234\"\nGroet");
  EXPECT_EQ(Field(body, "ref"), "c9-4");
}

// The connection cache is the whole process's, where every lane's senders
// keep their connections: one to each of six receivers stays open, where
// libcurl would keep five by default.
TEST_F(NotifyChannelsTest, ConnectionsToSixReceiversAllStayOpen) {
  constexpr int kReceivers = 6;
  std::vector<std::unique_ptr<Sink>> hooks;
  internal::ChatConfig config;
  for (int i = 0; i < kReceivers; ++i) {
    hooks.push_back(std::make_unique<Sink>("http", absl::StrCat(dir_.path(), "/hook", i)));
    ASSERT_GT(hooks.back()->port(), 0);
    (*config.mutable_channel_urls())[absl::StrCat("#team", i)] =
        absl::StrCat("http://127.0.0.1:", hooks.back()->port(), "/hook");
  }
  auto chat = notify::NewChatNotifier(config);
  internal::OutboxMessage m;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kReceivers; ++i) {
      m.set_recipient(absl::StrCat("#team", i));
      ASSERT_TRUE(chat->Deliver(m).ok());
    }
  }
  for (int i = 0; i < kReceivers; ++i) {
    const auto requests = hooks[i]->Files(".json");
    ASSERT_EQ(requests.size(), 2u) << i;
    EXPECT_EQ(ParseJson(requests[0]).fields().at("peer_port").number_value(),
              ParseJson(requests[1]).fields().at("peer_port").number_value())
        << "receiver " << i;
  }
}

TEST_F(NotifyChannelsTest, UnreachableReceiversAreRetriedAndMissingSettingsAreNot) {
  internal::ChatConfig config;
  config.set_webhook_url("http://127.0.0.1:1/nothing-listens-here");
  auto chat = notify::NewChatNotifier(config);
  internal::OutboxMessage m;
  m.set_recipient("#ops");
  EXPECT_TRUE(absl::IsUnavailable(chat->Deliver(m)));  // connection refused: retry later
  internal::ChatConfig none;
  EXPECT_TRUE(absl::IsFailedPrecondition(notify::NewChatNotifier(none)->Deliver(m)));
}

// caseworkd killed after the receiver accepted a message but before the
// outbox recorded it: after restart the message is sent again with the same
// dedupe key, so the receiver can drop the repeat.
TEST_F(NotifyChannelsTest, AKillBetweenSendAndAcknowledgeResendsWithTheSameDedupeKey) {
  Sink hook("http", dir_.path() + "/hook");
  ASSERT_GT(hook.port(), 0);
  const std::string secret_file = testing::WriteFile(dir_.path() + "/hook-secret", "k");
  const int port = testing::FreePort();
  const std::string config = testing::WriteFile(
      dir_.path() + "/caseworkd.json",
      absl::StrCat(R"({"listen_address":"127.0.0.1:)", port,
                   R"(","metrics_address":"off","plaintext":true,"auth":{"header_identity":true},)",
                   R"("data_dir":")", dir_.path(), R"(/data","notifier":{"log":false,)",
                   R"("initial_backoff_ms":100,"webhooks":[{"name":"crm","url":"http://127.0.0.1:)",
                   hook.port(), R"(/h","secret_file":")", secret_file, R"("}],)",
                   R"("routes":[{"notifiers":["webhook:crm"]}]}})"));
  const std::string log = dir_.path() + "/caseworkd.log";
  auto start = [&](std::map<std::string, std::string> env) {
    auto p = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{CASEWORKD_PATH, "--config=" + config}, env, log);
    auto channel = testing::ConnectToChild(port);
    EXPECT_NE(channel, nullptr);
    return std::make_pair(std::move(p), channel);
  };

  auto [first, channel] = start({{"CASEWORK_CRASH_POINT", "outbox.after_deliver"}});
  CreateLockedTradeIn(channel, "V1000003");
  const int status = first->Wait(absl::Seconds(30));
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  ASSERT_EQ(hook.Files(".json").size(), 1u);

  auto [second, channel2] = start({});
  ASSERT_TRUE(hook.WaitForFiles(".json", 2, absl::Seconds(30)));
  second->Signal(SIGTERM);
  EXPECT_EQ(second->Wait(absl::Seconds(30)), 0);
  auto requests = hook.Files(".json");
  ASSERT_EQ(requests.size(), 2u);
  const auto a = ParseJson(requests[0]);
  const auto b = ParseJson(requests[1]);
  EXPECT_EQ(Header(a, "x-casework-dedupe-key"), Header(b, "x-casework-dedupe-key"));
  EXPECT_EQ(Field(ParseJson(Field(a, "body")), "body"), Field(ParseJson(Field(b, "body")), "body"));
}

}  // namespace
}  // namespace casework
