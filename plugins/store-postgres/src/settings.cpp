#include "settings.h"

#include <regex>
#include <stdexcept>

#include "dsn.h"

namespace leoflow::plugins::store_postgres {
namespace {

std::string where(const ConfigView& config, const std::string& key) {
  return "key \"" + key + "\" in [" + config.section() + "]";
}

// Keys the host already checked and defaulted; read defensively so a bare ConfigView (a test, a host
// of another version) fails with a message, not a crash.
std::string stringOr(const ConfigView& config, const std::string& key, std::string fallback) {
  return config.has(key) ? config.getString(key) : std::move(fallback);
}

std::int64_t intOr(const ConfigView& config, const std::string& key, std::int64_t fallback) {
  return config.has(key) ? config.getInt(key) : fallback;
}

std::chrono::milliseconds positiveMs(const ConfigView& config, const std::string& key, std::int64_t fallback,
                                     std::int64_t minimum = 1) {
  const std::int64_t v = intOr(config, key, fallback);
  if (v < minimum) {
    throw std::invalid_argument(where(config, key) + ": must be at least " + std::to_string(minimum) +
                                " milliseconds, got " + std::to_string(v));
  }
  return std::chrono::milliseconds(v);
}

// The parameters every session gets unless the DSN sets them: a bounded connect, keepalives so a
// vanished peer is noticed, and a name an operator recognises in pg_stat_activity.
std::string completeDsn(const std::string& dsn, std::chrono::milliseconds connect_timeout) {
  const auto seconds = std::max<std::int64_t>(1, (connect_timeout.count() + 999) / 1000);
  return withDefaultParams(dsn, {{"connect_timeout", std::to_string(seconds)},
                                 {"application_name", "leoflow"},
                                 {"keepalives", "1"},
                                 {"keepalives_idle", "5"},
                                 {"keepalives_interval", "2"},
                                 {"keepalives_count", "3"}});
}

}  // namespace

std::vector<ConfigKey> configKeys() {
  return {
      {"dsn", ConfigType::kString, true, std::nullopt,
       "libpq connection string or URI (postgresql://user:${PGPASSWORD}@host:5432/db?sslmode=verify-full)"},
      {"direct_dsn", ConfigType::kString, false, ConfigValue{std::string()},
       "a session that bypasses a transaction-mode PgBouncer, for the leader lock and LISTEN (default: dsn)"},
      {"pool_size", ConfigType::kInt, false, ConfigValue{std::int64_t{8}},
       "most connections the store opens for its callers (the change feed has one more)"},
      {"statement_timeout_ms", ConfigType::kInt, false, ConfigValue{std::int64_t{5000}},
       "how long one statement may run before the call fails as unavailable"},
      {"connect_timeout_ms", ConfigType::kInt, false, ConfigValue{std::int64_t{2000}},
       "how long connecting may take (libpq counts whole seconds)"},
      {"schema", ConfigType::kString, false, ConfigValue{std::string("leoflow")},
       "schema holding the tables; several installations can share a database"},
      {"lock_id", ConfigType::kInt, false, ConfigValue{kDefaultLockId},
       "leader only: the advisory lock key (the seed's LockID by default)"},
      {"lease_ms", ConfigType::kInt, false, ConfigValue{std::int64_t{3000}},
       "leader only: the lock session's idle_session_timeout; a frozen leader loses the lock within it"},
      {"poll_ms", ConfigType::kInt, false, ConfigValue{std::int64_t{500}},
       "leader only: how often the leader checks the lock and standbys try for it (at most lease_ms/3)"},
  };
}

Settings readSettings(const ConfigView& config) {
  Settings s;
  s.section = config.section();
  const std::string dsn = stringOr(config, "dsn", "");
  if (dsn.empty()) throw std::invalid_argument(where(config, "dsn") + ": must not be empty");
  const std::string direct = stringOr(config, "direct_dsn", "");
  s.connect_timeout = positiveMs(config, "connect_timeout_ms", 2000);
  s.statement_timeout = positiveMs(config, "statement_timeout_ms", 5000);
  s.dsn = completeDsn(dsn, s.connect_timeout);
  s.direct_dsn = direct.empty() ? s.dsn : completeDsn(direct, s.connect_timeout);
  s.redacted = redactDsn(dsn);
  s.direct_redacted = direct.empty() ? s.redacted : redactDsn(direct);

  const std::int64_t pool = intOr(config, "pool_size", 8);
  if (pool < 1 || pool > 1000) {
    throw std::invalid_argument(where(config, "pool_size") + ": must be between 1 and 1000, got " +
                                std::to_string(pool));
  }
  s.pool_size = static_cast<int>(pool);

  s.schema = stringOr(config, "schema", "leoflow");
  // A plain lower-case identifier, short enough that "<schema>_changes" is a valid channel name.
  static const std::regex kIdentifier("[a-z_][a-z0-9_]{0,47}");
  if (!std::regex_match(s.schema, kIdentifier)) {
    throw std::invalid_argument(where(config, "schema") + ": \"" + s.schema +
                                "\" must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 48 characters)");
  }
  s.lock_id = intOr(config, "lock_id", kDefaultLockId);
  s.lease = positiveMs(config, "lease_ms", 3000, 300);
  s.poll = positiveMs(config, "poll_ms", 500);
  if (s.poll > s.lease / 3) {
    throw std::invalid_argument(where(config, "poll_ms") + ": must be at most lease_ms/3 (" +
                                std::to_string(s.lease.count() / 3) + "), got " + std::to_string(s.poll.count()));
  }
  return s;
}

}  // namespace leoflow::plugins::store_postgres
