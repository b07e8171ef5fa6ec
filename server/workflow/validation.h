// Format checks shared by the workflows. Pure functions.
#ifndef CASEWORK_SERVER_WORKFLOW_VALIDATION_H_
#define CASEWORK_SERVER_WORKFLOW_VALIDATION_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "server/common/errors.h"

namespace casework::workflow {

// Trade-in order number: "V" and 6 to 10 digits.
bool IsVNumber(absl::string_view s);
// Trade-in shipment number: "S" and 6 to 10 digits.
bool IsSNumber(absl::string_view s);
// A plausible email address: local@domain.tld, no spaces, at most 254 bytes.
bool IsEmail(absl::string_view s);
// True when the last of `digits` (all '0'-'9') is the Luhn check digit of
// the others.
bool LuhnValid(absl::string_view digits);
// The Luhn check digit of `payload` (all '0'-'9').
char LuhnCheckDigit(absl::string_view payload);
// An IMEI: exactly 15 digits whose last digit is the Luhn check digit.
bool IsImei(absl::string_view s);
// An E.164 phone number: '+', a non-zero digit, at most 15 digits in all.
bool IsE164(absl::string_view s);
// Lower case, punctuation dropped, runs of whitespace made one space: for
// comparing names and addresses as people type them.
std::string NormalizeForMatch(absl::string_view s);
// NormalizeForMatch for postal addresses: the usual words and their
// abbreviations ("Street" and "St", "Apartment" and "Apt") compare equal.
std::string NormalizeAddressForMatch(absl::string_view s);
// Valid UTF-8 without control characters other than newline and tab.
bool IsCleanText(absl::string_view s);
// IsCleanText on one line: no newline or tab either. Names, titles and
// identifiers, which end up in table cells, subjects and chat lines.
bool IsCleanLine(absl::string_view s);

// A customer's date is in the future only once it has begun nowhere yet:
// `day` is after today in the earliest time zone (UTC+14) at `now`.
bool IsFutureDay(absl::CivilDay day, absl::Time now);
// Free text an agent or a request gives (a note, a reason, a name): adds
// to `errors` under `field` when it is missing but `required`, longer than
// `max` bytes, or not clean text.
void CheckText(FieldErrors& errors, const std::string& field, const std::string& value, size_t max,
               bool required);
// CheckText for a name, title or identifier, which must be one line
// (IsCleanLine).
void CheckLine(FieldErrors& errors, const std::string& field, const std::string& value, size_t max,
               bool required);
// The longest note, reason or comment a workflow takes.
inline constexpr size_t kMaxNote = 2000;
// True when `text` names an access code and gives it: a PIN, passcode,
// password or unlock code word followed (after spaces, ":", "=" or "is")
// by four or more characters with a digit, e.g. "PIN code: 1234".
bool HoldsAccessCode(absl::string_view text);
// A note, reason or comment for a case's timeline, which every role reads:
// CheckText up to kMaxNote, and no access code in it.
void CheckNote(FieldErrors& errors, const std::string& field, const std::string& value, bool required);
// The longest assignee name, at intake or on reassignment.
inline constexpr size_t kMaxAssignee = 200;
// The content type the bytes actually are ("application/pdf", "image/png",
// "image/jpeg"), or "" when none of those.
std::string SniffDocumentType(absl::string_view bytes);

}  // namespace casework::workflow

#endif  // CASEWORK_SERVER_WORKFLOW_VALIDATION_H_
