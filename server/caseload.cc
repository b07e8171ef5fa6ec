// caseload: fills a data folder with trade-in cases spread over the board's
// states, for benchmarks at scale (docs/benchmarks.md).
//
// It assembles the same server as caseworkd (same config file, same secrets
// key, same workflows) with the store in bulk mode, and drives the engine
// directly on several threads, so every case, timeline, index entry, board
// counter and timer is what the RPCs would have written. The notifications
// the load queues are marked as sent, and the store is compacted at the
// end. Run it while no caseworkd uses the folder.
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "casework/v1/trade_in.pb.h"
#include "server/common/clock.h"
#include "server/config.h"
#include "server/server.h"
#include "server/workflow/trade_in_workflow.h"

namespace casework {
namespace {

constexpr char kUsage[] =
    "usage: caseload --data-dir=DIR [--config=FILE] [--cases=N] [--threads=N]\n"
    "                [--state=STATE] [--at=RFC3339] [--spread=SECONDS]\n"
    "\n"
    "Adds N trade-in cases (default 1000000) to the data folder. Without\n"
    "--state they are spread over the board: PROBLEM_ORDER 15 %,\n"
    "WAITING_FOR_RESPONSE 55 % (each with its first reminder armed),\n"
    "TESTING 10 %, CLOSED 15 %, CANCELLED 5 %. --state puts them all in one\n"
    "of those states. --at writes them as if the clock stood still at that\n"
    "time (default: now), e.g. to make all their timers fall due at once;\n"
    "--spread moves that clock forward evenly over the load, so that case\n"
    "N of the load is written about N/cases x SECONDS after --at.\n"
    "caseworkd must not be running on the folder.\n";

namespace wf = workflow;

// The states a loaded case can end in, with the share of the spread.
struct Target {
  const char* state;
  int percent;
};
constexpr Target kSpread[] = {{"PROBLEM_ORDER", 15},
                              {"WAITING_FOR_RESPONSE", 55},
                              {"TESTING", 10},
                              {"CLOSED", 15},
                              {"CANCELLED", 5}};

const char* StateOf(uint64_t n, const std::string& only) {
  if (!only.empty()) return only.c_str();
  int slot = static_cast<int>(n % 100);
  for (const Target& t : kSpread) {
    if (slot < t.percent) return t.state;
    slot -= t.percent;
  }
  return kSpread[0].state;
}

// Creates case number `n` and moves it to `state` through the workflow's
// own actions.
absl::Status LoadOne(engine::Engine& engine, uint64_t n, const std::string& state) {
  const wf::Actor ops{"caseload", wf::kOps};
  const wf::Actor agent{"caseload", wf::kCsAgent};
  v1::CreateTradeInRequest create;
  auto* t = create.mutable_trade_in();
  t->set_v_number(absl::StrCat("V", 1000000000 + n));
  t->set_s_number(absl::StrCat("S", 1000000000 + n));
  t->set_product_name("Galaxy S22");
  t->set_problem(v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
  t->mutable_customer()->set_display_name(absl::StrCat("Customer ", n));
  t->mutable_customer()->set_email(absl::StrCat("customer", n, "@example.nl"));
  auto view = engine.Create(wf::kTradeInKind, "", "", ops, create);
  if (!view.ok()) return view.status();
  const std::string id = view->record.id();
  auto act = [&](const std::string& action, const wf::Actor& who,
                 const google::protobuf::Message& input) {
    return engine.Act(wf::kTradeInKind, id, -1, action, who, input).status();
  };
  if (state == "PROBLEM_ORDER") return absl::OkStatus();
  if (state == "WAITING_FOR_RESPONSE") {
    return act(wf::kTradeInContactCustomer, agent, v1::ContactCustomerRequest());
  }
  if (state == "CANCELLED") {
    v1::CancelTradeInRequest cancel;
    cancel.set_reason("Customer sold the device elsewhere");
    return act(wf::kTradeInCancel, ops, cancel);
  }
  v1::RecordUnlockCodeRequest code;
  code.set_unlock_code("2468");
  if (auto s = act(wf::kTradeInRecordUnlockCode, agent, code); !s.ok()) return s;
  if (state == "TESTING") return absl::OkStatus();
  v1::CloseTradeInRequest close;
  close.set_note("Device tested and accepted");
  return act(wf::kTradeInClose, ops, close);
}

// Marks every queued notification as sent: the load's customers were never
// real, and a dispatcher that starts on the loaded store should start idle.
absl::StatusOr<int64_t> MarkOutboxSent(storage::Repository& repo) {
  int64_t done = 0;
  for (int lane = 0; lane < storage::kOutboxLanes; ++lane) {
    for (;;) {
      // Few, large claims: each one seeks past the tombstones of the items
      // completed before it.
      auto items = repo.Claim(storage::Queue::kOutbox, absl::InfiniteFuture(), 50000, "caseload",
                              absl::Hours(1), lane);
      if (!items.ok()) return items.status();
      if (items->empty()) break;
      for (const auto& item : *items) {
        if (auto s = repo.Complete(storage::Queue::kOutbox, item); !s.ok()) return s;
        ++done;
      }
    }
  }
  return done;
}

int Main(int argc, char** argv) {
  std::string config_path, data_dir, cases_flag = "1000000", threads_flag = "4", state, at_flag,
      spread_flag = "0";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (FlagValue(arg, "config", &config_path) || FlagValue(arg, "data-dir", &data_dir) ||
        FlagValue(arg, "cases", &cases_flag) || FlagValue(arg, "threads", &threads_flag) ||
        FlagValue(arg, "state", &state) || FlagValue(arg, "at", &at_flag) ||
        FlagValue(arg, "spread", &spread_flag)) {
      continue;
    }
    std::fputs(kUsage, arg == "--help" ? stdout : stderr);
    return arg == "--help" ? 0 : 2;
  }
  int64_t cases = 0;
  int threads = 0;
  absl::Time at = absl::Now();
  double spread = 0;
  std::string error;
  if (data_dir.empty()) error = "--data-dir is required";
  if (!absl::SimpleAtoi(cases_flag, &cases) || cases < 1) error = "--cases must be a positive number";
  if (!absl::SimpleAtoi(threads_flag, &threads) || threads < 1 || threads > 64) {
    error = "--threads must be 1 to 64";
  }
  if (!at_flag.empty() && !absl::ParseTime(absl::RFC3339_full, at_flag, &at, &error)) {
    error = absl::StrCat("--at: ", error);
  }
  if (!absl::SimpleAtod(spread_flag, &spread) || spread < 0) {
    error = "--spread must be a number of seconds";
  }
  bool known_state = state.empty();
  for (const Target& t : kSpread) known_state = known_state || state == t.state;
  if (!known_state) error = absl::StrCat("--state: not one of the loaded states: ", state);
  if (!error.empty()) {
    std::fprintf(stderr, "caseload: %s\n%s", error.c_str(), kUsage);
    return 2;
  }

  auto config = LoadConfigFile(config_path);
  if (config.ok()) {
    config->set_data_dir(data_dir);
    // The assembled server binds an unused loopback port and admits nobody.
    config->set_listen_address("127.0.0.1:0");
    config->set_plaintext(true);
    config->mutable_auth()->set_token_file("/dev/null");
    config->mutable_auth()->set_header_identity(false);
    config->set_metrics_address("off");
    config = Finalize(*std::move(config));
  }
  if (!config.ok()) {
    std::fprintf(stderr, "caseload: %s\n", config.status().ToString().c_str());
    return 2;
  }
  SimulatedClock clock(at);
  ServerOptions options;
  options.config = *config;
  options.clock = &clock;
  options.background = false;
  options.bulk_load = true;
  auto server = Server::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "caseload: %s\n", server.status().ToString().c_str());
    return 1;
  }
  engine::Engine& engine = (*server)->engine();

