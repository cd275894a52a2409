// Store: everything leoflow keeps — DAGs and their versions, runs, task instances, the term and
// the leader's liveness record — plus the change feed that wakes the scheduler.
//
// Contract for every implementation (the contract suite in tests/contract checks each point):
// - Thread-safe: the engine, dispatch workers and executors' report threads call concurrently.
// - Every write of a scheduler decision takes the fencing term and is refused with kFenced,
//   changing nothing, unless the term is the store's current, claimed term (ARCHITECTURE §8.7):
//   a lower term is a deposed leader, a higher one was never issued.
// - Every task write is a compare-and-set on (state, try_number): a guard that does not hold
//   leaves the row untouched and is reported, never an error for the whole call.
// - Each call is atomic: a crash or a refused guard never leaves half a change behind.
// - Unreachable backend: kUnavailable (the caller retries with back-off).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <leoflow/config.h>
#include <leoflow/context.h>
#include <leoflow/domain.h>
#include <leoflow/status.h>

namespace leoflow {

/// A DAG as registered: its parsed spec (for the fields the store indexes) and the canonical JSON
/// text the host parses back. Identical JSON means an identical version.
struct DagDefinition {
  DagSpec spec;
  std::string spec_json;
};

/// A stored DAG version: the JSON text the host parses.
struct StoredDag {
  std::string dag_id;
  std::int64_t version = 0;
  bool paused = false;
  std::string spec_json;
};

/// The outcome of registering one DAG.
struct DagRegistration {
  std::string dag_id;
  std::int64_t version = 0;  ///< the current version after the call
  bool changed = false;      ///< a new version was created
};

/// A run to create (state queued).
struct NewRun {
  RunKey key;
  std::int64_t dag_version = 0;  ///< must name an existing version (0 is never one)
  RunTrigger trigger = RunTrigger::kManual;
  Timestamp logical_date{};
  std::string conf_json;
  Timestamp queued_at{};
  std::string tenant = "default";  ///< SDK 3.0: the DAG's tenant, kept with the run
};

/// A task of a run being materialized: one instance in `none`, try 1.
struct NewTaskInstance {
  std::string task_id;
  std::int32_t max_tries = 1;
};

/// One guarded move of a task instance, decided by the scheduler.
///
/// Applied only if the row is in `from` on try `try_number`. Side effects by target:
/// scheduled stamps scheduled_at; queued stamps queued_at; queued → scheduled clears queued_at;
/// running stamps started_at and last_heartbeat_at; success, failed, skipped and upstream_failed
/// stamp ended_at. up_for_retry → none starts the next attempt: try_number + 1, every per-attempt
/// field cleared (scheduled_at, queued_at, started_at, ended_at, last_heartbeat_at, exit_code,
/// note) so nothing of the previous attempt is mistaken for the new one (BEHAVIOUR §10 items 1, 6).
/// The other moves out of up_for_retry the table allows (to scheduled or queued) start the next
/// attempt the same way; the planner itself only ever makes up_for_retry → none.
struct TaskTransitionWrite {
  std::string task_id;
  TaskState from = TaskState::kNone;
  std::int32_t try_number = 1;
  TaskState to = TaskState::kNone;
  std::string note;                 ///< replaces the note when non-empty
  bool exhaust_retries = false;     ///< with to == failed: no retries remain (max_tries := try_number)
};

/// Which runs `listRuns` returns, newest logical date first.
struct RunFilter {
  std::optional<std::string> dag_id;
  std::optional<DagRunState> state;
  std::size_t limit = 1000;
  std::optional<std::string> tenant;        ///< SDK 3.0: only this tenant's runs
  std::optional<Timestamp> logical_since;   ///< SDK 3.0: only runs with logical_date >= this
  std::optional<Timestamp> logical_until;   ///< SDK 3.0: only runs with logical_date <= this
};

// --- A person's commands (SDK 3.0; docs/architecture.md "Operating runs") ----------------------------
//
// Not fenced: a person (the CLI, the HTTP API) makes them, not the leader. Each is one atomic
// compare-and-set over the run and its instances, with its own move table (the planner's is
// unchanged). Each publishes a kRun change and a kTask change per instance it moved, so the leader
// re-plans the run and every replica's stop watcher stops attempts that stopped being current.
// kNotFound: no such run (or task in it). kConflict: the state forbids it (the message says why).

/// One task to clear, with the retries its DAG version gives it.
struct ClearTask {
  std::string task_id;
  std::int32_t retries = 0;
};

/// `runs clear`: moves the listed instances back to `none` so the planner runs them again.
///
/// An instance is cleared when its state is not `none` (and, with failed_only, is failed or
/// upstream_failed). One that started (started_at set) begins a new attempt: try_number + 1 and
/// max_tries := old try_number + retries + 1; one that never started keeps its try and max_tries.
/// Every per-attempt field is cleared (scheduled_at, queued_at, started_at, ended_at,
/// last_heartbeat_at, exit_code, execution_id); the note becomes `note`. When at least one instance
/// was cleared the run becomes running (from any state), ended_at cleared, started_at := at; its DAG
/// version and note stay. Clearing nothing is ok (an empty `cleared`). kConflict when the run is
/// queued (it has no instances yet); kNotFound when a listed task is not in the run.
struct ClearRequest {
  RunKey run;
  std::vector<ClearTask> tasks;
  bool failed_only = false;
  std::string note;  ///< names the actor, e.g. "cleared by alice@host1"
  Timestamp at{};
};

/// `tasks mark`: any state → success, failed or skipped, keeping the try. success/failed/skipped
/// stamp ended_at; failed also exhausts the retries (max_tries := try_number) so the planner does
/// not retry it. The note becomes `note`. A finished run returns to running (ended_at cleared) so it
/// finalizes again. kConflict when the instance is already in `to`, or the run is queued;
/// kInvalidArgument for a target other than the three.
struct MarkTaskRequest {
  RunKey run;
  std::string task_id;
  TaskState to = TaskState::kSuccess;
  std::string note;
  Timestamp at{};
};

/// `runs mark`: every unfinished instance (none, scheduled, queued, running, up_for_retry) moves to
/// `to` (success → success, failed → failed with retries exhausted), note `note`, ended_at stamped;
/// then the run moves to `to` with ended_at := at and note `note` (started_at stamped if it never
/// started). kConflict when the run is already in `to`; kInvalidArgument for queued/running.
struct MarkRunRequest {
  RunKey run;
  DagRunState to = DagRunState::kSuccess;
  std::string note;
  Timestamp at{};
};

/// `runs cancel`: a queued or running run ends `failed` (ended_at := at, note `note`); its queued and
/// running instances become failed (max_tries := try_number, ended_at stamped, note `note`), those
/// not started (none, scheduled, up_for_retry) skipped (note `note`); finished instances stay.
/// kConflict when the run already finished.
struct CancelRunRequest {
  RunKey run;
  std::string note;  ///< starts with "cancelled", e.g. "cancelled by alice@host1"
  Timestamp at{};
};

/// What a person's command changed, for the caller's message.
struct OperatorOutcome {
  std::vector<std::string> changed_tasks;  ///< task ids whose instance moved, in the run's order
  DagRunState run_state = DagRunState::kQueued;  ///< the run's state after the call
};

/// The leader's record for `leoflow status` (§8.7).
struct LivenessRecord {
  std::string holder;
  Term term = 0;
  std::optional<Timestamp> last_tick;
  std::int64_t queue_depth = 0;
  std::int64_t active_runs = 0;
};

/// What a change-feed message is about.
struct Change {
  enum class Kind : std::uint8_t { kTask, kRun, kDag };
  Kind kind = Kind::kTask;
  RunKey run;           ///< for kTask and kRun
  std::string task_id;  ///< for kTask
  std::string dag_id;   ///< for kDag
  /// SDK 3.4. For a kTask change made by applyTransitions: the fencing term the write carried (the
  /// leader that decided it); 0 for every other writer (reports, a person's commands, reapers). A
  /// leader mirrors its own applied transitions into its cache as the store applied them, so it
  /// skips the echoes of its own term instead of reading the instance back. Leaving it 0 is correct,
  /// only slower: the leader then reads every change. The host reads it only from stores of 3.4.
  /// SDK 3.7: so does the kRun change made by materializeRun and by setRunState: the leader mirrors
  /// its own run starts and run moves, so a 20,000-task run's start is not read back. Every other
  /// kRun change (creation, reaping, a person's command) names no term. The host reads a kRun
  /// change's term only from stores of 3.7.
  Term leader_term = 0;
  /// SDK 3.5. For a kTask change made by an executor's report that moved the instance (reportRunning's
  /// claim, reportFinished): the execution that reported (ExecutionRef::execution_id); empty for every
  /// other writer. The host mirrors the reports of its own executions into its cache when the store
  /// accepts them, so a leader skips the echoes of those executions instead of reading the instance
  /// back. Leaving it empty is correct, only slower. The host reads it only from stores of 3.5.
  std::string execution_id;
};

/// Receives change-feed messages on a thread the store owns, never with the store's own locks held.
/// Must return quickly (signal, don't work). Published: run creation, materialization, run state
/// changes, reaping, every applied transition, running and finished reports, DAG sync and pause.
/// Heartbeats are not published (they change nothing a planner reads).
class ChangeSink {
 public:
  virtual ~ChangeSink() = default;
  virtual void onChange(const Change& change) = 0;
  /// The feed was interrupted and resumed: changes may have been missed, reload everything.
  virtual void onResync() = 0;
};

class Store {
 public:
  virtual ~Store() = default;
  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// A cheap round trip: ok when the backend answers.
  virtual Status ping() = 0;

