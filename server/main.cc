// caseworkd: the casework server.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/common/log.h"
#include "server/common/version.h"
#include "server/config.h"
#include "server/rpc/auth.h"
#include "server/server.h"
#include "storage/rocksdb_repository.h"

namespace {

constexpr char kUsage[] =
    "usage: caseworkd [--config=FILE] [--listen=HOST:PORT] [--data-dir=DIR]\n"
    "                 [--metrics=HOST:PORT|off] [--spool-dir=DIR] [--dev]\n"
    "       caseworkd --hash-token < token\n"
    "       caseworkd --version\n"
    "       caseworkd [--config=FILE] [--data-dir=DIR] --restore-backup=ID|latest\n"
    "\n"
    "Serves casework.v1's TradeInService, UnlockService, OtpSupportService,\n"
    "ProtectionClaimService, BoardService and AdminService, with\n"
    "grpc.health.v1.Health and server reflection.\n"
    "Defaults: --listen=127.0.0.1:7400 --metrics=127.0.0.1:9464\n"
    "--data-dir=./data (created if missing). Flags override the config file.\n"
    "SIGTERM or SIGINT drains in-flight calls and closes the store.\n"
    "\n"
    "Production needs TLS (tls.cert_file, tls.key_file) and a token file\n"
    "(auth.token_file). --dev serves plaintext and lets callers name\n"
    "themselves with x-casework-principal / x-casework-role metadata.\n"
    "--hash-token prints the token-file form of the token read from stdin.\n"
    "--restore-backup puts a backup (AdminService.CreateBackup, from backup_dir)\n"
    "in place of the store while caseworkd is stopped; the store it replaces\n"
    "is kept beside it as db.replaced-TIME. It exits 0 when restored, 2 on\n"
    "bad usage, 3 when there is no such backup, 6 while a server has the\n"
    "store open, 1 on any other failure (a damaged backup, the disk).\n";

// --restore-backup: the store of `config`'s data folder from its backup
// folder. Serves nothing, so the settings for serving are not needed.
int Restore(casework::internal::ServerConfig config, const std::string& which) {
  casework::DefaultFolders(&config);
  int64_t id = 0;
  if (which != "latest" && (!absl::SimpleAtoi(absl::StripPrefix(which, "backups/"), &id) || id <= 0)) {
    std::fprintf(stderr, "caseworkd: --restore-backup takes a backup's id (backups/3 or 3) or latest\n");
    return 2;
  }
  const std::string store = casework::StoreFolder(config);
  auto restored = casework::storage::RestoreRocksDbBackup(config.backup_dir(), id, store);
  if (!restored.ok()) {
    std::fprintf(stderr, "caseworkd: %s\n", std::string(restored.status().message()).c_str());
    // The exit codes casectl gives the same conditions.
    if (absl::IsNotFound(restored.status())) return 3;
    if (absl::IsFailedPrecondition(restored.status())) return 6;
    return 1;
  }
  const std::string backup = absl::StrCat("backups/", restored->id);
  const std::string taken = absl::FormatTime(absl::RFC3339_sec, restored->create_time, absl::UTCTimeZone());
  casework::Log(casework::LogLevel::kInfo, "backup_restored",
                {{"backup", backup}, {"taken", taken}, {"store", store}});
  std::printf("restored %s, taken %s, into %s\n", backup.c_str(), taken.c_str(), store.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil keeps a lock-order graph for every absl::Mutex (a
  // debug aid), and gRPC takes and creates such mutexes many times per call.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string config_path, listen, data_dir, metrics, spool_dir, restore;
  bool dev = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--hash-token") {
      std::string token;
      std::getline(std::cin, token);
      while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
      if (token.size() < 16) {
        std::fputs("caseworkd: a token must be at least 16 characters\n", stderr);
        return 2;
      }
      std::printf("%s\n", casework::rpc::HashToken(token).c_str());
      return 0;
    }
    if (arg == "--dev") {
      dev = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--version") {
      std::printf("caseworkd %s\n", casework::Version());
      return 0;
    }
    using casework::FlagValue;
    if (FlagValue(arg, "config", &config_path) || FlagValue(arg, "listen", &listen) ||
        FlagValue(arg, "data-dir", &data_dir) || FlagValue(arg, "metrics", &metrics) ||
        FlagValue(arg, "spool-dir", &spool_dir) || FlagValue(arg, "restore-backup", &restore)) {
      continue;
    }
    std::fprintf(stderr, "caseworkd: unknown argument %s\n\n%s", arg.c_str(), kUsage);
    return 2;
  }

  auto config = casework::LoadConfigFile(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "caseworkd: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  if (!listen.empty()) config->set_listen_address(listen);
  if (!data_dir.empty()) config->set_data_dir(data_dir);
  if (!metrics.empty()) config->set_metrics_address(metrics);
  if (!spool_dir.empty()) config->mutable_notifier()->set_spool_dir(spool_dir);
  if (!restore.empty()) return Restore(*std::move(config), restore);
  if (dev) {
    config->set_plaintext(true);
    config->mutable_auth()->set_header_identity(true);
  }
  auto finalized = casework::Finalize(*std::move(config));
  if (!finalized.ok()) {
    std::fprintf(stderr, "caseworkd: %s\n", std::string(finalized.status().message()).c_str());
    return 2;
  }

  // Signals are taken by sigwait below, never by another thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  casework::ServerOptions options;
  options.config = *std::move(finalized);
  auto server = casework::Server::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "caseworkd: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  std::printf("caseworkd listening on port %d\n", (*server)->port());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  casework::Log(casework::LogLevel::kInfo, "shutdown_requested",
                {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  (*server)->Shutdown(absl::Seconds(2));
  return 0;
}
