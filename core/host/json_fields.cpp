#include "host/json_fields.h"

#include <cmath>

#include "schedule/iso_time.h"
#include "text/quoted.h"

namespace leoflow::host {

std::string quote(const std::string& s) { return text::quoted(s); }

nlohmann::json parseJsonText(const std::string& text, const std::string& what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    std::string reason = e.what();
    // nlohmann prefixes "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
    if (auto pos = reason.find("] "); pos != std::string::npos) reason = reason.substr(pos + 2);
    throw JsonFieldError(what + ": malformed JSON: " + reason);
  }
}

const nlohmann::json& member(const nlohmann::json& obj, const char* key) {
  static const nlohmann::json kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

const nlohmann::json& requireObject(const nlohmann::json& v, const std::string& path) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  if (v.is_null()) return kEmpty;
  if (!v.is_object()) throw JsonFieldError(path + ": expected an object, got " + v.dump());
  return v;
}

std::optional<std::int64_t> optionalInt(const nlohmann::json& v, const std::string& path) {
  if (v.is_null()) return std::nullopt;
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9e15) return static_cast<std::int64_t>(d);
  }
  throw JsonFieldError(path + ": expected an integer, got " + v.dump());
}

std::optional<std::string> optionalString(const nlohmann::json& v, const std::string& path) {
  if (v.is_null()) return std::nullopt;
  if (!v.is_string()) throw JsonFieldError(path + ": expected a string, got " + v.dump());
  return v.get<std::string>();
}

std::optional<bool> optionalBool(const nlohmann::json& v, const std::string& path) {
  if (v.is_null()) return std::nullopt;
  if (!v.is_boolean()) throw JsonFieldError(path + ": expected true or false, got " + v.dump());
  return v.get<bool>();
}

std::optional<Timestamp> optionalTime(const nlohmann::json& v, const std::string& path) {
  auto text = optionalString(v, path);
  if (!text) return std::nullopt;
  auto t = schedule::parseIsoTime(*text);
  if (!t) {
    throw JsonFieldError(path + ": expected an ISO-8601 time with a zone (2026-01-01T00:00:00Z), got " +
                         quote(*text));
  }
  return t;
}

}  // namespace leoflow::host
