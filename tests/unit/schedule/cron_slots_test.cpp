// next() and latestAtOrBefore() in UTC: strictness, carries across calendar boundaries, irregular
// schedules (BEHAVIOUR §3.4, §10 item 24), @every, and inputs at the edges of time.
#include <chrono>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "schedule/cron.h"
#include "schedule_test_util.h"

namespace leoflow::schedule {
namespace {

using ::testing::ElementsAre;
using namespace leoflow::schedule::testing;
using std::chrono::microseconds;

TEST(CronNext, IsStrictlyAfterTheGivenTime) {
  const Schedule every5 = parsed("*/5 * * * *");
  EXPECT_EQ(iso(every5.next(at("2026-01-01T00:03:10Z"))), "2026-01-01T00:05:00Z");
  EXPECT_EQ(iso(every5.next(at("2026-01-01T00:05:00Z"))), "2026-01-01T00:10:00Z");
  EXPECT_EQ(every5.next(at("2026-01-01T00:04:59.999999Z")), at("2026-01-01T00:05:00Z"));
  EXPECT_EQ(every5.next(at("2026-01-01T00:05:00.000001Z")), at("2026-01-01T00:10:00Z"));
}

TEST(CronNext, CarriesAcrossHourDayMonthAndYear) {
  EXPECT_EQ(iso(parsed("@hourly").next(at("2026-12-31T23:30:00Z"))), "2027-01-01T00:00:00Z");
  EXPECT_EQ(iso(parsed("59 23 * * *").next(at("2026-02-28T23:59:00Z"))), "2026-03-01T23:59:00Z");
  EXPECT_EQ(iso(parsed("@monthly").next(at("2026-01-31T12:00:00Z"))), "2026-02-01T00:00:00Z");
  EXPECT_EQ(iso(parsed("@yearly").next(at("2026-01-01T00:00:00Z"))), "2027-01-01T00:00:00Z");
  // 2026-05-28 is a Thursday; the next Sunday is the 31st.
  EXPECT_EQ(iso(parsed("@weekly").next(at("2026-05-28T12:00:00Z"))), "2026-05-31T00:00:00Z");
}

TEST(CronNext, SkipsMonthsWithoutTheDay) {
  EXPECT_THAT(nextSlots(parsed("0 0 31 * *"), at("2026-01-31T00:00:00Z"), 3),
              ElementsAre("2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z"));
}

TEST(CronNext, LeapDayWaitsForTheNextLeapYearEvenAcross2100) {
  const Schedule leap = parsed("0 0 29 2 *");
  EXPECT_EQ(iso(leap.next(at("2026-03-01T00:00:00Z"))), "2028-02-29T00:00:00Z");
  EXPECT_EQ(iso(leap.next(at("2096-03-01T00:00:00Z"))), "2104-02-29T00:00:00Z");
  EXPECT_EQ(iso(leap.latestAtOrBefore(at("2104-01-01T00:00:00Z"))), "2096-02-29T00:00:00Z");
  EXPECT_EQ(iso(leap.latestAtOrBefore(at("2026-05-28T12:00:00Z"))), "2024-02-29T00:00:00Z");
}

TEST(CronNext, WorksBefore1970) {
  EXPECT_EQ(iso(parsed("* * * * *").next(at("1969-12-31T23:59:30Z"))), "1970-01-01T00:00:00Z");
  EXPECT_EQ(iso(parsed("0 12 * * *").latestAtOrBefore(at("1969-07-21T02:56:00Z"))), "1969-07-20T12:00:00Z");
  EXPECT_EQ(iso(parsed("@monthly").next(at("1900-02-15T00:00:00Z"))), "1900-03-01T00:00:00Z");
}

TEST(CronLatest, IsTheTimeItselfWhenOnASlot) {
  EXPECT_EQ(iso(parsed("@hourly").latestAtOrBefore(at("2026-05-22T12:00:00Z"))), "2026-05-22T12:00:00Z");
  EXPECT_EQ(iso(parsed("* * * * *").latestAtOrBefore(at("2026-05-22T12:30:30Z"))), "2026-05-22T12:30:00Z");
}

TEST(CronLatest, MonthlyAtMarchFirstNoonIsMarchFirst) {
  // BEHAVIOUR §10 item 24: the Go period estimate answered Feb 1.
  const Schedule monthly = parsed("@monthly");
  EXPECT_EQ(iso(monthly.latestAtOrBefore(at("2026-03-01T12:00:00Z"))), "2026-03-01T00:00:00Z");
  EXPECT_EQ(iso(monthly.latestAtOrBefore(at("2026-02-28T23:59:59Z"))), "2026-02-01T00:00:00Z");
  EXPECT_EQ(iso(monthly.latestAtOrBefore(at("2026-01-01T00:00:00Z"))), "2026-01-01T00:00:00Z");
}

TEST(CronLatest, WeekdayScheduleOnSaturdayIsFriday) {
  // 2026-05-30 is a Saturday.
  const Schedule weekdays = parsed("0 9 * * 1-5");
  EXPECT_EQ(iso(weekdays.latestAtOrBefore(at("2026-05-30T12:00:00Z"))), "2026-05-29T09:00:00Z");
  EXPECT_EQ(iso(weekdays.latestAtOrBefore(at("2026-06-01T08:59:59Z"))), "2026-05-29T09:00:00Z");
  EXPECT_EQ(iso(weekdays.next(at("2026-05-30T12:00:00Z"))), "2026-06-01T09:00:00Z");
}

TEST(CronLatest, OrRuleIsHonouredBackwards) {
  // 13th or Friday; 2026-02-13 is itself a Friday, 2026-03-13 too; Mar 12 → Friday Mar 6.
  EXPECT_EQ(iso(parsed("0 0 13 * 5").latestAtOrBefore(at("2026-03-12T00:00:00Z"))), "2026-03-06T00:00:00Z");
  EXPECT_EQ(iso(parsed("0 0 13 * 2").latestAtOrBefore(at("2026-01-14T00:00:00Z"))), "2026-01-13T00:00:00Z");
}

TEST(CronEdges, TimesOutsideYears1To9999GetNoSlotAndNoOverflow) {
  const Schedule s = parsed("*/5 * * * *");
  EXPECT_FALSE(s.next(Timestamp::max()).has_value());
  EXPECT_FALSE(s.next(Timestamp::min()).has_value());
  EXPECT_FALSE(s.latestAtOrBefore(Timestamp::max()).has_value());
  EXPECT_FALSE(s.latestAtOrBefore(Timestamp::min()).has_value());
  EXPECT_FALSE(parsed("@every 1h").next(Timestamp::max()).has_value());
  EXPECT_FALSE(parsed("CRON_TZ=Europe/Paris 0 * * * *").next(Timestamp::max()).has_value());
  EXPECT_EQ(iso(s.next(at("9999-12-31T23:50:00Z"))), "9999-12-31T23:55:00Z");
  EXPECT_EQ(iso(s.latestAtOrBefore(at("0001-01-01T00:07:00Z"))), "0001-01-01T00:05:00Z");
}

TEST(EveryNext, IsAfterPlusThePeriodTruncatedToTheSecond) {
  const Schedule every = parsed("@every 90s");
  EXPECT_EQ(every.next(at("2026-01-01T00:00:00.750Z")), at("2026-01-01T00:01:30Z"));
  EXPECT_THAT(nextSlots(parsed("@every 1h30m"), at("2026-01-01T00:00:00Z"), 3),
              ElementsAre("2026-01-01T01:30:00Z", "2026-01-01T03:00:00Z", "2026-01-01T04:30:00Z"));
  EXPECT_EQ(every.latestAtOrBefore(at("2026-01-01T00:00:07.5Z")), at("2026-01-01T00:00:07Z"));
}

}  // namespace
}  // namespace leoflow::schedule
