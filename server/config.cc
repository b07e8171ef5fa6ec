#include "server/config.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "server/common/files.h"

namespace casework {

absl::StatusOr<internal::ServerConfig> LoadConfigFile(const std::string& path) {
  internal::ServerConfig config;
  if (path.empty()) return config;
  auto text = ReadWholeFile(path);
  if (!text) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto s = google::protobuf::util::JsonStringToMessage(*text, &config, options);
  if (!s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config file ", path, ": ", s.ToString()));
  }
  return config;
}

void DefaultFolders(internal::ServerConfig* c) {
  if (c->data_dir().empty()) c->set_data_dir("./data");
  if (c->backup_dir().empty()) c->set_backup_dir(c->data_dir() + "/backups");
}

std::string StoreFolder(const internal::ServerConfig& config) { return config.data_dir() + "/db"; }

absl::StatusOr<internal::ServerConfig> Finalize(internal::ServerConfig c) {
  if (c.listen_address().empty()) c.set_listen_address("127.0.0.1:7400");
  if (c.metrics_address().empty()) c.set_metrics_address("127.0.0.1:9464");
  DefaultFolders(&c);
  if (c.durability().empty()) c.set_durability("sync");
  if (c.durability() != "sync") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown durability setting '", c.durability(),
        "': only \"sync\" is supported (every acknowledged write is fsynced)"));
  }
  if (!c.plaintext() && (c.tls().cert_file().empty() || c.tls().key_file().empty())) {
    return absl::InvalidArgumentError(
        "tls: give tls.cert_file and tls.key_file, or set plaintext for development (caseworkd --dev)");
  }
  if (c.tls().require_client_cert() && c.tls().client_ca_file().empty()) {
    return absl::InvalidArgumentError("tls: require_client_cert needs tls.client_ca_file");
  }
  if (c.auth().token_file().empty() && !c.auth().header_identity()) {
    return absl::InvalidArgumentError(
        "auth: give auth.token_file, or allow header identity for development (caseworkd --dev)");
  }
  auto* rl = c.mutable_rate_limit();
  if (rl->requests_per_second() == 0) rl->set_requests_per_second(1000);
  if (rl->burst() == 0) rl->set_burst(2 * rl->requests_per_second());
  if (c.min_free_disk_bytes() == 0) c.set_min_free_disk_bytes(int64_t{128} << 20);
  if (c.worker_threads() == 0) c.set_worker_threads(8);
  if (c.backups_kept() == 0) c.set_backups_kept(7);
  if (c.max_concurrent_streams() == 0) c.set_max_concurrent_streams(256);
  if (c.max_concurrent_streams() < 1) {
    return absl::InvalidArgumentError("max_concurrent_streams must be at least 1");
  }
  if (c.backups_kept() < 0) return absl::InvalidArgumentError("backups_kept must be at least 1");
  if (c.worker_threads() < 1 || c.worker_threads() > 1024) {
    return absl::InvalidArgumentError("worker_threads must be between 1 and 1024");
  }
  auto* n = c.mutable_notifier();
  if (n->spool_dir().empty()) n->set_spool_dir(c.data_dir() + "/spool");
  if (!n->has_log()) n->set_log(true);
  if (n->max_attempts() == 0) n->set_max_attempts(8);
  if (n->initial_backoff_ms() == 0) n->set_initial_backoff_ms(1000);
  if (n->max_backoff_ms() == 0) n->set_max_backoff_ms(300000);
  if (n->max_attempts() < 1 || n->initial_backoff_ms() < 1 ||
      n->max_backoff_ms() < n->initial_backoff_ms()) {
    return absl::InvalidArgumentError(
        "notifier: max_attempts and backoffs must be positive, max_backoff_ms >= initial_backoff_ms");
  }
  if (n->senders_per_channel() == 0) n->set_senders_per_channel(4);
  if (n->senders_per_channel() < 1 || n->senders_per_channel() > 16) {
    return absl::InvalidArgumentError("notifier: senders_per_channel must be between 1 and 16");
  }
  auto* t = c.mutable_trade_in();
  if (t->reminder_interval_days() == 0) t->set_reminder_interval_days(7);
  if (t->max_reminders() == 0) t->set_max_reminders(2);
  if (t->no_response_days() == 0) t->set_no_response_days(7);
  if (t->proof_of_purchase_products().empty()) t->add_proof_of_purchase_products("iPhone 16");
  if (t->ops_chat_channel().empty()) t->set_ops_chat_channel("#cs-handling");
  if (t->reminder_interval_days() < 1 || t->max_reminders() < 1 || t->no_response_days() < 1) {
    return absl::InvalidArgumentError("trade_in: intervals and reminder count must be positive");
  }
  auto* o = c.mutable_otp_support();
  if (o->security_question_ids().empty()) {
    for (const char* q : {"full_name", "date_of_birth", "last_order", "delivery_address",
                          "registered_cellphone"}) {
      o->add_security_question_ids(q);
    }
  }
  if (o->email_domain_corrections().empty()) {
    auto& m = *o->mutable_email_domain_corrections();
    m["gmial.com"] = "gmail.com";
    m["gmail.co"] = "gmail.com";
    m["gmal.com"] = "gmail.com";
    m["gmail.con"] = "gmail.com";
    m["hotmial.com"] = "hotmail.com";
    m["outlook.co"] = "outlook.com";
    m["yahoo.co"] = "yahoo.com";
  }
  if (o->ticket_forms().empty()) o->add_ticket_forms("Mr D Food :: Customer Query");
  if (o->query_types().empty()) o->add_query_types("Mr D Food: One Time Pin Issues");
  if (o->team_lead_channel().empty()) o->set_team_lead_channel("#mrd-team-leads");
  if (o->product_channel().empty()) o->set_product_channel("#mrd-product");
  if (o->ops_channel().empty()) o->set_ops_channel("#mrd-ops");
  return c;
}

bool FlagValue(const std::string& arg, const char* name, std::string* value) {
  const std::string prefix = absl::StrCat("--", name, "=");
  if (!absl::StartsWith(arg, prefix)) return false;
  *value = arg.substr(prefix.size());
  return true;
}

}  // namespace casework
