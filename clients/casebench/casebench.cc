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
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "casework/client.h"
#include "casework/v1/admin.grpc.pb.h"
#include "casework/v1/otp_support.grpc.pb.h"
#include "casework/v1/protection.grpc.pb.h"
#include "casework/v1/trade_in.grpc.pb.h"
#include "casework/v1/unlock.grpc.pb.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "rocksdb/db.h"
#include "server/common/files.h"
#include "server/common/happens_before.h"
#include "server/common/json.h"
#include "server/common/proto_time.h"
#include "server/workflow/validation.h"

namespace casework::bench {
namespace {

constexpr char kHelp[] = R"(casebench: load for caseworkd.

usage: casebench [flags]
  --server=HOST:PORT     default 127.0.0.1:7400 (a caseworkd --dev)
  --ca=FILE              TLS, trusting this CA (a caseworkd with tls and
                         auth.headerIdentity); the no-op limit goes over TLS too
  --scenario=NAME        noop | create | transition | get | board | lifecycle | mixed
  --procedure=NAME       whose cases the scenario makes and works on:
                         trade-in (default) | unlock (carrier unlock requests
                         on accounts casebench imports first, as many as
                         --pool or --concurrency, one lifecycle to an account
                         at a time while there are enough) | otp (OTP login
                         tickets on profiles it imports first, as many) |
                         claim (device-protection claims on a plan and
                         enrollments it makes first, as many)
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
  std::string procedure = "trade-in";
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

// Calls `method` of `stub` asynchronously on the callback API, as `c` (its
// auth metadata and deadline); `answered`, when given, sees the answer of a
// call that succeeded. `method` is called as method(stub->async(), context,
// request, response, callback). The answer is parsed onto an arena, freed
// as a few blocks when the call ends instead of string by string (a board
// page holds 50 cases): the load generator shares the machine with the
// server it measures.
template <typename Resp, typename Req, typename Stub, typename Method>
Issue Async(const client::Client& c, std::shared_ptr<Stub> stub, Method method, Req request,
            std::function<void(const Resp&)> answered = nullptr) {
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx;
    google::protobuf::Arena arena;
    Resp* resp = google::protobuf::Arena::CreateMessage<Resp>(&arena);
  };
  auto req = std::make_shared<Req>(std::move(request));
  return [&c, stub, method, req, answered](std::function<void(const grpc::Status&)> done) {
    auto call = std::make_shared<Call>();
    call->ctx = c.Context();
    HappensBefore(call.get());
    method(stub->async(), call->ctx.get(), req.get(), call->resp, [call, answered, done](grpc::Status s) {
      HappensAfter(call.get());
      if (s.ok() && answered) answered(*call->resp);
      done(s);
    });
  };
}

// Calls one after another as one call: each step is issued once the step
// before it has answered OK, and the first error ends the chain.
Issue Chain(std::vector<std::function<Issue()>> steps) {
  struct Run : std::enable_shared_from_this<Run> {
    std::vector<std::function<Issue()>> steps;
    std::function<void(const grpc::Status&)> done;
    void Step(size_t k) {
      if (k == steps.size()) return done(grpc::Status::OK);
      steps[k]()([self = shared_from_this(), k](const grpc::Status& s) {
        if (!s.ok()) return self->done(s);
        self->Step(k + 1);
      });
    }
  };
  return [steps = std::move(steps)](std::function<void(const grpc::Status&)> done) {
    auto run = std::make_shared<Run>();
    run->steps = steps;
    run->done = std::move(done);
    run->Step(0);
  };
}

std::string VNumber(uint64_t n) { return absl::StrCat("V", 1000000000 + n % 8999999999ULL); }

v1::CreateTradeInRequest NewCase(uint64_t n) {
  v1::CreateTradeInRequest req;
  auto* t = req.mutable_trade_in();
  t->set_v_number(VNumber(n));
  t->set_s_number(absl::StrCat("S", 1000000000 + n % 8999999999ULL));
  t->set_product_name("Galaxy S22");
  t->set_problem(v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  t->mutable_customer()->set_display_name("Bench Customer");
  t->mutable_customer()->set_email("bench@example.nl");
  return req;
}

// The callers a run speaks as.
struct Callers {
  client::Client ops;
  client::Client agent;     // the actions agents perform
  client::Client service;   // what the carrier reports (a completed unlock)
  client::Client admin;     // the account directory
  client::Client approver;  // decides device-protection claims
};

// Hears the name of a case made.
using Named = std::function<void(const std::string& name)>;

// An answered hook that gives the case's name to `named`; none without it.
template <typename Case>
std::function<void(const Case&)> NameOf(Named named) {
  if (!named) return nullptr;
  return [named = std::move(named)](const Case& made) { named(made.name()); };
}

// Issues one call and waits for its answer.
grpc::Status Await(const Issue& issue) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<grpc::Status> answer;
  issue([&](const grpc::Status& s) {
    std::lock_guard<std::mutex> lock(mu);
    answer = s;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return answer.has_value(); });
  return *answer;
}

// One procedure's calls, as the scenarios make them. `n` numbers the cases
// of a run.
struct Procedure {
  // Creates case `n`; `named`, when set, hears the name of the case made.
  std::function<Issue(uint64_t n, Named named)> create;
  std::function<Issue(const std::string& name)> comment;
  std::function<Issue(const std::string& name)> get;
  // The first page of a board column: 50 cases in one state.
  std::function<Issue()> page;
  // Case `n` from intake to the end of its procedure, as one call.
  std::function<Issue(uint64_t n)> lifecycle;
  // Puts what the cases need into the directory, before the run; unset
  // when they need nothing.
  std::function<absl::Status()> import;
};

// `request` about the case `name`.
template <typename Req>
Req Naming(Req request, const std::string& name) {
  request.set_name(name);
  return request;
}

// Trade-ins; the lifecycle is intake, contacting the customer and the
// unlock code, which takes the case to testing.
Procedure TradeIns(const Callers& who) {
  std::shared_ptr<v1::TradeInService::Stub> stub = v1::TradeInService::NewStub(who.ops.channel());
  Procedure p;
  p.create = [&who, stub](uint64_t n, Named named) {
    return Async<v1::TradeIn>(who.ops, stub, [](auto* a, auto... args) { a->CreateTradeIn(args...); }, NewCase(n),
                              NameOf<v1::TradeIn>(std::move(named)));
  };
  p.comment = [&who, stub](const std::string& name) {
    v1::AddTradeInCommentRequest req;
    req.set_text("benchmark note");
    return Async<v1::TradeIn>(who.agent, stub, [](auto* a, auto... args) { a->AddTradeInComment(args...); },
                              Naming(req, name));
  };
  p.get = [&who, stub](const std::string& name) {
    return Async<v1::TradeIn>(who.ops, stub, [](auto* a, auto... args) { a->GetTradeIn(args...); },
                              Naming(v1::GetTradeInRequest(), name));
  };
  p.page = [&who, stub] {
    v1::ListTradeInsRequest req;
    req.set_page_size(50);
    req.set_state(v1::TRADE_IN_STATE_PROBLEM_ORDER);
    return Async<v1::ListTradeInsResponse>(who.ops, stub, [](auto* a, auto... args) { a->ListTradeIns(args...); }, req);
  };
  p.lifecycle = [&who, stub, create = p.create](uint64_t n) {
    auto name = std::make_shared<std::string>();
    v1::RecordUnlockCodeRequest code;
    code.set_unlock_code("2468");
    return Chain({
        [create, name, n] { return create(n, [name](const std::string& made) { *name = made; }); },
        [&who, stub, name] {
          return Async<v1::TradeIn>(who.agent, stub, [](auto* a, auto... args) { a->ContactCustomer(args...); },
                                    Naming(v1::ContactCustomerRequest(), *name));
        },
        [&who, stub, name, code] {
          return Async<v1::TradeIn>(who.agent, stub, [](auto* a, auto... args) { a->RecordUnlockCode(args...); },
                                    Naming(code, *name));
        },
    });
  };
  return p;
}

// Puts `count` directory entries, entry(0) to entry(count - 1), into the
// directory through an import RPC (`call`), 1,000 to a call. Any row
// refused is an error.
template <typename Request, typename Response, typename Entry, typename Call>
absl::Status ImportEntries(const client::Client& admin, int count, Entry entry, Call call) {
  for (int first = 0; first < count; first += 1000) {
    Request req;
    for (int i = first; i < std::min(count, first + 1000); ++i) {
      std::string line;
      if (!google::protobuf::util::MessageToJsonString(entry(i), &line).ok()) {
        return absl::InternalError("an entry could not be written as JSON");
      }
      absl::StrAppend(req.mutable_json_lines(), line, "\n");
    }
    Response resp;
    auto ctx = admin.Context();
    const grpc::Status s = call(ctx.get(), req, &resp);
    if (!s.ok()) return absl::UnavailableError(s.error_message());
    if (resp.failed() > 0) {
      return absl::InvalidArgumentError(absl::StrCat(resp.failed(), " entries refused: ", resp.errors(0).description()));
    }
  }
  return absl::OkStatus();
}

// Device `i` of a run: an IMEI of the run's six digits, `i` and the check
// digit, so that one run's devices stay apart from an earlier run's.
std::string BenchImei(const std::string& run, int i) {
  const std::string payload = absl::StrFormat("%s%08d", run, i);
  return payload + workflow::LuhnCheckDigit(payload);
}

// Accounts of the directory made for one run, each with one paid-off
// device. An unlock request needs an account, and a submitted request holds
// its device until it is completed, so each lifecycle takes an account of
// its own while it runs. `run` (six digits) keeps one run's accounts and
// devices apart from an earlier run's on the same server. With at least as
// many accounts as calls in flight, lifecycles never share one.
class Accounts {
 public:
  Accounts(std::string run, int count) : run_(std::move(run)), count_(count) {
    for (int i = count - 1; i >= 0; --i) free_.push_back(i);
  }
  int size() const { return count_; }
  std::string Number(int i) const { return absl::StrCat("BENCH-", run_, "-", i); }
  std::string Imei(int i) const { return BenchImei(run_, i); }
  static constexpr char kName[] = "Bench Customer";
  static constexpr char kAddress[] = "1 Bench Street, Springfield";

