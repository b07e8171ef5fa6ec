// The bad-input matrix: every unary RPC of every service (from the access
// table) is called through a real server with requests in which one field
// at a time is wrong: a string too long or with control characters, an
// enum value out of range, a negative number, oversized bytes, or nothing
// set at all. Each call must be refused with a clear code (never a crash,
// INTERNAL or UNKNOWN), INVALID_ARGUMENT must name a field, and the store's
// files must be byte-for-byte unchanged afterwards.
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/rpc/access.h"
#include "tests/testing/process.h"
#include "tests/testing/test_server.h"

namespace casework {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using testing::TestServer;

const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone());

// One wrong request: which field and how.
struct BadRequest {
  std::string what;  // "trade_in.customer.email: too long"
  std::string bytes;
};

// Sets one field of `m` (reached through `path`) to a bad value.
using Spoiler = std::function<bool(Message*, const FieldDescriptor*)>;

void Collect(const Descriptor* type, const std::string& prefix, int depth,
             std::vector<std::pair<std::string, std::vector<const FieldDescriptor*>>>* out,
             std::vector<const FieldDescriptor*> path) {
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* f = type->field(i);
    if (f->is_map()) continue;
    auto here = path;
    here.push_back(f);
    const std::string name = prefix + f->name();
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      // Well-known types (timestamps, Any, masks) are parsed by protobuf.
      if (depth < 3 && !absl::StartsWith(f->message_type()->full_name(), "google.protobuf.")) {
        Collect(f->message_type(), name + ".", depth + 1, out, here);
      }
      continue;
    }
    out->push_back({name, here});
  }
}

// The request with the field at `path` spoiled by `spoil`; false when the
// spoiler does not apply to that field's type.
bool Spoil(Message* request, const std::vector<const FieldDescriptor*>& path,
           const Spoiler& spoil) {
  Message* m = request;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    const FieldDescriptor* f = path[i];
    m = f->is_repeated() ? m->GetReflection()->AddMessage(m, f)
                         : m->GetReflection()->MutableMessage(m, f);
  }
  return spoil(m, path.back());
}

std::vector<BadRequest> BadRequestsFor(const Descriptor* type) {
  google::protobuf::DynamicMessageFactory factory;
  const Message* prototype = factory.GetPrototype(type);
  std::vector<BadRequest> out;
  out.push_back({"nothing set", ""});

  const std::map<std::string, Spoiler> spoilers = {
      {"too long",
       [](Message* m, const FieldDescriptor* f) {
         if (f->type() != FieldDescriptor::TYPE_STRING) return false;
         const std::string v(70000, 'a');
         f->is_repeated() ? m->GetReflection()->AddString(m, f, v)
                          : m->GetReflection()->SetString(m, f, v);
         return true;
       }},
      {"control characters",
       [](Message* m, const FieldDescriptor* f) {
         if (f->type() != FieldDescriptor::TYPE_STRING) return false;
         const std::string v = "abc\x01\x1b[2J\ndef";
         f->is_repeated() ? m->GetReflection()->AddString(m, f, v)
                          : m->GetReflection()->SetString(m, f, v);
         return true;
       }},
      {"enum out of range",
       [](Message* m, const FieldDescriptor* f) {
         if (f->cpp_type() != FieldDescriptor::CPPTYPE_ENUM) return false;
         f->is_repeated() ? m->GetReflection()->AddEnumValue(m, f, 977)
                          : m->GetReflection()->SetEnumValue(m, f, 977);
         return true;
       }},
      {"negative",
       [](Message* m, const FieldDescriptor* f) {
         if (f->is_repeated()) return false;
         if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
           m->GetReflection()->SetInt32(m, f, -5);
           return true;
         }
         if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT64) {
           m->GetReflection()->SetInt64(m, f, -5);
           return true;
         }
         return false;
       }},
      {"oversized document",
       [](Message* m, const FieldDescriptor* f) {
         if (f->type() != FieldDescriptor::TYPE_BYTES || f->is_repeated()) return false;
         m->GetReflection()->SetString(m, f, std::string(6 << 20, '%'));
         return true;
       }},
  };
  std::vector<std::pair<std::string, std::vector<const FieldDescriptor*>>> fields;
  Collect(type, "", 0, &fields, {});
  for (const auto& [name, path] : fields) {
    for (const auto& [how, spoil] : spoilers) {
      std::unique_ptr<Message> request(prototype->New());
      if (!Spoil(request.get(), path, spoil)) continue;
      out.push_back({absl::StrCat(name, ": ", how), request->SerializeAsString()});
    }
  }
  return out;
}

