// What disturbs the whole test server, so this binary runs alone (meson `is_parallel : false`):
// - a Redis restart in the middle of use (ARCHITECTURE §8.9): SHUTDOWN, then the exported command
//   starts the server again on the same port and folder with AOF. The store fails fast while Redis
//   is down, reconnects by itself, finds its data, re-sends its scripts (the script cache is gone),
//   and the change feed resubscribes and asks for a resync;
// - a hung server (a long script blocks it): calls fail within command_timeout_ms and recover;
// - a flushed script cache.
// Database 7.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "factories.h"
#include "redis_test_env.h"

namespace leoflow::plugins::store_redis {
namespace {

namespace redis = leoflow::testing::redis;
using namespace std::chrono_literals;
using S = TaskState;
using SteadyClock = std::chrono::steady_clock;

constexpr int kDb = 7;
const Timestamp kT0 = Timestamp{std::chrono::sys_days{std::chrono::year{2026} / std::chrono::May / 28}};

class Sink final : public ChangeSink {
 public:
  void onChange(const Change& c) override {
    std::lock_guard lock(mu_);
    if (c.kind == Change::Kind::kTask) tasks_.push_back(c.task_id);
    cv_.notify_all();
  }
  void onResync() override {
    std::lock_guard lock(mu_);
    ++resyncs_;
    cv_.notify_all();
  }
  bool waitResyncs(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return resyncs_ >= n; });
  }
  bool waitTask(const std::string& id, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return std::find(tasks_.begin(), tasks_.end(), id) != tasks_.end(); });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> tasks_;
  int resyncs_ = 0;
};

