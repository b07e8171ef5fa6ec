// Internet messages (RFC 5322 + MIME) for the SMTP channel. Pure functions.
#ifndef CASEWORK_SERVER_NOTIFY_EMAIL_H_
#define CASEWORK_SERVER_NOTIFY_EMAIL_H_

#include <string>

#include "absl/strings/string_view.h"
#include "casework/internal/records.pb.h"

namespace casework::notify {

// "Name <a@b.example>" -> "a@b.example"; a bare address is returned as is.
std::string MailboxAddress(absl::string_view mailbox);

// A header value as RFC 2047 encoded-words (UTF-8, base64) when it holds
// anything but printable ASCII; unchanged otherwise.
std::string EncodeHeaderText(absl::string_view text);

// The subject customers see: the message's subject, with " [reference]"
// appended unless the reference is already in it, so replies can be traced.
std::string SubjectWithReference(const internal::OutboxMessage& m);

// Plain text as minimal HTML: escaped, paragraphs at blank lines, line
// breaks kept.
std::string TextToHtml(absl::string_view text);

// The whole message: Date, From, Reply-To (when given), To, Subject,
// Message-ID <dedupe_key@sender domain>, X-Casework-Dedupe-Key,
// X-Casework-Reference, and a multipart/alternative body with text/plain
// and text/html parts in UTF-8. Lines end in CRLF.
std::string ComposeEmail(const internal::OutboxMessage& m, absl::string_view from,
                         absl::string_view reply_to);

}  // namespace casework::notify

#endif  // CASEWORK_SERVER_NOTIFY_EMAIL_H_
