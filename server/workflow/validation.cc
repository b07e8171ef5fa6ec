#include "server/workflow/validation.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace casework::workflow {
namespace {

bool IsLetterAndDigits(absl::string_view s, char letter) {
  if (s.size() < 7 || s.size() > 11 || s[0] != letter) return false;
  for (char c : s.substr(1)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

bool IsVNumber(absl::string_view s) { return IsLetterAndDigits(s, 'V'); }
bool IsSNumber(absl::string_view s) { return IsLetterAndDigits(s, 'S'); }

bool IsEmail(absl::string_view s) {
  if (s.empty() || s.size() > 254) return false;
  size_t at = s.find('@');
  if (at == 0 || at == absl::string_view::npos || s.rfind('@') != at) return false;
  absl::string_view local = s.substr(0, at), domain = s.substr(at + 1);
  if (local.size() > 64 || domain.size() < 3) return false;
  size_t dot = domain.rfind('.');
  if (dot == absl::string_view::npos || dot == 0 || dot + 2 > domain.size()) return false;
  if (absl::StrContains(domain, "..") || domain.front() == '-' ) return false;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= ' ' || u == 0x7f || c == ',' || c == ';' || c == '<' || c == '>' ||
        c == '"' || c == '(' || c == ')' || c == '[' || c == ']' || c == '\\') {
      return false;
    }
  }
  for (char c : domain) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' &&
        static_cast<unsigned char>(c) < 0x80) {
      return false;
    }
  }
  return true;
}

bool LuhnValid(absl::string_view digits) {
  int sum = 0;
  bool twice = false;  // every second digit from the right, the check digit not
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    int d = *it - '0';
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

char LuhnCheckDigit(absl::string_view payload) {
  std::string digits = absl::StrCat(payload, "0");
  for (char& c = digits.back(); c <= '9'; ++c) {
    if (LuhnValid(digits)) return c;
  }
  return '0';
}

bool IsImei(absl::string_view s) {
  if (s.size() != 15) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return LuhnValid(s);
}

bool IsE164(absl::string_view s) {
  if (s.size() < 3 || s.size() > 16 || s[0] != '+' || s[1] == '0') return false;
  for (char c : s.substr(1)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string NormalizeForMatch(absl::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (absl::ascii_isspace(u)) {
      space = !out.empty();
      continue;
    }
    if (absl::ascii_ispunct(u)) continue;
    if (space) out += ' ';
    space = false;
    out += absl::ascii_tolower(u);
  }
  return out;
}

std::string NormalizeAddressForMatch(absl::string_view s) {
  static const auto* const kShort = new std::map<std::string, std::string>{
      {"street", "st"},    {"avenue", "ave"},   {"road", "rd"},       {"boulevard", "blvd"},
      {"drive", "dr"},     {"lane", "ln"},      {"court", "ct"},      {"place", "pl"},
      {"terrace", "ter"},  {"highway", "hwy"},  {"parkway", "pkwy"},  {"square", "sq"},
      {"apartment", "apt"}, {"suite", "ste"},   {"building", "bldg"}, {"floor", "fl"},
      {"north", "n"},      {"south", "s"},      {"east", "e"},        {"west", "w"},
  };
  std::vector<std::string> words = absl::StrSplit(NormalizeForMatch(s), ' ', absl::SkipEmpty());
  for (auto& w : words) {
    if (auto it = kShort->find(w); it != kShort->end()) w = it->second;
  }
  return absl::StrJoin(words, " ");
}

bool IsCleanText(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) return false;
      ++i;
      continue;
    }
    int extra = (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : -1;
    if (extra < 0 || i + static_cast<size_t>(extra) >= s.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    // Overlong encodings and surrogates.
    if (extra == 1 && c < 0xc2) return false;
    if (extra == 2) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      if (c == 0xe0 && c1 < 0xa0) return false;
      if (c == 0xed && c1 >= 0xa0) return false;
    }
    if (extra == 3) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      if (c == 0xf0 && c1 < 0x90) return false;
      if (c > 0xf4 || (c == 0xf4 && c1 >= 0x90)) return false;
    }
    i += extra + 1;
  }
  return true;
}

