// The library's only exported symbol: the plugin descriptor (ARCHITECTURE §3, plugin.h).
#include <leoflow/plugin.h>

#include "factories.h"

namespace {

void registerFactories(leoflow::PluginRegistrar& registrar) {
  registrar.addStore(std::make_unique<leoflow::plugins::store_redis::RedisStoreFactory>());
  registrar.addLeader(std::make_unique<leoflow::plugins::store_redis::RedisLeaderFactory>());
}

}  // namespace

LEOFLOW_PLUGIN("store-redis", "0.1.0", "Store and Leader (lease) on Redis 7 via hiredis; Lua scripts for atomic, fenced writes",
               registerFactories)
