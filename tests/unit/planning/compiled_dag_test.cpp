// Compiling a topology: dense indices, adjacency, and the errors that name the field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "planning/compiled_dag.h"

namespace leoflow::planning {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<TaskSpec> tasks(std::initializer_list<std::pair<const char*, std::vector<std::string>>> defs) {
  std::vector<TaskSpec> out;
  for (const auto& [id, deps] : defs) {
    TaskSpec t;
    t.task_id = id;
    t.depends_on = deps;
    out.push_back(t);
  }
  return out;
}

TEST(CompiledDag, IndexesTasksInDeclarationOrderWithBothAdjacencies) {
  auto dag = CompiledDag::compile(tasks({{"a", {}}, {"b", {"a"}}, {"c", {"a"}}, {"d", {"c", "b"}}}));
  ASSERT_TRUE(dag.isOk()) << dag.status().message();
  EXPECT_EQ(dag->size(), 4u);
  EXPECT_EQ(dag->edgeCount(), 4u);
  EXPECT_EQ(dag->find("c"), 2u);
  EXPECT_FALSE(dag->find("zz"));
  EXPECT_THAT(dag->upstreams(3), ElementsAre(2u, 1u));  // depends_on order kept
  EXPECT_THAT(dag->downstreams(0), ElementsAre(1u, 2u));
  EXPECT_THAT(dag->downstreams(3), ElementsAre());
}

TEST(CompiledDag, ADependencyListedTwiceCountsOnce) {
  auto dag = CompiledDag::compile(tasks({{"a", {}}, {"b", {"a", "a"}}}));
  ASSERT_TRUE(dag.isOk());
  EXPECT_THAT(dag->upstreams(1), ElementsAre(0u));
}

TEST(CompiledDag, RejectsADanglingDependencyNamingTheField) {
  auto dag = CompiledDag::compile(tasks({{"a", {}}, {"x", {"a", "nowhere"}}}));
  ASSERT_FALSE(dag.isOk());
  EXPECT_EQ(dag.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(dag.status().message(), HasSubstr("tasks[1].depends_on"));
  EXPECT_THAT(dag.status().message(), HasSubstr("\"nowhere\" is not a task"));
}

TEST(CompiledDag, RejectsDuplicateIds) {
  auto dag = CompiledDag::compile(tasks({{"a", {}}, {"b", {}}, {"a", {}}}));
  ASSERT_FALSE(dag.isOk());
  EXPECT_THAT(dag.status().message(), HasSubstr("tasks[2].task_id: duplicate task id \"a\""));
}

TEST(CompiledDag, RejectsACycleAndSpellsItOut) {
  auto dag = CompiledDag::compile(tasks({{"root", {}}, {"a", {"root", "c"}}, {"b", {"a"}}, {"c", {"b"}}}));
  ASSERT_FALSE(dag.isOk());
  const std::string m = dag.status().message();
  EXPECT_THAT(m, HasSubstr("cycle"));
  // the loop, in edge direction, starting anywhere on it
  EXPECT_TRUE(m.find("a -> b -> c -> a") != std::string::npos || m.find("b -> c -> a -> b") != std::string::npos ||
              m.find("c -> a -> b -> c") != std::string::npos)
      << m;
}

TEST(CompiledDag, RejectsASelfDependency) {
  auto dag = CompiledDag::compile(tasks({{"a", {"a"}}}));
  ASSERT_FALSE(dag.isOk());
  EXPECT_THAT(dag.status().message(), HasSubstr("cycle a -> a"));
}

// A ring t0 -> t1 -> ... -> t(n-1) -> t0.
std::vector<TaskSpec> ring(int n) {
  std::vector<TaskSpec> out(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    out[i].task_id = "t" + std::to_string(i);
    out[i].depends_on = {"t" + std::to_string((i + n - 1) % n)};
  }
  return out;
}

TEST(CompiledDag, ALongCycleIsShortenedToItsFirstAndLastTasks) {
  auto fifteen = CompiledDag::compile(ring(15));
  ASSERT_FALSE(fifteen.isOk());
  EXPECT_THAT(fifteen.status().message(), HasSubstr("cycle t0 -> t1 -> t2 -> t3 -> t4 -> t5 -> t6 -> t7 -> t8 -> t9 -> "
                                                    "t10 -> t11 -> t12 -> t13 -> t14 -> t0"));
  auto sixteen = CompiledDag::compile(ring(16));
  ASSERT_FALSE(sixteen.isOk());
  EXPECT_EQ(sixteen.status().message(),
            "tasks: cycle of 16 tasks t0 -> t1 -> t2 -> t3 -> t4 -> ... (6 more) -> t11 -> t12 -> t13 -> t14 -> t15 -> t0");
  auto big = CompiledDag::compile(ring(20000));
  ASSERT_FALSE(big.isOk());
  EXPECT_LT(big.status().message().size(), 200u) << "not the ~190 KB of the whole loop";
  EXPECT_THAT(big.status().message(), HasSubstr("cycle of 20000 tasks t0 -> "));
}

TEST(CompiledDag, RejectsAnEmptyId) {
  auto dag = CompiledDag::compile(tasks({{"", {}}}));
  ASSERT_FALSE(dag.isOk());
  EXPECT_THAT(dag.status().message(), HasSubstr("tasks[0].task_id"));
}

TEST(CompiledDag, AcceptsAnEmptyDag) {
  auto dag = CompiledDag::compile({});
  ASSERT_TRUE(dag.isOk());
  EXPECT_EQ(dag->size(), 0u);
}

}  // namespace
}  // namespace leoflow::planning
