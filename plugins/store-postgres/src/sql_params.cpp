#include "sql_params.h"

namespace leoflow::plugins::store_postgres {

std::int64_t toMicros(Timestamp t) { return t.time_since_epoch().count(); }

Timestamp fromMicros(std::int64_t us) { return Timestamp(std::chrono::microseconds(us)); }

std::string textArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string intArray(const std::vector<std::int64_t>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(items[i]);
  }
  return out + "}";
}

std::string boolArray(const std::vector<bool>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += items[i] ? 't' : 'f';
  }
  return out + "}";
}

std::string optionalIntArray(const std::vector<std::optional<std::int64_t>>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += items[i] ? std::to_string(*items[i]) : std::string("NULL");
  }
  return out + "}";
}

std::string stampArray(const std::vector<std::optional<Timestamp>>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += items[i] ? std::to_string(toMicros(*items[i])) : std::string("NULL");
  }
  return out + "}";
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
