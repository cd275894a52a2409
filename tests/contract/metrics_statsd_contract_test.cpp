// The Recorder contract suite against the real metrics-statsd plugin, loaded by name through the
// real plugin loader from the build tree, its config bound by the host's own machinery — as
// `leoflow scheduler` does with [[recorder]] plugin = "metrics-statsd". Its output is observed by a
// plain UDP listener.
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include <leoflow/abi.h>

#include "support/null_roles.h"

#include "contract/recorder_contract.h"
#include "host/config.h"
#include "host/plugin_loader.h"
#include "integration/metrics_statsd/udp_listener.h"

namespace leoflow::contract {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
constexpr const char* kPlugin = "metrics-statsd";

struct Plumbing {
  leoflow::testing::WallClock clock;
  leoflow::testing::NullRecorder recorder;
  leoflow::testing::NullTaskEvents events;
  std::shared_ptr<spdlog::logger> logger = leoflow::testing::stderrTestLogger("plugin.metrics-statsd", spdlog::level::err);
  std::mutex mutex;
  std::deque<PluginContext> contexts;
};

Plumbing& plumbing() {
  static Plumbing p;
  return p;
}

const host::LoadedPlugin& plugin() {
  const char* dir = std::getenv("LEOFLOW_METRICS_STATSD_DIR");
  static host::PluginLoader loader(dir != nullptr ? std::vector<fs::path>{dir} : std::vector<fs::path>{});
  return loader.load(kPlugin);
}

std::unique_ptr<Recorder> create(const std::string& address) {
  auto raw = std::make_shared<host::RawPluginConfig>();
  raw->section = "recorder[0].config";
  raw->line = 1;
  raw->entries["address"] = host::RawConfigValue{ConfigValue{address}, "string", 2};
  host::PluginSection section;
  section.section = "recorder[0]";
  section.plugin = kPlugin;
  section.config = std::move(raw);
  section.file = "metrics-statsd-contract.toml";
  const ConfigView config = host::bindPluginConfig(section, plugin().recorderFactory().configKeys());
  Plumbing& p = plumbing();
  const PluginContext* context = nullptr;
  {
    std::lock_guard lock(p.mutex);
    context = &p.contexts.emplace_back(kPlugin, p.logger, p.clock, p.events, p.recorder, 1000ms, "contract-replica");
  }
  return plugin().recorderFactory().create(config, *context);
}

RecorderHarness statsdHarness() {
  RecorderHarness h;
  h.name = "Statsd";
  h.create = [](RecorderDestination d) {
    RecorderSetup s;
    if (d == RecorderDestination::kAbsent) {
      // TEST-NET-1 (RFC 5737): routed nowhere.
      s.recorder = create("192.0.2.1:8125");
      return s;
    }
    auto listener = std::make_shared<leoflow::testing::UdpListener>();
    s.recorder = create(listener->address());
    s.delivered = [listener] {
      std::this_thread::sleep_for(300ms);  // the plugin sends at least every 100 ms
      std::string all;
      for (const std::string& l : listener->lines()) all += l + "\n";
      return all;
    };
    s.resources = listener;
    return s;
  };
  return h;
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Statsd, RecorderContract, ::testing::Values(statsdHarness()), HarnessName{});

TEST(MetricsStatsdPlugin, IsBuiltForTheHostsSdkAndOffersTheRecorderRole) {
  EXPECT_EQ(plugin().abiMinor(), static_cast<std::uint32_t>(LEOFLOW_ABI_MINOR));
  EXPECT_NO_THROW(plugin().recorderFactory());
}

}  // namespace leoflow::contract
