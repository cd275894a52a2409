// Which slots are due: BEHAVIOUR §9.3 scenarios 17 and 18, the §3.4/§3.5 anchors with the §10 fixes
// (items 21, 23, 24, 25), @every, @once, @continuous and manual (ARCHITECTURE §8.4).
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "schedule/cron.h"
#include "schedule/due_slots.h"
#include "schedule_test_util.h"

namespace leoflow::schedule {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace leoflow::schedule::testing;

struct Query {
  std::string now{};
  std::string last{};
  std::string start{};
  std::string end{};
  bool catchup = false;
  int max_slots = 100;
};

std::vector<std::string> due(std::string_view expression, const Query& in, std::string_view zone = {}) {
  DueQuery q;
  q.now = at(in.now);
  q.catchup = in.catchup;
  if (!in.last.empty()) q.last_logical = at(in.last);
  if (!in.start.empty()) q.start_date = at(in.start);
  if (!in.end.empty()) q.end_date = at(in.end);
  q.max_slots = in.max_slots;
  std::vector<Timestamp> out;
  dueSlots(parsed(expression, zone), q, out);
  return isoList(out);
}

// ---- BEHAVIOUR §9.3 scenario 17 (TestNextScheduledRun), now 2026-05-22 12:30Z --------------------

TEST(NextScheduledRun, HourlyAfterLastElevenIsTwelveAndDue) {
  EXPECT_THAT(due("@hourly", {.now = "2026-05-22T12:30:00Z", .last = "2026-05-22T11:00:00Z"}),
              ElementsAre("2026-05-22T12:00:00Z"));
  EXPECT_EQ(iso(parsed("@hourly").next(at("2026-05-22T11:00:00Z"))), "2026-05-22T12:00:00Z");
}

TEST(NextScheduledRun, HourlyAfterLastTwelveIsNotDue) {
  EXPECT_THAT(due("@hourly", {.now = "2026-05-22T12:30:00Z", .last = "2026-05-22T12:00:00Z"}), IsEmpty());
}

TEST(NextScheduledRun, HourlyNeverRunIsTwelve) {
  EXPECT_THAT(due("@hourly", {.now = "2026-05-22T12:30:00Z"}), ElementsAre("2026-05-22T12:00:00Z"));
}

TEST(NextScheduledRun, EveryMinuteNeverRunIsTheCurrentMinute) {
  EXPECT_THAT(due("* * * * *", {.now = "2026-05-22T12:30:30Z"}), ElementsAre("2026-05-22T12:30:00Z"));
}

TEST(NextScheduledRun, GarbageIsRefused) {
  EXPECT_FALSE(Schedule::parse("not a cron expression").isOk());
}

// ---- BEHAVIOUR §9.3 scenario 18 (TestDueScheduledSlots), now 2026-05-28 12:00Z, @hourly ----------

constexpr const char* kNow = "2026-05-28T12:00:00Z";

TEST(DueScheduledSlots, BackfillsEverySlotSinceLast) {
  EXPECT_THAT(due("@hourly", {.now = kNow, .last = "2026-05-28T06:00:00Z", .catchup = true}),
              ElementsAre("2026-05-28T07:00:00Z", "2026-05-28T08:00:00Z", "2026-05-28T09:00:00Z",
                          "2026-05-28T10:00:00Z", "2026-05-28T11:00:00Z", "2026-05-28T12:00:00Z"));
}

TEST(DueScheduledSlots, WithoutCatchupOnlyTheLatest) {
  EXPECT_THAT(due("@hourly", {.now = kNow, .last = "2026-05-28T06:00:00Z"}), ElementsAre("2026-05-28T12:00:00Z"));
}

TEST(DueScheduledSlots, CapTakesTheEarliest) {
  EXPECT_THAT(due("@hourly", {.now = kNow, .last = "2026-05-28T06:00:00Z", .catchup = true, .max_slots = 3}),
              ElementsAre("2026-05-28T07:00:00Z", "2026-05-28T08:00:00Z", "2026-05-28T09:00:00Z"));
}

TEST(DueScheduledSlots, NothingDueWhenLastIsTheCurrentSlot) {
  EXPECT_THAT(due("@hourly", {.now = kNow, .last = "2026-05-28T12:00:00Z", .catchup = true}), IsEmpty());
  EXPECT_THAT(due("@hourly", {.now = kNow, .last = "2026-05-28T12:00:00Z"}), IsEmpty());
}

TEST(DueScheduledSlots, FirstRunCatchesUpFromStartDate) {
  EXPECT_THAT(due("@hourly", {.now = kNow, .start = "2026-05-28T09:00:00Z", .catchup = true}),
              ElementsAre("2026-05-28T09:00:00Z", "2026-05-28T10:00:00Z", "2026-05-28T11:00:00Z",
                          "2026-05-28T12:00:00Z"));
}

TEST(DueScheduledSlots, FirstRunWithoutCatchupOnlyTheLatest) {
  EXPECT_THAT(due("@hourly", {.now = kNow, .start = "2026-05-28T09:00:00Z"}), ElementsAre("2026-05-28T12:00:00Z"));
}

TEST(DueScheduledSlots, StartDateIsAFloorUnderLast) {
  EXPECT_THAT(due("@hourly", {.now = kNow, .last = "2026-05-28T06:00:00Z", .start = "2026-05-28T09:00:00Z",
                              .catchup = true}),
              ElementsAre("2026-05-28T09:00:00Z", "2026-05-28T10:00:00Z", "2026-05-28T11:00:00Z",
                          "2026-05-28T12:00:00Z"));
  EXPECT_THAT(due("@hourly", {.now = kNow, .last = "2026-05-28T06:00:00Z", .start = "2026-05-28T09:00:00Z"}),
              ElementsAre("2026-05-28T12:00:00Z"));
}

TEST(DueScheduledSlots, UnparseableIsAnErrorNotSilence) {
  EXPECT_FALSE(Schedule::parse("* not a cron *").isOk());
}

// ---- the other harness-verified behaviours of BEHAVIOUR §3.5, with the §10 fixes -----------------

TEST(DueSlots, StartBetweenSlotsBeginsAtTheNextSlot) {
  EXPECT_THAT(due("@hourly", {.now = kNow, .start = "2026-05-28T09:30:00Z", .catchup = true}),
              ElementsAre("2026-05-28T10:00:00Z", "2026-05-28T11:00:00Z", "2026-05-28T12:00:00Z"));
}

TEST(DueSlots, StartInTheFutureGivesNothing) {
  EXPECT_THAT(due("@hourly", {.now = kNow, .start = "2026-05-29T00:00:00Z", .catchup = true}), IsEmpty());
  EXPECT_THAT(due("@hourly", {.now = kNow, .start = "2026-05-29T00:00:00Z"}), IsEmpty());
}

TEST(DueSlots, LastNotOnASlotContinuesAtTheNextSlot) {
  EXPECT_THAT(due("@hourly", {.now = kNow, .last = "2026-05-28T10:17:00Z", .catchup = true}),
              ElementsAre("2026-05-28T11:00:00Z", "2026-05-28T12:00:00Z"));
}

TEST(DueSlots, WithoutCatchupMoreThanAHundredMissedSlotsStillGiveTheLatest) {
  // BEHAVIOUR §10 item 23: Go answered 2026-05-24 04:00 (the 100th slot) and 2026-05-05 03:00.
  EXPECT_THAT(due("@hourly", {.now = kNow, .last = "2026-05-20T00:00:00Z"}), ElementsAre("2026-05-28T12:00:00Z"));
  EXPECT_THAT(due("@hourly", {.now = kNow, .start = "2026-05-01T00:00:00Z"}), ElementsAre("2026-05-28T12:00:00Z"));
  EXPECT_THAT(due("* * * * *", {.now = kNow, .last = "2016-05-28T00:00:00Z"}), ElementsAre("2026-05-28T12:00:00Z"));
}

TEST(DueSlots, CatchupCapsAtAHundredAndTheCallerContinuesFromTheLast) {
  const std::vector<std::string> first = due("@hourly", {.now = kNow, .start = "2026-05-01T00:00:00Z", .catchup = true});
  ASSERT_EQ(first.size(), 100u);
  EXPECT_EQ(first.front(), "2026-05-01T00:00:00Z");
  EXPECT_EQ(first.back(), "2026-05-05T03:00:00Z");
  // Continuing tick by tick visits every slot once, in order, and then stops.
  std::vector<std::string> all = first;
  while (true) {
    const std::vector<std::string> more =
        due("@hourly", {.now = kNow, .last = all.back(), .start = "2026-05-01T00:00:00Z", .catchup = true});
    if (more.empty()) break;
    EXPECT_LE(more.size(), 100u);
    all.insert(all.end(), more.begin(), more.end());
  }
  ASSERT_EQ(all.size(), 27u * 24u + 13u);  // May 1 00:00 … May 28 12:00
  EXPECT_EQ(all.back(), "2026-05-28T12:00:00Z");
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_LT(at(all[i - 1]), at(all[i]));
}

TEST(DueSlots, CatchUpSpansDecades) {
  const std::vector<std::string> yearly = due("@yearly", {.now = kNow, .last = "1990-01-01T00:00:00Z", .catchup = true});
  ASSERT_EQ(yearly.size(), 36u);
  EXPECT_EQ(yearly.front(), "1991-01-01T00:00:00Z");
  EXPECT_EQ(yearly.back(), "2026-01-01T00:00:00Z");
  EXPECT_THAT(due("0 0 29 2 *", {.now = kNow, .last = "1990-01-01T00:00:00Z", .catchup = true, .max_slots = 3}),
              ElementsAre("1992-02-29T00:00:00Z", "1996-02-29T00:00:00Z", "2000-02-29T00:00:00Z"));
}

TEST(DueSlots, ACapBelowOneStillMakesProgress) {
  EXPECT_THAT(due("@hourly", {.now = kNow, .last = "2026-05-28T06:00:00Z", .catchup = true, .max_slots = 0}),
              ElementsAre("2026-05-28T07:00:00Z"));
}

TEST(DueSlots, FirstSightOfMonthlyOnMarchFirstNoonIsMarchFirst) {
  // BEHAVIOUR §10 item 24: Go answered Feb 1, then created Mar 1 on the next tick too.
  EXPECT_THAT(due("@monthly", {.now = "2026-03-01T12:00:00Z"}), ElementsAre("2026-03-01T00:00:00Z"));
  EXPECT_THAT(due("@monthly", {.now = "2026-03-01T12:00:00Z", .catchup = true}), ElementsAre("2026-03-01T00:00:00Z"));
}

TEST(DueSlots, FirstSightOfWeekdayScheduleOnSaturdayIsFriday) {
  // BEHAVIOUR §10 item 24: Go found nothing until Monday. 2026-05-30 is a Saturday.
  EXPECT_THAT(due("0 9 * * 1-5", {.now = "2026-05-30T12:00:00Z"}), ElementsAre("2026-05-29T09:00:00Z"));
}

TEST(DueSlots, EndDateIsHonoured) {
  // BEHAVIOUR §10 item 25: the Go scheduler ignored end_date.
  EXPECT_THAT(due("@hourly", {.now = kNow, .last = "2026-05-28T06:00:00Z", .end = "2026-05-28T09:30:00Z",
                              .catchup = true}),
              ElementsAre("2026-05-28T07:00:00Z", "2026-05-28T08:00:00Z", "2026-05-28T09:00:00Z"));
  EXPECT_THAT(due("@hourly", {.now = kNow, .last = "2026-05-28T06:00:00Z", .end = "2026-05-28T09:30:00Z"}),
              ElementsAre("2026-05-28T09:00:00Z"));
  EXPECT_THAT(due("@hourly", {.now = kNow, .last = "2026-05-28T09:00:00Z", .end = "2026-05-28T09:30:00Z"}),
              IsEmpty());
  EXPECT_THAT(due("@hourly", {.now = kNow, .end = "2026-05-28T09:00:00Z"}), ElementsAre("2026-05-28T09:00:00Z"));
  EXPECT_THAT(due("@hourly", {.now = kNow, .start = "2026-05-28T10:00:00Z", .end = "2026-05-28T09:00:00Z",
                              .catchup = true}),
              IsEmpty());
}

TEST(DueSlots, RareSchedulesEndQuickly) {
  // BEHAVIOUR §10 item 21: no hang and no year-1 slots when the next slot is years away.
  EXPECT_THAT(due("0 0 29 2 *", {.now = "2030-01-01T00:00:00Z", .last = "2028-02-29T00:00:00Z",
                                  .start = "2020-01-01T00:00:00Z", .catchup = true}),
              IsEmpty());
  EXPECT_THAT(due("0 0 29 2 *", {.now = "2030-01-01T00:00:00Z", .last = "2020-02-29T00:00:00Z", .catchup = true}),
              ElementsAre("2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z"));
}

TEST(DueSlots, ZoneArgumentAppliesToCatchUp) {
  EXPECT_THAT(due("0 9 * * *", {.now = "2026-05-28T12:00:00Z", .last = "2026-05-26T13:00:00Z", .catchup = true},
                  "America/New_York"),
              ElementsAre("2026-05-27T13:00:00Z"));  // 09:00 EDT; the 28th's is still ahead
}

// ---- @every, @once, @continuous, manual (ARCHITECTURE §8.4) ---------------------------------------

TEST(DueEvery, CountsFromLastLogical) {
  EXPECT_THAT(due("@every 90m", {.now = kNow, .last = "2026-05-28T06:00:00Z", .catchup = true}),
              ElementsAre("2026-05-28T07:30:00Z", "2026-05-28T09:00:00Z", "2026-05-28T10:30:00Z",
                          "2026-05-28T12:00:00Z"));
  EXPECT_THAT(due("@every 90m", {.now = kNow, .last = "2026-05-28T06:00:00Z"}), ElementsAre("2026-05-28T12:00:00Z"));
  EXPECT_THAT(due("@every 90m", {.now = kNow, .last = "2026-05-28T11:00:00Z"}), IsEmpty());
}

TEST(DueEvery, CountsFromStartDateIncludingItself) {
  EXPECT_THAT(due("@every 90m", {.now = kNow, .start = "2026-05-28T09:10:00Z", .catchup = true}),
              ElementsAre("2026-05-28T09:10:00Z", "2026-05-28T10:40:00Z"));
  EXPECT_THAT(due("@every 90m", {.now = kNow, .start = "2026-05-28T09:10:00Z"}), ElementsAre("2026-05-28T10:40:00Z"));
  EXPECT_THAT(due("@every 90m", {.now = kNow, .start = "2026-05-28T12:00:01Z"}), IsEmpty());
}

TEST(DueEvery, LastGridStaysAtOrAfterStart) {
  EXPECT_THAT(due("@every 90m", {.now = kNow, .last = "2026-05-28T06:00:00Z", .start = "2026-05-28T09:10:00Z",
                                 .catchup = true}),
              ElementsAre("2026-05-28T10:30:00Z", "2026-05-28T12:00:00Z"));
}

TEST(DueEvery, FirstSightIsNowTruncatedToTheSecond) {
  DueQuery q;
  q.now = at("2026-05-28T12:34:56.789Z");
  std::vector<Timestamp> out;
  dueSlots(parsed("@every 5m"), q, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], at("2026-05-28T12:34:56Z"));
  EXPECT_THAT(due("@every 5m", {.now = kNow, .end = "2026-05-28T11:00:00Z"}), IsEmpty());
}

