// casebench: load generator for caseworkd on the gRPC callback client API.
//
// Every report measures, in the same run and at the same concurrency, the
// limits the scenario is judged against: the server's no-op RPC rate (the
// health Check) and, when --fsync-dir is given, the synced-write rate and
// fsync latency of RocksDB on that disk. Results are given as ratios to
// them, so they hold on a noisy machine.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "casework/client.h"
#include "casework/v1/trade_in.grpc.pb.h"
#include "google/protobuf/arena.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "rocksdb/db.h"
#include "server/common/files.h"
#include "server/common/happens_before.h"
#include "server/common/json.h"

namespace casework::bench {
namespace {

constexpr char kHelp[] = R"(casebench: load for caseworkd.

usage: casebench [flags]
  --server=HOST:PORT     default 127.0.0.1:7400 (a caseworkd --dev)
  --ca=FILE              TLS, trusting this CA (a caseworkd with tls and
                         auth.headerIdentity); the no-op limit goes over TLS too
  --scenario=NAME        noop | create | transition | get | board | lifecycle | mixed
  --concurrency=N        calls in flight (closed loop), default 64
  --rate=QPS             open loop: start calls at this rate instead
  --duration=SECONDS     measured time, default 10
  --requests=N           stop after N measured calls instead
  --warmup=SECONDS       unmeasured time first, default 2
  --pool=N               cases created before get/transition/board, default 2000
  --deadline=MS          each call's deadline, default 30000; a call past it
                         counts as an error (code 4), as a client gives up
  --fsync-dir=DIR        also measure RocksDB synced writes and fsync on this disk
  --no-limits            skip the limit measurements
  --json                 JSON report instead of the one-line summary
)";

// Latency histogram with ~2% wide buckets from 1 us to about 100 s.
class Histogram {
 public:
  Histogram() : counts_(kBuckets, 0) {}
  void Record(absl::Duration d) {
    const double us = std::max(1.0, absl::ToDoubleMicroseconds(d));
    const int i = std::min(kBuckets - 1, static_cast<int>(std::log(us) / std::log(kGrowth)));
    ++counts_[i];
    ++total_;
  }
  void Merge(const Histogram& o) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
  }
  // The upper edge of the bucket holding quantile q, in milliseconds.
  double QuantileMs(double q) const {
    if (total_ == 0) return 0;
    const int64_t want = static_cast<int64_t>(std::ceil(q * total_));
    int64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= want) return std::pow(kGrowth, i + 1) / 1000.0;
    }
    return std::pow(kGrowth, kBuckets) / 1000.0;
  }
  int64_t total() const { return total_; }

 private:
  static constexpr double kGrowth = 1.02;
  static constexpr int kBuckets = 930;
  std::vector<int64_t> counts_;
  int64_t total_ = 0;
};

struct Result {
  std::string name;
  double seconds = 0;
  Histogram latency;
  std::map<std::string, int64_t> errors;
  double qps() const { return seconds > 0 ? latency.total() / seconds : 0; }
};

struct Flags {
  std::string server = "127.0.0.1:7400";
  std::string ca_file;
  std::string scenario = "create";
  int concurrency = 64;
  double rate = 0;
  double duration = 10;
  int64_t requests = 0;
  double warmup = 2;
  int pool = 2000;
  int64_t deadline_ms = 30000;
  std::string fsync_dir;
  bool limits = true;
  bool json = false;
};

// One asynchronous call: `start` issues it with `done` as its completion.
using Issue = std::function<void(std::function<void(const grpc::Status&)> done)>;

