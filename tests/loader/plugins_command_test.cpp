// `leoflow plugins list | describe NAME | check PATH` (ARCHITECTURE §3, §5, §8.6): in-process against
// the fixtures, then through the real binary for exit codes and the config's search path.
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <leoflow/abi.h>

#include "host/config.h"
#include "host/plugin_loader.h"
#include "host/plugins_command.h"
#include "loader_test_helpers.h"
#include "support/run_command.h"

namespace leoflow::testing {
namespace {

namespace fs = std::filesystem;
using host::PluginLoader;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

struct Output {
  int code = -1;
  std::string out, err;
};

std::string canonicalOf(const fs::path& p) { return fs::canonical(p).string(); }

// The line of `text` that contains `needle` (empty when none does).
std::string lineWith(const std::string& text, const std::string& needle) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) return line;
  }
  return "";
}

class PluginsCommand : public ::testing::Test {
 protected:
  Output list(PluginLoader& loader) {
    std::ostringstream out, err;
    const int code = host::runPluginsList(loader, out, err);
    return {code, out.str(), err.str()};
  }
  Output describe(const std::string& name) {
    std::ostringstream out, err;
    const int code = host::runPluginsDescribe(loader_, name, out, err);
    return {code, out.str(), err.str()};
  }
  Output check(const fs::path& path) {
    std::ostringstream out, err;
    const int code = host::runPluginsCheck(loader_, path, out, err);
    return {code, out.str(), err.str()};
  }

  ScopedEnv no_env_path_{"LEOFLOW_PLUGIN_PATH", std::nullopt};
  PluginLoader loader_{{fixtureDir()}};
};

TEST_F(PluginsCommand, ListShowsEveryPluginWithNameVersionRolesPathAndDescription) {
  const Output r = list(loader_);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("NAME +VERSION +ROLES +PATH +DESCRIPTION\n(.|\n)*"));
  const std::string good = lineWith(r.out, fixture("good").string());
  EXPECT_THAT(good, MatchesRegex("good +1\\.2\\.3 +store,leader,dispatcher,inline_runner,recorder +" +
                                 fixture("good").string() + " +every role, trivially \\(a loader test fixture\\)"));
  EXPECT_THAT(lineWith(r.out, fixture("good-dispatcher").string()), HasSubstr("1.0.0"));
}

TEST_F(PluginsCommand, ListShowsWhyARefusedPluginIsRefused) {
  const Output r = list(loader_);
  EXPECT_EQ(r.code, 0);
  const std::string bad = lineWith(r.out, fixture("bad-abi-major").string());
  EXPECT_THAT(bad, MatchesRegex("bad-abi-major +- +- +" + fixture("bad-abi-major").string() +
                                " +refused: ABI major " + std::to_string(LEOFLOW_ABI_MAJOR + 1) + " \\(SDK " +
                                std::to_string(LEOFLOW_ABI_MAJOR + 1) + "\\." + std::to_string(LEOFLOW_ABI_MINOR) +
                                "\\) differs from the host's " + std::to_string(LEOFLOW_ABI_MAJOR) + " .*"));
  EXPECT_THAT(lineWith(r.out, fixture("bad-not-elf").string()), HasSubstr("cannot load the library"));
  EXPECT_THAT(lineWith(r.out, fixture("bad-sdk-hash").string()),
              HasSubstr("refused: built against SDK " + std::to_string(LEOFLOW_ABI_MAJOR) + "." +
                        std::to_string(LEOFLOW_ABI_MINOR) + " headers with hash \"badc0ffee0ddf00d\""));
}

TEST_F(PluginsCommand, ListMarksAShadowedLibrary) {
  ScratchDir first;
  fs::copy_file(fixture("good"), first.path() / "leoflow-good.so");
  PluginLoader loader({first.path(), fixtureDir()});
  const Output r = list(loader);
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(lineWith(r.out, (first.path() / "leoflow-good.so").string()), Not(HasSubstr("shadowed")));
  EXPECT_THAT(lineWith(r.out, fixture("good").string()),
              HasSubstr("[shadowed by " + (first.path() / "leoflow-good.so").string() + "]"));
}

