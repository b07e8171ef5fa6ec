// Every unary RPC of every service, in process through a real server: the
// first byte picks the RPC (from the access table), the rest is the
// request as sent on the wire. Whatever arrives, the server must answer
// with a status, never crash, and never answer INTERNAL or UNKNOWN.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "server/common/clock.h"
#include "server/config.h"
#include "server/rpc/access.h"
#include "server/server.h"
#include "tests/testing/temp_dir.h"

namespace {

struct Target {
  std::unique_ptr<casework::Server> server;
  std::unique_ptr<grpc::GenericStub> stub;
  std::vector<std::pair<std::string, std::string>> methods;  // (path, role)
};

Target* Start() {
  auto* t = new Target;
  // The server lives as long as the process; its folder goes when it ends.
  static casework::testing::TempDir dir;
  casework::internal::ServerConfig config;
  config.set_listen_address("127.0.0.1:0");
  config.set_metrics_address("off");
  config.set_data_dir(dir.path());
  config.mutable_notifier()->set_log(false);
  config.set_plaintext(true);
  config.mutable_auth()->set_header_identity(true);
  config.mutable_rate_limit()->set_requests_per_second(-1);
  auto finalized = casework::Finalize(config);
  if (!finalized.ok()) std::abort();
  casework::ServerOptions options;
  options.config = *finalized;
  options.background = false;
  auto server = casework::Server::Start(options);
  if (!server.ok()) std::abort();
  t->server = *std::move(server);
  t->stub = std::make_unique<grpc::GenericStub>(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", t->server->port()), grpc::InsecureChannelCredentials()));
  auto access = casework::rpc::AccessTable::Build(t->server->engine().workflows());
  if (!access.ok()) std::abort();
  for (const auto& [method, roles] : access->roles()) {
    if (method.find("/WatchBoards") != std::string::npos) continue;  // streaming
    t->methods.push_back({"/" + method, roles.empty() ? "admin" : roles.back()});
  }
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Target* target = Start();
  if (size == 0) return 0;
  const auto& [method, role] = target->methods[data[0] % target->methods.size()];
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-casework-principal", "fuzz");
  ctx.AddMetadata("x-casework-role", role);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice slice(data + 1, size - 1);
  grpc::ByteBuffer request(&slice, 1), response;
  std::promise<grpc::Status> done;
  target->stub->UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                          [&](grpc::Status s) { done.set_value(std::move(s)); });
  const grpc::Status s = done.get_future().get();
  if (s.error_code() == grpc::StatusCode::INTERNAL ||
      s.error_code() == grpc::StatusCode::UNKNOWN) {
    // INTERNAL is also what gRPC answers for bytes that are not a valid
    // message of the request type; only the server's own are findings.
    const std::string message = absl::AsciiStrToLower(s.error_message());
    if (message.find("parse") == std::string::npos &&
        message.find("deserializ") == std::string::npos) {
      std::fprintf(stderr, "%s answered %d: %s\n", method.c_str(), s.error_code(),
                   s.error_message().c_str());
      std::abort();
    }
  }
  return 0;
}
