#include "settings.h"

#include <stdexcept>

namespace leoflow::plugins::store_redis {
namespace {

constexpr const char* kDefaultUrl = "redis://127.0.0.1:6379/0";

std::string where(const ConfigView& config, const std::string& key) {
  return "key \"" + key + "\" in [" + config.section() + "]";
}

// A key the host already checked and defaulted; still read defensively so a plugin built against
// a different host (or a test handing a bare ConfigView) fails with a message, not a crash.
std::string stringOr(const ConfigView& config, const std::string& key, std::string fallback) {
  return config.has(key) ? config.getString(key) : std::move(fallback);
}

std::chrono::milliseconds positiveMs(const ConfigView& config, const std::string& key,
                                     std::int64_t fallback) {
  const std::int64_t v = config.has(key) ? config.getInt(key) : fallback;
  if (v <= 0) {
    throw std::invalid_argument(where(config, key) + ": must be a positive number of milliseconds, got " +
                                std::to_string(v));
  }
  return std::chrono::milliseconds(v);
}

}  // namespace

std::vector<ConfigKey> configKeys() {
  return {
      {"url", ConfigType::kString, false, ConfigValue{std::string(kDefaultUrl)},
       "redis://[:password@]host:port/db of the Redis server (7.0, AOF on; see the plugin README)"},
      {"connect_timeout_ms", ConfigType::kInt, false, ConfigValue{std::int64_t{2000}},
       "how long connecting to Redis may take, in milliseconds"},
      {"command_timeout_ms", ConfigType::kInt, false, ConfigValue{std::int64_t{2000}},
       "how long one command may take before the call fails as unavailable, in milliseconds"},
      {"key_prefix", ConfigType::kString, false, ConfigValue{std::string("leoflow")},
       "prefix of every key and of the change-feed channel (several installations can share a db)"},
      {"lease_ms", ConfigType::kInt, false, ConfigValue{std::int64_t{3000}},
       "leader only: the lease length; renewed every lease_ms/3, fail-over within one lease"},
  };
}

Settings readSettings(const ConfigView& config) {
  Settings s;
  s.section = config.section();
  s.endpoint = parseRedisUrl(stringOr(config, "url", kDefaultUrl), where(config, "url"));
  s.connect_timeout = positiveMs(config, "connect_timeout_ms", 2000);
  s.command_timeout = positiveMs(config, "command_timeout_ms", 2000);
  s.key_prefix = stringOr(config, "key_prefix", "leoflow");
  if (s.key_prefix.empty()) {
    throw std::invalid_argument(where(config, "key_prefix") + ": must not be empty");
  }
  for (char c : s.key_prefix) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      throw std::invalid_argument(where(config, "key_prefix") + ": \"" + s.key_prefix +
                                  "\" must not contain spaces or control characters");
    }
  }
  s.lease = positiveMs(config, "lease_ms", 3000);
  if (s.lease.count() < 3) {
    throw std::invalid_argument(where(config, "lease_ms") + ": must be at least 3 (renewed every lease_ms/3)");
  }
  return s;
}

}  // namespace leoflow::plugins::store_redis
