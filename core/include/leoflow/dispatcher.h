// Dispatcher: hands a queued attempt to an executor (local processes, Kubernetes pods, ...).
//
// Dispatch is idempotent per attempt (run, task, try): a second dispatch of an attempt that is
// already running must not start it twice (dispatcher-local finds the attempt's lock file,
// dispatcher-k8s gets 409 for the attempt's pod name). The executor reports running, heartbeats and
// the outcome through PluginContext::events().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <leoflow/config.h>
#include <leoflow/context.h>
#include <leoflow/domain.h>
#include <leoflow/status.h>

namespace leoflow {

/// One attempt to run.
struct DispatchRequest {
  AttemptRef attempt;
  TaskSpec task;               ///< with the DAG's default_args applied
  Timestamp logical_date{};
  std::string conf_json;       ///< the run's conf; empty = none
  /// SDK 3.0: the run's store-issued uid, never reused: idempotency keys (lock files, pod names)
  /// and log paths use it, so a re-created run id never meets an old run's leftovers.
  std::int64_t run_uid = 0;
  std::string tenant = "default";  ///< SDK 3.0: the DAG's tenant; tasks see LEOFLOW_TENANT
};

/// SDK 3.0: which part of an attempt's log to read (`leoflow tasks logs`, the HTTP API).
struct LogQuery {
  AttemptRef attempt;
  std::int64_t run_uid = 0;
  std::string execution_id;    ///< the attempt's claim (§8.13), naming the host that ran it; may be empty
  std::uint64_t offset = 0;    ///< the first byte wanted
  std::size_t max_bytes = 1 << 20;
};

/// SDK 3.0: a piece of a log. A log starts with a header (attempt, host, execution, command, start)
/// and ends with a footer (outcome, exit code, end time).
struct LogChunk {
  std::string text;
  std::uint64_t next_offset = 0;  ///< offset + text.size()
  bool complete = false;          ///< the attempt ended and everything from offset on is in text
};

/// SDK 3.0: reads attempts' logs without running anything. Thread-safe.
class LogReader {
 public:
  virtual ~LogReader() = default;
  /// kNotFound when this reader has no log for the attempt; the message says where it is when
  /// known (e.g. "the log is on host worker-2").
  virtual Result<LogChunk> read(const LogQuery& query) = 0;
};

enum class DispatchOutcome : std::uint8_t {
  kStarted,         ///< the attempt was handed over
  kAlreadyRunning,  ///< the attempt was handed over before (idempotent re-dispatch)
  kAtCapacity,      ///< no room after all; the host returns the task to `scheduled` (§8.8)
};

/// Thread-safe: the host's dispatch pool calls dispatch() from several workers at once.
class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  Dispatcher() = default;
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// Task types this dispatcher can run ("bash", "python", ...); empty = any type.
  virtual std::vector<std::string> taskTypes() const = 0;
  /// How many more attempts it can take right now; the host moves no more tasks to queued (§8.8).
  virtual std::size_t freeCapacity() const = 0;
  /// Hands one attempt over. Errors are retried by the host with back-off a bounded number of
  /// times; kInvalidArgument means the task can never run here (the attempt fails at once).
  virtual Result<DispatchOutcome> dispatch(const DispatchRequest& request) = 0;
  /// Called by the leader every tick: find attempts whose executor vanished, adopt or end
  /// leftovers of a previous incarnation. The default does nothing.
  virtual Status reconcile() { return {}; }
  /// Stops taking work and releases resources; running attempts are left to run and report.
  virtual void shutdown() = 0;
  /// SDK 3.0: the attempts this dispatcher's executors hold now (started or adopted, not yet
  /// ended). The host's stop watcher compares them with the store and stops those that stopped
  /// being current (cleared, marked, cancelled, reaped, deleted).
  virtual std::vector<AttemptRef> heldAttempts() const { return {}; }
  /// SDK 3.0: stops the attempt if this dispatcher holds it, without blocking: SIGTERM (or a pod's
  /// deletion) at once, SIGKILL after the grace. Ok when it holds no such attempt. Nothing more is
  /// reported for a stopped attempt except, at most, an outcome the store refuses.
  virtual Status stop(const AttemptRef& attempt) {
    (void)attempt;
    return {};
  }
};

class DispatcherFactory {
 public:
  virtual ~DispatcherFactory() = default;
  virtual std::vector<ConfigKey> configKeys() const = 0;
  virtual std::unique_ptr<Dispatcher> create(const ConfigView& config, const PluginContext& context) = 0;
  /// SDK 3.0: a log reader over the same configuration that starts no dispatcher (no warm shells,
  /// no adoption), for `leoflow tasks logs` and the HTTP API. nullptr: this dispatcher keeps no logs.
  virtual std::unique_ptr<LogReader> createLogReader(const ConfigView& config, const PluginContext& context) {
    (void)config;
    (void)context;
    return nullptr;
  }
};

}  // namespace leoflow
