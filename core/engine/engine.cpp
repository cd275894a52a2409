#include "engine/engine.h"

#include <algorithm>
#include <condition_variable>
#include <thread>

#include <fmt/format.h>

#include "planning/reap.h"
#include "schedule/due_slots.h"
#include "schedule/iso_time.h"

namespace leoflow::engine {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::int64_t steadyMicros() {
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}


// Notes written on task instances; the prefixes are the seed's reasons (BEHAVIOUR §4).
constexpr const char* kAgentLostNote = "agent_lost: no heartbeat within the threshold";
constexpr const char* kDispatchLostNote = "dispatch_lost: queued but never handed to an executor";
constexpr const char* kOrphanNote = "orphaned: no scheduler activity within the orphan window";

}  // namespace

struct Engine::TickState {
  TickKind kind = TickKind::kFull;
  Term term = 0;
  Timestamp now{};
  steady_clock::time_point steady_now;
  TickReport report;
  std::size_t pool_budget = 0;
  std::vector<std::optional<std::size_t>> route_budget;  // lazily asked once per tick
  std::optional<std::size_t> inline_budget;
  std::map<std::string, int> active_per_dag;
  bool active_listed = false;
  std::vector<planning::Transition> plan;
  std::vector<TaskTransitionWrite> writes;
  std::vector<planning::TaskIndex> write_tasks;
  std::vector<std::size_t> write_routes;
  std::vector<RunKey> finished;
};

Engine::Engine(EngineDeps deps, EngineOptions options, WakeSignal& wake)
    : options_(std::move(options)),
      store_(*deps.store, deps.store_plugin),
      leader_(*deps.leader, deps.leader_plugin),
      clock_(*deps.clock),
      log_(deps.logger),
      wake_(wake),
      catalog_(store_, std::move(deps.decode_dag)) {
  for (DispatcherRoute& route : deps.dispatchers) {
    auto guarded = std::make_unique<GuardedDispatcher>(*route.dispatcher, route.plugin);
    // A route takes the types both its config and its plugin allow; empty on either side = any.
    std::vector<std::string> supported = guarded->taskTypes();
    std::vector<std::string> types;
    if (route.task_types.empty()) {
      types = supported;
    } else if (supported.empty()) {
      types = route.task_types;
    } else {
      for (const auto& t : route.task_types) {
        if (std::find(supported.begin(), supported.end(), t) != supported.end()) types.push_back(t);
      }
      if (types.empty()) {
        log_->warn("dispatcher takes none of its configured task types plugin={} configured={}", route.plugin,
                   fmt::join(route.task_types, ","));
        types.push_back("\x01never");  // matches no task type
      }
    }
    route_types_.push_back(std::move(types));
    dispatchers_.push_back(std::move(guarded));
  }
  if (deps.inline_runner != nullptr) {
    inline_runner_ = std::make_unique<GuardedInlineRunner>(*deps.inline_runner, deps.inline_runner_plugin);
  }
  if (deps.recorder != nullptr) recorder_.add(*deps.recorder);
  pool_ = std::make_unique<DispatchPool>(options_.dispatch_pool_size, options_.dispatch_queue_size,
                                         [this](DispatchJob& job, const std::atomic<bool>& cancelled) {
                                           handOver(job, cancelled);
                                         });
}

Engine::~Engine() { pool_->drainAndStop(milliseconds{0}); }

// ---------------------------------------------------------------------------------------------------
// Leadership (BEHAVIOUR §5.2, ARCHITECTURE §8.7)

