#include "server/server.h"

#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpc/health/v1/health.pb.h"
#include "grpc/support/log.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "server/common/certificates.h"
#include "server/common/files.h"
#include "server/common/happens_before.h"
#include "server/common/log.h"
#include "server/common/thread_name.h"
#include "server/common/version.h"
#include "server/common/worker_pool.h"
#include "server/config.h"
#include "server/metrics/metrics.h"
#include "server/notify/notifier.h"
#include "server/notify/templates.h"
#include "server/rpc/board_service.h"
#include "server/rpc/admin_service.h"
#include "server/rpc/trade_in_service.h"
#include "server/rpc/otp_support_service.h"
#include "server/rpc/protection_service.h"
#include "server/workflow/claim_workflow.h"
#include "server/workflow/enrollment_workflow.h"
#include "server/rpc/unlock_service.h"
#include "server/workflow/otp_workflow.h"
#include "server/workflow/unlock_workflow.h"
#include "server/workflow/trade_in_workflow.h"
#include "storage/rocksdb_repository.h"

namespace casework {

constexpr int kMaxMessageBytes = 8 << 20;

struct Server::State {
  ServerOptions options;
  RealClock real_clock;
  const Clock* clock = nullptr;
  std::unique_ptr<storage::Repository> repo;
  std::unique_ptr<metrics::Metrics> metrics;
  std::shared_ptr<TlsFileWatch> tls_watch;  // unset when serving plaintext
  std::unique_ptr<notify::TemplateStore> templates;
  std::unique_ptr<sla::CalendarStore> calendars;
  std::unique_ptr<directory::StoredAccountDirectory> accounts;
  std::unique_ptr<directory::StoredProfileDirectory> profiles;
  std::unique_ptr<directory::PlanCatalogue> plans;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<notify::Router> router;
  std::unique_ptr<notify::Dispatcher> dispatcher;
  std::unique_ptr<timers::TimerLoop> timers;
  std::unique_ptr<WorkerPool> pool;
  std::unique_ptr<SecretBox> secrets;
  std::unique_ptr<engine::ChangeFeed> feed;
  std::unique_ptr<rpc::AccessTable> access;
  std::unique_ptr<rpc::Authenticator> auth;
  std::unique_ptr<rpc::RateLimiter> limiter;
  std::vector<std::unique_ptr<grpc::Service>> services;
  std::unique_ptr<grpc::Server> grpc_server;
  int port = 0;
  std::thread policy_thread;
  std::once_flag shutdown_once;
};

namespace {

workflow::TradeInPolicy TradeInPolicyOf(const internal::TradeInConfig& c) {
  workflow::TradeInPolicy p;
  p.reminder_interval = absl::Hours(24) * c.reminder_interval_days();
  p.max_reminders = c.max_reminders();
  p.no_response_after = absl::Hours(24) * c.no_response_days();
  p.proof_of_purchase_products.assign(c.proof_of_purchase_products().begin(),
                                      c.proof_of_purchase_products().end());
  p.ops_chat_channel = c.ops_chat_channel();
  return p;
}

workflow::OtpPolicy OtpPolicyOf(const internal::OtpSupportConfig& c) {
  workflow::OtpPolicy p;
  p.question_ids.assign(c.security_question_ids().begin(), c.security_question_ids().end());
  p.email_domain_corrections.insert(c.email_domain_corrections().begin(),
                                    c.email_domain_corrections().end());
  p.ticket_forms.assign(c.ticket_forms().begin(), c.ticket_forms().end());
  p.query_types.assign(c.query_types().begin(), c.query_types().end());
  p.team_lead_channel = c.team_lead_channel();
  p.product_channel = c.product_channel();
  p.ops_channel = c.ops_channel();
  return p;
}

// How often the TLS certificate, key and client CA are read again.
constexpr unsigned kTlsRereadSeconds = 5;

// TLS (mutual when a client CA is given) or, when configured so for
// development, plaintext. The files are read at start, so that a missing
// one, or a key that is not the certificate's, stops the server with their
// names. gRPC reads them again every kTlsRereadSeconds: a renewed
// certificate, key or CA is served to new connections without a restart,
// while connections already made go on as they are.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TransportCredentials(
    const internal::ServerConfig& config) {
  if (config.plaintext()) {
    Log(LogLevel::kWarning, "plaintext_transport",
        {{"warning", "gRPC is served WITHOUT TLS: development only, never in production"}});
    return grpc::InsecureServerCredentials();
  }
  const auto& tls = config.tls();
  const std::string cert = ReadWholeFile(tls.cert_file()).value_or("");
  const std::string key = ReadWholeFile(tls.key_file()).value_or("");
  if (cert.empty() || key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("tls: cannot read cert_file ", tls.cert_file(),
                                                   " or key_file ", tls.key_file()));
  }
  if (absl::Status pair = CheckKeyPair(cert, key); !pair.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("tls: cert_file ", tls.cert_file(),
                                                   ", key_file ", tls.key_file(), ": ",
                                                   pair.message()));
  }
  const bool mutual = !tls.client_ca_file().empty();
  if (mutual && ReadWholeFile(tls.client_ca_file()).value_or("").empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls: cannot read client_ca_file ", tls.client_ca_file()));
  }
  auto files = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file(), tls.cert_file(), tls.client_ca_file(), kTlsRereadSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(files);
  options.watch_identity_key_cert_pairs();
  if (mutual) {
    options.watch_root_certs();
    options.set_cert_request_type(tls.require_client_cert()
                                      ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                      : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

// gRPC's own messages (errors only, at its default verbosity: a failed TLS
// handshake, say) become log lines like every other, so that whatever reads
// the log reads one format.
void LogGrpcMessage(gpr_log_func_args* args) {
  const char* file = args->file != nullptr ? args->file : "";
  const char* slash = std::strrchr(file, '/');
  Log(args->severity == GPR_LOG_SEVERITY_ERROR ? LogLevel::kError : LogLevel::kInfo, "grpc",
      {{"message", args->message != nullptr ? args->message : ""},
       {"source", absl::StrCat(slash != nullptr ? slash + 1 : file, ":", args->line)}});
}

}  // namespace

Server::Server(std::unique_ptr<State> state) : state_(std::move(state)) {}

Server::~Server() { Shutdown(); }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  gpr_set_log_function(LogGrpcMessage);
  auto s = std::make_unique<State>();
  s->options = options;
  s->clock = options.clock != nullptr ? options.clock : &s->real_clock;
  const auto& config = s->options.config;

  // Missing or mismatched TLS files stop the start before the store opens.
  auto credentials = TransportCredentials(config);
  if (!credentials.ok()) return credentials.status();

  std::error_code ec;
  std::filesystem::create_directories(config.data_dir(), ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create data folder ", config.data_dir(), ": ", ec.message()));
  }
  storage::RocksDbOptions store;
  store.path = StoreFolder(config);
  store.min_free_bytes = std::max<int64_t>(0, config.min_free_disk_bytes());
  store.bulk_load = options.bulk_load;
  auto repo = storage::OpenRocksDbRepository(store);
  if (!repo.ok()) return repo.status();
  s->repo = *std::move(repo);

  s->metrics = std::make_unique<metrics::Metrics>();
  if (!config.plaintext()) {
    // Read as gRPC reads them: what a renewal or a wrong key changed is
    // logged, and shown at each scrape.
    s->tls_watch = std::make_shared<TlsFileWatch>(config.tls().cert_file(), config.tls().key_file());
    s->tls_watch->Check();
    if (options.background) s->tls_watch->CheckEvery(absl::Seconds(kTlsRereadSeconds));
    s->metrics->ExportTlsFiles([watch = s->tls_watch]() {
      const TlsFileWatch::Reading now = watch->Check();
      metrics::Metrics::TlsFiles files;
      files.certificate_expiry = now.certificate_expiry;
      files.key_matches = now.key_matches;
      return files;
    });
  }
  if (config.metrics_address() != "off") {
    if (auto st = s->metrics->Serve(config.metrics_address()); !st.ok()) return st;
  }
  // The age of the newest good backup is watched; a folder that cannot be
  // read, and backups that could not be restored, are reported.
  if (auto backups = s->repo->ListBackups(config.backup_dir()); !backups.ok()) {
    Log(LogLevel::kWarning, "backups_unreadable",
        {{"folder", config.backup_dir()}, {"error", std::string(backups.status().message())}});
  } else if (auto damaged = rpc::ObserveBackups(*backups, s->metrics.get()); !damaged.empty()) {
    Log(LogLevel::kWarning, "backups_damaged",
        {{"folder", config.backup_dir()}, {"backups", absl::StrJoin(damaged, ",")}});
  }

  auto trade_in = workflow::NewTradeInWorkflow(TradeInPolicyOf(config.trade_in()));
  auto unlock = workflow::NewUnlockWorkflow(workflow::UnlockPolicy{});
  auto otp = workflow::NewOtpWorkflow(OtpPolicyOf(config.otp_support()));
  auto enrollment = workflow::NewEnrollmentWorkflow();
  auto claim = workflow::NewClaimWorkflow();
  s->templates = std::make_unique<notify::TemplateStore>(
      s->repo.get(), std::map<std::string, std::vector<std::string>>{
                         {trade_in->spec().kind, trade_in->TemplateFields()},
                         {unlock->spec().kind, unlock->TemplateFields()},
                         {otp->spec().kind, otp->TemplateFields()},
                         {enrollment->spec().kind, enrollment->TemplateFields()},
                         {claim->spec().kind, claim->TemplateFields()}});
  s->plans = std::make_unique<directory::PlanCatalogue>(s->repo.get());
  s->accounts = std::make_unique<directory::StoredAccountDirectory>(s->repo.get());
  s->profiles = std::make_unique<directory::StoredProfileDirectory>(s->repo.get());
  s->calendars = std::make_unique<sla::CalendarStore>(s->repo.get());
  if (auto st = s->calendars->Load(s->clock->Now()); !st.ok()) return st;
  s->engine = std::make_unique<engine::Engine>(s->repo.get(), s->clock, s->templates.get(),
                                               s->calendars.get(), s->metrics.get());
  const std::string key_file = config.secrets_key_file().empty()
                                   ? config.data_dir() + "/secrets.key"
                                   : config.secrets_key_file();
  auto secrets = SecretBox::Load(key_file, /*create=*/config.secrets_key_file().empty());
  if (!secrets.ok()) return secrets.status();
  s->secrets = *std::move(secrets);
  s->engine->SetSecretBox(s->secrets.get());
  s->feed = std::make_unique<engine::ChangeFeed>();
  s->engine->SetChangeFeed(s->feed.get());
  s->engine->Register(std::move(trade_in));
  s->engine->Register(std::move(unlock));
  s->engine->Register(std::move(otp));
  s->engine->Register(std::move(enrollment));
  s->engine->Register(std::move(claim));
  if (auto st = s->templates->InstallDefaults(s->clock->Now()); !st.ok()) return st;
  if (auto st = s->engine->UpgradeStore(); !st.ok()) return st.status();
  if (auto st = s->engine->LoadBoards(); !st.ok()) return st;

  auto router = notify::BuildRouter(config.notifier());
  if (!router.ok()) return router.status();
  s->router = *std::move(router);
  notify::RetryPolicy retry;
  retry.max_attempts = config.notifier().max_attempts();
  retry.initial_backoff = absl::Milliseconds(config.notifier().initial_backoff_ms());
  retry.max_backoff = absl::Milliseconds(config.notifier().max_backoff_ms());
  s->dispatcher = std::make_unique<notify::Dispatcher>(s->repo.get(), s->router.get(), s->clock,
                                                       s->metrics.get(), retry,
                                                       config.notifier().senders_per_channel());
  // An undelivered message is told on its case's timeline, where the agent
  // who waits for the customer's answer looks.
  s->dispatcher->SetDeadLetterListener([engine = s->engine.get()](const internal::OutboxMessage& m) {
    engine->NoteNotification(workflow::kNotificationFailedAction, {"system", workflow::kSystem}, m);
  });
  s->timers = std::make_unique<timers::TimerLoop>(s->repo.get(), s->engine.get(), s->clock,
                                                  s->metrics.get());
  auto* timers = s->timers.get();
  auto* dispatcher = s->dispatcher.get();
  if (options.background) {
    s->engine->SetCommitListener(
        [timers, dispatcher](bool armed, absl::Time due, const std::vector<v1::Channel>& outbox) {
          if (armed) timers->Armed(due);
          if (!outbox.empty()) dispatcher->Wake(outbox);
        });
  }

  s->pool = std::make_unique<WorkerPool>(config.worker_threads(), "rpc-work");
  auto access = rpc::AccessTable::Build(s->engine->workflows());
  if (!access.ok()) return access.status();
  s->access = std::make_unique<rpc::AccessTable>(*std::move(access));
  auto auth = rpc::Authenticator::Make(config.auth().token_file(), config.auth().header_identity());
  if (!auth.ok()) return auth.status();
  s->auth = *std::move(auth);
  if (config.auth().header_identity()) {
    Log(LogLevel::kWarning, "header_identity",
        {{"warning", "callers may name themselves with metadata: development only, never in production"}});
  }
  s->limiter = std::make_unique<rpc::RateLimiter>(config.rate_limit().requests_per_second(),
                                                  config.rate_limit().burst());
  const rpc::RpcEnv env{s->pool.get(), s->metrics.get(), s->auth.get(), s->access.get(),
                        s->limiter.get()};
  s->services.push_back(rpc::NewTradeInService(s->engine.get(), env));
  s->services.push_back(rpc::NewUnlockService(s->engine.get(), s->accounts.get(), env));
  s->services.push_back(rpc::NewOtpSupportService(s->engine.get(), s->profiles.get(), env));
  s->services.push_back(rpc::NewProtectionService(s->engine.get(), s->plans.get(), env));
  s->services.push_back(rpc::NewBoardService(s->engine.get(), s->feed.get(), env));
  s->services.push_back(rpc::NewAdminService(s->templates.get(), s->calendars.get(),
                                             s->engine.get(), s->accounts.get(),
                                             s->profiles.get(), s->repo.get(), s->clock,
                                             config.notifier().spool_dir(),
                                             {config.backup_dir(), config.backups_kept()}, env));

  // Linked so that reflection can describe grpc.health.v1.Health.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC lets other processes bind the same port by default, and a second
  // server on it would silently take a share of the calls; here it fails
  // to start instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(config.listen_address(), *credentials, &s->port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  // Calls beyond this many on one connection wait in the client, not here.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, config.max_concurrent_streams());
  for (auto& service : s->services) builder.RegisterService(service.get());
  s->grpc_server = builder.BuildAndStart();
  if (!s->grpc_server || s->port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config.listen_address(), " (another process may be using it)"));
  }
  auto* health = s->grpc_server->GetHealthCheckService();
  health->SetServingStatus(true);
  for (const auto& name : rpc::CaseworkServices()) health->SetServingStatus(name, true);

  // Clocks started under an edited SLA policy move onto the new one, and
  // clocks left on a deleted calendar move off it; in the background, so
  // that serving starts at once.
  auto* engine = s->engine.get();
  auto apply_policies = [engine] {
    auto changed = engine->RecomputePolicies();
    if (!changed.ok()) {
      Log(LogLevel::kError, "sla_policy_recompute_failed",
          {{"error", std::string(changed.status().message())}});
    }
    auto moved = engine->MoveOffDeletedCalendars();
    if (!moved.ok()) {
      Log(LogLevel::kError, "calendar_move_failed", {{"error", std::string(moved.status().message())}});
    }
  };
  if (options.background) {
    s->timers->Start();      // fires timers that fell due while we were down
    s->dispatcher->Start();  // resumes delivery of the outbox
    s->policy_thread = std::thread([apply_policies] {
      NameThisThread("policies");
      apply_policies();
    });
  } else {
    apply_policies();
  }
  Log(LogLevel::kInfo, "server_started",
      {{"version", Version()},
       {"listen", absl::StrCat(config.listen_address(), " (port ", s->port, ")")},
       {"metrics_port", absl::StrCat(s->metrics->port())},
       {"data_dir", config.data_dir()}});
  return std::unique_ptr<Server>(new Server(std::move(s)));
}

int Server::port() const { return state_->port; }
int Server::metrics_port() const { return state_->metrics->port(); }
engine::Engine& Server::engine() { return *state_->engine; }
storage::Repository& Server::repository() { return *state_->repo; }
timers::TimerLoop& Server::timers() { return *state_->timers; }
notify::Dispatcher& Server::dispatcher() { return *state_->dispatcher; }
metrics::Metrics& Server::metrics() { return *state_->metrics; }

void Server::Shutdown(absl::Duration grace) {
  std::call_once(state_->shutdown_once, [&] {
    auto& s = *state_;
    if (auto* health = s.grpc_server->GetHealthCheckService()) health->SetServingStatus(false);
    s.grpc_server->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    if (s.policy_thread.joinable()) s.policy_thread.join();
    s.timers->Stop();
    s.dispatcher->Stop();
    s.pool.reset();  // finishes queued work
    s.grpc_server->Wait();
    HappensAfter(s.feed.get());  // every board stream has unsubscribed
    s.engine->Stop();  // writes the changes already submitted
    s.repo.reset();  // closes RocksDB
    Log(LogLevel::kInfo, "server_stopped");
  });
}

}  // namespace casework
