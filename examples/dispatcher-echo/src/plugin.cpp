// The only exporting file of the plugin: registers the factory and declares the descriptor the host
// checks before running any of this library's code (ARCHITECTURE §3).
#include <memory>

#include <leoflow/plugin.h>

#include "echo_dispatcher.h"

namespace {

void registerFactories(leoflow::PluginRegistrar& registrar) {
  registrar.addDispatcher(std::make_unique<leoflow::plugins::dispatcher_echo::EchoDispatcherFactory>());
}

}  // namespace

LEOFLOW_PLUGIN("dispatcher-echo", DISPATCHER_ECHO_VERSION,
               "an example third-party dispatcher: any task type, finished with \"echo: <entrypoint>\"",
               registerFactories)
