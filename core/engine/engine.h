// The scheduler engine: the leader-elected, crash-proof reconciliation loop (BEHAVIOUR §2–§5, with
// the defects of §10 fixed).
//
// One tick, leader only: load the runs that changed → plan each (the pure core, incrementally) →
// write one guarded batch per run → hand `queued` attempts to the bounded dispatch pool → finalize
// → (full ticks) create due cron runs → reap orphans, lost agents, lost dispatches → record
// liveness. Every run, DAG, reaper candidate and plugin call is isolated: its failure is logged
// and counted, never stops the others, and the loop survives everything.
//
// Threads: run() owns the loop; a watchdog thread checks leadership every Leader::checkInterval()
// and enforces the step timeout; dispatch workers hand attempts over; executors report through the
// TaskEventsSink from their own threads.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <stop_token>
#include <string>
#include <vector>

#include "engine/dag_catalog.h"
#include "engine/dispatch_pool.h"
#include "engine/engine_options.h"
#include "engine/guarded.h"
#include "engine/recorder_fanout.h"
#include "engine/run_cache.h"
#include "engine/schedule_cache.h"
#include "engine/wake_signal.h"

namespace leoflow::engine {

/// What one tick did, for tests, logs and the loop's "more work right away" decision.
struct TickReport {
  bool led = false;                 ///< false: a follower's tick (nothing read or written)
  std::size_t runs_loaded = 0;       ///< runs read whole from the store (tasks refreshed alone are not)
  std::size_t runs_planned = 0;
  std::size_t writes_applied = 0;
  std::size_t runs_finalized = 0;
  std::size_t runs_created = 0;
  std::size_t dispatched = 0;       ///< attempts handed to the dispatch pool
  std::size_t backpressured = 0;    ///< scheduled tasks left waiting for capacity
  std::size_t runs_sliced = 0;      ///< runs with moves left for the next tick (run_moves_per_tick)
  std::size_t reaped = 0;
  std::size_t errors = 0;           ///< isolated failures (runs, DAGs, candidates, lists)
  std::size_t unavailable = 0;      ///< of which the store could not be reached (the loop backs off)
  bool timed_out = false;           ///< the step timeout cut the tick short
  bool progressed() const { return writes_applied > 0 || runs_created > 0 || runs_finalized > 0; }
};

/// Health as the seed defines it (BEHAVIOUR §2.5), with the bound consistent with the step timeout
/// (§10 item 20): a follower is healthy; a leader is healthy until its first tick and while ticks
/// keep coming within step timeout + two tick intervals.
struct Health {
  bool healthy = true;
  std::optional<Timestamp> last_tick;
};

class Engine {
 public:
  enum class TickKind { kQuick, kFull };

  Engine(EngineDeps deps, EngineOptions options, WakeSignal& wake);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Campaigns, leads and ticks until `stop` is requested; then stops planning, drains the
  /// dispatch pool within the shutdown grace and releases leadership (ARCHITECTURE §8.11).
  void run(std::stop_token stop);

  // --- Pieces of run(), public for tests ------------------------------------------------------

  /// One campaign attempt: try to acquire leadership; on winning, claim a term from the store.
  /// true when this engine now leads.
  Result<bool> campaignOnce();
  /// One leadership check (what the watchdog does every check interval): false when this engine
  /// stepped down because of it.
  bool checkLeadershipOnce();
  /// Stops leading: cancels queued hand-overs, forgets cached runs, records the reason; releases
  /// the lock unless it was lost anyway.
  void stepDown(const std::string& reason);
  /// One tick. A follower's tick only stamps its last tick (BEHAVIOUR §2.3, #208).
  TickReport tick(TickKind kind = TickKind::kFull);
  /// Waits until the dispatch pool has handed every job over (tests), or `timeout` passes.
  bool waitForDispatchIdle(std::chrono::milliseconds timeout);

  bool leading() const noexcept { return leading_.load(); }
  Term term() const noexcept { return term_.load(); }
  Health health() const;

 private:
  struct TickState;

