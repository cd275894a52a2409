// planRun and finalizeRun: BEHAVIOUR §9.2 scenarios 4-16, with ARCHITECTURE §8.3's defaults.
#include <gtest/gtest.h>

#include "planning/plan.h"
#include "run_builder.h"

namespace leoflow::planning {
namespace {

using testing::linear;
using testing::Moves;
using testing::TestRun;
using S = TaskState;

Timestamp at(int seconds_after_noon) {
  // 2026-05-31T12:00:00Z, the anchor of scenarios 14-16.
  return Timestamp{std::chrono::seconds{1780228800 + seconds_after_noon}};
}

TEST(PlanRun, SchedulesRootTask) {  // 4
  auto run = linear();
  EXPECT_EQ(run.plan(), (Moves{{"a", S::kScheduled}}));
}

TEST(PlanRun, PromotesScheduledToQueued) {  // 5
  auto run = linear().state("a", S::kScheduled);
  EXPECT_EQ(run.plan(), (Moves{{"a", S::kQueued}}));
}

TEST(PlanRun, SchedulesDownstreamAfterSuccess) {  // 6
  auto run = linear().state("a", S::kSuccess);
  EXPECT_EQ(run.plan(), (Moves{{"b", S::kScheduled}}));
}

TEST(PlanRun, PropagatesUpstreamFailure) {  // 7
  auto run = linear().state("a", S::kFailed);
  EXPECT_EQ(run.plan(), (Moves{{"b", S::kUpstreamFailed}}));
}

TEST(PlanRun, AllDoneSchedulesAfterFailure) {  // 8
  TestRun run;
  run.task("a").task("cleanup", {"a"}, TriggerRule::kAllDone).state("a", S::kFailed);
  EXPECT_EQ(run.plan(), (Moves{{"cleanup", S::kScheduled}}));
}

TEST(PlanRun, RetriesFailedTaskWithBudgetAndDownstreamWaits) {  // 9
  auto run = linear().state("a", S::kFailed).tries("a", 1, 3);
  EXPECT_EQ(run.plan(), (Moves{{"a", S::kUpForRetry}}));
}

TEST(PlanRun, NoRetryWhenExhausted) {  // 10
  auto run = linear().state("a", S::kFailed).tries("a", 3, 3);
  EXPECT_EQ(run.plan(), (Moves{{"b", S::kUpstreamFailed}}));
}

TEST(PlanRun, ResetsUpForRetry) {  // 11
  auto run = linear().state("a", S::kUpForRetry).tries("a", 2, 3);
  EXPECT_EQ(run.plan(), (Moves{{"a", S::kNone}}));
}

TEST(PlanRun, HoldsUpForRetryDuringDelay) {  // 14
  auto run = linear().state("a", S::kUpForRetry).tries("a", 2, 3).endedAt("a", at(0)).retryDelay("a", 60).now(at(10));
  EXPECT_EQ(run.plan(), Moves{});
}

TEST(PlanRun, ReleasesUpForRetryAfterDelay) {  // 15
  auto run = linear().state("a", S::kUpForRetry).tries("a", 2, 3).endedAt("a", at(0)).retryDelay("a", 60).now(at(61));
  EXPECT_EQ(run.plan(), (Moves{{"a", S::kNone}}));  // exactly none, not scheduled in the same plan
}

TEST(PlanRun, ReleasesExactlyAtTheEndOfTheDelay) {
  auto run = linear().state("a", S::kUpForRetry).tries("a", 2, 3).endedAt("a", at(0)).retryDelay("a", 60).now(at(60));
  EXPECT_EQ(run.plan(), (Moves{{"a", S::kNone}}));
}

TEST(PlanRun, ReleasesAtOnceWithoutDelayEndTimeOrNow) {  // 16
  EXPECT_EQ(linear().state("a", S::kUpForRetry).tries("a", 2, 3).plan(), (Moves{{"a", S::kNone}}));
  // a delay but no end time, or no `now`: the gate is disabled
  EXPECT_EQ(linear().state("a", S::kUpForRetry).tries("a", 2, 3).retryDelay("a", 60).now(at(0)).plan(),
            (Moves{{"a", S::kNone}}));
  EXPECT_EQ(linear().state("a", S::kUpForRetry).tries("a", 2, 3).retryDelay("a", 60).endedAt("a", at(0)).plan(),
            (Moves{{"a", S::kNone}}));
}

TEST(PlanRun, RetryPassComesFirstThenStartPassEachInTaskOrder) {
  TestRun run;
  run.task("s1").task("r1").task("n1").task("r2").task("s2");
  run.state("s1", S::kScheduled).state("r1", S::kFailed).tries("r1", 1, 2);
  run.state("r2", S::kUpForRetry).tries("r2", 2, 3).state("s2", S::kScheduled);
  EXPECT_EQ(run.plan(), (Moves{{"r1", S::kUpForRetry},
                               {"r2", S::kNone},
                               {"s1", S::kQueued},
                               {"n1", S::kScheduled},
                               {"s2", S::kQueued}}));
}

TEST(PlanRun, ATaskAndItsDownstreamNeverMoveInOnePlan) {
  TestRun run;
  run.task("a").task("b", {"a"}).task("c", {"b"});
  run.state("a", S::kSkipped);
  EXPECT_EQ(run.plan(), (Moves{{"b", S::kSkipped}}));  // c waits for the next plan
}

TEST(PlanRun, ARetriableFailureIsStillActiveDownstream) {
  TestRun run;
  run.task("a").task("b").task("c", {"a", "b"}, TriggerRule::kOneFailed).task("d", {"a"}, TriggerRule::kAllDone);
  run.state("a", S::kFailed).tries("a", 1, 2).state("b", S::kRunning);
  EXPECT_EQ(run.plan(), (Moves{{"a", S::kUpForRetry}}));
}

TEST(PlanRun, QueuedRunningAndTerminalTasksAreLeftToExecutors) {
  TestRun run;
  run.task("q").task("r").task("s").task("k").task("u");
  run.state("q", S::kQueued).state("r", S::kRunning).state("s", S::kSuccess).state("k", S::kSkipped)
      .state("u", S::kUpstreamFailed);
  EXPECT_EQ(run.plan(), Moves{});
}

TEST(PlanRun, IsDeterministic) {
  TestRun run;
  run.task("a").task("b", {"a"}).task("c", {"a"}).task("d", {"b", "c"}, TriggerRule::kOneSuccess);
  run.state("a", S::kSuccess).state("b", S::kSuccess);
  const Moves first = run.plan();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(run.plan(), first);
  EXPECT_EQ(first, (Moves{{"c", S::kScheduled}, {"d", S::kScheduled}}));
}

TEST(PlanRun, ReusesTheOutputBuffer) {
  auto run = linear();
  std::vector<Transition> out = {{7, S::kFailed}, {8, S::kFailed}};
  planRun(run.snapshot(), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], (Transition{run.index("a"), S::kScheduled}));
}

TEST(FinalizeRun, DoneOnlyWhenEveryTaskIsTerminal) {  // 12
  EXPECT_EQ(linear().state("a", S::kSuccess).state("b", S::kRunning).finalize(), FinalizeDecision{});
  EXPECT_EQ(linear().state("a", S::kSuccess).state("b", S::kSuccess).finalize(),
            (FinalizeDecision{true, DagRunState::kSuccess}));
  EXPECT_EQ(linear().state("a", S::kSuccess).state("b", S::kFailed).finalize(),
            (FinalizeDecision{true, DagRunState::kFailed}));
}

TEST(FinalizeRun, WaitsForRetriableFailure) {  // 13
  EXPECT_EQ(linear().state("a", S::kFailed).tries("a", 1, 3).state("b", S::kSuccess).finalize(),
            FinalizeDecision{});
}

TEST(FinalizeRun, UpstreamFailedFailsTheRunAndSkippedCountsAsSuccess) {
  EXPECT_EQ(linear().state("a", S::kSuccess).state("b", S::kUpstreamFailed).finalize(),
            (FinalizeDecision{true, DagRunState::kFailed}));
  EXPECT_EQ(linear().state("a", S::kSkipped).state("b", S::kSkipped).finalize(),
            (FinalizeDecision{true, DagRunState::kSuccess}));
}

TEST(FinalizeRun, ARunWithNoTasksSucceeds) {
  TestRun run;
  EXPECT_EQ(run.finalize(), (FinalizeDecision{true, DagRunState::kSuccess}));
  EXPECT_EQ(run.plan(), Moves{});
}

TEST(FinalizeRun, UpForRetryAndNoneAreNotDone) {
  EXPECT_EQ(linear().state("a", S::kUpForRetry).tries("a", 2, 3).state("b", S::kSuccess).finalize(),
            FinalizeDecision{});
  EXPECT_EQ(linear().state("a", S::kSuccess).finalize(), FinalizeDecision{});
}

}  // namespace
}  // namespace leoflow::planning
