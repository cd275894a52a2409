// The Store contract, SDK 3.0 part: a person's commands (clearTasks, markTask, markRun, cancelRun,
// deleteDag), run uids, tenants, the logical-date slot a scheduled or backfill run needs, the
// claiming execution on the task instance. Same fixture and style as store_contract.cpp: each test
// states one rule of store.h as someone operating the scheduler would notice it being broken.
//
// Where store.h leaves a point open, the reading chosen is written as a "Reading:" comment at the
// test that depends on it.
#include "contract/store_contract.h"
#include "contract/store_contract_helpers.h"

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/core.h>

namespace leoflow::contract {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using namespace helpers;

/// A RunFilter built field by field (aggregate initialization would leave fields unnamed).
struct Filter {
  RunFilter f;
  Filter& dag(const std::string& dag_id) { f.dag_id = dag_id; return *this; }
  Filter& tenant(const std::string& tenant) { f.tenant = tenant; return *this; }
  Filter& since(Timestamp t) { f.logical_since = t; return *this; }
  Filter& until(Timestamp t) { f.logical_until = t; return *this; }
  Filter& limit(std::size_t n) { f.limit = n; return *this; }
};

Ids runIds(const std::vector<RunRecord>& runs) {
  Ids out;
  for (const RunRecord& r : runs) out.push_back(r.key.run_id);
  return out;
}

ClearRequest clearOf(const RunKey& key, std::vector<ClearTask> tasks, Timestamp when, bool failed_only = false,
                     const std::string& note = "cleared by alice@host1") {
  return ClearRequest{key, std::move(tasks), failed_only, note, when};
}

// ===================================================================================================
// runs clear

TEST_P(StoreContract, ClearStartsANewAttemptOfAFailedTaskAndReopensTheRun) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b"});
  w.runTo(key, "a", false, 10);
  w.runTo(key, "b", true, 10, "host-a/101/e2");
  ASSERT_TRUE(ok(store().setRunState(w.term(), key, R::kRunning, R::kFailed, at(30), "a failed")));
  const std::string b_before = str(w.task(key, "b"));

  auto out = store().clearTasks(clearOf(key, {ClearTask{"a", 2}}, at(100)));
  ASSERT_TRUE(ok(out));
  EXPECT_EQ(out->changed_tasks, Ids{"a"});
  EXPECT_EQ(out->run_state, R::kRunning);

  const RunRecord r = w.load(key);
  EXPECT_EQ(r.state, R::kRunning) << str(r);
  EXPECT_FALSE(r.ended_at.has_value()) << str(r);
  EXPECT_EQ(r.started_at, at(100)) << str(r);
  EXPECT_EQ(r.note, "a failed") << "the run's note stays";
  EXPECT_EQ(r.dag_version, 1) << "the run stays on its DAG version";

  const TaskInstance a = w.task(key, "a");
  EXPECT_EQ(a.state, S::kNone) << str(a);
  EXPECT_EQ(a.try_number, 2) << str(a);
  EXPECT_EQ(a.max_tries, 1 + 2 + 1) << "old try + retries + 1: " << str(a);
  EXPECT_FALSE(a.scheduled_at.has_value()) << str(a);
  EXPECT_FALSE(a.queued_at.has_value()) << str(a);
  EXPECT_FALSE(a.started_at.has_value()) << str(a);
  EXPECT_FALSE(a.ended_at.has_value()) << str(a);
  EXPECT_FALSE(a.last_heartbeat_at.has_value()) << str(a);
  EXPECT_FALSE(a.exit_code.has_value()) << str(a);
  EXPECT_EQ(a.execution_id, "") << str(a);
  EXPECT_EQ(a.note, "cleared by alice@host1") << str(a);

  EXPECT_EQ(str(w.task(key, "b")), b_before) << "an unlisted task is left alone";
}

TEST_P(StoreContract, ClearReopensASucceededRunAndRerunsASucceededTask) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"}, 3);
  w.runTo(key, "a", true, 10);
  ASSERT_TRUE(ok(store().setRunState(w.term(), key, R::kRunning, R::kSuccess, at(20), "")));

  auto out = store().clearTasks(clearOf(key, {ClearTask{"a", 0}}, at(50)));
  ASSERT_TRUE(ok(out));
  EXPECT_EQ(out->changed_tasks, Ids{"a"});
  EXPECT_EQ(out->run_state, R::kRunning);
  const TaskInstance a = w.task(key, "a");
  EXPECT_EQ(a.state, S::kNone) << str(a);
  EXPECT_EQ(a.try_number, 2) << str(a);
  // max_tries comes from the request's retries, not from what the instance had (3).
  EXPECT_EQ(a.max_tries, 2) << str(a);
  const RunRecord r = w.load(key);
  EXPECT_EQ(r.state, R::kRunning);
  EXPECT_FALSE(r.ended_at.has_value());
  EXPECT_EQ(r.started_at, at(50));
}

TEST_P(StoreContract, ClearOfANeverStartedInstanceKeepsItsTryAndMaxTries) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b", "c"}, 3);
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued}, 10);  // dispatched, never claimed
  ASSERT_TRUE(w.move(key, "b", S::kNone, S::kScheduled, 10));
  ASSERT_TRUE(w.move(key, "b", S::kScheduled, S::kFailed, 11, 1, "no executor for a \"spark\" task", true));
  ASSERT_TRUE(w.move(key, "c", S::kNone, S::kUpstreamFailed, 12));

  auto out = store().clearTasks(clearOf(key, {ClearTask{"a", 5}, ClearTask{"b", 5}, ClearTask{"c", 5}}, at(40)));
  ASSERT_TRUE(ok(out));
  EXPECT_EQ(out->changed_tasks, (Ids{"a", "b", "c"}));
  for (const char* id : {"a", "b", "c"}) {
    const TaskInstance t = w.task(key, id);
    EXPECT_EQ(t.state, S::kNone) << str(t);
    EXPECT_EQ(t.try_number, 1) << str(t);
    EXPECT_FALSE(t.scheduled_at.has_value()) << str(t);
    EXPECT_FALSE(t.queued_at.has_value()) << str(t);
    EXPECT_FALSE(t.ended_at.has_value()) << str(t);
    EXPECT_EQ(t.note, "cleared by alice@host1") << str(t);
  }
  EXPECT_EQ(w.task(key, "a").max_tries, 3);
  EXPECT_EQ(w.task(key, "b").max_tries, 1) << "its exhausted retries stay exhausted";
  EXPECT_EQ(w.task(key, "c").max_tries, 3);
}

TEST_P(StoreContract, ClearWithFailedOnlyClearsOnlyFailedAndUpstreamFailedInRunOrder) {
  Scenario w(store());
  // Ids in materialization order are also in alphabetical order, so "the run's order" means one thing.
  const RunKey key = w.started("etl", "r1", {"a", "b", "c", "d", "e"});
  w.runTo(key, "a", false, 10);
  w.runTo(key, "b", true, 10, "host-a/101/e2");
  ASSERT_TRUE(w.move(key, "c", S::kNone, S::kUpstreamFailed, 15));
  ASSERT_TRUE(w.move(key, "d", S::kNone, S::kSkipped, 15));
  const std::string b_before = str(w.task(key, "b"));
  const std::string d_before = str(w.task(key, "d"));
  const std::string e_before = str(w.task(key, "e"));

  // Listed in reverse: the outcome still names them in the run's order.
  auto out = store().clearTasks(clearOf(
      key, {ClearTask{"e", 0}, ClearTask{"d", 0}, ClearTask{"c", 0}, ClearTask{"b", 0}, ClearTask{"a", 0}},
      at(40), true));
  ASSERT_TRUE(ok(out));
  EXPECT_EQ(out->changed_tasks, (Ids{"a", "c"}));
  EXPECT_EQ(w.task(key, "a").state, S::kNone);
  EXPECT_EQ(w.task(key, "a").try_number, 2) << "a started";
  EXPECT_EQ(w.task(key, "c").state, S::kNone);
  EXPECT_EQ(w.task(key, "c").try_number, 1) << "c never started";
  EXPECT_EQ(str(w.task(key, "b")), b_before);
  EXPECT_EQ(str(w.task(key, "d")), d_before);
  EXPECT_EQ(str(w.task(key, "e")), e_before);
}

