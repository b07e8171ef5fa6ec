// Template texts are written by admins and values come from cases: any
// text must either be refused at save time (Placeholders) or render, and
// rendering must put every value in exactly where its placeholder was.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

#include "server/notify/render.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  // "text NUL value": the value is given to every placeholder.
  const size_t nul = input.find('\0');
  const std::string text = input.substr(0, nul);
  const std::string value = nul == std::string::npos ? "x" : input.substr(nul + 1);
  auto names = casework::notify::Placeholders(text);
  if (!names.ok()) return 0;
  std::map<std::string, std::string> values;
  for (const auto& n : *names) values[n] = value;
  auto rendered = casework::notify::Render(text, values);
  if (!rendered.ok()) std::abort();  // a saved template always renders
  // With values that cannot form placeholders, no "{{" survives unless the
  // text had it outside placeholders, so rendering twice changes nothing.
  if (value.find('{') == std::string::npos && value.find('}') == std::string::npos) {
    auto twice = casework::notify::Placeholders(*rendered);
    if (twice.ok() && !twice->empty() && names->empty()) std::abort();
  }
  if (!values.empty()) {
    values.erase(values.begin());
    if (casework::notify::Render(text, values).ok()) std::abort();  // never a blank
  }
  return 0;
}
