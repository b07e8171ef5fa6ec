// Crash test: a real caseworkd under a mixed workload is killed with
// SIGKILL again and again, at random moments and at the named crash points
// (server/common/crash_point.h), and restarted. The client writes every
// acknowledged change (case, version) to a log it fsyncs before counting
// it. After the last restart a checker proves:
//   - every acknowledged change is there (the case's version is at least
//     the acknowledged one, so versions never went backwards);
//   - every timeline is numbered 1..n without gaps or repeats;
//   - the board's count of each state is the number of cases its list
//     finds (counters and indexes written together, whatever the kills);
//   - every notification the timelines queued was delivered exactly once
//     into the spool (one file per dedupe key), including those whose
//     delivery the kills interrupted;
//   - a notification template made, edited and deleted over and over
//     meanwhile kept its acknowledged edits, and no version it had came
//     back after a deletion (its etags never match an earlier life's).
//
// CI runs 20 kills. The long run:
//   CASEWORK_CRASH_KILLS=500 build/tests/crash_test
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "casework/v1/admin.grpc.pb.h"
#include "casework/v1/trade_in.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/test_server.h"

namespace casework {
namespace {

using testing::TestServer;

// Appends lines and syncs each before returning: the client's proof of
// what the server acknowledged.
class AckLog {
 public:
  explicit AckLog(const std::string& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {}
  ~AckLog() { ::close(fd_); }
  void Append(const std::string& name, int64_t version) {
    const std::string line = absl::StrCat(name, " ", version, "\n");
    std::lock_guard<std::mutex> lock(mu_);
    ASSERT_EQ(::write(fd_, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    ASSERT_EQ(::fdatasync(fd_), 0);
  }

 private:
  int fd_;
  std::mutex mu_;
};

template <typename Resource>
int64_t VersionOf(const Resource& r) {
  int64_t v = 0;
  EXPECT_TRUE(absl::SimpleAtoi(r.etag(), &v)) << r.etag();
  return v;
}

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& role) {
  auto ctx = TestServer::As(role);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return ctx;
}

constexpr char kMacro[] = "templates/trade_in.crash_macro";

// Makes, edits and deletes one template (a macro of an admin's) again and
// again. Its log, in order: "put V" for an acknowledged create or edit,
// "deleting V" before it asks to delete the template at V, "deleted V"
// once that is acknowledged.
class TemplateWorkload {
 public:
  TemplateWorkload(std::shared_ptr<grpc::Channel> channel, AckLog* log, int seed)
      : stub_(v1::AdminService::NewStub(channel)), log_(log), rng_(seed) {}

  // Runs until `stop` or the server goes away.
  void Run(const std::atomic<bool>& stop) {
    if (!Read()) return;
    while (!stop) {
      if (!Step()) return;
    }
  }

 private:
  // Learns whether the template is there and at which etag; false when the
  // server is gone.
  bool Read() {
    v1::GetTemplateRequest req;
    req.set_name(kMacro);
    v1::Template t;
    const grpc::Status s = stub_->GetTemplate(Ctx("admin").get(), req, &t);
    if (s.ok()) etag_ = t.etag();
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) etag_.clear();
    return s.ok() || s.error_code() == grpc::StatusCode::NOT_FOUND;
  }

  // One write; false when the server is gone.
  bool Step() {
    v1::Template out;
    grpc::Status s;
    if (etag_.empty()) {
      v1::CreateTemplateRequest req;
      req.set_template_id(std::string(kMacro).substr(std::string("templates/").size()));
      req.mutable_template_()->set_channel(v1::CHANNEL_EMAIL);
      auto* nl = req.mutable_template_()->add_variants();
      nl->set_language_code("nl");
      nl->set_subject("Ophalen later ({{v_number}})");
      nl->set_body("De koerier komt later.");
      s = stub_->CreateTemplate(Ctx("admin").get(), req, &out);
    } else if (std::uniform_int_distribution<int>(0, 9)(rng_) < 7) {
      v1::UpdateTemplateRequest req;
      req.mutable_template_()->set_name(kMacro);
      req.mutable_template_()->set_etag(etag_);
      req.mutable_template_()->add_variants()->set_language_code("nl");
      req.mutable_template_()->mutable_variants(0)->set_subject("Ophalen later ({{v_number}})");
      req.mutable_template_()->mutable_variants(0)->set_body(absl::StrCat("Edit ", ++edits_, "."));
      req.mutable_update_mask()->add_paths("variants");
      s = stub_->UpdateTemplate(Ctx("admin").get(), req, &out);
    } else {
      int64_t version = 0;
      EXPECT_TRUE(absl::SimpleAtoi(etag_, &version)) << etag_;
      log_->Append("deleting", version);
      v1::DeleteTemplateRequest req;
      req.set_name(kMacro);
      req.set_etag(etag_);
      google::protobuf::Empty none;
      s = stub_->DeleteTemplate(Ctx("admin").get(), req, &none);
      if (s.ok()) {
        log_->Append("deleted", version);
        etag_.clear();
        return true;
      }
    }
    if (s.ok()) {
      log_->Append("put", VersionOf(out));
      etag_ = out.etag();
      return true;
    }
    // A write that landed before a kill but was never answered: read again.
    if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS || s.error_code() == grpc::StatusCode::ABORTED ||
        s.error_code() == grpc::StatusCode::NOT_FOUND) {
      return Read();
    }
    return false;
  }

