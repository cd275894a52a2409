// Parameters of one statement, text-encoded as libpq sends them, with real NULLs.
//
// libpqxx 6.4 has no optional or array parameters, so values are kept here as optional strings and
// handed over as `const char*` (nullptr = NULL); arrays go as PostgreSQL array literals.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/prepared_statement>

#include <leoflow/domain.h>

namespace leoflow::plugins::store_postgres {

/// Microseconds since the epoch: the plugin's wire form of a time (migrations/001_schema.sql us_ts()).
std::int64_t toMicros(Timestamp t);
Timestamp fromMicros(std::int64_t us);

/// A PostgreSQL array literal of texts: {"a","b\"c"}; every element quoted and escaped.
std::string textArray(const std::vector<std::string>& items);
/// {1,2,3}
std::string intArray(const std::vector<std::int64_t>& items);
/// {t,f}
std::string boolArray(const std::vector<bool>& items);
/// {1,NULL,3}
std::string optionalIntArray(const std::vector<std::optional<std::int64_t>>& items);
/// Microsecond stamps, NULL for none.
std::string stampArray(const std::vector<std::optional<Timestamp>>& items);

class SqlParams {
 public:
  SqlParams& text(std::string value);
  SqlParams& null();
  SqlParams& integer(std::int64_t value);
  SqlParams& boolean(bool value);
  /// A time as microseconds, NULL when absent.
  SqlParams& stamp(std::optional<Timestamp> value);
  /// An optional text, NULL when absent.
  SqlParams& optionalText(const std::optional<std::string>& value);

  /// The values as libpqxx takes them; valid while this object lives and is not changed.
  pqxx::internal::dynamic_params<std::vector<const char*>::const_iterator> bind();

 private:
  std::vector<std::optional<std::string>> values_;
  std::vector<const char*> pointers_;
};

}  // namespace leoflow::plugins::store_postgres
