// One tick at a time: BEHAVIOUR §9.4 (Step-level scenarios) as ARCHITECTURE §8 amends them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine_harness.h"

namespace leoflow::engine::testing {
namespace {

using ::testing::HasSubstr;
using S = TaskState;

TEST(EngineStep, MovesRetriableFailureToUpForRetryWithoutTouchingTheRun) {  // 19
  EngineHarness h;
  h.addDag(linear());
  auto run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kFailed, 1, 3)}, {"b", EngineHarness::ti(S::kNone, 1, 3)}});
  h.lead();
  h.tick();
  EXPECT_EQ(h.state(run, "a"), S::kUpForRetry);
  EXPECT_EQ(h.state(run, "b"), S::kNone);
  EXPECT_EQ(h.runState(run), DagRunState::kRunning);
}

TEST(EngineStep, ResetsUpForRetryToTheNextAttemptExactlyOnce) {  // 20
  EngineHarness h;
  h.addDag(linear());
  auto run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kUpForRetry, 1, 3)}, {"b", EngineHarness::ti(S::kNone)}});
  h.lead();
  h.engine->tick();
  auto a = h.store.task(run, "a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state, S::kNone);
  EXPECT_EQ(a->try_number, 2);
  EXPECT_EQ(h.recorder.decisions("retry"), 1);
}

TEST(EngineStep, FinalizesFailedWhenRetriesAreExhausted) {  // 21
  EngineHarness h;
  h.addDag(linear());
  auto run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kFailed, 3, 3)}, {"b", EngineHarness::ti(S::kUpstreamFailed)}});
  h.lead();
  h.tick();
  EXPECT_EQ(h.runState(run), DagRunState::kFailed);
  EXPECT_TRUE(h.store.run(run)->ended_at.has_value());
}

TEST(EngineStep, MaterializesAQueuedRunAndStartsIt) {  // 22
  EngineHarness h;
  h.addDag(linear());
  auto run = h.trigger("etl");
  h.lead();
  h.engine->tick();
  EXPECT_EQ(h.store.calls(Method::kMaterializeRun), 1);
  EXPECT_EQ(h.runState(run), DagRunState::kRunning);
  auto rec = h.store.run(run);
  ASSERT_EQ(rec->tasks.size(), 2u);
  for (const TaskInstance& ti : rec->tasks) {
    EXPECT_EQ(ti.state, S::kNone);
    EXPECT_EQ(ti.try_number, 1);
  }
}

TEST(EngineStep, SchedulesTheRootTaskOnly) {  // 23
  EngineHarness h;
  h.addDag(linear());
  auto run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kNone)}, {"b", EngineHarness::ti(S::kNone)}});
  h.lead();
  h.engine->tick();
  // With executor capacity, one batch moves it none → scheduled → queued (issue 14 §2).
  EXPECT_EQ(h.state(run, "a"), S::kQueued);
  EXPECT_EQ(h.state(run, "b"), S::kNone);
  EXPECT_EQ(h.recorder.decisions("scheduled"), 1);
  EXPECT_EQ(h.recorder.decisions("queued"), 1);
}

TEST(EngineStep, WithoutCapacityAReadyTaskWaitsInScheduled) {
  EngineHarness h;
  h.addDag(linear());
  auto run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kNone)}, {"b", EngineHarness::ti(S::kNone)}});
  h.dispatcher.setCapacity(0);
  h.lead();
  h.engine->tick();
  EXPECT_EQ(h.state(run, "a"), S::kScheduled);
  EXPECT_EQ(h.recorder.decisions("queued"), 0);
  h.dispatcher.setCapacity(1);
  h.engine->tick();
  EXPECT_EQ(h.state(run, "a"), S::kQueued);
}

TEST(EngineStep, FinalizesACompletedRunAsSuccess) {  // 24
  EngineHarness h;
  h.addDag(linear());
  auto run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kSuccess)}, {"b", EngineHarness::ti(S::kSuccess)}});
  h.lead();
  h.tick();
  EXPECT_EQ(h.runState(run), DagRunState::kSuccess);
}

