// The Store contract: each test states one rule of store.h (or the ARCHITECTURE/BEHAVIOUR section
// behind it) as a user of the scheduler would notice it being broken.
#include "contract/store_contract.h"
#include "contract/store_contract_helpers.h"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <condition_variable>
#include <functional>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

namespace leoflow::contract {

void PrintTo(const StoreHarness& harness, std::ostream* os) { *os << harness.name; }

void StoreContract::SetUp() {
  ASSERT_TRUE(GetParam().make_fresh) << "the harness gives no make_fresh";
  store_ = GetParam().make_fresh();
  ASSERT_NE(store_, nullptr) << "make_fresh returned no store";
}

void StoreContract::TearDown() {
  if (store_) {
    store_->unsubscribe();
    store_.reset();
  }
}

std::unique_ptr<Store> StoreContract::secondHandle() {
  if (!GetParam().make_second_handle) return nullptr;
  return GetParam().make_second_handle(*store_);
}

// A binary may link the suites and instantiate only one of them.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StoreContract);

namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using namespace helpers;

template <typename T, typename Key>
std::vector<Key> keysOf(const std::vector<T>& items, Key (*key)(const T&)) {
  std::vector<Key> out;
  for (const T& item : items) out.push_back(key(item));
  return out;
}

std::string runIdOf(const RunRecord& r) { return r.key.run_id; }
std::string orphanIdOf(const OrphanCandidate& c) { return c.run.run_id; }
std::string activeIdOf(const ActiveRun& a) { return a.key.run_id; }
std::string agentTaskOf(const AgentLostCandidate& c) { return c.attempt.task_id; }
std::string dispatchTaskOf(const DispatchLostCandidate& c) { return c.attempt.task_id; }

RunFilter runFilter(std::optional<std::string> dag_id, std::optional<DagRunState> state = std::nullopt,
                    std::size_t limit = 1000) {
  RunFilter f;
  f.dag_id = std::move(dag_id);
  f.state = state;
  f.limit = limit;
  return f;
}

// ===================================================================================================
// Term and fencing (ARCHITECTURE §8.7)

TEST_P(StoreContract, PingAnswersOk) { EXPECT_TRUE(ok(store().ping())); }

TEST_P(StoreContract, ClaimTermRaisesTheTermByOneEachTime) {
  auto a = store().claimTerm("replica-a");
  auto b = store().claimTerm("replica-b");
  auto c = store().claimTerm("replica-a");
  ASSERT_TRUE(ok(a));
  ASSERT_TRUE(ok(b));
  ASSERT_TRUE(ok(c));
  EXPECT_GE(*a, 1);
  EXPECT_EQ(*b, *a + 1);
  EXPECT_EQ(*c, *b + 1);
}

TEST_P(StoreContract, ConcurrentClaimsGetDistinctConsecutiveTerms) {
  constexpr int kThreads = 8;
  constexpr int kClaims = 10;
  std::mutex mutex;
  std::vector<Term> terms;
  std::atomic<int> failures{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      for (int k = 0; k < kClaims; ++k) {
        auto r = store().claimTerm(fmt::format("replica-{}", i));
        if (!r.isOk()) {
          ++failures;
          continue;
        }
        std::lock_guard lock(mutex);
        terms.push_back(*r);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_EQ(terms.size(), static_cast<std::size_t>(kThreads * kClaims));
  std::sort(terms.begin(), terms.end());
  for (std::size_t i = 1; i < terms.size(); ++i) EXPECT_EQ(terms[i], terms[i - 1] + 1) << "at " << i;
  // Only the highest, i.e. the last claimed, may decide.
  EXPECT_TRUE(ok(store().recordLiveness(terms.back(), LivenessRecord{"replica-0", terms.back(), std::nullopt, 0, 0})));
  EXPECT_TRUE(hasCode(store().recordLiveness(terms.back() - 1, LivenessRecord{}), StatusCode::kFenced));
}

TEST_P(StoreContract, DecisionsAreFencedUntilATermIsClaimedAndAboveTheClaimedOne) {
  Scenario w(store());
  w.dag("etl");
  NewRun n{RunKey{"etl", "r1"}, 1, RunTrigger::kScheduled, kT0, "", at(0)};
  // Nothing claimed yet: no term may decide, not even the first one a claim would hand out.
  EXPECT_TRUE(hasCode(store().createRun(Term{0}, n), StatusCode::kFenced));
  EXPECT_TRUE(hasCode(store().createRun(Term{1}, n), StatusCode::kFenced));
  EXPECT_TRUE(hasCode(store().recordLiveness(1, LivenessRecord{"x", 1, std::nullopt, 0, 0}), StatusCode::kFenced));
  EXPECT_TRUE(hasCode(store().loadRuns(std::vector<RunKey>{n.key})[0], StatusCode::kNotFound));

  const Term t = w.claim();
  // A term above the claimed one was never issued: a forged or confused token is refused too.
  EXPECT_TRUE(hasCode(store().createRun(t + 1, n), StatusCode::kFenced));
  EXPECT_TRUE(hasCode(store().loadRuns(std::vector<RunKey>{n.key})[0], StatusCode::kNotFound));
  EXPECT_TRUE(ok(store().createRun(t, n)));
}

TEST_P(StoreContract, AStaleTermIsFencedForEveryDecisionAndChangesNothing) {
  Scenario w(store());
  const Term old_term = w.claim("replica-a");
  const RunKey busy = w.started("etl", "busy", {"a", "b"});
  w.walk(busy, "a", {S::kNone, S::kScheduled, S::kQueued}, 10);
  const RunKey waiting = w.run("etl", "waiting", 5);
  ASSERT_TRUE(ok(store().recordLiveness(old_term, LivenessRecord{"replica-a", old_term, at(20), 1, 2})));

  const Term new_term = w.claim("replica-b");
  ASSERT_GT(new_term, old_term);
  const std::string busy_before = str(w.load(busy));
  const std::string waiting_before = str(w.load(waiting));

  const NewRun fresh{RunKey{"etl", "fresh"}, 1, RunTrigger::kScheduled, at(60), "", at(60)};
  const std::vector<NewTaskInstance> tasks{NewTaskInstance{"a", 1}};
  const std::vector<TaskTransitionWrite> plan{TaskTransitionWrite{"b", S::kNone, 1, S::kScheduled, "", false}};
  EXPECT_TRUE(hasCode(store().createRun(old_term, fresh), StatusCode::kFenced));
  EXPECT_TRUE(hasCode(store().materializeRun(old_term, waiting, tasks, at(61)), StatusCode::kFenced));
  EXPECT_TRUE(hasCode(store().setRunState(old_term, busy, R::kRunning, R::kFailed, at(62), "x"),
                      StatusCode::kFenced));
  EXPECT_TRUE(hasCode(store().applyTransitions(old_term, busy, plan, at(63)), StatusCode::kFenced));
  EXPECT_TRUE(hasCode(store().reapRun(old_term, busy, at(64), "x"), StatusCode::kFenced));
  EXPECT_TRUE(hasCode(store().recordLiveness(old_term, LivenessRecord{"replica-a", old_term, at(65), 9, 9}),
                      StatusCode::kFenced));

  EXPECT_EQ(str(w.load(busy)), busy_before);
  EXPECT_EQ(str(w.load(waiting)), waiting_before);
  EXPECT_TRUE(hasCode(store().loadRuns(std::vector<RunKey>{fresh.key})[0], StatusCode::kNotFound));
  auto live = store().readLiveness();
  ASSERT_TRUE(ok(live));
  ASSERT_TRUE(live->has_value());
  EXPECT_EQ((*live)->queue_depth, 1);

  // The new leader decides all of the same.
  EXPECT_TRUE(ok(store().createRun(new_term, fresh)));
  EXPECT_TRUE(ok(store().materializeRun(new_term, waiting, tasks, at(61))));
  auto applied = store().applyTransitions(new_term, busy, plan, at(63));
  ASSERT_TRUE(ok(applied));
  EXPECT_EQ(*applied, std::vector<bool>{true});
  EXPECT_TRUE(ok(store().recordLiveness(new_term, LivenessRecord{"replica-b", new_term, at(65), 0, 3})));
  EXPECT_TRUE(ok(store().reapRun(new_term, busy, at(66), "reaped")));
  EXPECT_EQ(w.load(busy).state, R::kFailed);
}

TEST_P(StoreContract, ExecutorReportsAreAcceptedWhateverTheTerm) {
  Scenario w(store());
  w.claim("replica-a");
  const RunKey key = w.started("etl", "r1", {"a", "b"});
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued}, 10);
  w.walk(key, "b", {S::kNone, S::kScheduled, S::kQueued}, 10);
  // Two leadership changes later, the old leader's dispatched attempts still report (§8.7).
  w.claim("replica-b");
  w.claim("replica-c");
  EXPECT_TRUE(ok(store().reportRunning(w.attempt(key, "a"), at(20))));
  EXPECT_TRUE(ok(store().reportHeartbeat(w.attempt(key, "a"), at(21))));
  EXPECT_TRUE(ok(store().reportFinished(w.attempt(key, "a"), TaskOutcome{true, 0, ""}, at(22))));
  EXPECT_TRUE(ok(store().reportRunning(w.attempt(key, "b"), at(23))));
  EXPECT_TRUE(ok(store().reportFinished(w.attempt(key, "b"), TaskOutcome{false, 1, "exit code 1"}, at(23))));
  EXPECT_EQ(w.task(key, "a").state, S::kSuccess);
  EXPECT_EQ(w.task(key, "b").state, S::kFailed);
}

TEST_P(StoreContract, PeoplesCommandsAreNotFenced) {
  Scenario w(store());
  w.claim("replica-a");
  w.claim("replica-b");
  const std::vector<DagDefinition> defs{dagDef("etl", "@daily")};
  EXPECT_TRUE(ok(store().syncDags(defs)));
  EXPECT_TRUE(ok(store().setPaused("etl", true)));
  EXPECT_TRUE(ok(store().createRun(std::nullopt, NewRun{RunKey{"etl", "manual__1"}, 1, RunTrigger::kManual,
                                                        kT0, "", at(0)})));
}

TEST_P(StoreContract, LivenessReadsBackTheLastRecord) {
  auto none = store().readLiveness();
  ASSERT_TRUE(ok(none));
  EXPECT_FALSE(none->has_value());

  Scenario w(store());
  const Term t = w.claim("replica-a");
  ASSERT_TRUE(ok(store().recordLiveness(t, LivenessRecord{"replica-a", t, at(10), 4, 2})));
  ASSERT_TRUE(ok(store().recordLiveness(t, LivenessRecord{"replica-a", t, at(11), 5, 3})));
  auto live = store().readLiveness();
  ASSERT_TRUE(ok(live));
  ASSERT_TRUE(live->has_value());
  const LivenessRecord& r = **live;
  EXPECT_EQ(r.holder, "replica-a");
  EXPECT_EQ(r.term, t);
  EXPECT_EQ(str(r.last_tick), str(at(11)));
  EXPECT_EQ(r.queue_depth, 5);
  EXPECT_EQ(r.active_runs, 3);
}

// ===================================================================================================
// Catalog

TEST_P(StoreContract, SyncRegistersNewDagsAtVersionOne) {
  const std::vector<DagDefinition> defs{dagDef("b_dag", "@daily"), dagDef("a_dag")};
  auto regs = store().syncDags(defs);
  ASSERT_TRUE(ok(regs));
  ASSERT_EQ(regs->size(), 2u);
  EXPECT_EQ((*regs)[0].dag_id, "b_dag");
  EXPECT_EQ((*regs)[0].version, 1);
  EXPECT_TRUE((*regs)[0].changed);
  EXPECT_EQ((*regs)[1].dag_id, "a_dag");
  EXPECT_EQ((*regs)[1].version, 1);
  EXPECT_TRUE((*regs)[1].changed);

  auto dag = store().getDag("b_dag", std::nullopt);
  ASSERT_TRUE(ok(dag));
  EXPECT_EQ(dag->dag_id, "b_dag");
  EXPECT_EQ(dag->version, 1);
  EXPECT_FALSE(dag->paused);  // a new DAG runs on its schedule unless paused
  EXPECT_EQ(dag->spec_json, defs[0].spec_json);
}

TEST_P(StoreContract, SyncingIdenticalJsonKeepsTheVersion) {
  const std::vector<DagDefinition> defs{dagDef("etl", "@daily")};
  ASSERT_TRUE(ok(store().syncDags(defs)));
  auto again = store().syncDags(defs);
  ASSERT_TRUE(ok(again));
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].version, 1);
  EXPECT_FALSE((*again)[0].changed);
  EXPECT_TRUE(hasCode(store().getDag("etl", 2), StatusCode::kNotFound));
}