  std::unique_ptr<v1::AdminService::Stub> stub_;
  AckLog* log_;
  std::mt19937 rng_;
  std::string etag_;  // empty: not there
  int edits_ = 0;
};

class Workload {
 public:
  Workload(std::shared_ptr<grpc::Channel> channel, AckLog* log, int seed)
      : stub_(v1::TradeInService::NewStub(channel)), log_(log), rng_(seed) {}

  // Runs until `stop` or the server goes away.
  void Run(const std::atomic<bool>& stop) {
    while (!stop) {
      if (!Step()) return;
    }
  }

  int64_t acknowledged() const { return acked_; }

 private:
  // One mutation; false when the server is gone.
  bool Step() {
    v1::TradeIn out;
    grpc::Status s;
    const int dice = std::uniform_int_distribution<int>(0, 9)(rng_);
    if (cases_.empty() || dice < 3) {
      v1::CreateTradeInRequest req;
      auto* t = req.mutable_trade_in();
      const int n = std::uniform_int_distribution<int>(1000000, 9999999)(rng_);
      t->set_v_number(absl::StrCat("V", n));
      t->set_s_number(absl::StrCat("S", n));
      t->set_product_name("Galaxy S22");
      t->set_problem(v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
      t->mutable_customer()->set_display_name("Jan de Vries");
      t->mutable_customer()->set_email("jan@example.nl");
      req.set_request_id(absl::StrCat("crash-", n));
      s = stub_->CreateTradeIn(Ctx("ops").get(), req, &out);
      if (s.ok()) cases_.push_back(out.name());
    } else {
      const std::string& name = cases_[std::uniform_int_distribution<size_t>(0, cases_.size() - 1)(rng_)];
      if (dice < 6) {
        v1::ContactCustomerRequest req;
        req.set_name(name);
        s = stub_->ContactCustomer(Ctx("cs_agent").get(), req, &out);
      } else if (dice < 8) {
        v1::RecordUnlockCodeRequest req;
        req.set_name(name);
        req.set_unlock_code("4711");
        s = stub_->RecordUnlockCode(Ctx("cs_agent").get(), req, &out);
      } else {
        v1::AddTradeInCommentRequest req;
        req.set_name(name);
        req.set_text("checked the device");
        s = stub_->AddTradeInComment(Ctx("cs_agent").get(), req, &out);
      }
    }
    if (s.ok()) {
      log_->Append(out.name(), VersionOf(out));
      ++acked_;
      return true;
    }
    // Wrong state for the action: the workload goes on. Anything else means
    // the server is down (or being killed).
    return s.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
           s.error_code() == grpc::StatusCode::ALREADY_EXISTS;
  }

  std::unique_ptr<v1::TradeInService::Stub> stub_;
  AckLog* log_;
  std::mt19937 rng_;
  std::vector<std::string> cases_;
  int64_t acked_ = 0;
};

// The server binary: CASEWORKD from the environment (a copy, for long runs
// while building), else the one of this build.
std::string Caseworkd() {
  const char* env = std::getenv("CASEWORKD");
  return env != nullptr && *env != '\0' ? env : CASEWORKD_PATH;
}

int Kills() {
  int n = 20;
  if (const char* env = std::getenv("CASEWORK_CRASH_KILLS")) (void)absl::SimpleAtoi(env, &n);
  return n;
}

TEST(CrashTest, AcknowledgedChangesSurviveKillNine) {
  testing::TempDir dir;
  const std::string data = dir.path() + "/data";
  const std::string log_path = dir.path() + "/acks.log";
  const std::string template_log_path = dir.path() + "/template-acks.log";
  const int port = testing::FreePort();
  AckLog acks(log_path);
  AckLog template_acks(template_log_path);
  // One principal drives all the load: no per-principal rate limit.
  const std::string config = testing::WriteFile(
      dir.path() + "/caseworkd.json",
      R"({"plaintext": true, "auth": {"headerIdentity": true}, "metricsAddress": "off",
          "rateLimit": {"requestsPerSecond": -1}})");
  std::mt19937 rng(20261122);
  const std::vector<std::string> points = {"", "", "commit.before_write", "commit.after_write",
                                           "outbox.after_deliver"};
  auto start = [&](const std::string& point) {
    std::map<std::string, std::string> env;
    if (!point.empty()) env["CASEWORK_CRASH_POINT"] = point;
    return std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{Caseworkd(), "--config=" + config, "--data-dir=" + data,
                                 absl::StrCat("--listen=127.0.0.1:", port)},
        env, dir.path() + "/caseworkd.log");
  };

