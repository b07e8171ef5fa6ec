// Enum values by the names people use. The API's values carry their enum's
// prefix (ACCOUNT_STANDING_GOOD); error messages and people leave it out
// (GOOD). Both are taken wherever people type values: casectl's FIELD=VALUE
// pairs and the directory imports' JSON lines.
#ifndef CASEWORK_SERVER_COMMON_ENUM_NAMES_H_
#define CASEWORK_SERVER_COMMON_ENUM_NAMES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace casework {

// The value named `name`: its full name, or the name without the enum's
// prefix in any case ("GOOD", "good"). Null when there is none; the
// UNSPECIFIED value is never found by its short name.
const google::protobuf::EnumValueDescriptor* FindEnumValue(const google::protobuf::EnumDescriptor& type,
                                                           absl::string_view name);

// The short names of the values, UNSPECIFIED left out, in declaration order.
std::vector<std::string> ShortEnumNames(const google::protobuf::EnumDescriptor& type);

// Parses `json` (proto3 JSON, unknown fields refused) into `out`, taking
// enum values by either name.
absl::Status JsonToMessage(absl::string_view json, google::protobuf::Message* out);

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_ENUM_NAMES_H_
