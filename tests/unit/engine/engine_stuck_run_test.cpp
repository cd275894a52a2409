// Runs the planner cannot move, which must end instead of holding their slot forever: a queued run
// that already has task instances (BEHAVIOUR §10 items 15-16) and a run whose DAG version cannot be
// loaded (issue 9 §2).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine_harness.h"

namespace leoflow::engine::testing {
namespace {

using ::testing::HasSubstr;
using S = TaskState;
using R = DagRunState;

/// A run left `queued` with instances already in the store: a crash between materializing and the
/// run's queued → running move, in a store that does them apart.
RunKey seedQueuedWithInstances(EngineHarness& h, std::map<std::string, TaskInstance> instances) {
  RunKey key = h.seedRunning("etl", std::move(instances));
  RunRecord r = *h.store.run(key);
  r.state = R::kQueued;
  r.started_at.reset();
  h.store.putRun(r);
  return key;
}

/// Registers `spec` under a JSON text the harness cannot decode (a spec written by a newer
/// leoflow, a corrupt row): the version exists, but no run of it can be planned.
std::int64_t addUndecodableVersion(EngineHarness& h, const DagSpec& spec) {
  DagDefinition def{spec, "{\"not\": \"a dag this build understands\"}"};
  auto r = h.store.syncDags(std::span<const DagDefinition>(&def, 1));
  EXPECT_TRUE(r.isOk()) << r.status().toString();
  return r ? (*r)[0].version : 0;
}

std::size_t countRuns(EngineHarness& h, const std::string& dag_id) {
  std::size_t n = 0;
  for (const RunRecord& r : h.store.runs()) n += r.key.dag_id == dag_id;
  return n;
}

TEST(EngineStuckRuns, AQueuedRunThatAlreadyHasInstancesMovesToRunningAndFinishes) {  // §10 item 15
  EngineHarness h;
  h.addDag(linear());
  h.executor.setDefault(Completion::kSucceed);
  TaskInstance a = EngineHarness::ti(S::kSuccess);
  a.started_at = a.ended_at = kNoon - 1min;
  auto run = seedQueuedWithInstances(h, {{"a", a}, {"b", EngineHarness::ti(S::kNone)}});
  h.lead();
  h.tick();
  EXPECT_EQ(h.runState(run), R::kRunning);
  EXPECT_TRUE(h.store.run(run)->started_at.has_value());
  h.settle();
  EXPECT_EQ(h.runState(run), R::kSuccess);
  // planned from the instances it had: "a" kept its outcome and was not run again
  ASSERT_EQ(h.dispatcher.accepted().size(), 1u);
  EXPECT_EQ(h.dispatcher.accepted()[0].task_id, "b");
  EXPECT_EQ(h.store.task(run, "a")->try_number, 1);
  EXPECT_EQ(h.store.calls(Method::kMaterializeRun), 0);  // never asked to materialize again
}

TEST(EngineStuckRuns, AQueuedRunWithInstancesThatDoNotMatchItsVersionIsFailedWithANote) {  // §10 item 16
  EngineHarness h;
  h.addDag(linear());
  auto run = seedQueuedWithInstances(h, {{"a", EngineHarness::ti(S::kNone)}});  // no "b"
  h.lead();
  h.tick();
  h.clock.advance(4min);
  h.tick();
  EXPECT_EQ(h.runState(run), R::kQueued);  // within the orphan threshold: maybe someone fixes it
  h.clock.advance(1min);
  h.tick();
  EXPECT_EQ(h.runState(run), R::kFailed);
  EXPECT_THAT(h.store.run(run)->note, HasSubstr("no instance of task b"));
  EXPECT_EQ(h.recorder.decisions("unplannable_reaped"), 1);
}

TEST(EngineStuckRuns, AQueuedRunOfAnUndecodableVersionIsFailedAndFreesItsMaxActiveRunsSlot) {  // issue 9 §2
  EngineHarness h;
  DagSpec d = dag("etl", {task("a")}, "@hourly");
  d.max_active_runs = 1;
  ASSERT_EQ(addUndecodableVersion(h, d), 1);
  ASSERT_EQ(h.addDag(d), 2);
  auto broken = h.trigger("etl", "r1", 1);
  h.lead();
  h.tick();
  EXPECT_EQ(countRuns(h, "etl"), 1u);  // the broken run holds the only slot
  h.clock.advance(4min);
  h.tick();
  EXPECT_EQ(h.runState(broken), R::kQueued);
  EXPECT_EQ(countRuns(h, "etl"), 1u);
  h.clock.advance(1min);  // one orphan threshold since the engine first saw it broken
  h.tick();
  EXPECT_EQ(h.runState(broken), R::kFailed);
  const std::string note = h.store.run(broken)->note;
  EXPECT_THAT(note, HasSubstr("dag version 1 cannot be loaded: "));
  EXPECT_THAT(note, HasSubstr("does not decode"));
  EXPECT_EQ(h.recorder.decisions("unplannable_reaped"), 1);
  // the slot is free: the schedule's run is created and starts
  h.tick();
  h.tick();
  ASSERT_EQ(countRuns(h, "etl"), 2u);
  for (const RunRecord& r : h.store.runs()) {
    if (r.key != broken) {
      EXPECT_EQ(r.state, R::kRunning) << r.key.run_id;
    }
  }
}

TEST(EngineStuckRuns, ARunningRunOfAMissingVersionIsReapedWithItsAttempts) {  // issue 9 §2
  EngineHarness h;
  h.addDag(linear());
  TaskInstance a = EngineHarness::ti(S::kRunning);
  a.started_at = a.last_heartbeat_at = kNoon;
  // bound to version 9, which does not exist (deleted, say): a running attempt keeps it off the
  // orphan reaper's list, so only this catches it
  auto run = h.seedRunning("etl", {{"a", a}, {"b", EngineHarness::ti(S::kNone)}}, "r1", 9);
  h.lead();
  h.tick();
  h.clock.advance(1min);
  auto beat = *h.store.task(run, "a");
  beat.last_heartbeat_at = h.clock.now();
  h.store.putTask(run, beat);
  h.tick();
  EXPECT_EQ(h.runState(run), R::kRunning);
  h.clock.advance(4min);
  beat.last_heartbeat_at = h.clock.now();
  h.store.putTask(run, beat);
  h.tick();
  EXPECT_EQ(h.runState(run), R::kFailed);
  EXPECT_THAT(h.store.run(run)->note, HasSubstr("dag version 9 cannot be loaded: "));
  EXPECT_EQ(h.state(run, "a"), S::kFailed);
  EXPECT_EQ(h.state(run, "b"), S::kFailed);
  EXPECT_EQ(h.recorder.decisions("orphan_reaped"), 0);
}

TEST(EngineStuckRuns, AVersionTheStoreCannotServeForAWhileFailsNothing) {
  EngineHarness h;
  // The control: a run that truly cannot be planned (an instance missing), its version read (and
  // cached) before the store stops serving versions — failed after the threshold, so the reaper
  // did run and look.
  h.addDag(dag("ctl", {task("a"), task("b")}));
  RunKey control = h.seedRunning("ctl", {{"a", EngineHarness::ti(S::kNone)}});
  h.lead();
  h.tick();
  h.addDag(linear());
  auto run = h.trigger("etl");
  h.store.failAlways(Method::kGetDag, unavailable("redis down"));
  h.tick();
  h.clock.advance(10min);
  h.tick();
  EXPECT_EQ(h.runState(control), R::kFailed);
  EXPECT_EQ(h.runState(run), R::kQueued);  // an unreachable store is no verdict on the version
  EXPECT_EQ(h.recorder.decisions("unplannable_reaped"), 1);
  h.store.clearFault(Method::kGetDag);
  h.tick();
  h.tick();
  EXPECT_EQ(h.runState(run), R::kRunning);
}

}  // namespace
}  // namespace leoflow::engine::testing
