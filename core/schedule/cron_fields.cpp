#include "schedule/cron_fields.h"

#include "text/quoted.h"

#include <bit>
#include <span>
#include <string>

#include "schedule/civil.h"

namespace leoflow::schedule {
namespace {

constexpr std::array<std::string_view, 12> kMonthNames = {"jan", "feb", "mar", "apr", "may", "jun",
                                                          "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 7> kWeekdayNames = {"sun", "mon", "tue", "wed",
                                                           "thu", "fri", "sat"};

struct FieldSpec {
  std::string_view name;
  int min;
  int max;       ///< the largest value the text may name (7 for day-of-week: Sunday again)
  int open_end;  ///< where `*` and `a/n` end (6 for day-of-week, so `*/2` does not add Sunday twice)
  std::span<const std::string_view> names;  ///< names[i] means min + i; empty = numbers only
  std::string_view name_hint;               ///< "jan-dec", for messages
};

constexpr FieldSpec kMinuteSpec{"minute", 0, 59, 59, {}, {}};
constexpr FieldSpec kHourSpec{"hour", 0, 23, 23, {}, {}};
constexpr FieldSpec kDaySpec{"day-of-month", 1, 31, 31, {}, {}};
constexpr FieldSpec kMonthSpec{"month", 1, 12, 12, kMonthNames, "jan-dec"};
constexpr FieldSpec kWeekdaySpec{"day-of-week", 0, 7, 6, kWeekdayNames, "sun-sat"};

bool isSpace(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsIgnoreCase(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool allDigits(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Parses a decimal without overflow: anything above `cap` comes back as cap + 1.
int parseBounded(std::string_view digits, int cap) noexcept {
  long long v = 0;
  for (char c : digits) {
    v = v * 10 + (c - '0');
    if (v > cap) return cap + 1;
  }
  return static_cast<int>(v);
}


// Collects the first problem in a field; the field name and text prefix every message.
class FieldParser {
 public:
  FieldParser(const FieldSpec& spec, std::string_view text) : spec_(spec), text_(text) {}

  Status fail(const std::string& what) const {
    return invalidArgument(std::string(spec_.name) + " field " + text::quoted(text_) + ": " + what);
  }

  // One value: a number in [min, max] or, where the field has names, a three-letter name.
  Status value(std::string_view token, int& out) const {
    if (token.empty()) return fail("missing value");
    if (allDigits(token)) {
      out = parseBounded(token, 9999);
      if (out < spec_.min || out > spec_.max) {
        return fail("value " + std::string(token) + " out of range " + std::to_string(spec_.min) + "-" +
                    std::to_string(spec_.max));
      }
      return Status::ok();
    }
    for (std::size_t i = 0; i < spec_.names.size(); ++i) {
      if (equalsIgnoreCase(token, spec_.names[i])) {
        out = spec_.min + static_cast<int>(i);
        return Status::ok();
      }
    }
    if (!spec_.names.empty()) {
      return fail("unknown name " + text::quoted(token) + " (use " + std::to_string(spec_.min) + "-" +
                  std::to_string(spec_.max) + " or " + std::string(spec_.name_hint) + ")");
    }
    return fail(text::quoted(token) + " is not a number");
  }

  // One list element: `*`, `?`, `a`, `a-b`, each optionally `/step`.
  Status element(std::string_view part, std::uint64_t& bits, bool& star) const {
    if (part.empty()) return fail("empty list element");
    std::string_view base = part;
    int step = 1;
    bool has_step = false;
    if (const auto slash = part.find('/'); slash != std::string_view::npos) {
      has_step = true;
      base = part.substr(0, slash);
      const std::string_view step_text = part.substr(slash + 1);
      if (step_text.empty()) return fail("missing step after \"/\"");
      if (!allDigits(step_text)) return fail("step " + text::quoted(step_text) + " is not a number");
      step = parseBounded(step_text, 9999);
      if (step < 1) return fail("step must be at least 1");
    }
    int lo = 0;
    int hi = 0;
    if (base == "*" || base == "?") {
      lo = spec_.min;
      hi = spec_.open_end;
      // BEHAVIOUR §3.3: only an unstepped `*`/`?` leaves a day field unrestricted (robfig's star bit).
      if (step == 1) star = true;
    } else if (const auto dash = base.find('-'); dash != std::string_view::npos) {
      if (Status s = value(base.substr(0, dash), lo); !s) return s;
      if (Status s = value(base.substr(dash + 1), hi); !s) return s;
      if (lo > hi) return fail("range " + text::quoted(base) + " runs backwards");
    } else {
      if (Status s = value(base, lo); !s) return s;
      // `a/n` means a through the end of the field, every n.
      hi = has_step ? std::max(lo, spec_.open_end) : lo;
    }
    for (int v = lo; v <= hi; v += step) bits |= std::uint64_t{1} << v;
    return Status::ok();
  }

  Status parse(std::uint64_t& bits, bool& star) const {
    std::size_t start = 0;
    for (;;) {
      const std::size_t comma = text_.find(',', start);
      const std::string_view part =
          text_.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      if (Status s = element(part, bits, star); !s) return s;
      if (comma == std::string_view::npos) return Status::ok();
      start = comma + 1;
    }
  }

 private:
  const FieldSpec& spec_;
  std::string_view text_;
};

constexpr std::uint32_t bitsAtOrAbove32(unsigned x) noexcept {
  return x >= 32 ? 0 : ~std::uint32_t{0} << x;
}
constexpr std::uint64_t bitsAtOrAbove64(unsigned x) noexcept {
  return x >= 64 ? 0 : ~std::uint64_t{0} << x;
}
constexpr std::uint32_t bitsAtOrBelow32(int x) noexcept {
  if (x < 0) return 0;
  return x >= 31 ? ~std::uint32_t{0} : (std::uint32_t{2} << x) - 1;
}
constexpr std::uint64_t bitsAtOrBelow64(int x) noexcept {
  if (x < 0) return 0;
  return x >= 63 ? ~std::uint64_t{0} : (std::uint64_t{2} << x) - 1;
}

// The days of month `m` of year `y` the expression allows (bits 1..length); `first_day` receives the
// day number of the 1st.
std::uint64_t dayMask(const CronFields& f, std::int64_t y, unsigned m, std::int64_t& first_day) noexcept {
  first_day = daysFromCivil(y, m, 1);
  const std::uint64_t by_weekday = f.weekday_days[weekdayFromDays(first_day)];
  // BEHAVIOUR §3.3 / ARCHITECTURE §8.4: both restricted → either matches; otherwise both must.
  const std::uint64_t allowed = f.day_or ? (f.days | by_weekday) : (f.days & by_weekday);
  return allowed & ((std::uint64_t{2} << daysInMonth(y, m)) - 2);
}

}  // namespace

Result<CronFields> parseCronFields(std::string_view text) {
  std::array<std::string_view, 5> field{};
  std::size_t count = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && isSpace(text[i])) ++i;
    if (i == text.size()) break;
    const std::size_t begin = i;
    while (i < text.size() && !isSpace(text[i])) ++i;
    if (count < field.size()) field[count] = text.substr(begin, i - begin);
    ++count;
  }
  if (count != field.size()) {
    return invalidArgument(
        "expected exactly 5 fields (minute hour day-of-month month day-of-week), found " +
        std::to_string(count));
  }

  CronFields f;
  std::uint64_t bits = 0;
  bool ignored_star = false;  // only the two day fields care whether they are `*`
  bool day_star = false;
  bool weekday_star = false;

  if (Status s = FieldParser(kMinuteSpec, field[0]).parse(bits, ignored_star); !s) return s;
  f.minutes = bits;
  bits = 0;
  if (Status s = FieldParser(kHourSpec, field[1]).parse(bits, ignored_star); !s) return s;
  f.hours = static_cast<std::uint32_t>(bits);
  bits = 0;
  if (Status s = FieldParser(kDaySpec, field[2]).parse(bits, day_star); !s) return s;
  f.days = bits;
  bits = 0;
  if (Status s = FieldParser(kMonthSpec, field[3]).parse(bits, ignored_star); !s) return s;
  f.months = static_cast<std::uint32_t>(bits);
  bits = 0;
  if (Status s = FieldParser(kWeekdaySpec, field[4]).parse(bits, weekday_star); !s) return s;
  // ARCHITECTURE §8.4: 7 is Sunday as well as 0.
  if ((bits & (std::uint64_t{1} << 7)) != 0) bits = (bits | 1u) & 0x7Fu;
  f.weekdays = static_cast<std::uint32_t>(bits);
  f.day_or = !day_star && !weekday_star;

  for (unsigned first = 0; first < 7; ++first) {
    std::uint64_t mask = 0;
    for (unsigned d = 1; d <= 31; ++d) {
      if (((f.weekdays >> ((first + d - 1) % 7)) & 1u) != 0) mask |= std::uint64_t{1} << d;
    }
    f.weekday_days[first] = mask;
  }

  // BEHAVIOUR §10 item 21: an expression that can never fire is refused here, so no search ever has
  // to discover it (the Go port looped forever or produced year-1 times). Every field has at least
  // one value and every month has all seven weekdays, so only a day-of-month that must match on its
  // own (day-of-week `*`) can miss every allowed month.
  if (!f.day_or && !day_star) {
    bool fires = false;
    for (unsigned m = 1; m <= 12 && !fires; ++m) {
      if (((f.months >> m) & 1u) == 0) continue;
      const unsigned longest = m == 2 ? 29 : daysInMonth(2001, m);  // February 29 in leap years
      fires = (f.days & ((std::uint64_t{2} << longest) - 2)) != 0;
    }
    if (!fires) {
      return invalidArgument("never fires: day-of-month field " + text::quoted(field[2]) +
                             " names no day that exists in month field " + text::quoted(field[3]));
    }
  }
  return f;
}

namespace {

// The first allowed hour:minute at or after h:mi within one day, as minutes since midnight.
std::optional<unsigned> firstTimeOfDay(const CronFields& f, unsigned h, unsigned mi) noexcept {
  for (std::uint32_t hour_bits = f.hours & bitsAtOrAbove32(h); hour_bits != 0;
       hour_bits = f.hours & bitsAtOrAbove32(h)) {
    if (const auto nh = static_cast<unsigned>(std::countr_zero(hour_bits)); nh != h) {
      h = nh;
      mi = 0;
    }
    const std::uint64_t minute_bits = f.minutes & bitsAtOrAbove64(mi);
    if (minute_bits != 0) return h * 60 + static_cast<unsigned>(std::countr_zero(minute_bits));
    ++h;
    mi = 0;
  }
  return std::nullopt;
}

// The last allowed hour:minute at or before h:mi within one day, as minutes since midnight.
std::optional<unsigned> lastTimeOfDay(const CronFields& f, int h, int mi) noexcept {
  for (std::uint32_t hour_bits = f.hours & bitsAtOrBelow32(h); hour_bits != 0;
       hour_bits = f.hours & bitsAtOrBelow32(h)) {
    if (const int nh = 31 - std::countl_zero(hour_bits); nh != h) {
      h = nh;
      mi = 59;
    }
    const std::uint64_t minute_bits = f.minutes & bitsAtOrBelow64(mi);
    if (minute_bits != 0) return static_cast<unsigned>(h * 60 + 63 - std::countl_zero(minute_bits));
    --h;
    mi = 59;
  }
  return std::nullopt;
}

}  // namespace

CronWalk::CronWalk(const CronFields& fields, std::int64_t minute) noexcept : f_(&fields) {
  const std::int64_t t = minute + 1;
  const std::int64_t day = floorDiv(t, kMinutesPerDay);
  const auto minute_of_day = static_cast<unsigned>(t - day * kMinutesPerDay);
  const Civil c = civilFromDays(day);
  y_ = c.y;
  last_year_ = y_ + kCronSearchYears;
  m_ = c.m;
  d_ = c.d;
  h_ = minute_of_day / 60;
  mi_ = minute_of_day % 60;
}

std::optional<std::int64_t> CronWalk::next() noexcept {
  const CronFields& f = *f_;
  // Carry field by field, largest first: a field that has to move resets every smaller one. The
  // month's day mask survives between calls, so consecutive slots cost a few bit operations.
  for (;;) {
    if (!month_ready_) {
      const std::uint32_t month_bits = f.months & bitsAtOrAbove32(m_);
      if (month_bits == 0) {
        if (++y_ > last_year_) return std::nullopt;
        m_ = 1;
        d_ = 1;
        h_ = 0;
        mi_ = 0;
        continue;
      }
      if (const auto nm = static_cast<unsigned>(std::countr_zero(month_bits)); nm != m_) {
        m_ = nm;
        d_ = 1;
        h_ = 0;
        mi_ = 0;
      }
      days_ = dayMask(f, y_, m_, first_day_);
      month_ready_ = true;
    }
    for (std::uint64_t day_bits = days_ & bitsAtOrAbove64(d_); day_bits != 0;
         day_bits = days_ & bitsAtOrAbove64(d_)) {
      if (const auto nd = static_cast<unsigned>(std::countr_zero(day_bits)); nd != d_) {
        d_ = nd;
        h_ = 0;
        mi_ = 0;
      }
      if (const std::optional<unsigned> time = firstTimeOfDay(f, h_, mi_)) {
        h_ = *time / 60;
        mi_ = *time % 60 + 1;  // the next call resumes just after this slot
        last_year_ = y_ + kCronSearchYears;
        return (first_day_ + d_ - 1) * kMinutesPerDay + *time;
      }
      ++d_;
      h_ = 0;
      mi_ = 0;
    }
    ++m_;
    d_ = 1;
    h_ = 0;
    mi_ = 0;
    month_ready_ = false;
  }
}

std::optional<std::int64_t> nextCronMinute(const CronFields& f, std::int64_t minute) noexcept {
  // Fast path for the common shapes (`*/5 * * * *`, @hourly, @daily, weekdays): every month and
  // every day-of-month allowed, so whether a day matches depends on its weekday alone and the slot is
  // usually later the same day — no calendar conversion needed.
  constexpr std::uint32_t kAllMonths = 0x1FFEu;                // bits 1–12
  constexpr std::uint64_t kAllDays = 0xFFFF'FFFEull;           // bits 1–31
  if (f.months == kAllMonths && f.days == kAllDays) {
    const std::int64_t t = minute + 1;
    const std::int64_t day = floorDiv(t, kMinutesPerDay);
    const auto minute_of_day = static_cast<unsigned>(t - day * kMinutesPerDay);
    if (f.day_or || ((f.weekdays >> weekdayFromDays(day)) & 1u) != 0) {
      if (const std::optional<unsigned> time = firstTimeOfDay(f, minute_of_day / 60, minute_of_day % 60)) {
        return day * kMinutesPerDay + *time;
      }
    }
  }
  return CronWalk(f, minute).next();
}

std::optional<std::int64_t> prevCronMinute(const CronFields& f, std::int64_t minute) noexcept {
  const std::int64_t day = floorDiv(minute, kMinutesPerDay);
  const auto minute_of_day = static_cast<int>(minute - day * kMinutesPerDay);
  const Civil c = civilFromDays(day);
  std::int64_t y = c.y;
  int m = static_cast<int>(c.m);
  int d = static_cast<int>(c.d);
  int h = minute_of_day / 60;
  int mi = minute_of_day % 60;
  const std::int64_t first_year = y - kCronSearchYears;
  // The mirror of nextCronMinute: a field that has to move back resets every smaller one to its end.
  for (;;) {
    const std::uint32_t month_bits = f.months & bitsAtOrBelow32(m);
    if (month_bits == 0) {
      if (--y < first_year) return std::nullopt;
      m = 12;
      d = 31;
      h = 23;
      mi = 59;
      continue;
    }
    if (const int nm = 31 - std::countl_zero(month_bits); nm != m) {
      m = nm;
      d = 31;
      h = 23;
      mi = 59;
    }
    std::int64_t first_day = 0;
    const std::uint64_t days = dayMask(f, y, static_cast<unsigned>(m), first_day);
    for (std::uint64_t day_bits = days & bitsAtOrBelow64(d); day_bits != 0; day_bits = days & bitsAtOrBelow64(d)) {
      if (const int nd = 63 - std::countl_zero(day_bits); nd != d) {
        d = nd;
        h = 23;
        mi = 59;
      }
      if (const std::optional<unsigned> time = lastTimeOfDay(f, h, mi)) {
        return (first_day + d - 1) * kMinutesPerDay + *time;
      }
      --d;
      h = 23;
      mi = 59;
    }
    --m;
    d = 31;
    h = 23;
    mi = 59;
  }
}

}  // namespace leoflow::schedule
