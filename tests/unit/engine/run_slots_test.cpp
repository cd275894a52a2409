// RunSlots keeps each DAG's max_active_runs queue as the cached runs come, change state and go, and
// gives the slots as a walk over every cached run sorted by logical date would (docs/architecture.md
// §8.14): the oldest queued runs first, each against its own DAG version's limit, the running ones
// taking theirs first.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "engine/run_cache.h"
#include "engine/run_slots.h"
#include "engine_harness.h"

namespace leoflow::engine {
namespace {

using testing::dag;
using testing::task;

std::shared_ptr<const DagVersion> version(const std::string& dag_id, int max_active_runs) {
  DagSpec spec = dag(dag_id, {task("only")});
  spec.max_active_runs = max_active_runs;
  auto compiled = DagCatalog::compile(std::move(spec));
  EXPECT_TRUE(compiled.isOk()) << compiled.status().toString();
  return *compiled;
}

std::unique_ptr<CachedRun> cached(const std::shared_ptr<const DagVersion>& v, const std::string& run_id,
                                  int minute, DagRunState state, RunSlots& slots) {
  RunRecord r;
  r.key = RunKey{v->spec.dag_id, run_id};
  r.dag_version = 1;
  r.state = state;
  r.logical_date = Timestamp{std::chrono::minutes(minute)};
  if (state != DagRunState::kQueued) {  // materialized
    TaskInstance only;
    only.task_id = "only";
    r.tasks.push_back(std::move(only));
  }
  auto built = CachedRun::build(std::move(r), v, std::chrono::steady_clock::now(), nullptr, &slots);
  EXPECT_TRUE(built.isOk()) << built.status().toString();
  return std::move(built).value();
}

std::vector<std::string> given(const RunSlots& slots, const std::string& dag_id) {
  std::unordered_set<const CachedRun*> out;
  slots.giveSlots(dag_id, out);
  std::vector<std::string> ids;
  for (const CachedRun* r : out) ids.push_back(r->record().key.run_id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::string> ids(const std::vector<const CachedRun*>& runs) {
  std::vector<std::string> out;
  for (const CachedRun* r : runs) out.push_back(r->record().key.run_id);
  return out;
}

std::vector<std::string> queue(const RunSlots& slots, const std::string& dag_id) {
  return ids(slots.queued(dag_id));
}

using Cache = std::map<std::string, std::unique_ptr<CachedRun>>;

// The DAG's queued runs in slot order, found by walking every cached run.
std::vector<const CachedRun*> queuedByWalkingEveryRun(const Cache& runs, const std::string& dag_id) {
  std::vector<const CachedRun*> queued;
  for (const auto& [id, run] : runs) {
    if (run->record().key.dag_id == dag_id && run->record().state == DagRunState::kQueued) queued.push_back(run.get());
  }
  std::sort(queued.begin(), queued.end(), [](const CachedRun* a, const CachedRun* b) {
    return std::tie(a->record().logical_date, a->record().key.run_id) <
           std::tie(b->record().logical_date, b->record().key.run_id);
  });
  return queued;
}

// What the engine computed before RunSlots: every cached run of the DAG, the queued ones sorted.
std::vector<std::string> slotsByWalkingEveryRun(const Cache& runs, const std::string& dag_id) {
  int taken = 0;
  for (const auto& [id, run] : runs) {
    if (run->record().key.dag_id == dag_id && run->record().state == DagRunState::kRunning) ++taken;
  }
  std::vector<std::string> ids;
  for (const CachedRun* run : queuedByWalkingEveryRun(runs, dag_id)) {
    const int limit = run->dag().spec.max_active_runs;
    if (limit <= 0 || taken < limit) {
      ++taken;
      ids.push_back(run->record().key.run_id);
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(RunSlots, TheOldestQueuedRunsGetTheSlotsTheRunningOnesLeave) {
  RunSlots slots;
  const auto v = version("bf", 2);
  std::vector<std::unique_ptr<CachedRun>> runs;
  // Created newest first, one a minute; run r5 (minute 5) ties r5b on the date and goes first by id.
  for (int m = 9; m >= 3; --m) runs.push_back(cached(v, "r" + std::to_string(m), m, DagRunState::kQueued, slots));
  runs.push_back(cached(v, "r5b", 5, DagRunState::kQueued, slots));
  EXPECT_EQ(given(slots, "bf"), (std::vector<std::string>{"r3", "r4"}));

  CachedRun& r3 = *runs[6];
  ASSERT_EQ(r3.record().key.run_id, "r3");
  r3.setRunState(DagRunState::kRunning);
  EXPECT_EQ(given(slots, "bf"), (std::vector<std::string>{"r4"})) << "a running run holds its slot";
  r3.setRunState(DagRunState::kSuccess);
  EXPECT_EQ(given(slots, "bf"), (std::vector<std::string>{"r4", "r5"}));
  runs.erase(runs.begin() + 5);  // r4 goes away (deleted)
  EXPECT_EQ(given(slots, "bf"), (std::vector<std::string>{"r5", "r5b"}));

  EXPECT_EQ(queue(slots, "bf"), (std::vector<std::string>{"r5", "r5b", "r6", "r7", "r8", "r9"})) << "slot order";
  EXPECT_TRUE(given(slots, "other").empty());
  runs.clear();
  EXPECT_TRUE(given(slots, "bf").empty()) << "destroyed runs leave";
}

TEST(RunSlots, GivesWhatAWalkOverEveryCachedRunGivesWhateverComesAndGoes) {
  RunSlots slots;
  // Two DAGs, each with versions of different limits (0: none); dates repeat, so ties are common.
  const std::vector<std::shared_ptr<const DagVersion>> versions = {version("a", 2), version("a", 3), version("a", 0),
                                                                   version("b", 1), version("b", 4)};
  Cache runs;  // by run id, as the engine's cache (one run per key)
  std::mt19937 rng(14);
  for (int step = 0; step < 3000; ++step) {
    const std::string id = "r" + std::to_string(rng() % 60);
    const int what = static_cast<int>(rng() % 4);
    auto it = runs.find(id);
    if (it == runs.end() || what == 0) {
      // Loaded, or reloaded: the new copy is built before the old one is destroyed, as in the engine.
      const auto& v = versions[rng() % versions.size()];
      const DagRunState state = std::array{DagRunState::kQueued, DagRunState::kQueued, DagRunState::kRunning,
                                           DagRunState::kFailed}[rng() % 4];
      auto fresh = cached(it == runs.end() ? v : it->second->dagPtr(), id, static_cast<int>(rng() % 8), state, slots);
      runs[id] = std::move(fresh);
    } else if (what == 1) {
      runs.erase(it);
    } else if (it->second->record().state == DagRunState::kQueued) {
      it->second->setRunState(DagRunState::kRunning);
    } else if (it->second->record().state == DagRunState::kRunning) {
      it->second->setRunState(what == 2 ? DagRunState::kSuccess : DagRunState::kFailed);
    }
    for (const std::string dag_id : {"a", "b"}) {
      ASSERT_EQ(queue(slots, dag_id), ids(queuedByWalkingEveryRun(runs, dag_id))) << "step " << step << " " << dag_id;
      ASSERT_EQ(given(slots, dag_id), slotsByWalkingEveryRun(runs, dag_id)) << "step " << step << " dag " << dag_id;
    }
  }
}

}  // namespace
}  // namespace leoflow::engine