  // Puts them in the directory.
  absl::Status Import(const client::Client& admin) const {
    auto stub = v1::AdminService::NewStub(admin.channel());
    return ImportEntries<v1::ImportAccountsRequest, v1::ImportAccountsResponse>(
        admin, count_,
        [this](int i) {
          v1::Account a;
          a.set_account_number(Number(i));
          a.set_full_name(kName);
          a.set_billing_address(kAddress);
          a.set_email("bench@example.com");
          a.set_standing(v1::ACCOUNT_STANDING_GOOD);
          auto* device = a.add_devices();
          device->set_imei(Imei(i));
          device->set_model("Pixel 8");
          return a;
        },
        [&stub](auto... args) { return stub->ImportAccounts(args...); });
  }

  // An account no lifecycle holds; with every one held, n's in turn.
  int Take(uint64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return static_cast<int>(n % count_);
    const int i = free_.back();
    free_.pop_back();
    return i;
  }
  void Give(int i) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(i);
  }

 private:
  const std::string run_;
  const int count_;
  std::mutex mu_;
  std::vector<int> free_;
};

// Carrier unlock requests; the lifecycle is intake, identity, eligibility,
// submission to the carrier (which starts the 2-3 business-day window) and
// the carrier's report that the device is unlocked.
Procedure UnlockRequests(const Callers& who, std::shared_ptr<Accounts> accounts) {
  std::shared_ptr<v1::UnlockService::Stub> stub = v1::UnlockService::NewStub(who.agent.channel());
  auto open = [accounts](uint64_t n) {
    v1::CreateUnlockRequestRequest req;
    req.set_account_number(accounts->Number(static_cast<int>(n % accounts->size())));
    return req;
  };
  Procedure p;
  p.import = [&who, accounts] { return accounts->Import(who.admin); };
  p.create = [&who, stub, open](uint64_t n, Named named) {
    return Async<v1::UnlockRequest>(who.agent, stub, [](auto* a, auto... args) { a->CreateUnlockRequest(args...); },
                                    open(n), NameOf<v1::UnlockRequest>(std::move(named)));
  };
  p.comment = [&who, stub](const std::string& name) {
    v1::AddUnlockRequestCommentRequest req;
    req.set_text("benchmark note");
    return Async<v1::UnlockRequest>(who.agent, stub,
                                    [](auto* a, auto... args) { a->AddUnlockRequestComment(args...); },
                                    Naming(req, name));
  };
  p.get = [&who, stub](const std::string& name) {
    return Async<v1::UnlockRequest>(who.ops, stub, [](auto* a, auto... args) { a->GetUnlockRequest(args...); },
                                    Naming(v1::GetUnlockRequestRequest(), name));
  };
  p.page = [&who, stub] {
    v1::ListUnlockRequestsRequest req;
    req.set_page_size(50);
    req.set_state(v1::UNLOCK_STATE_OPEN);
    return Async<v1::ListUnlockRequestsResponse>(who.ops, stub,
                                                 [](auto* a, auto... args) { a->ListUnlockRequests(args...); }, req);
  };
  p.lifecycle = [&who, stub, accounts, create = p.create](uint64_t n) -> Issue {
    return [&who, stub, accounts, create, n](std::function<void(const grpc::Status&)> done) {
      const int account = accounts->Take(n);
      auto name = std::make_shared<std::string>();
      v1::VerifyIdentityRequest verify;
      verify.set_full_name(Accounts::kName);
      verify.set_billing_address(Accounts::kAddress);
      v1::CheckEligibilityRequest check;
      check.set_imei(accounts->Imei(account));
      v1::CompleteUnlockRequest complete;
      complete.set_success(true);
      Chain({
          [create, name, account] {
            return create(account, [name](const std::string& made) { *name = made; });
          },
          [&who, stub, name, verify] {
            return Async<v1::UnlockRequest>(who.agent, stub, [](auto* a, auto... args) { a->VerifyIdentity(args...); },
                                            Naming(verify, *name));
          },
          [&who, stub, name, check] {
            return Async<v1::UnlockRequest>(who.agent, stub, [](auto* a, auto... args) { a->CheckEligibility(args...); },
                                            Naming(check, *name));
          },
          [&who, stub, name] {
            return Async<v1::UnlockRequest>(who.agent, stub, [](auto* a, auto... args) { a->SubmitUnlock(args...); },
                                            Naming(v1::SubmitUnlockRequest(), *name));
          },
          [&who, stub, name, complete] {
            return Async<v1::UnlockRequest>(who.service, stub, [](auto* a, auto... args) { a->CompleteUnlock(args...); },
                                            Naming(complete, *name));
          },
      })([accounts, account, done](const grpc::Status& s) {
        accounts->Give(account);
        done(s);
      });
    };
  };
  return p;
}

