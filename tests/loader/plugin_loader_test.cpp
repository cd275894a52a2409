// The plugin loader against real libraries: one good fixture, one bad fixture per way a plugin can
// be refused (ARCHITECTURE §3, §7). Each refusal asserts its own kind and a message that names the
// plugin, the path and both sides of the mismatch.
#include <algorithm>
#include <cstddef>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <leoflow/abi.h>
#include <leoflow/plugin.h>

#include "trivial_roles.h"
#include "host/config.h"
#include "host/plugin_dirs.h"
#include "host/plugin_loader.h"
#include "loader_test_helpers.h"

namespace leoflow::testing {
namespace {

namespace fs = std::filesystem;
using host::LoadedPlugin;
using host::PluginError;
using host::PluginErrorKind;
using host::PluginLoader;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string canonicalOf(const fs::path& p) { return fs::canonical(p).string(); }

class LoaderTest : public ::testing::Test {
 protected:
  ScopedEnv no_env_path_{"LEOFLOW_PLUGIN_PATH", std::nullopt};
  PluginLoader loader_{{fixtureDir()}};
};

// --- a good plugin --------------------------------------------------------------------------------

TEST_F(LoaderTest, ReadsTheDescriptorOfAGoodPlugin) {
  const LoadedPlugin& plugin = loader_.load("good");
  EXPECT_EQ(plugin.name(), "good");
  EXPECT_EQ(plugin.version(), "1.2.3");
  EXPECT_EQ(plugin.description(), "every role, trivially (a loader test fixture)");
  EXPECT_EQ(plugin.path().string(), canonicalOf(fixture("good")));
  EXPECT_EQ(plugin.buildTag(), LEOFLOW_BUILD_TAG);
  EXPECT_EQ(plugin.sdkHash(), LEOFLOW_SDK_HASH);
  EXPECT_EQ(plugin.abiMajor(), static_cast<std::uint32_t>(LEOFLOW_ABI_MAJOR));
  EXPECT_EQ(plugin.abiMinor(), static_cast<std::uint32_t>(LEOFLOW_ABI_MINOR));
  EXPECT_THAT(plugin.roles(), ElementsAre("store", "leader", "dispatcher", "inline_runner", "recorder"));
  EXPECT_EQ(plugin.stores().size(), 1u);
  EXPECT_EQ(plugin.leaders().size(), 1u);
  EXPECT_EQ(plugin.dispatchers().size(), 1u);
  EXPECT_EQ(plugin.inlineRunners().size(), 1u);
  EXPECT_EQ(plugin.recorders().size(), 1u);
}

// A plugin of SDK 2.0 — an older major since 3.0 changed the records and the Store — is refused
// before any of its C++ runs, naming both majors (§8.17).
TEST_F(LoaderTest, RefusesAPluginOfTheOlderMajor) {
  static_assert(LEOFLOW_ABI_MAJOR >= 3, "the fixture is an SDK 2.0 plugin; this test expects a later major");
  try {
    loader_.load("good-sdk-2-0");
    FAIL() << "an SDK 2.0 plugin was accepted by an SDK " << LEOFLOW_ABI_MAJOR << " host";
  } catch (const PluginError& e) {
    EXPECT_EQ(e.kind(), PluginErrorKind::kAbiMajorMismatch);
    EXPECT_THAT(e.what(), HasSubstr("ABI major 2"));
    EXPECT_THAT(e.what(), HasSubstr("differs from the host's " + std::to_string(LEOFLOW_ABI_MAJOR)));
  }
}

TEST_F(LoaderTest, LoadsALibraryOnceForTheWholeProcess) {
  const LoadedPlugin& first = loader_.load("good");
  PluginLoader other({fixtureDir()});
  EXPECT_EQ(&other.load("good"), &first);
  EXPECT_EQ(&other.loadFile(fixture("good")), &first);
}

TEST_F(LoaderTest, NamesTheRolesAPluginDoesNotProvide) {
  const LoadedPlugin& plugin = loader_.load("good-dispatcher");
  EXPECT_THAT(plugin.roles(), ElementsAre("dispatcher"));
  EXPECT_NO_THROW(plugin.dispatcherFactory());
  try {
    plugin.storeFactory();
    FAIL() << "a plugin without a store gave a store factory";
  } catch (const PluginError& e) {
    EXPECT_EQ(e.kind(), PluginErrorKind::kMissingRole);
    EXPECT_THAT(e.what(), HasSubstr("plugin \"good-dispatcher\""));
    EXPECT_THAT(e.what(), HasSubstr(canonicalOf(fixture("good-dispatcher"))));
    EXPECT_THAT(e.what(), HasSubstr("provides no store (it provides: dispatcher)"));
  }
}

// What a host lends: a logger writing into a string, a fixed clock, events and a recorder that record.
class RecordingEvents final : public TaskEvents {
 public:
  Status running(const ExecutionRef& execution) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    calls_.push_back("running " + execution.attempt.task_id);
    return {};
  }
  Status heartbeat(const ExecutionRef& execution) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    calls_.push_back("heartbeat " + execution.attempt.task_id);
    return {};
  }
  Status finished(const ExecutionRef& execution, const TaskOutcome& outcome) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    calls_.push_back("finished " + execution.attempt.task_id + " " + (outcome.success ? "success" : "failed") + " " +
                     outcome.message);
    return {};
  }
  std::vector<std::string> calls() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> calls_;
};

