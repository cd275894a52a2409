// CachedRun::build lays a loaded run's instances out in the DAG's task order, whatever order the store
// gave them in: as they are when they already are in that order (the stores' rule), through a lookup
// by task id otherwise. CachedRun::materialize mirrors a run start as a load would give it.
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

// Issue 14 §1: the leader mirrors a run start the store accepted instead of reading the run back, so
// the mirror must be what a load of the run returns afterwards (store.h materializeRun, pinned field by
// field in the store contract), laid out in the DAG's order whatever order the tasks were listed in.
TEST(RunCache, AStartIsMirroredExactlyAsTheStoreWroteIt) {
  testing::EngineHarness h;
  h.addDag(dag("diamond", {task("top"), task("left", {"top"}), task("right", {"top"}), task("join", {"left", "right"})}));
  const auto version = diamond();
  const RunKey key = h.trigger("diamond");
  const auto load = [&] {
    auto loaded = h.store.loadRuns(std::vector{key});
    EXPECT_TRUE(loaded.size() == 1 && loaded[0].isOk());
    return loaded.at(0).value();
  };
  auto mirrored = CachedRun::build(load(), version, std::chrono::steady_clock::now());
  ASSERT_TRUE(mirrored.isOk()) << mirrored.status().toString();
  ASSERT_FALSE((*mirrored)->materialized());
  const std::vector<NewTaskInstance> tasks{{"join", 4}, {"right", 3}, {"top", 1}, {"left", 2}};
  const Term term = *h.store.claimTerm("test");
  const Timestamp at = h.clock.now() + std::chrono::microseconds(1'234'567);
  ASSERT_TRUE(h.store.materializeRun(term, key, tasks, at).isOk());
  ASSERT_TRUE((*mirrored)->materialize(tasks, at));
  auto read = CachedRun::build(load(), version, std::chrono::steady_clock::now());
  ASSERT_TRUE(read.isOk()) << read.status().toString();
  const CachedRun& m = **mirrored;
  const CachedRun& r = **read;
  EXPECT_EQ(m.record().state, r.record().state);
  EXPECT_EQ(m.record().started_at, r.record().started_at);
  ASSERT_EQ(m.size(), r.size());
  for (planning::TaskIndex i = 0; i < m.size(); ++i) {
    const TaskInstance& a = m.instance(i);
    const TaskInstance& b = r.instance(i);
    EXPECT_EQ(a.task_id, b.task_id) << i;
    EXPECT_EQ(a.state, b.state) << a.task_id;
    EXPECT_EQ(a.try_number, b.try_number) << a.task_id;
    EXPECT_EQ(a.max_tries, b.max_tries) << a.task_id;
    EXPECT_EQ(a.scheduled_at, b.scheduled_at) << a.task_id;
    EXPECT_EQ(a.queued_at, b.queued_at) << a.task_id;
    EXPECT_EQ(a.started_at, b.started_at) << a.task_id;
    EXPECT_EQ(a.ended_at, b.ended_at) << a.task_id;
    EXPECT_EQ(a.last_heartbeat_at, b.last_heartbeat_at) << a.task_id;
    EXPECT_EQ(a.exit_code, b.exit_code) << a.task_id;
    EXPECT_EQ(a.note, b.note) << a.task_id;
    EXPECT_EQ(a.execution_id, b.execution_id) << a.task_id;
  }
  // Both plan the same first step: the root, ready.
  std::vector<planning::Transition> from_mirror, from_read;
  (*mirrored)->planner().plan(h.clock.now(), from_mirror);
  (*read)->planner().plan(h.clock.now(), from_read);
  ASSERT_EQ(from_mirror.size(), 1u);
  ASSERT_EQ(from_read.size(), 1u);
  EXPECT_EQ(from_mirror[0].task, from_read[0].task);
  EXPECT_EQ(from_mirror[0].to, from_read[0].to);
  EXPECT_EQ(version->dag.id(from_mirror[0].task), "top");

  // A second start, or tasks that are not the DAG's, change nothing: the caller reads the run instead.
  EXPECT_FALSE((*mirrored)->materialize(tasks, at));
  auto queued = CachedRun::build(record({}), version, std::chrono::steady_clock::now());
  ASSERT_TRUE(queued.isOk());
  const std::vector<NewTaskInstance> missing{{"top", 1}, {"left", 1}, {"right", 1}};
  const std::vector<NewTaskInstance> twice{{"top", 1}, {"left", 1}, {"right", 1}, {"top", 1}};
  EXPECT_FALSE((*queued)->materialize(missing, at));
  EXPECT_FALSE((*queued)->materialize(twice, at));
  EXPECT_FALSE((*queued)->materialized());
}

}  // namespace
}  // namespace leoflow::engine
