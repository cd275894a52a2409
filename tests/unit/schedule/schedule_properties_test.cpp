// Properties of next() and latestAtOrBefore() over random expressions and times, checked against a
// brute-force oracle that walks the calendar day by day with date/tz (independent of the bit-mask
// search): next(t) > t, nothing fires strictly between t and next(t), latestAtOrBefore(next(t)) is
// next(t), and the same holds backwards — in UTC and in a zone with DST (ARCHITECTURE §8.4).
#include <algorithm>
#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <date/date.h>
#include <date/tz.h>
#include <gtest/gtest.h>

#include "schedule/cron.h"
#include "schedule_test_util.h"

namespace leoflow::schedule {
namespace {

using namespace leoflow::schedule::testing;
using std::chrono::microseconds;
using std::chrono::minutes;
using std::chrono::seconds;

struct RandomField {
  std::string text;
  std::vector<bool> allowed;  ///< indexed by value
  bool star = false;
};

struct RandomCron {
  std::string text;
  RandomField minute, hour, day, month, weekday;
};

class Generator {
 public:
  explicit Generator(std::uint32_t seed) : rng_(seed) {}

  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  // One field in a random form; `names` (if any) are sometimes used instead of numbers.
  RandomField field(int min, int max, int open_end, const std::vector<std::string>& names, bool seven_is_sunday) {
    RandomField f;
    f.allowed.assign(static_cast<std::size_t>(max) + 1, false);
    const int elements = uniform(0, 3) == 0 ? uniform(2, 3) : 1;
    for (int e = 0; e < elements; ++e) {
      if (e > 0) f.text += ',';
      element(f, min, max, open_end, names);
    }
    if (seven_is_sunday && f.allowed[7]) {
      f.allowed[0] = true;
      f.allowed[7] = false;
    }
    return f;
  }

  RandomCron cron(bool hours_near_dst) {
    static const std::vector<std::string> kMonths = {"JAN", "feb", "Mar", "apr", "MAY", "jun",
                                                     "jul", "Aug", "sep", "OCT", "nov", "dec"};
    static const std::vector<std::string> kDays = {"sun", "MON", "tue", "Wed", "thu", "FRI", "sat"};
    RandomCron c;
    c.minute = field(0, 59, 59, {}, false);
    if (hours_near_dst && uniform(0, 1) == 0) {
      // Hours around the DST switches of the test zone, to land in gaps and repeated hours.
      c.hour.allowed.assign(24, false);
      const int lo = uniform(0, 2);
      const int hi = uniform(lo, 3);
      c.hour.text = std::to_string(lo) + "-" + std::to_string(hi);
      for (int h = lo; h <= hi; ++h) c.hour.allowed[static_cast<std::size_t>(h)] = true;
    } else {
      c.hour = field(0, 23, 23, {}, false);
    }
    c.day = field(1, 31, 31, {}, false);
    c.month = field(1, 12, 12, kMonths, false);
    c.weekday = field(0, 7, 6, kDays, true);
    c.text = c.minute.text + " " + c.hour.text + " " + c.day.text + " " + c.month.text + " " + c.weekday.text;
    return c;
  }

  Timestamp time(Timestamp lo, Timestamp hi) {
    const auto span = (hi - lo).count();
    auto offset = std::uniform_int_distribution<std::int64_t>(0, span)(rng_);
    if (uniform(0, 2) == 0) offset -= offset % 60'000'000;  // exactly on a minute, often a slot
    return lo + microseconds{offset};
  }

  std::mt19937& rng() { return rng_; }

 private:
  std::string value(int v, int min, const std::vector<std::string>& names) {
    if (!names.empty() && v - min < static_cast<int>(names.size()) && uniform(0, 2) == 0) {
      return names[static_cast<std::size_t>(v - min)];
    }
    return std::to_string(v);
  }

