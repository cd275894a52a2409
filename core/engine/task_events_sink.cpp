#include "engine/task_events_sink.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

namespace leoflow::engine {

namespace {
constexpr std::size_t kMaxTimedExecutions = 100'000;
}  // namespace

TaskEventsSink::TaskEventsSink(Store& store, const Clock& clock, WakeSignal& wake,
                               std::shared_ptr<spdlog::logger> logger, Recorder* recorder)
    : store_(store), clock_(clock), wake_(wake), logger_(std::move(logger)), recorder_(recorder) {}

Status TaskEventsSink::running(const ExecutionRef& e) {
  const AttemptRef& a = e.attempt;
  const Timestamp at = clock_.now();
  wake_.expectOwnReport(e.execution_id);
  Status s = store_.reportRunning(e, at);
  if (s.isOk()) {
    // What the store wrote is known: the leader mirrors it (and skips its echo).
    wake_.ownReportAccepted(OwnReport{e, false, TaskState::kRunning, at, std::nullopt, {}});
    if (recorder_ != nullptr) {
      const Labels labels = labelsOf(a, false);
      recorder_->recordTaskStartLabelled(TaskLabels{a.run.dag_id, a.task_id, labels.task_type, labels.tenant});
      std::lock_guard lock(started_mutex_);
      if (started_.size() >= kMaxTimedExecutions) started_.clear();
      started_.try_emplace(e.execution_id, at);  // a repeated claim keeps the first time
    }
    logger_->debug("task running dag_id={} run_id={} task_id={} try={} execution={}", a.run.dag_id, a.run.run_id,
                   a.task_id, a.try_number, e.execution_id);
    return s;
  }
  notAccepted(e, s);
  if (s.code() == StatusCode::kConflict) {
    // A claim refused: the attempt moved on (reaped, retried, finished) or another execution holds
    // it (ARCHITECTURE §8.13). The executor must not run the code (BEHAVIOUR §10 item 3).
    logger_->info("claim refused dag_id={} run_id={} task_id={} try={} execution={} reason={}", a.run.dag_id,
                  a.run.run_id, a.task_id, a.try_number, e.execution_id, s.message());
  } else {
    logger_->warn("recording running report failed dag_id={} run_id={} task_id={} try={} error={}", a.run.dag_id,
                  a.run.run_id, a.task_id, a.try_number, s.toString());
  }
  return s;
}

Status TaskEventsSink::heartbeat(const ExecutionRef& e) {
  const AttemptRef& a = e.attempt;
  Status s = store_.reportHeartbeat(e, clock_.now());
  if (s.code() == StatusCode::kUnavailable) noteUnavailable();
  if (!s.isOk() && s.code() != StatusCode::kConflict) {
    logger_->warn("recording heartbeat failed dag_id={} run_id={} task_id={} try={} error={}", a.run.dag_id,
                  a.run.run_id, a.task_id, a.try_number, s.toString());
  }
  return s;
}

Status TaskEventsSink::finished(const ExecutionRef& e, const TaskOutcome& outcome) {
  const AttemptRef& a = e.attempt;
  const Timestamp at = clock_.now();
  wake_.expectOwnReport(e.execution_id);
  Status s = store_.reportFinished(e, outcome, at);
  if (s.isOk()) {
    wake_.ownReportAccepted(OwnReport{e, true, outcome.success ? TaskState::kSuccess : TaskState::kFailed, at,
                                      outcome.exit_code, outcome.message});
    if (recorder_ != nullptr) {
      const Labels labels = labelsOf(a, true);
      const TaskLabels task{a.run.dag_id, a.task_id, labels.task_type, labels.tenant};
      recorder_->recordTaskFinishLabelled(task, outcome.success ? TaskState::kSuccess : TaskState::kFailed);
      std::optional<Timestamp> started;
      {
        std::lock_guard lock(started_mutex_);
        if (auto it = started_.find(e.execution_id); it != started_.end()) {
          started = it->second;
          started_.erase(it);
        }
      }
      if (started) recorder_->observeTaskDurationLabelled(task, std::max(at - *started, Timestamp::duration{0}));
    }
    logger_->debug("task finished dag_id={} run_id={} task_id={} try={} success={} exit_code={}", a.run.dag_id,
                   a.run.run_id, a.task_id, a.try_number, outcome.success,
                   outcome.exit_code ? std::to_string(*outcome.exit_code) : "none");
    return s;
  }
  notAccepted(e, s);
  if (s.code() == StatusCode::kConflict) {
    logger_->info("stale finished report ignored dag_id={} run_id={} task_id={} try={} reason={}", a.run.dag_id,
                  a.run.run_id, a.task_id, a.try_number, s.message());
  } else {
    logger_->error("recording finished report failed dag_id={} run_id={} task_id={} try={} error={}", a.run.dag_id,
                   a.run.run_id, a.task_id, a.try_number, s.toString());
  }
  return s;
}

void TaskEventsSink::notAccepted(const ExecutionRef& e, const Status& status) {
  if (status.code() == StatusCode::kUnavailable) noteUnavailable();
  // Refused, or no answer: nothing to mirror. A write whose reply was lost may still have applied,
  // and its echo may have come and gone as expected: the leader reads the instance to be sure.
  wake_.forgetOwnReport(e.execution_id);
  wake_.taskChanged(e.attempt.run, e.attempt.task_id);
}

void TaskEventsSink::noteUnavailable() {
  last_unavailable_us_ =
      std::chrono::duration_cast<std::chrono::microseconds>(clock_.now().time_since_epoch()).count();
}

std::optional<Timestamp> TaskEventsSink::lastUnavailableReport() const {
  const std::int64_t us = last_unavailable_us_.load();
  if (us == 0) return std::nullopt;
  return Timestamp{std::chrono::microseconds{us}};
}

void TaskEventsSink::noteHandedOver(const AttemptRef& attempt, std::string task_type, std::string tenant) {
  if (recorder_ == nullptr) return;
  std::lock_guard lock(labels_mutex_);
  if (labels_.size() >= kMaxTimedExecutions) labels_.clear();
  labels_.insert_or_assign(attempt, Labels{std::move(task_type), std::move(tenant)});
}

TaskEventsSink::Labels TaskEventsSink::labelsOf(const AttemptRef& attempt, bool forget) {
  std::lock_guard lock(labels_mutex_);
  auto it = labels_.find(attempt);
  if (it == labels_.end()) return {};
  Labels labels = forget ? std::move(it->second) : it->second;
  if (forget) labels_.erase(it);
  return labels;
}

}  // namespace leoflow::engine