  int64_t acknowledged = 0;
  int crash_point_deaths = 0;
  const int kills = Kills();
  for (int round = 0; round < kills; ++round) {
    const std::string point = points[round % points.size()];
    auto server = start(point);
    auto channel = testing::ConnectToChild(port, absl::Seconds(30), [&] { return server->running(); });
    if (channel == nullptr && !point.empty() && !server->running()) {
      // The armed point was hit while starting (e.g. delivering an outbox
      // message left by the round before): that is a kill too.
      ++crash_point_deaths;
      continue;
    }
    ASSERT_NE(channel, nullptr) << "caseworkd did not come back in round " << round;
    std::atomic<bool> stop{false};
    std::vector<std::unique_ptr<Workload>> clients;
    std::vector<std::thread> threads;
    for (int c = 0; c < 4; ++c) {
      clients.push_back(std::make_unique<Workload>(channel, &acks, round * 16 + c));
      threads.emplace_back([&, w = clients.back().get()] { w->Run(stop); });
    }
    TemplateWorkload macro(channel, &template_acks, round);
    threads.emplace_back([&] { macro.Run(stop); });
    // Killed from outside at a random moment, unless a crash point gets
    // there first.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(100, 600)(rng)));
    if (server->running()) {
      server->Signal(SIGKILL);
    } else {
      ++crash_point_deaths;
    }
    const int status = server->Wait(absl::Seconds(10));
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "round " << round << ": " << status;
    stop = true;
    for (auto& t : threads) t.join();
    for (const auto& w : clients) acknowledged += w->acknowledged();
  }

  // Last start: no crash point; let the outbox drain.
  auto server = start("");
  auto channel = testing::ConnectToChild(port);
  ASSERT_NE(channel, nullptr);
  auto stub = v1::TradeInService::NewStub(channel);

  std::map<std::string, int64_t> acked;  // case -> highest acknowledged version
  {
    std::ifstream in(log_path);
    for (std::string line; std::getline(in, line);) {
      std::vector<std::string> f = absl::StrSplit(line, ' ');
      ASSERT_EQ(f.size(), 2u) << line;
      int64_t v = 0;
      ASSERT_TRUE(absl::SimpleAtoi(f[1], &v));
      acked[f[0]] = std::max(acked[f[0]], v);
    }
  }
  ASSERT_GT(acked.size(), 0u);
  std::set<std::string> queued;  // dedupe keys of queued notifications
  for (const auto& [name, version] : acked) {
    v1::GetTradeInRequest get;
    get.set_name(name);
    v1::TradeIn t;
    grpc::Status s = stub->GetTradeIn(TestServer::As("ops").get(), get, &t);
    ASSERT_TRUE(s.ok()) << name << ": " << s.error_message();
    EXPECT_GE(VersionOf(t), version) << name << " lost an acknowledged change";
    v1::ListTradeInEventsRequest req;
    req.set_parent(name);
    req.set_page_size(500);
    v1::ListTradeInEventsResponse events;
    s = stub->ListTradeInEvents(TestServer::As("ops").get(), req, &events);
    ASSERT_TRUE(s.ok()) << name << ": " << s.error_message();
    for (int i = 0; i < events.events_size(); ++i) {
      const auto& e = events.events(i);
      EXPECT_EQ(e.sequence(), i + 1) << name << " timeline has a gap or repeat";
      if (e.type() == v1::EVENT_TYPE_NOTIFICATION_QUEUED) {
        queued.insert(absl::StrCat(name.substr(name.find('/') + 1), "-", e.sequence()));
      }
    }
  }
  // The board's counts, stored counters that each write moves by merges,
  // agree with the cases each column's list finds, and every acknowledged
  // case is on the board.
  v1::TradeInBoard board;
  ASSERT_TRUE(stub->GetTradeInBoard(TestServer::As("ops").get(), v1::GetTradeInBoardRequest(), &board).ok());
  int64_t on_board = 0;
  for (const auto& column : board.columns()) {
    v1::TradeInState state;
    ASSERT_TRUE(v1::TradeInState_Parse("TRADE_IN_STATE_" + column.state(), &state)) << column.state();
    int64_t listed = 0;
    v1::ListTradeInsRequest list;
    list.set_state(state);
    list.set_page_size(500);
    do {
      v1::ListTradeInsResponse page;
      grpc::Status s = stub->ListTradeIns(TestServer::As("ops").get(), list, &page);
      ASSERT_TRUE(s.ok()) << s.error_message();
      listed += page.trade_ins_size();
      list.set_page_token(page.next_page_token());
    } while (!list.page_token().empty());
    EXPECT_EQ(column.count(), listed) << "the board's " << column.state() << " column";
    on_board += column.count();
  }
  EXPECT_GE(on_board, static_cast<int64_t>(acked.size()));

