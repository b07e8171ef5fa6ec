// Personal data in stored messages, as marked by the field option
// (casework.v1.personal) in the protos: finding whose data a record holds,
// and erasing it.
#ifndef CASEWORK_SERVER_COMMON_PERSONAL_DATA_H_
#define CASEWORK_SERVER_COMMON_PERSONAL_DATA_H_

#include <set>
#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace casework {

// The key a customer is found under: "email:jan@example.nl" (lower case) or
// "phone:+31612345678" (the digits, with a leading '+' when given). Empty
// when `value` holds nothing to find.
std::string EmailSubject(absl::string_view email);
std::string PhoneSubject(absl::string_view phone);

// True if a key of a log line or event attribute names personal data or a
// secret ("customer_email", "device", "unlock_code"): such values are
// masked in logs and removed from timelines by an erase.
bool IsPersonalKey(absl::string_view key);

// Subjects of every email and phone field marked personal in `message`,
// nested messages included.
std::set<std::string> PersonalSubjects(const google::protobuf::Message& message);

// Clears every field marked personal in `message`, nested messages
// included. Returns how many set fields it cleared.
int ErasePersonalData(google::protobuf::Message* message);

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_PERSONAL_DATA_H_