TEST_P(StoreContract, ClearingNothingIsOkAndChangesNothing) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b"});
  w.runTo(key, "a", true, 10);
  w.runTo(key, "b", true, 10, "host-a/101/e2");
  ASSERT_TRUE(ok(store().setRunState(w.term(), key, R::kRunning, R::kSuccess, at(20), "done")));
  const std::string before = str(w.load(key));

  // Nothing failed: failed_only clears nothing, and the finished run stays finished.
  auto out = store().clearTasks(clearOf(key, {ClearTask{"a", 0}, ClearTask{"b", 0}}, at(40), true));
  ASSERT_TRUE(ok(out));
  EXPECT_TRUE(out->changed_tasks.empty());
  EXPECT_EQ(out->run_state, R::kSuccess);
  // No task listed at all.
  auto none = store().clearTasks(clearOf(key, {}, at(41)));
  ASSERT_TRUE(ok(none));
  EXPECT_TRUE(none->changed_tasks.empty());
  EXPECT_EQ(none->run_state, R::kSuccess);
  EXPECT_EQ(str(w.load(key)), before);

  // A task already in none is not cleared: its note stays, and the running run keeps its start.
  const RunKey fresh = w.started("etl", "r2", {"a"}, 1, 50);
  auto idle = store().clearTasks(clearOf(fresh, {ClearTask{"a", 0}}, at(60)));
  ASSERT_TRUE(ok(idle));
  EXPECT_TRUE(idle->changed_tasks.empty());
  EXPECT_EQ(idle->run_state, R::kRunning);
  EXPECT_EQ(w.load(fresh).started_at, at(51));
  EXPECT_EQ(w.task(fresh, "a").note, "");
}

TEST_P(StoreContract, ClearRefusesAQueuedRunAnUnknownRunAndAnUnknownTask) {
  Scenario w(store());
  const RunKey queued = w.run("etl", "waiting");
  EXPECT_TRUE(hasCode(store().clearTasks(clearOf(queued, {ClearTask{"a", 0}}, at(5))), StatusCode::kConflict));
  EXPECT_TRUE(hasCode(store().clearTasks(clearOf(queued, {}, at(5))), StatusCode::kConflict))
      << "a queued run has nothing to clear";
  EXPECT_EQ(w.load(queued).state, R::kQueued);
  EXPECT_TRUE(hasCode(store().clearTasks(clearOf(RunKey{"etl", "ghost"}, {ClearTask{"a", 0}}, at(5))),
                      StatusCode::kNotFound));

  const RunKey key = w.started("etl", "r1", {"a"});
  w.runTo(key, "a", false, 10);
  const std::string before = str(w.load(key));
  // One bad task refuses the whole command: the listed failed task is not cleared either.
  EXPECT_TRUE(hasCode(store().clearTasks(clearOf(key, {ClearTask{"a", 0}, ClearTask{"ghost", 0}}, at(20))),
                      StatusCode::kNotFound));
  EXPECT_EQ(str(w.load(key)), before);
}

TEST_P(StoreContract, AfterAClearTheOldAttemptsReportsAreRefused) {  // BEHAVIOUR §10 item 3
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"});
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10, 1, "host-a/101/old");
  ASSERT_EQ(w.task(key, "a").execution_id, "host-a/101/old");

  // Cleared while it runs: the running execution is no longer the current attempt.
  auto out = store().clearTasks(clearOf(key, {ClearTask{"a", 1}}, at(20)));
  ASSERT_TRUE(ok(out));
  EXPECT_EQ(out->changed_tasks, Ids{"a"});
  const ExecutionRef old = w.attempt(key, "a", 1, "host-a/101/old");
  EXPECT_TRUE(hasCode(store().reportHeartbeat(old, at(21)), StatusCode::kConflict));
  EXPECT_TRUE(hasCode(store().reportFinished(old, TaskOutcome{true, 0, ""}, at(22)), StatusCode::kConflict));
  EXPECT_TRUE(hasCode(store().reportRunning(old, at(23)), StatusCode::kConflict));
  TaskInstance a = w.task(key, "a");
  EXPECT_EQ(a.state, S::kNone) << str(a);
  EXPECT_EQ(a.try_number, 2) << str(a);
  EXPECT_FALSE(a.ended_at.has_value()) << str(a);
  EXPECT_EQ(a.execution_id, "") << str(a);

  // The new attempt runs under its own execution.
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 30, 2, "host-b/202/new");
  EXPECT_TRUE(hasCode(store().reportFinished(old, TaskOutcome{false, 1, "late"}, at(40)), StatusCode::kConflict));
  ASSERT_TRUE(ok(store().reportFinished(w.attempt(key, "a", 2, "host-b/202/new"), TaskOutcome{true, 0, ""}, at(41))));
  a = w.task(key, "a");
  EXPECT_EQ(a.state, S::kSuccess) << str(a);
  EXPECT_EQ(a.try_number, 2) << str(a);
  EXPECT_EQ(a.execution_id, "host-b/202/new") << str(a);
}

// ===================================================================================================
// The claiming execution on the instance (ARCHITECTURE §8.13)

TEST_P(StoreContract, TheInstanceShowsTheExecutionThatClaimedTheCurrentAttempt) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"}, 2);
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued}, 10);
  EXPECT_EQ(w.task(key, "a").execution_id, "") << "no claim before the running report";

  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "a", 1, "host-a/101/e7"), at(20))));
  EXPECT_EQ(w.task(key, "a").execution_id, "host-a/101/e7");
  // Reading: the claim stays recorded after the attempt ends (it names who ran it); it is an
  // attribute of the attempt, so it goes only when a new attempt starts.
  ASSERT_TRUE(ok(store().reportFinished(w.attempt(key, "a", 1, "host-a/101/e7"), TaskOutcome{false, 2, "exit code 2"},
                                        at(21))));
  EXPECT_EQ(w.task(key, "a").execution_id, "host-a/101/e7");

  // Reading (domain.h: "empty before the claim"): the planner's retry starts a new attempt, which
  // nobody has claimed yet.
  ASSERT_TRUE(w.move(key, "a", S::kFailed, S::kUpForRetry, 22));
  ASSERT_TRUE(w.move(key, "a", S::kUpForRetry, S::kNone, 23));
  const TaskInstance a = w.task(key, "a");
  EXPECT_EQ(a.try_number, 2) << str(a);
  EXPECT_EQ(a.execution_id, "") << str(a);
}

// ===================================================================================================
// tasks mark

TEST_P(StoreContract, MarkTaskSuccessKeepsTheTryStampsTheEndAndEndsTheAttempt) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b"}, 3);
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10);

  auto out = store().markTask(MarkTaskRequest{key, "a", S::kSuccess, "marked success by alice@host1", at(50)});
  ASSERT_TRUE(ok(out));
  EXPECT_EQ(out->changed_tasks, Ids{"a"});
  EXPECT_EQ(out->run_state, R::kRunning);
  const TaskInstance a = w.task(key, "a");
  EXPECT_EQ(a.state, S::kSuccess) << str(a);
  EXPECT_EQ(a.try_number, 1) << str(a);
  EXPECT_EQ(a.max_tries, 3) << "success leaves the retries alone: " << str(a);
  EXPECT_EQ(a.ended_at, at(50)) << str(a);
  EXPECT_EQ(a.note, "marked success by alice@host1") << str(a);
  // The attempt ended: its execution's reports no longer land.
  EXPECT_TRUE(hasCode(store().reportFinished(w.attempt(key, "a"), TaskOutcome{false, 1, "late"}, at(51)),
                      StatusCode::kConflict));
  EXPECT_EQ(w.task(key, "a").state, S::kSuccess);
  EXPECT_EQ(w.task(key, "b").state, S::kNone);
}

TEST_P(StoreContract, MarkTaskFailedExhaustsTheRetries) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b"}, 3);
  w.walk(key, "b", {S::kNone, S::kScheduled, S::kQueued}, 10);

  auto out = store().markTask(MarkTaskRequest{key, "a", S::kFailed, "marked failed by bob", at(40)});
  ASSERT_TRUE(ok(out));
  EXPECT_EQ(out->changed_tasks, Ids{"a"});
  TaskInstance a = w.task(key, "a");
  EXPECT_EQ(a.state, S::kFailed) << str(a);
  EXPECT_EQ(a.try_number, 1) << str(a);
  EXPECT_EQ(a.max_tries, 1) << "no retry may follow: " << str(a);
  EXPECT_EQ(a.ended_at, at(40)) << str(a);
  EXPECT_EQ(a.note, "marked failed by bob") << str(a);

  ASSERT_TRUE(ok(store().markTask(MarkTaskRequest{key, "b", S::kFailed, "marked failed by bob", at(41)})));
  const TaskInstance b = w.task(key, "b");
  EXPECT_EQ(b.state, S::kFailed) << str(b);
  EXPECT_EQ(b.max_tries, b.try_number) << str(b);
  EXPECT_EQ(b.ended_at, at(41)) << str(b);
}

