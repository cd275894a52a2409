// store-redis behaviour beyond the contract suite, on a real Redis (database 5): the Lua transition
// table against planning::canTransition, fencing of big batches, ids with separators, the key
// layout the README documents, key-prefix isolation, and figures (printed, never asserted) for
// latency and throughput. What disturbs the whole server (a hang, a restart, a script-cache flush)
// is in redis_restart_test.cpp, which runs alone.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <optional>
#include <random>
#include <mutex>
#include <numeric>
#include <set>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "factories.h"
#include "id_codec.h"
#include "planning/transitions.h"
#include "records.h"
#include "redis_test_env.h"

namespace leoflow::plugins::store_redis {
namespace {

namespace redis = leoflow::testing::redis;
using namespace std::chrono_literals;
using S = TaskState;
using R = DagRunState;
using SteadyClock = std::chrono::steady_clock;

constexpr int kDb = 5;
const Timestamp kT0 = Timestamp{std::chrono::sys_days{std::chrono::year{2026} / std::chrono::May / 28}} + 12h;

Timestamp at(int seconds) { return kT0 + std::chrono::seconds{seconds}; }

std::unique_ptr<Store> openStore(const std::string& prefix = "leoflow", std::int64_t command_timeout_ms = 2000) {
  return RedisStoreFactory().create(redis::storeConfig(redis::urlForDb(kDb), prefix, 3000, command_timeout_ms),
                                    redis::makeContext());
}

DagDefinition dagDef(const std::string& dag_id, const std::string& schedule = "") {
  DagDefinition d;
  d.spec.dag_id = dag_id;
  d.spec.schedule = schedule;
  d.spec_json = R"({"dag_id":")" + dag_id + R"("})";
  return d;
}

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LEOFLOW_REQUIRE_TEST_REDIS();
    redis::flushDb(kDb);
    store_ = openStore();
  }
  void TearDown() override {
    if (store_) store_->unsubscribe();
  }

  Store& store() { return *store_; }

  /// A running run with `tasks` in none, under a freshly claimed term.
  RunKey startedRun(const std::string& dag, const std::string& run, const std::vector<std::string>& tasks,
                    std::int32_t max_tries = 1) {
    EXPECT_TRUE(store().syncDags(std::vector{dagDef(dag)}).isOk());
    if (term_ == 0) term_ = *store().claimTerm("replica-test");
    const RunKey key{dag, run};
    EXPECT_TRUE(store().createRun(std::nullopt, NewRun{key, 1, RunTrigger::kManual, kT0, "", kT0}).isOk());
    std::vector<NewTaskInstance> instances;
    for (const auto& t : tasks) instances.push_back(NewTaskInstance{t, max_tries});
    const Status s = store().materializeRun(term_, key, instances, at(1));
    EXPECT_TRUE(s.isOk()) << s.toString();
    return key;
  }

  RunRecord load(const RunKey& key) {
    auto r = store().loadRuns(std::vector{key});
    EXPECT_TRUE(r.at(0).isOk()) << r.at(0).status().toString();
    return r.at(0).isOk() ? r.at(0).value() : RunRecord{};
  }

  TaskInstance task(const RunKey& key, const std::string& id) {
    for (const TaskInstance& t : load(key).tasks) {
      if (t.task_id == id) return t;
    }
    ADD_FAILURE() << "no task " << id;
    return {};
  }

  /// Writes a task instance record as stored, bypassing every rule (to start from any state).
  void seed(const RunKey& key, const TaskInstance& ti, std::int64_t seq = 0) {
    const std::string tis = "leoflow:run:" + encodeId(key.dag_id) + ":" + encodeId(key.run_id) + ":tis";
    redis::serverCommand(kDb, {"HSET", tis, ti.task_id, encodeTiRecord(TiRecord{seq, ti})});
  }

  std::unique_ptr<Store> store_;
  Term term_ = 0;
};

