// What disturbs the whole test server, so this binary runs alone (meson `is_parallel : false`): the
// server stopped and started again (`pg_ctl -m fast stop`, `start`), and restarted outright
// (`pg_ctl restart -m fast`, LEOFLOW_TEST_PG_RESTART). Meanwhile every call answers kUnavailable,
// quickly; afterwards the store reconnects by itself, finds its data, and the change feed listens
// again and asks for a resync. The leader's lock died with its session: it must not claim to lead
// until it wins again. Schema lf_restart, lock id 7300000010.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "pg_test_env.h"

namespace leoflow::testing::pg {
namespace {

using namespace std::chrono_literals;
using S = TaskState;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kSchema = "lf_restart";
const Timestamp kT0 = Timestamp{std::chrono::sys_days{std::chrono::year{2026} / std::chrono::May / 28}};

long long millisSince(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
}

Settings restartSettings() {
  Settings s;
  s.schema = kSchema;
  s.pool_size = 3;
  s.lock_id = 7'300'000'010;
  s.connect_timeout_ms = 1000;
  s.statement_timeout_ms = 2000;
  s.lease_ms = 20000;  // the lock is lost with its session here, not by waiting
  s.poll_ms = 500;
  return s;
}

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

bool runEnvCommand(const char* name) {
  const char* command = std::getenv(name);
  if (command == nullptr || *command == '\0') return false;
  return std::system((std::string("cd / && ") + command).c_str()) == 0;
}

bool serverAnswers() {
  try {
    return adminQuery("SELECT 1") == "1";
  } catch (const std::exception&) {
    return false;
  }
}

bool waitServer(bool up, std::chrono::seconds timeout) {
  const auto until = SteadyClock::now() + timeout;
  while (serverAnswers() != up) {
    if (SteadyClock::now() > until) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

Status pingUntilOk(Store& store, std::chrono::seconds timeout) {
  const auto until = SteadyClock::now() + timeout;
  Status s = store.ping();
  while (!s.isOk() && SteadyClock::now() < until) {
    std::this_thread::sleep_for(20ms);
    s = store.ping();
  }
  return s;
}

// Whatever fails, the shared test server must be running again for the tests after this one.
struct ServerGuard {
  ~ServerGuard() {
    if (!serverAnswers()) {
      runEnvCommand("LEOFLOW_TEST_PG_START");
      waitServer(true, 30s);
    }
  }
};

/// A run "etl"/"r1" with tasks a (scheduled) and b (none), under the store's first term.
Term seed(Store& store) {
  DagDefinition dag;
  dag.spec.dag_id = "etl";
  dag.spec_json = R"({"dag_id":"etl"})";
  EXPECT_TRUE(store.syncDags(std::vector{dag}).isOk());
  const Term term = *store.claimTerm("replica-a");
  const RunKey key{"etl", "r1"};
  EXPECT_TRUE(store.createRun(term, NewRun{key, 1, RunTrigger::kScheduled, kT0, "", kT0}).isOk());
  EXPECT_TRUE(store.materializeRun(term, key, std::vector{NewTaskInstance{"a", 1}, NewTaskInstance{"b", 1}}, kT0).isOk());
  auto moved = store.applyTransitions(term, key, std::vector{TaskTransitionWrite{"a", S::kNone, 1, S::kScheduled, "", false}},
                                      kT0);
  EXPECT_TRUE(moved.isOk() && (*moved)[0]);
  return term;
}

TEST(PgRestart, WhileTheServerIsDownCallsAreUnavailableAndAfterwardsEverythingIsBack) {
  LEOFLOW_REQUIRE_TEST_PG();
  if (std::getenv("LEOFLOW_TEST_PG_STOP") == nullptr || std::getenv("LEOFLOW_TEST_PG_START") == nullptr) {
    if (inCi()) FAIL() << "LEOFLOW_TEST_PG_STOP/START are unset";
    GTEST_SKIP() << "LEOFLOW_TEST_PG_STOP/START are unset (scripts/servers/postgres.sh exports them)";
  }
  dropSchema(kSchema);
  auto store = openStore(restartSettings(), "replica-a");
  auto leader = openLeader(restartSettings(), "replica-a");
  const Term term = seed(*store);
  const RunKey key{"etl", "r1"};
  auto lead = leader->tryAcquire();
  ASSERT_TRUE(lead.isOk() && *lead) << lead.status().toString();
  Sink sink;
  ASSERT_TRUE(store->subscribe(sink).isOk());

  ServerGuard guard;
  ASSERT_TRUE(runEnvCommand("LEOFLOW_TEST_PG_STOP")) << "pg_ctl stop failed";
  ASSERT_TRUE(waitServer(false, 10s));

  // Down: every call fails, says the backend is unavailable, and does not hang.
  const auto start = SteadyClock::now();
  const Status down = store->ping();
  EXPECT_EQ(down.code(), StatusCode::kUnavailable) << down.toString();
  EXPECT_EQ(store->listDags().status().code(), StatusCode::kUnavailable);
  auto load_down = store->loadRuns(std::vector{key});
  ASSERT_EQ(load_down.size(), 1u);
  EXPECT_EQ(load_down[0].status().code(), StatusCode::kUnavailable) << load_down[0].status().toString();
  EXPECT_EQ(store->claimTerm("replica-a").status().code(), StatusCode::kUnavailable);
  auto moved_down = store->applyTransitions(
      term, key, std::vector{TaskTransitionWrite{"b", S::kNone, 1, S::kScheduled, "", false}}, kT0);
  EXPECT_EQ(moved_down.status().code(), StatusCode::kUnavailable);
  auto check_down = leader->check();
  EXPECT_FALSE(check_down.isOk() && *check_down) << "a leader that cannot reach its lock must not claim to lead";
  const long long down_ms = millisSince(start);
  EXPECT_LT(down_ms, 8000) << "six calls against a stopped server (connect_timeout_ms=1000)";
  std::printf("[ figures  ] six calls against a stopped server answered in %lld ms in all\n", down_ms);

  ASSERT_TRUE(runEnvCommand("LEOFLOW_TEST_PG_START")) << "pg_ctl start failed";
  ASSERT_TRUE(waitServer(true, 30s)) << "the test server did not come back";
  const auto restarted = SteadyClock::now();
  const Status up = pingUntilOk(*store, 10s);
  ASSERT_TRUE(up.isOk()) << up.toString();
  std::printf("[ figures  ] the store answered again %lld ms after the server was back\n", millisSince(restarted));

  // Everything is where it was.
  auto runs = store->loadRuns(std::vector{key});
  ASSERT_TRUE(runs.at(0).isOk()) << runs.at(0).status().toString();
  ASSERT_EQ(runs[0]->tasks.size(), 2u);
  EXPECT_EQ(runs[0]->tasks[0].state, S::kScheduled);
  EXPECT_EQ(runs[0]->tasks[1].state, S::kNone) << "the write refused while down did not happen later";
  EXPECT_EQ(store->recordLiveness(term - 1, LivenessRecord{}).code(), StatusCode::kFenced) << "the term survived";

  // The feed listens again by itself and asks for a resync; new changes flow again.
  EXPECT_TRUE(sink.waitResyncs(1, 10s)) << "no onResync after the server came back";
  auto moved = store->applyTransitions(term, key, std::vector{TaskTransitionWrite{"b", S::kNone, 1, S::kScheduled, "", false}},
                                       kT0);
  ASSERT_TRUE(moved.isOk()) << moved.status().toString();
  EXPECT_TRUE((*moved)[0]);
  EXPECT_TRUE(sink.waitTask("b", 5s)) << "the feed delivers changes again";

  // The lock died with its session: no claim to lead until it wins again, which it then does.
  auto check_up = leader->check();
  EXPECT_FALSE(check_up.isOk() && *check_up) << "the lock was lost with the server; check() must say so";
  bool won = false;
  for (int i = 0; i < 50 && !won; ++i) {
    auto r = leader->tryAcquire();
    won = r.isOk() && *r;
    if (!won) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(won) << "the leader never won the free lock again";
  EXPECT_TRUE(leader->release().isOk());
  store->unsubscribe();
}

TEST(PgRestart, APgCtlRestartFastIsUnavailableMeanwhileThenTheStoreAndTheFeedRecover) {
  LEOFLOW_REQUIRE_TEST_PG();
  if (std::getenv("LEOFLOW_TEST_PG_RESTART") == nullptr) {
    if (inCi()) FAIL() << "LEOFLOW_TEST_PG_RESTART is unset";
    GTEST_SKIP() << "LEOFLOW_TEST_PG_RESTART is unset (scripts/servers/postgres.sh exports it)";
  }
  dropSchema(kSchema);
  auto store = openStore(restartSettings(), "replica-a");
  const Term term = seed(*store);
  const RunKey key{"etl", "r1"};
  Sink sink;
  ASSERT_TRUE(store->subscribe(sink).isOk());

  // A caller keeps asking while the server restarts; every failure must say kUnavailable.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<StatusCode, int> codes;
  std::string other_failure;
  std::thread caller([&] {
    while (!stop.load()) {
      const Status s = store->ping();
      auto dags = store->listDags();
      std::lock_guard lock(mu);
      for (const Status& st : {s, dags.status()}) {
        ++codes[st.code()];
        if (!st.isOk() && st.code() != StatusCode::kUnavailable && other_failure.empty()) other_failure = st.toString();
      }
      std::this_thread::sleep_for(5ms);
    }
  });

  ServerGuard guard;
  const auto start = SteadyClock::now();
  const bool restarted = restartServer();
  const long long restart_ms = millisSince(start);
  const Status up = pingUntilOk(*store, 10s);
  const long long back_ms = millisSince(start);
  std::this_thread::sleep_for(100ms);
  stop = true;
  caller.join();
  ASSERT_TRUE(restarted) << "pg_ctl restart -m fast failed";
  ASSERT_TRUE(up.isOk()) << up.toString();
  std::printf("[ figures  ] pg_ctl restart -m fast took %lld ms; the store answered %lld ms after it began; "
              "calls meanwhile: %d ok, %d unavailable\n",
              restart_ms, back_ms, codes[StatusCode::kOk], codes[StatusCode::kUnavailable]);
  EXPECT_TRUE(other_failure.empty()) << "a call failed with something else than kUnavailable: " << other_failure;

  EXPECT_TRUE(sink.waitResyncs(1, 10s)) << "no onResync after the restart";
  auto moved = store->applyTransitions(term, key, std::vector{TaskTransitionWrite{"b", S::kNone, 1, S::kScheduled, "", false}},
                                       kT0);
  ASSERT_TRUE(moved.isOk()) << moved.status().toString();
  EXPECT_TRUE((*moved)[0]);
  EXPECT_TRUE(sink.waitTask("b", 5s)) << "the feed delivers changes again";
  store->unsubscribe();
}

}  // namespace
}  // namespace leoflow::testing::pg
