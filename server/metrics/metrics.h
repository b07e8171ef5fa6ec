// The server's Prometheus metrics, in one registry. Label sets are bounded:
// services, methods, codes, case kinds, states, channels and results are all
// finite sets known to the server.
#ifndef CASEWORK_SERVER_METRICS_METRICS_H_
#define CASEWORK_SERVER_METRICS_METRICS_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace prometheus {
class Collectable;
class Exposer;
}

namespace casework::metrics {

class Metrics {
 public:
  Metrics();
  ~Metrics();

  // Serves /metrics on `address` ("host:port"; port 0 picks one).
  absl::Status Serve(const std::string& address);
  // The port /metrics listens on, or 0.
  int port() const;

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // One unary RPC: counted when started and when handled, with its latency.
  void RpcStarted(const std::string& service, const std::string& method);
  void RpcHandled(const std::string& service, const std::string& method,
                  const std::string& code, absl::Duration latency);

  // Board gauge: cases per kind and state.
  void AddCases(const std::string& kind, const std::string& state, int64_t delta);
  void SetCases(const std::string& kind, const std::string& state, int64_t value);
  // A case left `state` after `stayed` in it.
  void LeftState(const std::string& kind, const std::string& state, absl::Duration stayed);

  void SetTimersPending(int64_t n);
  void TimerFired(const std::string& kind, const std::string& timer, absl::Duration lag);

  // SLA clocks, per procedure and SLA name.
  // Creates the series of an SLA and of a timer at zero, so that they are
  // exported (and rates work) before the first event.
  void DeclareSla(const std::string& kind, const std::string& sla);
  void DeclareTimer(const std::string& kind, const std::string& timer);
  void SlaWarning(const std::string& kind, const std::string& sla);
  void SlaBreached(const std::string& kind, const std::string& sla);
  // Open clocks past their warning (not breached) and past their breach.
  void AddSlaAttention(const std::string& kind, const std::string& sla, int64_t at_risk_delta,
                       int64_t breached_delta);
  void SetSlaAttention(const std::string& kind, const std::string& sla, int64_t at_risk, int64_t breached);
  void SlaStopped(const std::string& kind, const std::string& sla, absl::Duration consumed,
                  absl::Duration paused);

  // One group commit of case changes: how many changes it wrote and how
  // long the durable write took.
  void CaseCommit(size_t changes, absl::Duration took);
  // How long one change waited in the queue before its group commit began
  // writing (zero when the committer was idle).
  void CommitWaited(absl::Duration waited);

  void SetOutboxPending(int64_t n);
  void SetDeadLetters(int64_t n);
  // RocksDB figures: "sst_bytes", "memtable_bytes", "pending_compaction_bytes",
  // "delayed_write_rate" (bytes/s while writes are slowed, else 0),
  // "write_stopped" (1 while writes are stopped).
  void SetStore(const std::map<std::string, int64_t>& figures);
  // The newest backup in the backup folder was taken at `when`.
  void SetLastBackup(absl::Time when);
  // `n` backups in the backup folder cannot be restored.
  void SetDamagedBackups(int64_t n);
  // What the TLS files hold: when the certificate stops being valid
  // (nullopt when it cannot be read), and whether the key file holds its
  // key (gRPC refuses new connections while it does not).
  struct TlsFiles {
    std::optional<absl::Time> certificate_expiry;
    bool key_matches = false;
  };
  // casework_tls_certificate_expiry_timestamp_seconds (left out while the
  // expiry is unknown) and casework_tls_key_matches_certificate, from
  // `read`, which is asked at every scrape so that a renewal shows at once.
  // Before Serve.
  void ExportTlsFiles(std::function<TlsFiles()> read);
  // result: "delivered", "retry", "dead_letter".
  void NotificationResult(const std::string& channel, const std::string& result,
                          absl::Duration latency);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  // process_cpu_seconds_total, process_resident_memory_bytes and the rest
  // of the process figures Prometheus clients export.
  std::shared_ptr<prometheus::Collectable> process_;
  std::shared_ptr<prometheus::Collectable> tls_files_;

  prometheus::Family<prometheus::Counter>& rpc_started_;
  prometheus::Family<prometheus::Counter>& rpc_handled_;
  prometheus::Family<prometheus::Histogram>& rpc_seconds_;
  prometheus::Family<prometheus::Gauge>& cases_;
  prometheus::Family<prometheus::Histogram>& time_in_state_;
  prometheus::Gauge& timers_pending_;
  prometheus::Family<prometheus::Counter>& timers_fired_;
  prometheus::Histogram& timer_lag_;
  prometheus::Histogram& commit_changes_;
  prometheus::Histogram& commit_seconds_;
  prometheus::Histogram& commit_wait_;
  prometheus::Gauge& outbox_pending_;
  prometheus::Gauge& dead_letters_;
  prometheus::Family<prometheus::Gauge>& store_;
  prometheus::Gauge& last_backup_;
  prometheus::Gauge& damaged_backups_;
  prometheus::Family<prometheus::Counter>& notifications_;
  prometheus::Family<prometheus::Histogram>& delivery_seconds_;
  prometheus::Family<prometheus::Counter>& sla_warnings_;
  prometheus::Family<prometheus::Counter>& sla_breaches_;
  prometheus::Family<prometheus::Gauge>& sla_at_risk_;
  prometheus::Family<prometheus::Gauge>& sla_breached_;
  prometheus::Family<prometheus::Histogram>& sla_completion_;
  prometheus::Family<prometheus::Histogram>& sla_paused_;

  // The series of one RPC method. Family::Add is thread-safe but builds and
  // hashes a label set on every call; the RPC path looks its series up here
  // once per call instead.
  struct RpcSeries {
    prometheus::Counter* started = nullptr;
    prometheus::Histogram* seconds = nullptr;
    std::map<std::string, prometheus::Counter*> handled;  // by code
  };
  // Under mu_.
  RpcSeries& Series(const std::string& service, const std::string& method);

  std::mutex mu_;
  std::map<std::string, RpcSeries> rpc_series_;  // by "service/method"
};

}  // namespace casework::metrics

#endif  // CASEWORK_SERVER_METRICS_METRICS_H_
