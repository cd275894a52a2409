// Leadership, fencing and shutdown: BEHAVIOUR §9.8-§9.10, §10 items 29-32, ARCHITECTURE §8.7, §8.11.
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine_harness.h"

namespace leoflow::engine::testing {
namespace {

using ::testing::HasSubstr;
using S = TaskState;
using leoflow::testing::LeaderMethod;

TEST(EngineLeadership, WinningClaimsAHigherTermEachTime) {
  EngineHarness h;
  h.lead();
  const Term first = h.engine->term();
  EXPECT_EQ(h.store.termHolder(), "replica-a");
  h.engine->stepDown("check_timeout");  // releases
  EXPECT_FALSE(h.engine->leading());
  h.lead();
  EXPECT_GT(h.engine->term(), first);
  EXPECT_EQ(h.recorder.reacquires().size(), 1u);  // step-down → re-acquire timed (§2.6)
}

TEST(EngineLeadership, OnlyOneOfTwoReplicasLeads) {
  EngineHarness a("replica-a");
  a.lead();
  EngineHarness b("replica-b", a.store.backend());
  b.board = a.board;
  b.leader = std::make_unique<MemoryLeader>(a.board, "replica-b", 1000ms);
  b.build();
  EXPECT_FALSE(*b.engine->campaignOnce());
  a.engine->stepDown("shutdown");
  EXPECT_TRUE(*b.engine->campaignOnce());
}

// Issue 9 §2: the term claim is tied to the lock. A replica that loses its lock while it claims a term
// (a pause, a slow store) must not lead under the term it just claimed — another replica may have won
// the lock meanwhile.
TEST(EngineLeadership, ALockLostWhileClaimingTheTermIsNotLeadership) {
  EngineHarness h;
  h.addDag(linear());
  const RunKey run = h.trigger("etl");
  h.build();
  h.store.blockOn(Method::kClaimTerm);
  Result<bool> won = false;
  std::thread campaign([&] { won = h.engine->campaignOnce(); });
  ASSERT_TRUE(h.store.waitUntilBlocked(Method::kClaimTerm, 2000ms));
  h.board->revoke();  // the lock goes while the claim is in flight
  h.store.unblock();
  campaign.join();
  ASSERT_TRUE(won.isOk()) << won.status().toString();
  EXPECT_FALSE(*won);
  EXPECT_FALSE(h.engine->leading());
  h.engine->tick();
  EXPECT_EQ(h.runState(run), DagRunState::kQueued) << "no decision under the orphaned term";
}

TEST(EngineLeadership, StepsDownPromptlyWhenTheLockIsLost) {  // 80
  EngineHarness h;
  h.lead();
  h.board->revoke();
  EXPECT_FALSE(h.engine->checkLeadershipOnce());
  h.engine->tick();  // the loop performs the step-down at its next opportunity
  EXPECT_FALSE(h.engine->leading());
  EXPECT_EQ(h.recorder.stepDowns("lock_released"), 1);
  EXPECT_EQ(h.leader->calls(LeaderMethod::kRelease), 0);  // a lost lock is not "released" over a successor
}

TEST(EngineLeadership, ToleratesTransientCheckErrorsThenStepsDownAfterThree) {  // 81
  EngineHarness h;
  h.lead();
  h.leader->failAlways(LeaderMethod::kCheck, unavailable("redis timeout"));
  EXPECT_TRUE(h.engine->checkLeadershipOnce());
  EXPECT_TRUE(h.engine->checkLeadershipOnce());
  EXPECT_FALSE(h.engine->checkLeadershipOnce());
  h.engine->tick();
  EXPECT_FALSE(h.engine->leading());
  EXPECT_EQ(h.recorder.stepDowns("check_timeout"), 1);
}

TEST(EngineLeadership, AHealthyCheckResetsTheFailureCount) {
  EngineHarness h;
  h.lead();
  h.leader->failNext(LeaderMethod::kCheck, unavailable("blip"), 2);
  EXPECT_TRUE(h.engine->checkLeadershipOnce());
  EXPECT_TRUE(h.engine->checkLeadershipOnce());
  EXPECT_TRUE(h.engine->checkLeadershipOnce());  // ok again: count reset
  h.leader->failNext(LeaderMethod::kCheck, unavailable("blip"), 2);
  EXPECT_TRUE(h.engine->checkLeadershipOnce());
  EXPECT_TRUE(h.engine->checkLeadershipOnce());
  EXPECT_TRUE(h.engine->leading());
}

TEST(EngineLeadership, AThrowingLeaderPluginIsAFailedCheckNotACrash) {
  EngineHarness h;
  h.lead();
  h.leader->throwOn(LeaderMethod::kCheck, 1);
  EXPECT_TRUE(h.engine->checkLeadershipOnce());
  EXPECT_THAT(h.logs(), HasSubstr("plugin leader-memory threw"));
}

TEST(EngineLeadership, AStaleLeadersDecisionsAreFencedAndItStepsDown) {  // §8.7
  EngineHarness h;
  h.addDag(linear());
  auto run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kNone)}, {"b", EngineHarness::ti(S::kNone)}});
  h.lead();
  // A successor claims a newer term while this leader is paused, before it notices anything.
  auto successor = h.store.openHandle();
  ASSERT_TRUE(successor->claimTerm("replica-b").isOk());
  h.engine->tick();
  EXPECT_EQ(h.state(run, "a"), S::kNone);  // nothing written
  h.engine->tick();
  EXPECT_FALSE(h.engine->leading());
  EXPECT_EQ(h.recorder.stepDowns("fenced"), 1);
  EXPECT_EQ(h.leader->calls(LeaderMethod::kRelease), 0);
}