Result<bool> Engine::campaignOnce() {
  if (leading_) return true;
  std::lock_guard lock(leader_mutex_);
  auto won = leader_.tryAcquire();
  if (!won) {
    log_->error("acquiring leadership failed error={}", won.status().toString());
    return won.status();
  }
  if (!*won) return false;
  auto term = store_.claimTerm(options_.replica_id);
  if (!term) {
    // Leading without a term would make every write fail; give the lock back and try again later.
    log_->error("claiming a term failed; releasing leadership error={}", term.status().toString());
    (void)leader_.release();
    return term.status();
  }
  // The term is tied to the lock: a replica that lost the lock while claiming (a pause, a slow
  // store) must not make a single decision under the term it just claimed.
  auto still = leader_.check();
  if (!still || !*still) {
    log_->warn("leadership lost while claiming a term; not leading term={} error={}", *term,
               still ? std::string("lock_released") : still.status().toString());
    if (!still) (void)leader_.release();
    return still ? Result<bool>(false) : Result<bool>(still.status());
  }
  term_ = *term;
  check_interval_us_ = duration_cast<microseconds>(leader_.checkInterval()).count();
  leadership_confirmed_us_ = steadyMicros();
  failed_checks_ = 0;
  stepdown_requested_ = false;
  reload_everything_ = true;
  redispatch_pending_ = true;  // §8.8: every queued attempt is handed over again
  last_tick_us_ = 0;           // a fresh start-up grace for health
  leading_since_us_ = duration_cast<microseconds>(clock_.now().time_since_epoch()).count();
  last_full_tick_ = {};
  leading_ = true;
  if (stepped_down_at_) {
    recorder_.observeSchedulerReacquire(duration_cast<microseconds>(steady_clock::now() - *stepped_down_at_));
  }
  log_->info("became scheduler leader replica={} term={}", options_.replica_id, *term);
  wake_.poke();
  return true;
}

bool Engine::checkLeadershipOnce() {
  if (!leading_ || stepdown_requested_) return leading_ && !stepdown_requested_;
  Result<bool> held = [&] {
    std::lock_guard lock(leader_mutex_);
    return leader_.check();
  }();
  if (held.isOk() && *held) {
    failed_checks_ = 0;
    leadership_confirmed_us_ = steadyMicros();
    return true;
  }
  if (held.isOk()) {
    log_->warn("lost scheduler leadership; stepping down reason=lock_released");
    requestStepDown("lock_released");
    return false;
  }
  ++failed_checks_;
  log_->warn("leadership check failed consecutive={} error={}", failed_checks_, held.status().toString());
  if (failed_checks_ >= options_.max_leader_check_failures) {
    log_->warn("too many failed leadership checks; stepping down reason=check_timeout consecutive_failures={}",
               failed_checks_);
    requestStepDown("check_timeout");
    return false;
  }
  return true;
}

void Engine::requestStepDown(const std::string& reason) {
  {
    std::lock_guard lock(stepdown_mutex_);
    if (!stepdown_requested_) stepdown_reason_ = reason;
  }
  stepdown_requested_ = true;
  wake_.poke();
}

void Engine::stepDown(const std::string& reason) {
  if (!leading_) return;
  leading_ = false;
  stepdown_requested_ = false;
  pool_->cancelAll();  // the next leader hands every queued attempt over again
  runs_.clear();
  broken_runs_.clear();
  dirty_.clear();
  {
    std::lock_guard lock(handed_mutex_);
    handed_over_.clear();
  }
  recorder_.recordSchedulerStepDown(reason);
  // A lost lock or a newer term means someone else leads: releasing could only hurt them.
  if (reason != "lock_released" && reason != "fenced") {
    std::lock_guard lock(leader_mutex_);
    Status s = leader_.release();
    if (!s.isOk()) log_->error("releasing leadership failed error={}", s.toString());
  }
  stepped_down_at_ = steady_clock::now();
  log_->warn("stepped down as scheduler leader reason={} term={}", reason, term_.load());
}

Health Engine::health() const {
  Health h;
  const std::int64_t last = last_tick_us_.load();
  if (last != 0) h.last_tick = Timestamp{microseconds{last}};
  if (!leading_) return h;  // a follower is correctly idle
  // A new leader's grace runs from winning, so a first tick that hangs is noticed too.
  const Timestamp since = last != 0 ? *h.last_tick : Timestamp{microseconds{leading_since_us_.load()}};
  const auto bound = options_.effectiveStepTimeout() + 2 * options_.tick_interval;
  h.healthy = clock_.now() - since <= bound;
  return h;
}

