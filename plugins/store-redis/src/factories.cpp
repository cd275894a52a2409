#include "factories.h"

#include "redis_leader.h"
#include "redis_store.h"
#include "settings.h"

namespace leoflow::plugins::store_redis {

std::vector<ConfigKey> RedisStoreFactory::configKeys() const { return store_redis::configKeys(); }

std::unique_ptr<Store> RedisStoreFactory::create(const ConfigView& config, const PluginContext& context) {
  return std::make_unique<RedisStore>(readSettings(config), context);
}

// The same keys as the Store: without a [leader] section the host hands the Leader the store's
// table (ARCHITECTURE §8.6).
std::vector<ConfigKey> RedisLeaderFactory::configKeys() const { return store_redis::configKeys(); }

std::unique_ptr<Leader> RedisLeaderFactory::create(const ConfigView& config, const PluginContext& context) {
  return std::make_unique<RedisLeader>(readSettings(config), context);
}

}  // namespace leoflow::plugins::store_redis
