// The library's only exported symbol: the plugin descriptor (ARCHITECTURE §3, plugin.h).
#include <leoflow/plugin.h>

#include "factory.h"

namespace {

void registerFactories(leoflow::PluginRegistrar& registrar) {
  registrar.addDispatcher(std::make_unique<leoflow::plugins::dispatcher_k8s::K8sDispatcherFactory>());
}

}  // namespace

LEOFLOW_PLUGIN("dispatcher-k8s", "0.1.0", "runs bash and python tasks as Kubernetes pods, one per attempt",
               registerFactories)
