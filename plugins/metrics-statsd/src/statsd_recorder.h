// The Recorder: each event becomes a StatsD line (README.md lists every metric) handed to the
// Sender. Formatting a line and queueing it is all a scheduler thread pays.
#pragma once

#include <memory>
#include <string>

#include <leoflow/recorder.h>

#include "sender.h"

namespace leoflow::plugins::metrics_statsd {

struct RecorderOptions {
  std::string prefix = "leoflow";
  bool tags = false;          ///< DogStatsD: ids travel as tags, not in names
  double sample_rate = 1.0;   ///< for the per-tick samples (scheduler_heartbeat, scheduler.tick_duration)
  SenderOptions sender;
};

class StatsdRecorder final : public Recorder {
 public:
  StatsdRecorder(RecorderOptions options, std::shared_ptr<spdlog::logger> logger);

  void recordSchedulerDecision(std::string_view decision_type) override;
  void recordTaskTransition(TaskState from, TaskState to, std::string_view dag_id) override;
  void recordUndispatchable(std::string_view reason) override;
  void recordSchedulerStepDown(std::string_view reason) override;
  void observeSchedulerReacquire(std::chrono::microseconds elapsed) override;
  void observeTickDuration(std::chrono::microseconds elapsed) override;
  void setDispatchQueueDepth(std::int64_t depth) override;
  void observeDispatchLatency(std::chrono::microseconds elapsed) override;
  void observeTaskDuration(std::string_view dag_id, std::string_view task_id, std::string_view task_type,
                           std::chrono::microseconds elapsed) override;
  // SDK 3.1
  void recordSchedulerHeartbeat() override;
  void recordTaskStart(std::string_view dag_id, std::string_view task_id) override;
  void recordTaskFinish(std::string_view dag_id, std::string_view task_id, TaskState state) override;
  void recordRunEnd(std::string_view dag_id, DagRunState state, std::chrono::microseconds duration,
                    std::optional<std::chrono::microseconds> schedule_delay, std::string_view tenant) override;
  void setTaskGauges(std::int64_t running_tasks, std::int64_t queued_tasks, std::int64_t open_slots) override;
  // SDK 3.2: the task metrics with the run's tenant (a tag in tags mode; plain names do not carry it)
  void recordTaskStartLabelled(const TaskLabels& task) override;
  void recordTaskFinishLabelled(const TaskLabels& task, TaskState state) override;
  void observeTaskDurationLabelled(const TaskLabels& task, std::chrono::microseconds elapsed) override;
  // SDK 3.6: one counter line whose value is the count.
  void recordSchedulerDecisions(std::string_view decision_type, std::int64_t count) override;

  Sender& sender() { return sender_; }

 private:
  bool sampled();

  RecorderOptions options_;
  Sender sender_;
  std::atomic<std::uint64_t> sample_counter_{0};
};

}  // namespace leoflow::plugins::metrics_statsd
