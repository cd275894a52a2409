// Properties of planning over random DAGs: determinism, only legal moves, the incremental planner
// agreeing with the full one at every step, and every run driven to completion finalizing.
#include <algorithm>
#include <numeric>
#include <random>

#include <gtest/gtest.h>

#include "planning/incremental_planner.h"
#include "planning/plan.h"
#include "planning/transitions.h"

namespace leoflow::planning {
namespace {

using Rng = std::mt19937_64;

int uniform(Rng& rng, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
bool chance(Rng& rng, double p) { return std::bernoulli_distribution(p)(rng); }

// A random DAG: a random topological order, edges only forward in it, then declared in a shuffled
// order so dependencies may name tasks declared later.
std::vector<TaskSpec> randomTasks(Rng& rng, int n) {
  std::vector<TaskSpec> specs(static_cast<std::size_t>(n));
  for (int k = 0; k < n; ++k) {
    TaskSpec& t = specs[static_cast<std::size_t>(k)];
    t.task_id = "t" + std::to_string(k);
    const int fan_in = k == 0 ? 0 : uniform(rng, 0, std::min(k, 4));
    for (int d = 0; d < fan_in; ++d) t.depends_on.push_back("t" + std::to_string(uniform(rng, 0, k - 1)));
    t.trigger_rule = kAllTriggerRules[static_cast<std::size_t>(uniform(rng, 0, kTriggerRuleCount - 1))];
    if (chance(rng, 0.5)) t.trigger_rule = TriggerRule::kAllSuccess;  // the common case, weighted up
    t.retries = chance(rng, 0.4) ? uniform(rng, 1, 2) : 0;
    t.retry_delay_seconds = chance(rng, 0.5) ? uniform(rng, 1, 30) : 0;
  }
  std::shuffle(specs.begin(), specs.end(), rng);
  return specs;
}

// One run's mutable arrays plus the snapshot view over them.
struct SimRun {
  explicit SimRun(const std::vector<TaskSpec>& specs) : dag(CompiledDag::compile(specs).value()) {
    const std::size_t n = dag.size();
    states.assign(n, TaskState::kNone);
    tries.assign(n, 1);
    ended_at.assign(n, std::nullopt);
    for (std::size_t i = 0; i < n; ++i) {
      max_tries.push_back(specs[i].maxTries());
      delays.push_back(specs[i].retry_delay_seconds);
    }
  }
  RunSnapshot snapshot(std::optional<Timestamp> now) const {
    RunSnapshot s;
    s.dag = &dag;
    s.states = states;
    s.tries = tries;
    s.max_tries = max_tries;
    s.ended_at = ended_at;
    s.retry_delay_seconds = delays;
    s.now = now;
    return s;
  }
  CompiledDag dag;
  std::vector<TaskState> states;
  std::vector<std::int32_t> tries, max_tries, delays;
  std::vector<std::optional<Timestamp>> ended_at;
};

TEST(PlannerProperties, OnlyLegalMovesEachTaskAtMostOnceAndDeterministic) {
  Rng rng(20261127);
  std::vector<Transition> first, second;
  for (int round = 0; round < 400; ++round) {
    SimRun run(randomTasks(rng, uniform(rng, 1, 30)));
    for (auto& s : run.states) s = kAllTaskStates[static_cast<std::size_t>(uniform(rng, 0, 8))];
    for (std::size_t i = 0; i < run.tries.size(); ++i) run.tries[i] = uniform(rng, 1, run.max_tries[i]);
    const Timestamp now{std::chrono::seconds{1'800'000'000}};
    for (auto& e : run.ended_at) {
      if (chance(rng, 0.5)) e = now - std::chrono::seconds{uniform(rng, 0, 40)};
    }
    planRun(run.snapshot(now), first);
    planRun(run.snapshot(now), second);
    ASSERT_EQ(first, second);
    std::vector<int> seen(run.dag.size(), 0);
    for (const Transition& t : first) {
      EXPECT_TRUE(canTransition(run.states[t.task], t.to))
          << toString(run.states[t.task]) << " -> " << toString(t.to) << " for " << run.dag.id(t.task);
      EXPECT_EQ(++seen[t.task], 1) << "task planned twice: " << run.dag.id(t.task);
    }
  }
}

// Drives a run with a random executor; at every step the incremental planner (kept up to date, and
// also rebuilt from scratch) must agree with the full planner, and the run must end.
void driveToCompletion(Rng& rng, const std::vector<TaskSpec>& specs, int* steps_taken) {
  SimRun run(specs);
  IncrementalPlanner inc(run.dag);
  inc.reset(run.snapshot(std::nullopt));
  Timestamp now{std::chrono::seconds{1'800'000'000}};
  std::vector<Transition> full, incremental, rebuilt, limited;
  const std::uint32_t n = run.dag.size();
  int step = 0;
  const int max_steps = 50 + 40 * static_cast<int>(n);
  for (; step < max_steps; ++step) {
    now += std::chrono::seconds{uniform(rng, 0, 20)};
    planRun(run.snapshot(now), full);
    inc.plan(now, incremental);
    ASSERT_EQ(full, incremental) << "step " << step;
    // With a quota on queueing: the same moves without the scheduled → queued ones past the first
    // `quota` in task order, and the count of those left out; asking so changes nothing planned.
    const std::size_t quota = static_cast<std::size_t>(uniform(rng, 0, 3));
    std::vector<Transition> expected;
    std::size_t expected_left_out = 0, queued_moves = 0;
    for (const Transition& t : full) {
      if (run.states[t.task] == TaskState::kScheduled && ++queued_moves > quota) {
        ++expected_left_out;
      } else {
        expected.push_back(t);
      }
    }
    ASSERT_EQ(inc.plan(now, limited, quota), expected_left_out) << "step " << step << ", quota " << quota;
    ASSERT_EQ(expected, limited) << "step " << step << ", quota " << quota;
    inc.plan(now, incremental);
    ASSERT_EQ(full, incremental) << "after a plan with a quota, step " << step;
    const FinalizeDecision verdict = finalizeRun(run.snapshot(now));
    ASSERT_EQ(verdict, inc.finalize()) << "step " << step;
    if (chance(rng, 0.1)) {
      IncrementalPlanner fresh(run.dag);
      fresh.reset(run.snapshot(now));
      fresh.plan(now, rebuilt);
      ASSERT_EQ(full, rebuilt) << "rebuilt planner, step " << step;
      ASSERT_EQ(verdict, fresh.finalize());
    }
    if (verdict.done) {
      for (std::uint32_t i = 0; i < n; ++i) EXPECT_TRUE(isTerminal(run.states[i])) << run.dag.id(i);
      const bool any_failed = std::any_of(run.states.begin(), run.states.end(), [](TaskState s) {
        return s == TaskState::kFailed || s == TaskState::kUpstreamFailed;
      });
      EXPECT_EQ(verdict.state, any_failed ? DagRunState::kFailed : DagRunState::kSuccess);
      *steps_taken = step;
      return;
    }

    auto write = [&](TaskIndex i, TaskState to) {
      ASSERT_TRUE(canTransition(run.states[i], to)) << toString(run.states[i]) << " -> " << toString(to);
      if (to == TaskState::kNone) {  // the next attempt
        ++run.tries[i];
        run.ended_at[i] = std::nullopt;
      }
      if (to == TaskState::kFailed || to == TaskState::kSuccess) run.ended_at[i] = now;
      run.states[i] = to;
      inc.setTask(i, to, run.tries[i], run.max_tries[i], run.ended_at[i]);
    };
    // The engine applies the plan; now and then a write is lost and must be planned again.
    for (const Transition& t : full) {
      if (chance(rng, 0.9)) write(t.task, t.to);
    }
    // A random executor.
    for (TaskIndex i = 0; i < n; ++i) {
      const TaskState s = run.states[i];
      if (s == TaskState::kQueued) {
        if (chance(rng, 0.1)) {
          write(i, TaskState::kSuccess);  // a finished report overtaking the running one
        } else if (chance(rng, 0.6)) {
          write(i, TaskState::kRunning);
        }
      } else if (s == TaskState::kRunning) {
        if (chance(rng, 0.4)) {
          write(i, TaskState::kSuccess);
        } else if (chance(rng, 0.25)) {
          write(i, TaskState::kFailed);
        }
      }
    }
  }
  FAIL() << "run did not finalize within " << max_steps << " steps";
}

TEST(PlannerProperties, IncrementalAgreesWithFullAndEveryRunFinalizes) {
  Rng rng(42);
  int total_steps = 0;
  for (int round = 0; round < 300; ++round) {
    int steps = 0;
    driveToCompletion(rng, randomTasks(rng, uniform(rng, 1, 40)), &steps);
    if (::testing::Test::HasFatalFailure()) return;
    total_steps += steps;
  }
  EXPECT_GT(total_steps, 300);  // the runs really went through many plans
}

TEST(PlannerProperties, AFailingChainWithRetriesWaitsOutEveryDelay) {
  // a fails on every try: 3 tries, 10 s apart; b is upstream_failed only after the last one.
  std::vector<TaskSpec> specs(2);
  specs[0].task_id = "a";
  specs[0].retries = 2;
  specs[0].retry_delay_seconds = 10;
  specs[1].task_id = "b";
  specs[1].depends_on = {"a"};
  SimRun run(specs);
  IncrementalPlanner inc(run.dag);
  inc.reset(run.snapshot(std::nullopt));
  Timestamp now{std::chrono::seconds{1'800'000'000}};
  std::vector<Transition> plan;
  int attempts = 0;
  for (int step = 0; step < 100 && !inc.finalize().done; ++step) {
    now += std::chrono::seconds{1};
    inc.plan(now, plan);
    for (const Transition& t : plan) {
      std::int32_t tries = inc.tryNumber(t.task);
      if (t.to == TaskState::kNone) ++tries;
      inc.setTask(t.task, t.to, tries, inc.maxTries(t.task), t.to == TaskState::kNone ? std::nullopt : std::optional(now));
      if (t.to == TaskState::kQueued && t.task == 0) {
        ++attempts;
        inc.setTask(0, TaskState::kFailed, inc.tryNumber(0), 3, now);  // fails at once
      }
    }
  }
  EXPECT_EQ(attempts, 3);
  EXPECT_EQ(inc.state(1), TaskState::kUpstreamFailed);
  EXPECT_EQ(inc.finalize(), (FinalizeDecision{true, DagRunState::kFailed}));
}

TEST(PlannerProperties, AQuotaOnQueueingOffersTheFirstScheduledTasksAndCountsTheRest) {
  // A fan-out of 300 (several words of bits) waiting in `scheduled`, as the engine sees it while
  // the executors are full; one child is still `none` and must be offered whatever the quota.
  std::vector<TaskSpec> specs(301);
  specs[0].task_id = "root";
  for (std::size_t i = 1; i < specs.size(); ++i) {
    specs[i].task_id = "c" + std::to_string(i);
    specs[i].depends_on = {"root"};
  }
  SimRun run(specs);
  const TaskIndex root = *run.dag.find("root");
  const TaskIndex late = *run.dag.find("c250");
  for (TaskIndex i = 0; i < run.dag.size(); ++i) run.states[i] = TaskState::kScheduled;
  run.states[root] = TaskState::kSuccess;
  run.states[late] = TaskState::kNone;
  IncrementalPlanner inc(run.dag);
  inc.reset(run.snapshot(std::nullopt));
  const Timestamp now{std::chrono::seconds{1'800'000'000}};
  std::vector<Transition> all, some;
  inc.plan(now, all);
  ASSERT_EQ(all.size(), 300u);
  std::vector<Transition> queued_first;  // what the quota keeps: the first scheduled ones, in task order
  for (const Transition& t : all) {
    if (t.to == TaskState::kQueued) queued_first.push_back(t);
  }
  for (std::size_t quota : {0u, 1u, 63u, 64u, 65u, 130u, 299u, 400u}) {
    const std::size_t left_out = inc.plan(now, some, quota);
    const std::size_t kept = std::min<std::size_t>(quota, 299);
    EXPECT_EQ(left_out, 299 - kept) << "quota " << quota;
    std::vector<Transition> queued, others;
    for (const Transition& t : some) (t.to == TaskState::kQueued ? queued : others).push_back(t);
    EXPECT_EQ(queued, std::vector<Transition>(queued_first.begin(), queued_first.begin() + static_cast<std::ptrdiff_t>(kept)))
        << "quota " << quota;
    EXPECT_EQ(others, (std::vector<Transition>{{late, TaskState::kScheduled}})) << "quota " << quota;
  }
  // The first ten queued: the next quota starts after them; a task queued and handed back to
  // `scheduled` (a refused dispatch) is offered again in its place.
  for (std::size_t k = 0; k < 10; ++k) inc.setState(queued_first[k].task, TaskState::kQueued);
  inc.setState(queued_first[3].task, TaskState::kScheduled);
  EXPECT_EQ(inc.plan(now, some, 2), 288u);  // 290 wait in `scheduled`; two are offered
  std::vector<Transition> queued;
  for (const Transition& t : some) {
    if (t.to == TaskState::kQueued) queued.push_back(t);
  }
  EXPECT_EQ(queued, (std::vector<Transition>{queued_first[3], queued_first[10]}));
}

}  // namespace
}  // namespace leoflow::planning
