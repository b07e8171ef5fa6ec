#include "server/directory/profile_directory.h"

#include "absl/strings/str_cat.h"
#include "server/common/errors.h"
#include "server/directory/erase.h"
#include "server/directory/import.h"
#include "server/workflow/otp_workflow.h"
#include "server/workflow/validation.h"

namespace casework::directory {
namespace {

// The bytes stored for a profile: all of it but its resource name and
// etag, which come from its key and version when it is read.
std::string StoredForm(v1::CustomerProfile p) {
  p.clear_name();
  p.clear_etag();
  return p.SerializeAsString();
}

bool IsProfileId(const std::string& s) {
  if (s.size() < 3 || s.size() > 64) return false;
  for (char c : s) {
    if (!(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
        c != '-' && c != '_') {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::Status ValidateProfile(const v1::CustomerProfile& p, const std::string& prefix) {
  FieldErrors errors;
  if (!IsProfileId(p.profile_id())) {
    errors.Add(prefix + "profile_id", "must be 3 to 64 of letters, digits, '-' and '_'");
  }
  if (!workflow::IsEmail(p.email())) errors.Add(prefix + "email", "must be a valid email address");
  if (!p.cellphone().empty() && !workflow::IsE164(p.cellphone())) {
    errors.Add(prefix + "cellphone", "must be E.164, e.g. +27821234567");
  }
  for (int i = 0; i < p.recent_deliveries_size(); ++i) {
    const std::string& kind = p.recent_deliveries(i).kind();
    if (kind != "otp_sms" && kind != "otp_email" && kind != "email" && kind != "sms") {
      errors.Add(absl::StrCat(prefix, "recent_deliveries[", i, "].kind"),
                 "must be otp_sms, otp_email, email or sms");
    }
  }
  return errors.ToStatus();
}

absl::StatusOr<v1::CustomerProfile> StoredProfileDirectory::Find(const std::string& id) {
  auto rec = repo_->GetRecord(workflow::kProfileRecordSpace, id);
  if (!rec.ok()) {
    if (absl::IsNotFound(rec.status())) return absl::NotFoundError(absl::StrCat("no profile ", id));
    return rec.status();
  }
  v1::CustomerProfile p;
  if (!p.ParseFromString(rec->value)) return absl::DataLossError(absl::StrCat("profile ", id, " is damaged"));
  p.set_name(absl::StrCat("profiles/", id));
  p.set_etag(absl::StrCat(rec->version));
  return p;
}

absl::StatusOr<v1::CustomerProfile> StoredProfileDirectory::Put(v1::CustomerProfile p,
                                                                int64_t expected_version,
                                                                bool allow_missing) {
  if (auto s = ValidateProfile(p, "profile."); !s.ok()) return s;
  const std::string id = p.profile_id();
  if (!allow_missing) {
    auto current = Find(id);
    if (!current.ok()) return current.status();
  }
  auto version = repo_->PutRecord(workflow::kProfileRecordSpace, id, expected_version,
                                  StoredForm(std::move(p)));
  if (absl::IsAborted(version.status())) return EtagMismatch(absl::StrCat("profiles/", id));
  if (!version.ok()) return version.status();
  return Find(id);
}

absl::StatusOr<v1::ImportProfilesResponse> StoredProfileDirectory::Import(const std::string& json_lines) {
  return ImportJsonLines<v1::CustomerProfile, v1::ImportProfilesResponse>(
      repo_, json_lines, "profile.", [](v1::CustomerProfile p, StagedRecords* staged) {
        if (auto s = ValidateProfile(p, "profile."); !s.ok()) return s;
        std::string id = p.profile_id();
        staged->Stage({{workflow::kProfileRecordSpace, std::move(id), StoredForm(std::move(p))}});
        return absl::OkStatus();
      });
}

absl::StatusOr<int> StoredProfileDirectory::EraseNaming(const std::set<std::string>& subjects,
                                                        bool dry_run) {
  auto found = RecordsNaming<v1::CustomerProfile>(repo_, workflow::kProfileRecordSpace, subjects);
  if (!found.ok()) return found.status();
  if (dry_run || found->empty()) return static_cast<int>(found->size());
  std::vector<storage::RecordWrite> writes;
  for (const auto& [id, profile] : *found) {
    writes.push_back({workflow::kProfileRecordSpace, id, "", true});
  }
  if (auto s = repo_->WriteRecords(writes); !s.ok()) return s;
  return static_cast<int>(found->size());
}

}  // namespace casework::directory