// Runs `make_call` closed loop (concurrency in flight) or open loop (rate).
Result Drive(const std::string& name, const Flags& f, const std::function<Issue(int worker)>& make_call) {
  Result result;
  result.name = name;
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> stopping{false};
  std::atomic<int64_t> measured{0};
  std::atomic<int> in_flight{0};
  const absl::Time begin = absl::Now();
  const absl::Time measure_from = begin + absl::Seconds(f.warmup);
  const absl::Time until = f.requests > 0 ? absl::InfiniteFuture() : measure_from + absl::Seconds(f.duration);
  std::vector<Histogram> per_worker(std::max(1, f.concurrency));
  std::map<std::string, int64_t> errors;

  // `started` is when the call was due: in the open loop, a sender that
  // falls behind does not hide the wait from the latency.
  std::function<void(int, absl::Time)> launch = [&](int worker, absl::Time started) {
    ++in_flight;
    make_call(worker)([&, worker, started](const grpc::Status& s) {
      const absl::Time now = absl::Now();
      bool counts = started >= measure_from && now <= until;
      if (counts && f.requests > 0) {
        // Calls still in flight when the count is reached end unmeasured.
        const int64_t n = ++measured;
        counts = n <= f.requests;
        if (n >= f.requests) stopping = true;
      }
      if (counts) {
        std::lock_guard<std::mutex> lock(mu);
        if (s.ok()) {
          per_worker[worker % per_worker.size()].Record(now - started);
        } else {
          ++errors[absl::StrCat(s.error_code())];
        }
      }
      if (now > until) stopping = true;
      const bool again = !stopping && f.rate <= 0;
      if (again) {
        launch(worker, absl::Now());
      }
      if (--in_flight == 0) {
        std::lock_guard<std::mutex> lock(mu);
        cv.notify_all();
      }
    });
  };

  if (f.rate > 0) {
    // Open loop: calls start on schedule, whatever the latency. Calls are
    // sent in ticks of a millisecond, each with every call the schedule has
    // due by then, rather than one wake-up of the sender per call: at
    // thousands of calls a second those wake-ups would take CPU from the
    // server being measured.
    const absl::Duration tick = absl::Milliseconds(1);
    const absl::Time start = absl::Now();
    auto due = [&](int64_t i) { return absl::Seconds(static_cast<double>(i) / f.rate); };
    for (int64_t i = 0; !stopping;) {
      const absl::Time at = start + absl::Ceil(due(i), tick);
      absl::SleepFor(at - absl::Now());
      if (absl::Now() > until) break;
      for (; start + due(i) <= at; ++i) launch(static_cast<int>(i % per_worker.size()), at);
    }
    stopping = true;
  } else {
    for (int w = 0; w < f.concurrency; ++w) launch(w, absl::Now());
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return in_flight == 0; });
  }
  const absl::Time end = std::min(absl::Now(), until);
  result.seconds = absl::ToDoubleSeconds(end - std::max(begin, measure_from));
  for (const auto& h : per_worker) result.latency.Merge(h);
  result.errors = std::move(errors);
  return result;
}

// Calls `rpc` asynchronously on the callback API with auth metadata. The
// answer is parsed onto an arena, freed as a few blocks when the call ends
// instead of string by string (a board page holds 50 cases): the load
// generator shares the machine with the server it measures.
template <typename Req, typename Resp, typename Method>
Issue Async(const client::Client& c, Method method, std::shared_ptr<Req> req) {
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx;
    google::protobuf::Arena arena;
    Resp* resp = google::protobuf::Arena::CreateMessage<Resp>(&arena);
  };
  return [&c, method, req](std::function<void(const grpc::Status&)> done) {
    auto call = std::make_shared<Call>();
    call->ctx = c.Context();
    HappensBefore(call.get());
    method(call->ctx.get(), req.get(), call->resp, [call, done](grpc::Status s) {
      HappensAfter(call.get());
      done(s);
    });
  };
}

std::string VNumber(uint64_t n) { return absl::StrCat("V", 1000000000 + n % 8999999999ULL); }

