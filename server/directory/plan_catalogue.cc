#include "server/directory/plan_catalogue.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "server/common/errors.h"
#include "server/workflow/validation.h"

namespace casework::directory {
namespace {

constexpr char kSpace[] = "protection_plans";

v1::ProtectionPlan Decorate(v1::ProtectionPlan plan, int64_t version) {
  plan.set_name(absl::StrCat("protectionPlans/", plan.plan_id()));
  plan.set_etag(absl::StrCat(version));
  return plan;
}

}  // namespace

absl::Status ValidatePlan(const v1::ProtectionPlan& p, const std::string& prefix) {
  FieldErrors errors;
  const std::string& id = p.plan_id();
  bool id_ok = id.size() >= 2 && id.size() <= 40;
  for (char c : id) id_ok &= (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  if (!id_ok) errors.Add(prefix + "plan_id", "must be 2 to 40 of a-z, 0-9 and '-'");
  if (p.display_name().empty() || p.display_name().size() > 100 ||
      !workflow::IsCleanLine(p.display_name())) {
    errors.Add(prefix + "display_name", "is required (one line of at most 100 bytes)");
  }
  if (p.covered_perils().empty()) errors.Add(prefix + "covered_perils", "name at least one peril");
  std::set<int> perils;
  for (int i = 0; i < p.covered_perils_size(); ++i) {
    const int v = p.covered_perils(i);
    if (!v1::Peril_IsValid(v) || v == v1::PERIL_UNSPECIFIED || !perils.insert(v).second) {
      errors.Add(absl::StrCat(prefix, "covered_perils[", i, "]"), "unknown or repeated peril");
    }
  }
  if (p.eligible_categories().empty()) {
    errors.Add(prefix + "eligible_categories", "name at least one device category");
  }
  for (int i = 0; i < p.eligible_categories_size(); ++i) {
    const int v = p.eligible_categories(i);
    if (!v1::DeviceCategory_IsValid(v) || v == v1::DEVICE_CATEGORY_UNSPECIFIED) {
      errors.Add(absl::StrCat(prefix, "eligible_categories[", i, "]"), "unknown category");
    }
  }
  const auto& price = p.monthly_price();
  if (price.currency_code().size() != 3) {
    errors.Add(prefix + "monthly_price.currency_code", "must be an ISO 4217 code such as USD");
  }
  if (price.minor_units() < 0) errors.Add(prefix + "monthly_price.minor_units", "must not be negative");
  if (p.review_business_days() < 1 || p.review_business_days() > 60) {
    errors.Add(prefix + "review_business_days", "must be 1 to 60");
  }
  return errors.ToStatus();
}

absl::StatusOr<v1::ProtectionPlan> PlanCatalogue::Get(const std::string& plan_id) {
  auto rec = repo_->GetRecord(kSpace, plan_id);
  if (!rec.ok()) {
    if (absl::IsNotFound(rec.status())) return absl::NotFoundError(absl::StrCat("no plan ", plan_id));
    return rec.status();
  }
  v1::ProtectionPlan plan;
  if (!plan.ParseFromString(rec->value)) return absl::DataLossError(absl::StrCat("plan ", plan_id, " is damaged"));
  return Decorate(std::move(plan), rec->version);
}

absl::StatusOr<std::vector<v1::ProtectionPlan>> PlanCatalogue::List(const std::string& after_id,
                                                                    int limit) {
  auto recs = repo_->ListRecords(kSpace, after_id, limit);
  if (!recs.ok()) return recs.status();
  std::vector<v1::ProtectionPlan> out;
  for (const auto& rec : *recs) {
    v1::ProtectionPlan plan;
    if (!plan.ParseFromString(rec.value)) return absl::DataLossError(absl::StrCat("plan ", rec.key, " is damaged"));
    out.push_back(Decorate(std::move(plan), rec.version));
  }
  return out;
}

absl::StatusOr<v1::ProtectionPlan> PlanCatalogue::Put(v1::ProtectionPlan plan,
                                                      int64_t expected_version, bool allow_missing) {
  if (auto s = ValidatePlan(plan, "protection_plan."); !s.ok()) return s;
  if (!allow_missing) {
    auto current = Get(plan.plan_id());
    if (!current.ok()) return current.status();
  }
  const std::string id = plan.plan_id();
  plan.clear_name();
  plan.clear_etag();
  auto version = repo_->PutRecord(kSpace, id, expected_version, plan.SerializeAsString());
  if (absl::IsAborted(version.status())) {
    const std::string name = absl::StrCat("protectionPlans/", id);
    if (expected_version == 0) return absl::AlreadyExistsError(absl::StrCat(name, " already exists"));
    return EtagMismatch(name);
  }
  if (!version.ok()) return version.status();
  return Decorate(std::move(plan), *version);
}

}  // namespace casework::directory
