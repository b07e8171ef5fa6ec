// Backups through a real server: one taken while cases are being written
// holds every change acknowledged before it was asked for, caseworkd
// --restore-backup puts it back (refused while the store is open, the
// replaced store kept), only the newest backups_kept stay, the newest
// one's time is exported, and backups spoiled by a shared file that
// changed on disk give way to a backup that copies it again.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "casework/v1/admin.grpc.pb.h"
#include "casework/v1/trade_in.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/test_server.h"

namespace casework {
namespace {

using testing::TestServer;

const absl::Time kStart = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone());

class BackupServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  void Start() {
    server_.Start([](internal::ServerConfig* c) { c->set_backups_kept(2); });
    admin_ = v1::AdminService::NewStub(server_.channel());
    trade_ins_ = v1::TradeInService::NewStub(server_.channel());
  }

  grpc::Status Create(int n, v1::TradeIn* out) {
    v1::CreateTradeInRequest req;
    auto* t = req.mutable_trade_in();
    t->set_v_number(absl::StrCat("V", 5000000 + n));
    t->set_s_number(absl::StrCat("S", 5000000 + n));
    t->set_problem(v1::TRADE_IN_PROBLEM_DEVICE_LOCKED);
    t->set_product_name("Pixel 8");
    t->mutable_customer()->set_display_name("Klant");
    t->mutable_customer()->set_email("klant@example.nl");
    return trade_ins_->CreateTradeIn(TestServer::As("ops").get(), req, out);
  }

  grpc::StatusCode Find(const std::string& name) {
    v1::GetTradeInRequest req;
    req.set_name(name);
    v1::TradeIn out;
    return trade_ins_->GetTradeIn(TestServer::As("ops").get(), req, &out).error_code();
  }

  grpc::Status Backup(const std::string& role, v1::Backup* out, const std::string& request_id = "") {
    v1::CreateBackupRequest req;
    req.set_request_id(request_id);
    return admin_->CreateBackup(TestServer::As(role).get(), req, out);
  }

  std::vector<std::string> Listed() {
    v1::ListBackupsResponse resp;
    EXPECT_TRUE(admin_->ListBackups(TestServer::As("admin").get(), v1::ListBackupsRequest(), &resp).ok());
    std::vector<std::string> names;
    for (const auto& b : resp.backups()) names.push_back(b.name());
    return names;
  }

  testing::CommandResult Restore(const std::string& which) {
    return testing::RunCommand(absl::StrCat(CASEWORKD_PATH, " --data-dir=", server_.data_dir(),
                                            " --restore-backup=", which, " 2>&1"));
  }

  TestServer server_{kStart};
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<v1::TradeInService::Stub> trade_ins_;
};

