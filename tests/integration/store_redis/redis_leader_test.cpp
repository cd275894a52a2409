// The lease Leader on a real Redis (database 6): fail-over within one lease, a foreign lease left
// alone, the lease key as the README documents it, and the store's table accepted as is.
#include <chrono>
#include <cstdio>
#include <thread>

#include <gtest/gtest.h>

#include "factories.h"
#include "redis_test_env.h"

namespace leoflow::plugins::store_redis {
namespace {

namespace redis = leoflow::testing::redis;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr int kDb = 6;

std::unique_ptr<Leader> openLeader(const std::string& replica, std::int64_t lease_ms) {
  return RedisLeaderFactory().create(redis::storeConfig(redis::urlForDb(kDb), "leoflow", lease_ms),
                                     redis::makeContext(replica));
}

class RedisLeaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LEOFLOW_REQUIRE_TEST_REDIS();
    redis::flushDb(kDb);
  }
};

TEST_F(RedisLeaderTest, TheLeaseIsAKeyHoldingTheReplicaIdentityWithAnExpiry) {
  auto a = openLeader("host-a/123/x1", 3000);
  EXPECT_EQ(a->checkInterval(), 1000ms) << "lease_ms / 3";
  ASSERT_TRUE(*a->tryAcquire());
  EXPECT_EQ(redis::serverCommand(kDb, {"GET", "leoflow:leader"}), "host-a/123/x1");
  const auto pttl = std::stoll(redis::serverCommand(kDb, {"PTTL", "leoflow:leader"}));
  EXPECT_GT(pttl, 2000);
  EXPECT_LE(pttl, 3000);
  ASSERT_TRUE(a->release().isOk());
  EXPECT_EQ(redis::serverCommand(kDb, {"EXISTS", "leoflow:leader"}), "0");
}

TEST_F(RedisLeaderTest, AFollowerTakesOverWithinOneLeaseWhenTheLeaderStopsRenewing) {
  constexpr std::int64_t kLeaseMs = 1500;  // checks every 500 ms: robust to a loaded machine
  auto a = openLeader("replica-a", kLeaseMs);
  auto b = openLeader("replica-b", kLeaseMs);
  ASSERT_TRUE(*a->tryAcquire());
  // A leads for a while, renewing on time; B campaigns and loses every round.
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(a->checkInterval());
    ASSERT_TRUE(*a->check());
    ASSERT_FALSE(*b->tryAcquire());
  }
  // A stops renewing (paused, partitioned). B campaigns every checkInterval as the host does.
  const auto stopped = SteadyClock::now();
  bool won = false;
  while (!won && SteadyClock::now() - stopped < 5s) {
    std::this_thread::sleep_for(b->checkInterval());
    won = *b->tryAcquire();
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - stopped);
  ASSERT_TRUE(won);
  EXPECT_LE(took.count(), kLeaseMs + 2 * b->checkInterval().count()) << "fail-over within one lease";
  std::printf("[ figures  ] fail-over after %lld ms (lease_ms=%lld, check every %lld ms)\n",
              static_cast<long long>(took.count()), static_cast<long long>(kLeaseMs),
              static_cast<long long>(b->checkInterval().count()));
  EXPECT_FALSE(*a->check()) << "the old leader learns it lost";
  EXPECT_FALSE(*a->tryAcquire());
  EXPECT_TRUE(*b->check());
}

TEST_F(RedisLeaderTest, ReleasingAForeignLeaseDoesNothing) {
  auto a = openLeader("replica-a", 3000);
  auto b = openLeader("replica-b", 3000);
  ASSERT_TRUE(*a->tryAcquire());
  EXPECT_TRUE(b->release().isOk());
  EXPECT_EQ(redis::serverCommand(kDb, {"GET", "leoflow:leader"}), "replica-a");
  EXPECT_TRUE(*a->check());
  // Nor does a stale holder delete its successor's lease.
  redis::serverCommand(kDb, {"SET", "leoflow:leader", "replica-b", "PX", "3000"});
  EXPECT_TRUE(a->release().isOk());
  EXPECT_EQ(redis::serverCommand(kDb, {"GET", "leoflow:leader"}), "replica-b");
}

TEST_F(RedisLeaderTest, TheLeaderAcceptsTheStoresTable) {
  // ARCHITECTURE §8.6: no [leader] section — the host hands over [store.config], which has no
  // lease_ms; the default lease applies.
  const ConfigView store_table("store.config", {{"url", redis::urlForDb(kDb)}, {"key_prefix", std::string("leoflow")}});
  auto leader = RedisLeaderFactory().create(store_table, redis::makeContext("replica-a"));
  EXPECT_EQ(leader->checkInterval(), 1000ms);
  EXPECT_TRUE(*leader->tryAcquire());
  EXPECT_TRUE(leader->release().isOk());
  auto store = RedisStoreFactory().create(store_table, redis::makeContext("replica-a"));
  EXPECT_TRUE(store->ping().isOk());
}

TEST_F(RedisLeaderTest, PrefixesHaveTheirOwnLeases) {
  auto a = RedisLeaderFactory().create(redis::storeConfig(redis::urlForDb(kDb), "blue"), redis::makeContext("a"));
  auto b = RedisLeaderFactory().create(redis::storeConfig(redis::urlForDb(kDb), "green"), redis::makeContext("b"));
  EXPECT_TRUE(*a->tryAcquire());
  EXPECT_TRUE(*b->tryAcquire());
}

}  // namespace
}  // namespace leoflow::plugins::store_redis
