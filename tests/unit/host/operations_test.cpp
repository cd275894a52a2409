// A person's commands as the CLI and the HTTP API share them (core/host/operations.h), against the
// memory reference store: what they select, what they refuse and with which kind of error.
#include "host/operations.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "host/dags_command.h"
#include "host/exit_codes.h"
#include "support/memory_store.h"
#include "schedule/iso_time.h"

namespace leoflow::host {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using leoflow::testing::ManualClock;
using leoflow::testing::MemoryStore;
namespace fs = std::filesystem;

Timestamp at(const std::string& iso) { return *schedule::parseIsoTime(iso); }

// A RunQuery with one field set (designated initializers would leave the others to a warning).
RunQuery query(std::function<void(RunQuery&)> set) {
  RunQuery q;
  set(q);
  return q;
}

class Operations : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("leoflow-ops-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    clock_.set(at("2026-05-28T12:00:00Z"));
  }
  void TearDown() override { fs::remove_all(dir_); }

  void sync(const std::string& id, const std::string& json) {
    const fs::path p = dir_ / (id + ".json");
    std::ofstream(p) << json;
    std::ostringstream out, err;
    ASSERT_EQ(dagsSync(store_, {p.string()}, out, err), 0) << err.str();
  }
  // extract → transform → load, and report beside them; each with one retry.
  void syncChain() {
    sync("etl", R"({"dag_id":"etl","schedule":"@hourly","tenant":"team-a","start_date":"2026-05-28T00:00:00Z",
        "default_args":{"retries":1},"tasks":[
        {"task_id":"extract","type":"bash","entrypoint":"true"},
        {"task_id":"transform","type":"bash","entrypoint":"true","depends_on":["extract"]},
        {"task_id":"load","type":"bash","entrypoint":"true","depends_on":["transform"]},
        {"task_id":"report","type":"bash","entrypoint":"true"}]})");
  }
  // A run materialized with every instance in the given state, started and ended.
  RunKey runWith(const std::string& run_id, Timestamp logical, std::vector<std::pair<std::string, TaskState>> tasks,
                 DagRunState state, std::int64_t version = 1) {
    const RunKey key{"etl", run_id};
    NewRun nr{key, version, RunTrigger::kManual, logical, "", clock_.now(), "team-a"};
    EXPECT_TRUE(store_.createRun(std::nullopt, nr).isOk());
    RunRecord r = *store_.run(key);
    r.state = state;
    r.started_at = clock_.now();
    for (const auto& [id, s] : tasks) {
      TaskInstance ti;
      ti.task_id = id;
      ti.state = s;
      ti.max_tries = 2;
      if (s != TaskState::kNone) ti.started_at = clock_.now();
      if (isTerminal(s)) ti.ended_at = clock_.now();
      r.tasks.push_back(ti);
    }
    store_.putRun(r);
    return key;
  }
  const TaskInstance& task(const RunKey& key, const std::string& id) {
    static RunRecord last;
    last = *store_.run(key);
    for (const TaskInstance& t : last.tasks) {
      if (t.task_id == id) return t;
    }
    throw std::runtime_error("no task " + id);
  }
  template <typename Fn>
  ErrorKind errorOf(Fn&& fn) {
    try {
      fn();
    } catch (const CommandError& e) {
      last_error_ = e.what();
      return e.kind();
    }
    ADD_FAILURE() << "no error";
    return ErrorKind::kFailed;
  }

  fs::path dir_;
  ManualClock clock_;
  MemoryStore store_;
  std::string last_error_;
};

std::vector<std::string> taskIds(const RunRecord& run) {
  std::vector<std::string> ids;
  for (const TaskInstance& t : run.tasks) ids.push_back(t.task_id);
  return ids;
}

