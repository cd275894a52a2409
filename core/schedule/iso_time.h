// ISO-8601 times as the command line and the stores read and print them.
//
// Input: `YYYY-MM-DDTHH:MM:SS`, optional fraction (any number of digits, kept to the microsecond),
// then `Z` or an offset `+HH:MM` / `-HH:MM` / `+HHMM` (ARCHITECTURE §8.3). Output: whole seconds with
// `Z`, or microseconds where ids need them (§8.5).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <leoflow/domain.h>

namespace leoflow::schedule {

/// Parses an ISO-8601 time with a zone designator; nullopt if malformed, out of range, or zone-less.
std::optional<Timestamp> parseIsoTime(std::string_view text) noexcept;

/// `2026-01-01T00:00:00Z` (sub-second part dropped).
std::string formatIsoSeconds(Timestamp t);

/// `2026-01-01T00:00:00.123456Z` (always six fraction digits).
std::string formatIsoMicros(Timestamp t);

/// Truncates to the whole second (toward the past).
Timestamp floorToSecond(Timestamp t) noexcept;

}  // namespace leoflow::schedule
