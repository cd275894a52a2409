#include "schedule/due_slots.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "schedule/civil.h"

namespace leoflow::schedule {
namespace {

using std::chrono::microseconds;
using std::chrono::seconds;

// Inside years 1–9999 (as Schedule::next requires), so differences of such times cannot overflow.
bool inRange(Timestamp t) noexcept {
  constexpr Timestamp kMin{microseconds{-62'135'596'800'000'000LL}};
  constexpr Timestamp kMax{microseconds{253'402'300'800'000'000LL - 1}};
  return t >= kMin && t <= kMax;
}

std::size_t capOf(const DueQuery& q) noexcept { return static_cast<std::size_t>(std::max(q.max_slots, 1)); }

// `@every D` (ARCHITECTURE §8.4): slots last_logical + k·D (k ≥ 1), else start_date + k·D (k ≥ 0),
// else one slot at now truncated to the second. Closed-form: no enumeration without catch-up.
void everySlots(const Schedule& schedule, const DueQuery& q, Timestamp upper, std::vector<Timestamp>& out) {
  if (!q.last_logical && !q.start_date) {
    if (!inRange(q.now)) return;
    const Timestamp slot = std::chrono::floor<seconds>(q.now);
    if (q.end_date && slot > *q.end_date) return;
    out.push_back(slot);
    return;
  }
  // Slots are whole seconds, like next(): from last_logical the grid is its floor (slot 1 still lies
  // after it, since D ≥ 1 s); from start_date its ceiling (slot 0 must not precede it).
  const Timestamp anchor = q.last_logical ? *q.last_logical : *q.start_date;
  if (!inRange(anchor) || !inRange(upper)) return;
  const Timestamp base =
      q.last_logical ? std::chrono::floor<seconds>(anchor) : std::chrono::ceil<seconds>(anchor);
  const std::int64_t period = std::chrono::duration_cast<microseconds>(schedule.every()).count();
  std::int64_t first = q.last_logical ? 1 : 0;
  if (q.start_date && inRange(*q.start_date) && *q.start_date > base) {
    const std::int64_t gap = (*q.start_date - base).count();
    first = std::max(first, floorDiv(gap + period - 1, period));
  }
  if (upper < base) return;
  const std::int64_t last = floorDiv((upper - base).count(), period);
  if (last < first) return;
  if (!q.catchup) {
    out.push_back(base + microseconds{last * period});
    return;
  }
  const std::size_t cap = capOf(q);
  for (std::int64_t k = first; k <= last && out.size() < cap; ++k) out.push_back(base + microseconds{k * period});
}

}  // namespace

void dueSlots(const Schedule& schedule, const DueQuery& q, std::vector<Timestamp>& out) {
  out.clear();
  const Timestamp upper = q.end_date ? std::min(q.now, *q.end_date) : q.now;
  switch (schedule.kind()) {
    case ScheduleKind::kManual:
    case ScheduleKind::kContinuous:
      return;
    case ScheduleKind::kOnce:
      if (q.last_logical) return;
      if (q.start_date && q.now < *q.start_date) return;
      if (q.end_date && q.now > *q.end_date) return;
      out.push_back(q.now);
      return;
    case ScheduleKind::kEvery:
      everySlots(schedule, q, upper, out);
      return;
    case ScheduleKind::kCron:
      break;
  }

  // Slots must lie strictly after this bound: the last run, and just before start_date (BEHAVIOUR
  // §3.5: the start slot itself counts; a start between slots begins at the next slot).
  std::optional<Timestamp> after = q.last_logical;
  if (q.start_date && *q.start_date > Timestamp::min()) {
    const Timestamp before_start = *q.start_date - microseconds{1};
    if (!after || *after < before_start) after = before_start;
  }

  // BEHAVIOUR §10 items 23 and 24: without catch-up, and at first sight, only the true latest slot —
  // one backward search, however many slots were missed.
  if (!after || !q.catchup) {
    const std::optional<Timestamp> latest = schedule.latestAtOrBefore(upper);
    if (latest && (!after || *latest > *after)) out.push_back(*latest);
    return;
  }

  // BEHAVIOUR §10 item 21: every step is bounded and advances, so this ends.
  schedule.appendSlots(*after, upper, capOf(q), out);
}

}  // namespace leoflow::schedule
