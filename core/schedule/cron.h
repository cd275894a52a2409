// A DAG's schedule: cron expressions, descriptors and time zones, with the next and the latest slot.
//
// Pure (ARCHITECTURE §1): no I/O beyond the time-zone database, no clock — every time is an argument.
// Grammar: BEHAVIOUR §3.3 as settled by ARCHITECTURE §8.4 (which fixes BEHAVIOUR §10 items 21–27).
// Zone rules come from the system tz database as date/tz 3.0 reads it (USE_OS_TZDB): explicit
// transitions only, which Debian's zoneinfo lists up to 2037; later years keep the last offset.
// Catch-up enumeration lives in schedule/due_slots.h.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

#include <leoflow/domain.h>
#include <leoflow/status.h>

#include "schedule/cron_fields.h"

namespace date {
class time_zone;
}

namespace leoflow::schedule {

enum class ScheduleKind {
  kManual,      ///< no schedule (absent or empty): runs are only triggered
  kCron,        ///< five fields or one of @yearly … @hourly
  kEvery,       ///< `@every D`: a constant period
  kOnce,        ///< `@once`: one run when first seen
  kContinuous,  ///< `@continuous`: the engine starts a run whenever none is active
};

/// A parsed schedule. Cheap to copy; immutable; safe to share between threads.
class Schedule {
 public:
  /// A manual schedule.
  Schedule() = default;

  /// Parses `expression` as written in a DAG file. `timezone` is the default IANA zone ("" = UTC);
  /// a `CRON_TZ=Zone ` or `TZ=Zone ` prefix wins over it. Surrounding whitespace is ignored and
  /// descriptors are case-insensitive. Every malformed, unknown-zone or never-firing expression is an
  /// invalid_argument Status whose message says what is wrong; nothing throws but std::bad_alloc.
  static Result<Schedule> parse(std::string_view expression, std::string_view timezone = {});

  ScheduleKind kind() const noexcept { return kind_; }

  /// True for cron expressions and `@every`: the schedules that have slots.
  bool hasSlots() const noexcept { return kind_ == ScheduleKind::kCron || kind_ == ScheduleKind::kEvery; }

  /// The first slot strictly after `after`. Cron: whole minutes of the schedule's zone, where a local
  /// time inside a DST gap does not fire and a repeated local time fires once, at its first occurrence
  /// (ARCHITECTURE §8.4). `@every D`: `after + D` truncated to the second. nullopt for schedules
  /// without slots, past the search horizon (kCronSearchYears), or outside years 1–9999.
  std::optional<Timestamp> next(Timestamp after) const;

  /// The last slot at or before `t` (BEHAVIOUR §10 item 24: a real backward search, so monthly and
  /// weekday schedules get their true previous slot). `@every D` has no fixed grid: `t` truncated to
  /// the second. nullopt as for next().
  std::optional<Timestamp> latestAtOrBefore(Timestamp t) const;

  /// Appends to `out` the slots in (after, upper], oldest first, until `out` holds `limit` elements:
  /// what repeated next() calls give, without redoing the calendar arithmetic for every slot.
  void appendSlots(Timestamp after, Timestamp upper, std::size_t limit, std::vector<Timestamp>& out) const;

  /// The period of an `@every` schedule; zero for every other kind.
  std::chrono::seconds every() const noexcept { return every_; }

  /// The cron fields (meaningful for kCron only).
  const CronFields& fields() const noexcept { return fields_; }

  /// The IANA name of the zone slots are computed in; "UTC" when no zone database is involved.
  std::string_view timeZoneName() const noexcept;

 private:
  std::optional<Timestamp> nextInZone(Timestamp after) const;
  std::optional<Timestamp> latestInZone(Timestamp t) const;

  ScheduleKind kind_ = ScheduleKind::kManual;
  CronFields fields_{};
  std::chrono::seconds every_{0};
  const date::time_zone* zone_ = nullptr;  ///< nullptr = UTC (fast path, no tz database)
};

}  // namespace leoflow::schedule
