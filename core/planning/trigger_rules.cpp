#include "planning/trigger_rules.h"

namespace leoflow::planning {

// ARCHITECTURE §8.1: for each rule, the first column (upstream_failed, skipped, scheduled) whose
// condition holds wins, left to right; otherwise wait. Columns are decided as soon as they hold,
// even while other upstreams still run.
TriggerDecision evaluateTriggerRule(TriggerRule rule, const UpstreamCounts& c) noexcept {
  using D = TriggerDecision;
  const std::uint32_t n = c.total;
  if (n == 0) return D::kSchedule;  // a root task is always scheduled
  const std::uint32_t s = c.success, f = c.failed, uf = c.upstream_failed, sk = c.skipped;
  const std::uint32_t done = c.done();
  const bool all_done = done == n;

  switch (rule) {
    case TriggerRule::kAllSuccess:
      if (f + uf > 0) return D::kUpstreamFailed;
      if (sk > 0) return D::kSkip;
      return s == n ? D::kSchedule : D::kWait;
    case TriggerRule::kAllFailed:
      if (s + sk > 0) return D::kSkip;
      return f + uf == n ? D::kSchedule : D::kWait;
    case TriggerRule::kAllDone:
      return all_done ? D::kSchedule : D::kWait;
    case TriggerRule::kAllSkipped:
      if (s + f + uf > 0) return D::kSkip;
      return sk == n ? D::kSchedule : D::kWait;
    case TriggerRule::kOneSuccess:
      if (all_done && s == 0 && sk < n) return D::kUpstreamFailed;
      if (all_done && sk == n) return D::kSkip;
      return s > 0 ? D::kSchedule : D::kWait;
    case TriggerRule::kOneFailed:
      if (all_done && f + uf == 0) return D::kSkip;
      return f + uf > 0 ? D::kSchedule : D::kWait;
    case TriggerRule::kOneDone:
      if (all_done && s + f == 0) return D::kSkip;
      return s + f > 0 ? D::kSchedule : D::kWait;
    case TriggerRule::kNoneFailed:
      if (f + uf > 0) return D::kUpstreamFailed;
      return s + sk == n ? D::kSchedule : D::kWait;
    case TriggerRule::kNoneFailedMinOneSuccess:
      if (f + uf > 0) return D::kUpstreamFailed;
      if (sk == n) return D::kSkip;
      return s + sk == n ? D::kSchedule : D::kWait;
    case TriggerRule::kNoneSkipped:
      if (sk > 0) return D::kSkip;
      return all_done ? D::kSchedule : D::kWait;
    case TriggerRule::kAllDoneMinOneSuccess:
      if (all_done && s == 0) return D::kSkip;
      return all_done ? D::kSchedule : D::kWait;
    case TriggerRule::kAlways:
      return D::kSchedule;
  }
  return D::kWait;
}

TriggerDecision evaluateTriggerRule(TriggerRule rule, std::span<const TaskState> upstreams,
                                    std::span<const bool> retriable) noexcept {
  UpstreamCounts counts;
  counts.total = static_cast<std::uint32_t>(upstreams.size());
  for (std::size_t i = 0; i < upstreams.size(); ++i) {
    const bool may_retry = i < retriable.size() && retriable[i];
    counts.add(outcomeOf(upstreams[i], may_retry));
  }
  return evaluateTriggerRule(rule, counts);
}

}  // namespace leoflow::planning
