#include "server/common/log.h"

#include <cstdio>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/common/json.h"
#include "server/common/personal_data.h"

namespace casework {

std::string Redact(absl::string_view value) {
  if (value.empty()) return "";
  size_t at = value.find('@');
  if (at != absl::string_view::npos) {
    size_t dot = value.rfind('.');
    std::string tld = dot != absl::string_view::npos && dot > at
                          ? std::string(value.substr(dot))
                          : "";
    return absl::StrCat(value.substr(0, 1), "***@***", tld);
  }
  return "***";
}

void Log(LogLevel level, absl::string_view event,
         std::initializer_list<LogField> fields) {
  static std::mutex mu;
  const char* level_name = level == LogLevel::kInfo      ? "info"
                           : level == LogLevel::kWarning ? "warning"
                                                         : "error";
  std::string line = absl::StrCat(
      "{\"time\":\"", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
      "\",\"level\":\"", level_name, "\",\"event\":\"", JsonEscape(event), "\"");
  for (const auto& [key, value] : fields) {
    const std::string shown = IsPersonalKey(key) ? Redact(value) : value;
    absl::StrAppend(&line, ",\"", JsonEscape(key), "\":\"", JsonEscape(shown), "\"");
  }
  line += "}\n";
  std::lock_guard<std::mutex> lock(mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace casework
