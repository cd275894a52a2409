#include "engine/run_cache.h"

#include <string_view>
#include <unordered_map>

namespace leoflow::engine {

Result<std::unique_ptr<CachedRun>> CachedRun::build(RunRecord record, std::shared_ptr<const DagVersion> dag,
                                                    std::chrono::steady_clock::time_point loaded_at,
                                                    TaskTotals* totals, RunSlots* slots) {
  std::unique_ptr<CachedRun> run(new CachedRun());
  run->totals_ = totals;
  const std::uint32_t n = dag->dag.size();
  // Stores give a run's instances in the order they were materialized, which is the DAG's task order:
  // then they are taken as they are. A new leader lays out every active run, and a lookup table per
  // run was a tenth of that work at 100,000 runs. Any other order, or instances of other tasks too,
  // go through the table.
  const auto in_task_order = [&] {
    if (record.tasks.size() != n) return false;
    for (std::uint32_t i = 0; i < n; ++i) {
      if (record.tasks[i].task_id != dag->dag.id(i)) return false;
    }
    return true;
  };
  if (in_task_order()) {
    run->instances_ = std::move(record.tasks);
  } else if (!record.tasks.empty()) {
    std::unordered_map<std::string_view, std::size_t> by_id;
    for (std::size_t j = 0; j < record.tasks.size(); ++j) by_id.emplace(record.tasks[j].task_id, j);
    std::vector<std::size_t> at(n);
    for (std::uint32_t i = 0; i < n; ++i) {
      auto it = by_id.find(dag->dag.id(i));
      if (it == by_id.end()) {
        return invalidArgument("run " + record.key.dag_id + "/" + record.key.run_id + " has no instance of task " +
                               dag->dag.id(i) + " (dag version " + std::to_string(record.dag_version) + ")");
      }
      at[i] = it->second;
    }
    run->instances_.reserve(n);
    for (std::size_t j : at) run->instances_.push_back(std::move(record.tasks[j]));
  }
  record.tasks.clear();  // the instances live in task order from here on
  run->record_ = std::move(record);
  run->dag_ = std::move(dag);
  run->loaded_at_ = loaded_at;
  run->planner_.emplace(run->dag_->dag);
  run->resetPlanner();
  run->slots_ = slots;
  if (slots) slots->add(*run);
  return run;
}

void CachedRun::resetPlanner() {
  if (instances_.empty()) return;
  const std::uint32_t n = dag_->dag.size();
  // The snapshot's columns, kept between calls (the planner copies them): a new leader builds every
  // active run.
  thread_local std::vector<TaskState> states;
  thread_local std::vector<std::int32_t> tries, max_tries;
  thread_local std::vector<std::optional<Timestamp>> ended;
  states.resize(n);
  tries.resize(n);
  max_tries.resize(n);
  ended.resize(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    const TaskInstance& ti = instances_[i];
    count(ti.state, +1);
    states[i] = ti.state;
    tries[i] = ti.try_number;
    max_tries[i] = ti.max_tries;
    ended[i] = ti.ended_at;
  }
  planning::RunSnapshot snap;
  snap.dag = &dag_->dag;
  snap.states = states;
  snap.tries = tries;
  snap.max_tries = max_tries;
  snap.ended_at = ended;
  snap.retry_delay_seconds = dag_->retry_delay_seconds;
  planner_->reset(snap);
}

bool CachedRun::materialize(std::span<const NewTaskInstance> tasks, Timestamp at) {
  const std::uint32_t n = dag_->dag.size();
  if (!instances_.empty() || tasks.size() != n) return false;
  std::vector<TaskInstance> laid_out(n);
  std::vector<bool> seen(n, false);
  for (const NewTaskInstance& t : tasks) {
    const auto i = dag_->dag.find(t.task_id);
    if (!i || seen[*i]) return false;
    seen[*i] = true;
    TaskInstance& ti = laid_out[*i];
    ti.task_id = t.task_id;
    ti.state = TaskState::kNone;
    ti.try_number = 1;  // §8.5: the first attempt is try 1
    ti.max_tries = t.max_tries;
  }
  instances_ = std::move(laid_out);
  resetPlanner();
  record_.started_at = at;
  setRunState(DagRunState::kRunning);
  return true;
}

CachedRun::~CachedRun() {
  if (slots_) slots_->remove(*this);
  if (totals_) {
    totals_->running -= running_;
    totals_->queued -= queued_;
  }
}

void CachedRun::setRunState(DagRunState state) {
  if (slots_) slots_->remove(*this);
  record_.state = state;
  if (slots_) slots_->add(*this);
}

void CachedRun::applyWrite(planning::TaskIndex i, const TaskTransitionWrite& w, Timestamp at) {
  TaskInstance& ti = instances_[i];
  count(ti.state, -1);
  count(w.to, +1);
  ti.state = w.to;
  if (!w.note.empty()) ti.note = w.note;
  switch (w.to) {
    case TaskState::kScheduled:
      if (w.from == TaskState::kQueued) {
        ti.queued_at.reset();
      } else {
        ti.scheduled_at = at;
      }
      break;
    case TaskState::kQueued: ti.queued_at = at; break;
    case TaskState::kRunning:
      ti.started_at = at;
      ti.last_heartbeat_at = at;
      break;
    case TaskState::kSuccess:
    case TaskState::kFailed:
    case TaskState::kSkipped:
    case TaskState::kUpstreamFailed: ti.ended_at = at; break;
    case TaskState::kNone:
      if (w.from == TaskState::kUpForRetry) {  // the next attempt starts clean
        ++ti.try_number;
        ti.scheduled_at.reset();
        ti.queued_at.reset();
        ti.started_at.reset();
        ti.ended_at.reset();
        ti.last_heartbeat_at.reset();
        ti.exit_code.reset();
        ti.note.clear();
      }
      break;
    case TaskState::kUpForRetry: break;
  }
  if (w.exhaust_retries && w.to == TaskState::kFailed) ti.max_tries = ti.try_number;
  planner_->setTask(i, ti.state, ti.try_number, ti.max_tries, ti.ended_at);
}

std::optional<Timestamp> CachedRun::oldestScheduledAt() const {
  if (scheduled_ == 0) return std::nullopt;
  std::optional<Timestamp> oldest;
  for (const TaskInstance& ti : instances_) {
    if (ti.state != TaskState::kScheduled) continue;
    // An instance without its stamp (data from an older writer) counts as the oldest.
    const Timestamp at = ti.scheduled_at.value_or(Timestamp::min());
    if (!oldest || at < *oldest) oldest = at;
  }
  return oldest;
}

bool CachedRun::replaceInstance(const TaskInstance& ti) {
  if (instances_.empty()) return false;
  const auto i = dag_->dag.find(ti.task_id);
  if (!i) return false;
  count(instances_[*i].state, -1);
  count(ti.state, +1);
  instances_[*i] = ti;
  planner_->setTask(*i, ti.state, ti.try_number, ti.max_tries, ti.ended_at);
  return true;
}

}  // namespace leoflow::engine
