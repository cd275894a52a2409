// The leader's in-memory copy of each active run: its record, its instances laid out in the DAG's
// task order, and an incremental planner over them.
//
// A run is reloaded whole when something changed it as a whole (its state, a person's command, a
// guard that did not hold) and at least every full-resync interval. A change that names its task (an
// executor's report, another writer's transition) refreshes that one instance; the scheduler's own
// applied writes are mirrored here exactly as the store applies them. So planning a quiet run costs
// nothing and a busy one costs what changed, whatever its size.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <leoflow/domain.h>
#include <leoflow/store.h>

#include "engine/dag_catalog.h"
#include "engine/run_slots.h"
#include "planning/incremental_planner.h"

namespace leoflow::engine {

/// Running and queued instances over every cached run, kept as each run's own counts change, so the
/// task gauges cost nothing per run (a walk over 100,000 cached runs took ~15 ms a full tick).
struct TaskTotals {
  std::int64_t running = 0;
  std::int64_t queued = 0;
};

class CachedRun {
 public:
  /// Lays out a loaded record against its DAG version. Fails when a task of the DAG has no
  /// instance (a run materialized against another version): the run cannot be planned.
  /// `totals`, when given, must outlive the run: its counts are added there and taken out again
  /// when the run is destroyed. So must `slots`: the run is in them while it lives, as its state is.
  static Result<std::unique_ptr<CachedRun>> build(RunRecord record, std::shared_ptr<const DagVersion> dag,
                                                  std::chrono::steady_clock::time_point loaded_at,
                                                  TaskTotals* totals = nullptr, RunSlots* slots = nullptr);
  ~CachedRun();
  CachedRun(const CachedRun&) = delete;
  CachedRun& operator=(const CachedRun&) = delete;

  const RunRecord& record() const noexcept { return record_; }
  const DagVersion& dag() const noexcept { return *dag_; }
  const std::shared_ptr<const DagVersion>& dagPtr() const noexcept { return dag_; }
  bool materialized() const noexcept { return !instances_.empty() || dag_->dag.size() == 0; }
  const TaskInstance& instance(planning::TaskIndex i) const { return instances_[i]; }
  std::size_t size() const noexcept { return instances_.size(); }
  planning::IncrementalPlanner& planner() { return *planner_; }
  std::chrono::steady_clock::time_point loadedAt() const noexcept { return loaded_at_; }

  /// Mirrors a Store::materializeRun the store accepted, exactly as it wrote it: one instance per
  /// task in `none`, try 1, its max_tries, and the run running since `at`. false (nothing changed)
  /// when the run has instances already or `tasks` are not the DAG's tasks: read the run instead.
  bool materialize(std::span<const NewTaskInstance> tasks, Timestamp at);
  /// Mirrors an applied write exactly as the store applied it (store.h TaskTransitionWrite).
  void applyWrite(planning::TaskIndex i, const TaskTransitionWrite& w, Timestamp at);
  void setRunState(DagRunState state);
  /// Takes a task instance as the store has it now (Store::loadTaskInstances). false when the run
  /// has no such task or is not materialized: reload the run instead.
  bool replaceInstance(const TaskInstance& ti);

  /// Instances waiting in `scheduled` (for executor capacity, or to be queued this tick).
  std::int64_t scheduledCount() const noexcept { return scheduled_; }
  /// When the longest-waiting `scheduled` instance was scheduled; nullopt when none waits. A scan
  /// of the run's instances: the tick asks only when runs compete for capacity.
  std::optional<Timestamp> oldestScheduledAt() const;

  /// Where the DAG's tasks go, once the engine has asked (its routes are fixed for its life, so
  /// the answer is kept with the run).
  struct Routes {
    bool every_task_routable = false;
    std::optional<std::size_t> sole_route;  ///< every task goes to this one executor
  };
  const std::optional<Routes>& routes() const noexcept { return routes_; }
  void setRoutes(Routes routes) noexcept { routes_ = routes; }

  AttemptRef attempt(planning::TaskIndex i) const {
    return AttemptRef{record_.key, dag_->spec.tasks[i].task_id, instances_[i].try_number};
  }

 private:
  CachedRun() = default;
  /// Counts the instances and gives them to the planner (after they were laid out in task order).
  void resetPlanner();
  RunRecord record_;
  std::shared_ptr<const DagVersion> dag_;
  std::vector<TaskInstance> instances_;  // by DAG task index; empty until materialized
  std::optional<planning::IncrementalPlanner> planner_;
  std::chrono::steady_clock::time_point loaded_at_;
  std::optional<Routes> routes_;
  // Instances running, queued and scheduled now, kept as instances change: the first two are this
  // run's share of the task gauges' totals, taken out of them when the run is destroyed.
  std::int64_t running_ = 0;
  std::int64_t queued_ = 0;
  std::int64_t scheduled_ = 0;
  TaskTotals* totals_ = nullptr;
  RunSlots* slots_ = nullptr;
  void count(TaskState state, int sign) noexcept {
    if (state == TaskState::kScheduled) scheduled_ += sign;
    if (state == TaskState::kRunning) {
      running_ += sign;
      if (totals_) totals_->running += sign;
    }
    if (state == TaskState::kQueued) {
      queued_ += sign;
      if (totals_) totals_->queued += sign;
    }
  }
};

}  // namespace leoflow::engine
