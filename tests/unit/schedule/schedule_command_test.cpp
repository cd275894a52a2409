// `leoflow schedule next|due` (ARCHITECTURE §5, §8.4, §8.6): output lines, JSON, exit codes and the
// messages a script or a person sees.
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "host/command_context.h"
#include "host/schedule_command.h"
#include "schedule_test_util.h"

namespace leoflow::host {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using schedule::testing::at;

const Timestamp kClock = at("2026-05-28T12:34:56.5Z");

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

Outcome next(const std::string& expression, std::optional<std::string> after = std::nullopt, int count = 1,
             const std::string& tz = "") {
  std::ostringstream out;
  std::ostringstream err;
  Outcome o;
  o.code = runScheduleNext({expression, std::move(after), count, tz}, out, err, kClock);
  o.out = out.str();
  o.err = err.str();
  return o;
}

Outcome due(const std::string& json) {
  std::istringstream in(json);
  std::ostringstream out;
  std::ostringstream err;
  Outcome o;
  o.code = runScheduleDue(in, out, err, kClock);
  o.out = out.str();
  o.err = err.str();
  return o;
}

std::vector<std::string> slotsOf(const Outcome& o) {
  const nlohmann::json doc = nlohmann::json::parse(o.out);
  EXPECT_EQ(doc.size(), 1u);
  return doc.at("slots").get<std::vector<std::string>>();
}

// ---- schedule next ----------------------------------------------------------------------------------

TEST(ScheduleNextCommand, PrintsOneUtcTimeALine) {
  const Outcome o = next("*/5 * * * *", "2026-01-01T00:03:10Z", 3);
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out, "2026-01-01T00:05:00Z\n2026-01-01T00:10:00Z\n2026-01-01T00:15:00Z\n");
  EXPECT_THAT(o.err, IsEmpty());
}

TEST(ScheduleNextCommand, DefaultsToOneSlotAfterNow) {
  const Outcome o = next("@hourly");
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out, "2026-05-28T13:00:00Z\n");
}

TEST(ScheduleNextCommand, AfterAcceptsOffsetsAndFractions) {
  EXPECT_EQ(next("@hourly", "2026-01-01T01:00:00+01:00").out, "2026-01-01T01:00:00Z\n");
  EXPECT_EQ(next("@hourly", "2026-01-01T00:59:59.999+00:00").out, "2026-01-01T01:00:00Z\n");
  EXPECT_EQ(next("@every 90s", "2026-01-01T00:00:00.750Z", 2).out, "2026-01-01T00:01:30Z\n2026-01-01T00:03:00Z\n");
}

TEST(ScheduleNextCommand, ZoneFromTzOrPrefix) {
  EXPECT_EQ(next("30 2 * * *", "2026-03-07T12:00:00Z", 1, "America/New_York").out, "2026-03-09T06:30:00Z\n");
  EXPECT_EQ(next("CRON_TZ=America/New_York 30 2 * * *", "2026-03-07T12:00:00Z").out, "2026-03-09T06:30:00Z\n");
  // The prefix wins, so a bad --tz under a good prefix is never looked at.
  EXPECT_EQ(next("CRON_TZ=UTC 0 12 * * *", "2026-01-01T00:00:00Z", 1, "Not/AZone").code, 0);
}

struct BadNext {
  std::string expression;
  std::optional<std::string> after;
  int count;
  std::string tz;
  std::vector<std::string> message_parts;
};

class ScheduleNextErrors : public ::testing::TestWithParam<BadNext> {};

