// Engine, one tick: loading changed runs, advancing each (materialize, plan, write the decisions,
// enqueue hand-overs), finalizing, and the liveness record. Split from engine.cpp.
#include "engine/engine.h"

#include <algorithm>
#include <deque>
#include <future>
#include <limits>
#include <tuple>

#include <fmt/format.h>

#include "engine/engine_internal.h"

namespace leoflow::engine {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::steady_clock;

// SDK 3.1: a run's end, its duration from its start and, for a scheduled run, its delay from its
// slot (the logical date it was created for) to its start.
void recordRunEnd(Recorder& recorder, const RunRecord& run, DagRunState state, Timestamp now) {
  const Timestamp started = run.started_at.value_or(now);
  std::optional<microseconds> delay;
  if (run.trigger == RunTrigger::kScheduled) delay = std::max(started - run.logical_date, microseconds{0});
  recorder.recordRunEnd(run.key.dag_id, state, std::max(now - started, microseconds{0}), delay, run.tenant);
}

// The active listing sorted and without repeats, the form applyActiveListing's merge walk with the
// cache needs. Done where the listing is read — on the listing's own thread when it is read in the
// background — so the tick that meets 100,000 keys with the cache does not also sort them: sorting
// them was about half of that tick (store-postgres lists them in heap order, not key order).
Result<std::vector<RunKey>> sortedListing(Result<std::vector<RunKey>> listed) {
  if (listed) {
    std::vector<RunKey>& keys = *listed;
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  }
  return listed;
}

}  // namespace

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
  // A DAG that changed may have been deleted and registered again, its version numbers reused: its
  // versions are read again when next needed (each run reloaded below asks for its own).
  if (drained.dags_unknown) catalog_.forget("");
  for (const std::string& dag_id : drained.dags) catalog_.forget(dag_id);
  dirty_.insert(drained.runs.begin(), drained.runs.end());
  if (drained.everything) reload_everything_ = true;
  std::vector<RunKey> to_load;
  // The active listing is a safety net behind the change feed, which brings every new, changed and
  // ended run. Without the feed it is read on every full tick; with it once a resync interval, and
  // then on another thread (a listing of 100,000 runs takes the store ~100 ms to send and the
  // client to parse): a later tick compares it with the cache once it has arrived. A new leader,
  // and a tick told to reload everything, read it at once.
  const bool due = kind == TickKind::kFull &&
                   (!feed_subscribed_ || last_active_listing_ == steady_clock::time_point{} ||
                    steady_start - last_active_listing_ >= options_.full_resync_interval);
  const bool list_now = reload_everything_ || (due && (!feed_subscribed_ || last_active_listing_ == steady_clock::time_point{}));
  if (!list_now && kind == TickKind::kFull) t.active_listed = true;  // the cache stands for the listing
  std::optional<Result<std::vector<RunKey>>> listing;
  steady_clock::time_point listing_from{};
  if (list_now) {
    pending_listing_ = {};  // superseded (waits for it, if it is still being read), and its walk too
    listing_walk_.reset();
    listing_from = steady_clock::now();
    listing = sortedListing(store_.listActiveRunKeys());
    last_active_listing_ = steady_start;
  } else if (pending_listing_.valid()) {
    if (pending_listing_.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      Result<std::vector<RunKey>> arrived = pending_listing_.get();
      if (arrived) {
        listing_walk_ = ListingWalk{std::move(*arrived), 0, pending_listing_from_, steady_clock::now()};
      } else {
        listing = std::move(arrived);  // logged and counted as a failed listing
        listing_from = pending_listing_from_;
      }
    }
  } else if (due && !listing_walk_) {
    pending_listing_from_ = steady_clock::now();
    pending_listing_ = std::async(std::launch::async, [this] { return sortedListing(store_.listActiveRunKeys()); });
    last_active_listing_ = steady_start;
  }
  if (listing) applyActiveListing(t, *listing, listing_from, to_load);
  if (listing_walk_ && !cancelled()) walkListing(t, to_load);
  to_load.insert(to_load.end(), dirty_.begin(), dirty_.end());
  dirty_.clear();
  if (kind == TickKind::kFull) queueDueReloads(steady_start);  // reloaded a chunk at a time, below
  std::sort(to_load.begin(), to_load.end());
  to_load.erase(std::unique(to_load.begin(), to_load.end()), to_load.end());
  // As in Airflow, a paused DAG's runs schedule no new tasks; what runs finishes and reports. A
  // pause holds from the moment `dags pause` returns: its change-feed message (a DAG change, so
  // `everything`) or a run this leader has not seen yet — one triggered right after the pause —
  // makes this tick read the pauses again, not only the full ticks.
  const bool new_run = std::any_of(to_load.begin(), to_load.end(), [&](const RunKey& k) { return !runs_.count(k); });
  bool pauses_changed = false;
  if (kind == TickKind::kFull || drained.everything || new_run) {
    if (auto dags = store_.listDags()) {
      std::set<std::string> paused;
      for (const DagSummary& d : *dags) {
        if (d.paused) paused.insert(d.dag_id);
      }
      pauses_changed = paused != paused_dags_;
      paused_dags_ = std::move(paused);
    } else {
      log_->warn("listing dags failed; keeping the last known pauses error={}", dags.status().toString());
    }
  }
  if (!to_load.empty() && !cancelled()) loadRuns(t, to_load);
  // This process's executions' accepted reports: mirrored, not read back (runs loaded whole just now
  // have them; an instance the cache holds elsewhere than where the report started is read).
  for (const OwnReport& r : drained.own_reports) {
    const RunKey& run = r.execution.attempt.run;
    if (std::binary_search(to_load.begin(), to_load.end(), run)) continue;
    if (!mirrorOwnReport(r)) drained.tasks[run].push_back(r.execution.attempt.task_id);
  }
  // Changes that named their task: refresh those instances (runs loaded whole just now have them).
  for (const RunKey& k : to_load) drained.tasks.erase(k);
  if (!drained.tasks.empty() && !cancelled()) refreshTasks(t, drained.tasks);
  // With the feed up, not on the tick that listed the active runs (both fall due once a resync
  // interval): the loop ticks again at once while runs are due, so the two costs go to two ticks.
  if (!reconcile_queue_.empty() && !((t.active_counted || t.listing_walked) && feed_subscribed_) && !cancelled()) {
    resyncDue(t);
  }

  // 2. A new leader first hands over what its predecessor left queued (before this tick queues
  // anything of its own), then plans and writes every run that changed or still needs attention,
  // each isolated from the others.
  if (redispatch_pending_ && t.active_listed && !cancelled()) redispatchQueued(t);
  unparkRuns(steady_start, drained.everything || !drained.dags.empty() || pauses_changed);
  std::vector<RunKey> advancing(attention_.begin(), attention_.end());
  attention_.clear();
  t.waiting_scheduled = orderForFairness(advancing);
  giveSlots(t, advancing);
  for (std::size_t i = 0; i < advancing.size(); ++i) {
    const RunKey& key = advancing[i];
    if (cancelled()) {
      attention_.insert(advancing.begin() + static_cast<std::ptrdiff_t>(i), advancing.end());
      break;
    }
    auto it = runs_.find(key);
    if (it == runs_.end()) continue;
    CachedRun& run = *it->second;
    try {
      advanceRun(t, run);
      if (waitsParked(t, run)) {
        parked_.insert(key);
      } else {
        parked_.erase(key);  // reloaded, or started by another writer: parked no more
        if (needsAttention(run)) attention_.insert(key);
      }
    } catch (const std::exception& e) {
      log_->error("advancing run failed dag_id={} run_id={} error={}", key.dag_id, key.run_id, e.what());
      decision("run_error");
      ++t.report.errors;
      dirty_.insert(key);
    }
  }
  // One sample each, however many waited (the resync's reloads look at every parked run again).
  decisions("paused_wait", t.waited_paused);
  decisions("max_active_runs_wait", t.waited_for_slot);
  for (const RunKey& k : t.finished) {
    unpark_dags_.insert(k.dag_id);  // its slot is free
    attention_.erase(k);
    runs_.erase(k);
    std::lock_guard lock(handed_mutex_);
    std::erase_if(handed_over_, [&](const auto& kv) { return kv.first.run == k; });
  }

  // 3. Full ticks: new runs from schedules, the reapers, the liveness record.
  if (kind == TickKind::kFull) {
    last_full_tick_ = steady_start;
    // Every active run is reloaded within a full-resync interval and asks for its DAG version, so a
    // version nobody asked for in one is used by no active run (dag_catalog.h).
    if (steady_start - last_catalog_sweep_ >= options_.full_resync_interval) {
      if (last_catalog_sweep_ != std::chrono::steady_clock::time_point{}) catalog_.sweepUnused();
      last_catalog_sweep_ = steady_start;
    }
    if (t.active_listed && !cancelled()) createDueRuns(t);
    if (!cancelled()) reapOrphans(t);
    if (!cancelled()) reapAgentLost(t);
    if (!cancelled()) reapDispatchLost(t);
    if (!cancelled()) reconcileDispatchers(t);
    if (!cancelled()) recordLiveness(t);
  }

  t.report.timed_out = tick_timed_out_;
  tick_started_us_ = 0;
  if (first_tick_pending_ && t.active_listed && !t.report.timed_out) {
    // The takeover's cost: every active run loaded and planned once.
    first_tick_pending_ = false;
    const auto now = steady_clock::now();
    log_->info("first tick as leader done runs={} loaded={} tick_ms={} since_leading_ms={}", runs_.size(),
               t.report.runs_loaded, duration_cast<std::chrono::milliseconds>(now - steady_start).count(),
               duration_cast<std::chrono::milliseconds>(now - leading_since_steady_).count());
  }
  last_tick_us_ = duration_cast<microseconds>(clock_.now().time_since_epoch()).count();
  recorder_.recordSchedulerHeartbeat();
  if (kind == TickKind::kFull) recordTaskGauges();
  recorder_.setDispatchQueueDepth(static_cast<std::int64_t>(pool_->depth()));
  recorder_.observeTickDuration(duration_cast<microseconds>(steady_clock::now() - steady_start));
  return t.report;
}

