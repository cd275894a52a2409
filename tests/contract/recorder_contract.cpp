#include "contract/recorder_contract.h"

#include <atomic>
#include <thread>
#include <vector>

namespace leoflow::contract {
namespace {

using namespace std::chrono_literals;
using std::chrono::steady_clock;

void everyHook(Recorder& r, const std::string& dag, const std::string& task) {
  r.recordSchedulerDecision("scheduled");
  r.recordTaskTransition(TaskState::kScheduled, TaskState::kQueued, dag);
  r.recordUndispatchable("no_executor");
  r.recordSchedulerStepDown("lock_released");
  r.observeSchedulerReacquire(1ms);
  r.observeTickDuration(2ms);
  r.setDispatchQueueDepth(1);
  r.observeDispatchLatency(3ms);
  r.observeTaskDuration(dag, task, "bash", 4ms);
  // SDK 3.1
  r.recordSchedulerHeartbeat();
  r.recordTaskStart(dag, task);
  r.recordTaskFinish(dag, task, TaskState::kSuccess);
  r.recordTaskFinish(dag, task, TaskState::kFailed);
  r.recordRunEnd(dag, DagRunState::kSuccess, 5s, 1s, "default");
  r.recordRunEnd(dag, DagRunState::kFailed, 5s, std::nullopt, "default");
  r.setTaskGauges(1, 2, 3);
}

TEST_P(RecorderContract, EveryHookIsSafeFromManyThreadsAtOnce) {
  RecorderSetup s = GetParam().create(RecorderDestination::kObserved);
  ASSERT_TRUE(s.recorder);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        try {
          everyHook(*s.recorder, "dag" + std::to_string(t), "task" + std::to_string(i % 7));
        } catch (...) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_P(RecorderContract, DeliversWhatItIsToldWhenItsOutputCanBeObserved) {
  RecorderSetup s = GetParam().create(RecorderDestination::kObserved);
  if (!s.delivered) GTEST_SKIP() << "this harness cannot observe its recorder's output";
  everyHook(*s.recorder, "contract_dag", "contract_task");
  const std::string text = s.delivered();
  EXPECT_NE(text.find("contract_dag"), std::string::npos) << text;
  EXPECT_NE(text.find("contract_task"), std::string::npos) << text;
}

TEST_P(RecorderContract, AnAbsentDestinationNeitherBlocksNorThrows) {
  RecorderSetup s = GetParam().create(RecorderDestination::kAbsent);
  ASSERT_TRUE(s.recorder);
  const auto start = steady_clock::now();
  for (int i = 0; i < 5000; ++i) EXPECT_NO_THROW(everyHook(*s.recorder, "dag", "task"));
  // 80,000 samples: queueing or dropping them is the caller's whole cost, never a network wait.
  EXPECT_LT(steady_clock::now() - start, 2s);
}

TEST_P(RecorderContract, AnyIdIsAcceptedEvenOneFullOfSeparators) {
  RecorderSetup s = GetParam().create(RecorderDestination::kObserved);
  EXPECT_NO_THROW(everyHook(*s.recorder, "a.b:c|d@e#f,g\nh", ""));
  EXPECT_NO_THROW(everyHook(*s.recorder, std::string(5000, 'x'), std::string(5000, 'y')));
}

TEST_P(RecorderContract, ItIsDestroyedPromptlyWithSamplesPending) {
  RecorderSetup s = GetParam().create(RecorderDestination::kAbsent);
  for (int i = 0; i < 1000; ++i) everyHook(*s.recorder, "dag", "task");
  const auto start = steady_clock::now();
  s.recorder.reset();
  EXPECT_LT(steady_clock::now() - start, 2s);
}

}  // namespace
}  // namespace leoflow::contract