TEST_F(PluginsCommand, DescribeShowsTheDescriptorAndEveryFactorysKeys) {
  const Output r = describe("good");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("plugin:      good\n"));
  EXPECT_THAT(r.out, HasSubstr("version:     1.2.3\n"));
  EXPECT_THAT(r.out, HasSubstr("description: every role, trivially (a loader test fixture)\n"));
  EXPECT_THAT(r.out, HasSubstr("path:        " + canonicalOf(fixture("good")) + "\n"));
  EXPECT_THAT(r.out, HasSubstr("sdk:         " + std::to_string(LEOFLOW_ABI_MAJOR) + "." +
                               std::to_string(LEOFLOW_ABI_MINOR) + "\n"));
  EXPECT_THAT(r.out, HasSubstr("sdk hash:    " LEOFLOW_SDK_HASH "\n"));
  EXPECT_THAT(r.out, HasSubstr("build tag:   " LEOFLOW_BUILD_TAG "\n"));
  EXPECT_THAT(r.out, HasSubstr("roles:       store, leader, dispatcher, inline_runner, recorder\n"));
  EXPECT_THAT(r.out, HasSubstr("store config keys:\n"));
  EXPECT_THAT(lineWith(r.out, "  url "), MatchesRegex("  url +string +required +where the trivial store pretends to live"));
  EXPECT_THAT(lineWith(r.out, "  lease_ms "), MatchesRegex("  lease_ms +integer +default 3000 +lease length in milliseconds"));
  EXPECT_THAT(lineWith(r.out, "  max_parallel "), MatchesRegex("  max_parallel +integer +default 2 +attempts taken at most"));
  EXPECT_THAT(lineWith(r.out, "  task_types "), MatchesRegex("  task_types +array of strings +default \\[\\] +.*"));
  EXPECT_THAT(lineWith(r.out, "  prefix "), MatchesRegex("  prefix +string +default \"leoflow\" +metric prefix"));
  EXPECT_THAT(lineWith(r.out, "  sample_rate "), MatchesRegex("  sample_rate +float +default 1 +.*"));
  EXPECT_THAT(lineWith(r.out, "  enabled "), MatchesRegex("  enabled +boolean +default true +.*"));
  EXPECT_THAT(r.out, HasSubstr("inline_runner config keys: none\n"));
}

TEST_F(PluginsCommand, DescribeAnUnknownOrRefusedPluginIsExitTwo) {
  Output r = describe("nowhere");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(r.out.empty());
  EXPECT_THAT(r.err, HasSubstr("leoflow plugins describe: plugin \"nowhere\" not found; tried " +
                               (fixtureDir() / "leoflow-nowhere.so").string()));
  r = describe("bad-throws");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("registrar threw: cannot reach the fixture backend"));
}

TEST_F(PluginsCommand, CheckAcceptsAGoodLibrary) {
  const Output r = check(fixture("good-dispatcher"));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("plugin:      good-dispatcher\n"));
  EXPECT_THAT(r.out, HasSubstr("roles:       dispatcher\n"));
  EXPECT_THAT(r.out, HasSubstr("ok: " + canonicalOf(fixture("good-dispatcher")) + " is accepted by this leoflow"));
  EXPECT_THAT(r.out, HasSubstr(", sdk hash " LEOFLOW_SDK_HASH ")\n"));
  EXPECT_TRUE(r.err.empty());
}