void Engine::applyActiveListing(TickState& t, Result<std::vector<RunKey>>& active, steady_clock::time_point listed_from,
                                std::vector<RunKey>& to_load) {
  const auto started = steady_clock::now();
  if (!active) {
    // BEHAVIOUR §10 item 13: a failed listing skips planning, not run creation or the reapers.
    log_->error("listing active runs failed error={}", active.status().toString());
    decision("active_runs_list_error");
    noteStatus(t, active.status());
    return;
  }
  const std::vector<RunKey>& listed = *active;
  const std::size_t gone = mergeListing(listed, 0, listed.size(), listed_from, &t.active_per_dag, to_load);
  t.active_listed = true;
  t.active_counted = true;
  reload_everything_ = false;
  log_->debug("active runs listed runs={} new_or_dirty={} gone={} store_ms={} took_ms={}", listed.size(),
              to_load.size(), gone, duration_cast<std::chrono::milliseconds>(started - listed_from).count(),
              duration_cast<std::chrono::milliseconds>(steady_clock::now() - started).count());
}

void Engine::walkListing(TickState& t, std::vector<RunKey>& to_load) {
  // The periodic listing, read on another thread, meets the cache a slice of keys per tick. Between
  // slices the cache may change: the walk resumes after the last key it compared, and a run loaded
  // meanwhile is newer than the listing. Per-DAG counts come from the cache meanwhile
  // (active_counted stays false): a count summed over slices of a moving cache would be neither.
  const auto started = steady_clock::now();
  ListingWalk& w = *listing_walk_;
  const std::size_t end = std::min(w.listed.size(), w.next + std::max<std::size_t>(options_.listing_walk_slice, 1));
  const std::size_t loading = to_load.size();
  w.gone += mergeListing(w.listed, w.next, end, w.listed_from, nullptr, to_load);
  w.next = end;
  t.listing_walked = true;
  w.to_load += to_load.size() - loading;
  ++w.slices;
  w.took += steady_clock::now() - started;
  if (end != w.listed.size()) return;
  log_->debug("active runs listed runs={} new_or_dirty={} gone={} store_ms={} took_ms={} slices={}", w.listed.size(),
              w.to_load, w.gone, duration_cast<std::chrono::milliseconds>(w.arrived - w.listed_from).count(),
              duration_cast<std::chrono::milliseconds>(w.took).count(), w.slices);
  listing_walk_.reset();
}

