// The factory the plugin registers.
#pragma once

#include <memory>
#include <vector>

#include <leoflow/dispatcher.h>

namespace leoflow::plugins::dispatcher_local {

class LocalDispatcherFactory final : public DispatcherFactory {
 public:
  std::vector<ConfigKey> configKeys() const override;
  /// Checks the config, creates work_dir, log_dir and state_dir (std::runtime_error naming the
  /// folder when one cannot be made) and adopts what a previous scheduler left in state_dir.
  std::unique_ptr<Dispatcher> create(const ConfigView& config, const PluginContext& context) override;
  /// A reader of <log_dir>'s files: checks the config, creates no folder, starts nothing (no warm
  /// shells, no adoption). README "Logs".
  std::unique_ptr<LogReader> createLogReader(const ConfigView& config, const PluginContext& context) override;
};

}  // namespace leoflow::plugins::dispatcher_local
