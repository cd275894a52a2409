#include "statsd_recorder.h"

#include <cmath>

#include "lines.h"

namespace leoflow::plugins::metrics_statsd {
namespace {

double ms(std::chrono::microseconds d) { return static_cast<double>(d.count()) / 1000.0; }

// A task metric's tags: dag_id, task_id, and the tenant when the scheduler knew it (an attempt
// adopted after a restart has none) — an empty tag would split one series in two.
Tags taskTags(const TaskLabels& task) {
  Tags tags{{"dag_id", task.dag_id}, {"task_id", task.task_id}};
  if (!task.tenant.empty()) tags.emplace_back("tenant", task.tenant);
  return tags;
}

}  // namespace

StatsdRecorder::StatsdRecorder(RecorderOptions options, std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)), sender_(options_.sender, std::move(logger)) {}

// Deterministic 1-in-N sampling (no RNG on the hot path): with rate r, every round(1/r)-th sample.
bool StatsdRecorder::sampled() {
  if (options_.sample_rate >= 1.0) return true;
  const auto every = static_cast<std::uint64_t>(std::llround(1.0 / options_.sample_rate));
  return every <= 1 || sample_counter_.fetch_add(1) % every == 0;
}

#define LEOFLOW_NAME(...) joinName(options_.prefix, {__VA_ARGS__})

void StatsdRecorder::recordSchedulerDecision(std::string_view type) { recordSchedulerDecisions(type, 1); }

void StatsdRecorder::recordSchedulerDecisions(std::string_view type, std::int64_t count) {
  if (count <= 0) return;
  sender_.submit(formatLine(LEOFLOW_NAME("scheduler", "decisions", sanitize(type)), MetricType::kCounter,
                            static_cast<double>(count)));
}

void StatsdRecorder::recordTaskTransition(TaskState from, TaskState to, std::string_view dag_id) {
  const std::string name = LEOFLOW_NAME("scheduler", "task_transitions", toString(from), toString(to));
  if (options_.tags) {
    sender_.submit(formatLine(name, MetricType::kCounter, 1, 1.0, {{"dag_id", dag_id}}));
  } else {
    sender_.submit(formatLine(name, MetricType::kCounter, 1));
  }
}

void StatsdRecorder::recordUndispatchable(std::string_view reason) {
  sender_.submit(formatLine(LEOFLOW_NAME("scheduler", "undispatchable", sanitize(reason)), MetricType::kCounter, 1));
}

void StatsdRecorder::recordSchedulerStepDown(std::string_view reason) {
  sender_.submit(formatLine(LEOFLOW_NAME("scheduler", "step_downs", sanitize(reason)), MetricType::kCounter, 1));
}

void StatsdRecorder::observeSchedulerReacquire(std::chrono::microseconds elapsed) {
  sender_.submit(formatLine(LEOFLOW_NAME("scheduler", "reacquire"), MetricType::kTimer, ms(elapsed)));
}

void StatsdRecorder::observeTickDuration(std::chrono::microseconds elapsed) {
  if (!sampled()) return;
  sender_.submit(formatLine(LEOFLOW_NAME("scheduler", "tick_duration"), MetricType::kTimer, ms(elapsed),
                            options_.sample_rate));
}

void StatsdRecorder::setDispatchQueueDepth(std::int64_t depth) {
  sender_.submit(formatLine(LEOFLOW_NAME("dispatch", "queue_depth"), MetricType::kGauge,
                            static_cast<double>(std::max<std::int64_t>(depth, 0))));
}

void StatsdRecorder::observeDispatchLatency(std::chrono::microseconds elapsed) {
  sender_.submit(formatLine(LEOFLOW_NAME("dispatch", "latency"), MetricType::kTimer, ms(elapsed)));
}

void StatsdRecorder::observeTaskDuration(std::string_view dag_id, std::string_view task_id, std::string_view task_type,
                                         std::chrono::microseconds elapsed) {
  observeTaskDurationLabelled(TaskLabels{dag_id, task_id, task_type, {}}, elapsed);
}

