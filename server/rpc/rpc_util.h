// What every RPC handler shares: the one absl -> gRPC status conversion,
// the caller's identity, resource-name and etag parsing, and Serve(), which
// runs a handler's body and finishes the call.
#ifndef CASEWORK_SERVER_RPC_RPC_UTIL_H_
#define CASEWORK_SERVER_RPC_RPC_UTIL_H_

#include <functional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/util/field_mask_util.h"
#include "grpcpp/grpcpp.h"
#include "server/common/worker_pool.h"
#include "server/rpc/access.h"
#include "server/rpc/auth.h"
#include "server/rpc/rate_limiter.h"
#include "server/metrics/metrics.h"
#include "server/workflow/workflow.h"

namespace casework::rpc {

// Converts a status, carrying its google.rpc details (BadRequest, ErrorInfo,
// PreconditionFailure) in grpc-status-details-bin.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The grpc_code label of the RPC metrics ("OK", "InvalidArgument", ...).
const char* CodeName(absl::StatusCode code);

// "tradeIns/ABC" with collection "tradeIns" -> "ABC". INVALID_ARGUMENT
// naming `field` otherwise.
absl::StatusOr<std::string> ParseName(const std::string& name,
                                      const std::string& collection,
                                      const std::string& field = "name");

// The id an update or upsert is about: the id in `name` ("profiles/p-1"),
// or `id` when the name is empty. A name and an id that disagree are
// refused, naming `prefix` + "name", so that no request changes one
// resource while naming another.
absl::StatusOr<std::string> UpdateTarget(const std::string& name, const std::string& id,
                                         const std::string& collection, const std::string& prefix);

// A create's request_id (AIP-155), which makes its retries safe: empty,
// or up to 128 bytes of text. INVALID_ARGUMENT naming "request_id".
absl::Status CheckRequestId(const std::string& request_id);

// "" -> -1 (no check); "12" -> 12; anything else INVALID_ARGUMENT "etag".
absl::StatusOr<int64_t> ParseEtag(const std::string& etag);

// True when an update_mask names fields: not empty and not "*", which
// replace the resource whole. INVALID_ARGUMENT naming "update_mask" for a
// path `resource` does not have, or "*" beside other paths.
absl::StatusOr<bool> UpdateMaskNamesFields(const google::protobuf::FieldMask& mask,
                                           const google::protobuf::Descriptor& resource);

// An Update's update_mask (AIP-134). When it names fields, `*sent` becomes
// the stored resource (`read()`) with those fields taken from `*sent`, and
// `*version`, unless the request gave an etag, the stored one, so that a
// change made since the read is refused (ABORTED) rather than overwritten.
// With `allow_missing`, a resource that does not exist is created from
// `*sent` as it is.
template <typename Resource, typename Read>
absl::Status ApplyUpdateMask(const google::protobuf::FieldMask& mask, bool allow_missing, Read read,
                             Resource* sent, int64_t* version) {
  auto names = UpdateMaskNamesFields(mask, *Resource::descriptor());
  if (!names.ok() || !*names) return names.status();
  absl::StatusOr<Resource> stored = read();
  if (absl::IsNotFound(stored.status()) && allow_missing) return absl::OkStatus();
  if (!stored.ok()) return stored.status();
  if (*version < 0) {
    auto read_version = ParseEtag(stored->etag());
    if (!read_version.ok()) return read_version.status();
    *version = *read_version;
  }
  google::protobuf::util::FieldMaskUtil::MergeOptions replace;
  replace.set_replace_message_fields(true);
  replace.set_replace_repeated_fields(true);
  google::protobuf::util::FieldMaskUtil::MergeMessageTo(*sent, mask, replace, &*stored);
  *sent = *std::move(stored);
  return absl::OkStatus();
}

// The caller's deadline for the call; absl::InfiniteFuture() when it set
// none.
absl::Time CallDeadline(const grpc::CallbackServerContext& ctx);

// Shared by the services of one server.
struct RpcEnv {
  WorkerPool* pool;
  metrics::Metrics* metrics;
  Authenticator* auth;
  const AccessTable* access;
  RateLimiter* limiter;
};

// The caller of an RPC, once authenticated, within its rate limit and
// allowed by the access table; otherwise the status to answer with. Serve
// runs it for unary RPCs; streaming handlers call it themselves.
absl::StatusOr<workflow::Actor> Admit(const RpcEnv& env, const grpc::CallbackServerContext& ctx,
                                      const char* service, const char* method);

// Answers a call (once): records it in the RPC metrics and finishes it.
using Reply = absl::AnyInvocable<void(const absl::Status&)>;

// Runs `body` on the worker pool and finishes the call with its status.
// `body` runs only for an authenticated caller whose role the access table
// allows for this RPC, and receives that caller; a call whose deadline has
// passed by then is answered DEADLINE_EXCEEDED instead (as by ServeRead and
// ServeChange). Handlers stay a few lines:
//   return Serve(env_, ctx, "TradeInService", "CreateTradeIn",
//                [=](const Actor& who) { ... return absl::OkStatus(); });
grpc::ServerUnaryReactor* Serve(const RpcEnv& env, grpc::CallbackServerContext* ctx,
                                const char* service, const char* method,
                                std::function<absl::Status(const workflow::Actor&)> body);

// As Serve, for a body that only reads: it runs on the gRPC thread that
// received the call. A read never waits on fsync, so the hand-off to the
// worker pool would only add two thread switches to every call.
grpc::ServerUnaryReactor* ServeRead(const RpcEnv& env, grpc::CallbackServerContext* ctx,
                                    const char* service, const char* method,
                                    std::function<absl::Status(const workflow::Actor&)> body);

// As ServeRead, for a body that changes a case: it decides the change on
// the gRPC thread, hands it to the engine's committer (with the call's
// deadline) and returns; `reply` answers once the change is durable (or
// refused). No thread waits on fsync.
grpc::ServerUnaryReactor* ServeChange(const RpcEnv& env, grpc::CallbackServerContext* ctx,
                                      const char* service, const char* method,
                                      absl::AnyInvocable<void(const workflow::Actor&, Reply)> body);

}  // namespace casework::rpc

#endif  // CASEWORK_SERVER_RPC_RPC_UTIL_H_