  // --- Term and liveness (§8.7) ----------------------------------------------------------------

  /// Atomically raises the term counter, records `holder` as its owner and returns the new term.
  /// Called by a replica right after it won leadership; from then on lower terms are refused.
  virtual Result<Term> claimTerm(const std::string& holder) = 0;
  /// Records the leader's liveness (fenced).
  virtual Status recordLiveness(Term term, const LivenessRecord& record) = 0;
  /// The last liveness record, if any leader ever wrote one.
  virtual Result<std::optional<LivenessRecord>> readLiveness() = 0;

  // --- Catalog ----------------------------------------------------------------------------------

  /// Registers DAGs all at once (one atomic change): a DAG whose JSON differs from its current
  /// version gets a new version; an identical one is left alone. Not fenced (a person's command).
  virtual Result<std::vector<DagRegistration>> syncDags(std::span<const DagDefinition> dags) = 0;
  virtual Result<std::vector<DagSummary>> listDags() = 0;
  /// A DAG's version (`version` absent: the current one). kNotFound when either does not exist.
  virtual Result<StoredDag> getDag(const std::string& dag_id, std::optional<std::int64_t> version) = 0;
  /// Pauses or unpauses a DAG (kNotFound when it does not exist). Not fenced.
  virtual Status setPaused(const std::string& dag_id, bool paused) = 0;
  /// Every unpaused DAG with a non-empty schedule, with its last scheduled logical date.
  virtual Result<std::vector<ScheduledDag>> scheduledDags() = 0;

