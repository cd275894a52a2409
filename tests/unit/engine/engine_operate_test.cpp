// What the engine does with a person's commands (docs/architecture.md §8.14): backfill runs, runs
// that a clear or mark brings back to running, and the stop watcher that stops attempts which
// stopped being current.
#include <atomic>
#include <mutex>

#include <gmock/gmock.h>

#include "engine/stop_watcher.h"
#include "engine/wake_signal.h"
#include "engine_harness.h"
#include "schedule/iso_time.h"

namespace leoflow::engine::testing {
namespace {

using S = TaskState;

RunKey createRun(EngineHarness& h, const std::string& run_id, RunTrigger trigger, Timestamp logical) {
  NewRun run{{"etl", run_id}, 1, trigger, logical, "", h.clock.now(), "default"};
  Status s = h.store.createRun(std::nullopt, run);
  EXPECT_TRUE(s.isOk()) << s.toString();
  return run.key;
}

TEST(EngineOperate, BackfillRunsRunWhileTheDagIsPausedAndOthersWait) {
  EngineHarness h;
  h.executor.setDefault(Completion::kSucceed);
  h.addDag(linear());
  ASSERT_TRUE(h.store.setPaused("etl", true).isOk());
  const RunKey manual = createRun(h, "manual", RunTrigger::kManual, kNoon);
  const RunKey backfill = createRun(h, "backfill__2026-05-28T10:00:00Z", RunTrigger::kBackfill, kNoon - 2h);
  h.lead();
  h.settle();
  EXPECT_EQ(h.runState(backfill), DagRunState::kSuccess);
  EXPECT_EQ(h.runState(manual), DagRunState::kQueued);
}

TEST(EngineOperate, BackfillRunsStartInLogicalDateOrderWithinMaxActiveRuns) {
  EngineHarness h;
  DagSpec d = linear();
  d.max_active_runs = 2;
  h.addDag(d);
  // Created newest first: the engine still starts the oldest two.
  for (int hour : {4, 3, 2, 1, 0}) {
    createRun(h, "backfill__" + std::to_string(hour), RunTrigger::kBackfill, kNoon - std::chrono::hours(5 - hour));
  }
  h.lead();
  h.tick();
  std::vector<std::string> running;
  for (const RunRecord& r : h.store.runs()) {
    if (r.state == DagRunState::kRunning) running.push_back(r.key.run_id);
  }
  EXPECT_THAT(running, ::testing::UnorderedElementsAre("backfill__0", "backfill__1"));
}

TEST(EngineOperate, TheSchedulersCatchUpSkipsASlotABackfillHolds) {
  EngineHarness h;
  DagSpec d = dag("etl", {task("a")}, "@hourly");
  d.catchup = true;
  h.addDag(d);
  // The last scheduled run was at 09:00; a backfill holds 10:00.
  RunRecord last;
  last.key = {"etl", "scheduled__2026-05-28T09:00:00Z"};
  last.dag_version = 1;
  last.state = DagRunState::kSuccess;
  last.trigger = RunTrigger::kScheduled;
  last.logical_date = kNoon - 3h;
  h.store.putRun(last);
  createRun(h, "backfill__2026-05-28T10:00:00Z", RunTrigger::kBackfill, kNoon - 2h);
  h.lead();
  h.engine->tick();
  std::vector<std::string> scheduled;
  for (const RunRecord& r : h.store.runs()) {
    if (r.trigger == RunTrigger::kScheduled && r.state != DagRunState::kSuccess) scheduled.push_back(r.key.run_id);
  }
  EXPECT_THAT(scheduled, ::testing::UnorderedElementsAre("scheduled__2026-05-28T11:00:00Z",
                                                         "scheduled__2026-05-28T12:00:00Z"));
}

TEST(EngineOperate, AClearedFinishedRunIsPlannedAgainAndEndsSuccess) {
  EngineHarness h;
  h.executor.setDefault(Completion::kFail);
  h.addDag(linear());
  const RunKey run = h.trigger("etl");
  h.lead();
  h.settle();
  ASSERT_EQ(h.runState(run), DagRunState::kFailed);
  ASSERT_EQ(h.state(run, "b"), S::kUpstreamFailed);
  // The cause is fixed; a person clears the failed task and what is downstream of it.
  h.executor.setDefault(Completion::kSucceed);
  ClearRequest clear{run, {{"a", 0}, {"b", 0}}, false, "cleared by test", h.clock.now()};
  auto outcome = h.store.clearTasks(clear);
  ASSERT_TRUE(outcome.isOk()) << outcome.status().toString();
  h.settle();
  EXPECT_EQ(h.runState(run), DagRunState::kSuccess);
  EXPECT_EQ(h.store.task(run, "a")->try_number, 2);
  EXPECT_EQ(h.store.task(run, "b")->try_number, 1);  // it never started: it keeps its try
}

TEST(EngineOperate, AMarkedTaskLetsItsDownstreamRun) {
  EngineHarness h;
  h.executor.setDefault(Completion::kSucceed);
  h.addDag(linear());
  const RunKey run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kFailed)}, {"b", EngineHarness::ti(S::kNone)}});
  MarkTaskRequest mark{run, "a", S::kSuccess, "marked success by test", h.clock.now()};
  ASSERT_TRUE(h.store.markTask(mark).isOk());
  h.lead();
  h.settle();
  EXPECT_EQ(h.state(run, "b"), S::kSuccess);
  EXPECT_EQ(h.runState(run), DagRunState::kSuccess);
}