TEST_P(StoreContract, MarkTaskSkippedStampsTheEnd) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"}, 2);
  ASSERT_TRUE(w.move(key, "a", S::kNone, S::kScheduled, 10));
  auto out = store().markTask(MarkTaskRequest{key, "a", S::kSkipped, "skipped by carol", at(30)});
  ASSERT_TRUE(ok(out));
  EXPECT_EQ(out->changed_tasks, Ids{"a"});
  EXPECT_EQ(out->run_state, R::kRunning);
  const TaskInstance a = w.task(key, "a");
  EXPECT_EQ(a.state, S::kSkipped) << str(a);
  EXPECT_EQ(a.try_number, 1) << str(a);
  EXPECT_EQ(a.max_tries, 2) << str(a);
  EXPECT_EQ(a.ended_at, at(30)) << str(a);
  EXPECT_EQ(a.note, "skipped by carol") << str(a);
}

TEST_P(StoreContract, MarkTaskReopensAFinishedRun) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b"});
  w.runTo(key, "a", false, 10);
  w.runTo(key, "b", true, 10, "host-a/101/e2");
  ASSERT_TRUE(ok(store().setRunState(w.term(), key, R::kRunning, R::kFailed, at(20), "a failed")));

  auto out = store().markTask(MarkTaskRequest{key, "a", S::kSuccess, "marked success by alice", at(60)});
  ASSERT_TRUE(ok(out));
  EXPECT_EQ(out->run_state, R::kRunning);
  const RunRecord r = w.load(key);
  EXPECT_EQ(r.state, R::kRunning) << "it finalizes again: " << str(r);
  EXPECT_FALSE(r.ended_at.has_value()) << str(r);
  EXPECT_EQ(w.task(key, "a").state, S::kSuccess);
  EXPECT_EQ(w.task(key, "b").state, S::kSuccess);
}

TEST_P(StoreContract, MarkTaskRefusalsChangeNothing) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b"});
  w.runTo(key, "a", true, 10);
  const std::string before = str(w.load(key));

  EXPECT_TRUE(hasCode(store().markTask(MarkTaskRequest{key, "a", S::kSuccess, "again", at(30)}),
                      StatusCode::kConflict))
      << "already success";
  EXPECT_TRUE(hasCode(store().markTask(MarkTaskRequest{key, "b", S::kRunning, "x", at(30)}),
                      StatusCode::kInvalidArgument));
  EXPECT_TRUE(hasCode(store().markTask(MarkTaskRequest{key, "b", S::kUpstreamFailed, "x", at(30)}),
                      StatusCode::kInvalidArgument));
  EXPECT_TRUE(hasCode(store().markTask(MarkTaskRequest{key, "b", S::kNone, "x", at(30)}),
                      StatusCode::kInvalidArgument));
  EXPECT_TRUE(hasCode(store().markTask(MarkTaskRequest{key, "ghost", S::kSuccess, "x", at(30)}),
                      StatusCode::kNotFound));
  EXPECT_TRUE(hasCode(store().markTask(MarkTaskRequest{RunKey{"etl", "ghost"}, "a", S::kSuccess, "x", at(30)}),
                      StatusCode::kNotFound));
  EXPECT_EQ(str(w.load(key)), before);

  const RunKey queued = w.run("etl", "waiting", 5);
  EXPECT_TRUE(hasCode(store().markTask(MarkTaskRequest{queued, "a", S::kSuccess, "x", at(30)}),
                      StatusCode::kConflict));
  EXPECT_EQ(w.load(queued).state, R::kQueued);
}

// ===================================================================================================
// runs mark

TEST_P(StoreContract, MarkRunSuccessFinishesEveryUnfinishedInstance) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b", "c", "d", "e", "f"}, 2);
  w.runTo(key, "a", true, 10);                                                        // success: stays
  w.walk(key, "b", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10, 1, "host-a/101/e2");  // running
  w.walk(key, "c", {S::kNone, S::kScheduled, S::kQueued}, 10);                     // queued
  w.walk(key, "d", {S::kNone, S::kScheduled}, 10);                                 // scheduled
  w.walk(key, "e", {S::kNone, S::kScheduled, S::kQueued, S::kRunning, S::kFailed, S::kUpForRetry}, 10, 1,
         "host-a/101/e5");                                                          // up_for_retry
  // f: none
  const std::string a_before = str(w.task(key, "a"));

  auto out = store().markRun(MarkRunRequest{key, R::kSuccess, "marked success by alice", at(60)});
  ASSERT_TRUE(ok(out));
  EXPECT_EQ(out->changed_tasks, (Ids{"b", "c", "d", "e", "f"}));
  EXPECT_EQ(out->run_state, R::kSuccess);
  for (const char* id : {"b", "c", "d", "e", "f"}) {
    const TaskInstance t = w.task(key, id);
    EXPECT_EQ(t.state, S::kSuccess) << str(t);
    EXPECT_EQ(t.ended_at, at(60)) << str(t);
    EXPECT_EQ(t.note, "marked success by alice") << str(t);
    EXPECT_EQ(t.try_number, 1) << str(t);
  }
  EXPECT_EQ(str(w.task(key, "a")), a_before) << "a finished instance stays as it ended";
  const RunRecord r = w.load(key);
  EXPECT_EQ(r.state, R::kSuccess) << str(r);
  EXPECT_EQ(r.ended_at, at(60)) << str(r);
  EXPECT_EQ(r.started_at, at(1)) << "it had started: " << str(r);
  EXPECT_EQ(r.note, "marked success by alice") << str(r);
  EXPECT_TRUE(hasCode(store().reportFinished(w.attempt(key, "b", 1, "host-a/101/e2"), TaskOutcome{false, 1, "late"},
                                             at(61)),
                      StatusCode::kConflict));
}

TEST_P(StoreContract, MarkRunFailedFailsUnfinishedInstancesWithoutRetries) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b", "c", "d"}, 3);
  w.runTo(key, "a", true, 10);
  w.walk(key, "b", {S::kNone, S::kScheduled, S::kQueued}, 10);
  ASSERT_TRUE(w.move(key, "c", S::kNone, S::kSkipped, 10));
  // d: none

  auto out = store().markRun(MarkRunRequest{key, R::kFailed, "marked failed by bob", at(70)});
  ASSERT_TRUE(ok(out));
  EXPECT_EQ(out->changed_tasks, (Ids{"b", "d"}));
  EXPECT_EQ(out->run_state, R::kFailed);
  for (const char* id : {"b", "d"}) {
    const TaskInstance t = w.task(key, id);
    EXPECT_EQ(t.state, S::kFailed) << str(t);
    EXPECT_EQ(t.max_tries, t.try_number) << "retries exhausted: " << str(t);
    EXPECT_EQ(t.ended_at, at(70)) << str(t);
    EXPECT_EQ(t.note, "marked failed by bob") << str(t);
  }
  EXPECT_EQ(w.task(key, "a").state, S::kSuccess);
  EXPECT_EQ(w.task(key, "c").state, S::kSkipped);
  EXPECT_EQ(w.task(key, "c").note, "");
  const RunRecord r = w.load(key);
  EXPECT_EQ(r.state, R::kFailed);
  EXPECT_EQ(r.ended_at, at(70));
  EXPECT_EQ(r.note, "marked failed by bob");
}

TEST_P(StoreContract, MarkRunFinishesAQueuedRunThatHasNoInstances) {
  Scenario w(store());
  const RunKey failing = w.run("etl", "r1", 5);
  const RunKey passing = w.run("etl", "r2", 6);

  auto failed = store().markRun(MarkRunRequest{failing, R::kFailed, "marked failed by bob", at(30)});
  ASSERT_TRUE(ok(failed));
  EXPECT_TRUE(failed->changed_tasks.empty());
  EXPECT_EQ(failed->run_state, R::kFailed);
  RunRecord r = w.load(failing);
  EXPECT_EQ(r.state, R::kFailed) << str(r);
  EXPECT_EQ(r.started_at, at(30)) << "it never started: " << str(r);
  EXPECT_EQ(r.ended_at, at(30)) << str(r);
  EXPECT_EQ(r.note, "marked failed by bob") << str(r);
  EXPECT_TRUE(r.tasks.empty());

  auto passed = store().markRun(MarkRunRequest{passing, R::kSuccess, "marked success by bob", at(31)});
  ASSERT_TRUE(ok(passed));
  EXPECT_EQ(passed->run_state, R::kSuccess);
  r = w.load(passing);
  EXPECT_EQ(r.state, R::kSuccess) << str(r);
  EXPECT_EQ(r.started_at, at(31)) << str(r);
  EXPECT_EQ(r.ended_at, at(31)) << str(r);

  // No longer active.
  auto active = store().listActiveRuns();
  ASSERT_TRUE(ok(active));
  EXPECT_TRUE(active->empty());
}

