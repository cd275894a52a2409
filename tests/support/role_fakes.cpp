#include "support/role_fakes.h"

#include <algorithm>

namespace leoflow::testing {

// --- FakeExecutor --------------------------------------------------------------------------------

FakeExecutor::~FakeExecutor() { stop(); }

void FakeExecutor::start(TaskEvents& events) {
  events_ = &events;
  thread_ = std::jthread([this](std::stop_token st) { loop(st); });
}

void FakeExecutor::stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    cv_.notify_all();
    thread_.join();
  }
}

void FakeExecutor::setFor(const std::string& task_id, Completion c, int try_number) {
  std::lock_guard lock(mutex_);
  overrides_[{task_id, try_number}] = c;
}

void FakeExecutor::submit(const AttemptRef& attempt) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(attempt);
  }
  cv_.notify_all();
}

bool FakeExecutor::waitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return idle_cv_.wait_for(lock, timeout, [this] { return queue_.empty() && busy_ == 0; });
}

Completion FakeExecutor::completionFor(const AttemptRef& a) {
  std::lock_guard lock(mutex_);
  if (auto it = overrides_.find({a.task_id, a.try_number}); it != overrides_.end()) return it->second;
  if (auto it = overrides_.find({a.task_id, 0}); it != overrides_.end()) return it->second;
  return default_;
}

void FakeExecutor::loop(std::stop_token st) {
  for (;;) {
    AttemptRef a;
    {
      std::unique_lock lock(mutex_);
      if (!cv_.wait(lock, st, [this] { return !queue_.empty(); })) return;
      a = queue_.front();
      queue_.pop_front();
      ++busy_;
    }
    const Completion c = completionFor(a);
    if (c != Completion::kNone && events_ != nullptr) {
      const ExecutionRef e{a, "fake/" + a.task_id + "/" + std::to_string(a.try_number)};
      (void)events_->running(e);
      TaskOutcome outcome;
      outcome.success = c == Completion::kSucceed;
      outcome.exit_code = outcome.success ? 0 : 1;
      outcome.message = outcome.success ? "" : "exit code 1";
      (void)events_->finished(e, outcome);
    }
    {
      std::lock_guard lock(mutex_);
      --busy_;
    }
    idle_cv_.notify_all();
  }
}

// --- FakeDispatcher ------------------------------------------------------------------------------

std::size_t FakeDispatcher::freeCapacity() const {
  std::lock_guard lock(mutex_);
  return capacity_;
}

void FakeDispatcher::setCapacity(std::size_t n) {
  std::lock_guard lock(mutex_);
  capacity_ = n;
}

void FakeDispatcher::release(std::size_t n) {
  std::lock_guard lock(mutex_);
  if (capacity_ != static_cast<std::size_t>(-1)) capacity_ += n;
}

void FakeDispatcher::setBehaviour(Behaviour b) {
  std::lock_guard lock(mutex_);
  behaviour_ = std::move(b);
}

Result<DispatchOutcome> FakeDispatcher::dispatch(const DispatchRequest& request) {
  Behaviour behaviour;
  {
    std::lock_guard lock(mutex_);
    calls_.push_back(request);
    behaviour = behaviour_;
  }
  if (behaviour) {
    auto r = behaviour(request);  // may throw: the engine must contain it
    if (!r || *r == DispatchOutcome::kAtCapacity) return r;
  }
  FakeExecutor* executor = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (std::find(accepted_.begin(), accepted_.end(), request.attempt) != accepted_.end()) {
      return DispatchOutcome::kAlreadyRunning;  // idempotent per attempt
    }
    if (capacity_ == 0) return DispatchOutcome::kAtCapacity;
    if (capacity_ != static_cast<std::size_t>(-1)) --capacity_;
    accepted_.push_back(request.attempt);
    executor = executor_;
  }
  if (executor != nullptr) executor->submit(request.attempt);
  return DispatchOutcome::kStarted;
}

Status FakeDispatcher::reconcile() {
  ++reconcile_calls_;
  return {};
}

