// What keeps the leader's cost per change independent of the size of a run and of the number of
// runs (issue 14): a change that names its task refreshes that instance alone, a tick where nothing
// changed plans nothing, runs are read in chunks, and the periodic resync is spread over ticks.
#include <algorithm>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/guarded.h"
#include "engine_harness.h"

namespace leoflow::engine::testing {
namespace {

using leoflow::testing::Method;
using ::testing::HasSubstr;

/// Every change a store delivered, in order.
struct RecordedChanges final : ChangeSink {
  std::vector<Change> changes;
  void onChange(const Change& c) override { changes.push_back(c); }
  void onResync() override {}
};

DagSpec chain(const std::string& id, int n) {
  std::vector<TaskSpec> tasks;
  for (int i = 0; i < n; ++i) {
    tasks.push_back(task("t" + std::to_string(i), i == 0 ? std::vector<std::string>{}
                                                          : std::vector<std::string>{"t" + std::to_string(i - 1)}));
  }
  return dag(id, std::move(tasks));
}

// Issue 14 §1: the reports of this process's own executions (the engine's TaskEventsSink) are mirrored
// into the cache as the store accepted them, and their echoes on the feed (which name the execution,
// store.h Change::execution_id) are skipped: a chain's step reads nothing back.
TEST(EngineScale, ThisProcesssExecutorReportsAreMirroredNotReadBack) {
  EngineHarness h;
  h.addDag(chain("long", 60));
  h.executor.setDefault(Completion::kSucceed);
  ASSERT_TRUE(h.store.subscribe(h.wake).isOk());  // as Engine::run does
  auto run = h.trigger("long");
  h.lead();
  h.store.resetCalls();
  const std::uint64_t skipped_before = h.wake.ownEchoesSkipped();
  h.settle(1000);
  ASSERT_EQ(h.runState(run), DagRunState::kSuccess);
  // Read whole once, queued: its start and its end are mirrored (their echoes name the leader's
  // term), and the 120 reports of its tasks are too.
  EXPECT_EQ(h.store.calls(Method::kLoadRuns), 1);
  EXPECT_EQ(h.store.calls(Method::kLoadTaskInstances), 0) << "a report of its own was read back";
  // 60 claims and 60 finished reports, and the leader's own 120 transitions (none -> scheduled ->
  // queued for each task in one batch), all skipped.
  EXPECT_GE(h.wake.ownEchoesSkipped() - skipped_before, 240u);
  h.store.unsubscribe();
}

// Reports of executions this process did not make (another replica's executor, written straight to
// the store) are heard on the feed and read back, one instance at a time, never the whole run.
TEST(EngineScale, OtherExecutorsReportsRefreshTheirTaskInsteadOfReloadingTheRun) {
  EngineHarness h;
  h.addDag(dag("pair", {task("a"), task("b", {"a"})}));
  h.executor.setDefault(Completion::kNone);  // handed over, never reported by this process
  ASSERT_TRUE(h.store.subscribe(h.wake).isOk());
  auto run = h.trigger("pair");
  h.lead();
  h.settle();
  ASSERT_EQ(h.state(run, "a"), TaskState::kQueued);
  h.store.resetCalls();
  const ExecutionRef e{{run, "a", 1}, "elsewhere-1"};
  ASSERT_TRUE(h.store.reportRunning(e, h.clock.now()).isOk());
  ASSERT_TRUE(h.store.reportFinished(e, TaskOutcome{true, 0, ""}, h.clock.now()).isOk());
  h.store.drainChanges();
  h.tick(Engine::TickKind::kQuick);
  EXPECT_GE(h.store.calls(Method::kLoadTaskInstances), 1);
  EXPECT_EQ(h.store.calls(Method::kLoadRuns), 0);
  EXPECT_EQ(h.state(run, "b"), TaskState::kQueued) << "a's end, read back, started b";
  h.store.unsubscribe();
}

// An accepted report the cache cannot mirror (its copy of the instance is not where the report
// started: here the claim reached the store while the leader was not listening) is read back instead;
// and a person's change to a task this process reported on is never taken for a report's echo.
TEST(EngineScale, AnOwnReportTheCacheCannotMirrorIsReadBack) {
  EngineHarness h;
  h.addDag(dag("pair", {task("a"), task("b", {"a"})}));
  h.executor.setDefault(Completion::kNone);
  auto run = h.trigger("pair");
  h.lead();
  h.settle();
  ASSERT_EQ(h.state(run, "a"), TaskState::kQueued);
  const ExecutionRef e{{run, "a", 1}, "here-1"};
  ASSERT_TRUE(h.store.reportRunning(e, h.clock.now()).isOk());  // unheard: the cache still says queued
  ASSERT_TRUE(h.store.subscribe(h.wake).isOk());
  h.store.resetCalls();
  ASSERT_TRUE(h.events->finished(e, TaskOutcome{false, 3, "exit code 3"}).isOk());
  h.store.drainChanges();
  h.tick(Engine::TickKind::kQuick);
  EXPECT_GE(h.store.calls(Method::kLoadTaskInstances), 1) << "the cache's queued copy was overwritten unread";
  EXPECT_EQ(h.state(run, "b"), TaskState::kUpstreamFailed);
  h.store.unsubscribe();
}

// A person's change to a task this process reported on names no execution: it is read back even
// while an echo of that execution is still expected (a repeated claim, accepted without a change,
// publishes none, so its expectation is left over).
TEST(EngineScale, APersonsChangeIsNeverTakenForAnOwnReportsEcho) {
  EngineHarness h;
  h.addDag(dag("pair", {task("a"), task("b", {"a"})}));
  h.executor.setDefault(Completion::kNone);
  ASSERT_TRUE(h.store.subscribe(h.wake).isOk());
  auto run = h.trigger("pair");
  h.lead();
  h.settle();
  const ExecutionRef e{{run, "a", 1}, "here-1"};
  ASSERT_TRUE(h.events->running(e).isOk());
  h.store.drainChanges();
  h.tick(Engine::TickKind::kQuick);
  ASSERT_EQ(h.state(run, "a"), TaskState::kRunning);
  h.wake.expectOwnReport(e.execution_id);  // the repeated claim's leftover
  h.store.resetCalls();
  ASSERT_TRUE(h.store.markTask(MarkTaskRequest{run, "a", TaskState::kSuccess, "marked by a test", h.clock.now()}).isOk());
  h.store.drainChanges();
  h.tick(Engine::TickKind::kQuick);
  EXPECT_GE(h.store.calls(Method::kLoadTaskInstances) + h.store.calls(Method::kLoadRuns), 1);
  EXPECT_EQ(h.state(run, "b"), TaskState::kQueued) << "the mark was not heard";
  h.store.unsubscribe();
}

// Issue 14 §1: the leader's applied transitions are mirrored into its cache; their echoes through
// the change feed (which name the term that wrote them, store.h Change::leader_term) are not read.
TEST(EngineScale, TheLeadersOwnTransitionsAreNotReadBackFromTheFeed) {
  EngineHarness h;
  h.addDag(dag("wide", {task("a"), task("b"), task("c")}));
  h.executor.setDefault(Completion::kNone);  // handed over, never reported: only the leader writes
  const RunKey run = h.seedRunning("wide", {{"a", EngineHarness::ti(TaskState::kNone)},
                                            {"b", EngineHarness::ti(TaskState::kNone)},
                                            {"c", EngineHarness::ti(TaskState::kNone)}});
  ASSERT_TRUE(h.store.subscribe(h.wake).isOk());  // as Engine::run does
  h.lead();
  h.tick();  // none -> scheduled -> queued for all three; the feed's echoes are delivered
  ASSERT_EQ(h.state(run, "c"), TaskState::kQueued);
  h.store.resetCalls();
  const TickReport next = h.tick(Engine::TickKind::kQuick);
  EXPECT_EQ(h.store.calls(Method::kLoadTaskInstances) + h.store.calls(Method::kLoadRuns), 0)
      << "its own six writes were read back";
  EXPECT_EQ(next.runs_loaded, 0u);
  EXPECT_EQ(h.wake.ownEchoesSkipped(), 6u);
  h.store.unsubscribe();
}

// Issue 14 §1: the leader's run start is mirrored into its cache, not read back — a 20,000-task run's
// instances were written and then read whole again — and so is its end; their echoes on the feed name
// the term that wrote them (SDK 3.7). The mirrored run plans at once, on the next tick.
TEST(EngineScale, TheLeadersOwnRunStartAndEndAreNotReadBack) {
  EngineHarness h;
  std::vector<TaskSpec> tasks{task("root")};
  for (int i = 0; i < 300; ++i) tasks.push_back(task("leaf" + std::to_string(i), {"root"}));
  h.addDag(dag("wide", std::move(tasks)));
  h.executor.setDefault(Completion::kSucceed);
  ASSERT_TRUE(h.store.subscribe(h.wake).isOk());  // as Engine::run does
  const RunKey run = h.trigger("wide");
  h.lead();
  h.tick();  // read queued, started
  ASSERT_EQ(h.runState(run), DagRunState::kRunning);
  EXPECT_EQ(h.state(run, "leaf299"), TaskState::kNone);
  h.store.resetCalls();
  const std::uint64_t skipped_before = h.wake.ownEchoesSkipped();
  const TickReport next = h.tick(Engine::TickKind::kQuick);
  EXPECT_EQ(h.store.calls(Method::kLoadRuns) + h.store.calls(Method::kLoadTaskInstances), 0)
      << "the run was read back after its start";
  EXPECT_EQ(next.runs_loaded, 0u);
  EXPECT_NE(h.state(run, "root"), TaskState::kNone) << "the mirrored run was not planned";
  EXPECT_GE(h.wake.ownEchoesSkipped() - skipped_before, 1u) << "the start's echo";
  h.settle(2000);
  ASSERT_EQ(h.runState(run), DagRunState::kSuccess);
  EXPECT_EQ(h.state(run, "leaf299"), TaskState::kSuccess);
  EXPECT_EQ(h.store.calls(Method::kLoadRuns), 0) << "the run was read back at some point of its life";
  h.store.unsubscribe();
}

// A store before SDK 3.7 made a run change's term mean nothing: GuardedStore passes its kRun changes on
// without one (the leader reads the run back), and a 3.7 store's as they are.
TEST(EngineScale, ARunChangesTermIsReadOnlyFromAStoreOfSdk37) {
  EngineHarness h;
  h.addDag(dag("wide", {task("a")}));
  for (const std::uint32_t minor : {6u, 7u}) {
    const RunKey run = h.trigger("wide", "r" + std::to_string(minor));
    GuardedStore guarded(h.store, "memory", minor);
    h.store.drainChanges();
    RecordedChanges recorded;
    ASSERT_TRUE(guarded.subscribe(recorded).isOk());
    const Term term = *h.store.claimTerm("test");
    ASSERT_TRUE(guarded.materializeRun(term, run, std::vector{NewTaskInstance{"a", 1}}, h.clock.now()).isOk());
    h.store.drainChanges();
    guarded.unsubscribe();
    ASSERT_EQ(recorded.changes.size(), 1u);
    EXPECT_EQ(recorded.changes[0].kind, Change::Kind::kRun);
    EXPECT_EQ(recorded.changes[0].leader_term, minor == 6 ? 0 : term) << "SDK 3." << minor;
  }
}

// A store built before SDK 3.4 makes its Change without leader_term: the host must not read past
// what such a store wrote, so GuardedStore passes its changes on with leader_term 0 (read them all).
TEST(EngineScale, ChangesOfAStoreBeforeSdk34NeverNameATerm) {
  EngineHarness h;
  h.addDag(dag("wide", {task("a")}));
  const RunKey run = h.seedRunning("wide", {{"a", EngineHarness::ti(TaskState::kNone)}});
  for (const std::uint32_t minor : {3u, 4u}) {
    GuardedStore guarded(h.store, "memory", minor);
    RecordedChanges sink;
    ASSERT_TRUE(guarded.subscribe(sink).isOk());
    const Term term = *h.store.claimTerm("test");
    const TaskState from = minor == 3 ? TaskState::kNone : TaskState::kScheduled;
    const TaskState to = minor == 3 ? TaskState::kScheduled : TaskState::kQueued;
    const std::vector<TaskTransitionWrite> w{{"a", from, 1, to, "", false}};
    ASSERT_TRUE(guarded.applyTransitions(term, run, w, h.clock.now()).isOk());
    h.store.drainChanges();
    guarded.unsubscribe();
    ASSERT_EQ(sink.changes.size(), 1u);
    EXPECT_EQ(sink.changes[0].task_id, "a");
    EXPECT_EQ(sink.changes[0].leader_term, minor == 3 ? 0 : term) << "SDK 3." << minor;
  }
}

// A store built before SDK 3.5 makes its Change without execution_id: GuardedStore passes its changes
// on without one (every report is then read back), and keeps a 3.4 store's leader_term.
TEST(EngineScale, ChangesOfAStoreBeforeSdk35NeverNameAnExecution) {
  EngineHarness h;
  h.addDag(dag("wide", {task("a"), task("b")}));
  const RunKey run = h.seedRunning("wide", {{"a", EngineHarness::ti(TaskState::kQueued)},
                                            {"b", EngineHarness::ti(TaskState::kQueued)}});
  for (const std::uint32_t minor : {4u, 5u}) {
    GuardedStore guarded(h.store, "memory", minor);
    RecordedChanges sink;
    ASSERT_TRUE(guarded.subscribe(sink).isOk());
    const std::string task_id = minor == 4 ? "a" : "b";
    const ExecutionRef e{{run, task_id, 1}, "exec-" + task_id};
    ASSERT_TRUE(guarded.reportRunning(e, h.clock.now()).isOk());
    h.store.drainChanges();
    guarded.unsubscribe();
    ASSERT_EQ(sink.changes.size(), 1u);
    EXPECT_EQ(sink.changes[0].task_id, task_id);
    EXPECT_EQ(sink.changes[0].execution_id, minor == 4 ? "" : e.execution_id) << "SDK 3." << minor;
  }
}

// cancelRuns (SDK 3.8) is not in an older store's vtable: GuardedStore cancels its runs one
// cancelRun each, and hands a 3.8 store the whole slice. Either way each run gets its own answer.
TEST(EngineScale, ManyRunsAreCancelledInOneCallOnlyOnAStoreOfSdk38) {
  EngineHarness h;
  h.addDag(dag("wide", {task("a")}));
  for (const std::uint32_t minor : {7u, 8u}) {
    const std::string m = std::to_string(minor);
    const std::vector<CancelRunRequest> requests{{h.trigger("wide", "x" + m), "cancelled by t", h.clock.now()},
                                                 {RunKey{"wide", "ghost"}, "cancelled by t", h.clock.now()},
                                                 {h.trigger("wide", "y" + m), "cancelled by t", h.clock.now()}};
    GuardedStore guarded(h.store, "memory", minor);
    h.store.resetCalls();
    const auto out = guarded.cancelRuns(requests);
    EXPECT_EQ(h.store.calls(Method::kCancelRuns), minor == 7 ? 0 : 1) << "SDK 3." << minor;
    EXPECT_EQ(h.store.calls(Method::kCancelRun), 3) << "SDK 3." << minor;
    ASSERT_EQ(out.size(), 3u);
    EXPECT_TRUE(out[0].isOk()) << out[0].status().toString();
    EXPECT_EQ(out[1].status().code(), StatusCode::kNotFound);
    EXPECT_TRUE(out[2].isOk()) << out[2].status().toString();
    EXPECT_EQ(h.runState(requests[2].run), DagRunState::kFailed);
  }
  // A store that throws fails what the throw took down: one run of the loop, every run of one call.
  for (const std::uint32_t minor : {7u, 8u}) {
    const std::string m = std::to_string(minor);
    const std::vector<CancelRunRequest> requests{{h.trigger("wide", "p" + m), "cancelled by t", h.clock.now()},
                                                 {h.trigger("wide", "q" + m), "cancelled by t", h.clock.now()}};
    GuardedStore guarded(h.store, "memory", minor);
    h.store.throwOn(minor == 7 ? Method::kCancelRun : Method::kCancelRuns, 1);
    const auto out = guarded.cancelRuns(requests);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_THAT(out[0].status().message(), HasSubstr("plugin memory threw")) << "SDK 3." << minor;
    if (minor == 7) {
      EXPECT_TRUE(out[1].isOk()) << out[1].status().toString();
    } else {
      EXPECT_THAT(out[1].status().message(), HasSubstr("plugin memory threw"));
    }
  }
}

// clearRuns (SDK 3.9), likewise: one clearTasks each on an older store, the whole slice on a 3.9 one.
TEST(EngineScale, ManyRunsAreClearedInOneCallOnlyOnAStoreOfSdk39) {
  EngineHarness h;
  h.addDag(dag("wide", {task("a")}));
  for (const std::uint32_t minor : {8u, 9u}) {
    const std::string m = std::to_string(minor);
    const RunKey x = h.trigger("wide", "x" + m);
    const RunKey y = h.trigger("wide", "y" + m);
    h.lead();
    h.settle();  // a done: each run has an instance to clear
    const std::vector<ClearRequest> requests{{x, {{"a", 0}}, false, "cleared by t", h.clock.now()},
                                             {RunKey{"wide", "ghost"}, {{"a", 0}}, false, "cleared by t", h.clock.now()},
                                             {y, {{"a", 0}}, false, "cleared by t", h.clock.now()}};
    GuardedStore guarded(h.store, "memory", minor);
    h.store.resetCalls();
    const auto out = guarded.clearRuns(requests);
    EXPECT_EQ(h.store.calls(Method::kClearRuns), minor == 8 ? 0 : 1) << "SDK 3." << minor;
    EXPECT_EQ(h.store.calls(Method::kClearTasks), 3) << "SDK 3." << minor;
    ASSERT_EQ(out.size(), 3u);
    EXPECT_TRUE(out[0].isOk()) << out[0].status().toString();
    EXPECT_EQ(out[1].status().code(), StatusCode::kNotFound);
    EXPECT_TRUE(out[2].isOk()) << out[2].status().toString();
    EXPECT_EQ(h.state(y, "a"), TaskState::kNone);

    // A store that throws fails what the throw took down: one run of the loop, every run of one call.
    h.store.throwOn(minor == 8 ? Method::kClearTasks : Method::kClearRuns, 1);
    const std::vector<ClearRequest> two{requests[0], requests[2]};
    const auto thrown = guarded.clearRuns(two);
    ASSERT_EQ(thrown.size(), 2u);
    EXPECT_THAT(thrown[0].status().message(), HasSubstr("plugin memory threw")) << "SDK 3." << minor;
    if (minor == 8) {
      EXPECT_TRUE(thrown[1].isOk()) << thrown[1].status().toString();
    } else {
      EXPECT_THAT(thrown[1].status().message(), HasSubstr("plugin memory threw"));
    }
  }
}

// subscribeRuns (SDK 3.11): a store of 3.11 delivers the run changes alone; an older one has no such
// call, so it gets subscribe() and the sink hears everything (and ignores what it does not want).
TEST(EngineScale, ARunsOnlyFeedIsAskedForOnlyOfAStoreOfSdk311) {
  EngineHarness h;  // not built: its store is the writer, nobody subscribed to it
  h.addDag(dag("wide", {task("a")}));
  MemoryStore& writer = h.store;
  for (const std::uint32_t minor : {10u, 11u}) {
    auto handle = writer.openHandle();
    GuardedStore guarded(*handle, "memory", minor);
    RecordedChanges sink;
    ASSERT_TRUE(guarded.subscribeRuns(sink).isOk());
    EXPECT_EQ(handle->calls(Method::kSubscribeRuns), minor == 10 ? 0 : 1) << "SDK 3." << minor;
    EXPECT_EQ(handle->calls(Method::kSubscribe), minor == 10 ? 1 : 0) << "SDK 3." << minor;
    ASSERT_TRUE(writer.setPaused("wide", minor == 10).isOk());
    const NewRun run{{"wide", "r" + std::to_string(minor)}, 1, RunTrigger::kManual, kNoon, "", kNoon};
    ASSERT_TRUE(writer.createRun(std::nullopt, run).isOk());
    writer.drainChanges();
    guarded.unsubscribe();
    std::vector<Change::Kind> seen;
    for (const Change& c : sink.changes) seen.push_back(c.kind);
    const std::vector<Change::Kind> expected =
        minor == 10 ? std::vector{Change::Kind::kDag, Change::Kind::kRun} : std::vector{Change::Kind::kRun};
    EXPECT_EQ(seen, expected) << "SDK 3." << minor;
  }
}

// createRuns (SDK 3.10), likewise: one createRun each on an older store, the whole slice on a 3.10 one.
TEST(EngineScale, ManyRunsAreCreatedInOneCallOnlyOnAStoreOfSdk310) {
  EngineHarness h;
  h.addDag(dag("wide", {task("a")}));
  for (const std::uint32_t minor : {9u, 10u}) {
    const std::string m = std::to_string(minor);
    const std::vector<NewRun> runs{
        {{"wide", "x" + m}, 1, RunTrigger::kManual, h.clock.now(), "", h.clock.now()},
        {{"ghost", "g" + m}, 1, RunTrigger::kManual, h.clock.now(), "", h.clock.now()},
        {{"wide", "x" + m}, 1, RunTrigger::kManual, h.clock.now(), "", h.clock.now()},
        {{"wide", "y" + m}, 1, RunTrigger::kManual, h.clock.now(), "", h.clock.now()}};
    GuardedStore guarded(h.store, "memory", minor);
    h.store.resetCalls();
    const auto out = guarded.createRuns(std::nullopt, runs);
    EXPECT_EQ(h.store.calls(Method::kCreateRuns), minor == 9 ? 0 : 1) << "SDK 3." << minor;
    EXPECT_EQ(h.store.calls(Method::kCreateRun), 4) << "SDK 3." << minor;
    ASSERT_EQ(out.size(), 4u);
    EXPECT_TRUE(out[0].isOk()) << out[0].toString();
    EXPECT_EQ(out[1].code(), StatusCode::kNotFound);
    EXPECT_EQ(out[2].code(), StatusCode::kAlreadyExists);
    EXPECT_TRUE(out[3].isOk()) << out[3].toString();
    EXPECT_EQ(h.runState(runs[3].key), DagRunState::kQueued);

    // A store that throws fails what the throw took down: one run of the loop, every run of one call.
    h.store.throwOn(minor == 9 ? Method::kCreateRun : Method::kCreateRuns, 1);
    const std::vector<NewRun> two{{{"wide", "p" + m}, 1, RunTrigger::kManual, h.clock.now(), "", h.clock.now()},
                                  {{"wide", "q" + m}, 1, RunTrigger::kManual, h.clock.now(), "", h.clock.now()}};
    const auto thrown = guarded.createRuns(std::nullopt, two);
    ASSERT_EQ(thrown.size(), 2u);
    EXPECT_THAT(thrown[0].message(), HasSubstr("plugin memory threw")) << "SDK 3." << minor;
    if (minor == 9) {
      EXPECT_TRUE(thrown[1].isOk()) << thrown[1].toString();
    } else {
      EXPECT_THAT(thrown[1].message(), HasSubstr("plugin memory threw"));
    }
  }
}

TEST(EngineScale, ATickWhereNothingChangedPlansNothing) {
  EngineHarness h;
  h.addDag(dag("wait", {task("long"), task("after", {"long"})}));
  h.executor.setDefault(Completion::kNone);  // the first task keeps running
  h.lead();
  for (int i = 0; i < 20; ++i) h.trigger("wait", "r" + std::to_string(i));
  h.settle();
  // 16 runs running (max_active_runs), each with its first task handed over and never reported;
  // 4 runs queued, waiting for a slot.
  ASSERT_EQ(h.state(RunKey{"wait", "r0"}, "long"), TaskState::kQueued);
  h.store.resetCalls();
  const TickReport quick = h.tick(Engine::TickKind::kQuick);
  EXPECT_EQ(quick.runs_planned, 0u);
  EXPECT_EQ(quick.runs_loaded, 0u);
  EXPECT_EQ(h.store.calls(Method::kLoadRuns) + h.store.calls(Method::kLoadTaskInstances), 0);
  const TickReport full = h.tick();
  EXPECT_EQ(full.runs_planned, 0u) << "a full tick lists the active runs, but plans none that did not change";
  EXPECT_EQ(full.runs_loaded, 0u);
}

TEST(EngineScale, ANewLeaderReadsTheActiveRunsInChunks) {
  EngineHarness h;
  h.options.load_chunk_runs = 4;
  h.addDag(linear());
  for (int i = 0; i < 10; ++i) h.trigger("etl", "r" + std::to_string(i));
  h.lead();
  h.store.resetCalls();
  const TickReport first = h.tick();
  EXPECT_EQ(first.runs_loaded, 10u) << "the first tick plans every active run";
  EXPECT_EQ(h.store.calls(Method::kLoadRuns), 3) << "10 runs, 4 a read";
}

// Issue 14 §3: across runs, capacity goes to the task that has waited longest in `scheduled`.
TEST(EngineScale, CapacityGoesToTheOldestScheduledTaskAcrossRuns) {
  EngineHarness h;
  h.addDag(dag("wide", {task("a"), task("b")}));
  auto scheduled_at = [&](std::chrono::seconds ago) {
    TaskInstance t = EngineHarness::ti(TaskState::kScheduled);
    t.scheduled_at = h.clock.now() - ago;
    return t;
  };
  // By key, "a_newer" comes first; its tasks were scheduled after "z_older"'s one.
  const RunKey newer = h.seedRunning("wide", {{"a", scheduled_at(10s)}, {"b", scheduled_at(10s)}}, "a_newer");
  const RunKey older = h.seedRunning("wide", {{"a", scheduled_at(60s)}, {"b", EngineHarness::ti(TaskState::kNone)}},
                                     "z_older");
  h.dispatcher.setCapacity(2);
  h.lead();
  h.tick();
  EXPECT_EQ(h.state(older, "a"), TaskState::kQueued) << "waited 60 s: first";
  // The second slot: the newer run's first task; its other task waits for capacity.
  EXPECT_EQ(h.state(newer, "a"), TaskState::kQueued);
  EXPECT_EQ(h.state(newer, "b"), TaskState::kScheduled);
  // The older run's task that became ready this tick did not take the slot from tasks of another
  // run that were already waiting: it waits in `scheduled` too.
  EXPECT_EQ(h.state(older, "b"), TaskState::kScheduled);
}

TEST(EngineScale, ThePeriodicResyncReloadsAChunkOfRunsPerTick) {
  EngineHarness h;
  h.options.load_chunk_runs = 4;
  h.options.resync_tick_budget = std::chrono::milliseconds(0);    // one chunk a tick
  h.options.full_resync_interval = std::chrono::milliseconds(0);  // every run is due on every full tick
  h.addDag(dag("wait", {task("long")}));
  h.executor.setDefault(Completion::kNone);
  for (int i = 0; i < 10; ++i) h.trigger("wait", "r" + std::to_string(i));
  h.lead();
  h.settle();
  // Every run is always due, but a tick reloads one chunk, the runs in turn.
  std::size_t total = 0;
  for (int i = 0; i < 5; ++i) {
    const std::size_t n = h.tick().runs_loaded;
    EXPECT_GE(n, 1u);
    EXPECT_LE(n, 4u);
    total += n;
  }
  EXPECT_GE(total, 10u);
}

// Runs the engine's own loop (which subscribes the change feed) over the linear DAG, tasks
// succeeding, until it leads.
std::jthread leadInLoop(EngineHarness& h) {
  h.executor.setDefault(Completion::kSucceed);
  h.addDag(linear());
  h.build();
  std::jthread loop([&h](std::stop_token st) { h.engine->run(st); });
  waitFor([&] { return h.engine->leading(); }, 2s);
  return loop;
}

// leading() turns true before the first tick lists the active runs: a run written, or calls
// counted, before that listing has returned would be taken for later ones. The same tick reads the
// DAGs after the listing, on the same thread, so a DAG read after the first listing began means it
// has returned.
void waitForTheTakeoverListing(EngineHarness& h) {
  waitFor([&] { return h.store.calls(Method::kListActiveRunKeys) >= 1; }, 2s);
  const int dag_reads = h.store.calls(Method::kListDags);
  waitFor([&] { return h.store.calls(Method::kListDags) != dag_reads; }, 2s);
}

/// A queued manual run of version 1, as another writer would store it.
RunRecord queuedRun(RunKey key) {
  RunRecord r;
  r.key = std::move(key);
  r.dag_version = 1;
  r.state = DagRunState::kQueued;
  r.trigger = RunTrigger::kManual;
  r.logical_date = kNoon;
  r.queued_at = kNoon;
  return r;
}

TEST(EngineScale, WithTheChangeFeedUpTheActiveRunsAreListedOnceAResyncInterval) {
  EngineHarness h;
  h.options.tick_interval = 5ms;  // a full tick every 5 ms
  h.options.full_resync_interval = 60s;
  std::jthread loop = leadInLoop(h);
  const auto until = std::chrono::steady_clock::now() + 2s;
  ASSERT_TRUE(h.engine->leading());
  waitForTheTakeoverListing(h);
  h.store.resetCalls();
  // New and ended runs come through the feed: a run triggered by another process still runs.
  auto other = h.store.openHandle();
  NewRun r{{"etl", "r1"}, 1, RunTrigger::kManual, kNoon, "", kNoon};
  ASSERT_TRUE(other->createRun(std::nullopt, r).isOk());
  while (h.runState(r.key) != DagRunState::kSuccess && std::chrono::steady_clock::now() < until + 8s) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(h.runState(r.key), DagRunState::kSuccess);
  std::this_thread::sleep_for(200ms);  // some 40 full ticks
  EXPECT_EQ(h.store.calls(Method::kListActiveRunKeys), 0) << "listed on takeover, then once a resync interval";
}

TEST(EngineScale, WithTheChangeFeedUpTheListingOnAnotherThreadFindsARunTheFeedNeverMentioned) {
  EngineHarness h;
  h.options.tick_interval = 5ms;
  h.options.full_resync_interval = 300ms;
  std::jthread loop = leadInLoop(h);
  const auto until = std::chrono::steady_clock::now() + 2s;
  ASSERT_TRUE(h.engine->leading());
  waitForTheTakeoverListing(h);
  const int listings_before = h.store.calls(Method::kListActiveRunKeys);
  // A run written without a change-feed message (a lost message): only the periodic listing
  // shows it to the leader, which then runs it.
  const RunRecord r = queuedRun({"etl", "unannounced"});
  h.store.putRun(r);
  while (h.runState(r.key) != DagRunState::kSuccess && std::chrono::steady_clock::now() < until + 8s) {
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(h.runState(r.key), DagRunState::kSuccess);
  EXPECT_GT(h.store.calls(Method::kListActiveRunKeys), listings_before) << "listed again, on another thread";
}

TEST(EngineScale, TheListingIsComparedWithTheCacheASliceOfKeysPerTick) {
  // With the feed up, the periodic listing arrives from another thread and meets the cache a slice
  // of keys per tick (at 100,000 runs the whole walk was one long tick). Whichever slice names them,
  // runs the cache lacks are loaded; a run that ended unseen is forgotten; and no run the cache
  // holds and the listing names is ever taken for an ended one (a slice that resumed anywhere but
  // after the last key it compared would take the cached runs before it for ended ones).
  EngineHarness h;
  h.options.tick_interval = 5ms;
  h.options.full_resync_interval = 300ms;
  h.options.listing_walk_slice = 2;
  h.executor.setDefault(Completion::kNone);  // every run stays running
  h.addDag(linear());
  h.build();
  std::jthread loop([&h](std::stop_token st) { h.engine->run(st); });
  waitFor([&] { return h.engine->leading(); }, 2s);
  ASSERT_TRUE(h.engine->leading());
  waitForTheTakeoverListing(h);
  auto other = h.store.openHandle();
  const auto until = std::chrono::steady_clock::now() + 10s;
  auto runningBy = [&](const std::vector<RunKey>& keys) {
    while (std::chrono::steady_clock::now() < until) {
      if (std::all_of(keys.begin(), keys.end(), [&](const RunKey& k) { return h.runState(k) == DagRunState::kRunning; })) {
        return true;
      }
      std::this_thread::sleep_for(2ms);
    }
    return false;
  };
  std::vector<RunKey> announced;
  for (int i = 0; i < 7; ++i) {
    announced.push_back({"etl", "r" + std::to_string(i)});
    ASSERT_TRUE(other->createRun(std::nullopt, NewRun{announced.back(), 1, RunTrigger::kManual, kNoon, "", kNoon}).isOk());
  }
  ASSERT_TRUE(runningBy(announced));
  // Runs written without a change-feed message, between the cached ones in key order: only the
  // listing shows them to the leader.
  std::vector<RunKey> unannounced{{"etl", "r1x"}, {"etl", "r4x"}, {"etl", "r6x"}};
  for (const RunKey& k : unannounced) h.store.putRun(queuedRun(k));
  EXPECT_TRUE(runningBy(unannounced)) << "found by the sliced listing";
  // And one that ends unseen (no message): the next listing no longer names it.
  RunRecord ended = *h.store.run({"etl", "r3"});
  ended.state = DagRunState::kSuccess;
  ended.ended_at = kNoon;
  h.store.putRun(ended);
  const int listings = h.store.calls(Method::kListActiveRunKeys);
  waitFor([&] { return h.store.calls(Method::kListActiveRunKeys) >= listings + 2; }, 5s);
  loop.request_stop();
  loop.join();

  const std::string logs = h.logs();
  std::size_t walks = 0, forgot = 0;
  for (std::size_t at = logs.find("active runs listed "); at != std::string::npos;
       at = logs.find("active runs listed ", at + 1)) {
    const std::string line = logs.substr(at, logs.find('\n', at) - at);
    if (line.find(" slices=") == std::string::npos) continue;  // the takeover's listing, read at once
    ++walks;
    if (line.find(" gone=0 ") != std::string::npos) continue;
    EXPECT_NE(line.find(" gone=1 "), std::string::npos) << line;
    EXPECT_NE(line.find(" runs=9 "), std::string::npos) << "only r3's ending is a run gone: " << line;
    ++forgot;
  }
  EXPECT_GE(walks, 2u);
  // r3 is forgotten by a listing, or by its periodic reload if that comes first: never twice.
  EXPECT_LE(forgot, 1u);
  EXPECT_NE(logs.find("slices=5"), std::string::npos) << "10 runs, 2 keys a slice";
}

TEST(EngineScale, OrphanCandidatesAreListedOnceATenthOfTheThreshold) {
  EngineHarness h;
  h.options.orphan_threshold = 100s;  // a sweep every 10 s of the engine's clock
  h.options.tick_interval = 1s;
  h.addDag(linear());
  h.lead();
  h.store.resetCalls();
  for (int i = 0; i < 25; ++i) {  // 25 full ticks, one a second
    h.tick();
    h.clock.advance(1s);
  }
  EXPECT_EQ(h.store.calls(Method::kListOrphanCandidates), 3) << "at 0, 10 and 20 s";
}

TEST(EngineScale, TaskMetricsCarryTheTaskTypeAndTheRunsTenant) {
  EngineHarness h;
  h.addDag(dag("etl", {task("a", {}, "bash")}));
  h.executor.setDefault(Completion::kSucceed);
  auto run = h.trigger("etl");
  h.lead();
  h.settle();
  ASSERT_EQ(h.runState(run), DagRunState::kSuccess);
  const auto record = h.store.run(run);
  ASSERT_TRUE(record.has_value());
  ASSERT_FALSE(record->tenant.empty());
  EXPECT_EQ(h.recorder.taskStartLabels("etl.a"), (std::vector<std::string>{"bash/" + record->tenant}));
}

}  // namespace
}  // namespace leoflow::engine::testing
