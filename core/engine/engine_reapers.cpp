// Engine, reapers: the orphan, unplannable-run, agent-lost and dispatch-lost backstops, and the
// dispatchers' reconcile hook (full ticks only). Split from engine.cpp.
#include "engine/engine.h"

#include <algorithm>
#include <limits>
#include <set>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "engine/engine_internal.h"
#include "engine/task_events_sink.h"
#include "planning/reap.h"
#include "schedule/iso_time.h"

namespace leoflow::engine {
namespace {

// Notes written on task instances; the prefixes are the seed's reasons (BEHAVIOUR §4).
constexpr const char* kAgentLostNote = "agent_lost: no heartbeat within the threshold";
constexpr const char* kDispatchLostNote = "dispatch_lost: queued but never handed to an executor";
constexpr const char* kOrphanNote = "orphaned: no scheduler activity within the orphan window";

/// A walk reads at most this many times the batch size in one tick.
constexpr std::size_t kMaxWalkGrowth = 1024;

/// What a reaper did with one candidate.
enum class Visit : std::uint8_t {
  kSkipped,  ///< stale, but deliberately left alone (held, handed over recently, planned by us)
  kActed,    ///< written (or tried to: a write error counts too)
  kStop,     ///< stop the walk (the tick was cancelled)
};

const AttemptRef& keyOf(const AgentLostCandidate& c) { return c.attempt; }
const AttemptRef& keyOf(const DispatchLostCandidate& c) { return c.attempt; }
const RunKey& keyOf(const OrphanCandidate& c) { return c.run; }

/// Visits a reaper's candidates, oldest first, in batches. The store's list calls take a limit and
/// no cursor, so while every candidate of a full batch was skipped and the newest of them is still
/// due, the walk asks again for twice as many and visits only those it has not seen: a batch of
/// skipped candidates never hides due ones behind it (issue 9 §2). It stops at the first candidate
/// that is not due (the lists are sorted by the stamp `due` reads), when `visit` says so, after a
/// batch it acted on (the next tick goes on from there), or at kMaxWalkGrowth × the batch size.
/// Returns the status of a failed listing.
template <typename Candidate, typename List, typename Due, typename VisitFn>
Status walkCandidates(std::size_t batch, List&& list, Due&& due, VisitFn&& visit) {
  using Key = std::remove_cvref_t<decltype(keyOf(std::declval<const Candidate&>()))>;
  std::size_t limit = std::max<std::size_t>(batch, 1);
  const std::size_t most = limit * kMaxWalkGrowth;
  std::set<Key> seen;
  for (;;) {
    Result<std::vector<Candidate>> candidates = list(limit);
    if (!candidates) return candidates.status();
    bool all_skipped = true;
    for (const Candidate& c : *candidates) {
      if (!seen.insert(keyOf(c)).second) continue;
      if (!due(c)) return {};
      const Visit v = visit(c);
      if (v == Visit::kStop) return {};
      if (v == Visit::kActed) all_skipped = false;
    }
    if (!all_skipped || candidates->size() < limit || limit >= most) return {};
    limit *= 2;
  }
}

/// The seed's log line for a reaper's failure of an attempt (BEHAVIOUR §4.3, §4.4).
std::string_view failedAttemptLog(std::string_view decision_type) {
  if (decision_type == "agent_lost") return "task agent silent past threshold; failing as agent_lost";
  if (decision_type == "dispatch_lost") return "task queued past dispatch threshold; failing as dispatch_lost";
  return "failing attempt";
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Reapers (BEHAVIOUR §4): backstops, each candidate isolated.

std::size_t Engine::handedOverCount() const {
  std::lock_guard lock(handed_mutex_);
  return handed_over_.size();
}

void Engine::forgetRun(const RunKey& key) {
  runs_.erase(key);
  attention_.erase(key);
  if (parked_.erase(key) == 0) unpark_dags_.insert(key.dag_id);  // it may have held a max_active_runs slot
  broken_runs_.erase(key);
  unplannable_.erase(key);
  std::lock_guard lock(handed_mutex_);
  // AttemptRef orders by run first: the run's attempts are one range, starting at the smallest.
  auto it = handed_over_.lower_bound(AttemptRef{key, "", std::numeric_limits<std::int32_t>::min()});
  while (it != handed_over_.end() && it->first.run == key) it = handed_over_.erase(it);
}

bool Engine::failAttempt(TickState& t, const AttemptRef& a, TaskState from, std::string note,
                         const char* decision_type) {
  const TaskTransitionWrite w{a.task_id, from, a.try_number, TaskState::kFailed, std::move(note), false};
  auto applied = store_.applyTransitions(t.term, a.run, std::span<const TaskTransitionWrite>(&w, 1), t.now);
  if (!applied) {
    log_->error("marking task {} failed dag_id={} run_id={} task_id={} try={} error={}", decision_type, a.run.dag_id,
                a.run.run_id, a.task_id, a.try_number, applied.status().toString());
    decision(std::string(decision_type) + "_error");
    noteStatus(t, applied.status());
    return false;
  }
  // Not applied: the row moved first (a late report, another writer) and wins (BEHAVIOUR §4.1).
  if (applied->empty() || !(*applied)[0]) return false;
  ++t.report.reaped;
  decision(decision_type);
  recorder_.recordTaskTransition(from, TaskState::kFailed, a.run.dag_id);
  log_->warn("{} dag_id={} run_id={} task_id={} try={} note=\"{}\"", failedAttemptLog(decision_type), a.run.dag_id,
             a.run.run_id, a.task_id, a.try_number, w.note);
  {
    std::lock_guard lock(handed_mutex_);
    handed_over_.erase(a);  // that attempt is over
  }
  wake_.runChanged(a.run);
  return true;
}

void Engine::reapOrphans(TickState& t) {
  reapUnplannable(t);
  // Listing the candidates reads every running run in the store (100,000 of them make it the
  // slowest part of an idle tick), and a run must be orphaned for a whole threshold before it is
  // reaped: a sweep every tenth of the threshold delays a reaping by at most a tenth.
  const auto every = std::max<std::chrono::microseconds>(
      std::chrono::duration_cast<std::chrono::microseconds>(options_.orphan_threshold) / 10, options_.tick_interval);
  if (last_orphan_sweep_ && t.now - *last_orphan_sweep_ < every) return;
  last_orphan_sweep_ = t.now;
  Status listed = walkCandidates<OrphanCandidate>(
      options_.reaper_batch_size, [&](std::size_t n) { return store_.listOrphanCandidates(n); },
      [&](const OrphanCandidate& c) { return planning::isOrphaned(c.last_activity, options_.orphan_threshold, t.now); },
      [&](const OrphanCandidate& c) {
        if (cancelled()) return Visit::kStop;
        // A run this leader loads and plans every tick is moved by the planner (a task whose
        // upstreams are all done always decides), so it is never an orphan, however long ago its
        // last stamp is: a retry released to `none` after a long delay is the case BEHAVIOUR §10
        // item 5 got wrong. The reaper is the backstop for runs the planner cannot move:
        // unloadable, undecodable, stuck.
        if (auto it = runs_.find(c.run); it != runs_.end() && it->second->materialized()) return Visit::kSkipped;
        Status s = store_.reapRun(t.term, c.run, t.now, kOrphanNote);
        if (s.isOk()) {
          ++t.report.reaped;
          decision("orphan_reaped");
          log_->warn("reaped orphan run dag_id={} run_id={} last_activity={}", c.run.dag_id, c.run.run_id,
                     c.last_activity ? schedule::formatIsoSeconds(*c.last_activity) : "none");
          forgetRun(c.run);
          wake_.runChanged(c.run);
        } else {
          log_->error("reaping orphan run failed dag_id={} run_id={} error={}", c.run.dag_id, c.run.run_id,
                      s.toString());
          decision("orphan_reap_error");
          noteStatus(t, s);
        }
        return Visit::kActed;
      });
  if (!listed.isOk()) {
    log_->error("orphan reaper failed to list candidates error={}", listed.toString());
    decision("orphan_list_error");
    noteStatus(t, listed);
  }
}

void Engine::noteUnplannable(TickState& t, const RunKey& key, DagRunState state, std::string note) {
  if (unplannable_term_ != t.term) {  // a new leadership counts from what it sees itself
    unplannable_.clear();
    unplannable_term_ = t.term;
  }
  auto [it, inserted] = unplannable_.try_emplace(key, Unplannable{t.now, state, note});
  if (!inserted) {
    it->second.state = state;
    it->second.note = std::move(note);
  }
}

void Engine::reapUnplannable(TickState& t) {
  // A run whose DAG version cannot be loaded, or whose instances do not match it, is never planned
  // and (queued, or with a running attempt) never an orphan candidate either: it would hold its
  // max_active_runs slot forever. It gets one orphan threshold from when this leader first saw it
  // so (someone may restore the version), then it fails with a note that says why.
  if (unplannable_term_ != t.term) {
    unplannable_.clear();
    unplannable_term_ = t.term;
  }
  // Only runs still broken: the tick forgets runs that left the active list.
  std::erase_if(unplannable_, [&](const auto& kv) { return broken_runs_.count(kv.first) == 0; });
  std::vector<RunKey> due;
  for (const auto& [key, u] : unplannable_) {
    if (t.now - u.since >= options_.orphan_threshold) due.push_back(key);
  }
  for (const RunKey& key : due) {
    if (cancelled()) return;
    const Unplannable u = unplannable_.at(key);
    // ARCHITECTURE §8.2: queued → failed is a run move of its own; a running run is reaped, its
    // unfinished instances with it (nobody can plan them either; executors stop theirs).
    Status s = u.state == DagRunState::kQueued
                   ? store_.setRunState(t.term, key, DagRunState::kQueued, DagRunState::kFailed, t.now, u.note)
                   : store_.reapRun(t.term, key, t.now, u.note);
    if (s.isOk()) {
      ++t.report.reaped;
      decision("unplannable_reaped");
      log_->warn("failed a run that cannot be planned dag_id={} run_id={} state={} broken_since={} note=\"{}\"",
                 key.dag_id, key.run_id, toString(u.state), schedule::formatIsoSeconds(u.since), u.note);
      forgetRun(key);
      wake_.runChanged(key);
    } else if (s.code() == StatusCode::kConflict) {
      dirty_.insert(key);  // it moved under us (a person's command): look at it again
    } else {
      log_->error("failing unplannable run failed dag_id={} run_id={} error={}", key.dag_id, key.run_id,
                  s.toString());
      decision("unplannable_reap_error");
      noteStatus(t, s);
    }
  }
}

void Engine::reapAgentLost(TickState& t) {
  // Executors' heartbeats go to the store too: while it was unreachable, none could land. Running
  // attempts get a fresh threshold from when the store answered again, or an outage longer than
  // the threshold would fail every healthy task the moment it ends (issue 9 §2). The executors'
  // reports count too: after a store restart a report can fail on a stale connection when the
  // engine's own calls already succeed, and its retry may land only seconds later.
  Timestamp last_outage{std::chrono::microseconds{last_store_outage_us_.load()}};  // the epoch: never
  if (events_ != nullptr) {
    if (auto report = events_->lastUnavailableReport()) last_outage = std::max(last_outage, *report);
  }
  if (last_outage != Timestamp{} && t.now - last_outage < options_.agent_lost_threshold) {
    if (!agent_lost_pause_logged_) {
      agent_lost_pause_logged_ = true;
      log_->warn("agent-lost reaper paused: the store was unreachable (last at {}) and heartbeats could not land; "
                 "running attempts get a fresh threshold of {} ms from its return",
                 schedule::formatIsoSeconds(last_outage), options_.agent_lost_threshold.count());
    }
    return;
  }
  agent_lost_pause_logged_ = false;
  Status listed = walkCandidates<AgentLostCandidate>(
      options_.reaper_batch_size, [&](std::size_t n) { return store_.listAgentLostCandidates(n); },
      [&](const AgentLostCandidate& c) {
        // unstamped: not lost, but no verdict on the ones after it either
        return !c.last_heartbeat || planning::isAgentLost(c.last_heartbeat, options_.agent_lost_threshold, t.now);
      },
      [&](const AgentLostCandidate& c) {
        if (cancelled()) return Visit::kStop;
        if (!c.last_heartbeat) return Visit::kSkipped;
        failAttempt(t, c.attempt, TaskState::kRunning, kAgentLostNote, "agent_lost");
        return Visit::kActed;
      });
  if (!listed.isOk()) {
    log_->error("agent-lost reaper failed to list candidates error={}", listed.toString());
    decision("agent_lost_list_error");
    noteStatus(t, listed);
  }
}

void Engine::reapDispatchLost(TickState& t) {
  const auto threshold = options_.dispatch_lost_threshold;
  Status listed = walkCandidates<DispatchLostCandidate>(
      options_.reaper_batch_size, [&](std::size_t n) { return store_.listDispatchLostCandidates(n); },
      [&](const DispatchLostCandidate& c) {
        return !c.queued_at || planning::isDispatchLost(c.queued_at, threshold, t.now);
      },
      [&](const DispatchLostCandidate& c) {
        if (cancelled()) return Visit::kStop;
        if (!c.queued_at) return Visit::kSkipped;
        const AttemptRef& a = c.attempt;
        // An attempt this leader still holds, or that an executor accepted, is not lost: its
        // executor reports or its own reconciler fails it (BEHAVIOUR §10 item 7).
        if (pool_->holds(a)) return Visit::kSkipped;
        std::string note = kDispatchLostNote;
        {
          // An attempt an executor accepted gets the threshold again from the hand-over: a pod
          // may pull its image for minutes (BEHAVIOUR §10 item 7), but an executor that took an
          // attempt and then never reported is still found — and the note says which one.
          std::lock_guard lock(handed_mutex_);
          if (auto it = handed_over_.find(a); it != handed_over_.end()) {
            if (!planning::isDispatchLost(it->second.at, threshold, t.now)) return Visit::kSkipped;
            note = fmt::format("dispatch_lost: handed to {} at {}, never reported running", it->second.executor,
                               schedule::formatIsoSeconds(it->second.at));
          }
        }
        failAttempt(t, a, TaskState::kQueued, std::move(note), "dispatch_lost");
        return Visit::kActed;
      });
  if (!listed.isOk()) {
    log_->error("dispatch-lost reaper failed to list candidates error={}", listed.toString());
    decision("dispatch_lost_list_error");
    noteStatus(t, listed);
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
