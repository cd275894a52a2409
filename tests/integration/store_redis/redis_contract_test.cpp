// The Store and Leader contract suites (tests/contract) against the real store-redis plugin, loaded
// through the real plugin loader from the build tree, on a real Redis (ARCHITECTURE §7).
//
// Each harness flushes a database of its own on the test server (store: 3, leader: 4), so this
// binary never disturbs the other Redis tests running alongside.
#include <chrono>
#include <cstdlib>
#include <thread>

#include <gtest/gtest.h>

#include "contract/leader_contract.h"
#include "contract/store_contract.h"
#include "host/plugin_loader.h"
#include "redis_test_env.h"

namespace leoflow::contract {
namespace {

using namespace std::chrono_literals;
namespace redis = leoflow::testing::redis;

constexpr int kStoreDb = 3;
constexpr int kLeaderDb = 4;
// Long enough that a loaded 2-core machine's scheduling delays (tests run in parallel) do not eat a
// third of it; short enough to keep the fail-over tests quick.
constexpr std::chrono::milliseconds kLease{1000};

const host::LoadedPlugin& plugin() {
  // meson points LEOFLOW_STORE_REDIS_DIR at the freshly built module's folder.
  const char* dir = std::getenv("LEOFLOW_STORE_REDIS_DIR");
  static host::PluginLoader loader(
      dir != nullptr ? std::vector<std::filesystem::path>{dir} : std::vector<std::filesystem::path>{});
  return loader.load("store-redis");
}

std::unique_ptr<Store> openStore() {
  return plugin().storeFactory().create(redis::storeConfig(redis::urlForDb(kStoreDb)), redis::makeContext());
}

std::unique_ptr<Leader> openLeader(const std::string& replica) {
  return plugin().leaderFactory().create(redis::storeConfig(redis::urlForDb(kLeaderDb), "leoflow", kLease.count()),
                                         redis::makeContext(replica));
}

std::vector<StoreHarness> storeHarnesses() {
  if (!redis::serverUrl()) return {};
  return {StoreHarness{"Redis",
                       [] {
                         redis::flushDb(kStoreDb);
                         return openStore();
                       },
                       [](Store&) { return openStore(); }}};
}

std::vector<LeaderHarness> leaderHarnesses() {
  if (!redis::serverUrl()) return {};
  return {LeaderHarness{"Redis", [] {
                          redis::flushDb(kLeaderDb);
                          LeaderSetup s;
                          s.lease = kLease;
                          s.first = openLeader("replica-a");
                          s.second = openLeader("replica-b");
                          s.advance = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
                          // The holder pauses past its lease: Redis expires the key behind its back.
                          s.lapse = [] { std::this_thread::sleep_for(kLease + 200ms); };
                          return s;
                        }}};
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Redis, StoreContract, ::testing::ValuesIn(storeHarnesses()), HarnessName{});
INSTANTIATE_TEST_SUITE_P(Redis, LeaderContract, ::testing::ValuesIn(leaderHarnesses()), HarnessName{});

// Without a server the suites above have no instance; say so instead of passing silently (and fail
// in CI, where nothing may be skipped).
TEST(RedisContract, NeedsATestServer) {
  LEOFLOW_REQUIRE_TEST_REDIS();
  SUCCEED();
}

}  // namespace leoflow::contract
