// Finding a customer's directory records for an erase of personal data.
#ifndef CASEWORK_SERVER_DIRECTORY_ERASE_H_
#define CASEWORK_SERVER_DIRECTORY_ERASE_H_

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "server/common/personal_data.h"
#include "storage/repository.h"

namespace casework::directory {

// Records of `space`, stored as message M, that name any of `subjects`
// (see PersonalSubjects), as (key, record). Reads the whole space: erases
// are rare and directories have no index by address.
template <typename M>
absl::StatusOr<std::vector<std::pair<std::string, M>>> RecordsNaming(
    storage::Repository* repo, const std::string& space, const std::set<std::string>& subjects) {
  std::vector<std::pair<std::string, M>> out;
  absl::Status st = storage::ForEachRecord(*repo, space, [&](const storage::StoredRecord& r) {
    M m;
    if (!m.ParseFromString(r.value)) {
      return absl::DataLossError(absl::StrCat(space, " record ", r.key, " is damaged"));
    }
    for (const auto& s : PersonalSubjects(m)) {
      if (subjects.count(s)) {
        out.emplace_back(r.key, std::move(m));
        break;
      }
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

}  // namespace casework::directory

#endif  // CASEWORK_SERVER_DIRECTORY_ERASE_H_
