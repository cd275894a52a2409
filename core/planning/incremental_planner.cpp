#include "planning/incremental_planner.h"

#include <bit>

namespace leoflow::planning {

IncrementalPlanner::IncrementalPlanner(const CompiledDag& dag)
    : dag_(&dag), tasks_(dag.size()), dirty_((dag.size() + 63) / 64, 0), scheduled_(dirty_.size(), 0) {
  for (TaskIndex i = 0; i < dag.size(); ++i) {
    tasks_[i].upstream.total = static_cast<std::uint32_t>(dag.upstreams(i).size());
    mark(i);
  }
  pending_ = dag.size();
}

void IncrementalPlanner::account(const TaskSlot& t, int sign) noexcept {
  if (pending(t)) pending_ += static_cast<std::uint32_t>(sign);
  if (failing(t)) failing_ += static_cast<std::uint32_t>(sign);
}

void IncrementalPlanner::reset(const RunSnapshot& run) {
  const std::uint32_t n = dag_->size();
  pending_ = 0;
  failing_ = 0;
  for (TaskIndex i = 0; i < n; ++i) {
    TaskSlot& t = tasks_[i];
    t.state = run.states[i];
    t.try_number = run.tryOf(i);
    t.max_tries = run.maxTriesOf(i);
    t.ended_at = run.endedAt(i);
    t.retry_delay_seconds = run.retryDelayOf(i);
    t.outcome = outcomeOf(t.state, t.try_number < t.max_tries);
    t.upstream = UpstreamCounts{};
    t.upstream.total = static_cast<std::uint32_t>(dag_->upstreams(i).size());
    account(t, +1);
    markScheduled(i, t.state == TaskState::kScheduled);
  }
  for (TaskIndex i = 0; i < n; ++i) {
    for (TaskIndex u : dag_->upstreams(i)) tasks_[i].upstream.add(tasks_[u].outcome);
  }
  std::fill(dirty_.begin(), dirty_.end(), ~std::uint64_t{0});
  if (n % 64 != 0) dirty_.back() = (std::uint64_t{1} << (n % 64)) - 1;
}

void IncrementalPlanner::setTask(TaskIndex i, TaskState state, std::int32_t try_number,
                                 std::int32_t max_tries, std::optional<Timestamp> ended_at) {
  TaskSlot& t = tasks_[i];
  account(t, -1);
  const UpstreamOutcome before = t.outcome;
  t.state = state;
  t.try_number = try_number;
  t.max_tries = max_tries;
  t.ended_at = ended_at;
  t.outcome = outcomeOf(state, try_number < max_tries);
  account(t, +1);
  mark(i);
  markScheduled(i, state == TaskState::kScheduled);
  if (t.outcome != before) {
    for (TaskIndex d : dag_->downstreams(i)) {
      UpstreamCounts& c = tasks_[d].upstream;
      c.add(before, -1);
      c.add(t.outcome, +1);
      mark(d);
    }
  }
}

void IncrementalPlanner::setState(TaskIndex i, TaskState state) {
  const TaskSlot& t = tasks_[i];
  setTask(i, state, t.try_number, t.max_tries, t.ended_at);
}

void IncrementalPlanner::setRetryDelay(TaskIndex i, std::int32_t seconds) {
  tasks_[i].retry_delay_seconds = seconds;
  mark(i);
}

std::size_t IncrementalPlanner::plan(std::optional<Timestamp> now, std::vector<Transition>& out,
                                     std::size_t max_queued) {
  out.clear();
  start_moves_.clear();
  std::size_t left_out = 0;
  for (std::size_t w = 0; w < dirty_.size(); ++w) {
    std::uint64_t bits = dirty_[w];
    if (max_queued == 0 && scheduled_[w] != 0) {
      // No more scheduled → queued moves: this word's scheduled tasks are counted, not visited.
      left_out += static_cast<std::size_t>(std::popcount(scheduled_[w]));
      bits &= ~scheduled_[w];
    }
    while (bits != 0) {
      const auto i = static_cast<TaskIndex>(w * 64 + static_cast<std::size_t>(std::countr_zero(bits)));
      bits &= bits - 1;
      const TaskSlot& t = tasks_[i];
      switch (t.state) {
        case TaskState::kFailed:
          if (t.try_number < t.max_tries) {
            out.push_back({i, TaskState::kUpForRetry});
          } else {
            unmark(i);
          }
          break;
        case TaskState::kUpForRetry:
          // Stays marked while it waits: the gate depends on `now`.
          if (readyToRetry(t.ended_at, t.retry_delay_seconds, now)) out.push_back({i, TaskState::kNone});
          break;
        case TaskState::kScheduled:
          if (max_queued == 0) {
            ++left_out;  // the quota ran out within this word
          } else {
            --max_queued;
            start_moves_.push_back({i, TaskState::kQueued});
          }
          break;
        case TaskState::kNone:
          if (auto to = targetOf(evaluateTriggerRule(dag_->rule(i), t.upstream))) {
            start_moves_.push_back({i, *to});
          } else {
            unmark(i);  // waits until an upstream's outcome changes, which marks it again
          }
          break;
        default:
          unmark(i);  // queued, running and terminal tasks are moved by executors, not planned
          break;
      }
    }
  }
  out.insert(out.end(), start_moves_.begin(), start_moves_.end());
  return left_out;
}

FinalizeDecision IncrementalPlanner::finalize() const noexcept {
  if (pending_ > 0) return {};
  return {true, failing_ > 0 ? DagRunState::kFailed : DagRunState::kSuccess};
}

}  // namespace leoflow::planning