void StatsdRecorder::observeTaskDurationLabelled(const TaskLabels& task, std::chrono::microseconds elapsed) {
  if (options_.tags) {
    sender_.submit(formatLine(LEOFLOW_NAME("task", "duration"), MetricType::kTimer, ms(elapsed), 1.0, taskTags(task)));
  } else {
    sender_.submit(formatLine(LEOFLOW_NAME("dag", sanitize(task.dag_id), sanitize(task.task_id), "duration"),
                              MetricType::kTimer, ms(elapsed)));
  }
}

void StatsdRecorder::recordSchedulerHeartbeat() {
  if (!sampled()) return;
  sender_.submit(formatLine(LEOFLOW_NAME("scheduler_heartbeat"), MetricType::kCounter, 1, options_.sample_rate));
}

void StatsdRecorder::recordTaskStart(std::string_view dag_id, std::string_view task_id) {
  recordTaskStartLabelled(TaskLabels{dag_id, task_id, {}, {}});
}

void StatsdRecorder::recordTaskStartLabelled(const TaskLabels& task) {
  if (options_.tags) {
    sender_.submit(formatLine(LEOFLOW_NAME("ti", "start"), MetricType::kCounter, 1, 1.0, taskTags(task)));
  } else {
    sender_.submit(formatLine(LEOFLOW_NAME("ti", "start", sanitize(task.dag_id), sanitize(task.task_id)),
                              MetricType::kCounter, 1));
  }
}

void StatsdRecorder::recordTaskFinish(std::string_view dag_id, std::string_view task_id, TaskState state) {
  recordTaskFinishLabelled(TaskLabels{dag_id, task_id, {}, {}}, state);
}

void StatsdRecorder::recordTaskFinishLabelled(const TaskLabels& task, TaskState state) {
  const std::string_view st = toString(state);
  if (options_.tags) {
    Tags tags = taskTags(task);
    tags.emplace_back("state", st);
    sender_.submit(formatLine(LEOFLOW_NAME("ti", "finish"), MetricType::kCounter, 1, 1.0, tags));
  } else {
    sender_.submit(formatLine(LEOFLOW_NAME("ti", "finish", sanitize(task.dag_id), sanitize(task.task_id), st),
                              MetricType::kCounter, 1));
  }
  if (state == TaskState::kSuccess) {
    sender_.submit(formatLine(LEOFLOW_NAME("ti_successes"), MetricType::kCounter, 1));
  } else if (state == TaskState::kFailed) {
    sender_.submit(formatLine(LEOFLOW_NAME("ti_failures"), MetricType::kCounter, 1));
  }
}

void StatsdRecorder::recordRunEnd(std::string_view dag_id, DagRunState state, std::chrono::microseconds duration,
                                  std::optional<std::chrono::microseconds> schedule_delay, std::string_view tenant) {
  const std::string_view st = state == DagRunState::kSuccess ? "success" : "failed";
  if (options_.tags) {
    const Tags tags{{"dag_id", dag_id}, {"tenant", tenant}};
    sender_.submit(formatLine(LEOFLOW_NAME("dagrun", "duration", st), MetricType::kTimer, ms(duration), 1.0, tags));
    if (schedule_delay) {
      sender_.submit(
          formatLine(LEOFLOW_NAME("dagrun", "schedule_delay"), MetricType::kTimer, ms(*schedule_delay), 1.0, tags));
    }
  } else {
    sender_.submit(formatLine(LEOFLOW_NAME("dagrun", "duration", st, sanitize(dag_id)), MetricType::kTimer,
                              ms(duration)));
    if (schedule_delay) {
      sender_.submit(formatLine(LEOFLOW_NAME("dagrun", "schedule_delay", sanitize(dag_id)), MetricType::kTimer,
                                ms(*schedule_delay)));
    }
  }
}

void StatsdRecorder::setTaskGauges(std::int64_t running, std::int64_t queued, std::int64_t open_slots) {
  auto g = [&](std::string name, std::int64_t v) {
    sender_.submit(formatLine(name, MetricType::kGauge, static_cast<double>(std::max<std::int64_t>(v, 0))));
  };
  g(LEOFLOW_NAME("scheduler", "tasks", "running"), running);
  g(LEOFLOW_NAME("executor", "queued_tasks"), queued);
  g(LEOFLOW_NAME("executor", "running_tasks"), running);
  g(LEOFLOW_NAME("executor", "open_slots"), open_slots);
}

#undef LEOFLOW_NAME

}  // namespace leoflow::plugins::metrics_statsd
