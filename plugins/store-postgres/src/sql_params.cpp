#include "sql_params.h"

namespace leoflow::plugins::store_postgres {

std::int64_t toMicros(Timestamp t) { return t.time_since_epoch().count(); }

Timestamp fromMicros(std::int64_t us) { return Timestamp(std::chrono::microseconds(us)); }

namespace {

/// {e1,e2,...}: each item written by `element`, the literal's one loop for every array kind.
template <typename T, typename Element>
std::string arrayLiteral(const std::vector<T>& items, Element element) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    element(out, items[i]);
  }
  return out + "}";
}

}  // namespace

std::string textArray(const std::vector<std::string>& items) {
  return arrayLiteral(items, [](std::string& out, const std::string& item) {
    out += '"';
    for (char c : item) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  });
}

std::string intArray(const std::vector<std::int64_t>& items) {
  return arrayLiteral(items, [](std::string& out, std::int64_t item) { out += std::to_string(item); });
}

std::string boolArray(const std::vector<bool>& items) {
  return arrayLiteral(items, [](std::string& out, bool item) { out += item ? 't' : 'f'; });
}

std::string optionalIntArray(const std::vector<std::optional<std::int64_t>>& items) {
  return arrayLiteral(items, [](std::string& out, const std::optional<std::int64_t>& item) {
    out += item ? std::to_string(*item) : std::string("NULL");
  });
}

std::string stampArray(const std::vector<std::optional<Timestamp>>& items) {
  return arrayLiteral(items, [](std::string& out, const std::optional<Timestamp>& item) {
    out += item ? std::to_string(toMicros(*item)) : std::string("NULL");
  });
}

SqlParams& SqlParams::text(std::string value) {
  values_.emplace_back(std::move(value));
  return *this;
}

SqlParams& SqlParams::null() {
  values_.emplace_back(std::nullopt);
  return *this;
}

SqlParams& SqlParams::integer(std::int64_t value) { return text(std::to_string(value)); }

SqlParams& SqlParams::boolean(bool value) { return text(value ? "t" : "f"); }

SqlParams& SqlParams::stamp(std::optional<Timestamp> value) {
  return value ? integer(toMicros(*value)) : null();
}

SqlParams& SqlParams::optionalText(const std::optional<std::string>& value) {
  return value ? text(*value) : null();
}

pqxx::internal::dynamic_params<std::vector<const char*>::const_iterator> SqlParams::bind() {
  pointers_.clear();
  pointers_.reserve(values_.size());
  for (const auto& v : values_) pointers_.push_back(v ? v->c_str() : nullptr);
  return pqxx::prepare::make_dynamic_params(pointers_);
}

}  // namespace leoflow::plugins::store_postgres
