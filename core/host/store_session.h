// Opening the store for a one-shot command: the config, the plugin, the connection — with the exit
// codes of ARCHITECTURE §8.6 (2 for a config or plugin problem, 3 for an unreachable backend).
#pragma once

#include <memory>

#include "host/backends.h"
#include "host/command_context.h"
#include "host/config.h"
#include "host/plugin_loader.h"

namespace leoflow::host {

class StoreSession {
 public:
  /// Throws CommandError with exit code 2 or 3 and a message naming the file, key or plugin.
  /// `scope`: kLogs also makes the executors' log readers (`tasks logs`).
  explicit StoreSession(const CommandContext& ctx, Backends::Scope scope = Backends::Scope::kStoreOnly);
  ~StoreSession();

  Store& store() { return backends_->store(); }
  Backends& backends() { return *backends_; }
  const HostConfig& config() const { return config_; }
  const Clock& clock() const { return backends_->clock(); }

 private:
  HostConfig config_;
  std::unique_ptr<PluginLoader> loader_;
  std::unique_ptr<Backends> backends_;
};

/// Turns a store failure into a CommandError: kUnavailable → unreachable (exit 3, HTTP 503),
/// kNotFound → not found, kConflict/kAlreadyExists → conflict, kInvalidArgument → bad input (exit 2;
/// HTTP 404, 409, 400), anything else → exit 1 (HTTP 500). Never returns.
[[noreturn]] void failWith(const Status& status, const std::string& what);

}  // namespace leoflow::host
