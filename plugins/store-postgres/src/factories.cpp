#include "factories.h"

#include "postgres_leader.h"
#include "postgres_store.h"
#include "settings.h"

namespace leoflow::plugins::store_postgres {

std::vector<ConfigKey> PostgresStoreFactory::configKeys() const { return store_postgres::configKeys(); }

std::unique_ptr<Store> PostgresStoreFactory::create(const ConfigView& config, const PluginContext& context) {
  return std::make_unique<PostgresStore>(readSettings(config), context);
}

// The same keys as the Store: without a [leader] section the host hands the Leader the store's
// table (ARCHITECTURE §8.6).
std::vector<ConfigKey> PostgresLeaderFactory::configKeys() const { return store_postgres::configKeys(); }

std::unique_ptr<Leader> PostgresLeaderFactory::create(const ConfigView& config, const PluginContext& context) {
  return std::make_unique<PostgresLeader>(readSettings(config), context);
}

}  // namespace leoflow::plugins::store_postgres