  // tick phases
  /// Compares a listing of the active runs (taken at `listed_from`) with the cache: runs to load go
  /// to `to_load`, cached runs loaded before it and missing from it are forgotten.
  void applyActiveListing(TickState& t, Result<std::vector<RunKey>>& listing,
                          std::chrono::steady_clock::time_point listed_from, std::vector<RunKey>& to_load);
  /// The same for the periodic listing read on another thread, a slice of listing_walk_ keys a tick.
  void walkListing(TickState& t, std::vector<RunKey>& to_load);
  /// The merge walk of both: listed[begin, end) against the cache, resuming after listed[begin - 1].
  /// Runs to load go to `to_load`; cached runs loaded before `listed_from` that it skips over, and
  /// (on the last slice) those after its last key and broken runs it does not name, are forgotten.
  /// With `per_dag`, counts the listed runs of each DAG. Returns how many runs it forgot.
  std::size_t mergeListing(const std::vector<RunKey>& listed, std::size_t begin, std::size_t end,
                           std::chrono::steady_clock::time_point listed_from, std::map<std::string, int>* per_dag,
                           std::vector<RunKey>& to_load);
  void loadRuns(TickState& t, const std::vector<RunKey>& keys);
  /// Lays out one chunk's loaded runs (`loaded`: Store::loadRuns of `keys`) in the cache.
  void loadRunChunk(TickState& t, std::span<const RunKey> keys, std::vector<Result<RunRecord>> loaded);
  /// Refreshes the named task instances of cached runs (Store::loadTaskInstances); a run that is
  /// not cached, or whose refresh fails, is reloaded whole instead.
  void refreshTasks(TickState& t, const std::map<RunKey, std::vector<std::string>>& tasks);
  /// Mirrors one accepted report of this process's executions into the cached instance; false when
  /// the cache does not hold that attempt where the report started (the instance is read instead).
  bool mirrorOwnReport(const OwnReport& report);
  /// Reloads cached runs due for their periodic resync, within the tick's resync budget.
  void resyncDue(TickState& t);
  /// Moves runs due for their periodic reload from load_order_ to reconcile_queue_, a few chunks at a time.
  void queueDueReloads(std::chrono::steady_clock::time_point now);
  /// Whether a run must be advanced next tick although nothing changes it: it is queued (waiting to
  /// start), its planner has tasks that may move (waiting on capacity or a retry delay).
  static bool needsAttention(CachedRun& run);
  /// Whether a run just advanced is queued and waited for a max_active_runs slot or an unpause: it
  /// goes to parked_, not back to attention_.
  bool waitsParked(const TickState& t, const CachedRun& run) const;
  /// Moves the parked runs that have a max_active_runs slot now to attention_: of every DAG with
  /// parked runs when `everything` (a DAG changed: a pause, a limit) or once a resync interval; else of
  /// the DAGs in unpark_dags_.
  void unparkRuns(std::chrono::steady_clock::time_point now, bool everything);
  /// This tick's remaining capacity of a route (its executor's, asked once a tick) — a pointer to
  /// count down — and what of it the dispatch pool can take too.
  std::size_t* routeBudget(TickState& t, std::size_t route);
  std::size_t spareCapacity(TickState& t, std::size_t route);
  /// No executor (nor the dispatch pool) can take another task this tick.
  bool noCapacityLeft(TickState& t);
  /// Where the run's tasks go here: whether each has an executor, and the one executor if they
  /// all share it (asked of the run's DAG once, then kept).
  const CachedRun::Routes& routesOf(CachedRun& run) const;
  /// Orders the runs to advance so capacity goes to the longest-waiting scheduled task first, and
  /// returns how many of their tasks wait in `scheduled` (TickState::waiting_scheduled).
  std::size_t orderForFairness(std::vector<RunKey>& advancing) const;
  void advanceRun(TickState& t, CachedRun& run);
  /// The run's DAG is paused and the run is not a backfill's (those run while paused).
  bool pausedFor(const CachedRun& run) const;
  void materialize(TickState& t, CachedRun& run);
  /// Finds which of the queued runs among `advancing` have a max_active_runs slot this tick
  /// (TickState::given_a_slot).
  void giveSlots(TickState& t, const std::vector<RunKey>& advancing) const;
  /// The run is queued and its DAG has no max_active_runs slot for it this tick.
  static bool waitsForASlot(const TickState& t, const CachedRun& run);
  void finalize(TickState& t, CachedRun& run);
  void redispatchQueued(TickState& t);
  void createDueRuns(TickState& t);
  /// Queued and running runs of a DAG as this leader's cache has them (between listings).
  int cachedActiveRuns(const std::string& dag_id) const;
  void reapOrphans(TickState& t);
  void reapAgentLost(TickState& t);
  void reapDispatchLost(TickState& t);
  void reconcileDispatchers(TickState& t);
  void recordLiveness(TickState& t);

