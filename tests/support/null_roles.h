// The quiet stand-ins a test lends a real plugin through its PluginContext when only the plugin
// itself is under test: the wall clock, a Recorder that drops every figure, a TaskEvents sink
// that accepts every report, and a stderr logger whose level LEOFLOW_TEST_LOG overrides.
#pragma once

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>

#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <leoflow/context.h>
#include <leoflow/recorder.h>

namespace leoflow::testing {

class WallClock final : public Clock {
 public:
  Timestamp now() const override {
    return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  }
};

class NullRecorder final : public Recorder {
 public:
  void recordSchedulerDecision(std::string_view) override {}
  void recordTaskTransition(TaskState, TaskState, std::string_view) override {}
  void recordUndispatchable(std::string_view) override {}
  void recordSchedulerStepDown(std::string_view) override {}
  void observeSchedulerReacquire(std::chrono::microseconds) override {}
  void observeTickDuration(std::chrono::microseconds) override {}
  void setDispatchQueueDepth(std::int64_t) override {}
  void observeDispatchLatency(std::chrono::microseconds) override {}
  void observeTaskDuration(std::string_view, std::string_view, std::string_view,
                           std::chrono::microseconds) override {}
};

class NullTaskEvents final : public TaskEvents {
 public:
  Status running(const ExecutionRef&) override { return Status::ok(); }
  Status heartbeat(const ExecutionRef&) override { return Status::ok(); }
  Status finished(const ExecutionRef&, const TaskOutcome&) override { return Status::ok(); }
};

/// A logger named `name` printing to stderr from `level` up; LEOFLOW_TEST_LOG=debug shows all.
inline std::shared_ptr<spdlog::logger> stderrTestLogger(const std::string& name, spdlog::level::level_enum level) {
  auto logger = std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  const char* override_level = std::getenv("LEOFLOW_TEST_LOG");
  logger->set_level(override_level != nullptr ? spdlog::level::from_str(override_level) : level);
  return logger;
}

}  // namespace leoflow::testing
