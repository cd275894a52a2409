// The library's only exported symbol: the plugin descriptor (ARCHITECTURE §3, plugin.h).
#include <leoflow/plugin.h>

#include "factories.h"

namespace {

void registerFactories(leoflow::PluginRegistrar& registrar) {
  registrar.addStore(std::make_unique<leoflow::plugins::store_postgres::PostgresStoreFactory>());
  registrar.addLeader(std::make_unique<leoflow::plugins::store_postgres::PostgresLeaderFactory>());
}

}  // namespace

LEOFLOW_PLUGIN("store-postgres", "0.1.0",
               "Store and Leader (advisory lock with a lease) on PostgreSQL 15 via libpqxx; SQL functions for atomic, fenced writes",
               registerFactories)