bool Engine::cancelled() const { return stepdown_requested_ || tick_timed_out_; }

void Engine::noteStatus(TickState& t, const Status& s) {
  ++t.report.errors;
  if (s.code() == StatusCode::kFenced) {
    log_->warn("a newer leader claimed the store; stepping down reason=fenced term={}", t.term);
    requestStepDown("fenced");
  }
}

// ---------------------------------------------------------------------------------------------------
// The loop

void Engine::watchdogLoop(std::stop_token stop) {
  std::mutex m;
  std::condition_variable_any cv;
  auto next_check = steady_clock::now();
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(m);
      cv.wait_for(lock, stop, milliseconds{20}, [] { return false; });
    }
    // The step timeout (BEHAVIOUR §2.2): a tick past it is cut short at its next unit of work and
    // reported; the loop and health show it.
    const std::int64_t started = tick_started_us_.load();
    if (started != 0 && !tick_timed_out_ &&
        steadyMicros() - started > duration_cast<microseconds>(options_.effectiveStepTimeout()).count()) {
      tick_timed_out_ = true;
      log_->error("scheduler tick exceeded the step timeout step_timeout_ms={}",
                  options_.effectiveStepTimeout().count());
      decision("step_timeout");
    }
    if (leading_ && !stepdown_requested_ && steady_clock::now() >= next_check) {
      checkLeadershipOnce();
      next_check = steady_clock::now() + leader_.checkInterval();
    }
  }
}

void Engine::run(std::stop_token stop) {
  std::atomic<bool> stopping{false};
  std::stop_callback on_stop(stop, [&] {
    stopping = true;
    requestStepDown("shutdown");
  });
  bool subscribed = false;
  auto subscribe = [&] {
    Status s = store_.subscribe(wake_);
    subscribed = s.isOk();
    if (!subscribed) log_->warn("change feed unavailable; ticking only error={}", s.toString());
  };
  subscribe();
  std::jthread watchdog([this](std::stop_token st) { watchdogLoop(st); });
  std::mutex m;
  std::condition_variable_any idle;

  while (!stopping) {
    if (stepdown_requested_) {
      std::string reason;
      {
        std::lock_guard lock(stepdown_mutex_);
        reason = stepdown_reason_;
      }
      if (reason == "shutdown") break;
      stepDown(reason);
    }
    if (!leading_) {
      auto won = campaignOnce();
      if (!won.isOk() || !*won) {
        std::unique_lock lock(m);
        idle.wait_for(lock, stop, leader_.checkInterval(), [] { return false; });
        if (!subscribed) subscribe();
      }
      continue;
    }
    const auto since_full = steady_clock::now() - last_full_tick_;
    const TickKind kind = since_full >= options_.tick_interval ? TickKind::kFull : TickKind::kQuick;
    const TickReport report = tick(kind);
    if (kind == TickKind::kFull && !subscribed) subscribe();
    // Work begets work: a tick that moved something runs the next one at once, so a chain of
    // tasks advances at executor speed, not at tick speed.
    if (report.progressed() || !dirty_.empty()) continue;
    const auto wait = options_.tick_interval - duration_cast<milliseconds>(steady_clock::now() - last_full_tick_);
    if (wait > milliseconds{0}) wake_.waitFor(wait);
  }

  // ARCHITECTURE §8.11: stop planning, drain the pool within the grace, release leadership.
  log_->info("scheduler shutting down; draining dispatch pool grace_ms={}", options_.shutdown_grace.count());
  pool_->drainAndStop(options_.shutdown_grace);
  if (leading_) stepDown("shutdown");
  for (auto& d : dispatchers_) d->shutdown();
  if (inline_runner_) inline_runner_->shutdown();
  watchdog.request_stop();
  watchdog.join();
  if (subscribed) store_.unsubscribe();
  log_->info("scheduler stopped");
}

