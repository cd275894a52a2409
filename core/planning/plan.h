// Planning one dag run: which task instances move next, and whether the run is finished.
//
// Pure and deterministic (BEHAVIOUR §1.5, §1.7): the same snapshot always gives the same plan, in
// the same order. No clock is read; `now` is part of the snapshot.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <leoflow/domain.h>

#include "planning/compiled_dag.h"

namespace leoflow::planning {

/// A read-only view of one run's task instances, indexed like its CompiledDag.
struct RunSnapshot {
  const CompiledDag* dag = nullptr;
  std::span<const TaskState> states;  ///< one per task
  /// Current attempt per task (first attempt = 1). Empty: every task is on try 1.
  std::span<const std::int32_t> tries;
  /// Attempts allowed per task (retries + 1). Empty: 1 for every task (no retries).
  std::span<const std::int32_t> max_tries;
  /// When each task's last attempt ended. Empty: unknown for every task.
  std::span<const std::optional<Timestamp>> ended_at;
  /// Wait between a failure and the next attempt, per task. Empty: no wait.
  std::span<const std::int32_t> retry_delay_seconds;
  /// The planner's "now"; absent disables the retry-delay gate (retries are released at once).
  std::optional<Timestamp> now;

  std::int32_t tryOf(TaskIndex i) const noexcept { return tries.empty() ? 1 : tries[i]; }
  std::int32_t maxTriesOf(TaskIndex i) const noexcept { return max_tries.empty() ? 1 : max_tries[i]; }
  /// A failed attempt may be followed by another while tries < max_tries.
  bool retriable(TaskIndex i) const noexcept { return tryOf(i) < maxTriesOf(i); }
  std::optional<Timestamp> endedAt(TaskIndex i) const noexcept {
    return ended_at.empty() ? std::nullopt : ended_at[i];
  }
  std::int32_t retryDelayOf(TaskIndex i) const noexcept {
    return retry_delay_seconds.empty() ? 0 : retry_delay_seconds[i];
  }
};

/// One decided move: task `task` goes to `to`. `up_for_retry → none` means "next attempt" (the
/// store raises the try number).
struct Transition {
  TaskIndex task;
  TaskState to;
  friend bool operator==(const Transition&, const Transition&) = default;
};

/// The run-level verdict: done, and if so, success or failed.
struct FinalizeDecision {
  bool done = false;
  DagRunState state = DagRunState::kRunning;  ///< meaningful only when done
  friend bool operator==(const FinalizeDecision&, const FinalizeDecision&) = default;
};

/// True when an up_for_retry task may start its next attempt: no delay, no end time or no `now`
/// (the gate is disabled), or `now >= ended_at + delay` (equality releases). BEHAVIOUR §1.5.
bool readyToRetry(std::optional<Timestamp> ended_at, std::int32_t delay_seconds,
                  std::optional<Timestamp> now) noexcept;

/// Plans a run: first the retry pass in task order (failed with budget → up_for_retry; up_for_retry
/// → none once its delay has passed), then the start pass in task order (none → scheduled, skipped
/// or upstream_failed by its trigger rule; scheduled → queued). A task moved by the retry pass is
/// not moved again, and no decision of this pass feeds another (a task and its downstream never
/// both move in one plan). `out` is cleared first; its capacity is reused.
void planRun(const RunSnapshot& run, std::vector<Transition>& out);

/// The seed's FinalizeRun: done only when every task is terminal and no failed task may retry;
/// then failed if any task failed or upstream_failed, else success. No tasks: success.
FinalizeDecision finalizeRun(const RunSnapshot& run) noexcept;

}  // namespace leoflow::planning
