#include "server/engine/page_token.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/common/errors.h"

namespace casework::engine {
namespace {

constexpr char kVersion[] = "p1";

uint32_t Fnv1a(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

std::string Body(const std::string& scope, const std::string& position) {
  return absl::StrCat(kVersion, "\n", absl::WebSafeBase64Escape(scope), "\n",
                      absl::WebSafeBase64Escape(position));
}

}  // namespace

absl::StatusOr<int> PageLimit(int page_size) {
  if (page_size < 0) return InvalidField("page_size", "must not be negative");
  return page_size == 0 ? kDefaultPageSize : std::min(page_size, kMaxPageSize);
}

std::string EncodePageToken(const std::string& scope, const std::string& position) {
  const std::string body = Body(scope, position);
  return absl::WebSafeBase64Escape(absl::StrCat(body, "\n", Fnv1a(body)));
}

absl::StatusOr<std::string> DecodePageToken(const std::string& token,
                                            const std::string& scope) {
  if (token.empty()) return std::string();
  const absl::Status bad = InvalidField("page_token", "is not a token this query issued");
  std::string raw;
  if (token.size() > 4096 || !absl::WebSafeBase64Unescape(token, &raw)) return bad;
  std::vector<std::string> parts = absl::StrSplit(raw, '\n');
  if (parts.size() != 4 || parts[0] != kVersion) return bad;
  const std::string body = absl::StrCat(parts[0], "\n", parts[1], "\n", parts[2]);
  if (absl::StrCat(Fnv1a(body)) != parts[3]) return bad;
  std::string got_scope, position;
  if (!absl::WebSafeBase64Unescape(parts[1], &got_scope) ||
      !absl::WebSafeBase64Unescape(parts[2], &position) || got_scope != scope) {
    return bad;
  }
  return position;
}

}  // namespace casework::engine