TEST(EngineLeadership, ExecutorReportsAreAcceptedWhoeverLeads) {  // §8.7
  EngineHarness h;
  h.addDag(linear());
  auto run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kQueued)}, {"b", EngineHarness::ti(S::kNone)}});
  h.build();  // never leads
  auto successor = h.store.openHandle();
  ASSERT_TRUE(successor->claimTerm("replica-b").isOk());
  EXPECT_TRUE(h.events->running({{run, "a", 1}, "exec-1"}).isOk());
  EXPECT_TRUE(h.events->finished({{run, "a", 1}, "exec-1"}, TaskOutcome{true, 0, ""}).isOk());
  EXPECT_EQ(h.state(run, "a"), S::kSuccess);
}

TEST(EngineLeadership, LosingLeadershipMidTickStopsTheRestOfTheTick) {
  EngineHarness h;
  for (int i = 0; i < 5; ++i) h.addDag(linear("dag" + std::to_string(i)));
  for (int i = 0; i < 5; ++i) h.trigger("dag" + std::to_string(i));
  h.lead();
  // The first materialization of the tick finds that a newer leader claimed the store.
  h.store.failNext(Method::kMaterializeRun, fenced("term 1 < 2"));
  h.engine->tick();
  EXPECT_EQ(h.store.calls(Method::kMaterializeRun), 1);  // the other four runs were left alone
  EXPECT_EQ(h.store.calls(Method::kScheduledDags), 0);
  EXPECT_EQ(h.store.calls(Method::kListOrphanCandidates), 0);
  h.engine->tick();
  EXPECT_FALSE(h.engine->leading());
}

TEST(EngineLeadership, ShutdownDrainsTheDispatchPoolAndReleasesTheLease) {  // §8.11
  EngineHarness h;
  h.options.tick_interval = 10ms;
  h.addDag(linear());
  h.seedRunning("etl", {{"a", EngineHarness::ti(S::kScheduled)}, {"b", EngineHarness::ti(S::kNone)}});
  std::atomic<int> slow_calls{0};
  h.dispatcher.setBehaviour([&](const DispatchRequest&) -> Result<DispatchOutcome> {
    ++slow_calls;
    std::this_thread::sleep_for(100ms);  // a hand-over in flight when the stop comes
    return DispatchOutcome::kStarted;
  });
  h.build();
  std::jthread loop([&](std::stop_token st) { h.engine->run(st); });
  for (int i = 0; i < 400 && slow_calls == 0; ++i) std::this_thread::sleep_for(2ms);
  ASSERT_EQ(slow_calls, 1);
  const auto t0 = std::chrono::steady_clock::now();
  loop.request_stop();
  loop.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_EQ(h.dispatcher.accepted().size(), 1u);  // the in-flight hand-over finished
  EXPECT_FALSE(h.board->holder().has_value());      // leadership released
  EXPECT_EQ(h.recorder.stepDowns("shutdown"), 1);
  EXPECT_EQ(h.dispatcher.shutdownCalls(), 1);
}

TEST(EngineLeadership, AFollowerTakesOverWhenTheLeaderStopsRenewing) {
  EngineHarness a("replica-a");
  a.options.tick_interval = 10ms;
  a.board = std::make_shared<LeaseBoard>(a.clock, 3000ms);
  a.leader = std::make_unique<MemoryLeader>(a.board, "replica-a", 20ms);
  a.lead();
  EngineHarness b("replica-b", a.store.backend());
  b.leader = std::make_unique<MemoryLeader>(a.board, "replica-b", 20ms);
  b.build();
  EXPECT_FALSE(*b.engine->campaignOnce());
  a.clock.advance(3001ms);  // a paused past its lease (both share a's clock through the board)
  EXPECT_TRUE(*b.engine->campaignOnce());
  EXPECT_GT(b.engine->term(), a.engine->term());
  EXPECT_FALSE(a.engine->checkLeadershipOnce());  // a notices at its next check
}

}  // namespace
}  // namespace leoflow::engine::testing