TEST_P(StoreContract, MarkRunIntoItsOwnStateIsAConflictAndOtherTargetsAreInvalid) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"});
  w.runTo(key, "a", true, 10);
  ASSERT_TRUE(ok(store().setRunState(w.term(), key, R::kRunning, R::kSuccess, at(20), "")));
  const std::string before = str(w.load(key));

  EXPECT_TRUE(hasCode(store().markRun(MarkRunRequest{key, R::kSuccess, "again", at(30)}), StatusCode::kConflict));
  EXPECT_TRUE(hasCode(store().markRun(MarkRunRequest{key, R::kRunning, "x", at(30)}), StatusCode::kInvalidArgument));
  EXPECT_TRUE(hasCode(store().markRun(MarkRunRequest{key, R::kQueued, "x", at(30)}), StatusCode::kInvalidArgument));
  EXPECT_TRUE(hasCode(store().markRun(MarkRunRequest{RunKey{"etl", "ghost"}, R::kFailed, "x", at(30)}),
                      StatusCode::kNotFound));
  EXPECT_EQ(str(w.load(key)), before);

  // Reading: only "already in `to`" is a conflict, so a succeeded run may be marked failed; its
  // finished instances stay as they are.
  auto out = store().markRun(MarkRunRequest{key, R::kFailed, "marked failed by bob", at(40)});
  ASSERT_TRUE(ok(out));
  EXPECT_TRUE(out->changed_tasks.empty());
  const RunRecord r = w.load(key);
  EXPECT_EQ(r.state, R::kFailed);
  EXPECT_EQ(r.ended_at, at(40));
  EXPECT_EQ(w.task(key, "a").state, S::kSuccess);
}

// ===================================================================================================
// runs cancel

TEST_P(StoreContract, CancelFailsTheRunFailsWhatRunsAndSkipsWhatHasNotStarted) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b", "c", "d", "e", "f", "g"}, 3);
  w.runTo(key, "a", true, 10);                                                             // success
  w.walk(key, "b", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10, 1, "host-a/101/e2");  // running
  w.walk(key, "c", {S::kNone, S::kScheduled, S::kQueued}, 10);                          // queued
  w.walk(key, "d", {S::kNone, S::kScheduled}, 10);                                      // scheduled
  // e: none
  w.walk(key, "f", {S::kNone, S::kScheduled, S::kQueued, S::kRunning, S::kFailed, S::kUpForRetry}, 10, 1,
         "host-a/101/e6");                                                               // up_for_retry
  ASSERT_TRUE(w.move(key, "g", S::kNone, S::kUpstreamFailed, 12));                     // upstream_failed
  const std::string a_before = str(w.task(key, "a"));
  const std::string g_before = str(w.task(key, "g"));

  auto out = store().cancelRun(CancelRunRequest{key, "cancelled by alice@host1", at(80)});
  ASSERT_TRUE(ok(out));
  EXPECT_EQ(out->changed_tasks, (Ids{"b", "c", "d", "e", "f"}));
  EXPECT_EQ(out->run_state, R::kFailed);

  for (const char* id : {"b", "c"}) {
    const TaskInstance t = w.task(key, id);
    EXPECT_EQ(t.state, S::kFailed) << str(t);
    EXPECT_EQ(t.try_number, 1) << str(t);
    EXPECT_EQ(t.max_tries, 1) << "max_tries := try_number: " << str(t);
    EXPECT_EQ(t.ended_at, at(80)) << str(t);
    EXPECT_EQ(t.note, "cancelled by alice@host1") << str(t);
  }
  for (const char* id : {"d", "e", "f"}) {
    const TaskInstance t = w.task(key, id);
    EXPECT_EQ(t.state, S::kSkipped) << str(t);
    EXPECT_EQ(t.try_number, 1) << str(t);
    EXPECT_EQ(t.note, "cancelled by alice@host1") << str(t);
    // Reading: store.h names only the note for these, but every entry into skipped stamps ended_at
    // (TaskTransitionWrite, markTask), and `tasks list` should show when each one stopped.
    EXPECT_EQ(t.ended_at, at(80)) << str(t);
  }
  EXPECT_EQ(str(w.task(key, "a")), a_before);
  EXPECT_EQ(str(w.task(key, "g")), g_before);

  const RunRecord r = w.load(key);
  EXPECT_EQ(r.state, R::kFailed) << str(r);
  EXPECT_EQ(r.ended_at, at(80)) << str(r);
  EXPECT_EQ(r.note, "cancelled by alice@host1") << str(r);

  // The running execution's reports no longer land.
  const ExecutionRef b = w.attempt(key, "b", 1, "host-a/101/e2");
  EXPECT_TRUE(hasCode(store().reportHeartbeat(b, at(81)), StatusCode::kConflict));
  EXPECT_TRUE(hasCode(store().reportFinished(b, TaskOutcome{true, 0, ""}, at(82)), StatusCode::kConflict));
  EXPECT_EQ(w.task(key, "b").state, S::kFailed);
}

TEST_P(StoreContract, CancelEndsAQueuedRun) {
  Scenario w(store());
  const RunKey key = w.run("etl", "waiting", 5);
  auto out = store().cancelRun(CancelRunRequest{key, "cancelled by alice@host1", at(20)});
  ASSERT_TRUE(ok(out));
  EXPECT_TRUE(out->changed_tasks.empty());
  EXPECT_EQ(out->run_state, R::kFailed);
  const RunRecord r = w.load(key);
  EXPECT_EQ(r.state, R::kFailed) << str(r);
  EXPECT_EQ(r.ended_at, at(20)) << str(r);
  EXPECT_EQ(r.note, "cancelled by alice@host1") << str(r);
  auto active = store().listActiveRuns();
  ASSERT_TRUE(ok(active));
  EXPECT_TRUE(active->empty());
}

TEST_P(StoreContract, CancellingAFinishedRunIsAConflict) {
  Scenario w(store());
  const RunKey done = w.started("etl", "done", {"a"});
  w.runTo(done, "a", true, 10);
  ASSERT_TRUE(ok(store().setRunState(w.term(), done, R::kRunning, R::kSuccess, at(20), "")));
  const RunKey broken = w.started("etl", "broken", {"a"});
  w.runTo(broken, "a", false, 10);
  ASSERT_TRUE(ok(store().setRunState(w.term(), broken, R::kRunning, R::kFailed, at(20), "a failed")));
  const std::string done_before = str(w.load(done));
  const std::string broken_before = str(w.load(broken));

  EXPECT_TRUE(hasCode(store().cancelRun(CancelRunRequest{done, "cancelled by x", at(30)}), StatusCode::kConflict));
  EXPECT_TRUE(hasCode(store().cancelRun(CancelRunRequest{broken, "cancelled by x", at(30)}), StatusCode::kConflict));
  EXPECT_TRUE(hasCode(store().cancelRun(CancelRunRequest{RunKey{"etl", "ghost"}, "cancelled by x", at(30)}),
                      StatusCode::kNotFound));
  EXPECT_EQ(str(w.load(done)), done_before);
  EXPECT_EQ(str(w.load(broken)), broken_before);
}

