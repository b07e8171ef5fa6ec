#include "server/sla/calendar_store.h"

#include "absl/strings/str_cat.h"
#include "server/common/errors.h"
#include "server/common/proto_time.h"

namespace casework::sla {
namespace {
constexpr char kSpace[] = "calendars";
constexpr char kPrefix[] = "calendars/";
}  // namespace

bool IsCalendarName(const std::string& name) {
  if (name.rfind(kPrefix, 0) != 0) return false;
  const std::string id = name.substr(sizeof(kPrefix) - 1);
  if (id.empty() || id.size() > 63) return false;
  for (char c : id) {
    if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '-' && c != '_') return false;
  }
  return true;
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
  return storage::ForEachRecord(*repo_, kSpace, [&](const storage::StoredRecord& rec) {
    v1::BusinessCalendar proto;
    if (!proto.ParseFromString(rec.value)) {
      return absl::DataLossError(absl::StrCat("calendar ", rec.key, " is damaged"));
    }
    auto compiled = Calendar::Compile(proto);
    if (!compiled.ok()) return compiled.status();
    std::lock_guard<std::mutex> lock(mu_);
    compiled_[rec.key] = std::make_shared<const Calendar>(*std::move(compiled));
    return absl::OkStatus();
  });
}

std::shared_ptr<const Calendar> CalendarStore::Get(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = compiled_.find(name);
  return it == compiled_.end() ? nullptr : it->second;
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
  if (!IsCalendarName(calendar.name())) {
    return InvalidField("calendar.name", "must look like calendars/{id} (a-z, 0-9, '-', '_')");
  }
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

}  // namespace casework::sla
