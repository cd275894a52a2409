// A TaskEvents sink that records every executor report and lets a test wait for them: what the
// Dispatcher contract suite (tests/contract/dispatcher_contract.h) lends every dispatcher, and what
// any test that drives a real executor can use to see what the store would have been told.
//
// It accepts every report, as a store does for an attempt that is current; tests about refusals
// (kConflict) need the store's guards and belong to the plugin's own tests.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <leoflow/context.h>
#include <leoflow/domain.h>
#include <leoflow/status.h>

namespace leoflow::testing {

enum class TaskReportKind : std::uint8_t { kRunning, kHeartbeat, kFinished };

std::string_view toString(TaskReportKind kind) noexcept;

/// One call the executor made, as it arrived.
struct TaskReport {
  TaskReportKind kind = TaskReportKind::kRunning;
  AttemptRef attempt;
  std::string execution_id;  ///< the execution that reported (ARCHITECTURE §8.13)
  TaskOutcome outcome;  ///< finished reports only
  std::chrono::steady_clock::time_point at;
};

/// "running dag/run/task#try", for failure messages.
std::string describe(const TaskReport& report);
std::string describe(const AttemptRef& attempt);

/// Thread-safe: executors report from threads of their own.
class RecordingTaskEvents final : public TaskEvents {
 public:
  Status running(const ExecutionRef& execution) override;
  Status heartbeat(const ExecutionRef& execution) override;
  Status finished(const ExecutionRef& execution, const TaskOutcome& outcome) override;

  /// Every report so far, in arrival order.
  std::vector<TaskReport> reports() const;
  /// The reports about exactly `attempt` (run, task and try), in arrival order.
  std::vector<TaskReport> reportsFor(const AttemptRef& attempt) const;
  int count(TaskReportKind kind, const AttemptRef& attempt) const;
  /// Reports of `kind` about any attempt.
  int countAll(TaskReportKind kind) const;

  /// Waits until `count(kind, attempt) >= n`; false when `timeout` passed first.
  bool waitFor(TaskReportKind kind, const AttemptRef& attempt, int n, std::chrono::milliseconds timeout) const;
  /// Waits until `countAll(kind) >= n`.
  bool waitForAll(TaskReportKind kind, int n, std::chrono::milliseconds timeout) const;
  /// The first finished report about `attempt`, waiting up to `timeout` for it.
  std::optional<TaskReport> waitFinished(const AttemptRef& attempt, std::chrono::milliseconds timeout) const;

 private:
  Status record(TaskReportKind kind, const ExecutionRef& execution, const TaskOutcome& outcome);
  bool waitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) const;

  mutable std::mutex mutex_;
  mutable std::condition_variable arrived_;
  std::vector<TaskReport> reports_;
};

}  // namespace leoflow::testing