  // --- Runs -------------------------------------------------------------------------------------

  /// Creates a queued run. kAlreadyExists when the run id is taken for that DAG; kNotFound when
  /// the DAG or version does not exist. Fenced when `term` is given (the scheduler's runs);
  /// unfenced for a person's trigger. SDK 3.0: issues the run's uid (RunRecord::uid) and keeps
  /// NewRun::tenant; a scheduled or backfill run whose logical date some run of the DAG already
  /// holds is refused with kAlreadyExists (a backfill or `--logical-date` run holds its slot, and
  /// the scheduler's catch-up skips it); a manual run is not checked.
  virtual Status createRun(std::optional<Term> term, const NewRun& run) = 0;
  /// Runs in queued or running, oldest queued first.
  virtual Result<std::vector<ActiveRun>> listActiveRuns() = 0;
  /// Loads runs with their task instances; one result per key, so one bad run fails alone.
  virtual std::vector<Result<RunRecord>> loadRuns(std::span<const RunKey> keys) = 0;
  /// Run records without task instances, filtered, newest logical date first.
  virtual Result<std::vector<RunRecord>> listRuns(const RunFilter& filter) = 0;
  /// Every DAG's run with this run id (run ids are unique per DAG only).
  virtual Result<std::vector<RunKey>> findRuns(const std::string& run_id) = 0;

