// Turns a HostConfig into live backends: loads the plugins it names, checks each plugin's config
// against its factory's keys, and creates the objects with the contexts the host lends them.
//
// Every plugin is loaded and every config table checked before anything connects, so a wrong
// plugin or key fails at once with its own message. Objects are destroyed in reverse order of
// creation; their libraries stay loaded for the life of the process.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <leoflow/context.h>
#include <leoflow/dispatcher.h>
#include <leoflow/inline_runner.h>
#include <leoflow/leader.h>
#include <leoflow/recorder.h>
#include <leoflow/store.h>

#include "engine/engine_options.h"
#include "engine/guarded.h"
#include "engine/recorder_fanout.h"
#include "engine/task_events_sink.h"
#include "engine/wake_signal.h"
#include "host/config.h"
#include "host/plugin_loader.h"

namespace leoflow::host {

/// A plugin's create() could not reach its backend (UnavailableError): one-shot commands exit 3.
class BackendUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A plugin refused its configuration or failed to start: exit 2.
class StartupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The wall clock.
class SystemClock final : public Clock {
 public:
  Timestamp now() const override {
    return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  }
};

/// "<hostname>-<pid>-<4 random hex digits>": the name this process holds leases in.
std::string makeReplicaId();

class Backends {
 public:
  enum class Scope {
    kStoreOnly,  ///< one-shot commands: the store and nothing else
    kLogs,       ///< `tasks logs`: the store and the executors' log readers, no dispatcher
    kScheduler,  ///< everything the config names
  };

  /// Loads and creates. Throws PluginError (a refused library), ConfigError (a bad key),
  /// StartupError (create() failed) or BackendUnavailable (create() could not reach its backend).
  /// `retry_unavailable`, when set, is asked whether to try again after an unreachable backend
  /// (the scheduler keeps trying with back-off until it is told to stop).
  Backends(const HostConfig& config, PluginLoader& loader, Scope scope,
           std::function<bool(const std::string& why, int attempt)> retry_unavailable = {});
  ~Backends();
  Backends(const Backends&) = delete;
  Backends& operator=(const Backends&) = delete;

  Store& store() { return *guarded_store_; }
  Leader& leader() { return *leader_; }
  const std::string& storePlugin() const { return store_plugin_; }
  const std::string& leaderPlugin() const { return leader_plugin_; }
  std::vector<engine::DispatcherRoute> dispatcherRoutes();
  InlineRunner* inlineRunner() { return inline_runner_.get(); }
  const std::string& inlineRunnerPlugin() const { return inline_plugin_; }
  /// The SDK minor the inline runner plugin was built with (the host calls newer hooks only on newer plugins).
  std::uint32_t inlineRunnerAbiMinor() const { return inline_abi_minor_; }
  std::uint32_t storeAbiMinor() const { return store_abi_minor_; }
  Recorder& recorder() { return recorders_fanout_; }
  const Clock& clock() const { return clock_; }
  engine::WakeSignal& wake() { return wake_; }
  TaskEvents& events() { return *events_; }
  engine::TaskEventsSink& eventsSink() { return *events_; }
  const std::string& replicaId() const { return replica_id_; }
  /// Reads an attempt's log through the log readers of the configured dispatchers and inline
  /// runner (scopes kLogs and kScheduler): the first that has it answers. When none has it, the
  /// most telling kNotFound (one that names where the log is) wins.
  Result<LogChunk> readLog(const LogQuery& query);
  /// The heartbeat interval lent to dispatchers: a sixth of the agent-lost threshold, at least 1 s
  /// (§8.8) — and never more than a third of a threshold shortened below 3 s for tests.
  static std::chrono::milliseconds heartbeatInterval(std::chrono::milliseconds agent_lost_threshold);

 private:
  struct NullEvents;

  SystemClock clock_;
  engine::WakeSignal wake_;
  engine::RecorderFanout recorders_fanout_;
  std::unique_ptr<TaskEvents> null_events_;
  std::string replica_id_;
  std::string store_plugin_, leader_plugin_, inline_plugin_;
  std::vector<std::unique_ptr<PluginContext>> contexts_;
  std::vector<std::unique_ptr<Recorder>> recorders_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<engine::GuardedStore> guarded_store_;
  std::unique_ptr<engine::TaskEventsSink> events_;
  std::unique_ptr<Leader> leader_;
  struct Route {
    std::string plugin;
    std::vector<std::string> task_types;
    std::unique_ptr<Dispatcher> dispatcher;
  };
  std::vector<Route> dispatchers_;
  std::unique_ptr<InlineRunner> inline_runner_;
  std::uint32_t inline_abi_minor_ = 0;
  std::uint32_t store_abi_minor_ = 0;
  struct NamedLogReader {
    std::string plugin;
    std::unique_ptr<LogReader> reader;
  };
  std::vector<NamedLogReader> log_readers_;
};

}  // namespace leoflow::host
