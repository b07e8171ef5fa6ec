#include "server/common/enum_names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace casework {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// "ACCOUNT_STANDING_" for an enum whose zero value is
// ACCOUNT_STANDING_UNSPECIFIED; "" when the zero value is named otherwise.
std::string Prefix(const google::protobuf::EnumDescriptor& type) {
  constexpr absl::string_view kZero = "UNSPECIFIED";
  const auto* zero = type.FindValueByNumber(0);
  if (zero == nullptr || !absl::EndsWith(zero->name(), kZero)) return "";
  return zero->name().substr(0, zero->name().size() - kZero.size());
}

bool ExpandValue(const FieldDescriptor& field, google::protobuf::Value* v);

// Rewrites short enum names in `json`, a message of `type`, to full ones;
// true when it rewrote any. What it does not recognise is left as it is,
// for the parser to refuse.
bool ExpandStruct(const Descriptor& type, google::protobuf::Struct* json) {
  bool changed = false;
  for (auto& [name, value] : *json->mutable_fields()) {
    const FieldDescriptor* field = type.FindFieldByName(name);
    if (field == nullptr) field = type.FindFieldByCamelcaseName(name);
    if (field == nullptr || field->is_map()) continue;
    if (field->is_repeated() && value.has_list_value()) {
      for (auto& item : *value.mutable_list_value()->mutable_values()) changed |= ExpandValue(*field, &item);
    } else {
      changed |= ExpandValue(*field, &value);
    }
  }
  return changed;
}

bool ExpandValue(const FieldDescriptor& field, google::protobuf::Value* v) {
  if (field.enum_type() != nullptr && v->has_string_value()) {
    const auto* found = FindEnumValue(*field.enum_type(), v->string_value());
    if (found == nullptr || found->name() == v->string_value()) return false;
    v->set_string_value(found->name());
    return true;
  }
  if (field.message_type() != nullptr && v->has_struct_value() &&
      field.message_type()->well_known_type() == Descriptor::WELLKNOWNTYPE_UNSPECIFIED) {
    return ExpandStruct(*field.message_type(), v->mutable_struct_value());
  }
  return false;
}

}  // namespace

const google::protobuf::EnumValueDescriptor* FindEnumValue(const google::protobuf::EnumDescriptor& type,
                                                           absl::string_view name) {
  if (const auto* exact = type.FindValueByName(std::string(name))) return exact;
  const auto* found = type.FindValueByName(Prefix(type) + absl::AsciiStrToUpper(name));
  return found != nullptr && found->number() != 0 ? found : nullptr;
}

std::vector<std::string> ShortEnumNames(const google::protobuf::EnumDescriptor& type) {
  const std::string prefix = Prefix(type);
  std::vector<std::string> out;
  for (int i = 0; i < type.value_count(); ++i) {
    if (type.value(i)->number() != 0) out.push_back(type.value(i)->name().substr(prefix.size()));
  }
  return out;
}

absl::Status JsonToMessage(absl::string_view json, google::protobuf::Message* out) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const google::protobuf::StringPiece text(json.data(), json.size());
  auto s = google::protobuf::util::JsonStringToMessage(text, out, options);
  if (s.ok()) return absl::OkStatus();
  // A short enum name fails the parser. Such text is rewritten through a
  // Struct, whose numbers are doubles, and parsed again; text with nothing
  // to rewrite keeps the parser's own error.
  google::protobuf::Struct parsed;
  std::string expanded;
  if (google::protobuf::util::JsonStringToMessage(text, &parsed, options).ok() &&
      ExpandStruct(*out->GetDescriptor(), &parsed) &&
      google::protobuf::util::MessageToJsonString(parsed, &expanded).ok()) {
    out->Clear();
    s = google::protobuf::util::JsonStringToMessage(expanded, out, options);
  }
  return s.ok() ? absl::OkStatus() : absl::InvalidArgumentError(s.message().as_string());
}

}  // namespace casework