class Collector final : public ChangeSink {
 public:
  void onChange(const Change& change) override {
    {
      std::lock_guard lock(mu_);
      changes_.push_back({change, SteadyClock::now()});
    }
    cv_.notify_all();
  }
  void onResync() override {
    {
      std::lock_guard lock(mu_);
      ++resyncs_;
    }
    cv_.notify_all();
  }
  /// Waits until `n` changes arrived; the arrival times, in order.
  std::vector<std::pair<Change, SteadyClock::time_point>> waitFor(std::size_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return changes_.size() >= n; });
    return changes_;
  }
  /// Waits until a change like `wanted` arrived (earlier writes' changes may still trickle in).
  std::optional<Change> waitUntil(const std::function<bool(const Change&)>& wanted,
                                  std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu_);
    std::optional<Change> found;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& [c, when] : changes_) {
        if (wanted(c)) {
          found = c;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  void clear() {
    std::lock_guard lock(mu_);
    changes_.clear();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<Change, SteadyClock::time_point>> changes_;
  int resyncs_ = 0;
};

// ------------------------------------------------------------------------------------------------

TEST_F(RedisStoreTest, TheLuaTransitionTableIsPlanningsTable) {
  // lua/common.lua mirrors core/planning/transitions.cpp (the plugin may not include core): all 81
  // pairs must agree, through the real write path.
  std::vector<std::string> ids;
  for (S from : kAllTaskStates) {
    for (S to : kAllTaskStates) ids.push_back(std::string(toString(from)) + "->" + std::string(toString(to)));
  }
  const RunKey key = startedRun("table", "r1", ids);
  std::vector<TaskTransitionWrite> writes;
  for (S from : kAllTaskStates) {
    for (S to : kAllTaskStates) {
      TaskInstance ti;
      ti.task_id = std::string(toString(from)) + "->" + std::string(toString(to));
      ti.state = from;
      seed(key, ti);
      writes.push_back(TaskTransitionWrite{ti.task_id, from, 1, to, "", false});
    }
  }
  auto applied = store().applyTransitions(term_, key, writes, at(10));
  ASSERT_TRUE(applied.isOk()) << applied.status().toString();
  ASSERT_EQ(applied->size(), writes.size());
  int legal = 0;
  for (std::size_t i = 0; i < writes.size(); ++i) {
    EXPECT_EQ((*applied)[i], planning::canTransition(writes[i].from, writes[i].to)) << writes[i].task_id;
    legal += (*applied)[i] ? 1 : 0;
  }
  EXPECT_EQ(legal, 23) << "the seed's 17 moves and §8.2's 6";
  // Refused moves changed nothing.
  for (const TaskInstance& t : load(key).tasks) {
    const auto arrow = t.task_id.find("->");
    const auto from = *parseTaskState(t.task_id.substr(0, arrow));
    const auto to = *parseTaskState(t.task_id.substr(arrow + 2));
    if (!planning::canTransition(from, to)) {
      EXPECT_EQ(t.state, from) << t.task_id;
      EXPECT_FALSE(t.ended_at.has_value()) << t.task_id;
    }
  }
}

TEST_F(RedisStoreTest, AStaleLeadersBigBatchLandsNowhereWhileTheNewLeadersLands) {
  constexpr int kTasks = 2000;
  std::vector<std::string> ids;
  for (int i = 0; i < kTasks; ++i) ids.push_back("t" + std::to_string(i));
  const RunKey key = startedRun("big", "r1", ids);
  const Term old_term = term_;
  const Term new_term = *store().claimTerm("replica-b");
  std::vector<TaskTransitionWrite> batch;
  for (const auto& id : ids) batch.push_back(TaskTransitionWrite{id, S::kNone, 1, S::kScheduled, "stale", false});

  // Both leaders race their batch; the stale one must be refused whole, whatever the interleaving.
  Result<std::vector<bool>> stale{std::vector<bool>{}};
  Result<std::vector<bool>> fresh{std::vector<bool>{}};
  std::thread a([&] { stale = store().applyTransitions(old_term, key, batch, at(10)); });
  std::thread b([&] {
    auto mine = batch;
    for (auto& w : mine) w.note = "fresh";
    fresh = store().applyTransitions(new_term, key, mine, at(11));
  });
  a.join();
  b.join();
  EXPECT_EQ(stale.status().code(), StatusCode::kFenced);
  ASSERT_TRUE(fresh.isOk()) << fresh.status().toString();
  EXPECT_EQ(std::count(fresh->begin(), fresh->end(), true), kTasks);
  for (const TaskInstance& t : load(key).tasks) {
    ASSERT_EQ(t.state, S::kScheduled) << t.task_id;
    ASSERT_EQ(t.note, "fresh") << t.task_id;
    ASSERT_EQ(t.scheduled_at, at(11)) << t.task_id;
  }
}

TEST_F(RedisStoreTest, IdsWithSeparatorsAndOddCharactersRoundTrip) {
  const std::string dag = "team:etl%v2";
  const std::string run = "manual__2026-01-01T00:00:00.123456Z";
  const std::string other_run = "r:1|x\nnew line";
  const std::string task = "load|stage:2 ünï";
  Collector sink;
  ASSERT_TRUE(store().subscribe(sink).isOk());
  const RunKey key = startedRun(dag, run, {task, "plain"});
  ASSERT_TRUE(store().createRun(std::nullopt, NewRun{RunKey{dag, other_run}, 1, RunTrigger::kManual, kT0, "", kT0}).isOk());

  const RunRecord r = load(key);
  EXPECT_EQ(r.key, key);
  ASSERT_EQ(r.tasks.size(), 2u);
  EXPECT_EQ(r.tasks[0].task_id, task) << "instances come back in materialization order";
  EXPECT_EQ(r.tasks[1].task_id, "plain");
  auto found = store().findRuns(other_run);
  ASSERT_TRUE(found.isOk());
  EXPECT_EQ(*found, (std::vector<RunKey>{RunKey{dag, other_run}}));
  auto listed = store().listRuns(RunFilter{dag, std::nullopt, 10, std::nullopt, std::nullopt, std::nullopt});
  ASSERT_TRUE(listed.isOk());
  EXPECT_EQ(listed->size(), 2u);

  auto applied = store().applyTransitions(term_, key, std::vector{TaskTransitionWrite{task, S::kNone, 1, S::kScheduled, "", false}}, at(5));
  ASSERT_TRUE(applied.isOk() && (*applied)[0]);
  // The feed decodes the ids exactly: the change names this run and this task.
  const auto change = sink.waitUntil([](const Change& c) { return c.kind == Change::Kind::kTask; });
  ASSERT_TRUE(change.has_value()) << "no task change arrived";
  EXPECT_EQ(change->run, key);
  EXPECT_EQ(change->task_id, task);
}

TEST_F(RedisStoreTest, TimesKeepTheirMicroseconds) {
  const RunKey key = startedRun("precise", "r1", {"a"});
  const Timestamp t{std::chrono::microseconds(1'780'000'000'123'457)};
  ASSERT_TRUE(store().applyTransitions(term_, key, std::vector{TaskTransitionWrite{"a", S::kNone, 1, S::kScheduled, "", false}}, t).isOk());
  EXPECT_EQ(task(key, "a").scheduled_at, t);
  auto orphans = store().listOrphanCandidates(10);  // none: a is scheduled
  ASSERT_TRUE(orphans.isOk());
  EXPECT_TRUE(orphans->empty());
}

TEST_F(RedisStoreTest, TheKeyLayoutIsTheDocumentedOne) {
  // README.md "Key layout": operators and the other tests rely on these names.
  ASSERT_TRUE(store().syncDags(std::vector{dagDef("etl:x", "@daily")}).isOk());
  const RunKey key = startedRun("etl:x", "r:1", {"a"});
  ASSERT_TRUE(store().applyTransitions(term_, key, std::vector{TaskTransitionWrite{"a", S::kNone, 1, S::kScheduled, "", false},
                                                              TaskTransitionWrite{"a", S::kScheduled, 1, S::kQueued, "", false}},
                                       at(2)).isOk());
  ASSERT_TRUE(store().recordLiveness(term_, LivenessRecord{"replica-test", term_, at(3), 0, 1}).isOk());
  auto keys = [](const std::string& pattern) {
    const std::string listed = redis::serverCommand(kDb, {"EVAL", "return table.concat(redis.call('KEYS', ARGV[1]), ' ')", "0", pattern});
    std::set<std::string> out;
    std::size_t start = 0;
    while (start < listed.size()) {
      const auto sp = listed.find(' ', start);
      out.insert(listed.substr(start, sp == std::string::npos ? std::string::npos : sp - start));
      if (sp == std::string::npos) break;
      start = sp + 1;
    }
    return out;
  };
  EXPECT_EQ(keys("leoflow:*"),
            (std::set<std::string>{"leoflow:term", "leoflow:liveness", "leoflow:dags", "leoflow:dag:etl%3Ax",
                                   "leoflow:dag:etl%3Ax:versions", "leoflow:dag:etl%3Ax:runs", "leoflow:run:etl%3Ax:r%3A1",
                                   "leoflow:run:etl%3Ax:r%3A1:tis", "leoflow:runs:active", "leoflow:runs:by_logical",
                                   "leoflow:runid:r%3A1", "leoflow:tis:queued", "leoflow:run_uid"}));
  EXPECT_EQ(redis::serverCommand(kDb, {"HGET", "leoflow:run:etl%3Ax:r%3A1", "state"}), "running");
  EXPECT_EQ(redis::serverCommand(kDb, {"HGET", "leoflow:run:etl%3Ax:r%3A1", "active"}), "1");
  EXPECT_EQ(redis::serverCommand(kDb, {"HGET", "leoflow:dag:etl%3Ax", "version"}), "1");
  EXPECT_EQ(redis::serverCommand(kDb, {"ZSCORE", "leoflow:tis:queued", "etl%3Ax:r%3A1:a"}),
            std::to_string(at(2).time_since_epoch().count()));
  const std::string record = redis::serverCommand(kDb, {"HGET", "leoflow:run:etl%3Ax:r%3A1:tis", "a"});
  EXPECT_EQ(record, "0|queued|1|1|" + toMicros(at(2)) + "|" + toMicros(at(2)) + "|||||");
  // SDK 3.0: the run keeps its uid (from the global counter) and its tenant; the DAG its tenant.
  EXPECT_EQ(redis::serverCommand(kDb, {"HGET", "leoflow:run:etl%3Ax:r%3A1", "uid"}), "1");
  EXPECT_EQ(redis::serverCommand(kDb, {"GET", "leoflow:run_uid"}), "1");
  EXPECT_EQ(redis::serverCommand(kDb, {"HGET", "leoflow:run:etl%3Ax:r%3A1", "tenant"}), "default");
  EXPECT_EQ(redis::serverCommand(kDb, {"HGET", "leoflow:dag:etl%3Ax", "tenant"}), "default");
}

TEST_F(RedisStoreTest, KeyPrefixesKeepInstallationsApart) {
  auto other = openStore("other");
  Collector sink;
  ASSERT_TRUE(other->subscribe(sink).isOk());
  ASSERT_TRUE(store().syncDags(std::vector{dagDef("mine")}).isOk());
  ASSERT_TRUE(other->syncDags(std::vector{dagDef("theirs")}).isOk());
  auto mine = store().listDags();
  auto theirs = other->listDags();
  ASSERT_TRUE(mine.isOk() && theirs.isOk());
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ((*mine)[0].dag_id, "mine");
  ASSERT_EQ(theirs->size(), 1u);
  EXPECT_EQ((*theirs)[0].dag_id, "theirs");
  const Term mine_term = *store().claimTerm("a");
  EXPECT_EQ(*other->claimTerm("b"), 1) << "terms are per installation";
  EXPECT_TRUE(store().recordLiveness(mine_term, LivenessRecord{"a", mine_term, std::nullopt, 0, 0}).isOk());
  // Only "theirs" reached the other installation's feed.
  const auto changes = sink.waitFor(2, 300ms);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].first.dag_id, "theirs");
  other->unsubscribe();
}

TEST_F(RedisStoreTest, UnsubscribeReturnsPromptlyAndSubscribeWorksAgain) {
  Collector sink;
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(store().subscribe(sink).isOk());
    std::this_thread::sleep_for(20ms);
    const auto start = SteadyClock::now();
    store().unsubscribe();
    EXPECT_LT(SteadyClock::now() - start, 500ms) << "the feed thread must notice the stop at once";
  }
}

// A server on the same host is reached through its unix socket (no TCP stack on the way): the same
// data as over TCP, and its change feed.
TEST_F(RedisStoreTest, AUnixSocketUrlReachesTheSameServerWithItsChangeFeed) {
  const char* socket = std::getenv("LEOFLOW_TEST_REDIS_SOCKET");
  ASSERT_NE(socket, nullptr) << "LEOFLOW_TEST_REDIS_SOCKET is unset (scripts/servers/redis.sh exports it)";
  const std::string url = "unix://" + std::string(socket) + "?db=" + std::to_string(kDb);
  auto over_socket = RedisStoreFactory().create(redis::storeConfig(url), redis::makeContext());
  Collector sink;
  ASSERT_TRUE(over_socket->subscribe(sink).isOk());
  const RunKey key = startedRun("unix_dag", "r1", {"a", "b"});  // written over TCP
  auto runs = over_socket->loadRuns(std::span<const RunKey>(&key, 1));
  ASSERT_EQ(runs.size(), 1U);
  ASSERT_TRUE(runs[0].isOk()) << runs[0].status().toString();
  EXPECT_EQ(runs[0]->tasks.size(), 2U);
  EXPECT_TRUE(sink.waitUntil([&](const Change& c) { return c.kind == Change::Kind::kRun && c.run == key; }))
      << "no change of the run arrived over the socket";
  ASSERT_TRUE(over_socket->syncDags(std::vector{dagDef("written_over_the_socket")}).isOk());
  auto dags = store().listDags();
  ASSERT_TRUE(dags.isOk());
  EXPECT_TRUE(std::any_of(dags->begin(), dags->end(),
                          [](const DagSummary& d) { return d.dag_id == "written_over_the_socket"; }));
  over_socket->unsubscribe();
}

TEST_F(RedisStoreTest, ARunOfTwentyThousandTasksMaterializesAndLoadsInOrder) {
  constexpr int kTasks = 20000;
  std::vector<std::string> ids;
  for (int i = kTasks; i > 0; --i) ids.push_back("task_" + std::to_string(i));  // not sorted by name
  const auto start = SteadyClock::now();
  const RunKey key = startedRun("huge", "r1", ids, 3);
  const auto materialized = SteadyClock::now();
  const RunRecord r = load(key);
  const auto loaded = SteadyClock::now();
  ASSERT_EQ(r.tasks.size(), ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(r.tasks[i].task_id, ids[i]) << i;
  EXPECT_EQ(r.tasks.back().max_tries, 3);
  std::vector<TaskTransitionWrite> batch;
  for (const auto& id : ids) batch.push_back(TaskTransitionWrite{id, S::kNone, 1, S::kScheduled, "", false});
  auto applied = store().applyTransitions(term_, key, batch, at(5));
  const auto planned = SteadyClock::now();
  ASSERT_TRUE(applied.isOk()) << applied.status().toString();
  EXPECT_EQ(std::count(applied->begin(), applied->end(), true), kTasks);
  auto ms = [](auto d) { return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()); };
  std::printf("[ figures  ] 20000 tasks: materialize %lld ms, loadRuns %lld ms, one batch of 20000 moves %lld ms\n",
              ms(materialized - start), ms(loaded - materialized), ms(planned - loaded));
}

TEST_F(RedisStoreTest, FiguresForTheChangeFeedAndConcurrentReports) {
  // Figures only (ARCHITECTURE §7: benchmarks print, they do not assert times).
  constexpr int kTasks = 400;
  std::vector<std::string> ids;
  for (int i = 0; i < kTasks; ++i) ids.push_back("t" + std::to_string(i));
  const RunKey key = startedRun("perf", "r1", ids);
  for (S from : {S::kNone, S::kScheduled}) {
    std::vector<TaskTransitionWrite> batch;
    for (const auto& id : ids) batch.push_back(TaskTransitionWrite{id, from, 1, from == S::kNone ? S::kScheduled : S::kQueued, "", false});
    ASSERT_TRUE(store().applyTransitions(term_, key, batch, at(2)).isOk());
  }

  // Wake-up latency: an executor's report → the change reaches the subscriber's thread.
  Collector sink;
  ASSERT_TRUE(store().subscribe(sink).isOk());
  std::vector<double> latencies_us;
  for (int i = 0; i < 200; ++i) {
    sink.clear();
    const auto sent = SteadyClock::now();
    ASSERT_TRUE(store().reportRunning(ExecutionRef{AttemptRef{key, ids[static_cast<std::size_t>(i)], 1}, "exec-1"}, at(3)).isOk());
    const auto changes = sink.waitFor(1);
    ASSERT_FALSE(changes.empty());
    latencies_us.push_back(std::chrono::duration<double, std::micro>(changes[0].second - sent).count());
  }
  std::sort(latencies_us.begin(), latencies_us.end());
  std::printf("[ figures  ] report -> change delivered: p50 %.0f us, p99 %.0f us, max %.0f us (200 samples)\n",
              latencies_us[100], latencies_us[197], latencies_us.back());
  store().unsubscribe();

  // Throughput: 8 threads of executor reports (heartbeats) on one store.
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  std::atomic<int> failures{0};
  const auto start = SteadyClock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const auto& id = ids[static_cast<std::size_t>((t * 25 + i) % 200)];
        if (!store().reportHeartbeat(ExecutionRef{AttemptRef{key, id, 1}, "exec-1"}, at(4 + i)).isOk()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  const double secs = std::chrono::duration<double>(SteadyClock::now() - start).count();
  EXPECT_EQ(failures.load(), 0);
  std::printf("[ figures  ] %d heartbeats from %d threads: %.0f reports/s\n", kThreads * kPerThread, kThreads,
              kThreads * kPerThread / secs);

  // A scheduler tick's reads: active runs then one loadRuns of a 400-task run.
  const auto tick = SteadyClock::now();
  for (int i = 0; i < 50; ++i) {
    auto active = store().listActiveRuns();
    ASSERT_TRUE(active.isOk());
    std::vector<RunKey> keys;
    for (const auto& a : *active) keys.push_back(a.key);
    ASSERT_TRUE(store().loadRuns(keys).at(0).isOk());
  }
  std::printf("[ figures  ] listActiveRuns + loadRuns(400 tasks): %.2f ms per tick\n",
              std::chrono::duration<double, std::milli>(SteadyClock::now() - tick).count() / 50);
}

TEST_F(RedisStoreTest, CreateRunWithVersionZeroBindsTheCurrentVersion) {
  ASSERT_TRUE(store().syncDags(std::vector{dagDef("etl")}).isOk());
  DagDefinition v2 = dagDef("etl");
  v2.spec_json = R"({"dag_id":"etl","v":2})";
  ASSERT_TRUE(store().syncDags(std::vector{v2}).isOk());
  ASSERT_TRUE(store().createRun(std::nullopt, NewRun{RunKey{"etl", "r"}, 0, RunTrigger::kManual, kT0, "", kT0}).isOk());
  EXPECT_EQ(load(RunKey{"etl", "r"}).dag_version, 2);
}

TEST_F(RedisStoreTest, OrphanActivityCountsAFinishedAttemptEvenAfterItsRetryWasReset) {
  // The run's `activity` keeps the latest instance stamp ever written, so the reset of a retry
  // (which clears the attempt's stamps) does not make a run look older than it is (§10 item 5).
  const RunKey key = startedRun("retry", "r1", {"a"}, 2);
  auto move = [&](S from, S to, int s, std::int32_t try_number = 1) {
    auto r = store().applyTransitions(term_, key, std::vector{TaskTransitionWrite{"a", from, try_number, to, "", false}}, at(s));
    ASSERT_TRUE(r.isOk() && (*r)[0]) << toString(from) << "->" << toString(to);
  };
  move(S::kNone, S::kScheduled, 10);
  move(S::kScheduled, S::kQueued, 11);
  move(S::kQueued, S::kRunning, 12);
  move(S::kRunning, S::kFailed, 40);
  move(S::kFailed, S::kUpForRetry, 41);
  move(S::kUpForRetry, S::kNone, 100);
  auto orphans = store().listOrphanCandidates(10);
  ASSERT_TRUE(orphans.isOk());
  ASSERT_EQ(orphans->size(), 1u);
  EXPECT_EQ((*orphans)[0].last_activity, at(40));
}

TEST_F(RedisStoreTest, OrphanCandidatesSpanningManyPagesOfTheIndexComeBackOnceStalestFirst) {
  // The listing reads the active-run index a page (~1,000 runs) per script: 2,500 orphans span
  // several pages, and the stalest must come first whichever page holds them.
  constexpr int kRuns = 2500;
  ASSERT_TRUE(store().syncDags(std::vector{dagDef("many")}).isOk());
  term_ = *store().claimTerm("replica-test");
  std::vector<int> staleness(kRuns);
  std::iota(staleness.begin(), staleness.end(), 0);
  std::shuffle(staleness.begin(), staleness.end(), std::mt19937(7));
  for (int i = 0; i < kRuns; ++i) {
    // Started at 1 s, queued later (the store takes the stamps as given): the latest stamp, and so
    // the run's last activity, is its queued_at.
    const RunKey key{"many", "r" + std::to_string(i)};
    ASSERT_TRUE(store().createRun(std::nullopt, NewRun{key, 1, RunTrigger::kManual, kT0, "", at(100 + staleness[i])}).isOk());
    ASSERT_TRUE(store().materializeRun(term_, key, std::vector{NewTaskInstance{"a", 1}}, at(1)).isOk());
  }
  auto stalest = store().listOrphanCandidates(5);
  ASSERT_TRUE(stalest.isOk()) << stalest.status().toString();
  ASSERT_EQ(stalest->size(), 5u);
  for (int k = 0; k < 5; ++k) {
    const int run = static_cast<int>(std::find(staleness.begin(), staleness.end(), k) - staleness.begin());
    EXPECT_EQ((*stalest)[static_cast<std::size_t>(k)].run.run_id, "r" + std::to_string(run)) << "rank " << k;
    EXPECT_EQ((*stalest)[static_cast<std::size_t>(k)].last_activity, at(100 + k));
  }
  auto all = store().listOrphanCandidates(10'000);
  ASSERT_TRUE(all.isOk());
  ASSERT_EQ(all->size(), static_cast<std::size_t>(kRuns));
  std::set<std::string> runs;
  for (std::size_t k = 0; k < all->size(); ++k) {
    runs.insert((*all)[k].run.run_id);
    EXPECT_EQ((*all)[k].last_activity, at(100 + static_cast<int>(k)));
  }
  EXPECT_EQ(runs.size(), static_cast<std::size_t>(kRuns)) << "a run listed twice";
}

// --- SDK 3.0: uids, tenants, held logical dates, claims, a person's commands ------------------------

std::set<std::string> keysMatching(const std::string& pattern) {
  const std::string listed =
      redis::serverCommand(kDb, {"EVAL", "return table.concat(redis.call('KEYS', ARGV[1]), ' ')", "0", pattern});
  std::set<std::string> out;
  std::size_t start = 0;
  while (start < listed.size()) {
    const auto sp = listed.find(' ', start);
    out.insert(listed.substr(start, sp == std::string::npos ? std::string::npos : sp - start));
    if (sp == std::string::npos) break;
    start = sp + 1;
  }
  return out;
}

std::string zcard(const std::string& key) { return redis::serverCommand(kDb, {"ZCARD", key}); }

TEST_F(RedisStoreTest, UidsComeFromOneCounterThatDeletingADagNeverResets) {
  const RunKey key = startedRun("etl:x", "r:1", {"a"});
  const std::int64_t first = load(key).uid;
  EXPECT_GT(first, 0);
  ASSERT_TRUE(store().cancelRun(CancelRunRequest{key, "cancelled by test", at(5)}).isOk());
  ASSERT_TRUE(store().deleteDag("etl:x").isOk());
  // Only the installation-wide keys are left: the uid counter among them.
  EXPECT_EQ(keysMatching("leoflow:*"), (std::set<std::string>{"leoflow:term", "leoflow:run_uid"}));
  const RunKey again = startedRun("etl:x", "r:1", {"a"});
  EXPECT_GT(load(again).uid, first);
}

TEST_F(RedisStoreTest, DeleteDagLeavesOtherDagsAndTheirIndexesAlone) {
  const RunKey gone = startedRun("gone", "r1", {"a", "b"});
  const RunKey kept = startedRun("kept", "r1", {"a"});
  ASSERT_TRUE(store().applyTransitions(term_, kept, std::vector{TaskTransitionWrite{"a", S::kNone, 1, S::kScheduled, "", false},
                                                               TaskTransitionWrite{"a", S::kScheduled, 1, S::kQueued, "", false}},
                                       at(2)).isOk());
  ASSERT_TRUE(store().applyTransitions(term_, gone, std::vector{TaskTransitionWrite{"a", S::kNone, 1, S::kScheduled, "", false},
                                                               TaskTransitionWrite{"a", S::kScheduled, 1, S::kQueued, "", false}},
                                       at(2)).isOk());
  EXPECT_EQ(store().deleteDag("gone").code(), StatusCode::kConflict);  // r1 is running
  ASSERT_TRUE(store().markRun(MarkRunRequest{gone, R::kFailed, "marked", at(3)}).isOk());
  ASSERT_TRUE(store().deleteDag("gone").isOk());
  EXPECT_EQ(store().deleteDag("gone").code(), StatusCode::kNotFound);
  EXPECT_TRUE(keysMatching("leoflow:*gone*").empty());
  EXPECT_EQ(zcard("leoflow:runs:by_logical"), "1");
  EXPECT_EQ(zcard("leoflow:runs:active"), "1");
  EXPECT_EQ(zcard("leoflow:tis:queued"), "1");
  EXPECT_EQ(redis::serverCommand(kDb, {"SCARD", "leoflow:runid:r1"}), "1");
  auto found = store().findRuns("r1");
  ASSERT_TRUE(found.isOk());
  EXPECT_EQ(*found, (std::vector<RunKey>{kept}));
  auto dags = store().listDags();
  ASSERT_TRUE(dags.isOk());
  ASSERT_EQ(dags->size(), 1u);
  EXPECT_EQ((*dags)[0].dag_id, "kept");
}

TEST_F(RedisStoreTest, DeletingADagOfManyRunsReadsThemAllBeforeRemovingAnyAndThenRemovesThemAll) {
  // deleteDag reads and removes a DAG's runs a slice (1,000) per script. 2,500 finished runs, a few
  // with instances in the queued index, and one queued run with the newest logical date: only the
  // third slice meets it, and the refusal must still come before anything is removed.
  ASSERT_TRUE(store().syncDags(std::vector{dagDef("big"), dagDef("other")}).isOk());
  term_ = *store().claimTerm("replica-test");
  constexpr int kRuns = 2500;
  for (int i = 0; i < kRuns; ++i) {
    const RunKey key{"big", "r" + std::to_string(i)};
    ASSERT_TRUE(store().createRun(std::nullopt, NewRun{key, 1, RunTrigger::kManual, at(i), "", kT0}).isOk());
    if (i % 500 == 0) {
      ASSERT_TRUE(store().materializeRun(term_, key, std::vector{NewTaskInstance{"a", 1}}, kT0).isOk());
      const std::vector<TaskTransitionWrite> queue{{"a", S::kNone, 1, S::kScheduled, "", false},
                                                   {"a", S::kScheduled, 1, S::kQueued, "", false}};
      ASSERT_TRUE(store().applyTransitions(term_, key, queue, at(i)).isOk());
    }
    ASSERT_TRUE(store().markRun(MarkRunRequest{key, R::kSuccess, "done", at(i)}).isOk());
  }
  const RunKey active{"big", "newest"};
  ASSERT_TRUE(store().createRun(std::nullopt, NewRun{active, 1, RunTrigger::kManual, at(kRuns), "", kT0}).isOk());
  const RunKey other{"other", "r1"};
  ASSERT_TRUE(store().createRun(std::nullopt, NewRun{other, 1, RunTrigger::kManual, at(1), "", kT0}).isOk());

  EXPECT_EQ(store().deleteDag("big").code(), StatusCode::kConflict);
  EXPECT_EQ(zcard("leoflow:dag:big:runs"), std::to_string(kRuns + 1)) << "the refusal removed runs";
  EXPECT_EQ(zcard("leoflow:runs:by_logical"), std::to_string(kRuns + 2));

  ASSERT_TRUE(store().cancelRun(CancelRunRequest{active, "cancelled", at(kRuns + 1)}).isOk());
  ASSERT_TRUE(store().deleteDag("big").isOk());
  EXPECT_TRUE(keysMatching("leoflow:*big*").empty());
  EXPECT_EQ(zcard("leoflow:runs:by_logical"), "1");
  EXPECT_EQ(zcard("leoflow:runs:active"), "1");
  EXPECT_EQ(zcard("leoflow:tis:queued"), "0");
  EXPECT_EQ(redis::serverCommand(kDb, {"SCARD", "leoflow:runid:r1"}), "1");
  EXPECT_EQ(store().deleteDag("big").code(), StatusCode::kNotFound);
  auto left = store().listRuns(RunFilter{});
  ASSERT_TRUE(left.isOk());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(left->front().key, other);
}

TEST_F(RedisStoreTest, RecordsWrittenBeforeUidsAndTenantsReadAsUidZeroAndDefault) {
  DagDefinition d = dagDef("old", "@daily");
  d.spec.tenant = "team-a";
  ASSERT_TRUE(store().syncDags(std::vector{d}).isOk());
  const RunKey key{"old", "r1"};
  NewRun nr{key, 1, RunTrigger::kManual, kT0, "", kT0};
  nr.tenant = "team-a";
  ASSERT_TRUE(store().createRun(std::nullopt, nr).isOk());
  EXPECT_EQ(load(key).tenant, "team-a");
  // What an older plugin wrote: no uid, no tenant.
  redis::serverCommand(kDb, {"HDEL", "leoflow:run:old:r1", "uid", "tenant"});
  redis::serverCommand(kDb, {"HDEL", "leoflow:dag:old", "tenant"});
  const RunRecord r = load(key);
  EXPECT_EQ(r.uid, 0);
  EXPECT_EQ(r.tenant, "default");
  auto listed = store().listRuns(RunFilter{});
  ASSERT_TRUE(listed.isOk());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].uid, 0);
  EXPECT_EQ((*listed)[0].tenant, "default");
  RunFilter by_tenant;
  by_tenant.tenant = "default";
  EXPECT_EQ(store().listRuns(by_tenant)->size(), 1u);
  auto dags = store().listDags();
  ASSERT_TRUE(dags.isOk());
  EXPECT_EQ(dags->at(0).tenant, "default");
  // The same JSON synced again creates no version but records the tenant.
  auto again = store().syncDags(std::vector{d});
  ASSERT_TRUE(again.isOk());
  EXPECT_FALSE(again->at(0).changed);
  EXPECT_EQ(store().listDags()->at(0).tenant, "team-a");
  EXPECT_EQ(store().scheduledDags()->at(0).tenant, "team-a");
}

TEST_F(RedisStoreTest, AHeldLogicalDateIsFreedByCleaningAndByDeletingTheDag) {
  ASSERT_TRUE(store().syncDags(std::vector{dagDef("sched", "@daily")}).isOk());
  const Term term = *store().claimTerm("replica-test");
  auto create = [&](const std::string& id, RunTrigger trigger, Timestamp logical) {
    return store().createRun(trigger == RunTrigger::kScheduled ? std::optional<Term>(term) : std::nullopt,
                             NewRun{RunKey{"sched", id}, 1, trigger, logical, "", kT0});
  };
  ASSERT_TRUE(create("manual__1", RunTrigger::kManual, kT0).isOk());
  EXPECT_EQ(create("scheduled__1", RunTrigger::kScheduled, kT0).code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(create("manual__2", RunTrigger::kManual, kT0).isOk());  // manual runs are not checked
  ASSERT_TRUE(create("scheduled__2", RunTrigger::kScheduled, at(1)).isOk());
  // The refused run left nothing behind, not even a uid.
  EXPECT_EQ(redis::serverCommand(kDb, {"GET", "leoflow:run_uid"}), "3");
  EXPECT_FALSE(store().loadRuns(std::vector{RunKey{"sched", "scheduled__1"}}).at(0).isOk());
  // Cleaning the finished runs that held kT0 frees it.
  for (const char* id : {"manual__1", "manual__2"}) {
    ASSERT_TRUE(store().markRun(MarkRunRequest{RunKey{"sched", id}, R::kSuccess, "done", at(2)}).isOk());
  }
  ASSERT_TRUE(store().deleteFinishedRuns(at(3)).isOk());
  ASSERT_TRUE(create("scheduled__1", RunTrigger::kScheduled, kT0).isOk());
  // So does deleting and re-creating the DAG.
  for (const char* id : {"scheduled__1", "scheduled__2"}) {
    ASSERT_TRUE(store().cancelRun(CancelRunRequest{RunKey{"sched", id}, "cancelled", at(4)}).isOk());
  }
  ASSERT_TRUE(store().deleteDag("sched").isOk());
  ASSERT_TRUE(store().syncDags(std::vector{dagDef("sched", "@daily")}).isOk());
  EXPECT_TRUE(create("scheduled__1", RunTrigger::kScheduled, kT0).isOk());
}

TEST_F(RedisStoreTest, ListRunsFiltersByTenantAndLogicalRangeAcrossBatches) {
  DagDefinition a = dagDef("a");
  a.spec.tenant = "team-a";
  ASSERT_TRUE(store().syncDags(std::vector{a, dagDef("b")}).isOk());
  // 600 runs: more than the script's batches of 256.
  for (int i = 0; i < 600; ++i) {
    const bool in_a = i % 3 == 0;
    NewRun nr{RunKey{in_a ? "a" : "b", "r" + std::to_string(i)}, 1, RunTrigger::kManual, at(i), "", kT0};
    if (in_a) nr.tenant = "team-a";
    ASSERT_TRUE(store().createRun(std::nullopt, nr).isOk());
  }
  RunFilter f;
  f.tenant = "team-a";
  f.logical_since = at(100);
  f.logical_until = at(400);
  auto runs = store().listRuns(f);
  ASSERT_TRUE(runs.isOk());
  std::vector<std::string> ids;
  for (const RunRecord& r : *runs) ids.push_back(r.key.run_id);
  std::vector<std::string> expected;
  for (int i = 400; i >= 100; --i) {
    if (i % 3 == 0) expected.push_back("r" + std::to_string(i));
  }
  EXPECT_EQ(ids, expected);
  f.limit = 5;
  f.tenant = "default";
  f.dag_id = "b";
  runs = store().listRuns(f);
  ASSERT_TRUE(runs.isOk());
  ids.clear();
  for (const RunRecord& r : *runs) ids.push_back(r.key.run_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"r400", "r398", "r397", "r395", "r394"}));
  f.tenant = "team-a";
  EXPECT_TRUE(store().listRuns(f)->empty());
}

