// `leoflow plan`: the pure planner over a RunState JSON on stdin (ARCHITECTURE §5, §8.3).
#pragma once

#include <iosfwd>

namespace CLI {
class App;
}

namespace leoflow::host {

struct CommandContext;

/// Reads a RunState JSON from `in`, writes the plan JSON to `out`; returns the exit code (messages
/// for bad input go to `err`).
int runPlan(std::istream& in, std::ostream& out, std::ostream& err);

void addPlanCommand(CLI::App& app, CommandContext& ctx);

}  // namespace leoflow::host
