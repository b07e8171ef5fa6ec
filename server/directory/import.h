// Bulk import of directory entries from JSON lines (protobuf JSON, one
// entry per line; enum values by full or short name). Each row is put
// whole or not at all; every failing row is reported with its line and the
// fields at fault.
#ifndef CASEWORK_SERVER_DIRECTORY_IMPORT_H_
#define CASEWORK_SERVER_DIRECTORY_IMPORT_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/rpc/error_details.pb.h"
#include "server/common/enum_names.h"
#include "server/common/errors.h"

namespace casework::directory {

// `put` validates and writes one entry; its field violations are expected
// under `field_prefix` (e.g. "account.") and reported without it. `Response`
// has imported, failed and errors (line, field, description).
template <typename Message, typename Response>
Response ImportJsonLines(const std::string& json_lines, const std::string& field_prefix,
                         const std::function<absl::Status(Message)>& put) {
  Response out;
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
    absl::Status s = parsed.ok() ? put(std::move(entry))
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
  return out;
}

}  // namespace casework::directory

#endif  // CASEWORK_SERVER_DIRECTORY_IMPORT_H_
