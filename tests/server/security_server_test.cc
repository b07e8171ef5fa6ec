// Access control through a real server: the RPC x role matrix generated
// from the one access table, bearer tokens from a hashed token file (with
// reload), TLS and mutual TLS with certificates made by the test.
#include <signal.h>

#include <filesystem>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "casework/v1/trade_in.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/common/certificates.h"
#include "server/common/secret_box.h"
#include "server/rpc/access.h"
#include "server/rpc/auth.h"
#include "server/rpc/rate_limiter.h"
#include "tests/testing/process.h"
#include "tests/testing/test_server.h"

namespace casework {
namespace {

using testing::TestServer;

const absl::Time kStart = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone());

TEST(AccessMatrixTest, EveryRpcAllowsExactlyTheRolesOfTheTable) {
  TestServer server(kStart);
  server.Start();
  auto access = rpc::AccessTable::Build(server.server().engine().workflows());
  ASSERT_TRUE(access.ok()) << access.status();
  int allowed = 0, denied = 0;
  for (const auto& [method, roles] : access->roles()) {
    for (const auto& role : workflow::AllRoles()) {
      auto ctx = TestServer::As(role);
      grpc::Status s = testing::CallRaw(server.channel(), "/" + method, "", ctx.get());
      const bool may = std::find(roles.begin(), roles.end(), role) != roles.end();
      if (may) {
        ++allowed;
        EXPECT_NE(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method << " as " << role;
        EXPECT_NE(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << method << " as " << role;
      } else {
        ++denied;
        EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method << " as " << role;
        EXPECT_NE(s.error_message().find("requires role"), std::string::npos) << s.error_message();
      }
    }
  }
  // Every RPC of the five services is in the table (Build checks it).
  EXPECT_GT(access->roles().size(), 80u);
  EXPECT_GT(allowed, 0);
  EXPECT_GT(denied, 0);
}

TEST(TokenFileTest, ParsesGrantsAndNamesTheBadLine) {
  const std::string hash = rpc::HashToken("a-long-random-token-0001");
  auto creds = rpc::ParseTokenFile(absl::StrCat("# agents\ntoken ", hash, " anna cs_agent,team_lead\n",
                                                "cert casectl-ops ops-bot ops\n"));
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ(creds->tokens.at(hash).principal, "anna");
  EXPECT_EQ(creds->tokens.at(hash).roles, (std::vector<std::string>{"cs_agent", "team_lead"}));
  EXPECT_EQ(creds->certs.at("casectl-ops").roles, std::vector<std::string>{"ops"});
  auto bad_role = rpc::ParseTokenFile(absl::StrCat("\ntoken ", hash, " anna wizard\n"));
  ASSERT_FALSE(bad_role.ok());
  EXPECT_NE(bad_role.status().message().find("line 2: unknown role wizard"), std::string::npos);
  EXPECT_FALSE(rpc::ParseTokenFile("token plaintext-token anna ops\n").ok());
}

// Operators read from the log how many callers a reload let in; the counts
// must not be masked like the secrets the file stands for.
TEST(TokenFileTest, ALoadLogsHowManyGrantsItRead) {
  testing::TempDir dir;
  const std::string file = testing::WriteFile(
      dir.path() + "/tokens",
      absl::StrCat("token ", rpc::HashToken("a-long-random-token-0001"), " anna cs_agent\n",
                   "token ", rpc::HashToken("a-long-random-token-0002"), " olaf ops\n",
                   "cert casectl-ops ops-bot ops\n"));
  ::testing::internal::CaptureStderr();
  auto auth = rpc::Authenticator::Make(file, /*header_identity=*/false);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_THAT(log, ::testing::HasSubstr(
                       R"("event":"token_file_loaded","bearer_grants":"2","certificate_grants":"1")"));
}

class TokenAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    token_file_ = dir_.path() + "/tokens";
    WriteTokens({{"token-for-anna-0001", "anna cs_agent,team_lead"}, {"token-for-olaf-0002", "olaf ops"}});
    server_.Start([&](internal::ServerConfig* c) {
      c->mutable_auth()->set_header_identity(false);
      c->mutable_auth()->set_token_file(token_file_);
    });
    stub_ = v1::TradeInService::NewStub(server_.channel());
  }
  void WriteTokens(const std::vector<std::pair<std::string, std::string>>& tokens) {
    std::string text = "# hashes only\n";
    for (const auto& [token, grant] : tokens) {
      absl::StrAppend(&text, "token ", rpc::HashToken(token), " ", grant, "\n");
    }
    testing::WriteFile(token_file_ + ".tmp", text);
    std::rename((token_file_ + ".tmp").c_str(), token_file_.c_str());
  }
  grpc::Status Board(const std::string& token, const std::string& role = "") {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    if (!role.empty()) ctx.AddMetadata("x-casework-role", role);
    v1::TradeInBoard board;
    return stub_->GetTradeInBoard(&ctx, v1::GetTradeInBoardRequest(), &board);
  }

  testing::TempDir dir_;
  std::string token_file_;
  TestServer server_{kStart};
  std::unique_ptr<v1::TradeInService::Stub> stub_;
};

TEST_F(TokenAuthTest, TokensIdentifyTheCallerAndTheFileReloads) {
  EXPECT_EQ(Board("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Board("no-such-token-000").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Board("token-for-anna-0001").ok());
  EXPECT_TRUE(Board("token-for-anna-0001", "team_lead").ok());
  EXPECT_EQ(Board("token-for-anna-0001", "admin").error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // The actor in the timeline is the token's principal, whatever the
  // metadata claims.
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer token-for-olaf-0002");
  ctx.AddMetadata("x-casework-principal", "mallory");
  v1::CreateTradeInRequest create;
  create.mutable_trade_in()->set_v_number("V2000001");
  create.mutable_trade_in()->set_s_number("S2000001");
  create.mutable_trade_in()->set_product_name("Galaxy S22");
  create.mutable_trade_in()->set_problem(v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  create.mutable_trade_in()->mutable_customer()->set_display_name("Jan");
  create.mutable_trade_in()->mutable_customer()->set_email("jan@example.nl");
  v1::TradeIn created;
  ASSERT_TRUE(stub_->CreateTradeIn(&ctx, create, &created).ok());
  grpc::ClientContext ctx2;
  ctx2.AddMetadata("authorization", "Bearer token-for-olaf-0002");
  v1::ListTradeInEventsRequest events;
  events.set_parent(created.name());
  v1::ListTradeInEventsResponse listed;
  ASSERT_TRUE(stub_->ListTradeInEvents(&ctx2, events, &listed).ok());
  ASSERT_GT(listed.events_size(), 0);
  EXPECT_EQ(listed.events(0).actor().principal(), "olaf");
  EXPECT_EQ(listed.events(0).actor().role(), "ops");

  // Olaf's token is revoked, a new one added: no restart needed.
  WriteTokens({{"token-for-anna-0001", "anna cs_agent"}, {"token-for-nina-0003", "nina ops"}});
  bool reloaded = false;
  for (int i = 0; i < 100 && !reloaded; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    reloaded = Board("token-for-nina-0003").ok();
  }
  EXPECT_TRUE(reloaded);
  EXPECT_EQ(Board("token-for-olaf-0002").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // A broken file keeps the last good one.
  testing::WriteFile(token_file_, "token nonsense\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_TRUE(Board("token-for-nina-0003").ok());
}

TEST(RateLimitTest, EachPrincipalHasItsOwnBudget) {
  TestServer server(kStart);
  server.Start([](internal::ServerConfig* c) {
    c->mutable_rate_limit()->set_requests_per_second(0.01);
    c->mutable_rate_limit()->set_burst(3);
  });
  auto stub = v1::TradeInService::NewStub(server.channel());
  auto board = [&](const std::string& role) {
    v1::TradeInBoard b;
    return stub->GetTradeInBoard(TestServer::As(role).get(), v1::GetTradeInBoardRequest(), &b);
  };
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(board("cs_agent").ok());
  grpc::Status s = board("cs_agent");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("test-cs_agent"), std::string::npos);
  EXPECT_TRUE(board("ops").ok());  // another principal
}

TEST(RateLimiterTest, RefillsAtTheConfiguredRate) {
  rpc::RateLimiter limiter(10, 2);
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(limiter.Admit("a", t0).ok());
  EXPECT_TRUE(limiter.Admit("a", t0).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(limiter.Admit("a", t0)));
  EXPECT_TRUE(limiter.Admit("a", t0 + absl::Milliseconds(100)).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(limiter.Admit("a", t0 + absl::Milliseconds(100))));
}

class TlsTest : public ::testing::Test {
 protected:
  void Start(bool require_client_cert) {
    pki_ = testing::MakePki(dir_.path(), "casectl-ops", /*days=*/2);
    ASSERT_FALSE(pki_.ca_cert.empty()) << "openssl could not make the test certificates";
    const std::string tokens = testing::WriteFile(
        dir_.path() + "/tokens", absl::StrCat("cert casectl-ops ops-bot ops\ntoken ",
                                              rpc::HashToken("token-for-anna-0001"), " anna cs_agent\n"));
    server_.Start([&](internal::ServerConfig* c) {
      c->set_plaintext(false);
      c->mutable_tls()->set_cert_file(pki_.server_cert);
      c->mutable_tls()->set_key_file(pki_.server_key);
      c->mutable_tls()->set_client_ca_file(pki_.ca_cert);
      c->mutable_tls()->set_require_client_cert(require_client_cert);
      c->mutable_auth()->set_header_identity(false);
      c->mutable_auth()->set_token_file(tokens);
      c->set_metrics_address("127.0.0.1:0");
    });
  }
  // A series without labels as /metrics serves it now; nullopt when absent.
  std::optional<double> Scraped(const std::string& name) {
    const std::string text = testing::HttpGet(server_.server().metrics_port(), "/metrics");
    const size_t at = text.find("\n" + name + " ");
    if (at == std::string::npos) return std::nullopt;
    return std::stod(text.substr(at + name.size() + 2));
  }
  // The certificate's expiry as /metrics tells it, in days from now.
  double DaysToExpiry() {
    const auto expiry = Scraped("casework_tls_certificate_expiry_timestamp_seconds");
    if (!expiry.has_value()) return -1;
    return (*expiry - absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch())) / 86400;
  }
  // A client trusting `pki`'s CA, on a connection of its own.
  std::unique_ptr<v1::TradeInService::Stub> Stub(bool with_client_cert) {
    return Stub(with_client_cert, pki_);
  }
  std::unique_ptr<v1::TradeInService::Stub> Stub(bool with_client_cert, const testing::Pki& pki) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = testing::ReadFile(pki.ca_cert);
    if (with_client_cert) {
      options.pem_private_key = testing::ReadFile(pki.client_key);
      options.pem_cert_chain = testing::ReadFile(pki.client_cert);
    }
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return v1::TradeInService::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_.server().port()),
                                  grpc::SslCredentials(options), args));
  }
  grpc::Status Board(v1::TradeInService::Stub& stub, const std::string& token = "") {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    v1::TradeInBoard board;
    return stub.GetTradeInBoard(&ctx, v1::GetTradeInBoardRequest(), &board);
  }

  testing::TempDir dir_;
  testing::Pki pki_;
  TestServer server_{kStart};
};

TEST_F(TlsTest, MutualTlsMapsTheClientCertificateToItsPrincipal) {
  Start(/*require_client_cert=*/true);
  auto with_cert = Stub(true);
  grpc::Status s = Board(*with_cert);
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  // Without a client certificate the handshake fails.
  auto without = Stub(false);
  EXPECT_EQ(Board(*without, "token-for-anna-0001").error_code(), grpc::StatusCode::UNAVAILABLE);
  // Plaintext cannot talk to a TLS port.
  auto plain = v1::TradeInService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", server_.server().port()), grpc::InsecureChannelCredentials()));
  EXPECT_EQ(Board(*plain, "token-for-anna-0001").error_code(), grpc::StatusCode::UNAVAILABLE);
}

// Certificates are renewed in place (a new CA too, here): new connections
// get them within seconds, without a restart, and a connection made before
// goes on.
TEST_F(TlsTest, RenewedCertificatesAreServedWithoutARestart) {
  Start(/*require_client_cert=*/true);
  auto before = Stub(true);
  ASSERT_TRUE(Board(*before).ok());
  EXPECT_NEAR(DaysToExpiry(), 2, 0.01);
  const testing::TempDir next_dir;
  const testing::Pki next = testing::MakePki(next_dir.path(), "casectl-ops", /*days=*/30);
  ASSERT_FALSE(next.ca_cert.empty()) << "openssl could not make the test certificates";
  EXPECT_EQ(Board(*Stub(true, next)).error_code(), grpc::StatusCode::UNAVAILABLE);

  // The first CA and client, kept aside before their files are replaced.
  testing::Pki first;
  for (auto [path, kept] : {std::pair{pki_.ca_cert, &first.ca_cert},
                            std::pair{pki_.client_cert, &first.client_cert},
                            std::pair{pki_.client_key, &first.client_key}}) {
    *kept = testing::WriteFile(path + ".first", testing::ReadFile(path));
  }
  // Each file replaced whole by a rename, as certificate tools do.
  ::testing::internal::CaptureStderr();
  for (const auto& [from, to] : {std::pair{next.server_key, pki_.server_key},
                                 std::pair{next.server_cert, pki_.server_cert},
                                 std::pair{next.ca_cert, pki_.ca_cert}}) {
    testing::WriteFile(to + ".new", testing::ReadFile(from));
    std::filesystem::rename(to + ".new", to);
  }
  bool renewed = false;
  for (int i = 0; i < 60 && !renewed; ++i) {
    renewed = Board(*Stub(true, next)).ok();
    if (!renewed) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_TRUE(renewed) << "the renewed certificate was not served within 15 s";
  EXPECT_NEAR(DaysToExpiry(), 30, 0.01);
  EXPECT_EQ(Scraped("casework_tls_key_matches_certificate"), 1);
  // A new connection of the first CA's client is refused; the connection
  // made before the renewal still serves.
  EXPECT_EQ(Board(*Stub(true, first)).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(Board(*before).ok());

  // A key that is not the certificate's shows at the next scrape.
  testing::WriteFile(pki_.server_key + ".new", testing::ReadFile(next.client_key));
  std::filesystem::rename(pki_.server_key + ".new", pki_.server_key);
  EXPECT_EQ(Scraped("casework_tls_key_matches_certificate"), 0);
  EXPECT_NEAR(DaysToExpiry(), 30, 0.01);
  // The log says when the renewal was read, and that the key went wrong.
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, ::testing::HasSubstr(absl::StrCat(
                       R"("event":"tls_certificate_loaded","cert_file":")", pki_.server_cert, R"(","not_after":")",
                       absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *CertificateExpiry(testing::ReadFile(next.server_cert)),
                                        absl::UTCTimeZone()))));
  EXPECT_THAT(log, ::testing::HasSubstr(R"("event":"tls_key_mismatch")"));
}

