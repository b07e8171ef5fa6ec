// The account directory: accounts, their devices and billing facts, looked
// up by account number, phone number or IMEI. An interface, so that a real
// billing system can be plugged in; the default keeps accounts as records
// in the server's own store.
#ifndef CASEWORK_SERVER_DIRECTORY_ACCOUNT_DIRECTORY_H_
#define CASEWORK_SERVER_DIRECTORY_ACCOUNT_DIRECTORY_H_

#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "casework/v1/admin.pb.h"
#include "casework/v1/unlock.pb.h"
#include "server/directory/import.h"
#include "storage/repository.h"

namespace casework::directory {

class AccountDirectory {
 public:
  virtual ~AccountDirectory() = default;
  // NOT_FOUND when there is no such account. Thread-safe.
  virtual absl::StatusOr<v1::Account> FindByNumber(const std::string& account_number) = 0;
  virtual absl::StatusOr<v1::Account> FindByPhone(const std::string& phone_number) = 0;
};

// Checks an account; INVALID_ARGUMENT naming each bad field under `prefix`.
absl::Status ValidateAccount(const v1::Account& account, const std::string& prefix);

// The embedded default: records "accounts" (by number) with lookup records
// "account_phones" (phone -> number). An account and its lookups are written
// in one atomic batch.
class StoredAccountDirectory : public AccountDirectory {
 public:
  explicit StoredAccountDirectory(storage::Repository* repo) : repo_(repo) {}
  absl::StatusOr<v1::Account> FindByNumber(const std::string& account_number) override;
  absl::StatusOr<v1::Account> FindByPhone(const std::string& phone_number) override;

  // Creates or replaces an account. `expected_version` < 0 skips the etag
  // check; NOT_FOUND when missing and not `allow_missing`; ALREADY_EXISTS
  // when the phone number belongs to another account.
  absl::StatusOr<v1::Account> Put(v1::Account account, int64_t expected_version,
                                  bool allow_missing);
  // Imports JSON lines: every row is taken whole or not at all, and the
  // rows taken are written in one synced write (see ImportJsonLines).
  absl::StatusOr<v1::ImportAccountsResponse> Import(const std::string& json_lines);
  // Deletes the accounts naming any of `subjects` (email or phone, see
  // PersonalSubjects) with their lookups; with `dry_run` only counts them.
  absl::StatusOr<int> EraseNaming(const std::set<std::string>& subjects, bool dry_run);

 private:
  // Stages a valid `account`'s record and phone lookup on top of what
  // `staged` holds. REQUIRES: write_mu_ held.
  absl::Status Stage(v1::Account account, bool allow_missing, StagedRecords* staged);

  storage::Repository* repo_;
  // One change of the accounts at a time: an account's etag and its phone
  // number's owner are checked before they are written.
  std::mutex write_mu_;
};

}  // namespace casework::directory

#endif  // CASEWORK_SERVER_DIRECTORY_ACCOUNT_DIRECTORY_H_
