// `leoflow scheduler`: runs the host until SIGINT or SIGTERM (ARCHITECTURE §5, §8.11).
#pragma once

#include <chrono>

namespace CLI {
class App;
}

namespace leoflow::host {

struct CommandContext;

/// How long `leoflow scheduler` waits before trying an unreachable backend again at start-up
/// (ARCHITECTURE §8.6): 0.5 s after the first attempt, doubling, at most 30 s.
std::chrono::milliseconds startupRetryDelay(int attempt);

/// Adds `scheduler`. A backend that cannot be reached at start-up is retried with back-off until
/// it answers or a signal arrives (then the exit is 0: nothing had started).
void addSchedulerCommand(CLI::App& app, CommandContext& ctx);

}  // namespace leoflow::host