TEST_P(StoreContract, SyncingChangedJsonAddsTheNextVersionAndKeepsTheOldOnes) {
  const DagDefinition v1 = dagDef("etl", "@daily", 1);
  const DagDefinition v2 = dagDef("etl", "@hourly", 2);
  ASSERT_TRUE(ok(store().syncDags(std::vector{v1})));
  auto r2 = store().syncDags(std::vector{v2});
  ASSERT_TRUE(ok(r2));
  EXPECT_EQ((*r2)[0].version, 2);
  EXPECT_TRUE((*r2)[0].changed);

  auto current = store().getDag("etl", std::nullopt);
  ASSERT_TRUE(ok(current));
  EXPECT_EQ(current->version, 2);
  EXPECT_EQ(current->spec_json, v2.spec_json);
  auto first = store().getDag("etl", 1);
  ASSERT_TRUE(ok(first));
  EXPECT_EQ(first->version, 1);
  EXPECT_EQ(first->spec_json, v1.spec_json);

  // Going back to the first text is a change from the current version: a third version.
  auto r3 = store().syncDags(std::vector{v1});
  ASSERT_TRUE(ok(r3));
  EXPECT_EQ((*r3)[0].version, 3);
  EXPECT_TRUE((*r3)[0].changed);
  auto dags = store().listDags();
  ASSERT_TRUE(ok(dags));
  ASSERT_EQ(dags->size(), 1u);
  EXPECT_EQ((*dags)[0].version, 3);
  EXPECT_EQ((*dags)[0].schedule, "@daily");
}

TEST_P(StoreContract, ARefusedSyncRegistersNothing) {
  ASSERT_TRUE(ok(store().syncDags(std::vector{dagDef("etl", "@daily", 1)})));
  DagDefinition nameless = dagDef("", "@daily");
  const std::vector<DagDefinition> batch{dagDef("etl", "@hourly", 2), dagDef("fresh"), nameless};
  EXPECT_FALSE(store().syncDags(batch).isOk());

  auto etl = store().getDag("etl", std::nullopt);
  ASSERT_TRUE(ok(etl));
  EXPECT_EQ(etl->version, 1);
  EXPECT_TRUE(hasCode(store().getDag("fresh", std::nullopt), StatusCode::kNotFound));
  auto dags = store().listDags();
  ASSERT_TRUE(ok(dags));
  EXPECT_EQ(dags->size(), 1u);
}

TEST_P(StoreContract, GetDagOfAnUnknownDagOrVersionIsNotFound) {
  EXPECT_TRUE(hasCode(store().getDag("ghost", std::nullopt), StatusCode::kNotFound));
  ASSERT_TRUE(ok(store().syncDags(std::vector{dagDef("etl")})));
  EXPECT_TRUE(hasCode(store().getDag("etl", 2), StatusCode::kNotFound));
  EXPECT_TRUE(hasCode(store().getDag("etl", 0), StatusCode::kNotFound));
  EXPECT_TRUE(ok(store().getDag("etl", 1)));
}

TEST_P(StoreContract, ListDagsShowsEachDagsScheduleVersionAndPause) {
  EXPECT_TRUE(store().listDags()->empty());
  ASSERT_TRUE(ok(store().syncDags(std::vector{dagDef("nightly", "0 3 * * *"), dagDef("adhoc")})));
  ASSERT_TRUE(ok(store().syncDags(std::vector{dagDef("nightly", "0 4 * * *", 2)})));
  ASSERT_TRUE(ok(store().setPaused("adhoc", true)));
  auto dags = store().listDags();
  ASSERT_TRUE(ok(dags));
  std::map<std::string, DagSummary> by_id;
  for (const DagSummary& d : *dags) by_id[d.dag_id] = d;
  ASSERT_EQ(by_id.size(), 2u);
  EXPECT_EQ(by_id["nightly"].schedule, "0 4 * * *");
  EXPECT_EQ(by_id["nightly"].version, 2);
  EXPECT_FALSE(by_id["nightly"].paused);
  EXPECT_EQ(by_id["adhoc"].schedule, "");
  EXPECT_EQ(by_id["adhoc"].version, 1);
  EXPECT_TRUE(by_id["adhoc"].paused);
}

TEST_P(StoreContract, PausingIsPerDagAndSurvivesNewVersions) {
  EXPECT_TRUE(hasCode(store().setPaused("ghost", true), StatusCode::kNotFound));
  ASSERT_TRUE(ok(store().syncDags(std::vector{dagDef("etl", "@daily")})));
  ASSERT_TRUE(ok(store().setPaused("etl", true)));
  ASSERT_TRUE(ok(store().setPaused("etl", true)));  // pausing twice is fine
  ASSERT_TRUE(ok(store().syncDags(std::vector{dagDef("etl", "@hourly", 2)})));
  auto dag = store().getDag("etl", std::nullopt);
  ASSERT_TRUE(ok(dag));
  EXPECT_EQ(dag->version, 2);
  EXPECT_TRUE(dag->paused);
  ASSERT_TRUE(ok(store().setPaused("etl", false)));
  EXPECT_FALSE(store().getDag("etl", std::nullopt)->paused);
}

TEST_P(StoreContract, ScheduledDagsAreTheUnpausedOnesWithASchedule) {
  ASSERT_TRUE(ok(store().syncDags(
      std::vector{dagDef("daily", "@daily"), dagDef("manual", ""), dagDef("hourly", "0 * * * *")})));
  ASSERT_TRUE(ok(store().setPaused("hourly", true)));
  auto dags = store().scheduledDags();
  ASSERT_TRUE(ok(dags));
  ASSERT_EQ(dags->size(), 1u);
  EXPECT_EQ((*dags)[0].dag_id, "daily");
  EXPECT_EQ((*dags)[0].schedule, "@daily");

  ASSERT_TRUE(ok(store().setPaused("hourly", false)));
  dags = store().scheduledDags();
  ASSERT_TRUE(ok(dags));
  std::set<std::string> ids;
  for (const ScheduledDag& d : *dags) ids.insert(d.dag_id);
  EXPECT_EQ(ids, (std::set<std::string>{"daily", "hourly"}));
}

TEST_P(StoreContract, ScheduledDagsCarryTheCurrentVersionsScheduleFields) {
  DagDefinition v1 = dagDef("etl", "0 3 * * *", 1);
  v1.spec.schedule_timezone = "Europe/Paris";
  v1.spec.start_date = at(-86400);
  v1.spec.catchup = true;
  v1.spec.max_active_runs = 3;
  DagDefinition v2 = dagDef("etl", "0 4 * * *", 2);
  v2.spec.schedule_timezone = "America/New_York";
  v2.spec.start_date = at(-3600);
  v2.spec.end_date = at(86400);
  v2.spec.catchup = false;
  v2.spec.max_active_runs = 5;
  ASSERT_TRUE(ok(store().syncDags(std::vector{v1})));
  ASSERT_TRUE(ok(store().syncDags(std::vector{v2})));

  auto dags = store().scheduledDags();
  ASSERT_TRUE(ok(dags));
  ASSERT_EQ(dags->size(), 1u);
  const ScheduledDag& d = (*dags)[0];
  EXPECT_EQ(d.version, 2);
  EXPECT_EQ(d.schedule, "0 4 * * *");
  EXPECT_EQ(d.schedule_timezone, "America/New_York");
  EXPECT_EQ(str(d.start_date), str(at(-3600)));
  EXPECT_EQ(str(d.end_date), str(at(86400)));
  EXPECT_FALSE(d.catchup);
  EXPECT_EQ(d.max_active_runs, 5);
}

TEST_P(StoreContract, OnlyScheduledRunsMoveTheScheduleButAnyRunCountsAsRun) {  // BEHAVIOUR §10 item 26
  Scenario w(store());
  w.dag("etl", "@hourly");
  auto find = [&]() -> ScheduledDag {
    auto dags = store().scheduledDags();
    EXPECT_TRUE(ok(dags));
    if (!dags.isOk() || dags->size() != 1) return ScheduledDag{};
    return (*dags)[0];
  };
  EXPECT_FALSE(find().last_logical.has_value());
  EXPECT_FALSE(find().ever_run);

  w.run("etl", "manual__future", 0, RunTrigger::kManual, at(99999));
  EXPECT_FALSE(find().last_logical.has_value()) << "a manual run must not move the schedule";
  EXPECT_TRUE(find().ever_run) << "an @once DAG fires only for a DAG never run";

  w.run("etl", "scheduled__a", 1, RunTrigger::kScheduled, at(-7200));
  w.run("etl", "scheduled__b", 2, RunTrigger::kScheduled, at(-3600));
  w.run("etl", "manual__later", 3, RunTrigger::kManual, at(500));
  EXPECT_EQ(str(find().last_logical), str(at(-3600)));
}

// ===================================================================================================
// Runs

TEST_P(StoreContract, CreateRunStoresAQueuedRunAsGiven) {
  ASSERT_TRUE(ok(store().syncDags(std::vector{dagDef("etl")})));
  const NewRun n{RunKey{"etl", "manual__x"}, 1, RunTrigger::kManual, at(-60), R"({"x":1})", at(0)};
  ASSERT_TRUE(ok(store().createRun(std::nullopt, n)));
  Scenario w(store());
  const RunRecord r = w.load(n.key);
  EXPECT_EQ(r.key, n.key);
  EXPECT_EQ(r.dag_version, 1);
  EXPECT_EQ(r.state, R::kQueued);
  EXPECT_EQ(r.trigger, RunTrigger::kManual);
  EXPECT_EQ(str(r.logical_date), str(at(-60)));
  EXPECT_EQ(str(r.queued_at), str(at(0)));
  EXPECT_FALSE(r.started_at.has_value());
  EXPECT_FALSE(r.ended_at.has_value());
  EXPECT_EQ(r.conf_json, R"({"x":1})");
  EXPECT_EQ(r.note, "");
  EXPECT_TRUE(r.tasks.empty());
}

TEST_P(StoreContract, ARunIdIsUniquePerDagOnly) {  // ARCHITECTURE §8.5
  ASSERT_TRUE(ok(store().syncDags(std::vector{dagDef("etl"), dagDef("ml")})));
  const NewRun first{RunKey{"etl", "nightly"}, 1, RunTrigger::kManual, kT0, R"({"n":1})", at(0)};
  NewRun again = first;
  again.conf_json = R"({"n":2})";
  ASSERT_TRUE(ok(store().createRun(std::nullopt, first)));
  EXPECT_TRUE(hasCode(store().createRun(std::nullopt, again), StatusCode::kAlreadyExists));
  Scenario w(store());
  EXPECT_EQ(w.load(first.key).conf_json, R"({"n":1})");

  NewRun other_dag = first;
  other_dag.key.dag_id = "ml";
  EXPECT_TRUE(ok(store().createRun(std::nullopt, other_dag)));

  auto found = store().findRuns("nightly");
  ASSERT_TRUE(ok(found));
  std::vector<RunKey> keys = *found;
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<RunKey>{RunKey{"etl", "nightly"}, RunKey{"ml", "nightly"}}));
  auto none = store().findRuns("nowhere");
  ASSERT_TRUE(ok(none));
  EXPECT_TRUE(none->empty());
}