TEST_F(TlsTest, TlsWithBearerTokensWhenClientCertificatesAreOptional) {
  Start(/*require_client_cert=*/false);
  auto stub = Stub(false);
  EXPECT_EQ(Board(*stub).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status s = Board(*stub, "token-for-anna-0001");
  EXPECT_TRUE(s.ok()) << s.error_message();
}

}  // namespace
}  // namespace casework

namespace casework {
namespace {

TEST(SecretBoxTest, SealsOpensAndRotates) {
  auto old_ring = *SecretBox::FromText("k1 MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n");
  auto sealed = *old_ring->Seal("918273", "case-1/unlock_code");
  EXPECT_EQ(sealed.key_id, "k1");
  EXPECT_EQ(sealed.ciphertext.find("918273"), std::string::npos);
  EXPECT_EQ(*old_ring->Open(sealed, "case-1/unlock_code"), "918273");
  // Bound to its context, and tamper-evident.
  EXPECT_TRUE(absl::IsDataLoss(old_ring->Open(sealed, "case-2/unlock_code").status()));
  auto tampered = sealed;
  tampered.ciphertext[0] ^= 1;
  EXPECT_TRUE(absl::IsDataLoss(old_ring->Open(tampered, "case-1/unlock_code").status()));
  // Rotation: the new key seals, the old one still opens what it sealed.
  auto new_ring = *SecretBox::FromText(
      "# rotated\nk2 ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=\n"
      "k1 MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n");
  EXPECT_EQ(*new_ring->Open(sealed, "case-1/unlock_code"), "918273");
  EXPECT_EQ(new_ring->Seal("x", "c")->key_id, "k2");
  auto only_new = *SecretBox::FromText("k2 ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=\n");
  EXPECT_TRUE(absl::IsDataLoss(only_new->Open(sealed, "case-1/unlock_code").status()));
  EXPECT_FALSE(SecretBox::FromText("k1 c2hvcnQ=\n").ok());
}

TEST(SecretBoxTest, AConfiguredKeyFileIsNeverCreatedAndTheRefusalSaysHowToMakeOne) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/secrets.key";
  auto refused = SecretBox::Load(path, /*create=*/false);
  ASSERT_TRUE(absl::IsInvalidArgument(refused.status()));
  EXPECT_THAT(std::string(refused.status().message()),
              ::testing::HasSubstr(absl::StrCat("openssl rand -base64 32)\" > ", path, ")")));
  EXPECT_FALSE(std::filesystem::exists(path));
  // The default path is made with a fresh key, readable by its owner only.
  ASSERT_TRUE(SecretBox::Load(path, /*create=*/true).ok());
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_TRUE(SecretBox::Load(path, /*create=*/false).ok());
}

// The configuration of a caseworkd child in `dir` serving TLS with `cert`
// and `key` on 127.0.0.1:`port`, with one token (anna, cs_agent).
std::string TlsConfigFile(const std::string& dir, int port, const std::string& cert,
                          const std::string& key) {
  const std::string tokens = testing::WriteFile(
      dir + "/tokens", absl::StrCat("token ", rpc::HashToken("token-for-anna-0001"), " anna cs_agent\n"));
  return testing::WriteFile(
      dir + "/config.json",
      absl::StrCat(R"({"listenAddress": "127.0.0.1:)", port, R"(", "dataDir": ")", dir,
                   R"(/data", "metricsAddress": "off", "tls": {"certFile": ")", cert,
                   R"(", "keyFile": ")", key, R"("}, "auth": {"tokenFile": ")", tokens, R"("}})"));
}

