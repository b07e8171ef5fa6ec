// Child processes for tests: caseworkd itself (for kill -9 tests) and the
// loopback receivers of tests/testing/sinks.py.
#ifndef CASEWORK_TESTS_TESTING_PROCESS_H_
#define CASEWORK_TESTS_TESTING_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace casework::testing {

class ChildProcess {
 public:
  // Starts argv[0] with `argv` and the current environment plus `env`.
  // stdout is readable through ReadLine(); stderr goes to `stderr_path`
  // when given, else is inherited.
  ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
               std::string stderr_path = "");
  ~ChildProcess();  // SIGKILL and reap, if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next line of the child's stdout, without the newline; empty at end.
  std::string ReadLine();
  void Signal(int sig);
  // Waits for the child to end (at most `timeout`); returns its wait
  // status, or -1 on timeout.
  int Wait(absl::Duration timeout);
  bool running();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string buffered_;
  bool reaped_ = false;
  int status_ = 0;  // once reaped
};

// A receiver started from sinks.py; messages land in `folder`.
class Sink {
 public:
  // kind "smtp" or "http"; `args` are extra sinks.py options.
  Sink(const std::string& kind, const std::string& folder, std::vector<std::string> args = {});
  int port() const { return port_; }
  const std::string& folder() const { return folder_; }
  // Contents of the files in the folder ending in `suffix`, in name order.
  std::vector<std::string> Files(const std::string& suffix) const;
  // Waits until at least `n` such files exist (at most `timeout`).
  bool WaitForFiles(const std::string& suffix, size_t n, absl::Duration timeout) const;

 private:
  std::string folder_;
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
};

// A free TCP port on 127.0.0.1 (bound and released; for child processes
// that need a fixed --listen).
int FreePort();

// Writes `text` to `path`; returns path.
std::string WriteFile(const std::string& path, const std::string& text);

// A self-signed certificate for 127.0.0.1 made with openssl: {cert, key}.
std::pair<std::string, std::string> MakeSelfSignedCert(const std::string& folder);

// A test CA with a server certificate for 127.0.0.1 and a client
// certificate with common name `client_name`, made with openssl; the
// certificates are valid for `days`.
struct Pki {
  std::string ca_cert;
  std::string server_cert, server_key;
  std::string client_cert, client_key;
};
Pki MakePki(const std::string& folder, const std::string& client_name, int days = 2);

// The whole answer (status line, headers, body) to an HTTP/1.0 GET of
// `path` on 127.0.0.1:`port`; empty when it cannot connect.
std::string HttpGet(int port, const std::string& path);

// The whole content of a file.
std::string ReadFile(const std::string& path);

// Changes one byte, at `offset`, of every file below `folder` whose name
// ends in `suffix`, keeping its size (what a failing disk does); returns
// how many files it changed.
int SpoilFiles(const std::string& folder, const std::string& suffix, int64_t offset);

// A command run through the shell to its end: its exit code (-1 if it did
// not exit normally) and what it wrote to stdout.
struct CommandResult {
  int exit_code;
  std::string out;
};
CommandResult RunCommand(const std::string& command);

}  // namespace casework::testing

#endif  // CASEWORK_TESTS_TESTING_PROCESS_H_
