#include "factory.h"

#include "local_dispatcher.h"
#include "log_file.h"
#include "settings.h"

namespace leoflow::plugins::dispatcher_local {

std::vector<ConfigKey> LocalDispatcherFactory::configKeys() const { return dispatcher_local::configKeys(); }

std::unique_ptr<Dispatcher> LocalDispatcherFactory::create(const ConfigView& config, const PluginContext& context) {
  Settings settings = readSettings(config);
  prepareFolders(settings);
  return std::make_unique<LocalDispatcher>(std::move(settings), context);
}

std::unique_ptr<LogReader> LocalDispatcherFactory::createLogReader(const ConfigView& config,
                                                                   const PluginContext& context) {
  (void)context;
  return std::make_unique<LocalLogReader>(readSettings(config));
}

}  // namespace leoflow::plugins::dispatcher_local
