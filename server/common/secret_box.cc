#include "server/common/secret_box.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/common/files.h"

namespace casework {
namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

struct CipherDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Cipher = std::unique_ptr<EVP_CIPHER_CTX, CipherDeleter>;

const unsigned char* U(absl::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace

absl::StatusOr<std::unique_ptr<SecretBox>> SecretBox::FromText(const std::string& text) {
  auto box = std::unique_ptr<SecretBox>(new SecretBox());
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    std::string key;
    if (f.size() != 2 || !absl::Base64Unescape(f[1], &key) || key.size() != kKeyBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "secret key file line ", line_no, ": expected `KEY_ID BASE64` with a 32-byte key"));
    }
    if (!box->keys_.emplace(f[0], key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("secret key file line ", line_no, ": key id ", f[0], " appears twice"));
    }
    if (box->current_.empty()) box->current_ = f[0];
  }
  if (box->current_.empty()) return absl::InvalidArgumentError("secret key file holds no key");
  return box;
}

absl::StatusOr<std::unique_ptr<SecretBox>> SecretBox::Load(const std::string& path, bool create) {
  auto existing = ReadWholeFile(path);
  if (!existing) {
    if (!create) {
      // A configured path is never created: a mistyped one must not start
      // sealing under a new key that no backup holds.
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read secret key file ", path,
                       "; a configured key file is not created, make one with `(umask 077; ",
                       "echo \"k1 $(openssl rand -base64 32)\" > ", path, ")`"));
    }
    std::string key(kKeyBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), kKeyBytes) != 1) {
      return absl::InternalError("no randomness for a secret key");
    }
    const std::string text = absl::StrCat("# casework secret keys; the first one seals\nk1 ",
                                          absl::Base64Escape(key), "\n");
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot create secret key file ", path));
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) return absl::UnavailableError(absl::StrCat("cannot write secret key file ", path));
    return FromText(text);
  }
  return FromText(*existing);
}

absl::StatusOr<SealedSecret> SecretBox::Seal(absl::string_view plaintext,
                                             absl::string_view context) const {
  SealedSecret out;
  out.key_id = current_;
  out.nonce.resize(kNonceBytes);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.nonce.data()), kNonceBytes) != 1) {
    return absl::InternalError("no randomness for a nonce");
  }
  const std::string& key = keys_.at(current_);
  Cipher ctx(EVP_CIPHER_CTX_new());
  out.ciphertext.resize(plaintext.size() + kTagBytes);
  int len = 0, total = 0;
  bool ok = ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
            EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, U(key), U(out.nonce)) == 1 &&
            EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(context), static_cast<int>(context.size())) == 1;
  auto* cipher = reinterpret_cast<unsigned char*>(out.ciphertext.data());
  ok = ok && EVP_EncryptUpdate(ctx.get(), cipher, &len, U(plaintext), static_cast<int>(plaintext.size())) == 1;
  total = len;
  ok = ok && EVP_EncryptFinal_ex(ctx.get(), cipher + total, &len) == 1;
  total += len;
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, cipher + total) == 1;
  if (!ok) return absl::InternalError("sealing a secret failed");
  out.ciphertext.resize(total + kTagBytes);
  return out;
}

absl::StatusOr<std::string> SecretBox::Open(const SealedSecret& sealed, absl::string_view context) const {
  auto key = keys_.find(sealed.key_id);
  if (key == keys_.end()) {
    return absl::DataLossError(absl::StrCat("secret sealed with unknown key ", sealed.key_id));
  }
  if (sealed.nonce.size() != kNonceBytes || sealed.ciphertext.size() < kTagBytes) {
    return absl::DataLossError("sealed secret is damaged");
  }
  const size_t body = sealed.ciphertext.size() - kTagBytes;
  std::string plain(body, '\0');
  Cipher ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  std::string tag = sealed.ciphertext.substr(body);
  bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
            EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, U(key->second), U(sealed.nonce)) == 1 &&
            EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(context), static_cast<int>(context.size())) == 1 &&
            EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                              U(sealed.ciphertext), static_cast<int>(body)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
            EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len, &len) == 1;
  if (!ok) return absl::DataLossError("sealed secret does not open: damaged or moved");
  return plain;
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), len));
}

}  // namespace casework