// OTP login problems, which come in a burst when one-time PINs stop
// arriving. Each ticket is for one of `profiles` profiles that casebench
// imports first ("bench-<run>-<i>"); a profile may have several tickets.
// The lifecycle is the shortest way through the procedure: intake, the
// POPI security questions, 1st level troubleshooting after which the OTP
// arrived, and closing with the helpdesk classification. The question id
// and the classification are the server's defaults.
Procedure OtpTickets(const Callers& who, std::string run, int profiles) {
  std::shared_ptr<v1::OtpSupportService::Stub> stub = v1::OtpSupportService::NewStub(who.agent.channel());
  auto open = [run, profiles](uint64_t n) {
    v1::CreateOtpTicketRequest req;
    req.set_profile_id(absl::StrCat("bench-", run, "-", n % profiles));
    return req;
  };
  Procedure p;
  p.import = [&who, run, profiles] {
    auto admin = v1::AdminService::NewStub(who.admin.channel());
    return ImportEntries<v1::ImportProfilesRequest, v1::ImportProfilesResponse>(
        who.admin, profiles,
        [&run](int i) {
          v1::CustomerProfile profile;
          profile.set_profile_id(absl::StrCat("bench-", run, "-", i));
          profile.set_email("bench@example.com");
          return profile;
        },
        [&admin](auto... args) { return admin->ImportProfiles(args...); });
  };
  p.create = [&who, stub, open](uint64_t n, Named named) {
    return Async<v1::OtpTicket>(who.agent, stub, [](auto* a, auto... args) { a->CreateOtpTicket(args...); }, open(n),
                                NameOf<v1::OtpTicket>(std::move(named)));
  };
  p.comment = [&who, stub](const std::string& name) {
    v1::AddOtpTicketCommentRequest req;
    req.set_text("benchmark note");
    return Async<v1::OtpTicket>(who.agent, stub, [](auto* a, auto... args) { a->AddOtpTicketComment(args...); },
                                Naming(req, name));
  };
  p.get = [&who, stub](const std::string& name) {
    return Async<v1::OtpTicket>(who.ops, stub, [](auto* a, auto... args) { a->GetOtpTicket(args...); },
                                Naming(v1::GetOtpTicketRequest(), name));
  };
  p.page = [&who, stub] {
    v1::ListOtpTicketsRequest req;
    req.set_page_size(50);
    req.set_state(v1::OTP_STATE_VERIFICATION);
    return Async<v1::ListOtpTicketsResponse>(who.ops, stub, [](auto* a, auto... args) { a->ListOtpTickets(args...); },
                                             req);
  };
  p.lifecycle = [&who, stub, create = p.create](uint64_t n) {
    auto name = std::make_shared<std::string>();
    v1::RecordVerificationRequest verify;
    verify.set_passed(true);
    verify.add_passed_question_ids("full_name");
    v1::RecordFirstLevelRequest first;
    first.set_tried_sms(true);
    first.set_tried_email(true);
    first.set_checked_spam(true);
    first.set_otp_received(true);
    v1::CloseOtpTicketRequest close;
    close.set_ticket_form("Mr D Food :: Customer Query");
    close.set_query_type("Mr D Food: One Time Pin Issues");
    return Chain({
        [create, name, n] { return create(n, [name](const std::string& made) { *name = made; }); },
        [&who, stub, name, verify] {
          return Async<v1::OtpTicket>(who.agent, stub, [](auto* a, auto... args) { a->RecordVerification(args...); },
                                      Naming(verify, *name));
        },
        [&who, stub, name, first] {
          return Async<v1::OtpTicket>(who.agent, stub, [](auto* a, auto... args) { a->RecordFirstLevel(args...); },
                                      Naming(first, *name));
        },
        [&who, stub, name, close] {
          return Async<v1::OtpTicket>(who.agent, stub, [](auto* a, auto... args) { a->CloseOtpTicket(args...); },
                                      Naming(close, *name));
        },
    });
  };
  return p;
}