// A plaintext client at a TLS port makes gRPC itself log the failed
// handshake. That line is JSON like the server's own, so whatever reads the
// log reads one format.
TEST(ServerLogTest, GrpcsOwnMessagesAreJsonLinesToo) {
  testing::TempDir dir;
  const testing::Pki pki = testing::MakePki(dir.path(), "casectl-ops");
  ASSERT_FALSE(pki.ca_cert.empty()) << "openssl could not make the test certificates";
  const int port = testing::FreePort();
  const std::string config = TlsConfigFile(dir.path(), port, pki.server_cert, pki.server_key);
  const std::string log = dir.path() + "/caseworkd.log";
  testing::ChildProcess server({CASEWORKD_PATH, "--config=" + config}, {}, log);
  ASSERT_TRUE(absl::StartsWith(server.ReadLine(), "caseworkd listening")) << testing::ReadFile(log);

  auto plain = v1::TradeInService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::TradeInBoard board;
  EXPECT_EQ(plain->GetTradeInBoard(&ctx, v1::GetTradeInBoardRequest(), &board).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  bool handshake = false;
  for (int i = 0; i < 100 && !handshake; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    handshake = absl::StrContains(testing::ReadFile(log), "Handshake failed");
  }
  server.Signal(SIGTERM);
  server.Wait(absl::Seconds(10));
  EXPECT_TRUE(handshake);
  bool from_grpc = false;
  for (absl::string_view line : absl::StrSplit(testing::ReadFile(log), '\n', absl::SkipEmpty())) {
    google::protobuf::Struct entry;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(line), &entry).ok()) << line;
    const auto& f = entry.fields();
    if (f.at("event").string_value() != "grpc") continue;
    from_grpc = true;
    EXPECT_EQ(f.at("level").string_value(), "error");
    EXPECT_THAT(f.at("message").string_value(), ::testing::HasSubstr("Handshake failed"));
  }
  EXPECT_TRUE(from_grpc);
}

