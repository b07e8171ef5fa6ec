#ifndef CASEWORK_TESTS_TESTING_TEMP_DIR_H_
#define CASEWORK_TESTS_TESTING_TEMP_DIR_H_

#include <string>

namespace casework::testing {

// A fresh folder under $TMPDIR (or /tmp), removed with its contents when
// the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace casework::testing

#endif  // CASEWORK_TESTS_TESTING_TEMP_DIR_H_
