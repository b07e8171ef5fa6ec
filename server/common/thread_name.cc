#include "server/common/thread_name.h"

#include <pthread.h>

namespace casework {

namespace {
constexpr size_t kMaxLength = 15;  // the kernel's limit, without the NUL
}  // namespace

void NameThisThread(absl::string_view name) {
  const std::string cut(name.substr(0, kMaxLength));
  pthread_setname_np(pthread_self(), cut.c_str());
}

std::string ThisThreadName() {
  char name[kMaxLength + 1] = {};
  if (pthread_getname_np(pthread_self(), name, sizeof(name)) != 0) return "";
  return name;
}

}  // namespace casework
