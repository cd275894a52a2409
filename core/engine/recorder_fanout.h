// One Recorder that forwards to every configured recorder (or to none), swallowing their
// exceptions: metrics must never stop the scheduler.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <leoflow/recorder.h>

namespace leoflow::engine {

class RecorderFanout final : public Recorder {
 public:
  RecorderFanout() = default;
  void add(Recorder& recorder) { targets_.push_back(&recorder); }

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

 private:
  template <typename Fn>
  void each(Fn&& fn) {
    for (Recorder* r : targets_) {
      try {
        fn(*r);
      } catch (...) {  // a broken recorder loses its sample, nothing else
      }
    }
  }
  std::vector<Recorder*> targets_;
};

}  // namespace leoflow::engine