std::shared_ptr<v1::CreateTradeInRequest> NewCase(uint64_t n) {
  auto req = std::make_shared<v1::CreateTradeInRequest>();
  auto* t = req->mutable_trade_in();
  t->set_v_number(VNumber(n));
  t->set_s_number(absl::StrCat("S", 1000000000 + n % 8999999999ULL));
  t->set_product_name("Galaxy S22");
  t->set_problem(v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  t->mutable_customer()->set_display_name("Bench Customer");
  t->mutable_customer()->set_email("bench@example.nl");
  return req;
}

// RocksDB synced writes at the given concurrency on `dir`, plus the raw
// fdatasync latency of a file there: the disk's limits for durable RPCs.
Result SyncedWrites(const Flags& f, Histogram* fsync_latency) {
  Result r;
  r.name = "rocksdb_synced_write";
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  const std::string path = f.fsync_dir + "/casebench-rocksdb";
  if (!rocksdb::DB::Open(options, path, &raw).ok()) return r;
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions sync;
  sync.sync = true;
  std::atomic<bool> stop{false};
  std::vector<Histogram> hist(f.concurrency);
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  for (int i = 0; i < f.concurrency; ++i) {
    threads.emplace_back([&, i] {
      std::string value(512, 'x');
      for (uint64_t n = 0; !stop; ++n) {
        const absl::Time t0 = absl::Now();
        db->Put(sync, absl::StrCat("k", i, "-", n), value);
        hist[i].Record(absl::Now() - t0);
      }
    });
  }
  absl::SleepFor(absl::Seconds(std::min(5.0, f.duration)));
  stop = true;
  for (auto& t : threads) t.join();
  r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (const auto& h : hist) r.latency.Merge(h);
  db.reset();
  rocksdb::DestroyDB(path, options);

  const std::string file = f.fsync_dir + "/casebench-fsync";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::string block(4096, 'y');
  for (int i = 0; i < 200 && fd >= 0; ++i) {
    const absl::Time t0 = absl::Now();
    if (::write(fd, block.data(), block.size()) < 0 || ::fdatasync(fd) != 0) break;
    fsync_latency->Record(absl::Now() - t0);
  }
  if (fd >= 0) ::close(fd);
  ::unlink(file.c_str());
  return r;
}

std::string Json(const Result& r) {
  std::string errors;
  for (const auto& [code, n] : r.errors) absl::StrAppend(&errors, errors.empty() ? "" : ",", "\"", code, "\":", n);
  return absl::StrCat("{\"name\":\"", r.name, "\",\"requests\":", r.latency.total(), ",\"seconds\":", r.seconds,
                      ",\"qps\":", r.qps(), ",\"p50_ms\":", r.latency.QuantileMs(0.5),
                      ",\"p90_ms\":", r.latency.QuantileMs(0.9), ",\"p99_ms\":", r.latency.QuantileMs(0.99),
                      ",\"p999_ms\":", r.latency.QuantileMs(0.999), ",\"errors_by_code\":{", errors, "}}");
}

// What the machine is, as far as it moves the figures: its CPUs and, on a
// virtual machine, whether an idle CPU polls before it halts (a lone call's
// latency depends on it; docs/benchmarks.md, "What holds it back").
std::string MachineJson() {
  std::string out = absl::StrCat("{\"cpus\":", std::thread::hardware_concurrency());
  if (auto driver = ReadWholeFile("/sys/devices/system/cpu/cpuidle/current_driver")) {
    absl::StrAppend(&out, ",\"cpuidle_driver\":", JsonString(absl::StripAsciiWhitespace(*driver)));
  }
  int64_t poll_ns;
  if (auto poll = ReadWholeFile("/sys/module/haltpoll/parameters/guest_halt_poll_ns");
      poll && absl::SimpleAtoi(absl::StripAsciiWhitespace(*poll), &poll_ns)) {
    absl::StrAppend(&out, ",\"guest_halt_poll_ns\":", poll_ns);
  }
  return out + "}";
}

int Main(int argc, char** argv) {
  // As in caseworkd: Debian's Abseil would keep a lock-order graph of every
  // absl::Mutex gRPC takes, a cost the load generator must not add.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&](const char* name) -> const char* {
      const std::string p = absl::StrCat("--", name, "=");
      return absl::StartsWith(a, p) ? argv[i] + p.size() : nullptr;
    };
    if (a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--json") {
      f.json = true;
    } else if (a == "--no-limits") {
      f.limits = false;
    } else if (const char* v = val("server")) {
      f.server = v;
    } else if (const char* v = val("ca")) {
      f.ca_file = v;
    } else if (const char* v = val("scenario")) {
      f.scenario = v;
    } else if (const char* v = val("concurrency")) {
      if (!absl::SimpleAtoi(v, &f.concurrency) || f.concurrency < 1) return 2;
    } else if (const char* v = val("rate")) {
      if (!absl::SimpleAtod(v, &f.rate)) return 2;
    } else if (const char* v = val("duration")) {
      if (!absl::SimpleAtod(v, &f.duration)) return 2;
    } else if (const char* v = val("requests")) {
      if (!absl::SimpleAtoi(v, &f.requests)) return 2;
    } else if (const char* v = val("warmup")) {
      if (!absl::SimpleAtod(v, &f.warmup)) return 2;
    } else if (const char* v = val("pool")) {
      if (!absl::SimpleAtoi(v, &f.pool)) return 2;
    } else if (const char* v = val("deadline")) {
      if (!absl::SimpleAtoi(v, &f.deadline_ms) || f.deadline_ms < 1) return 2;
    } else if (const char* v = val("fsync-dir")) {
      f.fsync_dir = v;
    } else {
      std::fprintf(stderr, "casebench: unknown argument %s\n%s", a.c_str(), kHelp);
      return 2;
    }
  }

  client::Options options;
  options.target = f.server;
  options.ca_file = f.ca_file;
  options.principal = "casebench";
  options.role = "ops";
  options.deadline = std::chrono::milliseconds(f.deadline_ms);
  client::Client c(options);
  options.role = "cs_agent";
  client::Client agent(options);  // for the actions agents perform
  auto trade_ins = v1::TradeInService::NewStub(c.channel());
  auto health = grpc::health::v1::Health::NewStub(c.channel());
  auto* async = trade_ins->async();
  std::atomic<uint64_t> seq{static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()))};
  std::mt19937_64 rng(42);

  // A pool of cases for the scenarios that work on existing ones.
  std::vector<std::string> pool;
  if (f.scenario != "noop" && f.scenario != "create") {
    for (int i = 0; i < f.pool; ++i) {
      v1::TradeIn t;
      auto ctx = c.Context();
      if (trade_ins->CreateTradeIn(ctx.get(), *NewCase(seq++), &t).ok()) pool.push_back(t.name());
    }
    if (pool.empty()) {
      std::fprintf(stderr, "casebench: cannot create cases on %s\n", f.server.c_str());
      return 1;
    }
  }
  auto pick = [&] { return pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng)]; };

  auto noop = [&](int) -> Issue {
    auto req = std::make_shared<grpc::health::v1::HealthCheckRequest>();
    return Async<grpc::health::v1::HealthCheckRequest, grpc::health::v1::HealthCheckResponse>(
        c, [h = health.get()](auto* ctx, auto* rq, auto* rs, auto cb) { h->async()->Check(ctx, rq, rs, cb); }, req);
  };
  auto create = [&](int) -> Issue {
    return Async<v1::CreateTradeInRequest, v1::TradeIn>(
        c, [async](auto* ctx, auto* rq, auto* rs, auto cb) { async->CreateTradeIn(ctx, rq, rs, cb); }, NewCase(seq++));
  };
  std::mutex pick_mu;
  auto transition = [&](int) -> Issue {
    auto req = std::make_shared<v1::AddTradeInCommentRequest>();
    {
      std::lock_guard<std::mutex> lock(pick_mu);
      req->set_name(pick());
    }
    req->set_text("benchmark note");
    return Async<v1::AddTradeInCommentRequest, v1::TradeIn>(
        agent, [async](auto* ctx, auto* rq, auto* rs, auto cb) { async->AddTradeInComment(ctx, rq, rs, cb); }, req);
  };
  auto get = [&](int) -> Issue {
    auto req = std::make_shared<v1::GetTradeInRequest>();
    {
      std::lock_guard<std::mutex> lock(pick_mu);
      req->set_name(pick());
    }
    return Async<v1::GetTradeInRequest, v1::TradeIn>(
        c, [async](auto* ctx, auto* rq, auto* rs, auto cb) { async->GetTradeIn(ctx, rq, rs, cb); }, req);
  };
  auto board = [&](int) -> Issue {
    auto req = std::make_shared<v1::ListTradeInsRequest>();
    req->set_page_size(50);
    req->set_state(v1::TRADE_IN_STATE_PROBLEM_ORDER);
    return Async<v1::ListTradeInsRequest, v1::ListTradeInsResponse>(
        c, [async](auto* ctx, auto* rq, auto* rs, auto cb) { async->ListTradeIns(ctx, rq, rs, cb); }, req);
  };
  // A trade-in from intake to testing: create, contact, unlock code; one
  // "call" is the whole chain.
  auto lifecycle = [&](int) -> Issue {
    return [&, n = seq++](std::function<void(const grpc::Status&)> done) {
      auto created = std::make_shared<v1::TradeIn>();
      auto step = [&, created, done](auto&& self, int k) -> void {
        if (k == 3) return done(grpc::Status::OK);
        auto ctx = std::shared_ptr<grpc::ClientContext>(k == 0 ? c.Context() : agent.Context());
        auto next = [self, k, done, ctx](grpc::Status s) {
          HappensAfter(ctx.get());
          if (!s.ok()) return done(s);
          self(self, k + 1);
        };
        HappensBefore(ctx.get());
        if (k == 0) {
          auto req = NewCase(n);
          async->CreateTradeIn(ctx.get(), req.get(), created.get(), [req, next](grpc::Status s) { next(s); });
        } else if (k == 1) {
          auto req = std::make_shared<v1::ContactCustomerRequest>();
          req->set_name(created->name());
          async->ContactCustomer(ctx.get(), req.get(), created.get(), [req, next](grpc::Status s) { next(s); });
        } else {
          auto req = std::make_shared<v1::RecordUnlockCodeRequest>();
          req->set_name(created->name());
          req->set_unlock_code("2468");
          async->RecordUnlockCode(ctx.get(), req.get(), created.get(), [req, next](grpc::Status s) { next(s); });
        }
      };
      step(step, 0);
    };
  };
  auto mixed = [&](int w) -> Issue {
    int dice;
    {
      std::lock_guard<std::mutex> lock(pick_mu);  // calls start on gRPC's threads too
      dice = std::uniform_int_distribution<int>(0, 9)(rng);
    }
    if (dice < 2) return create(w);
    if (dice < 4) return transition(w);
    if (dice < 8) return get(w);
    return board(w);
  };
  std::map<std::string, std::function<Issue(int)>> scenarios = {
      {"noop", noop}, {"create", create}, {"transition", transition}, {"get", get},
      {"board", board}, {"lifecycle", lifecycle}, {"mixed", mixed}};
  if (!scenarios.count(f.scenario)) {
    std::fprintf(stderr, "casebench: unknown scenario %s\n", f.scenario.c_str());
    return 2;
  }
  Result main = Drive(f.scenario, f, scenarios[f.scenario]);

  Result limit_noop;
  Result limit_disk;
  Histogram fsync;
  if (f.limits && f.scenario != "noop") {
    Flags lf = f;
    lf.rate = 0;
    lf.requests = 0;
    limit_noop = Drive("noop", lf, noop);
    if (!f.fsync_dir.empty()) limit_disk = SyncedWrites(lf, &fsync);
  }
  const double noop_ratio = limit_noop.qps() > 0 ? main.qps() / limit_noop.qps() : 0;
  const double disk_ratio = limit_disk.qps() > 0 ? main.qps() / limit_disk.qps() : 0;
  if (f.json) {
    std::printf("{\"scenario\":%s,\"concurrency\":%d,\"rate\":%g,\"machine\":%s", Json(main).c_str(),
                f.concurrency, f.rate, MachineJson().c_str());
    if (limit_noop.latency.total() > 0) std::printf(",\"noop\":%s,\"ratio_to_noop\":%.3f", Json(limit_noop).c_str(), noop_ratio);
    if (limit_disk.latency.total() > 0) {
      std::printf(",\"rocksdb_synced_write\":%s,\"ratio_to_synced_write\":%.3f,\"fsync_p50_ms\":%.3f,\"fsync_p99_ms\":%.3f",
                  Json(limit_disk).c_str(), disk_ratio, fsync.QuantileMs(0.5), fsync.QuantileMs(0.99));
    }
    std::printf("}\n");
  } else {
    std::printf("%s: %.0f/s  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  errors %lld",
                f.scenario.c_str(), main.qps(), main.latency.QuantileMs(0.5), main.latency.QuantileMs(0.9),
                main.latency.QuantileMs(0.99), main.latency.QuantileMs(0.999),
                static_cast<long long>([&] { int64_t n = 0; for (auto& [k, v] : main.errors) n += v; return n; }()));
    if (limit_noop.latency.total() > 0) std::printf("  | noop %.0f/s (%.0f%%)", limit_noop.qps(), 100 * noop_ratio);
    if (limit_disk.latency.total() > 0) {
      std::printf("  | rocksdb synced %.0f/s (%.0f%%), fsync p50 %.2f ms p99 %.2f ms", limit_disk.qps(), 100 * disk_ratio,
                  fsync.QuantileMs(0.5), fsync.QuantileMs(0.99));
    }
    std::printf("\n");
  }
  int64_t errors = 0;
  for (const auto& [code, n] : main.errors) errors += n;
  return errors > 0 ? 1 : 0;
}

}  // namespace
}  // namespace casework::bench

int main(int argc, char** argv) { return casework::bench::Main(argc, argv); }
