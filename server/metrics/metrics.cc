#include "server/metrics/metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"
#include "server/common/version.h"

namespace casework::metrics {
namespace {

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries b = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return b;
}

const prometheus::Histogram::BucketBoundaries& LagBuckets() {
  static const prometheus::Histogram::BucketBoundaries b = {
      0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600};
  return b;
}

const prometheus::Histogram::BucketBoundaries& CommitSecondsBuckets() {
  static const prometheus::Histogram::BucketBoundaries b = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
  return b;
}

// Spans of a case's life, from a minute to a month.
const prometheus::Histogram::BucketBoundaries& CaseTimeBuckets() {
  static const prometheus::Histogram::BucketBoundaries b = {
      60, 300, 900, 3600, 4 * 3600, 8 * 3600, 86400, 2 * 86400, 3 * 86400,
      5 * 86400, 7 * 86400, 14 * 86400, 30 * 86400};
  return b;
}

// A family of one series, built at scrape time.
prometheus::MetricFamily OneValue(std::string name, std::string help, prometheus::MetricType type,
                                  double value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  prometheus::ClientMetric& metric = family.metric.emplace_back();
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return family;
}

prometheus::MetricFamily Gauge(std::string name, std::string help, double value) {
  return OneValue(std::move(name), std::move(help), prometheus::MetricType::Gauge, value);
}

// Gauges read from the TLS files at scrape time rather than set.
class TlsFilesGauges : public prometheus::Collectable {
 public:
  explicit TlsFilesGauges(std::function<Metrics::TlsFiles()> read) : read_(std::move(read)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    const Metrics::TlsFiles files = read_();
    std::vector<prometheus::MetricFamily> out;
    if (files.certificate_expiry.has_value()) {
      out.push_back(Gauge("casework_tls_certificate_expiry_timestamp_seconds",
                          "When the TLS certificate in tls.certFile stops being valid (Unix time).",
                          absl::ToDoubleSeconds(*files.certificate_expiry - absl::UnixEpoch())));
    }
    out.push_back(Gauge("casework_tls_key_matches_certificate",
                        "1 when tls.keyFile holds the key of tls.certFile's certificate; 0: new "
                        "connections are refused.",
                        files.key_matches ? 1 : 0));
    return out;
  }

