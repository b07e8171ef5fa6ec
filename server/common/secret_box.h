// Secrets at rest (unlock codes, passwords): AES-256-GCM under keys from a
// key file. Each sealed value names the key that sealed it, so keys can be
// rotated: put the new key first (it seals from then on), keep the old ones
// after it until every case has been written again.
//
// Key file: one key per line, "{key id} {base64 of 32 random bytes}";
// '#' starts a comment. The first key is the current one.
#ifndef CASEWORK_SERVER_COMMON_SECRET_BOX_H_
#define CASEWORK_SERVER_COMMON_SECRET_BOX_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace casework {

struct SealedSecret {
  std::string key_id;
  std::string nonce;       // 12 bytes
  std::string ciphertext;  // ciphertext followed by the 16-byte tag
};

class SecretBox {
 public:
  // Reads a key file. With `create`, a missing file is created with one
  // fresh key (mode 0600). INVALID_ARGUMENT naming the line of a bad key.
  static absl::StatusOr<std::unique_ptr<SecretBox>> Load(const std::string& path, bool create);
  // From key file text (tests).
  static absl::StatusOr<std::unique_ptr<SecretBox>> FromText(const std::string& text);

  // `context` (e.g. case id and secret name) is bound to the ciphertext: a
  // value copied elsewhere does not open.
  absl::StatusOr<SealedSecret> Seal(absl::string_view plaintext, absl::string_view context) const;
  // DATA_LOSS when the key is unknown or the value or context was altered.
  absl::StatusOr<std::string> Open(const SealedSecret& sealed, absl::string_view context) const;

  const std::string& current_key_id() const { return current_; }

 private:
  std::map<std::string, std::string> keys_;  // id -> 32 bytes
  std::string current_;
};

// SHA-256 of `data` as 64 lower-case hex digits.
std::string Sha256Hex(absl::string_view data);

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_SECRET_BOX_H_