TEST(EngineStep, ARunWithNoTasksSucceedsStraightFromQueued) {
  EngineHarness h;
  h.addDag(dag("empty", {}));
  auto run = h.trigger("empty");
  h.lead();
  h.tick();
  EXPECT_EQ(h.runState(run), DagRunState::kSuccess);
}

TEST(EngineStep, DrivesARunToSuccessThroughTheExecutor) {
  EngineHarness h;
  h.executor.setDefault(Completion::kSucceed);
  h.addDag(dag("diamond", {task("a"), task("b", {"a"}), task("c", {"a"}), task("d", {"b", "c"})}));
  auto run = h.trigger("diamond");
  h.lead();
  h.settle();
  EXPECT_EQ(h.runState(run), DagRunState::kSuccess);
  for (const char* t : {"a", "b", "c", "d"}) EXPECT_EQ(h.state(run, t), S::kSuccess) << t;
  EXPECT_EQ(h.dispatcher.accepted().size(), 4u);
}

TEST(EngineStep, RetriesAFailedTaskAfterItsDelayWithANewAttempt) {
  EngineHarness h;
  DagSpec d = linear();
  d.tasks[0].retries = 1;
  d.tasks[0].retry_delay_seconds = 60;
  h.addDag(d);
  h.executor.setDefault(Completion::kSucceed);
  h.executor.setFor("a", Completion::kFail, 1);
  auto run = h.trigger("etl");
  h.lead();
  h.settle();
  EXPECT_EQ(h.state(run, "a"), S::kUpForRetry);  // waiting out the delay
  h.clock.advance(59s);
  h.settle();
  EXPECT_EQ(h.state(run, "a"), S::kUpForRetry);
  h.clock.advance(1s);
  h.settle();
  EXPECT_EQ(h.runState(run), DagRunState::kSuccess);
  auto a = h.store.task(run, "a");
  EXPECT_EQ(a->try_number, 2);
  // each attempt was dispatched once, as its own attempt
  std::vector<int> tries;
  for (const auto& r : h.dispatcher.dispatched()) {
    if (r.attempt.task_id == "a") tries.push_back(r.attempt.try_number);
  }
  EXPECT_EQ(tries, (std::vector<int>{1, 2}));
}

TEST(EngineStep, AppliesDefaultTriggerRulesAcrossAFailure) {
  EngineHarness h;
  TaskSpec cleanup = task("cleanup", {"a"});
  cleanup.trigger_rule = TriggerRule::kAllDone;
  h.addDag(dag("etl", {task("a"), task("b", {"a"}), cleanup}));
  h.executor.setDefault(Completion::kSucceed);
  h.executor.setFor("a", Completion::kFail);
  auto run = h.trigger("etl");
  h.lead();
  h.settle();
  EXPECT_EQ(h.state(run, "a"), S::kFailed);
  EXPECT_EQ(h.state(run, "b"), S::kUpstreamFailed);
  EXPECT_EQ(h.state(run, "cleanup"), S::kSuccess);
  EXPECT_EQ(h.runState(run), DagRunState::kFailed);
}

TEST(EngineStep, APausedDagsRunsScheduleNothingUntilUnpaused) {
  EngineHarness h;
  h.executor.setDefault(Completion::kSucceed);
  h.addDag(linear());
  auto run = h.trigger("etl");
  ASSERT_TRUE(h.store.setPaused("etl", true).isOk());
  h.lead();
  h.settle();
  EXPECT_EQ(h.state(run, "a"), S::kNone);
  ASSERT_TRUE(h.store.setPaused("etl", false).isOk());
  h.settle();
  EXPECT_EQ(h.runState(run), DagRunState::kSuccess);
}

