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
  Status s = store_.reportRunning(e, at);
  if (s.isOk()) {
    if (recorder_ != nullptr) {
      recorder_->recordTaskStart(a.run.dag_id, a.task_id);
      std::lock_guard lock(started_mutex_);
      if (started_.size() >= kMaxTimedExecutions) started_.clear();
      started_.try_emplace(e.execution_id, at);  // a repeated claim keeps the first time
    }
    logger_->debug("task running dag_id={} run_id={} task_id={} try={} execution={}", a.run.dag_id, a.run.run_id,
                   a.task_id, a.try_number, e.execution_id);
    wake_.runChanged(a.run);
  } else if (s.code() == StatusCode::kConflict) {
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
  if (!s.isOk() && s.code() != StatusCode::kConflict) {
    logger_->warn("recording heartbeat failed dag_id={} run_id={} task_id={} try={} error={}", a.run.dag_id,
                  a.run.run_id, a.task_id, a.try_number, s.toString());
  }
  return s;
}

Status TaskEventsSink::finished(const ExecutionRef& e, const TaskOutcome& outcome) {
  const AttemptRef& a = e.attempt;
  const Timestamp at = clock_.now();
  Status s = store_.reportFinished(e, outcome, at);
  if (s.isOk()) {
    if (recorder_ != nullptr) {
      recorder_->recordTaskFinish(a.run.dag_id, a.task_id, outcome.success ? TaskState::kSuccess : TaskState::kFailed);
      std::optional<Timestamp> started;
      {
        std::lock_guard lock(started_mutex_);
        if (auto it = started_.find(e.execution_id); it != started_.end()) {
          started = it->second;
          started_.erase(it);
        }
      }
      // The task type is not in the report: "" (recorders name the duration by DAG and task).
      if (started) recorder_->observeTaskDuration(a.run.dag_id, a.task_id, "", std::max(at - *started, Timestamp::duration{0}));
    }
    logger_->debug("task finished dag_id={} run_id={} task_id={} try={} success={} exit_code={}", a.run.dag_id,
                   a.run.run_id, a.task_id, a.try_number, outcome.success,
                   outcome.exit_code ? std::to_string(*outcome.exit_code) : "none");
    wake_.runChanged(a.run);
  } else if (s.code() == StatusCode::kConflict) {
    logger_->info("stale finished report ignored dag_id={} run_id={} task_id={} try={} reason={}", a.run.dag_id,
                  a.run.run_id, a.task_id, a.try_number, s.message());
  } else {
    logger_->error("recording finished report failed dag_id={} run_id={} task_id={} try={} error={}", a.run.dag_id,
                   a.run.run_id, a.task_id, a.try_number, s.toString());
  }
  return s;
}

}  // namespace leoflow::engine
