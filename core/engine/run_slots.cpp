#include "engine/run_slots.h"

#include <climits>
#include <tuple>

#include "engine/run_cache.h"

namespace leoflow::engine {

bool RunSlots::SlotOrder::operator()(const CachedRun* a, const CachedRun* b) const {
  // The run itself last: a reloaded run's new copy is added before the old one is destroyed.
  return std::tie(a->record().logical_date, a->record().key.run_id, a) <
         std::tie(b->record().logical_date, b->record().key.run_id, b);
}

int RunSlots::limitOf(const CachedRun& run) {
  const int limit = run.dag().spec.max_active_runs;
  return limit <= 0 ? INT_MAX : limit;
}

void RunSlots::add(const CachedRun& run) {
  const RunRecord& r = run.record();
  if (r.state != DagRunState::kQueued && r.state != DagRunState::kRunning) return;
  auto it = dags_.find(r.key.dag_id);
  if (it == dags_.end()) it = dags_.emplace(r.key.dag_id, Dag{}).first;
  Dag& dag = it->second;
  if (r.state == DagRunState::kRunning) {
    ++dag.running;
  } else {
    dag.queued.insert(&run);
    dag.limits.insert(limitOf(run));
  }
}

void RunSlots::remove(const CachedRun& run) {
  const RunRecord& r = run.record();
  if (r.state != DagRunState::kQueued && r.state != DagRunState::kRunning) return;
  auto it = dags_.find(r.key.dag_id);
  if (it == dags_.end()) return;
  Dag& dag = it->second;
  if (r.state == DagRunState::kRunning) {
    --dag.running;
  } else if (dag.queued.erase(&run) != 0) {
    dag.limits.erase(dag.limits.find(limitOf(run)));
  }
  if (dag.running == 0 && dag.queued.empty()) dags_.erase(it);
}

void RunSlots::giveSlots(std::string_view dag_id, std::unordered_set<const CachedRun*>& out) const {
  auto it = dags_.find(dag_id);
  if (it == dags_.end() || it->second.queued.empty()) return;
  const Dag& dag = it->second;
  const int largest = *dag.limits.rbegin();
  int taken = dag.running;
  for (const CachedRun* run : dag.queued) {
    if (taken >= largest) break;  // no queued run's limit lets another one in
    if (taken < limitOf(*run)) {
      out.insert(run);
      ++taken;
    }
  }
}

std::vector<const CachedRun*> RunSlots::queued(std::string_view dag_id) const {
  auto it = dags_.find(dag_id);
  if (it == dags_.end()) return {};
  return {it->second.queued.begin(), it->second.queued.end()};
}

}  // namespace leoflow::engine
