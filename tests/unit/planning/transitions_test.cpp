// The legal transition tables: BEHAVIOUR §9.1 scenarios 1-2, extended as ARCHITECTURE §8.2 says.
#include <set>
#include <utility>

#include <gtest/gtest.h>

#include "planning/transitions.h"

namespace leoflow::planning {
namespace {

using S = TaskState;
using R = DagRunState;

TEST(CanTransition, ExhaustiveOverAll81Pairs) {
  const std::set<std::pair<S, S>> legal = {
      // the seed's table (BEHAVIOUR §1.2)
      {S::kNone, S::kScheduled}, {S::kNone, S::kSkipped}, {S::kNone, S::kUpstreamFailed},
      {S::kScheduled, S::kQueued},
      {S::kQueued, S::kRunning}, {S::kQueued, S::kFailed}, {S::kQueued, S::kUpForRetry},
      {S::kRunning, S::kSuccess}, {S::kRunning, S::kFailed}, {S::kRunning, S::kUpForRetry},
      {S::kUpForRetry, S::kScheduled}, {S::kUpForRetry, S::kQueued}, {S::kUpForRetry, S::kNone},
      {S::kSuccess, S::kNone}, {S::kFailed, S::kNone}, {S::kSkipped, S::kNone},
      {S::kUpstreamFailed, S::kNone},
      // ARCHITECTURE §8.2 additions
      {S::kFailed, S::kUpForRetry}, {S::kNone, S::kFailed}, {S::kScheduled, S::kFailed},
      {S::kUpForRetry, S::kFailed}, {S::kQueued, S::kSuccess}, {S::kQueued, S::kScheduled},
  };
  int checked = 0;
  for (S from : kAllTaskStates) {
    for (S to : kAllTaskStates) {
      EXPECT_EQ(canTransition(from, to), legal.count({from, to}) == 1)
          << toString(from) << " -> " << toString(to);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 81);
}

TEST(CanTransition, SelfMovesAreNeverLegal) {
  for (S s : kAllTaskStates) EXPECT_FALSE(canTransition(s, s)) << toString(s);
}

TEST(CanTransition, TheRetryRailAndItsFailureExitsAreLegal) {
  EXPECT_TRUE(canTransition(S::kFailed, S::kUpForRetry));
  EXPECT_TRUE(canTransition(S::kUpForRetry, S::kNone));
  EXPECT_FALSE(canTransition(S::kSuccess, S::kRunning));  // a finished task is never resurrected
  EXPECT_FALSE(canTransition(S::kFailed, S::kRunning));
}

TEST(CanTransitionDagRun, ExhaustiveOverAll16Pairs) {
  const std::set<std::pair<R, R>> legal = {
      {R::kQueued, R::kRunning}, {R::kQueued, R::kFailed}, {R::kRunning, R::kSuccess},
      {R::kRunning, R::kFailed}, {R::kSuccess, R::kQueued}, {R::kFailed, R::kQueued},
      {R::kQueued, R::kSuccess},  // §8.2: a run with no tasks
  };
  int checked = 0;
  for (R from : {R::kQueued, R::kRunning, R::kSuccess, R::kFailed}) {
    for (R to : {R::kQueued, R::kRunning, R::kSuccess, R::kFailed}) {
      EXPECT_EQ(canTransitionDagRun(from, to), legal.count({from, to}) == 1)
          << toString(from) << " -> " << toString(to);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 16);
}

TEST(StateNames, RoundTripAndRejectUnknown) {
  for (S s : kAllTaskStates) EXPECT_EQ(parseTaskState(toString(s)), s);
  EXPECT_FALSE(parseTaskState(""));
  EXPECT_FALSE(parseTaskState("deferred"));
  EXPECT_FALSE(parseTaskState("SUCCESS"));
  for (R r : {R::kQueued, R::kRunning, R::kSuccess, R::kFailed}) EXPECT_EQ(parseDagRunState(toString(r)), r);
  EXPECT_FALSE(parseDagRunState("paused"));
}

}  // namespace
}  // namespace leoflow::planning