  /// Creates one `none` instance (try 1) per task and moves the run queued → running, stamping
  /// started_at, all at once (BEHAVIOUR §10 items 15-16). kConflict if the run is not queued or
  /// already has instances.
  virtual Status materializeRun(Term term, const RunKey& run, std::span<const NewTaskInstance> tasks,
                                Timestamp at) = 0;
  /// Moves a run from `from` to `to` (compare-and-set), stamping started_at on entering running
  /// and ended_at on entering success or failed; a non-empty note replaces the run's note.
  /// kConflict when the run is not in `from`.
  virtual Status setRunState(Term term, const RunKey& run, DagRunState from, DagRunState to,
                             Timestamp at, const std::string& note) = 0;
  /// Applies one run's task moves in one atomic batch; each write is guarded on its own, in the
  /// order given, against what the writes before it left: one batch may move a task none →
  /// scheduled → queued (the leader does, when an executor has room). Returns, per write, whether it
  /// was applied.
  virtual Result<std::vector<bool>> applyTransitions(Term term, const RunKey& run,
                                                     std::span<const TaskTransitionWrite> writes,
                                                     Timestamp at) = 0;

  // --- Reapers (BEHAVIOUR §4) ---------------------------------------------------------------------

  /// Running runs with no task instance in scheduled, queued, running or up_for_retry (a run
  /// waiting on a retry delay is not orphaned: §10 item 5), stalest last_activity first (no activity
  /// at all first). last_activity is the latest of the run's queued/started stamps and its
  /// instances' started/ended stamps.
  virtual Result<std::vector<OrphanCandidate>> listOrphanCandidates(std::size_t limit) = 0;
  /// Fails a running run with `note`, and every unfinished instance of it. A run no longer
  /// running is left alone (ok: a finalizer won).
  virtual Status reapRun(Term term, const RunKey& run, Timestamp at, const std::string& note) = 0;
  /// Running instances that have heartbeated, oldest heartbeat first.
  virtual Result<std::vector<AgentLostCandidate>> listAgentLostCandidates(std::size_t limit) = 0;
  /// Queued instances with a queued stamp, oldest first.
  virtual Result<std::vector<DispatchLostCandidate>> listDispatchLostCandidates(std::size_t limit) = 0;

  // --- Executor reports: attempt-scoped facts, not fenced (§8.7) ----------------------------------

  // Every start of an attempt's code is an execution with an id (ARCHITECTURE §8.13); the running
  // report is its claim. kNotFound for an unknown run or task; kInvalidArgument for an empty id.

  /// The claim: queued → running on the current attempt, recording the execution id and stamping
  /// started_at and the first heartbeat. Accepted again, changing nothing, when the attempt is
  /// already running under the same id (a retried report after a lost reply, an adopting
  /// dispatcher). kConflict when the attempt is not current, is running under another id, or is in
  /// any other state.
  virtual Status reportRunning(const ExecutionRef& execution, Timestamp at) = 0;
  /// Stamps last_heartbeat_at when the attempt is current, running, and claimed by this execution.
  /// kConflict otherwise — a queued attempt included (every execution claims first).
  virtual Status reportHeartbeat(const ExecutionRef& execution, Timestamp at) = 0;
  /// running → success or failed when the attempt is current and claimed by this execution; stamps
  /// ended_at, records the exit code and the message as the note. kConflict otherwise (an ended
  /// attempt, another execution, a queued attempt). queued → success|failed remains only for a
  /// person's commands.
  virtual Status reportFinished(const ExecutionRef& execution, const TaskOutcome& outcome, Timestamp at) = 0;

  // --- A person's commands (SDK 3.0; see the request structs above) ------------------------------