TEST_F(PluginsCommand, CheckRefusesAPluginOfTheOlderMajor) {
  const Output r = check(fixture("good-sdk-2-0"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("ABI major 2"));
  EXPECT_THAT(r.err, HasSubstr("differs from the host's " + std::to_string(LEOFLOW_ABI_MAJOR)));
}

TEST_F(PluginsCommand, CheckNamesBothHashesForAPluginOfOtherSdkHeaders) {
  const Output r = check(fixture("bad-sdk-hash"));
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(r.out.empty());
  EXPECT_THAT(r.err, HasSubstr("leoflow plugins check: plugin \"bad-sdk-hash\" (" + canonicalOf(fixture("bad-sdk-hash")) +
                               "): built against SDK "));
  EXPECT_THAT(r.err, HasSubstr("with hash \"badc0ffee0ddf00d\""));
  EXPECT_THAT(r.err, HasSubstr("headers hash to \"" LEOFLOW_SDK_HASH "\""));
}

TEST_F(PluginsCommand, CheckPrintsTheExactReasonForARefusal) {
  const Output r = check(fixture("bad-build-tag"));
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(r.out.empty());
  EXPECT_THAT(r.err, HasSubstr("leoflow plugins check: plugin \"bad-build-tag\" (" + canonicalOf(fixture("bad-build-tag")) +
                               "): build tag \"gcc-4.8;"));
  EXPECT_THAT(r.err, HasSubstr(std::string("the host's \"") + LEOFLOW_BUILD_TAG + "\""));
}

TEST(PluginsSearchPath, ComesFromTheConfigWhenThereIsOne) {
  ScratchDir dir;
  const fs::path toml = dir.write("leoflow.toml", "[plugins]\nsearch_path = [\"" + fixtureDir().string() +
                                                      "\"]\n[store]\nplugin = \"s\"\n[dispatcher]\nplugin = \"d\"\n");
  EXPECT_EQ(host::configuredSearchPath(toml.string()), std::vector<fs::path>{fixtureDir()});
  {
    ScopedEnv env("LEOFLOW_CONFIG", toml.string());
    EXPECT_EQ(host::configuredSearchPath(""), std::vector<fs::path>{fixtureDir()});
  }
  ScopedEnv env("LEOFLOW_CONFIG", std::nullopt);
  const fs::path cwd = fs::current_path();
  ScratchDir elsewhere;
  fs::current_path(elsewhere.path());
  EXPECT_TRUE(host::configuredSearchPath("").empty());  // no config anywhere: defaults
  EXPECT_THROW(host::configuredSearchPath("missing.toml"), host::ConfigError);
  fs::current_path(cwd);
}

// --- the real binary --------------------------------------------------------------------------

class PluginsBinary : public ::testing::Test {
 protected:
  // Run from a scratch directory with no config in the environment, so only what the test passes counts.
  CommandOutput run(const std::string& args, const std::string& env = "") {
    return runCommand("cd '" + cwd_.path().string() + "' && env -u LEOFLOW_CONFIG -u LEOFLOW_PLUGIN_PATH " + env +
                      " '" + leoflowBinary() + "' " + args);
  }
  ScratchDir cwd_;
};

TEST_F(PluginsBinary, CheckExitsZeroForAGoodLibraryAndTwoForABadOne) {
  CommandOutput r = run("plugins check '" + fixture("good").string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("plugin:      good\n"));
  r = run("plugins check '" + fixture("bad-abi-major").string() + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("ABI major " + std::to_string(LEOFLOW_ABI_MAJOR + 1)));
  EXPECT_TRUE(r.out.empty());
  r = run("plugins check '" + fixture("bad-not-elf").string() + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("invalid ELF header"));
}

TEST_F(PluginsBinary, DescribeFindsPluginsThroughTheEnvironmentOrTheConfig) {
  CommandOutput r = run("plugins describe good", "LEOFLOW_PLUGIN_PATH='" + fixtureDir().string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("version:     1.2.3"));

  cwd_.write("leoflow.toml", "[plugins]\nsearch_path = [\"" + fixtureDir().string() +
                                 "\"]\n[store]\nplugin = \"s\"\n[dispatcher]\nplugin = \"d\"\n");
  r = run("plugins describe good-dispatcher");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("roles:       dispatcher"));

  fs::remove(cwd_.path() / "leoflow.toml");
  r = run("plugins describe good-dispatcher");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("plugin \"good-dispatcher\" not found"));
}

TEST_F(PluginsBinary, ABrokenConfigIsExitTwoWithItsMessage) {
  cwd_.write("broken.toml", "[scheduler]\ntick_interval_msec = 1\n");
  const CommandOutput r = run("--config broken.toml plugins list");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("broken.toml:2: unknown key \"tick_interval_msec\" in [scheduler]"));
  const CommandOutput missing = run("plugins list", "LEOFLOW_CONFIG=nope.toml");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("nope.toml: cannot read the config file"));
}

// A copy of the binary outside the build tree behaves as an installed one: the build tree's plugins
// are not searched, so an installed leoflow never picks up a development build.
TEST_F(PluginsBinary, OutsideTheBuildTreeOnlyTheConfiguredPathAndTheInstallDirAreSearched) {
  const fs::path installed = cwd_.path() / "bin" / "leoflow";
  fs::create_directories(installed.parent_path());
  fs::copy_file(leoflowBinary(), installed);
  ScratchDir empty;
  const CommandOutput r = runCommand("cd '" + cwd_.path().string() + "' && env -u LEOFLOW_CONFIG LEOFLOW_PLUGIN_PATH='" +
                                     empty.path().string() + "' '" + installed.string() + "' plugins list");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr(fixtureDir().parent_path().parent_path().parent_path().string() + "/plugins/")));
  if (r.out.starts_with("NAME")) GTEST_SKIP() << "plugins are installed on this machine:\n" << r.out;
  EXPECT_THAT(r.out, MatchesRegex("no plugins found; searched " + empty.path().string() + ", [^,]+/leoflow/plugins\n"));
}

TEST_F(PluginsBinary, UsageErrorsAreExitTwo) {
  EXPECT_EQ(run("plugins").exit_code, 2);
  EXPECT_EQ(run("plugins describe").exit_code, 2);
  EXPECT_EQ(run("plugins check").exit_code, 2);
  const CommandOutput list = run("plugins list", "LEOFLOW_PLUGIN_PATH='" + fixtureDir().string() + "'");
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr(fixture("good").string()));
}

}  // namespace
}  // namespace leoflow::testing
