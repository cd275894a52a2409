// Trigger rules with Airflow's semantics: the decision table of ARCHITECTURE §8.1, row by row, and
// the seed's 19 cases of BEHAVIOUR §1.3 where §8.1 keeps them (the rest show the §10 item 18 fix).
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "planning/trigger_rules.h"

namespace leoflow::planning {
namespace {

using D = TriggerDecision;
using TR = TriggerRule;

// Upstreams by letter: S success, F failed (no retries left), f failed with retries left,
// U upstream_failed, K skipped, R running, N none, H scheduled, Q queued, Y up_for_retry.
D decide(TR rule, const std::string& ups) {
  std::vector<TaskState> states;
  bool retriable[64] = {};  // std::vector<bool> cannot back a span
  for (char c : ups) {
    switch (c) {
      case 'S': states.push_back(TaskState::kSuccess); break;
      case 'F': states.push_back(TaskState::kFailed); break;
      case 'f': states.push_back(TaskState::kFailed); break;
      case 'U': states.push_back(TaskState::kUpstreamFailed); break;
      case 'K': states.push_back(TaskState::kSkipped); break;
      case 'R': states.push_back(TaskState::kRunning); break;
      case 'N': states.push_back(TaskState::kNone); break;
      case 'H': states.push_back(TaskState::kScheduled); break;
      case 'Q': states.push_back(TaskState::kQueued); break;
      case 'Y': states.push_back(TaskState::kUpForRetry); break;
      default: ADD_FAILURE() << "bad letter " << c;
    }
    retriable[states.size() - 1] = c == 'f';
  }
  return evaluateTriggerRule(rule, states, std::span<const bool>(retriable, states.size()));
}

struct Case {
  TR rule;
  const char* ups;
  D expected;
};

std::string name(const Case& c) { return std::string(toString(c.rule)) + "(" + c.ups + ")"; }

void expectAll(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    EXPECT_EQ(static_cast<int>(decide(c.rule, c.ups)), static_cast<int>(c.expected)) << name(c);
  }
}

TEST(TriggerRules, DecisionValuesAreTheSeeds) {
  EXPECT_EQ(static_cast<int>(D::kWait), 0);
  EXPECT_EQ(static_cast<int>(D::kSchedule), 1);
  EXPECT_EQ(static_cast<int>(D::kSkip), 2);
  EXPECT_EQ(static_cast<int>(D::kUpstreamFailed), 3);
}

TEST(TriggerRules, RootTaskIsAlwaysScheduledWhateverTheRule) {
  for (TR rule : kAllTriggerRules) EXPECT_EQ(decide(rule, ""), D::kSchedule) << toString(rule);
}

TEST(TriggerRules, SeedCasesKeptByAirflowSemantics) {
  expectAll({
      {TR::kAllSuccess, "SS", D::kSchedule},
      {TR::kAllSuccess, "SR", D::kWait},
      {TR::kAllSuccess, "SF", D::kUpstreamFailed},
      {TR::kAllSuccess, "SK", D::kSkip},
      {TR::kAllSuccess, "SU", D::kUpstreamFailed},
      {TR::kAllFailed, "FF", D::kSchedule},
      {TR::kAllFailed, "FR", D::kWait},
      {TR::kAllFailed, "FS", D::kSkip},
      {TR::kAllDone, "SFK", D::kSchedule},
      {TR::kAllDone, "SR", D::kWait},
      {TR::kAllDone, "US", D::kSchedule},
      {TR::kOneSuccess, "SF", D::kSchedule},
      {TR::kOneFailed, "FS", D::kSchedule},
      {TR::kOneFailed, "SK", D::kSkip},
  });
}

TEST(TriggerRules, OneRulesFireAsSoonAsOneUpstreamQualifies) {
  // BEHAVIOUR §10 item 18: the seed waited for every upstream here.
  expectAll({
      {TR::kOneSuccess, "SR", D::kSchedule},
      {TR::kOneSuccess, "SU", D::kSchedule},
      {TR::kOneFailed, "FR", D::kSchedule},
      {TR::kOneFailed, "UR", D::kSchedule},
      {TR::kOneDone, "SR", D::kSchedule},
      {TR::kOneDone, "FN", D::kSchedule},
  });
}

TEST(TriggerRules, OneSuccessWithNoSuccessDecidesOnlyWhenAllAreDone) {
  expectAll({
      {TR::kOneSuccess, "FK", D::kUpstreamFailed},  // seed: skip
      {TR::kOneSuccess, "FR", D::kWait},
      {TR::kOneSuccess, "KK", D::kSkip},
      {TR::kOneSuccess, "UU", D::kUpstreamFailed},
      {TR::kOneSuccess, "KU", D::kUpstreamFailed},
  });
}

TEST(TriggerRules, AllSuccess) {
  expectAll({
      {TR::kAllSuccess, "S", D::kSchedule},
      {TR::kAllSuccess, "SSS", D::kSchedule},
      {TR::kAllSuccess, "FR", D::kUpstreamFailed},  // decided while others still run
      {TR::kAllSuccess, "UN", D::kUpstreamFailed},
      {TR::kAllSuccess, "KR", D::kSkip},
      {TR::kAllSuccess, "KF", D::kUpstreamFailed},  // failure beats skip
      {TR::kAllSuccess, "fS", D::kWait},            // a failure with retries left is not done
      {TR::kAllSuccess, "YS", D::kWait},
      {TR::kAllSuccess, "HQ", D::kWait},
  });
}

TEST(TriggerRules, AllFailed) {
  expectAll({
      {TR::kAllFailed, "F", D::kSchedule},
      {TR::kAllFailed, "FU", D::kSchedule},  // upstream_failed counts as failed (Airflow)
      {TR::kAllFailed, "UU", D::kSchedule},
      {TR::kAllFailed, "FK", D::kSkip},
      {TR::kAllFailed, "RS", D::kSkip},
      {TR::kAllFailed, "fF", D::kWait},
      {TR::kAllFailed, "NN", D::kWait},
  });
}

TEST(TriggerRules, AllDone) {
  expectAll({
      {TR::kAllDone, "F", D::kSchedule},
      {TR::kAllDone, "UK", D::kSchedule},
      {TR::kAllDone, "SQ", D::kWait},
      {TR::kAllDone, "Sf", D::kWait},
      {TR::kAllDone, "SY", D::kWait},
  });
}

TEST(TriggerRules, AllSkipped) {
  expectAll({
      {TR::kAllSkipped, "KK", D::kSchedule},
      {TR::kAllSkipped, "KR", D::kWait},
      {TR::kAllSkipped, "KS", D::kSkip},
      {TR::kAllSkipped, "FR", D::kSkip},
      {TR::kAllSkipped, "UK", D::kSkip},
  });
}

TEST(TriggerRules, OneFailedAndOneDone) {
  expectAll({
      {TR::kOneFailed, "SS", D::kSkip},
      {TR::kOneFailed, "SR", D::kWait},
      {TR::kOneFailed, "fS", D::kWait},
      {TR::kOneFailed, "KK", D::kSkip},
      {TR::kOneDone, "KU", D::kSkip},
      {TR::kOneDone, "KR", D::kWait},
      {TR::kOneDone, "KS", D::kSchedule},
      {TR::kOneDone, "UF", D::kSchedule},
  });
}

TEST(TriggerRules, NoneFailed) {
  expectAll({
      {TR::kNoneFailed, "SK", D::kSchedule},
      {TR::kNoneFailed, "KK", D::kSchedule},
      {TR::kNoneFailed, "SR", D::kWait},
      {TR::kNoneFailed, "SF", D::kUpstreamFailed},
      {TR::kNoneFailed, "RU", D::kUpstreamFailed},
      {TR::kNoneFailed, "fS", D::kWait},
  });
}

TEST(TriggerRules, NoneFailedMinOneSuccess) {
  expectAll({
      {TR::kNoneFailedMinOneSuccess, "SK", D::kSchedule},
      {TR::kNoneFailedMinOneSuccess, "KK", D::kSkip},
      {TR::kNoneFailedMinOneSuccess, "KR", D::kWait},
      {TR::kNoneFailedMinOneSuccess, "KF", D::kUpstreamFailed},
      {TR::kNoneFailedMinOneSuccess, "SS", D::kSchedule},
  });
}

TEST(TriggerRules, NoneSkipped) {
  expectAll({
      {TR::kNoneSkipped, "SF", D::kSchedule},
      {TR::kNoneSkipped, "SU", D::kSchedule},
      {TR::kNoneSkipped, "KR", D::kSkip},
      {TR::kNoneSkipped, "SR", D::kWait},
  });
}

TEST(TriggerRules, AllDoneMinOneSuccess) {
  expectAll({
      {TR::kAllDoneMinOneSuccess, "SF", D::kSchedule},
      {TR::kAllDoneMinOneSuccess, "FK", D::kSkip},
      {TR::kAllDoneMinOneSuccess, "UU", D::kSkip},
      {TR::kAllDoneMinOneSuccess, "SR", D::kWait},
      {TR::kAllDoneMinOneSuccess, "FR", D::kWait},
  });
}

TEST(TriggerRules, AlwaysSchedulesWithoutWaiting) {
  expectAll({
      {TR::kAlways, "R", D::kSchedule},
      {TR::kAlways, "NN", D::kSchedule},
      {TR::kAlways, "FU", D::kSchedule},
  });
}

TEST(TriggerRules, EveryRuleDecidesOnceEveryUpstreamIsDone) {
  // No rule may wait forever once all upstreams settled (BEHAVIOUR §10 item 18).
  const char* settled[] = {"S", "F", "U", "K", "SF", "SK", "FK", "UK", "SU", "SSF", "KKK", "FFU"};
  for (TR rule : kAllTriggerRules) {
    for (const char* ups : settled) EXPECT_NE(decide(rule, ups), D::kWait) << toString(rule) << "(" << ups << ")";
  }
}

TEST(TriggerRules, NamesParseAndUnknownNamesAreRejected) {
  for (TR rule : kAllTriggerRules) EXPECT_EQ(parseTriggerRule(toString(rule)), rule);
  EXPECT_EQ(parseTriggerRule(""), TR::kAllSuccess);
  EXPECT_FALSE(parseTriggerRule("dummy"));
  EXPECT_FALSE(parseTriggerRule("ALL_SUCCESS"));
}

}  // namespace
}  // namespace leoflow::planning
