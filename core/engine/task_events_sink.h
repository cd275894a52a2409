// The host's TaskEvents: executor reports become attempt-scoped store writes (ARCHITECTURE §8.7),
// accepted on every replica, and wake the loop so a finished task's downstream starts at once: an
// accepted report goes to the loop as a fact it mirrors into its cache (WakeSignal::OwnReport), and
// the report's echo on the change feed is skipped.
// Accepted reports are also counted (Recorder: task start, task finish and the attempt's duration,
// timed from the running report this replica accepted), labelled with the task's type and the run's
// tenant that the engine noted when it handed the attempt over (an adopted attempt has none).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <spdlog/logger.h>

#include <leoflow/context.h>
#include <leoflow/recorder.h>
#include <leoflow/store.h>

#include "engine/wake_signal.h"

namespace leoflow::engine {

class TaskEventsSink final : public TaskEvents {
 public:
  /// `store` should already be exception-guarded; all references must outlive the sink.
  /// `recorder` (optional) must be exception-safe, e.g. a RecorderFanout.
  TaskEventsSink(Store& store, const Clock& clock, WakeSignal& wake, std::shared_ptr<spdlog::logger> logger,
                 Recorder* recorder = nullptr);

  Status running(const ExecutionRef& execution) override;
  Status heartbeat(const ExecutionRef& execution) override;
  Status finished(const ExecutionRef& execution, const TaskOutcome& outcome) override;

  /// The engine handed `attempt` over: its reports' metrics carry this task type and tenant.
  void noteHandedOver(const AttemptRef& attempt, std::string task_type, std::string tenant);

  /// When (sink clock) the store last answered a report here with kUnavailable; nullopt if never.
  /// The agent-lost reaper pauses a threshold after it: executors retry such a report with a
  /// back-off, and the report may land only after the engine's own calls succeed again.
  std::optional<Timestamp> lastUnavailableReport() const;

 private:
  Store& store_;
  const Clock& clock_;
  WakeSignal& wake_;
  std::shared_ptr<spdlog::logger> logger_;
  Recorder* recorder_;
  /// When each execution's running report was accepted here, for its duration; bounded (an
  /// execution that never reports its end is forgotten when the map is full).
  std::mutex started_mutex_;
  std::map<std::string, Timestamp> started_;
  /// Labels of attempts handed over here, until their finished report; bounded like started_.
  struct Labels {
    std::string task_type;
    std::string tenant;
  };
  Labels labelsOf(const AttemptRef& attempt, bool forget);
  /// A report the store did not accept: no echo to expect, and the instance read back; an
  /// unreachable store is noted for lastUnavailableReport().
  void notAccepted(const ExecutionRef& execution, const Status& status);
  void noteUnavailable();
  std::atomic<std::int64_t> last_unavailable_us_{0};  // micros since the epoch, 0 = never
  std::mutex labels_mutex_;
  std::map<AttemptRef, Labels> labels_;
};

}  // namespace leoflow::engine