std::size_t Engine::mergeListing(const std::vector<RunKey>& listed, std::size_t begin, std::size_t end,
                                 steady_clock::time_point listed_from, std::map<std::string, int>* per_dag,
                                 std::vector<RunKey>& to_load) {
  // Sorted (sortedListing, where it was read), the listing meets the cache (a sorted map) in one
  // merge walk: new runs to load and cached runs that left the list come out of it without a set of
  // every key being built.
  // Runs that left the active list (finished, deleted, reaped elsewhere). A run loaded after the
  // listing was taken is not among them: it is newer than the listing.
  std::vector<RunKey> gone;
  auto cached = begin == 0 ? runs_.begin() : runs_.upper_bound(listed[begin - 1]);
  auto left = [&](const auto& entry) {
    if (entry.second->loadedAt() < listed_from) gone.push_back(entry.first);
  };
  int* dag_count = nullptr;
  for (std::size_t i = begin; i < end; ++i) {
    const RunKey& k = listed[i];
    // The listing is in DAG order: each DAG's count is its run of equal dag ids, found in the map
    // once per DAG rather than once per run.
    if (per_dag && (i == begin || listed[i - 1].dag_id != k.dag_id)) {
      dag_count = &(*per_dag)[k.dag_id];
      *dag_count = 0;
    }
    if (dag_count) ++*dag_count;
    while (cached != runs_.end() && cached->first < k) left(*cached++);
    const bool in_cache = cached != runs_.end() && cached->first == k;
    if (in_cache) ++cached;
    // Not cached: new, or ended and forgotten since the listing was taken (loading it finds that).
    if (!in_cache || reload_everything_ || dirty_.erase(k) != 0) to_load.push_back(k);
  }
  if (end == listed.size()) {
    for (; cached != runs_.end(); ++cached) left(*cached);
    for (const auto& [k, why] : broken_runs_) {
      if (!std::binary_search(listed.begin(), listed.end(), k)) gone.push_back(k);
    }
  }
  for (const RunKey& k : gone) forgetRun(k);  // every trace of them
  return gone.size();
}