TEST_P(StoreContract, CancelRunsAnswersEachRunInTheOrderGivenAsCancelRunWould) {
  Scenario w(store());
  const RunKey busy = w.started("etl", "r1", {"a", "b", "c"});
  w.runTo(busy, "a", true, 10);
  w.walk(busy, "b", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10, 1, "host-a/101/e2");
  const RunKey done = w.started("etl", "done", {"a"});
  w.runTo(done, "a", true, 10);
  ASSERT_TRUE(ok(store().setRunState(w.term(), done, R::kRunning, R::kSuccess, at(20), "")));
  const RunKey waiting = w.run("etl", "waiting", 5);
  // Sorts before every other id: a store that cancels in its own order still answers in ours.
  const RunKey first_by_name = w.started("ml", "a-first", {"x"});
  const std::string done_before = str(w.load(done));

  const std::vector<CancelRunRequest> requests{
      {busy, "cancelled by alice@host1 (dag deleted)", at(80)},
      {done, "cancelled by alice@host1 (dag deleted)", at(80)},
      {RunKey{"etl", "ghost"}, "cancelled by alice@host1 (dag deleted)", at(80)},
      {waiting, "cancelled by alice@host1 (dag deleted)", at(80)},
      {first_by_name, "cancelled by alice@host1 (dag deleted)", at(80)},
  };
  const std::vector<Result<OperatorOutcome>> out = store().cancelRuns(requests);
  ASSERT_EQ(out.size(), requests.size());
  ASSERT_TRUE(ok(out[0]));
  EXPECT_EQ(out[0]->changed_tasks, (Ids{"b", "c"}));
  EXPECT_EQ(out[0]->run_state, R::kFailed);
  EXPECT_TRUE(hasCode(out[1], StatusCode::kConflict)) << "a finished run";
  EXPECT_TRUE(hasCode(out[2], StatusCode::kNotFound)) << "a run that does not exist";
  ASSERT_TRUE(ok(out[3]));
  EXPECT_TRUE(out[3]->changed_tasks.empty());
  ASSERT_TRUE(ok(out[4]));
  EXPECT_EQ(out[4]->changed_tasks, (Ids{"x"}));

  // Each run as cancelRun leaves it; the refusals changed nothing, and stopped nothing after them.
  EXPECT_EQ(w.task(busy, "a").state, S::kSuccess);
  EXPECT_EQ(w.task(busy, "b").state, S::kFailed);
  EXPECT_EQ(w.task(busy, "b").max_tries, 1);
  EXPECT_EQ(w.task(busy, "c").state, S::kSkipped);
  EXPECT_EQ(w.task(busy, "c").note, "cancelled by alice@host1 (dag deleted)");
  EXPECT_EQ(w.task(first_by_name, "x").state, S::kSkipped);
  for (const RunKey& k : {busy, waiting, first_by_name}) {
    const RunRecord r = w.load(k);
    EXPECT_EQ(r.state, R::kFailed) << str(r);
    EXPECT_EQ(r.ended_at, at(80)) << str(r);
    EXPECT_EQ(r.note, "cancelled by alice@host1 (dag deleted)") << str(r);
  }
  EXPECT_EQ(str(w.load(done)), done_before);
  auto active = store().listActiveRuns();
  ASSERT_TRUE(ok(active));
  EXPECT_TRUE(active->empty());

  // Asked again, every run has finished.
  const std::vector<Result<OperatorOutcome>> again = store().cancelRuns(requests);
  ASSERT_EQ(again.size(), requests.size());
  for (std::size_t i : {0, 1, 3, 4}) EXPECT_TRUE(hasCode(again[i], StatusCode::kConflict)) << i;
  EXPECT_TRUE(hasCode(again[2], StatusCode::kNotFound));
  EXPECT_TRUE(store().cancelRuns({}).empty());
}

TEST_P(StoreContract, CancelRunsPublishesEachRunAndEachMovedTask) {
  RecordingSink sink;
  Subscription sub(store(), sink);
  ASSERT_TRUE(ok(sub.status()));
  Scenario w(store());
  const RunKey one = w.started("etl", "r1", {"a", "b"});
  w.walk(one, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10, 1, "host-a/101/e1");
  const RunKey two = w.started("etl", "r2", {"a"});
  ASSERT_TRUE(sink.waitFor(isTask(one, "a")));

  sink.clear();
  const std::vector<CancelRunRequest> requests{{one, "cancelled by alice", at(30)}, {two, "cancelled by alice", at(30)}};
  const auto out = store().cancelRuns(requests);
  ASSERT_EQ(out.size(), 2u);
  ASSERT_TRUE(ok(out[0]));
  ASSERT_TRUE(ok(out[1]));
  EXPECT_TRUE(sink.waitFor(isRun(one)));
  EXPECT_TRUE(sink.waitFor(isTask(one, "a")));
  EXPECT_TRUE(sink.waitFor(isTask(one, "b")));
  EXPECT_TRUE(sink.waitFor(isRun(two)));
  EXPECT_TRUE(sink.waitFor(isTask(two, "a")));
}

TEST_P(StoreContract, ClearRunsAnswersEachRunInTheOrderGivenAsClearTasksWould) {
  Scenario w(store());
  const RunKey failed = w.started("etl", "r1", {"a", "b"});
  w.runTo(failed, "a", false, 10);
  w.runTo(failed, "b", true, 10, "host-a/101/e2");
  ASSERT_TRUE(ok(store().setRunState(w.term(), failed, R::kRunning, R::kFailed, at(30), "a failed")));
  const RunKey waiting = w.run("etl", "waiting", 5);
  const RunKey lacking = w.started("etl", "r3", {"a"});
  w.runTo(lacking, "a", false, 10, "host-a/101/e3");
  const std::string lacking_before = str(w.load(lacking));
  // Sorts before every other id: a store that clears in its own order still answers in ours.
  const RunKey first_by_name = w.started("ml", "a-first", {"x", "y"});
  w.runTo(first_by_name, "x", false, 10, "host-a/101/e4");
  w.runTo(first_by_name, "y", true, 10, "host-a/101/e5");
  const RunKey untouched = w.started("ml", "r9", {"x"});
  w.runTo(untouched, "x", true, 10, "host-a/101/e6");
  ASSERT_TRUE(ok(store().setRunState(w.term(), untouched, R::kRunning, R::kSuccess, at(30), "")));
  const std::string untouched_before = str(w.load(untouched));

  // Each request with its own tasks, failed_only, note and time.
  const std::vector<ClearRequest> requests{
      clearOf(failed, {ClearTask{"a", 2}}, at(100)),
      clearOf(waiting, {ClearTask{"a", 0}}, at(100)),
      clearOf(RunKey{"etl", "ghost"}, {ClearTask{"a", 0}}, at(100)),
      clearOf(lacking, {ClearTask{"a", 0}, ClearTask{"zz", 0}}, at(100)),
      clearOf(first_by_name, {ClearTask{"x", 1}, ClearTask{"y", 1}}, at(120), true, "cleared by bob@host2"),
      clearOf(untouched, {}, at(100)),
  };
  const std::vector<Result<OperatorOutcome>> out = store().clearRuns(requests);
  ASSERT_EQ(out.size(), requests.size());
  ASSERT_TRUE(ok(out[0]));
  EXPECT_EQ(out[0]->changed_tasks, Ids{"a"});
  EXPECT_EQ(out[0]->run_state, R::kRunning);
  EXPECT_TRUE(hasCode(out[1], StatusCode::kConflict)) << "a queued run";
  EXPECT_TRUE(hasCode(out[2], StatusCode::kNotFound)) << "a run that does not exist";
  EXPECT_TRUE(hasCode(out[3], StatusCode::kNotFound)) << "a task the run does not have";
  ASSERT_TRUE(ok(out[4]));
  EXPECT_EQ(out[4]->changed_tasks, Ids{"x"}) << "failed_only: the succeeded y stays";
  EXPECT_EQ(out[4]->run_state, R::kRunning);
  ASSERT_TRUE(ok(out[5]));
  EXPECT_TRUE(out[5]->changed_tasks.empty());
  EXPECT_EQ(out[5]->run_state, R::kSuccess);

  // Each run as clearTasks leaves it; the refusals changed nothing, and stopped nothing after them.
  const TaskInstance a = w.task(failed, "a");
  EXPECT_EQ(a.state, S::kNone) << str(a);
  EXPECT_EQ(a.try_number, 2) << str(a);
  EXPECT_EQ(a.max_tries, 1 + 2 + 1) << str(a);
  EXPECT_EQ(a.note, "cleared by alice@host1") << str(a);
  EXPECT_EQ(w.task(failed, "b").state, S::kSuccess);
  EXPECT_EQ(w.load(failed).started_at, at(100));
  EXPECT_EQ(str(w.load(lacking)), lacking_before) << "a refused run keeps every write undone";
  const TaskInstance x = w.task(first_by_name, "x");
  EXPECT_EQ(x.state, S::kNone) << str(x);
  EXPECT_EQ(x.max_tries, 1 + 1 + 1) << str(x);
  EXPECT_EQ(x.note, "cleared by bob@host2") << str(x);
  EXPECT_EQ(w.task(first_by_name, "y").state, S::kSuccess);
  EXPECT_EQ(w.load(first_by_name).started_at, at(120));
  EXPECT_EQ(str(w.load(untouched)), untouched_before);
  EXPECT_EQ(w.load(waiting).state, R::kQueued);

  EXPECT_TRUE(store().clearRuns({}).empty());
}

TEST_P(StoreContract, ClearRunsPublishesEachRunAndEachMovedTask) {
  RecordingSink sink;
  Subscription sub(store(), sink);
  ASSERT_TRUE(ok(sub.status()));
  Scenario w(store());
  const RunKey one = w.started("etl", "r1", {"a", "b"});
  w.runTo(one, "a", false, 10);
  const RunKey two = w.started("etl", "r2", {"a"});
  w.runTo(two, "a", true, 10, "host-a/101/e2");
  ASSERT_TRUE(sink.waitFor(isTask(two, "a")));

  sink.clear();
  const std::vector<ClearRequest> requests{clearOf(one, {ClearTask{"a", 0}, ClearTask{"b", 0}}, at(30)),
                                           clearOf(two, {ClearTask{"a", 0}}, at(30))};
  const auto out = store().clearRuns(requests);
  ASSERT_EQ(out.size(), 2u);
  ASSERT_TRUE(ok(out[0]));
  ASSERT_TRUE(ok(out[1]));
  EXPECT_EQ(out[0]->changed_tasks, Ids{"a"}) << "b never left none";
  EXPECT_TRUE(sink.waitFor(isRun(one)));
  EXPECT_TRUE(sink.waitFor(isTask(one, "a")));
  EXPECT_TRUE(sink.waitFor(isRun(two)));
  EXPECT_TRUE(sink.waitFor(isTask(two, "a")));
}