 private:
  std::function<Metrics::TlsFiles()> read_;
};

// The process's own figures, under the names every Prometheus client
// library exports them by, read from /proc at scrape time.
class ProcessFigures : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    // /proc/self/stat: the fields after the command name, which is in
    // parentheses and may hold spaces; field 3 (the state) comes first.
    std::ifstream stat_file("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    const size_t name_end = stat.rfind(')');
    if (name_end != std::string::npos) {
      std::vector<std::string> fields = absl::StrSplit(
          absl::string_view(stat).substr(name_end + 1), ' ', absl::SkipWhitespace());
      auto field = [&](size_t number) {  // as numbered in proc(5)
        double v = 0;
        return number >= 3 && number - 3 < fields.size() && absl::SimpleAtod(fields[number - 3], &v)
                   ? v
                   : 0.0;
      };
      out.push_back(OneValue("process_cpu_seconds_total",
                             "User and system CPU time the process has used, in seconds.",
                             prometheus::MetricType::Counter, (field(14) + field(15)) / ticks));
      out.push_back(Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", field(23)));
      out.push_back(Gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                          field(24) * page));
      if (const std::optional<double> boot = BootTime(); boot.has_value()) {
        out.push_back(Gauge("process_start_time_seconds",
                            "When the process started, in seconds since the Unix epoch.",
                            *boot + field(22) / ticks));
      }
    }
    std::error_code ec;
    double open = 0;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
         it.increment(ec)) {
      ++open;
    }
    if (!ec) out.push_back(Gauge("process_open_fds", "Open file descriptors.", open));
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
      out.push_back(Gauge("process_max_fds", "The most file descriptors the process may open.",
                          static_cast<double>(limit.rlim_cur)));
    }
    return out;
  }

 private:
  // When the machine booted (the "btime" line of /proc/stat).
  static std::optional<double> BootTime() {
    std::ifstream stat("/proc/stat");
    std::string line;
    while (std::getline(stat, line)) {
      double seconds = 0;
      if (line.rfind("btime ", 0) == 0 && absl::SimpleAtod(line.substr(6), &seconds)) return seconds;
    }
    return std::nullopt;
  }
};

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      process_(std::make_shared<ProcessFigures>()),
      rpc_started_(prometheus::BuildCounter()
                       .Name("grpc_server_started_total")
                       .Help("RPCs started on the server.")
                       .Register(*registry_)),
      rpc_handled_(prometheus::BuildCounter()
                       .Name("grpc_server_handled_total")
                       .Help("RPCs completed on the server, by status code.")
                       .Register(*registry_)),
      rpc_seconds_(prometheus::BuildHistogram()
                       .Name("grpc_server_handling_seconds")
                       .Help("Time from receiving an RPC to finishing it.")
                       .Register(*registry_)),
      cases_(prometheus::BuildGauge()
                 .Name("casework_cases")
                 .Help("Cases per procedure and state (board column).")
                 .Register(*registry_)),
      time_in_state_(prometheus::BuildHistogram()
                         .Name("casework_time_in_state_seconds")
                         .Help("Wall time a case spent in a state, observed when it moved on.")
                         .Register(*registry_)),
      timers_pending_(prometheus::BuildGauge()
                          .Name("casework_timers_pending")
                          .Help("Durable timers armed and not yet fired.")
                          .Register(*registry_)
                          .Add({})),
      timers_fired_(prometheus::BuildCounter()
                        .Name("casework_timers_fired_total")
                        .Help("Timers fired, by procedure and timer.")
                        .Register(*registry_)),
      timer_lag_(prometheus::BuildHistogram()
                     .Name("casework_timer_fire_lag_seconds")
                     .Help("Delay between a timer's due time and its firing.")
                     .Register(*registry_)
                     .Add({}, LagBuckets())),
      commit_changes_(prometheus::BuildHistogram()
                          .Name("casework_commit_changes")
                          .Help("Case changes written together by one group commit.")
                          .Register(*registry_)
                          .Add({}, prometheus::Histogram::BucketBoundaries{
                                       1, 2, 4, 8, 16, 32, 64, 128, 256})),
      commit_seconds_(prometheus::BuildHistogram()
                          .Name("casework_commit_seconds")
                          .Help("Time of one group commit's durable write (WAL sync).")
                          .Register(*registry_)
                          .Add({}, CommitSecondsBuckets())),
      commit_wait_(prometheus::BuildHistogram()
                       .Name("casework_commit_wait_seconds")
                       .Help("Time a case change waited before its group commit began writing.")
                       .Register(*registry_)
                       .Add({}, CommitSecondsBuckets())),
      outbox_pending_(prometheus::BuildGauge()
                          .Name("casework_outbox_pending")
                          .Help("Notifications waiting in the outbox.")
                          .Register(*registry_)
                          .Add({})),
      dead_letters_(prometheus::BuildGauge()
                        .Name("casework_outbox_dead_letters")
                        .Help("Notifications that exhausted their attempts.")
                        .Register(*registry_)
                        .Add({})),
      store_(prometheus::BuildGauge()
                 .Name("casework_store")
                 .Help("RocksDB figures: sst_bytes, memtable_bytes, pending_compaction_bytes, "
                       "delayed_write_rate, write_stopped.")
                 .Register(*registry_)),
      last_backup_(prometheus::BuildGauge()
                       .Name("casework_backup_last_success_timestamp_seconds")
                       .Help("When the newest backup in the backup folder was taken (Unix time; 0: none).")
                       .Register(*registry_)
                       .Add({})),
      damaged_backups_(prometheus::BuildGauge()
                           .Name("casework_backups_damaged")
                           .Help("Backups in the backup folder that cannot be restored (a file missing or "
                                 "unreadable), as last seen.")
                           .Register(*registry_)
                           .Add({})),
      notifications_(prometheus::BuildCounter()
                         .Name("casework_notifications_total")
                         .Help("Delivery attempts by channel and result.")
                         .Register(*registry_)),
      delivery_seconds_(prometheus::BuildHistogram()
                            .Name("casework_notification_delivery_seconds")
                            .Help("Time a delivery attempt took, by channel.")
                            .Register(*registry_)),
      sla_warnings_(prometheus::BuildCounter()
                        .Name("casework_sla_warnings_total")
                        .Help("SLA clocks that reached their warning point.")
                        .Register(*registry_)),
      sla_breaches_(prometheus::BuildCounter()
                        .Name("casework_sla_breaches_total")
                        .Help("SLA clocks that were breached.")
                        .Register(*registry_)),
      sla_at_risk_(prometheus::BuildGauge()
                       .Name("casework_sla_at_risk")
                       .Help("Open SLA clocks (running or paused) past their warning point, not breached.")
                       .Register(*registry_)),
      sla_breached_(prometheus::BuildGauge()
                        .Name("casework_sla_breached")
                        .Help("Open SLA clocks (running or paused) past their breach.")
                        .Register(*registry_)),
      sla_completion_(prometheus::BuildHistogram()
                          .Name("casework_sla_completion_seconds")
                          .Help("Budget consumed when an SLA clock stopped (business time on "
                                "its calendar, or wall time).")
                          .Register(*registry_)),
      sla_paused_(prometheus::BuildHistogram()
                      .Name("casework_sla_paused_seconds")
                      .Help("Time an SLA clock spent paused, observed when it stopped.")
                      .Register(*registry_)) {
  prometheus::BuildGauge()
      .Name("casework_build_info")
      .Help("Build information; the value is always 1.")
      .Register(*registry_)
      .Add({{"version", Version()}})
      .Set(1);
}

