// The loop survives everything: BEHAVIOUR §9.7 scenarios 69-74 and §10 item 13.
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine_harness.h"

namespace leoflow::engine::testing {
namespace {

using ::testing::HasSubstr;
using S = TaskState;

TEST(EngineResilience, AnErroringRunDoesNotStopTheOthersOrRunCreation) {  // 69
  EngineHarness h;
  h.addDag(linear("bad"));
  h.addDag(linear("good"));
  DagSpec cron = dag("cron_dag", {task("a")}, "@hourly");
  h.addDag(cron);
  auto bad = h.trigger("bad");
  auto good = h.trigger("good");
  h.lead();
  h.store.failNext(Method::kMaterializeRun, internalError("disk full"));
  // whichever run is materialized first gets the error: make it the bad one by loading order
  auto report = h.engine->tick();
  const bool bad_failed = h.runState(bad) == DagRunState::kQueued;
  const bool good_failed = h.runState(good) == DagRunState::kQueued;
  EXPECT_NE(bad_failed, good_failed);  // exactly one run failed, the other went on
  EXPECT_EQ(h.recorder.decisions("run_error"), 1);
  EXPECT_GE(report.errors, 1u);
  std::size_t cron_runs = 0;
  for (const RunRecord& r : h.store.runs()) cron_runs += r.key.dag_id == "cron_dag";
  EXPECT_EQ(cron_runs, 1u);
  h.engine->tick();  // and the failed one recovers on the next tick
  EXPECT_EQ(h.runState(bad), DagRunState::kRunning);
  EXPECT_EQ(h.runState(good), DagRunState::kRunning);
}

TEST(EngineResilience, ARunThatCannotBeLoadedIsIsolatedAndLoggedOnce) {  // §10 item 13
  EngineHarness h;
  h.addDag(linear("bad"));
  h.addDag(linear("good"));
  auto bad = h.trigger("bad");
  auto good = h.trigger("good");
  h.store.failLoadOf(bad, internalError("corrupt row"));
  h.lead();
  h.tick();
  h.tick();
  h.tick();
  EXPECT_EQ(h.runState(good), DagRunState::kRunning);
  EXPECT_EQ(h.state(good, "a"), S::kQueued);
  EXPECT_EQ(h.runState(bad), DagRunState::kQueued);
  const std::string logs = h.logs();
  std::size_t count = 0;
  for (std::size_t pos = logs.find("run cannot be planned"); pos != std::string::npos;
       pos = logs.find("run cannot be planned", pos + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 1u);
  h.store.clearFailures();
  h.tick();
  EXPECT_EQ(h.runState(bad), DagRunState::kRunning);
}

TEST(EngineResilience, ARunWhoseDagVersionCannotBeDecodedIsIsolated) {
  EngineHarness h;
  h.addDag(linear("good"));
  auto good = h.trigger("good");
  RunRecord orphan;
  orphan.key = {"ghost", "r1"};
  orphan.dag_version = 7;
  orphan.state = DagRunState::kQueued;
  orphan.queued_at = kNoon;
  h.store.putRun(orphan);
  h.lead();
  h.tick();
  EXPECT_EQ(h.runState(good), DagRunState::kRunning);
  EXPECT_THAT(h.logs(), HasSubstr("dag_id=ghost"));
}

TEST(EngineResilience, FailingDagCreationIsIsolated) {  // 70
  EngineHarness h;
  h.addDag(dag("bad", {task("a")}, "@hourly"));
  h.addDag(dag("good", {task("a")}, "@hourly"));
  h.lead();
  h.store.failNext(Method::kCreateRun, internalError("constraint"));
  h.engine->tick();
  std::size_t created = 0;
  for (const RunRecord& r : h.store.runs()) created += r.trigger == RunTrigger::kScheduled;
  EXPECT_EQ(created, 1u);
  EXPECT_EQ(h.recorder.decisions("create_run_error"), 1);
  h.engine->tick();  // the failed DAG gets its run next tick
  created = 0;
  for (const RunRecord& r : h.store.runs()) created += r.trigger == RunTrigger::kScheduled;
  EXPECT_EQ(created, 2u);
}

TEST(EngineResilience, AThrowingActiveRunsListingSkipsPlanningOnly) {  // 72; §10 item 13
  EngineHarness h;
  h.addDag(dag("cron_dag", {task("a")}, "@hourly"));
  h.lead();
  h.store.throwOn(Method::kListActiveRunKeys, 1);
  auto report = h.engine->tick();
  EXPECT_TRUE(report.led);
  EXPECT_EQ(h.recorder.decisions("active_runs_list_error"), 1);
  // run creation is skipped without the active counts (max_active_runs needs them), the reapers ran
  EXPECT_EQ(h.store.calls(Method::kListOrphanCandidates), 1);
  h.engine->tick();
  std::size_t created = 0;
  for (const RunRecord& r : h.store.runs()) created += r.key.dag_id == "cron_dag";
  EXPECT_EQ(created, 1u);
}

TEST(EngineResilience, AHungStepIsCutShortByTheStepTimeoutAndTheLoopGoesOn) {  // 73
  EngineHarness h;
  h.options.step_timeout = 50ms;
  h.options.tick_interval = 60s;  // the first tick is the only full one: its reapers run or never
  h.addDag(linear());
  const RunKey r1 = h.trigger("etl", "r1");
  const RunKey r2 = h.trigger("etl", "r2");
  const RunKey r3 = h.trigger("etl", "r3");
  h.build();
  h.store.blockOn(Method::kMaterializeRun);  // the first run's materialization hangs
  std::jthread loop([&](std::stop_token st) { h.engine->run(st); });
  ASSERT_TRUE(h.store.waitUntilBlocked(Method::kMaterializeRun, 2000ms));
  for (int i = 0; i < 200 && h.recorder.decisions("step_timeout") == 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(h.recorder.decisions("step_timeout"), 1);
  // health: a leader whose last tick is older than the step timeout plus two ticks is unhealthy
  h.clock.advance(h.options.step_timeout + 2 * h.options.tick_interval + 1s);
  EXPECT_FALSE(h.engine->health().healthy);
  // The hung call returns at last; the tick stops at its next unit of work: the other runs wait
  // for the next tick, and this full tick's reapers and liveness record are skipped.
  h.store.unblock();
  for (int i = 0; i < 400; ++i) {
    if (h.runState(r1) == DagRunState::kRunning && h.runState(r2) == DagRunState::kRunning &&
        h.runState(r3) == DagRunState::kRunning) {
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(h.runState(r1), DagRunState::kRunning);
  EXPECT_EQ(h.runState(r2), DagRunState::kRunning) << "the loop goes on";
  EXPECT_EQ(h.runState(r3), DagRunState::kRunning);
  EXPECT_EQ(h.store.calls(Method::kListOrphanCandidates), 0) << "the cut-short tick skipped its reapers";
  EXPECT_EQ(h.store.calls(Method::kRecordLiveness), 0) << "and its liveness record";
  EXPECT_TRUE(h.engine->health().healthy);
  loop.request_stop();
}

TEST(EngineResilience, TheLoopSurvivesRepeatedPanics) {  // 74
  EngineHarness h;
  h.options.tick_interval = 1ms;
  h.build();
  h.store.throwOn(Method::kListActiveRunKeys);  // forever
  std::jthread loop([&](std::stop_token st) { h.engine->run(st); });
  for (int i = 0; i < 400 && h.recorder.decisions("active_runs_list_error") < 3; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  loop.request_stop();
  loop.join();
  EXPECT_GE(h.recorder.decisions("active_runs_list_error"), 3);
}

}  // namespace
}  // namespace leoflow::engine::testing