// ===================================================================================================
// dags delete

TEST_P(StoreContract, DeleteDagWaitsForActiveRunsThenRemovesEverything) {
  Scenario w(store());
  w.claim();
  w.dag("ml");
  const RunKey other = w.run("ml", "r1", 0, RunTrigger::kManual, at(-10));
  const RunKey queued = w.run("etl", "r1", 1);
  const RunKey running = w.started("etl", "r2", {"a"}, 1, 2);
  const std::vector<DagDefinition> v2{dagDef("etl", "", 2)};
  ASSERT_TRUE(ok(store().syncDags(v2)));

  EXPECT_TRUE(hasCode(store().deleteDag("etl"), StatusCode::kConflict));
  EXPECT_TRUE(ok(store().getDag("etl", 1)));
  EXPECT_TRUE(w.exists(queued));
  EXPECT_TRUE(w.exists(running));

  ASSERT_TRUE(ok(store().cancelRun(CancelRunRequest{queued, "cancelled by alice", at(10)})));
  EXPECT_TRUE(hasCode(store().deleteDag("etl"), StatusCode::kConflict)) << "r2 is still running";
  EXPECT_TRUE(w.exists(queued)) << "a refused delete removes nothing";
  ASSERT_TRUE(ok(store().markRun(MarkRunRequest{running, R::kSuccess, "marked success by alice", at(11)})));
  std::int64_t highest_uid = 0;
  for (const RunKey& k : {other, queued, running}) highest_uid = std::max(highest_uid, w.load(k).uid);

  ASSERT_TRUE(ok(store().deleteDag("etl")));
  EXPECT_TRUE(hasCode(store().getDag("etl", std::nullopt), StatusCode::kNotFound));
  EXPECT_TRUE(hasCode(store().getDag("etl", 1), StatusCode::kNotFound));
  EXPECT_TRUE(hasCode(store().getDag("etl", 2), StatusCode::kNotFound));
  auto dags = store().listDags();
  ASSERT_TRUE(ok(dags));
  ASSERT_EQ(dags->size(), 1u);
  EXPECT_EQ((*dags)[0].dag_id, "ml");
  auto runs = store().listRuns(Filter{}.dag("etl").f);
  ASSERT_TRUE(ok(runs));
  EXPECT_TRUE(runs->empty());
  EXPECT_FALSE(w.exists(queued));
  EXPECT_FALSE(w.exists(running));
  auto found = store().findRuns("r1");
  ASSERT_TRUE(ok(found));
  EXPECT_EQ(*found, std::vector<RunKey>{other}) << "another DAG's run of the same id stays";
  EXPECT_TRUE(w.exists(other));
  auto all = store().listRuns(RunFilter{});
  ASSERT_TRUE(ok(all));
  EXPECT_EQ(runIds(*all), Ids{"r1"});
  EXPECT_TRUE(hasCode(store().deleteDag("etl"), StatusCode::kNotFound)) << "deleted already";
  EXPECT_TRUE(hasCode(store().deleteDag("ghost"), StatusCode::kNotFound));

  // Registered again it is a new DAG (every version went), and the old run id gets a new uid, above
  // every uid issued before: a lock file or log path keyed on the uid never meets the old run.
  w.forget("etl");
  auto again = store().syncDags(std::vector{dagDef("etl", "", 3)});
  ASSERT_TRUE(ok(again));
  ASSERT_EQ(again->size(), 1u);
  EXPECT_TRUE((*again)[0].changed);
  EXPECT_EQ((*again)[0].version, 1);
  ASSERT_TRUE(ok(store().createRun(std::nullopt, w.newRun("etl", "r1", 20))));
  const RunRecord reborn = w.load(queued);
  EXPECT_EQ(reborn.state, R::kQueued) << str(reborn);
  EXPECT_GT(reborn.uid, highest_uid);
}

TEST_P(StoreContract, DeleteDagPublishesADagChange) {
  RecordingSink sink;
  Subscription sub(store(), sink);
  ASSERT_TRUE(ok(sub.status()));
  Scenario w(store());
  w.dag("etl");
  ASSERT_TRUE(sink.waitFor(isDag("etl")));
  sink.clear();
  ASSERT_TRUE(ok(store().deleteDag("etl")));
  EXPECT_TRUE(sink.waitFor(isDag("etl")));
}

// ===================================================================================================
// Run uids

TEST_P(StoreContract, EveryCreatedRunGetsItsOwnPositiveUid) {
  Scenario w(store());
  const std::vector<RunKey> keys{w.run("etl", "r1"), w.run("etl", "r2", 1), w.run("ml", "r1", 2),
                                 w.started("ml", "r2", {"a"}, 1, 3)};
  std::set<std::int64_t> uids;
  std::map<std::string, std::int64_t> by_run;
  for (const RunKey& k : keys) {
    const RunRecord r = w.load(k);
    EXPECT_GT(r.uid, 0) << str(r);
    uids.insert(r.uid);
    by_run[k.dag_id + "/" + k.run_id] = r.uid;
  }
  EXPECT_EQ(uids.size(), keys.size()) << "uids are distinct";
  // The uid is the run's for good: listRuns shows the same one, and a state change keeps it.
  ASSERT_TRUE(ok(store().markRun(MarkRunRequest{keys[3], R::kSuccess, "done", at(10)})));
  auto listed = store().listRuns(RunFilter{});
  ASSERT_TRUE(ok(listed));
  ASSERT_EQ(listed->size(), keys.size());
  for (const RunRecord& r : *listed) EXPECT_EQ(r.uid, by_run[r.key.dag_id + "/" + r.key.run_id]) << str(r);
  // A refused create issues nothing a later run could collide with.
  EXPECT_TRUE(hasCode(store().createRun(std::nullopt, w.newRun("etl", "r1")), StatusCode::kAlreadyExists));
  EXPECT_EQ(w.load(keys[0]).uid, by_run["etl/r1"]);
  const RunKey later = w.run("etl", "r3", 4);
  EXPECT_EQ(uids.count(w.load(later).uid), 0u);
  EXPECT_GT(w.load(later).uid, 0);
}

// ===================================================================================================
// Tenants

TEST_P(StoreContract, RunsKeepTheirTenantAndListRunsFiltersByIt) {
  Scenario w(store());
  w.dag("etl", "", "team-a");
  w.dag("ml", "", "team-b");
  const RunKey a1 = w.run("etl", "a1", 0, RunTrigger::kManual, at(-300), "team-a");
  const RunKey a2 = w.run("etl", "a2", 1, RunTrigger::kManual, at(-100), "team-a");
  const RunKey b1 = w.run("ml", "b1", 2, RunTrigger::kManual, at(-200), "team-b");
  w.dag("misc");
  NewRun plain;  // NewRun's default tenant
  plain.key = RunKey{"misc", "d1"};
  plain.dag_version = 1;
  plain.logical_date = at(-50);
  plain.queued_at = at(3);
  ASSERT_TRUE(ok(store().createRun(std::nullopt, plain)));

  EXPECT_EQ(w.load(a1).tenant, "team-a");
  EXPECT_EQ(w.load(b1).tenant, "team-b");
  EXPECT_EQ(w.load(plain.key).tenant, "default");
  const std::vector<RunKey> keys{a2, b1};
  auto loaded = store().loadRuns(keys);
  ASSERT_EQ(loaded.size(), 2u);
  ASSERT_TRUE(ok(loaded[0]));
  ASSERT_TRUE(ok(loaded[1]));
  EXPECT_EQ(loaded[0]->tenant, "team-a");
  EXPECT_EQ(loaded[1]->tenant, "team-b");

  auto all = store().listRuns(RunFilter{});
  ASSERT_TRUE(ok(all));
  ASSERT_EQ(runIds(*all), (Ids{"d1", "a2", "b1", "a1"}));
  EXPECT_EQ((*all)[0].tenant, "default");
  EXPECT_EQ((*all)[1].tenant, "team-a");
  EXPECT_EQ((*all)[2].tenant, "team-b");

  auto team_a = store().listRuns(Filter{}.tenant("team-a").f);
  ASSERT_TRUE(ok(team_a));
  EXPECT_EQ(runIds(*team_a), (Ids{"a2", "a1"}));
  auto team_b = store().listRuns(Filter{}.tenant("team-b").f);
  ASSERT_TRUE(ok(team_b));
  EXPECT_EQ(runIds(*team_b), Ids{"b1"});
  auto nobody = store().listRuns(Filter{}.tenant("team-z").f);
  ASSERT_TRUE(ok(nobody));
  EXPECT_TRUE(nobody->empty());
  // With the other filters: all of them hold.
  auto mismatch = store().listRuns(Filter{}.dag("ml").tenant("team-a").f);
  ASSERT_TRUE(ok(mismatch));
  EXPECT_TRUE(mismatch->empty());
  auto limited = store().listRuns(Filter{}.limit(1).tenant("team-a").f);
  ASSERT_TRUE(ok(limited));
  EXPECT_EQ(runIds(*limited), Ids{"a2"});
}