TEST(DueEvery, ManyMissedSlotsWithoutCatchupIsOneSlot) {
  EXPECT_THAT(due("@every 1s", {.now = kNow, .last = "2016-05-28T12:00:00Z"}), ElementsAre("2026-05-28T12:00:00Z"));
  EXPECT_EQ(due("@every 1s", {.now = kNow, .last = "2016-05-28T12:00:00Z", .catchup = true}).size(), 100u);
}

TEST(DueOnce, FiresOnceAtNowWithinTheWindow) {
  DueQuery q;
  q.now = at("2026-05-28T12:34:56.5Z");
  std::vector<Timestamp> out;
  dueSlots(parsed("@once"), q, out);
  EXPECT_THAT(out, ElementsAre(q.now));
  EXPECT_THAT(due("@once", {.now = kNow, .last = "2026-05-01T00:00:00Z"}), IsEmpty());
  EXPECT_THAT(due("@once", {.now = kNow, .start = "2026-06-01T00:00:00Z"}), IsEmpty());
  EXPECT_THAT(due("@once", {.now = kNow, .end = "2026-05-01T00:00:00Z"}), IsEmpty());
  EXPECT_THAT(due("@once", {.now = kNow, .start = "2026-05-01T00:00:00Z", .end = kNow}), ElementsAre(kNow));
}

