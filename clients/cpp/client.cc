#include "casework/client.h"

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "grpcpp/generic/generic_stub.h"
#include "server/common/happens_before.h"

namespace casework::client {
namespace {

std::string ReadFile(const std::string& path) {
  if (path.empty()) return "";
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool Retryable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

}  // namespace

Client::Client(Options options) : options_(std::move(options)) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options_.tls || !options_.ca_file.empty() || !options_.client_cert_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(options_.ca_file);
    ssl.pem_cert_chain = ReadFile(options_.client_cert_file);
    ssl.pem_private_key = ReadFile(options_.client_key_file);
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  channel_ = grpc::CreateChannel(options_.target, creds);
}

std::unique_ptr<grpc::ClientContext> Client::Context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!options_.token.empty()) ctx->AddMetadata("authorization", "Bearer " + options_.token);
  if (!options_.principal.empty()) ctx->AddMetadata(kPrincipalHeader, options_.principal);
  if (!options_.role.empty()) ctx->AddMetadata(kRoleHeader, options_.role);
  ctx->set_deadline(std::chrono::system_clock::now() + options_.deadline);
  return ctx;
}

grpc::Status Client::Call(const std::function<grpc::Status(grpc::ClientContext*)>& call,
                          Retry retry) const {
  thread_local std::mt19937 rng(std::random_device{}());
  std::chrono::milliseconds backoff(100);
  for (int attempt = 1;; ++attempt) {
    auto ctx = Context();
    grpc::Status s = call(ctx.get());
    if (s.ok() || retry == Retry::kNever || !Retryable(s) || attempt >= options_.max_attempts) {
      return s;
    }
    std::uniform_int_distribution<int> jitter(0, static_cast<int>(backoff.count()));
    std::this_thread::sleep_for(backoff + std::chrono::milliseconds(jitter(rng)));
    backoff *= 2;
  }
}

grpc::Status Client::CallMethod(const std::string& method, const google::protobuf::Message& request,
                                google::protobuf::Message* response, Retry retry) const {
  grpc::GenericStub stub(channel_);
  const std::string path = "/" + method;
  const std::string bytes = request.SerializeAsString();
  return Call(
      [&](grpc::ClientContext* ctx) {
        grpc::Slice slice(bytes);
        grpc::ByteBuffer in(&slice, 1), out;
        std::mutex mu;
        std::condition_variable cv;
        bool done = false;
        grpc::Status result;
        HappensBefore(&done);  // the completion runs on a gRPC thread
        stub.UnaryCall(ctx, path, grpc::StubOptions(), &in, &out, [&](grpc::Status s) {
          HappensAfter(&done);
          std::lock_guard<std::mutex> lock(mu);
          result = std::move(s);
          done = true;
          cv.notify_all();
        });
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return done; });
        if (!result.ok()) return result;
        std::vector<grpc::Slice> slices;
        out.Dump(&slices);
        std::string data;
        for (const auto& s : slices) data.append(reinterpret_cast<const char*>(s.begin()), s.size());
        if (!response->ParseFromString(data)) {
          return grpc::Status(grpc::StatusCode::INTERNAL, "response does not parse");
        }
        return result;
      },
      retry);
}

}  // namespace casework::client