class FixedClock final : public Clock {
 public:
  Timestamp now() const override { return Timestamp{std::chrono::seconds(1'767'225'600)}; }
};

struct LentContext {
  std::ostringstream log;
  FixedClock clock;
  RecordingEvents events;
  trivial::Recorder recorder;
  PluginContext context{"good",
                        std::make_shared<spdlog::logger>("plugin.good",
                                                         std::make_shared<spdlog::sinks::ostream_sink_mt>(log)),
                        clock,
                        events,
                        recorder,
                        std::chrono::seconds(15),
                        "replica-1"};
};

TEST_F(LoaderTest, FactoriesOfAGoodPluginCreateWorkingObjects) {
  ScratchDir dir;
  ScopedEnv url("TRIVIAL_URL", "trivial://here");
  const fs::path toml = dir.write("leoflow.toml", R"([store]
plugin = "good"
[store.config]
url = "${TRIVIAL_URL}"

[leader]
plugin = "good"
[leader.config]
lease_ms = 900

[dispatcher]
plugin = "good"
[dispatcher.config]
max_parallel = 1

[[recorder]]
plugin = "good"
)");
  const host::HostConfig config = host::loadHostConfig(toml.string());
  const LoadedPlugin& plugin = loader_.load(config.store.plugin);
  LentContext lent;

  auto store = plugin.storeFactory().create(host::bindPluginConfig(config.store, plugin.storeFactory().configKeys()),
                                            lent.context);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->ping().isOk());
  EXPECT_EQ(store->claimTerm("replica-1").value(), 1);
  EXPECT_EQ(store->claimTerm("replica-2").value(), 2);
  EXPECT_EQ(store->recordLiveness(1, LivenessRecord{}).code(), StatusCode::kFenced);

  auto leader = plugin.leaderFactory().create(
      host::bindPluginConfig(config.leaderSection(), plugin.leaderFactory().configKeys()), lent.context);
  EXPECT_EQ(leader->checkInterval(), std::chrono::milliseconds(300));
  EXPECT_TRUE(leader->tryAcquire().value());

  auto dispatcher = plugin.dispatcherFactory().create(
      host::bindPluginConfig(config.dispatchers.at(0), plugin.dispatcherFactory().configKeys()), lent.context);
  EXPECT_TRUE(dispatcher->taskTypes().empty());
  EXPECT_EQ(dispatcher->freeCapacity(), 1u);
  DispatchRequest request;
  request.attempt = AttemptRef{RunKey{"etl", "manual__1"}, "extract", 1};
  request.task.task_id = "extract";
  request.task.entrypoint = "echo hi";
  EXPECT_EQ(dispatcher->dispatch(request).value(), DispatchOutcome::kStarted);
  EXPECT_EQ(dispatcher->dispatch(request).value(), DispatchOutcome::kAlreadyRunning);
  EXPECT_EQ(dispatcher->freeCapacity(), 0u);
  request.attempt.try_number = 2;
  EXPECT_EQ(dispatcher->dispatch(request).value(), DispatchOutcome::kAtCapacity);
  EXPECT_THAT(lent.events.calls(), ElementsAre("running extract", "finished extract success trivial: echo hi"));
  EXPECT_THAT(lent.log.str(), HasSubstr("attempt dispatched task_id=extract try=1"));
  dispatcher->shutdown();

  auto runner = plugin.inlineRunnerFactory().create(ConfigView{}, lent.context);
  EXPECT_FALSE(runner->start(request).value());

  auto recorder = plugin.recorderFactory().create(
      host::bindPluginConfig(config.recorders.at(0), plugin.recorderFactory().configKeys()), lent.context);
  recorder->recordSchedulerDecision("scheduled");
}

// --- one refused plugin per failure mode ----------------------------------------------------------

struct Refusal {
  std::string fixture;  ///< leoflow-<fixture>.so
  PluginErrorKind kind;
  std::vector<std::string> says;  ///< what the message must name besides the plugin and its path
};

void PrintTo(const Refusal& r, std::ostream* os) { *os << r.fixture; }

std::vector<Refusal> refusals() {
  const std::string host_abi = std::to_string(LEOFLOW_ABI_MAJOR) + "." + std::to_string(LEOFLOW_ABI_MINOR);
  return {
      {"bad-abi-major",
       PluginErrorKind::kAbiMajorMismatch,
       {"ABI major " + std::to_string(LEOFLOW_ABI_MAJOR + 1), "differs from the host's " +
                                                                  std::to_string(LEOFLOW_ABI_MAJOR)}},
      {"bad-abi-minor",
       PluginErrorKind::kAbiMinorNewer,
       {"built for SDK " + std::to_string(LEOFLOW_ABI_MAJOR) + "." + std::to_string(LEOFLOW_ABI_MINOR + 1),
        "newer than the host's SDK " + host_abi}},
      {"bad-build-tag",
       PluginErrorKind::kBuildTagMismatch,
       {"build tag \"gcc-4.8;cxx11abi=0;cxx=201103L;spdlog=0.1.0;fmt=10000\"",
        std::string("differs from the host's \"") + LEOFLOW_BUILD_TAG + "\""}},
      {"bad-sdk-hash",
       PluginErrorKind::kSdkHashMismatch,
       {"built against SDK " + host_abi + " headers with hash \"badc0ffee0ddf00d\"",
        "the host's SDK " + host_abi + " headers hash to \"" LEOFLOW_SDK_HASH "\"",
        "rebuild the plugin against this leoflow's SDK"}},
      {"bad-name", PluginErrorKind::kNameMismatch, {"descriptor names \"someone-else\", not \"bad-name\""}},
      {"bad-struct-size",
       PluginErrorKind::kDescriptorTooSmall,
       {"struct_size is " + std::to_string(offsetof(LeoflowPluginDescriptor, name)) + " bytes",
        "too small for ABI " + host_abi, "at least " + std::to_string(sizeof(LeoflowPluginDescriptor)) + " bytes"}},
      {"bad-throws",
       PluginErrorKind::kRegistrarThrew,
       {"registrar threw: cannot reach the fixture backend at 127.0.0.1:1"}},
      {"bad-empty", PluginErrorKind::kRegisteredNothing, {"registered no factory"}},
      {"bad-duplicate", PluginErrorKind::kDuplicate, {"registers 2 dispatcher factories"}},
      {"bad-no-entry", PluginErrorKind::kNoEntryPoint, {"does not export leoflow_plugin_descriptor"}},
      {"bad-null-descriptor", PluginErrorKind::kInvalidDescriptor, {"leoflow_plugin_descriptor returned null"}},
      {"bad-not-elf", PluginErrorKind::kLoadFailed, {"cannot load the library", "invalid ELF header"}},
      {"bad-undefined-symbol",
       PluginErrorKind::kLoadFailed,
       {"cannot load the library", "undefined symbol: leoflow_fixture_symbol_defined_nowhere"}},
  };
}

class RefusedPlugin : public LoaderTest, public ::testing::WithParamInterface<Refusal> {
 protected:
  void expectRefusal(const PluginError& e) const {
    const Refusal& r = GetParam();
    EXPECT_EQ(e.kind(), r.kind) << "got " << host::toString(e.kind()) << ": " << e.what();
    EXPECT_EQ(e.plugin(), r.fixture);
    EXPECT_EQ(e.path(), canonicalOf(fixture(r.fixture)));
    EXPECT_THAT(e.what(), HasSubstr("plugin \"" + r.fixture + "\" (" + canonicalOf(fixture(r.fixture)) + "): "));
    for (const std::string& s : r.says) EXPECT_THAT(e.what(), HasSubstr(s));
  }
};

TEST_P(RefusedPlugin, ByNameWithItsOwnKindAndMessage) {
  try {
    loader_.load(GetParam().fixture);
    FAIL() << GetParam().fixture << " was accepted";
  } catch (const PluginError& e) {
    expectRefusal(e);
  }
}

TEST_P(RefusedPlugin, ByFileAndAgainTheSameWay) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      loader_.loadFile(fixture(GetParam().fixture));
      FAIL() << GetParam().fixture << " was accepted";
    } catch (const PluginError& e) {
      expectRefusal(e);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RefusedPlugin, ::testing::ValuesIn(refusals()),
                         [](const ::testing::TestParamInfo<Refusal>& info) {
                           std::string name = info.param.fixture;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// --- finding plugins ------------------------------------------------------------------------------

TEST(PluginSearch, NotFoundListsEveryPathTried) {
  ScratchDir a, b, c, d;
  ScopedEnv env("LEOFLOW_PLUGIN_PATH", c.path().string() + "::" + d.path().string());
  PluginLoader loader({a.path(), b.path()});
  try {
    loader.load("nowhere");
    FAIL() << "found a plugin that does not exist";
  } catch (const PluginError& e) {
    EXPECT_EQ(e.kind(), PluginErrorKind::kNotFound);
    EXPECT_EQ(e.plugin(), "nowhere");
    EXPECT_THAT(e.what(), HasSubstr("plugin \"nowhere\" not found"));
    for (const fs::path& dir : loader.searchPath()) {
      EXPECT_THAT(e.what(), HasSubstr((dir / "leoflow-nowhere.so").string()));
    }
    for (const ScratchDir* dir : {&a, &b, &c, &d}) {
      EXPECT_THAT(e.what(), HasSubstr((dir->path() / "leoflow-nowhere.so").string()));
    }
    EXPECT_THAT(e.what(), HasSubstr((fs::path(LEOFLOW_INSTALL_PLUGIN_DIR) / "leoflow-nowhere.so").string()));
  }
}

TEST(PluginSearch, SearchPathIsConfigThenEnvironmentThenBuildTreeThenInstallDir) {
  ScratchDir a, b, c;
  ScopedEnv env("LEOFLOW_PLUGIN_PATH", c.path().string() + ":" + a.path().string());
  PluginLoader loader({a.path(), b.path(), a.path() / "."});
  const std::vector<fs::path>& path = loader.searchPath();
  ASSERT_GE(path.size(), 4u);
  EXPECT_EQ(path[0], a.path());
  EXPECT_EQ(path[1], b.path());
  EXPECT_EQ(path[2], c.path());  // a duplicate keeps its first place
  EXPECT_EQ(path.back(), fs::path(LEOFLOW_INSTALL_PLUGIN_DIR));
  // This test runs from the build tree, so each built plugin's directory is searched.
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(LEOFLOW_BUILD_PLUGIN_DIR, ec)) {
    if (entry.is_directory()) {
      EXPECT_NE(std::find(path.begin(), path.end(), entry.path()), path.end()) << entry.path();
    }
  }
}

TEST(PluginSearch, TheFirstLibraryOnThePathWinsAndShadowsTheRest) {
  ScopedEnv env("LEOFLOW_PLUGIN_PATH", std::nullopt);
  ScratchDir first;
  fs::copy_file(fixture("good"), first.path() / "leoflow-good.so");
  PluginLoader loader({first.path(), fixtureDir()});
  EXPECT_EQ(loader.load("good").path(), fs::canonical(first.path() / "leoflow-good.so"));
  const std::vector<fs::path> found = loader.discover();
  const auto copy = std::find(found.begin(), found.end(), first.path() / "leoflow-good.so");
  const auto original = std::find(found.begin(), found.end(), fixtureDir() / "leoflow-good.so");
  ASSERT_NE(copy, found.end());
  ASSERT_NE(original, found.end());
  EXPECT_LT(copy, original);
}

TEST(PluginSearch, DiscoverFindsEveryPluginFileAndNothingElse) {
  ScopedEnv env("LEOFLOW_PLUGIN_PATH", std::nullopt);
  ScratchDir dir;
  dir.write("leoflow-a.so", "x");
  dir.write("leoflow-b.so", "x");
  dir.write("libleoflow-c.so", "x");
  dir.write("leoflow-d.so.1", "x");
  dir.write("leoflow-Upper.so", "x");
  fs::create_directories(dir.path() / "leoflow-e.so");
  PluginLoader loader({dir.path()});
  std::vector<fs::path> here;
  for (const fs::path& p : loader.discover()) {
    if (p.parent_path() == dir.path()) here.push_back(p.filename());
  }
  EXPECT_THAT(here, ElementsAre("leoflow-a.so", "leoflow-b.so"));
}

TEST(PluginSearch, RefusesNamesThatAreNotPluginNames) {
  PluginLoader loader({fixtureDir()});
  for (const std::string name : {"../fixtures/leoflow-good", "Good", "", "-good", "a/b"}) {
    try {
      loader.load(name);
      FAIL() << "accepted the name \"" << name << "\"";
    } catch (const PluginError& e) {
      EXPECT_EQ(e.kind(), PluginErrorKind::kInvalidName);
      EXPECT_THAT(e.what(), HasSubstr("\"" + name + "\" is not a plugin name"));
    }
  }
}

TEST(PluginSearch, LoadFileRefusesAMissingFileAndAFileNotNamedLikeAPlugin) {
  PluginLoader loader({});
  ScratchDir dir;
  try {
    loader.loadFile(dir.path() / "leoflow-missing.so");
    FAIL();
  } catch (const PluginError& e) {
    EXPECT_EQ(e.kind(), PluginErrorKind::kNotFound);
    EXPECT_THAT(e.what(), HasSubstr((dir.path() / "leoflow-missing.so").string() + " does not exist"));
  }
  fs::copy_file(fixture("good"), dir.path() / "libgood.so");
  try {
    loader.loadFile(dir.path() / "libgood.so");
    FAIL();
  } catch (const PluginError& e) {
    EXPECT_EQ(e.kind(), PluginErrorKind::kInvalidName);
    EXPECT_THAT(e.what(), HasSubstr((dir.path() / "libgood.so").string() + " is not named leoflow-<name>.so"));
  }
}

TEST(PluginSearch, ASymlinkUnderAnotherNameIsANameMismatch) {
  PluginLoader loader({});
  ScratchDir dir;
  fs::create_symlink(fixture("good"), dir.path() / "leoflow-alias.so");
  try {
    loader.loadFile(dir.path() / "leoflow-alias.so");
    FAIL();
  } catch (const PluginError& e) {
    EXPECT_EQ(e.kind(), PluginErrorKind::kNameMismatch);
    EXPECT_THAT(e.what(), HasSubstr("descriptor names \"good\", not \"alias\""));
  }
}

TEST(PluginNames, FileNamesAndPluginNames) {
  EXPECT_EQ(host::pluginNameFromFile("/x/leoflow-store-redis.so"), "store-redis");
  EXPECT_EQ(host::pluginNameFromFile("leoflow-a_b2.so"), "a_b2");
  EXPECT_EQ(host::pluginNameFromFile("/x/leoflow-.so"), std::nullopt);
  EXPECT_EQ(host::pluginNameFromFile("/x/libleoflow-a.so"), std::nullopt);
  EXPECT_EQ(host::pluginNameFromFile("/x/leoflow-a.so.1"), std::nullopt);
  EXPECT_EQ(host::pluginFileName("dispatcher-k8s"), "leoflow-dispatcher-k8s.so");
  EXPECT_TRUE(host::isValidPluginName("dispatcher-k8s"));
  EXPECT_FALSE(host::isValidPluginName("Dispatcher"));
  EXPECT_FALSE(host::isValidPluginName("_x"));
}

TEST(PluginErrors, KindsHaveStableNames) {
  EXPECT_EQ(host::toString(PluginErrorKind::kNotFound), "not_found");
  EXPECT_EQ(host::toString(PluginErrorKind::kAbiMajorMismatch), "abi_major_mismatch");
  EXPECT_EQ(host::toString(PluginErrorKind::kRegistrarThrew), "registrar_threw");
}

}  // namespace
}  // namespace leoflow::testing
