// Helpers shared by the schedule tests: readable times in, readable times out.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "schedule/cron.h"
#include "schedule/iso_time.h"

namespace leoflow::schedule::testing {

/// A time written as ISO-8601; a malformed literal fails the test that wrote it.
inline Timestamp at(std::string_view iso) {
  const std::optional<Timestamp> t = parseIsoTime(iso);
  EXPECT_TRUE(t.has_value()) << "bad time literal in test: " << iso;
  return t.value_or(Timestamp{});
}

inline std::string iso(Timestamp t) { return formatIsoSeconds(t); }

inline std::string iso(const std::optional<Timestamp>& t) { return t ? formatIsoSeconds(*t) : "none"; }

inline std::vector<std::string> isoList(const std::vector<Timestamp>& ts) {
  std::vector<std::string> out;
  out.reserve(ts.size());
  for (const Timestamp t : ts) out.push_back(formatIsoSeconds(t));
  return out;
}

/// Parses a schedule that the test expects to be valid.
inline Schedule parsed(std::string_view expression, std::string_view zone = {}) {
  Result<Schedule> r = Schedule::parse(expression, zone);
  EXPECT_TRUE(r.isOk()) << "\"" << expression << "\": " << r.status().message();
  return r.isOk() ? *r : Schedule{};
}

/// The message of a parse the test expects to fail ("" if it unexpectedly succeeded).
inline std::string parseError(std::string_view expression, std::string_view zone = {}) {
  Result<Schedule> r = Schedule::parse(expression, zone);
  EXPECT_FALSE(r.isOk()) << "\"" << expression << "\" parsed but should not";
  return r.isOk() ? std::string{} : r.status().message();
}

/// `count` successive slots after `after`, as ISO strings.
inline std::vector<std::string> nextSlots(const Schedule& s, Timestamp after, int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    const std::optional<Timestamp> n = s.next(after);
    if (!n) break;
    out.push_back(formatIsoSeconds(*n));
    after = *n;
  }
  return out;
}

}  // namespace leoflow::schedule::testing