TEST_F(Operations, ARunsTasksAreListedInTheOrderItsDagDeclaresThem) {
  syncChain();
  const RunKey key = runWith("r1", at("2026-05-28T10:00:00Z"),
                             {{"report", TaskState::kSuccess}, {"load", TaskState::kNone}, {"zz_gone", TaskState::kNone},
                              {"extract", TaskState::kSuccess}, {"transform", TaskState::kRunning}},
                             DagRunState::kRunning);
  // A task the version does not declare (a run of an older shape) comes last.
  EXPECT_THAT(taskIds(loadRun(store_, key)), ElementsAre("extract", "transform", "load", "report", "zz_gone"));

  // The order read once (as `runs trigger --wait` keeps it) lists every later read the same way.
  const TaskOrder order = TaskOrder::of(store_, "etl", 1);
  ASSERT_TRUE(order.known());
  RunRecord again = *store_.run(key);
  order.apply(again);
  EXPECT_THAT(taskIds(again), ElementsAre("extract", "transform", "load", "report", "zz_gone"));

  // A version that cannot be read leaves the store's order as it is, to be read again later.
  const TaskOrder unknown = TaskOrder::of(store_, "etl", 7);
  EXPECT_FALSE(unknown.known());
  RunRecord as_stored = *store_.run(key);
  const auto stored_ids = taskIds(as_stored);
  unknown.apply(as_stored);
  EXPECT_EQ(taskIds(as_stored), stored_ids);
}

TEST_F(Operations, ClearWithDownstreamTakesTheTasksBelowTransitivelyAndNothingBeside) {
  syncChain();
  const RunKey key = runWith("r1", at("2026-05-28T10:00:00Z"),
                             {{"extract", TaskState::kSuccess},
                              {"transform", TaskState::kFailed},
                              {"load", TaskState::kUpstreamFailed},
                              {"report", TaskState::kSuccess}},
                             DagRunState::kFailed);
  const OperatorOutcome o = clearRun(store_, clock_.now(), key, {{"transform"}, true, false, "alice@h1"});
  EXPECT_THAT(o.changed_tasks, ElementsAre("transform", "load"));
  EXPECT_EQ(o.run_state, DagRunState::kRunning);
  EXPECT_EQ(task(key, "transform").state, TaskState::kNone);
  EXPECT_EQ(task(key, "transform").try_number, 2);
  EXPECT_EQ(task(key, "transform").max_tries, 3);  // old try 1 + retries 1 + 1
  EXPECT_EQ(task(key, "transform").note, "cleared by alice@h1");
  EXPECT_EQ(task(key, "load").state, TaskState::kNone);
  EXPECT_EQ(task(key, "report").state, TaskState::kSuccess);
  EXPECT_EQ(task(key, "extract").state, TaskState::kSuccess);
}

TEST_F(Operations, ClearFailedOnlyFiltersAfterTheDownstreamExpansion) {
  syncChain();
  const RunKey key = runWith("r1", at("2026-05-28T10:00:00Z"),
                             {{"extract", TaskState::kSuccess},
                              {"transform", TaskState::kFailed},
                              {"load", TaskState::kUpstreamFailed},
                              {"report", TaskState::kSuccess}},
                             DagRunState::kFailed);
  const OperatorOutcome o = clearRun(store_, clock_.now(), key, {{"extract"}, true, true, "bob"});
  EXPECT_THAT(o.changed_tasks, ElementsAre("transform", "load"));
  EXPECT_EQ(task(key, "extract").state, TaskState::kSuccess);
}

TEST_F(Operations, ClearRefusesAnUnknownTaskAsNotFoundAndAQueuedRunAsAConflict) {
  syncChain();
  const RunKey key = runWith("r1", at("2026-05-28T10:00:00Z"), {{"extract", TaskState::kFailed}}, DagRunState::kFailed);
  EXPECT_EQ(errorOf([&] { clearRun(store_, clock_.now(), key, {{"nope"}, false, false, "a"}); }), ErrorKind::kNotFound);
  EXPECT_THAT(last_error_, HasSubstr("no task \"nope\""));
  NewRun queued{{"etl", "q"}, 1, RunTrigger::kManual, at("2026-05-28T11:00:00Z"), "", clock_.now(), "team-a"};
  ASSERT_TRUE(store_.createRun(std::nullopt, queued).isOk());
  EXPECT_EQ(errorOf([&] { clearRun(store_, clock_.now(), queued.key, {{}, false, false, "a"}); }), ErrorKind::kConflict);
  EXPECT_EQ(errorOf([&] { clearRun(store_, clock_.now(), {"etl", "missing"}, {{}, false, false, "a"}); }),
            ErrorKind::kNotFound);
}

