// The customer profile directory of OTP support: profiles with their email,
// cellphone and recent deliveries. An interface with an embedded default,
// like the account directory.
#ifndef CASEWORK_SERVER_DIRECTORY_PROFILE_DIRECTORY_H_
#define CASEWORK_SERVER_DIRECTORY_PROFILE_DIRECTORY_H_

#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "casework/v1/admin.pb.h"
#include "casework/v1/otp_support.pb.h"
#include "storage/repository.h"

namespace casework::directory {

class ProfileDirectory {
 public:
  virtual ~ProfileDirectory() = default;
  // NOT_FOUND when there is no such profile. Thread-safe.
  virtual absl::StatusOr<v1::CustomerProfile> Find(const std::string& profile_id) = 0;
};

absl::Status ValidateProfile(const v1::CustomerProfile& profile, const std::string& prefix);

// Profiles as records in the server's store (space "profiles"; the OTP
// workflow writes corrected profiles there in the same commit as the case).
class StoredProfileDirectory : public ProfileDirectory {
 public:
  explicit StoredProfileDirectory(storage::Repository* repo) : repo_(repo) {}
  absl::StatusOr<v1::CustomerProfile> Find(const std::string& profile_id) override;
  absl::StatusOr<v1::CustomerProfile> Put(v1::CustomerProfile profile, int64_t expected_version,
                                          bool allow_missing);
  // Imports JSON lines, written as ImportJsonLines says.
  absl::StatusOr<v1::ImportProfilesResponse> Import(const std::string& json_lines);
  // Deletes the profiles naming any of `subjects` (email or phone, see
  // PersonalSubjects); with `dry_run` only counts them.
  absl::StatusOr<int> EraseNaming(const std::set<std::string>& subjects, bool dry_run);

 private:
  storage::Repository* repo_;
};

}  // namespace casework::directory

#endif  // CASEWORK_SERVER_DIRECTORY_PROFILE_DIRECTORY_H_
