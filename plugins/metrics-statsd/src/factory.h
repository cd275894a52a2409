// The factory the plugin registers.
#pragma once

#include <memory>
#include <vector>

#include <leoflow/recorder.h>

namespace leoflow::plugins::metrics_statsd {

class StatsdRecorderFactory final : public RecorderFactory {
 public:
  std::vector<ConfigKey> configKeys() const override;
  /// Checks the config (std::invalid_argument naming the key) and starts the sender. An address
  /// that does not resolve yet is not an error: samples are dropped until it does.
  std::unique_ptr<Recorder> create(const ConfigView& config, const PluginContext& context) override;
};

}  // namespace leoflow::plugins::metrics_statsd
