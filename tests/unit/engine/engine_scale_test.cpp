// What keeps the leader's cost per change independent of the size of a run and of the number of
// runs (issue 14): a change that names its task refreshes that instance alone, a tick where nothing
// changed plans nothing, runs are read in chunks, and the periodic resync is spread over ticks.
#include <thread>

#include <gtest/gtest.h>

#include "engine/guarded.h"
#include "engine_harness.h"

namespace leoflow::engine::testing {
namespace {

using leoflow::testing::Method;

DagSpec chain(const std::string& id, int n) {
  std::vector<TaskSpec> tasks;
  for (int i = 0; i < n; ++i) {
    tasks.push_back(task("t" + std::to_string(i), i == 0 ? std::vector<std::string>{}
                                                          : std::vector<std::string>{"t" + std::to_string(i - 1)}));
  }
  return dag(id, std::move(tasks));
}

TEST(EngineScale, ExecutorReportsRefreshTheirTaskInsteadOfReloadingTheRun) {
  EngineHarness h;
  h.addDag(chain("long", 60));
  h.executor.setDefault(Completion::kSucceed);
  auto run = h.trigger("long");
  h.lead();
  h.store.resetCalls();
  h.settle(1000);
  ASSERT_EQ(h.runState(run), DagRunState::kSuccess);
  // Read whole twice (queued, then materialized), never again for the 120 reports of its tasks.
  EXPECT_LE(h.store.calls(Method::kLoadRuns), 3);
  EXPECT_GE(h.store.calls(Method::kLoadTaskInstances), 60);
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

// A store built before SDK 3.4 makes its Change without leader_term: the host must not read past
// what such a store wrote, so GuardedStore passes its changes on with leader_term 0 (read them all).
TEST(EngineScale, ChangesOfAStoreBeforeSdk34NeverNameATerm) {
  EngineHarness h;
  h.addDag(dag("wide", {task("a")}));
  const RunKey run = h.seedRunning("wide", {{"a", EngineHarness::ti(TaskState::kNone)}});
  struct Last final : ChangeSink {
    std::vector<Change> changes;
    void onChange(const Change& c) override { changes.push_back(c); }
    void onResync() override {}
  };
  for (const std::uint32_t minor : {3u, 4u}) {
    GuardedStore guarded(h.store, "memory", minor);
    Last sink;
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
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (!h.engine->leading() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  return loop;
}

TEST(EngineScale, WithTheChangeFeedUpTheActiveRunsAreListedOnceAResyncInterval) {
  EngineHarness h;
  h.options.tick_interval = 5ms;  // a full tick every 5 ms
  h.options.full_resync_interval = 60s;
  std::jthread loop = leadInLoop(h);
  const auto until = std::chrono::steady_clock::now() + 2s;
  ASSERT_TRUE(h.engine->leading());
  std::this_thread::sleep_for(50ms);
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
  // A run written without a change-feed message (a lost message): only the periodic listing
  // shows it to the leader, which then runs it.
  RunRecord r;
  r.key = {"etl", "unannounced"};
  r.dag_version = 1;
  r.state = DagRunState::kQueued;
  r.trigger = RunTrigger::kManual;
  r.logical_date = kNoon;
  r.queued_at = kNoon;
  h.store.putRun(r);
  while (h.runState(r.key) != DagRunState::kSuccess && std::chrono::steady_clock::now() < until + 8s) {
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(h.runState(r.key), DagRunState::kSuccess);
  EXPECT_GE(h.store.calls(Method::kListActiveRunKeys), 2) << "on taking over, then on another thread";
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