TEST_F(RedisStoreTest, ListRunsPagesThroughRunsOfOneLogicalDateAndFindsTheFewThatMatchAtTheEnd) {
  // listRuns reads the index a page (1,000 runs) per script, from a cursor of a score and the runs
  // already read at it. 2,100 runs of "a" share three logical dates, so a page ends inside a date;
  // the three runs of team-b are the oldest, read only by the last page.
  DagDefinition b = dagDef("b");
  b.spec.tenant = "team-b";
  ASSERT_TRUE(store().syncDags(std::vector{dagDef("a"), b}).isOk());
  constexpr int kRuns = 2100;
  for (int i = 0; i < kRuns; ++i) {
    NewRun nr{RunKey{"a", "r" + std::to_string(i)}, 1, RunTrigger::kManual, at(100 + i % 3), "", kT0};
    ASSERT_TRUE(store().createRun(std::nullopt, nr).isOk());
  }
  for (int i = 0; i < 3; ++i) {
    NewRun nr{RunKey{"b", "old" + std::to_string(i)}, 1, RunTrigger::kManual, at(i), "", kT0};
    nr.tenant = "team-b";
    ASSERT_TRUE(store().createRun(std::nullopt, nr).isOk());
  }
  RunFilter all;
  all.limit = 10'000;
  auto runs = store().listRuns(all);
  ASSERT_TRUE(runs.isOk()) << runs.status().toString();
  ASSERT_EQ(runs->size(), static_cast<std::size_t>(kRuns + 3));
  std::set<std::string> seen;
  for (std::size_t i = 0; i < runs->size(); ++i) {
    const RunRecord& r = (*runs)[i];
    EXPECT_TRUE(seen.insert(r.key.dag_id + "/" + r.key.run_id).second) << r.key.run_id << " listed twice";
    if (i > 0) {
      EXPECT_GE((*runs)[i - 1].logical_date, r.logical_date) << "at " << i;
    }
  }
  EXPECT_EQ((*runs)[kRuns].key.run_id, "old2");

  RunFilter team_b;
  team_b.tenant = "team-b";
  auto few = store().listRuns(team_b);
  ASSERT_TRUE(few.isOk());
  std::vector<std::string> ids;
  for (const RunRecord& r : *few) ids.push_back(r.key.run_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"old2", "old1", "old0"}));

  // A limit that ends in the second page returns the head of the whole listing.
  RunFilter head;
  head.dag_id = "a";
  head.limit = 1500;
  auto limited = store().listRuns(head);
  ASSERT_TRUE(limited.isOk());
  ASSERT_EQ(limited->size(), 1500u);
  for (std::size_t i = 0; i < limited->size(); ++i) {
    EXPECT_EQ((*limited)[i].key.run_id, (*runs)[i].key.run_id) << "at " << i;
  }
}