// Device-protection claims. casebench first puts a plan of the run's own in
// the catalogue and enrolls as many phones on it as --pool or
// --concurrency, one to an enrollment; claims are reported on them in turn,
// each for an incident on the day its enrollment began by the server's
// clock. The lifecycle is the report, the review and a repair.
Procedure Claims(const Callers& who, std::string run, int enrollments) {
  std::shared_ptr<v1::ProtectionClaimService::Stub> stub = v1::ProtectionClaimService::NewStub(who.agent.channel());
  struct Enrolled {
    std::string plan_number;
    std::string day;  // YYYY-MM-DD, UTC
  };
  auto enrolled = std::make_shared<std::vector<Enrolled>>();  // by device
  Procedure p;
  p.import = [&who, stub, run, enrollments, enrolled]() -> absl::Status {
    auto catalogue = v1::ProtectionClaimService::NewStub(who.admin.channel());
    v1::CreateProtectionPlanRequest plan;
    v1::ProtectionPlan* cover = plan.mutable_protection_plan();
    cover->set_plan_id(absl::StrCat("bench-", run));
    cover->set_display_name("Benchmark cover");
    cover->add_covered_perils(v1::PERIL_ACCIDENTAL_DAMAGE);
    cover->add_eligible_categories(v1::DEVICE_CATEGORY_PHONE);
    cover->mutable_monthly_price()->set_currency_code("EUR");
    cover->mutable_monthly_price()->set_minor_units(599);
    cover->set_review_business_days(5);
    v1::ProtectionPlan made;
    grpc::Status s = catalogue->CreateProtectionPlan(who.admin.Context().get(), plan, &made);
    if (!s.ok()) return absl::UnavailableError(absl::StrCat("the plan: ", s.error_message()));
    for (int i = 0; i < enrollments; ++i) {
      v1::CreateEnrollmentRequest req;
      v1::Enrollment* e = req.mutable_enrollment();
      e->set_plan_id(cover->plan_id());
      e->mutable_contact()->set_full_name("Bench Customer");
      e->mutable_contact()->set_email("bench@example.com");
      e->mutable_contact()->set_phone_number("+14155550123");
      v1::ProtectedDevice* device = e->add_devices();
      device->set_imei(BenchImei(run, i));
      device->set_category(v1::DEVICE_CATEGORY_PHONE);
      device->set_model("Pixel 8");
      device->set_purchase_date("2026-01-15");
      e->set_payment_method_ref("pm_bench");
      v1::Enrollment made_enrollment;
      s = stub->CreateEnrollment(who.agent.Context().get(), req, &made_enrollment);
      if (!s.ok()) return absl::UnavailableError(absl::StrCat("an enrollment: ", s.error_message()));
      const absl::CivilDay began = absl::ToCivilDay(FromProto(made_enrollment.create_time()), absl::UTCTimeZone());
      enrolled->push_back({made_enrollment.plan_number(), absl::FormatCivilTime(began)});
    }
    return absl::OkStatus();
  };
  auto report = [run, enrolled](uint64_t n) {
    const int i = static_cast<int>(n % enrolled->size());
    v1::ReportClaimRequest req;
    req.set_plan_number((*enrolled)[i].plan_number);
    req.set_channel(v1::CLAIM_CHANNEL_APP);
    req.set_peril(v1::PERIL_ACCIDENTAL_DAMAGE);
    req.set_incident_date((*enrolled)[i].day);
    req.set_description("The screen cracked in a fall");
    req.set_device(BenchImei(run, i));
    return req;
  };
  p.create = [&who, stub, report](uint64_t n, Named named) {
    return Async<v1::Claim>(who.agent, stub, [](auto* a, auto... args) { a->ReportClaim(args...); }, report(n),
                            NameOf<v1::Claim>(std::move(named)));
  };
  p.comment = [&who, stub](const std::string& name) {
    v1::AddClaimCommentRequest req;
    req.set_text("benchmark note");
    return Async<v1::Claim>(who.agent, stub, [](auto* a, auto... args) { a->AddClaimComment(args...); },
                            Naming(req, name));
  };
  p.get = [&who, stub](const std::string& name) {
    return Async<v1::Claim>(who.ops, stub, [](auto* a, auto... args) { a->GetClaim(args...); },
                            Naming(v1::GetClaimRequest(), name));
  };
  p.page = [&who, stub] {
    v1::ListClaimsRequest req;
    req.set_page_size(50);
    req.set_state(v1::CLAIM_STATE_REPORTED);
    return Async<v1::ListClaimsResponse>(who.ops, stub, [](auto* a, auto... args) { a->ListClaims(args...); }, req);
  };
  p.lifecycle = [&who, stub, create = p.create](uint64_t n) {
    auto name = std::make_shared<std::string>();
    v1::ResolveClaimRequest repair;
    repair.set_resolution(v1::RESOLUTION_REPAIR);
    return Chain({
        [create, name, n] { return create(n, [name](const std::string& made) { *name = made; }); },
        [&who, stub, name] {
          return Async<v1::Claim>(who.agent, stub, [](auto* a, auto... args) { a->StartClaimReview(args...); },
                                  Naming(v1::StartClaimReviewRequest(), *name));
        },
        [&who, stub, name, repair] {
          return Async<v1::Claim>(who.approver, stub, [](auto* a, auto... args) { a->ResolveClaim(args...); },
                                  Naming(repair, *name));
        },
    });
  };
  return p;
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
    } else if (const char* v = val("procedure")) {
      f.procedure = v;
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
  options.deadline = std::chrono::milliseconds(f.deadline_ms);
  auto as = [&options](const char* role) {
    client::Options o = options;
    o.role = role;
    return client::Client(o);
  };
  const Callers who{as("ops"), as("cs_agent"), as("service"), as("admin"), as("approver")};
  std::shared_ptr<grpc::health::v1::Health::Stub> health = grpc::health::v1::Health::NewStub(who.ops.channel());
  const uint64_t first = static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
  std::atomic<uint64_t> seq{first};
  std::mt19937_64 rng(42);

  // Accounts or profiles of this run: six digits of its start keep them
  // apart from an earlier run's on the same server.
  const std::string run = absl::StrFormat("%06d", first % 1000000);
  const int directory_entries = std::max(f.pool, f.concurrency);
  Procedure procedure;
  if (f.procedure == "trade-in") {
    procedure = TradeIns(who);
  } else if (f.procedure == "unlock") {
    procedure = UnlockRequests(who, std::make_shared<Accounts>(run, directory_entries));
  } else if (f.procedure == "otp") {
    procedure = OtpTickets(who, run, directory_entries);
  } else if (f.procedure == "claim") {
    procedure = Claims(who, run, directory_entries);
  } else {
    std::fprintf(stderr, "casebench: unknown procedure %s\n", f.procedure.c_str());
    return 2;
  }
  if (procedure.import && f.scenario != "noop") {
    if (auto s = procedure.import(); !s.ok()) {
      std::fprintf(stderr, "casebench: cannot fill the directory on %s: %s\n", f.server.c_str(),
                   std::string(s.message()).c_str());
      return 1;
    }
  }

  // A pool of cases for the scenarios that work on existing ones.
  std::vector<std::string> pool;
  if (f.scenario != "noop" && f.scenario != "create") {
    for (int i = 0; i < f.pool; ++i) {
      std::string name;
      if (Await(procedure.create(seq++, [&name](const std::string& made) { name = made; })).ok()) {
        pool.push_back(std::move(name));
      }
    }
    if (pool.empty()) {
      std::fprintf(stderr, "casebench: cannot create cases on %s\n", f.server.c_str());
      return 1;
    }
  }
  std::mutex pick_mu;  // calls start on gRPC's threads too
  auto pick = [&] {
    std::lock_guard<std::mutex> lock(pick_mu);
    return pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng)];
  };

  auto noop = [&](int) -> Issue {
    return Async<grpc::health::v1::HealthCheckResponse>(who.ops, health, [](auto* a, auto... args) { a->Check(args...); },
                                                        grpc::health::v1::HealthCheckRequest());
  };
  auto create = [&](int) { return procedure.create(seq++, nullptr); };
  auto transition = [&](int) { return procedure.comment(pick()); };
  auto get = [&](int) { return procedure.get(pick()); };
  auto board = [&](int) { return procedure.page(); };
  auto lifecycle = [&](int) { return procedure.lifecycle(seq++); };
  auto mixed = [&](int w) -> Issue {
    int dice;
    {
      std::lock_guard<std::mutex> lock(pick_mu);
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
