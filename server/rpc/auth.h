// Who is calling: a bearer token ("authorization: Bearer ...") or a
// verified client certificate, looked up in the token file, which stores
// only SHA-256 hashes of tokens. In development the caller may instead name
// itself with metadata (header identity). The actor recorded in timelines
// is always the principal found here.
#ifndef CASEWORK_SERVER_RPC_AUTH_H_
#define CASEWORK_SERVER_RPC_AUTH_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/workflow/workflow.h"

namespace casework::rpc {

// "sha256:" + hex SHA-256 of `token`: what the token file stores.
std::string HashToken(const std::string& token);

struct Grant {
  std::string principal;
  std::vector<std::string> roles;
};

struct Credentials {
  std::map<std::string, Grant> tokens;  // by hash
  std::map<std::string, Grant> certs;   // by certificate name
};

// Parses a token file; INVALID_ARGUMENT naming the line of the first
// problem (unknown role, malformed hash, repeated entry).
absl::StatusOr<Credentials> ParseTokenFile(const std::string& text);

class Authenticator {
 public:
  // `token_file` may be empty (then only header identity, if allowed).
  static absl::StatusOr<std::unique_ptr<Authenticator>> Make(std::string token_file,
                                                             bool header_identity);

  // The caller, or UNAUTHENTICATED. A caller holding several roles picks
  // one with x-casework-role (default: the first); one it does not hold is
  // PERMISSION_DENIED.
  absl::StatusOr<workflow::Actor> Authenticate(const grpc::CallbackServerContext& ctx);

  // Re-reads the token file; on error keeps the current credentials.
  absl::Status Reload();

 private:
  Authenticator(std::string token_file, bool header_identity)
      : token_file_(std::move(token_file)), header_identity_(header_identity) {}
  void ReloadIfChanged();
  std::shared_ptr<const Credentials> credentials();

  const std::string token_file_;
  const bool header_identity_;
  std::mutex mu_;
  std::shared_ptr<const Credentials> credentials_;  // guarded by mu_
  int64_t loaded_mtime_ns_ = -1;                    // guarded by mu_
  absl::Time next_check_ = absl::InfinitePast();    // guarded by mu_
};

}  // namespace casework::rpc

#endif  // CASEWORK_SERVER_RPC_AUTH_H_
