// The factory the plugin registers.
#pragma once

#include <memory>
#include <vector>

#include <leoflow/inline_runner.h>

namespace leoflow::plugins::inline_http {

class HttpRunnerFactory final : public InlineRunnerFactory {
 public:
  std::vector<ConfigKey> configKeys() const override;
  /// Checks the config, creates log_dir, starts the transfer and reporter threads.
  std::unique_ptr<InlineRunner> create(const ConfigView& config, const PluginContext& context) override;
  /// A reader of <log_dir>'s files: creates nothing, starts nothing.
  std::unique_ptr<LogReader> createLogReader(const ConfigView& config, const PluginContext& context) override;
};

}  // namespace leoflow::plugins::inline_http