  virtual Result<OperatorOutcome> clearTasks(const ClearRequest& request) = 0;
  virtual Result<OperatorOutcome> markTask(const MarkTaskRequest& request) = 0;
  virtual Result<OperatorOutcome> markRun(const MarkRunRequest& request) = 0;
  virtual Result<OperatorOutcome> cancelRun(const CancelRunRequest& request) = 0;
  /// Removes a DAG with every version, run, task instance and history row, publishing a kDag
  /// change. kConflict (nothing removed) while the DAG has a queued or running run; kNotFound when
  /// there is no such DAG. Run uids are never reissued afterwards. A store may remove a large DAG's
  /// finished runs in slices before the DAG itself (so no call holds its server for long): if a run
  /// becomes active meanwhile, the call answers kConflict with the DAG, its versions and its active
  /// runs in place and some finished runs already gone.
  virtual Status deleteDag(const std::string& dag_id) = 0;

  // --- Change feed ---------------------------------------------------------------------------------

  /// Starts delivering changes (from every process sharing the store) to `sink` until
  /// unsubscribe() or destruction. One subscriber at a time; `sink` must outlive the subscription.
  virtual Status subscribe(ChangeSink& sink) = 0;
  virtual void unsubscribe() = 0;

  // --- Maintenance ---------------------------------------------------------------------------------

  /// Brings the backend's schema up to date (`leoflow store migrate`). nullopt: this store keeps no
  /// schema migrations. Otherwise the names of the migrations this store object applied — in its
  /// factory's create() or now — in order; empty when the schema was already up to date. A schema
  /// newer than the plugin knows is kInvalidArgument.
  virtual Result<std::optional<std::vector<std::string>>> migrate() {
    return std::optional<std::vector<std::string>>{};
  }
  /// Deletes the finished (success or failed) runs that ended before `before`, with their task
  /// instances and history (`leoflow store clean`); returns how many runs. nullopt: not supported.
  /// Not fenced (a person's command); active runs are never touched.
  virtual Result<std::optional<std::int64_t>> deleteFinishedRuns(Timestamp before) {
    (void)before;
    return std::optional<std::int64_t>{};
  }

  // --- SDK 3.2 (appended; the host calls it only on stores of 3.2 or newer) -----------------------

  /// The current instances of some tasks of one run, one result per id in the order asked, each
  /// with its claim (TaskInstance::execution_id) as loadRuns gives it: kNotFound for a run or task
  /// that does not exist. One round trip and one consistent snapshot, whatever the run's size: a
  /// change-feed message names the task that changed, so a leader refreshes its copy of a large run
  /// by what changed instead of reloading the run (docs/architecture.md §8.17).
  virtual std::vector<Result<TaskInstance>> loadTaskInstances(const RunKey& run,
                                                              std::span<const std::string> task_ids) {
    std::vector<Result<TaskInstance>> out;
    std::vector<Result<RunRecord>> loaded = loadRuns(std::span<const RunKey>(&run, 1));
    for (const std::string& id : task_ids) {
      if (loaded.empty() || !loaded[0]) {
        out.emplace_back(loaded.empty() ? internalError("loadRuns returned nothing") : loaded[0].status());
        continue;
      }
      const TaskInstance* found = nullptr;
      for (const TaskInstance& ti : loaded[0]->tasks) {
        if (ti.task_id == id) found = &ti;
      }
      if (found != nullptr) {
        out.emplace_back(*found);
      } else {
        out.emplace_back(notFound("task \"" + id + "\" of run \"" + run.run_id + "\" of dag \"" + run.dag_id +
                                  "\" does not exist"));
      }
    }
    return out;
  }

  // --- SDK 3.3 (appended; the host calls it only on stores of 3.3 or newer) -----------------------

  /// The keys of the runs `listActiveRuns` would return, in any order, without reading each run. A
  /// leader lists them once a resync interval, as a safety net behind the change feed (runs it was
  /// not told of, runs that ended unseen): with 100,000 active runs, reading every run's record for
  /// it held a Redis server for over a second. Its default body maps `listActiveRuns` — correct,
  /// but override it where the store keeps an index of the active runs.
  virtual Result<std::vector<RunKey>> listActiveRunKeys() {
    auto active = listActiveRuns();
    if (!active) return active.status();
    std::vector<RunKey> keys;
    keys.reserve(active->size());
    for (ActiveRun& a : *active) keys.push_back(std::move(a.key));
    return keys;
  }

