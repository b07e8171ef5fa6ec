// Threads named for what they do, as ps -L, top -H and perf show them.
#ifndef CASEWORK_SERVER_COMMON_THREAD_NAME_H_
#define CASEWORK_SERVER_COMMON_THREAD_NAME_H_

#include <string>

#include "absl/strings/string_view.h"

namespace casework {

// Names the calling thread. Linux keeps 15 characters; the rest is cut.
void NameThisThread(absl::string_view name);

// The calling thread's name.
std::string ThisThreadName();

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_THREAD_NAME_H_
