#include "tests/testing/test_server.h"

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "casework/v1/trade_in.grpc.pb.h"
#include "google/api/field_behavior.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "prometheus/text_serializer.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "server/config.h"

namespace casework::testing {

TestServer::TestServer(absl::Time start) : data_dir_(dir_.path() + "/data"), clock_(start) {}

TestServer::~TestServer() { Shutdown(); }

void TestServer::Start(std::function<void(internal::ServerConfig*)> configure) {
  if (configure) configure_ = std::move(configure);
  internal::ServerConfig config;
  config.set_listen_address("127.0.0.1:0");
  config.set_metrics_address("off");
  config.set_data_dir(data_dir_);
  config.mutable_notifier()->set_log(false);
  config.set_plaintext(true);
  config.mutable_auth()->set_header_identity(true);
  if (configure_) configure_(&config);
  auto finalized = Finalize(config);
  ASSERT_TRUE(finalized.ok()) << finalized.status();
  ServerOptions options;
  options.config = *finalized;
  options.clock = &clock_;
  options.background = false;
  auto server = Server::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                 grpc::InsecureChannelCredentials());
}

void TestServer::Restart(std::function<void(internal::ServerConfig*)> configure) {
  Shutdown();
  Start(std::move(configure));
}

void TestServer::Shutdown() {
  if (server_) server_->Shutdown();
  server_.reset();
}

void TestServer::Pump() {
  server_->timers().RunOnce();
  server_->dispatcher().RunOnce();
}

std::unique_ptr<grpc::ClientContext> TestServer::As(const std::string& role) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->AddMetadata("x-casework-principal", "test-" + role);
  ctx->AddMetadata("x-casework-role", role);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return ctx;
}

std::vector<internal::OutboxMessage> TestServer::Spool() const {
  std::vector<internal::OutboxMessage> out;
  const std::string folder = data_dir_ + "/spool";
  if (!std::filesystem::exists(folder)) return out;
  for (const auto& f : std::filesystem::directory_iterator(folder)) {
    if (f.path().extension() != ".json") continue;
    std::ifstream in(f.path());
    std::stringstream text;
    text << in.rdbuf();
    internal::OutboxMessage m;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text.str(), &m).ok()) << f.path();
    out.push_back(m);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.create_time().seconds(), a.create_time().nanos()) <
           std::make_pair(b.create_time().seconds(), b.create_time().nanos());
  });
  return out;
}

std::vector<internal::OutboxMessage> TestServer::SpoolFor(const std::string& template_id) const {
  std::vector<internal::OutboxMessage> out;
  for (auto& m : Spool()) {
    if (m.template_id() == template_id) out.push_back(m);
  }
  return out;
}

double TestServer::Metric(const std::string& series) {
  const std::string text =
      prometheus::TextSerializer().Serialize(server_->metrics().registry()->Collect());
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return 0;
}

std::map<std::string, int64_t> TestServer::TradeInBoard() {
  auto stub = v1::TradeInService::NewStub(channel_);
  v1::TradeInBoard board;
  const grpc::Status s = stub->GetTradeInBoard(As("ops").get(), v1::GetTradeInBoardRequest(), &board);
  EXPECT_TRUE(s.ok()) << s.error_message();
  std::map<std::string, int64_t> counts;
  for (const auto& column : board.columns()) counts[column.state()] = column.count();
  return counts;
}

std::shared_ptr<grpc::Channel> ConnectToChild(int port, absl::Duration timeout,
                                              std::function<bool()> alive) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                           grpc::InsecureChannelCredentials(), args);
  auto health = grpc::health::v1::Health::NewStub(channel);
  const absl::Time until = absl::Now() + timeout;
  while (absl::Now() < until && (!alive || alive())) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    ctx.set_wait_for_ready(true);
    grpc::health::v1::HealthCheckResponse resp;
    if (health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp).ok() &&
        resp.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      return channel;
    }
  }
  return nullptr;
}

namespace {
google::rpc::Status DetailsOf(const grpc::Status& s) {
  google::rpc::Status details;
  details.ParseFromString(s.error_details());
  return details;
}
}  // namespace

grpc::Status CallRaw(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                     const std::string& request, grpc::ClientContext* ctx) {
  grpc::GenericStub stub(channel);
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  std::optional<grpc::Status> done;
  stub.UnaryCall(ctx, method, grpc::StubOptions(), &request_buffer, &response,
                 [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mu);
                   done = std::move(s);
                   cv.notify_one();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done.has_value(); });
  return *done;
}

std::vector<std::string> ViolatedFields(const grpc::Status& status) {
  std::vector<std::string> out;
  const google::rpc::Status details = DetailsOf(status);
  for (const auto& any : details.details()) {
    google::rpc::BadRequest bad;
    if (!any.UnpackTo(&bad)) continue;
    for (const auto& v : bad.field_violations()) out.push_back(v.field());
  }
  return out;
}

bool NamesField(const grpc::Status& status, const std::string& field) {
  const auto fields = ViolatedFields(status);
  return std::find(fields.begin(), fields.end(), field) != fields.end();
}

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

