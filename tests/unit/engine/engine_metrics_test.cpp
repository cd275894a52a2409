// The SDK 3.1 Recorder hooks (docs/writing-a-plugin.md §6.5): where the engine and the task-events
// sink call them, and that the fanout calls them only on recorders built against 3.1 or newer.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/recorder_fanout.h"
#include "engine_harness.h"

namespace leoflow::engine::testing {
namespace {

using S = TaskState;

TEST(EngineMetrics, HeartbeatIsCountedOnEveryLeaderTickAndNeverOnAFollower) {
  EngineHarness h;
  h.addDag(linear());
  h.build();
  h.engine->tick();  // not leading: a follower ticks without doing anything
  EXPECT_EQ(h.recorder.heartbeats(), 0);
  h.lead();
  h.engine->tick(Engine::TickKind::kQuick);
  h.engine->tick(Engine::TickKind::kFull);
  EXPECT_EQ(h.recorder.heartbeats(), 2);
}

TEST(EngineMetrics, TaskStartsAndFinishesAreCountedPerAttemptAcrossARetry) {
  EngineHarness h;
  DagSpec spec = linear();
  spec.tasks[0].retries = 1;
  h.addDag(spec);
  h.executor.setDefault(Completion::kSucceed);
  h.executor.setFor("a", Completion::kFail, 1);
  auto run = h.trigger("etl");
  h.lead();
  h.settle();
  ASSERT_EQ(h.runState(run), DagRunState::kSuccess);
  EXPECT_EQ(h.recorder.taskStarts("etl.a"), 2);
  EXPECT_EQ(h.recorder.taskFinishes("etl.a", S::kFailed), 1);
  EXPECT_EQ(h.recorder.taskFinishes("etl.a", S::kSuccess), 1);
  EXPECT_EQ(h.recorder.taskStarts("etl.b"), 1);
  EXPECT_EQ(h.recorder.taskFinishes("etl.b", S::kSuccess), 1);
  EXPECT_EQ(h.recorder.taskFinishes("etl.b", S::kFailed), 0);
  // Each accepted running report is timed to its finished report (the manual clock stands still).
  EXPECT_EQ(h.recorder.taskDurations("etl.a").size(), 2u);
  EXPECT_EQ(h.recorder.taskDurations("etl.b").size(), 1u);
}

TEST(EngineMetrics, ARefusedClaimIsNeitherAStartNorAFinish) {
  EngineHarness h;
  h.addDag(linear());
  auto run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kSuccess)}, {"b", EngineHarness::ti(S::kNone)}});
  h.build();
  // An attempt that is not queued: the store refuses the claim and the late finished report.
  ExecutionRef e{{run, "a", 1}, "exec-1"};
  EXPECT_FALSE(h.events->running(e).isOk());
  EXPECT_FALSE(h.events->finished(e, TaskOutcome{true, 0, ""}).isOk());
  EXPECT_EQ(h.recorder.taskStarts("etl.a"), 0);
  EXPECT_EQ(h.recorder.taskFinishes("etl.a", S::kSuccess), 0);
}

TEST(EngineMetrics, ARunsEndCarriesItsStateDurationAndTenant) {
  EngineHarness h;
  h.addDag(linear());
  auto run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kSuccess)}, {"b", EngineHarness::ti(S::kNone)}});
  h.clock.advance(42s);
  h.executor.setDefault(Completion::kFail);
  h.lead();
  h.settle();
  ASSERT_EQ(h.runState(run), DagRunState::kFailed);
  auto ends = h.recorder.runEnds();
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0].dag_id, "etl");
  EXPECT_EQ(ends[0].state, DagRunState::kFailed);
  EXPECT_EQ(ends[0].duration, std::chrono::microseconds(42s));
  EXPECT_FALSE(ends[0].schedule_delay.has_value());  // a manual run has no slot
  EXPECT_EQ(ends[0].tenant, "default");
}

TEST(EngineMetrics, AScheduledRunsEndCarriesItsDelayFromSlotToStart) {
  EngineHarness h;
  h.addDag(linear());
  RunRecord r;
  r.key = {"etl", "scheduled__x"};
  r.dag_version = 1;
  r.state = DagRunState::kRunning;
  r.trigger = RunTrigger::kScheduled;
  r.logical_date = h.clock.now() - 10s;  // the slot
  r.queued_at = h.clock.now() - 7s;
  r.started_at = h.clock.now() - 3s;
  r.tenant = "team-a";
  for (const char* id : {"a", "b"}) {
    TaskInstance ti = EngineHarness::ti(S::kSuccess);
    ti.task_id = id;
    r.tasks.push_back(ti);
  }
  h.store.putRun(r);
  h.lead();
  h.tick();
  auto ends = h.recorder.runEnds();
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0].state, DagRunState::kSuccess);
  EXPECT_EQ(ends[0].duration, std::chrono::microseconds(3s));
  ASSERT_TRUE(ends[0].schedule_delay.has_value());
  EXPECT_EQ(*ends[0].schedule_delay, std::chrono::microseconds(7s));
  EXPECT_EQ(ends[0].tenant, "team-a");
}

TEST(EngineMetrics, GaugesCountRunningAndQueuedAttemptsAndOpenSlotsOnFullTicksOnly) {
  EngineHarness h;
  h.addDag(dag("wide", {task("a"), task("b"), task("c")}));
  h.seedRunning("wide", {{"a", EngineHarness::ti(S::kRunning)},
                         {"b", EngineHarness::ti(S::kRunning)},
                         {"c", EngineHarness::ti(S::kQueued)}});
  h.dispatcher.setCapacity(5);
  h.lead();
  h.engine->tick(Engine::TickKind::kQuick);
  EXPECT_TRUE(h.recorder.gauges().empty());
  h.tick();  // hands c over again (a new leader's redispatch) and waits until the dispatcher has it
  h.tick();
  auto g = h.recorder.gauges();
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[1].running, 2);
  EXPECT_EQ(g[1].queued, 1);  // the fake executor never reports c
  EXPECT_EQ(g[1].open_slots, 4);  // c took one of the fake dispatcher's five
}

