// Engine, reapers: the orphan, agent-lost and dispatch-lost backstops, and the dispatchers'
// reconcile hook (full ticks only). Split from engine.cpp.
#include "engine/engine.h"

#include "engine/engine_internal.h"
#include "planning/reap.h"
#include "schedule/iso_time.h"

namespace leoflow::engine {
namespace {

// Notes written on task instances; the prefixes are the seed's reasons (BEHAVIOUR §4).
constexpr const char* kAgentLostNote = "agent_lost: no heartbeat within the threshold";
constexpr const char* kDispatchLostNote = "dispatch_lost: queued but never handed to an executor";
constexpr const char* kOrphanNote = "orphaned: no scheduler activity within the orphan window";

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Reapers (BEHAVIOUR §4): backstops, each candidate isolated.

void Engine::reapOrphans(TickState& t) {
  auto candidates = store_.listOrphanCandidates(options_.reaper_batch_size);
  if (!candidates) {
    log_->error("orphan reaper failed to list candidates error={}", candidates.status().toString());
    decision("orphan_list_error");
    noteStatus(t, candidates.status());
    return;
  }
  for (const OrphanCandidate& c : *candidates) {
    if (cancelled()) return;
    // A run this leader loads and plans every tick is moved by the planner (a task whose upstreams
    // are all done always decides), so it is never an orphan, however long ago its last stamp is: a
    // retry released to `none` after a long delay is the case BEHAVIOUR §10 item 5 got wrong. The
    // reaper is the backstop for runs the planner cannot move: unloadable, undecodable, stuck.
    if (auto it = runs_.find(c.run); it != runs_.end() && it->second->materialized()) continue;
    if (!planning::isOrphaned(c.last_activity, options_.orphan_threshold, t.now)) continue;
    Status s = store_.reapRun(t.term, c.run, t.now, kOrphanNote);
    if (s.isOk()) {
      ++t.report.reaped;
      decision("orphan_reaped");
      log_->warn("reaped orphan run dag_id={} run_id={} last_activity={}", c.run.dag_id, c.run.run_id,
                 c.last_activity ? schedule::formatIsoSeconds(*c.last_activity) : "none");
      runs_.erase(c.run);
      wake_.runChanged(c.run);
    } else {
      log_->error("reaping orphan run failed dag_id={} run_id={} error={}", c.run.dag_id, c.run.run_id, s.toString());
      decision("orphan_reap_error");
      noteStatus(t, s);
    }
  }
}

void Engine::reapAgentLost(TickState& t) {
  auto candidates = store_.listAgentLostCandidates(options_.reaper_batch_size);
  if (!candidates) {
    log_->error("agent-lost reaper failed to list candidates error={}", candidates.status().toString());
    decision("agent_lost_list_error");
    noteStatus(t, candidates.status());
    return;
  }
  for (const AgentLostCandidate& c : *candidates) {
    if (cancelled()) return;
    if (!planning::isAgentLost(c.last_heartbeat, options_.agent_lost_threshold, t.now)) continue;
    const AttemptRef& a = c.attempt;
    const TaskTransitionWrite w{a.task_id, TaskState::kRunning, a.try_number, TaskState::kFailed, kAgentLostNote,
                                false};
    auto applied = store_.applyTransitions(t.term, a.run, std::span<const TaskTransitionWrite>(&w, 1), t.now);
    if (applied && !applied->empty() && (*applied)[0]) {
      ++t.report.reaped;
      decision("agent_lost");
      recorder_.recordTaskTransition(TaskState::kRunning, TaskState::kFailed, a.run.dag_id);
      log_->warn("task agent silent past threshold; failing as agent_lost dag_id={} run_id={} task_id={} try={}",
                 a.run.dag_id, a.run.run_id, a.task_id, a.try_number);
      wake_.runChanged(a.run);
    } else if (!applied) {
      log_->error("marking task agent-lost failed dag_id={} run_id={} task_id={} error={}", a.run.dag_id,
                  a.run.run_id, a.task_id, applied.status().toString());
      decision("agent_lost_error");
      noteStatus(t, applied.status());
    }
  }
}

void Engine::reapDispatchLost(TickState& t) {
  auto candidates = store_.listDispatchLostCandidates(options_.reaper_batch_size);
  if (!candidates) {
    log_->error("dispatch-lost reaper failed to list candidates error={}", candidates.status().toString());
    decision("dispatch_lost_list_error");
    noteStatus(t, candidates.status());
    return;
  }
  for (const DispatchLostCandidate& c : *candidates) {
    if (cancelled()) return;
    const AttemptRef& a = c.attempt;
    // An attempt this leader still holds, or that an executor accepted, is not lost: its executor
    // reports or its own reconciler fails it (BEHAVIOUR §10 item 7).
    if (pool_->holds(a)) continue;
    if (!planning::isDispatchLost(c.queued_at, options_.dispatch_lost_threshold, t.now)) continue;
    {
      // An attempt an executor accepted gets the threshold again from the hand-over: a pod may
      // pull its image for minutes (BEHAVIOUR §10 item 7), but an executor that took an attempt
      // and then never reported is still found.
      std::lock_guard lock(handed_mutex_);
      auto it = handed_over_.find(a);
      if (it != handed_over_.end() &&
          !planning::isDispatchLost(it->second, options_.dispatch_lost_threshold, t.now)) {
        continue;
      }
    }
    const TaskTransitionWrite w{a.task_id, TaskState::kQueued, a.try_number, TaskState::kFailed, kDispatchLostNote,
                                false};
    auto applied = store_.applyTransitions(t.term, a.run, std::span<const TaskTransitionWrite>(&w, 1), t.now);
    if (applied && !applied->empty() && (*applied)[0]) {
      ++t.report.reaped;
      decision("dispatch_lost");
      recorder_.recordTaskTransition(TaskState::kQueued, TaskState::kFailed, a.run.dag_id);
      log_->warn("task queued past dispatch threshold; failing as dispatch_lost dag_id={} run_id={} task_id={} try={}",
                 a.run.dag_id, a.run.run_id, a.task_id, a.try_number);
      wake_.runChanged(a.run);
    } else if (!applied) {
      log_->error("marking task dispatch-lost failed dag_id={} run_id={} task_id={} error={}", a.run.dag_id,
                  a.run.run_id, a.task_id, applied.status().toString());
      decision("dispatch_lost_error");
      noteStatus(t, applied.status());
    }
  }
}

void Engine::reconcileDispatchers(TickState& t) {
  // dispatcher.h: the leader's hook for executors to find vanished attempts and leftovers.
  for (auto& d : dispatchers_) {
    if (cancelled()) return;
    Status s = d->reconcile();
    if (!s.isOk()) {
      log_->warn("dispatcher reconcile failed plugin={} error={}", d->pluginName(), s.toString());
      decision("reconcile_error");
      ++t.report.errors;
    }
  }
}

}  // namespace leoflow::engine
