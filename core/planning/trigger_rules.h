// Trigger rules: when a task in `none` becomes scheduled, skipped or upstream_failed.
//
// Airflow's semantics, exactly the decision table of ARCHITECTURE §8.1 (which fixes BEHAVIOUR §10
// item 18). A rule is decided from counts of its direct upstreams by outcome, so evaluation is O(1)
// once the counts are known and the incremental planner can keep the counts up to date.
#pragma once

#include <cstdint>
#include <span>

#include <leoflow/domain.h>

namespace leoflow::planning {

/// The decision for one task. Numeric values are the seed's (BEHAVIOUR §1.3).
enum class TriggerDecision : std::uint8_t { kWait = 0, kSchedule = 1, kSkip = 2, kUpstreamFailed = 3 };

/// How an upstream counts for its downstream's rule. A failed task that may still be retried and
/// every non-terminal state count as not done.
enum class UpstreamOutcome : std::uint8_t { kNotDone = 0, kSuccess, kFailed, kUpstreamFailed, kSkipped };

constexpr UpstreamOutcome outcomeOf(TaskState state, bool retriable) noexcept {
  switch (state) {
    case TaskState::kSuccess: return UpstreamOutcome::kSuccess;
    case TaskState::kFailed: return retriable ? UpstreamOutcome::kNotDone : UpstreamOutcome::kFailed;
    case TaskState::kUpstreamFailed: return UpstreamOutcome::kUpstreamFailed;
    case TaskState::kSkipped: return UpstreamOutcome::kSkipped;
    default: return UpstreamOutcome::kNotDone;
  }
}

/// Counts of a task's direct upstreams by outcome. `total` is the number of upstreams.
struct UpstreamCounts {
  std::uint32_t total = 0;
  std::uint32_t success = 0;
  std::uint32_t failed = 0;
  std::uint32_t upstream_failed = 0;
  std::uint32_t skipped = 0;

  std::uint32_t done() const noexcept { return success + failed + upstream_failed + skipped; }

  void add(UpstreamOutcome o, std::int32_t delta = 1) noexcept {
    switch (o) {
      case UpstreamOutcome::kSuccess: success += static_cast<std::uint32_t>(delta); break;
      case UpstreamOutcome::kFailed: failed += static_cast<std::uint32_t>(delta); break;
      case UpstreamOutcome::kUpstreamFailed: upstream_failed += static_cast<std::uint32_t>(delta); break;
      case UpstreamOutcome::kSkipped: skipped += static_cast<std::uint32_t>(delta); break;
      case UpstreamOutcome::kNotDone: break;
    }
  }
};

/// Decides a rule from its upstream counts. A task with no upstreams is always scheduled.
TriggerDecision evaluateTriggerRule(TriggerRule rule, const UpstreamCounts& counts) noexcept;

/// Convenience form over upstream states; `retriable[i]` says whether upstream i may still be
/// retried (empty span: none may).
TriggerDecision evaluateTriggerRule(TriggerRule rule, std::span<const TaskState> upstreams,
                                    std::span<const bool> retriable = {}) noexcept;

/// The state a decision moves a `none` task to; nullopt for kWait.
constexpr std::optional<TaskState> targetOf(TriggerDecision d) noexcept {
  switch (d) {
    case TriggerDecision::kSchedule: return TaskState::kScheduled;
    case TriggerDecision::kSkip: return TaskState::kSkipped;
    case TriggerDecision::kUpstreamFailed: return TaskState::kUpstreamFailed;
    case TriggerDecision::kWait: break;
  }
  return std::nullopt;
}

}  // namespace leoflow::planning