TEST(CertificatesTest, AKeyMustBeItsCertificatesAndTheExpiryIsRead) {
  testing::TempDir dir;
  const testing::Pki pki = testing::MakePki(dir.path(), "casectl-ops", /*days=*/3);
  ASSERT_FALSE(pki.ca_cert.empty()) << "openssl could not make the test certificates";
  const std::string cert = testing::ReadFile(pki.server_cert);
  EXPECT_TRUE(CheckKeyPair(cert, testing::ReadFile(pki.server_key)).ok());
  EXPECT_THAT(CheckKeyPair(cert, testing::ReadFile(pki.client_key)).message(),
              ::testing::HasSubstr("does not hold the certificate's key"));
  EXPECT_THAT(CheckKeyPair(cert, cert).message(), ::testing::HasSubstr("no PEM private key"));
  EXPECT_THAT(CheckKeyPair("not a certificate", testing::ReadFile(pki.server_key)).message(),
              ::testing::HasSubstr("no PEM certificate"));

  auto expiry = CertificateExpiry(cert);
  ASSERT_TRUE(expiry.ok()) << expiry.status();
  EXPECT_LT(absl::AbsDuration(*expiry - (absl::Now() + absl::Hours(72))), absl::Minutes(5));
  EXPECT_FALSE(CertificateExpiry("").ok());
}