TEST_P(StoreContract, ListRunsFiltersByALogicalDateWindowBoundsIncluded) {
  Scenario w(store());
  w.run("etl", "t300", 0, RunTrigger::kManual, at(-300));
  w.run("etl", "t200", 1, RunTrigger::kManual, at(-200));
  w.run("etl", "t100", 2, RunTrigger::kManual, at(-100));
  w.run("ml", "m150", 3, RunTrigger::kManual, at(-150));
  w.run("etl", "t0", 4, RunTrigger::kManual, at(0));

  auto window = store().listRuns(Filter{}.since(at(-200)).until(at(-100)).f);
  ASSERT_TRUE(ok(window));
  EXPECT_EQ(runIds(*window), (Ids{"t100", "m150", "t200"}));
  auto since = store().listRuns(Filter{}.since(at(-100)).f);
  ASSERT_TRUE(ok(since));
  EXPECT_EQ(runIds(*since), (Ids{"t0", "t100"}));
  auto until = store().listRuns(Filter{}.until(at(-200)).f);
  ASSERT_TRUE(ok(until));
  EXPECT_EQ(runIds(*until), (Ids{"t200", "t300"}));
  auto etl = store().listRuns(Filter{}.dag("etl").since(at(-250)).until(at(-50)).f);
  ASSERT_TRUE(ok(etl));
  EXPECT_EQ(runIds(*etl), (Ids{"t100", "t200"}));
  auto empty = store().listRuns(Filter{}.since(at(-99)).until(at(-1)).f);
  ASSERT_TRUE(ok(empty));
  EXPECT_TRUE(empty->empty());
  auto limited = store().listRuns(Filter{}.limit(2).until(at(-100)).f);
  ASSERT_TRUE(ok(limited));
  EXPECT_EQ(runIds(*limited), (Ids{"t100", "m150"}));
}

TEST_P(StoreContract, DagsAndScheduledDagsCarryTheCurrentVersionsTenant) {
  const std::vector<DagDefinition> v1{dagDef("etl", "@daily", 1, "team-a"), dagDef("misc", "@hourly")};
  ASSERT_TRUE(ok(store().syncDags(v1)));
  auto dags = store().listDags();
  ASSERT_TRUE(ok(dags));
  std::map<std::string, std::string> tenants;
  for (const DagSummary& d : *dags) tenants[d.dag_id] = d.tenant;
  EXPECT_EQ(tenants, (std::map<std::string, std::string>{{"etl", "team-a"}, {"misc", "default"}}));
  auto scheduled = store().scheduledDags();
  ASSERT_TRUE(ok(scheduled));
  tenants.clear();
  for (const ScheduledDag& d : *scheduled) tenants[d.dag_id] = d.tenant;
  EXPECT_EQ(tenants, (std::map<std::string, std::string>{{"etl", "team-a"}, {"misc", "default"}}));

  // A new version moves the DAG to another tenant.
  const std::vector<DagDefinition> v2{dagDef("etl", "@daily", 2, "team-b")};
  ASSERT_TRUE(ok(store().syncDags(v2)));
  dags = store().listDags();
  ASSERT_TRUE(ok(dags));
  for (const DagSummary& d : *dags) {
    if (d.dag_id == "etl") {
      EXPECT_EQ(d.tenant, "team-b");
      EXPECT_EQ(d.version, 2);
    }
  }
  scheduled = store().scheduledDags();
  ASSERT_TRUE(ok(scheduled));
  for (const ScheduledDag& d : *scheduled) {
    if (d.dag_id == "etl") {
      EXPECT_EQ(d.tenant, "team-b");
    }
  }
}

// ===================================================================================================
// A logical date holds its slot (createRun, SDK 3.0)

TEST_P(StoreContract, AScheduledRunOnALogicalDateSomeRunHoldsIsRefused) {
  Scenario w(store());
  const Term t = w.claim();
  w.dag("etl", "@daily");
  w.dag("ml", "@daily");
  // A person's `runs trigger --logical-date` run holds the slot.
  w.run("etl", "manual__1", 0, RunTrigger::kManual, at(-3600));

  NewRun clash = w.newRun("etl", "scheduled__1", 1, RunTrigger::kScheduled, at(-3600));
  EXPECT_TRUE(hasCode(store().createRun(t, clash), StatusCode::kAlreadyExists));
  EXPECT_TRUE(hasCode(store().createRun(std::nullopt, clash), StatusCode::kAlreadyExists));
  EXPECT_FALSE(w.exists(clash.key)) << "a refused create creates nothing";

  // Another date is free; once taken by a scheduled run, it is held against the next one too.
  ASSERT_TRUE(ok(store().createRun(t, w.newRun("etl", "scheduled__2", 2, RunTrigger::kScheduled, at(0)))));
  EXPECT_TRUE(hasCode(store().createRun(t, w.newRun("etl", "scheduled__3", 3, RunTrigger::kScheduled, at(0))),
                      StatusCode::kAlreadyExists));
  // A manual run is not checked.
  EXPECT_TRUE(ok(store().createRun(std::nullopt, w.newRun("etl", "manual__2", 4, RunTrigger::kManual, at(0)))));
  EXPECT_TRUE(ok(store().createRun(std::nullopt, w.newRun("etl", "manual__3", 5, RunTrigger::kManual, at(-3600)))));
  // The slot is per DAG.
  EXPECT_TRUE(ok(store().createRun(t, w.newRun("ml", "scheduled__1", 6, RunTrigger::kScheduled, at(-3600)))));
  // A finished run holds its slot as well (the scheduler's catch-up must not redo it).
  ASSERT_TRUE(ok(store().markRun(MarkRunRequest{RunKey{"etl", "scheduled__2"}, R::kSuccess, "done", at(10)})));
  EXPECT_TRUE(hasCode(store().createRun(t, w.newRun("etl", "scheduled__4", 7, RunTrigger::kScheduled, at(0))),
                      StatusCode::kAlreadyExists));

  auto etl = store().listRuns(Filter{}.dag("etl").f);
  ASSERT_TRUE(ok(etl));
  std::set<std::string> ids;
  for (const RunRecord& r : *etl) ids.insert(r.key.run_id);
  EXPECT_EQ(ids, (std::set<std::string>{"manual__1", "scheduled__2", "manual__2", "manual__3"}));
}

TEST_P(StoreContract, ABackfillRunKeepsItsTriggerAndHoldsItsLogicalDate) {
  const RunTrigger backfill = RunTrigger::kBackfill;
  Scenario w(store());
  const Term t = w.claim();
  w.dag("etl", "@daily");
  const RunKey key = w.run("etl", "backfill__2026-05-27", 0, backfill, at(-86400));
  EXPECT_EQ(w.load(key).trigger, backfill);
  auto listed = store().listRuns(Filter{}.dag("etl").f);
  ASSERT_TRUE(ok(listed));
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].trigger, backfill);

  // The scheduler's catch-up may not take the date the backfill holds, nor may a second backfill.
  EXPECT_TRUE(hasCode(store().createRun(t, w.newRun("etl", "scheduled__x", 1, RunTrigger::kScheduled, at(-86400))),
                      StatusCode::kAlreadyExists));
  EXPECT_TRUE(hasCode(store().createRun(std::nullopt, w.newRun("etl", "backfill__again", 2, backfill, at(-86400))),
                      StatusCode::kAlreadyExists));
  // A backfill may not take a date a scheduled run holds either.
  ASSERT_TRUE(ok(store().createRun(t, w.newRun("etl", "scheduled__y", 3, RunTrigger::kScheduled, at(0)))));
  EXPECT_TRUE(hasCode(store().createRun(std::nullopt, w.newRun("etl", "backfill__y", 4, backfill, at(0))),
                      StatusCode::kAlreadyExists));
}

