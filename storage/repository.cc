#include "storage/repository.h"

namespace casework::storage {

absl::Status ForEachRecord(Repository& repo, const std::string& space,
                           const std::function<absl::Status(const StoredRecord&)>& visit) {
  constexpr int kPage = 500;
  std::string after;
  for (;;) {
    auto page = repo.ListRecords(space, after, kPage);
    if (!page.ok()) return page.status();
    for (const auto& record : *page) {
      if (auto st = visit(record); !st.ok()) return st;
    }
    if (page->size() < static_cast<size_t>(kPage)) return absl::OkStatus();
    after = page->back().key;
  }
}

}  // namespace casework::storage