TEST_P(ScheduleNextErrors, ExitTwoWithAMessageAndNoOutput) {
  const BadNext& bad = GetParam();
  const Outcome o = next(bad.expression, bad.after, bad.count, bad.tz);
  EXPECT_EQ(o.code, 2);
  EXPECT_THAT(o.out, IsEmpty());
  EXPECT_THAT(o.err, StartsWith("leoflow schedule next: "));
  for (const std::string& part : bad.message_parts) EXPECT_THAT(o.err, HasSubstr(part));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ScheduleNextErrors,
    ::testing::Values(
        BadNext{"* not a cron *", {}, 1, "", {"schedule \"* not a cron *\"", "hour field \"not\""}},
        BadNext{"61 * * * *", {}, 1, "", {"minute field \"61\"", "out of range 0-59"}},
        BadNext{"0 0 30 2 *", {}, 1, "", {"never fires"}},
        BadNext{"0 0 31 4,6 *", {}, 1, "", {"never fires"}},
        BadNext{"@once", {}, 1, "", {"has no cron slots", "@once"}},
        BadNext{"@continuous", {}, 1, "", {"has no cron slots", "@continuous"}},
        BadNext{"", {}, 1, "", {"has no cron slots"}},
        BadNext{"@reboot", {}, 1, "", {"unrecognized descriptor"}},
        BadNext{"@every 500ms", {}, 1, "", {"unknown unit \"ms\""}},
        BadNext{"TZ=UTC", {}, 1, "", {"not followed by a schedule"}},
        BadNext{"@hourly", "yesterday", 1, "", {"--after", "\"yesterday\""}},
        BadNext{"@hourly", "2026-01-01T00:00:00", 1, "", {"--after", "with a zone"}},
        BadNext{"@hourly", {}, 0, "", {"--count", "at least 1", "got 0"}},
        BadNext{"@hourly", {}, -3, "", {"--count"}},
        BadNext{"@hourly", {}, 100'001, "", {"--count", "at most 100000", "got 100001"}},
        BadNext{"* * * * *", {}, 2'000'000'000, "", {"--count", "at most 100000"}},
        BadNext{"@hourly", {}, 1, "Not/AZone", {"--tz", "unknown time zone \"Not/AZone\""}},
        BadNext{"CRON_TZ=Not/AZone @hourly", {}, 1, "", {"unknown time zone \"Not/AZone\"", "prefix"}}));

// ---- schedule due -----------------------------------------------------------------------------------

TEST(ScheduleDueCommand, CatchUpAnchor) {
  const Outcome o = due(R"({"schedule":"@hourly","now":"2026-05-28T12:00:00Z","catchup":true,
                           "last_logical":"2026-05-28T06:00:00Z"})");
  EXPECT_EQ(o.code, 0);
  EXPECT_THAT(slotsOf(o), ::testing::ElementsAre("2026-05-28T07:00:00Z", "2026-05-28T08:00:00Z",
                                                 "2026-05-28T09:00:00Z", "2026-05-28T10:00:00Z",
                                                 "2026-05-28T11:00:00Z", "2026-05-28T12:00:00Z"));
  EXPECT_THAT(o.err, IsEmpty());
}

TEST(ScheduleDueCommand, CatchupDefaultsToFalse) {
  const Outcome o = due(R"({"schedule":"@hourly","now":"2026-05-28T12:00:00Z","last_logical":"2026-05-28T06:00:00Z"})");
  EXPECT_EQ(o.code, 0);
  EXPECT_THAT(slotsOf(o), ::testing::ElementsAre("2026-05-28T12:00:00Z"));
}

TEST(ScheduleDueCommand, AllOptionalFieldsAreRead) {
  const Outcome o = due(R"({"schedule":"0 9 * * *","now":"2026-05-28T14:00:00+01:00","catchup":true,
                           "start_date":"2026-05-25T00:00:00Z","end_date":"2026-05-27T23:00:00Z",
                           "max_slots":2,"tz":"America/New_York","unknown":[1,2,3]})");
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_THAT(slotsOf(o), ::testing::ElementsAre("2026-05-25T13:00:00Z", "2026-05-26T13:00:00Z"));
}

TEST(ScheduleDueCommand, NowDefaultsToTheClock) {
  const Outcome o = due(R"({"schedule":"@hourly"})");
  EXPECT_EQ(o.code, 0);
  EXPECT_THAT(slotsOf(o), ::testing::ElementsAre("2026-05-28T12:00:00Z"));
}

TEST(ScheduleDueCommand, OnceContinuousAndManual) {
  EXPECT_THAT(slotsOf(due(R"({"schedule":"@once","now":"2026-05-28T12:00:00Z"})")),
              ::testing::ElementsAre("2026-05-28T12:00:00Z"));
  EXPECT_THAT(slotsOf(due(R"({"schedule":"@once","last_logical":"2026-05-01T00:00:00Z"})")), IsEmpty());
  EXPECT_THAT(slotsOf(due(R"({"schedule":"@continuous"})")), IsEmpty());
  EXPECT_THAT(slotsOf(due(R"({"schedule":null})")), IsEmpty());
  EXPECT_THAT(slotsOf(due(R"({"schedule":""})")), IsEmpty());
  EXPECT_THAT(slotsOf(due(R"({})")), IsEmpty());
}

TEST(ScheduleDueCommand, PrintsTheSlotsObjectEvenWhenEmpty) {
  const Outcome o = due(R"({"schedule":"@hourly","now":"2026-05-28T12:00:00Z","last_logical":"2026-05-28T12:00:00Z"})");
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(nlohmann::json::parse(o.out), nlohmann::json::parse(R"({"slots":[]})"));
}

struct BadDue {
  std::string json;
  std::vector<std::string> message_parts;
};

class ScheduleDueErrors : public ::testing::TestWithParam<BadDue> {};

