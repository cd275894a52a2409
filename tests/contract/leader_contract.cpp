// The Leader contract: exactly one replica plans, and when it goes silent another takes over within
// about one lease (ARCHITECTURE §2 "Leadership and fencing"; leader.h; BEHAVIOUR §5).
#include "contract/leader_contract.h"

#include <latch>
#include <thread>

namespace leoflow::contract {

void PrintTo(const LeaderHarness& harness, std::ostream* os) { *os << harness.name; }

void LeaderContract::SetUp() {
  ASSERT_TRUE(GetParam().make) << "the harness gives no make";
  setup_ = GetParam().make();
  ASSERT_NE(setup_.first, nullptr);
  ASSERT_NE(setup_.second, nullptr);
  ASSERT_TRUE(setup_.advance) << "the setup gives no advance";
  ASSERT_TRUE(setup_.lapse) << "the setup gives no lapse";
}

void LeaderContract::TearDown() {
  // Leave the lease free for the next test; a failure here is not this test's business.
  if (setup_.first) (void)setup_.first->release();
  if (setup_.second) (void)setup_.second->release();
  setup_.first.reset();
  setup_.second.reset();
}

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(LeaderContract);

namespace {

using std::chrono::milliseconds;

/// ok(true): this replica leads.
::testing::AssertionResult leads(const Result<bool>& r) {
  if (!r.isOk()) return ::testing::AssertionFailure() << "error: " << r.status().toString();
  if (!*r) return ::testing::AssertionFailure() << "answered false";
  return ::testing::AssertionSuccess();
}

/// ok(false): this replica does not lead, and knows it.
::testing::AssertionResult follows(const Result<bool>& r) {
  if (!r.isOk()) return ::testing::AssertionFailure() << "error: " << r.status().toString();
  if (*r) return ::testing::AssertionFailure() << "answered true";
  return ::testing::AssertionSuccess();
}

/// Anything but ok(true): after losing a lease or a lock's session, a check may also fail to
/// answer; either way the host steps down.
::testing::AssertionResult doesNotLead(const Result<bool>& r) {
  if (r.isOk() && *r) return ::testing::AssertionFailure() << "still claims to lead";
  return ::testing::AssertionSuccess();
}

TEST_P(LeaderContract, OnlyOneReplicaLeadsAtATime) {
  EXPECT_TRUE(leads(first().tryAcquire()));
  EXPECT_TRUE(follows(second().tryAcquire()));
  EXPECT_TRUE(leads(first().tryAcquire())) << "a leader asking again still leads";
  EXPECT_TRUE(leads(first().check()));
  EXPECT_TRUE(follows(second().check())) << "a follower's check must not report leadership";
  EXPECT_TRUE(follows(second().tryAcquire()));
}

TEST_P(LeaderContract, CheckingRenewsTheLease) {
  ASSERT_TRUE(leads(first().tryAcquire()));
  // Four steps of two thirds of a lease: without renewal the lease would have run out twice over.
  const milliseconds step = setup_.lease * 2 / 3;
  for (int i = 0; i < 4; ++i) {
    setup_.advance(step);
    EXPECT_TRUE(leads(first().check())) << "step " << i;
    EXPECT_TRUE(follows(second().tryAcquire())) << "step " << i;
  }
}

TEST_P(LeaderContract, CheckingAtTheCheckIntervalKeepsLeadership) {
  if (setup_.lease.count() == 0) GTEST_SKIP() << "a lock without a lease";
  const milliseconds interval = first().checkInterval();
  ASSERT_GT(interval.count(), 0);
  ASSERT_LT(interval, setup_.lease) << "a check interval as long as the lease lets it expire";
  ASSERT_TRUE(leads(first().tryAcquire()));
  for (milliseconds elapsed{0}; elapsed < 3 * setup_.lease; elapsed += interval) {
    setup_.advance(interval);
    ASSERT_TRUE(leads(first().check())) << "after " << elapsed.count() + interval.count() << " ms";
  }
  EXPECT_TRUE(follows(second().tryAcquire()));
}

TEST_P(LeaderContract, ReleasingLetsTheOtherReplicaWin) {
  ASSERT_TRUE(leads(first().tryAcquire()));
  ASSERT_TRUE(follows(second().tryAcquire()));
  EXPECT_TRUE(first().release().isOk());
  EXPECT_TRUE(leads(second().tryAcquire())) << "a released lease must be free at once";
  EXPECT_TRUE(follows(first().check()));
  EXPECT_TRUE(follows(first().tryAcquire()));
  EXPECT_TRUE(leads(second().check()));
}

TEST_P(LeaderContract, ReleaseByANonHolderLeavesTheLeaderInPlace) {
  EXPECT_TRUE(second().release().isOk()) << "releasing without leading is harmless";
  ASSERT_TRUE(leads(first().tryAcquire()));
  EXPECT_TRUE(second().release().isOk());
  EXPECT_TRUE(leads(first().check()));
  EXPECT_TRUE(follows(second().tryAcquire()));
}

TEST_P(LeaderContract, LeadershipChangesHandsBackAndForth) {
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(leads(first().tryAcquire())) << "round " << round;
    ASSERT_TRUE(first().release().isOk());
    ASSERT_TRUE(leads(second().tryAcquire())) << "round " << round;
    ASSERT_TRUE(second().release().isOk());
  }
}

TEST_P(LeaderContract, ALapsedLeaderIsToldOnItsNextCheck) {
  ASSERT_TRUE(leads(first().tryAcquire()));
  setup_.lapse();
  // Not renewed even though nobody took it yet: another replica may be taking it right now.
  EXPECT_TRUE(doesNotLead(first().check()));
  EXPECT_TRUE(leads(second().tryAcquire()));
  EXPECT_TRUE(doesNotLead(first().check()));
  EXPECT_TRUE(leads(second().check()));
}

TEST_P(LeaderContract, ALapsedLeaderThatRacesBackFindsTheSuccessor) {
  ASSERT_TRUE(leads(first().tryAcquire()));
  setup_.lapse();
  ASSERT_TRUE(leads(second().tryAcquire()));
  // The old leader wakes up and campaigns again: the successor keeps the lease.
  EXPECT_FALSE(leads(first().tryAcquire()));
  EXPECT_TRUE(leads(second().check()));
}

TEST_P(LeaderContract, ASilentLeaderIsReplacedWithinOneLease) {
  if (setup_.lease.count() == 0) GTEST_SKIP() << "a lock without a lease is freed only with its session";
  ASSERT_TRUE(leads(first().tryAcquire()));
  // The leader stops checking (paused, partitioned, crashed); the follower campaigns every
  // checkInterval() as the host does, and must win within one lease plus one interval.
  const milliseconds interval = second().checkInterval();
  ASSERT_GT(interval.count(), 0);
  const milliseconds deadline = setup_.lease + interval;
  milliseconds waited{0};
  bool won = false;
  while (!won && waited <= deadline + interval) {
    setup_.advance(interval);
    waited += interval;
    auto r = second().tryAcquire();
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    won = *r;
  }
  ASSERT_TRUE(won) << "no fail-over after " << waited.count() << " ms";
  EXPECT_LE(waited, deadline);
  EXPECT_TRUE(doesNotLead(first().check()));
}

TEST_P(LeaderContract, RacingCampaignersNeverBothWin) {
  constexpr int kRounds = 50;
  for (int round = 0; round < kRounds; ++round) {
    Result<bool> a{false};
    Result<bool> b{false};
    std::latch start(2);
    std::thread ta([&] {
      start.arrive_and_wait();
      a = first().tryAcquire();
    });
    std::thread tb([&] {
      start.arrive_and_wait();
      b = second().tryAcquire();
    });
    ta.join();
    tb.join();
    ASSERT_TRUE(a.isOk()) << a.status().toString();
    ASSERT_TRUE(b.isOk()) << b.status().toString();
    ASSERT_NE(*a, *b) << "round " << round << ": exactly one replica must win";
    ASSERT_TRUE((*a ? first() : second()).release().isOk());
  }
}

}  // namespace
}  // namespace leoflow::contract
