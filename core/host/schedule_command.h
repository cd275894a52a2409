// `leoflow schedule next|due`: cron slots from the command line (ARCHITECTURE §5, §8.4).
#pragma once

#include <iosfwd>

namespace CLI {
class App;
}

namespace leoflow::host {

struct CommandContext;

void addScheduleCommand(CLI::App& app, CommandContext& ctx);

}  // namespace leoflow::host
