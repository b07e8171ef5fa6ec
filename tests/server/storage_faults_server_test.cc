// Storage faults through a real server: the data folder on a small tmpfs
// that fills up (writes refused clearly, reads served, writes back once
// space is freed, nothing lost), and damaged records and files (detected,
// reported with the case id, the server keeps serving everything else).
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "casework/v1/admin.grpc.pb.h"
#include "casework/v1/trade_in.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "storage/rocksdb_repository.h"
#include "tests/testing/process.h"
#include "tests/testing/test_server.h"

namespace casework {
namespace {

using testing::TestServer;
using v1::TradeIn;

const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone());

class StorageFaultsTest : public ::testing::Test {
 protected:
  void Connect() { trade_ins_ = v1::TradeInService::NewStub(server_->channel()); }

  grpc::Status Create(const std::string& v, TradeIn* out) {
    v1::CreateTradeInRequest req;
    auto* t = req.mutable_trade_in();
    t->set_v_number(v);
    t->set_s_number("S" + v.substr(1));
    t->set_product_name("iPhone 16 Pro");
    t->mutable_customer()->set_display_name("Klant");
    t->mutable_customer()->set_email("klant@example.nl");
    auto ctx = TestServer::As("ops");
    return trade_ins_->CreateTradeIn(ctx.get(), req, out);
  }

  grpc::Status Comment(const std::string& name, const std::string& text) {
    v1::AddTradeInCommentRequest req;
    req.set_name(name);
    req.set_text(text);
    TradeIn out;
    auto ctx = TestServer::As("cs_agent");
    return trade_ins_->AddTradeInComment(ctx.get(), req, &out);
  }

  grpc::Status Get(const std::string& name, TradeIn* out) {
    v1::GetTradeInRequest req;
    req.set_name(name);
    auto ctx = TestServer::As("ops");
    return trade_ins_->GetTradeIn(ctx.get(), req, out);
  }

  // Imports one account, ACC-<n>.
  grpc::Status Import(int n, v1::ImportAccountsResponse* out) {
    v1::ImportAccountsRequest req;
    req.set_json_lines(absl::StrCat(R"({"accountNumber": "ACC-)", n, R"(", "fullName": "Kim Jansen",)",
                                    R"( "billingAddress": "Dorpsstraat 1", "standing": "ACCOUNT_STANDING_GOOD"})"));
    auto ctx = TestServer::As("admin");
    return v1::AdminService::NewStub(server_->channel())->ImportAccounts(ctx.get(), req, out);
  }

  bool Healthy() {
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    auto ctx = TestServer::As("cs_agent");
    return grpc::health::v1::Health::NewStub(server_->channel())->Check(ctx.get(), req, &resp).ok();
  }

  std::unique_ptr<TestServer> server_ = std::make_unique<TestServer>(kStart);
  std::unique_ptr<v1::TradeInService::Stub> trade_ins_;
};

// Fills the disk holding `path` with a file at `path`, then frees
// `leave` bytes of it.
void FillDisk(const std::string& path, std::uintmax_t leave) {
  {
    std::ofstream out(path, std::ios::binary);
    for (size_t block = 1 << 20; block >= 4096; block /= 4) {
      const std::string bytes(block, 'x');
      while (out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())) && out.flush()) {
      }
      out.clear();
    }
  }
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - leave);
}

bool Refused(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
         absl::StrContains(s.error_message(), "nearly full");
}

