// A token bucket per principal: `rate` requests per second on average,
// bursts up to `burst`. Thread-safe.
#ifndef CASEWORK_SERVER_RPC_RATE_LIMITER_H_
#define CASEWORK_SERVER_RPC_RATE_LIMITER_H_

#include <mutex>
#include <string>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace casework::rpc {

class RateLimiter {
 public:
  // rate <= 0: no limit.
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}

  // OK, or RESOURCE_EXHAUSTED when `principal` has used up its budget.
  absl::Status Admit(const std::string& principal, absl::Time now);

 private:
  struct Bucket {
    double tokens;
    absl::Time last;
  };
  const double rate_;
  const double burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mu_
};

}  // namespace casework::rpc

#endif  // CASEWORK_SERVER_RPC_RATE_LIMITER_H_
