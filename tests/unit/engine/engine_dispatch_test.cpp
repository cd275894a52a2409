// Dispatch: routing, the order of ARCHITECTURE §8.8, backpressure, retries with back-off,
// undispatchable tasks (BEHAVIOUR §9.5 as §8.8 amends it; §10 items 4, 9, 11, 12).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine_harness.h"

namespace leoflow::engine::testing {
namespace {

using ::testing::HasSubstr;
using S = TaskState;

RunKey scheduledRun(EngineHarness& h, const DagSpec& d) {
  h.addDag(d);
  std::map<std::string, TaskInstance> tis;
  for (const TaskSpec& t : d.tasks) tis[t.task_id] = EngineHarness::ti(S::kNone, 1, t.maxTries());
  tis[d.tasks[0].task_id] = EngineHarness::ti(S::kScheduled, 1, d.tasks[0].maxTries());
  return h.seedRunning(d.dag_id, tis);
}

// A DAG of independent tasks and a running run of it, each instance in the state given.
struct WideRun {
  std::vector<TaskSpec> tasks;
  std::map<std::string, TaskInstance> tis;
  void add(TaskSpec spec, TaskState state) {
    tis[spec.task_id] = EngineHarness::ti(state);
    tasks.push_back(std::move(spec));
  }
  RunKey seed(EngineHarness& h, const std::string& dag_id) {
    h.addDag(dag(dag_id, tasks));
    return h.seedRunning(dag_id, tis);
  }
};

TEST(EngineDispatch, WritesQueuedBeforeHandingOver) {  // 47, 48; §10 item 4
  EngineHarness h;
  auto run = scheduledRun(h, linear());
  std::optional<TaskState> state_at_dispatch;
  h.dispatcher.setBehaviour([&](const DispatchRequest& r) -> Result<DispatchOutcome> {
    state_at_dispatch = h.store.task(r.attempt.run, r.attempt.task_id)->state;
    return DispatchOutcome::kStarted;
  });
  h.build(true, true);
  h.lead();
  h.tick();
  EXPECT_EQ(state_at_dispatch, S::kQueued);
  ASSERT_EQ(h.dispatcher.dispatched().size(), 1u);
  const DispatchRequest req = h.dispatcher.dispatched()[0];
  EXPECT_EQ(req.attempt, (AttemptRef{run, "a", 1}));
  EXPECT_EQ(req.task.task_id, "a");
  EXPECT_EQ(h.inline_runner.calls(), 0);
  EXPECT_EQ(h.state(run, "a"), S::kQueued);
  EXPECT_EQ(h.recorder.dispatchLatencies(), 1);
}

TEST(EngineDispatch, InlineHttpTasksGoToTheInlineRunner) {  // 44
  EngineHarness h;
  auto run = scheduledRun(h, dag("hook", {task("call", {}, "http_api")}));
  h.build(true, true);
  h.lead();
  h.tick();
  ASSERT_EQ(h.inline_runner.calls(), 1);
  EXPECT_EQ(h.inline_runner.started()[0].attempt.task_id, "call");
  EXPECT_EQ(h.dispatcher.calls(), 0);
  EXPECT_EQ(h.state(run, "call"), S::kQueued);
}

// SDK 2.2: a runner that says it is full is not offered the task at all — it stays scheduled,
// rather than cycling scheduled → queued → scheduled at full speed.
TEST(EngineDispatch, AFullInlineRunnerLeavesTasksScheduled) {
  EngineHarness h;
  auto run = scheduledRun(h, dag("hook", {task("call", {}, "http_api")}));
  h.inline_runner.setCapacity(0);
  h.build(true, true);
  h.lead();
  for (int i = 0; i < 3; ++i) h.tick();
  EXPECT_EQ(h.inline_runner.calls(), 0);
  EXPECT_EQ(h.state(run, "call"), S::kScheduled);
  EXPECT_FALSE(h.store.task(run, "call")->queued_at.has_value());
  h.inline_runner.setCapacity(1);
  h.tick();
  EXPECT_EQ(h.inline_runner.calls(), 1);
  EXPECT_EQ(h.state(run, "call"), S::kQueued);
}

TEST(EngineDispatch, AnInlineRunnerAtCapacityReturnsTheTaskToScheduled) {  // 45
  EngineHarness h;
  auto run = scheduledRun(h, dag("hook", {task("call", {}, "http_api")}));
  h.inline_runner.setBehaviour([](const DispatchRequest&) -> Result<bool> { return false; });
  h.build(true, true);
  h.lead();
  h.tick();
  EXPECT_EQ(h.inline_runner.calls(), 1);
  EXPECT_EQ(h.state(run, "call"), S::kScheduled);
  EXPECT_FALSE(h.store.task(run, "call")->queued_at.has_value());
  h.inline_runner.setBehaviour(nullptr);
  h.tick();  // tried again on the next tick
  EXPECT_EQ(h.inline_runner.calls(), 2);
  EXPECT_EQ(h.state(run, "call"), S::kQueued);
}

TEST(EngineDispatch, AnInlineStartErrorFailsTheAttemptAfterRetries) {  // 46
  EngineHarness h;
  auto run = scheduledRun(h, dag("hook", {task("call", {}, "http_api")}));
  h.inline_runner.setBehaviour([](const DispatchRequest&) -> Result<bool> { return unavailable("boom"); });
  h.build(true, true);
  h.lead();
  h.tick();
  EXPECT_EQ(h.inline_runner.calls(), 3);  // dispatch_retry_limit
  EXPECT_EQ(h.state(run, "call"), S::kFailed);
  EXPECT_THAT(h.store.task(run, "call")->note, HasSubstr("dispatch_failed: boom (after 3 attempts)"));
}

TEST(EngineDispatch, FailingDispatchIsRetriedWithBackOffThenFailsWithANote) {  // 49; §10 item 11
  EngineHarness h;
  DagSpec d = linear();
  d.tasks[0].retries = 1;
  auto run = scheduledRun(h, d);
  h.dispatcher.setBehaviour([](const DispatchRequest&) -> Result<DispatchOutcome> { return unavailable("kube down"); });
  h.build();
  h.lead();
  h.tick();
  EXPECT_EQ(h.dispatcher.calls(), 3);
  auto a = h.store.task(run, "a");
  EXPECT_EQ(a->state, S::kFailed);
  EXPECT_THAT(a->note, HasSubstr("kube down"));
  EXPECT_EQ(a->max_tries, 2);  // an ordinary failure: the retry still applies
  h.tick();
  EXPECT_EQ(h.state(run, "a"), S::kUpForRetry);
}

TEST(EngineDispatch, ATransientDispatchFailureRecovers) {
  EngineHarness h;
  auto run = scheduledRun(h, linear());
  std::atomic<int> calls{0};
  h.dispatcher.setBehaviour([&](const DispatchRequest&) -> Result<DispatchOutcome> {
    if (++calls < 3) return unavailable("flaky");
    return DispatchOutcome::kStarted;
  });
  h.build();
  h.lead();
  h.tick();
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(h.state(run, "a"), S::kQueued);
}

TEST(EngineDispatch, ATaskTheExecutorRejectsFailsForGoodWithoutConsumingRetries) {
  EngineHarness h;
  DagSpec d = linear();
  d.tasks[0].retries = 3;
  auto run = scheduledRun(h, d);
  h.dispatcher.setBehaviour(
      [](const DispatchRequest&) -> Result<DispatchOutcome> { return invalidArgument("no such image"); });
  h.build();
  h.lead();
  h.tick();
  EXPECT_EQ(h.dispatcher.calls(), 1);
  auto a = h.store.task(run, "a");
  EXPECT_EQ(a->state, S::kFailed);
  EXPECT_EQ(a->max_tries, 1);
  h.tick();
  EXPECT_EQ(h.state(run, "a"), S::kFailed);
  EXPECT_EQ(h.state(run, "b"), S::kUpstreamFailed);
}

TEST(EngineDispatch, ATaskNoExecutorTakesFailsAtOnceTerminally) {  // 37, 50; §10 item 9
  EngineHarness h;
  DagSpec d = linear();
  d.tasks[0].retries = 3;
  auto run = scheduledRun(h, d);
  h.build(/*with_dispatcher=*/false);
  h.lead();
  h.tick();
  auto a = h.store.task(run, "a");
  EXPECT_EQ(a->state, S::kFailed);
  EXPECT_THAT(a->note, HasSubstr("no executor available for a \"python\" task"));
  EXPECT_EQ(a->max_tries, 1);
  EXPECT_EQ(h.recorder.undispatchable("no_executor"), 1);
  EXPECT_EQ(h.recorder.transitions(S::kScheduled, S::kFailed), 1);
  EXPECT_EQ(h.recorder.transitions(S::kScheduled, S::kQueued), 0);
  h.tick();
  EXPECT_EQ(h.runState(run), DagRunState::kFailed);
}

TEST(EngineDispatch, RoutesByTaskTypeAndFailsTypesNoDispatcherTakes) {
  EngineHarness h;
  h.dispatcher_types = {"bash"};
  auto run = scheduledRun(h, dag("mixed", {task("sh", {}, "bash"), task("py", {}, "python")}));
  h.store.putTask(run, [] {
    TaskInstance t = EngineHarness::ti(S::kScheduled);
    t.task_id = "py";
    return t;
  }());
  h.build();
  h.lead();
  h.tick();
  EXPECT_EQ(h.state(run, "sh"), S::kQueued);
  EXPECT_EQ(h.state(run, "py"), S::kFailed);
  EXPECT_EQ(h.dispatcher.calls(), 1);
}

TEST(EngineDispatch, BackpressureKeepsTasksScheduledBeyondTheExecutorsCapacity) {  // §8.8
  EngineHarness h;
  WideRun wide;
  for (int i = 0; i < 5; ++i) wide.add(task("t" + std::to_string(i)), S::kScheduled);
  auto run = wide.seed(h, "wide");
  h.dispatcher.setCapacity(2);
  h.build();
  h.lead();
  auto report = h.tick();
  EXPECT_EQ(report.dispatched, 2u);
  EXPECT_EQ(report.backpressured, 3u);
  int queued = 0, scheduled = 0;
  for (int i = 0; i < 5; ++i) {
    const S s = h.state(run, "t" + std::to_string(i));
    queued += s == S::kQueued;
    scheduled += s == S::kScheduled;
  }
  EXPECT_EQ(queued, 2);
  EXPECT_EQ(scheduled, 3);
  EXPECT_EQ(h.recorder.decisions("backpressure"), 3);
  EXPECT_EQ(h.recorder.decisionCalls("backpressure"), 1);  // counted together: one metric sample, not three
  h.dispatcher.release(3);
  report = h.tick();
  EXPECT_EQ(report.dispatched, 3u);
  EXPECT_EQ(h.dispatcher.accepted().size(), 5u);
}

TEST(EngineDispatch, TasksBeyondAFullExecutorStillWaitCountedWhileReadyOnesAreScheduled) {
  // Once every executor is full, the rest of a wide run's scheduled tasks are left waiting without
  // being visited one by one; each is still counted, and the run's other moves still happen.
  EngineHarness h;
  WideRun wide;
  for (int i = 0; i < 200; ++i) wide.add(task("t" + std::to_string(i)), S::kScheduled);
  wide.add(task("ready"), S::kNone);
  auto run = wide.seed(h, "wide");
  h.dispatcher.setCapacity(3);
  h.build();
  h.lead();
  auto report = h.tick();
  EXPECT_EQ(report.dispatched, 3u);
  EXPECT_EQ(report.backpressured, 197u);
  EXPECT_EQ(h.recorder.decisions("backpressure"), 197);
  EXPECT_EQ(h.state(run, "ready"), S::kScheduled);  // ready now, no room: waits in scheduled
  // The oldest come first: the first three in the DAG's order were handed over.
  EXPECT_EQ(h.state(run, "t0"), S::kQueued);
  EXPECT_EQ(h.state(run, "t2"), S::kQueued);
  EXPECT_EQ(h.state(run, "t3"), S::kScheduled);
  h.dispatcher.release(2);
  report = h.tick();
  EXPECT_EQ(report.dispatched, 2u);
  EXPECT_EQ(report.backpressured, 196u);  // 195 of the 200 and `ready`
  EXPECT_EQ(h.recorder.decisions("backpressure"), 197 + 196);
  EXPECT_EQ(h.recorder.decisionCalls("backpressure"), 2);  // one per tick, whatever the run's width
  EXPECT_EQ(h.state(run, "t4"), S::kQueued);
  EXPECT_EQ(h.state(run, "t5"), S::kScheduled);
}

TEST(EngineDispatch, AFullExecutorDoesNotHideAnotherExecutorsRoomFromTheSameRun) {
  // A run whose tasks go to two executors: its first tasks in the DAG's order wait for the full
  // one; the task after them still goes to the other, on the same tick.
  EngineHarness h;
  h.dispatcher_types = {"bash"};
  WideRun mixed;
  for (int i = 0; i < 100; ++i) mixed.add(task("sh" + std::to_string(i), {}, "bash"), S::kScheduled);
  mixed.add(task("call", {}, "http_api"), S::kScheduled);
  auto run = mixed.seed(h, "mixed");
  h.dispatcher.setCapacity(1);
  h.build(true, true);
  h.lead();
  auto report = h.tick();
  EXPECT_EQ(report.dispatched, 2u);
  EXPECT_EQ(report.backpressured, 99u);
  EXPECT_EQ(h.state(run, "sh0"), S::kQueued);
  EXPECT_EQ(h.state(run, "sh1"), S::kScheduled);
  EXPECT_EQ(h.state(run, "call"), S::kQueued);
  EXPECT_EQ(h.inline_runner.calls(), 1);
}

TEST(EngineDispatch, AWideRunsMovesAreWrittenASliceATickHandOversFirst) {
  // 25 children ready at once, 10 moves a tick: each tick writes the next ten in the DAG's order;
  // the executor's room is filled on the first (none → scheduled → queued in one batch).
  EngineHarness h;
  h.options.run_moves_per_tick = 10;
  WideRun wide;
  wide.add(task("root"), S::kSuccess);
  for (int i = 0; i < 25; ++i) wide.add(task("c" + std::to_string(100 + i), {"root"}), S::kNone);
  auto run = wide.seed(h, "wide");
  h.dispatcher.setCapacity(3);
  h.build();
  h.lead();
  auto count = [&](S state) {
    int n = 0;
    for (int i = 0; i < 25; ++i) n += h.state(run, "c" + std::to_string(100 + i)) == state;
    return n;
  };
  auto report = h.tick();
  EXPECT_EQ(report.runs_sliced, 1u);
  EXPECT_EQ(report.dispatched, 3u);
  EXPECT_EQ(count(S::kQueued), 3);
  EXPECT_EQ(count(S::kScheduled), 7);
  EXPECT_EQ(count(S::kNone), 15);
  EXPECT_EQ(h.state(run, "c109"), S::kScheduled);
  EXPECT_EQ(h.state(run, "c110"), S::kNone);
  EXPECT_TRUE(report.progressed());  // so the loop ticks again at once
  report = h.tick();
  EXPECT_EQ(report.runs_sliced, 1u);
  EXPECT_EQ(count(S::kNone), 5);
  EXPECT_EQ(report.backpressured, 7u);  // the executor is still full: those scheduled before wait
  report = h.tick();
  EXPECT_EQ(report.runs_sliced, 0u);
  EXPECT_EQ(count(S::kNone), 0);
  EXPECT_EQ(count(S::kScheduled), 22);
}

TEST(EngineDispatch, AFullExecutorDoesNotDelayFailingATaskNoExecutorTakes) {  // §10 item 9
  EngineHarness h;
  h.dispatcher_types = {"bash"};
  WideRun mixed;
  for (int i = 0; i < 5; ++i) mixed.add(task("sh" + std::to_string(i), {}, "bash"), S::kScheduled);
  mixed.add(task("py", {}, "python"), S::kScheduled);  // after the tasks the executor has no room for
  auto run = mixed.seed(h, "mixed");
  h.dispatcher.setCapacity(1);
  h.build();
  h.lead();
  auto report = h.tick();
  EXPECT_EQ(report.dispatched, 1u);
  EXPECT_EQ(report.backpressured, 4u);
  // Refused one by one here (not every task has an executor), still counted in one recorder call.
  EXPECT_EQ(h.recorder.decisions("backpressure"), 4);
  EXPECT_EQ(h.recorder.decisionCalls("backpressure"), 1);
  EXPECT_EQ(h.state(run, "py"), S::kFailed);
  EXPECT_EQ(h.recorder.undispatchable("no_executor"), 1);
}

TEST(EngineDispatch, TheDispatchQueueBoundsHowManyAreQueuedAtOnce) {
  EngineHarness h;
  h.options.dispatch_queue_size = 2;
  h.options.dispatch_pool_size = 1;
  WideRun wide;
  for (int i = 0; i < 4; ++i) wide.add(task("t" + std::to_string(i)), S::kScheduled);
  wide.seed(h, "wide");
  h.build();
  h.lead();
  auto report = h.engine->tick();
  EXPECT_EQ(report.dispatched, 2u);
  EXPECT_EQ(report.backpressured, 2u);
}

TEST(EngineDispatch, AThrowingDispatcherFailsOnlyItsAttempt) {  // 71
  EngineHarness h;
  auto run = scheduledRun(h, linear());
  h.addDag(linear("other"));
  auto good = h.trigger("other", "r2");
  h.dispatcher.setBehaviour([](const DispatchRequest& r) -> Result<DispatchOutcome> {
    if (r.attempt.run.dag_id == "etl") throw std::runtime_error("segfault-ish");
    return DispatchOutcome::kStarted;
  });
  h.build();
  h.lead();
  h.tick();
  h.tick();
  h.tick();
  EXPECT_EQ(h.state(run, "a"), S::kFailed);
  EXPECT_THAT(h.store.task(run, "a")->note, HasSubstr("plugin dispatcher-fake threw: segfault-ish"));
  EXPECT_EQ(h.state(good, "a"), S::kQueued);
}

TEST(EngineDispatch, ANewLeaderHandsEveryQueuedAttemptOverAgainIdempotently) {  // §8.8
  EngineHarness h;
  h.addDag(linear());
  auto run = h.seedRunning("etl", {{"a", EngineHarness::ti(S::kQueued)}, {"b", EngineHarness::ti(S::kNone)}});
  // the executor already runs this attempt (a previous leader handed it over)
  ASSERT_EQ(*h.dispatcher.dispatch(DispatchRequest{{run, "a", 1}, task("a"), kNoon, ""}), DispatchOutcome::kStarted);
  h.build();
  h.lead();
  h.tick();
  auto calls = h.dispatcher.dispatched();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1].attempt, (AttemptRef{run, "a", 1}));
  // The executor's answer for an attempt it already runs (kAlreadyRunning: dispatch is idempotent per
  // attempt, which the dispatcher contract suite checks of each dispatcher, and the store's claim
  // makes a second execution run nothing, ARCHITECTURE §8.13) counts as handed over: the attempt
  // stays queued, nothing fails, nothing is retried.
  EXPECT_EQ(h.state(run, "a"), S::kQueued);
  EXPECT_EQ(h.recorder.decisions("dispatch_failed"), 0);
  h.tick();
  EXPECT_EQ(h.dispatcher.dispatched().size(), 2u);  // once per leadership, not every tick
}

}  // namespace
}  // namespace leoflow::engine::testing