TEST_F(StorageFaultsTest, DiskFullRefusesWritesServesReadsAndRecovers) {
  const std::string data = server_->data_dir();
  std::filesystem::create_directories(data);
  if (::mount("tmpfs", data.c_str(), "tmpfs", 0, "size=64m") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (" << std::strerror(errno)
                 << "); the disk-full test needs root";
  }
  auto configure = [](internal::ServerConfig* c) { c->set_min_free_disk_bytes(8 << 20); };
  server_->Start(configure);
  Connect();
  TradeIn t;
  ASSERT_TRUE(Create("V4000001", &t).ok());
  ASSERT_TRUE(Comment(t.name(), "before the disk filled up").ok());
  TradeIn read;
  ASSERT_TRUE(Get(t.name(), &read).ok());
  const std::string etag = read.etag();

  // 4 MiB left: below the reserve. Every write is refused, clearly, and
  // changes nothing; reads go on.
  FillDisk(data + "/filler", 4 << 20);
  EXPECT_TRUE(Refused(Comment(t.name(), "while full"))) << Comment(t.name(), "x").error_message();
  TradeIn other;
  EXPECT_TRUE(Refused(Create("V4000002", &other)));
  // An import is refused as a whole, not row by row.
  v1::ImportAccountsResponse imported;
  EXPECT_TRUE(Refused(Import(5001, &imported)));
  ASSERT_TRUE(Get(t.name(), &read).ok());
  EXPECT_EQ(read.etag(), etag);
  EXPECT_TRUE(Healthy());

  // Space is freed: writes work again without a restart.
  std::filesystem::remove(data + "/filler");
  grpc::Status resumed = Comment(t.name(), "after the disk was freed");
  EXPECT_TRUE(resumed.ok()) << resumed.error_message();
  ASSERT_TRUE(Create("V4000003", &other).ok());
  ASSERT_TRUE(Import(5002, &imported).ok());
  EXPECT_EQ(imported.imported(), 1);

  // After a restart everything acknowledged is there, and nothing else.
  server_->Shutdown();
  server_->Start(configure);
  Connect();
  ASSERT_TRUE(Get(t.name(), &read).ok());
  EXPECT_EQ(std::stoll(read.etag()), std::stoll(etag) + 1);
  EXPECT_TRUE(Get(other.name(), &read).ok());
  server_->Shutdown();
  ::umount2(data.c_str(), MNT_DETACH);
}

TEST_F(StorageFaultsTest, DamagedRecordIsReportedWithItsCaseId) {
  server_->Start();
  Connect();
  TradeIn damaged, intact;
  ASSERT_TRUE(Create("V5000001", &damaged).ok());
  ASSERT_TRUE(Create("V5000002", &intact).ok());
  const std::string id = damaged.name().substr(damaged.name().find('/') + 1);
  server_->Shutdown();

  // A record whose bytes no longer parse (what a bad write or a bit flip
  // that passed the block checksum would leave).
  {
    auto repo = storage::OpenRocksDbRepository({server_->data_dir() + "/db"});
    ASSERT_TRUE(repo.ok()) << repo.status();
    auto stored = (*repo)->GetCase(id);
    ASSERT_TRUE(stored.ok());
    storage::CaseMutation m;
    m.case_id = id;
    m.expected_version = stored->version;
    m.record = std::string("\xff\xff\xff\xff garbage", 13);
    ASSERT_TRUE((*repo)->Commit(m).ok());
  }

  server_->Start();
  Connect();
  TradeIn read;
  grpc::Status s = Get(damaged.name(), &read);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_TRUE(absl::StrContains(s.error_message(), id)) << s.error_message();
  EXPECT_EQ(Comment(damaged.name(), "x").error_code(), grpc::StatusCode::DATA_LOSS);
  // Everything else is served.
  EXPECT_TRUE(Get(intact.name(), &read).ok());
  EXPECT_TRUE(Comment(intact.name(), "still fine").ok());
  EXPECT_TRUE(Healthy());
}

TEST_F(StorageFaultsTest, DamagedFileIsCaughtByItsChecksum) {
  server_->Start();
  Connect();
  TradeIn damaged, created;
  ASSERT_TRUE(Create("V6000001", &damaged).ok());
  const std::string id = damaged.name().substr(damaged.name().find('/') + 1);
  server_->Shutdown();
  {
    // Move everything into table files (checksummed blocks).
    auto repo = storage::OpenRocksDbRepository({server_->data_dir() + "/db"});
    ASSERT_TRUE(repo.ok()) << repo.status();
    ASSERT_TRUE((*repo)->Compact().ok());
  }
  // Flip a byte inside every block that holds the V number after the
  // case's id: its record, and the first event of its timeline.
  bool flipped = false;
  for (const auto& entry : std::filesystem::directory_iterator(server_->data_dir() + "/db")) {
    if (entry.path().extension() != ".sst") continue;
    const std::string bytes = testing::ReadFile(entry.path().string());
    const size_t at = bytes.find("V6000001");
    const size_t key = bytes.find(id);
    if (at == std::string::npos || key == std::string::npos || key > at) continue;
    std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(at));
    f.put('W');
    flipped = true;
  }
  ASSERT_TRUE(flipped) << "no table file holds the case";

  server_->Start();
  Connect();
  TradeIn read;
  grpc::Status s = Get(damaged.name(), &read);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), id)) << s.error_message();
  EXPECT_TRUE(Healthy());
  // New cases go to new files and are served.
  ASSERT_TRUE(Create("V6000002", &created).ok());
  EXPECT_TRUE(Get(created.name(), &read).ok());
}

}  // namespace
}  // namespace casework