TEST_P(StoreContract, CreateRunsAnswersEachRunInTheOrderGivenAsCreateRunWould) {
  const RunTrigger backfill = RunTrigger::kBackfill;
  Scenario w(store());
  w.dag("etl", "@daily");
  w.dag("ml", "@daily");
  w.run("etl", "manual__1", 0, RunTrigger::kManual, at(-3600));  // holds its logical date

  std::vector<NewRun> runs{
      w.newRun("etl", "backfill__b", 1, backfill, at(-7200)),
      w.newRun("etl", "backfill__held", 1, backfill, at(-3600)),
      w.newRun("etl", "manual__1", 1, RunTrigger::kManual, at(0)),
      w.newRun("ghost", "backfill__g", 1, backfill, at(0)),
      // Sorts before backfill__b, comes after it: the date b took in this call is held against it.
      w.newRun("etl", "backfill__a", 1, backfill, at(-7200)),
      w.newRun("etl", "backfill__b", 1, backfill, at(-10800)),
      w.newRun("ml", "a-first", 1, backfill, at(-7200), "team-b"),
  };
  runs[0].conf_json = R"({"note":"a \"quoted\" \\ value"})";
  const std::vector<Status> out = store().createRuns(std::nullopt, runs);
  ASSERT_EQ(out.size(), runs.size());
  EXPECT_TRUE(ok(out[0]));
  EXPECT_TRUE(hasCode(out[1], StatusCode::kAlreadyExists)) << "a logical date a run holds";
  EXPECT_TRUE(hasCode(out[2], StatusCode::kAlreadyExists)) << "a run id taken";
  EXPECT_TRUE(hasCode(out[3], StatusCode::kNotFound)) << "a DAG that does not exist";
  EXPECT_TRUE(hasCode(out[4], StatusCode::kAlreadyExists)) << "a date taken earlier in the same call";
  EXPECT_TRUE(hasCode(out[5], StatusCode::kAlreadyExists)) << "a run id taken earlier in the same call";
  EXPECT_TRUE(ok(out[6]));

  // Each created run as createRun stores it; the refusals created nothing.
  const RunRecord b = w.load(runs[0].key);
  EXPECT_EQ(b.state, R::kQueued) << str(b);
  EXPECT_EQ(b.trigger, backfill) << str(b);
  EXPECT_EQ(b.logical_date, at(-7200)) << str(b);
  EXPECT_EQ(b.conf_json, runs[0].conf_json) << str(b);
  EXPECT_EQ(b.queued_at, at(1)) << str(b);
  EXPECT_GT(b.uid, 0) << str(b);
  const RunRecord other = w.load(runs[6].key);
  EXPECT_EQ(other.tenant, "team-b") << str(other);
  EXPECT_NE(other.uid, b.uid);
  for (const char* id : {"backfill__held", "backfill__a"}) EXPECT_FALSE(w.exists(RunKey{"etl", id})) << id;
  EXPECT_EQ(w.load(RunKey{"etl", "manual__1"}).trigger, RunTrigger::kManual) << "the taken id's run is untouched";

  // A fenced term refuses every run; an empty call answers nothing.
  const Term stale = w.claim();
  w.claim("replica-b");
  const std::vector<NewRun> later{w.newRun("etl", "scheduled__x", 2, RunTrigger::kScheduled, at(86400)),
                                  w.newRun("ml", "scheduled__y", 2, RunTrigger::kScheduled, at(86400))};
  const std::vector<Status> fenced = store().createRuns(stale, later);
  ASSERT_EQ(fenced.size(), 2u);
  for (const Status& s : fenced) EXPECT_TRUE(hasCode(s, StatusCode::kFenced)) << s.toString();
  for (const NewRun& n : later) EXPECT_FALSE(w.exists(n.key)) << n.key.run_id;
  EXPECT_TRUE(store().createRuns(std::nullopt, {}).empty());
}

TEST_P(StoreContract, CreateRunsOfThousandsOfRunsOfOneDagInOneCallCreatesEach) {
  // A caller may hand any number of runs to one call (dags backfill sends 100; another caller of the
  // SDK may send all of a year's slots). Each run of one DAG writes that DAG's record: one transaction of
  // thousands of such writes outlasted PostgreSQL's statement timeout (5 s in these suites).
  constexpr int kRuns = 2500;
  Scenario w(store());
  w.dag("etl", "@hourly");
  std::vector<NewRun> runs;
  runs.reserve(kRuns + 1);
  for (int i = 0; i < kRuns; ++i) {
    runs.push_back(w.newRun("etl", "backfill__" + std::to_string(i), 1, RunTrigger::kBackfill, at(-3600 * (i + 1))));
  }
  // The last run's id was taken by the call's first: refused however the store divides the call.
  runs.push_back(w.newRun("etl", "backfill__0", 1, RunTrigger::kBackfill, at(-3600 * (kRuns + 1))));
  const std::vector<Status> out = store().createRuns(std::nullopt, runs);
  ASSERT_EQ(out.size(), runs.size());
  const auto refused = std::find_if(out.begin(), out.begin() + kRuns, [](const Status& s) { return !ok(s); });
  EXPECT_EQ(refused, out.begin() + kRuns) << "run " << (refused - out.begin()) << ": " << refused->toString();
  EXPECT_TRUE(hasCode(out[kRuns], StatusCode::kAlreadyExists)) << out[kRuns].toString();
  RunFilter all;
  all.dag_id = "etl";
  all.limit = kRuns + 10;
  auto listed = store().listRuns(all);
  ASSERT_TRUE(listed.isOk()) << listed.status().toString();
  EXPECT_EQ(listed->size(), static_cast<std::size_t>(kRuns));
  EXPECT_EQ(w.load(runs[kRuns - 1].key).logical_date, at(-3600 * kRuns));
}

TEST_P(StoreContract, CreateRunsPublishesEachRun) {
  RecordingSink sink;
  Subscription sub(store(), sink);
  ASSERT_TRUE(ok(sub.status()));
  Scenario w(store());
  w.dag("etl", "@daily");
  const std::vector<NewRun> runs{w.newRun("etl", "backfill__1", 1, RunTrigger::kBackfill, at(-86400)),
                                 w.newRun("etl", "backfill__2", 1, RunTrigger::kBackfill, at(-2 * 86400))};
  const std::vector<Status> out = store().createRuns(std::nullopt, runs);
  ASSERT_EQ(out.size(), 2u);
  ASSERT_TRUE(ok(out[0]));
  ASSERT_TRUE(ok(out[1]));
  EXPECT_TRUE(sink.waitFor(isRun(runs[0].key)));
  EXPECT_TRUE(sink.waitFor(isRun(runs[1].key)));
}

// ===================================================================================================
// Change feed: a person's commands wake the leader and the stop watchers

TEST_P(StoreContract, PeoplesCommandsPublishTheRunAndEachMovedTask) {
  RecordingSink sink;
  Subscription sub(store(), sink);
  ASSERT_TRUE(ok(sub.status()));
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b", "c"});
  w.runTo(key, "a", false, 10);
  w.runTo(key, "b", false, 10, "host-a/101/e2");
  ASSERT_TRUE(sink.waitFor(isTask(key, "b")));

  sink.clear();
  ASSERT_TRUE(ok(store().clearTasks(clearOf(key, {ClearTask{"a", 0}, ClearTask{"b", 0}}, at(30)))));
  EXPECT_TRUE(sink.waitFor(isRun(key))) << "clear";
  EXPECT_TRUE(sink.waitFor(isTask(key, "a"))) << "clear";
  EXPECT_TRUE(sink.waitFor(isTask(key, "b"))) << "clear";

  sink.clear();
  ASSERT_TRUE(ok(store().markTask(MarkTaskRequest{key, "c", S::kSkipped, "skipped by alice", at(31)})));
  EXPECT_TRUE(sink.waitFor(isRun(key))) << "mark task";
  EXPECT_TRUE(sink.waitFor(isTask(key, "c"))) << "mark task";

  sink.clear();
  ASSERT_TRUE(ok(store().cancelRun(CancelRunRequest{key, "cancelled by alice", at(32)})));
  EXPECT_TRUE(sink.waitFor(isRun(key))) << "cancel";
  EXPECT_TRUE(sink.waitFor(isTask(key, "a"))) << "cancel";
  EXPECT_TRUE(sink.waitFor(isTask(key, "b"))) << "cancel";

  const RunKey other = w.started("etl", "r2", {"a"}, 1, 40);
  sink.clear();
  ASSERT_TRUE(ok(store().markRun(MarkRunRequest{other, R::kSuccess, "marked by alice", at(50)})));
  EXPECT_TRUE(sink.waitFor(isRun(other))) << "mark run";
  EXPECT_TRUE(sink.waitFor(isTask(other, "a"))) << "mark run";
}

}  // namespace
}  // namespace leoflow::contract
