// Delivery channels. A Notifier hands one rendered message to a receiver.
// Delivery is at least once: after a crash the same message (same
// dedupe_key) may be handed over again, so every channel passes the key on
// (Message-ID, a header, the body) for receivers to drop repeats.
#ifndef CASEWORK_SERVER_NOTIFY_NOTIFIER_H_
#define CASEWORK_SERVER_NOTIFY_NOTIFIER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "casework/internal/config.pb.h"
#include "casework/internal/records.pb.h"

namespace casework::notify {

class Notifier {
 public:
  virtual ~Notifier() = default;
  // How routes refer to it: "smtp", "chat", "sms", "spool", "log",
  // "webhook:{name}".
  virtual std::string name() const = 0;
  // OK: the receiver accepted the message. INVALID_ARGUMENT or
  // FAILED_PRECONDITION: it never will (dead-letter now). Anything else:
  // try again later. Must be thread-safe.
  virtual absl::Status Deliver(const internal::OutboxMessage& message) = 0;
};

// Writes one line per delivered message to the structured log: channel,
// template, dedupe key and the notifiers that took it; never the body or the
// recipient's address. A route's other notifiers come first (see
// Router::Deliver), so the line is written once all of them have accepted.
inline constexpr char kLogNotifier[] = "log";
std::unique_ptr<Notifier> NewLogNotifier();

// Writes each message as a JSON file named after its dedupe key into
// `folder` (write to a temporary name, fsync, rename). A message whose file
// already exists is a repeat and is dropped, as any receiver would.
std::unique_ptr<Notifier> NewSpoolNotifier(const std::string& folder);
// Removes the spool notifier's copies of a case's messages from `folder`
// (dedupe keys start with the case id and '-'). Returns how many.
int RemoveSpooledCopies(const std::string& folder, const std::string& case_id);

// Email over SMTP; sender identity per brand (`brands`, "default" as the
// fallback).
std::unique_ptr<Notifier> NewSmtpNotifier(internal::SmtpConfig config, std::string password,
                                          std::map<std::string, internal::BrandConfig> brands);
// Slack-compatible incoming webhook: {"channel": ..., "text": ...}.
std::unique_ptr<Notifier> NewChatNotifier(internal::ChatConfig config);
// HTTP SMS gateway with a configurable JSON body.
std::unique_ptr<Notifier> NewSmsNotifier(internal::SmsConfig config, std::string token);
// JSON webhook signed with HMAC-SHA256 (see WebhookSignature).
std::unique_ptr<Notifier> NewWebhookNotifier(internal::WebhookConfig config, std::string secret);

// The X-Casework-Signature header value of a webhook:
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)), where
// timestamp is the X-Casework-Timestamp header (Unix seconds).
std::string WebhookSignature(const std::string& secret, const std::string& timestamp,
                             const std::string& body);

// The JSON body a webhook receives for a message.
std::string WebhookBody(const internal::OutboxMessage& m);

// Chooses the notifiers of each message by the configured routes and hands
// the message to each of them that has not accepted it yet.
class Router {
 public:
  // INVALID_ARGUMENT when a route names an unknown notifier or channel.
  static absl::StatusOr<std::unique_ptr<Router>> Make(
      std::vector<std::shared_ptr<Notifier>> notifiers,
      std::vector<internal::RouteConfig> routes);

  // The notifiers the most specific matching route names; empty when no
  // route matches.
  std::vector<std::string> Targets(const internal::OutboxMessage& message) const;

  // Delivers to every target not yet in message->delivered_to, adding each
  // one that accepts. Returns the first failure (prefixed with the
  // notifier's name) after trying them all; FAILED_PRECONDITION when no
  // route matches. The log notifier is handed the message last, and only
  // once every other target has accepted it.
  absl::Status Deliver(internal::OutboxMessage* message);

 private:
  std::map<std::string, std::shared_ptr<Notifier>> notifiers_;
  std::vector<internal::RouteConfig> routes_;
};

// The notifiers and routes a configuration asks for. Secrets are read from
// their files here. Without routes: each channel goes to its configured
// notifier and to the spool (when set), and everything to the log (when on).
absl::StatusOr<std::unique_ptr<Router>> BuildRouter(const internal::NotifierConfig& config);

std::string ChannelLabel(v1::Channel channel);

}  // namespace casework::notify

#endif  // CASEWORK_SERVER_NOTIFY_NOTIFIER_H_
