#include "server/rpc/rpc_util.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/rpc/status.pb.h"
#include "server/common/errors.h"
#include "server/common/happens_before.h"
#include "server/workflow/validation.h"

namespace casework::rpc {

const char* CodeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return "OK";
    case absl::StatusCode::kCancelled: return "Canceled";
    case absl::StatusCode::kUnknown: return "Unknown";
    case absl::StatusCode::kInvalidArgument: return "InvalidArgument";
    case absl::StatusCode::kDeadlineExceeded: return "DeadlineExceeded";
    case absl::StatusCode::kNotFound: return "NotFound";
    case absl::StatusCode::kAlreadyExists: return "AlreadyExists";
    case absl::StatusCode::kPermissionDenied: return "PermissionDenied";
    case absl::StatusCode::kResourceExhausted: return "ResourceExhausted";
    case absl::StatusCode::kFailedPrecondition: return "FailedPrecondition";
    case absl::StatusCode::kAborted: return "Aborted";
    case absl::StatusCode::kOutOfRange: return "OutOfRange";
    case absl::StatusCode::kUnimplemented: return "Unimplemented";
    case absl::StatusCode::kInternal: return "Internal";
    case absl::StatusCode::kUnavailable: return "Unavailable";
    case absl::StatusCode::kDataLoss: return "DataLoss";
    case absl::StatusCode::kUnauthenticated: return "Unauthenticated";
    default: return "Unknown";
  }
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  google::rpc::Status details;
  details.set_code(static_cast<int>(status.code()));
  details.set_message(std::string(status.message()));
  for (absl::string_view url : {kBadRequestUrl, kErrorInfoUrl, kPreconditionFailureUrl}) {
    auto payload = status.GetPayload(url);
    if (!payload) continue;
    auto* any = details.add_details();
    any->set_type_url(std::string(url));
    any->set_value(std::string(*payload));
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()), details.SerializeAsString());
}

absl::StatusOr<std::string> ParseName(const std::string& name,
                                      const std::string& collection,
                                      const std::string& field) {
  const std::string prefix = collection + "/";
  const std::string shape = absl::StrCat("must look like ", collection, "/{id}");
  if (!absl::StartsWith(name, prefix)) return InvalidField(field, shape);
  std::string id = name.substr(prefix.size());
  if (id.empty() || id.size() > 63) return InvalidField(field, shape);
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return InvalidField(field, shape);
    }
  }
  return id;
}

absl::StatusOr<std::string> UpdateTarget(const std::string& name, const std::string& id,
                                         const std::string& collection, const std::string& prefix) {
  if (name.empty()) return id;
  // The id's own rules are the directory's to check, naming the id field.
  if (!absl::StartsWith(name, collection + "/")) {
    return InvalidField(prefix + "name", absl::StrCat("must look like ", collection, "/{id}"));
  }
  std::string named = name.substr(collection.size() + 1);
  if (!id.empty() && id != named) {
    return InvalidField(prefix + "name", "names another resource than the id given with it");
  }
  return named;
}

absl::StatusOr<bool> UpdateMaskNamesFields(const google::protobuf::FieldMask& mask,
                                           const google::protobuf::Descriptor& resource) {
  if (mask.paths_size() == 0 || (mask.paths_size() == 1 && mask.paths(0) == "*")) return false;
  for (const std::string& path : mask.paths()) {
    if (path == "*") return InvalidField("update_mask", "\"*\" replaces the whole resource; give it alone");
    if (!google::protobuf::util::FieldMaskUtil::GetFieldDescriptors(&resource, path, nullptr)) {
      return InvalidField("update_mask", absl::StrCat(resource.name(), " has no field ", path.substr(0, 64)));
    }
  }
  return true;
}

absl::Status CheckRequestId(const std::string& request_id) {
  FieldErrors errors;
  workflow::CheckLine(errors, "request_id", request_id, 128, /*required=*/false);
  return errors.ToStatus();
}

absl::StatusOr<int64_t> ParseEtag(const std::string& etag) {
  if (etag.empty()) return -1;
  int64_t version = 0;
  if (etag.size() > 20 || !absl::SimpleAtoi(etag, &version) || version <= 0) {
    return InvalidField("etag", "is not an etag this server issued");
  }
  return version;
}

