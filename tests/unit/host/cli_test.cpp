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

TEST(Cli, AnUnknownCommandIsAUsageError) {
  auto r = runCommand(leoflowBinary() + " frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(r.err.empty());
}

TEST(Cli, NoCommandIsAUsageError) {
  auto r = runCommand(leoflowBinary());
  EXPECT_EQ(r.exit_code, 2);
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
