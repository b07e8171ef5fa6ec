#include "server/common/errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"

namespace casework {

absl::Status FieldErrors::ToStatus() const {
  if (violations_.empty()) return absl::OkStatus();
  google::rpc::BadRequest details;
  std::string message;
  for (const auto& [field, description] : violations_) {
    auto* v = details.add_field_violations();
    v->set_field(field);
    v->set_description(description);
    absl::StrAppend(&message, message.empty() ? "" : "; ", field, ": ",
                    description);
  }
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kBadRequestUrl, absl::Cord(details.SerializeAsString()));
  return status;
}

absl::Status InvalidField(std::string field, std::string description) {
  FieldErrors errors;
  errors.Add(std::move(field), std::move(description));
  return errors.ToStatus();
}

absl::Status WithErrorInfo(absl::Status status, absl::string_view reason,
                           const std::map<std::string, std::string>& metadata) {
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain(std::string(kErrorDomain));
  for (const auto& [k, v] : metadata) (*info.mutable_metadata())[k] = v;
  status.SetPayload(kErrorInfoUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

absl::Status EtagMismatch(absl::string_view what) {
  return WithErrorInfo(
      absl::AbortedError(absl::StrCat("etag mismatch: ", what, " has changed since it was read; read it again")),
      "ETAG_MISMATCH");
}

absl::Status WithPreconditionFailure(
    absl::Status status, const std::vector<std::vector<std::string>>& violations) {
  google::rpc::PreconditionFailure failure;
  for (const auto& v : violations) {
    auto* out = failure.add_violations();
    if (v.size() > 0) out->set_type(v[0]);
    if (v.size() > 1) out->set_subject(v[1]);
    if (v.size() > 2) out->set_description(v[2]);
  }
  status.SetPayload(kPreconditionFailureUrl,
                    absl::Cord(failure.SerializeAsString()));
  return status;
}

}  // namespace casework
