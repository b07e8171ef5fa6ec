// Live boards through a real server: a snapshot first, then every change,
// and a reconnect that resumes from the last cursor without a snapshot.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "casework/v1/boards.grpc.pb.h"
#include "casework/v1/trade_in.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/test_server.h"

namespace casework {
namespace {

using testing::TestServer;

const absl::Time kStart = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone());

class BoardsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Start();
    boards_ = v1::BoardService::NewStub(server_.channel());
    trade_ins_ = v1::TradeInService::NewStub(server_.channel());
  }

  v1::TradeIn Create(int n) {
    v1::CreateTradeInRequest req;
    auto* t = req.mutable_trade_in();
    t->set_v_number(absl::StrCat("V", 5000000 + n));
    t->set_s_number(absl::StrCat("S", 5000000 + n));
    t->set_product_name("Galaxy S22");
    t->set_problem(v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
    t->mutable_customer()->set_display_name("Jan");
    t->mutable_customer()->set_email("jan@example.nl");
    v1::TradeIn out;
    EXPECT_TRUE(trade_ins_->CreateTradeIn(TestServer::As("ops").get(), req, &out).ok());
    return out;
  }

  TestServer server_{kStart};
  std::unique_ptr<v1::BoardService::Stub> boards_;
  std::unique_ptr<v1::TradeInService::Stub> trade_ins_;
};

TEST_F(BoardsTest, ASnapshotThenEveryChangeAndResumeFromACursor) {
  Create(1);
  auto ctx = TestServer::As("cs_agent");
  v1::WatchBoardsRequest req;
  req.add_procedures("trade_in");
  auto stream = boards_->WatchBoards(ctx.get(), req);
  v1::BoardUpdate u;
  ASSERT_TRUE(stream->Read(&u));
  ASSERT_TRUE(u.has_snapshot());
  ASSERT_EQ(u.snapshot().boards_size(), 1);
  EXPECT_EQ(u.snapshot().boards(0).procedure(), "trade_in");
  EXPECT_EQ(u.snapshot().boards(0).columns(0).state(), "PROBLEM_ORDER");
  EXPECT_EQ(u.snapshot().boards(0).columns(0).count(), 1);
  ASSERT_EQ(u.snapshot().boards(0).slas_size(), 1);  // the response SLA, no clock needing attention
  EXPECT_EQ(u.snapshot().boards(0).slas(0).sla(), "response");
  EXPECT_EQ(u.snapshot().boards(0).slas(0).at_risk() + u.snapshot().boards(0).slas(0).breached(), 0);

  v1::TradeIn t = Create(2);
  ASSERT_TRUE(stream->Read(&u));
  ASSERT_TRUE(u.has_change());
  EXPECT_EQ(u.change().name(), t.name());
  EXPECT_EQ(u.change().previous_state(), "");
  EXPECT_EQ(u.change().state(), "PROBLEM_ORDER");
  v1::ContactCustomerRequest contact;
  contact.set_name(t.name());
  ASSERT_TRUE(trade_ins_->ContactCustomer(TestServer::As("cs_agent").get(), contact, &t).ok());
  ASSERT_TRUE(stream->Read(&u));
  EXPECT_EQ(u.change().previous_state(), "PROBLEM_ORDER");
  EXPECT_EQ(u.change().state(), "WAITING_FOR_RESPONSE");
  EXPECT_EQ(u.change().etag(), t.etag());
  EXPECT_EQ(u.change().assignee(), "");
  // A reassignment leaves the state; the change says who has the case now.
  v1::AssignTradeInRequest assign;
  assign.set_name(t.name());
  assign.set_assignee("agent:anna");
  ASSERT_TRUE(trade_ins_->AssignTradeIn(TestServer::As("cs_agent").get(), assign, &t).ok());
  ASSERT_TRUE(stream->Read(&u));
  EXPECT_EQ(u.change().previous_state(), "WAITING_FOR_RESPONSE");
  EXPECT_EQ(u.change().state(), "WAITING_FOR_RESPONSE");
  EXPECT_EQ(u.change().assignee(), "agent:anna");
  const std::string cursor = u.cursor();
  ctx->TryCancel();
  while (stream->Read(&u)) {
  }
  stream->Finish();

  // Changes while away arrive after a reconnect with the cursor, without a
  // snapshot.
  v1::TradeIn missed = Create(3);
  auto ctx2 = TestServer::As("cs_agent");
  req.set_cursor(cursor);
  auto resumed = boards_->WatchBoards(ctx2.get(), req);
  ASSERT_TRUE(resumed->Read(&u));
  ASSERT_TRUE(u.has_change()) << u.DebugString();
  EXPECT_EQ(u.change().name(), missed.name());
  ctx2->TryCancel();
  while (resumed->Read(&u)) {
  }
  resumed->Finish();

  // A cursor of another run starts over with a snapshot; nonsense is refused.
  auto ctx3 = TestServer::As("cs_agent");
  req.set_cursor("123:4");
  auto fresh = boards_->WatchBoards(ctx3.get(), req);
  ASSERT_TRUE(fresh->Read(&u));
  EXPECT_TRUE(u.has_snapshot());
  EXPECT_EQ(u.snapshot().boards(0).columns(0).count(), 2);
  ctx3->TryCancel();
  while (fresh->Read(&u)) {
  }
  fresh->Finish();

  auto ctx4 = TestServer::As("cs_agent");
  req.set_cursor("nonsense");
  auto bad = boards_->WatchBoards(ctx4.get(), req);
  EXPECT_FALSE(bad->Read(&u));
  grpc::Status s = bad->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(testing::NamesField(s, "cursor"));
  auto ctx5 = TestServer::As("cs_agent");
  v1::WatchBoardsRequest unknown;
  unknown.add_procedures("payroll");
  auto bad2 = boards_->WatchBoards(ctx5.get(), unknown);
  EXPECT_FALSE(bad2->Read(&u));
  EXPECT_TRUE(testing::NamesField(bad2->Finish(), "procedures[0]"));
}

