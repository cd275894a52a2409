// In-process fakes of the Dispatcher, InlineRunner and Recorder roles for engine tests (the Store
// and Leader fakes are in memory_store.h). Each records what it was asked and can be told to fail,
// throw, run out of capacity, or complete attempts through the TaskEvents sink like an executor.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <leoflow/context.h>
#include <leoflow/dispatcher.h>
#include <leoflow/inline_runner.h>
#include <leoflow/recorder.h>

namespace leoflow::testing {

/// How a fake executor finishes the attempts it is given.
enum class Completion { kNone, kSucceed, kFail };

/// Reports running, then the outcome, for attempts handed to a fake — on its own thread, like a
/// real executor. Per-task overrides pick failures; the default applies to the rest.
class FakeExecutor {
 public:
  FakeExecutor() = default;
  ~FakeExecutor();
  void start(TaskEvents& events);
  void stop();
  void setDefault(Completion c) { default_ = c; }
  /// Attempt `try_number` of `task_id` (0 = every try) completes with `c`.
  void setFor(const std::string& task_id, Completion c, int try_number = 0);
  void submit(const AttemptRef& attempt);
  /// Waits until every submitted attempt was reported.
  bool waitIdle(std::chrono::milliseconds timeout);

 private:
  Completion completionFor(const AttemptRef& a);
  void loop(std::stop_token st);

  TaskEvents* events_ = nullptr;
  std::atomic<Completion> default_{Completion::kNone};
  std::mutex mutex_;
  std::condition_variable_any cv_;
  std::condition_variable idle_cv_;
  std::deque<AttemptRef> queue_;
  int busy_ = 0;
  std::map<std::pair<std::string, int>, Completion> overrides_;
  std::jthread thread_;
};

class FakeDispatcher final : public Dispatcher {
 public:
  using Behaviour = std::function<Result<DispatchOutcome>(const DispatchRequest&)>;

  std::vector<std::string> taskTypes() const override { return types_; }
  std::size_t freeCapacity() const override;
  Result<DispatchOutcome> dispatch(const DispatchRequest& request) override;
  Status reconcile() override;
  void shutdown() override { shutdown_calls_++; }

  void setTaskTypes(std::vector<std::string> types) { types_ = std::move(types); }
  /// Capacity left; every accepted dispatch uses one until release() (default: unlimited).
  void setCapacity(std::size_t n);
  void release(std::size_t n = 1);
  /// Replaces the default behaviour (start every attempt; idempotent per attempt).
  void setBehaviour(Behaviour b);
  /// Completes accepted attempts through `executor` (which owns the TaskEvents).
  void completeWith(FakeExecutor* executor) { executor_ = executor; }

  std::vector<DispatchRequest> dispatched() const;  ///< every call, in order
  std::vector<AttemptRef> accepted() const;          ///< attempts started (no duplicates)
  int calls() const;
  int shutdownCalls() const { return shutdown_calls_; }
  int reconcileCalls() const { return reconcile_calls_; }

 private:
  std::vector<std::string> types_;
  mutable std::mutex mutex_;
  std::size_t capacity_ = static_cast<std::size_t>(-1);
  Behaviour behaviour_;
  std::vector<DispatchRequest> calls_;
  std::vector<AttemptRef> accepted_;
  FakeExecutor* executor_ = nullptr;
  std::atomic<int> shutdown_calls_{0};
  std::atomic<int> reconcile_calls_{0};
};

class FakeInlineRunner final : public InlineRunner {
 public:
  using Behaviour = std::function<Result<bool>(const DispatchRequest&)>;
  Result<bool> start(const DispatchRequest& request) override;
  void shutdown() override { shutdown_calls_++; }
  std::size_t freeCapacity() const override { return capacity_.load(); }
  void setCapacity(std::size_t capacity) { capacity_ = capacity; }
  void setBehaviour(Behaviour b);
  void completeWith(FakeExecutor* executor) { executor_ = executor; }
  std::vector<DispatchRequest> started() const;
  int calls() const;

