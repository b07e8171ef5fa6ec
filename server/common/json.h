// The one JSON string escaper, for code that writes JSON by hand (log
// lines, webhook and gateway bodies).
#ifndef CASEWORK_SERVER_COMMON_JSON_H_
#define CASEWORK_SERVER_COMMON_JSON_H_

#include <string>

#include "absl/strings/string_view.h"

namespace casework {

// `s` escaped for use between JSON double quotes (quotes not included).
std::string JsonEscape(absl::string_view s);

// `s` as a JSON string literal, quotes included.
std::string JsonString(absl::string_view s);

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_JSON_H_