// Snapshots taken while cases are being created count each create once:
// in the snapshot or in a change after it, never both, never neither.
TEST_F(BoardsTest, ASnapshotTakenDuringWritesAndTheChangesAfterItCountEachCaseOnce) {
  constexpr int kWriters = 4, kPerWriter = 100, kWatchers = 40;
  std::atomic<int> next{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&] {
      for (int i = 0; i < kPerWriter; ++i) Create(next++);
    });
  }
  struct Watch {
    std::unique_ptr<grpc::ClientContext> ctx = TestServer::As("team_lead");
    std::unique_ptr<grpc::ClientReader<v1::BoardUpdate>> stream;
    int64_t problem_orders = -1;
  };
  std::vector<Watch> watches(kWatchers);
  v1::WatchBoardsRequest req;
  req.add_procedures("trade_in");
  // Read each snapshot as soon as it is taken, spread over the writes.
  for (auto& w : watches) {
    w.stream = boards_->WatchBoards(w.ctx.get(), req);
    v1::BoardUpdate u;
    ASSERT_TRUE(w.stream->Read(&u));
    ASSERT_TRUE(u.has_snapshot());
    w.problem_orders = u.snapshot().boards(0).columns(0).count();
  }
  for (auto& t : writers) t.join();
  constexpr int64_t kAll = kWriters * kPerWriter;
  EXPECT_EQ(server_.TradeInBoard()["PROBLEM_ORDER"], kAll);
  // A create after every snapshot: each stream reads up to it.
  const std::string marker = Create(kAll).name();
  int mid_write = 0;
  for (auto& w : watches) {
    mid_write += w.problem_orders > 0 && w.problem_orders < kAll;
    v1::BoardUpdate u;
    bool seen_marker = false;
    while (!seen_marker && w.stream->Read(&u)) {
      seen_marker = u.change().name() == marker;
      if (!seen_marker && u.change().previous_state().empty()) ++w.problem_orders;
    }
    EXPECT_TRUE(seen_marker);
    EXPECT_EQ(w.problem_orders, kAll);
    w.ctx->TryCancel();
    while (w.stream->Read(&u)) {
    }
    w.stream->Finish();
  }
  EXPECT_GT(mid_write, 0);  // some snapshots were taken while writes ran
}

TEST_F(BoardsTest, AConnectionAtItsLimitOfCallsHoldsTheNextUntilOneEnds) {
  server_.Restart([](internal::ServerConfig* config) { config->set_max_concurrent_streams(2); });
  boards_ = v1::BoardService::NewStub(server_.channel());
  trade_ins_ = v1::TradeInService::NewStub(server_.channel());
  // Two live boards stay open on the connection.
  v1::WatchBoardsRequest req;
  req.add_procedures("trade_in");
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::BoardUpdate>>> streams;
  for (int i = 0; i < 2; ++i) {
    contexts.push_back(TestServer::As("cs_agent"));
    streams.push_back(boards_->WatchBoards(contexts.back().get(), req));
    v1::BoardUpdate snapshot;
    ASSERT_TRUE(streams.back()->Read(&snapshot));
  }
  // A third call waits in the client for one of them to end.
  auto held = TestServer::As("ops");
  held->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  v1::TradeInBoard board;
  EXPECT_EQ(trade_ins_->GetTradeInBoard(held.get(), v1::GetTradeInBoardRequest(), &board).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  contexts[0]->TryCancel();
  streams[0]->Finish();
  EXPECT_TRUE(
      trade_ins_->GetTradeInBoard(TestServer::As("ops").get(), v1::GetTradeInBoardRequest(), &board).ok());
  // Another connection has calls of its own.
  auto other = testing::ConnectToChild(server_.server().port(), absl::Seconds(10));
  ASSERT_NE(other, nullptr);
  v1::BoardUpdate snapshot;
  auto ctx = TestServer::As("cs_agent");
  EXPECT_TRUE(v1::BoardService::NewStub(other)->WatchBoards(ctx.get(), req)->Read(&snapshot));
  contexts[1]->TryCancel();
  streams[1]->Finish();
}

}  // namespace
}  // namespace casework
