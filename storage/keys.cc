#include "storage/keys.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace casework::storage {

std::string EncodeInt64(int64_t v) {
  std::string out(8, '\0');
  uint64_t u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((u >> (8 * i)) & 0xff);
  return out;
}

int64_t DecodeInt64(absl::string_view bytes) {
  if (bytes.size() < 8) return 0;
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) {
    u |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  }
  return static_cast<int64_t>(u);
}

std::string EncodeBigEndian64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[7 - i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

uint64_t DecodeBigEndian64(absl::string_view bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < bytes.size(); ++i) {
    v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  }
  return v;
}

std::string PrefixUpperBound(absl::string_view prefix) {
  std::string out(prefix);
  while (!out.empty()) {
    unsigned char last = static_cast<unsigned char>(out.back());
    if (last != 0xff) {
      out.back() = static_cast<char>(last + 1);
      return out;
    }
    out.pop_back();
  }
  return out;
}

std::string EventKey(absl::string_view case_id, int64_t sequence) {
  return absl::StrCat(case_id, absl::string_view("\0", 1),
                      EncodeBigEndian64(static_cast<uint64_t>(sequence)));
}

std::string IndexPrefix(absl::string_view index, absl::string_view key) {
  const absl::string_view nul("\0", 1);
  return absl::StrCat(index, nul, key, nul);
}

std::string IndexKeyBytes(absl::string_view index, absl::string_view key,
                          absl::string_view case_id) {
  return absl::StrCat(IndexPrefix(index, key), case_id);
}

std::string UniqueKeyBytes(absl::string_view space, absl::string_view key) {
  return absl::StrCat(space, absl::string_view("\0", 1), key);
}

namespace {
uint64_t DueMicros(absl::Time due) {
  int64_t us = absl::ToUnixMicros(due);
  return us < 0 ? 0 : static_cast<uint64_t>(us);
}
}  // namespace

std::string QueueKeyPrefix(char tag, absl::Time due) {
  return absl::StrCat(absl::string_view(&tag, 1), EncodeBigEndian64(DueMicros(due)));
}

std::string QueueKey(char tag, absl::Time due, absl::string_view case_id,
                     absl::string_view name) {
  return absl::StrCat(QueueKeyPrefix(tag, due), case_id,
                      absl::string_view("\0", 1), name);
}

bool ParseQueueKey(absl::string_view key, absl::Time* due, std::string* case_id,
                   std::string* name) {
  if (key.size() < 10) return false;
  *due = absl::FromUnixMicros(
      static_cast<int64_t>(DecodeBigEndian64(key.substr(1, 8))));
  absl::string_view rest = key.substr(9);
  size_t nul = rest.find('\0');
  if (nul == absl::string_view::npos) return false;
  *case_id = std::string(rest.substr(0, nul));
  *name = std::string(rest.substr(nul + 1));
  return true;
}

std::string QueueRefKey(char tag, absl::string_view case_id,
                        absl::string_view name) {
  return absl::StrCat(absl::string_view(&tag, 1), case_id,
                      absl::string_view("\0", 1), name);
}

std::string AttachmentKey(absl::string_view case_id, absl::string_view id) {
  return absl::StrCat(case_id, absl::string_view("\0", 1), id);
}

std::string DeadKey(absl::string_view case_id, absl::string_view name) {
  return absl::StrCat(case_id, absl::string_view("\0", 1), name);
}

std::string RecordKey(absl::string_view space, absl::string_view key) {
  return absl::StrCat(space, absl::string_view("\0", 1), key);
}

std::string CaseLockKey(absl::string_view case_id) {
  return absl::StrCat("c:", case_id);
}

std::string UniqueLockKey(absl::string_view space, absl::string_view key) {
  return absl::StrCat("u:", space, absl::string_view("\0", 1), key);
}

std::string RecordLockKey(absl::string_view space, absl::string_view key) {
  return absl::StrCat("r:", space, absl::string_view("\0", 1), key);
}

}  // namespace casework::storage
