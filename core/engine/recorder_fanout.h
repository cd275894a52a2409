// One Recorder that forwards to every configured recorder (or to none), swallowing their
// exceptions: metrics must never stop the scheduler. The hooks SDK 3.1 appended are forwarded only to
// recorders built against 3.1 or newer: a 3.0 plugin's vtable ends before them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <leoflow/abi.h>
#include <leoflow/recorder.h>

namespace leoflow::engine {

class RecorderFanout final : public Recorder {
 public:
  RecorderFanout() = default;
  /// `abi_minor`: the SDK minor the recorder was built with (a plugin's descriptor says).
  void add(Recorder& recorder, std::uint32_t abi_minor = LEOFLOW_ABI_MINOR) {
    targets_.push_back({&recorder, abi_minor});
  }

  void recordSchedulerDecision(std::string_view type) override {
    each([&](Recorder& r) { r.recordSchedulerDecision(type); });
  }
  void recordTaskTransition(TaskState from, TaskState to, std::string_view dag_id) override {
    each([&](Recorder& r) { r.recordTaskTransition(from, to, dag_id); });
  }
  void recordUndispatchable(std::string_view reason) override {
    each([&](Recorder& r) { r.recordUndispatchable(reason); });
  }
  void recordSchedulerStepDown(std::string_view reason) override {
    each([&](Recorder& r) { r.recordSchedulerStepDown(reason); });
  }
  void observeSchedulerReacquire(std::chrono::microseconds d) override {
    each([&](Recorder& r) { r.observeSchedulerReacquire(d); });
  }
  void observeTickDuration(std::chrono::microseconds d) override {
    each([&](Recorder& r) { r.observeTickDuration(d); });
  }
  void setDispatchQueueDepth(std::int64_t depth) override {
    each([&](Recorder& r) { r.setDispatchQueueDepth(depth); });
  }
  void observeDispatchLatency(std::chrono::microseconds d) override {
    each([&](Recorder& r) { r.observeDispatchLatency(d); });
  }
  void observeTaskDuration(std::string_view dag_id, std::string_view task_id, std::string_view task_type,
                           std::chrono::microseconds d) override {
    each([&](Recorder& r) { r.observeTaskDuration(dag_id, task_id, task_type, d); });
  }

  // SDK 3.1
  void recordSchedulerHeartbeat() override {
    each([&](Recorder& r) { r.recordSchedulerHeartbeat(); }, 1);
  }
  void recordTaskStart(std::string_view dag_id, std::string_view task_id) override {
    each([&](Recorder& r) { r.recordTaskStart(dag_id, task_id); }, 1);
  }
  void recordTaskFinish(std::string_view dag_id, std::string_view task_id, TaskState state) override {
    each([&](Recorder& r) { r.recordTaskFinish(dag_id, task_id, state); }, 1);
  }
  void recordRunEnd(std::string_view dag_id, DagRunState state, std::chrono::microseconds duration,
                    std::optional<std::chrono::microseconds> schedule_delay, std::string_view tenant) override {
    each([&](Recorder& r) { r.recordRunEnd(dag_id, state, duration, schedule_delay, tenant); }, 1);
  }
  void setTaskGauges(std::int64_t running, std::int64_t queued, std::int64_t open_slots) override {
    each([&](Recorder& r) { r.setTaskGauges(running, queued, open_slots); }, 1);
  }

  // SDK 3.2: the labelled task hooks reach 3.2 recorders; older ones get the hook of their minor.
  void recordTaskStartLabelled(const TaskLabels& task) override {
    eachByMinor(2, [&](Recorder& r) { r.recordTaskStartLabelled(task); },
                [&](Recorder& r, std::uint32_t minor) {
                  if (minor >= 1) r.recordTaskStart(task.dag_id, task.task_id);
                });
  }
  void recordTaskFinishLabelled(const TaskLabels& task, TaskState state) override {
    eachByMinor(2, [&](Recorder& r) { r.recordTaskFinishLabelled(task, state); },
                [&](Recorder& r, std::uint32_t minor) {
                  if (minor >= 1) r.recordTaskFinish(task.dag_id, task.task_id, state);
                });
  }
  void observeTaskDurationLabelled(const TaskLabels& task, std::chrono::microseconds d) override {
    eachByMinor(2, [&](Recorder& r) { r.observeTaskDurationLabelled(task, d); },
                [&](Recorder& r, std::uint32_t) { r.observeTaskDuration(task.dag_id, task.task_id, task.task_type, d); });
  }

  // SDK 3.6: one call for many decisions. An older recorder's vtable has no slot for it: it gets the
  // SDK's default body, called by name (not through the vtable), which tells it each decision.
  void recordSchedulerDecisions(std::string_view type, std::int64_t count) override {
    eachByMinor(6, [&](Recorder& r) { r.recordSchedulerDecisions(type, count); },
                [&](Recorder& r, std::uint32_t) { r.Recorder::recordSchedulerDecisions(type, count); });
  }

 private:
  struct Target {
    Recorder* recorder;
    std::uint32_t abi_minor;
  };
  /// Calls `fn` on every recorder of SDK minor `since` or newer.
  template <typename Fn>
  void each(Fn&& fn, std::uint32_t since = 0) {
    for (const Target& t : targets_) {
      if (t.abi_minor < since) continue;
      try {
        fn(*t.recorder);
      } catch (...) {  // a broken recorder loses its sample, nothing else
      }
    }
  }
  /// Calls `fn` on recorders of SDK minor `since` or newer, `older(recorder, minor)` on the others.
  template <typename Fn, typename Older>
  void eachByMinor(std::uint32_t since, Fn&& fn, Older&& older) {
    for (const Target& t : targets_) {
      try {
        if (t.abi_minor >= since) {
          fn(*t.recorder);
        } else {
          older(*t.recorder, t.abi_minor);
        }
      } catch (...) {  // a broken recorder loses its sample, nothing else
      }
    }
  }
  std::vector<Target> targets_;
};

}  // namespace leoflow::engine
