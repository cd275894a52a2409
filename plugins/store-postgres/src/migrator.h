// Schema migrations (README.md "Migrations"): the SQL files of migrations/, embedded at build time,
// applied in version order in one transaction under an advisory lock of the installation, so two
// replicas starting at once migrate once. Each applied migration is a row of
// <schema>.schema_migrations; a schema migrated by a newer plugin than this one is refused.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include <pqxx/connection>

namespace leoflow::plugins::store_postgres {

/// A schema migrated by a newer plugin than this one: refused, never downgraded.
class SchemaTooNew : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The newest migration version this plugin knows.
int latestMigrationVersion();

/// Brings `schema` up to date on `conn` (a session with no transaction open); returns the names of
/// the migrations it applied ("001_schema", ...), empty when the schema was up to date. Throws
/// SchemaTooNew for a schema newer than this plugin, pqxx exceptions for the rest.
std::vector<std::string> migrateSchema(pqxx::connection& conn, const std::string& schema,
                                       const std::string& channel);

}  // namespace leoflow::plugins::store_postgres
