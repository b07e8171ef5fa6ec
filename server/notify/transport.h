// The wire under the real channels: HTTP POST and SMTP submission through
// libcurl. Results are mapped once, here, onto the statuses the dispatcher
// understands: OK accepted; INVALID_ARGUMENT the receiver refused the
// message for good (dead-letter); UNAVAILABLE try again later.
#ifndef CASEWORK_SERVER_NOTIFY_TRANSPORT_H_
#define CASEWORK_SERVER_NOTIFY_TRANSPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace casework::notify {

struct HttpPost {
  std::string url;
  // "Name: value" lines.
  std::vector<std::string> headers;
  std::string body;
  std::string ca_file;
  absl::Duration timeout = absl::Seconds(10);
};

// 2xx: OK. 408, 425, 429 and 5xx: UNAVAILABLE. Other statuses: INVALID_ARGUMENT.
// Connection problems and timeouts: UNAVAILABLE.
absl::Status Post(const HttpPost& request);

enum class StartTls { kRequired, kOptional, kOff };

struct SmtpSubmission {
  std::string url;  // smtp://host:port or smtps://host:port
  StartTls starttls = StartTls::kRequired;
  std::string username;
  std::string password;
  std::string ca_file;
  std::string envelope_from;              // bare address
  std::vector<std::string> envelope_to;   // bare addresses
  std::string message;                    // headers + body, CRLF lines
  absl::Duration timeout = absl::Seconds(10);
};

// A 5xx reply (mailbox unknown, message refused): INVALID_ARGUMENT. Anything
// else that fails: UNAVAILABLE.
absl::Status Submit(const SmtpSubmission& submission);

}  // namespace casework::notify

#endif  // CASEWORK_SERVER_NOTIFY_TRANSPORT_H_