TEST_F(Operations, ARangeClearTakesTheRunsWhoseLogicalDateLiesInItOldestFirst) {
  syncChain();
  runWith("r09", at("2026-05-28T09:00:00Z"), {{"extract", TaskState::kFailed}}, DagRunState::kFailed);
  runWith("r10", at("2026-05-28T10:00:00Z"), {{"extract", TaskState::kFailed}}, DagRunState::kFailed);
  runWith("r11", at("2026-05-28T11:00:00Z"), {{"extract", TaskState::kFailed}}, DagRunState::kFailed);
  runWith("r12", at("2026-05-28T12:00:00Z"), {{"extract", TaskState::kFailed}}, DagRunState::kFailed);
  const auto cleared =
      clearRange(store_, clock_.now(), "etl", at("2026-05-28T10:00:00Z"), at("2026-05-28T11:00:00Z"), {{}, false, false, "a"});
  ASSERT_EQ(cleared.size(), 2u);
  EXPECT_EQ(cleared[0].run.run_id, "r10");
  EXPECT_EQ(cleared[1].run.run_id, "r11");
  EXPECT_EQ(task({"etl", "r09"}, "extract").state, TaskState::kFailed);
  EXPECT_EQ(task({"etl", "r10"}, "extract").state, TaskState::kNone);
  EXPECT_EQ(task({"etl", "r12"}, "extract").state, TaskState::kFailed);
  EXPECT_EQ(errorOf([&] {
              clearRange(store_, clock_.now(), "etl", at("2026-05-28T12:00:00Z"), at("2026-05-28T10:00:00Z"), {});
            }),
            ErrorKind::kBadInput);
}

TEST_F(Operations, ARangeClearOfManyRunsClearsEachInSlicesAndStopsAtAFailure) {
  syncChain();
  constexpr std::size_t kRuns = 250;  // two and a half slices of kClearSlice
  static_assert(kRuns > 2 * kClearSlice && kRuns < 3 * kClearSlice);
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < kRuns; ++i) {
    char id[8];
    std::snprintf(id, sizeof id, "r%03zu", i);
    ids.emplace_back(id);
    runWith(id, at("2026-05-01T00:00:00Z") + std::chrono::hours(static_cast<int>(i)), {{"extract", TaskState::kFailed}},
            DagRunState::kFailed);
  }
  const Timestamp from = at("2026-05-01T00:00:00Z");
  const Timestamp to = at("2026-06-01T00:00:00Z");
  // The memory store keeps the SDK's clearRuns, one clearTasks per run: the first of them fails.
  store_.failNext(leoflow::testing::Method::kClearTasks, unavailable("injected: store went away"));
  EXPECT_EQ(errorOf([&] { clearRange(store_, clock_.now(), "etl", from, to, {{}, false, false, "a"}); }),
            ErrorKind::kUnreachable);
  EXPECT_THAT(last_error_, HasSubstr("clearing run r000 (99 other runs of the range cleared, 150 not reached)"));
  std::size_t cleared_before = 0;
  for (const std::string& id : ids) cleared_before += task({"etl", id}, "extract").state == TaskState::kNone ? 1 : 0;
  EXPECT_EQ(cleared_before, kClearSlice - 1) << "the rest of the failed run's slice, and no slice after it";
  EXPECT_EQ(task({"etl", "r000"}, "extract").state, TaskState::kFailed);

  std::vector<std::size_t> told;
  store_.resetCalls();
  const auto cleared = clearRange(store_, clock_.now(), "etl", from, to, {{}, false, false, "a"},
                                  [&](std::size_t done, std::size_t of) {
                                    EXPECT_EQ(of, kRuns);
                                    told.push_back(done);
                                  });
  EXPECT_EQ(store_.calls(leoflow::testing::Method::kClearRuns), 3) << "one store call per slice";
  EXPECT_EQ(told, (std::vector<std::size_t>{kClearSlice, 2 * kClearSlice, kRuns})) << "progress after each slice";
  ASSERT_EQ(cleared.size(), kRuns) << "every run of the range, those cleared before with nothing to move";
  for (std::size_t i = 0; i < kRuns; ++i) {
    EXPECT_EQ(cleared[i].run.run_id, ids[i]) << "oldest first";
    EXPECT_EQ(cleared[i].outcome.changed_tasks.size(), i == 0 || i >= kClearSlice ? 1u : 0u) << ids[i];
    EXPECT_EQ(task({"etl", ids[i]}, "extract").state, TaskState::kNone) << ids[i];
  }
}