TEST_P(StoreContract, CreateRunForAnUnknownDagOrVersionIsNotFound) {
  const NewRun ghost{RunKey{"ghost", "r1"}, 1, RunTrigger::kManual, kT0, "", at(0)};
  EXPECT_TRUE(hasCode(store().createRun(std::nullopt, ghost), StatusCode::kNotFound));
  ASSERT_TRUE(ok(store().syncDags(std::vector{dagDef("etl")})));
  NewRun future{RunKey{"etl", "r1"}, 2, RunTrigger::kManual, kT0, "", at(0)};
  EXPECT_TRUE(hasCode(store().createRun(std::nullopt, future), StatusCode::kNotFound));
  // An older version stays valid after a new one is registered.
  ASSERT_TRUE(ok(store().syncDags(std::vector{dagDef("etl", "", 2)})));
  NewRun pinned{RunKey{"etl", "r2"}, 1, RunTrigger::kManual, kT0, "", at(0)};
  EXPECT_TRUE(ok(store().createRun(std::nullopt, pinned)));
  Scenario w(store());
  EXPECT_EQ(w.load(pinned.key).dag_version, 1);
}

TEST_P(StoreContract, ConcurrentCreatesOfOneRunIdLetExactlyOneIn) {
  ASSERT_TRUE(ok(store().syncDags(std::vector{dagDef("etl")})));
  constexpr int kThreads = 8;
  std::vector<Status> results(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[static_cast<std::size_t>(i)] = store().createRun(
          std::nullopt, NewRun{RunKey{"etl", "race"}, 1, RunTrigger::kManual, kT0, std::to_string(i), at(0)});
    });
  }
  for (std::thread& t : threads) t.join();
  int winners = 0;
  std::string winner;
  for (int i = 0; i < kThreads; ++i) {
    const Status& s = results[static_cast<std::size_t>(i)];
    if (s.isOk()) {
      ++winners;
      winner = std::to_string(i);
    } else {
      EXPECT_TRUE(hasCode(s, StatusCode::kAlreadyExists));
    }
  }
  EXPECT_EQ(winners, 1);
  Scenario w(store());
  EXPECT_EQ(w.load(RunKey{"etl", "race"}).conf_json, winner);
}

TEST_P(StoreContract, ActiveRunsAreQueuedAndRunningOldestQueuedFirst) {
  Scenario w(store());
  w.claim();
  w.run("etl", "late", 30);
  const RunKey running = w.started("etl", "early", {"a"}, 1, 10);
  w.run("etl", "middle", 20);
  const RunKey done = w.started("etl", "done", {}, 1, 5);
  ASSERT_TRUE(ok(store().setRunState(w.term(), done, R::kRunning, R::kSuccess, at(6), "")));

  auto active = store().listActiveRuns();
  ASSERT_TRUE(ok(active));
  EXPECT_EQ(keysOf(*active, &activeIdOf), (Ids{"early", "middle", "late"}));
  ASSERT_EQ(active->size(), 3u);
  EXPECT_EQ((*active)[0].key, running);
  EXPECT_EQ((*active)[0].state, R::kRunning);
  EXPECT_EQ((*active)[0].dag_version, 1);
  EXPECT_EQ(str((*active)[0].queued_at), str(at(10)));
  EXPECT_EQ((*active)[1].state, R::kQueued);
}

TEST_P(StoreContract, ActiveRunKeysAreTheKeysOfTheActiveRunsWhateverTheirIds) {  // SDK 3.3
  Scenario w(store());
  w.claim();
  // Run ids with the characters a key-value store must escape in its keys.
  const RunKey queued = w.run("etl", "manual__2026-01-01T00:00:00Z", 30);
  const RunKey running = w.started("etl", "100%:done?", {"a"}, 1, 10);
  const RunKey other = w.run("ml", "x", 20);
  const RunKey done = w.started("etl", "done", {}, 1, 5);
  ASSERT_TRUE(ok(store().setRunState(w.term(), done, R::kRunning, R::kSuccess, at(6), "")));
  const RunKey reaped = w.started("ml", "reaped", {"a"}, 1, 7);
  ASSERT_TRUE(ok(store().reapRun(w.term(), reaped, at(8), "orphan")));

  auto keys = store().listActiveRunKeys();
  ASSERT_TRUE(ok(keys));
  std::vector<RunKey> got = *keys;
  std::sort(got.begin(), got.end());
  std::vector<RunKey> want{queued, running, other};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  // The same runs listActiveRuns gives.
  auto active = store().listActiveRuns();
  ASSERT_TRUE(ok(active));
  std::vector<RunKey> listed;
  for (const ActiveRun& a : *active) listed.push_back(a.key);
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(listed, want);
}

TEST_P(StoreContract, LoadRunsGivesOneResultPerKeyInOrder) {
  Scenario w(store());
  const RunKey started = w.started("etl", "started", {"extract", "load", "report"}, 2);
  const RunKey queued = w.run("etl", "queued", 3);
  const std::vector<RunKey> keys{queued, RunKey{"etl", "ghost"}, started};
  auto results = store().loadRuns(keys);
  ASSERT_EQ(results.size(), 3u);
  ASSERT_TRUE(ok(results[0]));
  EXPECT_EQ(results[0]->key, queued);
  EXPECT_TRUE(results[0]->tasks.empty());
  EXPECT_TRUE(hasCode(results[1], StatusCode::kNotFound));
  ASSERT_TRUE(ok(results[2]));
  EXPECT_EQ(results[2]->key, started);
  std::set<std::string> ids;
  for (const TaskInstance& t : results[2]->tasks) ids.insert(t.task_id);
  EXPECT_EQ(ids, (std::set<std::string>{"extract", "load", "report"}));
}

// SDK 3.2: what a leader refreshes when a change names its task.
TEST_P(StoreContract, LoadTaskInstancesGivesTheNamedInstancesAsLoadRunsHasThemInTheOrderAsked) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"extract", "load", "report"}, 2);
  w.walk(key, "load", {S::kNone, S::kScheduled, S::kQueued}, 10);
  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "load"), at(12))));
  w.walk(key, "extract", {S::kNone, S::kScheduled, S::kQueued}, 13);
  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "extract"), at(14))));
  ASSERT_TRUE(ok(store().reportFinished(w.attempt(key, "extract"), TaskOutcome{false, 3, "exit code 3"}, at(15))));

  const std::vector<std::string> ids{"report", "extract", "load"};
  auto got = store().loadTaskInstances(key, ids);
  ASSERT_EQ(got.size(), 3u);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(ok(got[i])) << ids[i];
    // Every field, the claim of a started attempt included, as loadRuns reads it.
    EXPECT_EQ(str(*got[i]), str(w.task(key, ids[i]))) << ids[i];
  }
  EXPECT_EQ(got[1]->state, S::kFailed);
  EXPECT_EQ(got[2]->state, S::kRunning);
  EXPECT_EQ(got[2]->execution_id, w.attempt(key, "load").execution_id);
  EXPECT_TRUE(got[0]->execution_id.empty()) << "an attempt that never started has no claim";
  EXPECT_TRUE(store().loadTaskInstances(key, std::vector<std::string>{}).empty());
}

TEST_P(StoreContract, LoadTaskInstancesSaysNotFoundForAnUnknownTaskOrRun) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b"});
  const RunKey queued = w.run("etl", "queued", 3);
  auto got = store().loadTaskInstances(key, std::vector<std::string>{"b", "ghost", "a"});
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(ok(got[0]));
  EXPECT_TRUE(hasCode(got[1], StatusCode::kNotFound));
  EXPECT_TRUE(ok(got[2]));
  auto none = store().loadTaskInstances(RunKey{"etl", "ghost"}, std::vector<std::string>{"a"});
  ASSERT_EQ(none.size(), 1u);
  EXPECT_TRUE(hasCode(none[0], StatusCode::kNotFound));
  // A queued run has no instances yet.
  auto unmaterialized = store().loadTaskInstances(queued, std::vector<std::string>{"a"});
  ASSERT_EQ(unmaterialized.size(), 1u);
  EXPECT_TRUE(hasCode(unmaterialized[0], StatusCode::kNotFound));
}

TEST_P(StoreContract, ListRunsFiltersAndPutsTheNewestLogicalDateFirst) {
  Scenario w(store());
  w.claim();
  w.run("etl", "old", 0, RunTrigger::kScheduled, at(-300));
  w.run("etl", "mid", 1, RunTrigger::kScheduled, at(-200));
  w.run("ml", "other", 2, RunTrigger::kScheduled, at(-150));
  const RunKey newest = w.run("etl", "new", 3, RunTrigger::kScheduled, at(-100));
  ASSERT_TRUE(ok(store().materializeRun(w.term(), newest, std::vector{NewTaskInstance{"a", 1}}, at(4))));

  auto all = store().listRuns(RunFilter{});
  ASSERT_TRUE(ok(all));
  EXPECT_EQ(keysOf(*all, &runIdOf), (Ids{"new", "other", "mid", "old"}));
  for (const RunRecord& r : *all) EXPECT_TRUE(r.tasks.empty()) << r.key.run_id;

  auto etl = store().listRuns(runFilter("etl"));
  ASSERT_TRUE(ok(etl));
  EXPECT_EQ(keysOf(*etl, &runIdOf), (Ids{"new", "mid", "old"}));
  auto running = store().listRuns(runFilter(std::nullopt, R::kRunning));
  ASSERT_TRUE(ok(running));
  EXPECT_EQ(keysOf(*running, &runIdOf), (Ids{"new"}));
  EXPECT_EQ((*running)[0].state, R::kRunning);
  auto limited = store().listRuns(runFilter("etl", std::nullopt, 2));
  ASSERT_TRUE(ok(limited));
  EXPECT_EQ(keysOf(*limited, &runIdOf), (Ids{"new", "mid"}));
  auto ghost = store().listRuns(runFilter("ghost"));
  ASSERT_TRUE(ok(ghost));
  EXPECT_TRUE(ghost->empty());
}

// ===================================================================================================
// Materialization (BEHAVIOUR §10 items 15-16)

TEST_P(StoreContract, MaterializeCreatesNoneInstancesAtTryOneAndStartsTheRun) {
  Scenario w(store());
  const Term t = w.claim();
  const RunKey key = w.run("etl", "r1", 0);
  const std::vector<NewTaskInstance> tasks{NewTaskInstance{"extract", 1}, NewTaskInstance{"load", 3}};
  ASSERT_TRUE(ok(store().materializeRun(t, key, tasks, at(5))));
  const RunRecord r = w.load(key);
  EXPECT_EQ(r.state, R::kRunning);
  EXPECT_EQ(str(r.started_at), str(at(5)));
  ASSERT_EQ(r.tasks.size(), 2u);
  for (const TaskInstance& ti : r.tasks) {
    EXPECT_EQ(ti.state, S::kNone) << ti.task_id;
    EXPECT_EQ(ti.try_number, 1) << ti.task_id;
    EXPECT_EQ(ti.max_tries, ti.task_id == "load" ? 3 : 1) << ti.task_id;
    EXPECT_EQ(str(ti), fmt::format("{}:none try=1/{} sched=- queued=- start=- end=- beat=- exit=- exec='' note=''",
                                   ti.task_id, ti.max_tries));
  }
}

TEST_P(StoreContract, MaterializingTwiceIsAConflictAndChangesNothing) {
  Scenario w(store());
  const Term t = w.claim();
  const RunKey key = w.started("etl", "r1", {"a"});
  const std::string before = str(w.load(key));
  EXPECT_TRUE(hasCode(store().materializeRun(t, key, std::vector{NewTaskInstance{"a", 1}, NewTaskInstance{"b", 1}},
                                             at(50)),
                      StatusCode::kConflict));
  EXPECT_EQ(str(w.load(key)), before);

  // A cleared run is queued again but keeps its instances: it cannot be materialized twice either.
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning, S::kSuccess}, 10);
  ASSERT_TRUE(ok(store().setRunState(t, key, R::kRunning, R::kSuccess, at(20), "")));
  ASSERT_TRUE(ok(store().setRunState(t, key, R::kSuccess, R::kQueued, at(30), "")));
  const std::string cleared = str(w.load(key));
  EXPECT_TRUE(hasCode(store().materializeRun(t, key, std::vector{NewTaskInstance{"a", 1}}, at(40)),
                      StatusCode::kConflict));
  EXPECT_EQ(str(w.load(key)), cleared);
}