std::string SniffDocumentType(absl::string_view b) {
  if (absl::StartsWith(b, "%PDF-")) return "application/pdf";
  if (absl::StartsWith(b, absl::string_view("\x89PNG\r\n\x1a\n", 8))) return "image/png";
  if (b.size() >= 3 && static_cast<unsigned char>(b[0]) == 0xff &&
      static_cast<unsigned char>(b[1]) == 0xd8 && static_cast<unsigned char>(b[2]) == 0xff) {
    return "image/jpeg";
  }
  return "";
}

bool IsCleanLine(absl::string_view s) {
  return s.find_first_of("\n\t") == absl::string_view::npos && IsCleanText(s);
}

namespace {

void CheckTextOf(FieldErrors& errors, const std::string& field, const std::string& value, size_t max,
                 bool required, bool one_line) {
  if (value.empty()) {
    if (required) errors.Add(field, "is required");
    return;
  }
  if (value.size() > max) {
    errors.Add(field, absl::StrCat("must be at most ", max, " bytes"));
  } else if (!(one_line ? IsCleanLine(value) : IsCleanText(value))) {
    errors.Add(field, one_line ? "must be one line of UTF-8 text without control characters"
                               : "must be UTF-8 text without control characters");
  }
}

}  // namespace

void CheckText(FieldErrors& errors, const std::string& field, const std::string& value, size_t max,
               bool required) {
  CheckTextOf(errors, field, value, max, required, /*one_line=*/false);
}

void CheckLine(FieldErrors& errors, const std::string& field, const std::string& value, size_t max,
               bool required) {
  CheckTextOf(errors, field, value, max, required, /*one_line=*/true);
}

bool HoldsAccessCode(absl::string_view text) {
  static constexpr absl::string_view kWords[] = {"pin",         "pincode",     "pin code",       "passcode",
                                                  "pass code",   "password",    "wachtwoord",     "toegangscode",
                                                  "unlock code", "access code", "ontgrendelcode", "screen lock"};
  const std::string lower = absl::AsciiStrToLower(text);
  auto word_char = [&](size_t i) {
    return i < lower.size() && (absl::ascii_isalnum(lower[i]) || static_cast<unsigned char>(lower[i]) >= 0x80);
  };
  for (absl::string_view word : kWords) {
    for (size_t at = lower.find(word.data(), 0, word.size()); at != std::string::npos;
         at = lower.find(word.data(), at + 1, word.size())) {
      size_t i = at + word.size();
      if ((at > 0 && word_char(at - 1)) || word_char(i)) continue;
      // What follows the word: separators, perhaps "is", then the code.
      while (i < lower.size() && (absl::ascii_isspace(lower[i]) || lower[i] == ':' || lower[i] == '=')) ++i;
      if (lower.compare(i, 3, "is ") == 0) i += 3;
      while (i < lower.size() && absl::ascii_isspace(lower[i])) ++i;
      size_t end = i;
      while (end < lower.size() && !absl::ascii_isspace(lower[end]) && lower[end] != ',' && lower[end] != ';') ++end;
      absl::string_view token(lower.data() + i, end - i);
      token = absl::StripSuffix(absl::StripSuffix(token, "."), ")");
      if (token.size() >= 4 && std::any_of(token.begin(), token.end(), absl::ascii_isdigit)) return true;
    }
  }
  return false;
}

void CheckNote(FieldErrors& errors, const std::string& field, const std::string& value, bool required) {
  CheckText(errors, field, value, kMaxNote, required);
  if (value.size() <= kMaxNote && IsCleanText(value) && HoldsAccessCode(value)) {
    errors.Add(field,
               "looks like it holds an access code (a PIN, passcode or password); every role reads the "
               "timeline, so leave the code out (a trade-in's unlock code goes in RecordUnlockCode, "
               "which seals it)");
  }
}

bool IsFutureDay(absl::CivilDay day, absl::Time now) {
  return day > absl::ToCivilDay(now + absl::Hours(14), absl::UTCTimeZone());
}

}  // namespace casework::workflow
