// Recorder: the scheduler's metrics (BEHAVIOUR §7; the seed's five events plus tick duration,
// dispatch queue depth and latency, task duration).
//
// Thread-safe and non-blocking: called on the scheduler's hot paths; a recorder that cannot deliver
// drops the sample rather than stall the loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include <leoflow/config.h>
#include <leoflow/context.h>
#include <leoflow/domain.h>

namespace leoflow {

/// Who an attempt belongs to, for the SDK 3.2 task hooks. Views valid during the call only.
/// `task_type` and `tenant` are empty when the replica that received the report does not know them
/// (an attempt adopted after a restart, before its run was loaded).
struct TaskLabels {
  std::string_view dag_id;
  std::string_view task_id;
  std::string_view task_type;
  std::string_view tenant;
};

class Recorder {
 public:
  virtual ~Recorder() = default;
  Recorder() = default;
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  /// A scheduler decision by type (BEHAVIOUR §7.2: "scheduled", "retry", "orphan_reaped", ...).
  virtual void recordSchedulerDecision(std::string_view decision_type) = 0;
  virtual void recordTaskTransition(TaskState from, TaskState to, std::string_view dag_id) = 0;
  /// A task no executor can take ("no_executor").
  virtual void recordUndispatchable(std::string_view reason) = 0;
  /// A leader step-down by reason: lock_released, check_timeout, shutdown.
  virtual void recordSchedulerStepDown(std::string_view reason) = 0;
  /// Time from a step-down to leading again.
  virtual void observeSchedulerReacquire(std::chrono::microseconds elapsed) = 0;
  /// One scheduler tick, start to end.
  virtual void observeTickDuration(std::chrono::microseconds elapsed) = 0;
  /// Attempts waiting for a dispatch worker.
  virtual void setDispatchQueueDepth(std::int64_t depth) = 0;
  /// From `queued` to the executor accepting the attempt.
  virtual void observeDispatchLatency(std::chrono::microseconds elapsed) = 0;
  /// An attempt's run time, from running to its end.
  virtual void observeTaskDuration(std::string_view dag_id, std::string_view task_id,
                                   std::string_view task_type, std::chrono::microseconds elapsed) = 0;

  // SDK 3.1: appended hooks with no-op defaults. The host calls them only on recorders built
  // against SDK 3.1 or newer (a 3.0 plugin's vtable does not have them).

  /// Each tick of the leader (Airflow's scheduler_heartbeat). Followers do not tick.
  virtual void recordSchedulerHeartbeat() {}
  /// An attempt's code started: its executor's running report (its claim) was accepted.
  virtual void recordTaskStart(std::string_view /*dag_id*/, std::string_view /*task_id*/) {}
  /// An attempt ended: its executor's finished report was accepted. `state` is kSuccess or kFailed
  /// (a failure that will be retried is kFailed too). observeTaskDuration follows when this replica
  /// also accepted the attempt's running report.
  virtual void recordTaskFinish(std::string_view /*dag_id*/, std::string_view /*task_id*/, TaskState /*state*/) {}
  /// A run ended, `state` kSuccess or kFailed. `duration`: from the run's start to its end.
  /// `schedule_delay`: from the run's slot (the logical date a scheduled run was created for) to its
  /// start, for scheduled runs only. `tenant`: the run's tenant.
  virtual void recordRunEnd(std::string_view /*dag_id*/, DagRunState /*state*/, std::chrono::microseconds /*duration*/,
                            std::optional<std::chrono::microseconds> /*schedule_delay*/,
                            std::string_view /*tenant*/) {}
  /// The leader's view once per tick (followers never call it): attempts running, attempts queued
  /// (handed to an executor or waiting for a dispatch worker), and the free capacity of every
  /// executor together.
  virtual void setTaskGauges(std::int64_t /*running_tasks*/, std::int64_t /*queued_tasks*/,
                             std::int64_t /*open_slots*/) {}

  // SDK 3.2: the task hooks again with the attempt's labels, the run's tenant among them. The host
  // calls these instead of recordTaskStart, recordTaskFinish and observeTaskDuration on recorders
  // of 3.2 or newer.

  /// An attempt's code started (as recordTaskStart).
  virtual void recordTaskStartLabelled(const TaskLabels& /*task*/) {}
  /// An attempt ended (as recordTaskFinish).
  virtual void recordTaskFinishLabelled(const TaskLabels& /*task*/, TaskState /*state*/) {}
  /// An attempt's run time, from running to its end (as observeTaskDuration).
  virtual void observeTaskDurationLabelled(const TaskLabels& /*task*/, std::chrono::microseconds /*elapsed*/) {}

  // SDK 3.6: decisions of one type counted together. The host calls it instead of `count` calls of
  // recordSchedulerDecision on recorders of 3.6 or newer (older ones get those calls).

  /// `count` scheduler decisions of type `decision_type` at once: a tick leaves every task that
  /// waits for executor capacity counted as one "backpressure" decision, 20,000 of them per tick in a
  /// wide fan-out. The default makes `count` recordSchedulerDecision calls; a recorder that can send a
  /// counter's increment in one sample should.
  virtual void recordSchedulerDecisions(std::string_view decision_type, std::int64_t count) {
    for (std::int64_t i = 0; i < count; ++i) recordSchedulerDecision(decision_type);
  }
};

class RecorderFactory {
 public:
  virtual ~RecorderFactory() = default;
  virtual std::vector<ConfigKey> configKeys() const = 0;
  virtual std::unique_ptr<Recorder> create(const ConfigView& config, const PluginContext& context) = 0;
};

}  // namespace leoflow