Metrics::~Metrics() = default;

absl::Status Metrics::Serve(const std::string& address) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address, 2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(process_);
  if (tls_files_) exposer_->RegisterCollectable(tls_files_);
  return absl::OkStatus();
}

void Metrics::ExportTlsFiles(std::function<TlsFiles()> read) {
  tls_files_ = std::make_shared<TlsFilesGauges>(std::move(read));
}

int Metrics::port() const {
  if (!exposer_) return 0;
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

Metrics::RpcSeries& Metrics::Series(const std::string& service, const std::string& method) {
  RpcSeries& series = rpc_series_[absl::StrCat(service, "/", method)];
  if (series.started == nullptr) {
    const std::map<std::string, std::string> labels = {
        {"grpc_service", service}, {"grpc_method", method}, {"grpc_type", "unary"}};
    series.started = &rpc_started_.Add(labels);
    series.seconds = &rpc_seconds_.Add(labels, LatencyBuckets());
  }
  return series;
}

void Metrics::RpcStarted(const std::string& service, const std::string& method) {
  prometheus::Counter* started;
  {
    std::lock_guard<std::mutex> lock(mu_);
    started = Series(service, method).started;
  }
  started->Increment();
}

void Metrics::RpcHandled(const std::string& service, const std::string& method,
                         const std::string& code, absl::Duration latency) {
  prometheus::Counter* handled;
  prometheus::Histogram* seconds;
  {
    std::lock_guard<std::mutex> lock(mu_);
    RpcSeries& series = Series(service, method);
    prometheus::Counter*& slot = series.handled[code];
    if (slot == nullptr) {
      slot = &rpc_handled_.Add({{"grpc_service", service},
                                {"grpc_method", method},
                                {"grpc_type", "unary"},
                                {"grpc_code", code}});
    }
    handled = slot;
    seconds = series.seconds;
  }
  handled->Increment();
  seconds->Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::AddCases(const std::string& kind, const std::string& state, int64_t delta) {
  cases_.Add({{"procedure", kind}, {"state", state}}).Increment(static_cast<double>(delta));
}

void Metrics::SetCases(const std::string& kind, const std::string& state, int64_t value) {
  cases_.Add({{"procedure", kind}, {"state", state}}).Set(static_cast<double>(value));
}

void Metrics::LeftState(const std::string& kind, const std::string& state, absl::Duration stayed) {
  time_in_state_.Add({{"procedure", kind}, {"state", state}}, CaseTimeBuckets())
      .Observe(absl::ToDoubleSeconds(stayed));
}

void Metrics::SetTimersPending(int64_t n) { timers_pending_.Set(static_cast<double>(n)); }

void Metrics::CaseCommit(size_t changes, absl::Duration took) {
  commit_changes_.Observe(static_cast<double>(changes));
  commit_seconds_.Observe(absl::ToDoubleSeconds(took));
}

void Metrics::CommitWaited(absl::Duration waited) {
  commit_wait_.Observe(absl::ToDoubleSeconds(waited));
}

void Metrics::TimerFired(const std::string& kind, const std::string& timer,
                         absl::Duration lag) {
  timers_fired_.Add({{"procedure", kind}, {"timer", timer}}).Increment();
  timer_lag_.Observe(absl::ToDoubleSeconds(lag));
}

void Metrics::DeclareSla(const std::string& kind, const std::string& sla) {
  const std::map<std::string, std::string> labels = {{"procedure", kind}, {"sla", sla}};
  sla_warnings_.Add(labels);
  sla_breaches_.Add(labels);
  sla_completion_.Add(labels, CaseTimeBuckets());
  sla_paused_.Add(labels, CaseTimeBuckets());
}

void Metrics::DeclareTimer(const std::string& kind, const std::string& timer) {
  timers_fired_.Add({{"procedure", kind}, {"timer", timer}});
}

void Metrics::SlaWarning(const std::string& kind, const std::string& sla) {
  sla_warnings_.Add({{"procedure", kind}, {"sla", sla}}).Increment();
}

void Metrics::SlaBreached(const std::string& kind, const std::string& sla) {
  sla_breaches_.Add({{"procedure", kind}, {"sla", sla}}).Increment();
}

void Metrics::AddSlaAttention(const std::string& kind, const std::string& sla, int64_t at_risk_delta,
                              int64_t breached_delta) {
  sla_at_risk_.Add({{"procedure", kind}, {"sla", sla}}).Increment(static_cast<double>(at_risk_delta));
  sla_breached_.Add({{"procedure", kind}, {"sla", sla}}).Increment(static_cast<double>(breached_delta));
}

void Metrics::SetSlaAttention(const std::string& kind, const std::string& sla, int64_t at_risk, int64_t breached) {
  sla_at_risk_.Add({{"procedure", kind}, {"sla", sla}}).Set(static_cast<double>(at_risk));
  sla_breached_.Add({{"procedure", kind}, {"sla", sla}}).Set(static_cast<double>(breached));
}

void Metrics::SlaStopped(const std::string& kind, const std::string& sla,
                         absl::Duration consumed, absl::Duration paused) {
  sla_completion_.Add({{"procedure", kind}, {"sla", sla}}, CaseTimeBuckets())
      .Observe(absl::ToDoubleSeconds(consumed));
  sla_paused_.Add({{"procedure", kind}, {"sla", sla}}, CaseTimeBuckets())
      .Observe(absl::ToDoubleSeconds(paused));
}

void Metrics::SetOutboxPending(int64_t n) { outbox_pending_.Set(static_cast<double>(n)); }
void Metrics::SetDeadLetters(int64_t n) { dead_letters_.Set(static_cast<double>(n)); }

void Metrics::SetLastBackup(absl::Time when) {
  last_backup_.Set(absl::ToDoubleSeconds(when - absl::UnixEpoch()));
}

void Metrics::SetDamagedBackups(int64_t n) { damaged_backups_.Set(static_cast<double>(n)); }

void Metrics::SetStore(const std::map<std::string, int64_t>& figures) {
  for (const auto& [figure, value] : figures) {
    store_.Add({{"figure", figure}}).Set(static_cast<double>(value));
  }
}

void Metrics::NotificationResult(const std::string& channel, const std::string& result,
                                 absl::Duration latency) {
  notifications_.Add({{"channel", channel}, {"result", result}}).Increment();
  delivery_seconds_.Add({{"channel", channel}}, LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(latency));
}

}  // namespace casework::metrics
