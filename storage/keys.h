// Byte layouts of the keys in the RocksDB store. Integers that order keys
// are big-endian so that byte order equals numeric order.
#ifndef CASEWORK_STORAGE_KEYS_H_
#define CASEWORK_STORAGE_KEYS_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace casework::storage {

std::string EncodeInt64(int64_t v);          // 8 bytes, little-endian
int64_t DecodeInt64(absl::string_view bytes);  // 0 if shorter than 8 bytes
std::string EncodeBigEndian64(uint64_t v);
uint64_t DecodeBigEndian64(absl::string_view bytes);

// The smallest string greater than every string that starts with `prefix`
// (empty when there is none, i.e. the prefix is all 0xff).
std::string PrefixUpperBound(absl::string_view prefix);

// events: case_id NUL seq(BE64)
std::string EventKey(absl::string_view case_id, int64_t sequence);
// index: index NUL key NUL case_id
std::string IndexPrefix(absl::string_view index, absl::string_view key);
std::string IndexKeyBytes(absl::string_view index, absl::string_view key,
                          absl::string_view case_id);
// unique: space NUL key
std::string UniqueKeyBytes(absl::string_view space, absl::string_view key);
// queue: tag due_us(BE64) case_id NUL name
std::string QueueKeyPrefix(char tag, absl::Time due);
std::string QueueKey(char tag, absl::Time due, absl::string_view case_id,
                     absl::string_view name);
bool ParseQueueKey(absl::string_view key, absl::Time* due, std::string* case_id,
                   std::string* name);
// queue_ref: tag case_id NUL name
std::string QueueRefKey(char tag, absl::string_view case_id,
                        absl::string_view name);
std::string AttachmentKey(absl::string_view case_id, absl::string_view id);
std::string DeadKey(absl::string_view case_id, absl::string_view name);
std::string RecordKey(absl::string_view space, absl::string_view key);

// Names of the lock stripes guarding a case, a unique key and a record.
std::string CaseLockKey(absl::string_view case_id);
std::string UniqueLockKey(absl::string_view space, absl::string_view key);
std::string RecordLockKey(absl::string_view space, absl::string_view key);

}  // namespace casework::storage

#endif  // CASEWORK_STORAGE_KEYS_H_
