#include "factory.h"

#include "local_dispatcher.h"
#include "settings.h"

namespace leoflow::plugins::dispatcher_local {

std::vector<ConfigKey> LocalDispatcherFactory::configKeys() const { return dispatcher_local::configKeys(); }

std::unique_ptr<Dispatcher> LocalDispatcherFactory::create(const ConfigView& config, const PluginContext& context) {
  Settings settings = readSettings(config);
  prepareFolders(settings);
  return std::make_unique<LocalDispatcher>(std::move(settings), context);
}

}  // namespace leoflow::plugins::dispatcher_local
