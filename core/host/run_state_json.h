// The RunState JSON of `leoflow plan` (ARCHITECTURE §5, §8.3), read into planner inputs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "planning/compiled_dag.h"
#include "planning/plan.h"

namespace leoflow::host {

/// A parsed RunState: owns the compiled topology and the per-task arrays a RunSnapshot views.
struct PlanInput {
  planning::CompiledDag dag;
  std::vector<TaskState> states;
  std::vector<std::int32_t> tries;
  std::vector<std::int32_t> max_tries;
  std::vector<std::optional<Timestamp>> ended_at;
  std::vector<std::int32_t> retry_delay_seconds;
  std::optional<Timestamp> now;

  planning::RunSnapshot snapshot() const;
};

/// Reads a RunState. Throws JsonFieldError naming the field on anything invalid: an unknown state
/// or rule, a dependency that is not a task, duplicate ids, a cycle, a wrongly typed value.
/// Absent entries take the §8.3 defaults (state none, tries 1, max_tries 1). Unknown keys are ignored.
PlanInput parseRunState(const nlohmann::json& doc);

/// The plan output: {"transitions":[{"task_id","to"}], "finalize":{"done","state"}}.
nlohmann::ordered_json planToJson(const planning::CompiledDag& dag,
                                  const std::vector<planning::Transition>& plan,
                                  const planning::FinalizeDecision& finalize);

}  // namespace leoflow::host
