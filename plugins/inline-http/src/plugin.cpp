// The library's only exported symbol: the plugin descriptor (ARCHITECTURE §3, plugin.h).
#include <leoflow/plugin.h>

#include "factory.h"

namespace {

void registerFactories(leoflow::PluginRegistrar& registrar) {
  registrar.addInlineRunner(std::make_unique<leoflow::plugins::inline_http::HttpRunnerFactory>());
}

}  // namespace

LEOFLOW_PLUGIN("inline-http", "0.1.0",
               "runs inline http_api tasks inside the scheduler on libcurl's multi interface", registerFactories)