TEST(EngineOperate, ADagDeletedAndRegisteredAgainIsPlannedByItsNewSpecThoughItsVersionNumberRepeats) {
  EngineHarness h;
  h.executor.setDefault(Completion::kSucceed);
  ASSERT_TRUE(h.store.subscribe(h.wake).isOk());  // as Engine::run does: the feed names the DAG
  ASSERT_EQ(h.addDag(dag("etl", {task("a")})), 1);
  const RunKey first = h.trigger("etl", "r1");
  h.lead();
  h.settle();
  ASSERT_EQ(h.runState(first), DagRunState::kSuccess);
  ASSERT_TRUE(h.store.deleteDag("etl").isOk());
  ASSERT_EQ(h.addDag(dag("etl", {task("x"), task("y", {"x"})})), 1);  // version 1 again, another spec
  const RunKey again = h.trigger("etl", "r1");
  h.store.drainChanges();  // the feed's DAG change reaches the engine before its next tick plans the run
  h.settle();
  EXPECT_EQ(h.runState(again), DagRunState::kSuccess) << h.logs();
  EXPECT_EQ(h.state(again, "y"), S::kSuccess);
  h.store.unsubscribe();
}

// A fake executor for the stop watcher: holds what it is told, records what it was asked to stop.
struct HeldAttempts {
  std::mutex mutex;
  std::vector<AttemptRef> held;
  std::vector<AttemptRef> stopped;
  StoppableExecutor executor() {
    return {"fake",
            [this] {
              std::lock_guard lock(mutex);
              return held;
            },
            [this](const AttemptRef& a) {
              std::lock_guard lock(mutex);
              stopped.push_back(a);
              std::erase(held, a);
              return Status{};
            }};
  }
};

TEST(StopWatcher, StopsOnlyTheAttemptsThatStoppedBeingCurrent) {
  EngineHarness h;
  h.addDag(dag("etl", {task("a"), task("b"), task("c"), task("d")}));
  const RunKey run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kRunning)},
                                           {"b", EngineHarness::ti(S::kRunning)},
                                           {"c", EngineHarness::ti(S::kQueued)},
                                           {"d", EngineHarness::ti(S::kRunning)}});
  HeldAttempts fake;
  fake.held = {{run, "a", 1}, {run, "b", 1}, {run, "c", 1}, {run, "d", 1}};
  StopWatcher watcher(h.store, {fake.executor()}, h.logger);
  EXPECT_EQ(watcher.checkOnce({}, true), 0u);  // all current

  ASSERT_TRUE(h.store.markTask({run, "a", S::kSuccess, "marked", h.clock.now()}).isOk());
  ASSERT_TRUE(h.store.clearTasks({run, {{"b", 1}}, false, "cleared", h.clock.now()}).isOk());
  EXPECT_EQ(watcher.checkOnce({run}, false), 2u);
  EXPECT_THAT(fake.stopped, ::testing::UnorderedElementsAre(AttemptRef{run, "a", 1}, AttemptRef{run, "b", 1}));

  // Only the runs named are checked, unless everything is; of a run named by its tasks' changes,
  // only the attempts of those tasks.
  ASSERT_TRUE(h.store.cancelRun({run, "cancelled by test", h.clock.now()}).isOk());
  EXPECT_EQ(watcher.checkOnce({RunKey{"etl", "other"}}, false), 0u);
  h.store.resetCalls();
  EXPECT_EQ(watcher.checkOnce({}, {{run, {"a", "b"}}}, false), 0u) << "no attempt of a or b is held any more";
  EXPECT_EQ(h.store.calls(Method::kLoadTaskInstances), 0) << "nothing held was named: nothing to read";
  EXPECT_EQ(watcher.checkOnce({}, {{run, {"c"}}}, false), 1u);
  EXPECT_THAT(fake.stopped, ::testing::Contains(AttemptRef{run, "c", 1}));
  EXPECT_EQ(watcher.checkOnce({}, true), 1u);
  EXPECT_EQ(fake.stopped.size(), 4u);
}

