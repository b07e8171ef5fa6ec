#include "server/notify/render.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace casework::notify {
namespace {

// Walks `text`, calling on_literal / on_field for each piece.
template <typename Literal, typename Field>
absl::Status Walk(absl::string_view text, Literal on_literal, Field on_field) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == absl::string_view::npos) {
      on_literal(text.substr(pos));
      break;
    }
    on_literal(text.substr(pos, open - pos));
    size_t close = text.find("}}", open + 2);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("unclosed \"{{\" at offset ", open));
    }
    absl::string_view name = text.substr(open + 2, close - open - 2);
    if (name.empty()) return absl::InvalidArgumentError("empty placeholder {{}}");
    for (char c : name) {
      if (!absl::ascii_islower(static_cast<unsigned char>(c)) &&
          !absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '_') {
        return absl::InvalidArgumentError(absl::StrCat(
            "placeholder {{", name, "}} must use only a-z, 0-9 and _"));
      }
    }
    if (absl::Status s = on_field(std::string(name)); !s.ok()) return s;
    pos = close + 2;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> Placeholders(absl::string_view text) {
  std::vector<std::string> names;
  absl::Status s = Walk(
      text, [](absl::string_view) {},
      [&](const std::string& name) {
        names.push_back(name);
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return names;
}

absl::StatusOr<std::string> Render(absl::string_view text,
                                   const std::map<std::string, std::string>& values) {
  std::string out;
  absl::Status s = Walk(
      text, [&](absl::string_view literal) { out.append(literal.data(), literal.size()); },
      [&](const std::string& name) {
        auto it = values.find(name);
        if (it == values.end()) {
          return absl::FailedPreconditionError(
              absl::StrCat("placeholder {{", name, "}} has no value"));
        }
        out += it->second;
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return out;
}

}  // namespace casework::notify