TEST_F(RedisStoreTest, CleaningWalksTheRunIndexInSlicesAndKeepsEveryRunItMayNotDelete) {
  // deleteFinishedRuns reads the index a bounded slice per script from a cursor that counts only
  // the runs kept at its score. 2,400 runs on three logical dates: a third finished before the
  // cut-off (deleted), a third finished after it, a third still queued (both kept), interleaved so
  // every slice deletes some runs and keeps others at the score it ends on.
  ASSERT_TRUE(store().syncDags(std::vector{dagDef("a")}).isOk());
  const Term term = *store().claimTerm("replica-test");
  constexpr int kRuns = 2400;
  std::set<std::string> kept;
  for (int i = 0; i < kRuns; ++i) {
    const RunKey key{"a", "r" + std::to_string(i)};
    ASSERT_TRUE(store().createRun(std::nullopt, NewRun{key, 1, RunTrigger::kManual, at(100 + i % 3), "", kT0}).isOk());
    if (i % 40 == 0) {
      ASSERT_TRUE(store().materializeRun(term, key, std::vector{NewTaskInstance{"t", 1}}, kT0).isOk());
    }
    const int kind = (i / 3) % 3;
    if (kind == 0) continue;
    ASSERT_TRUE(store().markRun(MarkRunRequest{key, R::kSuccess, "done", kind == 1 ? at(2) : at(5)}).isOk());
    if (kind == 2) kept.insert(key.run_id);
  }
  for (int i = 0; i < kRuns; ++i) {
    if ((i / 3) % 3 == 0) kept.insert("r" + std::to_string(i));
  }
  auto deleted = store().deleteFinishedRuns(at(3));
  ASSERT_TRUE(deleted.isOk()) << deleted.status().toString();
  EXPECT_EQ(deleted->value_or(-1), kRuns - static_cast<std::int64_t>(kept.size()));
  RunFilter all;
  all.limit = 10'000;
  auto left = store().listRuns(all);
  ASSERT_TRUE(left.isOk());
  std::set<std::string> listed;
  for (const RunRecord& r : *left) listed.insert(r.key.run_id);
  EXPECT_EQ(listed, kept);
  EXPECT_EQ(zcard("leoflow:dag:a:runs"), std::to_string(kept.size()));
  EXPECT_EQ(store().deleteFinishedRuns(at(3))->value_or(-1), 0);
}