  void element(RandomField& f, int min, int max, int open_end, const std::vector<std::string>& names) {
    int lo = min;
    int hi = open_end;
    int step = 1;
    switch (uniform(0, 5)) {
      case 0:  // *
        f.text += uniform(0, 4) == 0 ? "?" : "*";
        f.star = true;
        break;
      case 1:  // a
        lo = hi = uniform(min, max);
        f.text += value(lo, min, names);
        break;
      case 2:  // a-b
        lo = uniform(min, max);
        hi = uniform(lo, max);
        f.text += value(lo, min, names) + "-" + value(hi, min, names);
        break;
      case 3:  // */n
        step = uniform(1, std::max(2, (open_end - min) / 2));
        f.text += "*/" + std::to_string(step);
        if (step == 1) f.star = true;
        break;
      case 4:  // a/n
        lo = uniform(min, open_end);
        step = uniform(1, 10);
        f.text += value(lo, min, names) + "/" + std::to_string(step);
        break;
      default:  // a-b/n
        lo = uniform(min, max);
        hi = uniform(lo, max);
        step = uniform(1, 7);
        f.text += value(lo, min, names) + "-" + value(hi, min, names) + "/" + std::to_string(step);
        break;
    }
    for (int v = lo; v <= hi; v += step) f.allowed[static_cast<std::size_t>(v)] = true;
  }

  std::mt19937 rng_;
};

// The oracle: every slot in (lo, hi], by walking the calendar of `zone` (nullptr = UTC) day by day.
class Oracle {
 public:
  Oracle(const RandomCron& c, const date::time_zone* zone) : c_(c), zone_(zone) {}

  bool dayMatches(date::sys_days day) const {
    const date::year_month_day ymd{day};
    const auto d = static_cast<unsigned>(ymd.day());
    const auto m = static_cast<unsigned>(ymd.month());
    const unsigned wd = date::weekday{day}.c_encoding();
    if (!c_.month.allowed[m]) return false;
    const bool dom = c_.day.allowed[d];
    const bool dow = c_.weekday.allowed[wd];
    return (c_.day.star || c_.weekday.star) ? (dom && dow) : (dom || dow);
  }

