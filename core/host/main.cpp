// The `leoflow` executable: one CLI11 app, one file per command group.
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "host/command_context.h"
#include "host/exit_codes.h"
#include "host/dags_command.h"
#include "host/plan_command.h"
#include "host/plugins_command.h"
#include "host/runs_command.h"
#include "host/schedule_command.h"
#include "host/scheduler_command.h"
#include "host/status_command.h"
#include "host/store_command.h"
#include "host/version.h"

namespace {

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
  addStatusCommand(app, ctx);
  addStoreCommand(app, ctx);
  addPluginsCommand(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
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
