// The reapers through the engine: BEHAVIOUR §9.6 scenarios 52-68 and §10 items 1, 5, 6, 7.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine_harness.h"

namespace leoflow::engine::testing {
namespace {

using ::testing::HasSubstr;
using S = TaskState;

TaskInstance withHeartbeat(TaskState s, Timestamp beat, int try_number = 1, int max_tries = 1) {
  TaskInstance t = EngineHarness::ti(s, try_number, max_tries);
  t.started_at = beat;
  t.last_heartbeat_at = beat;
  return t;
}

TaskInstance queuedAt(Timestamp at) {
  TaskInstance t = EngineHarness::ti(S::kQueued);
  t.queued_at = at;
  return t;
}

TEST(EngineReapers, ReapsOnlyRunsQuietPastTheOrphanThreshold) {  // 25, 52
  EngineHarness h;
  h.addDag(dag("etl", {task("a")}));
  TaskInstance stale = EngineHarness::ti(S::kSuccess);
  stale.started_at = kNoon - 1h;
  stale.ended_at = kNoon - 1h;
  TaskInstance fresh = stale;
  fresh.started_at = fresh.ended_at = kNoon - 30s;
  // A run whose tasks all finished but that nobody finalized is what the reaper exists for; a
  // settled run would be finalized by the planner, so make it unplannable: a task of another name.
  RunRecord r1;
  r1.key = {"etl", "stuck"};
  r1.dag_version = 1;
  r1.state = DagRunState::kRunning;
  r1.queued_at = r1.started_at = kNoon - 2h;
  stale.task_id = "zz";
  r1.tasks = {stale};
  h.store.putRun(r1);
  RunRecord r2 = r1;
  r2.key = {"etl", "fresh"};
  r2.queued_at = r2.started_at = kNoon - 40s;
  fresh.task_id = "zz";
  r2.tasks = {fresh};
  h.store.putRun(r2);
  h.lead();
  h.tick();
  EXPECT_EQ(h.runState({"etl", "stuck"}), DagRunState::kFailed);
  EXPECT_THAT(h.store.run({"etl", "stuck"})->note, HasSubstr("orphaned"));
  EXPECT_EQ(h.runState({"etl", "fresh"}), DagRunState::kRunning);
  EXPECT_EQ(h.recorder.decisions("orphan_reaped"), 1);
}

TEST(EngineReapers, ARunWaitingOnALongRetryDelayIsNotOrphaned) {  // §10 item 5
  EngineHarness h;
  DagSpec d = linear();
  d.tasks[0].retries = 1;
  d.tasks[0].retry_delay_seconds = 600;  // past the 300 s orphan threshold
  h.addDag(d);
  TaskInstance a = EngineHarness::ti(S::kUpForRetry, 1, 2);
  a.started_at = kNoon - 6min;
  a.ended_at = kNoon - 5min;
  h.seedRunning("etl", {{"a", a}, {"b", EngineHarness::ti(S::kNone)}});
  h.lead();
  h.tick();
  EXPECT_EQ(h.runState({"etl", "r1"}), DagRunState::kRunning);
  EXPECT_EQ(h.state({"etl", "r1"}, "a"), S::kUpForRetry);
  h.clock.advance(5min);
  h.tick();
  EXPECT_EQ(h.state({"etl", "r1"}, "a"), S::kNone);
  EXPECT_EQ(h.runState({"etl", "r1"}), DagRunState::kRunning);
}

TEST(EngineReapers, FailsAttemptsWhoseAgentWentSilent) {  // 57, 58
  EngineHarness h;
  DagSpec d = dag("etl", {task("fresh"), task("stale")});
  d.tasks[1].retries = 1;
  h.addDag(d);
  auto run = h.seedRunning("etl", {{"fresh", withHeartbeat(S::kRunning, kNoon - 1s)},
                                    {"stale", withHeartbeat(S::kRunning, kNoon - 5min, 1, 2)}});
  h.lead();
  h.engine->tick();
  EXPECT_EQ(h.state(run, "fresh"), S::kRunning);
  auto stale = h.store.task(run, "stale");
  EXPECT_EQ(stale->state, S::kFailed);
  EXPECT_THAT(stale->note, HasSubstr("agent_lost"));
  EXPECT_EQ(h.recorder.decisions("agent_lost"), 1);
  h.engine->tick();
  EXPECT_EQ(h.state(run, "stale"), S::kUpForRetry);  // the lost attempt consumed a try, as any failure
}

TEST(EngineReapers, ARetriedAttemptIsNotKilledByItsPredecessorsHeartbeat) {  // §10 items 1, 6
  EngineHarness h;
  DagSpec d = dag("etl", {task("a")});
  d.tasks[0].retries = 1;
  h.addDag(d);
  auto run = h.seedRunning("etl", {{"a", withHeartbeat(S::kFailed, kNoon - 10min, 1, 2)}});
  auto a = *h.store.task(run, "a");
  a.queued_at = kNoon - 10min;
  h.store.putTask(run, a);
  h.lead();
  h.tick();  // failed → up_for_retry
  h.tick();  // → none, try 2, every per-attempt stamp cleared
  h.tick();  // → scheduled
  h.tick();  // → queued, handed over
  auto now = *h.store.task(run, "a");
  EXPECT_EQ(now.try_number, 2);
  EXPECT_EQ(now.state, S::kQueued);
  EXPECT_FALSE(now.last_heartbeat_at.has_value());
  EXPECT_EQ(now.queued_at, h.clock.now());
  ASSERT_TRUE(h.events->running({{run, "a", 2}, "exec-2"}).isOk());
  h.clock.advance(10s);
  h.tick();
  EXPECT_EQ(h.state(run, "a"), S::kRunning);
  EXPECT_EQ(h.recorder.decisions("agent_lost"), 0);
  EXPECT_EQ(h.recorder.decisions("dispatch_lost"), 0);
}

TEST(EngineReapers, FailsAttemptsQueuedPastTheDispatchThresholdThatNobodyHolds) {  // 63, 64, 67
  EngineHarness h;
  h.addDag(dag("etl", {task("fresh"), task("stuck")}));
  auto run = h.seedRunning("etl", {{"fresh", queuedAt(kNoon - 10s)}, {"stuck", queuedAt(kNoon - 10min)}});
  // this leader hands them over on winning, so let the executor refuse to take them for now
  h.dispatcher.setBehaviour([](const DispatchRequest&) -> Result<DispatchOutcome> { return unavailable("busy"); });
  h.options.dispatch_retry_limit = 1;
  h.build();
  h.lead();
  h.tick();
  // a failed hand-over fails the attempt itself; the reaper is the backstop for what nobody holds
  EXPECT_EQ(h.state(run, "stuck"), S::kFailed);
}

TEST(EngineReapers, AHandedOverAttemptGetsTheDispatchThresholdAgainFromItsHandOver) {  // §10 item 7
  EngineHarness h;
  h.addDag(dag("etl", {task("slow")}));
  auto run = h.seedRunning("etl", {{"slow", queuedAt(kNoon - 10min)}});  // queued by an old leader
  h.lead();
  h.tick();  // handed over again (a pod still pulling its image, say)
  h.clock.advance(2min);
  h.tick();
  EXPECT_EQ(h.state(run, "slow"), S::kQueued);
  EXPECT_EQ(h.recorder.decisions("dispatch_lost"), 0);
  // an executor that took the attempt and never reported is still found, a threshold later
  h.clock.advance(2min);
  h.tick();
  EXPECT_EQ(h.state(run, "slow"), S::kFailed);
  EXPECT_THAT(h.store.task(run, "slow")->note, HasSubstr("dispatch_lost"));
}

TEST(EngineReapers, TheDispatchLostReaperFailsWhatNoExecutorCanTake) {
  EngineHarness h;
  h.addDag(dag("etl", {task("x", {}, "exotic")}));
  h.dispatcher_types = {"bash"};
  auto run = h.seedRunning("etl", {{"x", queuedAt(kNoon - 10min)}});
  h.lead();
  h.tick();
  auto x = h.store.task(run, "x");
  EXPECT_EQ(x->state, S::kFailed);
  EXPECT_THAT(x->note, HasSubstr("dispatch_lost"));
  EXPECT_EQ(h.recorder.decisions("dispatch_lost"), 1);
}

TEST(EngineReapers, ListErrorsAndPerCandidateErrorsAreIsolated) {  // 53, 56, 59, 60, 65, 66
  EngineHarness h;
  h.addDag(dag("etl", {task("a"), task("b")}));
  auto run = h.seedRunning("etl", {{"a", withHeartbeat(S::kRunning, kNoon - 5min)},
                                    {"b", withHeartbeat(S::kRunning, kNoon - 5min)}});
  h.lead();
  h.store.failNext(Method::kListOrphanCandidates, unavailable("redis down"));
  h.store.failNext(Method::kApplyTransitions, unavailable("redis blip"));
  auto report = h.engine->tick();
  EXPECT_EQ(h.recorder.decisions("orphan_list_error"), 1);
  EXPECT_EQ(h.recorder.decisions("agent_lost_error"), 1);
  EXPECT_EQ(h.recorder.decisions("agent_lost"), 1);  // the other candidate was still reaped
  EXPECT_GE(report.errors, 2u);
  int failed = (h.state(run, "a") == S::kFailed) + (h.state(run, "b") == S::kFailed);
  EXPECT_EQ(failed, 1);
}

TEST(EngineReapers, AThrowingReaperCallDoesNotStopTheTick) {  // 54, 55, 61, 62
  EngineHarness h;
  h.addDag(linear());
  auto run = h.trigger("etl");
  h.lead();
  h.store.throwOn(Method::kListOrphanCandidates, 1);
  h.store.throwOn(Method::kListAgentLostCandidates, 1);
  h.store.throwOn(Method::kListDispatchLostCandidates, 1);
  h.engine->tick();
  EXPECT_EQ(h.runState(run), DagRunState::kRunning);  // planning went on
  EXPECT_EQ(h.recorder.decisions("orphan_list_error"), 1);
  EXPECT_EQ(h.recorder.decisions("agent_lost_list_error"), 1);
  EXPECT_EQ(h.recorder.decisions("dispatch_lost_list_error"), 1);
  EXPECT_THAT(h.logs(), HasSubstr("plugin store-memory threw"));
}

}  // namespace
}  // namespace leoflow::engine::testing