TEST_P(StoreContract, AFailedMaterializationLeavesTheRunQueuedAndEmpty) {
  Scenario w(store());
  const Term t = w.claim();
  const RunKey key = w.run("etl", "r1", 0);
  const std::vector<NewTaskInstance> duplicated{NewTaskInstance{"a", 1}, NewTaskInstance{"b", 1},
                                                NewTaskInstance{"a", 2}};
  EXPECT_FALSE(store().materializeRun(t, key, duplicated, at(5)).isOk());
  const RunRecord r = w.load(key);
  EXPECT_EQ(r.state, R::kQueued);
  EXPECT_TRUE(r.tasks.empty());
  EXPECT_FALSE(r.started_at.has_value());
  EXPECT_TRUE(ok(store().materializeRun(t, key, std::vector{NewTaskInstance{"a", 1}}, at(6))));
}

TEST_P(StoreContract, DecisionsAboutAnUnknownRunAreNotFound) {
  Scenario w(store());
  const Term t = w.claim();
  w.dag("etl");
  const RunKey ghost{"etl", "ghost"};
  EXPECT_TRUE(hasCode(store().materializeRun(t, ghost, std::vector{NewTaskInstance{"a", 1}}, at(1)),
                      StatusCode::kNotFound));
  EXPECT_TRUE(hasCode(store().setRunState(t, ghost, R::kQueued, R::kRunning, at(1), ""), StatusCode::kNotFound));
  EXPECT_TRUE(hasCode(store().applyTransitions(
                          t, ghost, std::vector{TaskTransitionWrite{"a", S::kNone, 1, S::kScheduled, "", false}}, at(1)),
                      StatusCode::kNotFound));
  EXPECT_TRUE(hasCode(store().reapRun(t, ghost, at(1), "x"), StatusCode::kNotFound));
}

// ===================================================================================================
// Run state

TEST_P(StoreContract, SetRunStateStampsStartAndEndAndReplacesTheNote) {
  Scenario w(store());
  const Term t = w.claim();
  const RunKey key = w.run("etl", "r1", 0);
  ASSERT_TRUE(ok(store().setRunState(t, key, R::kQueued, R::kRunning, at(5), "")));
  RunRecord r = w.load(key);
  EXPECT_EQ(r.state, R::kRunning);
  EXPECT_EQ(str(r.started_at), str(at(5)));
  EXPECT_FALSE(r.ended_at.has_value());

  ASSERT_TRUE(ok(store().setRunState(t, key, R::kRunning, R::kFailed, at(9), "task extract failed")));
  r = w.load(key);
  EXPECT_EQ(r.state, R::kFailed);
  EXPECT_EQ(str(r.ended_at), str(at(9)));
  EXPECT_EQ(r.note, "task extract failed");

  ASSERT_TRUE(ok(store().setRunState(t, key, R::kFailed, R::kQueued, at(20), "")));
  r = w.load(key);
  EXPECT_EQ(r.note, "task extract failed") << "an empty note keeps the old one";
  ASSERT_TRUE(ok(store().setRunState(t, key, R::kQueued, R::kRunning, at(30), "")));
  EXPECT_EQ(str(w.load(key).started_at), str(at(30)));
}

TEST_P(StoreContract, SetRunStateFromAStateTheRunIsNotInIsAConflict) {
  Scenario w(store());
  const Term t = w.claim();
  const RunKey key = w.run("etl", "r1", 0);
  const std::string before = str(w.load(key));
  EXPECT_TRUE(hasCode(store().setRunState(t, key, R::kRunning, R::kSuccess, at(5), "done"), StatusCode::kConflict));
  EXPECT_EQ(str(w.load(key)), before);
}

TEST_P(StoreContract, SetRunStateRefusesAMoveTheTableForbids) {  // ARCHITECTURE §8.2
  Scenario w(store());
  const Term t = w.claim();
  const RunKey key = w.started("etl", "r1", {"a"});
  const std::string before = str(w.load(key));
  EXPECT_FALSE(store().setRunState(t, key, R::kRunning, R::kQueued, at(5), "").isOk());
  EXPECT_FALSE(store().setRunState(t, key, R::kRunning, R::kRunning, at(5), "").isOk());
  EXPECT_EQ(str(w.load(key)), before);

  // A run with no tasks may finish straight from queued.
  const RunKey empty = w.run("etl", "empty", 1);
  ASSERT_TRUE(ok(store().setRunState(t, empty, R::kQueued, R::kSuccess, at(6), "")));
  EXPECT_EQ(str(w.load(empty).ended_at), str(at(6)));
}

// ===================================================================================================
// Task transitions

TEST_P(StoreContract, EachTargetStateStampsItsTime) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b", "c"});
  ASSERT_TRUE(w.move(key, "a", S::kNone, S::kScheduled, 10));
  EXPECT_EQ(str(w.task(key, "a").scheduled_at), str(at(10)));
  ASSERT_TRUE(w.move(key, "a", S::kScheduled, S::kQueued, 20));
  EXPECT_EQ(str(w.task(key, "a").queued_at), str(at(20)));
  ASSERT_TRUE(w.move(key, "a", S::kQueued, S::kRunning, 30));
  TaskInstance a = w.task(key, "a");
  EXPECT_EQ(str(a.started_at), str(at(30)));
  EXPECT_EQ(str(a.last_heartbeat_at), str(at(30))) << "running stamps the first heartbeat (§8.8)";
  ASSERT_TRUE(w.move(key, "a", S::kRunning, S::kSuccess, 40));
  a = w.task(key, "a");
  EXPECT_EQ(a.state, S::kSuccess);
  EXPECT_EQ(str(a.ended_at), str(at(40)));
  EXPECT_EQ(str(a.scheduled_at), str(at(10)));
  EXPECT_EQ(str(a.queued_at), str(at(20)));

  ASSERT_TRUE(w.move(key, "b", S::kNone, S::kSkipped, 50));
  EXPECT_EQ(str(w.task(key, "b").ended_at), str(at(50)));
  ASSERT_TRUE(w.move(key, "c", S::kNone, S::kUpstreamFailed, 60));
  EXPECT_EQ(str(w.task(key, "c").ended_at), str(at(60)));
}

TEST_P(StoreContract, AWriteWhoseGuardDoesNotHoldIsReportedAndTheRestOfTheBatchApplies) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b", "c"});
  const std::string b_before = str(w.task(key, "b"));
  const std::string c_before = str(w.task(key, "c"));
  const std::vector<TaskTransitionWrite> batch{
      TaskTransitionWrite{"a", S::kNone, 1, S::kScheduled, "", false},
      TaskTransitionWrite{"b", S::kScheduled, 1, S::kQueued, "", false},  // b is not scheduled
      TaskTransitionWrite{"c", S::kNone, 2, S::kScheduled, "", false},    // c is on try 1
      TaskTransitionWrite{"ghost", S::kNone, 1, S::kScheduled, "", false},
  };
  auto applied = store().applyTransitions(w.term(), key, batch, at(10));
  ASSERT_TRUE(ok(applied));
  EXPECT_EQ(*applied, (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(w.task(key, "a").state, S::kScheduled);
  EXPECT_EQ(str(w.task(key, "b")), b_before);
  EXPECT_EQ(str(w.task(key, "c")), c_before);
}

TEST_P(StoreContract, AMoveTheTableForbidsIsRefused) {  // ARCHITECTURE §8.2, BEHAVIOUR §10 item 17
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"});
  const std::string before = str(w.task(key, "a"));
  EXPECT_FALSE(w.move(key, "a", S::kNone, S::kRunning, 10));
  EXPECT_FALSE(w.move(key, "a", S::kNone, S::kSuccess, 10));
  EXPECT_FALSE(w.move(key, "a", S::kNone, S::kQueued, 10));
  EXPECT_FALSE(w.move(key, "a", S::kNone, S::kNone, 10));
  EXPECT_FALSE(w.move(key, "a", S::kNone, S::kUpForRetry, 10));
  EXPECT_EQ(str(w.task(key, "a")), before);

  ASSERT_TRUE(w.move(key, "a", S::kNone, S::kScheduled, 11));
  EXPECT_FALSE(w.move(key, "a", S::kScheduled, S::kRunning, 12));
  EXPECT_FALSE(w.move(key, "a", S::kScheduled, S::kSuccess, 12));
  EXPECT_EQ(w.task(key, "a").state, S::kScheduled);
}

TEST_P(StoreContract, ABatchAppliesInOrder) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"}, 2);
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning, S::kFailed}, 10);
  const std::vector<TaskTransitionWrite> batch{
      TaskTransitionWrite{"a", S::kFailed, 1, S::kUpForRetry, "", false},
      TaskTransitionWrite{"a", S::kUpForRetry, 1, S::kNone, "", false},
  };
  auto applied = store().applyTransitions(w.term(), key, batch, at(20));
  ASSERT_TRUE(ok(applied));
  EXPECT_EQ(*applied, (std::vector<bool>{true, true}));
  const TaskInstance a = w.task(key, "a");
  EXPECT_EQ(a.state, S::kNone);
  EXPECT_EQ(a.try_number, 2);
}

TEST_P(StoreContract, OneBatchMovesATaskNoneToScheduledToQueuedAndOutOfOrderItDoesNot) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b"}, 1);
  const std::vector<TaskTransitionWrite> batch{
      TaskTransitionWrite{"a", S::kNone, 1, S::kScheduled, "", false},
      TaskTransitionWrite{"a", S::kScheduled, 1, S::kQueued, "", false},
      // The other way round, the second write's guard is what the first left, not what was before.
      TaskTransitionWrite{"b", S::kScheduled, 1, S::kQueued, "", false},
      TaskTransitionWrite{"b", S::kNone, 1, S::kScheduled, "", false},
  };
  auto applied = store().applyTransitions(w.term(), key, batch, at(20));
  ASSERT_TRUE(ok(applied));
  EXPECT_EQ(*applied, (std::vector<bool>{true, true, false, true}));
  const TaskInstance a = w.task(key, "a");
  EXPECT_EQ(a.state, S::kQueued);
  EXPECT_EQ(str(a.scheduled_at), str(at(20)));
  EXPECT_EQ(str(a.queued_at), str(at(20)));
  EXPECT_EQ(w.task(key, "b").state, S::kScheduled);
  // The attempt queued that way is claimed like any other.
  EXPECT_TRUE(ok(store().reportRunning(w.attempt(key, "a"), at(21))));
  EXPECT_EQ(w.task(key, "a").state, S::kRunning);
}

TEST_P(StoreContract, ARetryStartsAFreshAttempt) {  // BEHAVIOUR §10 items 1 and 6
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"}, 3);
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10);
  ASSERT_TRUE(ok(store().reportHeartbeat(w.attempt(key, "a"), at(35))));
  ASSERT_TRUE(ok(store().reportFinished(w.attempt(key, "a"), TaskOutcome{false, 3, "exit code 3"}, at(40))));
  ASSERT_TRUE(w.move(key, "a", S::kFailed, S::kUpForRetry, 50));
  // The retry delay is measured from the failure: up_for_retry keeps ended_at (BEHAVIOUR §1.5).
  EXPECT_EQ(str(w.task(key, "a").ended_at), str(at(40)));

  ASSERT_TRUE(w.move(key, "a", S::kUpForRetry, S::kNone, 60));
  EXPECT_EQ(str(w.task(key, "a")), "a:none try=2/3 sched=- queued=- start=- end=- beat=- exit=- exec='' note=''");
}

TEST_P(StoreContract, LeavingUpForRetryForScheduledOrQueuedAlsoStartsTheNextAttempt) {
  // The table allows up_for_retry → scheduled | queued; like → none they begin a new attempt, so
  // the failed attempt's late reports cannot land on it (BEHAVIOUR §10 item 3).
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b"}, 3);
  for (const char* task : {"a", "b"}) {
    w.walk(key, task, {S::kNone, S::kScheduled, S::kQueued, S::kRunning, S::kFailed, S::kUpForRetry}, 10);
  }
  ASSERT_TRUE(w.move(key, "a", S::kUpForRetry, S::kScheduled, 30));
  EXPECT_EQ(str(w.task(key, "a")),
            "a:scheduled try=2/3 sched=30000 queued=- start=- end=- beat=- exit=- exec='' note=''");
  ASSERT_TRUE(w.move(key, "b", S::kUpForRetry, S::kQueued, 31));
  EXPECT_EQ(str(w.task(key, "b")),
            "b:queued try=2/3 sched=- queued=31000 start=- end=- beat=- exit=- exec='' note=''");
  EXPECT_TRUE(hasCode(store().reportFinished(w.attempt(key, "b", 1), TaskOutcome{true, 0, ""}, at(32)),
                      StatusCode::kConflict));
  EXPECT_EQ(w.task(key, "b").state, S::kQueued);
}

