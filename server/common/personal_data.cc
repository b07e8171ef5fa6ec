#include "server/common/personal_data.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "casework/v1/personal_data.pb.h"

namespace casework {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// The fields of a message type worth visiting: those marked personal and
// those holding messages that can contain such fields. Worked out once per
// type, so a walk does not list every set field and look up its options.
struct Plan {
  struct Field {
    const FieldDescriptor* field;
    v1::PersonalData kind;  // PERSONAL_DATA_UNSPECIFIED: a message to walk into
  };
  std::vector<Field> fields;
};

const Plan& PlanOf(const Descriptor* type);

// Builds the plan of `type`; `building` holds the types whose plans are
// being built, so a type nested in itself is walked into.
Plan BuildPlan(const Descriptor* type, std::vector<const Descriptor*>* building) {
  Plan plan;
  building->push_back(type);
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    const v1::PersonalData kind = field->options().GetExtension(v1::personal);
    if (kind != v1::PERSONAL_DATA_UNSPECIFIED) {
      plan.fields.push_back({field, kind});
      continue;
    }
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || field->is_map()) continue;
    const Descriptor* nested = field->message_type();
    const bool recursive =
        std::find(building->begin(), building->end(), nested) != building->end();
    if (recursive || !BuildPlan(nested, building).fields.empty()) {
      plan.fields.push_back({field, v1::PERSONAL_DATA_UNSPECIFIED});
    }
  }
  building->pop_back();
  return plan;
}

const Plan& PlanOf(const Descriptor* type) {
  // Per thread: no lock on the path of every write; a few types each.
  thread_local absl::flat_hash_map<const Descriptor*, std::unique_ptr<Plan>> plans;
  auto& plan = plans[type];
  if (plan == nullptr) {
    std::vector<const Descriptor*> building;
    plan = std::make_unique<Plan>(BuildPlan(type, &building));
  }
  return *plan;
}

bool IsSet(const Message& message, const FieldDescriptor* field) {
  const Reflection* reflection = message.GetReflection();
  return field->is_repeated() ? reflection->FieldSize(message, field) > 0
                              : reflection->HasField(message, field);
}

// Calls `f(message, field, kind)` for every set field marked personal in
// `message` and in the messages nested in it.
template <typename M, typename F>
void EachSetField(M* message, const F& f) {
  const Reflection* reflection = message->GetReflection();
  for (const Plan::Field& p : PlanOf(message->GetDescriptor()).fields) {
    if (!IsSet(*message, p.field)) continue;
    if (p.kind != v1::PERSONAL_DATA_UNSPECIFIED) {
      f(message, p.field, p.kind);
    } else if (p.field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(*message, p.field); ++i) {
        if constexpr (std::is_const_v<M>) {
          EachSetField(&reflection->GetRepeatedMessage(*message, p.field, i), f);
        } else {
          EachSetField(reflection->MutableRepeatedMessage(message, p.field, i), f);
        }
      }
    } else if constexpr (std::is_const_v<M>) {
      EachSetField(&reflection->GetMessage(*message, p.field), f);
    } else {
      EachSetField(reflection->MutableMessage(message, p.field), f);
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
  EachSetField(&message, [&](const Message* m, const FieldDescriptor* field,
                             v1::PersonalData kind) {
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
  EachSetField(message, [&](Message* m, const FieldDescriptor* field, v1::PersonalData) {
    m->GetReflection()->ClearField(m, field);
    ++cleared;
  });
  return cleared;
}

}  // namespace casework