std::vector<DispatchRequest> FakeDispatcher::dispatched() const {
  std::lock_guard lock(mutex_);
  return calls_;
}

std::vector<AttemptRef> FakeDispatcher::accepted() const {
  std::lock_guard lock(mutex_);
  return accepted_;
}

int FakeDispatcher::calls() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(calls_.size());
}

// --- FakeInlineRunner ----------------------------------------------------------------------------

Result<bool> FakeInlineRunner::start(const DispatchRequest& request) {
  Behaviour behaviour;
  FakeExecutor* executor = nullptr;
  {
    std::lock_guard lock(mutex_);
    calls_.push_back(request);
    behaviour = behaviour_;
    executor = executor_;
  }
  Result<bool> r = behaviour ? behaviour(request) : Result<bool>(true);
  if (r && *r && executor != nullptr) executor->submit(request.attempt);
  return r;
}

void FakeInlineRunner::setBehaviour(Behaviour b) {
  std::lock_guard lock(mutex_);
  behaviour_ = std::move(b);
}

std::vector<DispatchRequest> FakeInlineRunner::started() const {
  std::lock_guard lock(mutex_);
  return calls_;
}

int FakeInlineRunner::calls() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(calls_.size());
}

// --- RecordingRecorder ---------------------------------------------------------------------------

void RecordingRecorder::recordSchedulerDecision(std::string_view type) { recordSchedulerDecisions(type, 1); }
void RecordingRecorder::recordSchedulerDecisions(std::string_view type, std::int64_t count) {
  std::lock_guard lock(mutex_);
  decisions_[std::string(type)] += static_cast<int>(count);
  ++decision_calls_[std::string(type)];
}
void RecordingRecorder::recordTaskTransition(TaskState from, TaskState to, std::string_view) {
  std::lock_guard lock(mutex_);
  ++transitions_[{from, to}];
}
void RecordingRecorder::recordUndispatchable(std::string_view reason) {
  std::lock_guard lock(mutex_);
  ++undispatchable_[std::string(reason)];
}
void RecordingRecorder::recordSchedulerStepDown(std::string_view reason) {
  std::lock_guard lock(mutex_);
  ++step_downs_[std::string(reason)];
}
void RecordingRecorder::observeSchedulerReacquire(std::chrono::microseconds elapsed) {
  std::lock_guard lock(mutex_);
  reacquires_.push_back(elapsed);
}
void RecordingRecorder::observeTickDuration(std::chrono::microseconds) {
  std::lock_guard lock(mutex_);
  ++ticks_;
}
void RecordingRecorder::setDispatchQueueDepth(std::int64_t) {}
void RecordingRecorder::observeDispatchLatency(std::chrono::microseconds) {
  std::lock_guard lock(mutex_);
  ++latencies_;
}

