// The engine's caches hold what is in use, not everything ever seen (issue 9 §2): compiled DAG
// versions and parsed schedules are swept when nobody asked for them since the previous sweep.
#include <gtest/gtest.h>

#include "engine/dag_catalog.h"
#include "engine/schedule_cache.h"
#include "engine_harness.h"

namespace leoflow::engine::testing {
namespace {

TEST(EngineCaches, ADagVersionNobodyAskedForSinceTheLastSweepIsForgotten) {
  EngineHarness h;
  h.addDag(dag("etl", {task("a")}));
  h.addDag(dag("etl", {task("a"), task("b", {"a"})}));  // version 2
  DagCatalog catalog(h.store, [&](const std::string& json) -> Result<DagSpec> {
    return json.find("#1") != std::string::npos ? dag("etl", {task("a")}) : dag("etl", {task("a"), task("b", {"a"})});
  });
  ASSERT_TRUE(catalog.get("etl", 1).isOk());
  ASSERT_TRUE(catalog.get("etl", 2).isOk());
  EXPECT_EQ(catalog.size(), 2u);
  EXPECT_EQ(catalog.sweepUnused(), 0u) << "both were asked for since the start";
  ASSERT_TRUE(catalog.get("etl", 2).isOk());  // a run of version 2 is still reloaded
  EXPECT_EQ(catalog.sweepUnused(), 1u);
  EXPECT_EQ(catalog.size(), 1u);
  h.store.resetCalls();
  ASSERT_TRUE(catalog.get("etl", 2).isOk());
  EXPECT_EQ(h.store.calls(Method::kGetDag), 0) << "the version in use stayed compiled";
  ASSERT_TRUE(catalog.get("etl", 1).isOk());
  EXPECT_EQ(h.store.calls(Method::kGetDag), 1) << "a forgotten version is read again when needed";
}

TEST(EngineCaches, AScheduleNoDagUsesAnyMoreIsForgotten) {
  ScheduleCache cache;
  EXPECT_TRUE(cache.get("0 * * * *", "UTC").isOk());
  EXPECT_FALSE(cache.get("not a cron", "UTC").isOk());
  EXPECT_EQ(cache.size(), 2u);
  cache.sweepUnused();
  EXPECT_TRUE(cache.get("0 * * * *", "UTC").isOk());
  cache.sweepUnused();
  EXPECT_EQ(cache.size(), 1u);
}

}  // namespace
}  // namespace leoflow::engine::testing
