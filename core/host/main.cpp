// The `leoflow` executable: one CLI11 app, one file per command group.
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "host/command_context.h"
#include "host/exit_codes.h"
#include "host/dags_command.h"
#include "host/plan_command.h"
#include "host/plugins_command.h"
#include "host/runs_command.h"
#include "host/tasks_command.h"
#include "host/schedule_command.h"
#include "host/scheduler_command.h"
#include "host/status_command.h"
#include "host/store_command.h"
#include "host/version.h"

namespace {

// "plan, schedule, scheduler, ...": the commands one level of the tree offers.
std::string commandNames(const CLI::App& level) {
  std::vector<std::string> names;
  for (const CLI::App* c : level.get_subcommands([](const CLI::App*) { return true; })) names.push_back(c->get_name());
  return fmt::format("{}", fmt::join(names, ", "));
}

// CLI11 answers a mistyped or missing command with "A subcommand is required": find which word it
// was and name it, with the commands that level offers (ARCHITECTURE §8.6: name the offending
// value). Walks argv down the subcommand tree, skipping options and the values they take.
std::optional<std::string> commandError(const CLI::App& app, int argc, char** argv) {
  const CLI::App* level = &app;
  std::string path = "leoflow";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.size() > 1 && arg[0] == '-') {
      if (arg.find('=') != std::string::npos) continue;
      const CLI::Option* opt = level->get_option_no_throw(arg);
      if (opt != nullptr && opt->get_type_size_max() > 0) ++i;  // the option's value
      continue;
    }
    const auto named = level->get_subcommands([&](const CLI::App* c) { return c->check_name(arg); });
    if (!named.empty()) {
      level = named.front();
      path += " " + arg;
      continue;
    }
    if (level->get_require_subcommand_min() == 0) return std::nullopt;  // a positional argument
    return "unknown command " + (level == &app ? std::string() : path.substr(8) + " ") + arg + " (" + path +
           " commands: " + commandNames(*level) + "; see " + path + " --help)";
  }
  if (level->get_require_subcommand_min() > 0) {
    return (level == &app ? std::string("a command is required") : path.substr(8) + " needs a command") + ": " +
           commandNames(*level) + " (see " + path + " --help)";
  }
  return std::nullopt;
}

std::string versionLine() {
  std::string line = std::string("leoflow ") + leoflow::host::kVersion;
  if (*leoflow::host::kGitRevision != '\0') line += std::string(" (") + leoflow::host::kGitRevision + ")";
  return line;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace leoflow::host;
  CLI::App app{"leoflow: a workflow (DAG) scheduler", "leoflow"};
  app.set_version_flag("--version", versionLine());
  app.require_subcommand(1);
  app.fallthrough();

  CommandContext ctx;
  ctx.in = &std::cin;
  ctx.out = &std::cout;
  ctx.err = &std::cerr;
  app.add_option("--config", ctx.config_path, "Config file (default: $LEOFLOW_CONFIG, then ./leoflow.toml)");

  addPlanCommand(app, ctx);
  addScheduleCommand(app, ctx);
  addSchedulerCommand(app, ctx);
  addDagsCommand(app, ctx);
  addRunsCommand(app, ctx);
  addTasksCommand(app, ctx);
  addStatusCommand(app, ctx);
  addStoreCommand(app, ctx);
  addPluginsCommand(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0) {
      if (auto message = commandError(app, argc, argv)) {
        std::cerr << "leoflow: " << *message << '\n';
        return kExitBadInput;
      }
    }
    const int code = app.exit(e);  // prints help, version or the usage error
    return code == 0 ? kExitOk : kExitBadInput;
  } catch (const CommandError& e) {
    std::cerr << "leoflow: " << e.what() << '\n';
    return e.exitCode();
  } catch (const std::exception& e) {
    std::cerr << "leoflow: " << e.what() << '\n';
    return kExitFailed;
  }
  return ctx.exit_code;
}