  // dispatch
  std::optional<std::size_t> routeFor(const TaskSpec& task) const;
  std::size_t routeCapacity(std::size_t route) const;
  /// SDK 3.1 gauges: running and queued attempts of the cached runs, free executor capacity.
  void recordTaskGauges();
  void handOver(DispatchJob& job, const std::atomic<bool>& cancelled);
  /// Waits until leadership was confirmed within the last check interval; false when the job
  /// must be given up instead (step-down, another term, cancelled).
  bool awaitConfirmedLeadership(const DispatchJob& job, const std::atomic<bool>& cancelled);
  /// A hand-over is abandoned (the attempt stays queued for the next leader) once its job is
  /// cancelled, this replica stops leading or steps down, or the term changed.
  bool handOverGivenUp(const DispatchJob& job, const std::atomic<bool>& cancelled) const;
  void writeFromWorker(const DispatchJob& job, TaskTransitionWrite write, const char* decision);

  // helpers
  bool cancelled() const;
  void noteStatus(TickState& t, const Status& s);
  void decision(std::string_view type) { recorder_.recordSchedulerDecision(type); }
  void decisions(std::string_view type, std::size_t count) {
    if (count > 0) recorder_.recordSchedulerDecisions(type, static_cast<std::int64_t>(count));
  }
  void requestStepDown(const std::string& reason);
  void watchdogLoop(std::stop_token stop);

  // --- reapers (engine_reapers.cpp) ---
 public:
  /// Attempts remembered as handed over under this term (tests: the cache shrinks with its runs).
  std::size_t handedOverCount() const;

 private:
  /// An attempt an executor accepted: when, and which plugin took it (the dispatch-lost note).
  struct HandOver {
    Timestamp at{};
    std::string executor;
  };
  /// A run the planner cannot take: its DAG version does not load, or its instances do not match
  /// the version. Failed with `note` one orphan threshold after this leader first saw it so.
  struct Unplannable {
    Timestamp since{};
    DagRunState state = DagRunState::kQueued;
    std::string note;
  };
  /// Fails one attempt `from` → failed with `note` (agent-lost, dispatch-lost): one guarded write,
  /// then the decision `decision_type`, the transition metric and a log line; on a write error
  /// `<decision_type>_error`. true when the write applied.
  bool failAttempt(TickState& t, const AttemptRef& a, TaskState from, std::string note, const char* decision_type);
  void reapUnplannable(TickState& t);
  /// Notes (from loadRuns) that a run cannot be planned, and why; forgetRun() or a good load clears it.
  void noteUnplannable(TickState& t, const RunKey& key, DagRunState state, std::string note);
  /// Drops everything this leader keeps about a run that ended (cache, hand-overs, broken marks).
  void forgetRun(const RunKey& key);

  std::map<RunKey, Unplannable> unplannable_;  // loop thread only; reset when the term changes
  Term unplannable_term_ = 0;
  // Engine clock (micros since the epoch, 0 = never) of the last sign the store was unreachable: a
  // kUnavailable status noteStatus() saw, or a failed leadership check or campaign (a replica that
  // lost leadership in an outage makes no other store call until it leads again). Heartbeats could
  // not land meanwhile, so the agent-lost reaper waits a threshold after it. Written by the loop
  // and the watchdog. Failed executor reports are noted by the sink (lastUnavailableReport()).
  std::atomic<std::int64_t> last_store_outage_us_{0};
  void noteStoreOutage();
  bool agent_lost_pause_logged_ = false;
  std::optional<Timestamp> last_orphan_sweep_;  // engine clock; reset when leadership begins
  // --- end reapers ---

  EngineOptions options_;
  GuardedStore store_;
  GuardedLeader leader_;
  std::vector<std::unique_ptr<GuardedDispatcher>> dispatchers_;
  std::vector<std::vector<std::string>> route_types_;  // configured ∩ supported types per route
  std::unique_ptr<GuardedInlineRunner> inline_runner_;
  RecorderFanout recorder_;
  TaskEventsSink* events_;  // optional
  const Clock& clock_;
  std::shared_ptr<spdlog::logger> log_;
  WakeSignal& wake_;
  DagCatalog catalog_;
  ScheduleCache schedules_;

  std::mutex leader_mutex_;  // Leader is not thread-safe: the loop and the watchdog share it
  std::atomic<bool> leading_{false};
  std::atomic<Term> term_{0};
  std::atomic<bool> stepdown_requested_{false};
  std::mutex stepdown_mutex_;
  std::string stepdown_reason_;
  int failed_checks_ = 0;
  // Steady-clock micros of the last time the Leader confirmed this replica leads (acquired or a
  // check passed). Hand-overs wait while it is older than one check interval: a replica that was
  // frozen past its lease must not hand anything over before it has checked again (§8.13).
  std::atomic<std::int64_t> leadership_confirmed_us_{0};
  std::atomic<std::int64_t> check_interval_us_{0};  // Leader::checkInterval(), read when leadership began
  // Only a running watchdog confirms leadership; a caller that drives tick() itself (tests, tools)
  // checks leadership itself, and hand-overs then do not wait for confirmations.
  std::atomic<bool> watchdog_running_{false};
  std::optional<std::chrono::steady_clock::time_point> stepped_down_at_;

