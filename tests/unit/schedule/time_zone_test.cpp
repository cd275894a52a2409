// Cron in a time zone (ARCHITECTURE §8.4, BEHAVIOUR §10 item 25): wall-clock fields, DST gaps that do
// not fire, repeated hours that fire once at their first occurrence, and which zone wins.
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "schedule/cron.h"
#include "schedule/due_slots.h"
#include "schedule_test_util.h"

namespace leoflow::schedule {
namespace {

using ::testing::ElementsAre;
using namespace leoflow::schedule::testing;

// New York 2026: EST (UTC-5) until 2026-03-08 02:00 local → 03:00 EDT (UTC-4);
// back to EST at 2026-11-01 02:00 EDT → 01:00 EST, so 01:00–01:59 happens twice.

TEST(TimeZone, SpringForwardGapDoesNotFire) {
  const Schedule s = parsed("CRON_TZ=America/New_York 30 2 * * *");
  EXPECT_THAT(nextSlots(s, at("2026-03-06T12:00:00Z"), 3),
              ElementsAre("2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"));
  EXPECT_EQ(iso(s.latestAtOrBefore(at("2026-03-08T12:00:00Z"))), "2026-03-07T07:30:00Z");
  EXPECT_EQ(iso(s.latestAtOrBefore(at("2026-03-09T06:30:00Z"))), "2026-03-09T06:30:00Z");
}

TEST(TimeZone, SpringForwardKeepsSlotsOutsideTheGap) {
  const Schedule s = parsed("CRON_TZ=America/New_York */30 * * * *");
  // 01:30 EST, then 02:00 and 02:30 do not exist, then 03:00 EDT.
  EXPECT_THAT(nextSlots(s, at("2026-03-08T06:15:00Z"), 3),
              ElementsAre("2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z"));
  EXPECT_EQ(iso(s.latestAtOrBefore(at("2026-03-08T06:59:59Z"))), "2026-03-08T06:30:00Z");
}

TEST(TimeZone, RepeatedHourFiresOnceAtItsFirstOccurrence) {
  const Schedule s = parsed("CRON_TZ=America/New_York 30 1 * * *");
  EXPECT_THAT(nextSlots(s, at("2026-10-31T12:00:00Z"), 3),
              ElementsAre("2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", "2026-11-03T06:30:00Z"));
  // From inside the second 01:xx, the 01:30 of today already happened.
  EXPECT_EQ(iso(s.next(at("2026-11-01T06:10:00Z"))), "2026-11-02T06:30:00Z");
  EXPECT_EQ(iso(s.next(at("2026-11-01T06:40:00Z"))), "2026-11-02T06:30:00Z");
  EXPECT_EQ(iso(s.latestAtOrBefore(at("2026-11-01T06:40:00Z"))), "2026-11-01T05:30:00Z");
  EXPECT_EQ(iso(s.latestAtOrBefore(at("2026-11-01T05:29:59Z"))), "2026-10-31T05:30:00Z");
}

TEST(TimeZone, RepeatedHourIsNotRunTwiceByMinuteSchedules) {
  const Schedule s = parsed("CRON_TZ=America/New_York */15 * * * *");
  EXPECT_THAT(nextSlots(s, at("2026-11-01T05:30:00Z"), 3),
              ElementsAre("2026-11-01T05:45:00Z", "2026-11-01T07:00:00Z", "2026-11-01T07:15:00Z"));
  EXPECT_EQ(iso(s.next(at("2026-11-01T06:20:00Z"))), "2026-11-01T07:00:00Z");
  EXPECT_EQ(iso(s.latestAtOrBefore(at("2026-11-01T06:40:00Z"))), "2026-11-01T05:45:00Z");
  EXPECT_EQ(iso(s.latestAtOrBefore(at("2026-11-01T07:00:00Z"))), "2026-11-01T07:00:00Z");
}

TEST(TimeZone, HalfHourDstShiftOnLordHowe) {
  // Lord Howe: +10:30, and +11:00 from the first Sunday of October (2026-10-04) at 02:00 → 02:30.
  const Schedule s = parsed("CRON_TZ=Australia/Lord_Howe 15 2 * * *");
  EXPECT_THAT(nextSlots(s, at("2026-10-02T00:00:00Z"), 2),
              ElementsAre("2026-10-02T15:45:00Z", "2026-10-04T15:15:00Z"));
}

TEST(TimeZone, FixedOffsetZones) {
  EXPECT_EQ(iso(parsed("0 0 * * *", "Asia/Kolkata").next(at("2026-01-01T00:00:00Z"))), "2026-01-01T18:30:00Z");
  EXPECT_EQ(iso(parsed("TZ=Europe/London 0 1 * * *").next(at("2026-06-30T12:00:00Z"))), "2026-07-01T00:00:00Z");
  EXPECT_EQ(iso(parsed("TZ=Europe/London 0 1 * * *").next(at("2026-01-01T12:00:00Z"))), "2026-01-02T01:00:00Z");
}

TEST(TimeZone, ThePrefixWinsOverTheZoneArgument) {
  EXPECT_EQ(iso(parsed("0 9 * * *", "Asia/Tokyo").next(at("2025-12-31T12:00:00Z"))), "2026-01-01T00:00:00Z");
  EXPECT_EQ(iso(parsed("CRON_TZ=UTC 0 12 * * *", "Asia/Tokyo").next(at("2026-01-01T00:00:00Z"))),
            "2026-01-01T12:00:00Z");
  EXPECT_EQ(iso(parsed("TZ=Asia/Tokyo 0 9 * * *", "America/New_York").next(at("2025-12-31T12:00:00Z"))),
            "2026-01-01T00:00:00Z");
  // The argument and the prefix give the same schedule.
  EXPECT_EQ(parsed("30 2 * * *", "America/New_York").next(at("2026-03-07T12:00:00Z")),
            parsed("CRON_TZ=America/New_York 30 2 * * *").next(at("2026-03-07T12:00:00Z")));
}

TEST(TimeZone, EveryIgnoresTheZone) {
  EXPECT_EQ(parsed("@every 1h", "America/New_York").next(at("2026-11-01T05:30:00Z")), at("2026-11-01T06:30:00Z"));
}

TEST(TimeZone, MonthlyLatestInAZone) {
  // Midnight on the 1st in Tokyo is 15:00 UTC the day before.
  const Schedule s = parsed("CRON_TZ=Asia/Tokyo @monthly");
  EXPECT_EQ(iso(s.latestAtOrBefore(at("2026-03-01T12:00:00Z"))), "2026-02-28T15:00:00Z");
  EXPECT_EQ(iso(s.latestAtOrBefore(at("2026-02-28T14:59:59Z"))), "2026-01-31T15:00:00Z");
}

TEST(TimeZone, CatchUpAcrossFallBack) {
  const Schedule s = parsed("CRON_TZ=America/New_York 30 1 * * *");
  DueQuery q;
  q.now = at("2026-11-03T12:00:00Z");
  q.last_logical = at("2026-10-31T05:30:00Z");
  q.catchup = true;
  std::vector<Timestamp> slots;
  dueSlots(s, q, slots);
  EXPECT_THAT(isoList(slots),
              ElementsAre("2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", "2026-11-03T06:30:00Z"));
}

}  // namespace
}  // namespace leoflow::schedule
