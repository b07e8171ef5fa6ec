// Structured logging: one JSON object per line on stderr. Callers pass only
// identifiers and codes; personal data and secrets are never logged, and
// values under keys that name personal data are masked as a second line of
// defence.
#ifndef CASEWORK_SERVER_COMMON_LOG_H_
#define CASEWORK_SERVER_COMMON_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace casework {

enum class LogLevel { kInfo, kWarning, kError };

using LogField = std::pair<absl::string_view, std::string>;

void Log(LogLevel level, absl::string_view event,
         std::initializer_list<LogField> fields = {});

// Masks a value for logs: keeps a short hint ("j***@e***.com", "***1234").
std::string Redact(absl::string_view value);

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_LOG_H_