  // leader-only state, touched by the loop thread alone
  TaskTotals task_totals_;  // before runs_: each cached run takes its counts out of it when destroyed
  RunSlots run_slots_;      // before runs_ too: each cached run is in it while it lives
  std::map<RunKey, std::unique_ptr<CachedRun>> runs_;
  std::map<RunKey, std::string> broken_runs_;  // runs that failed to load or build, and why
  std::set<RunKey> dirty_;                      // reload before planning
  // Runs to advance this tick: loaded or refreshed, or left needing attention by the last tick. A
  // tick where nothing changed advances none of the others (a quiet run costs nothing).
  std::set<RunKey> attention_;
  // Queued runs that waited on their last advance for a max_active_runs slot or an unpause. They
  // are advanced again only when they have a slot after something that can change it — a run of the
  // DAG ended or went away, a DAG or a pause changed — or when reloaded, not every tick: a backfill of
  // 10,000 runs behind a limit of 4 made every tick advance the 10,000 (the loop thread busy 50–80 %
  // of a core while 4 ran). A parked run is always a cached one.
  std::set<RunKey> parked_;
  // DAGs whose runs ended or went away since their parked runs were last looked at: the parked runs
  // that have a slot now are advanced next.
  std::set<std::string> unpark_dags_;
  std::chrono::steady_clock::time_point last_unpark_all_{};  // every DAG's, once a resync interval
  std::chrono::steady_clock::time_point last_active_listing_{};
  // The periodic listing being read on another thread (feed up), and when it was started.
  std::future<Result<std::vector<RunKey>>> pending_listing_;
  std::chrono::steady_clock::time_point pending_listing_from_{};
  // That listing once it has arrived, compared with the cache a slice per tick (walkListing).
  struct ListingWalk {
    std::vector<RunKey> listed;  // sorted
    std::size_t next = 0;        // the first key not compared yet
    std::chrono::steady_clock::time_point listed_from{}, arrived{};
    std::size_t to_load = 0, gone = 0, slices = 0;
    std::chrono::steady_clock::duration took{};
  };
  std::optional<ListingWalk> listing_walk_;
  // The change feed is subscribed (run() sets it): new and ended runs then arrive through it, and
  // the active runs are listed only once a resync interval.
  std::atomic<bool> feed_subscribed_{false};
  // Cached runs due for their periodic reload (full_resync_interval), taken a chunk per tick so a
  // large reconcile never makes one long tick.
  std::deque<RunKey> reconcile_queue_;
  std::set<RunKey> reconcile_queued_;
  // Every whole load, in the order of its time: the runs falling due for their resync are found at
  // its front, without a walk over every cached run on every full tick. An entry whose run was
  // reloaded since (or forgotten) is dropped when it reaches the front.
  std::deque<std::pair<std::chrono::steady_clock::time_point, RunKey>> load_order_;
  std::optional<std::chrono::steady_clock::time_point> resync_started_;  // the pass in progress
  std::size_t resync_reloaded_ = 0;
  // The first complete tick of a term is logged with how long it took (the takeover's cost).
  std::chrono::steady_clock::time_point leading_since_steady_{};
  bool first_tick_pending_ = false;
  bool reload_everything_ = true;
  bool redispatch_pending_ = false;
  std::chrono::steady_clock::time_point last_full_tick_{};
  std::chrono::steady_clock::time_point last_catalog_sweep_{};  // DAG versions no run asked for go
  std::map<std::string, std::string> warned_schedules_;  // dag → the bad expression warned about
  std::set<std::string> paused_dags_;                     // as of the last full tick

  // shared with dispatch workers
  mutable std::mutex handed_mutex_;
  std::map<AttemptRef, HandOver> handed_over_;  // attempts an executor accepted under this term: when, by whom

  // health and step timeout
  std::atomic<std::int64_t> last_tick_us_{0};    // 0 = never ticked as leader
  std::atomic<std::int64_t> leading_since_us_{0};
  std::atomic<std::int64_t> tick_started_us_{0};  // steady clock; 0 = no tick in progress
  std::atomic<bool> tick_timed_out_{false};

  std::unique_ptr<DispatchPool> pool_;  // last: its workers use everything above
};

}  // namespace leoflow::engine
