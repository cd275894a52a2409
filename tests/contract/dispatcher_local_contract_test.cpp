// The Dispatcher contract suite against the real dispatcher-local plugin, loaded by name through the
// real plugin loader from the build tree (ARCHITECTURE §7), its config bound by the host's own
// machinery against the keys the factory declares — as `leoflow scheduler` does with
// [dispatcher] plugin = "dispatcher-local".
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <spdlog/logger.h>

#include "support/null_roles.h"

#include "contract/dispatcher_contract.h"
#include "host/config.h"
#include "host/plugin_loader.h"

namespace leoflow::contract {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kPlugin = "dispatcher-local";

using leoflow::testing::NullRecorder;
using leoflow::testing::WallClock;

// What the host lends every dispatcher, for the whole process: a plugin keeps references to the
// clock and the recorder, and may keep one to its context (the host keeps contexts alive too).
struct Plumbing {
  WallClock clock;
  NullRecorder recorder;
  std::shared_ptr<spdlog::logger> logger;
  std::mutex mutex;
  std::deque<PluginContext> contexts;

  // Stopping tasks at shutdown logs warnings in every test: errors only, unless LEOFLOW_TEST_LOG.
  Plumbing() : logger(leoflow::testing::stderrTestLogger("plugin.dispatcher-local", spdlog::level::err)) {}
};

Plumbing& plumbing() {
  static Plumbing p;
  return p;
}

constexpr std::chrono::milliseconds kHeartbeat{200};

const host::LoadedPlugin& plugin() {
  // meson points LEOFLOW_DISPATCHER_LOCAL_DIR at the freshly built module's folder; without it the
  // loader still searches the build tree's plugins/ for an executable inside it.
  const char* dir = std::getenv("LEOFLOW_DISPATCHER_LOCAL_DIR");
  static host::PluginLoader loader(dir != nullptr ? std::vector<fs::path>{dir} : std::vector<fs::path>{});
  return loader.load(kPlugin);
}

std::string tomlTypeName(const ConfigValue& value) {
  switch (value.index()) {
    case 0: return "string";
    case 1: return "integer";
    case 2: return "boolean";
    case 3: return "float";
    default: return "array";
  }
}

// The table as an operator would write it, judged by bindPluginConfig() against the factory's
// keys: a misspelt override fails loudly here instead of being ignored.
ConfigView bindConfig(const std::map<std::string, ConfigValue>& table) {
  auto raw = std::make_shared<host::RawPluginConfig>();
  raw->section = "dispatcher.config";
  raw->line = 1;
  int line = 1;
  for (const auto& [key, value] : table) raw->entries[key] = host::RawConfigValue{value, tomlTypeName(value), ++line};
  host::PluginSection section;
  section.section = "dispatcher";
  section.plugin = kPlugin;
  section.config = std::move(raw);
  section.file = "dispatcher-local-contract.toml";
  return host::bindPluginConfig(section, plugin().dispatcherFactory().configKeys());
}

std::unique_ptr<Dispatcher> createLocal(TaskEvents& events, const fs::path& scratch, ConfigOverrides overrides) {
  std::map<std::string, ConfigValue> table{
      {"work_dir", (scratch / "work").string()},
      {"log_dir", (scratch / "logs").string()},
      {"state_dir", (scratch / "state").string()},
      // The long task runs until stopped: stopping tasks at shutdown keeps every test from leaving
      // a process behind (the default, leaving them for the next scheduler, is the plugin's own
      // tests' business).
      {"stop_tasks_on_shutdown", true},
      {"kill_grace_ms", std::int64_t{500}},
  };
  for (auto& [key, value] : overrides) table[key] = std::move(value);
  const ConfigView config = bindConfig(table);
  Plumbing& p = plumbing();
  const PluginContext* context = nullptr;
  {
    std::lock_guard lock(p.mutex);
    context = &p.contexts.emplace_back(kPlugin, p.logger, p.clock, events, p.recorder, kHeartbeat,
                                       "contract-replica");
  }
  return plugin().dispatcherFactory().create(config, *context);
}

TaskSpec bash(std::string entrypoint) {
  TaskSpec task;
  task.type = "bash";
  task.entrypoint = std::move(entrypoint);
  return task;
}

DispatcherHarness localHarness() {
  DispatcherHarness h;
  h.name = "Local";
  h.create = createLocal;
  h.heartbeat_interval = kHeartbeat;
  h.capacity_config = [](std::size_t n) {
    return ConfigOverrides{{"max_parallel", static_cast<std::int64_t>(n)}};
  };
  h.succeeding_task = [] { return bash("echo contract task ran"); };
  h.failing_task = [](int exit_code) { return bash(fmt::format("echo failing on purpose >&2; exit {}", exit_code)); };
  h.timed_task = [](std::chrono::milliseconds d) {
    return bash(fmt::format("sleep {}.{:03}", d.count() / 1000, d.count() % 1000));
  };
  // exec: the signal that stops it reaches sleep itself. Five minutes bounds a leftover of a
  // crashed test run.
  h.long_task = [] { return bash("exec sleep 300"); };
  // An inline type: the host runs it itself, so a dispatcher-local asked for one was misrouted.
  h.foreign_task = [] {
    TaskSpec task;
    task.type = "http_api";
    task.execution_mode = ExecutionMode::kInline;
    task.http_request = HttpRequestSpec{};
    task.http_request->url = "http://127.0.0.1:9/";
    return task;
  };
  return h;
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(DispatcherLocal, DispatcherContract, ::testing::Values(localHarness()), HarnessName{});

// The suite above is only worth something if it ran the module this build made, not an installed
// or stale copy found elsewhere on the search path.
TEST(DispatcherLocalContract, TheSuiteRunsTheModuleOfThisBuild) {
  const char* module = std::getenv("LEOFLOW_DISPATCHER_LOCAL_MODULE");
  if (module == nullptr) GTEST_SKIP() << "LEOFLOW_DISPATCHER_LOCAL_MODULE not set (run through meson test)";
  EXPECT_EQ(plugin().path(), fs::canonical(module));
  EXPECT_EQ(plugin().name(), kPlugin);
}

}  // namespace leoflow::contract
