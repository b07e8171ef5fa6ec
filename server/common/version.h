// The release these programs were built from: the project's version in
// CMakeLists.txt. caseworkd and casectl print it for --version, the server
// logs it at start and exports it as casework_build_info.
#ifndef CASEWORK_SERVER_COMMON_VERSION_H_
#define CASEWORK_SERVER_COMMON_VERSION_H_

namespace casework {

const char* Version();

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_VERSION_H_
