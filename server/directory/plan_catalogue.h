// The protection plan catalogue, stored as versioned records.
#ifndef CASEWORK_SERVER_DIRECTORY_PLAN_CATALOGUE_H_
#define CASEWORK_SERVER_DIRECTORY_PLAN_CATALOGUE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "casework/v1/protection.pb.h"
#include "storage/repository.h"

namespace casework::directory {

absl::Status ValidatePlan(const v1::ProtectionPlan& plan, const std::string& prefix);

class PlanCatalogue {
 public:
  explicit PlanCatalogue(storage::Repository* repo) : repo_(repo) {}
  // NOT_FOUND naming the plan.
  absl::StatusOr<v1::ProtectionPlan> Get(const std::string& plan_id);
  absl::StatusOr<std::vector<v1::ProtectionPlan>> List(const std::string& after_id, int limit);
  // `expected_version` < 0 skips the etag check and 0 creates only;
  // NOT_FOUND when missing and not `allow_missing`; ALREADY_EXISTS when
  // creating one that exists.
  absl::StatusOr<v1::ProtectionPlan> Put(v1::ProtectionPlan plan, int64_t expected_version,
                                         bool allow_missing);

 private:
  storage::Repository* repo_;
};

}  // namespace casework::directory

#endif  // CASEWORK_SERVER_DIRECTORY_PLAN_CATALOGUE_H_