std::size_t* Engine::routeBudget(TickState& t, std::size_t route) {
  // Asked of the executor once per tick, then counted down.
  if (route == kInlineRoute) {
    if (!t.inline_budget) t.inline_budget = routeCapacity(kInlineRoute);
    return &*t.inline_budget;
  }
  auto& slot = t.route_budget[route];
  if (!slot) slot = routeCapacity(route);
  return &*slot;
}

std::size_t Engine::spareCapacity(TickState& t, std::size_t route) {
  return std::min(*routeBudget(t, route), t.pool_budget);
}

bool Engine::noCapacityLeft(TickState& t) {
  if (t.pool_budget == 0) return true;
  for (std::size_t r = 0; r < dispatchers_.size(); ++r) {
    if (*routeBudget(t, r) > 0) return false;
  }
  return !inline_runner_ || *routeBudget(t, kInlineRoute) == 0;
}

const CachedRun::Routes& Engine::routesOf(CachedRun& run) const {
  if (!run.routes()) {
    CachedRun::Routes routes{true, std::nullopt};
    bool one_route = true;
    for (const TaskSpec& spec : run.dag().spec.tasks) {
      const std::optional<std::size_t> route = routeFor(spec);
      if (!route) {
        routes.every_task_routable = false;
        one_route = false;
      } else if (!routes.sole_route) {
        routes.sole_route = route;
      } else if (*routes.sole_route != *route) {
        one_route = false;
      }
    }
    if (!one_route) routes.sole_route.reset();
    run.setRoutes(routes);
  }
  return *run.routes();
}

