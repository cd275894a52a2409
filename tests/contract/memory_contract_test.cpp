// The contract suites run against the in-memory reference implementations, plus the failure
// injection the engine's unit tests lean on (a fake that does not fail when told to would let the
// engine's resilience tests pass for nothing).
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "contract/leader_contract.h"
#include "contract/store_contract.h"
#include "support/memory_store.h"

namespace leoflow::contract {
namespace {

using namespace std::chrono_literals;
using leoflow::testing::LeaseBoard;
using leoflow::testing::ManualClock;
using leoflow::testing::MemoryLeader;
using leoflow::testing::MemoryStore;

StoreHarness memoryStoreHarness() {
  return StoreHarness{
      "Memory",
      [] { return std::make_unique<MemoryStore>(); },
      [](Store& first) -> std::unique_ptr<Store> {
        return dynamic_cast<MemoryStore&>(first).openHandle();
      },
  };
}

constexpr std::chrono::milliseconds kLease{3000};  // the default lease_ms (ARCHITECTURE §4)

LeaderHarness memoryLeaderHarness() {
  return LeaderHarness{"Memory", [] {
                         auto clock = std::make_shared<ManualClock>();
                         auto board = std::make_shared<LeaseBoard>(*clock, kLease);
                         LeaderSetup s;
                         s.lease = kLease;
                         s.first = std::make_unique<MemoryLeader>(board, "replica-a");
                         s.second = std::make_unique<MemoryLeader>(board, "replica-b");
                         s.advance = [clock](std::chrono::milliseconds d) { clock->advance(d); };
                         s.lapse = [clock] { clock->advance(kLease + 1ms); };
                         s.resources = clock;
                         return s;
                       }};
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Memory, StoreContract, ::testing::Values(memoryStoreHarness()), HarnessName{});
INSTANTIATE_TEST_SUITE_P(Memory, LeaderContract, ::testing::Values(memoryLeaderHarness()), HarnessName{});

}  // namespace leoflow::contract

// ---------------------------------------------------------------------------------------------------
// The fakes' own controls.

namespace leoflow::testing {
namespace {

using namespace std::chrono_literals;

const Timestamp kT0{std::chrono::sys_days{std::chrono::year{2026} / std::chrono::May / 28}};

/// A store with one DAG, a claimed term and a running run "etl/r1" whose task "a" is queued.
struct Fixture {
  MemoryStore store;
  Term term = 0;
  RunKey key{"etl", "r1"};