TEST(EngineMetrics, GaugesFollowRunsThatEndAndCountEachRunOnceAcrossALeadershipChange) {
  EngineHarness h;
  h.addDag(dag("wide", {task("a"), task("b")}));
  h.seedRunning("wide", {{"a", EngineHarness::ti(S::kRunning)}, {"b", EngineHarness::ti(S::kRunning)}}, "r1");
  const RunKey r2 =
      h.seedRunning("wide", {{"a", EngineHarness::ti(S::kRunning)}, {"b", EngineHarness::ti(S::kQueued)}}, "r2");
  h.dispatcher.setCapacity(5);
  h.lead();
  h.tick();
  h.tick();
  ASSERT_FALSE(h.recorder.gauges().empty());
  EXPECT_EQ(h.recorder.gauges().back().running, 3);
  EXPECT_EQ(h.recorder.gauges().back().queued, 1);

  // A new term reloads every run: each is counted once, not once per load.
  h.engine->stepDown("check_timeout");
  h.lead();
  h.tick();
  h.tick();
  EXPECT_EQ(h.recorder.gauges().back().running, 3);
  EXPECT_EQ(h.recorder.gauges().back().queued, 1);

  // r2 ends elsewhere (a person marks it failed): its attempts leave the gauges with it.
  RunRecord ended = std::move(h.store.loadRuns(std::span<const RunKey>(&r2, 1)).at(0)).value();
  ended.state = DagRunState::kFailed;
  for (TaskInstance& ti : ended.tasks) ti.state = S::kFailed;
  h.store.putRun(ended);
  h.wake.runChanged(r2);
  h.tick();
  EXPECT_EQ(h.recorder.gauges().back().running, 2);
  EXPECT_EQ(h.recorder.gauges().back().queued, 0);
}

// A recorder that counts which hooks reached it.
class CountingRecorder final : public Recorder {
 public:
  void recordSchedulerDecision(std::string_view) override { ++old_hooks; }
  void recordTaskTransition(TaskState, TaskState, std::string_view) override { ++old_hooks; }
  void recordUndispatchable(std::string_view) override { ++old_hooks; }
  void recordSchedulerStepDown(std::string_view) override { ++old_hooks; }
  void observeSchedulerReacquire(std::chrono::microseconds) override { ++old_hooks; }
  void observeTickDuration(std::chrono::microseconds) override { ++old_hooks; }
  void setDispatchQueueDepth(std::int64_t) override { ++old_hooks; }
  void observeDispatchLatency(std::chrono::microseconds) override { ++old_hooks; }
  void observeTaskDuration(std::string_view, std::string_view, std::string_view, std::chrono::microseconds) override {
    ++old_hooks;
  }
  void recordSchedulerHeartbeat() override { ++new_hooks; }
  void recordTaskStart(std::string_view, std::string_view) override { ++new_hooks; }
  void recordTaskFinish(std::string_view, std::string_view, TaskState) override { ++new_hooks; }
  void recordRunEnd(std::string_view, DagRunState, std::chrono::microseconds, std::optional<std::chrono::microseconds>,
                    std::string_view) override {
    ++new_hooks;
  }
  void setTaskGauges(std::int64_t, std::int64_t, std::int64_t) override { throw std::runtime_error("broken"); }
  void recordSchedulerDecisions(std::string_view, std::int64_t count) override { batched += count; }
  int old_hooks = 0;
  int new_hooks = 0;
  std::int64_t batched = 0;
};

TEST(EngineMetrics, TheFanoutCallsSdk31HooksOnlyOnRecordersOf31OrNewer) {
  CountingRecorder v30, v31;
  RecorderFanout fanout;
  fanout.add(v30, 0);  // built against SDK 3.0: its vtable ends before the 3.1 hooks
  fanout.add(v31, 1);
  fanout.recordSchedulerDecision("scheduled");
  fanout.observeTaskDuration("d", "t", "python", std::chrono::microseconds(5));
  fanout.recordSchedulerHeartbeat();
  fanout.recordTaskStart("d", "t");
  fanout.recordTaskFinish("d", "t", TaskState::kSuccess);
  fanout.recordRunEnd("d", DagRunState::kSuccess, std::chrono::microseconds(1), std::nullopt, "default");
  EXPECT_NO_THROW(fanout.setTaskGauges(1, 2, 3));  // a throwing recorder loses its sample, nothing else
  EXPECT_EQ(v30.old_hooks, 2);
  EXPECT_EQ(v31.old_hooks, 2);
  EXPECT_EQ(v30.new_hooks, 0);
  EXPECT_EQ(v31.new_hooks, 4);
}

TEST(EngineMetrics, DecisionsCountedTogetherReachA36RecorderInOneCallAndAnOlderOneAsSingleDecisions) {
  CountingRecorder v35, v36;
  RecorderFanout fanout;
  fanout.add(v35, 5);  // its vtable ends before recordSchedulerDecisions: it must not be called
  fanout.add(v36, 6);
  fanout.recordSchedulerDecisions("backpressure", 3);
  EXPECT_EQ(v35.old_hooks, 3);
  EXPECT_EQ(v35.batched, 0);
  EXPECT_EQ(v36.old_hooks, 0);
  EXPECT_EQ(v36.batched, 3);
}

}  // namespace
}  // namespace leoflow::engine::testing
