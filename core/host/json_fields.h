// Reading typed fields out of user-supplied JSON with errors that name the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <leoflow/domain.h>

namespace leoflow::host {

/// Thrown for a field of the wrong type or value; the message starts with the field's path.
class JsonFieldError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses JSON text; on a syntax error throws JsonFieldError naming `what` and the byte offset.
nlohmann::json parseJsonText(const std::string& text, const std::string& what);

/// An integer (a JSON integer, or a number with no fractional part); null → nullopt.
std::optional<std::int64_t> optionalInt(const nlohmann::json& v, const std::string& path);
/// A string; null → nullopt.
std::optional<std::string> optionalString(const nlohmann::json& v, const std::string& path);
/// A boolean; null → nullopt.
std::optional<bool> optionalBool(const nlohmann::json& v, const std::string& path);
/// An ISO-8601 time string with a zone; null → nullopt.
std::optional<Timestamp> optionalTime(const nlohmann::json& v, const std::string& path);

/// `obj[key]` or a null json when absent (obj must be an object).
const nlohmann::json& member(const nlohmann::json& obj, const char* key);

/// Requires an object (null → an empty object); names the path otherwise.
const nlohmann::json& requireObject(const nlohmann::json& v, const std::string& path);

/// Quotes a value for a message: "x".
std::string quote(const std::string& s);

}  // namespace leoflow::host
