#include "migrator.h"

#include <stdexcept>

#include <pqxx/transaction>

#include "migrations.h"

namespace leoflow::plugins::store_postgres {
namespace {

// The advisory lock that serializes migrations of one schema: a fixed class ("LFMG") and the
// schema's hash, so installations in other schemas migrate independently.
constexpr int kMigrationLockClass = 0x4C464D47;

std::string substitute(std::string_view sql, const std::string& placeholder, const std::string& value) {
  std::string out(sql);
  std::size_t pos = 0;
  while ((pos = out.find(placeholder, pos)) != std::string::npos) {
    out.replace(pos, placeholder.size(), value);
    pos += value.size();
  }
  return out;
}

}  // namespace

int latestMigrationVersion() { return kMigrations.back().version; }

std::vector<std::string> migrateSchema(pqxx::connection& conn, const std::string& schema,
                                       const std::string& channel) {
  pqxx::work tx(conn);
  tx.exec_params("SELECT pg_advisory_xact_lock($1, hashtext($2))", kMigrationLockClass, schema);
  const std::string s = tx.quote_name(schema);
  tx.exec("CREATE SCHEMA IF NOT EXISTS " + s);
  tx.exec("CREATE TABLE IF NOT EXISTS " + s +
          ".schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
          "applied_at timestamptz NOT NULL DEFAULT now())");
  const int current = tx.exec("SELECT coalesce(max(version), 0) FROM " + s + ".schema_migrations")[0][0].as<int>();
  if (current > latestMigrationVersion()) {
    throw SchemaTooNew("schema \"" + schema + "\" is at migration " + std::to_string(current) +
                             ", newer than this store-postgres knows (" + std::to_string(latestMigrationVersion()) +
                             "): upgrade leoflow's plugins before using this database");
  }
  std::vector<std::string> applied;
  tx.exec("SET LOCAL search_path TO " + s);
  for (const MigrationSource& m : kMigrations) {
    if (m.version <= current) continue;
    tx.exec(substitute(m.sql, "@CHANNEL@", tx.quote(channel)));
    tx.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, std::string(m.name));
    applied.emplace_back(m.name);
  }
  tx.commit();
  return applied;
}

}  // namespace leoflow::plugins::store_postgres
