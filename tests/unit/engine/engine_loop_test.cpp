// The live loop: wake-ups from executor reports and the change feed make a chain of tasks advance
// at executor speed, not tick speed (ARCHITECTURE §2 "Wake-ups").
#include <thread>

#include <gtest/gtest.h>

#include "engine_harness.h"

namespace leoflow::engine::testing {
namespace {

using S = TaskState;

bool waitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(EngineLoop, AChainAdvancesWithoutWaitingForTheTick) {
  EngineHarness h;
  h.options.tick_interval = 60s;  // the backstop never fires during this test
  h.executor.setDefault(Completion::kSucceed);
  std::vector<TaskSpec> chain;
  for (int i = 0; i < 20; ++i) {
    chain.push_back(task("t" + std::to_string(i), i == 0 ? std::vector<std::string>{}
                                                          : std::vector<std::string>{"t" + std::to_string(i - 1)}));
  }
  h.addDag(dag("chain", chain));
  h.build();
  std::jthread loop([&](std::stop_token st) { h.engine->run(st); });
  ASSERT_TRUE(waitFor([&] { return h.engine->leading(); }, 2s));
  // triggered by another process: the change feed wakes the loop
  auto other = h.store.openHandle();
  NewRun r{{"chain", "r1"}, 1, RunTrigger::kManual, kNoon, "", kNoon};
  ASSERT_TRUE(other->createRun(std::nullopt, r).isOk());
  EXPECT_TRUE(waitFor([&] { return h.runState(r.key) == DagRunState::kSuccess; }, 10s));
  EXPECT_EQ(h.dispatcher.accepted().size(), 20u);
}

TEST(EngineLoop, AFollowerKeepsCampaigningAndTakesOverWhenTheLeaseFrees) {
  EngineHarness h;
  h.options.tick_interval = 10ms;
  h.leader = std::make_unique<MemoryLeader>(h.board, "replica-a", 10ms);
  h.board->acquire("replica-b");
  h.build();
  std::jthread loop([&](std::stop_token st) { h.engine->run(st); });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(h.engine->leading());
  h.board->release("replica-b");
  EXPECT_TRUE(waitFor([&] { return h.engine->leading(); }, 2s));
}

}  // namespace
}  // namespace leoflow::engine::testing
