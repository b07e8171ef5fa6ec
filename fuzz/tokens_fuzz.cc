// Page tokens and etags come from clients: any bytes must be refused
// cleanly, and what the server issues must read back unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/engine/page_token.h"
#include "server/rpc/rpc_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  auto position = casework::engine::DecodePageToken(input, "tradeIns");
  if (position.ok()) {
    // A token that decodes is one the server could have issued.
    auto again = casework::engine::DecodePageToken(
        casework::engine::EncodePageToken("tradeIns", *position), "tradeIns");
    if (!again.ok() || *again != *position) std::abort();
  }
  // Whatever the input, an issued token for it decodes to it (positions
  // are case ids and keys, far below the 4 KiB token limit).
  if (size > 1024) return 0;
  auto round = casework::engine::DecodePageToken(
      casework::engine::EncodePageToken("claims", input), "claims");
  if (!round.ok() || *round != input) std::abort();
  if (casework::engine::DecodePageToken(casework::engine::EncodePageToken("claims", input),
                                        "tradeIns")
          .ok()) {
    std::abort();  // a token of one list is refused by another
  }
  // An etag is a positive version; empty means "none" (-1).
  auto version = casework::rpc::ParseEtag(input);
  if (version.ok() && (input.empty() ? *version != -1 : *version <= 0)) std::abort();
  return 0;
}