TEST_F(Operations, ARangeClearOfALargeDagsRunsSendsFewerRunsPerStoreCall) {
  // 500 tasks a version: kClearSliceTasks (20,000) allows 40 runs per call, not kClearSlice.
  std::string tasks;
  for (int i = 0; i < 500; ++i) tasks += fmt::format(R"({}{{"task_id":"t{}","type":"bash","entrypoint":"true"}})", i ? "," : "", i);
  sync("etl", R"({"dag_id":"etl","tasks":[)" + tasks + "]}");
  for (int i = 0; i < 100; ++i) {
    runWith(fmt::format("r{:03}", i), at("2026-05-01T00:00:00Z") + std::chrono::hours(i), {{"t0", TaskState::kFailed}},
            DagRunState::kFailed);
  }
  std::vector<std::size_t> told;
  store_.resetCalls();
  const auto cleared = clearRange(store_, clock_.now(), "etl", at("2026-05-01T00:00:00Z"), at("2026-06-01T00:00:00Z"),
                                  {{}, false, false, "a"}, [&](std::size_t done, std::size_t) { told.push_back(done); });
  EXPECT_EQ(cleared.size(), 100u);
  EXPECT_EQ(told, (std::vector<std::size_t>{40, 80, 100}));
  EXPECT_EQ(store_.calls(leoflow::testing::Method::kClearRuns), 3);
  EXPECT_EQ(task({"etl", "r099"}, "t0").state, TaskState::kNone);
}

TEST_F(Operations, ARangeClearOfATaskAnOlderVersionLacksChangesNothing) {
  syncChain();
  runWith("v1", at("2026-05-28T10:00:00Z"), {{"extract", TaskState::kFailed}, {"report", TaskState::kFailed}},
          DagRunState::kFailed);
  sync("etl", R"({"dag_id":"etl","schedule":"@hourly","tenant":"team-a","start_date":"2026-05-28T00:00:00Z",
      "tasks":[{"task_id":"extract","type":"bash","entrypoint":"true"}]})");
  runWith("v2", at("2026-05-28T11:00:00Z"), {{"extract", TaskState::kFailed}}, DagRunState::kFailed, 2);
  EXPECT_EQ(errorOf([&] {
              clearRange(store_, clock_.now(), "etl", at("2026-05-28T00:00:00Z"), at("2026-05-29T00:00:00Z"),
                         {{"report"}, false, false, "a"});
            }),
            ErrorKind::kNotFound);
  EXPECT_THAT(last_error_, HasSubstr("(version 2) has no task \"report\""));
  EXPECT_EQ(task({"etl", "v1"}, "report").state, TaskState::kFailed) << "the run of version 1 was cleared";

  // Every task of the run: each run is cleared by its own version's tasks.
  const auto cleared = clearRange(store_, clock_.now(), "etl", at("2026-05-28T00:00:00Z"),
                                  at("2026-05-29T00:00:00Z"), {{}, false, false, "a"});
  ASSERT_EQ(cleared.size(), 2u);
  EXPECT_EQ(cleared[0].outcome.changed_tasks, (std::vector<std::string>{"extract", "report"}));
  EXPECT_EQ(cleared[1].outcome.changed_tasks, (std::vector<std::string>{"extract"}));
}

