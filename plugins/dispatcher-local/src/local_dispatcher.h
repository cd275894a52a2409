// LocalDispatcher: runs bash and python tasks as local processes (README.md here; ARCHITECTURE §8.8;
// BEHAVIOUR §6.4 with §10 items 3, 7, 12, 30, 33 fixed).
//
// Threads:
// - dispatch() runs on the host's dispatch workers: it claims the attempt's state file, spawns the
//   supervised process and returns; it never waits for the child.
// - one watcher thread waits (epoll) on an inotify watch of the state dir (a supervisor closing
//   its exit file: the task has ended), a pidfd per live supervisor (the backstop, and how it is
//   reaped) and its timers (heartbeats, execution timeouts, SIGKILL escalation, report retries, the
//   periodic state-dir scan); an end is seen at once, never polled for.
// - a few reporter threads make the TaskEvents calls, which may block on store I/O. Reports of one
//   attempt are strictly ordered (running, heartbeats, finished); different attempts proceed in
//   parallel.
//
// One file per concern: local_dispatcher.cpp (construction, capacity, an attempt's files),
// local_dispatcher_start.cpp (dispatch), _adoption.cpp (the state-dir scan), _watcher.cpp (process
// ends, timers, stopping processes), _reports.cpp (the report strands), _shutdown.cpp; what they
// share is in local_dispatcher_internal.h.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <optional>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <leoflow/context.h>
#include <leoflow/dispatcher.h>

#include "process.h"
#include "settings.h"
#include "state_file.h"
#include "warm_shells.h"

namespace leoflow::plugins::dispatcher_local {

class LocalDispatcher final : public Dispatcher {
 public:
  /// Starts the watcher and reporter threads and adopts what a previous scheduler left in the state
  /// dir. The folders must exist (prepareFolders()).
  LocalDispatcher(Settings settings, const PluginContext& context);
  ~LocalDispatcher() override;

  std::vector<std::string> taskTypes() const override;
  std::size_t freeCapacity() const override;
  Result<DispatchOutcome> dispatch(const DispatchRequest& request) override;
  /// Scans the state dir (at most once a second) for attempts nobody watches, and retries reports
  /// that are waiting for the store.
  Status reconcile() override;
  /// Stops taking work and stops the threads within a few seconds. Running tasks are left running
  /// for the next scheduler to adopt, unless stop_tasks_on_shutdown. Idempotent.
  void shutdown() override;
  /// The attempts whose process runs (started here or adopted), including those being stopped.
  std::vector<AttemptRef> heldAttempts() const override;
  /// SIGTERM to the attempt's process group at once, SIGKILL after kill_grace_ms; never waits. Ok
  /// for an attempt it does not hold. Its finished report (failed, "stopped: ...") is still sent
  /// once the process ended; the store refusing it is expected and logged at info.
  Status stop(const AttemptRef& attempt) override;

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct Attempt;
  using AttemptPtr = std::shared_ptr<Attempt>;

  enum class TimerKind : std::uint8_t { kHeartbeat, kTimeout, kEscalate, kRepeatTerm, kRetry, kScan };
  struct Timer {
    SteadyTime when;
    std::uint64_t id = 0;
    TimerKind kind = TimerKind::kScan;
    bool operator>(const Timer& other) const { return when > other.when; }
  };
  /// kRunning is the claim (ARCHITECTURE §8.13): sent by dispatch() before a process starts, and
  /// again, with the recorded execution id, by a dispatcher that adopts a live process.
  enum class ReportKind : std::uint8_t { kRunning, kHeartbeat, kFinished };

  // dispatch() (local_dispatcher_start.cpp)
  Result<DispatchOutcome> startAttempt(const AttemptPtr& attempt, const DispatchRequest& request,
                                       const std::vector<std::string>& argv);
  void abandon(const AttemptPtr& attempt);

  // State dir scan and adoption (local_dispatcher_adoption.cpp)
  void scanStateDir();
  void considerStateFile(const std::string& base);
  void removeStray(const std::string& name);

  // Watcher thread (local_dispatcher_watcher.cpp)
  void watchLoop();
  void onExit(std::uint64_t id);
  void onExitFiles();
  void markExited(const AttemptPtr& attempt, std::optional<int> code, std::optional<WaitStatus> status,
                  const char* seen_by);
  void onTimer(const Timer& timer);
  void addTimerLocked(SteadyTime when, std::uint64_t id, TimerKind kind);
  void wakeWatcher();
  void watchPidfdLocked(const Attempt& attempt);
  void startLiveTimersLocked(const AttemptPtr& attempt, SteadyTime now);

