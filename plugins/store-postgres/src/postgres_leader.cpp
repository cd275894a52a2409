#include "postgres_leader.h"

#include <pqxx/except>
#include <pqxx/nontransaction>

#include "pg_errors.h"

namespace leoflow::plugins::store_postgres {
namespace {

// pg_locks shows a bigint advisory key as classid = high 32 bits, objid = low 32 bits, objsubid = 1.
constexpr const char* kHoldsSql =
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
    "AND granted AND objsubid = 1 AND classid::bigint = (($1::bigint >> 32) & 4294967295) "
    "AND objid::bigint = ($1::bigint & 4294967295))";

}  // namespace

PostgresLeader::PostgresLeader(const Settings& settings, const PluginContext& context)
    : settings_(settings), logger_(context.logger()), identity_(context.replicaId()) {
  try {
    connect();
  } catch (const pqxx::broken_connection& e) {
    throwConnectFailure(e.what(), settings_.direct_dsn, settings_.direct_redacted,
                        "key \"" + std::string(settings_.direct_dsn == settings_.dsn ? "dsn" : "direct_dsn") +
                            "\" in [" + settings_.section + "]");
  } catch (const pqxx::sql_error& e) {
    throw std::runtime_error("postgres at " + settings_.direct_redacted + " refused the lock session's settings: " +
                             primaryMessage(e.what()));
  }
  logger_->info("leader lock ready dsn={} lock_id={} identity={} lease_ms={} poll_ms={}", settings_.direct_redacted,
                settings_.lock_id, identity_, settings_.lease.count(), settings_.poll.count());
}

PostgresLeader::~PostgresLeader() = default;

void PostgresLeader::connect() {
  auto session = std::make_unique<Session>(settings_.direct_dsn, logger_);
  // The lease: a session idle for longer than this is ended by the server, and its lock with it.
  session->conn().set_variable("idle_session_timeout", std::to_string(settings_.lease.count()));
  session->conn().set_variable("statement_timeout", std::to_string(settings_.statement_timeout.count()));
  backend_pid_ = session->conn().backendpid();
  session_ = std::move(session);
}

Status PostgresLeader::ensureSession() {
  if (session_ && session_->conn().is_open()) return Status::ok();
  session_.reset();
  try {
    connect();
    return Status::ok();
  } catch (const std::exception& e) {
    session_.reset();
    return unavailable("cannot open the lock session at " + settings_.direct_redacted + ": " +
                       primaryMessage(e.what()));
  }
}

bool PostgresLeader::holds() {
  bool held = false;
  {
    pqxx::nontransaction tx(session_->conn());
    held = tx.exec_params(kHoldsSql, settings_.lock_id)[0][0].as<bool>();
  }
  // libpqxx may have re-opened a dropped session by itself: a new session holds nothing.
  if (session_->conn().backendpid() != backend_pid_) {
    backend_pid_ = session_->conn().backendpid();
    return false;
  }
  return held;
}

Result<bool> PostgresLeader::tryAcquire() {
  // A standby's session may have been ended while it waited (idle_session_timeout, a restart): a
  // session that turns out broken is opened afresh once before the attempt counts as failed.
  for (int attempt = 0;; ++attempt) {
    if (Status s = ensureSession(); !s) return s;
    try {
      // Advisory locks stack per session: take it only when this session does not hold it already.
      bool won = holds();
      if (!won) {
        pqxx::nontransaction tx(session_->conn());
        won = tx.exec_params("SELECT pg_try_advisory_lock($1::bigint)", settings_.lock_id)[0][0].as<bool>();
      }
      if (won && !leading_) logger_->info("lock acquired identity={} lock_id={}", identity_, settings_.lock_id);
      leading_ = won;
      return won;
    } catch (const pqxx::broken_connection& e) {
      session_.reset();
      leading_ = false;
      if (attempt > 0) {
        return unavailable("the lock session at " + settings_.direct_redacted + " broke: " +
                           primaryMessage(e.what()));
      }
    } catch (const pqxx::sql_error& e) {
      return statusFromSqlState(e.sqlstate(), primaryMessage(e.what()));
    }
  }
}

Result<bool> PostgresLeader::check() {
  if (!session_ || !session_->conn().is_open()) {
    // The session is gone, and the lock with it (the server releases a session's locks when it ends).
    if (leading_) logger_->warn("lock lost: the lock session is gone identity={}", identity_);
    session_.reset();
    leading_ = false;
    return false;
  }
  try {
    const bool held = holds();
    if (!held && leading_) logger_->warn("lock lost identity={} lock_id={}", identity_, settings_.lock_id);
    leading_ = held;
    return held;
  } catch (const pqxx::broken_connection& e) {
    // Ended by the server (idle_session_timeout after a pause, a restart, a terminated backend) or cut:
    // either way this session no longer holds the lock.
    if (leading_) {
      logger_->warn("lock lost: the lock session broke identity={} error=\"{}\"", identity_, primaryMessage(e.what()));
    }
    session_.reset();
    leading_ = false;
    return false;
  } catch (const pqxx::sql_error& e) {
    const Status s = statusFromSqlState(e.sqlstate(), primaryMessage(e.what()));
    if (!session_->conn().is_open()) {
      session_.reset();
      leading_ = false;
      return false;
    }
    return s;
  }
}

Status PostgresLeader::release() {
  if (!session_ || !session_->conn().is_open()) {
    leading_ = false;
    return Status::ok();  // no session, no lock
  }
  try {
    bool unlocked = false;
    {
      pqxx::nontransaction tx(session_->conn());
      unlocked = tx.exec_params("SELECT pg_advisory_unlock($1::bigint)", settings_.lock_id)[0][0].as<bool>();
    }
    // BEHAVIOUR §10 item 31: the unlock's answer is checked, and so is what is left.
    const bool still_held = holds();
    if (still_held) {
      logger_->error("lock still held after unlock identity={} lock_id={}", identity_, settings_.lock_id);
      return internalError("the advisory lock " + std::to_string(settings_.lock_id) + " is still held after unlock");
    }
    if (unlocked) {
      logger_->info("lock released identity={} lock_id={}", identity_, settings_.lock_id);
    } else if (leading_) {
      logger_->warn("release found the lock not held by this session identity={} lock_id={}", identity_,
                    settings_.lock_id);
    } else {
      logger_->debug("release skipped: the lock is not ours identity={}", identity_);
    }
    leading_ = false;
    return Status::ok();
  } catch (const pqxx::broken_connection&) {
    session_.reset();
    leading_ = false;
    return Status::ok();  // the session is gone, and the lock with it
  } catch (const pqxx::sql_error& e) {
    return statusFromSqlState(e.sqlstate(), primaryMessage(e.what()));
  }
}

std::chrono::milliseconds PostgresLeader::checkInterval() const { return settings_.poll; }

}  // namespace leoflow::plugins::store_postgres
