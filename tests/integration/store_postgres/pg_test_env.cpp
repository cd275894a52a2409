#include "pg_test_env.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include <spdlog/logger.h>

#include "host/plugin_loader.h"
#include "support/null_roles.h"

namespace leoflow::testing::pg {
namespace {

// Lives for the whole process: contexts lent to plugin objects only hold references.
struct Plumbing {
  WallClock clock;
  NullTaskEvents events;
  NullRecorder recorder;
  // The plugin's warnings (a server going away in the restart test) are part of what a reader of
  // a failing test wants to see.
  std::shared_ptr<spdlog::logger> logger = stderrTestLogger("plugin.store-postgres", spdlog::level::warn);
};

Plumbing& plumbing() {
  static Plumbing p;
  return p;
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0' ? nullptr : v;
}

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;
using Res = std::unique_ptr<PGresult, ResDeleter>;

Conn connectAdmin() {
  const auto dsn = serverDsn();
  if (!dsn) throw std::runtime_error(noServerMessage());
  // A short connect timeout: a test that pokes at a server it just stopped must not hang.
  const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
  const char* values[] = {dsn->c_str(), "5", "leoflow-test-admin", nullptr};
  Conn conn{PQconnectdbParams(keys, values, /*expand_dbname=*/1)};
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error("cannot reach the test PostgreSQL: " +
                             std::string(conn != nullptr ? PQerrorMessage(conn.get()) : "no memory"));
  }
  return conn;
}

/// Runs `sql`, keeps the last result.
Res run(Conn& conn, const std::string& sql) {
  if (PQsendQuery(conn.get(), sql.c_str()) == 0) {
    throw std::runtime_error("test PostgreSQL: " + std::string(PQerrorMessage(conn.get())));
  }
  Res last;
  std::string error;
  while (PGresult* r = PQgetResult(conn.get())) {
    const ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && error.empty()) {
      error = PQresultErrorMessage(r);
    }
    last.reset(r);
  }
  if (!error.empty()) throw std::runtime_error("test PostgreSQL: " + error + " (in: " + sql + ")");
  return last;
}

std::string quoteIdent(const std::string& name) {
  std::string out = "\"";
  for (char ch : name) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + "\"";
}

std::string quoteLiteral(const std::string& text) {
  std::string out = "'";
  for (char ch : text) {
    if (ch == '\'') out += '\'';
    out += ch;
  }
  return out + "'";
}

}  // namespace

std::optional<std::string> serverDsn() {
  const char* dsn = env("LEOFLOW_TEST_PG_DSN");
  if (dsn == nullptr) return std::nullopt;
  return std::string(dsn);
}

bool inCi() {
  const char* ci = env("CI");
  return ci != nullptr && std::string(ci) == "true";
}

std::string noServerMessage() {
  std::string m = "LEOFLOW_TEST_PG_DSN is unset: no test PostgreSQL (./dev test starts one, see "
                  "scripts/servers/postgres.sh)";
  if (const char* why = env("LEOFLOW_TEST_PG_ERROR")) m += "; the script said: " + std::string(why);
  if (inCi()) m += "; CI=true, where a missing server is a failure, not a skip";
  return m;
}

int serverPort() {
  const char* port = env("LEOFLOW_TEST_PG_PORT");
  if (port == nullptr) throw std::runtime_error(noServerMessage());
  return std::atoi(port);
}

std::string dsnFor(const std::string& user, const std::string& password) {
  std::string dsn = "postgresql://" + user;
  if (!password.empty()) dsn += ":" + password;
  return dsn + "@127.0.0.1:" + std::to_string(serverPort()) + "/postgres";
}

int closedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

namespace {
std::string firstValue(const Res& r) {
  if (r == nullptr || PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) == 0 ||
      PQnfields(r.get()) == 0) {
    return "";
  }
  return PQgetisnull(r.get(), 0, 0) ? "" : PQgetvalue(r.get(), 0, 0);
}
}  // namespace

struct AdminSession::Impl {
  Conn conn;
};

