// casebench against a real server: a request-count run writes what it
// reports, the limits and the machine come in the same report, every
// scenario runs clean on trade-ins, unlock requests, OTP tickets and
// device-protection claims, TLS is spoken when asked, and refused calls are
// counted by their code.

#include <map>
#include <string>
#include <thread>

#include "casework/v1/otp_support.grpc.pb.h"
#include "casework/v1/protection.grpc.pb.h"
#include "casework/v1/unlock.grpc.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/common/files.h"
#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_server.h"

namespace casework {
namespace {

using testing::TestServer;

const absl::Time kStart = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone());

struct Report : testing::CommandResult {
  google::protobuf::Struct report;  // the --json report, when there is one
};

class CasebenchTest : public ::testing::Test {
 protected:
  // `rate` is the per-principal limit (requests per second; negative: none).
  void Start(double rate, double burst = 0) {
    server_.Start([=](internal::ServerConfig* c) {
      c->mutable_rate_limit()->set_requests_per_second(rate);
      c->mutable_rate_limit()->set_burst(burst);
    });
  }

  Report Casebench(const std::string& args) {
    const std::string cmd = absl::StrCat(CASEBENCH_PATH, " --server=127.0.0.1:", server_.server().port(),
                                         " --json ", args, " 2>/dev/null");
    Report run{testing::RunCommand(cmd), {}};
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(run.out, &run.report).ok()) << run.out;
    return run;
  }

  static const google::protobuf::Struct& Part(const Report& run, const std::string& key) {
    return run.report.fields().at(key).struct_value();
  }
  static double Number(const google::protobuf::Struct& s, const std::string& key) {
    return s.fields().at(key).number_value();
  }

  // Trade-ins stored, over every board column.
  int64_t TradeInsStored() {
    int64_t total = 0;
    for (const auto& [state, count] : server_.TradeInBoard()) total += count;
    return total;
  }

  // A procedure's board, as cases per state.
  template <typename Service, typename Request, typename Board>
  std::map<std::string, int64_t> BoardOf(grpc::Status (Service::Stub::*get)(grpc::ClientContext*, const Request&,
                                                                            Board*)) {
    auto stub = Service::NewStub(server_.channel());
    Board board;
    const grpc::Status s = ((*stub).*get)(TestServer::As("ops").get(), Request(), &board);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::map<std::string, int64_t> counts;
    for (const auto& column : board.columns()) counts[column.state()] = column.count();
    return counts;
  }

  testing::TempDir dir_;
  TestServer server_{kStart};
};

TEST_F(CasebenchTest, RequestCountRunWritesEveryCaseAndReportsTheLimits) {
  Start(-1);
  const Report run = Casebench(absl::StrCat("--scenario=create --requests=120 --concurrency=8 --warmup=0 ",
                                         "--duration=0.5 --fsync-dir=", dir_.path()));
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const auto& created = Part(run, "scenario");
  EXPECT_EQ(Number(created, "requests"), 120);
  EXPECT_TRUE(created.fields().at("errors_by_code").struct_value().fields().empty());
  EXPECT_GT(Number(created, "qps"), 0);
  EXPECT_LE(Number(created, "p50_ms"), Number(created, "p99_ms"));
  // Calls in flight when the count was reached still create their case.
  EXPECT_GE(TradeInsStored(), 120);
  EXPECT_LE(TradeInsStored(), 120 + 7);

  // The limits of the same run, and the ratios to them.
  EXPECT_GT(Number(Part(run, "noop"), "qps"), 0);
  EXPECT_GT(Number(Part(run, "rocksdb_synced_write"), "qps"), 0);
  EXPECT_GT(Number(run.report, "fsync_p50_ms"), 0);
  EXPECT_NEAR(Number(run.report, "ratio_to_noop"), Number(created, "qps") / Number(Part(run, "noop"), "qps"),
              0.001);
  // The machine it ran on, as far as it moves the figures.
  const auto& machine = Part(run, "machine");
  EXPECT_EQ(Number(machine, "cpus"), std::thread::hardware_concurrency());
  if (auto poll = ReadWholeFile("/sys/module/haltpoll/parameters/guest_halt_poll_ns")) {
    ASSERT_TRUE(machine.fields().contains("guest_halt_poll_ns")) << run.out;
    EXPECT_EQ(Number(machine, "guest_halt_poll_ns"), std::stod(*poll));
  } else {
    EXPECT_FALSE(machine.fields().contains("guest_halt_poll_ns"));
  }
}

