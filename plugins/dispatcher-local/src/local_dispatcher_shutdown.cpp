// LocalDispatcher: shutdown. Stops taking work, drains dispatches and due reports, stops the threads
// and leaves running processes (or their recorded outcomes) in the state dir for the next scheduler —
// or, with stop_tasks_on_shutdown, stops them first.
#include "local_dispatcher.h"

#include <signal.h>

#include <algorithm>
#include <thread>
#include <vector>

#include <spdlog/logger.h>

#include "local_dispatcher_internal.h"
#include "process.h"

namespace leoflow::plugins::dispatcher_local {

namespace {

// shutdown(): the scheduler must exit within 10 s (ARCHITECTURE §8.11), after draining its pool.
constexpr milliseconds kDispatchDrain{2000};
constexpr milliseconds kReportDrain{1000};
constexpr milliseconds kStopTermWait{2000};
constexpr milliseconds kStopKillWait{1000};

}  // namespace

void LocalDispatcher::stopLiveTasks() {
  std::vector<AttemptPtr> live;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [base, attempt] : by_base_) {
      if (attempt->phase == Attempt::Phase::kLive) live.push_back(attempt);
    }
  }
  for (const AttemptPtr& attempt : live) stopProcess(attempt, KillReason::kShutdown);
  std::unique_lock lock(mutex_);
  const auto term_wait = std::min<milliseconds>(settings_.kill_grace, kStopTermWait);
  if (changed_cv_.wait_for(lock, term_wait, [&] { return live_ == 0; })) return;
  std::vector<pid_t> left;
  for (const auto& [base, attempt] : by_base_) {
    if (attempt->phase == Attempt::Phase::kLive) left.push_back(static_cast<pid_t>(attempt->record.pid));
  }
  lock.unlock();
  for (pid_t pid : left) signalGroup(pid, SIGKILL);
  lock.lock();
  changed_cv_.wait_for(lock, kStopKillWait, [&] { return live_ == 0; });
}

void LocalDispatcher::shutdown() {
  if (shut_down_.exchange(true)) return;
  const auto started = steady_clock::now();
  {
    std::unique_lock lock(mutex_);
    accepting_ = false;
    changed_cv_.wait_for(lock, kDispatchDrain, [&] { return dispatching_ == 0; });
  }
  if (warm_) warm_->stop();
  if (settings_.stop_tasks_on_shutdown) stopLiveTasks();
  {
    // Let running and finished reports already due go out; heartbeats do not matter any more.
    std::unique_lock lock(mutex_);
    changed_cv_.wait_for(lock, kReportDrain, [&] { return !reportsPendingLocked(); });
    stop_watcher_ = true;
    stop_reporters_ = true;
  }
  wakeWatcher();
  ready_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  for (std::thread& t : reporters_) {
    if (t.joinable()) t.join();
  }
  for (auto& [id, pidfd] : exiting_) reapChild(pidfd.get());  // most are gone by now
  exiting_.clear();

  // What is left stays in the state dir for the next scheduler: processes still running (adopted)
  // and ends not yet reported (their outcome recorded here, reported then).
  std::vector<AttemptPtr> left;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [base, attempt] : by_base_) left.push_back(attempt);
  }
  std::size_t running = 0;
  std::size_t unreported = 0;
  for (const AttemptPtr& attempt : left) {
    bool record_outcome = false;
    {
      std::lock_guard lock(mutex_);
      if (attempt->phase == Attempt::Phase::kExited) {
        attempt->record.outcome = attempt->outcome;
        record_outcome = true;
        ++unreported;
      } else if (attempt->phase == Attempt::Phase::kLive) {
        ++running;
      }
    }
    if (record_outcome) persist(*attempt);
    std::lock_guard file_lock(attempt->file_mutex);
    attempt->state_fd.reset();  // releases the lock: the attempt is free to adopt
  }
  {
    std::lock_guard lock(mutex_);
    for (const AttemptPtr& attempt : left) attempt->pidfd.reset();
    by_base_.clear();
    by_id_.clear();
    ready_.clear();
  }
  if (spares_) spares_->clear();
  context_.logger()->info("dispatcher stopped left_running={} left_unreported={} stop_tasks_on_shutdown={} "
                          "elapsed_ms={}",
                          running, unreported, settings_.stop_tasks_on_shutdown,
                          duration_cast<milliseconds>(steady_clock::now() - started).count());
}

}  // namespace leoflow::plugins::dispatcher_local
