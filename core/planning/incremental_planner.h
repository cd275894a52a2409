// Incremental planning of one run: the same answers as planRun, at O(changed tasks + their edges).
//
// The planner keeps, per task, the counts of its upstreams by outcome and a "may move" bit. A state
// change updates the counts of the task's downstreams only when its outcome changes (e.g. running →
// success), and marks the task and those downstreams for re-evaluation. plan() then visits only
// marked tasks, in task order, so over a whole run each edge is touched a bounded number of times:
// the engine plans a run in O(tasks + edges) in total instead of O(ticks × (tasks + edges)).
//
// Invariant: a task whose bit is clear would get no transition from planRun on the current state.
// Tasks that keep moving until someone applies the move (scheduled, failed with budget, waiting
// retries) keep their bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include <leoflow/domain.h>

#include "planning/compiled_dag.h"
#include "planning/plan.h"
#include "planning/trigger_rules.h"

namespace leoflow::planning {

class IncrementalPlanner {
 public:
  /// Binds the planner to a topology; `dag` must outlive the planner. Every task starts in `none`
  /// on try 1 of 1, with no end time and no retry delay; call reset() to load a real run.
  explicit IncrementalPlanner(const CompiledDag& dag);

  /// Loads a whole snapshot (its `dag` must be the planner's). O(tasks + edges).
  void reset(const RunSnapshot& run);

  /// Records a task's new state and attempt; O(1) plus O(downstreams) when its outcome changes.
  void setTask(TaskIndex i, TaskState state, std::int32_t try_number, std::int32_t max_tries,
               std::optional<Timestamp> ended_at);
  /// Records only a new state (attempt and end time unchanged).
  void setState(TaskIndex i, TaskState state);
  /// Sets the retry delay of one task (a DAG property; part of reset()).
  void setRetryDelay(TaskIndex i, std::int32_t seconds);

  /// The same transitions as planRun on the current state with this `now`; `out` is cleared first.
  void plan(std::optional<Timestamp> now, std::vector<Transition>& out) {
    plan(now, out, std::numeric_limits<std::size_t>::max());
  }
  /// As plan(), with at most `max_queued` of its scheduled → queued moves: the first in task order.
  /// Returns how many scheduled tasks it left out (they keep their bit, and are offered next time).
  /// For a caller that can queue only so many: a run with 20,000 tasks waiting in `scheduled` costs
  /// O(tasks / 64) to plan then, not O(tasks), on every tick that frees a little capacity.
  std::size_t plan(std::optional<Timestamp> now, std::vector<Transition>& out, std::size_t max_queued);

  /// Whether plan() could return anything: some task is marked (it may move, or waits on `now` or
  /// on someone applying its move). false: the run needs no planning until a task changes.
  bool mayMove() const noexcept {
    for (std::uint64_t w : dirty_) {
      if (w != 0) return true;
    }
    return false;
  }
  /// The same answer as finalizeRun on the current state, in O(1).
  FinalizeDecision finalize() const noexcept;

  TaskState state(TaskIndex i) const noexcept { return tasks_[i].state; }
  std::int32_t tryNumber(TaskIndex i) const noexcept { return tasks_[i].try_number; }
  std::int32_t maxTries(TaskIndex i) const noexcept { return tasks_[i].max_tries; }
  const CompiledDag& dag() const noexcept { return *dag_; }

 private:
  struct TaskSlot {
    TaskState state = TaskState::kNone;
    UpstreamOutcome outcome = UpstreamOutcome::kNotDone;
    std::int32_t try_number = 1;
    std::int32_t max_tries = 1;
    std::int32_t retry_delay_seconds = 0;
    std::optional<Timestamp> ended_at;
    UpstreamCounts upstream;  // counts of this task's upstreams by outcome
  };

  // Blocks the finalize verdict: non-terminal, or failed with budget left.
  static bool pending(const TaskSlot& t) noexcept {
    return !isTerminal(t.state) || t.outcome == UpstreamOutcome::kNotDone;
  }
  static bool failing(const TaskSlot& t) noexcept {
    return t.outcome == UpstreamOutcome::kFailed || t.outcome == UpstreamOutcome::kUpstreamFailed;
  }

  void mark(TaskIndex i) noexcept { dirty_[i >> 6] |= std::uint64_t{1} << (i & 63); }
  void markScheduled(TaskIndex i, bool scheduled) noexcept {
    const std::uint64_t bit = std::uint64_t{1} << (i & 63);
    scheduled_[i >> 6] = scheduled ? scheduled_[i >> 6] | bit : scheduled_[i >> 6] & ~bit;
  }
  void unmark(TaskIndex i) noexcept { dirty_[i >> 6] &= ~(std::uint64_t{1} << (i & 63)); }
  void account(const TaskSlot& t, int sign) noexcept;

  const CompiledDag* dag_;
  std::vector<TaskSlot> tasks_;
  std::vector<std::uint64_t> dirty_;  // one bit per task: may move
  // One bit per task in `scheduled`: always marked in dirty_ too (they move until queued), kept
  // apart so plan() can skip those beyond max_queued a word at a time.
  std::vector<std::uint64_t> scheduled_;
  std::vector<Transition> start_moves_;  // scratch for plan(): the start pass, merged after retries
  std::uint32_t pending_ = 0;  // tasks blocking finalize
  std::uint32_t failing_ = 0;  // tasks failed for good or upstream_failed
};

}  // namespace leoflow::planning
