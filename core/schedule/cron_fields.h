// The five fields of a cron expression as bit masks, and the slot search over civil minutes.
//
// Grammar (BEHAVIOUR §3.3 with ARCHITECTURE §8.4 fixes): minute hour day-of-month month day-of-week;
// `*`, `?`, `a`, `a-b`, `*/n`, `a/n`, `a-b/n`, comma lists, JAN–DEC and SUN–SAT (any case),
// day-of-week 0–7 with 0 and 7 both Sunday. The search works on "civil minutes": minutes since
// 1970-01-01 00:00 on a clock without a zone, so the same code serves UTC and local wall time.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include <leoflow/status.h>

namespace leoflow::schedule {

/// One parsed cron expression. Every mask has at least one bit set.
struct CronFields {
  std::uint64_t minutes = 0;   ///< bit m: minute m (0–59)
  std::uint32_t hours = 0;     ///< bit h: hour h (0–23)
  std::uint64_t days = 0;      ///< bit d: day-of-month d (1–31); 64 bits so shifting by 32 is defined
  std::uint32_t months = 0;    ///< bit m: month m (1–12)
  std::uint32_t weekdays = 0;  ///< bit w: weekday w (0–6, Sunday = 0)
  /// Both day fields restricted: a day matches when either field does (else both must match).
  bool day_or = false;
  /// Indexed by the weekday of a month's 1st: bit d set when day d falls on an allowed weekday.
  std::array<std::uint64_t, 7> weekday_days{};

  friend bool operator==(const CronFields&, const CronFields&) = default;
};

/// Parses exactly five whitespace-separated fields. Errors name the field and the offending text
/// (`minute field "61": value 61 out of range 0-59`) and reject expressions that can never fire.
Result<CronFields> parseCronFields(std::string_view text);

/// How far the searches look (in years) before giving up. The sparsest satisfiable expression,
/// `0 0 29 2 *`, waits 8 years across 2100.
inline constexpr int kCronSearchYears = 10;

/// Walks the matching civil minutes forward, keeping the calendar position between slots so a
/// catch-up enumeration does not redo the date arithmetic for every slot.
class CronWalk {
 public:
  /// Positioned so the first next() is the first match strictly after `minute`. `fields` must
  /// outlive the walk.
  CronWalk(const CronFields& fields, std::int64_t minute) noexcept;

  /// The following match; nullopt when none lies within kCronSearchYears of the previous one.
  std::optional<std::int64_t> next() noexcept;

 private:
  const CronFields* f_;
  std::int64_t y_ = 0;
  std::int64_t last_year_ = 0;
  unsigned m_ = 1;
  unsigned d_ = 1;
  unsigned h_ = 0;
  unsigned mi_ = 0;
  bool month_ready_ = false;    ///< days_ and first_day_ describe month m_ of year y_
  std::uint64_t days_ = 0;      ///< the matching days of that month
  std::int64_t first_day_ = 0;  ///< the day number of its 1st
};

/// The first matching civil minute strictly after `minute`; nullopt past the search horizon.
std::optional<std::int64_t> nextCronMinute(const CronFields& fields, std::int64_t minute) noexcept;

/// The last matching civil minute at or before `minute`; nullopt past the search horizon.
std::optional<std::int64_t> prevCronMinute(const CronFields& fields, std::int64_t minute) noexcept;

}  // namespace leoflow::schedule