std::size_t Engine::orderForFairness(std::vector<RunKey>& advancing) const {
  // Executor capacity goes to the runs in the order they are advanced. Across runs, the one whose
  // task has waited longest in `scheduled` goes first (oldest scheduled_at), so a busy run with
  // newer work cannot keep taking the slots another run's older task waits for; runs without a
  // waiting task follow in key order. Only a `scheduled` task takes capacity (none → scheduled
  // does not), so unless two runs have one waiting there is nothing to order and nothing is scanned.
  std::size_t waiting_runs = 0, waiting_tasks = 0;
  for (const RunKey& key : advancing) {
    auto it = runs_.find(key);
    if (it == runs_.end() || it->second->scheduledCount() == 0) continue;
    ++waiting_runs;
    waiting_tasks += static_cast<std::size_t>(it->second->scheduledCount());
  }
  if (waiting_runs < 2) return waiting_tasks;
  std::vector<std::pair<Timestamp, std::size_t>> order;
  order.reserve(advancing.size());
  for (std::size_t i = 0; i < advancing.size(); ++i) {
    auto it = runs_.find(advancing[i]);
    std::optional<Timestamp> oldest;
    if (it != runs_.end()) oldest = it->second->oldestScheduledAt();
    order.emplace_back(oldest.value_or(Timestamp::max()), i);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<RunKey> sorted;
  sorted.reserve(advancing.size());
  for (const auto& [at, i] : order) sorted.push_back(std::move(advancing[i]));
  advancing = std::move(sorted);
  return waiting_tasks;
}

void Engine::recordTaskGauges() {
  // The leader's view, once per full tick (a gauge sampled each tick interval is what Airflow
  // sends), from the totals the cached runs keep up to date.
  const std::int64_t running = task_totals_.running, queued = task_totals_.queued;
  std::size_t open = 0;
  for (std::size_t r = 0; r < dispatchers_.size(); ++r) open += routeCapacity(r);
  if (inline_runner_) open += routeCapacity(kInlineRoute);
  recorder_.setTaskGauges(running, queued, static_cast<std::int64_t>(open));
}

void Engine::queueDueReloads(steady_clock::time_point now) {
  // Cached runs due for their periodic reload: the oldest loads are at the front of load_order_. Only
  // a few chunks' worth are queued at a time, and resyncDue tops the queue up as it goes: the runs a
  // takeover loaded fall due together, and queueing all 100,000 of them at once (a set insertion
  // each) made that tick ~150 ms long before it reloaded anything.
  const std::size_t most = 2 * std::max<std::size_t>(options_.load_chunk_runs, 1);
  while (reconcile_queue_.size() < most && !load_order_.empty() &&
         now - load_order_.front().first >= options_.full_resync_interval) {
    auto [at, key] = std::move(load_order_.front());
    load_order_.pop_front();
    auto it = runs_.find(key);
    if (it != runs_.end() && it->second->loadedAt() == at && reconcile_queued_.insert(key).second) {
      reconcile_queue_.push_back(std::move(key));
    }
  }
}

void Engine::resyncDue(TickState& t) {
  // The periodic resync of cached runs, spread over ticks: the runs a new leader loaded together fall
  // due together, and reloading them all at once would make one tick as long as the takeover's. A
  // chunk at least, then more while this tick is within its budget, so a pass goes as fast as the
  // store reads and no tick grows long.
  if (!resync_started_) {
    resync_started_ = t.steady_now;
    resync_reloaded_ = 0;
  }
  do {
    std::vector<RunKey> chunk;
    while (chunk.size() < options_.load_chunk_runs) {
      if (reconcile_queue_.empty()) queueDueReloads(t.steady_now);
      if (reconcile_queue_.empty()) break;
      RunKey key = std::move(reconcile_queue_.front());
      reconcile_queue_.pop_front();
      reconcile_queued_.erase(key);
      auto it = runs_.find(key);
      if (it == runs_.end() || t.steady_now - it->second->loadedAt() < options_.full_resync_interval) continue;
      chunk.push_back(std::move(key));
    }
    if (chunk.empty()) break;
    resync_reloaded_ += chunk.size();
    loadRuns(t, chunk);
    queueDueReloads(t.steady_now);  // empty only when no run is due any more: the pass is done
  } while (!reconcile_queue_.empty() && !cancelled() &&
           steady_clock::now() - t.steady_now < options_.resync_tick_budget);
  if (reconcile_queue_.empty()) {
    log_->debug("periodic resync done runs={} took_ms={}", resync_reloaded_,
                duration_cast<std::chrono::milliseconds>(steady_clock::now() - *resync_started_).count());
    resync_started_.reset();
  }
}

void Engine::unparkRuns(steady_clock::time_point now, bool everything) {
  if (everything || now - last_unpark_all_ >= options_.full_resync_interval) {
    last_unpark_all_ = now;
    for (const RunKey& k : parked_) unpark_dags_.insert(k.dag_id);
  }
  // A parked run goes back to the runs to advance once its DAG has a slot for it: the front of the
  // DAG's queue (a paused DAG's runs there are parked again when advanced). The others would only
  // wait again.
  std::unordered_set<const CachedRun*> given;
  for (const std::string& dag_id : unpark_dags_) {
    given.clear();
    run_slots_.giveSlots(dag_id, given);
    for (const CachedRun* run : given) {
      auto parked = parked_.extract(run->record().key);
      if (!parked.empty()) attention_.insert(std::move(parked));
    }
  }
  unpark_dags_.clear();
}

bool Engine::waitsParked(const TickState& t, const CachedRun& run) const {
  if (run.record().state != DagRunState::kQueued) return false;
  return pausedFor(run) || waitsForASlot(t, run);
}

bool Engine::needsAttention(CachedRun& run) {
  const DagRunState state = run.record().state;
  if (state == DagRunState::kQueued) return true;  // waits for a slot, an unpause, or to start
  return state == DagRunState::kRunning && run.planner().mayMove();
}

void Engine::refreshTasks(TickState& t, const std::map<RunKey, std::vector<std::string>>& tasks) {
  std::vector<RunKey> whole;
  for (const auto& [key, ids] : tasks) {
    if (cancelled()) {
      dirty_.insert(key);
      continue;
    }
    auto it = runs_.find(key);
    if (it == runs_.end()) {
      // Not cached: new to this leader, broken, or finished and forgotten (loading it finds that).
      whole.push_back(key);
      continue;
    }
    std::vector<Result<TaskInstance>> loaded = store_.loadTaskInstances(key, ids);
    bool reload = loaded.size() != ids.size();
    bool unavailable = false;
    for (std::size_t i = 0; !reload && !unavailable && i < loaded.size(); ++i) {
      if (loaded[i]) {
        reload = !it->second->replaceInstance(*loaded[i]);
      } else if (loaded[i].status().code() == StatusCode::kUnavailable) {
        noteStatus(t, loaded[i].status());
        unavailable = true;
      } else {
        reload = true;  // a task or run gone: the whole run says what happened
      }
    }
    if (unavailable) {
      dirty_.insert(key);  // read whole next tick, after the loop's back-off
    } else if (reload) {
      whole.push_back(key);
    } else {
      attention_.insert(key);
    }
  }
  if (!whole.empty()) loadRuns(t, whole);
}

bool Engine::mirrorOwnReport(const OwnReport& r) {
  const AttemptRef& a = r.execution.attempt;
  auto it = runs_.find(a.run);
  if (it == runs_.end() || !it->second->materialized()) return false;
  CachedRun& run = *it->second;
  const auto i = run.dag().dag.find(a.task_id);
  if (!i) return false;
  TaskInstance ti = run.instance(*i);
  if (ti.try_number != a.try_number) return false;
  const std::string& id = r.execution.execution_id;
  // Exactly what the stores write (store.h reportRunning, reportFinished).
  if (!r.finished) {
    if (ti.state == TaskState::kRunning && ti.execution_id == id) return true;  // known already
    if (ti.state != TaskState::kQueued) return false;
    ti.state = TaskState::kRunning;
    ti.started_at = r.at;
    ti.last_heartbeat_at = r.at;
    ti.execution_id = id;
  } else {
    if (ti.state == r.to && ti.execution_id == id) return true;  // read back already
    if (ti.state != TaskState::kRunning || ti.execution_id != id) return false;
    ti.state = r.to;
    ti.ended_at = r.at;
    ti.exit_code = r.exit_code;
    if (!r.message.empty()) ti.note = r.message;
  }
  run.replaceInstance(ti);
  attention_.insert(a.run);
  return true;
}

void Engine::loadRuns(TickState& t, const std::vector<RunKey>& all_keys) {
  // In chunks: a store runs one read at a time (Redis runs a script alone), and a lease renewal
  // must not wait behind a new leader's load of every active run. While one chunk is laid out in
  // the cache, the next ones are read on other threads (stores are thread-safe, store.h): the
  // store's round trip and its reply's parsing overlap the cache's work instead of adding to it.
  // Two reads are kept in flight, not one: on store-postgres a chunk's read is mostly the server's
  // work, and with one read ahead the server and this thread took turns — a takeover of 100,000
  // runs left ~40 % of two cores idle. Two chunks still keep a lease renewal's wait short.
  constexpr std::size_t kReadAhead = 2;
  const std::size_t chunk = options_.load_chunk_runs;
  auto read = [this](std::span<const RunKey> keys) { return store_.loadRuns(keys); };
  auto span_at = [&](std::size_t from) {
    return std::span<const RunKey>(all_keys.data() + from, std::min(chunk, all_keys.size() - from));
  };
  std::deque<std::future<std::vector<Result<RunRecord>>>> ahead;  // the chunks after `from`, in order
  std::size_t asked = chunk;  // keys before it are read or being read
  for (std::size_t from = 0; from < all_keys.size(); from += chunk) {
    std::vector<Result<RunRecord>> loaded;
    if (ahead.empty()) {
      loaded = read(span_at(from));
    } else {
      loaded = ahead.front().get();
      ahead.pop_front();
    }
    while (ahead.size() < kReadAhead && asked < all_keys.size() && !cancelled()) {
      ahead.push_back(std::async(std::launch::async, read, span_at(asked)));
      asked += chunk;
    }
    loadRunChunk(t, span_at(from), std::move(loaded));
    if (from + chunk < all_keys.size() && cancelled()) {
      for (auto& f : ahead) f.wait();  // what they read is dropped: those runs are read next tick
      dirty_.insert(all_keys.begin() + static_cast<std::ptrdiff_t>(from + chunk), all_keys.end());
      return;
    }
  }
}

void Engine::loadRunChunk(TickState& t, std::span<const RunKey> keys, std::vector<Result<RunRecord>> loaded) {
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const RunKey& key = keys[i];
    if (i >= loaded.size()) {
      dirty_.insert(key);
      continue;
    }
    Result<RunRecord>& r = loaded[i];
    auto fail = [&](const std::string& why) {
      if (runs_.erase(key) != 0) unpark_dags_.insert(key.dag_id);  // no longer counted against the DAG's slots
      parked_.erase(key);
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
        forgetRun(key);
        continue;
      }
      if (r.status().code() == StatusCode::kUnavailable) {
        dirty_.insert(key);
        ++t.report.unavailable;  // the loop backs off before it tries again
      }
      fail(r.status().toString());
      continue;
    }
    if (isTerminal(r->state)) {  // finished since we last looked
      forgetRun(key);
      continue;
    }
    const DagRunState state = r->state;
    const std::int64_t version = r->dag_version;
    auto dag = catalog_.get(key.dag_id, version);
    if (!dag) {
      fail(dag.status().message());
      // A version that does not exist or does not decode never will: the run is failed after a
      // while (reapUnplannable) instead of holding its max_active_runs slot forever. A store that
      // could not answer says nothing about the version.
      const StatusCode code = dag.status().code();
      if (code == StatusCode::kNotFound || code == StatusCode::kInvalidArgument) {
        noteUnplannable(t, key, state,
                        fmt::format("dag version {} cannot be loaded: {}", version, dag.status().message()));
      }
      continue;
    }
    auto built = CachedRun::build(std::move(r).value(), *dag, t.steady_now, &task_totals_, &run_slots_);
    if (!built) {
      fail(built.status().message());
      // Instances that do not match the version (a task without one) never will either.
      noteUnplannable(t, key, state,
                      fmt::format("task instances do not match dag version {}: {}", version, built.status().message()));
      continue;
    }
    broken_runs_.erase(key);
    unplannable_.erase(key);
    runs_[key] = std::move(built).value();
    load_order_.emplace_back(t.steady_now, key);
    attention_.insert(key);
    ++t.report.runs_loaded;
  }
}

