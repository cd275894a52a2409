// The live loop: wake-ups from executor reports and the change feed make a chain of tasks advance
// at executor speed, not tick speed (ARCHITECTURE §2 "Wake-ups").
#include <thread>

#include <gtest/gtest.h>

#include "engine_harness.h"

namespace leoflow::engine::testing {
namespace {

using S = TaskState;

TEST(EngineLoop, AChainAdvancesWithoutWaitingForTheTick) {
  EngineHarness h;
  h.options.tick_interval = 60s;  // the backstop never fires during this test
  h.executor.setDefault(Completion::kSucceed);
  std::vector<TaskSpec> chain;
  for (int i = 0; i < 20; ++i) {
    chain.push_back(task("t" + std::to_string(i), i == 0 ? std::vector<std::string>{}
                                                          : std::vector<std::string>{"t" + std::to_string(i - 1)}));
  }
  h.addDag(dag("chain", chain));
  h.build();
  std::jthread loop([&](std::stop_token st) { h.engine->run(st); });
  ASSERT_TRUE(waitFor([&] { return h.engine->leading(); }, 2s));
  // triggered by another process: the change feed wakes the loop
  auto other = h.store.openHandle();
  NewRun r{{"chain", "r1"}, 1, RunTrigger::kManual, kNoon, "", kNoon};
  ASSERT_TRUE(other->createRun(std::nullopt, r).isOk());
  EXPECT_TRUE(waitFor([&] { return h.runState(r.key) == DagRunState::kSuccess; }, 10s));
  EXPECT_EQ(h.dispatcher.accepted().size(), 20u);
}

TEST(EngineLoop, AFanOutWiderThanATicksSliceRunsWithoutWaitingForTheTick) {
  EngineHarness h;
  h.options.tick_interval = 60s;  // the backstop never fires during this test
  h.options.run_moves_per_tick = 7;
  h.executor.setDefault(Completion::kSucceed);
  std::vector<TaskSpec> tasks{task("root")};
  for (int i = 0; i < 50; ++i) tasks.push_back(task("c" + std::to_string(i), {"root"}));
  h.addDag(dag("fan", tasks));
  h.build();
  std::jthread loop([&](std::stop_token st) { h.engine->run(st); });
  ASSERT_TRUE(waitFor([&] { return h.engine->leading(); }, 2s));
  auto other = h.store.openHandle();
  NewRun r{{"fan", "r1"}, 1, RunTrigger::kManual, kNoon, "", kNoon};
  ASSERT_TRUE(other->createRun(std::nullopt, r).isOk());
  EXPECT_TRUE(waitFor([&] { return h.runState(r.key) == DagRunState::kSuccess; }, 10s));
  EXPECT_EQ(h.dispatcher.accepted().size(), 51u);
}

TEST(EngineLoop, AFollowerKeepsCampaigningAndTakesOverWhenTheLeaseFrees) {
  EngineHarness h;
  h.options.tick_interval = 10ms;
  h.leader = std::make_unique<MemoryLeader>(h.board, "replica-a", 10ms);
  h.board->acquire("replica-b");
  h.build();
  std::jthread loop([&](std::stop_token st) { h.engine->run(st); });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(h.engine->leading());
  h.board->release("replica-b");
  EXPECT_TRUE(waitFor([&] { return h.engine->leading(); }, 2s));
}

// Issue 9 §3: `dags pause` holds from the moment it returns, not from the next full tick: a run
// triggered right after the pause schedules nothing.
TEST(EngineLoop, APauseHoldsForARunTriggeredRightAfterIt) {
  EngineHarness h;
  h.options.tick_interval = 60s;  // only the first tick is a full one
  h.executor.setDefault(Completion::kSucceed);
  h.addDag(linear());
  h.build();
  std::jthread loop([&](std::stop_token st) { h.engine->run(st); });
  ASSERT_TRUE(waitFor([&] { return h.engine->leading() && h.store.subscribed(); }, 2s));
  std::this_thread::sleep_for(50ms);  // the first (full) tick is over: pauses were read unpaused
  auto other = h.store.openHandle();
  ASSERT_TRUE(other->setPaused("etl", true).isOk());
  NewRun r{{"etl", "after-pause"}, 1, RunTrigger::kManual, kNoon, "", kNoon};
  ASSERT_TRUE(other->createRun(std::nullopt, r).isOk());
  // the run waits queued, as in Airflow: nothing of it starts
  ASSERT_TRUE(waitFor([&] { return h.runState(r.key).has_value(); }, 5s));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(h.runState(r.key), DagRunState::kQueued);
  EXPECT_EQ(h.state(r.key, "a"), S::kNone);
  ASSERT_TRUE(other->setPaused("etl", false).isOk());
  EXPECT_TRUE(waitFor([&] { return h.runState(r.key) == DagRunState::kSuccess; }, 5s)) << "an unpause resumes it";
}

// Issue 9 §2: a run whose load fails as unavailable is marked dirty again; the loop must back off
// (doubling, capped at the tick interval) instead of retrying it at full speed.
TEST(EngineLoop, AStoreThatFailsLoadsAtOnceIsRetriedWithBackOffNotInASpin) {
  EngineHarness h;
  h.options.tick_interval = 500ms;
  h.addDag(linear());
  const RunKey key = h.trigger("etl");
  h.store.failLoadOf(key);
  h.build();
  std::jthread loop([&](std::stop_token st) { h.engine->run(st); });
  ASSERT_TRUE(waitFor([&] { return h.engine->leading(); }, 2s));
  h.store.resetCalls();
  std::this_thread::sleep_for(1500ms);
  const int loads = h.store.calls(Method::kLoadRuns);
  // 10, 20, 40, ... 500 ms, then every 500 ms: about a dozen in 1.5 s; a spin makes thousands.
  EXPECT_LE(loads, 20) << "loads in 1.5 s of outage";
  EXPECT_GE(loads, 3) << "it keeps trying";
  h.store.clearFailures();
  EXPECT_TRUE(waitFor([&] { return h.state(key, "a") != S::kNone; }, 5s)) << "it recovers within a back-off step";
}

// Issue 9 §2: the change feed reaches every replica; only the leader plans, so a follower must not
// collect the runs it names.
TEST(EngineLoop, AFollowerCollectsNoChangedRuns) {
  EngineHarness h;
  h.options.tick_interval = 10ms;
  h.leader = std::make_unique<MemoryLeader>(h.board, "replica-a", 10ms);
  h.board->acquire("replica-b");
  DagSpec unlimited = linear();
  unlimited.max_active_runs = 0;  // all 50 runs start at once when it leads
  h.addDag(unlimited);
  h.build();
  std::jthread loop([&](std::stop_token st) { h.engine->run(st); });
  ASSERT_TRUE(waitFor([&] { return h.store.subscribed(); }, 2s)) << "a follower listens to the change feed too";
  auto other = h.store.openHandle();
  for (int i = 0; i < 50; ++i) {
    NewRun r{{"etl", "r" + std::to_string(i)}, 1, RunTrigger::kManual, kNoon, "", kNoon};
    ASSERT_TRUE(other->createRun(std::nullopt, r).isOk());
  }
  h.store.drainChanges();
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(h.engine->leading());
  EXPECT_EQ(h.wake.pendingRuns(), 0u);
  // when it comes to lead it plans every run all the same (it reloads everything)
  h.board->release("replica-b");
  EXPECT_TRUE(waitFor([&] { return h.state(RunKey{"etl", "r49"}, "a") != S::kNone; }, 5s));
}

}  // namespace
}  // namespace leoflow::engine::testing
