// The Dispatcher contract suite (tests/contract/dispatcher_contract.h) against the real
// dispatcher-k8s module, loaded by name through the host's plugin loader, its config bound by the
// host's own machinery. The pods run on the emulated API server's fake kubelet
// (FakeApiServer::enableKubelet): "fake-kubelet <ms> <exit code>" runs and ends by itself. Each
// dispatcher gets a namespace of its own on one shared server.
#include <atomic>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "contract/dispatcher_contract.h"
#include "host/config.h"
#include "host/plugin_loader.h"
#include "k8s_test_support.h"
#include "support/null_roles.h"

namespace leoflow::contract {
namespace {

namespace fs = std::filesystem;
using leoflow::testing::k8s::FakeApiServer;

constexpr const char* kPlugin = "dispatcher-k8s";
constexpr std::chrono::milliseconds kHeartbeat{200};

struct Plumbing {
  leoflow::testing::WallClock clock;
  leoflow::testing::NullRecorder recorder;
  std::shared_ptr<spdlog::logger> logger =
      leoflow::testing::stderrTestLogger("plugin.dispatcher-k8s", spdlog::level::err);
  std::mutex mutex;
  std::deque<PluginContext> contexts;
  std::unique_ptr<FakeApiServer> server;
  fs::path kubeconfig;
  std::atomic<int> namespaces{0};

  Plumbing() {
    const auto& pki = leoflow::testing::k8s::testPki();
    server = std::make_unique<FakeApiServer>(pki.server_crt, pki.server_key, "contract-token", fs::path());
    server->enableKubelet();
    kubeconfig = pki.dir / "contract-kubeconfig";
    leoflow::testing::k8s::writeKubeconfig(kubeconfig, {server->url(), pki.ca_crt.string(), "", "contract-token", ""});
  }
};

Plumbing& plumbing() {
  static Plumbing p;
  return p;
}

const host::LoadedPlugin& plugin() {
  const char* dir = std::getenv("LEOFLOW_DISPATCHER_K8S_DIR");
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
  section.file = "dispatcher-k8s-contract.toml";
  return host::bindPluginConfig(section, plugin().dispatcherFactory().configKeys());
}

std::unique_ptr<Dispatcher> createK8s(TaskEvents& events, const fs::path& scratch, ConfigOverrides overrides) {
  Plumbing& p = plumbing();
  std::map<std::string, ConfigValue> table{
      {"kubeconfig", p.kubeconfig.string()},
      {"namespace", fmt::format("contract-{}", ++p.namespaces)},
      {"image", std::string("busybox:1.36")},
      {"log_dir", (scratch / "logs").string()},
      {"qps", 1000.0},
      {"burst", std::int64_t{1000}},
  };
  for (auto& [key, value] : overrides) table[key] = std::move(value);
  const ConfigView config = bindConfig(table);
  const PluginContext* context = nullptr;
  {
    std::lock_guard lock(p.mutex);
    context = &p.contexts.emplace_back(kPlugin, p.logger, p.clock, events, p.recorder, kHeartbeat, "contract-replica");
  }
  return plugin().dispatcherFactory().create(config, *context);
}

TaskSpec bash(std::string entrypoint) {
  TaskSpec task;
  task.type = "bash";
  task.entrypoint = std::move(entrypoint);
  return task;
}

DispatcherHarness k8sHarness() {
  DispatcherHarness h;
  h.name = "K8s";
  h.create = createK8s;
  h.heartbeat_interval = kHeartbeat;
  h.capacity_config = [](std::size_t n) { return ConfigOverrides{{"max_parallel", static_cast<std::int64_t>(n)}}; };
  h.succeeding_task = [] { return bash("fake-kubelet 100 0"); };
  h.failing_task = [](int exit_code) { return bash(fmt::format("fake-kubelet 100 {}", exit_code)); };
  h.timed_task = [](std::chrono::milliseconds d) { return bash(fmt::format("fake-kubelet {} 0", d.count())); };
  h.long_task = [] { return bash("fake-kubelet forever"); };
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

INSTANTIATE_TEST_SUITE_P(DispatcherK8s, DispatcherContract, ::testing::Values(k8sHarness()), HarnessName{});

TEST(DispatcherK8sContract, TheSuiteRunsTheModuleOfThisBuild) {
  const char* module = std::getenv("LEOFLOW_DISPATCHER_K8S_MODULE");
  if (module == nullptr) GTEST_SKIP() << "LEOFLOW_DISPATCHER_K8S_MODULE not set (run through meson test)";
  EXPECT_EQ(plugin().path(), fs::canonical(module));
  EXPECT_EQ(plugin().name(), kPlugin);
}

}  // namespace leoflow::contract