  Fixture() {
    DagDefinition d;
    d.spec.dag_id = "etl";
    d.spec_json = R"({"dag_id":"etl"})";
    EXPECT_TRUE(store.syncDags(std::vector{d}).isOk());
    term = *store.claimTerm("replica-a");
    EXPECT_TRUE(store.createRun(term, NewRun{key, 1, RunTrigger::kManual, kT0, "", kT0}).isOk());
    EXPECT_TRUE(store.materializeRun(term, key, std::vector{NewTaskInstance{"a", 2}}, kT0).isOk());
    for (auto [from, to] : {std::pair{TaskState::kNone, TaskState::kScheduled},
                            std::pair{TaskState::kScheduled, TaskState::kQueued}}) {
      auto r = store.applyTransitions(term, key, std::vector{TaskTransitionWrite{"a", from, 1, to, "", false}}, kT0);
      EXPECT_TRUE(r.isOk() && (*r)[0]);
    }
    store.resetCalls();
  }
};

TEST(MemoryStoreFaults, FailNextFailsThatManyCallsAndChangesNothing) {
  Fixture f;
  f.store.failNext(Method::kReportRunning, unavailable("redis down"), 2);
  const ExecutionRef a{AttemptRef{f.key, "a", 1}, "exec-1"};
  EXPECT_EQ(f.store.reportRunning(a, kT0).code(), StatusCode::kUnavailable);
  EXPECT_EQ(f.store.reportRunning(a, kT0).code(), StatusCode::kUnavailable);
  EXPECT_EQ(f.store.task(f.key, "a")->state, TaskState::kQueued);
  EXPECT_TRUE(f.store.reportRunning(a, kT0).isOk());
  EXPECT_EQ(f.store.task(f.key, "a")->state, TaskState::kRunning);
  EXPECT_EQ(f.store.calls(Method::kReportRunning), 3);
}

TEST(MemoryStoreFaults, FailAlwaysLastsUntilCleared) {
  Fixture f;
  f.store.failAlways(Method::kListActiveRuns, unavailable("down"));
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(f.store.listActiveRuns().isOk());
  f.store.clearFault(Method::kListActiveRuns);
  auto active = f.store.listActiveRuns();
  ASSERT_TRUE(active.isOk());
  EXPECT_EQ(active->size(), 1u);
  EXPECT_EQ(f.store.calls(Method::kListActiveRuns), 6);
}

TEST(MemoryStoreFaults, ThrowOnThrowsAndChangesNothing) {
  Fixture f;
  f.store.throwOn(Method::kApplyTransitions, 1);
  const std::vector<TaskTransitionWrite> w{
      TaskTransitionWrite{"a", TaskState::kQueued, 1, TaskState::kRunning, "", false}};
  EXPECT_THROW((void)f.store.applyTransitions(f.term, f.key, w, kT0), std::runtime_error);
  EXPECT_EQ(f.store.task(f.key, "a")->state, TaskState::kQueued);
  auto r = f.store.applyTransitions(f.term, f.key, w, kT0);
  ASSERT_TRUE(r.isOk());
  EXPECT_TRUE((*r)[0]);
}

TEST(MemoryStoreFaults, BlockOnHoldsCallersUntilUnblocked) {
  Fixture f;
  const ExecutionRef execution{AttemptRef{f.key, "a", 1}, "exec-1"};
  ASSERT_TRUE(f.store.reportRunning(execution, kT0).isOk());
  f.store.blockOn(Method::kReportFinished);
  Status result = internalError("not yet");
  std::thread caller([&] {
    result = f.store.reportFinished(execution, TaskOutcome{true, 0, ""}, kT0);
  });
  ASSERT_TRUE(f.store.waitUntilBlocked(Method::kReportFinished, 5s));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(f.store.task(f.key, "a")->state, TaskState::kRunning) << "a hung call has not happened";
  // Other methods still answer while one hangs.
  EXPECT_TRUE(f.store.ping().isOk());
  f.store.unblock();
  caller.join();
  EXPECT_TRUE(result.isOk()) << result.toString();
  EXPECT_EQ(f.store.task(f.key, "a")->state, TaskState::kSuccess);
}

TEST(MemoryStoreFaults, AFaultSetWhileBlockedAppliesToTheBlockedCall) {
  Fixture f;
  f.store.blockOn(Method::kReportRunning);
  Status result;
  std::thread caller([&] { result = f.store.reportRunning(ExecutionRef{AttemptRef{f.key, "a", 1}, "exec-1"}, kT0); });
  ASSERT_TRUE(f.store.waitUntilBlocked(Method::kReportRunning, 5s));
  f.store.failNext(Method::kReportRunning, deadlineExceeded("timed out"));
  f.store.unblock();
  caller.join();
  EXPECT_EQ(result.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(f.store.task(f.key, "a")->state, TaskState::kQueued);
}

TEST(MemoryStoreFaults, FailLoadOfFailsOneRunOnly) {
  Fixture f;
  ASSERT_TRUE(f.store.createRun(std::nullopt, NewRun{RunKey{"etl", "r2"}, 1, RunTrigger::kManual, kT0, "", kT0}).isOk());
  f.store.failLoadOf(f.key);
  const std::vector<RunKey> keys{f.key, RunKey{"etl", "r2"}};
  auto results = f.store.loadRuns(keys);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(results[1].isOk());
  f.store.clearFailures();
  EXPECT_TRUE(f.store.loadRuns(keys)[0].isOk());
}

TEST(MemoryStoreFaults, AFailedLoadRunsCallFailsEveryKey) {
  Fixture f;
  f.store.failNext(Method::kLoadRuns, unavailable("down"));
  const std::vector<RunKey> keys{f.key, f.key};
  auto results = f.store.loadRuns(keys);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_FALSE(results[0].isOk());
  EXPECT_FALSE(results[1].isOk());
}

TEST(MemoryStoreFaults, FailingWithAnOkStatusIsATestBug) {
  MemoryStore store;
  EXPECT_THROW(store.failNext(Method::kPing, Status{}), std::invalid_argument);
}

TEST(MemoryStoreInspection, SeedingPutsRowsAsGivenWithoutRules) {
  Fixture f;
  TaskInstance stale;
  stale.task_id = "a";
  stale.state = TaskState::kRunning;
  stale.try_number = 2;
  stale.max_tries = 2;
  stale.last_heartbeat_at = kT0 - 1h;
  ASSERT_TRUE(f.store.putTask(f.key, stale));
  EXPECT_FALSE(f.store.putTask(RunKey{"etl", "ghost"}, stale));
  auto lost = f.store.listAgentLostCandidates(10);
  ASSERT_TRUE(lost.isOk());
  ASSERT_EQ(lost->size(), 1u);
  EXPECT_EQ((*lost)[0].attempt.try_number, 2);
  EXPECT_EQ(f.store.currentTerm(), f.term);
  EXPECT_EQ(f.store.termHolder(), "replica-a");
  EXPECT_EQ(f.store.activeRuns().size(), 1u);
  EXPECT_EQ(f.store.runs().size(), 1u);
  EXPECT_EQ(f.store.dagVersions("etl").size(), 1u);
  EXPECT_EQ(f.store.calls(Method::kListAgentLostCandidates), 1);
}

class CountingSink final : public ChangeSink {
 public:
  explicit CountingSink(std::mutex* gate = nullptr) : gate_(gate) {}
  void onChange(const Change&) override {
    if (gate_ != nullptr) std::lock_guard lock(*gate_);
    ++changes;
  }
  void onResync() override { ++resyncs; }
  std::atomic<int> changes{0};
  std::atomic<int> resyncs{0};

 private:
  std::mutex* gate_;
};

TEST(MemoryStoreFeed, ASinkMayTakeALockItsWriterHolds) {
  // Delivery happens on the store's own thread: the engine may hold its mutex while writing.
  Fixture f;
  std::mutex engine_mutex;
  CountingSink sink(&engine_mutex);
  ASSERT_TRUE(f.store.subscribe(sink).isOk());
  {
    std::lock_guard lock(engine_mutex);
    ASSERT_TRUE(f.store.reportRunning(ExecutionRef{AttemptRef{f.key, "a", 1}, "exec-1"}, kT0).isOk());
  }
  f.store.drainChanges();
  EXPECT_EQ(sink.changes.load(), 1);
  f.store.unsubscribe();
}

TEST(MemoryStoreFeed, InterruptFeedAsksForAResync) {
  MemoryStore store;
  CountingSink sink;
  ASSERT_TRUE(store.subscribe(sink).isOk());
  EXPECT_TRUE(store.subscribed());
  store.interruptFeed();
  store.drainChanges();
  EXPECT_EQ(sink.resyncs.load(), 1);
  store.unsubscribe();
  EXPECT_FALSE(store.subscribed());
}

TEST(MemoryStoreFeed, HeartbeatsDoNotFloodTheFeed) {
  Fixture f;
  CountingSink sink;
  ASSERT_TRUE(f.store.subscribe(sink).isOk());
  const ExecutionRef a{AttemptRef{f.key, "a", 1}, "exec-1"};
  ASSERT_TRUE(f.store.reportRunning(a, kT0).isOk());
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(f.store.reportHeartbeat(a, kT0 + std::chrono::seconds{i}).isOk());
  f.store.drainChanges();
  EXPECT_EQ(sink.changes.load(), 1);
  f.store.unsubscribe();
}

TEST(MemoryStoreFeed, SubscribingTwiceWithoutUnsubscribingIsRefused) {
  MemoryStore store;
  CountingSink one;
  CountingSink two;
  ASSERT_TRUE(store.subscribe(one).isOk());
  EXPECT_FALSE(store.subscribe(two).isOk());
  store.unsubscribe();
  EXPECT_TRUE(store.subscribe(two).isOk());
  store.unsubscribe();
}

TEST(MemoryLeaderFaults, InjectedFailuresAndExceptions) {
  ManualClock clock;
  auto board = std::make_shared<LeaseBoard>(clock, 3s);
  MemoryLeader leader(board, "replica-a");
  EXPECT_EQ(leader.checkInterval(), 1s);
  ASSERT_TRUE(*leader.tryAcquire());
  leader.failNext(LeaderMethod::kCheck, unavailable("redis down"), 2);
  EXPECT_FALSE(leader.check().isOk());
  EXPECT_FALSE(leader.check().isOk());
  EXPECT_TRUE(*leader.check());
  leader.throwOn(LeaderMethod::kRelease, 1);
  EXPECT_THROW((void)leader.release(), std::runtime_error);
  EXPECT_EQ(board->holder(), "replica-a") << "a failed release leaves the lease in place";
  EXPECT_EQ(leader.calls(LeaderMethod::kCheck), 3);
  leader.clearFailures();
  EXPECT_TRUE(leader.release().isOk());
  EXPECT_FALSE(board->holder().has_value());
}

TEST(MemoryLeaderBoard, RevokeDropsTheHolderBehindItsBack) {
  ManualClock clock;
  auto board = std::make_shared<LeaseBoard>(clock, 3s);
  MemoryLeader a(board, "replica-a");
  MemoryLeader b(board, "replica-b");
  ASSERT_TRUE(*a.tryAcquire());
  board->revoke();
  EXPECT_FALSE(*a.check());
  EXPECT_TRUE(*b.tryAcquire());
}

}  // namespace
}  // namespace leoflow::testing