  // Every queued notification of the checked cases reaches the spool once.
  const std::string spool = data + "/spool";
  std::set<std::string> delivered;
  for (int i = 0; i < 600; ++i) {
    delivered.clear();
    if (std::filesystem::exists(spool)) {
      for (const auto& f : std::filesystem::directory_iterator(spool)) {
        if (f.path().extension() == ".json") delivered.insert(f.path().stem().string());
      }
    }
    if (std::includes(delivered.begin(), delivered.end(), queued.begin(), queued.end())) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (const auto& key : queued) EXPECT_TRUE(delivered.count(key)) << "notification " << key << " was lost";

  // The template: each version acknowledged for it is above every one
  // before (an edit climbs; a template made again starts above the one
  // deleted), and the stored one is what the log allows.
  int64_t highest = 0, last_put = 0, deleted = 0, template_writes = 0;
  bool deleting = false;  // a deletion was asked for after the last put
  {
    std::ifstream in(template_log_path);
    for (std::string line; std::getline(in, line);) {
      std::vector<std::string> f = absl::StrSplit(line, ' ');
      ASSERT_EQ(f.size(), 2u) << line;
      int64_t v = 0;
      ASSERT_TRUE(absl::SimpleAtoi(f[1], &v)) << line;
      if (f[0] == "put") {
        EXPECT_GT(v, highest) << "the template took version " << v << " again";
        last_put = v;
        deleting = false;
        deleted = 0;
        ++template_writes;
      } else if (f[0] == "deleting") {
        EXPECT_GE(v, last_put) << line;
        deleting = true;
      } else {
        ASSERT_EQ(f[0], "deleted") << line;
        deleted = v;
        ++template_writes;
      }
      highest = std::max(highest, v);
    }
  }
  ASSERT_GT(template_writes, 0);
  auto admin = v1::AdminService::NewStub(channel);
  v1::GetTemplateRequest get_macro;
  get_macro.set_name(kMacro);
  v1::Template macro;
  const grpc::Status got = admin->GetTemplate(TestServer::As("admin").get(), get_macro, &macro);
  ASSERT_TRUE(got.ok() || got.error_code() == grpc::StatusCode::NOT_FOUND) << got.error_message();
  if (deleted > 0) {
    // Gone, or made again by a create the kill left unanswered.
    if (got.ok()) {
      EXPECT_GT(VersionOf(macro), deleted) << "made again at a version it had before";
    }
  } else if (got.ok()) {
    EXPECT_GE(VersionOf(macro), last_put) << "the template lost an acknowledged edit";
  } else {
    EXPECT_TRUE(deleting) << "the template was lost at version " << last_put;
  }
  std::cout << "kills: " << kills << " (" << crash_point_deaths << " at crash points), acknowledged changes: "
            << acknowledged << ", cases checked: " << acked.size() << ", notifications checked: "
            << queued.size() << ", template writes: " << template_writes << std::endl;
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(absl::Seconds(30)), 0);
}

}  // namespace
}  // namespace casework
