// casework's C++ client: a channel with the right credentials, contexts
// carrying auth metadata and a deadline, and calls that retry safely.
//
//   casework::client::Options options;
//   options.target = "casework.internal:7400";
//   options.token = std::getenv("CASEWORK_TOKEN");
//   options.ca_file = "/etc/casework/ca.pem";
//   casework::client::Client client(options);
//   auto stub = casework::v1::TradeInService::NewStub(client.channel());
//   casework::v1::TradeInBoard board;
//   grpc::Status s = client.Call([&](grpc::ClientContext* ctx) {
//     return stub->GetTradeInBoard(ctx, {}, &board);
//   }, casework::client::Retry::kSafe);
#ifndef CASEWORK_CLIENT_CLIENT_H_
#define CASEWORK_CLIENT_CLIENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"

namespace casework::client {

struct Options {
  std::string target = "127.0.0.1:7400";
  // Bearer token (production).
  std::string token;
  // Development servers (caseworkd --dev): who the caller says it is.
  std::string principal;
  std::string role;
  // TLS: when any of these is set (or `tls` is true) the channel uses TLS.
  bool tls = false;
  std::string ca_file;           // PEM; empty: system roots
  std::string client_cert_file;  // mutual TLS
  std::string client_key_file;
  std::chrono::milliseconds deadline{10000};
  // Attempts for calls that may be retried (see Retry).
  int max_attempts = 4;
};

enum class Retry {
  kNever,
  // Reads, and creates that carry a request_id (the server returns the
  // case the first attempt created): retried on UNAVAILABLE and
  // RESOURCE_EXHAUSTED with backoff.
  kSafe,
};

class Client {
 public:
  explicit Client(Options options);

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  const Options& options() const { return options_; }

  // A context with the auth metadata and the deadline.
  std::unique_ptr<grpc::ClientContext> Context() const;

  // Runs `call` with a fresh context per attempt.
  grpc::Status Call(const std::function<grpc::Status(grpc::ClientContext*)>& call,
                    Retry retry = Retry::kNever) const;

  // Any unary RPC by full name ("casework.v1.TradeInService/GetTradeIn"),
  // with messages built by reflection; for tools such as casectl.
  grpc::Status CallMethod(const std::string& method, const google::protobuf::Message& request,
                          google::protobuf::Message* response, Retry retry = Retry::kNever) const;

 private:
  Options options_;
  std::shared_ptr<grpc::Channel> channel_;
};

// The role metadata key development servers read.
inline constexpr char kRoleHeader[] = "x-casework-role";
inline constexpr char kPrincipalHeader[] = "x-casework-principal";

}  // namespace casework::client

#endif  // CASEWORK_CLIENT_CLIENT_H_