void RecordingRecorder::observeTaskDuration(std::string_view dag_id, std::string_view task_id, std::string_view,
                                            std::chrono::microseconds elapsed) {
  std::lock_guard lock(mutex_);
  task_durations_[std::string(dag_id) + "." + std::string(task_id)].push_back(elapsed);
}
void RecordingRecorder::recordSchedulerHeartbeat() {
  std::lock_guard lock(mutex_);
  ++heartbeats_;
}
void RecordingRecorder::recordTaskStart(std::string_view dag_id, std::string_view task_id) {
  std::lock_guard lock(mutex_);
  ++task_starts_[std::string(dag_id) + "." + std::string(task_id)];
}
void RecordingRecorder::recordTaskFinish(std::string_view dag_id, std::string_view task_id, TaskState state) {
  std::lock_guard lock(mutex_);
  ++task_finishes_[{std::string(dag_id) + "." + std::string(task_id), state}];
}
void RecordingRecorder::recordRunEnd(std::string_view dag_id, DagRunState state, std::chrono::microseconds duration,
                                     std::optional<std::chrono::microseconds> schedule_delay,
                                     std::string_view tenant) {
  std::lock_guard lock(mutex_);
  run_ends_.push_back({std::string(dag_id), state, duration, schedule_delay, std::string(tenant)});
}
void RecordingRecorder::setTaskGauges(std::int64_t running, std::int64_t queued, std::int64_t open_slots) {
  std::lock_guard lock(mutex_);
  gauges_.push_back({running, queued, open_slots});
}
int RecordingRecorder::heartbeats() const {
  std::lock_guard lock(mutex_);
  return heartbeats_;
}
int RecordingRecorder::taskStarts(const std::string& dag_task) const {
  std::lock_guard lock(mutex_);
  auto it = task_starts_.find(dag_task);
  return it == task_starts_.end() ? 0 : it->second;
}
int RecordingRecorder::taskFinishes(const std::string& dag_task, TaskState state) const {
  std::lock_guard lock(mutex_);
  auto it = task_finishes_.find({dag_task, state});
  return it == task_finishes_.end() ? 0 : it->second;
}
std::vector<std::chrono::microseconds> RecordingRecorder::taskDurations(const std::string& dag_task) const {
  std::lock_guard lock(mutex_);
  auto it = task_durations_.find(dag_task);
  return it == task_durations_.end() ? std::vector<std::chrono::microseconds>{} : it->second;
}
std::vector<RecordingRecorder::RunEnd> RecordingRecorder::runEnds() const {
  std::lock_guard lock(mutex_);
  return run_ends_;
}
std::vector<RecordingRecorder::Gauges> RecordingRecorder::gauges() const {
  std::lock_guard lock(mutex_);
  return gauges_;
}

int RecordingRecorder::decisions(const std::string& type) const {
  std::lock_guard lock(mutex_);
  auto it = decisions_.find(type);
  return it == decisions_.end() ? 0 : it->second;
}
int RecordingRecorder::decisionCalls(const std::string& type) const {
  std::lock_guard lock(mutex_);
  auto it = decision_calls_.find(type);
  return it == decision_calls_.end() ? 0 : it->second;
}
int RecordingRecorder::undispatchable(const std::string& reason) const {
  std::lock_guard lock(mutex_);
  auto it = undispatchable_.find(reason);
  return it == undispatchable_.end() ? 0 : it->second;
}
int RecordingRecorder::stepDowns(const std::string& reason) const {
  std::lock_guard lock(mutex_);
  auto it = step_downs_.find(reason);
  return it == step_downs_.end() ? 0 : it->second;
}
int RecordingRecorder::transitions(TaskState from, TaskState to) const {
  std::lock_guard lock(mutex_);
  auto it = transitions_.find({from, to});
  return it == transitions_.end() ? 0 : it->second;
}
std::vector<std::chrono::microseconds> RecordingRecorder::reacquires() const {
  std::lock_guard lock(mutex_);
  return reacquires_;
}
int RecordingRecorder::ticks() const {
  std::lock_guard lock(mutex_);
  return ticks_;
}
int RecordingRecorder::dispatchLatencies() const {
  std::lock_guard lock(mutex_);
  return latencies_;
}

void RecordingRecorder::recordTaskStartLabelled(const TaskLabels& task) {
  recordTaskStart(task.dag_id, task.task_id);
  std::lock_guard lock(mutex_);
  task_start_labels_[std::string(task.dag_id) + "." + std::string(task.task_id)].push_back(
      std::string(task.task_type) + "/" + std::string(task.tenant));
}
void RecordingRecorder::recordTaskFinishLabelled(const TaskLabels& task, TaskState state) {
  recordTaskFinish(task.dag_id, task.task_id, state);
}
void RecordingRecorder::observeTaskDurationLabelled(const TaskLabels& task, std::chrono::microseconds elapsed) {
  observeTaskDuration(task.dag_id, task.task_id, task.task_type, elapsed);
}
std::vector<std::string> RecordingRecorder::taskStartLabels(const std::string& dag_task) const {
  std::lock_guard lock(mutex_);
  auto it = task_start_labels_.find(dag_task);
  return it == task_start_labels_.end() ? std::vector<std::string>{} : it->second;
}

}  // namespace leoflow::testing