TEST_F(CasebenchTest, EveryScenarioRunsWithoutErrors) {
  Start(-1);
  for (const char* scenario : {"noop", "create", "transition", "get", "board", "lifecycle", "mixed"}) {
    const Report run = Casebench(absl::StrCat("--scenario=", scenario, " --requests=40 --concurrency=4 --warmup=0 ",
                                           "--pool=20 --no-limits"));
    EXPECT_EQ(run.exit_code, 0) << scenario << ": " << run.out;
    EXPECT_EQ(Number(Part(run, "scenario"), "requests"), 40) << scenario;
    EXPECT_FALSE(run.report.fields().contains("noop")) << scenario;  // --no-limits
  }
}

TEST_F(CasebenchTest, EveryScenarioRunsWithoutErrorsOnUnlockRequestsOtpTicketsAndClaims) {
  Start(-1);
  for (const char* procedure : {"unlock", "otp", "claim"}) {
    for (const char* scenario : {"create", "transition", "get", "board", "lifecycle", "mixed"}) {
      const Report run = Casebench(absl::StrCat("--procedure=", procedure, " --scenario=", scenario,
                                             " --requests=40 --concurrency=4 --warmup=0 --pool=20 --no-limits"));
      EXPECT_EQ(run.exit_code, 0) << procedure << " " << scenario << ": " << run.out;
      EXPECT_EQ(Number(Part(run, "scenario"), "requests"), 40) << procedure << " " << scenario;
    }
  }
}

// A lifecycle takes its case through the whole procedure: an unlock
// request from intake to the carrier's completion, an OTP ticket through
// verification and 1st level troubleshooting (after which the OTP arrived)
// to its closing, a claim through its review to a repair. A submitted unlock request holds its device until it is
// completed, so lifecycles in flight at once need accounts of their own:
// here as many as there are.
TEST_F(CasebenchTest, LifecyclesEndAtTheEndOfTheirProcedure) {
  Start(-1);
  struct Procedure {
    const char* name;
    std::function<std::map<std::string, int64_t>()> board;
    const char* pool_state;  // where the pool's cases wait
    const char* end_state;
  };
  const Procedure procedures[] = {
      {"unlock", [this] { return BoardOf<v1::UnlockService>(&v1::UnlockService::Stub::GetUnlockBoard); }, "OPEN",
       "COMPLETED"},
      {"otp", [this] { return BoardOf<v1::OtpSupportService>(&v1::OtpSupportService::Stub::GetOtpBoard); },
       "VERIFICATION", "CLOSED"},
      {"claim",
       [this] { return BoardOf<v1::ProtectionClaimService>(&v1::ProtectionClaimService::Stub::GetClaimBoard); },
       "REPORTED", "RESOLVED"},
  };
  for (const Procedure& p : procedures) {
    const Report run = Casebench(absl::StrCat("--procedure=", p.name, " --scenario=lifecycle --requests=60 ",
                                           "--concurrency=4 --warmup=0 --pool=4 --no-limits"));
    ASSERT_EQ(run.exit_code, 0) << p.name << ": " << run.out;
    EXPECT_EQ(Number(Part(run, "scenario"), "requests"), 60) << p.name;
    std::map<std::string, int64_t> board = p.board();
    // The pool's four cases stay where they were made; lifecycles in flight
    // when the count was reached still finish.
    EXPECT_EQ(board[p.pool_state], 4) << p.name;
    EXPECT_GE(board[p.end_state], 60) << p.name;
    EXPECT_LE(board[p.end_state], 60 + 3) << p.name;
    board.erase(p.pool_state);
    board.erase(p.end_state);
    for (const auto& [state, count] : board) EXPECT_EQ(count, 0) << p.name << " " << state;
  }
}

