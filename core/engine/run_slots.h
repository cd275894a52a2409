// Each DAG's max_active_runs slots as the leader's cache holds them: how many of its runs are running,
// and its queued runs in the order slots go to them — oldest logical date first, then run id
// (docs/architecture.md §8.14).
//
// Cached runs enter and leave it themselves (CachedRun: built, state changed, destroyed), so it is
// always the cache's picture, and the runs that may start are found at the front of one DAG's queue:
// O(limit) per DAG asked, not a sort of every cached run. A backfill of 9,901 runs behind a limit of 4
// spent ~85 % of the loop thread's CPU sorting them each time one of the 4 ended.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace leoflow::engine {

class CachedRun;

class RunSlots {
 public:
  /// A run in the cache as it is now (queued and running runs count; others are not kept).
  void add(const CachedRun& run);
  /// Takes out what add() put in for the run as it was then (its state, date and limit unchanged since).
  void remove(const CachedRun& run);

  /// Adds to `out` the queued runs of the DAG that may start now: walking its queue in slot order, a
  /// run gets a slot while the runs taken — the running ones, then those given a slot before it — are
  /// fewer than its own DAG version's max_active_runs (0 or less: no limit; such a run still takes one).
  void giveSlots(std::string_view dag_id, std::unordered_set<const CachedRun*>& out) const;
  /// The DAG's queued runs in slot order (to look at: the engine asks giveSlots).
  std::vector<const CachedRun*> queued(std::string_view dag_id) const;

 private:
  struct SlotOrder {
    bool operator()(const CachedRun* a, const CachedRun* b) const;
  };
  struct Dag {
    int running = 0;
    std::set<const CachedRun*, SlotOrder> queued;
    std::multiset<int> limits;  // each queued run's limit, no limit as INT_MAX: the walk stops past the largest
  };
  static int limitOf(const CachedRun& run);
  std::map<std::string, Dag, std::less<>> dags_;
};

}  // namespace leoflow::engine
