// EchoDispatcher: an example third-party Dispatcher, built out of tree against the installed SDK
// (leoflow-plugin.pc) alone. It "runs" an attempt of any task type by waiting `delay_ms` on a thread
// of its own and reporting it finished with "echo: <entrypoint>" — enough to show every duty of a
// dispatcher: idempotent dispatch per attempt, free capacity, progress through the lent TaskEvents,
// heartbeats, and a shutdown that leaves no thread behind.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <leoflow/config.h>
#include <leoflow/context.h>
#include <leoflow/dispatcher.h>

namespace leoflow::plugins::dispatcher_echo {

/// What [dispatcher.config] sets.
struct EchoSettings {
  std::chrono::milliseconds delay{10};  ///< delay_ms: from running to finished
  std::size_t max_parallel = 4;         ///< max_parallel: attempts in flight at once
};

/// Thread-safe, as the host's dispatch pool requires.
class EchoDispatcher final : public Dispatcher {
 public:
  EchoDispatcher(EchoSettings settings, PluginContext context);
  /// Shuts down: waits for the attempts in flight to report.
  ~EchoDispatcher() override;

  /// Empty: any task type.
  std::vector<std::string> taskTypes() const override;
  /// max_parallel minus the attempts in flight.
  std::size_t freeCapacity() const override;
  /// kStarted for a new attempt, kAlreadyRunning for one handed over before (however long ago),
  /// kAtCapacity when max_parallel attempts are in flight, kCancelled after shutdown().
  Result<DispatchOutcome> dispatch(const DispatchRequest& request) override;
  /// Takes no more work and joins every attempt's thread (each reports first: at most delay_ms).
  void shutdown() override;

 private:
  void runAttempt(const AttemptRef& attempt, const std::string& entrypoint);
  void joinFinishedLocked(std::vector<std::thread>& to_join);

  const EchoSettings settings_;
  const PluginContext context_;  ///< a copy: it only holds handles the host keeps alive

  mutable std::mutex mutex_;
  bool stopping_ = false;
  /// Every attempt ever handed over: dispatch is idempotent per attempt (ARCHITECTURE §8.8). It
  /// grows with the attempts this process sees, which is fine for an example.
  std::set<AttemptRef> dispatched_;
  std::map<AttemptRef, std::thread> in_flight_;
  std::vector<AttemptRef> done_;  ///< threads that have reported and only wait to be joined
};

/// Declares delay_ms and max_parallel and checks their ranges before creating the dispatcher.
class EchoDispatcherFactory final : public DispatcherFactory {
 public:
  std::vector<ConfigKey> configKeys() const override;
  /// Throws std::invalid_argument naming the key when a value is out of range.
  std::unique_ptr<Dispatcher> create(const ConfigView& config, const PluginContext& context) override;
};

}  // namespace leoflow::plugins::dispatcher_echo
