#include "server/common/personal_data.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "casework/v1/personal_data.pb.h"

namespace casework {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

v1::PersonalData KindOf(const FieldDescriptor* field) {
  return field->options().GetExtension(v1::personal);
}

// Calls `f` for every set field of `message` and of the messages nested in
// it, with the message that holds the field.
template <typename M, typename F>
void EachSetField(M* message, const F& f) {
  const Reflection* reflection = message->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(*message, &fields);
  for (const FieldDescriptor* field : fields) {
    if (KindOf(field) != v1::PERSONAL_DATA_UNSPECIFIED) {
      f(message, field);
      continue;
    }
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || field->is_map()) continue;
    if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(*message, field); ++i) {
        if constexpr (std::is_const_v<M>) {
          EachSetField(&reflection->GetRepeatedMessage(*message, field, i), f);
        } else {
          EachSetField(reflection->MutableRepeatedMessage(message, field, i), f);
        }
      }
    } else if constexpr (std::is_const_v<M>) {
      EachSetField(&reflection->GetMessage(*message, field), f);
    } else {
      EachSetField(reflection->MutableMessage(message, field), f);
    }
  }
}

}  // namespace

bool IsPersonalKey(absl::string_view key) {
  for (absl::string_view word : {"email", "phone", "address", "name_", "customer", "device",
                                 "file_name", "note", "code", "secret", "password", "pin",
                                 "token"}) {
    if (absl::StrContains(key, word)) return true;
  }
  return false;
}

std::string EmailSubject(absl::string_view email) {
  email = absl::StripAsciiWhitespace(email);
  if (email.empty()) return "";
  return absl::StrCat("email:", absl::AsciiStrToLower(email));
}

std::string PhoneSubject(absl::string_view phone) {
  std::string digits;
  for (char c : phone) {
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) digits += c;
  }
  if (digits.empty()) return "";
  const bool plus = !absl::StripLeadingAsciiWhitespace(phone).empty() &&
                    absl::StripLeadingAsciiWhitespace(phone)[0] == '+';
  return absl::StrCat("phone:", plus ? "+" : "", digits);
}

std::set<std::string> PersonalSubjects(const Message& message) {
  std::set<std::string> out;
  EachSetField(&message, [&](const Message* m, const FieldDescriptor* field) {
    const v1::PersonalData kind = KindOf(field);
    if (kind != v1::PERSONAL_DATA_EMAIL && kind != v1::PERSONAL_DATA_PHONE) return;
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_STRING || field->is_repeated()) return;
    const std::string value = m->GetReflection()->GetString(*m, field);
    std::string subject =
        kind == v1::PERSONAL_DATA_EMAIL ? EmailSubject(value) : PhoneSubject(value);
    if (!subject.empty()) out.insert(std::move(subject));
  });
  return out;
}

int ErasePersonalData(Message* message) {
  int cleared = 0;
  EachSetField(message, [&](Message* m, const FieldDescriptor* field) {
    m->GetReflection()->ClearField(m, field);
    ++cleared;
  });
  return cleared;
}

}  // namespace casework
