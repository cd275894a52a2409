// Decoded DAG versions kept for the next read (host/dag_spec_cache.h): a large version is decoded
// once, and an entry is never taken for a different text, whatever store it came from.
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "host/dag_file.h"
#include "host/dag_spec_cache.h"

namespace leoflow::host {
namespace {

// A canonical DAG of `tasks` bash tasks (task i runs `command`), as a store keeps it.
StoredDag storedDag(const std::string& dag_id, std::int64_t version, int tasks, const std::string& command) {
  DagSpec spec;
  spec.dag_id = dag_id;
  for (int i = 0; i < tasks; ++i) {
    TaskSpec t;
    t.task_id = "t" + std::to_string(i);
    t.type = "bash";
    t.entrypoint = command;
    if (i > 0) t.depends_on = {"t" + std::to_string(i - 1)};
    spec.tasks.push_back(std::move(t));
  }
  return StoredDag{dag_id, version, false, canonicalDagJson(spec)};
}

TEST(DagSpecCache, ALargeVersionIsDecodedOnceAndSharedByItsReads) {
  const StoredDag big = storedDag("cache_big", 1, 2000, "echo a");
  auto first = decodeStoredDag(big);
  ASSERT_TRUE(first.isOk()) << first.status().message();
  auto again = decodeStoredDag(big);
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(first->get(), again->get()) << "the second read shares the first one's spec";
  ASSERT_EQ((*again)->tasks.size(), 2000u);
  EXPECT_EQ((*again)->tasks[1999].depends_on, std::vector<std::string>{"t1998"});
}

TEST(DagSpecCache, AnotherTextUnderTheSameIdVersionAndSizeIsDecodedAfresh) {
  // Two stores (or a store emptied and filled again) can hold version 1 of the same DAG id with
  // different tasks; here even the text's length is the same.
  const StoredDag mine = storedDag("cache_twin", 1, 2000, "echo a");
  const StoredDag theirs = storedDag("cache_twin", 1, 2000, "echo b");
  ASSERT_EQ(mine.spec_json.size(), theirs.spec_json.size());
  ASSERT_NE(mine.spec_json, theirs.spec_json);
  auto a = decodeStoredDag(mine);
  auto b = decodeStoredDag(theirs);
  ASSERT_TRUE(a.isOk());
  ASSERT_TRUE(b.isOk());
  EXPECT_EQ((*a)->tasks[0].entrypoint, "echo a");
  EXPECT_EQ((*b)->tasks[0].entrypoint, "echo b");
  auto a_again = decodeStoredDag(mine);
  ASSERT_TRUE(a_again.isOk());
  EXPECT_EQ((*a_again)->tasks[0].entrypoint, "echo a");
}

TEST(DagSpecCache, AStoredTextThatDoesNotDecodeIsAnErrorEveryTime) {
  StoredDag broken = storedDag("cache_broken", 1, 2000, "echo a");
  broken.spec_json.resize(broken.spec_json.size() / 2);  // cut short: not JSON
  EXPECT_FALSE(decodeStoredDag(broken).isOk());
  EXPECT_FALSE(decodeStoredDag(broken).isOk());
}

}  // namespace
}  // namespace leoflow::host
