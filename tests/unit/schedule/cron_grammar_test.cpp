// The schedule grammar: cron fields, descriptors, @every, zone prefixes, and every way to get it wrong
// (BEHAVIOUR §3.3, ARCHITECTURE §8.4, BEHAVIOUR §10 items 21, 22 and 27).
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "schedule/cron.h"
#include "schedule_test_util.h"

namespace leoflow::schedule {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace leoflow::schedule::testing;

// Two expressions mean the same when they produce the same slots; comparing the parsed fields is
// the strongest form of that.
void expectSameAs(std::string_view a, std::string_view b) {
  const Schedule sa = parsed(a);
  const Schedule sb = parsed(b);
  EXPECT_EQ(sa.kind(), sb.kind()) << a << " vs " << b;
  EXPECT_TRUE(sa.fields() == sb.fields()) << a << " vs " << b;
}

TEST(CronGrammar, StepsRangesAndListsSelectTheRightMinutes) {
  EXPECT_THAT(nextSlots(parsed("*/15 * * * *"), at("2026-01-01T00:00:00Z"), 4),
              ElementsAre("2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z",
                          "2026-01-01T01:00:00Z"));
  EXPECT_THAT(nextSlots(parsed("5/20 * * * *"), at("2026-01-01T00:00:00Z"), 4),
              ElementsAre("2026-01-01T00:05:00Z", "2026-01-01T00:25:00Z", "2026-01-01T00:45:00Z",
                          "2026-01-01T01:05:00Z"));
  EXPECT_THAT(nextSlots(parsed("10-30/10 * * * *"), at("2026-01-01T00:00:00Z"), 4),
              ElementsAre("2026-01-01T00:10:00Z", "2026-01-01T00:20:00Z", "2026-01-01T00:30:00Z",
                          "2026-01-01T01:10:00Z"));
  EXPECT_THAT(nextSlots(parsed("1,2,58 * * * *"), at("2026-01-01T00:01:00Z"), 3),
              ElementsAre("2026-01-01T00:02:00Z", "2026-01-01T00:58:00Z", "2026-01-01T01:01:00Z"));
  EXPECT_THAT(nextSlots(parsed("0 9-11,22 * * *"), at("2026-01-01T00:00:00Z"), 5),
              ElementsAre("2026-01-01T09:00:00Z", "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z",
                          "2026-01-01T22:00:00Z", "2026-01-02T09:00:00Z"));
}

TEST(CronGrammar, QuestionMarkIsAStar) {
  expectSameAs("? ? ? ? ?", "* * * * *");
  expectSameAs("0 0 ? * MON", "0 0 * * 1");
}

TEST(CronGrammar, MonthAndWeekdayNamesAreCaseInsensitive) {
  expectSameAs("0 0 1 jan,Mar,DEC *", "0 0 1 1,3,12 *");
  expectSameAs("0 0 1 JAN-mar *", "0 0 1 1-3 *");
  expectSameAs("0 9 * * MON-FRI", "0 9 * * 1-5");
  expectSameAs("0 9 * * sun,Sat", "0 9 * * 0,6");
  expectSameAs("0 9 * * tue/2", "0 9 * * 2,4,6");
}

TEST(CronGrammar, SevenIsSundayLikeZero) {
  expectSameAs("0 0 * * 7", "0 0 * * 0");
  expectSameAs("0 0 * * 5-7", "0 0 * * 0,5,6");
  expectSameAs("0 0 * * 0-7", "0 0 * * *");
  // 2026-05-31 is a Sunday.
  EXPECT_EQ(iso(parsed("0 0 * * 7").next(at("2026-05-28T12:00:00Z"))), "2026-05-31T00:00:00Z");
}

TEST(CronGrammar, StarStepOnWeekdaysDoesNotWrapPastSaturday) {
  expectSameAs("0 0 * * */2", "0 0 * * 0,2,4,6");
  expectSameAs("0 0 * * 1/2", "0 0 * * 1,3,5");
}

TEST(CronGrammar, DayOfMonthOrDayOfWeekWhenBothAreRestricted) {
  // 2026-01-01 is a Thursday: Fridays are Jan 2, 9, 16, …; the 13th is a Tuesday.
  EXPECT_THAT(nextSlots(parsed("0 0 13 * 5"), at("2026-01-01T00:00:00Z"), 5),
              ElementsAre("2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z",
                          "2026-01-16T00:00:00Z", "2026-01-23T00:00:00Z"));
  // A stepped day field is restricted too (robfig's rule): the 1st, 11th, 21st, 31st or any Monday.
  EXPECT_THAT(nextSlots(parsed("0 0 */10 * 1"), at("2026-01-01T00:00:00Z"), 4),
              ElementsAre("2026-01-05T00:00:00Z", "2026-01-11T00:00:00Z", "2026-01-12T00:00:00Z",
                          "2026-01-19T00:00:00Z"));
}

TEST(CronGrammar, DayFieldsAndWhenEitherIsAStar) {
  EXPECT_THAT(nextSlots(parsed("0 0 13 * *"), at("2026-01-01T00:00:00Z"), 2),
              ElementsAre("2026-01-13T00:00:00Z", "2026-02-13T00:00:00Z"));
  EXPECT_THAT(nextSlots(parsed("0 0 * * 5"), at("2026-01-01T00:00:00Z"), 2),
              ElementsAre("2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z"));
  // `*` with a list still counts as unrestricted.
  EXPECT_THAT(nextSlots(parsed("0 0 *,13 * 5"), at("2026-01-01T00:00:00Z"), 2),
              ElementsAre("2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z"));
}

TEST(CronGrammar, FieldsMaySurroundThemselvesWithAnyWhitespace) {
  expectSameAs("  */5 \t *  * *\t*  ", "*/5 * * * *");
}

TEST(CronGrammar, DescriptorsMeanTheirFiveFields) {
  expectSameAs("@yearly", "0 0 1 1 *");
  expectSameAs("@annually", "0 0 1 1 *");
  expectSameAs("@monthly", "0 0 1 * *");
  expectSameAs("@weekly", "0 0 * * 0");
  expectSameAs("@daily", "0 0 * * *");
  expectSameAs("@midnight", "0 0 * * *");
  expectSameAs("@hourly", "0 * * * *");
}

TEST(CronGrammar, DescriptorsAreCaseInsensitiveAndIgnoreSurroundingWhitespace) {
  // BEHAVIOUR §10 item 27: `@DAILY` and `@daily ` broke the Go scheduler.
  expectSameAs("@DAILY", "0 0 * * *");
  expectSameAs("  @Hourly\t", "0 * * * *");
  expectSameAs("\n@weekly ", "0 0 * * 0");
  EXPECT_EQ(parsed(" @ONCE ").kind(), ScheduleKind::kOnce);
  EXPECT_EQ(parsed("@Continuous").kind(), ScheduleKind::kContinuous);
}

TEST(CronGrammar, KindsAndWhichHaveSlots) {
  EXPECT_EQ(parsed("").kind(), ScheduleKind::kManual);
  EXPECT_EQ(parsed("   ").kind(), ScheduleKind::kManual);
  EXPECT_EQ(parsed("0 * * * *").kind(), ScheduleKind::kCron);
  EXPECT_EQ(parsed("@daily").kind(), ScheduleKind::kCron);
  EXPECT_EQ(parsed("@every 5m").kind(), ScheduleKind::kEvery);
  EXPECT_EQ(parsed("@once").kind(), ScheduleKind::kOnce);
  EXPECT_EQ(parsed("@continuous").kind(), ScheduleKind::kContinuous);
  EXPECT_TRUE(parsed("0 * * * *").hasSlots());
  EXPECT_TRUE(parsed("@every 5m").hasSlots());
  EXPECT_FALSE(parsed("").hasSlots());
  EXPECT_FALSE(parsed("@once").hasSlots());
  EXPECT_FALSE(parsed("@continuous").hasSlots());
  EXPECT_FALSE(parsed("@once").next(at("2026-01-01T00:00:00Z")).has_value());
  EXPECT_FALSE(parsed("@continuous").latestAtOrBefore(at("2026-01-01T00:00:00Z")).has_value());
  EXPECT_FALSE(parsed("").next(at("2026-01-01T00:00:00Z")).has_value());
}

TEST(CronGrammar, EveryAcceptsUnitSequences) {
  EXPECT_EQ(parsed("@every 1h30m").every(), std::chrono::seconds{5400});
  EXPECT_EQ(parsed("@every 90s").every(), std::chrono::seconds{90});
  EXPECT_EQ(parsed("@every 1d").every(), std::chrono::seconds{86400});
  EXPECT_EQ(parsed("@every 1d2h3m4s").every(), std::chrono::seconds{93784});
  EXPECT_EQ(parsed("@every 1s").every(), std::chrono::seconds{1});
  EXPECT_EQ(parsed("  @EVERY   2H  ").every(), std::chrono::seconds{7200});
  EXPECT_EQ(parsed("@daily").every(), std::chrono::seconds{0});
}

struct BadExpression {
  const char* expression;
  std::vector<const char*> message_parts;
};

class CronGrammarErrors : public ::testing::TestWithParam<BadExpression> {};

TEST_P(CronGrammarErrors, AreRefusedWithAMessageSayingWhatIsWrong) {
  const BadExpression& bad = GetParam();
  const std::string message = parseError(bad.expression);
  for (const char* part : bad.message_parts) EXPECT_THAT(message, HasSubstr(part)) << bad.expression;
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, CronGrammarErrors,
    ::testing::Values(
        BadExpression{"* * * *", {"expected exactly 5 fields", "found 4"}},
        BadExpression{"0 * * * * *", {"expected exactly 5 fields", "found 6"}},
        BadExpression{"* not a cron *", {"hour field \"not\"", "\"not\" is not a number"}},
        BadExpression{"not a cron expression", {"expected exactly 5 fields"}},
        BadExpression{"61 * * * *", {"minute field \"61\"", "out of range 0-59"}},
        BadExpression{"5,60 * * * *", {"minute field \"5,60\"", "value 60 out of range 0-59"}},
        BadExpression{"99999999999999999999 * * * *", {"minute field", "out of range 0-59"}},
        BadExpression{"* 24 * * *", {"hour field \"24\"", "out of range 0-23"}},
        BadExpression{"* * 0 * *", {"day-of-month field \"0\"", "out of range 1-31"}},
        BadExpression{"* * 32 * *", {"day-of-month field \"32\"", "out of range 1-31"}},
        BadExpression{"* * * 0 *", {"month field \"0\"", "out of range 1-12"}},
        BadExpression{"* * * 13 *", {"month field \"13\"", "out of range 1-12"}},
        BadExpression{"* * * * 8", {"day-of-week field \"8\"", "out of range 0-7"}},
        BadExpression{"*/0 * * * *", {"minute field \"*/0\"", "step must be at least 1"}},
        BadExpression{"* 1-5/0 * * *", {"hour field \"1-5/0\"", "step must be at least 1"}},
        BadExpression{"*/ * * * *", {"minute field", "missing step"}},
        BadExpression{"1/2/3 * * * *", {"minute field", "step \"2/3\" is not a number"}},
        BadExpression{"*/x * * * *", {"minute field", "step \"x\" is not a number"}},
        BadExpression{"abc * * * *", {"minute field \"abc\"", "\"abc\" is not a number"}},
        BadExpression{"jan * * * *", {"minute field", "is not a number"}},
        BadExpression{"* * * foo *", {"month field \"foo\"", "unknown name \"foo\""}},
        BadExpression{"* * * jan-foo *", {"month field", "unknown name \"foo\""}},
        BadExpression{"* * * january *", {"month field", "unknown name \"january\""}},
        BadExpression{"* * * * funday", {"day-of-week field", "unknown name \"funday\""}},
        BadExpression{"* * * mon *", {"month field", "unknown name \"mon\""}},
        BadExpression{"1,,2 * * * *", {"minute field", "empty list element"}},
        BadExpression{"1, * * * *", {"minute field", "empty list element"}},
        BadExpression{"5-3 * * * *", {"minute field \"5-3\"", "backwards"}},
        BadExpression{"-5 * * * *", {"minute field", "missing value"}},
        BadExpression{"1- * * * *", {"minute field", "missing value"}},
        BadExpression{"1-2-3 * * * *", {"minute field", "not a number"}},
        BadExpression{"\x01 * * * *", {"minute field", "not a number"}},
        BadExpression{"@reboot", {"unrecognized descriptor \"@reboot\""}},
        BadExpression{"@", {"unrecognized descriptor"}},
        BadExpression{"@daily extra", {"takes no argument", "extra"}},
        BadExpression{"@once now", {"takes no argument"}},
        BadExpression{"@every", {"@every needs a duration"}},
        BadExpression{"@every 0s", {"@every duration \"0s\"", "shorter than 1s"}},
        BadExpression{"@every 0h0m", {"shorter than 1s"}},
        BadExpression{"@every 500ms", {"@every duration \"500ms\"", "unknown unit \"ms\""}},
        BadExpression{"@every -5m", {"@every duration \"-5m\"", "negative"}},
        BadExpression{"@every 1.5h", {"fractions are not allowed"}},
        BadExpression{"@every 10", {"missing unit"}},
        BadExpression{"@every 5x", {"unknown unit \"x\""}},
        BadExpression{"@every h", {"expected <integer><unit>"}},
        BadExpression{"@every 1h 30m", {"expected <integer><unit>"}},
        BadExpression{"@every 99999999999999999999d", {"longer than"}},
        BadExpression{"TZ=UTC", {"time zone prefix \"TZ=UTC\"", "not followed by a schedule"}},
        BadExpression{"CRON_TZ=UTC   ", {"not followed by a schedule"}},
        BadExpression{"CRON_TZ=", {"time zone prefix \"CRON_TZ=\"", "names no zone"}},
        BadExpression{"CRON_TZ= 0 * * * *", {"names no zone"}},
        BadExpression{"TZ=Mars/Olympus 0 * * * *", {"unknown time zone \"Mars/Olympus\"", "prefix"}},
        BadExpression{"CRON_TZ=America/New_York 0 0 30 2 *", {"never fires"}},
        BadExpression{"CRON_TZ=America/New_York * * * *", {"expected exactly 5 fields"}}));

TEST(CronGrammar, ImpossibleDatesNeverFireAndAreRefused) {
  // BEHAVIOUR §10 item 21: these parsed in Go and then hung the scheduler or produced year-1 slots.
  EXPECT_THAT(parseError("0 0 30 2 *"), HasSubstr("never fires"));
  EXPECT_THAT(parseError("0 0 31 4,6 *"), HasSubstr("never fires"));
  EXPECT_THAT(parseError("0 0 31 2,4,6,9,11 *"), HasSubstr("never fires"));
  EXPECT_THAT(parseError("0 0 30-31 feb *"), HasSubstr("never fires"));
  // Rare but possible: only leap years, only long months, or saved by the weekday (OR rule).
  EXPECT_TRUE(Schedule::parse("0 0 29 2 *").isOk());
  EXPECT_TRUE(Schedule::parse("0 0 31 * *").isOk());
  EXPECT_TRUE(Schedule::parse("0 0 31 4,5 *").isOk());
  EXPECT_TRUE(Schedule::parse("0 0 30 2 5").isOk());
}

TEST(CronGrammar, ABadZoneArgumentIsAnErrorNamingTheZone) {
  EXPECT_THAT(parseError("0 * * * *", "Not/AZone"), HasSubstr("unknown time zone \"Not/AZone\""));
  // A prefix wins over the argument, so a bad argument under a good prefix does not matter.
  EXPECT_TRUE(Schedule::parse("CRON_TZ=UTC 0 * * * *", "Not/AZone").isOk());
}

TEST(CronGrammar, UtcNeedsNoZoneDatabase) {
  EXPECT_EQ(parsed("0 * * * *").timeZoneName(), "UTC");
  EXPECT_EQ(parsed("0 * * * *", "UTC").timeZoneName(), "UTC");
  EXPECT_EQ(parsed("TZ=Etc/UTC 0 * * * *").timeZoneName(), "UTC");
  EXPECT_EQ(parsed("0 * * * *", "Europe/Paris").timeZoneName(), "Europe/Paris");
}

TEST(CronGrammar, ArbitraryInputNeverThrowsAndEveryFailureExplainsItself) {
  // BEHAVIOUR §10 item 22: parsing must never crash, whatever the DAG file says.
  const std::string alphabet = "0123456789*/-,?@ JANmonTZ=CRON_TZ=UTC:every dhms\t.xyz";
  std::mt19937 rng(20260528);
  std::uniform_int_distribution<std::size_t> length(0, 24);
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    const std::size_t n = length(rng);
    for (std::size_t k = 0; k < n; ++k) text += alphabet[pick(rng)];
    Result<Schedule> r = Schedule::parse(text);
    if (!r.isOk()) {
      EXPECT_FALSE(r.status().message().empty()) << text;
      continue;
    }
    // Whatever parsed must answer in bounded time.
    (void)r->next(at("2026-01-01T00:00:00Z"));
    (void)r->latestAtOrBefore(at("2026-01-01T00:00:00Z"));
  }
}

}  // namespace
}  // namespace leoflow::schedule
