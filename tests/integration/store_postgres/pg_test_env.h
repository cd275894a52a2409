// What the PostgreSQL integration tests share: the test server's address, a schema per test binary
// (each schema is an independent store-postgres installation), admin SQL on the server, and the
// plumbing a PluginContext needs (a logger, a clock, a TaskEvents sink, a Recorder).
//
// The server comes from scripts/servers/postgres.sh (./dev test): LEOFLOW_TEST_PG_DSN and friends.
// Without it every PostgreSQL test skips, so `meson test` alone still works, except when CI=true:
// there a missing server fails the tests (ARCHITECTURE §8.10: in CI nothing may be skipped).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <leoflow/config.h>
#include <leoflow/context.h>
#include <leoflow/leader.h>
#include <leoflow/store.h>

namespace leoflow::testing::pg {

/// $LEOFLOW_TEST_PG_DSN, or nullopt when no test server runs.
std::optional<std::string> serverDsn();
/// CI=true: a missing server is a failure, not a skip.
bool inCi();
/// Why there is no server: the script's reason ($LEOFLOW_TEST_PG_ERROR) when it gave one.
std::string noServerMessage();

/// Skips the test (or, in CI, fails it) when there is no test server. For TEST bodies and SetUp().
#define LEOFLOW_REQUIRE_TEST_PG()                                              \
  do {                                                                         \
    if (!::leoflow::testing::pg::serverDsn()) {                                \
      if (::leoflow::testing::pg::inCi()) FAIL() << ::leoflow::testing::pg::noServerMessage(); \
      GTEST_SKIP() << ::leoflow::testing::pg::noServerMessage();               \
    }                                                                          \
  } while (false)

/// The server's port ($LEOFLOW_TEST_PG_PORT); throws when there is no server.
int serverPort();
/// A DSN on the test server for `user` (with `password` when non-empty), as a libpq URI.
std::string dsnFor(const std::string& user, const std::string& password = "");
/// A loopback port nothing listens on (bound, then closed at once).
int closedPort();

/// Runs `sql` (one or more statements) on the test server as the superuser, through libpq. Returns
/// the first column of the first row of the last statement ("" when it returned none); throws
/// std::runtime_error with the server's message when it fails.
std::string adminQuery(const std::string& sql);
/// Every row of the first column of `sql`.
std::vector<std::string> adminColumn(const std::string& sql);
/// A superuser session of its own that stays open between statements (to hold a lock or a
/// transaction while a test calls the plugin). Throws std::runtime_error like adminQuery().
class AdminSession {
 public:
  AdminSession();
  ~AdminSession();
  AdminSession(const AdminSession&) = delete;
  AdminSession& operator=(const AdminSession&) = delete;
  /// Like adminQuery(), on this session.
  std::string query(const std::string& sql);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// DROP SCHEMA IF EXISTS ... CASCADE.
void dropSchema(const std::string& schema);
bool schemaExists(const std::string& schema);
/// The tables of `schema`, sorted.
std::vector<std::string> tablesOf(const std::string& schema);
/// pg_terminate_backend() on every backend of pg_stat_activity matching `where_sql` (an SQL
/// condition on its columns), never the caller's own; returns how many.
int terminateBackends(const std::string& where_sql);

/// The plugin's settings, defaults as documented (plugins/store-postgres/README.md) unless set.
struct Settings {
  std::string dsn;  ///< empty: the test server
  std::string direct_dsn;
  std::string schema = "leoflow";
  std::int64_t pool_size = 8;
  std::int64_t statement_timeout_ms = 5000;
  std::int64_t connect_timeout_ms = 2000;
  std::int64_t lock_id = 21503626827296631;
  std::int64_t lease_ms = 3000;
  std::int64_t poll_ms = 500;
};

/// A config table as the host would hand it over, every key filled in.
ConfigView storeConfig(const Settings& settings);

/// A context lent to one plugin object; `replica_id` names the replica.
PluginContext makeContext(const std::string& replica_id = "replica-test");

/// Runs $LEOFLOW_TEST_PG_RESTART (`pg_ctl restart -m fast`) and waits until the server answers.
/// false when there is no such command or the server does not come back within 30 s.
bool restartServer();

/// The folder meson points at the built plugin ($LEOFLOW_STORE_POSTGRES_DIR), or empty.
std::string pluginDir();

/// The plugin's factories, through the real loader (the module is dlopen()ed from pluginDir()).
StoreFactory& storeFactory();
LeaderFactory& leaderFactory();

/// A store (or leader) of the plugin on `settings`, through the loader.
std::unique_ptr<Store> openStore(const Settings& settings, const std::string& replica_id = "replica-test");
std::unique_ptr<Leader> openLeader(const Settings& settings, const std::string& replica_id);

}  // namespace leoflow::testing::pg
