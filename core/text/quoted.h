// Quoting a value for an error message: `"value"`, with quotes, backslashes and control characters
// escaped as in JSON, so a message stays one readable line whatever the user typed.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace leoflow::text {

// Built by appends: g++ 12 at -O3 reports a false -Wrestrict on `"\"" + std::string(s)`.
inline std::string quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace leoflow::text
