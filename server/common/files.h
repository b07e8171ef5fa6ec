// Reading small files whole (configuration, keys, certificates, tokens).
#ifndef CASEWORK_SERVER_COMMON_FILES_H_
#define CASEWORK_SERVER_COMMON_FILES_H_

#include <optional>
#include <string>

namespace casework {

// The file's content; nullopt when it cannot be opened. Callers say which
// file it was in their own error.
std::optional<std::string> ReadWholeFile(const std::string& path);

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_FILES_H_
