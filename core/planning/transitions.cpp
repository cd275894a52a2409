#include "planning/transitions.h"

#include <array>

namespace leoflow::planning {
namespace {

using S = TaskState;

constexpr std::uint16_t bit(S s) { return static_cast<std::uint16_t>(1u << static_cast<unsigned>(s)); }

// Allowed targets per source state, as bit sets indexed by TaskState.
constexpr std::array<std::uint16_t, kTaskStateCount> kTaskMoves = [] {
  std::array<std::uint16_t, kTaskStateCount> t{};
  auto allow = [&t](S from, std::initializer_list<S> to) {
    for (S s : to) t[static_cast<std::size_t>(from)] |= bit(s);
  };
  // BEHAVIOUR §1.2, the seed's table.
  allow(S::kNone, {S::kScheduled, S::kSkipped, S::kUpstreamFailed});
  allow(S::kScheduled, {S::kQueued});
  allow(S::kQueued, {S::kRunning, S::kFailed, S::kUpForRetry});
  allow(S::kRunning, {S::kSuccess, S::kFailed, S::kUpForRetry});
  allow(S::kUpForRetry, {S::kScheduled, S::kQueued, S::kNone});
  allow(S::kSuccess, {S::kNone});
  allow(S::kFailed, {S::kNone});
  allow(S::kSkipped, {S::kNone});
  allow(S::kUpstreamFailed, {S::kNone});
  // ARCHITECTURE §8.2: the moves the system really makes.
  allow(S::kFailed, {S::kUpForRetry});     // the planner's retry rail
  allow(S::kNone, {S::kFailed});           // a reaped run; an undispatchable task
  allow(S::kScheduled, {S::kFailed});      // a dispatch given up; an undispatchable task
  allow(S::kUpForRetry, {S::kFailed});     // a reaped run
  allow(S::kQueued, {S::kSuccess});        // a finished report overtaking the running report
  allow(S::kQueued, {S::kScheduled});      // a hand-over refused for capacity (§8.8)
  return t;
}();

using R = DagRunState;

constexpr std::array<std::uint8_t, kDagRunStateCount> kRunMoves = [] {
  std::array<std::uint8_t, kDagRunStateCount> t{};
  auto allow = [&t](R from, std::initializer_list<R> to) {
    for (R r : to) t[static_cast<std::size_t>(from)] |= static_cast<std::uint8_t>(1u << static_cast<unsigned>(r));
  };
  allow(R::kQueued, {R::kRunning, R::kFailed});
  allow(R::kRunning, {R::kSuccess, R::kFailed});
  allow(R::kSuccess, {R::kQueued});
  allow(R::kFailed, {R::kQueued});
  allow(R::kQueued, {R::kSuccess});  // §8.2: a run with no tasks
  return t;
}();

}  // namespace

bool canTransition(TaskState from, TaskState to) noexcept {
  const auto f = static_cast<std::size_t>(from);
  if (f >= kTaskStateCount || static_cast<std::size_t>(to) >= kTaskStateCount) return false;
  return (kTaskMoves[f] & bit(to)) != 0;
}

bool canTransitionDagRun(DagRunState from, DagRunState to) noexcept {
  const auto f = static_cast<std::size_t>(from);
  if (f >= kDagRunStateCount || static_cast<std::size_t>(to) >= kDagRunStateCount) return false;
  return (kRunMoves[f] & (1u << static_cast<unsigned>(to))) != 0;
}

}  // namespace leoflow::planning