absl::Time CallDeadline(const grpc::CallbackServerContext& ctx) {
  const auto deadline = ctx.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

absl::StatusOr<workflow::Actor> Admit(const RpcEnv& env, const grpc::CallbackServerContext& ctx,
                                      const char* service, const char* method) {
  auto caller = env.auth->Authenticate(ctx);
  if (!caller.ok()) return caller.status();
  if (auto s = env.limiter->Admit(caller->principal, absl::Now()); !s.ok()) return s;
  if (auto s = env.access->Check(absl::StrCat(service, "/", method), caller->role); !s.ok()) return s;
  return caller;
}

namespace {

// The reactor of one unary call; gRPC calls OnDone once the answer is sent,
// and only then frees the request and response the body used.
class UnaryReactor final : public grpc::ServerUnaryReactor {
 public:
  void Answer(const absl::Status& status) {
    HappensBefore(this);
    Finish(ToGrpcStatus(status));
  }

  void OnDone() override {
    HappensAfter(this);
    delete this;
  }
  // OnDone only frees the reactor, so gRPC may run it on the thread that
  // completes the call, as it does for its own DefaultReactor, instead of
  // waking its executor thread for it: one thread switch less per call.
  // (gRPC calls this hook internal; casework builds against the gRPC of
  // Debian 12, 1.51.)
  bool InternalInlineable() override { return true; }
};

// Admits the caller and runs `body` with the reply that records the call
// and answers it.
void Handle(const RpcEnv& env, grpc::CallbackServerContext* ctx, UnaryReactor* reactor,
            const char* service, const char* method, absl::Time started,
            absl::AnyInvocable<void(const workflow::Actor&, Reply)> body) {
  Reply reply = [metrics = env.metrics, reactor, service, method,
                 started](const absl::Status& status) {
    metrics->RpcHandled(service, method, CodeName(status.code()), absl::Now() - started);
    reactor->Answer(status);
  };
  if (CallDeadline(*ctx) <= absl::Now()) {
    // The caller has given up waiting (the call waited for a worker, say).
    return reply(absl::DeadlineExceededError("the call's deadline passed before it was served"));
  }
  auto caller = Admit(env, *ctx, service, method);
  if (!caller.ok()) return reply(caller.status());
  body(*caller, std::move(reply));
}

// A body that answers with the status it returns.
absl::AnyInvocable<void(const workflow::Actor&, Reply)> Answering(
    std::function<absl::Status(const workflow::Actor&)> body) {
  return [body = std::move(body)](const workflow::Actor& who, Reply reply) {
    reply(body(who));
  };
}

}  // namespace

grpc::ServerUnaryReactor* Serve(const RpcEnv& env, grpc::CallbackServerContext* ctx,
                                const char* service, const char* method,
                                std::function<absl::Status(const workflow::Actor&)> body) {
  auto* reactor = new UnaryReactor;
  env.metrics->RpcStarted(service, method);
  const absl::Time started = absl::Now();
  env.pool->Submit([env, ctx, reactor, service, method, started, body = std::move(body)] {
    Handle(env, ctx, reactor, service, method, started, Answering(body));
  });
  return reactor;
}

grpc::ServerUnaryReactor* ServeRead(const RpcEnv& env, grpc::CallbackServerContext* ctx,
                                    const char* service, const char* method,
                                    std::function<absl::Status(const workflow::Actor&)> body) {
  auto* reactor = new UnaryReactor;
  env.metrics->RpcStarted(service, method);
  Handle(env, ctx, reactor, service, method, absl::Now(), Answering(std::move(body)));
  return reactor;
}

grpc::ServerUnaryReactor* ServeChange(const RpcEnv& env, grpc::CallbackServerContext* ctx,
                                      const char* service, const char* method,
                                      absl::AnyInvocable<void(const workflow::Actor&, Reply)> body) {
  auto* reactor = new UnaryReactor;
  env.metrics->RpcStarted(service, method);
  Handle(env, ctx, reactor, service, method, absl::Now(), std::move(body));
  return reactor;
}

}  // namespace casework::rpc