// docs/architecture.md §8.14: max_active_runs gates manual runs too; a run beyond it waits queued, and
// the oldest logical date gets the next slot, whatever the order of the triggers.
TEST(EngineStep, ManualRunsWaitQueuedForAMaxActiveRunsSlotOldestLogicalDateFirst) {
  EngineHarness h;
  DagSpec d = linear();
  d.max_active_runs = 1;
  h.addDag(d);
  auto trigger_at = [&](const std::string& run_id, Timestamp logical) {
    NewRun run{{"etl", run_id}, 1, RunTrigger::kManual, logical, "", h.clock.now()};
    EXPECT_TRUE(h.store.createRun(std::nullopt, run).isOk());
    return run.key;
  };
  const RunKey late = trigger_at("late", kNoon + std::chrono::hours(2));
  const RunKey early = trigger_at("early", kNoon + std::chrono::hours(1));
  const RunKey latest = trigger_at("latest", kNoon + std::chrono::hours(3));
  h.lead();
  h.tick();
  EXPECT_EQ(h.runState(early), DagRunState::kRunning) << "the oldest logical date goes first";
  EXPECT_EQ(h.runState(late), DagRunState::kQueued);
  EXPECT_EQ(h.runState(latest), DagRunState::kQueued);
  EXPECT_GE(h.recorder.decisions("max_active_runs_wait"), 2);
  // one at a time, in logical-date order
  ASSERT_TRUE(h.store.setRunState(h.engine->term(), early, DagRunState::kRunning, DagRunState::kSuccess, h.clock.now(), "")
                  .isOk());
  h.store.drainChanges();
  h.tick();
  EXPECT_EQ(h.runState(late), DagRunState::kRunning);
  EXPECT_EQ(h.runState(latest), DagRunState::kQueued);
}

// A backfill behind a small max_active_runs: the runs waiting for a slot are not advanced again every
// tick (10,000 of them kept the loop thread busy while 4 ran), only when a slot frees — and then the
// oldest goes, at once.
// 40 runs of a DAG with max_active_runs = 2, created newest first, so neither creation order nor run id
// order is the logical dates' order; [0] is the oldest logical date.
std::vector<RunKey> fortyRunsBehindALimitOfTwo(EngineHarness& h, RunTrigger trigger) {
  DagSpec d = linear();
  d.max_active_runs = 2;
  h.addDag(d);
  std::vector<RunKey> runs;
  for (int i = 0; i < 40; ++i) {
    const int n = 40 - i;
    NewRun run{{"etl", "r" + std::to_string(n)}, 1, trigger, kNoon + std::chrono::hours(n), "", h.clock.now()};
    EXPECT_TRUE(h.store.createRun(std::nullopt, run).isOk());
    runs.insert(runs.begin(), run.key);
  }
  return runs;
}

TEST(EngineStep, RunsWaitingForASlotAreAdvancedAgainOnlyWhenOneFreesOldestFirst) {
  EngineHarness h;
  const std::vector<RunKey> runs = fortyRunsBehindALimitOfTwo(h, RunTrigger::kBackfill);
  h.lead();
  h.tick();
  EXPECT_EQ(h.runState(runs[0]), DagRunState::kRunning);
  EXPECT_EQ(h.runState(runs[1]), DagRunState::kRunning);
  EXPECT_EQ(h.runState(runs[2]), DagRunState::kQueued);
  const int waits = h.recorder.decisions("max_active_runs_wait");
  EXPECT_EQ(waits, 38);
  EXPECT_EQ(h.recorder.decisionCalls("max_active_runs_wait"), 1) << "a tick's waits go to the recorder together";
  for (int i = 0; i < 3; ++i) h.tick();  // nothing changed: the 38 are not looked at again
  EXPECT_EQ(h.recorder.decisions("max_active_runs_wait"), waits);
  ASSERT_TRUE(h.store.setRunState(h.engine->term(), runs[1], DagRunState::kRunning, DagRunState::kSuccess,
                                  h.clock.now(), "")
                  .isOk());
  h.store.drainChanges();
  h.tick();
  EXPECT_EQ(h.runState(runs[2]), DagRunState::kRunning) << "the oldest waiting run takes the freed slot";
  EXPECT_EQ(h.runState(runs[3]), DagRunState::kQueued);
  EXPECT_LE(h.recorder.decisions("max_active_runs_wait"), waits + 1);  // not the other 37 again
}