TEST_F(RedisStoreTest, CleaningASliceThatEndsOnItsRemovalLimitReadsOnToTheIndexsEnd) {
  // 255 runs, all to delete: a call removes at most 250 and stops with the index's last runs unread;
  // they are the next call's, not forgotten because the index had no more to give that call.
  ASSERT_TRUE(store().syncDags(std::vector{dagDef("a")}).isOk());
  for (int i = 0; i < 255; ++i) {
    const RunKey key{"a", "r" + std::to_string(i)};
    ASSERT_TRUE(store().createRun(std::nullopt, NewRun{key, 1, RunTrigger::kManual, at(i), "", kT0}).isOk());
    ASSERT_TRUE(store().markRun(MarkRunRequest{key, R::kSuccess, "done", at(1)}).isOk());
  }
  auto deleted = store().deleteFinishedRuns(at(3));
  ASSERT_TRUE(deleted.isOk()) << deleted.status().toString();
  EXPECT_EQ(deleted->value_or(-1), 255);
  EXPECT_EQ(zcard("leoflow:runs:by_logical"), "0");
}

TEST_F(RedisStoreTest, TheClaimIsLoadedAndANewAttemptDropsIt) {
  const RunKey key = startedRun("claims", "r1", {"a"}, 3);
  auto move = [&](S from, S to, std::int32_t try_number = 1) {
    auto r = store().applyTransitions(term_, key, std::vector{TaskTransitionWrite{"a", from, try_number, to, "", false}}, at(5));
    ASSERT_TRUE(r.isOk() && (*r)[0]) << toString(from) << "->" << toString(to);
  };
  move(S::kNone, S::kScheduled);
  move(S::kScheduled, S::kQueued);
  EXPECT_EQ(task(key, "a").execution_id, "");
  ASSERT_TRUE(store().reportRunning(ExecutionRef{AttemptRef{key, "a", 1}, "exec-1"}, at(6)).isOk());
  EXPECT_EQ(task(key, "a").execution_id, "exec-1");
  ASSERT_TRUE(store().reportFinished(ExecutionRef{AttemptRef{key, "a", 1}, "exec-1"}, TaskOutcome{false, 1, "boom"}, at(7)).isOk());
  EXPECT_EQ(task(key, "a").execution_id, "exec-1");
  move(S::kFailed, S::kUpForRetry);
  move(S::kUpForRetry, S::kNone);
  EXPECT_EQ(task(key, "a").execution_id, "");
  EXPECT_EQ(redis::serverCommand(kDb, {"HEXISTS", "leoflow:run:claims:r1:exec", "a"}), "0");
  // Clearing drops it too.
  move(S::kNone, S::kScheduled, 2);
  move(S::kScheduled, S::kQueued, 2);
  ASSERT_TRUE(store().reportRunning(ExecutionRef{AttemptRef{key, "a", 2}, "exec-2"}, at(8)).isOk());
  auto cleared = store().clearTasks(ClearRequest{key, {ClearTask{"a", 2}}, false, "cleared by test", at(9)});
  ASSERT_TRUE(cleared.isOk()) << cleared.status().toString();
  const TaskInstance t = task(key, "a");
  EXPECT_EQ(t.execution_id, "");
  EXPECT_EQ(t.try_number, 3);
  EXPECT_EQ(t.max_tries, 5);
  EXPECT_EQ(zcard("leoflow:tis:running"), "0");
  // A claim an older plugin left behind for a previous attempt is not the current attempt's.
  redis::serverCommand(kDb, {"HSET", "leoflow:run:claims:r1:exec", "a", "exec-stale"});
  EXPECT_EQ(task(key, "a").execution_id, "");
}

