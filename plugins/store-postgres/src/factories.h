// The Store and Leader factories of the store-postgres library.
#pragma once

#include <memory>

#include <leoflow/leader.h>
#include <leoflow/store.h>

namespace leoflow::plugins::store_postgres {

/// create() connects and migrates: UnavailableError when the server cannot be reached,
/// std::runtime_error for a refused login, an unknown database or a schema newer than the plugin;
/// std::invalid_argument for a bad key value. Called on the host's main thread.
class PostgresStoreFactory final : public StoreFactory {
 public:
  std::vector<ConfigKey> configKeys() const override;
  std::unique_ptr<Store> create(const ConfigView& config, const PluginContext& context) override;
};

/// create() opens the lock session; throws like the Store's factory.
class PostgresLeaderFactory final : public LeaderFactory {
 public:
  std::vector<ConfigKey> configKeys() const override;
  std::unique_ptr<Leader> create(const ConfigView& config, const PluginContext& context) override;
};

}  // namespace leoflow::plugins::store_postgres
