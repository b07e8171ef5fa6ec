// Delivery channels. A Notifier hands one rendered message to a receiver.
// Delivery is at least once: after a crash the same message (same
// dedupe_key) may be handed over again, so receivers drop repeats by key.
#ifndef CASEWORK_SERVER_NOTIFY_NOTIFIER_H_
#define CASEWORK_SERVER_NOTIFY_NOTIFIER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "casework/internal/records.pb.h"

namespace casework::notify {

class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual std::string name() const = 0;
  // OK: the receiver accepted the message. INVALID_ARGUMENT or
  // FAILED_PRECONDITION: it never will (dead-letter now). Anything else:
  // try again later. Must be thread-safe.
  virtual absl::Status Deliver(const internal::OutboxMessage& message) = 0;
};

// Writes one line per message to the structured log: channel, template,
// dedupe key; never the body or the recipient's address.
std::unique_ptr<Notifier> NewLogNotifier();

// Writes each message as a JSON file named after its dedupe key into
// `folder` (write to a temporary name, fsync, rename). A message whose file
// already exists is a repeat and is dropped, as any receiver would.
std::unique_ptr<Notifier> NewSpoolNotifier(const std::string& folder);

// Sends each message to every notifier registered for its channel; all
// must accept it.
class Router : public Notifier {
 public:
  void Add(v1::Channel channel, std::shared_ptr<Notifier> notifier);
  std::string name() const override { return "router"; }
  absl::Status Deliver(const internal::OutboxMessage& message) override;

 private:
  std::map<v1::Channel, std::vector<std::shared_ptr<Notifier>>> routes_;
};

std::string ChannelLabel(v1::Channel channel);

}  // namespace casework::notify

#endif  // CASEWORK_SERVER_NOTIFY_NOTIFIER_H_
