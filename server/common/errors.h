// Building absl::Status values that carry google.rpc error details. The
// conversion to grpc::Status happens once, in server/rpc.
#ifndef CASEWORK_SERVER_COMMON_ERRORS_H_
#define CASEWORK_SERVER_COMMON_ERRORS_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace casework {

// Payload type URLs under which details are attached to an absl::Status.
inline constexpr absl::string_view kBadRequestUrl =
    "type.googleapis.com/google.rpc.BadRequest";
inline constexpr absl::string_view kErrorInfoUrl =
    "type.googleapis.com/google.rpc.ErrorInfo";
inline constexpr absl::string_view kPreconditionFailureUrl =
    "type.googleapis.com/google.rpc.PreconditionFailure";
inline constexpr absl::string_view kErrorDomain = "casework.v1";

// Collects field violations; ToStatus() is OK when there are none, else
// INVALID_ARGUMENT with a google.rpc.BadRequest naming every field.
class FieldErrors {
 public:
  void Add(std::string field, std::string description) {
    violations_.emplace_back(std::move(field), std::move(description));
  }
  bool empty() const { return violations_.empty(); }
  absl::Status ToStatus() const;

 private:
  std::vector<std::pair<std::string, std::string>> violations_;
};

// INVALID_ARGUMENT naming one field.
absl::Status InvalidField(std::string field, std::string description);

// Attaches a google.rpc.ErrorInfo (machine-readable reason, e.g.
// "ILLEGAL_TRANSITION") to `status`.
absl::Status WithErrorInfo(absl::Status status, absl::string_view reason,
                           const std::map<std::string, std::string>& metadata = {});

// ABORTED for a write whose etag is no longer current, with ErrorInfo reason
// ETAG_MISMATCH. `what` names the resource as callers know it.
absl::Status EtagMismatch(absl::string_view what);

// Attaches a google.rpc.PreconditionFailure listing violations as
// (type, subject, description), e.g. eligibility rules that failed.
absl::Status WithPreconditionFailure(
    absl::Status status,
    const std::vector<std::vector<std::string>>& violations);

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_ERRORS_H_
