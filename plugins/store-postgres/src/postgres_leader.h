// Leader by advisory lock (ARCHITECTURE §2, §8.7; BEHAVIOUR §5 with §10 items 29–31 fixed):
// pg_try_advisory_lock(lock_id) on one dedicated, long-lived session (direct_dsn when set).
//
// The lock behaves like a lease: the session sets idle_session_timeout to lease_ms, so a leader
// that stops running (SIGSTOP, a hung process) has its session ended by the server within one lease
// and another replica takes over; a SIGKILLed leader's session ends at once. check() asks pg_locks
// whether this very session still holds the lock; a broken session means the lock is gone. The lock
// is re-entrant per session, so tryAcquire() never takes it twice, and release() verifies that the
// unlock really released it. The fencing term comes from the Store's claimTerm.
#pragma once

#include <memory>

#include <leoflow/context.h>
#include <leoflow/leader.h>

#include "connection_pool.h"

namespace leoflow::plugins::store_postgres {

class PostgresLeader final : public Leader {
 public:
  /// Connects; throws UnavailableError when the server cannot be reached, std::runtime_error when it
  /// refuses us.
  PostgresLeader(const Settings& settings, const PluginContext& context);
  ~PostgresLeader() override;

  Result<bool> tryAcquire() override;
  Result<bool> check() override;
  Status release() override;
  std::chrono::milliseconds checkInterval() const override;

 private:
  /// Opens the lock session: throws pqxx exceptions.
  void connect();
  /// The session, opened on demand; kUnavailable when it cannot be.
  Status ensureSession();
  /// Whether this session holds the lock now (pg_locks).
  bool holds();

  const Settings settings_;
  const std::shared_ptr<spdlog::logger> logger_;
  const std::string identity_;
  std::unique_ptr<Session> session_;
  int backend_pid_ = 0;
  bool leading_ = false;  // only for log lines: the server is the truth
};

}  // namespace leoflow::plugins::store_postgres
