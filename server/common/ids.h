#ifndef CASEWORK_SERVER_COMMON_IDS_H_
#define CASEWORK_SERVER_COMMON_IDS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace casework {

// A new case id: 26 characters of Crockford base32, the first ten encoding
// the millisecond of `now` so that ids sort by creation time, the rest
// random. Thread-safe.
std::string NewCaseId(absl::Time now);

// True if `id` may be used as a client-chosen id: 4 to 63 characters of
// letters, digits and '-', starting with a letter or digit.
bool IsValidClientId(absl::string_view id);

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_IDS_H_