bool Engine::waitForDispatchIdle(milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  while (pool_->depth() > 0) {
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds{1});
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------
// One tick

TickReport Engine::tick(TickKind kind) {
  const auto steady_start = steady_clock::now();
  if (stepdown_requested_) {
    std::string reason;
    {
      std::lock_guard lock(stepdown_mutex_);
      reason = stepdown_reason_;
    }
    if (reason != "shutdown") stepDown(reason);
  }
  if (!leading_) {
    // BEHAVIOUR §2.3 (#208): a follower reads and writes nothing.
    last_tick_us_ = duration_cast<microseconds>(clock_.now().time_since_epoch()).count();
    return {};
  }
  tick_timed_out_ = false;
  tick_started_us_ = steadyMicros();

  TickState t;
  t.kind = kind;
  t.term = term_;
  t.now = clock_.now();
  t.steady_now = steady_start;
  t.report.led = true;
  t.pool_budget = pool_->freeSlots();
  t.route_budget.assign(dispatchers_.size(), std::nullopt);

  // 1. Which runs to (re)load: what changed, plus everything on full ticks that is new or stale.
  WakeSignal::Drained drained = wake_.drain();
  dirty_.insert(drained.runs.begin(), drained.runs.end());
  if (drained.everything) reload_everything_ = true;
  std::vector<RunKey> to_load;
  if (kind == TickKind::kFull || reload_everything_) {
    auto active = store_.listActiveRuns();
    if (!active) {
      // BEHAVIOUR §10 item 13: a failed listing skips planning, not run creation or the reapers.
      log_->error("listing active runs failed error={}", active.status().toString());
      decision("active_runs_list_error");
      noteStatus(t, active.status());
    } else {
      std::set<RunKey> listed;
      for (const ActiveRun& a : *active) {
        listed.insert(a.key);
        ++t.active_per_dag[a.key.dag_id];
        auto it = runs_.find(a.key);
        if (it == runs_.end() || reload_everything_ || dirty_.count(a.key) != 0 ||
            steady_start - it->second->loadedAt() >= options_.full_resync_interval) {
          to_load.push_back(a.key);
          dirty_.erase(a.key);
        }
      }
      t.active_listed = true;
      std::erase_if(runs_, [&](const auto& kv) { return listed.count(kv.first) == 0; });
      std::erase_if(broken_runs_, [&](const auto& kv) { return listed.count(kv.first) == 0; });
      reload_everything_ = false;
    }
  }
  if (kind == TickKind::kFull) {
    // As in Airflow, a paused DAG's runs schedule no new tasks; what runs finishes and reports.
    if (auto dags = store_.listDags()) {
      paused_dags_.clear();
      for (const DagSummary& d : *dags) {
        if (d.paused) paused_dags_.insert(d.dag_id);
      }
    } else {
      log_->warn("listing dags failed; keeping the last known pauses error={}", dags.status().toString());
    }
  }
  to_load.insert(to_load.end(), dirty_.begin(), dirty_.end());
  dirty_.clear();
  if (!to_load.empty() && !cancelled()) loadRuns(t, to_load);

  // 2. A new leader first hands over what its predecessor left queued (before this tick queues
  // anything of its own), then plans and writes every cached run, each isolated from the others.
  if (redispatch_pending_ && t.active_listed && !cancelled()) redispatchQueued(t);
  for (auto& [key, run] : runs_) {
    if (cancelled()) break;
    try {
      advanceRun(t, *run);
    } catch (const std::exception& e) {
      log_->error("advancing run failed dag_id={} run_id={} error={}", key.dag_id, key.run_id, e.what());
      decision("run_error");
      ++t.report.errors;
      dirty_.insert(key);
    }
  }
  for (const RunKey& k : t.finished) {
    runs_.erase(k);
    std::lock_guard lock(handed_mutex_);
    std::erase_if(handed_over_, [&](const auto& kv) { return kv.first.run == k; });
  }

  // 3. Full ticks: new runs from schedules, the reapers, the liveness record.
  if (kind == TickKind::kFull) {
    last_full_tick_ = steady_start;
    if (t.active_listed && !cancelled()) createDueRuns(t);
    if (!cancelled()) reapOrphans(t);
    if (!cancelled()) reapAgentLost(t);
    if (!cancelled()) reapDispatchLost(t);
    if (!cancelled()) reconcileDispatchers(t);
    if (!cancelled()) recordLiveness(t);
  }

  t.report.timed_out = tick_timed_out_;
  tick_started_us_ = 0;
  last_tick_us_ = duration_cast<microseconds>(clock_.now().time_since_epoch()).count();
  recorder_.setDispatchQueueDepth(static_cast<std::int64_t>(pool_->depth()));
  recorder_.observeTickDuration(duration_cast<microseconds>(steady_clock::now() - steady_start));
  return t.report;
}

void Engine::loadRuns(TickState& t, const std::vector<RunKey>& keys) {
  std::vector<Result<RunRecord>> loaded = store_.loadRuns(keys);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const RunKey& key = keys[i];
    if (i >= loaded.size()) {
      dirty_.insert(key);
      continue;
    }
    Result<RunRecord>& r = loaded[i];
    auto fail = [&](const std::string& why) {
      runs_.erase(key);
      // Log once per distinct reason: a poison run must not flood the log every tick.
      auto [it, inserted] = broken_runs_.try_emplace(key, why);
      if (inserted || it->second != why) {
        it->second = why;
        log_->error("run cannot be planned dag_id={} run_id={} error={}", key.dag_id, key.run_id, why);
      }
      decision("run_error");
      ++t.report.errors;
    };
    if (!r) {
      if (r.status().code() == StatusCode::kNotFound) {
        runs_.erase(key);
        continue;
      }
      if (r.status().code() == StatusCode::kUnavailable) dirty_.insert(key);
      fail(r.status().toString());
      continue;
    }
    if (isTerminal(r->state)) {  // finished since we last looked
      runs_.erase(key);
      broken_runs_.erase(key);
      continue;
    }
    auto dag = catalog_.get(key.dag_id, r->dag_version);
    if (!dag) {
      fail(dag.status().message());
      continue;
    }
    auto built = CachedRun::build(std::move(r).value(), *dag, t.steady_now);
    if (!built) {
      fail(built.status().message());
      continue;
    }
    broken_runs_.erase(key);
    runs_[key] = std::move(built).value();
  }
}

