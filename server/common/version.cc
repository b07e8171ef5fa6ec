#include "server/common/version.h"

namespace casework {

// CASEWORK_VERSION is defined for this file alone (server/CMakeLists.txt),
// so that a new version rebuilds one file.
const char* Version() { return CASEWORK_VERSION; }

}  // namespace casework
