#include "schedule/cron.h"

#include "text/quoted.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

#include <date/tz.h>

#include "schedule/civil.h"

namespace leoflow::schedule {
namespace {

using std::chrono::microseconds;
using std::chrono::seconds;

constexpr std::int64_t kMicrosPerSecond = 1'000'000;
constexpr std::int64_t kMicrosPerMinute = 60 * kMicrosPerSecond;
// `@every` longer than this is surely a typo; the cap also keeps every sum far from overflow.
constexpr std::int64_t kMaxEverySeconds = 100'000LL * 86'400;
// Times outside years 1–9999 get no slot: ISO-8601 cannot print them, and the limits keep all the
// arithmetic below far from overflow.
constexpr Timestamp kMinSupported{microseconds{-62'135'596'800LL * kMicrosPerSecond}};  // 0001-01-01
constexpr Timestamp kMaxSupported{microseconds{253'402'300'800LL * kMicrosPerSecond - 1}};  // 9999-12-31
// How many candidates a zone search may discard (gaps, repeated hours) before giving up; real zones
// need at most two per call.
constexpr int kMaxZoneSteps = 64;

bool inSupportedRange(Timestamp t) noexcept { return t >= kMinSupported && t <= kMaxSupported; }

bool isSpace(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}


// Names that mean UTC itself: they take the fast path and never load the tz database.
bool isUtcName(std::string_view name) noexcept {
  constexpr std::array<std::string_view, 11> kUtcNames = {
      "",    "UTC",       "Etc/UTC", "GMT",       "Etc/GMT",       "Zulu",
      "UCT", "Etc/Zulu",  "Etc/UCT", "Universal", "Etc/Universal"};
  return std::find(kUtcNames.begin(), kUtcNames.end(), name) != kUtcNames.end();
}

Status resolveZone(std::string_view name, const date::time_zone*& zone) {
  zone = nullptr;
  if (isUtcName(name)) return Status::ok();
  try {
    zone = date::locate_zone(name);
  } catch (...) {
    // date/tz throws std::runtime_error for an unknown name (and for a missing database).
    return invalidArgument("unknown time zone " + text::quoted(name));
  }
  return Status::ok();
}

// `@every D` (ARCHITECTURE §8.4): D is one or more `<integer><unit>`, units d h m s, at least 1 s.
// BEHAVIOUR §10 item 27: zero, negative and sub-second durations are errors, not clamped to 1 s.
Result<seconds> parseEvery(std::string_view text) {
  const auto bad = [text](const std::string& why) {
    return invalidArgument("@every duration " + text::quoted(text) + ": " + why);
  };
  if (text.empty()) return invalidArgument("@every needs a duration such as 1h30m or 90s");
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '-') return bad("a duration cannot be negative");
    const std::size_t digits_begin = i;
    std::int64_t value = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      value = std::min<std::int64_t>(value * 10 + (text[i] - '0'), kMaxEverySeconds + 1);
      ++i;
    }
    if (i == digits_begin) return bad("expected <integer><unit> pairs such as 1h30m (units d, h, m, s)");
    if (i < text.size() && (text[i] == '.' || text[i] == ',')) return bad("fractions are not allowed");
    const std::size_t unit_begin = i;
    while (i < text.size() && lower(text[i]) >= 'a' && lower(text[i]) <= 'z') ++i;
    const std::string unit = lowered(text.substr(unit_begin, i - unit_begin));
    std::int64_t scale = 0;
    if (unit == "d") {
      scale = 86'400;
    } else if (unit == "h") {
      scale = 3'600;
    } else if (unit == "m") {
      scale = 60;
    } else if (unit == "s") {
      scale = 1;
    } else if (unit.empty()) {
      return bad("missing unit after " + std::string(text.substr(digits_begin, i - digits_begin)) +
                 " (use d, h, m or s)");
    } else {
      return bad("unknown unit " + text::quoted(text.substr(unit_begin, i - unit_begin)) + " (use d, h, m or s)");
    }
    total += std::min(value, kMaxEverySeconds + 1) * scale;
    if (total > kMaxEverySeconds) return bad("longer than 100000 days");
  }
  if (total < 1) return bad("shorter than 1s");
  return seconds{total};
}

struct Descriptor {
  std::string_view name;
  std::string_view fields;  ///< the equivalent five fields
};

constexpr std::array<Descriptor, 7> kDescriptors = {{
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
}};

std::int64_t secondsOf(date::sys_seconds t) noexcept { return t.time_since_epoch().count(); }

Timestamp fromSeconds(std::int64_t s) noexcept { return Timestamp{microseconds{s * kMicrosPerSecond}}; }

// The local wall time (seconds) to search from so no slot at or before `t` is missed: normally `t`'s
// own local time, but inside the second pass of a repeated hour the clock already showed later local
// times, whose slots fired at their first occurrence (ARCHITECTURE §8.4).
std::int64_t latestLocalShown(const date::time_zone& zone, date::sys_seconds t) {
  const date::sys_info info = zone.get_info(t);
  std::int64_t local = secondsOf(t) + info.offset.count();
  if (t - info.begin < std::chrono::hours{24}) {
    const date::sys_info before = zone.get_info(info.begin - seconds{1});
    if (before.offset > info.offset) {
      local = std::max(local, secondsOf(info.begin) + before.offset.count() - 1);
    }
  }
  return local;
}

}  // namespace

Result<Schedule> Schedule::parse(std::string_view expression, std::string_view timezone) {
  std::string_view text = trim(expression);
  std::string_view zone_name = trim(timezone);
  std::string_view prefix;
  for (const std::string_view marker : {std::string_view{"CRON_TZ="}, std::string_view{"TZ="}}) {
    if (!text.starts_with(marker)) continue;
    // BEHAVIOUR §10 item 22: the Go parser panicked on a prefix without a following schedule.
    std::size_t end = marker.size();
    while (end < text.size() && !isSpace(text[end])) ++end;
    prefix = text.substr(0, end);
    zone_name = text.substr(marker.size(), end - marker.size());
    if (zone_name.empty()) return invalidArgument("time zone prefix " + text::quoted(prefix) + " names no zone");
    text = trim(text.substr(end));
    if (text.empty()) {
      return invalidArgument("time zone prefix " + text::quoted(prefix) + " is not followed by a schedule");
    }
    break;
  }

  Schedule schedule;
  if (Status s = resolveZone(zone_name, schedule.zone_); !s) {
    if (prefix.empty()) return s;
    return invalidArgument(s.message() + " in prefix " + text::quoted(prefix));
  }

  if (text.empty()) return schedule;  // ARCHITECTURE §8.4: absent or empty = manual
  if (text.front() != '@') {
    Result<CronFields> fields = parseCronFields(text);
    if (!fields) return fields.status();
    schedule.kind_ = ScheduleKind::kCron;
    schedule.fields_ = *fields;
    return schedule;
  }

  // BEHAVIOUR §10 item 27: descriptors are case-insensitive, like @once and @continuous always were.
  std::size_t word_end = 0;
  while (word_end < text.size() && !isSpace(text[word_end])) ++word_end;
  const std::string word = lowered(text.substr(0, word_end));
  const std::string_view argument = trim(text.substr(word_end));
  if (word == "@every") {
    Result<seconds> period = parseEvery(argument);
    if (!period) return period.status();
    schedule.kind_ = ScheduleKind::kEvery;
    schedule.every_ = *period;
    return schedule;
  }
  const auto no_argument = [&]() -> Status {
    if (argument.empty()) return Status::ok();
    return invalidArgument("descriptor " + text::quoted(text.substr(0, word_end)) + " takes no argument, got " +
                           text::quoted(argument));
  };
  if (word == "@once" || word == "@continuous") {
    if (Status s = no_argument(); !s) return s;
    schedule.kind_ = word == "@once" ? ScheduleKind::kOnce : ScheduleKind::kContinuous;
    return schedule;
  }
  for (const Descriptor& d : kDescriptors) {
    if (word != d.name) continue;
    if (Status s = no_argument(); !s) return s;
    Result<CronFields> fields = parseCronFields(d.fields);
    if (!fields) return fields.status();
    schedule.kind_ = ScheduleKind::kCron;
    schedule.fields_ = *fields;
    return schedule;
  }
  return invalidArgument("unrecognized descriptor " + text::quoted(text.substr(0, word_end)) +
                         " (use @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, "
                         "@every <duration>, @once or @continuous)");
}

std::string_view Schedule::timeZoneName() const noexcept {
  return zone_ == nullptr ? std::string_view{"UTC"} : std::string_view{zone_->name()};
}

std::optional<Timestamp> Schedule::next(Timestamp after) const {
  if (!hasSlots() || !inSupportedRange(after)) return std::nullopt;
  if (kind_ == ScheduleKind::kEvery) {
    // ARCHITECTURE §8.4: after + D, truncated to the second.
    return std::chrono::floor<seconds>(after) + every_;
  }
  if (zone_ != nullptr) return nextInZone(after);
  const std::int64_t minute = floorDiv(after.time_since_epoch().count(), kMicrosPerMinute);
  const std::optional<std::int64_t> slot = nextCronMinute(fields_, minute);
  if (!slot) return std::nullopt;
  return Timestamp{microseconds{*slot * kMicrosPerMinute}};
}

std::optional<Timestamp> Schedule::latestAtOrBefore(Timestamp t) const {
  if (!hasSlots() || !inSupportedRange(t)) return std::nullopt;
  if (kind_ == ScheduleKind::kEvery) return std::chrono::floor<seconds>(t);
  if (zone_ != nullptr) return latestInZone(t);
  const std::int64_t minute = floorDiv(t.time_since_epoch().count(), kMicrosPerMinute);
  const std::optional<std::int64_t> slot = prevCronMinute(fields_, minute);
  if (!slot) return std::nullopt;
  return Timestamp{microseconds{*slot * kMicrosPerMinute}};
}

void Schedule::appendSlots(Timestamp after, Timestamp upper, std::size_t limit, std::vector<Timestamp>& out) const {
  if (kind_ == ScheduleKind::kCron && zone_ == nullptr) {
    if (!inSupportedRange(after)) return;
    CronWalk walk(fields_, floorDiv(after.time_since_epoch().count(), kMicrosPerMinute));
    while (out.size() < limit) {
      const std::optional<std::int64_t> minute = walk.next();
      if (!minute) return;
      const Timestamp slot{microseconds{*minute * kMicrosPerMinute}};
      if (slot > upper || slot > kMaxSupported) return;
      out.push_back(slot);
    }
    return;
  }
  while (out.size() < limit) {
    const std::optional<Timestamp> slot = next(after);
    if (!slot || *slot > upper) return;
    out.push_back(*slot);
    after = *slot;
  }
}

// Cron in a zone: walk the schedule's local wall-clock minutes forward and map each candidate to UTC.
// ARCHITECTURE §8.4: a local time inside a gap does not fire; a repeated local time fires at its first
// occurrence only, so a candidate whose first occurrence is not after `after` is passed over.
std::optional<Timestamp> Schedule::nextInZone(Timestamp after) const {
  // In the second pass of a repeated hour every local time up to the end of the repetition already
  // fired (at its first occurrence, before `after`): start after the latest wall time shown so far.
  std::int64_t cursor = floorDiv(latestLocalShown(*zone_, std::chrono::floor<seconds>(after)), 60);
  for (int step = 0; step < kMaxZoneSteps; ++step) {
    const std::optional<std::int64_t> candidate = nextCronMinute(fields_, cursor);
    if (!candidate) return std::nullopt;
    const date::local_seconds wall{seconds{*candidate * 60}};
    const date::local_info li = zone_->get_info(wall);
    if (li.result == date::local_info::nonexistent) {
      // Skipped by the clock: resume at the end of the gap (the first wall time that exists again).
      const std::int64_t gap_end = secondsOf(li.second.begin) + li.second.offset.count();
      cursor = std::max(*candidate, floorDiv(gap_end - 1, 60));
      continue;
    }
    // `first` is the only period (unique) or the earlier one (ambiguous): the first occurrence.
    const Timestamp slot = fromSeconds(*candidate * 60 - li.first.offset.count());
    if (slot > after) return slot;
    cursor = *candidate;
  }
  return std::nullopt;
}

std::optional<Timestamp> Schedule::latestInZone(Timestamp t) const {
  const auto t_s = std::chrono::floor<seconds>(t);
  std::int64_t cursor = floorDiv(latestLocalShown(*zone_, t_s), 60);
  for (int step = 0; step < kMaxZoneSteps; ++step) {
    const std::optional<std::int64_t> candidate = prevCronMinute(fields_, cursor);
    if (!candidate) return std::nullopt;
    const date::local_seconds wall{seconds{*candidate * 60}};
    const date::local_info li = zone_->get_info(wall);
    if (li.result == date::local_info::nonexistent) {
      // Skipped by the clock: resume just before the gap began.
      const std::int64_t gap_begin = secondsOf(li.second.begin) + li.first.offset.count();
      cursor = std::min(*candidate - 1, floorDiv(gap_begin - 1, 60));
      continue;
    }
    const Timestamp slot = fromSeconds(*candidate * 60 - li.first.offset.count());
    if (slot <= t) return slot;
    cursor = *candidate - 1;
  }
  return std::nullopt;
}

}  // namespace leoflow::schedule