  // Reporter threads, a strand per attempt (local_dispatcher_reports.cpp)
  void reportLoop();
  void postLocked(const AttemptPtr& attempt, ReportKind kind);
  void scheduleLocked(const AttemptPtr& attempt);
  Status perform(ReportKind kind, const ExecutionRef& execution, const std::optional<TaskOutcome>& outcome);
  /// The claim, synchronously, on the calling dispatch worker.
  Status claimInStore(const ExecutionRef& execution);
  bool reportsPendingLocked() const;

  // Ending attempts (stopProcess, escalate, writeFooter: _watcher.cpp; persist, cleanUp:
  // local_dispatcher.cpp; stopLiveTasks: _shutdown.cpp)
  void stopProcess(const AttemptPtr& attempt, KillReason reason);
  /// SIGKILL to the group of a process stopped kill_grace ago, if any of it is left.
  void escalate(std::uint64_t id);
  /// Sends the group's SIGTERM once more while the escalation is pending (see addEscalationLocked).
  void repeatTerm(std::uint64_t id);
  void addEscalationLocked(const Attempt& attempt);
  /// The log's footer, once, when the attempt's end is known.
  void writeFooter(const AttemptPtr& attempt, const TaskOutcome& outcome);
  void persist(Attempt& attempt);
  void cleanUp(const AttemptPtr& attempt);
  void rememberFinishedLocked(const std::string& base);
  void stopLiveTasks();

  std::filesystem::path statePath(const std::string& base) const;
  std::filesystem::path exitPath(const std::string& base) const;

  const Settings settings_;
  const PluginContext context_;  // a copy: its references outlive this object (context.h)
  const std::chrono::milliseconds heartbeat_interval_;
  const std::string boot_id_;
  const std::map<std::string, std::string> parent_env_;

  UniqueFd epoll_fd_;
  UniqueFd wake_fd_;     // eventfd: wakes the watcher for new timers, new pidfds and shutdown
  UniqueFd inotify_fd_;  // exit files written in state_dir: the earliest sign a task ended
  // Supervisors whose exit file was seen before they exited: watched only to be reaped. Watcher
  // thread only.
  std::unordered_map<std::uint64_t, UniqueFd> exiting_;

  mutable std::mutex mutex_;
  std::condition_variable changed_cv_;  // dispatches in flight, live processes, reports done
  std::condition_variable ready_cv_;    // strands ready for a reporter
  bool accepting_ = true;
  bool stop_watcher_ = false;
  bool stop_reporters_ = false;
  std::size_t live_ = 0;         // processes running (capacity in use)
  std::size_t dispatching_ = 0;  // dispatch() calls between reservation and hand-over
  std::uint64_t next_id_ = 1;    // 0 is the eventfd's epoll key
  std::unordered_map<std::string, AttemptPtr> by_base_;
  std::unordered_map<std::uint64_t, AttemptPtr> by_id_;
  std::deque<AttemptPtr> ready_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  // Process groups signalled with SIGTERM, by attempt id: SIGKILLed when their kEscalate timer fires,
  // even when the supervisor ended first and its attempt is gone (a member that ignores SIGTERM).
  struct Escalation {
    pid_t pgid = 0;
    AttemptRef attempt;
  };
  std::unordered_map<std::uint64_t, Escalation> escalations_;
  // Attempts finished and cleaned up lately: a late re-dispatch of one is not a new start.
  std::unordered_set<std::string> recent_;
  std::deque<std::string> recent_order_;
  // Attempts whose claim in dispatch() got no answer (store unreachable, reply lost), with the
  // execution id it was sent with: the host's retried hand-over claims again with the same id.
  std::unordered_map<std::string, std::string> unanswered_claims_;

  std::mutex scan_mutex_;
  SteadyTime last_scan_{};

  // Files of finished attempts, reused for the next ones' state and exit files (SpareFiles). Made
  // before the threads start; cleared at shutdown.
  std::unique_ptr<SpareFiles> spares_;

  // Started after the threads above: its filler spawns bash supervisors ahead of need.
  std::unique_ptr<WarmShellPool> warm_;

  std::atomic<bool> shut_down_{false};
  std::thread watcher_;
  std::vector<std::thread> reporters_;
};

}  // namespace leoflow::plugins::dispatcher_local
