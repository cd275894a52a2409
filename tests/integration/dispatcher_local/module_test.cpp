// The built leoflow-dispatcher-local.so through the host's real loader: it loads, registers one
// dispatcher factory with its keys, and runs a task end to end.
#include <cstdlib>

#include <gtest/gtest.h>

#include "dispatcher_test_harness.h"
#include "host/plugin_loader.h"

namespace leoflow::testing::dispatcher_local {
namespace {

using namespace std::chrono_literals;

TEST(DispatcherLocalModule, LoadsAndRunsATaskThroughTheLoader) {
  const char* path = std::getenv("LEOFLOW_DISPATCHER_LOCAL_MODULE");
  if (path == nullptr) GTEST_SKIP() << "LEOFLOW_DISPATCHER_LOCAL_MODULE not set (run through meson test)";
  host::PluginLoader loader({});
  const host::LoadedPlugin& plugin = loader.loadFile(path);
  EXPECT_EQ(plugin.name(), "dispatcher-local");
  EXPECT_EQ(plugin.roles(), (std::vector<std::string>{"dispatcher"}));
  DispatcherFactory& factory = plugin.dispatcherFactory();
  EXPECT_EQ(factory.configKeys().size(), 9u);

  TempDir dir;
  RecordingEvents events;
  WallClock clock;
  NullRecorder recorder;
  PluginContext context("dispatcher-local", testLogger(), clock, events, recorder, 1000ms, "module-test");
  ConfigView config("dispatcher.config", {{"work_dir", (dir.path() / "work").string()},
                                          {"log_dir", (dir.path() / "logs").string()},
                                          {"state_dir", (dir.path() / "state").string()}});
  auto dispatcher = factory.create(config, context);
  const AttemptRef a = attemptOf("module", "r1", "t");
  events.seedQueued(a);  // the engine's part: the attempt is queued in the store when it is handed over
  auto outcome = dispatcher->dispatch(requestOf(a, "echo through the loader; exit 0"));
  ASSERT_TRUE(outcome.isOk()) << outcome.status().toString();
  EXPECT_EQ(*outcome, DispatchOutcome::kStarted);
  auto finished = events.waitFinished(a, 20s);
  ASSERT_TRUE(finished.has_value());
  EXPECT_TRUE(finished->outcome.success);
  const auto stored = events.store().task(a.run, a.task_id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->state, TaskState::kSuccess) << "the store took the claim and the end";
  dispatcher->shutdown();
}

}  // namespace
}  // namespace leoflow::testing::dispatcher_local
