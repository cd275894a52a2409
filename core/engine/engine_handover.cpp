// Engine, hand-over: redispatch of queued attempts on winning leadership, and what dispatch workers
// run (handOver, writeFromWorker). Split from engine.cpp.
#include "engine/engine.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "engine/engine_internal.h"
#include "engine/task_events_sink.h"

namespace leoflow::engine {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

}  // namespace

void Engine::redispatchQueued(TickState& t) {
  // ARCHITECTURE §8.8: on winning leadership every queued attempt is handed over again; dispatch
  // is idempotent per attempt, so one already running is not started twice.
  bool left_over = false;
  for (auto& [key, run] : runs_) {
    if (!run->materialized()) continue;
    for (planning::TaskIndex i = 0; i < run->size(); ++i) {
      if (run->instance(i).state != TaskState::kQueued) continue;
      const AttemptRef attempt = run->attempt(i);
      if (pool_->holds(attempt)) continue;
      {
        std::lock_guard lock(handed_mutex_);
        if (handed_over_.count(attempt) != 0) continue;  // handed over under this term already
      }
      const TaskSpec& spec = run->dag().spec.tasks[i];
      auto route = routeFor(spec);
      if (!route) continue;  // nothing can take it; the dispatch-lost reaper will fail it
      std::optional<std::size_t>* slot = nullptr;
      if (*route != kInlineRoute) {
        slot = &t.route_budget[*route];
        if (!*slot) *slot = routeCapacity(*route);
      }
      if (t.pool_budget == 0 || (slot != nullptr && **slot == 0)) {
        left_over = true;
        continue;
      }
      --t.pool_budget;
      if (slot != nullptr) --**slot;
      DispatchJob job{t.term, *route, DispatchRequest{attempt, spec, run->record().logical_date, run->record().conf_json,
                                                      run->record().uid, run->record().tenant},
                      steady_clock::now()};
      if (pool_->tryEnqueue(std::move(job))) {
        ++t.report.dispatched;
        log_->info("handing queued attempt over again dag_id={} run_id={} task_id={} try={}", key.dag_id, key.run_id,
                   attempt.task_id, attempt.try_number);
      }
    }
  }
  redispatch_pending_ = left_over;
}

// ---------------------------------------------------------------------------------------------------
// Hand-over, on dispatch workers (ARCHITECTURE §8.8, BEHAVIOUR §10 items 4, 11, 33)

void Engine::writeFromWorker(const DispatchJob& job, TaskTransitionWrite write, const char* decision_type) {
  const RunKey& key = job.request.attempt.run;
  auto applied = store_.applyTransitions(job.term, key, std::span<const TaskTransitionWrite>(&write, 1),
                                         clock_.now());
  if (!applied) {
    log_->error("writing hand-over outcome failed dag_id={} run_id={} task_id={} to={} error={}", key.dag_id,
                key.run_id, write.task_id, toString(write.to), applied.status().toString());
    if (applied.status().code() == StatusCode::kFenced) requestStepDown("fenced");
    wake_.runChanged(key);
    return;
  }
  if (!applied->empty() && (*applied)[0]) {
    decision(decision_type);
    recorder_.recordTaskTransition(write.from, write.to, key.dag_id);
  }
  // This thread does not touch the cache: the loop refreshes the one instance written (its feed
  // echo carries this leader's term and is skipped, wake_signal.h). A write refused because the row
  // had moved names the same task: whoever moved it published that change too.
  wake_.taskChanged(key, write.task_id);
}

void Engine::handOver(DispatchJob& job, const std::atomic<bool>& cancelled) {
  const AttemptRef& a = job.request.attempt;
  const RunKey& key = a.run;
  auto given_up = [&] { return handOverGivenUp(job, cancelled); };
  if (events_ != nullptr) events_->noteHandedOver(a, job.request.task.type, job.request.tenant);
  milliseconds backoff = options_.dispatch_retry_backoff;
  Status last;
  const int limit = std::max(options_.dispatch_retry_limit, 1);
  for (int attempt = 1; attempt <= limit; ++attempt) {
    // The attempt stays queued when this replica gives up: the next leader hands it over.
    if (!awaitConfirmedLeadership(job, cancelled)) return;
    bool accepted = false;
    bool at_capacity = false;
    if (job.route == kInlineRoute) {
      auto started = inline_runner_->start(job.request);
      if (started) {
        accepted = *started;
        at_capacity = !*started;
      } else {
        last = started.status();
      }
    } else {
      auto outcome = dispatchers_[job.route]->dispatch(job.request);
      if (outcome) {
        accepted = *outcome != DispatchOutcome::kAtCapacity;
        at_capacity = *outcome == DispatchOutcome::kAtCapacity;
      } else {
        last = outcome.status();
      }
    }
    if (accepted) {
      recorder_.observeDispatchLatency(duration_cast<microseconds>(steady_clock::now() - job.enqueued_at));
      {
        // Who took it, for the dispatch-lost reaper's note ("handed to <plugin> at <time>").
        HandOver handed{clock_.now(), job.route == kInlineRoute ? inline_runner_->pluginName()
                                                                : dispatchers_[job.route]->pluginName()};
        std::lock_guard lock(handed_mutex_);
        handed_over_[a] = std::move(handed);
      }
      log_->debug("attempt handed over dag_id={} run_id={} task_id={} try={}", key.dag_id, key.run_id, a.task_id,
                  a.try_number);
      return;
    }
    if (at_capacity) {
      // §8.8: refused for capacity after all: back to scheduled (the one use of queued → scheduled).
      writeFromWorker(job, {a.task_id, TaskState::kQueued, a.try_number, TaskState::kScheduled, "", false},
                      "dispatch_at_capacity");
      return;
    }
    if (last.code() == StatusCode::kInvalidArgument) {
      // The executor says this task can never run: fail it for good, without consuming retries.
      writeFromWorker(job,
                      {a.task_id, TaskState::kQueued, a.try_number, TaskState::kFailed,
                       "dispatch_failed: " + last.message(), true},
                      "dispatch_failed");
      recorder_.recordUndispatchable("rejected");
      return;
    }
    log_->warn("dispatch failed dag_id={} run_id={} task_id={} try={} attempt={} of={} error={}", key.dag_id,
               key.run_id, a.task_id, a.try_number, attempt, limit, last.toString());
    if (attempt == limit) break;
    // Back off, but notice a step-down or shutdown within a few milliseconds.
    const auto until = steady_clock::now() + backoff;
    while (steady_clock::now() < until) {
      if (given_up()) return;
      std::this_thread::sleep_for(std::min<milliseconds>(milliseconds{5}, backoff));
    }
    backoff *= 2;
  }
  // BEHAVIOUR §10 item 11: a bounded number of tries, then an ordinary failure (retries apply).
  writeFromWorker(job,
                  {a.task_id, TaskState::kQueued, a.try_number, TaskState::kFailed,
                   fmt::format("dispatch_failed: {} (after {} attempts)", last.message(), limit), false},
                  "dispatch_failed");
}

}  // namespace leoflow::engine
