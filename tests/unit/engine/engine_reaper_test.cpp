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
  // The control: a run as quiet, which the planner cannot take (its row does not load) — reaped,
  // so the reaper did run and looked.
  TaskInstance done = EngineHarness::ti(S::kSuccess);
  done.started_at = kNoon - 7min;
  done.ended_at = kNoon - 6min;
  auto control = h.seedRunning("ctl", {{"zz", done}});
  RunRecord quiet = *h.store.run(control);
  quiet.queued_at = quiet.started_at = kNoon - 8min;
  h.store.putRun(quiet);
  h.store.failLoadOf(control, internalError("corrupt row"));
  h.lead();
  h.tick();
  EXPECT_EQ(h.runState(control), DagRunState::kFailed);
  EXPECT_EQ(h.runState({"etl", "r1"}), DagRunState::kRunning);
  EXPECT_EQ(h.state({"etl", "r1"}, "a"), S::kUpForRetry);
  h.clock.advance(5min);
  h.tick();
  EXPECT_EQ(h.state({"etl", "r1"}, "a"), S::kNone);
  EXPECT_EQ(h.runState({"etl", "r1"}), DagRunState::kRunning);
  EXPECT_EQ(h.recorder.decisions("orphan_reaped"), 1);  // the control alone
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
  // The controls: attempts with the same stale stamps, still current — both reapers fail them, so
  // they did run and look.
  h.dispatcher_types = {"python"};
  h.addDag(dag("ctl", {task("silent"), task("stuck", {}, "legacy")}));
  auto control = h.seedRunning("ctl", {{"silent", withHeartbeat(S::kRunning, kNoon - 10min)},
                                        {"stuck", queuedAt(kNoon - 10min)}});
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
  EXPECT_EQ(h.state(control, "silent"), S::kFailed);
  EXPECT_EQ(h.state(control, "stuck"), S::kFailed);
  EXPECT_EQ(h.recorder.decisions("agent_lost"), 1);     // the control alone
  EXPECT_EQ(h.recorder.decisions("dispatch_lost"), 1);  // the control alone
}

TEST(EngineReapers, FailsAttemptsQueuedPastTheDispatchThresholdThatNobodyHolds) {  // 63, 64, 67
  EngineHarness h;
  // Nothing this leader has can take a "legacy" task (a dispatcher that was configured away, say),
  // so nobody hands these attempts over, nobody holds them and no hand-over limit fails them: only
  // the reaper can. The fresh one is left alone; the stuck one fails as dispatch_lost, once.
  h.dispatcher_types = {"python"};
  h.addDag(dag("etl", {task("fresh", {}, "legacy"), task("stuck", {}, "legacy")}));
  auto run = h.seedRunning("etl", {{"fresh", queuedAt(kNoon - 10s)}, {"stuck", queuedAt(kNoon - 10min)}});
  h.lead();
  const TickReport report = h.tick();
  EXPECT_EQ(h.state(run, "fresh"), S::kQueued);
  auto stuck = h.store.task(run, "stuck");
  EXPECT_EQ(stuck->state, S::kFailed);
  EXPECT_EQ(stuck->note, "dispatch_lost: queued but never handed to an executor");
  EXPECT_EQ(h.recorder.decisions("dispatch_lost"), 1);
  EXPECT_EQ(h.recorder.transitions(S::kQueued, S::kFailed), 1);
  EXPECT_EQ(report.reaped, 1u);
  EXPECT_EQ(h.dispatcher.calls(), 0);  // nothing was handed over: the reaper did it all
  h.clock.advance(2min);
  h.tick();
  EXPECT_EQ(h.state(run, "fresh"), S::kQueued);  // 2m10s queued: still under the 3 min threshold
  h.clock.advance(1min);
  h.tick();
  EXPECT_EQ(h.state(run, "fresh"), S::kFailed);
  EXPECT_EQ(h.recorder.decisions("dispatch_lost"), 2);
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
  // the note says who took it, and when: the operator knows where to look
  EXPECT_EQ(h.store.task(run, "slow")->note,
            "dispatch_lost: handed to dispatcher-fake at 2026-05-28T12:00:00Z, never reported running");
  EXPECT_EQ(h.dispatcher.accepted().size(), 1u);
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
  EXPECT_EQ(x->note, "dispatch_lost: queued but never handed to an executor");
  EXPECT_EQ(h.recorder.decisions("dispatch_lost"), 1);
}