bool IsOutputOnly(const FieldDescriptor& f) {
  const auto& behaviors = f.options().GetRepeatedExtension(google::api::field_behavior);
  return std::find(behaviors.begin(), behaviors.end(), google::api::OUTPUT_ONLY) != behaviors.end();
}

// Sets `f` (adds an element when repeated) to an odd value of its type:
// 77, "set-by-client", true, the enum's last value, a message filled the
// same way a few levels down.
void SetOdd(Message* m, const FieldDescriptor& f, int depth) {
  const auto* r = m->GetReflection();
  const bool many = f.is_repeated();
  switch (f.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      many ? r->AddString(m, &f, "set-by-client") : r->SetString(m, &f, "set-by-client");
      break;
    case FieldDescriptor::CPPTYPE_INT32:
      many ? r->AddInt32(m, &f, 77) : r->SetInt32(m, &f, 77);
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      many ? r->AddInt64(m, &f, 77) : r->SetInt64(m, &f, 77);
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      many ? r->AddUInt32(m, &f, 77) : r->SetUInt32(m, &f, 77);
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      many ? r->AddUInt64(m, &f, 77) : r->SetUInt64(m, &f, 77);
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      many ? r->AddDouble(m, &f, 0.77) : r->SetDouble(m, &f, 0.77);
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      many ? r->AddFloat(m, &f, 0.77f) : r->SetFloat(m, &f, 0.77f);
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      many ? r->AddBool(m, &f, true) : r->SetBool(m, &f, true);
      break;
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* last = f.enum_type()->value(f.enum_type()->value_count() - 1);
      many ? r->AddEnum(m, &f, last) : r->SetEnum(m, &f, last);
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      Message* sub = many ? r->AddMessage(m, &f) : r->MutableMessage(m, &f);
      for (int i = 0; depth < 3 && i < sub->GetDescriptor()->field_count(); ++i) {
        SetOdd(sub, *sub->GetDescriptor()->field(i), depth + 1);
      }
      break;
    }
  }
}

void OutputOnlyTakenAt(const Message& request, const Message& answer, const std::string& prefix,
                       std::vector<std::string>* taken) {
  const auto* r = request.GetReflection();
  for (int i = 0; i < request.GetDescriptor()->field_count(); ++i) {
    const FieldDescriptor& f = *request.GetDescriptor()->field(i);
    const std::string path = prefix + f.name();
    if (IsOutputOnly(f)) {
      // The field alone, from each side.
      std::unique_ptr<Message> sent(request.New()), kept(answer.New()), sent_field(request.New()),
          kept_field(answer.New());
      sent->CopyFrom(request);
      kept->CopyFrom(answer);
      r->SwapFields(sent.get(), sent_field.get(), {&f});
      r->SwapFields(kept.get(), kept_field.get(), {&f});
      if (google::protobuf::util::MessageDifferencer::Equals(*sent_field, *kept_field)) taken->push_back(path);
    } else if (f.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f.is_repeated()) {
      if (r->HasField(request, &f) && r->HasField(answer, &f)) {
        OutputOnlyTakenAt(r->GetMessage(request, &f), r->GetMessage(answer, &f), path + ".", taken);
      }
    } else if (f.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const int n = std::min(r->FieldSize(request, &f), r->FieldSize(answer, &f));
      for (int k = 0; k < n; ++k) {
        OutputOnlyTakenAt(r->GetRepeatedMessage(request, &f, k), r->GetRepeatedMessage(answer, &f, k),
                          absl::StrCat(path, "[", k, "]."), taken);
      }
    }
  }
}

}  // namespace

void FillOutputOnly(Message* m) {
  const auto* r = m->GetReflection();
  for (int i = 0; i < m->GetDescriptor()->field_count(); ++i) {
    const FieldDescriptor& f = *m->GetDescriptor()->field(i);
    if (IsOutputOnly(f)) {
      r->ClearField(m, &f);
      SetOdd(m, f, 0);
    } else if (f.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f.is_repeated()) {
      if (r->HasField(*m, &f)) FillOutputOnly(r->MutableMessage(m, &f));
    } else if (f.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      for (int k = 0; k < r->FieldSize(*m, &f); ++k) FillOutputOnly(r->MutableRepeatedMessage(m, &f, k));
    }
  }
}

std::vector<std::string> OutputOnlyTaken(const Message& request, const Message& answer) {
  std::vector<std::string> taken;
  OutputOnlyTakenAt(request, answer, "", &taken);
  return taken;
}

std::string ErrorReason(const grpc::Status& status) {
  const google::rpc::Status details = DetailsOf(status);
  for (const auto& any : details.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info.reason();
  }
  return "";
}

std::vector<std::string> PreconditionTypes(const grpc::Status& status) {
  std::vector<std::string> out;
  const google::rpc::Status details = DetailsOf(status);
  for (const auto& any : details.details()) {
    google::rpc::PreconditionFailure failure;
    if (!any.UnpackTo(&failure)) continue;
    for (const auto& v : failure.violations()) out.push_back(v.type());
  }
  return out;
}

}  // namespace casework::testing