// ---------------------------------------------------------------------------------------------------
// Advancing one run (BEHAVIOUR §2.4, ARCHITECTURE §8.8)

std::optional<std::size_t> Engine::routeFor(const TaskSpec& task) const {
  // BEHAVIOUR §2.4: inline http_api tasks go to the inline runner when there is one; otherwise they
  // take the ordinary dispatch path like any task.
  if (task.type == "http_api" && task.execution_mode == ExecutionMode::kInline && inline_runner_) {
    return kInlineRoute;
  }
  for (std::size_t r = 0; r < route_types_.size(); ++r) {
    const auto& types = route_types_[r];
    if (types.empty() || std::find(types.begin(), types.end(), task.type) != types.end()) return r;
  }
  return std::nullopt;
}

std::size_t Engine::routeCapacity(std::size_t route) const {
  const std::size_t free = dispatchers_[route]->freeCapacity();
  const std::size_t pending = pool_->inFlight(route);  // handed to the pool, not yet to the dispatcher
  return free > pending ? free - pending : 0;
}

void Engine::materialize(TickState& t, CachedRun& run) {
  const RunKey& key = run.record().key;
  const DagVersion& dag = run.dag();
  if (dag.dag.size() == 0) {
    // ARCHITECTURE §8.2: a run with no tasks goes straight from queued to success.
    Status s = store_.setRunState(t.term, key, DagRunState::kQueued, DagRunState::kSuccess, t.now, "");
    if (s.isOk()) {
      ++t.report.runs_finalized;
      t.finished.push_back(key);
      log_->info("run finished dag_id={} run_id={} state=success tasks=0", key.dag_id, key.run_id);
    } else {
      noteStatus(t, s);
      dirty_.insert(key);
    }
    return;
  }
  std::vector<NewTaskInstance> tasks;
  tasks.reserve(dag.spec.tasks.size());
  for (const TaskSpec& spec : dag.spec.tasks) tasks.push_back({spec.task_id, spec.maxTries()});
  Status s = store_.materializeRun(t.term, key, tasks, t.now);
  if (s.isOk()) {
    ++t.report.writes_applied;
    log_->info("run started dag_id={} run_id={} tasks={}", key.dag_id, key.run_id, tasks.size());
  } else if (s.code() != StatusCode::kConflict) {
    log_->error("materializing run failed dag_id={} run_id={} error={}", key.dag_id, key.run_id, s.toString());
    decision("run_error");
    noteStatus(t, s);
  }
  dirty_.insert(key);  // read the instances back (or whatever won the race)
}