TEST(EngineReapers, TheDispatchLostReaperLooksPastAFullBatchOfSkippedAttempts) {  // issue 9 §2
  EngineHarness h;
  h.options.reaper_batch_size = 2;
  h.dispatcher_types = {"python"};
  // Four attempts an old leader queued 10 min ago: this leader hands them over again on winning,
  // so they are skipped (held, or handed over just now). Behind them, one nothing can take, stale
  // and held by nobody; behind that, a fresh one. The list call has a limit and no cursor: the
  // reaper must ask again, for more, to reach the stale one.
  h.addDag(dag("etl", {task("h1"), task("h2"), task("h3"), task("h4"), task("x", {}, "legacy"),
                       task("y", {}, "legacy")}));
  auto run = h.seedRunning("etl", {{"h1", queuedAt(kNoon - 10min)},
                                    {"h2", queuedAt(kNoon - 10min)},
                                    {"h3", queuedAt(kNoon - 10min)},
                                    {"h4", queuedAt(kNoon - 10min)},
                                    {"x", queuedAt(kNoon - 9min)},
                                    {"y", queuedAt(kNoon - 1min)}});
  h.lead();
  h.tick();
  EXPECT_EQ(h.state(run, "x"), S::kFailed);
  EXPECT_EQ(h.store.task(run, "x")->note, "dispatch_lost: queued but never handed to an executor");
  for (const char* id : {"h1", "h2", "h3", "h4", "y"}) EXPECT_EQ(h.state(run, id), S::kQueued) << id;
  EXPECT_EQ(h.recorder.decisions("dispatch_lost"), 1);
  EXPECT_EQ(h.store.calls(Method::kListDispatchLostCandidates), 3);  // limits 2, 4, 8
}

TEST(EngineReapers, TheOrphanReaperLooksPastAFullBatchOfRunsThePlannerHolds) {  // issue 9 §2
  EngineHarness h;
  h.options.reaper_batch_size = 1;
  // Two runs of a paused DAG, quiet for 2 h: this leader holds them (loaded, materialized), so the
  // orphan reaper skips them. Behind them, a run quiet for 1 h that the planner cannot take.
  h.addDag(dag("held", {task("a")}));
  ASSERT_TRUE(h.store.setPaused("held", true).isOk());
  for (const char* id : {"r1", "r2"}) {
    RunKey k = h.seedRunning("held", {{"a", EngineHarness::ti(S::kNone)}}, id);
    RunRecord r = *h.store.run(k);
    r.queued_at = r.started_at = kNoon - 2h;
    h.store.putRun(r);
  }
  TaskInstance done = EngineHarness::ti(S::kSuccess);
  done.started_at = done.ended_at = kNoon - 1h;
  RunKey stuck = h.seedRunning("ctl", {{"zz", done}});
  RunRecord r = *h.store.run(stuck);
  r.queued_at = r.started_at = kNoon - 1h;
  h.store.putRun(r);
  h.store.failLoadOf(stuck, internalError("corrupt row"));
  h.lead();
  h.tick();
  EXPECT_EQ(h.runState(stuck), DagRunState::kFailed);
  EXPECT_EQ(h.runState({"held", "r1"}), DagRunState::kRunning);
  EXPECT_EQ(h.runState({"held", "r2"}), DagRunState::kRunning);
  EXPECT_EQ(h.store.calls(Method::kListOrphanCandidates), 3);  // limits 1, 2, 4
}

TEST(EngineReapers, AfterAStoreOutageRunningAttemptsGetAFreshHeartbeatThreshold) {  // issue 9 §2
  EngineHarness h;
  h.options.agent_lost_threshold = 6s;
  h.addDag(dag("etl", {task("beating"), task("dead")}));
  auto run = h.seedRunning("etl", {{"beating", withHeartbeat(S::kRunning, kNoon)},
                                    {"dead", withHeartbeat(S::kRunning, kNoon)}});
  h.lead();
  h.tick();
  const Method all[] = {Method::kListActiveRunKeys,         Method::kLoadRuns,
                        Method::kListDags,                Method::kScheduledDags,
                        Method::kApplyTransitions,        Method::kRecordLiveness,
                        Method::kListOrphanCandidates,    Method::kListAgentLostCandidates,
                        Method::kListDispatchLostCandidates, Method::kReportHeartbeat};
  // A 20 s outage: no heartbeat can land meanwhile.
  for (Method m : all) h.store.failAlways(m, unavailable("redis down"));
  for (int i = 0; i < 20; ++i) {
    h.clock.advance(1s);
    h.tick();
  }
  for (Method m : all) h.store.clearFault(m);
  h.clock.advance(1s);  // noon + 21 s: both heartbeats are 21 s old, the threshold is 6 s
  h.tick();
  EXPECT_EQ(h.state(run, "beating"), S::kRunning);
  EXPECT_EQ(h.state(run, "dead"), S::kRunning);
  EXPECT_EQ(h.recorder.decisions("agent_lost"), 0);
  EXPECT_THAT(h.logs(), HasSubstr("agent-lost reaper paused"));
  // one executor's heartbeat lands again; the other's never does
  h.clock.advance(1s);
  auto beating = *h.store.task(run, "beating");
  beating.last_heartbeat_at = h.clock.now();
  h.store.putTask(run, beating);
  h.clock.advance(4s);  // noon + 26 s: the last failed call was at noon + 20 s
  h.tick();
  EXPECT_EQ(h.state(run, "dead"), S::kFailed);
  EXPECT_EQ(h.state(run, "beating"), S::kRunning);
  EXPECT_EQ(h.recorder.decisions("agent_lost"), 1);
  const std::string logs = h.logs();
  std::size_t paused = 0;
  for (auto pos = logs.find("agent-lost reaper paused"); pos != std::string::npos;
       pos = logs.find("agent-lost reaper paused", pos + 1)) {
    ++paused;
  }
  EXPECT_EQ(paused, 1u);  // said once, not every tick of the pause
}

