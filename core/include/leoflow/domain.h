// Domain value types shared by the host, the planning core and every plugin.
//
// Plain values only: no I/O, no behaviour beyond naming. The string forms are the ones stored, printed
// and accepted on the command line (BEHAVIOUR §1.1).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace leoflow {

/// A point in time, UTC, microsecond precision (stored times keep at least milliseconds: §8.5).
using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

// ---------------------------------------------------------------------------------------------------
// Task instance states (BEHAVIOUR §1.1). The numeric values are dense so they index tables.
enum class TaskState : std::uint8_t {
  kNone = 0,
  kScheduled,
  kQueued,
  kRunning,
  kSuccess,
  kFailed,
  kSkipped,
  kUpstreamFailed,
  kUpForRetry,
};
inline constexpr std::size_t kTaskStateCount = 9;

inline constexpr std::array<TaskState, kTaskStateCount> kAllTaskStates = {
    TaskState::kNone,   TaskState::kScheduled, TaskState::kQueued,
    TaskState::kRunning, TaskState::kSuccess,  TaskState::kFailed,
    TaskState::kSkipped, TaskState::kUpstreamFailed, TaskState::kUpForRetry,
};

constexpr std::string_view toString(TaskState s) noexcept {
  switch (s) {
    case TaskState::kNone: return "none";
    case TaskState::kScheduled: return "scheduled";
    case TaskState::kQueued: return "queued";
    case TaskState::kRunning: return "running";
    case TaskState::kSuccess: return "success";
    case TaskState::kFailed: return "failed";
    case TaskState::kSkipped: return "skipped";
    case TaskState::kUpstreamFailed: return "upstream_failed";
    case TaskState::kUpForRetry: return "up_for_retry";
  }
  return "?";
}

/// Parses one of the nine state names; anything else (including "" and "deferred") is nullopt.
constexpr std::optional<TaskState> parseTaskState(std::string_view name) noexcept {
  for (TaskState s : kAllTaskStates) {
    if (toString(s) == name) return s;
  }
  return std::nullopt;
}

/// success, failed, skipped and upstream_failed end an attempt for good (a failed task may still be
/// retried by the planner, which is a new attempt).
constexpr bool isTerminal(TaskState s) noexcept {
  return s == TaskState::kSuccess || s == TaskState::kFailed || s == TaskState::kSkipped ||
         s == TaskState::kUpstreamFailed;
}

// ---------------------------------------------------------------------------------------------------
// Dag run states (BEHAVIOUR §1.1).
enum class DagRunState : std::uint8_t { kQueued = 0, kRunning, kSuccess, kFailed };
inline constexpr std::size_t kDagRunStateCount = 4;

constexpr std::string_view toString(DagRunState s) noexcept {
  switch (s) {
    case DagRunState::kQueued: return "queued";
    case DagRunState::kRunning: return "running";
    case DagRunState::kSuccess: return "success";
    case DagRunState::kFailed: return "failed";
  }
  return "?";
}

constexpr std::optional<DagRunState> parseDagRunState(std::string_view name) noexcept {
  for (auto s : {DagRunState::kQueued, DagRunState::kRunning, DagRunState::kSuccess,
                 DagRunState::kFailed}) {
    if (toString(s) == name) return s;
  }
  return std::nullopt;
}

constexpr bool isTerminal(DagRunState s) noexcept {
  return s == DagRunState::kSuccess || s == DagRunState::kFailed;
}

// ---------------------------------------------------------------------------------------------------
// Trigger rules, with Airflow's semantics (ARCHITECTURE §8.1).
enum class TriggerRule : std::uint8_t {
  kAllSuccess = 0,
  kAllFailed,
  kAllDone,
  kAllSkipped,
  kOneSuccess,
  kOneFailed,
  kOneDone,
  kNoneFailed,
  kNoneFailedMinOneSuccess,
  kNoneSkipped,
  kAllDoneMinOneSuccess,
  kAlways,
};
inline constexpr std::size_t kTriggerRuleCount = 12;

inline constexpr std::array<TriggerRule, kTriggerRuleCount> kAllTriggerRules = {
    TriggerRule::kAllSuccess, TriggerRule::kAllFailed,  TriggerRule::kAllDone,
    TriggerRule::kAllSkipped, TriggerRule::kOneSuccess, TriggerRule::kOneFailed,
    TriggerRule::kOneDone,    TriggerRule::kNoneFailed, TriggerRule::kNoneFailedMinOneSuccess,
    TriggerRule::kNoneSkipped, TriggerRule::kAllDoneMinOneSuccess, TriggerRule::kAlways,
};

