// What the host lends a plugin: its logger, a clock, the TaskEvents sink and the Recorder.
//
// Plugins log only through the logger they are lent (named "plugin.<name>") and never touch
// spdlog's global registry, which does not span shared libraries.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <spdlog/logger.h>

#include <leoflow/domain.h>
#include <leoflow/status.h>

namespace leoflow {

class Recorder;

/// The time source. The host's clock is the wall clock; tests lend a controllable one.
/// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp now() const = 0;
};

/// Where executors report what happened to an attempt (ARCHITECTURE §2, §8.7). Reports are facts
/// about one attempt: the host writes them guarded by (try_number, state), from any replica, and
/// a report about an attempt that is no longer current is refused with kConflict (never applied to
/// the next attempt, never resurrecting a finished task).
///
/// Thread-safe; may be called from any thread the plugin owns. Calls may block on store I/O.
class TaskEvents {
 public:
  virtual ~TaskEvents() = default;
  TaskEvents() = default;
  TaskEvents(const TaskEvents&) = delete;
  TaskEvents& operator=(const TaskEvents&) = delete;

  /// The claim (ARCHITECTURE §8.13): this execution is about to run the attempt's code
  /// (queued → running; also stamps its first heartbeat, §8.8). Ok means it may run the code, and
  /// it must not before; sent again with the same id (a retry after a lost reply, an adopter) it is
  /// ok again. kConflict: another execution claimed the attempt, or it is no longer current — the
  /// code must not run.
  virtual Status running(const ExecutionRef& execution) = 0;
  /// The execution is alive. Report at least every PluginContext::heartbeatInterval(). Refused
  /// (kConflict) for an execution that did not claim the attempt.
  virtual Status heartbeat(const ExecutionRef& execution) = 0;
  /// The execution ended (running → success or failed). Refused (kConflict) for an execution that
  /// did not claim the attempt.
  virtual Status finished(const ExecutionRef& execution, const TaskOutcome& outcome) = 0;
};

/// Everything the host lends one plugin object. References stay valid for the object's lifetime.
class PluginContext {
 public:
  PluginContext(std::string plugin_name, std::shared_ptr<spdlog::logger> logger, const Clock& clock,
                TaskEvents& events, Recorder& recorder, std::chrono::milliseconds heartbeat_interval,
                std::string replica_id)
      : plugin_name_(std::move(plugin_name)),
        logger_(std::move(logger)),
        clock_(&clock),
        events_(&events),
        recorder_(&recorder),
        heartbeat_interval_(heartbeat_interval),
        replica_id_(std::move(replica_id)) {}

  /// The plugin's name as configured, e.g. "store-redis".
  const std::string& pluginName() const noexcept { return plugin_name_; }
  /// The plugin's own logger ("plugin.<name>"); share it with threads the plugin starts.
  const std::shared_ptr<spdlog::logger>& logger() const noexcept { return logger_; }
  const Clock& clock() const noexcept { return *clock_; }
  TaskEvents& events() const noexcept { return *events_; }
  Recorder& recorder() const noexcept { return *recorder_; }
  /// How often a running attempt must heartbeat: a sixth of the agent-lost threshold, at least
  /// 1 s (§8.8).
  std::chrono::milliseconds heartbeatInterval() const noexcept { return heartbeat_interval_; }
  /// This scheduler process's identity (host name, pid and a random suffix); leases are held in
  /// its name.
  const std::string& replicaId() const noexcept { return replica_id_; }

 private:
  std::string plugin_name_;
  std::shared_ptr<spdlog::logger> logger_;
  const Clock* clock_;
  TaskEvents* events_;
  Recorder* recorder_;
  std::chrono::milliseconds heartbeat_interval_;
  std::string replica_id_;
};

}  // namespace leoflow
