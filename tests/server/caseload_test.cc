// caseload against a real server: the store it fills is served as if the
// RPCs had written it (board counts, readable cases with their personal
// data, timers that fall due, no notifications left to send), and it
// refuses bad flags and a folder a server is using.
#include <map>

#include "absl/strings/str_cat.h"
#include "casework/v1/trade_in.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/test_server.h"

// Under ThreadSanitizer: its deadlock detector stops a process in which one
// thread holds more than 64 mutexes, and a commit holds the lock stripes of
// every case it writes (taken in one fixed order, so it cannot deadlock).
// The 110 reminders this test fires at once commit together. Unused in
// other builds.
extern "C" const char* __tsan_default_options() { return "detect_deadlocks=0"; }

namespace casework {
namespace {

using ::testing::HasSubstr;
using testing::TestServer;

// A Monday morning; the load is written at this time.
const absl::Time kStart = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone());
constexpr char kAt[] = "--at=2026-03-02T10:00:00Z";

// out: stdout and stderr.
testing::CommandResult Caseload(const std::string& args) {
  return testing::RunCommand(absl::StrCat(CASELOAD_PATH, " ", args, " 2>&1"));
}

// Every trade-in in `state`, page by page.
std::vector<v1::TradeIn> ListAll(TestServer& server, v1::TradeInState state) {
  auto stub = v1::TradeInService::NewStub(server.channel());
  std::vector<v1::TradeIn> all;
  v1::ListTradeInsRequest req;
  req.set_state(state);
  req.set_page_size(50);
  for (;;) {
    v1::ListTradeInsResponse page;
    auto ctx = TestServer::As("ops");
    const grpc::Status s = stub->ListTradeIns(ctx.get(), req, &page);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) return all;
    all.insert(all.end(), page.trade_ins().begin(), page.trade_ins().end());
    if (page.next_page_token().empty()) return all;
    req.set_page_token(page.next_page_token());
  }
}

TEST(CaseloadTest, LoadedStoreIsServedLikeOneTheRpcsWrote) {
  TestServer server(kStart);
  const testing::CommandResult load =
      Caseload(absl::StrCat("--data-dir=", server.data_dir(), " --cases=200 --threads=2 ", kAt));
  ASSERT_EQ(load.exit_code, 0) << load.out;
  // 110 cases wait for the customer, each with its first reminder armed.
  EXPECT_THAT(load.out, HasSubstr("caseload: 200 cases in"));
  EXPECT_THAT(load.out, HasSubstr("110 timers pending"));

  server.Start();
  const std::map<std::string, int64_t> expected = {{"PROBLEM_ORDER", 30},
                                                   {"WAITING_FOR_RESPONSE", 110},
                                                   {"AWAITING_APPROVAL", 0},
                                                   {"TESTING", 20},
                                                   {"CLOSED", 30},
                                                   {"CANCELLED", 10}};
  EXPECT_EQ(server.TradeInBoard(), expected);
  EXPECT_THAT(load.out, HasSubstr("board: PROBLEM_ORDER=30 WAITING_FOR_RESPONSE=110 AWAITING_APPROVAL=0 "
                                  "TESTING=20 CLOSED=30 CANCELLED=10"));

  const std::vector<v1::TradeIn> waiting = ListAll(server, v1::TRADE_IN_STATE_WAITING_FOR_RESPONSE);
  ASSERT_EQ(waiting.size(), 110u);
  for (const auto& t : waiting) {
    // The customer's address was sealed with the folder's key and opens.
    EXPECT_THAT(t.customer().email(), ::testing::MatchesRegex("customer[0-9]+@example\\.nl")) << t.name();
    EXPECT_EQ(t.reminders_sent(), 0) << t.name();
  }

  // The load's own notifications count as sent: nothing goes out now.
  server.Pump();
  EXPECT_TRUE(server.Spool().empty());

  // A week later the first reminders fall due and are sent, one per
  // waiting case.
  server.clock().Advance(absl::Hours(24 * 7) + absl::Minutes(5));
  for (int i = 0; i < 3; ++i) server.Pump();
  EXPECT_EQ(server.SpoolFor("trade_in.reminder").size(), 110u);
  for (const auto& t : ListAll(server, v1::TRADE_IN_STATE_WAITING_FOR_RESPONSE)) {
    EXPECT_EQ(t.reminders_sent(), 1) << t.name();
  }
}

TEST(CaseloadTest, OneStateOnly) {
  TestServer server(kStart);
  const testing::CommandResult load = Caseload(
      absl::StrCat("--data-dir=", server.data_dir(), " --cases=40 --threads=3 --state=TESTING ", kAt));
  ASSERT_EQ(load.exit_code, 0) << load.out;
  EXPECT_THAT(load.out, HasSubstr("0 timers pending"));
  server.Start();
  EXPECT_EQ(server.TradeInBoard()["TESTING"], 40);
  EXPECT_EQ(server.TradeInBoard()["PROBLEM_ORDER"], 0);
}

TEST(CaseloadTest, BadFlagsAreRefusedByName) {
  TestServer server(kStart);
  struct Case {
    std::string args;
    std::string says;
  } cases[] = {
      {"--cases=10", "--data-dir is required"},
      {absl::StrCat("--data-dir=", server.data_dir(), " --cases=0"), "--cases"},
      {absl::StrCat("--data-dir=", server.data_dir(), " --threads=0"), "--threads"},
      {absl::StrCat("--data-dir=", server.data_dir(), " --state=ON_HOLD"), "--state"},
      {absl::StrCat("--data-dir=", server.data_dir(), " --at=yesterday"), "--at"},
      {absl::StrCat("--data-dir=", server.data_dir(), " --spread=-1"), "--spread"},
      {"--colour=blue", "usage: caseload"},
  };
  for (const auto& c : cases) {
    const testing::CommandResult run = Caseload(c.args);
    EXPECT_EQ(run.exit_code, 2) << c.args << ": " << run.out;
    EXPECT_THAT(run.out, HasSubstr(c.says)) << c.args;
  }
  // Nothing was written: a server starts on an empty store.
  server.Start();
  for (const auto& [state, n] : server.TradeInBoard()) EXPECT_EQ(n, 0) << state;
}

TEST(CaseloadTest, RefusesAFolderAServerIsUsing) {
  TestServer server(kStart);
  server.Start();
  const testing::CommandResult load =
      Caseload(absl::StrCat("--data-dir=", server.data_dir(), " --cases=10 ", kAt));
  EXPECT_EQ(load.exit_code, 1) << load.out;
  EXPECT_THAT(load.out, HasSubstr("is in use by another process"));
  for (const auto& [state, n] : server.TradeInBoard()) EXPECT_EQ(n, 0) << state;
}

}  // namespace
}  // namespace casework