TEST(DueContinuousAndManual, AreNeverDue) {
  EXPECT_THAT(due("@continuous", {.now = kNow, .catchup = true}), IsEmpty());
  EXPECT_THAT(due("", {.now = kNow, .catchup = true}), IsEmpty());
  EXPECT_THAT(due("", {.now = kNow, .start = "2026-01-01T00:00:00Z", .catchup = true}), IsEmpty());
}

TEST(DueSlots, ExtremeTimesGiveNothingRatherThanOverflow) {
  for (const char* expression : {"@hourly", "@every 1h", "CRON_TZ=Europe/Paris @daily", "@once"}) {
    const Schedule s = parsed(expression);
    std::vector<Timestamp> out;
    for (const Timestamp extreme : {Timestamp::min(), Timestamp::max()}) {
      DueQuery q;
      q.now = extreme;
      dueSlots(s, q, out);
      q.catchup = true;
      q.start_date = extreme;
      dueSlots(s, q, out);
      q.last_logical = extreme;
      q.end_date = extreme;
      dueSlots(s, q, out);
      q.now = at(kNow);
      dueSlots(s, q, out);
      EXPECT_LE(out.size(), 1u) << expression;
    }
  }
}

TEST(DueSlots, ReusesTheCallersBufferWithoutReallocating) {
  const Schedule hourly = parsed("@hourly");
  DueQuery q;
  q.now = at(kNow);
  q.start_date = at("2026-05-01T00:00:00Z");
  q.catchup = true;
  std::vector<Timestamp> out;
  out.reserve(100);
  const Timestamp* data = out.data();
  for (int i = 0; i < 3; ++i) {
    dueSlots(hourly, q, out);
    EXPECT_EQ(out.size(), 100u);
    EXPECT_EQ(out.data(), data);
  }
  q.last_logical = at("2026-05-28T11:00:00Z");
  dueSlots(hourly, q, out);  // the buffer is cleared, not appended to
  EXPECT_THAT(isoList(out), ElementsAre("2026-05-28T12:00:00Z"));
}

}  // namespace
}  // namespace leoflow::schedule
