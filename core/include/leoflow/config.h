// A plugin's configuration: the keys its factory declares, and the values the host read for it.
//
// Only the host parses TOML. A factory declares its keys (type, required, default, help); the host
// rejects unknown or ill-typed keys with the file and line before create() is called, fills in the
// defaults, substitutes ${ENV} references, and hands the plugin a ConfigView of plain values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace leoflow {

/// The value types a key may have.
enum class ConfigType : std::uint8_t { kString, kInt, kBool, kDouble, kStringList };

constexpr const char* toString(ConfigType t) noexcept {
  switch (t) {
    case ConfigType::kString: return "string";
    case ConfigType::kInt: return "integer";
    case ConfigType::kBool: return "boolean";
    case ConfigType::kDouble: return "float";
    case ConfigType::kStringList: return "array of strings";
  }
  return "?";
}

using ConfigValue = std::variant<std::string, std::int64_t, bool, double, std::vector<std::string>>;

/// One key a factory accepts.
struct ConfigKey {
  std::string name;
  ConfigType type = ConfigType::kString;
  bool required = false;
  std::optional<ConfigValue> default_value;  ///< used when the key is absent and not required
  std::string help;                          ///< one line, shown by `leoflow plugins describe`
};

/// Read-only values of one plugin's table, already checked against its keys. Cheap to copy.
/// Every getter throws std::invalid_argument naming the key when the key is absent or has another
/// type; after the host's validation that only happens for keys the factory did not declare.
class ConfigView {
 public:
  ConfigView() = default;
  ConfigView(std::string section, std::map<std::string, ConfigValue> values)
      : section_(std::move(section)), values_(std::move(values)) {}

  /// The TOML section the values came from, e.g. "store.config", for messages.
  const std::string& section() const noexcept { return section_; }
  bool has(const std::string& key) const { return values_.count(key) != 0; }

  const std::string& getString(const std::string& key) const { return get<std::string>(key); }
  std::int64_t getInt(const std::string& key) const { return get<std::int64_t>(key); }
  bool getBool(const std::string& key) const { return get<bool>(key); }
  double getDouble(const std::string& key) const {
    const ConfigValue& v = at(key);
    if (auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
    return get<double>(key);
  }
  const std::vector<std::string>& getStringList(const std::string& key) const {
    return get<std::vector<std::string>>(key);
  }

  const std::map<std::string, ConfigValue>& values() const noexcept { return values_; }

 private:
  const ConfigValue& at(const std::string& key) const {
    auto it = values_.find(key);
    if (it == values_.end()) throw std::invalid_argument("[" + section_ + "] has no key \"" + key + "\"");
    return it->second;
  }
  template <typename T>
  const T& get(const std::string& key) const {
    const ConfigValue& v = at(key);
    if (const T* p = std::get_if<T>(&v)) return *p;
    throw std::invalid_argument("[" + section_ + "] key \"" + key + "\" has another type");
  }

  std::string section_;
  std::map<std::string, ConfigValue> values_;
};

}  // namespace leoflow
