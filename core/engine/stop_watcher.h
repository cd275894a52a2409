// The replica-side stop watcher (docs/architecture.md §8.14): every replica, leader or follower,
// stops the attempts its own executors hold once they stop being current — cleared, marked,
// cancelled, reaped, or their DAG deleted. The CLI and the API only write the store; this is
// what turns those writes into a SIGTERM (or a pod's deletion, or an aborted request).
//
// It reads the change feed (through the engine's WakeSignal) and checks at once the held attempts
// a message may have ended (those of the task it names, or every one of a run changed as a whole);
// every `sweep_interval` it checks every held attempt, for messages a feed may have lost.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <spdlog/logger.h>

#include <leoflow/dispatcher.h>
#include <leoflow/inline_runner.h>
#include <leoflow/store.h>

namespace leoflow::engine {

/// Whatever holds attempts and can stop them: a dispatcher or the inline runner.
struct StoppableExecutor {
  std::string plugin;
  std::function<std::vector<AttemptRef>()> held;
  std::function<Status(const AttemptRef&)> stop;
};

class StopWatcher final : public ChangeSink {
 public:
  StopWatcher(Store& store, std::vector<StoppableExecutor> executors, std::shared_ptr<spdlog::logger> log,
              std::chrono::milliseconds sweep_interval = std::chrono::seconds(2));
  ~StopWatcher() override;
  StopWatcher(const StopWatcher&) = delete;
  StopWatcher& operator=(const StopWatcher&) = delete;

  /// Starts the watcher's thread.
  void start();
  /// Stops it (also done by the destructor).
  void stop();

  /// One check: of the held attempts in `runs` (all of them when `everything`), stops those that are
  /// no longer current. Returns how many it stopped. Public for tests; the thread calls it.
  std::size_t checkOnce(const std::set<RunKey>& runs, bool everything) { return checkOnce(runs, {}, everything); }
  /// As above, and also the held attempts of the tasks named in `tasks`: a change that names its
  /// task can only have ended an attempt of that task, so a wide fan-out's reports cost a read only
  /// when they are about an attempt held here, not one per held attempt of the run per change.
  std::size_t checkOnce(const std::set<RunKey>& runs, const std::map<RunKey, std::set<std::string>>& tasks,
                        bool everything);

  // ChangeSink (from the engine's WakeSignal, on the store's thread): note and wake, nothing more.
  void onChange(const Change& change) override;
  void onResync() override;

 private:
  void loop();

  Store& store_;
  std::vector<StoppableExecutor> executors_;
  std::shared_ptr<spdlog::logger> log_;
  std::chrono::milliseconds sweep_interval_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::set<RunKey> changed_;  // changed as a whole: every held attempt of the run is checked
  std::map<RunKey, std::set<std::string>> changed_tasks_;  // runs not in changed_: these tasks only
  bool everything_ = false;
  bool stopping_ = false;
  std::set<AttemptRef> stopped_;  // asked already: each attempt is stopped once
  std::thread thread_;
};

}  // namespace leoflow::engine
