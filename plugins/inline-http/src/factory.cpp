#include "factory.h"

#include "http_runner.h"
#include "log_file.h"
#include "settings.h"

namespace leoflow::plugins::inline_http {

std::vector<ConfigKey> HttpRunnerFactory::configKeys() const { return inline_http::configKeys(); }

std::unique_ptr<InlineRunner> HttpRunnerFactory::create(const ConfigView& config, const PluginContext& context) {
  Settings settings = readSettings(config);
  prepareFolders(settings);
  return std::make_unique<HttpRunner>(std::move(settings), context);
}

std::unique_ptr<LogReader> HttpRunnerFactory::createLogReader(const ConfigView& config, const PluginContext& context) {
  (void)context;
  return std::make_unique<HttpLogReader>(readSettings(config).log_dir);
}

}  // namespace leoflow::plugins::inline_http
