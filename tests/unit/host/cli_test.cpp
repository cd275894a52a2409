// The real `leoflow` binary: help, version, usage errors and exit codes (ARCHITECTURE §5, §8.6).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/run_command.h"

namespace leoflow::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

TEST(Cli, VersionPrintsTheProjectVersion) {
  auto r = runCommand(leoflowBinary() + " --version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, MatchesRegex("leoflow [0-9]+\\.[0-9]+\\.[0-9]+( \\([0-9a-f]+\\))?\n"));
}

TEST(Cli, HelpListsTheCommands) {
  auto r = runCommand(leoflowBinary() + " --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("plan"));
  EXPECT_THAT(r.out, HasSubstr("schedule"));
}

TEST(Cli, AnUnknownCommandIsAUsageErrorThatNamesIt) {
  auto r = runCommand(leoflowBinary() + " frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command frobnicate"));
  EXPECT_THAT(r.err, HasSubstr("plan, schedule, scheduler, dags, runs, tasks, status, store, plugins"));
  // After --config and its value, and one level down.
  r = runCommand(leoflowBinary() + " --config x.toml frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command frobnicate"));
  r = runCommand(leoflowBinary() + " runs frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command runs frobnicate"));
  EXPECT_THAT(r.err, HasSubstr("trigger, show, list"));
}

TEST(Cli, NoCommandIsAUsageError) {
  auto r = runCommand(leoflowBinary());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("a command is required: plan,"));
  r = runCommand(leoflowBinary() + " dags");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("dags needs a command: validate, sync, list, show, pause, unpause"));
}

// Usage errors of `runs trigger` are found before any config or store is looked for (a config that
// is not there would also exit 2, so the message is what tells them apart).
std::string noConfig() { return "cd /tmp && env -u LEOFLOW_CONFIG " + leoflowBinary(); }

TEST(Cli, ANegativeTimeoutIsOneShortLine) {
  auto r = runCommand(noConfig() + " runs trigger etl --wait --timeout -1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "leoflow: --timeout: expected a positive number of seconds (at most 1000000000), got \"-1\"\n");
  r = runCommand(noConfig() + " runs trigger etl --wait --timeout 1e999");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_LT(r.err.size(), 160u) << r.err;
}

TEST(Cli, TimeoutWithoutWaitIsAUsageError) {
  auto r = runCommand(noConfig() + " runs trigger etl --timeout 30");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--timeout 30 needs --wait"));
}

TEST(Cli, AnEmptyRunIdIsAUsageError) {
  auto r = runCommand(noConfig() + " runs trigger etl --run-id ''");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--run-id: the run id is empty"));
  r = runCommand(noConfig() + " runs trigger etl --run-id=");  // CLI11 refuses this spelling itself
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--run-id"));
}

TEST(Cli, TheNewFlagsOfDagsShowAndRunsTriggerAreInTheirHelp) {
  auto r = runCommand(leoflowBinary() + " dags show --help");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("--json"));
  EXPECT_THAT(r.out, HasSubstr("--dot"));
  r = runCommand(leoflowBinary() + " dags --help");
  EXPECT_THAT(r.out, HasSubstr("show"));
  r = runCommand(leoflowBinary() + " runs trigger --help");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("--logical-date TIME"));
  EXPECT_THAT(r.out, HasSubstr("@FILE"));
}

// A person's commands (docs/operating.md §4.3, §4.4, §4.8): every one has --help with its flags.
TEST(Cli, EveryPersonsCommandHasHelpWithItsFlags) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> commands = {
      {"runs clear", {"--task", "--downstream", "--failed-only", "--from", "--to", "--actor", "--json"}},
      {"runs mark", {"--state", "--dag", "--actor", "--json"}},
      {"runs cancel", {"--dag", "--actor", "--json"}},
      {"runs list", {"--tenant", "--since", "--limit"}},
      {"tasks mark", {"--state", "--dag", "--actor"}},
      {"tasks logs", {"--try", "--follow", "--dag"}},
      {"tasks test", {"dag", "task"}},
      {"dags delete", {"--force", "--actor"}},
      {"dags backfill", {"--from", "--to", "--wait"}},
  };
  for (const auto& [command, flags] : commands) {
    auto r = runCommand(leoflowBinary() + " " + command + " --help");
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.err;
    for (const std::string& flag : flags) EXPECT_THAT(r.out, HasSubstr(flag)) << command;
  }
}

// Usage errors need no config and no store, and say what is wrong (exit 2).
TEST(Cli, PersonsCommandsRefuseBadUsageBeforeTouchingTheStore) {
  auto r = runCommand(noConfig() + " runs clear");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("give a RUN_ID, or --dag D --from T --to T"));
  r = runCommand(noConfig() + " runs clear r1 --from 2026-01-01T00:00:00Z");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("not both"));
  r = runCommand(noConfig() + " runs clear r1 --downstream");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--downstream needs --task"));
  r = runCommand(noConfig() + " runs mark r1 --state running");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("success or failed, not \"running\""));
  r = runCommand(noConfig() + " tasks mark r1 t --state queued");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("success, failed or skipped"));
  r = runCommand(noConfig() + " dags backfill etl --from yesterday --to 2026-01-01T00:00:00Z");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--from: expected an ISO-8601 time"));
}

TEST(Cli, DagsShowWithJsonAndDotIsAUsageError) {
  auto r = runCommand(noConfig() + " dags show etl --json --dot");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "leoflow: dags show: --json and --dot cannot be used together; pick one\n");
  EXPECT_TRUE(r.out.empty());
  r = runCommand(noConfig() + " dags show");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("dag"));
}

TEST(Cli, ABadLogicalDateIsAUsageErrorNamingTheFlag) {
  auto r = runCommand(noConfig() + " runs trigger etl --logical-date 2026-01-01");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "leoflow: --logical-date: expected an ISO-8601 time with a zone (2026-01-01T00:00:00Z), got "
            "\"2026-01-01\"\n");
}

TEST(Cli, AManualRunIdMayNotTakeAReservedPrefix) {
  for (const std::string prefix : {"scheduled__", "backfill__"}) {
    auto r = runCommand(noConfig() + " runs trigger etl --run-id " + prefix + "x");
    EXPECT_EQ(r.exit_code, 2) << prefix;
    EXPECT_THAT(r.err, HasSubstr("bad run id \"" + prefix + "x\": the prefix " + prefix + " is reserved"));
  }
}

TEST(Cli, ScheduleNextCountIsCapped) {
  auto r = runCommand(leoflowBinary() + " schedule next '* * * * *' --count 100000000");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.out.empty());
  EXPECT_THAT(r.err, HasSubstr("--count: expected an integer of at least 1 and at most 100000, got 100000000"));
}

TEST(Cli, PlanReadsStdinAndExitsTwoOnBadInput) {
  auto ok = runCommand(leoflowBinary() + " plan", R"({"tasks":[{"task_id":"a"}]})");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("\"scheduled\""));
  auto bad = runCommand(leoflowBinary() + " plan", "not json");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("malformed JSON"));
  EXPECT_TRUE(bad.out.empty());
}

}  // namespace
}  // namespace leoflow::testing