AdminSession::AdminSession() : impl_(std::make_unique<Impl>(Impl{connectAdmin()})) {}
AdminSession::~AdminSession() = default;

std::string AdminSession::query(const std::string& sql) { return firstValue(run(impl_->conn, sql)); }

std::string adminQuery(const std::string& sql) {
  Conn conn = connectAdmin();
  return firstValue(run(conn, sql));
}

std::vector<std::string> adminColumn(const std::string& sql) {
  Conn conn = connectAdmin();
  Res r = run(conn, sql);
  std::vector<std::string> out;
  if (r == nullptr || PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQnfields(r.get()) == 0) return out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    out.emplace_back(PQgetisnull(r.get(), i, 0) ? "" : PQgetvalue(r.get(), i, 0));
  }
  return out;
}

void dropSchema(const std::string& schema) {
  // Quiet: "does not exist, skipping" notices are noise in a test log.
  adminQuery("SET client_min_messages = warning; DROP SCHEMA IF EXISTS " + quoteIdent(schema) + " CASCADE");
}

bool schemaExists(const std::string& schema) {
  return adminQuery("SELECT count(*) FROM pg_namespace WHERE nspname = " + quoteLiteral(schema)) == "1";
}

std::vector<std::string> tablesOf(const std::string& schema) {
  return adminColumn("SELECT tablename FROM pg_tables WHERE schemaname = " + quoteLiteral(schema) +
                     " ORDER BY tablename");
}

int terminateBackends(const std::string& where_sql) {
  const std::string n = adminQuery(
      "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND (" + where_sql + ")");
  return n.empty() ? 0 : std::atoi(n.c_str());
}

ConfigView storeConfig(const Settings& s) {
  std::string dsn = s.dsn;
  if (dsn.empty()) {
    const auto server = serverDsn();
    if (!server) throw std::runtime_error(noServerMessage());
    dsn = *server;
  }
  return ConfigView("store.config", {{"dsn", dsn},
                                     {"direct_dsn", s.direct_dsn},
                                     {"pool_size", s.pool_size},
                                     {"statement_timeout_ms", s.statement_timeout_ms},
                                     {"connect_timeout_ms", s.connect_timeout_ms},
                                     {"schema", s.schema},
                                     {"lock_id", s.lock_id},
                                     {"lease_ms", s.lease_ms},
                                     {"poll_ms", s.poll_ms}});
}

PluginContext makeContext(const std::string& replica_id) {
  Plumbing& p = plumbing();
  return PluginContext("store-postgres", p.logger, p.clock, p.events, p.recorder, std::chrono::seconds(15),
                       replica_id);
}

bool restartServer() {
  const char* restart = env("LEOFLOW_TEST_PG_RESTART");
  if (restart == nullptr || !serverDsn()) return false;
  const std::string command = std::string("cd / && ") + restart;
  if (std::system(command.c_str()) != 0) return false;
  for (int i = 0; i < 600; ++i) {
    try {
      if (adminQuery("SELECT 1") == "1") return true;
    } catch (const std::exception&) {
      // not up yet
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string pluginDir() {
  const char* dir = env("LEOFLOW_STORE_POSTGRES_DIR");
  return dir == nullptr ? std::string() : std::string(dir);
}

namespace {
const host::LoadedPlugin& plugin() {
  // meson points LEOFLOW_STORE_POSTGRES_DIR at the freshly built module's folder.
  static host::PluginLoader loader(pluginDir().empty() ? std::vector<std::filesystem::path>{}
                                                       : std::vector<std::filesystem::path>{pluginDir()});
  return loader.load("store-postgres");
}
}  // namespace

StoreFactory& storeFactory() { return plugin().storeFactory(); }
LeaderFactory& leaderFactory() { return plugin().leaderFactory(); }

std::unique_ptr<Store> openStore(const Settings& settings, const std::string& replica_id) {
  return storeFactory().create(storeConfig(settings), makeContext(replica_id));
}

std::unique_ptr<Leader> openLeader(const Settings& settings, const std::string& replica_id) {
  return leaderFactory().create(storeConfig(settings), makeContext(replica_id));
}

}  // namespace leoflow::testing::pg