TEST_P(StoreContract, AHandOverRefusedForCapacityClearsTheQueuedStamp) {  // ARCHITECTURE §8.8
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"});
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued}, 10);
  ASSERT_TRUE(w.move(key, "a", S::kQueued, S::kScheduled, 25));
  const TaskInstance a = w.task(key, "a");
  EXPECT_EQ(a.state, S::kScheduled);
  EXPECT_FALSE(a.queued_at.has_value()) << "a stale queued stamp would read as a lost dispatch";
  EXPECT_EQ(str(a.scheduled_at), str(at(25)));
  auto lost = store().listDispatchLostCandidates(100);
  ASSERT_TRUE(ok(lost));
  EXPECT_TRUE(lost->empty());
}

TEST_P(StoreContract, ExhaustRetriesLeavesNoRetryBudget) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b"}, 3);
  w.walk(key, "a", {S::kNone, S::kScheduled}, 10);
  ASSERT_TRUE(w.move(key, "a", S::kScheduled, S::kFailed, 20, 1, "no executor for a \"spark\" task", true));
  TaskInstance a = w.task(key, "a");
  EXPECT_EQ(a.state, S::kFailed);
  EXPECT_EQ(a.max_tries, 1);
  EXPECT_EQ(a.note, "no executor for a \"spark\" task");
  EXPECT_EQ(str(a.ended_at), str(at(20)));

  // On a later try, the budget ends at that try.
  w.walk(key, "b", {S::kNone, S::kScheduled, S::kQueued, S::kRunning, S::kFailed, S::kUpForRetry, S::kNone}, 10);
  w.walk(key, "b", {S::kNone, S::kScheduled, S::kQueued}, 30, 2);
  ASSERT_TRUE(w.move(key, "b", S::kQueued, S::kFailed, 40, 2, "dispatch failed", true));
  EXPECT_EQ(w.task(key, "b").max_tries, 2);
}

TEST_P(StoreContract, ANoteReplacesTheOldOneOnlyWhenGiven) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"});
  ASSERT_TRUE(w.move(key, "a", S::kNone, S::kScheduled, 10, 1, "waiting for capacity"));
  EXPECT_EQ(w.task(key, "a").note, "waiting for capacity");
  ASSERT_TRUE(w.move(key, "a", S::kScheduled, S::kQueued, 11));
  EXPECT_EQ(w.task(key, "a").note, "waiting for capacity");
  ASSERT_TRUE(w.move(key, "a", S::kQueued, S::kFailed, 12, 1, "dispatch failed: timeout"));
  EXPECT_EQ(w.task(key, "a").note, "dispatch failed: timeout");
}

TEST_P(StoreContract, AReaderSeesABatchWholeOrNotAtAll) {
  Scenario w(store());
  constexpr int kTasks = 20;
  std::vector<std::string> ids;
  for (int i = 0; i < kTasks; ++i) ids.push_back(fmt::format("t{:02}", i));
  const RunKey key = w.started("etl", "r1", ids, 1000);
  const Term term = w.term();

  // Each batch moves every task one step round the retry cycle; a reader must never see the tasks
  // disagree on (state, try).
  const std::vector<S> cycle{S::kNone, S::kScheduled, S::kQueued, S::kRunning, S::kFailed, S::kUpForRetry};
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::atomic<int> reads{0};
  std::atomic<int> read_errors{0};
  std::thread reader([&] {
    const std::vector<RunKey> keys{key};
    while (!done.load()) {
      auto results = store().loadRuns(keys);
      ++reads;
      if (results.size() != 1 || !results[0].isOk()) {
        ++read_errors;
        continue;
      }
      const RunRecord& r = results[0].value();
      for (const TaskInstance& t : r.tasks) {
        if (t.state != r.tasks[0].state || t.try_number != r.tasks[0].try_number) {
          ++torn;
          break;
        }
      }
    }
  });
  std::int32_t try_number = 1;
  int failures = 0;
  for (int step = 0; step < 60; ++step) {
    const S from = cycle[static_cast<std::size_t>(step) % cycle.size()];
    const S to = cycle[static_cast<std::size_t>(step + 1) % cycle.size()];
    std::vector<TaskTransitionWrite> batch;
    for (const std::string& id : ids) batch.push_back(TaskTransitionWrite{id, from, try_number, to, "", false});
    auto applied = store().applyTransitions(term, key, batch, at(100 + step));
    if (!applied.isOk() || std::count(applied->begin(), applied->end(), true) != kTasks) ++failures;
    if (from == S::kUpForRetry) ++try_number;
  }
  while (reads.load() < 5) std::this_thread::yield();  // the reader really ran alongside
  done = true;
  reader.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(read_errors.load(), 0);
  EXPECT_EQ(torn.load(), 0) << "a reader saw half a batch";
  EXPECT_EQ(w.task(key, "t07").try_number, 11);
}

// ===================================================================================================
// Executor reports (ARCHITECTURE §8.7, §8.8; BEHAVIOUR §10 item 3)

TEST_P(StoreContract, ReportRunningStartsAQueuedAttemptAndStampsItsFirstHeartbeat) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"});
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued}, 10);
  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "a"), at(25))));
  const TaskInstance a = w.task(key, "a");
  EXPECT_EQ(a.state, S::kRunning);
  EXPECT_EQ(str(a.started_at), str(at(25)));
  EXPECT_EQ(str(a.last_heartbeat_at), str(at(25)));
  auto lost = store().listAgentLostCandidates(100);
  ASSERT_TRUE(ok(lost));
  ASSERT_EQ(lost->size(), 1u) << "an executor that dies right after starting must still be found";
  EXPECT_EQ((*lost)[0].attempt, w.attempt(key, "a").attempt);
}

TEST_P(StoreContract, ReportRunningOnAnAttemptThatIsNotQueuedIsAConflict) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"});
  ASSERT_TRUE(w.move(key, "a", S::kNone, S::kScheduled, 10));
  EXPECT_TRUE(hasCode(store().reportRunning(w.attempt(key, "a"), at(11)), StatusCode::kConflict));
  EXPECT_EQ(w.task(key, "a").state, S::kScheduled);
  EXPECT_FALSE(w.task(key, "a").started_at.has_value());

  ASSERT_TRUE(w.move(key, "a", S::kScheduled, S::kQueued, 12));
  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "a"), at(13))));
  EXPECT_TRUE(hasCode(store().reportRunning(w.attempt(key, "a", 1, "host-b/202/e2"), at(14)), StatusCode::kConflict))
      << "another execution may not claim a running attempt";
  EXPECT_EQ(str(w.task(key, "a").started_at), str(at(13)));
}

// ARCHITECTURE §8.13: a retried claim after a lost reply is a success, never a conflict.
TEST_P(StoreContract, TheSameExecutionsClaimIsAcceptedAgainAndChangesNothing) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"});
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued}, 10);
  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "a"), at(20))));
  const std::string claimed = str(w.task(key, "a"));
  EXPECT_TRUE(ok(store().reportRunning(w.attempt(key, "a"), at(25)))) << "the same execution, again";
  EXPECT_EQ(str(w.task(key, "a")), claimed) << "nothing changed: started_at stays the first claim's";
  ASSERT_TRUE(ok(store().reportFinished(w.attempt(key, "a"), TaskOutcome{true, 0, ""}, at(30))));
  EXPECT_TRUE(hasCode(store().reportRunning(w.attempt(key, "a"), at(31)), StatusCode::kConflict))
      << "an ended attempt is not claimed again, not even by its execution";
}

TEST_P(StoreContract, OnlyTheClaimingExecutionMayBeatOrFinish) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"});
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10);
  const ExecutionRef other = w.attempt(key, "a", 1, "host-b/202/e2");
  EXPECT_TRUE(hasCode(store().reportHeartbeat(other, at(20)), StatusCode::kConflict));
  EXPECT_TRUE(hasCode(store().reportFinished(other, TaskOutcome{false, 1, "exit code 1"}, at(21)),
                      StatusCode::kConflict));
  TaskInstance a = w.task(key, "a");
  EXPECT_EQ(a.state, S::kRunning);
  EXPECT_EQ(str(a.last_heartbeat_at), str(at(12)));
  ASSERT_TRUE(ok(store().reportHeartbeat(w.attempt(key, "a"), at(22))));
  ASSERT_TRUE(ok(store().reportFinished(w.attempt(key, "a"), TaskOutcome{true, 0, ""}, at(23))));
  a = w.task(key, "a");
  EXPECT_EQ(a.state, S::kSuccess);
  EXPECT_EQ(str(a.last_heartbeat_at), str(at(22)));
}

TEST_P(StoreContract, AQueuedAttemptAcceptsNothingButAClaim) {  // ARCHITECTURE §8.13
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"});
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued}, 10);
  const std::string before = str(w.task(key, "a"));
  EXPECT_TRUE(hasCode(store().reportHeartbeat(w.attempt(key, "a"), at(20)), StatusCode::kConflict));
  EXPECT_TRUE(hasCode(store().reportFinished(w.attempt(key, "a"), TaskOutcome{true, 0, ""}, at(21)),
                      StatusCode::kConflict));
  EXPECT_EQ(str(w.task(key, "a")), before);
  EXPECT_TRUE(hasCode(store().reportRunning(w.attempt(key, "a", 1, ""), at(22)), StatusCode::kInvalidArgument))
      << "a claim names its execution";
  EXPECT_EQ(str(w.task(key, "a")), before);
}

TEST_P(StoreContract, RacingClaimsOfTwoExecutionsLetExactlyOneIn) {  // ARCHITECTURE §8.13
  Scenario w(store());
  constexpr int kTasks = 40;
  std::vector<std::string> ids;
  for (int i = 0; i < kTasks; ++i) ids.push_back("t" + std::to_string(i));
  const RunKey key = w.started("etl", "r1", ids);
  for (const std::string& id : ids) w.walk(key, id, {S::kNone, S::kScheduled, S::kQueued}, 10);
  std::unique_ptr<Store> second = secondHandle();
  Store& other = second ? *second : store();
  std::vector<Status> a(kTasks), b(kTasks);
  std::barrier<> sync(2);
  std::thread host_b([&] {
    for (int i = 0; i < kTasks; ++i) {
      sync.arrive_and_wait();
      b[static_cast<std::size_t>(i)] =
          other.reportRunning(w.attempt(key, ids[static_cast<std::size_t>(i)], 1, "host-b/202/e2"), at(20));
    }
  });
  for (int i = 0; i < kTasks; ++i) {
    sync.arrive_and_wait();
    a[static_cast<std::size_t>(i)] = store().reportRunning(w.attempt(key, ids[static_cast<std::size_t>(i)]), at(20));
  }
  host_b.join();
  for (int i = 0; i < kTasks; ++i) {
    const auto u = static_cast<std::size_t>(i);
    EXPECT_NE(a[u].isOk(), b[u].isOk()) << ids[u] << ": exactly one claim wins: " << a[u].toString() << " / "
                                        << b[u].toString();
    const Status& loser = a[u].isOk() ? b[u] : a[u];
    EXPECT_TRUE(hasCode(loser, StatusCode::kConflict)) << ids[u];
    // The winner, and only the winner, may go on.
    const ExecutionRef winner = w.attempt(key, ids[u], 1, a[u].isOk() ? "host-a/101/e1" : "host-b/202/e2");
    const ExecutionRef refused = w.attempt(key, ids[u], 1, a[u].isOk() ? "host-b/202/e2" : "host-a/101/e1");
    EXPECT_TRUE(hasCode(store().reportHeartbeat(refused, at(21)), StatusCode::kConflict)) << ids[u];
    EXPECT_TRUE(ok(store().reportHeartbeat(winner, at(21)))) << ids[u];
  }
}