 private:
  mutable std::mutex mutex_;
  Behaviour behaviour_;
  std::vector<DispatchRequest> calls_;
  FakeExecutor* executor_ = nullptr;
  std::atomic<int> shutdown_calls_{0};
  std::atomic<std::size_t> capacity_{std::numeric_limits<std::size_t>::max()};
};

/// Counts everything it is told. Thread-safe.
class RecordingRecorder final : public Recorder {
 public:
  void recordSchedulerDecision(std::string_view type) override;
  void recordTaskTransition(TaskState from, TaskState to, std::string_view dag_id) override;
  void recordUndispatchable(std::string_view reason) override;
  void recordSchedulerStepDown(std::string_view reason) override;
  void observeSchedulerReacquire(std::chrono::microseconds elapsed) override;
  void observeTickDuration(std::chrono::microseconds elapsed) override;
  void setDispatchQueueDepth(std::int64_t depth) override;
  void observeDispatchLatency(std::chrono::microseconds elapsed) override;
  void observeTaskDuration(std::string_view dag_id, std::string_view task_id, std::string_view,
                           std::chrono::microseconds elapsed) override;
  // SDK 3.1
  void recordSchedulerHeartbeat() override;
  void recordTaskStart(std::string_view dag_id, std::string_view task_id) override;
  void recordTaskFinish(std::string_view dag_id, std::string_view task_id, TaskState state) override;
  void recordRunEnd(std::string_view dag_id, DagRunState state, std::chrono::microseconds duration,
                    std::optional<std::chrono::microseconds> schedule_delay, std::string_view tenant) override;
  void setTaskGauges(std::int64_t running_tasks, std::int64_t queued_tasks, std::int64_t open_slots) override;
  // SDK 3.2: counted as the 3.1 hooks are; the labels are kept too.
  void recordTaskStartLabelled(const TaskLabels& task) override;
  void recordTaskFinishLabelled(const TaskLabels& task, TaskState state) override;
  void observeTaskDurationLabelled(const TaskLabels& task, std::chrono::microseconds elapsed) override;
  // SDK 3.6: `count` decisions, one call.
  void recordSchedulerDecisions(std::string_view type, std::int64_t count) override;
  /// "type/tenant" of each labelled start of "dag.task", in order.
  std::vector<std::string> taskStartLabels(const std::string& dag_task) const;

  struct RunEnd {
    std::string dag_id;
    DagRunState state;
    std::chrono::microseconds duration;
    std::optional<std::chrono::microseconds> schedule_delay;
    std::string tenant;
  };
  struct Gauges {
    std::int64_t running = 0, queued = 0, open_slots = 0;
  };
  int heartbeats() const;
  /// Starts of "dag.task".
  int taskStarts(const std::string& dag_task) const;
  /// Ends of "dag.task" in `state`.
  int taskFinishes(const std::string& dag_task, TaskState state) const;
  /// Durations observed for "dag.task".
  std::vector<std::chrono::microseconds> taskDurations(const std::string& dag_task) const;
  std::vector<RunEnd> runEnds() const;
  std::vector<Gauges> gauges() const;

  int decisions(const std::string& type) const;
  /// The recorder calls that brought decisions of `type` (one per recordSchedulerDecisions).
  int decisionCalls(const std::string& type) const;
  int undispatchable(const std::string& reason) const;
  int stepDowns(const std::string& reason) const;
  int transitions(TaskState from, TaskState to) const;
  std::vector<std::chrono::microseconds> reacquires() const;
  int ticks() const;
  int dispatchLatencies() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, int> decisions_, decision_calls_, undispatchable_, step_downs_;
  std::map<std::pair<TaskState, TaskState>, int> transitions_;
  std::vector<std::chrono::microseconds> reacquires_;
  int ticks_ = 0;
  int latencies_ = 0;
  int heartbeats_ = 0;
  std::map<std::string, int> task_starts_;
  std::map<std::string, std::vector<std::string>> task_start_labels_;
  std::map<std::pair<std::string, TaskState>, int> task_finishes_;
  std::map<std::string, std::vector<std::chrono::microseconds>> task_durations_;
  std::vector<RunEnd> run_ends_;
  std::vector<Gauges> gauges_;
};

}  // namespace leoflow::testing