// Every file of the store except RocksDB's informational log, as
// name -> contents.
std::map<std::string, std::string> StoreFiles(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    if (absl::StartsWith(name, "LOG")) continue;
    out[entry.path().string()] = testing::ReadFile(entry.path().string());
  }
  return out;
}

// Read-only RPCs may answer a request with nothing set (list everything,
// show the board), and so may an RPC whose request has no fields or only
// a request_id (take a backup); imports report bad rows in their
// response. Every other combination must be refused.
bool MayAccept(const std::string& method, const google::protobuf::Descriptor& request, const std::string& what) {
  if (absl::StrContains(method, "/Import")) return what != "nothing set";
  if (what != "nothing set") return false;
  if (request.field_count() == 0) return true;
  if (request.field_count() == 1 && request.field(0)->name() == "request_id") return true;
  for (const char* verb : {"/List", "/Get", "/Render", "/Check"}) {
    if (absl::StrContains(method, verb)) return true;
  }
  return false;
}

TEST(BadInputMatrixTest, EveryRpcRefusesEveryBadFieldAndWritesNothing) {
  TestServer server(kStart);
  server.Start();
  auto access = rpc::AccessTable::Build(server.server().engine().workflows());
  ASSERT_TRUE(access.ok()) << access.status();
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();

  const auto before = StoreFiles(server.data_dir() + "/db");
  int calls = 0, rpcs = 0;
  std::map<grpc::StatusCode, int> codes;
  for (const auto& [method, roles] : access->roles()) {
    const size_t slash = method.find('/');
    const auto* service = pool->FindServiceByName(method.substr(0, slash));
    ASSERT_NE(service, nullptr) << method;
    const auto* rpc = service->FindMethodByName(method.substr(slash + 1));
    ASSERT_NE(rpc, nullptr) << method;
    if (rpc->server_streaming() || rpc->client_streaming()) continue;
    ++rpcs;
    // The most privileged role that may call it, so that access never
    // decides the outcome.
    const std::string role = roles.empty() ? "admin" : roles.back();
    for (const auto& bad : BadRequestsFor(rpc->input_type())) {
      auto ctx = TestServer::As(role);
      grpc::Status s = testing::CallRaw(server.channel(), "/" + method, bad.bytes, ctx.get());
      ++calls;
      ++codes[s.error_code()];
      const std::string where = absl::StrCat(method, " with ", bad.what, ": ", s.error_message());
      if (s.ok()) {
        EXPECT_TRUE(MayAccept(method, *rpc->input_type(), bad.what)) << where << " was accepted";
        continue;
      }
      EXPECT_NE(s.error_code(), grpc::StatusCode::INTERNAL) << where;
      EXPECT_NE(s.error_code(), grpc::StatusCode::UNKNOWN) << where;
      EXPECT_NE(s.error_code(), grpc::StatusCode::UNAVAILABLE) << where;
      EXPECT_NE(s.error_code(), grpc::StatusCode::DATA_LOSS) << where;
      if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
        EXPECT_FALSE(testing::ViolatedFields(s).empty()) << where << " names no field";
      }
    }
  }
  // The server is still healthy, and nothing reached the store.
  grpc::health::v1::HealthCheckRequest check;
  grpc::health::v1::HealthCheckResponse health;
  auto ctx = TestServer::As("cs_agent");
  ASSERT_TRUE(grpc::health::v1::Health::NewStub(server.channel())->Check(ctx.get(), check, &health).ok());
  EXPECT_EQ(StoreFiles(server.data_dir() + "/db"), before);
  EXPECT_GT(rpcs, 80);
  EXPECT_GT(calls, 600);
  std::string summary;
  for (const auto& [code, n] : codes) absl::StrAppend(&summary, " ", static_cast<int>(code), ":", n);
  std::cout << "rpcs: " << rpcs << ", bad requests: " << calls << ", codes:" << summary << "\n";
}

}  // namespace
}  // namespace casework
