#include "host/schedule_command.h"

#include <CLI/CLI.hpp>

#include "host/command_context.h"

namespace leoflow::host {

void addScheduleCommand(CLI::App& app, CommandContext& /*ctx*/) {
  CLI::App* cmd = app.add_subcommand("schedule", "Cron slots: next and due");
  cmd->require_subcommand(1);
}

}  // namespace leoflow::host