void Engine::advanceRun(TickState& t, CachedRun& run) {
  const RunKey& key = run.record().key;
  if (run.record().state == DagRunState::kQueued) {
    materialize(t, run);
    return;
  }
  if (!run.materialized()) {
    log_->error("run is running without task instances dag_id={} run_id={}", key.dag_id, key.run_id);
    decision("run_error");
    ++t.report.errors;
    return;
  }
  if (paused_dags_.count(key.dag_id) != 0) {
    finalize(t, run);
    return;
  }
  ++t.report.runs_planned;
  run.planner().plan(t.now, t.plan);
  t.writes.clear();
  t.write_tasks.clear();
  t.write_routes.clear();
  for (const planning::Transition& tr : t.plan) {
    const TaskInstance& ti = run.instance(tr.task);
    const TaskSpec& spec = run.dag().spec.tasks[tr.task];
    TaskTransitionWrite w{spec.task_id, ti.state, ti.try_number, tr.to, "", false};
    std::size_t route = 0;
    if (tr.to == TaskState::kQueued) {
      auto r = routeFor(spec);
      if (!r) {
        // BEHAVIOUR §10 item 9: a task no executor can take fails at once, for good.
        w.to = TaskState::kFailed;
        w.exhaust_retries = true;
        w.note = fmt::format("no executor available for a \"{}\" task: no configured dispatcher takes this task type",
                             spec.type);
        recorder_.recordUndispatchable("no_executor");
        log_->warn("task has no available executor; failing it dag_id={} run_id={} task_id={} task_type={} "
                   "reason=no_executor",
                   key.dag_id, key.run_id, spec.task_id, spec.type);
      } else {
        // ARCHITECTURE §8.8: no more queued than the pool and the executor can take.
        std::size_t* budget = nullptr;
        if (*r == kInlineRoute) {
          if (!t.inline_budget) t.inline_budget = static_cast<std::size_t>(-1);
          budget = &*t.inline_budget;
        } else {
          auto& slot = t.route_budget[*r];
          if (!slot) slot = routeCapacity(*r);
          budget = &*slot;
        }
        if (*budget == 0 || t.pool_budget == 0) {
          ++t.report.backpressured;
          decision("backpressure");
          continue;
        }
        --*budget;
        --t.pool_budget;
        route = *r;
      }
    }
    t.writes.push_back(std::move(w));
    t.write_tasks.push_back(tr.task);
    t.write_routes.push_back(route);
  }

  if (!t.writes.empty()) {
    auto applied = store_.applyTransitions(t.term, key, t.writes, t.now);
    if (!applied) {
      log_->error("writing transitions failed dag_id={} run_id={} error={}", key.dag_id, key.run_id,
                  applied.status().toString());
      decision("run_error");
      noteStatus(t, applied.status());
      dirty_.insert(key);
      return;
    }
    for (std::size_t i = 0; i < t.writes.size(); ++i) {
      const TaskTransitionWrite& w = t.writes[i];
      if (i >= applied->size() || !(*applied)[i]) {
        dirty_.insert(key);  // the row moved under us (an executor report): re-read it
        continue;
      }
      const planning::TaskIndex task = t.write_tasks[i];
      run.applyWrite(task, w, t.now);
      ++t.report.writes_applied;
      decision(w.from == TaskState::kUpForRetry && w.to == TaskState::kNone ? "retry" : toString(w.to));
      recorder_.recordTaskTransition(w.from, w.to, key.dag_id);
      log_->debug("task moved dag_id={} run_id={} task_id={} try={} from={} to={}", key.dag_id, key.run_id,
                  w.task_id, run.instance(task).try_number, toString(w.from), toString(w.to));
      if (w.to == TaskState::kQueued) {
        DispatchJob job;
        job.term = t.term;
        job.route = t.write_routes[i];
        job.request = DispatchRequest{run.attempt(task), run.dag().spec.tasks[task], run.record().logical_date,
                                      run.record().conf_json};
        job.enqueued_at = steady_clock::now();
        if (pool_->tryEnqueue(std::move(job))) {
          ++t.report.dispatched;
        } else {
          // Only a stopping pool refuses within budget; the attempt stays queued for the next leader.
          log_->warn("dispatch pool refused an attempt dag_id={} run_id={} task_id={}", key.dag_id, key.run_id,
                     w.task_id);
        }
      }
    }
  }
  finalize(t, run);
}

