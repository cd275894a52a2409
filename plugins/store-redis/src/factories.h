// The Store and Leader factories of the store-redis library.
#pragma once

#include <memory>

#include <leoflow/leader.h>
#include <leoflow/store.h>

namespace leoflow::plugins::store_redis {

class RedisStoreFactory final : public StoreFactory {
 public:
  std::vector<ConfigKey> configKeys() const override;
  std::unique_ptr<Store> create(const ConfigView& config, const PluginContext& context) override;
};

class RedisLeaderFactory final : public LeaderFactory {
 public:
  std::vector<ConfigKey> configKeys() const override;
  std::unique_ptr<Leader> create(const ConfigView& config, const PluginContext& context) override;
};

}  // namespace leoflow::plugins::store_redis
