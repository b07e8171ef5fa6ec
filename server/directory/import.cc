#include "server/directory/import.h"

namespace casework::directory {

absl::StatusOr<std::string> StagedRecords::Get(const std::string& space, const std::string& key) {
  auto it = staged_.find({space, key});
  if (it == staged_.end()) {
    auto stored = repo_->GetRecord(space, key);
    if (!stored.ok()) return stored.status();
    return std::move(stored->value);
  }
  if (it->second.erase) return absl::NotFoundError(absl::StrCat("no ", space, " record ", key));
  return it->second.value;
}

void StagedRecords::Stage(std::vector<storage::RecordWrite> writes) {
  for (auto& w : writes) {
    std::pair<std::string, std::string> id{w.space, w.key};
    staged_.insert_or_assign(std::move(id), std::move(w));
  }
}

absl::Status StagedRecords::Write() {
  if (staged_.empty()) return absl::OkStatus();
  std::vector<storage::RecordWrite> writes;
  writes.reserve(staged_.size());
  for (auto& [id, w] : staged_) writes.push_back(std::move(w));
  staged_.clear();
  return repo_->WriteRecords(writes);
}

}  // namespace casework::directory