TEST(RedisRestart, TheStoreAndTheFeedRecoverAndTheDataSurvives) {
  LEOFLOW_REQUIRE_TEST_REDIS();
  if (std::getenv("LEOFLOW_TEST_REDIS_START") == nullptr) {
    if (redis::inCi()) FAIL() << "LEOFLOW_TEST_REDIS_START is unset (CI=true: nothing may be skipped)";
    GTEST_SKIP() << "LEOFLOW_TEST_REDIS_START is unset (scripts/servers/redis.sh exports it)";
  }
  redis::flushDb(kDb);
  const ConfigView config = redis::storeConfig(redis::urlForDb(kDb), "leoflow", 3000, 500);
  auto store = RedisStoreFactory().create(config, redis::makeContext("replica-a"));
  // A lease long enough to outlast the restart on a loaded machine.
  auto leader = RedisLeaderFactory().create(redis::storeConfig(redis::urlForDb(kDb), "leoflow", 20000, 500),
                                            redis::makeContext("replica-a"));

  DagDefinition dag;
  dag.spec.dag_id = "etl";
  dag.spec_json = R"({"dag_id":"etl"})";
  ASSERT_TRUE(store->syncDags(std::vector{dag}).isOk());
  ASSERT_TRUE(*leader->tryAcquire());
  const Term term = *store->claimTerm("replica-a");
  const RunKey key{"etl", "r1"};
  ASSERT_TRUE(store->createRun(term, NewRun{key, 1, RunTrigger::kScheduled, kT0, "", kT0}).isOk());
  ASSERT_TRUE(store->materializeRun(term, key, std::vector{NewTaskInstance{"a", 1}, NewTaskInstance{"b", 1}}, kT0).isOk());
  auto moved = store->applyTransitions(term, key, std::vector{TaskTransitionWrite{"a", S::kNone, 1, S::kScheduled, "", false}}, kT0);
  ASSERT_TRUE(moved.isOk() && (*moved)[0]);
  Sink sink;
  ASSERT_TRUE(store->subscribe(sink).isOk());

  // Whatever fails below, the shared test server must be running again for the tests after this one.
  struct Restarter {
    bool needed = true;
    ~Restarter() {
      if (needed) redis::restartServer();
    }
  } restarter;
  ASSERT_TRUE(redis::shutdownServer()) << "SHUTDOWN did not stop the test server";
  // Down: calls fail fast and say the backend is unavailable.
  const auto start = SteadyClock::now();
  const Status down = store->ping();
  EXPECT_EQ(down.code(), StatusCode::kUnavailable) << down.toString();
  auto load_down = store->loadRuns(std::vector{key});
  EXPECT_EQ(load_down.at(0).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(leader->check().status().code(), StatusCode::kUnavailable);
  EXPECT_LT(SteadyClock::now() - start, 2s);

  restarter.needed = false;
  ASSERT_TRUE(redis::restartServer()) << "the test server did not come back";
  const auto restarted = SteadyClock::now();
  Status up = store->ping();
  while (!up.isOk() && SteadyClock::now() - restarted < 10s) {
    std::this_thread::sleep_for(20ms);
    up = store->ping();
  }
  ASSERT_TRUE(up.isOk()) << up.toString();
  std::printf("[ figures  ] store answered again %lld ms after the server was back\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - restarted).count()));

  // The lease survived (AOF keeps the expiry): its holder still leads.
  auto still = leader->check();
  ASSERT_TRUE(still.isOk()) << still.status().toString();
  EXPECT_TRUE(*still);

  // The AOF kept everything: the DAG, the term, the run and its instances.
  auto stored = store->getDag("etl", std::nullopt);
  ASSERT_TRUE(stored.isOk()) << stored.status().toString();
  EXPECT_EQ(stored->spec_json, dag.spec_json);
  auto runs = store->loadRuns(std::vector{key});
  ASSERT_TRUE(runs.at(0).isOk()) << runs.at(0).status().toString();
  ASSERT_EQ(runs[0]->tasks.size(), 2u);
  EXPECT_EQ(runs[0]->tasks[0].state, S::kScheduled);
  EXPECT_EQ(store->recordLiveness(term - 1, LivenessRecord{}).code(), StatusCode::kFenced) << "the term survived";

  // The feed resubscribed by itself and asked for a resync; new changes flow again. The scripts
  // run although the restarted server forgot its script cache (EVALSHA → NOSCRIPT → EVAL).
  EXPECT_TRUE(sink.waitResyncs(1, 10s)) << "no onResync after the restart";
  moved = store->applyTransitions(term, key, std::vector{TaskTransitionWrite{"b", S::kNone, 1, S::kScheduled, "", false}}, kT0);
  ASSERT_TRUE(moved.isOk()) << moved.status().toString();
  EXPECT_TRUE((*moved)[0]);
  EXPECT_TRUE(sink.waitTask("b", 5s)) << "the feed delivers changes again";

  EXPECT_TRUE(leader->release().isOk());
  store->unsubscribe();
}

// Runs a script that keeps the (single-threaded) server busy for `ms` milliseconds (below its 5 s
// busy limit): every other client waits meanwhile.
void keepServerBusy(int ms) {
  redis::serverCommand(kDb, {"EVAL",
                             "local t = redis.call('TIME') repeat local n = redis.call('TIME') until "
                             "(n[1] - t[1]) * 1000000 + (n[2] - t[2]) > tonumber(ARGV[1]) return 1",
                             "0", std::to_string(ms * 1000)});
}

TEST(RedisDisruption, AHungRedisFailsCallsWithinTheCommandTimeoutAndTheStoreRecovers) {
  LEOFLOW_REQUIRE_TEST_REDIS();
  auto impatient = RedisStoreFactory().create(redis::storeConfig(redis::urlForDb(kDb), "leoflow", 3000, 150),
                                              redis::makeContext());
  ASSERT_TRUE(impatient->ping().isOk());
  std::thread hog([] { keepServerBusy(800); });
  std::this_thread::sleep_for(100ms);
  const auto start = SteadyClock::now();
  const Status s = impatient->ping();
  const auto took = SteadyClock::now() - start;
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.toString();
  EXPECT_LT(took, 600ms) << "a call must not wait beyond command_timeout_ms (150 ms)";
  std::printf("[ figures  ] a call against a hung redis failed after %lld ms (command_timeout_ms=150)\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  hog.join();
  // The next call reconnects by itself.
  Status again = impatient->ping();
  for (int i = 0; i < 20 && !again.isOk(); ++i) {
    std::this_thread::sleep_for(50ms);
    again = impatient->ping();
  }
  EXPECT_TRUE(again.isOk()) << again.toString();
  EXPECT_TRUE(impatient->listDags().isOk());
}

TEST(RedisDisruption, ScriptsAreSentAgainWhenTheServerForgotThemPipelinedOrNot) {
  LEOFLOW_REQUIRE_TEST_REDIS();
  redis::flushDb(kDb);
  auto store = RedisStoreFactory().create(redis::storeConfig(redis::urlForDb(kDb)), redis::makeContext());
  DagDefinition dag;
  dag.spec.dag_id = "etl";
  dag.spec_json = R"({"dag_id":"etl"})";
  ASSERT_TRUE(store->syncDags(std::vector{dag}).isOk());
  // EVALSHA answers NOSCRIPT after a restart or a SCRIPT FLUSH; the store falls back to EVAL.
  redis::serverCommand(kDb, {"SCRIPT", "FLUSH"});
  const Term term = *store->claimTerm("replica-a");
  const RunKey key{"etl", "r1"};
  ASSERT_TRUE(store->createRun(term, NewRun{key, 1, RunTrigger::kScheduled, kT0, "", kT0}).isOk());
  ASSERT_TRUE(store->materializeRun(term, key, std::vector{NewTaskInstance{"a", 1}}, kT0).isOk());
  redis::serverCommand(kDb, {"SCRIPT", "FLUSH"});
  auto applied = store->applyTransitions(term, key, std::vector{TaskTransitionWrite{"a", S::kNone, 1, S::kScheduled, "", false}}, kT0);
  ASSERT_TRUE(applied.isOk()) << applied.status().toString();
  EXPECT_TRUE((*applied)[0]);
  auto runs = store->loadRuns(std::vector{key});
  ASSERT_TRUE(runs.at(0).isOk());
  EXPECT_EQ(runs[0]->tasks.at(0).state, S::kScheduled);

  // cancelRuns pipelines its scripts: each call answered NOSCRIPT is sent again, and each runs once.
  const RunKey other{"etl", "r2"};
  ASSERT_TRUE(store->createRun(term, NewRun{other, 1, RunTrigger::kScheduled, kT0 + std::chrono::hours(1), "", kT0}).isOk());
  redis::serverCommand(kDb, {"SCRIPT", "FLUSH"});
  const std::vector<CancelRunRequest> cancels{{key, "cancelled by alice", kT0}, {other, "cancelled by alice", kT0},
                                              {RunKey{"etl", "ghost"}, "cancelled by alice", kT0}};
  const auto cancelled = store->cancelRuns(cancels);
  ASSERT_EQ(cancelled.size(), 3u);
  ASSERT_TRUE(cancelled[0].isOk()) << cancelled[0].status().toString();
  EXPECT_EQ(cancelled[0]->changed_tasks, std::vector<std::string>{"a"});
  ASSERT_TRUE(cancelled[1].isOk()) << cancelled[1].status().toString();
  EXPECT_EQ(cancelled[2].status().code(), StatusCode::kNotFound) << cancelled[2].status().toString();
  runs = store->loadRuns(std::vector{key, other});
  for (const auto& r : runs) {
    ASSERT_TRUE(r.isOk());
    EXPECT_EQ(r->state, DagRunState::kFailed);
  }
}

// The server's count of connections it has accepted so far.
long long connectionsAccepted() {
  const std::string info = redis::serverCommand(kDb, {"INFO", "stats"});
  const std::string field = "total_connections_received:";
  const std::size_t at = info.find(field);
  if (at == std::string::npos) return -1;
  return std::atoll(info.c_str() + at + field.size());
}

// Calls that pile up while the server is busy each need a connection of their own; a scheduler's
// threads do that all the time. The next burst must find them again, not open new ones.
TEST(RedisDisruption, TheConnectionsOfABurstOfCallsAreKeptForTheNextOne) {
  LEOFLOW_REQUIRE_TEST_REDIS();
  auto store = RedisStoreFactory().create(redis::storeConfig(redis::urlForDb(kDb)), redis::makeContext());
  constexpr int kCallers = 48;  // as many threads as a busy scheduler has calling at once
  auto burst = [&] {
    std::thread hog([] { keepServerBusy(300); });
    std::this_thread::sleep_for(50ms);
    std::vector<std::thread> callers;
    std::atomic<int> ok{0};
    for (int i = 0; i < kCallers; ++i) {
      callers.emplace_back([&] {
        if (store->ping().isOk()) ++ok;
      });
    }
    for (std::thread& t : callers) t.join();
    hog.join();
    return ok.load();
  };
  ASSERT_EQ(burst(), kCallers);
  const long long before = connectionsAccepted();
  ASSERT_GE(before, 0);
  ASSERT_EQ(burst(), kCallers);
  const long long opened = connectionsAccepted() - before;
  // The hog's and INFO's own connections are 2 of them.
  EXPECT_LE(opened, 4) << "the second burst opened " << opened << " connections for " << kCallers << " callers";
}

}  // namespace
}  // namespace leoflow::plugins::store_redis
