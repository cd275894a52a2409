// CachedRun::build lays a loaded run's instances out in the DAG's task order, whatever order the store
// gave them in: as they are when they already are in that order (the stores' rule), through a lookup
// by task id otherwise.
#include <gtest/gtest.h>

#include "engine/run_cache.h"
#include "engine_harness.h"

namespace leoflow::engine {
namespace {

using testing::dag;
using testing::task;

TaskInstance instance(std::string id, TaskState state, std::int32_t try_number = 1) {
  TaskInstance ti;
  ti.task_id = std::move(id);
  ti.state = state;
  ti.try_number = try_number;
  ti.max_tries = 3;
  ti.execution_id = "execution-of-" + ti.task_id + "-that-is-longer-than-a-short-string";
  return ti;
}

std::shared_ptr<const DagVersion> diamond() {
  auto compiled = DagCatalog::compile(
      dag("diamond", {task("top"), task("left", {"top"}), task("right", {"top"}), task("join", {"left", "right"})}));
  EXPECT_TRUE(compiled.isOk()) << compiled.status().toString();
  return *compiled;
}

RunRecord record(std::vector<TaskInstance> tasks) {
  RunRecord r;
  r.key = RunKey{"diamond", "r1"};
  r.dag_version = 1;
  r.state = DagRunState::kRunning;
  r.tasks = std::move(tasks);
  return r;
}

// Each DAG task index holds its own instance, with every field it was loaded with.
void expectLaidOut(const CachedRun& run, const DagVersion& version) {
  ASSERT_EQ(run.size(), 4u);
  for (planning::TaskIndex i = 0; i < 4; ++i) {
    const TaskInstance& ti = run.instance(i);
    EXPECT_EQ(ti.task_id, version.dag.id(i)) << i;
    EXPECT_EQ(ti.execution_id, "execution-of-" + ti.task_id + "-that-is-longer-than-a-short-string") << i;
    EXPECT_EQ(ti.state, ti.task_id == "top" ? TaskState::kSuccess : TaskState::kNone) << ti.task_id;
    EXPECT_EQ(ti.try_number, ti.task_id == "top" ? 2 : 1) << ti.task_id;
  }
  EXPECT_TRUE(run.record().tasks.empty()) << "the instances live in task order only";
}

TEST(RunCache, InstancesInTheDagsOrderAreTakenAsTheyAre) {
  const auto version = diamond();
  auto built = CachedRun::build(record({instance("top", TaskState::kSuccess, 2), instance("left", TaskState::kNone),
                                        instance("right", TaskState::kNone), instance("join", TaskState::kNone)}),
                                version, std::chrono::steady_clock::now());
  ASSERT_TRUE(built.isOk()) << built.status().toString();
  expectLaidOut(**built, *version);
}

TEST(RunCache, InstancesInAnotherOrderOrOfOtherTasksTooAreLaidOutByTaskId) {
  const auto version = diamond();
  auto built = CachedRun::build(
      record({instance("join", TaskState::kNone), instance("gone", TaskState::kFailed),
              instance("right", TaskState::kNone), instance("top", TaskState::kSuccess, 2),
              instance("left", TaskState::kNone)}),
      version, std::chrono::steady_clock::now());
  ASSERT_TRUE(built.isOk()) << built.status().toString();
  expectLaidOut(**built, *version);

  // Same tasks, one of them twice: the first one stands.
  auto twice = CachedRun::build(record({instance("left", TaskState::kNone), instance("top", TaskState::kSuccess, 2),
                                        instance("right", TaskState::kNone), instance("join", TaskState::kNone),
                                        instance("top", TaskState::kFailed, 5)}),
                                version, std::chrono::steady_clock::now());
  ASSERT_TRUE(twice.isOk()) << twice.status().toString();
  expectLaidOut(**twice, *version);
}

TEST(RunCache, ARunWithoutAnInstanceOfSomeTaskCannotBeLaidOut) {
  const auto version = diamond();
  auto built = CachedRun::build(record({instance("top", TaskState::kSuccess, 2), instance("left", TaskState::kNone),
                                        instance("join", TaskState::kNone), instance("extra", TaskState::kNone)}),
                                version, std::chrono::steady_clock::now());
  ASSERT_FALSE(built.isOk());
  EXPECT_EQ(built.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(built.status().message().find("has no instance of task right"), std::string::npos)
      << built.status().message();
}

}  // namespace
}  // namespace leoflow::engine