TEST_F(CasebenchTest, OpenLoopKeepsItsRate) {
  Start(-1);
  // 200 calls at 100/s take about two seconds, however fast the server is.
  const Report run = Casebench("--scenario=get --rate=100 --requests=200 --warmup=0 --pool=10 --no-limits");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const auto& got = Part(run, "scenario");
  EXPECT_EQ(Number(got, "requests"), 200);
  EXPECT_GT(Number(got, "seconds"), 1.5);
  EXPECT_LT(Number(got, "qps"), 130);
}

// Production serves TLS: with --ca the scenario and its no-op limit both go
// over it, so the ratio compares like with like.
TEST_F(CasebenchTest, WithACaTheScenarioAndItsLimitGoOverTls) {
  const std::pair<std::string, std::string> made = testing::MakeSelfSignedCert(dir_.path());
  const std::string& cert = made.first;
  const std::string& key = made.second;
  ASSERT_FALSE(testing::ReadFile(cert).empty()) << "openssl could not make the test certificate";
  server_.Start([&](internal::ServerConfig* c) {
    c->mutable_rate_limit()->set_requests_per_second(-1);
    c->set_plaintext(false);
    c->mutable_tls()->set_cert_file(cert);
    c->mutable_tls()->set_key_file(key);
  });
  const Report run = Casebench(absl::StrCat("--ca=", cert, " --scenario=get --requests=40 --concurrency=4 ",
                                         "--warmup=0 --duration=0.5 --pool=10"));
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(Number(Part(run, "scenario"), "requests"), 40);
  EXPECT_GT(Number(Part(run, "noop"), "qps"), 0);
  // Without it casebench speaks plaintext, which a TLS port refuses.
  const std::string plain = absl::StrCat(CASEBENCH_PATH, " --server=127.0.0.1:", server_.server().port(),
                                         " --scenario=get --requests=4 --pool=1 --no-limits 2>&1");
  const testing::CommandResult refused = testing::RunCommand(plain);
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_NE(refused.out.find("cannot create cases"), std::string::npos) << refused.out;
}

TEST_F(CasebenchTest, RefusedCallsAreCountedByCode) {
  // Five calls of burst, then one a minute: most creates are refused.
  Start(1.0 / 60, 5);
  const Report run = Casebench("--scenario=create --requests=30 --concurrency=1 --warmup=0 --no-limits");
  EXPECT_EQ(run.exit_code, 1) << run.out;
  const auto& created = Part(run, "scenario");
  const auto& errors = created.fields().at("errors_by_code").struct_value();
  ASSERT_TRUE(errors.fields().contains("8")) << run.out;  // RESOURCE_EXHAUSTED
  EXPECT_EQ(Number(created, "requests") + errors.fields().at("8").number_value(), 30);
  EXPECT_EQ(Number(created, "requests"), TradeInsStored());
  EXPECT_LE(Number(created, "requests"), 6);
}

TEST_F(CasebenchTest, CallsPastTheirDeadlineAreCountedByCode) {
  Start(-1);
  // 64 creates at a time, each given a millisecond: most give up waiting.
  const Report run =
      Casebench("--scenario=create --requests=400 --concurrency=64 --warmup=0 --no-limits --deadline=1");
  EXPECT_EQ(run.exit_code, 1) << run.out;
  const auto& created = Part(run, "scenario");
  const auto& errors = created.fields().at("errors_by_code").struct_value();
  ASSERT_TRUE(errors.fields().contains("4")) << run.out;  // DEADLINE_EXCEEDED
  EXPECT_EQ(Number(created, "requests") + errors.fields().at("4").number_value(), 400) << run.out;
  // A call answered OK is stored; one whose caller gave up may be too.
  EXPECT_GE(TradeInsStored(), Number(created, "requests"));
}

}  // namespace
}  // namespace casework