constexpr std::string_view toString(TriggerRule r) noexcept {
  switch (r) {
    case TriggerRule::kAllSuccess: return "all_success";
    case TriggerRule::kAllFailed: return "all_failed";
    case TriggerRule::kAllDone: return "all_done";
    case TriggerRule::kAllSkipped: return "all_skipped";
    case TriggerRule::kOneSuccess: return "one_success";
    case TriggerRule::kOneFailed: return "one_failed";
    case TriggerRule::kOneDone: return "one_done";
    case TriggerRule::kNoneFailed: return "none_failed";
    case TriggerRule::kNoneFailedMinOneSuccess: return "none_failed_min_one_success";
    case TriggerRule::kNoneSkipped: return "none_skipped";
    case TriggerRule::kAllDoneMinOneSuccess: return "all_done_min_one_success";
    case TriggerRule::kAlways: return "always";
  }
  return "?";
}

/// Parses a rule name. The empty string is the default rule, all_success; an unknown name is nullopt
/// (a validation error, never an eternal wait: BEHAVIOUR §10 item 18).
constexpr std::optional<TriggerRule> parseTriggerRule(std::string_view name) noexcept {
  if (name.empty()) return TriggerRule::kAllSuccess;
  for (TriggerRule r : kAllTriggerRules) {
    if (toString(r) == name) return r;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------------
// DAG specification (ARCHITECTURE §6), after defaults are applied.

/// How a task runs: in the scheduler's own process (http_api only) or handed to a dispatcher.
enum class ExecutionMode : std::uint8_t { kPod = 0, kInline };

constexpr std::string_view toString(ExecutionMode m) noexcept {
  return m == ExecutionMode::kInline ? "inline" : "pod";
}

struct HttpRequestSpec {
  std::string method = "GET";
  std::string url;
  std::map<std::string, std::string> headers;
  std::string body_json;  ///< the request body as JSON text; empty = no body
  int timeout_seconds = 0;  ///< 0 = the runner's default
  std::vector<int> success_status_codes;  ///< empty = 200, 201, 202, 204
};

struct Toleration {
  std::string key;
  std::string op;  ///< "Equal" or "Exists" (Kubernetes `operator`)
  std::string value;
  std::string effect;
  std::optional<std::int64_t> toleration_seconds;
};

struct ExecutionHints {
  std::map<std::string, std::string> node_selector;
  std::vector<Toleration> tolerations;
  std::string service_account;
  std::string image_pull_policy;  ///< empty = the dispatcher's default
};

struct ResourceSpec {
  std::map<std::string, std::string> requests;  ///< e.g. cpu=500m, memory=512Mi
  std::map<std::string, std::string> limits;
};

struct TaskSpec {
  std::string task_id;
  std::string type;  ///< bash, python, http_api
  std::vector<std::string> depends_on;
  TriggerRule trigger_rule = TriggerRule::kAllSuccess;
  int retries = 0;
  int retry_delay_seconds = 0;
  int execution_timeout_seconds = 0;  ///< 0 = no timeout
  ExecutionMode execution_mode = ExecutionMode::kPod;
  std::string entrypoint;
  std::map<std::string, std::string> env;
  std::optional<HttpRequestSpec> http_request;
  std::string image;
  ResourceSpec resources;
  ExecutionHints execution;

  /// Attempts allowed in all: the first try plus the retries.
  int maxTries() const noexcept { return retries + 1; }
};

struct DagSpec {
  std::string dag_id;
  std::string schedule;           ///< empty = manual only
  std::string schedule_timezone;  ///< empty = UTC
  std::optional<Timestamp> start_date;
  std::optional<Timestamp> end_date;
  bool catchup = false;           ///< Airflow 3's default (§8.5)
  int max_active_runs = 16;       ///< <= 0 = unlimited
  std::vector<TaskSpec> tasks;
  /// SDK 3.0: who the DAG belongs to, `[a-z0-9-]{1,63}` (docs/architecture.md, tenants). Runs keep
  /// it; dispatchers and the InlineRunner receive it; tasks see it as LEOFLOW_TENANT.
  std::string tenant = "default";
};

// ---------------------------------------------------------------------------------------------------
// Identity of runs and attempts.

/// The fencing token: issued by the Store to each new leader, higher for every new leader
/// (ARCHITECTURE §8.7). Every scheduler decision carries it.
using Term = std::int64_t;

/// A dag run: the user-facing run id is unique per DAG (§8.5), so the pair names a run.
struct RunKey {
  std::string dag_id;
  std::string run_id;
  friend bool operator==(const RunKey&, const RunKey&) = default;
  friend auto operator<=>(const RunKey&, const RunKey&) = default;
};

/// One attempt of one task: dispatch is idempotent per attempt, executor reports are about one.
struct AttemptRef {
  RunKey run;
  std::string task_id;
  std::int32_t try_number = 1;  ///< the first attempt is try 1 (§8.5)
  friend bool operator==(const AttemptRef&, const AttemptRef&) = default;
  friend auto operator<=>(const AttemptRef&, const AttemptRef&) = default;
};

/// One start of an attempt's code: an **execution** (ARCHITECTURE §8.13). Its id is made by the
/// dispatcher that starts it, unique across hosts and restarts (leoflow/execution_id.h); every
/// executor report carries it, and the store lets only the execution that claimed the attempt run it.
struct ExecutionRef {
  AttemptRef attempt;
  std::string execution_id;
  friend bool operator==(const ExecutionRef&, const ExecutionRef&) = default;
};

// ---------------------------------------------------------------------------------------------------
// Stored records.

/// How a run came to be. SDK 3.0 adds kBackfill (`leoflow dags backfill`).
enum class RunTrigger : std::uint8_t { kScheduled = 0, kManual, kBackfill };

constexpr std::string_view toString(RunTrigger t) noexcept {
  switch (t) {
    case RunTrigger::kManual: return "manual";
    case RunTrigger::kBackfill: return "backfill";
    case RunTrigger::kScheduled: return "scheduled";
  }
  return "?";
}

constexpr std::optional<RunTrigger> parseRunTrigger(std::string_view name) noexcept {
  for (auto t : {RunTrigger::kScheduled, RunTrigger::kManual, RunTrigger::kBackfill}) {
    if (toString(t) == name) return t;
  }
  return std::nullopt;
}

/// One task instance: the current attempt of one task in one run.
struct TaskInstance {
  std::string task_id;
  TaskState state = TaskState::kNone;
  std::int32_t try_number = 1;
  std::int32_t max_tries = 1;
  std::optional<Timestamp> scheduled_at;
  std::optional<Timestamp> queued_at;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> ended_at;
  std::optional<Timestamp> last_heartbeat_at;
  std::optional<int> exit_code;
  std::string note;  ///< why it is where it is (a failure message, an undispatchable reason)
  /// SDK 3.0: the execution that claimed the current attempt (§8.13); empty before the claim.
  std::string execution_id;
};

/// A dag run with its task instances (empty until the run is materialized).
struct RunRecord {
  RunKey key;
  std::int64_t dag_version = 0;  ///< the DAG version the run is bound to (counts from 1)
  DagRunState state = DagRunState::kQueued;
  RunTrigger trigger = RunTrigger::kManual;
  Timestamp logical_date{};
  std::optional<Timestamp> queued_at;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> ended_at;
  std::string conf_json;  ///< the run's conf as JSON text; empty = none
  std::string note;
  std::vector<TaskInstance> tasks;
  /// SDK 3.0: issued by the store when the run is created, > 0, never reused — also not across a
  /// DAG's delete and re-create — so lock files, pod names and log paths keyed on it never meet an
  /// older run that had the same run id.
  std::int64_t uid = 0;
  std::string tenant = "default";  ///< SDK 3.0: the DAG's tenant when the run was created
};

/// A run that is queued or running, as listed before it is loaded.
struct ActiveRun {
  RunKey key;
  std::int64_t dag_version = 0;
  DagRunState state = DagRunState::kQueued;
  std::optional<Timestamp> queued_at;
};

/// A DAG as listed by `dags list`.
struct DagSummary {
  std::string dag_id;
  std::string schedule;
  bool paused = false;
  std::int64_t version = 0;  ///< current version, counting from 1
  std::string tenant = "default";  ///< SDK 3.0: the current version's tenant
};

/// A DAG with a schedule that is neither paused nor manual, as the run creator sees it
/// (BEHAVIOUR §3.1, seed `ScheduledDAG`).
struct ScheduledDag {
  std::string dag_id;
  std::int64_t version = 0;
  std::string schedule;
  std::string schedule_timezone;
  std::optional<Timestamp> start_date;
  std::optional<Timestamp> end_date;
  bool catchup = false;
  int max_active_runs = 16;  ///< <= 0 = unlimited
  /// Latest logical date of the DAG's *scheduled* runs (manual runs do not move the schedule:
  /// BEHAVIOUR §10 item 26).
  std::optional<Timestamp> last_logical;
  /// Whether the DAG ever had a run of any kind (an @once DAG fires only for a DAG never run).
  bool ever_run = false;
  std::string tenant = "default";  ///< SDK 3.0: the current version's tenant, for NewRun::tenant
};

/// How an attempt ended, as its executor reports it.
struct TaskOutcome {
  bool success = false;
  std::optional<int> exit_code;
  std::string message;  ///< becomes the task's note (e.g. "exit code 3", "timed out after 60 s")
};

// Reaper candidates (BEHAVIOUR §4).

struct OrphanCandidate {
  RunKey run;
  std::optional<Timestamp> last_activity;
};

struct AgentLostCandidate {
  AttemptRef attempt;
  std::optional<Timestamp> last_heartbeat;
};

struct DispatchLostCandidate {
  AttemptRef attempt;
  std::optional<Timestamp> queued_at;
};

}  // namespace leoflow
