// Due cron runs: BEHAVIOUR §9.4 scenarios 28-33 and 40-43, with §10 items 21-28 fixed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine_harness.h"
#include "schedule/iso_time.h"

namespace leoflow::engine::testing {
namespace {

using ::testing::HasSubstr;
using S = TaskState;

// Seeds a finished scheduled run of `dag_id` at `logical` so the DAG's last logical date is there.
void seedScheduledRun(EngineHarness& h, const std::string& dag_id, Timestamp logical) {
  RunRecord r;
  r.key = {dag_id, "scheduled__" + schedule::formatIsoSeconds(logical)};
  r.dag_version = 1;
  r.state = DagRunState::kSuccess;
  r.trigger = RunTrigger::kScheduled;
  r.logical_date = logical;
  r.queued_at = logical;
  h.store.putRun(r);
}

std::vector<std::string> scheduledRunIds(EngineHarness& h, const std::string& dag_id) {
  std::vector<std::string> ids;
  for (const RunRecord& r : h.store.runs()) {
    if (r.key.dag_id == dag_id && r.trigger == RunTrigger::kScheduled && r.state != DagRunState::kSuccess) {
      ids.push_back(r.key.run_id);
    }
  }
  return ids;
}

DagSpec hourly(const std::string& id, bool catchup, int max_active_runs = 16) {
  DagSpec d = dag(id, {task("a")}, "@hourly");
  d.catchup = catchup;
  d.max_active_runs = max_active_runs;
  return d;
}

TEST(EngineRunCreation, CatchupBackfillsEveryMissedSlot) {  // 28
  EngineHarness h;
  h.addDag(hourly("etl", true));
  seedScheduledRun(h, "etl", kNoon - 6h);
  h.lead();
  h.engine->tick();
  EXPECT_EQ(scheduledRunIds(h, "etl"),
            (std::vector<std::string>{"scheduled__2026-05-28T07:00:00Z", "scheduled__2026-05-28T08:00:00Z",
                                      "scheduled__2026-05-28T09:00:00Z", "scheduled__2026-05-28T10:00:00Z",
                                      "scheduled__2026-05-28T11:00:00Z", "scheduled__2026-05-28T12:00:00Z"}));
}

TEST(EngineRunCreation, WithoutCatchupOnlyTheLatestSlot) {  // 29
  EngineHarness h;
  h.addDag(hourly("etl", false));
  seedScheduledRun(h, "etl", kNoon - 6h);
  h.lead();
  h.engine->tick();
  EXPECT_EQ(scheduledRunIds(h, "etl"), (std::vector<std::string>{"scheduled__2026-05-28T12:00:00Z"}));
}

TEST(EngineRunCreation, WithoutCatchupTheLatestSlotEvenAfterALongOutage) {  // §10 item 23
  EngineHarness h;
  h.addDag(hourly("etl", false));
  seedScheduledRun(h, "etl", kNoon - 24h * 30);
  h.lead();
  h.engine->tick();
  EXPECT_EQ(scheduledRunIds(h, "etl"), (std::vector<std::string>{"scheduled__2026-05-28T12:00:00Z"}));
}

TEST(EngineRunCreation, CreatesADueRunAndNothingWhenNotDue) {  // 30, 31
  EngineHarness h;
  h.addDag(hourly("etl", false));
  h.addDag(hourly("fresh", false));
  seedScheduledRun(h, "etl", kNoon - 2h);
  seedScheduledRun(h, "fresh", kNoon);
  h.lead();
  h.engine->tick();
  EXPECT_EQ(scheduledRunIds(h, "etl").size(), 1u);
  EXPECT_TRUE(scheduledRunIds(h, "fresh").empty());
  EXPECT_EQ(h.recorder.decisions("create_run"), 1);
}

TEST(EngineRunCreation, OnceFiresExactlyOnce) {  // 32
  EngineHarness h;
  h.addDag(dag("once", {task("a")}, "@once"));
  h.lead();
  h.engine->tick();
  EXPECT_EQ(scheduledRunIds(h, "once").size(), 1u);
  h.clock.advance(1h);
  h.engine->tick();
  h.engine->tick();
  std::size_t all = 0;
  for (const RunRecord& r : h.store.runs()) all += r.key.dag_id == "once";
  EXPECT_EQ(all, 1u);
}

TEST(EngineRunCreation, AManualRunDoesNotSuppressTheSchedule) {  // §10 item 26
  EngineHarness h;
  h.addDag(dag("once", {task("a")}, "@once"));
  h.trigger("once", "manual__x");
  h.lead();
  h.engine->tick();
  EXPECT_EQ(scheduledRunIds(h, "once").size(), 1u);
}

TEST(EngineRunCreation, WarnsOnceAboutAnUnparseableScheduleAndCreatesNothing) {  // 33
  EngineHarness h;
  h.addDag(dag("bad", {task("a")}, "*/3 * * *"));
  h.addDag(hourly("good", false));
  seedScheduledRun(h, "good", kNoon - 2h);
  h.lead();
  h.engine->tick();
  EXPECT_THAT(h.logs(), HasSubstr("unparseable"));
  EXPECT_THAT(h.logs(), HasSubstr("*/3 * * *"));
  EXPECT_TRUE(scheduledRunIds(h, "bad").empty());
  EXPECT_EQ(scheduledRunIds(h, "good").size(), 1u);  // a bad DAG does not stop the others
  const std::string before = h.logs();
  h.engine->tick();
  EXPECT_EQ(h.logs().substr(before.size()).find("unparseable"), std::string::npos);
}

TEST(EngineRunCreation, AnImpossibleScheduleNeverHangsTheTick) {  // §10 item 21
  EngineHarness h;
  DagSpec d = dag("feb30", {task("a")}, "0 0 30 2 *");
  d.start_date = kNoon - 24h * 365;
  h.addDag(d);
  seedScheduledRun(h, "feb30", kNoon - 24h);
  h.lead();
  auto report = h.engine->tick();
  EXPECT_FALSE(report.timed_out);
  EXPECT_TRUE(scheduledRunIds(h, "feb30").empty());
}

TEST(EngineRunCreation, RespectsMaxActiveRunsWhenAtCap) {  // 40
  EngineHarness h;
  h.addDag(hourly("etl", true, 1));
  seedScheduledRun(h, "etl", kNoon - 6h);
  h.seedRunning("etl", {{"a", EngineHarness::ti(S::kRunning)}}, "manual__busy");
  h.lead();
  h.engine->tick();
  EXPECT_TRUE(scheduledRunIds(h, "etl").empty());
  EXPECT_EQ(h.recorder.decisions("max_active_runs_cap"), 1);
}

TEST(EngineRunCreation, OnceIgnoresMaxActiveRuns) {  // 41
  EngineHarness h;
  DagSpec d = dag("once", {task("a")}, "@once");
  d.max_active_runs = 1;
  h.addDag(d);
  h.seedRunning("once", {{"a", EngineHarness::ti(S::kRunning)}}, "manual__busy");
  h.lead();
  h.engine->tick();
  EXPECT_EQ(scheduledRunIds(h, "once").size(), 1u);
}

TEST(EngineRunCreation, MaxActiveRunsCapsABackfill) {  // 42
  EngineHarness h;
  h.addDag(hourly("etl", true, 1));
  seedScheduledRun(h, "etl", kNoon - 6h);
  h.lead();
  h.engine->tick();
  EXPECT_EQ(scheduledRunIds(h, "etl"), (std::vector<std::string>{"scheduled__2026-05-28T07:00:00Z"}));
}

TEST(EngineRunCreation, MaxActiveRunsZeroMeansUnlimited) {  // 43
  EngineHarness h;
  h.addDag(hourly("etl", true, 0));
  seedScheduledRun(h, "etl", kNoon - 6h);
  h.lead();
  h.engine->tick();
  EXPECT_EQ(scheduledRunIds(h, "etl").size(), 6u);
}

TEST(EngineRunCreation, ABackfillProceedsAsRunsFinish) {
  EngineHarness h;
  h.executor.setDefault(Completion::kSucceed);
  h.addDag(hourly("etl", true, 1));
  seedScheduledRun(h, "etl", kNoon - 3h);
  h.lead();
  h.settle();
  std::vector<std::string> succeeded;
  for (const RunRecord& r : h.store.runs()) {
    if (r.key.dag_id == "etl" && r.state == DagRunState::kSuccess) succeeded.push_back(r.key.run_id);
  }
  EXPECT_THAT(succeeded, ::testing::IsSupersetOf({"scheduled__2026-05-28T10:00:00Z", "scheduled__2026-05-28T11:00:00Z",
                                                  "scheduled__2026-05-28T12:00:00Z"}));
}

TEST(EngineRunCreation, PausedDagsGetNoRuns) {
  EngineHarness h;
  h.addDag(hourly("etl", false));
  seedScheduledRun(h, "etl", kNoon - 2h);
  ASSERT_TRUE(h.store.setPaused("etl", true).isOk());
  h.lead();
  h.engine->tick();
  EXPECT_TRUE(scheduledRunIds(h, "etl").empty());
}

TEST(EngineRunCreation, ContinuousStartsARunWheneverNoneIsActive) {
  EngineHarness h;
  h.executor.setDefault(Completion::kSucceed);
  h.addDag(dag("loop", {task("a")}, "@continuous"));
  h.lead();
  h.engine->tick();
  EXPECT_EQ(scheduledRunIds(h, "loop").size(), 1u);
  h.engine->tick();
  EXPECT_EQ(scheduledRunIds(h, "loop").size(), 1u);  // one at a time
  h.settle(8);
  std::size_t finished = 0;
  for (const RunRecord& r : h.store.runs()) finished += r.key.dag_id == "loop" && r.state == DagRunState::kSuccess;
  EXPECT_GE(finished, 1u);
}

TEST(EngineRunCreation, RunsAreBoundToTheCurrentDagVersion) {
  EngineHarness h;
  h.addDag(hourly("etl", false));
  DagSpec v2 = hourly("etl", false);
  v2.tasks.push_back(task("b", {"a"}));
  EXPECT_EQ(h.addDag(v2), 2);
  seedScheduledRun(h, "etl", kNoon - 2h);
  h.lead();
  h.engine->tick();
  auto ids = scheduledRunIds(h, "etl");
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(h.store.run({"etl", ids[0]})->dag_version, 2);
}

}  // namespace
}  // namespace leoflow::engine::testing