TEST_P(StoreContract, HeartbeatsStampOnlyALiveCurrentAttempt) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b", "c"});
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10);
  ASSERT_TRUE(ok(store().reportHeartbeat(w.attempt(key, "a"), at(45))));
  EXPECT_EQ(str(w.task(key, "a").last_heartbeat_at), str(at(45)));

  // A queued attempt was claimed by nobody: a beat for it is refused (ARCHITECTURE §8.13).
  w.walk(key, "b", {S::kNone, S::kScheduled, S::kQueued}, 10);
  EXPECT_TRUE(hasCode(store().reportHeartbeat(w.attempt(key, "b"), at(46)), StatusCode::kConflict));
  EXPECT_EQ(w.task(key, "b").state, S::kQueued);
  EXPECT_FALSE(w.task(key, "b").last_heartbeat_at.has_value());

  EXPECT_TRUE(hasCode(store().reportHeartbeat(w.attempt(key, "c"), at(47)), StatusCode::kConflict));
  EXPECT_FALSE(w.task(key, "c").last_heartbeat_at.has_value());

  ASSERT_TRUE(ok(store().reportFinished(w.attempt(key, "a"), TaskOutcome{true, 0, ""}, at(50))));
  EXPECT_TRUE(hasCode(store().reportHeartbeat(w.attempt(key, "a"), at(55)), StatusCode::kConflict));
  EXPECT_EQ(str(w.task(key, "a").last_heartbeat_at), str(at(45)));
}

TEST_P(StoreContract, ReportFinishedRecordsTheOutcome) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"ok", "bad", "quick"});
  w.walk(key, "ok", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10);
  w.walk(key, "bad", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10);
  w.walk(key, "quick", {S::kNone, S::kScheduled, S::kQueued}, 10);

  ASSERT_TRUE(ok(store().reportFinished(w.attempt(key, "ok"), TaskOutcome{true, 0, "done"}, at(50))));
  EXPECT_EQ(str(w.task(key, "ok")),
            "ok:success try=1/1 sched=10000 queued=11000 start=12000 end=50000 beat=12000 exit=0 "
            "exec='host-a/101/e1' note='done'");
  ASSERT_TRUE(ok(store().reportFinished(w.attempt(key, "bad"), TaskOutcome{false, 3, "exit code 3"}, at(51))));
  EXPECT_EQ(str(w.task(key, "bad")),
            "bad:failed try=1/1 sched=10000 queued=11000 start=12000 end=51000 beat=12000 exit=3 "
            "exec='host-a/101/e1' note='exit code 3'");
  // No execution claimed "quick": a finished report cannot overtake the claim (ARCHITECTURE §8.13).
  const std::string quick = str(w.task(key, "quick"));
  EXPECT_TRUE(hasCode(store().reportFinished(w.attempt(key, "quick"), TaskOutcome{true, 0, ""}, at(52)),
                      StatusCode::kConflict));
  EXPECT_EQ(str(w.task(key, "quick")), quick);
}

TEST_P(StoreContract, AReportAboutAnOldTryNeverTouchesTheNewTry) {  // BEHAVIOUR §10 item 3
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"}, 2);
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning, S::kFailed, S::kUpForRetry, S::kNone}, 10);
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued}, 20, 2);
  const std::string before = str(w.task(key, "a"));

  const ExecutionRef old_try = w.attempt(key, "a", 1);
  EXPECT_TRUE(hasCode(store().reportRunning(old_try, at(30)), StatusCode::kConflict));
  EXPECT_TRUE(hasCode(store().reportHeartbeat(old_try, at(31)), StatusCode::kConflict));
  EXPECT_TRUE(hasCode(store().reportFinished(old_try, TaskOutcome{true, 0, "late"}, at(32)), StatusCode::kConflict));
  EXPECT_EQ(str(w.task(key, "a")), before);

  EXPECT_TRUE(hasCode(store().reportRunning(w.attempt(key, "a", 3), at(33)), StatusCode::kConflict));
  EXPECT_TRUE(ok(store().reportRunning(w.attempt(key, "a", 2), at(34))));
}

TEST_P(StoreContract, AnEndedAttemptIsNeverResurrected) {  // ARCHITECTURE §2
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b"});
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10);
  ASSERT_TRUE(ok(store().reportFinished(w.attempt(key, "a"), TaskOutcome{true, 0, "done"}, at(20))));
  const std::string a_done = str(w.task(key, "a"));
  EXPECT_TRUE(hasCode(store().reportFinished(w.attempt(key, "a"), TaskOutcome{false, 1, "again"}, at(21)),
                      StatusCode::kConflict));
  EXPECT_TRUE(hasCode(store().reportRunning(w.attempt(key, "a"), at(22)), StatusCode::kConflict));
  EXPECT_EQ(str(w.task(key, "a")), a_done);

  // A reaped task stays failed whatever its executor says afterwards.
  w.walk(key, "b", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10);
  ASSERT_TRUE(ok(store().reapRun(w.term(), key, at(30), "orphaned")));
  EXPECT_TRUE(hasCode(store().reportFinished(w.attempt(key, "b"), TaskOutcome{true, 0, ""}, at(31)),
                      StatusCode::kConflict));
  EXPECT_EQ(w.task(key, "b").state, S::kFailed);
}

TEST_P(StoreContract, ReportsAboutAnUnknownRunOrTaskAreRefused) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"});
  EXPECT_FALSE(store().reportRunning(w.attempt(RunKey{"etl", "ghost"}, "a"), at(1)).isOk());
  EXPECT_FALSE(store().reportFinished(w.attempt(key, "ghost"), TaskOutcome{true, 0, ""}, at(1)).isOk());
  EXPECT_FALSE(store().reportHeartbeat(w.attempt(key, "ghost"), at(1)).isOk());
}

// ===================================================================================================
// Reapers (BEHAVIOUR §4)

TEST_P(StoreContract, OrphanCandidatesAreRunningRunsWithNothingInFlight) {
  Scenario w(store());
  w.started("etl", "idle", {"a"});
  const RunKey settled = w.started("etl", "settled", {"a"});
  w.walk(settled, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning, S::kSuccess}, 10);
  const RunKey scheduled = w.started("etl", "scheduled", {"a"});
  w.walk(scheduled, "a", {S::kNone, S::kScheduled}, 10);
  const RunKey queued = w.started("etl", "queued", {"a"});
  w.walk(queued, "a", {S::kNone, S::kScheduled, S::kQueued}, 10);
  const RunKey running = w.started("etl", "running", {"a"});
  w.walk(running, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10);
  const RunKey retrying = w.started("etl", "retrying", {"a"}, 2);  // BEHAVIOUR §10 item 5
  w.walk(retrying, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning, S::kFailed, S::kUpForRetry}, 10);
  w.run("etl", "waiting", 3);
  const RunKey finished = w.started("etl", "finished", {});
  ASSERT_TRUE(ok(store().setRunState(w.term(), finished, R::kRunning, R::kSuccess, at(5), "")));

  auto candidates = store().listOrphanCandidates(100);
  ASSERT_TRUE(ok(candidates));
  std::set<std::string> ids;
  for (const OrphanCandidate& c : *candidates) ids.insert(c.run.run_id);
  EXPECT_EQ(ids, (std::set<std::string>{"idle", "settled"}));
}

TEST_P(StoreContract, AnOrphansLastActivityIsItsLatestStamp) {
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b"}, 1, 0);  // queued at 0, started at 1
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued}, 20);
  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "a"), at(40))));
  ASSERT_TRUE(ok(store().reportFinished(w.attempt(key, "a"), TaskOutcome{true, 0, ""}, at(50))));
  ASSERT_TRUE(w.move(key, "b", S::kNone, S::kSkipped, 60));
  w.started("etl", "empty", {}, 1, 100);  // queued at 100, started at 101

  auto candidates = store().listOrphanCandidates(100);
  ASSERT_TRUE(ok(candidates));
  std::map<std::string, std::string> last;
  for (const OrphanCandidate& c : *candidates) last[c.run.run_id] = str(c.last_activity);
  EXPECT_EQ(last["r1"], str(at(60)));
  EXPECT_EQ(last["empty"], str(at(101)));
}

TEST_P(StoreContract, OrphanCandidatesComeStalestFirstUpToTheLimit) {
  Scenario w(store());
  const Term t = w.claim();
  // Queued in one order, last active in another: the stalest run is the one to reap first.
  const std::vector<std::pair<std::string, int>> runs{{"r1", 300}, {"r2", 100}, {"r3", 200}};
  int queued_s = 0;
  for (const auto& [id, started_s] : runs) {
    const RunKey key = w.run("etl", id, queued_s++);
    ASSERT_TRUE(ok(store().materializeRun(t, key, std::vector<NewTaskInstance>{}, at(started_s))));
  }
  auto all = store().listOrphanCandidates(10);
  ASSERT_TRUE(ok(all));
  EXPECT_EQ(keysOf(*all, &orphanIdOf), (Ids{"r2", "r3", "r1"}));
  auto two = store().listOrphanCandidates(2);
  ASSERT_TRUE(ok(two));
  EXPECT_EQ(keysOf(*two, &orphanIdOf), (Ids{"r2", "r3"}));
}

TEST_P(StoreContract, ReapingFailsTheRunAndEveryUnfinishedTask) {  // BEHAVIOUR §4.2
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"n", "s", "q", "r", "u", "ok", "sk", "f"}, 2);
  w.walk(key, "s", {S::kNone, S::kScheduled}, 10);
  w.walk(key, "q", {S::kNone, S::kScheduled, S::kQueued}, 10);
  w.walk(key, "r", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10);
  w.walk(key, "u", {S::kNone, S::kScheduled, S::kQueued, S::kRunning, S::kFailed, S::kUpForRetry}, 10);
  w.walk(key, "ok", {S::kNone, S::kScheduled, S::kQueued, S::kRunning, S::kSuccess}, 10);
  ASSERT_TRUE(w.move(key, "sk", S::kNone, S::kSkipped, 10));
  w.walk(key, "f", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10);
  ASSERT_TRUE(w.move(key, "f", S::kRunning, S::kFailed, 25, 1, "exit code 1"));
  const std::string ok_before = str(w.task(key, "ok"));
  const std::string sk_before = str(w.task(key, "sk"));
  const std::string f_before = str(w.task(key, "f"));

  const std::string note = "orphaned: no scheduler activity within the orphan window";
  ASSERT_TRUE(ok(store().reapRun(w.term(), key, at(500), note)));
  const RunRecord r = w.load(key);
  EXPECT_EQ(r.state, R::kFailed);
  EXPECT_EQ(str(r.ended_at), str(at(500)));
  EXPECT_EQ(r.note, note);
  for (const char* id : {"n", "s", "q", "r", "u"}) {
    const TaskInstance t = w.task(key, id);
    EXPECT_EQ(t.state, S::kFailed) << id;
    EXPECT_EQ(str(t.ended_at), str(at(500))) << id;
    EXPECT_EQ(t.note, note) << id;
  }
  EXPECT_EQ(str(w.task(key, "ok")), ok_before);
  EXPECT_EQ(str(w.task(key, "sk")), sk_before);
  EXPECT_EQ(str(w.task(key, "f")), f_before);
}

TEST_P(StoreContract, ReapingARunNoLongerRunningChangesNothing) {
  Scenario w(store());
  const RunKey done = w.started("etl", "done", {"a"});
  w.walk(done, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning, S::kSuccess}, 10);
  ASSERT_TRUE(ok(store().setRunState(w.term(), done, R::kRunning, R::kSuccess, at(20), "")));
  const RunKey queued = w.run("etl", "queued", 30);
  const std::string done_before = str(w.load(done));
  const std::string queued_before = str(w.load(queued));
  EXPECT_TRUE(ok(store().reapRun(w.term(), done, at(100), "orphaned")));
  EXPECT_TRUE(ok(store().reapRun(w.term(), queued, at(100), "orphaned")));
  EXPECT_EQ(str(w.load(done)), done_before);
  EXPECT_EQ(str(w.load(queued)), queued_before);
}