TEST(EngineReapers, AnExecutorsReportTheStoreCouldNotTakePausesTheAgentLostReaper) {
  // After a store restart the engine's own calls can succeed while an executor's report fails on a
  // stale connection; the executor retries it with a back-off. The attempt's last heartbeat is
  // older than the threshold by then: reaping it would fail a task that finished.
  EngineHarness h;
  h.options.agent_lost_threshold = 6s;
  h.addDag(dag("etl", {task("a")}));
  auto run = h.trigger("etl");
  h.lead();
  for (int i = 0; i < 5 && h.state(run, "a") != S::kQueued; ++i) h.tick();
  ASSERT_EQ(h.state(run, "a"), S::kQueued);
  const ExecutionRef e{{run, "a", 1}, "exec-1"};
  ASSERT_TRUE(h.events->running(e).isOk());
  h.clock.advance(5s);
  h.store.failNext(Method::kReportFinished, unavailable("server closed the connection unexpectedly"));
  EXPECT_EQ(h.events->finished(e, TaskOutcome{true, 0, ""}).code(), StatusCode::kUnavailable);
  h.clock.advance(3s);  // the heartbeat is 8 s old; the report failed 3 s ago
  h.tick();
  EXPECT_EQ(h.state(run, "a"), S::kRunning);
  EXPECT_EQ(h.recorder.decisions("agent_lost"), 0);
  EXPECT_THAT(h.logs(), HasSubstr("agent-lost reaper paused"));
  h.clock.advance(2s);  // the executor's retry lands
  ASSERT_TRUE(h.events->finished(e, TaskOutcome{true, 0, ""}).isOk());
  h.tick();
  EXPECT_EQ(h.state(run, "a"), S::kSuccess);
  EXPECT_EQ(h.recorder.decisions("agent_lost"), 0);
}

TEST(EngineReapers, AnAttemptThatStaysSilentIsReapedOneThresholdAfterTheLastFailedReport) {
  EngineHarness h;
  h.options.agent_lost_threshold = 6s;
  h.addDag(dag("etl", {task("a")}));
  auto run = h.seedRunning("etl", {{"a", withHeartbeat(S::kRunning, kNoon)}});
  h.lead();
  h.tick();
  h.clock.advance(3s);  // another attempt's heartbeat finds the store unreachable
  h.store.failNext(Method::kReportHeartbeat, unavailable("redis down"));
  EXPECT_EQ(h.events->heartbeat({{run, "a", 1}, "exec-other"}).code(), StatusCode::kUnavailable);
  h.clock.advance(4s);  // a's heartbeat is 7 s old, but the pause runs until noon + 9 s
  h.tick();
  EXPECT_EQ(h.state(run, "a"), S::kRunning);
  h.clock.advance(2100ms);
  h.tick();
  EXPECT_EQ(h.state(run, "a"), S::kFailed);
  EXPECT_EQ(h.recorder.decisions("agent_lost"), 1);
}

