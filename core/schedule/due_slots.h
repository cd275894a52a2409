// Which slots of a schedule are due now: catch-up, first sight, start and end dates.
//
// BEHAVIOUR §3.2/§3.5 as settled by ARCHITECTURE §8.4, with BEHAVIOUR §10 items 21, 23, 24 and 25
// fixed: no hang or year-1 slots, catchup=false means the latest slot however many were missed, the
// first-sight slot is the true latest one, and end_date is honoured.
#pragma once

#include <optional>
#include <vector>

#include <leoflow/domain.h>

#include "schedule/cron.h"

namespace leoflow::schedule {

struct DueQuery {
  Timestamp now;                            ///< slots after now are not due
  bool catchup = false;                     ///< Airflow 3's default (ARCHITECTURE §8.5)
  std::optional<Timestamp> last_logical;    ///< the latest logical date of any run of the DAG
  std::optional<Timestamp> start_date;      ///< no slot before it
  std::optional<Timestamp> end_date;        ///< no slot after it
  int max_slots = 100;                      ///< catch-up cap per call; values below 1 count as 1
};

/// Writes into `out` (cleared first; no allocation once its capacity suffices) the due slots of
/// `schedule`, oldest first:
/// - cron and `@every`: slots strictly after `last_logical`, at or after `start_date`, at or before
///   `now` and `end_date`. With catchup, every such slot up to `max_slots` (the earliest ones: the
///   caller continues from the last one next tick); without, only the latest one. With neither
///   `last_logical` nor `start_date` (first sight): the latest slot at or before now. `@every D`
///   counts its slots from `last_logical` (else `start_date`) in steps of D; at first sight its one
///   slot is `now` truncated to the second.
/// - `@once`: [now] when there is no `last_logical` and now is within start_date/end_date.
/// - `@continuous` and manual: nothing (the engine starts @continuous runs itself).
void dueSlots(const Schedule& schedule, const DueQuery& query, std::vector<Timestamp>& out);

}  // namespace leoflow::schedule