// ---------------------------------------------------------------------------------------------------
// Advancing one run (BEHAVIOUR §2.4, ARCHITECTURE §8.8)

void Engine::materialize(TickState& t, CachedRun& run) {
  const RunKey& key = run.record().key;
  const DagVersion& dag = run.dag();
  if (run.size() > 0) {
    // BEHAVIOUR §10 items 15-16: a queued run that already has its instances (a crash between
    // materializing and the run's queued → running move, in a store that does them apart).
    // materializeRun refuses it, so asking again would retry forever; CachedRun::build found an
    // instance for every task of the version, so the run starts from the instances it has.
    Status s = store_.setRunState(t.term, key, DagRunState::kQueued, DagRunState::kRunning, t.now, "");
    if (s.isOk()) {
      run.setRunState(DagRunState::kRunning);
      ++t.report.writes_applied;
      decision("run_resumed");
      log_->warn("queued run already has task instances; starting it from them dag_id={} run_id={} tasks={}",
                 key.dag_id, key.run_id, run.size());
    } else if (s.code() != StatusCode::kConflict) {
      log_->error("starting queued run failed dag_id={} run_id={} error={}", key.dag_id, key.run_id, s.toString());
      decision("run_error");
      noteStatus(t, s);
    }
    dirty_.insert(key);  // read it back (started_at, or whatever won the race)
    return;
  }
  if (dag.dag.size() == 0) {
    // ARCHITECTURE §8.2: a run with no tasks goes straight from queued to success.
    Status s = store_.setRunState(t.term, key, DagRunState::kQueued, DagRunState::kSuccess, t.now, "");
    if (s.isOk()) {
      ++t.report.runs_finalized;
      t.finished.push_back(key);
      recordRunEnd(recorder_, run.record(), DagRunState::kSuccess, t.now);
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
    // Issue 14 §1: what the store wrote is known, so it is mirrored, not read back (a 20,000-task
    // run was read whole again right after its start); its echo names this term and is skipped.
    if (run.materialize(tasks, t.now)) return;
  } else if (s.code() != StatusCode::kConflict) {
    log_->error("materializing run failed dag_id={} run_id={} error={}", key.dag_id, key.run_id, s.toString());
    decision("run_error");
    noteStatus(t, s);
  }
  dirty_.insert(key);  // read the instances back (or whatever won the race)
}

void Engine::giveSlots(TickState& t, const std::vector<RunKey>& advancing) const {
  // docs/architecture.md §8.14: max_active_runs gates every run of a DAG — scheduled, manual,
  // backfill. Beyond it a run waits queued (as in Airflow); slots go to the oldest logical date
  // first. Runs already running count (a cleared run among them: it counts but never waits).
  t.given_a_slot.clear();
  std::set<std::string_view> dags;
  for (const RunKey& k : advancing) {
    auto it = runs_.find(k);
    if (it != runs_.end() && it->second->record().state == DagRunState::kQueued) dags.insert(k.dag_id);
  }
  for (std::string_view dag_id : dags) run_slots_.giveSlots(dag_id, t.given_a_slot);
}

bool Engine::waitsForASlot(const TickState& t, const CachedRun& run) {
  return run.record().state == DagRunState::kQueued && t.given_a_slot.count(&run) == 0;
}

bool Engine::pausedFor(const CachedRun& run) const {
  return paused_dags_.count(run.record().key.dag_id) != 0 && run.record().trigger != RunTrigger::kBackfill;
}

void Engine::advanceRun(TickState& t, CachedRun& run) {
  const RunKey& key = run.record().key;
  if (run.record().state == DagRunState::kQueued) {
    // As in Airflow, a run of a paused DAG waits queued until the DAG is unpaused — except a
    // backfill's, which a person asked for explicitly (docs/architecture.md §8.14).
    if (pausedFor(run)) {
      ++t.waited_paused;
      return;
    }
    if (waitsForASlot(t, run)) {
      ++t.waited_for_slot;
      return;
    }
    materialize(t, run);
    return;
  }
  if (!run.materialized()) {
    log_->error("run is running without task instances dag_id={} run_id={}", key.dag_id, key.run_id);
    decision("run_error");
    ++t.report.errors;
    return;
  }
  if (pausedFor(run)) {
    finalize(t, run);
    return;
  }
  ++t.report.runs_planned;
  // When every task goes to one executor, the planner offers only as many `scheduled` tasks as it
  // can take this tick and counts the rest: a wide fan-out waiting for capacity would otherwise be
  // planned, partitioned and skipped task by task on every tick that frees a slot or two. With
  // several executors the rest is offered, so a full one cannot hide another's spare capacity.
  const CachedRun::Routes& routes = routesOf(run);
  const std::size_t left_waiting = run.planner().plan(
      t.now, t.plan, routes.sole_route ? spareCapacity(t, *routes.sole_route) : std::numeric_limits<std::size_t>::max());
  // Tasks already waiting in `scheduled` take capacity before tasks that become ready now (a
  // stable partition, into buffers kept across ticks: std::stable_partition allocates its own).
  t.plan_rest.clear();
  auto queue_end = t.plan.begin();
  for (const planning::Transition& tr : t.plan) {
    if (tr.to == TaskState::kQueued) {
      *queue_end++ = tr;
    } else {
      t.plan_rest.push_back(tr);
    }
  }
  std::copy(t.plan_rest.begin(), t.plan_rest.end(), queue_end);
  t.writes.clear();
  t.write_tasks.clear();
  t.write_routes.clear();
  // ARCHITECTURE §8.8: no more queued than the pool and the executor can take.
  auto take_capacity = [&](std::size_t route) {
    if (spareCapacity(t, route) == 0) return false;
    --*routeBudget(t, route);
    --t.pool_budget;
    return true;
  };
  // Tasks of this run left waiting for capacity: counted in the report, and as "backpressure"
  // decisions in one recorder call after the loop (not one per task: 20,000 in a wide fan-out).
  std::size_t backpressured = left_waiting;
  t.waiting_scheduled -= std::min(t.waiting_scheduled, left_waiting);
  std::size_t other_moves = 0;  // besides hand-overs, bounded by run_moves_per_tick
  for (auto it = t.plan.begin(); it != t.plan.end(); ++it) {
    if (it >= queue_end && ++other_moves > std::max<std::size_t>(options_.run_moves_per_tick, 1)) {
      // The rest keep their planner bit (incremental_planner.h) and are offered on the next tick,
      // which this tick's writes make come at once.
      ++t.report.runs_sliced;
      break;
    }
    if (it < queue_end && noCapacityLeft(t) && routes.every_task_routable) {
      // Every executor is full, so each `scheduled` task still to come stays where it is: counted
      // as one by one, not visited — a run with 20,000 tasks waiting would otherwise cost every
      // tick 20,000 route lookups, task id copies and capacity checks.
      const auto left = static_cast<std::size_t>(queue_end - it);
      t.waiting_scheduled -= std::min(t.waiting_scheduled, left);
      backpressured += left;
      it = queue_end;
      if (it == t.plan.end()) break;
    }
    const planning::Transition& tr = *it;
    const TaskInstance& ti = run.instance(tr.task);
    const TaskSpec& spec = run.dag().spec.tasks[tr.task];
    TaskTransitionWrite w{spec.task_id, ti.state, ti.try_number, tr.to, "", false};
    std::size_t route = 0;
    if (tr.to == TaskState::kQueued) {
      if (t.waiting_scheduled > 0) --t.waiting_scheduled;  // offered capacity now, taken or not
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
      } else if (!take_capacity(*r)) {
        ++backpressured;
        continue;
      } else {
        route = *r;
      }
    } else if (tr.to == TaskState::kScheduled) {
      // A task that becomes ready while its executor has room moves none → scheduled → queued in
      // this one batch (store.h: a batch applies in order, each write seeing the ones before it):
      // one store write and no tick in between on the path from one task to the next. Without
      // room, or an executor, it waits in `scheduled` and the next plan decides as before.
      // Capacity that tasks of other runs already waiting in `scheduled` are yet to be offered
      // (runs are advanced oldest waiting first) stays theirs.
      auto r = routeFor(spec);
      if (r && spareCapacity(t, *r) > t.waiting_scheduled && take_capacity(*r)) {
        t.writes.push_back(w);
        t.write_tasks.push_back(tr.task);
        t.write_routes.push_back(0);
        w = TaskTransitionWrite{spec.task_id, TaskState::kScheduled, ti.try_number, TaskState::kQueued, "", false};
        route = *r;
      }
    }
    t.writes.push_back(std::move(w));
    t.write_tasks.push_back(tr.task);
    t.write_routes.push_back(route);
  }
  t.report.backpressured += backpressured;
  decisions("backpressure", backpressured);

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
                                      run.record().conf_json, run.record().uid, run.record().tenant};
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
    recordRunEnd(recorder_, run.record(), verdict.state, t.now);
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
