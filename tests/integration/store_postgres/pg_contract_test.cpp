// The Store and Leader contract suites (tests/contract) against the real store-postgres plugin, loaded
// through the real plugin loader from the build tree, on a real PostgreSQL (ARCHITECTURE §7).
//
// Each harness owns a schema of its own on the shared test server (an independent installation: its
// own tables and change-feed channel) and the leader a lock id of its own, so this binary never
// disturbs the other PostgreSQL tests running alongside. A fresh store is its schema dropped, then
// create(), which migrates it from nothing.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include <gtest/gtest.h>

#include "contract/leader_contract.h"
#include "contract/store_contract.h"
#include "pg_test_env.h"

namespace leoflow::contract {
namespace {

using namespace std::chrono_literals;
namespace pg = leoflow::testing::pg;

constexpr const char* kStoreSchema = "lf_contract_store";
constexpr const char* kLeaderSchema = "lf_contract_leader";
// Distinct from every other test binary's (the advisory lock key is database-wide).
constexpr std::int64_t kLockId = 7'300'000'001;
// Long enough that a loaded 2-core machine's scheduling delays (tests run in parallel) do not eat a
// third of it; short enough to keep the fail-over tests quick. The leader checks at a third of it.
constexpr std::chrono::milliseconds kLease{1000};
constexpr std::chrono::milliseconds kPoll{300};

pg::Settings storeSettings() {
  pg::Settings s;
  s.schema = kStoreSchema;
  s.pool_size = 4;
  return s;
}

pg::Settings leaderSettings() {
  pg::Settings s;
  s.schema = kLeaderSchema;
  s.pool_size = 2;
  s.lock_id = kLockId;
  s.lease_ms = kLease.count();
  s.poll_ms = kPoll.count();
  return s;
}

// What a fresh store costs (drop the schema, create() migrates it from nothing), summed over the run
// and printed at the end: the price of one installation per test.
std::atomic<long long> fresh_us{0};
std::atomic<int> fresh_count{0};

class FreshStoreFigures : public ::testing::Environment {
 public:
  void TearDown() override {
    if (fresh_count == 0) return;
    std::printf("[ figures  ] %d fresh stores (drop schema + create() with every migration): %lld ms in all, "
                "%lld ms each on average\n",
                fresh_count.load(), fresh_us.load() / 1000, fresh_us.load() / 1000 / fresh_count.load());
  }
};
const auto* const kFigures = ::testing::AddGlobalTestEnvironment(new FreshStoreFigures);

std::vector<StoreHarness> storeHarnesses() {
  if (!pg::serverDsn()) return {};
  return {StoreHarness{"Postgres",
                       [] {
                         const auto start = std::chrono::steady_clock::now();
                         pg::dropSchema(kStoreSchema);
                         auto store = pg::openStore(storeSettings());
                         fresh_us += std::chrono::duration_cast<std::chrono::microseconds>(
                                         std::chrono::steady_clock::now() - start)
                                         .count();
                         ++fresh_count;
                         return store;
                       },
                       [](Store&) { return pg::openStore(storeSettings()); }}};
}

std::vector<LeaderHarness> leaderHarnesses() {
  if (!pg::serverDsn()) return {};
  return {LeaderHarness{"Postgres", [] {
                          LeaderSetup s;
                          s.lease = kLease;
                          s.first = pg::openLeader(leaderSettings(), "replica-a");
                          s.second = pg::openLeader(leaderSettings(), "replica-b");
                          s.advance = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
                          // The holder pauses past its lease without checking: the server ends its idle
                          // lock session (idle_session_timeout = lease_ms), and the lock with it.
                          s.lapse = [] { std::this_thread::sleep_for(kLease + 300ms); };
                          return s;
                        }}};
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Postgres, StoreContract, ::testing::ValuesIn(storeHarnesses()), HarnessName{});
INSTANTIATE_TEST_SUITE_P(Postgres, LeaderContract, ::testing::ValuesIn(leaderHarnesses()), HarnessName{});

// Without a server the suites above have no instance; say so instead of passing silently (and fail
// in CI, where nothing may be skipped).
TEST(PostgresContract, NeedsATestServer) {
  LEOFLOW_REQUIRE_TEST_PG();
  SUCCEED();
}

}  // namespace leoflow::contract
