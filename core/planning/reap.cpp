#include "planning/reap.h"

namespace leoflow::planning {
namespace {

// now - stamp >= threshold, with a future stamp counting as fresh.
bool silentFor(Timestamp stamp, std::chrono::microseconds threshold, Timestamp now) noexcept {
  if (stamp > now) return false;
  return now - stamp >= threshold;
}

}  // namespace

bool isOrphaned(std::optional<Timestamp> last_activity, std::chrono::microseconds threshold,
                Timestamp now) noexcept {
  if (!last_activity) return true;  // BEHAVIOUR §4.2: no progress signal at all
  return silentFor(*last_activity, threshold, now);
}

bool isAgentLost(std::optional<Timestamp> last_heartbeat, std::chrono::microseconds threshold,
                 Timestamp now) noexcept {
  if (!last_heartbeat) return false;  // BEHAVIOUR §4.3: do no harm
  return silentFor(*last_heartbeat, threshold, now);
}

bool isDispatchLost(std::optional<Timestamp> queued_at, std::chrono::microseconds threshold,
                    Timestamp now) noexcept {
  if (!queued_at) return false;  // BEHAVIOUR §4.4: do no harm
  return silentFor(*queued_at, threshold, now);
}

}  // namespace leoflow::planning
