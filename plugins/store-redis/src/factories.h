// The Store and Leader factories of the store-redis library. create() connects and loads the
// scripts: it throws UnavailableError when Redis cannot be reached, does not answer in time or is not
// ready yet (ARCHITECTURE §8.6: the scheduler retries, a one-shot command exits 3), and
// std::invalid_argument / std::runtime_error for a configuration it will never accept (exit 2).
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