// Each check reads the files again; what changed is logged once, and a
// check that finds nothing new logs nothing.
TEST(TlsFileWatchTest, LogsEachChangeOfTheCertificateOrKeyOnce) {
  testing::TempDir dir, next_dir;
  const testing::Pki pki = testing::MakePki(dir.path(), "casectl-ops", /*days=*/3);
  const testing::Pki next = testing::MakePki(next_dir.path(), "casectl-ops", /*days=*/30);
  ASSERT_FALSE(pki.ca_cert.empty() || next.ca_cert.empty()) << "openssl could not make the test certificates";
  const std::string cert = dir.path() + "/served.pem", key = dir.path() + "/served.key";
  auto put = [](const std::string& from, const std::string& to) {
    testing::WriteFile(to + ".new", testing::ReadFile(from));
    std::filesystem::rename(to + ".new", to);
  };
  put(pki.server_cert, cert);
  put(pki.server_key, key);
  auto not_after = [](const testing::Pki& p) {
    return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *CertificateExpiry(testing::ReadFile(p.server_cert)),
                            absl::UTCTimeZone());
  };
  TlsFileWatch watch(cert, key);
  // What one check logs.
  auto check = [&watch](TlsFileWatch::Reading* reading) {
    ::testing::internal::CaptureStderr();
    *reading = watch.Check();
    return ::testing::internal::GetCapturedStderr();
  };
  TlsFileWatch::Reading now;

  EXPECT_THAT(check(&now), ::testing::HasSubstr(absl::StrCat(R"("event":"tls_certificate_loaded","cert_file":")",
                                                             cert, R"(","not_after":")", not_after(pki), "\"")));
  EXPECT_TRUE(now.key_matches);
  EXPECT_EQ(now.certificate_expiry, *CertificateExpiry(testing::ReadFile(pki.server_cert)));
  EXPECT_EQ(check(&now), "");

  put(pki.client_key, key);
  const std::string mismatch = check(&now);
  EXPECT_THAT(mismatch, ::testing::HasSubstr(R"("level":"error","event":"tls_key_mismatch")"));
  EXPECT_THAT(mismatch, ::testing::HasSubstr("does not hold the certificate's key; new connections fail"));
  EXPECT_FALSE(now.key_matches);
  EXPECT_EQ(check(&now), "");

  // Renewed: the new pair, key first, as a renewal puts it in place.
  put(next.server_key, key);
  put(next.server_cert, cert);
  EXPECT_THAT(check(&now), ::testing::HasSubstr(absl::StrCat(R"("not_after":")", not_after(next), "\"")));
  EXPECT_TRUE(now.key_matches);

  testing::WriteFile(cert, "not a certificate");
  EXPECT_THAT(check(&now), ::testing::HasSubstr(R"("event":"tls_certificate_unreadable")"));
  EXPECT_FALSE(now.certificate_expiry.has_value());
  EXPECT_FALSE(now.key_matches);
  EXPECT_EQ(check(&now), "");
}