  // --- SDK 3.8 (appended; the host calls it only on stores of 3.8 or newer) -----------------------

  /// Several cancelRun calls in one: one result per request, in the order given, each exactly what
  /// cancelRun would answer for it alone (each run's cancel is all or nothing on its own; a finished
  /// run is kConflict, an unknown one kNotFound, and neither stops the others). A store does them in
  /// one script or transaction: `dags delete --force` cancels a DAG's active runs with it a slice at a
  /// time, where one round trip and one commit per run made 20,000 runs take 5–16 s. Its default body
  /// calls cancelRun for each request — correct, but override it.
  virtual std::vector<Result<OperatorOutcome>> cancelRuns(std::span<const CancelRunRequest> requests) {
    std::vector<Result<OperatorOutcome>> out;
    out.reserve(requests.size());
    for (const CancelRunRequest& r : requests) out.push_back(cancelRun(r));
    return out;
  }

  // --- SDK 3.9 (appended; the host calls it only on stores of 3.9 or newer) -----------------------

  /// Several clearTasks calls in one: one result per request, in the order given, each exactly what
  /// clearTasks would answer for it alone (each run's clear is all or nothing on its own; a queued
  /// run is kConflict, an unknown run or task kNotFound, and neither stops the others). A store does
  /// them in one script or transaction: `runs clear --dag D --from T --to T` clears a range of runs
  /// with it a slice at a time, where one round trip and one commit per run made a range of thousands
  /// of runs take seconds. Its default body calls clearTasks for each request — correct, but override it.
  virtual std::vector<Result<OperatorOutcome>> clearRuns(std::span<const ClearRequest> requests) {
    std::vector<Result<OperatorOutcome>> out;
    out.reserve(requests.size());
    for (const ClearRequest& r : requests) out.push_back(clearTasks(r));
    return out;
  }

  // --- SDK 3.10 (appended; the host calls it only on stores of 3.10 or newer) ---------------------

  /// Several createRun calls in one: one status per run, in the order given, each exactly what
  /// createRun would answer for it alone (a taken run id or a held logical date kAlreadyExists, an
  /// unknown DAG or version kNotFound, neither stopping the others; a run refuses a later one of the
  /// same call, in the order given, as a committed one would). A store does them in one script or
  /// transaction, or one per slice of a large call, in the order given (a caller may send any number):
  /// `dags backfill` creates up to 10,000 runs 100 at a time, where one commit per run made it take
  /// seconds. Its default body calls createRun for each run — correct, but override it.
  virtual std::vector<Status> createRuns(std::optional<Term> term, std::span<const NewRun> runs) {
    std::vector<Status> out;
    out.reserve(runs.size());
    for (const NewRun& r : runs) out.push_back(createRun(term, r));
    return out;
  }

  // --- SDK 3.11 (appended; the host calls it only on stores of 3.11 or newer) ---------------------

  /// subscribe() for a sink that wants only run changes, such as `runs trigger --wait` following
  /// one run: delivers the kRun changes (and onResync) and no kTask or kDag change, so the follower
  /// of a run is not woken by every task of every run nor the server made to send them. The rules of
  /// subscribe() hold: it listens before returning, one subscriber at a time (of either kind), ended
  /// by unsubscribe(). Its default body is subscribe(sink) — correct, as such a sink ignores the
  /// other changes, but a store with a narrower feed should override it.
  virtual Status subscribeRuns(ChangeSink& sink) { return subscribe(sink); }
};

/// Makes Stores from a plugin's configuration.
class StoreFactory {
 public:
  virtual ~StoreFactory() = default;
  virtual std::vector<ConfigKey> configKeys() const = 0;
  /// Connects and prepares the store (e.g. migrations). Throws std::exception with a clear message
  /// when it cannot; the host names the plugin around it.
  virtual std::unique_ptr<Store> create(const ConfigView& config, const PluginContext& context) = 0;
};

}  // namespace leoflow
