// The host config (ARCHITECTURE §4, §8.6): every rule, with the file and line in every message.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include "host/config.h"
#include "loader_test_helpers.h"

namespace leoflow::testing {
namespace {

namespace fs = std::filesystem;
using host::ConfigError;
using host::HostConfig;
using host::PluginSection;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kMinimal = R"([store]
plugin = "store-redis"

[dispatcher]
plugin = "dispatcher-local"
)";

class ConfigTest : public ::testing::Test {
 protected:
  HostConfig load(const std::string& text) { return host::loadHostConfig(write(text)); }

  /// The error loading `text` gives; fails the test if it loads.
  std::string errorOf(const std::string& text) {
    const std::string path = write(text);
    try {
      host::loadHostConfig(path);
    } catch (const ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "loaded without an error:\n" << text;
    return "";
  }

  std::string write(const std::string& text) { return dir_.write("leoflow.toml", text).string(); }
  std::string path() const { return (dir_.path() / "leoflow.toml").string(); }

  ScratchDir dir_;
};

// --- what a good file gives ---------------------------------------------------------------------

TEST_F(ConfigTest, AMinimalFileGetsEveryDefault) {
  const HostConfig c = load(kMinimal);
  EXPECT_EQ(c.path, path());
  EXPECT_EQ(c.scheduler.tick_interval, milliseconds(1000));
  EXPECT_EQ(c.scheduler.orphan_threshold, milliseconds(300'000));
  EXPECT_EQ(c.scheduler.agent_lost_threshold, milliseconds(90'000));
  EXPECT_EQ(c.scheduler.dispatch_lost_threshold, milliseconds(180'000));
  EXPECT_EQ(c.scheduler.dispatch_pool_size, 16);
  EXPECT_EQ(c.scheduler.dispatch_queue_size, 256);
  EXPECT_FALSE(c.scheduler.step_timeout.has_value());
  EXPECT_EQ(c.scheduler.stepTimeout(), milliseconds(30'000));
  EXPECT_EQ(c.scheduler.dispatch_retry_limit, 5);
  EXPECT_EQ(c.scheduler.dispatch_retry_backoff, milliseconds(200));
  EXPECT_EQ(c.scheduler.shutdown_grace, milliseconds(8000));
  EXPECT_EQ(c.scheduler.reaper_batch_size, 100);
  EXPECT_EQ(c.scheduler.log_level, "info");
  EXPECT_TRUE(c.plugin_search_path.empty());
  EXPECT_EQ(c.store.plugin, "store-redis");
  EXPECT_EQ(c.store.section, "store");
  EXPECT_EQ(c.store.file, path());
  EXPECT_EQ(c.store.line, 1);
  ASSERT_NE(c.store.config, nullptr);
  EXPECT_TRUE(c.store.config->entries.empty());
  EXPECT_FALSE(c.leader.has_value());
  ASSERT_EQ(c.dispatchers.size(), 1u);
  EXPECT_EQ(c.dispatchers[0].section, "dispatcher");
  EXPECT_EQ(c.dispatchers[0].plugin, "dispatcher-local");
  EXPECT_EQ(c.dispatchers[0].line, 4);
  EXPECT_TRUE(c.dispatchers[0].task_types.empty());
  EXPECT_FALSE(c.inline_runner.has_value());
  EXPECT_TRUE(c.recorders.empty());
}

TEST_F(ConfigTest, ReadsTheArchitectureExample) {
  const HostConfig c = load(R"([scheduler]
tick_interval_ms = 1000
orphan_threshold_s = 300
agent_lost_threshold_s = 90
dispatch_lost_threshold_s = 180
dispatch_pool_size = 16
dispatch_queue_size = 256

[plugins]
search_path = ["/opt/leoflow/plugins"]

[store]
plugin = "store-redis"
[store.config]
url = "redis://127.0.0.1:6379/0"

[leader]
plugin = "store-redis"
[leader.config]
url = "redis://127.0.0.1:6379/0"
lease_ms = 3000

[dispatcher]
plugin = "dispatcher-local"
[dispatcher.config]
max_parallel = 8

[inline_runner]
plugin = "inline-http"

[[recorder]]
plugin = "metrics-statsd"
[recorder.config]
address = "127.0.0.1:8125"
prefix = "leoflow"
)");
  EXPECT_THAT(c.plugin_search_path, ElementsAre(fs::path("/opt/leoflow/plugins")));
  EXPECT_EQ(c.store.plugin, "store-redis");
  EXPECT_EQ(c.store.config->section, "store.config");
  EXPECT_EQ(c.store.config->line, 14);
  ASSERT_EQ(c.store.config->entries.count("url"), 1u);
  EXPECT_EQ(c.store.config->entries.at("url").line, 15);
  ASSERT_TRUE(c.leader.has_value());
  EXPECT_EQ(c.leader->plugin, "store-redis");
  EXPECT_FALSE(c.leaderSection().config_lent_by_store);
  EXPECT_EQ(c.dispatchers.at(0).config->entries.size(), 1u);
  ASSERT_TRUE(c.inline_runner.has_value());
  EXPECT_EQ(c.inline_runner->plugin, "inline-http");
  EXPECT_EQ(c.inline_runner->section, "inline_runner");
  ASSERT_EQ(c.recorders.size(), 1u);
  EXPECT_EQ(c.recorders[0].section, "recorder[0]");
  EXPECT_EQ(c.recorders[0].plugin, "metrics-statsd");
  EXPECT_EQ(c.recorders[0].config->section, "recorder[0].config");
  EXPECT_EQ(c.recorders[0].config->entries.size(), 2u);
}

TEST_F(ConfigTest, ReadsEverySchedulerKey) {
  const HostConfig c = load(std::string(R"([scheduler]
tick_interval_ms = 50
orphan_threshold_s = 0.5
agent_lost_threshold_s = 2
dispatch_lost_threshold_s = 1.25
dispatch_pool_size = 4
dispatch_queue_size = 8
step_timeout_ms = 75
dispatch_retry_limit = 2
dispatch_retry_backoff_ms = 10
shutdown_grace_ms = 3000
reaper_batch_size = 7
log_level = "debug"
)") + kMinimal);
  EXPECT_EQ(c.scheduler.tick_interval, milliseconds(50));
  EXPECT_EQ(c.scheduler.orphan_threshold, milliseconds(500));
  EXPECT_EQ(c.scheduler.agent_lost_threshold, milliseconds(2000));
  EXPECT_EQ(c.scheduler.dispatch_lost_threshold, milliseconds(1250));
  EXPECT_EQ(c.scheduler.dispatch_pool_size, 4);
  EXPECT_EQ(c.scheduler.dispatch_queue_size, 8);
  EXPECT_EQ(c.scheduler.step_timeout, milliseconds(75));
  EXPECT_EQ(c.scheduler.stepTimeout(), milliseconds(75));
  EXPECT_EQ(c.scheduler.dispatch_retry_limit, 2);
  EXPECT_EQ(c.scheduler.dispatch_retry_backoff, milliseconds(10));
  EXPECT_EQ(c.scheduler.shutdown_grace, milliseconds(3000));
  EXPECT_EQ(c.scheduler.reaper_batch_size, 7);
  EXPECT_EQ(c.scheduler.log_level, "debug");
}

TEST_F(ConfigTest, StepTimeoutDefaultsToThirtyTicksButAtLeastThirtySeconds) {
  host::SchedulerSettings s;
  s.tick_interval = milliseconds(2000);
  EXPECT_EQ(s.stepTimeout(), milliseconds(60'000));
  s.tick_interval = milliseconds(100);
  EXPECT_EQ(s.stepTimeout(), milliseconds(30'000));
}

TEST_F(ConfigTest, WithoutLeaderTheStoresPluginAndConfigProvideIt) {
  const HostConfig c = load(R"([store]
plugin = "store-redis"
[store.config]
url = "redis://db:6379/0"

[dispatcher]
plugin = "dispatcher-local"
)");
  EXPECT_FALSE(c.leader.has_value());
  const PluginSection leader = c.leaderSection();
  EXPECT_EQ(leader.plugin, "store-redis");
  EXPECT_TRUE(leader.config_lent_by_store);
  EXPECT_EQ(leader.config, c.store.config);
}

TEST_F(ConfigTest, SeveralDispatchersSplitTheTaskTypes) {
  const HostConfig c = load(R"([store]
plugin = "store-redis"

[[dispatchers]]
plugin = "dispatcher-local"
task_types = ["bash", "python"]
[dispatchers.config]
max_parallel = 2

[[dispatchers]]
plugin = "dispatcher-k8s"
)");
  ASSERT_EQ(c.dispatchers.size(), 2u);
  EXPECT_EQ(c.dispatchers[0].section, "dispatchers[0]");
  EXPECT_EQ(c.dispatchers[0].line, 4);
  EXPECT_THAT(c.dispatchers[0].task_types, ElementsAre("bash", "python"));
  EXPECT_EQ(c.dispatchers[0].config->section, "dispatchers[0].config");
  EXPECT_EQ(c.dispatchers[0].config->entries.size(), 1u);
  EXPECT_EQ(c.dispatchers[1].section, "dispatchers[1]");
  EXPECT_EQ(c.dispatchers[1].plugin, "dispatcher-k8s");
  EXPECT_EQ(c.dispatchers[1].line, 10);
  EXPECT_TRUE(c.dispatchers[1].task_types.empty());
  EXPECT_TRUE(c.dispatchers[1].config->entries.empty());
}

TEST_F(ConfigTest, ASingleRecorderTableIsAcceptedToo) {
  const HostConfig c = load(std::string(kMinimal) + "[recorder]\nplugin = \"metrics-statsd\"\n");
  ASSERT_EQ(c.recorders.size(), 1u);
  EXPECT_EQ(c.recorders[0].section, "recorder");
}

TEST_F(ConfigTest, RelativeSearchPathsAreReadFromTheConfigsDirectory) {
  const HostConfig c = load(std::string("[plugins]\nsearch_path = [\"plugins\", \"/abs/dir\", \"../up\"]\n") + kMinimal);
  EXPECT_THAT(c.plugin_search_path,
              ElementsAre(dir_.path() / "plugins", fs::path("/abs/dir"), dir_.path().parent_path() / "up"));
}

TEST_F(ConfigTest, EnvironmentReferencesAreSubstitutedInHostValues) {
  ScopedEnv plugin("LEOFLOW_TEST_STORE", "store-postgres");
  ScopedEnv dir("LEOFLOW_TEST_DIR", "/srv/plugins");
  const HostConfig c = load(R"([plugins]
search_path = ["${LEOFLOW_TEST_DIR}/a", "/literal/$${LEOFLOW_TEST_DIR}", "/x$y"]
[store]
plugin = "${LEOFLOW_TEST_STORE}"
[dispatcher]
plugin = "dispatcher-local"
)");
  EXPECT_EQ(c.store.plugin, "store-postgres");
  EXPECT_THAT(c.plugin_search_path,
              ElementsAre(fs::path("/srv/plugins/a"), fs::path("/literal/${LEOFLOW_TEST_DIR}"), fs::path("/x$y")));
}

TEST_F(ConfigTest, HttpIsOffWithoutItsSection) {
  EXPECT_FALSE(load(kMinimal).http.has_value());
}

TEST_F(ConfigTest, HttpReadsListenAndToken) {
  ScopedEnv token("LEOFLOW_TEST_API_TOKEN", "tok-123");
  const HostConfig c = load(std::string(kMinimal) + "\n[http]\nlisten = \"127.0.0.1:8790\"\ntoken = \"${LEOFLOW_TEST_API_TOKEN}\"\n");
  ASSERT_TRUE(c.http.has_value());
  EXPECT_EQ(c.http->listen, "127.0.0.1:8790");
  EXPECT_EQ(c.http->host, "127.0.0.1");
  EXPECT_EQ(c.http->port, 8790);
  EXPECT_EQ(c.http->token, "tok-123");
  EXPECT_EQ(c.http->file, path());
  EXPECT_EQ(c.http->line, 7);
}

TEST_F(ConfigTest, HttpDefaultsToLoopback8790WithoutAToken) {
  const HostConfig c = load(std::string(kMinimal) + "[http]\n");
  ASSERT_TRUE(c.http.has_value());
  EXPECT_EQ(c.http->listen, "127.0.0.1:8790");
  EXPECT_EQ(c.http->port, 8790);
  EXPECT_EQ(c.http->token, "");
}

TEST_F(ConfigTest, HttpPortZeroIPv6AndHostNames) {
  HostConfig c = load(std::string(kMinimal) + "[http]\nlisten = \"127.0.0.1:0\"\n");
  EXPECT_EQ(c.http->port, 0);
  c = load(std::string(kMinimal) + "[http]\nlisten = \"[::1]:9000\"\n");
  EXPECT_EQ(c.http->host, "::1");
  EXPECT_EQ(c.http->port, 9000);
  c = load(std::string(kMinimal) + "[http]\nlisten = \"localhost:65535\"\n");
  EXPECT_EQ(c.http->host, "localhost");
  EXPECT_EQ(c.http->port, 65535);
  EXPECT_TRUE(host::isLoopbackHost("localhost"));
  EXPECT_TRUE(host::isLoopbackHost("::1"));
  EXPECT_TRUE(host::isLoopbackHost("127.0.0.1"));
  EXPECT_FALSE(host::isLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(host::isLoopbackHost("127.0.0"));
}

TEST_F(ConfigTest, AnEmptyOrUnsetTokenMeansNoToken) {
  ScopedEnv unset("LEOFLOW_TEST_UNSET_TOKEN", std::nullopt);
  ScopedEnv empty("LEOFLOW_TEST_EMPTY_TOKEN", "");
  EXPECT_EQ(load(std::string(kMinimal) + "[http]\ntoken = \"${LEOFLOW_TEST_UNSET_TOKEN}\"\n").http->token, "");
  EXPECT_EQ(load(std::string(kMinimal) + "[http]\ntoken = \"${LEOFLOW_TEST_EMPTY_TOKEN}\"\n").http->token, "");
  EXPECT_EQ(load(std::string(kMinimal) + "[http]\ntoken = \"\"\n").http->token, "");
  EXPECT_EQ(errorOf(std::string(kMinimal) + "[http]\ntoken = \"${oops\"\n"),
            path() + ":7: key \"token\" in [http]: unterminated \"${\" (write \"$${\" for a literal \"${\")");
}

TEST_F(ConfigTest, HttpErrorsNameTheFileAndLine) {
  EXPECT_EQ(errorOf(std::string(kMinimal) + "[http]\nlisten = \"127.0.0.1:8790\"\nport = 8790\n"),
            path() + ":8: unknown key \"port\" in [http]");
  EXPECT_EQ(errorOf(std::string(kMinimal) + "[http]\nlisten = 8790\n"),
            path() + ":7: key \"listen\" in [http] must be a string, not an integer");
  EXPECT_EQ(errorOf(std::string(kMinimal) + "[http]\ntoken = 42\n"),
            path() + ":7: key \"token\" in [http] must be a string, not an integer");
  EXPECT_THAT(errorOf(std::string(kMinimal) + "[http]\nlisten = \"127.0.0.1\"\n"),
              HasSubstr(":7: key \"listen\" in [http]: \"127.0.0.1\" is not \"host:port\": it has no port"));
  EXPECT_THAT(errorOf(std::string(kMinimal) + "[http]\nlisten = \"127.0.0.1:70000\"\n"),
              HasSubstr(":7: key \"listen\" in [http]: \"127.0.0.1:70000\" is not \"host:port\": the port must be"));
  EXPECT_THAT(errorOf(std::string(kMinimal) + "[http]\nlisten = \"127.0.0.1:http\"\n"), HasSubstr("the port must be"));
  EXPECT_THAT(errorOf(std::string(kMinimal) + "[http]\nlisten = \":8790\"\n"), HasSubstr("it has no host"));
  EXPECT_THAT(errorOf(std::string(kMinimal) + "[http]\nlisten = \"::1:8790\"\n"), HasSubstr("[::1]:8790"));
  EXPECT_EQ(errorOf(std::string("http = 1\n") + kMinimal), path() + ":1: [http] must be a table, not an integer");
}

// --- what a bad file gets -----------------------------------------------------------------------

TEST_F(ConfigTest, AnUnknownSchedulerKeyNamesTheFileAndLine) {
  EXPECT_EQ(errorOf(std::string("# leoflow\n[scheduler]\ntick_interval_msec = 100\n") + kMinimal),
            path() + ":3: unknown key \"tick_interval_msec\" in [scheduler]");
}

TEST_F(ConfigTest, UnknownSectionsAndKeysAreErrors) {
  EXPECT_EQ(errorOf(std::string(kMinimal) + "\n[schedular]\ntick_interval_ms = 5\n"),
            path() + ":7: unknown section [schedular]");
  EXPECT_EQ(errorOf(std::string("verbose = true\n") + kMinimal), path() + ":1: unknown key \"verbose\"");
  EXPECT_EQ(errorOf(std::string(kMinimal) + "[[workers]]\nplugin = \"x\"\n"),
            path() + ":6: unknown section [[workers]]");
  EXPECT_EQ(errorOf("[store]\nplugin = \"store-redis\"\nurl = \"x\"\n[dispatcher]\nplugin = \"d\"\n"),
            path() + ":3: unknown key \"url\" in [store]");
  EXPECT_EQ(errorOf(std::string(kMinimal) + "[plugins]\npaths = []\n"), path() + ":7: unknown key \"paths\" in [plugins]");
  // task_types belong to dispatchers only.
  EXPECT_EQ(errorOf("[store]\nplugin = \"s\"\ntask_types = [\"bash\"]\n[dispatcher]\nplugin = \"d\"\n"),
            path() + ":3: unknown key \"task_types\" in [store]");
}

TEST_F(ConfigTest, ASyntaxErrorNamesLineColumnAndReason) {
  const std::string e = errorOf("[store]\nplugin = \"store-redis\nx = 1\n");
  EXPECT_THAT(e, StartsWith(path() + ":2:"));
  EXPECT_THAT(e, ::testing::MatchesRegex(".*:2:[0-9]+: invalid TOML: .+"));
  const std::string dup = errorOf("[store]\nplugin = \"a\"\nplugin = \"b\"\n");
  EXPECT_THAT(dup, StartsWith(path() + ":3:"));
  EXPECT_THAT(dup, HasSubstr("plugin"));
}

TEST_F(ConfigTest, MillisecondKeysTakeIntegersOnly) {
  EXPECT_EQ(errorOf(std::string("[scheduler]\ntick_interval_ms = 1.5\n") + kMinimal),
            path() + ":2: key \"tick_interval_ms\" in [scheduler] must be an integer (milliseconds), not a float");
  EXPECT_EQ(errorOf(std::string("[scheduler]\nshutdown_grace_ms = 9000\n") + kMinimal),
            path() + ":2: key \"shutdown_grace_ms\" in [scheduler] must be at most 8000, got 9000");
  EXPECT_EQ(errorOf(std::string("[scheduler]\nshutdown_grace_ms = \"8s\"\n") + kMinimal),
            path() + ":2: key \"shutdown_grace_ms\" in [scheduler] must be an integer (milliseconds), not a string");
}

TEST_F(ConfigTest, SecondKeysTakeNumbers) {
  EXPECT_EQ(errorOf(std::string("[scheduler]\norphan_threshold_s = \"300\"\n") + kMinimal),
            path() + ":2: key \"orphan_threshold_s\" in [scheduler] must be a number of seconds, not a string");
}

TEST_F(ConfigTest, ValuesMustBePositive) {
  EXPECT_EQ(errorOf(std::string("[scheduler]\ntick_interval_ms = 0\n") + kMinimal),
            path() + ":2: key \"tick_interval_ms\" in [scheduler] must be positive, got 0");
  EXPECT_EQ(errorOf(std::string("[scheduler]\ndispatch_pool_size = -3\n") + kMinimal),
            path() + ":2: key \"dispatch_pool_size\" in [scheduler] must be positive, got -3");
  EXPECT_EQ(errorOf(std::string("[scheduler]\nagent_lost_threshold_s = 0.0\n") + kMinimal),
            path() + ":2: key \"agent_lost_threshold_s\" in [scheduler] must be a positive number of seconds, got 0");
  EXPECT_THAT(errorOf(std::string("[scheduler]\norphan_threshold_s = nan\n") + kMinimal),
              HasSubstr(":2: key \"orphan_threshold_s\" in [scheduler] must be a positive number of seconds"));
  EXPECT_THAT(errorOf(std::string("[scheduler]\norphan_threshold_s = inf\n") + kMinimal),
              HasSubstr(":2: key \"orphan_threshold_s\" in [scheduler] must be a positive number of seconds"));
  EXPECT_THAT(errorOf(std::string("[scheduler]\ndispatch_queue_size = 3000000000\n") + kMinimal),
              HasSubstr(":2: key \"dispatch_queue_size\" in [scheduler] must be at most 2147483647"));
}

TEST_F(ConfigTest, LogLevelIsOneOfFive) {
  EXPECT_EQ(errorOf(std::string("[scheduler]\nlog_level = \"verbose\"\n") + kMinimal),
            path() + ":2: key \"log_level\" in [scheduler] must be one of trace, debug, info, warn, error; got \"verbose\"");
}

TEST_F(ConfigTest, StoreAndDispatcherAreRequired) {
  EXPECT_EQ(errorOf("[dispatcher]\nplugin = \"d\"\n"), path() + ": missing [store] section: the store plugin is required");
  EXPECT_EQ(errorOf("[store]\nplugin = \"s\"\n"),
            path() + ": missing [dispatcher] section (or [[dispatchers]]): a dispatcher plugin is required");
  EXPECT_EQ(errorOf("[store]\n[store.config]\nurl = \"x\"\n[dispatcher]\nplugin = \"d\"\n"),
            path() + ":1: missing key \"plugin\" in [store]");
  EXPECT_EQ(errorOf(std::string(kMinimal) + "[[recorder]]\n[recorder.config]\nprefix = \"x\"\n"),
            path() + ":6: missing key \"plugin\" in [recorder[0]]");
}

TEST_F(ConfigTest, DispatcherAndDispatchersAreExclusive) {
  EXPECT_EQ(errorOf(std::string(kMinimal) + "[[dispatchers]]\nplugin = \"dispatcher-k8s\"\n"),
            path() +
                ":6: [dispatcher] and [[dispatchers]] are both present; use [dispatcher] for one dispatcher or "
                "[[dispatchers]] for several");
  EXPECT_EQ(errorOf("[store]\nplugin = \"s\"\n[[dispatcher]]\nplugin = \"d\"\n"),
            path() + ":3: [dispatcher] must be a table; for several dispatchers write [[dispatchers]]");
  EXPECT_THAT(errorOf("[store]\nplugin = \"s\"\n[dispatchers]\nplugin = \"d\"\n"),
              HasSubstr(":3: [[dispatchers]] must be an array of tables"));
}

TEST_F(ConfigTest, TaskTypesGoToOneDispatcherOnly) {
  const std::string head = "[store]\nplugin = \"s\"\n";
  EXPECT_EQ(errorOf(head + "[[dispatchers]]\nplugin = \"a\"\ntask_types = [\"bash\"]\n"
                           "[[dispatchers]]\nplugin = \"b\"\ntask_types = [\"python\", \"bash\"]\n"),
            path() + ":6: task type \"bash\" of [dispatchers[1]] is already taken by [dispatchers[0]] (line 3)");
  EXPECT_EQ(errorOf(head + "[[dispatchers]]\nplugin = \"a\"\n[[dispatchers]]\nplugin = \"b\"\n"),
            path() +
                ":5: [dispatchers[1]] has no task_types, like [dispatchers[0]] (line 3): only one dispatcher may "
                "take every task type");
  EXPECT_EQ(errorOf(head + "[[dispatchers]]\nplugin = \"a\"\ntask_types = []\n"),
            path() + ":5: key \"task_types\" in [dispatchers[0]] is empty; leave it out to take every task type");
  EXPECT_EQ(errorOf(head + "[[dispatchers]]\nplugin = \"a\"\ntask_types = [\"bash\", 3]\n"),
            path() + ":5: key \"task_types\" in [dispatchers[0]] must be an array of strings, not an array of mixed types");
}

TEST_F(ConfigTest, PluginNamesAreChecked) {
  EXPECT_EQ(errorOf("[store]\nplugin = \"../evil\"\n[dispatcher]\nplugin = \"d\"\n"),
            path() + ":2: key \"plugin\" in [store]: \"../evil\" is not a plugin name (lower-case letters, digits, "
                     "'-' and '_')");
  EXPECT_EQ(errorOf("[store]\nplugin = 3\n[dispatcher]\nplugin = \"d\"\n"),
            path() + ":2: key \"plugin\" in [store] must be a string, not an integer");
  EXPECT_EQ(errorOf("[store]\nplugin = \"s\"\nconfig = 3\n[dispatcher]\nplugin = \"d\"\n"),
            path() + ":3: [store.config] must be a table, not an integer");
}

TEST_F(ConfigTest, AnUnsetEnvironmentVariableIsAnErrorNamingItAndTheKey) {
  ScopedEnv unset("LEOFLOW_TEST_UNSET", std::nullopt);
  EXPECT_EQ(errorOf("[store]\nplugin = \"${LEOFLOW_TEST_UNSET}\"\n[dispatcher]\nplugin = \"d\"\n"),
            path() + ":2: key \"plugin\" in [store]: environment variable LEOFLOW_TEST_UNSET is not set");
  EXPECT_EQ(errorOf(std::string(kMinimal) + "[plugins]\nsearch_path = [\"${oops\"]\n"),
            path() + ":7: key \"search_path\" in [plugins]: unterminated \"${\" (write \"$${\" for a literal \"${\")");
  EXPECT_THAT(errorOf(std::string(kMinimal) + "[plugins]\nsearch_path = [\"${1X}\"]\n"),
              HasSubstr(":7: key \"search_path\" in [plugins]: \"${1X}\" is not an environment variable reference"));
}

TEST_F(ConfigTest, AMissingFileOrADirectoryIsAnError) {
  try {
    host::loadHostConfig((dir_.path() / "absent.toml").string());
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), (dir_.path() / "absent.toml").string() +
                                         ": cannot read the config file: No such file or directory");
  }
  try {
    host::loadHostConfig(dir_.path().string());
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("it is a directory"));
  }
}

// --- which file --------------------------------------------------------------------------------

TEST(FindConfigPath, CommandLineThenEnvironmentThenWorkingDirectory) {
  ScratchDir dir;
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.path());
  {
    ScopedEnv env("LEOFLOW_CONFIG", std::nullopt);
    try {
      host::findConfigPath("");
      ADD_FAILURE() << "found a config where there is none";
    } catch (const ConfigError& e) {
      EXPECT_THAT(e.what(), HasSubstr("--config"));
      EXPECT_THAT(e.what(), HasSubstr("$LEOFLOW_CONFIG"));
      EXPECT_THAT(e.what(), HasSubstr("leoflow.toml"));
    }
    dir.write("leoflow.toml", kMinimal);
    EXPECT_EQ(host::findConfigPath(""), "leoflow.toml");
    EXPECT_EQ(host::findConfigPath("/etc/other.toml"), "/etc/other.toml");
  }
  {
    ScopedEnv env("LEOFLOW_CONFIG", "/etc/from-env.toml");
    EXPECT_EQ(host::findConfigPath(""), "/etc/from-env.toml");
    EXPECT_EQ(host::findConfigPath("/etc/cli.toml"), "/etc/cli.toml");
  }
  fs::current_path(cwd);
}

// --- a plugin's keys ---------------------------------------------------------------------------

class BindTest : public ConfigTest {
 protected:
  /// Binds the [dispatcher] section of `config_lines` (the body of [dispatcher.config]).
  ConfigView bind(const std::string& config_lines, const std::vector<ConfigKey>& keys) {
    const HostConfig c = load(std::string("[store]\nplugin = \"s\"\n[dispatcher]\nplugin = \"d\"\n[dispatcher.config]\n") +
                              config_lines);
    return host::bindPluginConfig(c.dispatchers.at(0), keys);
  }

  std::string bindError(const std::string& config_lines, const std::vector<ConfigKey>& keys) {
    try {
      bind(config_lines, keys);
    } catch (const ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "bound without an error:\n" << config_lines;
    return "";
  }

  const std::vector<ConfigKey> keys_ = {
      {"url", ConfigType::kString, true, std::nullopt, "where it lives"},
      {"max_parallel", ConfigType::kInt, false, ConfigValue(std::int64_t{4}), "attempts at once"},
      {"verbose", ConfigType::kBool, false, ConfigValue(false), "say more"},
      {"ratio", ConfigType::kDouble, false, ConfigValue(std::int64_t{1}), "a fraction"},
      {"tags", ConfigType::kStringList, false, ConfigValue(std::vector<std::string>{"a"}), "labels"},
      {"token", ConfigType::kString, false, std::nullopt, "no default: absent stays absent"},
  };
};

TEST_F(BindTest, FillsDefaultsAndKeepsTypes) {
  const ConfigView v = bind("url = \"redis://x\"\n", keys_);
  EXPECT_EQ(v.section(), "dispatcher.config");
  EXPECT_EQ(v.getString("url"), "redis://x");
  EXPECT_EQ(v.getInt("max_parallel"), 4);
  EXPECT_FALSE(v.getBool("verbose"));
  EXPECT_DOUBLE_EQ(v.getDouble("ratio"), 1.0);
  EXPECT_TRUE(std::holds_alternative<double>(v.values().at("ratio")));
  EXPECT_THAT(v.getStringList("tags"), ElementsAre("a"));
  EXPECT_FALSE(v.has("token"));
}

TEST_F(BindTest, ReadsEveryType) {
  const ConfigView v = bind("url = \"u\"\nmax_parallel = 9\nverbose = true\nratio = 3\ntags = [\"x\", \"y\"]\n", keys_);
  EXPECT_EQ(v.getInt("max_parallel"), 9);
  EXPECT_TRUE(v.getBool("verbose"));
  EXPECT_DOUBLE_EQ(v.getDouble("ratio"), 3.0);  // a float key takes an integer
  EXPECT_THAT(v.getStringList("tags"), ElementsAre("x", "y"));
  EXPECT_DOUBLE_EQ(bind("url = \"u\"\nratio = 0.25\n", keys_).getDouble("ratio"), 0.25);
}

TEST_F(BindTest, SubstitutesTheEnvironmentInStringsAndLists) {
  ScopedEnv secret("LEOFLOW_TEST_SECRET", "s3cr3t");
  const ConfigView v =
      bind("url = \"redis://:${LEOFLOW_TEST_SECRET}@db/0\"\ntags = [\"${LEOFLOW_TEST_SECRET}\", \"$${HOME}\"]\n", keys_);
  EXPECT_EQ(v.getString("url"), "redis://:s3cr3t@db/0");
  EXPECT_THAT(v.getStringList("tags"), ElementsAre("s3cr3t", "${HOME}"));
}

TEST_F(BindTest, AnUnsetVariableNamesItTheKeyAndTheLine) {
  ScopedEnv unset("LEOFLOW_TEST_UNSET", std::nullopt);
  EXPECT_EQ(bindError("max_parallel = 2\nurl = \"${LEOFLOW_TEST_UNSET}\"\n", keys_),
            path() + ":7: key \"url\" in [dispatcher.config]: environment variable LEOFLOW_TEST_UNSET is not set");
}

TEST_F(BindTest, UnknownKeysAreErrorsWithFileAndLine) {
  EXPECT_EQ(bindError("url = \"u\"\nmax_paralel = 3\n", keys_),
            path() + ":7: unknown key \"max_paralel\" in [dispatcher.config] (plugin \"d\" accepts: url, max_parallel, "
                     "verbose, ratio, tags, token)");
}

TEST_F(BindTest, IllTypedValuesAreErrorsWithFileAndLine) {
  EXPECT_EQ(bindError("url = \"u\"\nmax_parallel = 2.5\n", keys_),
            path() + ":7: key \"max_parallel\" in [dispatcher.config] must be an integer, not a float");
  EXPECT_EQ(bindError("url = 5\n", keys_), path() + ":6: key \"url\" in [dispatcher.config] must be a string, not an integer");
  EXPECT_EQ(bindError("url = \"u\"\nverbose = \"yes\"\n", keys_),
            path() + ":7: key \"verbose\" in [dispatcher.config] must be a boolean, not a string");
  EXPECT_EQ(bindError("url = \"u\"\nratio = \"half\"\n", keys_),
            path() + ":7: key \"ratio\" in [dispatcher.config] must be a number, not a string");
  EXPECT_EQ(bindError("url = \"u\"\ntags = [1, 2]\n", keys_),
            path() + ":7: key \"tags\" in [dispatcher.config] must be an array of strings, not an array of integers");
  EXPECT_EQ(bindError("url = \"u\"\ntags = \"a\"\n", keys_),
            path() + ":7: key \"tags\" in [dispatcher.config] must be an array of strings, not a string");
  EXPECT_EQ(bindError("url = { host = \"x\" }\n", keys_),
            path() + ":6: key \"url\" in [dispatcher.config] must be a string, not a table");
  EXPECT_EQ(bindError("url = 2026-01-01\n", keys_),
            path() + ":6: key \"url\" in [dispatcher.config] must be a string, not a date");
}

TEST_F(BindTest, AMissingRequiredKeyNamesTheTable) {
  EXPECT_EQ(bindError("max_parallel = 1\n", keys_),
            path() + ":5: missing required key \"url\" in [dispatcher.config] (a string: where it lives)");
  // No config table at all: the section's line.
  const HostConfig c = load("[store]\nplugin = \"s\"\n\n[dispatcher]\nplugin = \"d\"\n");
  try {
    host::bindPluginConfig(c.dispatchers.at(0), keys_);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), path() + ":4: missing required key \"url\" in [dispatcher.config] (a string: where it lives)");
  }
}

TEST_F(BindTest, TheLeaderReadsTheStoresConfigIgnoringStoreOnlyKeys) {
  const HostConfig c = load(R"([store]
plugin = "store-redis"
[store.config]
url = "redis://db"
pool_size = 4
lease_ms = 600
[dispatcher]
plugin = "d"
)");
  const std::vector<ConfigKey> leader_keys = {
      {"url", ConfigType::kString, true, std::nullopt, "server"},
      {"lease_ms", ConfigType::kInt, false, ConfigValue(std::int64_t{3000}), "lease"},
  };
  const ConfigView v = host::bindPluginConfig(c.leaderSection(), leader_keys);
  EXPECT_EQ(v.section(), "store.config");
  EXPECT_EQ(v.getString("url"), "redis://db");
  EXPECT_EQ(v.getInt("lease_ms"), 600);
  EXPECT_FALSE(v.has("pool_size"));
  // The same table judged as the Store's own still refuses what the Store does not know.
  EXPECT_THROW(host::bindPluginConfig(c.store, leader_keys), ConfigError);
}

TEST_F(BindTest, SectionsOfSeveralDispatchersAreNamedByIndex) {
  const HostConfig c = load(R"([store]
plugin = "s"
[[dispatchers]]
plugin = "a"
task_types = ["bash"]
[[dispatchers]]
plugin = "b"
[dispatchers.config]
oops = 1
)");
  EXPECT_EQ(host::bindPluginConfig(c.dispatchers[0], {}).section(),
            "dispatchers[0].config");
  try {
    host::bindPluginConfig(c.dispatchers[1], {});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              path() + ":9: unknown key \"oops\" in [dispatchers[1].config] (plugin \"b\" accepts: no keys)");
  }
}

}  // namespace
}  // namespace leoflow::testing
