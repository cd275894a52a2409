// A person's commands and reads, shared by the command line and the HTTP API (docs/architecture.md
// §8.14, §8.15): one implementation, two front ends.
//
// Every function takes the Store and the time, does one atomic store call for each change (the
// Store's compare-and-set operations), and throws CommandError on anything that is not a success:
// its kind gives the CLI's exit code (2 bad input, not found or conflict; 3 store unreachable) and
// the API's status (400, 404, 409, 503).
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include <leoflow/dispatcher.h>
#include <leoflow/store.h>

namespace leoflow::host {

/// `$USER@host`, the actor named in notes when `--actor` is not given.
std::string defaultActor();

/// The run named by `run_id`, in `dag_id` when given. Not found: kNotFound error; a run id held by
/// several DAGs without `dag_id`: bad input naming them.
RunKey resolveRun(Store& store, const std::string& run_id, const std::optional<std::string>& dag_id);

/// Loads a run with its tasks in the order its DAG version declares them. Not found: kNotFound.
RunRecord loadRun(Store& store, const RunKey& key);
/// loadRun of each key, in the order given: a slice of keys per store call, each version's task
/// order read once (the JSON of `runs clear` over thousands of runs).
std::vector<RunRecord> loadRunsOrdered(Store& store, std::span<const RunKey> keys);

/// Where each task of a DAG version stands in its declaration, to list a run's instances in that
/// order. Read once and kept by whoever lists the same run again (`runs trigger --wait`): decoding
/// the spec of a 20,000-task DAG is most of a read of its run.
class TaskOrder {
 public:
  /// The version's order; empty (apply() then changes nothing) when it cannot be read or decoded.
  static TaskOrder of(Store& store, const std::string& dag_id, std::int64_t version);
  /// The order of a version already read and decoded.
  static TaskOrder of(const DagSpec& spec, std::int64_t version);
  /// Sorts the instances by their task's position (stable; tasks the version lacks go last).
  void apply(RunRecord& run) const;
  std::int64_t version() const noexcept { return version_; }
  /// Read and decoded (a failed read is worth trying again).
  bool known() const noexcept { return !position_.empty(); }

