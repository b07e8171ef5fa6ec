// Bulk import of directory entries from JSON lines (protobuf JSON, one
// entry per line; enum values by full or short name). Each row is taken
// whole or not at all; every failing row is reported with its line and the
// fields at fault. The rows taken are written together, in one synced write
// at the end of the call.
#ifndef CASEWORK_SERVER_DIRECTORY_IMPORT_H_
#define CASEWORK_SERVER_DIRECTORY_IMPORT_H_

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/rpc/error_details.pb.h"
#include "server/common/enum_names.h"
#include "server/common/errors.h"
#include "storage/repository.h"

namespace casework::directory {

// Record writes gathered before they are stored. A read sees the writes
// staged so far, then the store.
class StagedRecords {
 public:
  explicit StagedRecords(storage::Repository* repo) : repo_(repo) {}

  // The record's value as staged, else as stored; NOT_FOUND when neither
  // has it (or a staged write deletes it).
  absl::StatusOr<std::string> Get(const std::string& space, const std::string& key);
  // A later write of a key replaces an earlier one.
  void Stage(std::vector<storage::RecordWrite> writes);
  // Writes what is staged in one atomic, synced write, and forgets it.
  absl::Status Write();

 private:
  storage::Repository* repo_;
  std::map<std::pair<std::string, std::string>, storage::RecordWrite> staged_;
};

// `stage` checks one entry and stages its writes (all of them or, with an
// error, none); its field violations are expected under `field_prefix`
// (e.g. "account.") and reported without it. `Response` has imported,
// failed and errors (line, field, description). An error of the final
// write fails the whole call, with nothing written.
template <typename Message, typename Response>
absl::StatusOr<Response> ImportJsonLines(storage::Repository* repo, const std::string& json_lines,
                                         const std::string& field_prefix,
                                         const std::function<absl::Status(Message, StagedRecords*)>& stage) {
  Response out;
  StagedRecords staged(repo);
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(json_lines, '\n')) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == absl::string_view::npos) continue;
    auto add_error = [&](const std::string& field, const std::string& description) {
      auto* e = out.add_errors();
      e->set_line(line_no);
      e->set_field(field);
      e->set_description(description);
    };
    Message entry;
    const absl::Status parsed = JsonToMessage(line, &entry);
    absl::Status s = parsed.ok() ? stage(std::move(entry), &staged)
                                 : absl::InvalidArgumentError(
                                       absl::StrCat("not a valid entry in JSON: ", parsed.message()));
    if (s.ok()) {
      out.set_imported(out.imported() + 1);
      continue;
    }
    out.set_failed(out.failed() + 1);
    google::rpc::BadRequest bad;
    auto payload = s.GetPayload(kBadRequestUrl);
    if (payload && bad.ParseFromString(std::string(*payload)) && bad.field_violations_size() > 0) {
      for (const auto& v : bad.field_violations()) {
        const std::string& f = v.field();
        add_error(f.rfind(field_prefix, 0) == 0 ? f.substr(field_prefix.size()) : f,
                  v.description());
      }
    } else {
      add_error("", std::string(s.message()));
    }
  }
  if (auto s = staged.Write(); !s.ok()) return s;
  return out;
}

}  // namespace casework::directory

#endif  // CASEWORK_SERVER_DIRECTORY_IMPORT_H_