TEST_F(Operations, MarkAndCancelNameTheActorAndRefuseWhatTheStateForbids) {
  syncChain();
  const RunKey key = runWith("r1", at("2026-05-28T10:00:00Z"),
                             {{"extract", TaskState::kRunning}, {"transform", TaskState::kNone}}, DagRunState::kRunning);
  markTask(store_, clock_.now(), key, "extract", "success", "carol@h2");
  EXPECT_EQ(task(key, "extract").state, TaskState::kSuccess);
  EXPECT_EQ(task(key, "extract").note, "marked success by carol@h2");
  EXPECT_EQ(errorOf([&] { markTask(store_, clock_.now(), key, "extract", "running", "c"); }), ErrorKind::kBadInput);
  EXPECT_EQ(errorOf([&] { markRun(store_, clock_.now(), key, "queued", "c"); }), ErrorKind::kBadInput);

  const OperatorOutcome o = cancelRun(store_, clock_.now(), key, "dave@h3");
  EXPECT_EQ(o.run_state, DagRunState::kFailed);
  EXPECT_EQ(store_.run(key)->note, "cancelled by dave@h3");
  EXPECT_EQ(task(key, "transform").state, TaskState::kSkipped);
  EXPECT_EQ(errorOf([&] { cancelRun(store_, clock_.now(), key, "d"); }), ErrorKind::kConflict);
}

TEST_F(Operations, DeleteIsRefusedWithActiveRunsAndForceCancelsThemFirst) {
  syncChain();
  const RunKey key = runWith("r1", at("2026-05-28T10:00:00Z"), {{"extract", TaskState::kRunning}}, DagRunState::kRunning);
  EXPECT_EQ(errorOf([&] { deleteDag(store_, clock_.now(), "etl", false, "a"); }), ErrorKind::kConflict);
  EXPECT_THAT(last_error_, HasSubstr("1 active run (r1)"));
  EXPECT_TRUE(store_.run(key).has_value());
  const auto cancelled = deleteDag(store_, clock_.now(), "etl", true, "a");
  EXPECT_THAT(cancelled, ElementsAre("r1"));
  EXPECT_EQ(errorOf([&] { loadDagSpec(store_, "etl"); }), ErrorKind::kNotFound);
  EXPECT_EQ(errorOf([&] { deleteDag(store_, clock_.now(), "etl", true, "a"); }), ErrorKind::kNotFound);
}

TEST_F(Operations, AForcedDeleteCancelsTheQueuedAndRunningRunsAmongFinishedOnesAndTellsItsProgress) {
  syncChain();
  const RunKey queued = runWith("q1", at("2026-05-01T00:00:00Z"), {}, DagRunState::kQueued);
  const RunKey running = runWith("r1", at("2026-05-02T00:00:00Z"), {{"extract", TaskState::kRunning}},
                                 DagRunState::kRunning);
  for (int i = 0; i < 50; ++i) {
    runWith("done" + std::to_string(i), at("2026-05-10T00:00:00Z") + std::chrono::hours(i),
            {{"extract", TaskState::kSuccess}}, DagRunState::kSuccess);
  }
  std::vector<std::pair<std::size_t, std::size_t>> told;
  const auto cancelled = deleteDag(store_, clock_.now(), "etl", true, "a",
                                   [&](std::size_t done, std::size_t of) { told.emplace_back(done, of); });
  EXPECT_THAT(cancelled, ElementsAre(queued.run_id, running.run_id));
  EXPECT_EQ(told, (std::vector<std::pair<std::size_t, std::size_t>>{{2, 2}})) << "both in one slice";
  EXPECT_FALSE(store_.run(queued).has_value());
  EXPECT_EQ(errorOf([&] { loadDagSpec(store_, "etl"); }), ErrorKind::kNotFound);
}

