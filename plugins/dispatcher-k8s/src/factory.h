// The factory the plugin registers.
#pragma once

#include <memory>
#include <vector>

#include <leoflow/dispatcher.h>

namespace leoflow::plugins::dispatcher_k8s {

class K8sDispatcherFactory final : public DispatcherFactory {
 public:
  std::vector<ConfigKey> configKeys() const override;
  /// Checks the config, resolves the connection (kubeconfig or in-cluster), lists and adopts the
  /// installation's pods, starts the watch. std::invalid_argument for a config it can never accept,
  /// std::runtime_error for refused credentials or certificate, UnavailableError when unreachable.
  std::unique_ptr<Dispatcher> create(const ConfigView& config, const PluginContext& context) override;
  /// Reads saved logs, and live ones through the API; starts nothing.
  std::unique_ptr<LogReader> createLogReader(const ConfigView& config, const PluginContext& context) override;
};

}  // namespace leoflow::plugins::dispatcher_k8s
