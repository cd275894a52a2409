// The plugin's configuration keys and their checked values.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <leoflow/config.h>

#include "redis_url.h"

namespace leoflow::plugins::store_redis {

/// Everything the Store and the Leader read from their table.
struct Settings {
  Endpoint endpoint;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{2000};
  std::string key_prefix = "leoflow";
  std::chrono::milliseconds lease{3000};
  std::string section;  ///< e.g. "store.config", for messages
};

/// The keys both factories declare. ARCHITECTURE §8.6: without a [leader] section the host creates
/// the Leader with the store's table, so the Store and the Leader accept the same union of keys
/// (`lease_ms` is read by the Leader only).
std::vector<ConfigKey> configKeys();

/// Reads and checks the values; throws std::invalid_argument naming the section and the key.
Settings readSettings(const ConfigView& config);

}  // namespace leoflow::plugins::store_redis
