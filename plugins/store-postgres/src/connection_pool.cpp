#include "connection_pool.h"

#include <algorithm>

#include <pqxx/except>
#include <pqxx/nontransaction>

#include "dsn.h"
#include "pg_errors.h"

namespace leoflow::plugins::store_postgres {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{25};
constexpr std::chrono::milliseconds kMaxBackoff{1000};

}  // namespace

class Session::QuietNotices final : public pqxx::errorhandler {
 public:
  QuietNotices(pqxx::connection_base& c, std::shared_ptr<spdlog::logger> logger)
      : pqxx::errorhandler(c), logger_(std::move(logger)) {}
  bool operator()(const char msg[]) noexcept override {
    std::string text(msg);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    logger_->debug("postgres notice message=\"{}\"", text);
    return false;  // handled: no later handler (libpqxx's default prints to stderr)
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
};

Session::Session(const std::string& dsn, const std::shared_ptr<spdlog::logger>& logger)
    : conn_(std::make_unique<pqxx::connection>(dsn)), notices_(std::make_unique<QuietNotices>(*conn_, logger)) {}

Session::~Session() {
  notices_.reset();  // unregisters from the connection before it goes
  conn_.reset();
}

ConnectionPool::ConnectionPool(Settings settings, std::shared_ptr<spdlog::logger> logger,
                               std::vector<PreparedStatement> statements)
    : settings_(std::move(settings)), logger_(std::move(logger)), statements_(std::move(statements)) {}

ConnectionPool::~ConnectionPool() = default;

std::unique_ptr<Session> ConnectionPool::openSession(const std::string& dsn) const {
  auto session = std::make_unique<Session>(dsn, logger_);
  // set_variable, not a bare SET: libpqxx restores these if it ever re-opens the connection itself.
  session->conn().set_variable("search_path", session->conn().quote_name(settings_.schema));
  session->conn().set_variable("statement_timeout", std::to_string(settings_.statement_timeout.count()));
  // Registered only: libpqxx prepares each on the server the first time it runs.
  for (const PreparedStatement& s : statements_) session->conn().prepare(s.name, s.sql);
  return session;
}

void ConnectionPool::start() {
  std::unique_ptr<Session> session;
  try {
    session = openSession(settings_.dsn);
  } catch (const pqxx::broken_connection& e) {
    throwConnectFailure(e.what(), settings_.dsn, settings_.redacted, "key \"dsn\" in [" + settings_.section + "]");
  } catch (const pqxx::sql_error& e) {
    throwConnectFailure(e.what(), settings_.dsn, settings_.redacted, "key \"dsn\" in [" + settings_.section + "]");
  }
  std::lock_guard lock(mu_);
  ++open_;
  idle_.push_back(Pooled{std::move(session), generation_});
}

Result<ConnectionPool::Pooled> ConnectionPool::acquire() {
  std::uint64_t generation = 0;
  {
    std::unique_lock lock(mu_);
    const auto deadline = std::chrono::steady_clock::now() + settings_.statement_timeout;
    for (;;) {
      while (!idle_.empty()) {
        Pooled p = std::move(idle_.back());
        idle_.pop_back();
        if (p.generation == generation_ && p.session->conn().is_open()) return p;
        --open_;  // stale: opened before the server went away
      }
      if (open_ < settings_.pool_size) break;
      if (freed_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
          open_ >= settings_.pool_size) {
        return unavailable("all " + std::to_string(settings_.pool_size) + " postgres sessions stayed busy for " +
                           std::to_string(settings_.statement_timeout.count()) + " ms (pool_size in [" +
                           settings_.section + "])");
      }
    }
    if (std::chrono::steady_clock::now() < retry_after_) {
      return unavailable("postgres at " + settings_.redacted + " is unreachable: " + last_error_);
    }
    ++open_;
    generation = generation_;
  }
  std::unique_ptr<Session> session;
  std::string error;
  try {
    session = openSession(settings_.dsn);
  } catch (const std::exception& e) {
    error = scrubPassword(primaryMessage(e.what()), settings_.dsn);
  }
  std::lock_guard lock(mu_);
  if (!session) {
    --open_;
    freed_.notify_one();
    ++connect_failures_;
    const auto backoff = std::min(kMaxBackoff, kFirstBackoff * (1 << std::min(connect_failures_ - 1, 6)));
    retry_after_ = std::chrono::steady_clock::now() + backoff;
    last_error_ = error;
    if (!down_) {
      down_ = true;
      logger_->warn("postgres unavailable dsn={} error=\"{}\"", settings_.redacted, error);
    } else {
      logger_->debug("postgres still unavailable dsn={} error=\"{}\" retry_in_ms={}", settings_.redacted, error,
                     backoff.count());
    }
    return unavailable("cannot connect to postgres at " + settings_.redacted + ": " + error);
  }
  connect_failures_ = 0;
  retry_after_ = {};
  if (down_) {
    down_ = false;
    logger_->info("postgres reachable again dsn={}", settings_.redacted);
  }
  return Pooled{std::move(session), generation};
}

void ConnectionPool::release(Pooled pooled, bool broken) {
  std::lock_guard lock(mu_);
  if (broken) {
    if (pooled.generation == generation_) {
      ++generation_;
      open_ -= static_cast<int>(idle_.size());
      idle_.clear();
    }
    --open_;
    if (!down_) {
      down_ = true;
      logger_->warn("postgres unavailable dsn={} error=\"{}\"", settings_.redacted, last_error_);
    }
  } else if (pooled.generation == generation_) {
    idle_.push_back(std::move(pooled));
  } else {
    --open_;
  }
  freed_.notify_one();
}

Status ConnectionPool::runRaw(const char* what, const std::function<void(pqxx::connection&)>& body) {
  auto pooled = acquire();
  if (!pooled) return pooled.status();
  Status result;
  bool broken = false;
  try {
    body(pooled->session->conn());
  } catch (const pqxx::broken_connection& e) {
    broken = true;
    result = unavailable("postgres at " + settings_.redacted + ": " + primaryMessage(e.what()));
  } catch (const pqxx::in_doubt_error& e) {
    broken = true;
    result = unavailable("postgres at " + settings_.redacted + ": the outcome of " + what + " is unknown: " +
                         primaryMessage(e.what()));
  } catch (const pqxx::transaction_rollback& e) {
    // A deadlock or serialization failure rolled the call back whole: retrying later helps.
    result = unavailable(std::string(what) + ": " + primaryMessage(e.what()));
  } catch (const pqxx::sql_error& e) {
    result = statusFromSqlState(e.sqlstate(), primaryMessage(e.what()));
    broken = !pooled->session->conn().is_open();
    if (result.code() == StatusCode::kInternal) {
      logger_->error("statement failed operation={} error=\"{}\"", what, result.message());
    }
  } catch (const std::exception& e) {
    broken = !pooled->session->conn().is_open();
    result = broken ? unavailable("postgres at " + settings_.redacted + ": " + primaryMessage(e.what()))
                    : internalError(std::string(what) + ": " + e.what());
  }
  if (broken) {
    std::lock_guard lock(mu_);
    last_error_ = result.message();
  }
  release(std::move(*pooled), broken);
  return result;
}

Status ConnectionPool::run(const char* what, const std::function<void(pqxx::connection&)>& work) {
  return runRaw(what, work);
}

}  // namespace leoflow::plugins::store_postgres