// A forced delete of many runs: a failure while cancelling stops it after its slice, naming the run,
// with the DAG and the runs not yet cancelled kept; run again, it cancels each of the rest once,
// counting up a slice at a time, and deletes the DAG.
TEST_F(Operations, AForcedDeleteOfManyRunsCancelsEachOnceInSlicesAndStopsAtAFailureKeepingTheDag) {
  syncChain();
  constexpr std::size_t kRuns = 250;  // two and a half slices of kCancelSlice
  static_assert(kRuns > 2 * kCancelSlice && kRuns < 3 * kCancelSlice);
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < kRuns; ++i) {
    char id[8];
    std::snprintf(id, sizeof id, "r%03zu", i);
    ids.emplace_back(id);
    runWith(id, at("2026-05-01T00:00:00Z") + std::chrono::hours(static_cast<int>(i)), {{"extract", TaskState::kRunning}},
            DagRunState::kRunning);
  }
  // The memory store keeps the SDK's cancelRuns, one cancelRun per run: the first of them fails.
  store_.failNext(leoflow::testing::Method::kCancelRun, unavailable("injected: store went away"));
  EXPECT_EQ(errorOf([&] { deleteDag(store_, clock_.now(), "etl", true, "a"); }), ErrorKind::kUnreachable);
  EXPECT_THAT(last_error_, HasSubstr("cancelling run r"));
  EXPECT_NO_THROW(loadDagSpec(store_, "etl")) << "a failed cancel deleted the dag";

  // The rest of the failed run's slice was cancelled; the slices after it were not reached.
  std::vector<std::string> left;
  for (const std::string& id : ids) {
    if (store_.run(RunKey{"etl", id})->state == DagRunState::kRunning) left.push_back(id);
  }
  ASSERT_EQ(left.size(), kRuns - kCancelSlice + 1) << "the failure did not stop at its slice";

  std::vector<std::size_t> told;
  const auto cancelled = deleteDag(store_, clock_.now(), "etl", true, "a", [&](std::size_t done, std::size_t of) {
    EXPECT_EQ(of, left.size());
    told.push_back(done);
  });
  std::vector<std::string> named = cancelled;
  std::sort(named.begin(), named.end());
  EXPECT_EQ(named, left) << "each remaining run, once";
  EXPECT_EQ(told, (std::vector<std::size_t>{kCancelSlice, left.size()})) << "progress after each slice";
  for (const std::string& id : ids) EXPECT_FALSE(store_.run(RunKey{"etl", id}).has_value()) << id;
  EXPECT_EQ(errorOf([&] { loadDagSpec(store_, "etl"); }), ErrorKind::kNotFound);
}

TEST_F(Operations, BackfillMakesOneRunPerSlotOnceAndSkipsSlotsAnyRunHolds) {
  syncChain();
  // A manual run holding 02:00 takes that slot.
  runWith("manual-2am", at("2026-05-28T02:00:00Z"), {}, DagRunState::kSuccess);
  const BackfillResult first = backfill(store_, clock_.now(), "etl", at("2026-05-28T00:30:00Z"), at("2026-05-28T04:00:00Z"));
  ASSERT_EQ(first.created.size(), 3u);
  EXPECT_EQ(first.created[0].run_id, "backfill__2026-05-28T01:00:00Z");
  EXPECT_EQ(first.created[1].run_id, "backfill__2026-05-28T03:00:00Z");
  EXPECT_EQ(first.created[2].run_id, "backfill__2026-05-28T04:00:00Z");
  ASSERT_EQ(first.already_taken.size(), 1u);
  const RunRecord r = *store_.run(first.created[0]);
  EXPECT_EQ(r.trigger, RunTrigger::kBackfill);
  EXPECT_EQ(r.tenant, "team-a");
  EXPECT_EQ(r.logical_date, at("2026-05-28T01:00:00Z"));

  const BackfillResult again = backfill(store_, clock_.now(), "etl", at("2026-05-28T00:30:00Z"), at("2026-05-28T04:00:00Z"));
  EXPECT_TRUE(again.created.empty());
  EXPECT_EQ(again.already_taken.size(), 4u);
}

