// Start-up failures as exit codes (ARCHITECTURE §8.6): a config or plugin problem is bad input (2),
// a backend that cannot be reached is 3. Shared by `leoflow scheduler` and the one-shot commands.
#pragma once

#include <utility>

#include "host/backends.h"
#include "host/config.h"
#include "host/exit_codes.h"
#include "host/plugin_loader.h"

namespace leoflow::host {

/// Runs `start` (loading the config, the plugins, the backends) and rethrows what it throws as the
/// CommandError with the matching exit code and the original message.
template <class Start>
decltype(auto) withStartupExitCodes(Start&& start) {
  try {
    return std::forward<Start>(start)();
  } catch (const ConfigError& e) {
    throw CommandError(kExitBadInput, e.what());
  } catch (const PluginError& e) {
    throw CommandError(kExitBadInput, e.what());
  } catch (const StartupError& e) {
    throw CommandError(kExitBadInput, e.what());
  } catch (const BackendUnavailable& e) {
    throw CommandError(kExitUnreachable, e.what());
  }
}

}  // namespace leoflow::host
