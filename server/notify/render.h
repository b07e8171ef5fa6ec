// Template text with {{placeholder}} fields. Pure functions.
#ifndef CASEWORK_SERVER_NOTIFY_RENDER_H_
#define CASEWORK_SERVER_NOTIFY_RENDER_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace casework::notify {

// The placeholder names in `text`, in order of appearance. INVALID_ARGUMENT
// for an unclosed "{{", an empty name, or a name that is not
// [a-z0-9_]+.
absl::StatusOr<std::vector<std::string>> Placeholders(absl::string_view text);

// Replaces every {{name}} with values[name]. A placeholder without a value
// is an error (FAILED_PRECONDITION naming it), never a blank.
absl::StatusOr<std::string> Render(absl::string_view text,
                                   const std::map<std::string, std::string>& values);

}  // namespace casework::notify

#endif  // CASEWORK_SERVER_NOTIFY_RENDER_H_