// Serving a certificate with another certificate's key would fail every
// handshake; caseworkd refuses to start instead, naming both files.
TEST(ServerStartTest, AKeyThatIsNotTheCertificatesIsRefused) {
  testing::TempDir dir;
  const testing::Pki pki = testing::MakePki(dir.path(), "casectl-ops");
  ASSERT_FALSE(pki.ca_cert.empty()) << "openssl could not make the test certificates";
  const std::string config = TlsConfigFile(dir.path(), 0, pki.server_cert, pki.client_key);
  // Bounded: a server that did start is stopped by `timeout` (124).
  const testing::CommandResult start =
      testing::RunCommand(absl::StrCat("timeout 20 ", CASEWORKD_PATH, " --config=", config, " 2>&1"));
  EXPECT_EQ(start.exit_code, 1) << start.out;
  EXPECT_THAT(start.out, ::testing::HasSubstr(absl::StrCat("tls: cert_file ", pki.server_cert, ", key_file ",
                                                           pki.client_key, ": the key file does not hold")));
}

// A second caseworkd given a port that one already serves does not start:
// gRPC would otherwise share the port between them and split the calls.
TEST(ServerStartTest, APortInUseIsRefused) {
  testing::TempDir dir;
  const int port = testing::FreePort();
  const std::string first_log = dir.path() + "/first.log";
  testing::ChildProcess first({CASEWORKD_PATH, "--dev", "--data-dir=" + dir.path() + "/first",
                               absl::StrCat("--listen=127.0.0.1:", port), "--metrics=off"},
                              {}, first_log);
  ASSERT_TRUE(absl::StartsWith(first.ReadLine(), "caseworkd listening")) << testing::ReadFile(first_log);
  // Bounded: a second server that did start is stopped by `timeout` (124).
  const testing::CommandResult second = testing::RunCommand(
      absl::StrCat("timeout 20 ", CASEWORKD_PATH, " --dev --data-dir=", dir.path(), "/second --listen=127.0.0.1:",
                   port, " --metrics=off 2>&1"));
  first.Signal(SIGTERM);
  first.Wait(absl::Seconds(10));
  EXPECT_EQ(second.exit_code, 1) << second.out;
  EXPECT_THAT(second.out, ::testing::HasSubstr(absl::StrCat("cannot listen on 127.0.0.1:", port)));
}

