#include "tests/testing/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#ifndef CASEWORK_SOURCE_DIR
#error "CASEWORK_SOURCE_DIR must be defined"
#endif

namespace casework::testing {

ChildProcess::ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env,
                           std::string stderr_path) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) std::abort();
  pid_ = ::fork();
  if (pid_ < 0) std::abort();
  if (pid_ == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    if (!stderr_path.empty()) {
      int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (err >= 0) ::dup2(err, STDERR_FILENO);
    }
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  stdout_fd_ = out[0];
}

ChildProcess::~ChildProcess() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    Wait(absl::Seconds(10));
  }
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

std::string ChildProcess::ReadLine() {
  for (;;) {
    const size_t nl = buffered_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    char buf[256];
    const ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
    if (n <= 0) return "";
    buffered_.append(buf, static_cast<size_t>(n));
  }
}

void ChildProcess::Signal(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

int ChildProcess::Wait(absl::Duration timeout) {
  if (reaped_) return status_;
  const absl::Time until = absl::Now() + timeout;
  int status = 0;
  while (absl::Now() < until) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      status_ = status;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

bool ChildProcess::running() {
  if (reaped_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped_ = true;
    status_ = status;
  }
  return !reaped_;
}

Sink::Sink(const std::string& kind, const std::string& folder, std::vector<std::string> args)
    : folder_(folder) {
  std::vector<std::string> argv = {"/usr/bin/python3",
                                   std::string(CASEWORK_SOURCE_DIR) + "/tests/testing/sinks.py",
                                   kind, folder};
  argv.insert(argv.end(), args.begin(), args.end());
  process_ = std::make_unique<ChildProcess>(argv);
  const std::string line = process_->ReadLine();
  if (!absl::StartsWith(line, "port ") || !absl::SimpleAtoi(line.substr(5), &port_)) {
    port_ = 0;
  }
}

std::vector<std::string> Sink::Files(const std::string& suffix) const {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(folder_)) {
    const std::string name = e.path().filename().string();
    if (absl::EndsWith(name, suffix)) names.push_back(e.path().string());
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> out;
  for (const auto& n : names) {
    std::ifstream in(n, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    out.push_back(text.str());
  }
  return out;
}

bool Sink::WaitForFiles(const std::string& suffix, size_t n, absl::Duration timeout) const {
  const absl::Time until = absl::Now() + timeout;
  while (absl::Now() < until) {
    if (Files(suffix).size() >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  return path;
}

std::pair<std::string, std::string> MakeSelfSignedCert(const std::string& folder) {
  const std::string cert = folder + "/cert.pem";
  const std::string key = folder + "/key.pem";
  const std::string cmd = absl::StrCat(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 ",
      "-addext subjectAltName=IP:127.0.0.1 -keyout ", key, " -out ", cert, " 2>/dev/null");
  if (std::system(cmd.c_str()) != 0) return {"", ""};
  return {cert, key};
}

Pki MakePki(const std::string& folder, const std::string& client_name, int days) {
  Pki p;
  p.ca_cert = folder + "/ca.pem";
  const std::string ca_key = folder + "/ca.key";
  p.server_cert = folder + "/server.pem";
  p.server_key = folder + "/server.key";
  p.client_cert = folder + "/client.pem";
  p.client_key = folder + "/client.key";
  const std::string q = " 2>/dev/null";
  const std::vector<std::string> steps = {
      absl::StrCat("openssl req -x509 -newkey rsa:2048 -nodes -days ", days,
                   " -subj /CN=casework-test-ca -keyout ", ca_key, " -out ", p.ca_cert, q),
      absl::StrCat("openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout ", p.server_key,
                   " -out ", folder, "/server.csr", q),
      absl::StrCat("printf 'subjectAltName=IP:127.0.0.1\n' > ", folder, "/server.ext"),
      absl::StrCat("openssl x509 -req -in ", folder, "/server.csr -CA ", p.ca_cert, " -CAkey ", ca_key,
                   " -CAcreateserial -days ", days, " -extfile ", folder, "/server.ext -out ",
                   p.server_cert, q),
      absl::StrCat("openssl req -newkey rsa:2048 -nodes -subj /CN=", client_name, " -keyout ",
                   p.client_key, " -out ", folder, "/client.csr", q),
      absl::StrCat("openssl x509 -req -in ", folder, "/client.csr -CA ", p.ca_cert, " -CAkey ", ca_key,
                   " -CAcreateserial -days ", days, " -out ", p.client_cert, q),
  };
  for (const auto& cmd : steps) {
    if (std::system(cmd.c_str()) != 0) return Pki{};
  }
  return p;
}

std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  (void)!write(fd, request.data(), request.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int SpoilFiles(const std::string& folder, const std::string& suffix, int64_t offset) {
  int spoiled = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(folder)) {
    if (!entry.is_regular_file() || !absl::EndsWith(entry.path().string(), suffix)) continue;
    std::fstream file(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    char byte = 0;
    if (!file.seekg(offset).get(byte)) continue;
    file.seekp(offset).put(static_cast<char>(byte ^ 0x5a));
    spoiled += file.flush() ? 1 : 0;
  }
  return spoiled;
}

CommandResult RunCommand(const std::string& command) {
  FILE* p = ::popen(command.c_str(), "r");
  CommandResult result{-1, ""};
  if (p == nullptr) return result;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) result.out.append(buf, n);
  const int status = ::pclose(p);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

}  // namespace casework::testing
