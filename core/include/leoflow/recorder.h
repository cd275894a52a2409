// Recorder: the scheduler's metrics (BEHAVIOUR §7; the seed's five events plus tick duration,
// dispatch queue depth and latency, task duration).
//
// Thread-safe and non-blocking: called on the scheduler's hot paths; a recorder that cannot deliver
// drops the sample rather than stall the loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include <leoflow/config.h>
#include <leoflow/context.h>
#include <leoflow/domain.h>

namespace leoflow {

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
};

class RecorderFactory {
 public:
  virtual ~RecorderFactory() = default;
  virtual std::vector<ConfigKey> configKeys() const = 0;
  virtual std::unique_ptr<Recorder> create(const ConfigView& config, const PluginContext& context) = 0;
};

}  // namespace leoflow
