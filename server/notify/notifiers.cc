#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "server/common/log.h"
#include "server/notify/notifier.h"

namespace casework::notify {

std::string ChannelLabel(v1::Channel channel) {
  switch (channel) {
    case v1::CHANNEL_EMAIL: return "email";
    case v1::CHANNEL_CHAT: return "chat";
    case v1::CHANNEL_SMS: return "sms";
    case v1::CHANNEL_WEBHOOK: return "webhook";
    default: return "unspecified";
  }
}

namespace {

class LogNotifier : public Notifier {
 public:
  std::string name() const override { return kLogNotifier; }
  absl::Status Deliver(const internal::OutboxMessage& m) override {
    Log(LogLevel::kInfo, "notification_delivered",
        {{"channel", ChannelLabel(m.channel())},
         {"template", m.template_id()},
         {"case_id", m.case_id()},
         {"dedupe_key", m.dedupe_key()},
         {"delivered_to", absl::StrJoin(m.delivered_to(), ",")}});
    return absl::OkStatus();
  }
};

absl::Status Errno(absl::string_view what) {
  const int err = errno;
  std::string msg = absl::StrCat(what, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  return absl::UnavailableError(msg);
}

class SpoolNotifier : public Notifier {
 public:
  explicit SpoolNotifier(std::string folder) : folder_(std::move(folder)) {}
  std::string name() const override { return "spool"; }

  absl::Status Deliver(const internal::OutboxMessage& m) override {
    std::error_code ec;
    std::filesystem::create_directories(folder_, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("spool folder: ", ec.message()));
    const std::string final_path = absl::StrCat(folder_, "/", m.dedupe_key(), ".json");
    if (std::filesystem::exists(final_path, ec)) return absl::OkStatus();  // a repeat
    std::string json;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    if (!google::protobuf::util::MessageToJsonString(m, &json, options).ok()) {
      return absl::InvalidArgumentError("message cannot be written as JSON");
    }
    json += "\n";
    const std::string tmp = absl::StrCat(final_path, ".tmp");
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return Errno("open spool file");
    size_t done = 0;
    while (done < json.size()) {
      ssize_t n = ::write(fd, json.data() + done, json.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        absl::Status s = Errno("write spool file");
        ::close(fd);
        return s;
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
      absl::Status s = Errno("sync spool file");
      ::close(fd);
      return s;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) return Errno("rename spool file");
    int dir = ::open(folder_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
    return absl::OkStatus();
  }

 private:
  std::string folder_;
};

}  // namespace

std::unique_ptr<Notifier> NewLogNotifier() { return std::make_unique<LogNotifier>(); }

std::unique_ptr<Notifier> NewSpoolNotifier(const std::string& folder) {
  return std::make_unique<SpoolNotifier>(folder);
}

int RemoveSpooledCopies(const std::string& folder, const std::string& case_id) {
  std::error_code ec;
  int removed = 0;
  const std::string prefix = case_id + "-";
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    const std::string file = entry.path().filename().string();
    if (absl::StartsWith(file, prefix) && std::filesystem::remove(entry.path(), ec)) ++removed;
  }
  return removed;
}

}  // namespace casework::notify