void Engine::finalize(TickState& t, CachedRun& run) {
  const planning::FinalizeDecision verdict = run.planner().finalize();
  if (!verdict.done) return;
  const RunKey& key = run.record().key;
  Status s = store_.setRunState(t.term, key, DagRunState::kRunning, verdict.state, t.now, "");
  if (s.isOk()) {
    ++t.report.runs_finalized;
    run.setRunState(verdict.state);
    t.finished.push_back(key);
    log_->info("run finished dag_id={} run_id={} state={}", key.dag_id, key.run_id, toString(verdict.state));
  } else {
    if (s.code() != StatusCode::kConflict) {
      log_->error("finalizing run failed dag_id={} run_id={} error={}", key.dag_id, key.run_id, s.toString());
      decision("run_error");
    }
    noteStatus(t, s);
    dirty_.insert(key);
  }
}

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
      DispatchJob job{t.term, *route, DispatchRequest{attempt, spec, run->record().logical_date, run->record().conf_json},
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
  } else if (!applied->empty() && (*applied)[0]) {
    decision(decision_type);
    recorder_.recordTaskTransition(write.from, write.to, key.dag_id);
  }
  wake_.runChanged(key);
}

void Engine::handOver(DispatchJob& job, const std::atomic<bool>& cancelled) {
  const AttemptRef& a = job.request.attempt;
  const RunKey& key = a.run;
  auto given_up = [&] { return cancelled.load() || !leading_ || stepdown_requested_ || term_ != job.term; };
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
        std::lock_guard lock(handed_mutex_);
        handed_over_[a] = clock_.now();
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

bool Engine::awaitConfirmedLeadership(const DispatchJob& job, const std::atomic<bool>& cancelled) {
  // The watchdog confirms every check interval; twice that is overdue yet still inside a lease
  // (store-redis: lease = 3 intervals).
  const std::int64_t fresh_for = 2 * check_interval_us_.load();
  while (true) {
    if (cancelled.load() || !leading_ || stepdown_requested_ || term_ != job.term) return false;
    if (steadyMicros() - leadership_confirmed_us_.load() <= fresh_for) return true;
    // Overdue: the process was paused, or the watchdog is stuck on a slow check. Whether another
    // replica leads now is unknown until the watchdog's next check answers.
    std::this_thread::sleep_for(milliseconds{2});
  }
}

// ---------------------------------------------------------------------------------------------------
// Run creation (BEHAVIOUR §3.2, §3.6 with §10 items 21-28 fixed)

void Engine::createDueRuns(TickState& t) {
  auto dags = store_.scheduledDags();
  if (!dags) {
    log_->error("listing scheduled dags failed error={}", dags.status().toString());
    decision("scheduled_dags_list_error");
    noteStatus(t, dags.status());
    return;
  }
  std::vector<Timestamp> slots;
  for (const ScheduledDag& d : *dags) {
    if (cancelled()) return;
    try {
      const auto& parsed = schedules_.get(d.schedule, d.schedule_timezone);
      if (!parsed) {
        // Warn once per bad expression, not every tick (BEHAVIOUR §3.2 step 3).
        auto& warned = warned_schedules_[d.dag_id];
        if (warned != d.schedule) {
          warned = d.schedule;
          log_->warn("dag has an unparseable schedule; it will not run on a schedule until fixed dag_id={} "
                     "schedule=\"{}\" error={}",
                     d.dag_id, d.schedule, parsed.status().message());
        }
        continue;
      }
      const schedule::Schedule& sched = *parsed;
      const int active = t.active_per_dag[d.dag_id];
      int created = 0;
      auto headroom = [&] { return d.max_active_runs <= 0 || active + created < d.max_active_runs; };
      auto create = [&](Timestamp logical, const std::string& run_id) -> bool {
        NewRun run{{d.dag_id, run_id}, d.version, RunTrigger::kScheduled, logical, "", t.now};
        Status s = store_.createRun(t.term, run);
        if (s.isOk()) {
          ++created;
          ++t.report.runs_created;
          decision("create_run");
          log_->info("run created dag_id={} run_id={} logical_date={}", d.dag_id, run_id,
                     schedule::formatIsoSeconds(logical));
          return true;
        }
        if (s.code() == StatusCode::kAlreadyExists) return true;  // another leader or tick made it
        log_->error("creating scheduled run failed dag_id={} run_id={} error={}", d.dag_id, run_id, s.toString());
        decision("create_run_error");
        noteStatus(t, s);
        return s.code() != StatusCode::kFenced;
      };

      if (sched.kind() == schedule::ScheduleKind::kContinuous) {
        // The engine starts a @continuous run whenever none is active (ARCHITECTURE §8.4).
        if (active == 0 && (!d.end_date || t.now <= *d.end_date) && (!d.start_date || t.now >= *d.start_date)) {
          create(t.now, "scheduled__" + schedule::formatIsoMicros(t.now));
        }
        continue;
      }
      schedule::DueQuery q;
      q.now = t.now;
      q.catchup = d.catchup;
      q.last_logical = d.last_logical;
      q.start_date = d.start_date;
      q.end_date = d.end_date;
      schedule::dueSlots(sched, q, slots);
      for (Timestamp slot : slots) {
        // BEHAVIOUR §3.6: @once ignores max_active_runs; other slots stop at the cap, and are
        // created on a later tick (catch-up fills them in; without it the latest slot wins).
        if (sched.kind() != schedule::ScheduleKind::kOnce && !headroom()) {
          decision("max_active_runs_cap");
          log_->debug("skipping due run; dag is at max_active_runs cap dag_id={} max_active_runs={}", d.dag_id,
                      d.max_active_runs);
          break;
        }
        if (!create(slot, "scheduled__" + schedule::formatIsoSeconds(slot))) break;
      }
    } catch (const std::exception& e) {
      log_->error("creating runs for dag failed dag_id={} error={}", d.dag_id, e.what());
      decision("create_run_error");
      ++t.report.errors;
    }
  }
}

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

void Engine::recordLiveness(TickState& t) {
  LivenessRecord r;
  r.holder = options_.replica_id;
  r.term = t.term;
  r.last_tick = t.now;
  r.queue_depth = static_cast<std::int64_t>(pool_->depth());
  r.active_runs = static_cast<std::int64_t>(runs_.size() + broken_runs_.size());
  Status s = store_.recordLiveness(t.term, r);
  if (!s.isOk()) {
    log_->warn("recording liveness failed error={}", s.toString());
    noteStatus(t, s);
  }
}

}  // namespace leoflow::engine
