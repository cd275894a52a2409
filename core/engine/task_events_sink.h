// The host's TaskEvents: executor reports become attempt-scoped store writes (ARCHITECTURE §8.7),
// accepted on every replica, and wake the loop so a finished task's downstream starts at once.
#pragma once

#include <memory>
#include <string>

#include <spdlog/logger.h>

#include <leoflow/context.h>
#include <leoflow/recorder.h>
#include <leoflow/store.h>

#include "engine/wake_signal.h"

namespace leoflow::engine {

class TaskEventsSink final : public TaskEvents {
 public:
  /// `store` should already be exception-guarded; all references must outlive the sink.
  TaskEventsSink(Store& store, const Clock& clock, WakeSignal& wake, std::shared_ptr<spdlog::logger> logger);

  Status running(const ExecutionRef& execution) override;
  Status heartbeat(const ExecutionRef& execution) override;
  Status finished(const ExecutionRef& execution, const TaskOutcome& outcome) override;

 private:
  Store& store_;
  const Clock& clock_;
  WakeSignal& wake_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace leoflow::engine