TEST_F(Operations, ABackfillOfManySlotsCreatesThemInSlicesAndStopsAtAFailure) {
  syncChain();  // @hourly
  const Timestamp from = at("2026-05-01T00:00:00Z");
  const Timestamp to = from + std::chrono::hours(249);  // 250 slots: two and a half slices
  static_assert(250 > 2 * kBackfillSlice && 250 < 3 * kBackfillSlice);
  runWith("manual-5am", from + std::chrono::hours(5), {}, DagRunState::kSuccess);  // holds a slot

  // The memory store keeps the SDK's createRuns, one createRun per run: the first of them fails.
  store_.failNext(leoflow::testing::Method::kCreateRun, unavailable("injected: store went away"));
  EXPECT_EQ(errorOf([&] { backfill(store_, clock_.now(), "etl", from, to); }), ErrorKind::kUnreachable);
  EXPECT_THAT(last_error_, HasSubstr("creating backfill run backfill__2026-05-01T00:00:00Z (98 other runs created, "
                                     "150 slots not reached)"));
  auto listed = store_.listRuns(RunFilter{});
  ASSERT_TRUE(listed.isOk());
  EXPECT_EQ(listed->size(), 1u + 98u) << "the rest of the failed run's slice, and no slice after it";

  std::vector<std::size_t> told;
  store_.resetCalls();
  const BackfillResult again = backfill(store_, clock_.now(), "etl", from, to, [&](std::size_t done, std::size_t of) {
    EXPECT_EQ(of, 250u);
    told.push_back(done);
  });
  EXPECT_EQ(store_.calls(leoflow::testing::Method::kCreateRuns), 3) << "one store call per slice";
  EXPECT_EQ(told, (std::vector<std::size_t>{kBackfillSlice, 2 * kBackfillSlice, 250})) << "progress after each slice";
  ASSERT_EQ(again.created.size(), 250u - 99u) << "the failed slot and every slot not reached";
  EXPECT_EQ(again.created.front().run_id, "backfill__2026-05-01T00:00:00Z");
  EXPECT_EQ(again.already_taken.size(), 99u) << "the manual run's slot and the 98 created before";
  listed = store_.listRuns(RunFilter{});
  ASSERT_TRUE(listed.isOk());
  EXPECT_EQ(listed->size(), 250u) << "a run per slot, the manual run holding one of them";
}

TEST_F(Operations, BackfillRefusesADagWithoutSlotsAHugeRangeAndABackwardRange) {
  sync("manual", R"({"dag_id":"manual","tasks":[{"task_id":"a","type":"bash","entrypoint":"true"}]})");
  EXPECT_EQ(errorOf([&] { backfill(store_, clock_.now(), "manual", at("2026-01-01T00:00:00Z"), at("2026-01-02T00:00:00Z")); }),
            ErrorKind::kBadInput);
  EXPECT_THAT(last_error_, HasSubstr("needs a cron or @every schedule"));
  syncChain();
  EXPECT_EQ(errorOf([&] { backfill(store_, clock_.now(), "etl", at("2020-01-01T00:00:00Z"), at("2026-01-01T00:00:00Z")); }),
            ErrorKind::kBadInput);
  EXPECT_THAT(last_error_, HasSubstr("narrower range"));
  EXPECT_EQ(errorOf([&] { backfill(store_, clock_.now(), "etl", at("2026-01-02T00:00:00Z"), at("2026-01-01T00:00:00Z")); }),
            ErrorKind::kBadInput);
  EXPECT_EQ(errorOf([&] { backfill(store_, clock_.now(), "nope", at("2026-01-01T00:00:00Z"), at("2026-01-02T00:00:00Z")); }),
            ErrorKind::kNotFound);
}

TEST_F(Operations, DagsJsonCarriesTenantNextSlotAndLastRunState) {
  syncChain();
  sync("manual", R"({"dag_id":"manual","tasks":[{"task_id":"a","type":"bash","entrypoint":"true"}]})");
  auto list = listDagsJson(store_, at("2026-05-28T12:30:00Z"));
  ASSERT_EQ(list.size(), 2u);
  auto etl = list[0]["dag_id"] == "etl" ? list[0] : list[1];
  auto manual = list[0]["dag_id"] == "etl" ? list[1] : list[0];
  EXPECT_EQ(etl["tenant"], "team-a");
  EXPECT_EQ(manual["tenant"], "default");
  EXPECT_TRUE(manual["next_slot"].is_null());
  EXPECT_TRUE(etl["last_run_state"].is_null());
  // Never run, no catch-up: the latest slot at or before now is due.
  EXPECT_EQ(etl["next_slot"], "2026-05-28T12:00:00Z");
  runWith("r1", at("2026-05-28T10:00:00Z"), {}, DagRunState::kFailed);
  EXPECT_EQ(listDagsJson(store_, clock_.now(), std::string("team-a")).size(), 1u);
  auto shown = showDagJson(store_, "etl", clock_.now());
  EXPECT_EQ(shown["last_run_state"], "failed");
  EXPECT_EQ(shown["tasks"].size(), 4u);
}