TEST_P(ScheduleDueErrors, ExitTwoWithAMessageNamingTheField) {
  const BadDue& bad = GetParam();
  const Outcome o = due(bad.json);
  EXPECT_EQ(o.code, 2);
  EXPECT_THAT(o.out, IsEmpty());
  EXPECT_THAT(o.err, StartsWith("leoflow schedule due: "));
  for (const std::string& part : bad.message_parts) EXPECT_THAT(o.err, HasSubstr(part));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ScheduleDueErrors,
    ::testing::Values(
        BadDue{R"({"schedule":"@hourly",)", {"malformed JSON"}},
        BadDue{"", {"malformed JSON"}},
        BadDue{R"(["@hourly"])", {"expected a JSON object"}},
        BadDue{R"({"schedule":"@hourly","catchup":"yes"})", {"catchup: expected true or false"}},
        BadDue{R"({"schedule":5})", {"schedule: expected a string"}},
        BadDue{R"({"schedule":"@hourly","now":12})", {"now: expected a string"}},
        BadDue{R"({"schedule":"@hourly","now":"noon"})", {"now: expected an ISO-8601 time", "\"noon\""}},
        BadDue{R"({"schedule":"@hourly","last_logical":"2026-01-01"})", {"last_logical:"}},
        BadDue{R"({"schedule":"@hourly","start_date":true})", {"start_date:"}},
        BadDue{R"({"schedule":"@hourly","end_date":"x"})", {"end_date:"}},
        BadDue{R"({"schedule":"@hourly","max_slots":0})", {"max_slots:", "got 0"}},
        BadDue{R"({"schedule":"@hourly","max_slots":1.5})", {"max_slots: expected an integer"}},
        BadDue{R"({"schedule":"@hourly","tz":"Not/AZone"})", {"tz: unknown time zone \"Not/AZone\""}},
        BadDue{R"({"schedule":"@hourly","tz":7})", {"tz: expected a string"}},
        BadDue{R"({"schedule":"* not a cron *"})", {"schedule \"* not a cron *\"", "hour field \"not\""}},
        BadDue{R"({"schedule":"0 0 30 2 *","catchup":true,"last_logical":"2026-01-01T00:00:00Z",
                   "start_date":"2025-01-01T00:00:00Z"})",
               {"never fires"}},
        BadDue{R"({"schedule":"@every -5m"})", {"negative"}}));

// ---- the CLI11 wiring -------------------------------------------------------------------------------

struct Cli {
  CLI::App app{"test", "leoflow"};
  CommandContext ctx;
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;

  Cli() {
    ctx.in = &in;
    ctx.out = &out;
    ctx.err = &err;
    app.require_subcommand(1);
    addScheduleCommand(app, ctx);
  }
};

TEST(ScheduleCli, NextTakesTheQuotedExpressionAndOptions) {
  Cli cli;
  cli.app.parse(R"(schedule next "*/5 * * * *" --after 2026-01-01T00:00:00Z --count 2)", false);
  EXPECT_EQ(cli.ctx.exit_code, 0);
  EXPECT_EQ(cli.out.str(), "2026-01-01T00:05:00Z\n2026-01-01T00:10:00Z\n");
}

TEST(ScheduleCli, NextJoinsUnquotedWords) {
  Cli cli;
  cli.app.parse(R"(schedule next --tz Asia/Tokyo --after 2025-12-31T12:00:00Z 0 9 "*" "*" "*")", false);
  EXPECT_EQ(cli.ctx.exit_code, 0) << cli.err.str();
  EXPECT_EQ(cli.out.str(), "2026-01-01T00:00:00Z\n");
}

TEST(ScheduleCli, NextReportsBadInputWithExitTwo) {
  Cli cli;
  cli.app.parse(R"(schedule next "0 0 30 2 *")", false);
  EXPECT_EQ(cli.ctx.exit_code, 2);
  EXPECT_THAT(cli.err.str(), HasSubstr("never fires"));
}

TEST(ScheduleCli, DueReadsStdin) {
  Cli cli;
  cli.in.str(R"({"schedule":"@daily","now":"2026-05-28T12:00:00Z"})");
  cli.app.parse("schedule due", false);
  EXPECT_EQ(cli.ctx.exit_code, 0);
  EXPECT_THAT(cli.out.str(), HasSubstr("2026-05-28T00:00:00Z"));
}

TEST(ScheduleCli, HelpDescribesTheArguments) {
  Cli cli;
  CLI::App* schedule = cli.app.get_subcommand("schedule");
  const std::string next_help = schedule->get_subcommand("next")->help();
  EXPECT_THAT(next_help, HasSubstr("EXPR"));
  EXPECT_THAT(next_help, HasSubstr("--after"));
  EXPECT_THAT(next_help, HasSubstr("--count"));
  EXPECT_THAT(next_help, HasSubstr("--tz"));
  const std::string due_help = schedule->get_subcommand("due")->help();
  for (const char* key : {"schedule", "now", "catchup", "last_logical", "start_date", "end_date", "max_slots", "tz",
                          "slots"}) {
    EXPECT_THAT(due_help, HasSubstr(key));
  }
}

}  // namespace
}  // namespace leoflow::host
