// caseworkd's configuration: a JSON file (protobuf JSON mapping of
// casework.internal.ServerConfig) plus command-line overrides.
#ifndef CASEWORK_SERVER_CONFIG_H_
#define CASEWORK_SERVER_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "casework/internal/config.pb.h"

namespace casework {

// Reads `path` (empty: no file). INVALID_ARGUMENT naming the problem for
// unknown fields or malformed JSON.
absl::StatusOr<internal::ServerConfig> LoadConfigFile(const std::string& path);

// The folders' defaults alone: the data folder, and the backup folder
// within it unless set. Finalize applies them too.
void DefaultFolders(internal::ServerConfig* config);

// The store's folder within the data folder.
std::string StoreFolder(const internal::ServerConfig& config);

// Fills defaults and checks values; refuses unknown settings (e.g. a
// durability other than "sync").
absl::StatusOr<internal::ServerConfig> Finalize(internal::ServerConfig config);

// Command-line flags of the server's binaries: true and `*value` set when
// `arg` is --<name>=<value>.
bool FlagValue(const std::string& arg, const char* name, std::string* value);

}  // namespace casework

#endif  // CASEWORK_SERVER_CONFIG_H_