// A pause, or anything that may change the slots, looks again only at the parked runs the DAG has a slot
// for: the rest would only wait again.
TEST(EngineStep, APauseAdvancesAgainOnlyTheParkedRunsThatHaveASlot) {
  EngineHarness h;
  const std::vector<RunKey> runs = fortyRunsBehindALimitOfTwo(h, RunTrigger::kManual);
  h.lead();
  h.tick();
  ASSERT_EQ(h.runState(runs[1]), DagRunState::kRunning);
  ASSERT_EQ(h.recorder.decisions("max_active_runs_wait"), 38);
  ASSERT_TRUE(h.store.setPaused("etl", true).isOk());
  h.tick();
  EXPECT_EQ(h.recorder.decisions("paused_wait"), 0) << "none of the 38 has a slot: none is looked at";
  ASSERT_TRUE(h.store.setRunState(h.engine->term(), runs[1], DagRunState::kRunning, DagRunState::kSuccess,
                                  h.clock.now(), "")
                  .isOk());
  h.store.drainChanges();
  h.tick();
  EXPECT_EQ(h.runState(runs[2]), DagRunState::kQueued) << "its slot is free, but its DAG is paused";
  EXPECT_EQ(h.recorder.decisions("paused_wait"), 1);
  ASSERT_TRUE(h.store.setPaused("etl", false).isOk());
  h.tick();
  EXPECT_EQ(h.runState(runs[2]), DagRunState::kRunning) << "unpaused: the run with the slot starts";
  EXPECT_EQ(h.runState(runs[3]), DagRunState::kQueued);
  EXPECT_EQ(h.recorder.decisions("paused_wait"), 1);
  EXPECT_EQ(h.recorder.decisions("max_active_runs_wait"), 38) << "the 37 behind it were not looked at again";
}

TEST(EngineStep, FollowerReadsAndWritesNothing) {  // 27, 39
  EngineHarness h;
  h.addDag(dag("etl", {task("a"), task("b", {"a"})}, "@hourly"));
  auto run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kNone)}, {"b", EngineHarness::ti(S::kNone)}});
  h.board->acquire("someone-else");
  h.build();
  ASSERT_FALSE(*h.engine->campaignOnce());
  h.store.resetCalls();
  auto report = h.engine->tick();
  EXPECT_FALSE(report.led);
  for (std::size_t m = 0; m < leoflow::testing::kMethodCount; ++m) {
    EXPECT_EQ(h.store.calls(static_cast<Method>(m)), 0) << leoflow::testing::toString(static_cast<Method>(m));
  }
  EXPECT_EQ(h.state(run, "a"), S::kNone);
  EXPECT_TRUE(h.engine->health().healthy);
  EXPECT_TRUE(h.engine->health().last_tick.has_value());
}

TEST(EngineStep, LetsDispatchersReconcileOnFullTicksOnly) {
  EngineHarness h;
  h.lead();
  h.engine->tick(Engine::TickKind::kFull);
  h.engine->tick(Engine::TickKind::kQuick);
  EXPECT_EQ(h.dispatcher.reconcileCalls(), 1);
}

TEST(EngineStep, RecordsLivenessForStatus) {
  EngineHarness h;
  h.lead();
  h.tick();
  auto l = h.store.liveness();
  ASSERT_TRUE(l);
  EXPECT_EQ(l->holder, "replica-a");
  EXPECT_EQ(l->term, h.engine->term());
  EXPECT_EQ(l->last_tick, h.clock.now());
}

TEST(EngineStep, ReportsAStaleFinishedReportWithoutApplyingIt) {
  // BEHAVIOUR §10 item 3: a late report from try 1 never lands on try 2.
  EngineHarness h;
  DagSpec d = linear();
  d.tasks[0].retries = 2;
  h.addDag(d);
  auto run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kRunning, 2, 3)}, {"b", EngineHarness::ti(S::kNone)}});
  h.build();
  Status s = h.events->finished({{run, "a", 1}, "exec-1"}, TaskOutcome{true, 0, ""});
  EXPECT_EQ(s.code(), StatusCode::kConflict);
  EXPECT_EQ(h.state(run, "a"), S::kRunning);
  EXPECT_THAT(h.logs(), HasSubstr("stale finished report ignored"));
}

}  // namespace
}  // namespace leoflow::engine::testing
