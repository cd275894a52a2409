#include "support/recording_task_events.h"

#include <algorithm>

namespace leoflow::testing {

std::string_view toString(TaskReportKind kind) noexcept {
  switch (kind) {
    case TaskReportKind::kRunning: return "running";
    case TaskReportKind::kHeartbeat: return "heartbeat";
    case TaskReportKind::kFinished: return "finished";
  }
  return "?";
}

std::string describe(const AttemptRef& attempt) {
  return attempt.run.dag_id + "/" + attempt.run.run_id + "/" + attempt.task_id + "#" +
         std::to_string(attempt.try_number);
}

std::string describe(const TaskReport& report) {
  std::string text = std::string(toString(report.kind)) + " " + describe(report.attempt);
  if (report.kind == TaskReportKind::kFinished) {
    text += report.outcome.success ? " success" : " failed";
    if (report.outcome.exit_code) text += " exit_code=" + std::to_string(*report.outcome.exit_code);
    if (!report.outcome.message.empty()) text += " \"" + report.outcome.message + "\"";
  }
  return text;
}

Status RecordingTaskEvents::running(const ExecutionRef& execution) {
  return record(TaskReportKind::kRunning, execution, {});
}

Status RecordingTaskEvents::heartbeat(const ExecutionRef& execution) {
  return record(TaskReportKind::kHeartbeat, execution, {});
}

Status RecordingTaskEvents::finished(const ExecutionRef& execution, const TaskOutcome& outcome) {
  return record(TaskReportKind::kFinished, execution, outcome);
}

Status RecordingTaskEvents::record(TaskReportKind kind, const ExecutionRef& execution, const TaskOutcome& outcome) {
  {
    std::lock_guard lock(mutex_);
    reports_.push_back(
        TaskReport{kind, execution.attempt, execution.execution_id, outcome, std::chrono::steady_clock::now()});
  }
  arrived_.notify_all();
  return Status::ok();
}

std::vector<TaskReport> RecordingTaskEvents::reports() const {
  std::lock_guard lock(mutex_);
  return reports_;
}

std::vector<TaskReport> RecordingTaskEvents::reportsFor(const AttemptRef& attempt) const {
  std::lock_guard lock(mutex_);
  std::vector<TaskReport> out;
  std::copy_if(reports_.begin(), reports_.end(), std::back_inserter(out),
               [&](const TaskReport& r) { return r.attempt == attempt; });
  return out;
}

int RecordingTaskEvents::count(TaskReportKind kind, const AttemptRef& attempt) const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(std::count_if(reports_.begin(), reports_.end(), [&](const TaskReport& r) {
    return r.kind == kind && r.attempt == attempt;
  }));
}

int RecordingTaskEvents::countAll(TaskReportKind kind) const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(
      std::count_if(reports_.begin(), reports_.end(), [&](const TaskReport& r) { return r.kind == kind; }));
}

// `done` reads reports_ and runs with mutex_ held.
bool RecordingTaskEvents::waitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return arrived_.wait_for(lock, timeout, done);
}

bool RecordingTaskEvents::waitFor(TaskReportKind kind, const AttemptRef& attempt, int n,
                                  std::chrono::milliseconds timeout) const {
  return waitUntil(
      [&] {
        return std::count_if(reports_.begin(), reports_.end(), [&](const TaskReport& r) {
                 return r.kind == kind && r.attempt == attempt;
               }) >= n;
      },
      timeout);
}

bool RecordingTaskEvents::waitForAll(TaskReportKind kind, int n, std::chrono::milliseconds timeout) const {
  return waitUntil(
      [&] {
        return std::count_if(reports_.begin(), reports_.end(), [&](const TaskReport& r) { return r.kind == kind; }) >=
               n;
      },
      timeout);
}

std::optional<TaskReport> RecordingTaskEvents::waitFinished(const AttemptRef& attempt,
                                                             std::chrono::milliseconds timeout) const {
  std::optional<TaskReport> found;
  waitUntil(
      [&] {
        auto it = std::find_if(reports_.begin(), reports_.end(), [&](const TaskReport& r) {
          return r.kind == TaskReportKind::kFinished && r.attempt == attempt;
        });
        if (it == reports_.end()) return false;
        found = *it;
        return true;
      },
      timeout);
  return found;
}

}  // namespace leoflow::testing