 private:
  std::unordered_map<std::string, std::size_t> position_;
  std::int64_t version_ = 0;
};

/// Orders a run's task instances as its DAG version declares them (when it can be read).
void orderTasks(Store& store, RunRecord& run);

/// A DAG version as stored (paused flag, version number) with its spec parsed. The spec is shared
/// with host/dag_spec_cache.h's cache (a large one is decoded once, not on every read).
struct LoadedDag {
  StoredDag stored;
  std::shared_ptr<const DagSpec> spec;  ///< never null
};
/// A DAG's version (`version` absent: the current one), parsed. Not found: kNotFound, with a hint.
LoadedDag loadDag(Store& store, const std::string& dag_id, std::optional<std::int64_t> version = std::nullopt);
/// loadDag(...).spec.
std::shared_ptr<const DagSpec> loadDagSpec(Store& store, const std::string& dag_id,
                                           std::optional<std::int64_t> version = std::nullopt);

// --- Reads -----------------------------------------------------------------------------------------

/// The `dags list` objects: {dag_id, schedule, paused, version, tenant, next_slot, last_run_state}.
nlohmann::ordered_json listDagsJson(Store& store, Timestamp now, const std::optional<std::string>& tenant = {});
/// One DAG's `dags list` object plus "tasks": [{task_id, type, depends_on, trigger_rule}]
/// (`dags show --json`, `GET /api/v1/dags/{dag}`).
nlohmann::ordered_json showDagJson(Store& store, const std::string& dag_id, Timestamp now);

struct RunQuery {
  std::optional<std::string> dag_id;
  std::optional<std::string> state;   ///< a run state name; anything else is bad input
  std::optional<std::string> tenant;
  std::optional<Timestamp> since;     ///< logical date at or after
  std::size_t limit = 1000;
};
/// Runs, newest logical date first. An unknown DAG named in the query: kNotFound.
std::vector<RunRecord> queryRuns(Store& store, const RunQuery& query);

// --- Changes (each one atomic store call, or one per run) --------------------------------------------

struct TriggerRequest {
  std::string dag_id;
  std::string run_id;      ///< empty: manual__<now with microseconds>
  std::string conf_json;   ///< a JSON object's text, or empty
  std::optional<Timestamp> logical_date;
};
/// Creates a manual run; returns its key. A taken run id: conflict; a reserved or malformed id:
/// bad input; an unknown DAG: not found.
RunKey triggerRun(Store& store, Timestamp now, const TriggerRequest& request);
/// The same, of `dag` (loadDag of request.dag_id, read by the caller, who has more use for it).
RunKey triggerRun(Store& store, Timestamp now, const TriggerRequest& request, const LoadedDag& dag);

struct ClearOptions {
  std::vector<std::string> task_ids;  ///< empty: every task of the run
  bool downstream = false;            ///< add every task downstream of task_ids, transitively
  bool failed_only = false;           ///< then keep only failed and upstream_failed instances
  std::string actor;
};
/// `runs clear RUN_ID`: the listed tasks back to `none` (see Store::clearTasks).
OperatorOutcome clearRun(Store& store, Timestamp now, const RunKey& run, const ClearOptions& options);

struct ClearedRun {
  RunKey run;
  OperatorOutcome outcome;
};
/// Told after each slice of a long command's runs (`runs clear` over a range, `dags delete --force`):
/// how many so far, of how many.
using SliceProgress = std::function<void(std::size_t done, std::size_t of)>;

/// The runs `runs clear` over a range hands the store in one clearRuns call: at most kClearSlice,
/// and no more than one run beyond kClearSliceTasks tasks together.
inline constexpr std::size_t kClearSlice = 100;
inline constexpr std::size_t kClearSliceTasks = 20'000;

/// `runs clear --dag D --from T --to T`: what clearRun does, on every run of the DAG whose logical
/// date lies in [from, to], oldest first; runs still queued are passed over. A listed task missing
/// from a version some of those runs have is kNotFound before anything is cleared. The runs go to
/// the store kClearSlice at a time (`progress` told after each slice); a failed clear throws after
/// the rest of its slice was tried, naming how many runs were cleared and how many not reached.
std::vector<ClearedRun> clearRange(Store& store, Timestamp now, const std::string& dag_id, Timestamp from,
                                   Timestamp to, const ClearOptions& options, const SliceProgress& progress = {});

/// `tasks mark`: state is success, failed or skipped (else bad input).
OperatorOutcome markTask(Store& store, Timestamp now, const RunKey& run, const std::string& task_id,
                         const std::string& state, const std::string& actor);
/// `runs mark`: state is success or failed (else bad input).
OperatorOutcome markRun(Store& store, Timestamp now, const RunKey& run, const std::string& state,
                        const std::string& actor);
/// `runs cancel`: note "cancelled by <actor>".
OperatorOutcome cancelRun(Store& store, Timestamp now, const RunKey& run, const std::string& actor);


/// The runs `dags delete --force` hands the store in one cancelRuns call: one script or
/// transaction each, short enough not to hold the store from the scheduler for long.
inline constexpr std::size_t kCancelSlice = 100;

/// `dags delete`: refused (conflict) while the DAG has active runs unless `force`, which cancels
/// them first, kCancelSlice at a time (`progress` told after each slice). Returns the ids of the
/// runs it cancelled. A failed cancel throws after the rest of its slice was tried: the runs
/// cancelled stay cancelled, and the DAG stays.
std::vector<std::string> deleteDag(Store& store, Timestamp now, const std::string& dag_id, bool force,
                                   const std::string& actor, const SliceProgress& progress = {});

/// The runs `dags backfill` hands the store in one createRuns call.
inline constexpr std::size_t kBackfillSlice = 100;

struct BackfillResult {
  std::vector<RunKey> created;           ///< backfill__<logical date>, oldest first
  std::vector<Timestamp> already_taken;  ///< slots some run of the DAG already holds
};
/// `dags backfill`: one run per schedule slot in [from, to]. A DAG without a cron or @every
/// schedule, or from > to: bad input. More than 10,000 slots: bad input (say a narrower range).
/// The runs go to the store kBackfillSlice at a time (`progress` told after each slice); a run the
/// store refuses otherwise than as taken throws after the rest of its slice was tried, naming how
/// many runs were created and how many slots not reached.
BackfillResult backfill(Store& store, Timestamp now, const std::string& dag_id, Timestamp from, Timestamp to,
                        const SliceProgress& progress = {});

/// Pauses or unpauses; not found for an unknown DAG.
void setPaused(Store& store, const std::string& dag_id, bool paused);

// --- Logs ------------------------------------------------------------------------------------------

/// Reads a log through the configured dispatchers' and inline runner's log readers
/// (Backends::readLog).
using LogReadFn = std::function<Result<LogChunk>(const LogQuery&)>;

struct TaskLogRequest {
  RunKey run;
  std::string task_id;
  std::optional<std::int32_t> try_number;  ///< absent: the current attempt
  std::uint64_t offset = 0;
  std::size_t max_bytes = 1 << 20;
};
struct TaskLog {
  LogChunk chunk;
  AttemptRef attempt;
  TaskState state = TaskState::kNone;  ///< of the instance now
};
/// An attempt's log from `offset`. An unknown run or task, a try above the current one, or an
/// attempt that never started: not found (the message says which). `chunk.complete` is true only
/// once the attempt ended and the reader has everything.
TaskLog readTaskLog(Store& store, const LogReadFn& read, const TaskLogRequest& request);

}  // namespace leoflow::host