TEST_F(BackupServerTest, ABackupUnderLoadHoldsWhatWasAcknowledgedAndIsRestored) {
  // A writer keeps creating cases while the backup is taken.
  std::mutex mu;
  std::condition_variable grew;
  std::vector<std::string> acknowledged;
  bool writing = true;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int n = 0; n < 5000 && !stop; ++n) {
      v1::TradeIn t;
      const grpc::Status created = Create(n, &t);
      std::lock_guard<std::mutex> lock(mu);
      if (!created.ok()) {
        ADD_FAILURE() << created.error_message();
        break;
      }
      acknowledged.push_back(t.name());
      grew.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu);
    writing = false;
    grew.notify_all();
  });
  // The cases acknowledged so far, once there are `n` or the writer stopped.
  auto acknowledged_once = [&](size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    grew.wait(lock, [&] { return acknowledged.size() >= n || !writing; });
    return acknowledged.size();
  };
  const size_t before = acknowledged_once(50);
  v1::Backup backup;
  const grpc::Status backed_up = Backup("admin", &backup);
  const size_t after = acknowledged_once(0);
  // Some more after the answer, which the backup cannot hold.
  acknowledged_once(after + 20);
  stop = true;
  writer.join();
  ASSERT_TRUE(backed_up.ok()) << backed_up.error_message();
  ASSERT_GT(acknowledged.size(), after);
  EXPECT_EQ(backup.name(), "backups/1");
  EXPECT_GT(backup.size_bytes(), 0);
  EXPECT_GT(backup.file_count(), 0);
  EXPECT_EQ(Listed(), std::vector<std::string>{"backups/1"});

  // Admins only.
  v1::Backup refused;
  EXPECT_EQ(Backup("ops", &refused).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // Not while the server has the store open.
  testing::CommandResult busy = Restore("latest");
  EXPECT_EQ(busy.exit_code, 6) << busy.out;
  EXPECT_TRUE(absl::StrContains(busy.out, "is in use; stop caseworkd first")) << busy.out;
  EXPECT_EQ(Find(acknowledged.back()), grpc::StatusCode::OK);

  server_.Shutdown();
  // Run as root for a server with a user of its own, the restored store
  // takes the owner of the data folder.
  const bool root = ::geteuid() == 0;
  if (root) {
    ASSERT_EQ(::chown(server_.data_dir().c_str(), 4242, 4242), 0);
  }
  testing::CommandResult bad = Restore("yesterday");
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_EQ(Restore("7").exit_code, 3);  // no such backup
  testing::CommandResult restored = Restore("backups/1");
  ASSERT_EQ(restored.exit_code, 0) << restored.out;
  EXPECT_TRUE(absl::StrContains(restored.out, "restored backups/1")) << restored.out;
  int replaced = 0;
  for (const auto& entry : std::filesystem::directory_iterator(server_.data_dir())) {
    replaced += absl::StartsWith(entry.path().filename().string(), "db.replaced-");
  }
  EXPECT_EQ(replaced, 1);
  if (root) {
    const std::string db = server_.data_dir() + "/db";
    struct stat st;
    ASSERT_EQ(::stat(db.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 4242u);
    for (const auto& entry : std::filesystem::recursive_directory_iterator(db)) {
      ASSERT_EQ(::lstat(entry.path().c_str(), &st), 0);
      EXPECT_EQ(st.st_uid, 4242u) << entry.path();
      EXPECT_EQ(st.st_gid, 4242u) << entry.path();
    }
  }

  Start();
  for (size_t i = 0; i < acknowledged.size(); ++i) {
    const grpc::StatusCode found = Find(acknowledged[i]);
    if (i < before) {
      EXPECT_EQ(found, grpc::StatusCode::OK) << "acknowledged before the backup: " << acknowledged[i];
    } else if (i >= after) {
      EXPECT_EQ(found, grpc::StatusCode::NOT_FOUND) << "acknowledged after the backup: " << acknowledged[i];
    }
  }
  // The board counts what the restored store holds.
  int64_t on_board = server_.TradeInBoard()["PROBLEM_ORDER"];
  EXPECT_GE(on_board, static_cast<int64_t>(before));
  EXPECT_LE(on_board, static_cast<int64_t>(after));
}

TEST_F(BackupServerTest, OnlyTheNewestBackupsAreKept) {
  EXPECT_TRUE(Listed().empty());
  EXPECT_EQ(server_.Metric("casework_backup_last_success_timestamp_seconds"), 0);
  for (int n = 0; n < 3; ++n) {
    v1::TradeIn t;
    ASSERT_TRUE(Create(n, &t).ok());
    v1::Backup b;
    ASSERT_TRUE(Backup("admin", &b).ok());
    EXPECT_EQ(b.name(), absl::StrCat("backups/", n + 1));
  }
  EXPECT_EQ(Listed(), (std::vector<std::string>{"backups/2", "backups/3"}));
  // The newest backup's time is exported, also after a restart.
  const std::string metric = "casework_backup_last_success_timestamp_seconds";
  const double taken = server_.Metric(metric);
  EXPECT_GT(taken, absl::ToUnixSeconds(absl::Now()) - 600);
  server_.Shutdown();
  Start();
  EXPECT_EQ(server_.Metric(metric), taken);
  // A page at a time.
  v1::ListBackupsRequest req;
  req.set_page_size(1);
  v1::ListBackupsResponse first, second;
  ASSERT_TRUE(admin_->ListBackups(TestServer::As("admin").get(), req, &first).ok());
  ASSERT_EQ(first.backups_size(), 1);
  EXPECT_EQ(first.backups(0).name(), "backups/2");
  ASSERT_FALSE(first.next_page_token().empty());
  req.set_page_token(first.next_page_token());
  ASSERT_TRUE(admin_->ListBackups(TestServer::As("admin").get(), req, &second).ok());
  ASSERT_EQ(second.backups_size(), 1);
  EXPECT_EQ(second.backups(0).name(), "backups/3");
  EXPECT_TRUE(second.next_page_token().empty());
}

TEST_F(BackupServerTest, ARetriedBackupAnswersWithTheBackupItsFirstAttemptTook) {
  auto backup = [&](const std::string& request_id) {
    v1::Backup b;
    grpc::Status s = Backup("admin", &b, request_id);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return b;
  };
  const v1::Backup first = backup("nightly-1");
  EXPECT_EQ(first.name(), "backups/1");
  const v1::Backup again = backup("nightly-1");
  EXPECT_EQ(again.name(), "backups/1");
  EXPECT_EQ(again.create_time().seconds(), first.create_time().seconds());
  EXPECT_EQ(again.size_bytes(), first.size_bytes());
  EXPECT_EQ(Listed(), std::vector<std::string>{"backups/1"});

  // Attempts at once: one backup, every attempt answered with it.
  std::vector<std::string> names(3);
  std::vector<std::thread> threads;
  for (auto& name : names) {
    threads.emplace_back([&] { name = backup("nightly-2").name(); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(names, std::vector<std::string>(3, "backups/2"));
  EXPECT_EQ(Listed(), (std::vector<std::string>{"backups/1", "backups/2"}));

  // Without a request_id, or with another, a backup is taken each time;
  // the request_id of one no longer kept takes a new one.
  EXPECT_EQ(backup("").name(), "backups/3");
  EXPECT_EQ(backup("").name(), "backups/4");
  EXPECT_EQ(Listed(), (std::vector<std::string>{"backups/3", "backups/4"}));
  EXPECT_EQ(backup("nightly-1").name(), "backups/5");

  // It is remembered with the backup, across a restart too.
  server_.Shutdown();
  Start();
  EXPECT_EQ(backup("nightly-1").name(), "backups/5");

  v1::Backup refused;
  grpc::Status s = Backup("admin", &refused, std::string(129, 'r'));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(testing::NamesField(s, "request_id"));
  s = Backup("admin", &refused, "nightly\x1b[2J");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(testing::NamesField(s, "request_id"));
  EXPECT_EQ(Listed(), (std::vector<std::string>{"backups/4", "backups/5"}));
}

TEST_F(BackupServerTest, ADamagedBackupIsListedAsSuchAndNeverRestored) {
  for (int n = 0; n < 2; ++n) {
    v1::TradeIn t;
    ASSERT_TRUE(Create(n, &t).ok());
    v1::Backup b;
    ASSERT_TRUE(Backup("admin", &b).ok());
  }
  // A file of the newest backup goes missing (a disk, a careless copy).
  const std::string private_files = server_.data_dir() + "/backups/private/2";
  int removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(private_files)) {
    if (absl::StartsWith(entry.path().filename().string(), "MANIFEST")) {
      removed += std::filesystem::remove(entry.path()) ? 1 : 0;
    }
  }
  ASSERT_EQ(removed, 1);
  const std::string damaged_metric = "casework_backups_damaged";
  EXPECT_EQ(server_.Metric(damaged_metric), 0);
  v1::ListBackupsResponse listed;
  ASSERT_TRUE(admin_->ListBackups(TestServer::As("admin").get(), v1::ListBackupsRequest(), &listed).ok());
  ASSERT_EQ(listed.backups_size(), 2);
  EXPECT_EQ(listed.backups(0).name(), "backups/1");
  EXPECT_FALSE(listed.backups(0).damaged());
  EXPECT_GT(listed.backups(0).size_bytes(), 0);
  EXPECT_EQ(listed.backups(1).name(), "backups/2");
  EXPECT_TRUE(listed.backups(1).damaged());
  EXPECT_EQ(server_.Metric(damaged_metric), 1);  // listing them looked

  // The age watched is the newest good backup's, also after a restart.
  const std::string metric = "casework_backup_last_success_timestamp_seconds";
  const double taken = server_.Metric(metric);
  server_.Shutdown();
  Start();
  EXPECT_GT(server_.Metric(metric), 0);
  EXPECT_LE(server_.Metric(metric), taken);
  EXPECT_EQ(server_.Metric(damaged_metric), 1);

  // "latest" names it rather than restoring an older one in its place.
  server_.Shutdown();
  testing::CommandResult latest = Restore("latest");
  EXPECT_EQ(latest.exit_code, 1) << latest.out;
  EXPECT_TRUE(absl::StrContains(latest.out, "backup 2 is damaged")) << latest.out;
  testing::CommandResult older = Restore("1");
  EXPECT_EQ(older.exit_code, 0) << older.out;

  // The next good backup deletes it: rotation keeps two good ones, and the
  // alert's figure goes back to 0.
  Start();
  v1::Backup next;
  ASSERT_TRUE(Backup("admin", &next).ok());
  EXPECT_EQ(next.name(), "backups/3");
  EXPECT_EQ(Listed(), (std::vector<std::string>{"backups/1", "backups/3"}));
  EXPECT_EQ(server_.Metric(damaged_metric), 0);
  EXPECT_FALSE(std::filesystem::exists(private_files));
}

TEST_F(BackupServerTest, ABackupWhoseSharedTableFileRottedIsTakenAgainWithoutTheSpoiledOnes) {
  v1::TradeIn first;
  ASSERT_TRUE(Create(0, &first).ok());
  // An erasure compacts the store, so the case is in table files that the
  // backups below share.
  v1::ImportAccountsRequest import;
  import.set_json_lines(
      R"({"accountNumber": "ACC-9", "fullName": "Maria Lopez", "billingAddress": "12 Elm Street",)"
      R"( "phoneNumber": "+12125550109", "email": "maria@example.com", "standing": "GOOD"})");
  v1::ImportAccountsResponse imported;
  ASSERT_TRUE(admin_->ImportAccounts(TestServer::As("admin").get(), import, &imported).ok());
  ASSERT_EQ(imported.imported(), 1);
  v1::EraseCustomerDataRequest erase;
  erase.set_email("maria@example.com");
  erase.set_reason("PRIV-1");
  v1::EraseCustomerDataResponse erased;
  ASSERT_TRUE(admin_->EraseCustomerData(TestServer::As("admin").get(), erase, &erased).ok());
  ASSERT_EQ(erased.directory_records_erased(), 1);
  std::vector<std::string> names = {first.name()};
  for (int n = 1; n <= 2; ++n) {
    v1::Backup b;
    ASSERT_TRUE(Backup("admin", &b).ok());
    v1::TradeIn t;
    ASSERT_TRUE(Create(n, &t).ok());
    names.push_back(t.name());
  }
  ASSERT_EQ(Listed(), (std::vector<std::string>{"backups/1", "backups/2"}));
  // A shared table file changes on disk, its size kept (a failing disk).
  ASSERT_GT(testing::SpoilFiles(server_.data_dir() + "/backups/shared_checksum", ".sst", 64), 0);

  // The next backup reads it back, finds the file spoiled, deletes the
  // backups holding it and copies the file again.
  v1::Backup next;
  ASSERT_TRUE(Backup("admin", &next).ok());
  EXPECT_EQ(Listed(), std::vector<std::string>{next.name()});
  EXPECT_FALSE(next.damaged());
  EXPECT_EQ(server_.Metric("casework_backups_damaged"), 0);
  server_.Shutdown();
  testing::CommandResult latest = Restore("latest");
  ASSERT_EQ(latest.exit_code, 0) << latest.out;
  Start();
  for (const auto& name : names) EXPECT_EQ(Find(name), grpc::StatusCode::OK) << name;
}

}  // namespace
}  // namespace casework