  std::vector<Timestamp> slots(Timestamp lo, Timestamp hi) const {
    std::vector<Timestamp> out;
    // Local days may differ from UTC days by up to a day either way.
    const auto first = date::floor<date::days>(lo) - date::days{1};
    const auto last = date::floor<date::days>(hi) + date::days{1};
    for (date::sys_days day = first; day <= last; day += date::days{1}) {
      if (!dayMatches(day)) continue;
      for (int h = 0; h < 24; ++h) {
        if (!c_.hour.allowed[static_cast<std::size_t>(h)]) continue;
        for (int m = 0; m < 60; ++m) {
          if (!c_.minute.allowed[static_cast<std::size_t>(m)]) continue;
          const auto wall = day.time_since_epoch() + std::chrono::hours{h} + minutes{m};
          std::optional<Timestamp> t;
          if (zone_ == nullptr) {
            t = Timestamp{wall};
          } else {
            const date::local_seconds local{wall};
            const date::local_info li = zone_->get_info(local);
            if (li.result == date::local_info::nonexistent) continue;  // the clock skips it
            t = Timestamp{local.time_since_epoch() - li.first.offset};  // first occurrence
          }
          if (*t > lo && *t <= hi) out.push_back(*t);
        }
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // True when some month the expression allows has a day it allows (in some year).
  bool canFire() const {
    if (!c_.day.star && !c_.weekday.star) return true;  // OR with a non-empty weekday set
    for (unsigned m = 1; m <= 12; ++m) {
      if (!c_.month.allowed[m]) continue;
      const unsigned longest =
          m == 2 ? 29u : static_cast<unsigned>((date::year{2023} / date::month{m} / date::last).day());
      for (unsigned d = 1; d <= longest; ++d) {
        if (c_.day.allowed[d]) return true;
      }
    }
    return false;
  }

 private:
  const RandomCron& c_;
  const date::time_zone* zone_;
};

void checkProperties(std::uint32_t seed, int rounds, const char* zone_name) {
  const date::time_zone* zone = zone_name == nullptr ? nullptr : date::locate_zone(zone_name);
  Generator gen(seed);
  const Timestamp lo = at("2020-01-01T00:00:00Z");
  const Timestamp hi = at("2035-12-31T00:00:00Z");
  int checked = 0;
  for (int round = 0; round < rounds; ++round) {
    const RandomCron c = gen.cron(zone != nullptr);
    const Oracle oracle(c, zone);
    Result<Schedule> parsed_schedule = Schedule::parse(c.text, zone_name == nullptr ? "" : zone_name);
    if (!parsed_schedule.isOk()) {
      // Only the never-fires rule may refuse a generated expression, and only when it is right.
      EXPECT_NE(parsed_schedule.status().message().find("never fires"), std::string::npos)
          << c.text << ": " << parsed_schedule.status().message();
      EXPECT_FALSE(oracle.canFire()) << c.text;
      continue;
    }
    const Schedule& s = *parsed_schedule;
    const Timestamp t = gen.time(lo, hi);

    const std::optional<Timestamp> n = s.next(t);
    ASSERT_TRUE(n.has_value()) << c.text << " after " << iso(t);
    EXPECT_GT(*n, t) << c.text;
    const std::vector<Timestamp> between = oracle.slots(t, *n);
    ASSERT_FALSE(between.empty()) << c.text << ": oracle finds no slot at " << iso(*n);
    EXPECT_EQ(between.front(), *n) << c.text << " after " << iso(t) << ": oracle's first slot is "
                                   << iso(between.front()) << ", next() said " << iso(*n);
    EXPECT_EQ(s.latestAtOrBefore(*n), n) << c.text << " at " << iso(*n);

    const std::optional<Timestamp> l = s.latestAtOrBefore(t);
    ASSERT_TRUE(l.has_value()) << c.text << " before " << iso(t);
    EXPECT_LE(*l, t) << c.text;
    const std::vector<Timestamp> since = oracle.slots(*l - microseconds{1}, t);
    ASSERT_FALSE(since.empty()) << c.text << ": latest " << iso(*l) << " is not a slot";
    EXPECT_EQ(since.front(), *l) << c.text << ": latest " << iso(*l) << " is not a slot";
    EXPECT_EQ(since.back(), *l) << c.text << " at " << iso(t) << ": a later slot " << iso(since.back())
                                << " was missed by latestAtOrBefore " << iso(*l);
    EXPECT_EQ(s.next(*l), n) << c.text << " at " << iso(t);

    // The batch walk used for catch-up gives exactly what next() gives one by one.
    std::vector<Timestamp> batch;
    s.appendSlots(t, hi, 12, batch);
    std::vector<Timestamp> one_by_one;
    for (std::optional<Timestamp> k = s.next(t); k && *k <= hi && one_by_one.size() < 12; k = s.next(*k)) {
      one_by_one.push_back(*k);
    }
    EXPECT_EQ(isoList(batch), isoList(one_by_one)) << c.text << " after " << iso(t);
    ++checked;
  }
  EXPECT_GT(checked, rounds / 2);  // the generator mostly makes schedules that fire
}

TEST(ScheduleProperties, NextAndLatestAgreeWithTheCalendarInUtc) { checkProperties(17, 3000, nullptr); }

TEST(ScheduleProperties, NextAndLatestAgreeWithTheCalendarInNewYork) {
  checkProperties(18, 1500, "America/New_York");
}

TEST(ScheduleProperties, NearDstSwitchesInNewYork) {
  // Times within a few hours of each 2020–2035 switch, with every-minute and every-quarter schedules.
  const date::time_zone* zone = date::locate_zone("America/New_York");
  std::vector<Timestamp> switches;
  for (auto t = date::sys_seconds{date::sys_days{date::year{2020} / 1 / 1}};
       t < date::sys_days{date::year{2036} / 1 / 1};) {
    t = zone->get_info(t).end;
    switches.push_back(Timestamp{t});
  }
  ASSERT_GE(switches.size(), 30u);
  std::mt19937 rng(19);
  for (const char* text : {"* * * * *", "*/15 * * * *", "30 1 * * *", "0 2 * * *", "59 1,2 * * *"}) {
    const Schedule s = parsed(text, "America/New_York");
    for (const Timestamp sw : switches) {
      for (int k = 0; k < 20; ++k) {
        const Timestamp t = sw + microseconds{std::uniform_int_distribution<std::int64_t>(
                                     -3LL * 3600'000'000, 3LL * 3600'000'000)(rng)};
        const std::optional<Timestamp> n = s.next(t);
        ASSERT_TRUE(n.has_value());
        ASSERT_GT(*n, t);
        EXPECT_EQ(s.latestAtOrBefore(*n), n) << text << " at " << iso(*n);
        const std::optional<Timestamp> l = s.latestAtOrBefore(t);
        ASSERT_TRUE(l.has_value());
        EXPECT_EQ(s.next(*l), n) << text << " around " << iso(t);
      }
    }
  }
}

}  // namespace
}  // namespace leoflow::schedule
