// Opaque page tokens. A token names the query it belongs to (index and key)
// and where the previous page ended, with a checksum so that a damaged or
// foreign token is refused instead of silently listing something else.
#ifndef CASEWORK_SERVER_ENGINE_PAGE_TOKEN_H_
#define CASEWORK_SERVER_ENGINE_PAGE_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"

namespace casework::engine {

// The largest page a list returns, and the size of a page when the request
// leaves page_size at 0.
inline constexpr int kMaxPageSize = 500;
inline constexpr int kDefaultPageSize = 50;

// How many items a page of `page_size` holds. INVALID_ARGUMENT naming
// "page_size" when it is negative.
absl::StatusOr<int> PageLimit(int page_size);

std::string EncodePageToken(const std::string& scope, const std::string& position);

// The position encoded in `token` for `scope`. Empty token: empty position.
// INVALID_ARGUMENT naming "page_token" when the token is malformed or was
// issued for another query.
absl::StatusOr<std::string> DecodePageToken(const std::string& token,
                                            const std::string& scope);

}  // namespace casework::engine

#endif  // CASEWORK_SERVER_ENGINE_PAGE_TOKEN_H_
