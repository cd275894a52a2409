// Dispatcher: hands a queued attempt to an executor (local processes, Kubernetes pods, ...).
//
// Dispatch is idempotent per attempt (run, task, try): a second dispatch of an attempt that is
// already running must not start it twice (dispatcher-local finds the attempt's lock file,
// dispatcher-k8s gets 409 for the attempt's pod name). The executor reports running, heartbeats and
// the outcome through PluginContext::events().
#pragma once

#include <cstddef>
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
};

class DispatcherFactory {
 public:
  virtual ~DispatcherFactory() = default;
  virtual std::vector<ConfigKey> configKeys() const = 0;
  virtual std::unique_ptr<Dispatcher> create(const ConfigView& config, const PluginContext& context) = 0;
};

}  // namespace leoflow
