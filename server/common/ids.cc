#include "server/common/ids.h"

#include <random>

#include "absl/strings/ascii.h"

namespace casework {
namespace {
constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
}  // namespace

std::string NewCaseId(absl::Time now) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  uint64_t ms = static_cast<uint64_t>(absl::ToUnixMillis(now));
  std::string id(26, '0');
  for (int i = 9; i >= 0; --i) {
    id[i] = kAlphabet[ms & 31];
    ms >>= 5;
  }
  uint64_t a = rng(), b = rng();
  for (int i = 10; i < 26; ++i) {
    uint64_t& src = i < 22 ? a : b;
    id[i] = kAlphabet[src & 31];
    src >>= 5;
  }
  return id;
}

bool IsValidClientId(absl::string_view id) {
  if (id.size() < 4 || id.size() > 63) return false;
  if (!absl::ascii_isalnum(static_cast<unsigned char>(id[0]))) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

}  // namespace casework