// A known unlock code goes through a real caseworkd, which is then killed
// with SIGKILL (so the write-ahead log is all there is): the code is in no
// file of the data folder and not in the log, and after a restart ops can
// still reveal it.
TEST(SecretsAtRestTest, AKnownCodeAppearsNowhereInPlaintext) {
  testing::TempDir dir;
  const std::string code = "7391-QX-unique-5521";
  const int port = testing::FreePort();
  const std::string data = dir.path() + "/data";
  const std::string log = dir.path() + "/caseworkd.log";
  auto start = [&] {
    auto p = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{CASEWORKD_PATH, "--dev", "--metrics=off", "--data-dir=" + data,
                                 absl::StrCat("--listen=127.0.0.1:", port)},
        std::map<std::string, std::string>{}, log);
    auto channel = testing::ConnectToChild(port);
    EXPECT_NE(channel, nullptr);
    return std::make_pair(std::move(p), v1::TradeInService::NewStub(channel));
  };
  auto [server, stub] = start();
  v1::CreateTradeInRequest create;
  create.mutable_trade_in()->set_v_number("V3000001");
  create.mutable_trade_in()->set_s_number("S3000001");
  create.mutable_trade_in()->set_product_name("Galaxy S22");
  create.mutable_trade_in()->set_problem(v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  create.mutable_trade_in()->mutable_customer()->set_display_name("Jan");
  create.mutable_trade_in()->mutable_customer()->set_email("jan@example.nl");
  v1::TradeIn t;
  ASSERT_TRUE(stub->CreateTradeIn(TestServer::As("ops").get(), create, &t).ok());
  v1::ContactCustomerRequest contact;
  contact.set_name(t.name());
  ASSERT_TRUE(stub->ContactCustomer(TestServer::As("cs_agent").get(), contact, &t).ok());
  v1::RecordUnlockCodeRequest record;
  record.set_name(t.name());
  record.set_unlock_code(code);
  ASSERT_TRUE(stub->RecordUnlockCode(TestServer::As("cs_agent").get(), record, &t).ok());
  v1::RevealUnlockCodeRequest reveal;
  reveal.set_name(t.name());
  v1::RevealUnlockCodeResponse revealed;
  ASSERT_TRUE(stub->RevealUnlockCode(TestServer::As("ops").get(), reveal, &revealed).ok());
  EXPECT_EQ(revealed.unlock_code(), code);
  server->Signal(SIGKILL);
  server->Wait(absl::Seconds(10));

  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(data)) {
    if (!e.is_regular_file()) continue;
    ++files;
    EXPECT_EQ(testing::ReadFile(e.path().string()).find(code), std::string::npos) << e.path();
  }
  EXPECT_GT(files, 3);
  const std::string log_text = testing::ReadFile(log);
  EXPECT_NE(log_text.find("server_started"), std::string::npos);
  EXPECT_EQ(log_text.find(code), std::string::npos);

  auto [again, stub2] = start();
  v1::RevealUnlockCodeResponse after;
  grpc::Status s = stub2->RevealUnlockCode(TestServer::As("ops").get(), reveal, &after);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(after.unlock_code(), code);
}

}  // namespace
}  // namespace casework