TEST_F(RedisStoreTest, APersonsCommandsKeepTheIndexesAndCountersTheReapersRead) {
  const RunKey key = startedRun("ops", "r1", {"q", "run", "n", "done"}, 2);
  ASSERT_TRUE(store().applyTransitions(term_, key, std::vector{
      TaskTransitionWrite{"q", S::kNone, 1, S::kScheduled, "", false},
      TaskTransitionWrite{"q", S::kScheduled, 1, S::kQueued, "", false},
      TaskTransitionWrite{"run", S::kNone, 1, S::kScheduled, "", false},
      TaskTransitionWrite{"run", S::kScheduled, 1, S::kQueued, "", false},
      TaskTransitionWrite{"done", S::kNone, 1, S::kSkipped, "", false}}, at(2)).isOk());
  ASSERT_TRUE(store().reportRunning(ExecutionRef{AttemptRef{key, "run", 1}, "e1"}, at(3)).isOk());
  EXPECT_EQ(redis::serverCommand(kDb, {"HGET", "leoflow:run:ops:r1", "active"}), "2");

  auto cancelled = store().cancelRun(CancelRunRequest{key, "cancelled by test", at(4)});
  ASSERT_TRUE(cancelled.isOk()) << cancelled.status().toString();
  EXPECT_EQ(cancelled->run_state, R::kFailed);
  EXPECT_EQ(cancelled->changed_tasks, (std::vector<std::string>{"q", "run", "n"}));
  EXPECT_EQ(zcard("leoflow:tis:queued"), "0");
  EXPECT_EQ(zcard("leoflow:tis:running"), "0");
  EXPECT_EQ(zcard("leoflow:runs:active"), "0");
  EXPECT_EQ(redis::serverCommand(kDb, {"HGET", "leoflow:run:ops:r1", "active"}), "0");
  EXPECT_EQ(store().cancelRun(CancelRunRequest{key, "cancelled", at(5)}).status().code(), StatusCode::kConflict);

  // Marking a task of the finished run brings it back to running: active again, not an orphan
  // before the planner looked at it only because nothing is scheduled.
  auto marked = store().markTask(MarkTaskRequest{key, "q", S::kSuccess, "marked by test", at(6)});
  ASSERT_TRUE(marked.isOk()) << marked.status().toString();
  EXPECT_EQ(marked->run_state, R::kRunning);
  EXPECT_EQ(zcard("leoflow:runs:active"), "1");
  auto active = store().listActiveRuns();
  ASSERT_TRUE(active.isOk());
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ(active->at(0).state, R::kRunning);
  const RunRecord after_mark = load(key);
  EXPECT_FALSE(after_mark.ended_at.has_value());

  // Clearing the failed ones: back in none, the run running with a fresh started_at.
  auto cleared = store().clearTasks(ClearRequest{key, {ClearTask{"run", 1}, ClearTask{"n", 1}, ClearTask{"q", 1}},
                                                 true, "cleared by test", at(7)});
  ASSERT_TRUE(cleared.isOk()) << cleared.status().toString();
  EXPECT_EQ(cleared->changed_tasks, (std::vector<std::string>{"run"}));  // n is skipped, q success
  const RunRecord after_clear = load(key);
  EXPECT_EQ(after_clear.started_at, at(7));
  EXPECT_EQ(after_clear.tasks.at(1).state, S::kNone);
  EXPECT_EQ(after_clear.tasks.at(1).try_number, 2);
  EXPECT_EQ(after_clear.tasks.at(1).max_tries, 3);
  EXPECT_EQ(after_clear.tasks.at(1).note, "cleared by test");

  // runs mark: every unfinished instance and the run at once; out of the active index.
  auto run_marked = store().markRun(MarkRunRequest{key, R::kSuccess, "marked by test", at(8)});
  ASSERT_TRUE(run_marked.isOk()) << run_marked.status().toString();
  EXPECT_EQ(run_marked->changed_tasks, (std::vector<std::string>{"run"}));
  EXPECT_EQ(zcard("leoflow:runs:active"), "0");
  EXPECT_EQ(redis::serverCommand(kDb, {"HGET", "leoflow:run:ops:r1", "active"}), "0");
  EXPECT_EQ(load(key).ended_at, at(8));
}