// `leoflow store clean` (SDK 1.1): Airflow's `db clean`. Every store of this repository supports it.
TEST_P(StoreContract, CleaningDeletesOnlyRunsThatFinishedBeforeTheCutoff) {
  Scenario w(store());
  const RunKey old_ok = w.started("etl", "old_ok", {"a"});
  ASSERT_TRUE(ok(store().setRunState(w.term(), old_ok, R::kRunning, R::kSuccess, at(10), "")));
  const RunKey old_failed = w.started("etl", "old_failed", {"a"});
  ASSERT_TRUE(ok(store().reapRun(w.term(), old_failed, at(20), "orphaned")));
  const RunKey recent = w.started("etl", "recent", {"a"});
  ASSERT_TRUE(ok(store().setRunState(w.term(), recent, R::kRunning, R::kSuccess, at(200), "")));
  const RunKey active = w.started("etl", "active", {"a"});  // started long ago, still running
  const RunKey waiting = w.run("etl", "waiting", 5);

  auto deleted = store().deleteFinishedRuns(at(100));
  ASSERT_TRUE(deleted.isOk()) << deleted.status().toString();
  ASSERT_TRUE(deleted->has_value()) << "the store says it cannot clean";
  EXPECT_EQ(**deleted, 2);
  auto runs = store().listRuns(RunFilter{});
  ASSERT_TRUE(runs.isOk());
  std::vector<std::string> left;
  for (const RunRecord& r : *runs) left.push_back(r.key.run_id);
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"active", "recent", "waiting"}));
  auto loaded = store().loadRuns(std::vector<RunKey>{old_ok, active});
  ASSERT_EQ(loaded.size(), 2u);
  EXPECT_EQ(loaded[0].status().code(), StatusCode::kNotFound) << "a deleted run is gone with its instances";
  ASSERT_TRUE(loaded[1].isOk());
  EXPECT_EQ(loaded[1]->tasks.size(), 1u);
  auto found = store().findRuns("old_failed");
  ASSERT_TRUE(found.isOk());
  EXPECT_TRUE(found->empty()) << "a deleted run is not found by its id";
  // The id is free again: a run created with it is a new run.
  const RunKey reborn = w.run("etl", "old_ok", 300);
  EXPECT_EQ(w.load(reborn).state, R::kQueued);
  auto again = store().deleteFinishedRuns(at(100));
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(again->value_or(-1), 0) << "nothing left to clean";
}

TEST_P(StoreContract, AgentLostCandidatesAreRunningAttemptsOldestHeartbeatFirst) {  // BEHAVIOUR §4.3
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b", "c", "d", "e"}, 2);
  for (const char* id : {"a", "b", "c", "d"}) w.walk(key, id, {S::kNone, S::kScheduled, S::kQueued}, 10);
  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "a"), at(30))));
  ASSERT_TRUE(ok(store().reportHeartbeat(w.attempt(key, "a"), at(90))));
  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "b"), at(40))));
  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "d"), at(41))));
  ASSERT_TRUE(ok(store().reportFinished(w.attempt(key, "d"), TaskOutcome{true, 0, ""}, at(41))));
  w.walk(key, "e", {S::kNone, S::kScheduled, S::kQueued, S::kRunning, S::kFailed, S::kUpForRetry, S::kNone}, 10);
  w.walk(key, "e", {S::kNone, S::kScheduled, S::kQueued}, 50, 2);
  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "e", 2), at(60))));

  auto all = store().listAgentLostCandidates(10);
  ASSERT_TRUE(ok(all));
  EXPECT_EQ(keysOf(*all, &agentTaskOf), (Ids{"b", "e", "a"}));
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[1].attempt, w.attempt(key, "e", 2).attempt);
  EXPECT_EQ(str((*all)[0].last_heartbeat), str(at(40)));
  EXPECT_EQ(str((*all)[2].last_heartbeat), str(at(90)));
  auto two = store().listAgentLostCandidates(2);
  ASSERT_TRUE(ok(two));
  EXPECT_EQ(keysOf(*two, &agentTaskOf), (Ids{"b", "e"}));
}

TEST_P(StoreContract, DispatchLostCandidatesAreQueuedAttemptsOldestFirst) {  // BEHAVIOUR §4.4
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a", "b", "c", "d", "e"}, 2);
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued}, 29);  // queued at 30
  w.walk(key, "b", {S::kNone, S::kScheduled, S::kQueued}, 9);   // queued at 10
  w.walk(key, "c", {S::kNone, S::kScheduled, S::kQueued}, 19);  // queued at 20, then running
  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "c"), at(21))));
  w.walk(key, "d", {S::kNone, S::kScheduled}, 5);
  w.walk(key, "e", {S::kNone, S::kScheduled, S::kQueued, S::kRunning, S::kFailed, S::kUpForRetry, S::kNone}, 1);
  w.walk(key, "e", {S::kNone, S::kScheduled, S::kQueued}, 39, 2);  // queued at 40 on try 2

  auto all = store().listDispatchLostCandidates(10);
  ASSERT_TRUE(ok(all));
  EXPECT_EQ(keysOf(*all, &dispatchTaskOf), (Ids{"b", "a", "e"}));
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ(str((*all)[0].queued_at), str(at(10)));
  EXPECT_EQ((*all)[2].attempt, w.attempt(key, "e", 2).attempt);
  EXPECT_EQ(str((*all)[2].queued_at), str(at(40))) << "a retry must not inherit try 1's queued stamp";
  auto one = store().listDispatchLostCandidates(1);
  ASSERT_TRUE(ok(one));
  EXPECT_EQ(keysOf(*one, &dispatchTaskOf), (Ids{"b"}));
}

// ===================================================================================================
// Concurrency: exactly-once state changes (ARCHITECTURE §2)

TEST_P(StoreContract, AReportRacingADecisionOnOneTaskHasExactlyOneWinner) {
  Scenario w(store());
  constexpr int kTasks = 100;
  std::vector<std::string> ids;
  for (int i = 0; i < kTasks; ++i) ids.push_back(fmt::format("t{:03}", i));
  const RunKey key = w.started("etl", "r1", ids);
  std::vector<TaskTransitionWrite> to_running;
  for (const S from : {S::kNone, S::kScheduled, S::kQueued}) {
    to_running.clear();
    const S to = from == S::kNone ? S::kScheduled : from == S::kScheduled ? S::kQueued : S::kRunning;
    for (const std::string& id : ids) to_running.push_back(TaskTransitionWrite{id, from, 1, to, "", false});
    ASSERT_TRUE(ok(store().applyTransitions(w.term(), key, to_running, at(10))));
  }

  std::vector<Status> reports(kTasks);
  std::vector<int> decisions(kTasks, -1);
  std::barrier<> sync(2);
  std::thread executor([&] {
    for (int i = 0; i < kTasks; ++i) {
      sync.arrive_and_wait();
      reports[static_cast<std::size_t>(i)] = store().reportFinished(
          w.attempt(key, ids[static_cast<std::size_t>(i)]), TaskOutcome{true, 0, "done"}, at(20));
    }
  });
  std::thread scheduler([&] {
    for (int i = 0; i < kTasks; ++i) {
      sync.arrive_and_wait();
      const std::vector<TaskTransitionWrite> lost{
          TaskTransitionWrite{ids[static_cast<std::size_t>(i)], S::kRunning, 1, S::kFailed, "agent_lost", false}};
      auto r = store().applyTransitions(w.term(), key, lost, at(20));
      decisions[static_cast<std::size_t>(i)] = r.isOk() && r->size() == 1 ? static_cast<int>((*r)[0]) : -1;
    }
  });
  executor.join();
  scheduler.join();

  const RunRecord r = w.load(key);
  std::map<std::string, TaskInstance> by_id;
  for (const TaskInstance& t : r.tasks) by_id[t.task_id] = t;
  for (int i = 0; i < kTasks; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const bool report_won = reports[u].isOk();
    ASSERT_NE(decisions[u], -1) << ids[u];
    const bool decision_won = decisions[u] == 1;
    EXPECT_NE(report_won, decision_won) << ids[u] << ": exactly one writer may win";
    if (!report_won) {
      EXPECT_TRUE(hasCode(reports[u], StatusCode::kConflict)) << ids[u];
    }
    EXPECT_EQ(by_id[ids[u]].state, report_won ? S::kSuccess : S::kFailed) << ids[u];
    EXPECT_EQ(by_id[ids[u]].note, report_won ? "done" : "agent_lost") << ids[u];
  }
}

TEST_P(StoreContract, ConcurrentWritersOnOneRunLoseNoUpdate) {
  Scenario w(store());
  constexpr int kReported = 100;
  constexpr int kPlanned = 100;
  std::vector<std::string> ids;
  for (int i = 0; i < kReported + kPlanned; ++i) ids.push_back(fmt::format("t{:03}", i));
  const RunKey key = w.started("etl", "r1", ids);
  for (const S from : {S::kNone, S::kScheduled}) {
    std::vector<TaskTransitionWrite> batch;
    for (int i = 0; i < kReported; ++i) {
      batch.push_back(TaskTransitionWrite{ids[static_cast<std::size_t>(i)], from, 1,
                                          from == S::kNone ? S::kScheduled : S::kQueued, "", false});
    }
    ASSERT_TRUE(ok(store().applyTransitions(w.term(), key, batch, at(10))));
  }

  constexpr int kReporters = 4;
  std::atomic<int> failures{0};
  std::latch start(kReporters + 1);
  std::vector<std::thread> threads;
  for (int k = 0; k < kReporters; ++k) {
    threads.emplace_back([&, k] {
      start.arrive_and_wait();
      for (int i = k; i < kReported; i += kReporters) {
        const ExecutionRef a = w.attempt(key, ids[static_cast<std::size_t>(i)]);
        if (!store().reportRunning(a, at(20)).isOk()) ++failures;
        if (!store().reportHeartbeat(a, at(21)).isOk()) ++failures;
        if (!store().reportFinished(a, TaskOutcome{true, 0, ""}, at(22)).isOk()) ++failures;
      }
    });
  }
  threads.emplace_back([&] {
    start.arrive_and_wait();
    for (int i = kReported; i < kReported + kPlanned; i += 10) {
      std::vector<TaskTransitionWrite> batch;
      for (int j = i; j < i + 10; ++j) {
        batch.push_back(TaskTransitionWrite{ids[static_cast<std::size_t>(j)], S::kNone, 1, S::kScheduled, "", false});
      }
      auto r = store().applyTransitions(w.term(), key, batch, at(23));
      if (!r.isOk() || std::count(r->begin(), r->end(), true) != 10) ++failures;
    }
  });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  const RunRecord r = w.load(key);
  int success = 0;
  int scheduled = 0;
  for (const TaskInstance& t : r.tasks) {
    success += t.state == S::kSuccess ? 1 : 0;
    scheduled += t.state == S::kScheduled ? 1 : 0;
  }
  EXPECT_EQ(success, kReported);
  EXPECT_EQ(scheduled, kPlanned);
}

TEST_P(StoreContract, ReapingRacingAFinishedReportLeavesOneStory) {
  Scenario w(store());
  constexpr int kRuns = 30;
  std::vector<RunKey> keys;
  for (int i = 0; i < kRuns; ++i) {
    const RunKey key = w.started("etl", fmt::format("r{:02}", i), {"a"});
    w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, 10);
    keys.push_back(key);
  }
  std::vector<Status> reports(kRuns);
  std::vector<Status> reaps(kRuns);
  std::barrier<> sync(2);
  std::thread executor([&] {
    for (int i = 0; i < kRuns; ++i) {
      sync.arrive_and_wait();
      const auto u = static_cast<std::size_t>(i);
      reports[u] = store().reportFinished(w.attempt(keys[u], "a"), TaskOutcome{true, 0, ""}, at(20));
    }
  });
  std::thread reaper([&] {
    for (int i = 0; i < kRuns; ++i) {
      sync.arrive_and_wait();
      const auto u = static_cast<std::size_t>(i);
      reaps[u] = store().reapRun(w.term(), keys[u], at(20), "orphaned");
    }
  });
  executor.join();
  reaper.join();
  for (int i = 0; i < kRuns; ++i) {
    const auto u = static_cast<std::size_t>(i);
    EXPECT_TRUE(ok(reaps[u]));
    const RunRecord r = w.load(keys[u]);
    EXPECT_EQ(r.state, R::kFailed);
    ASSERT_EQ(r.tasks.size(), 1u);
    // Either the report landed first (and the reaper left the finished task alone) or the reaper
    // did (and the report was refused): never both, never neither.
    EXPECT_EQ(r.tasks[0].state, reports[u].isOk() ? S::kSuccess : S::kFailed) << keys[u].run_id;
  }
}

