// A bounded pool of PostgreSQL sessions shared by the threads that call the Store.
//
// Thread-safe. Each call borrows one session for one statement (a function call is its own
// transaction), so concurrent callers — the engine, dispatch workers, executors' report threads —
// never wait on each other's round trip. At most pool_size sessions are open; a caller that finds
// them all busy waits up to statement_timeout_ms for one. Failures are contained:
// - a session that broke is dropped with every idle one opened before it (they died with the same
//   server), and the call returns kUnavailable at once; the next call connects afresh;
// - while the server cannot be reached, connection attempts back off (25 ms doubling to 1 s) and
//   calls in between fail fast with kUnavailable, so the engine keeps ticking and recovers by itself;
// - every statement is bounded by statement_timeout_ms (set on the session).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <pqxx/connection>
#include <pqxx/errorhandler>
#include <spdlog/logger.h>

#include <leoflow/status.h>

#include "settings.h"

namespace leoflow::plugins::store_postgres {

/// One open session with its notice handler (libpq's notices go to the plugin's log, not stderr).
class Session {
 public:
  /// Connects to `dsn`; throws pqxx::broken_connection when it cannot.
  Session(const std::string& dsn, const std::shared_ptr<spdlog::logger>& logger);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  pqxx::connection& conn() { return *conn_; }

 private:
  class QuietNotices;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<QuietNotices> notices_;
};

/// A statement every session prepares: its name and SQL.
struct PreparedStatement {
  const char* name;
  const char* sql;
};

class ConnectionPool {
 public:
  /// `statements` are prepared on every session the pool opens.
  ConnectionPool(Settings settings, std::shared_ptr<spdlog::logger> logger,
                 std::vector<PreparedStatement> statements = {});
  ~ConnectionPool();

  /// Opens the first session (so create() fails loudly): throws UnavailableError when the server
  /// cannot be reached, std::runtime_error when it refuses us (class 28, an unknown database).
  void start();

  /// Runs `work` on a borrowed session. An exception becomes a Status (pg_errors.h); a broken
  /// session is dropped. `what` names the operation in log lines.
  template <typename T>
  Result<T> run(const char* what, const std::function<T(pqxx::connection&)>& work);
  Status run(const char* what, const std::function<void(pqxx::connection&)>& work);

  const Settings& settings() const noexcept { return settings_; }
  const std::shared_ptr<spdlog::logger>& logger() const noexcept { return logger_; }

  /// Opens a session of its own to `dsn` with this pool's session settings (search_path,
  /// statement_timeout), for the change feed and the migrator. Throws like start().
  std::unique_ptr<Session> openSession(const std::string& dsn) const;

 private:
  struct Pooled {
    std::unique_ptr<Session> session;
    std::uint64_t generation = 0;
  };

  Result<Pooled> acquire();
  void release(Pooled pooled, bool broken);
  /// Runs `body` with a session; maps exceptions. Shared by both run() overloads.
  Status runRaw(const char* what, const std::function<void(pqxx::connection&)>& body);

  const Settings settings_;
  const std::shared_ptr<spdlog::logger> logger_;
  const std::vector<PreparedStatement> statements_;

  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<Pooled> idle_;
  int open_ = 0;                 // idle + borrowed
  std::uint64_t generation_ = 0;  // raised when a session breaks: older ones are not reused
  int connect_failures_ = 0;
  std::chrono::steady_clock::time_point retry_after_{};
  bool down_ = false;  // logged as unavailable; cleared (and logged) by the next success
  std::string last_error_;
};

template <typename T>
Result<T> ConnectionPool::run(const char* what, const std::function<T(pqxx::connection&)>& work) {
  std::optional<T> out;
  Status s = runRaw(what, [&](pqxx::connection& c) { out.emplace(work(c)); });
  if (!s) return s;
  return std::move(*out);
}

}  // namespace leoflow::plugins::store_postgres
