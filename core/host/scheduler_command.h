// `leoflow scheduler`: runs the host until SIGINT or SIGTERM (ARCHITECTURE §5, §8.11).
#pragma once

namespace CLI {
class App;
}

namespace leoflow::host {

struct CommandContext;

void addSchedulerCommand(CLI::App& app, CommandContext& ctx);

}  // namespace leoflow::host
