// The reapers' verdicts: pure predicates over one candidate's last sign of life (BEHAVIOUR §4).
//
// All three follow the seed's "do no harm" rules: a stamp in the future (clock skew) means alive.
#pragma once

#include <chrono>
#include <optional>

#include <leoflow/domain.h>

namespace leoflow::planning {

/// A running run is orphaned when nothing touched it for `threshold` (equality counts). A run with
/// no activity stamp at all is orphaned: nothing is touching it.
bool isOrphaned(std::optional<Timestamp> last_activity, std::chrono::microseconds threshold,
                Timestamp now) noexcept;

/// A running task's executor is lost when its last heartbeat is `threshold` old. A task that never
/// heartbeated is not lost (it may be inline, or not due its first beat yet).
bool isAgentLost(std::optional<Timestamp> last_heartbeat, std::chrono::microseconds threshold,
                 Timestamp now) noexcept;

/// A queued task's dispatch is lost when it has been queued for `threshold`. No queued stamp: not
/// lost (too poorly observed to reap).
bool isDispatchLost(std::optional<Timestamp> queued_at, std::chrono::microseconds threshold,
                    Timestamp now) noexcept;

}  // namespace leoflow::planning
