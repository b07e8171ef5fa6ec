#include "server/notify/email.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/common/proto_time.h"

namespace casework::notify {
namespace {

bool IsPlainAscii(absl::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) return false;
  }
  return true;
}

// Splits UTF-8 text into chunks of at most `max` bytes without cutting a
// character in two.
std::vector<std::string> Utf8Chunks(absl::string_view s, size_t max) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t end = std::min(s.size(), i + max);
    while (end < s.size() && end > i && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
    out.emplace_back(s.substr(i, end - i));
    i = end;
  }
  return out;
}

// Base64 in lines of 76 characters.
std::string Base64Lines(absl::string_view data) {
  const std::string b64 = absl::Base64Escape(data);
  std::string out;
  for (size_t i = 0; i < b64.size(); i += 76) absl::StrAppend(&out, b64.substr(i, 76), "\r\n");
  return out;
}

std::string Domain(absl::string_view address) {
  const size_t at = address.rfind('@');
  return at == absl::string_view::npos ? "casework.invalid" : std::string(address.substr(at + 1));
}

// "Name <addr>" with the name encoded when needed.
std::string EncodeMailbox(absl::string_view mailbox) {
  const size_t lt = mailbox.find('<');
  if (lt == absl::string_view::npos) return std::string(mailbox);
  absl::string_view name = absl::StripAsciiWhitespace(mailbox.substr(0, lt));
  if (name.empty()) return std::string(mailbox.substr(lt));
  std::string shown = IsPlainAscii(name) ? absl::StrCat("\"", absl::StrReplaceAll(name, {{"\"", ""}}), "\"")
                                         : EncodeHeaderText(name);
  return absl::StrCat(shown, " ", mailbox.substr(lt));
}

}  // namespace

std::string MailboxAddress(absl::string_view mailbox) {
  const size_t lt = mailbox.find('<');
  const size_t gt = mailbox.rfind('>');
  if (lt != absl::string_view::npos && gt != absl::string_view::npos && gt > lt) {
    return std::string(mailbox.substr(lt + 1, gt - lt - 1));
  }
  return std::string(absl::StripAsciiWhitespace(mailbox));
}

std::string EncodeHeaderText(absl::string_view text) {
  if (IsPlainAscii(text)) return std::string(text);
  // 45 bytes of UTF-8 become 60 base64 characters: with "=?UTF-8?B?" and
  // "?=" each encoded-word stays under the 75 characters RFC 2047 allows.
  std::vector<std::string> words;
  for (const auto& chunk : Utf8Chunks(text, 45)) {
    words.push_back(absl::StrCat("=?UTF-8?B?", absl::Base64Escape(chunk), "?="));
  }
  return absl::StrJoin(words, "\r\n ");
}

std::string SubjectWithReference(const internal::OutboxMessage& m) {
  if (m.reference().empty() || absl::StrContains(m.subject(), m.reference())) return m.subject();
  if (m.subject().empty()) return m.reference();
  return absl::StrCat(m.subject(), " [", m.reference(), "]");
}

std::string TextToHtml(absl::string_view text) {
  std::string escaped = absl::StrReplaceAll(
      text, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}, {"\r", ""}});
  std::string out = "<!DOCTYPE html>\r\n<html><body>\r\n";
  for (absl::string_view para : absl::StrSplit(escaped, "\n\n", absl::SkipWhitespace())) {
    absl::StrAppend(&out, "<p>", absl::StrReplaceAll(para, {{"\n", "<br>\r\n"}}), "</p>\r\n");
  }
  absl::StrAppend(&out, "</body></html>\r\n");
  return out;
}

std::string ComposeEmail(const internal::OutboxMessage& m, absl::string_view from,
                         absl::string_view reply_to) {
  const std::string boundary = absl::StrCat("=_casework_", m.dedupe_key());
  const absl::Time created = m.has_create_time() ? FromProto(m.create_time()) : absl::Now();
  std::string out;
  absl::StrAppend(&out, "Date: ",
                  absl::FormatTime("%a, %d %b %Y %H:%M:%S +0000", created, absl::UTCTimeZone()),
                  "\r\n");
  absl::StrAppend(&out, "From: ", EncodeMailbox(from), "\r\n");
  if (!reply_to.empty()) absl::StrAppend(&out, "Reply-To: ", EncodeMailbox(reply_to), "\r\n");
  absl::StrAppend(&out, "To: ", m.recipient(), "\r\n");
  absl::StrAppend(&out, "Subject: ", EncodeHeaderText(SubjectWithReference(m)), "\r\n");
  absl::StrAppend(&out, "Message-ID: <", m.dedupe_key(), "@", Domain(MailboxAddress(from)), ">\r\n");
  absl::StrAppend(&out, "X-Casework-Dedupe-Key: ", m.dedupe_key(), "\r\n");
  if (!m.reference().empty()) {
    absl::StrAppend(&out, "X-Casework-Reference: ", m.reference(), "\r\n");
  }
  if (!m.language_code().empty()) {
    absl::StrAppend(&out, "Content-Language: ", m.language_code(), "\r\n");
  }
  absl::StrAppend(&out, "MIME-Version: 1.0\r\n");
  absl::StrAppend(&out, "Content-Type: multipart/alternative; boundary=\"", boundary, "\"\r\n\r\n");
  std::string text = absl::StrReplaceAll(m.body(), {{"\r\n", "\n"}});
  absl::StrAppend(&out, "--", boundary, "\r\n",
                  "Content-Type: text/plain; charset=UTF-8\r\n",
                  "Content-Transfer-Encoding: base64\r\n\r\n", Base64Lines(text));
  absl::StrAppend(&out, "--", boundary, "\r\n",
                  "Content-Type: text/html; charset=UTF-8\r\n",
                  "Content-Transfer-Encoding: base64\r\n\r\n", Base64Lines(TextToHtml(text)));
  absl::StrAppend(&out, "--", boundary, "--\r\n");
  return out;
}

}  // namespace casework::notify
