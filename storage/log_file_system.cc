#include "storage/log_file_system.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/strings/match.h"
#include "rocksdb/file_system.h"

namespace casework::storage {
namespace {

class ZeroAheadLogFile;

// The log files open for writing, by path. Their length on disk runs
// ahead of their records, so every size RocksDB asks of the file system
// for one of them is its records' length: a backup copies a live log up
// to the size it was given when the backup began, which must not take in
// records written since, nor the zeros past them.
class OpenLogs {
 public:
  void Add(const std::string& path, const ZeroAheadLogFile* file) {
    std::lock_guard<std::mutex> lock(mu_);
    open_[path] = file;
  }
  void Remove(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    open_.erase(path);
  }
  // Sets *size to the records' length of the log open at `path`; false
  // when no log is open there.
  bool RecordsSize(const std::string& path, uint64_t* size) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, const ZeroAheadLogFile*> open_;
};

// A log file that keeps zeros written ahead of its end. `fd_` is a second
// descriptor of the same file: the zeros go through it with pwrite, at
// offsets past everything RocksDB has appended, so RocksDB's own descriptor
// and its file position are left alone. The page cache is the file's, so
// RocksDB's sync writes the zeros out with its data.
class ZeroAheadLogFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  ZeroAheadLogFile(std::unique_ptr<rocksdb::FSWritableFile> file, int fd, std::string path,
                   OpenLogs* open)
      : FSWritableFileOwnerWrapper(std::move(file)), fd_(fd), path_(std::move(path)), open_(open) {
    open_->Add(path_, this);
  }

  ~ZeroAheadLogFile() override { Release(); }

  uint64_t records() const { return size_.load(); }

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    ZeroAhead(data.size());
    rocksdb::IOStatus s = target()->Append(data, options, dbg);
    if (s.ok()) size_ += data.size();
    return s;
  }

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    ZeroAhead(data.size());
    rocksdb::IOStatus s = target()->Append(data, options, info, dbg);
    if (s.ok()) size_ += data.size();
    return s;
  }

  rocksdb::IOStatus Close(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->Close(options, dbg);
    // Zeros past the last record are harmless, but a closed log need not
    // keep them.
    if (fd_ >= 0 && zeroed_ > size_ && ::ftruncate(fd_, static_cast<off_t>(size_.load())) != 0 &&
        s.ok()) {
      s = rocksdb::IOStatus::IOError("cut the write-ahead log back to its records");
    }
    Release();
    return s;
  }

 private:
  // Makes sure the next `n` bytes land on zeros already in the file,
  // extending it by whole chunks. If the zeros cannot be written (a full
  // disk), the file goes on growing by appends alone, as RocksDB's would:
  // the append itself then reports the error.
  void ZeroAhead(size_t n) {
    const uint64_t size = size_.load();
    if (fd_ < 0 || size + n <= zeroed_) return;
    static const char kZeros[kLogZeroChunk] = {};
    uint64_t end = zeroed_;
    while (end < size + n) end += kLogZeroChunk;
    for (uint64_t at = zeroed_; at < end;) {
      ssize_t wrote = ::pwrite(fd_, kZeros, std::min<uint64_t>(end - at, kLogZeroChunk),
                               static_cast<off_t>(at));
      if (wrote < 0 && errno == EINTR) continue;
      if (wrote <= 0) {
        ::close(fd_);
        fd_ = -1;
        return;
      }
      at += static_cast<uint64_t>(wrote);
    }
    zeroed_ = end;
  }

  // Closes the second descriptor and takes the file off the open logs.
  void Release() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (open_ != nullptr) open_->Remove(path_);
    open_ = nullptr;
  }

  int fd_;
  const std::string path_;
  OpenLogs* open_;
  std::atomic<uint64_t> size_{0};  // bytes RocksDB has appended
  uint64_t zeroed_ = 0;            // the file's length: records, then zeros
};

bool OpenLogs::RecordsSize(const std::string& path, uint64_t* size) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(path);
  if (it == open_.end()) return false;
  *size = it->second->records();
  return true;
}

class LogAheadFileSystem : public rocksdb::FileSystemWrapper {
 public:
  LogAheadFileSystem() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}

  static const char* kClassName() { return "CaseworkLogAheadFileSystem"; }
  const char* Name() const override { return kClassName(); }

  // RocksDB makes each write-ahead log, "NNNNNN.log", with NewWritableFile
  // (it would reuse old ones only with recycle_log_file_num, which the
  // store leaves off).
  rocksdb::IOStatus NewWritableFile(const std::string& path, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewWritableFile(path, options, result, dbg);
    if (!s.ok() || !absl::EndsWith(path, ".log") || options.use_direct_writes) return s;
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return s;  // the log works without zeros ahead, only slower
    *result = std::make_unique<ZeroAheadLogFile>(std::move(*result), fd, path, &open_);
    return s;
  }

  rocksdb::IOStatus GetFileSize(const std::string& path, const rocksdb::IOOptions& options,
                                uint64_t* size, rocksdb::IODebugContext* dbg) override {
    if (open_.RecordsSize(path, size)) return rocksdb::IOStatus::OK();
    return target()->GetFileSize(path, options, size, dbg);
  }

  rocksdb::IOStatus GetChildrenFileAttributes(const std::string& dir,
                                              const rocksdb::IOOptions& options,
                                              std::vector<rocksdb::FileAttributes>* result,
                                              rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->GetChildrenFileAttributes(dir, options, result, dbg);
    if (s.ok()) {
      for (auto& file : *result) open_.RecordsSize(dir + "/" + file.name, &file.size_bytes);
    }
    return s;
  }

 private:
  OpenLogs open_;
};

}  // namespace

rocksdb::Env* LogAheadEnv() {
  static rocksdb::Env* const env =
      rocksdb::NewCompositeEnv(std::make_shared<LogAheadFileSystem>()).release();
  return env;
}

}  // namespace casework::storage