TEST(EngineReapers, AReapedOrphanRunLeavesNoHandOversBehind) {  // issue 9 §4: caches that only grow
  EngineHarness h;
  h.addDag(dag("etl", {task("a")}));
  auto run = h.trigger("etl");
  h.lead();
  for (int i = 0; i < 5 && h.state(run, "a") != S::kQueued; ++i) h.tick();
  ASSERT_EQ(h.state(run, "a"), S::kQueued);
  ASSERT_EQ(h.engine->handedOverCount(), 1u);
  // The run's row goes bad (the planner lets go of it), then its attempt ends: nobody finalizes
  // the run, the orphan reaper does.
  // Reported by another replica's executor: the leader hears of it on the feed and reads it back.
  h.store.failLoadOf(run, internalError("corrupt row"));
  const ExecutionRef e{{run, "a", 1}, "exec-1"};
  ASSERT_TRUE(h.store.reportRunning(e, h.clock.now()).isOk());
  ASSERT_TRUE(h.store.reportFinished(e, TaskOutcome{true, 0, ""}, h.clock.now()).isOk());
  h.wake.taskChanged(run, "a");
  h.tick();
  EXPECT_EQ(h.runState(run), DagRunState::kRunning);
  h.clock.advance(6min);
  h.tick();
  EXPECT_EQ(h.runState(run), DagRunState::kFailed);
  EXPECT_EQ(h.recorder.decisions("orphan_reaped"), 1);
  EXPECT_EQ(h.engine->handedOverCount(), 0u);
}

TEST(EngineReapers, BothAttemptReapersFailAnAttemptTheSameWay) {  // issue 9 §2: one failAttempt
  EngineHarness h;
  h.addDag(dag("etl", {task("silent"), task("taken")}));
  auto run = h.seedRunning("etl", {{"silent", withHeartbeat(S::kRunning, kNoon - 5min)},
                                    {"taken", queuedAt(kNoon - 10s)}});
  h.lead();
  TickReport report = h.tick();  // "taken" is handed over again on winning, and forgotten
  EXPECT_EQ(report.reaped, 1u);
  EXPECT_EQ(h.store.task(run, "silent")->note, "agent_lost: no heartbeat within the threshold");
  EXPECT_EQ(h.recorder.decisions("agent_lost"), 1);
  EXPECT_EQ(h.recorder.transitions(S::kRunning, S::kFailed), 1);
  EXPECT_EQ(h.engine->handedOverCount(), 1u);
  h.clock.advance(3min);
  report = h.tick();
  EXPECT_EQ(report.reaped, 1u);
  EXPECT_EQ(h.state(run, "taken"), S::kFailed);
  EXPECT_EQ(h.recorder.decisions("dispatch_lost"), 1);
  EXPECT_EQ(h.recorder.transitions(S::kQueued, S::kFailed), 1);
  EXPECT_EQ(h.engine->handedOverCount(), 0u);  // a failed attempt's hand-over is forgotten with it
}

TEST(EngineReapers, AFailedReaperWriteIsCountedPerReaperAndTriedAgain) {  // 60, 66
  EngineHarness h;
  h.dispatcher_types = {"python"};
  h.addDag(dag("etl", {task("silent"), task("stuck", {}, "legacy")}));
  auto run = h.seedRunning("etl", {{"silent", withHeartbeat(S::kRunning, kNoon - 5min)},
                                    {"stuck", queuedAt(kNoon - 10min)}});
  h.lead();
  h.store.failNext(Method::kApplyTransitions, internalError("bad reply"), 2);
  TickReport report = h.tick();
  EXPECT_EQ(report.reaped, 0u);
  EXPECT_GE(report.errors, 2u);
  EXPECT_EQ(h.recorder.decisions("agent_lost_error"), 1);
  EXPECT_EQ(h.recorder.decisions("dispatch_lost_error"), 1);
  EXPECT_EQ(h.state(run, "silent"), S::kRunning);
  EXPECT_EQ(h.state(run, "stuck"), S::kQueued);
  report = h.tick();
  EXPECT_EQ(report.reaped, 2u);
  EXPECT_EQ(h.state(run, "silent"), S::kFailed);
  EXPECT_EQ(h.state(run, "stuck"), S::kFailed);
}

TEST(EngineReapers, ListErrorsAndPerCandidateErrorsAreIsolated) {  // 53, 56, 59, 60, 65, 66
  EngineHarness h;
  h.addDag(dag("etl", {task("a"), task("b")}));
  auto run = h.seedRunning("etl", {{"a", withHeartbeat(S::kRunning, kNoon - 5min)},
                                    {"b", withHeartbeat(S::kRunning, kNoon - 5min)}});
  h.lead();
  // (not kUnavailable: an unreachable store pauses the agent-lost reaper, see below)
  h.store.failNext(Method::kListOrphanCandidates, internalError("bad reply"));
  h.store.failNext(Method::kApplyTransitions, internalError("bad reply"));
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
