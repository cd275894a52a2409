// InlineRunner: runs short http_api tasks inside the scheduler process (BEHAVIOUR §6.7).
//
// The runner owns an attempt once started: it reports running and the outcome through
// PluginContext::events() like any executor.
#pragma once

#include <cstddef>
#include <limits>
#include <memory>
#include <vector>

#include <leoflow/config.h>
#include <leoflow/context.h>
#include <leoflow/dispatcher.h>
#include <leoflow/status.h>

namespace leoflow {

/// Thread-safe.
class InlineRunner {
 public:
  virtual ~InlineRunner() = default;
  InlineRunner() = default;
  InlineRunner(const InlineRunner&) = delete;
  InlineRunner& operator=(const InlineRunner&) = delete;

  /// Starts the attempt in the background: true when started, false when at capacity (the host
  /// tries again later). An error means the task cannot run inline (the attempt fails).
  virtual Result<bool> start(const DispatchRequest& request) = 0;
  /// Stops taking work and waits (bounded) for running calls to report.
  virtual void shutdown() = 0;
  /// SDK 2.2: how many more attempts start() would take right now, like Dispatcher::freeCapacity():
  /// the host moves no more inline tasks to queued, so a full runner leaves them `scheduled`
  /// instead of cycling them queued → scheduled. The host calls it only on plugins built with
  /// SDK minor >= 2; the default (and older plugins) mean "no limit known": start() answers false.
  virtual std::size_t freeCapacity() const { return std::numeric_limits<std::size_t>::max(); }
  /// SDK 3.0: the attempts in flight, like Dispatcher::heldAttempts().
  virtual std::vector<AttemptRef> heldAttempts() const { return {}; }
  /// SDK 3.0: aborts the attempt's request if it is in flight, like Dispatcher::stop().
  virtual Status stop(const AttemptRef& attempt) {
    (void)attempt;
    return {};
  }
};

class InlineRunnerFactory {
 public:
  virtual ~InlineRunnerFactory() = default;
  virtual std::vector<ConfigKey> configKeys() const = 0;
  virtual std::unique_ptr<InlineRunner> create(const ConfigView& config, const PluginContext& context) = 0;
  /// SDK 3.0: reads the logs the runner writes (request and response), like
  /// DispatcherFactory::createLogReader(). nullptr: no logs.
  virtual std::unique_ptr<LogReader> createLogReader(const ConfigView& config, const PluginContext& context) {
    (void)config;
    (void)context;
    return nullptr;
  }
};

}  // namespace leoflow
