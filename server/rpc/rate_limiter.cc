#include "server/rpc/rate_limiter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace casework::rpc {

absl::Status RateLimiter::Admit(const std::string& principal, absl::Time now) {
  if (rate_ <= 0) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, fresh] = buckets_.try_emplace(principal, Bucket{burst_, now});
  Bucket& b = it->second;
  if (!fresh) {
    b.tokens = std::min(burst_, b.tokens + absl::ToDoubleSeconds(now - b.last) * rate_);
    b.last = std::max(b.last, now);
  }
  if (b.tokens < 1) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "rate limit: ", principal, " may make ", rate_, " requests per second; retry shortly"));
  }
  b.tokens -= 1;
  return absl::OkStatus();
}

}  // namespace casework::rpc