// ===================================================================================================
// Change feed (ARCHITECTURE §2 "Wake-ups")

TEST_P(StoreContract, ASubscriberHearsDagsRunsTasksAndReports) {
  RecordingSink sink;
  Subscription sub(store(), sink);
  ASSERT_TRUE(ok(sub.status()));
  Scenario w(store());
  w.dag("etl");
  EXPECT_TRUE(sink.waitFor(isDag("etl")));
  const RunKey key = w.run("etl", "r1");
  EXPECT_TRUE(sink.waitFor(isRun(key)));
  w.claim();
  sink.clear();
  ASSERT_TRUE(ok(store().materializeRun(w.term(), key, std::vector{NewTaskInstance{"a", 1}}, at(1))));
  EXPECT_TRUE(sink.waitFor(isRun(key)));
  ASSERT_TRUE(w.move(key, "a", S::kNone, S::kScheduled, 2));
  EXPECT_TRUE(sink.waitFor(isTask(key, "a")));
  ASSERT_TRUE(w.move(key, "a", S::kScheduled, S::kQueued, 3));
  sink.clear();
  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "a"), at(4))));
  EXPECT_TRUE(sink.waitFor(isTask(key, "a")));
  sink.clear();
  ASSERT_TRUE(ok(store().reportFinished(w.attempt(key, "a"), TaskOutcome{true, 0, ""}, at(5))));
  EXPECT_TRUE(sink.waitFor(isTask(key, "a"))) << "a finished task must wake the scheduler";
  sink.clear();
  ASSERT_TRUE(ok(store().setRunState(w.term(), key, R::kRunning, R::kSuccess, at(6), "")));
  EXPECT_TRUE(sink.waitFor(isRun(key)));
}

// SDK 3.11: `runs trigger --wait` follows a run on a feed of run changes only. Each message of a
// feed arrives in the order it was published, so a task's or DAG's change delivered by mistake would
// be there by the time the run's end is.
TEST_P(StoreContract, ARunsSubscriberHearsEveryRunChangeAndNoTaskOrDagChange) {
  RecordingSink sink;
  Subscription sub(store(), sink, /*runs_only=*/true);
  ASSERT_TRUE(ok(sub.status()));
  RecordingSink second;
  EXPECT_FALSE(ok(store().subscribe(second))) << "one subscriber at a time, of either kind";
  Scenario w(store());
  w.dag("etl");
  const RunKey key = w.run("etl", "r1");
  ASSERT_TRUE(sink.waitForCount(isRun(key), 1)) << "the run's creation";
  w.claim();
  ASSERT_TRUE(ok(store().materializeRun(w.term(), key, std::vector{NewTaskInstance{"a", 1}}, at(1))));
  ASSERT_TRUE(sink.waitForCount(isRun(key), 2)) << "the run's start";
  ASSERT_TRUE(w.move(key, "a", S::kNone, S::kScheduled, 2));
  ASSERT_TRUE(w.move(key, "a", S::kScheduled, S::kQueued, 3));
  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "a"), at(4))));
  ASSERT_TRUE(ok(store().reportFinished(w.attempt(key, "a"), TaskOutcome{true, 0, ""}, at(5))));
  ASSERT_TRUE(ok(store().setPaused("etl", true)));
  ASSERT_TRUE(ok(store().setRunState(w.term(), key, R::kRunning, R::kSuccess, at(6), "")));
  ASSERT_TRUE(sink.waitForCount(isRun(key), 3)) << "the run's end";
  EXPECT_FALSE(sink.saw([](const Change& c) { return c.kind != Change::Kind::kRun; }))
      << "a task's or a DAG's change reached a subscriber of run changes";
}

// SDK 3.4: a leader skips the echoes of its own transitions, so a change made by applyTransitions
// names the term that wrote it, and a change anyone else made names none.
TEST_P(StoreContract, ATransitionsChangeNamesTheTermThatWroteIt) {
  RecordingSink sink;
  Subscription sub(store(), sink);
  ASSERT_TRUE(ok(sub.status()));
  Scenario w(store());
  // An id that needs escaping in a message: the term must still come out whole.
  const RunKey key = w.started("etl", "r:1%", {"a:b%c"});
  const Term term = w.term();
  ASSERT_GT(term, 0);
  auto by = [&](Term t) {
    return [&key, t](const Change& c) { return isTask(key, "a:b%c")(c) && c.leader_term == t; };
  };
  ASSERT_TRUE(w.move(key, "a:b%c", S::kNone, S::kScheduled, 2));
  ASSERT_TRUE(w.move(key, "a:b%c", S::kScheduled, S::kQueued, 3));
  ASSERT_TRUE(sink.waitForCount(by(term), 2)) << "each transition's change names the term " << term;
  EXPECT_FALSE(sink.saw(by(0)));
  sink.clear();
  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "a:b%c"), at(4))));
  EXPECT_TRUE(sink.waitFor(by(0))) << "an executor's report is not the leader's write";
  EXPECT_FALSE(sink.saw(by(term)));
}

// SDK 3.7: a leader mirrors its own run starts and run moves, so the run change made by materializeRun
// and by setRunState names the term that wrote it, and every other run change (creation, a person's
// command, a reap) names none.
TEST_P(StoreContract, ALeadersRunStartAndRunMoveNameTheTermThatWroteThem) {
  RecordingSink sink;
  Subscription sub(store(), sink);
  ASSERT_TRUE(ok(sub.status()));
  Scenario w(store());
  const Term term = w.claim();
  ASSERT_GT(term, 0);
  // Ids that need escaping in a message: the term must still come out whole.
  auto by = [&](const RunKey& key, Term t) {
    return [key, t](const Change& c) { return isRun(key)(c) && c.leader_term == t; };
  };
  const RunKey started = w.run("etl", "r:3%");
  ASSERT_TRUE(sink.waitFor(by(started, 0))) << "a person's trigger names no term";
  sink.clear();
  ASSERT_TRUE(ok(store().materializeRun(term, started, std::vector{NewTaskInstance{"a:b%c", 1}}, at(1))));
  EXPECT_TRUE(sink.waitFor(by(started, term))) << "the run's start names the term " << term;
  ASSERT_TRUE(w.move(started, "a:b%c", S::kNone, S::kSkipped, 2));
  sink.clear();
  ASSERT_TRUE(ok(store().setRunState(term, started, R::kRunning, R::kSuccess, at(3), "")));
  EXPECT_TRUE(sink.waitFor(by(started, term))) << "the run's move names the term " << term;
  EXPECT_FALSE(sink.saw(by(started, 0)));

  const RunKey cancelled = w.started("etl", "r:4%", {"a:b%c"});
  ASSERT_TRUE(sink.waitFor(by(cancelled, term)));
  sink.clear();
  CancelRunRequest cancel;
  cancel.run = cancelled;
  cancel.note = "cancelled by the contract";
  cancel.at = at(4);
  ASSERT_TRUE(ok(store().cancelRun(cancel)));
  EXPECT_TRUE(sink.waitFor(by(cancelled, 0))) << "a person's cancel names no term";
  EXPECT_FALSE(sink.saw(by(cancelled, term)));
}

// SDK 3.5: the host mirrors the accepted reports of its own executions and skips their echoes, so a
// claim or finished report that moved the instance names the execution, and nobody else's change does.
TEST_P(StoreContract, AnExecutorsReportsChangeNamesTheExecution) {
  RecordingSink sink;
  Subscription sub(store(), sink);
  ASSERT_TRUE(ok(sub.status()));
  Scenario w(store());
  const RunKey key = w.started("etl", "r:2%", {"a:b%c", "d"});
  // An id that needs escaping in a message: it must still come out whole.
  const std::string execution = "host:a/101/e%1";
  auto by = [&](const std::string& id) {
    return [&key, id](const Change& c) { return isTask(key, "a:b%c")(c) && c.execution_id == id; };
  };
  ASSERT_TRUE(w.move(key, "a:b%c", S::kNone, S::kScheduled, 2));
  ASSERT_TRUE(w.move(key, "a:b%c", S::kScheduled, S::kQueued, 3));
  ASSERT_TRUE(sink.waitForCount(by(""), 2));
  sink.clear();
  ASSERT_TRUE(ok(store().reportRunning(w.attempt(key, "a:b%c", 1, execution), at(4))));
  EXPECT_TRUE(sink.waitFor(by(execution))) << "the claim's change names its execution";
  sink.clear();
  ASSERT_TRUE(ok(store().reportFinished(w.attempt(key, "a:b%c", 1, execution), TaskOutcome{true, 0, ""}, at(5))));
  EXPECT_TRUE(sink.waitFor(by(execution))) << "the finished report's change names its execution";
  sink.clear();
  MarkTaskRequest mark;
  mark.run = key;
  mark.task_id = "a:b%c";
  mark.to = S::kFailed;
  mark.note = "marked by the contract";
  mark.at = at(6);
  ASSERT_TRUE(ok(store().markTask(mark)));
  EXPECT_TRUE(sink.waitFor(by(""))) << "a person's change names no execution";
  EXPECT_FALSE(sink.saw(by(execution)));
}

TEST_P(StoreContract, AnUnsubscribedSinkHearsNothingMore) {
  Scenario w(store());
  RecordingSink first;
  {
    Subscription sub(store(), first);
    ASSERT_TRUE(ok(sub.status()));
    const RunKey key = w.run("etl", "heard");
    ASSERT_TRUE(first.waitFor(isRun(key)));
  }
  const RunKey unheard = w.run("etl", "unheard");
  // One subscriber at a time: after unsubscribing, another sink may take over.
  RecordingSink second;
  Subscription sub(store(), second);
  ASSERT_TRUE(ok(sub.status()));
  const RunKey later = w.run("etl", "later");
  EXPECT_TRUE(second.waitFor(isRun(later)));
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(first.saw(isRun(unheard)));
  EXPECT_FALSE(first.saw(isRun(later)));
}

TEST_P(StoreContract, ChangesMadeThroughAnotherHandleArrive) {
  std::unique_ptr<Store> other = secondHandle();
  if (!other) GTEST_SKIP() << "the harness offers no second handle";
  RecordingSink sink;
  Subscription sub(store(), sink);
  ASSERT_TRUE(ok(sub.status()));
  Scenario w(store());
  const RunKey key = w.started("etl", "r1", {"a"});
  w.walk(key, "a", {S::kNone, S::kScheduled, S::kQueued}, 10);
  ASSERT_TRUE(sink.waitFor(isTask(key, "a")));
  sink.clear();

  // An executor reporting through another scheduler process (§8.7: reports come from any replica).
  ASSERT_TRUE(ok(other->reportRunning(w.attempt(key, "a"), at(20))));
  ASSERT_TRUE(ok(other->reportFinished(w.attempt(key, "a"), TaskOutcome{true, 0, ""}, at(20))));
  EXPECT_TRUE(sink.waitFor(isTask(key, "a")));
  EXPECT_EQ(w.task(key, "a").state, S::kSuccess);

  // A person's trigger through another process.
  ASSERT_TRUE(ok(other->createRun(std::nullopt, NewRun{RunKey{"etl", "manual"}, 1, RunTrigger::kManual, kT0, "",
                                                       at(30)})));
  EXPECT_TRUE(sink.waitFor(isRun(RunKey{"etl", "manual"})));
}

}  // namespace
}  // namespace leoflow::contract
