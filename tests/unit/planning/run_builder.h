// Builds small runs for planner tests by task id, so expectations read like the spec's scenarios.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "planning/compiled_dag.h"
#include "planning/plan.h"

namespace leoflow::planning::testing {

using Moves = std::vector<std::pair<std::string, TaskState>>;

/// A run under test: specs, compiled topology and per-task arrays, all owned.
class TestRun {
 public:
  TestRun& task(std::string id, std::vector<std::string> deps = {},
                TriggerRule rule = TriggerRule::kAllSuccess) {
    TaskSpec spec;
    spec.task_id = std::move(id);
    spec.depends_on = std::move(deps);
    spec.trigger_rule = rule;
    specs_.push_back(std::move(spec));
    return *this;
  }
  TestRun& state(const std::string& id, TaskState s) { states_[id] = s; return *this; }
  TestRun& tries(const std::string& id, int try_number, int max_tries) {
    tries_[id] = {try_number, max_tries};
    return *this;
  }
  TestRun& endedAt(const std::string& id, Timestamp t) { ended_[id] = t; return *this; }
  TestRun& retryDelay(const std::string& id, int seconds) { delays_[id] = seconds; return *this; }
  TestRun& now(Timestamp t) { now_ = t; return *this; }

  /// Compiles (asserting success) and lays out the arrays.
  void build() {
    auto compiled = CompiledDag::compile(specs_);
    ASSERT_TRUE(compiled.isOk()) << compiled.status().message();
    dag_ = std::move(compiled).value();
    const std::size_t n = dag_->size();
    states_v_.assign(n, TaskState::kNone);
    tries_v_.assign(n, 1);
    max_v_.assign(n, 1);
    ended_v_.assign(n, std::nullopt);
    delays_v_.assign(n, 0);
    for (auto& [id, s] : states_) states_v_[index(id)] = s;
    for (auto& [id, tm] : tries_) {
      tries_v_[index(id)] = tm.first;
      max_v_[index(id)] = tm.second;
    }
    for (auto& [id, t] : ended_) ended_v_[index(id)] = t;
    for (auto& [id, d] : delays_) delays_v_[index(id)] = d;
  }

  RunSnapshot snapshot() {
    if (!dag_) build();
    RunSnapshot s;
    s.dag = &*dag_;
    s.states = states_v_;
    s.tries = tries_v_;
    s.max_tries = max_v_;
    s.ended_at = ended_v_;
    s.retry_delay_seconds = delays_v_;
    s.now = now_;
    return s;
  }

  Moves plan() {
    std::vector<Transition> out;
    planRun(snapshot(), out);
    Moves moves;
    for (const auto& t : out) moves.emplace_back(dag_->id(t.task), t.to);
    return moves;
  }

  FinalizeDecision finalize() { return finalizeRun(snapshot()); }

  TaskIndex index(const std::string& id) const { return *dag_->find(id); }

 private:
  std::vector<TaskSpec> specs_;
  std::map<std::string, TaskState> states_;
  std::map<std::string, std::pair<int, int>> tries_;
  std::map<std::string, Timestamp> ended_;
  std::map<std::string, int> delays_;
  std::optional<Timestamp> now_;
  std::optional<CompiledDag> dag_;
  std::vector<TaskState> states_v_;
  std::vector<std::int32_t> tries_v_, max_v_, delays_v_;
  std::vector<std::optional<Timestamp>> ended_v_;
};

/// "linear" of BEHAVIOUR §9: a (no deps) and b (depends on a).
inline TestRun linear() {
  TestRun run;
  run.task("a").task("b", {"a"});
  return run;
}

}  // namespace leoflow::planning::testing

namespace leoflow {
inline void PrintTo(TaskState s, std::ostream* os) { *os << toString(s); }
}  // namespace leoflow
