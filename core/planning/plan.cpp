#include "planning/plan.h"

#include "planning/trigger_rules.h"

namespace leoflow::planning {

bool readyToRetry(std::optional<Timestamp> ended_at, std::int32_t delay_seconds,
                  std::optional<Timestamp> now) noexcept {
  if (delay_seconds <= 0 || !ended_at || !now) return true;
  return *now >= *ended_at + std::chrono::seconds{delay_seconds};
}

void planRun(const RunSnapshot& run, std::vector<Transition>& out) {
  out.clear();
  const CompiledDag& dag = *run.dag;
  const std::uint32_t n = dag.size();
  const TaskState* states = run.states.data();

  // Retry pass. Its moves keep the task "not done" for its downstreams (failed-with-budget,
  // up_for_retry and none all count as not done), so the start pass can read the snapshot as is.
  for (TaskIndex i = 0; i < n; ++i) {
    const TaskState st = states[i];
    if (st == TaskState::kFailed && run.retriable(i)) {
      out.push_back({i, TaskState::kUpForRetry});
    } else if (st == TaskState::kUpForRetry &&
               readyToRetry(run.endedAt(i), run.retryDelayOf(i), run.now)) {
      out.push_back({i, TaskState::kNone});
    }
  }

  // Start pass. Tasks the retry pass touched are failed or up_for_retry in the snapshot, so they
  // never match here.
  for (TaskIndex i = 0; i < n; ++i) {
    const TaskState st = states[i];
    if (st == TaskState::kScheduled) {
      out.push_back({i, TaskState::kQueued});
    } else if (st == TaskState::kNone) {
      UpstreamCounts counts;
      const auto ups = dag.upstreams(i);
      counts.total = static_cast<std::uint32_t>(ups.size());
      for (TaskIndex u : ups) counts.add(outcomeOf(states[u], run.retriable(u)));
      if (auto to = targetOf(evaluateTriggerRule(dag.rule(i), counts))) out.push_back({i, *to});
    }
  }
}

FinalizeDecision finalizeRun(const RunSnapshot& run) noexcept {
  bool any_failed = false;
  const std::uint32_t n = run.dag->size();
  for (TaskIndex i = 0; i < n; ++i) {
    const TaskState st = run.states[i];
    if (st == TaskState::kFailed) {
      if (run.retriable(i)) return {};
      any_failed = true;
    } else if (st == TaskState::kUpstreamFailed) {
      any_failed = true;
    } else if (!isTerminal(st)) {
      return {};
    }
  }
  return {true, any_failed ? DagRunState::kFailed : DagRunState::kSuccess};
}

}  // namespace leoflow::planning