  const absl::Time begin = absl::Now();
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> loaded{0};
  std::mutex error_mu;
  absl::Status first_error;
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&] {
      for (int64_t n = next++; n < cases; n = next++) {
        // Threads interleave, so with --spread a case may see a neighbour's
        // time: the spread is even to within a few cases.
        if (spread > 0) clock.Set(at + absl::Seconds(spread * n / cases));
        absl::Status s = LoadOne(engine, static_cast<uint64_t>(n), StateOf(n, state));
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(error_mu);
          if (first_error.ok()) first_error = s;
          next = cases;
          return;
        }
        const int64_t total = ++loaded;
        if (total % 100000 == 0) {
          std::fprintf(stderr, "caseload: %lld cases, %.0f/s\n", static_cast<long long>(total),
                       total / absl::ToDoubleSeconds(absl::Now() - begin));
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  if (!first_error.ok()) {
    std::fprintf(stderr, "caseload: case %lld: %s\n", static_cast<long long>(loaded.load()),
                 first_error.ToString().c_str());
    return 1;
  }
  const double load_seconds = absl::ToDoubleSeconds(absl::Now() - begin);
  storage::Repository& repo = (*server)->repository();
  auto sent = MarkOutboxSent(repo);
  auto timers = repo.QueueSize(storage::Queue::kTimers);
  const absl::Time compact_begin = absl::Now();
  absl::Status compacted = sent.ok() && timers.ok() ? repo.Compact() : absl::OkStatus();
  const double compact_seconds = absl::ToDoubleSeconds(absl::Now() - compact_begin);
  for (const absl::Status& s : {sent.status(), timers.status(), compacted}) {
    if (!s.ok()) {
      std::fprintf(stderr, "caseload: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  auto board = engine.Board(wf::kTradeInKind);
  std::string counts;
  if (board.ok()) {
    for (const auto& [name, n] : board->columns) absl::StrAppend(&counts, " ", name, "=", n);
  }
  (*server)->Shutdown();
  std::printf("caseload: %lld cases in %.1f s (%.0f/s), %lld notifications marked sent, "
              "%lld timers pending, store compacted in %.1f s; board:%s\n",
              static_cast<long long>(cases), load_seconds, cases / load_seconds,
              static_cast<long long>(*sent), static_cast<long long>(*timers), compact_seconds,
              counts.c_str());
  return 0;
}

}  // namespace
}  // namespace casework

int main(int argc, char** argv) { return casework::Main(argc, argv); }
