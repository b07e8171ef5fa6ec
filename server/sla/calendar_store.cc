#include "server/sla/calendar_store.h"

#include "absl/strings/str_cat.h"
#include "server/common/errors.h"
#include "server/common/proto_time.h"

namespace casework::sla {
namespace {
constexpr char kSpace[] = "calendars";
// Deleted calendars, kept to measure the clocks that ran on them.
constexpr char kRetiredSpace[] = "retired_calendars";
// Deleted calendars whose running clocks are still to move off them.
constexpr char kMovesSpace[] = "calendar_moves";
constexpr char kPrefix[] = "calendars/";
}  // namespace

absl::Status CheckCalendarName(const std::string& name, std::string field) {
  const auto bad = [&] {
    return InvalidField(std::move(field),
                        "must look like calendars/{id}, the id 1-63 of a-z, 0-9, '-' and '_'");
  };
  if (name.rfind(kPrefix, 0) != 0) return bad();
  const std::string id = name.substr(sizeof(kPrefix) - 1);
  if (id.empty() || id.size() > 63) return bad();
  for (char c : id) {
    if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '-' && c != '_') return bad();
  }
  return absl::OkStatus();
}

CalendarStore::CalendarStore(storage::Repository* repo) : repo_(repo) {}

absl::Status CalendarStore::Load(absl::Time now) {
  const v1::BusinessCalendar def = DefaultCalendar();
  auto existing = repo_->GetRecord(kSpace, def.name());
  if (absl::IsNotFound(existing.status())) {
    auto put = Put(def, 0, true, now);
    if (!put.ok() && !absl::IsAborted(put.status())) return put.status();
  } else if (!existing.ok()) {
    return existing.status();
  }
  for (const char* space : {kSpace, kRetiredSpace}) {
    auto& into = space == kSpace ? compiled_ : retired_;
    auto loaded = storage::ForEachRecord(*repo_, space, [&](const storage::StoredRecord& rec) {
      v1::BusinessCalendar proto;
      if (!proto.ParseFromString(rec.value)) {
        return absl::DataLossError(absl::StrCat("calendar ", rec.key, " is damaged"));
      }
      auto compiled = Calendar::Compile(proto);
      if (!compiled.ok()) return compiled.status();
      std::lock_guard<std::mutex> lock(mu_);
      into[rec.key] = std::make_shared<const Calendar>(space == kSpace ? *std::move(compiled)
                                                                       : compiled->Retired());
      return absl::OkStatus();
    });
    if (!loaded.ok()) return loaded;
  }
  return absl::OkStatus();
}

std::shared_ptr<const Calendar> CalendarStore::Get(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto* from : {&compiled_, &retired_}) {
    if (auto it = from->find(name); it != from->end()) return it->second;
  }
  return nullptr;
}

absl::StatusOr<v1::BusinessCalendar> CalendarStore::GetProto(const std::string& name) const {
  auto rec = repo_->GetRecord(kSpace, name);
  if (!rec.ok()) {
    if (absl::IsNotFound(rec.status())) return absl::NotFoundError(absl::StrCat(name, " not found"));
    return rec.status();
  }
  v1::BusinessCalendar proto;
  if (!proto.ParseFromString(rec->value)) return absl::DataLossError(absl::StrCat(name, " is damaged"));
  proto.set_etag(absl::StrCat(rec->version));
  return proto;
}

absl::StatusOr<std::vector<v1::BusinessCalendar>> CalendarStore::List(
    const std::string& after_name, int limit) const {
  auto page = repo_->ListRecords(kSpace, after_name, limit);
  if (!page.ok()) return page.status();
  std::vector<v1::BusinessCalendar> out;
  for (const auto& rec : *page) {
    v1::BusinessCalendar proto;
    if (!proto.ParseFromString(rec.value)) return absl::DataLossError(absl::StrCat(rec.key, " is damaged"));
    proto.set_etag(absl::StrCat(rec.version));
    out.push_back(std::move(proto));
  }
  return out;
}

absl::StatusOr<v1::BusinessCalendar> CalendarStore::Put(v1::BusinessCalendar calendar,
                                                        int64_t expected_version,
                                                        bool allow_missing, absl::Time now) {
  if (auto st = CheckCalendarName(calendar.name(), "calendar.name"); !st.ok()) return st;
  auto compiled = Calendar::Compile(calendar);
  if (!compiled.ok()) return compiled.status();
  if (!allow_missing && expected_version < 0) {
    auto existing = repo_->GetRecord(kSpace, calendar.name());
    if (!existing.ok()) {
      if (absl::IsNotFound(existing.status())) {
        return absl::NotFoundError(absl::StrCat(calendar.name(), " not found; set allow_missing to create it"));
      }
      return existing.status();
    }
  }
  calendar.clear_etag();
  *calendar.mutable_update_time() = ToProto(now);
  std::lock_guard<std::mutex> write(write_mu_);
  auto version = repo_->PutRecord(kSpace, calendar.name(), expected_version,
                                  calendar.SerializeAsString());
  if (absl::IsAborted(version.status())) {
    if (expected_version == 0) return absl::AlreadyExistsError(absl::StrCat(calendar.name(), " already exists"));
    return EtagMismatch(calendar.name());
  }
  if (!version.ok()) return version.status();
  {
    std::lock_guard<std::mutex> lock(mu_);
    compiled_[calendar.name()] = std::make_shared<const Calendar>(*std::move(compiled));
  }
  calendar.set_etag(absl::StrCat(*version));
  return calendar;
}

absl::Status CalendarStore::Retire(const std::string& name, int64_t expected_version) {
  if (auto st = CheckCalendarName(name, "name"); !st.ok()) return st;
  if (name == DefaultCalendar().name()) {
    return WithErrorInfo(
        absl::FailedPreconditionError(absl::StrCat(
            name, " measures every clock that has no calendar of its own and cannot be deleted; ",
            "UpdateCalendar changes it")),
        "DEFAULT_CALENDAR");
  }
  std::lock_guard<std::mutex> write(write_mu_);
  auto rec = repo_->GetRecord(kSpace, name);
  if (absl::IsNotFound(rec.status())) return absl::NotFoundError(absl::StrCat(name, " not found"));
  if (!rec.ok()) return rec.status();
  if (expected_version >= 0 && expected_version != rec->version) return EtagMismatch(name);
  std::shared_ptr<const Calendar> active = Get(name);
  if (active == nullptr) return absl::InternalError(absl::StrCat(name, " is stored but not loaded"));
  const std::vector<storage::RecordWrite> writes = {
      {kSpace, name, "", /*erase=*/true}, {kRetiredSpace, name, rec->value}, {kMovesSpace, name, ""}};
  if (auto st = repo_->WriteRecords(writes); !st.ok()) return st;
  std::lock_guard<std::mutex> lock(mu_);
  retired_[name] = std::make_shared<const Calendar>(active->Retired());
  compiled_.erase(name);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> CalendarStore::PendingMoves() const {
  std::vector<std::string> names;
  auto listed = storage::ForEachRecord(*repo_, kMovesSpace, [&](const storage::StoredRecord& rec) {
    names.push_back(rec.key);
    return absl::OkStatus();
  });
  if (!listed.ok()) return listed;
  return names;
}

absl::Status CalendarStore::MoveDone(const std::string& name) {
  absl::Status deleted = repo_->DeleteRecord(kMovesSpace, name, -1);
  return absl::IsNotFound(deleted) ? absl::OkStatus() : deleted;
}

}  // namespace casework::sla
