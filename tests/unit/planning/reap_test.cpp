// The reapers' predicates: BEHAVIOUR §9.6 scenarios 51, 57 and 63.
#include <gtest/gtest.h>

#include "planning/reap.h"

namespace leoflow::planning {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

const Timestamp kNow28{seconds{1779969600}};  // 2026-05-28T12:00:00Z
const Timestamp kNow31{seconds{1780228800}};  // 2026-05-31T12:00:00Z

TEST(IsOrphaned, QuietForTheThresholdOrNeverActive) {  // 51
  const auto threshold = minutes{5};
  EXPECT_FALSE(isOrphaned(kNow28 - minutes{1}, threshold, kNow28));
  EXPECT_TRUE(isOrphaned(kNow28 - minutes{5}, threshold, kNow28));  // exactly at the threshold
  EXPECT_TRUE(isOrphaned(kNow28 - hours{1}, threshold, kNow28));
  EXPECT_FALSE(isOrphaned(kNow28 + minutes{1}, threshold, kNow28));  // clock skew: fresh
  EXPECT_TRUE(isOrphaned(std::nullopt, threshold, kNow28));          // no activity at all
}

TEST(IsAgentLost, SilentForTheThresholdButNeverWithoutAHeartbeat) {  // 57
  const auto threshold = seconds{90};
  EXPECT_FALSE(isAgentLost(kNow28 - seconds{1}, threshold, kNow28));
  EXPECT_TRUE(isAgentLost(kNow28 - seconds{90}, threshold, kNow28));
  EXPECT_TRUE(isAgentLost(kNow28 - minutes{10}, threshold, kNow28));
  EXPECT_FALSE(isAgentLost(kNow28 + seconds{1}, threshold, kNow28));
  EXPECT_FALSE(isAgentLost(std::nullopt, threshold, kNow28));  // do no harm
}

TEST(IsDispatchLost, QueuedForTheThresholdButNeverWithoutAStamp) {  // 63
  const auto threshold = minutes{3};
  EXPECT_FALSE(isDispatchLost(kNow31 - seconds{1}, threshold, kNow31));
  EXPECT_FALSE(isDispatchLost(kNow31 - minutes{2}, threshold, kNow31));
  EXPECT_TRUE(isDispatchLost(kNow31 - minutes{3}, threshold, kNow31));
  EXPECT_TRUE(isDispatchLost(kNow31 - minutes{30}, threshold, kNow31));
  EXPECT_FALSE(isDispatchLost(kNow31 + seconds{1}, threshold, kNow31));
  EXPECT_FALSE(isDispatchLost(std::nullopt, threshold, kNow31));
}

}  // namespace
}  // namespace leoflow::planning