TEST(StopWatcher, AttemptsOfADeletedDagAreStoppedAndAnUnreachableStoreStopsNothing) {
  EngineHarness h;
  h.addDag(dag("etl", {task("a")}));
  const RunKey run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kRunning)}});
  HeldAttempts fake;
  fake.held = {{run, "a", 1}};
  StopWatcher watcher(h.store, {fake.executor()}, h.logger);
  h.store.failNext(Method::kLoadRuns, unavailable("injected"));
  EXPECT_EQ(watcher.checkOnce({}, true), 0u);
  ASSERT_TRUE(h.store.cancelRun({run, "cancelled", h.clock.now()}).isOk());
  fake.held = {{run, "a", 1}};  // a stop that did not take yet: the attempt is still held
  ASSERT_TRUE(h.store.deleteDag("etl").isOk());
  EXPECT_EQ(watcher.checkOnce({}, true), 1u);
}

// What the engine's wake signal passes on to the stop watcher: every change but the echoes of
// this process's own executor reports (nothing to stop there, and each cost the watcher a read).
TEST(StopWatcher, HearsEveryChangeButTheEchoesOfThisProcesssOwnReports) {
  struct Heard final : ChangeSink {
    std::vector<std::string> tasks;
    void onChange(const Change& c) override { tasks.push_back(c.task_id); }
    void onResync() override {}
  } heard;
  WakeSignal wake;
  wake.setListener(&heard);
  wake.leadAs(7);
  const RunKey run{"etl", "r1"};
  auto change = [&](const std::string& task, const std::string& execution, Term term) {
    Change c;
    c.kind = Change::Kind::kTask;
    c.run = run;
    c.task_id = task;
    c.execution_id = execution;
    c.leader_term = term;
    return c;
  };
  wake.expectOwnReport("here-1");
  wake.onChange(change("claimed_here", "here-1", 0));       // this process's claim: not passed on
  wake.onChange(change("claimed_elsewhere", "there-1", 0));  // another process's report
  wake.onChange(change("reaped", "", 7));                    // the leader's own write: a reaper's, maybe
  wake.onChange(change("marked", "", 0));                    // a person's command
  wake.onChange(change("claimed_here", "here-1", 0));        // an echo no longer expected
  wake.setListener(nullptr);
  EXPECT_EQ(heard.tasks, (std::vector<std::string>{"claimed_elsewhere", "reaped", "marked", "claimed_here"}));
}

TEST(StopWatcher, TheChangeFeedWakesItWithinMilliseconds) {
  EngineHarness h;
  h.addDag(dag("etl", {task("a")}));
  const RunKey run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kRunning)}});
  HeldAttempts fake;
  fake.held = {{run, "a", 1}};
  // A sweep interval far beyond the test: only the feed can wake it in time.
  StopWatcher watcher(h.store, {fake.executor()}, h.logger, std::chrono::hours(1));
  ASSERT_TRUE(h.store.subscribe(watcher).isOk());
  watcher.start();
  ASSERT_TRUE(h.store.cancelRun({run, "cancelled", h.clock.now()}).isOk());
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  for (;;) {
    {
      std::lock_guard lock(fake.mutex);
      if (!fake.stopped.empty()) break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the watcher never stopped the cancelled attempt";
    std::this_thread::sleep_for(5ms);
  }
  h.store.unsubscribe();
  watcher.stop();
}

}  // namespace
}  // namespace leoflow::engine::testing