TEST_F(Operations, QueriesFilterByTenantAndSinceAndAnUnknownDagIsNotFound) {
  syncChain();
  runWith("r09", at("2026-05-28T09:00:00Z"), {}, DagRunState::kSuccess);
  runWith("r11", at("2026-05-28T11:00:00Z"), {}, DagRunState::kSuccess);
  EXPECT_EQ(queryRuns(store_, query([](RunQuery& q) { q.tenant = "team-a"; })).size(), 2u);
  EXPECT_EQ(queryRuns(store_, query([](RunQuery& q) { q.tenant = "default"; })).size(), 0u);
  const auto since = queryRuns(store_, query([](RunQuery& q) { q.since = at("2026-05-28T10:00:00Z"); }));
  ASSERT_EQ(since.size(), 1u);
  EXPECT_EQ(since[0].key.run_id, "r11");
  EXPECT_EQ(queryRuns(store_, query([](RunQuery& q) { q.limit = 1; })).size(), 1u);
  EXPECT_EQ(errorOf([&] { queryRuns(store_, query([](RunQuery& q) { q.dag_id = "nope"; })); }), ErrorKind::kNotFound);
  EXPECT_EQ(errorOf([&] { queryRuns(store_, query([](RunQuery& q) { q.state = "paused"; })); }), ErrorKind::kBadInput);
}

TEST_F(Operations, TriggerKeepsTheTenantAndATakenRunIdIsAConflict) {
  syncChain();
  const RunKey key = triggerRun(store_, clock_.now(), {"etl", "mine", "", std::nullopt});
  EXPECT_EQ(store_.run(key)->tenant, "team-a");
  EXPECT_GT(store_.run(key)->uid, 0);
  EXPECT_EQ(errorOf([&] { triggerRun(store_, clock_.now(), {"etl", "mine", "", std::nullopt}); }), ErrorKind::kConflict);
  EXPECT_EQ(errorOf([&] { triggerRun(store_, clock_.now(), {"etl", "backfill__x", "", std::nullopt}); }),
            ErrorKind::kBadInput);
  EXPECT_EQ(errorOf([&] { triggerRun(store_, clock_.now(), {"nope", "", "", std::nullopt}); }), ErrorKind::kNotFound);
}

TEST_F(Operations, ATaskLogIsReadThroughTheReaderWithTheRunsUidAndTheClaim) {
  syncChain();
  const RunKey key = runWith("r1", at("2026-05-28T10:00:00Z"), {{"extract", TaskState::kRunning}}, DagRunState::kRunning);
  LogQuery seen;
  LogReadFn reader = [&](const LogQuery& q) -> Result<LogChunk> {
    seen = q;
    return LogChunk{"hello\n", q.offset + 6, true};
  };
  TaskLog log = readTaskLog(store_, reader, {key, "extract", std::nullopt, 4, 100});
  EXPECT_EQ(seen.offset, 4u);
  EXPECT_EQ(seen.run_uid, store_.run(key)->uid);
  EXPECT_EQ(seen.attempt.try_number, 1);
  EXPECT_EQ(log.chunk.text, "hello\n");
  EXPECT_FALSE(log.chunk.complete);  // the task still runs, whatever the reader says
  EXPECT_EQ(errorOf([&] { readTaskLog(store_, reader, {key, "extract", 2, 0, 100}); }), ErrorKind::kNotFound);
  EXPECT_EQ(errorOf([&] { readTaskLog(store_, reader, {key, "nope", std::nullopt, 0, 100}); }), ErrorKind::kNotFound);
  markTask(store_, clock_.now(), key, "extract", "success", "a");
  EXPECT_TRUE(readTaskLog(store_, reader, {key, "extract", std::nullopt, 0, 100}).chunk.complete);
}

}  // namespace
}  // namespace leoflow::host
