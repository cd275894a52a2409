#include "host/plan_command.h"

#include <iostream>
#include <iterator>

#include <CLI/CLI.hpp>

#include "host/command_context.h"
#include "host/exit_codes.h"
#include "host/json_fields.h"
#include "host/run_state_json.h"

namespace leoflow::host {

int runPlan(std::istream& in, std::ostream& out, std::ostream& err) {
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  try {
    const PlanInput input = parseRunState(parseJsonText(text, "stdin"));
    const planning::RunSnapshot snapshot = input.snapshot();
    std::vector<planning::Transition> plan;
    planning::planRun(snapshot, plan);
    // §8.3: finalize judges the input snapshot, as the seed's advance() does.
    const planning::FinalizeDecision finalize = planning::finalizeRun(snapshot);
    out << planToJson(input.dag, plan, finalize).dump(2) << '\n';
    return kExitOk;
  } catch (const JsonFieldError& e) {
    err << "leoflow plan: " << e.what() << '\n';
    return kExitBadInput;
  }
}

void addPlanCommand(CLI::App& app, CommandContext& ctx) {
  CLI::App* cmd = app.add_subcommand(
      "plan", "Plan one run: read a RunState JSON on stdin, print the transitions and the finalize verdict");
  cmd->footer(
      "Input:  {\"tasks\":[{\"task_id\",\"depends_on\":[],\"trigger_rule\"?}], \"states\":{id:state},\n"
      "         \"tries\":{}, \"max_tries\":{}, \"ended_at\":{}, \"retry_delay_seconds\":{}, \"now\"?}\n"
      "Output: {\"transitions\":[{\"task_id\",\"to\"}], \"finalize\":{\"done\",\"state\"}}");
  cmd->callback([&ctx] { ctx.exit_code = runPlan(*ctx.in, *ctx.out, *ctx.err); });
}

}  // namespace leoflow::host