TEST_F(RedisStoreTest, APersonsCommandPublishesTheRunAndEveryMovedInstance) {
  const RunKey key = startedRun("feed:x", "r:1", {"a", "b", "c"});
  ASSERT_TRUE(store().applyTransitions(term_, key, std::vector{TaskTransitionWrite{"c", S::kNone, 1, S::kSkipped, "", false}},
                                       at(2)).isOk());
  Collector sink;
  ASSERT_TRUE(store().subscribe(sink).isOk());
  ASSERT_TRUE(store().cancelRun(CancelRunRequest{key, "cancelled", at(3)}).isOk());
  auto changes = sink.waitFor(3);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].first.kind, Change::Kind::kTask);
  EXPECT_EQ(changes[0].first.task_id, "a");
  EXPECT_EQ(changes[1].first.task_id, "b");
  EXPECT_EQ(changes[2].first.kind, Change::Kind::kRun);
  EXPECT_EQ(changes[2].first.run, key);
  sink.clear();
  ASSERT_TRUE(store().deleteDag("feed:x").isOk());
  auto deleted = sink.waitUntil([](const Change& c) { return c.kind == Change::Kind::kDag && c.dag_id == "feed:x"; });
  EXPECT_TRUE(deleted.has_value());
}

}  // namespace
}  // namespace leoflow::plugins::store_redis
