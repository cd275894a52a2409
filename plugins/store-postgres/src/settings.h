// The plugin's configuration keys and their checked values.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <leoflow/config.h>

namespace leoflow::plugins::store_postgres {

/// The seed's LockID: "LeoFlow" in ASCII (BEHAVIOUR §5).
inline constexpr std::int64_t kDefaultLockId = 0x4C656F466C6F77;

/// Everything the Store and the Leader read from their table.
struct Settings {
  std::string dsn;              ///< as configured, with the plugin's default parameters added
  std::string direct_dsn;       ///< the session for the lock and LISTEN (bypasses a pooler); = dsn when unset
  std::string redacted;         ///< dsn without its password, for messages
  std::string direct_redacted;
  int pool_size = 8;
  std::chrono::milliseconds statement_timeout{5000};
  std::chrono::milliseconds connect_timeout{2000};
  std::string schema = "leoflow";
  std::int64_t lock_id = kDefaultLockId;
  std::chrono::milliseconds lease{3000};
  std::chrono::milliseconds poll{500};
  std::string section;  ///< e.g. "store.config", for messages

  /// The change-feed channel of this installation: "<schema>_changes".
  std::string channel() const { return schema + "_changes"; }
  /// The channel of run changes only (Store::subscribeRuns; migration 019). It ends in "_runs", so
  /// it is never another schema's channel().
  std::string runChannel() const { return channel() + "_runs"; }
};

/// The keys both factories declare: without a [leader] section the host creates the Leader with the
/// store's table (ARCHITECTURE §8.6), so both accept the union (lock_id, lease_ms and poll_ms are read
/// by the Leader only).
std::vector<ConfigKey> configKeys();

/// Reads and checks the values; throws std::invalid_argument naming the section and the key.
Settings readSettings(const ConfigView& config);

}  // namespace leoflow::plugins::store_postgres
