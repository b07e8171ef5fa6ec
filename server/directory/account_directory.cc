#include "server/directory/account_directory.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "server/common/errors.h"
#include "server/directory/erase.h"
#include "server/directory/import.h"
#include "server/workflow/validation.h"

namespace casework::directory {
namespace {

constexpr char kAccounts[] = "accounts";
constexpr char kPhones[] = "account_phones";

bool IsAccountNumber(const std::string& s) {
  if (s.size() < 4 || s.size() > 32) return false;
  for (char c : s) {
    if (!(c >= '0' && c <= '9') && !(c >= 'A' && c <= 'Z') && c != '-') return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateAccount(const v1::Account& a, const std::string& p) {
  FieldErrors errors;
  if (!IsAccountNumber(a.account_number())) {
    errors.Add(p + "account_number", "must be 4 to 32 of A-Z, 0-9 and '-'");
  }
  if (a.full_name().empty() || a.full_name().size() > 200 || !workflow::IsCleanLine(a.full_name())) {
    errors.Add(p + "full_name", "is required (one line of at most 200 bytes of text)");
  }
  if (a.billing_address().empty() || a.billing_address().size() > 500 ||
      !workflow::IsCleanText(a.billing_address())) {
    errors.Add(p + "billing_address", "is required (at most 500 bytes of text)");
  }
  if (!a.phone_number().empty() && !workflow::IsE164(a.phone_number())) {
    errors.Add(p + "phone_number", "must be E.164, e.g. +14155550123");
  }
  if (!a.email().empty() && !workflow::IsEmail(a.email())) {
    errors.Add(p + "email", "must be a valid email address");
  }
  if (!v1::AccountStanding_IsValid(a.standing()) ||
      a.standing() == v1::ACCOUNT_STANDING_UNSPECIFIED) {
    errors.Add(p + "standing", "is required: GOOD, PAST_DUE or SUSPENDED");
  }
  for (char c : a.region()) {
    if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '-' && c != '_') {
      errors.Add(p + "region", "must be a calendar id (a-z, 0-9, '-', '_')");
      break;
    }
  }
  std::set<std::string> imeis;
  for (int i = 0; i < a.devices_size(); ++i) {
    const auto& d = a.devices(i);
    const std::string f = absl::StrCat(p, "devices[", i, "].");
    if (!workflow::IsImei(d.imei())) errors.Add(f + "imei", "must be 15 digits with a valid check digit");
    if (!imeis.insert(d.imei()).second) errors.Add(f + "imei", "appears twice");
    if (d.balance_minor_units() < 0) errors.Add(f + "balance_minor_units", "must not be negative");
    if (d.balance_minor_units() > 0 && d.currency_code().size() != 3) {
      errors.Add(f + "currency_code", "is required with a balance (ISO 4217, e.g. USD)");
    }
  }
  return errors.ToStatus();
}

absl::StatusOr<v1::Account> StoredAccountDirectory::FindByNumber(const std::string& number) {
  auto rec = repo_->GetRecord(kAccounts, number);
  if (!rec.ok()) {
    if (absl::IsNotFound(rec.status())) {
      return absl::NotFoundError(absl::StrCat("no account with number ", number));
    }
    return rec.status();
  }
  v1::Account a;
  if (!a.ParseFromString(rec->value)) {
    return absl::DataLossError(absl::StrCat("account ", number, " is damaged"));
  }
  a.set_name(absl::StrCat("accounts/", number));
  a.set_etag(absl::StrCat(rec->version));
  return a;
}

absl::StatusOr<v1::Account> StoredAccountDirectory::FindByPhone(const std::string& phone) {
  auto rec = repo_->GetRecord(kPhones, phone);
  if (!rec.ok()) {
    if (absl::IsNotFound(rec.status())) {
      return absl::NotFoundError("no account with that phone number");
    }
    return rec.status();
  }
  return FindByNumber(rec->value);
}

absl::Status StoredAccountDirectory::Stage(v1::Account a, bool allow_missing, StagedRecords* staged) {
  auto current = staged->Get(kAccounts, a.account_number());
  if (!current.ok() && !absl::IsNotFound(current.status())) return current.status();
  if (!current.ok() && !allow_missing) {
    return absl::NotFoundError(
        absl::StrCat("no account with number ", a.account_number(), "; set allow_missing to create it"));
  }
  v1::Account old;
  if (current.ok() && !old.ParseFromString(*current)) {
    return absl::DataLossError(absl::StrCat("account ", a.account_number(), " is damaged"));
  }
  if (!a.phone_number().empty()) {
    auto owner = staged->Get(kPhones, a.phone_number());
    if (!owner.ok() && !absl::IsNotFound(owner.status())) return owner.status();
    if (owner.ok() && *owner != a.account_number()) {
      return InvalidField("account.phone_number", "belongs to another account");
    }
  }
  std::vector<storage::RecordWrite> writes;
  if (!old.phone_number().empty() && old.phone_number() != a.phone_number()) {
    writes.push_back({kPhones, old.phone_number(), "", true});
  }
  if (!a.phone_number().empty()) writes.push_back({kPhones, a.phone_number(), a.account_number()});
  a.clear_name();
  a.clear_etag();
  writes.push_back({kAccounts, a.account_number(), a.SerializeAsString()});
  staged->Stage(std::move(writes));
  return absl::OkStatus();
}

absl::StatusOr<v1::Account> StoredAccountDirectory::Put(v1::Account a, int64_t expected_version,
                                                        bool allow_missing) {
  if (auto s = ValidateAccount(a, "account."); !s.ok()) return s;
  const std::string number = a.account_number();
  std::lock_guard<std::mutex> lock(write_mu_);
  StagedRecords staged(repo_);
  if (auto s = Stage(std::move(a), allow_missing, &staged); !s.ok()) return s;
  if (expected_version >= 0) {
    auto current = FindByNumber(number);
    if (!current.ok() && !absl::IsNotFound(current.status())) return current.status();
    const int64_t version = current.ok() ? std::stoll(current->etag()) : 0;
    if (version != expected_version) return EtagMismatch("the account");
  }
  if (auto s = staged.Write(); !s.ok()) return s;
  return FindByNumber(number);
}

absl::StatusOr<v1::ImportAccountsResponse> StoredAccountDirectory::Import(const std::string& json_lines) {
  std::lock_guard<std::mutex> lock(write_mu_);
  return ImportJsonLines<v1::Account, v1::ImportAccountsResponse>(
      repo_, json_lines, "account.",
      [this](v1::Account a, StagedRecords* staged) {
        if (auto s = ValidateAccount(a, "account."); !s.ok()) return s;
        return Stage(std::move(a), true, staged);
      });
}

absl::StatusOr<int> StoredAccountDirectory::EraseNaming(const std::set<std::string>& subjects,
                                                        bool dry_run) {
  std::lock_guard<std::mutex> lock(write_mu_);
  auto found = RecordsNaming<v1::Account>(repo_, kAccounts, subjects);
  if (!found.ok()) return found.status();
  if (dry_run || found->empty()) return static_cast<int>(found->size());
  std::vector<storage::RecordWrite> writes;
  for (const auto& [number, account] : *found) {
    writes.push_back({kAccounts, number, "", true});
    if (!account.phone_number().empty()) writes.push_back({kPhones, account.phone_number(), "", true});
  }
  if (auto s = repo_->WriteRecords(writes); !s.ok()) return s;
  return static_cast<int>(found->size());
}

}  // namespace casework::directory
