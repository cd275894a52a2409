// LocalDispatcher: the watcher thread. It waits (epoll) on exit files (inotify), supervisors'
// pidfds and its timers: process ends, heartbeats, execution timeouts, SIGKILL escalation, report
// retries and the periodic state-dir scan; and it stops processes (timed out, stale, shut down).
#include "local_dispatcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <exception>
#include <thread>

#include <spdlog/logger.h>

#include "local_dispatcher_internal.h"
#include "log_file.h"
#include "process.h"

namespace leoflow::plugins::dispatcher_local {

namespace {

void appendLogNote(const std::string& path, const std::string& note) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  if (!fd.valid()) return;
  const std::string line = "leoflow: " + note + "\n";
  [[maybe_unused]] const ssize_t n = ::write(fd.get(), line.data(), line.size());
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// The watcher thread: process exits (pidfds) and timers

void LocalDispatcher::watchLoop() {
  std::array<epoll_event, 64> events{};
  for (;;) {
    int timeout_ms = -1;
    {
      std::lock_guard lock(mutex_);
      if (stop_watcher_) return;
      if (!timers_.empty()) {
        const auto wait = timers_.top().when - steady_clock::now();
        const std::int64_t wait_ms = duration_cast<milliseconds>(wait).count() + 1;  // never wake early
        timeout_ms =
            wait <= steady_clock::duration::zero() ? 0 : static_cast<int>(std::min<std::int64_t>(wait_ms, 60000));
      }
    }
    const int n = ::epoll_wait(epoll_fd_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) {
      context_.logger()->error("waiting for task processes failed error={}", errnoText(errno));
      std::this_thread::sleep_for(milliseconds(10));
    }
    try {
      for (int i = 0; i < n; ++i) {
        const std::uint64_t key = events[static_cast<std::size_t>(i)].data.u64;
        if (key == 0) {
          std::uint64_t drained = 0;
          [[maybe_unused]] const ssize_t r = ::read(wake_fd_.get(), &drained, sizeof drained);
        } else if (key == kInotifyKey) {
          onExitFiles();
        } else {
          onExit(key);
        }
      }
      std::vector<Timer> due;
      {
        std::lock_guard lock(mutex_);
        const auto now = steady_clock::now();
        while (!timers_.empty() && timers_.top().when <= now) {
          due.push_back(timers_.top());
          timers_.pop();
        }
      }
      for (const Timer& t : due) onTimer(t);
    } catch (const std::exception& e) {
      context_.logger()->error("task process watcher failed error={}", e.what());
    }
  }
}

void LocalDispatcher::onExit(std::uint64_t id) {
  if (auto it = exiting_.find(id); it != exiting_.end()) {
    // Its end was reported from the exit file already; now it is gone and can be reaped.
    ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, it->second.get(), nullptr);
    reapChild(it->second.get());
    exiting_.erase(it);
    return;
  }
  AttemptPtr attempt;
  int pidfd = -1;
  {
    std::lock_guard lock(mutex_);
    auto it = by_id_.find(id);
    if (it == by_id_.end() || it->second->phase != Attempt::Phase::kLive) return;
    attempt = it->second;
    pidfd = attempt->pidfd.get();
  }
  std::optional<WaitStatus> status;
  if (pidfd >= 0) {
    ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, pidfd, nullptr);
    status = reapChild(pidfd);
  } else if (const auto pid = static_cast<pid_t>(attempt->record.pid); pid > 1) {
    const auto stat = readProcessStat(pid);
    if (stat && stat->state == 'Z' && stat->start_ticks == attempt->record.pid_start_ticks) {
      status = reapZombieChild(pid);
    }
  }
  // The supervisor wrote the exit file before it exited, so the file is complete by now.
  markExited(attempt, readExitCode(exitPath(attempt->base)), status, "pidfd");
}

void LocalDispatcher::onExitFiles() {
  alignas(inotify_event) char buf[16 * 1024];
  for (;;) {
    const ssize_t n = ::read(inotify_fd_.get(), buf, sizeof buf);
    if (n <= 0) return;  // EAGAIN: drained
    for (ssize_t off = 0; off < n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      if (event->len == 0) continue;  // IN_Q_OVERFLOW and the like: the pidfds still see every end
      const std::string_view name(event->name);
      if (!endsWith(name, ".exit")) continue;
      const std::string base(name.substr(0, name.size() - 5));
      AttemptPtr attempt;
      {
        std::lock_guard lock(mutex_);
        auto it = by_base_.find(base);
        if (it == by_base_.end() || it->second->phase != Attempt::Phase::kLive) continue;
        attempt = it->second;
      }
      // Closed after writing: complete. The supervisor's exit follows; its pidfd stays watched
      // until then, to reap it.
      const std::optional<int> code = readExitCode(exitPath(base));
      if (!code) continue;
      UniqueFd pidfd;
      {
        std::lock_guard lock(mutex_);
        if (attempt->phase != Attempt::Phase::kLive) continue;
        pidfd = std::move(attempt->pidfd);
      }
      if (pidfd.valid()) exiting_.emplace(attempt->id, std::move(pidfd));
      markExited(attempt, code, std::nullopt, "exit_file");
    }
  }
}

void LocalDispatcher::markExited(const AttemptPtr& attempt, std::optional<int> code, std::optional<WaitStatus> status,
                                 const char* seen_by) {
  bool clean_up = false;
  std::optional<TaskOutcome> outcome;
  TaskOutcome ended;
  {
    std::lock_guard lock(mutex_);
    if (attempt->phase != Attempt::Phase::kLive) return;
    attempt->phase = Attempt::Phase::kExited;
    attempt->pidfd.reset();
    ended = outcomeFor(attempt->record, code, status, false);
    if (attempt->record.kill_reason == KillReason::kStale) {
      // No longer current: nothing to report (it would be refused).
      clean_up = true;
      ended.message = "stopped: the attempt is no longer current (a report was refused)";
    } else {
      attempt->outcome = ended;
      outcome = attempt->outcome;
      // Beats not yet sent are moot now; the one in flight, if any, stays at the front.
      auto& r = attempt->reports;
      const auto first = r.begin() + (attempt->busy && !r.empty() ? 1 : 0);
      r.erase(std::remove_if(first, r.end(),
                             [](ReportKind k) { return k == ReportKind::kHeartbeat; }),
              r.end());
    }
  }
  // The footer before the finished report: whoever learns of the end from the store finds the log
  // complete. The process counts as live until the report is posted, so a shutdown waiting for the
  // live processes to end sees the report pending.
  writeFooter(attempt, ended);
  {
    std::lock_guard lock(mutex_);
    --live_;
    if (outcome) postLocked(attempt, ReportKind::kFinished);
  }
  changed_cv_.notify_all();
  const AttemptRef& ref = attempt->record.attempt;
  if (outcome) {
    context_.logger()->debug("task process ended dag_id={} run_id={} task_id={} try={} success={} exit_code={} "
                             "seen_by={}",
                             ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number, outcome->success,
                             outcome->exit_code ? std::to_string(*outcome->exit_code) : "none", seen_by);
  }
  if (clean_up) cleanUp(attempt);
}

void LocalDispatcher::onTimer(const Timer& timer) {
  if (timer.kind == TimerKind::kScan) {
    scanStateDir();
    std::lock_guard lock(mutex_);
    addTimerLocked(steady_clock::now() + kScanInterval, 0, TimerKind::kScan);
    return;
  }
  if (timer.kind == TimerKind::kEscalate) {
    escalate(timer.id);
    return;
  }
  if (timer.kind == TimerKind::kRepeatTerm) {
    repeatTerm(timer.id);
    return;
  }
  AttemptPtr attempt;
  {
    std::lock_guard lock(mutex_);
    auto it = by_id_.find(timer.id);
    if (it == by_id_.end()) return;
    attempt = it->second;
    switch (timer.kind) {
      case TimerKind::kHeartbeat:
        if (attempt->phase != Attempt::Phase::kLive) return;
        // Backstop for an end epoll missed (or a process without a pidfd): the beat checks too.
        if (attempt->pidfd.valid() ? !pidfdExited(attempt->pidfd.get())
                                   : isSameLiveProcess(static_cast<pid_t>(attempt->record.pid),
                                                       attempt->record.pid_start_ticks, attempt->record.boot_id,
                                                       boot_id_)) {
          // Before the running report lands there is nothing to beat for: running stamps the
          // first heartbeat, and a heartbeat before it would be refused (§8.8).
          // Nor for an attempt stopped as no longer current: the beat would be refused.
          if (attempt->running_reported && attempt->record.kill_reason != KillReason::kStopped &&
              attempt->record.kill_reason != KillReason::kStale) {
            postLocked(attempt, ReportKind::kHeartbeat);
          }
          addTimerLocked(steady_clock::now() + heartbeat_interval_, attempt->id, TimerKind::kHeartbeat);
          return;
        }
        break;
      case TimerKind::kRetry:
        if (attempt->paused) {
          attempt->paused = false;
          scheduleLocked(attempt);
        }
        return;
      case TimerKind::kTimeout:
        if (attempt->phase != Attempt::Phase::kLive) return;
        break;
      case TimerKind::kEscalate:
      case TimerKind::kRepeatTerm:
      case TimerKind::kScan:
        return;
    }
  }
  switch (timer.kind) {
    case TimerKind::kHeartbeat:
      onExit(timer.id);
      break;
    case TimerKind::kTimeout:
      stopProcess(attempt, KillReason::kTimeout);
      break;
    case TimerKind::kEscalate:
    case TimerKind::kRepeatTerm:
    case TimerKind::kRetry:
    case TimerKind::kScan:
      break;
  }
}

void LocalDispatcher::addTimerLocked(SteadyTime when, std::uint64_t id, TimerKind kind) {
  // Timers of attempts that are gone are dropped when they fire; long execution timeouts of short
  // tasks would pile up meanwhile, so the heap is rebuilt when most of it is dead.
  if (timers_.size() > 4 * (by_id_.size() + 64)) {
    std::vector<Timer> alive;
    alive.reserve(by_id_.size() * 3 + 1);
    while (!timers_.empty()) {
      const Timer& t = timers_.top();
      if (t.kind == TimerKind::kScan || by_id_.count(t.id) != 0 ||
          ((t.kind == TimerKind::kEscalate || t.kind == TimerKind::kRepeatTerm) && escalations_.count(t.id) != 0)) {
        alive.push_back(t);
      }
      timers_.pop();
    }
    timers_ = decltype(timers_)(std::greater<>(), std::move(alive));
  }
  const bool earliest = timers_.empty() || when < timers_.top().when;
  timers_.push(Timer{when, id, kind});
  if (earliest) wakeWatcher();
}

void LocalDispatcher::wakeWatcher() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
}

void LocalDispatcher::watchPidfdLocked(const Attempt& attempt) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = attempt.id;
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, attempt.pidfd.get(), &ev) != 0) {
    // Still noticed, later: every heartbeat timer checks the process too.
    context_.logger()->error("watching task process failed pid={} error={}", attempt.record.pid, errnoText(errno));
  }
}

void LocalDispatcher::startLiveTimersLocked(const AttemptPtr& attempt, SteadyTime now) {
  addTimerLocked(now + heartbeat_interval_, attempt->id, TimerKind::kHeartbeat);
  const int timeout = attempt->record.execution_timeout_seconds;
  if (timeout > 0 && attempt->started_steady) {
    addTimerLocked(*attempt->started_steady + seconds(timeout), attempt->id, TimerKind::kTimeout);
  } else if (timeout > 0) {
    // Adopted: from the recorded start, so it keeps its original deadline.
    const system_clock::time_point started{microseconds(attempt->record.started_at_us)};
    const auto remaining = started + seconds(timeout) - system_clock::now();
    const auto left = std::max(duration_cast<steady_clock::duration>(remaining), steady_clock::duration::zero());
    addTimerLocked(now + left, attempt->id, TimerKind::kTimeout);
  }
}

// ---------------------------------------------------------------------------------------------------
// Stopping a process: timed out, no longer current, or the scheduler shutting down

void LocalDispatcher::stopProcess(const AttemptPtr& attempt, KillReason reason) {
  pid_t pid = 0;
  std::string note;
  {
    std::lock_guard lock(mutex_);
    if (attempt->phase != Attempt::Phase::kLive || attempt->record.kill_reason != KillReason::kNone) return;
    attempt->record.kill_reason = reason;
    pid = static_cast<pid_t>(attempt->record.pid);
    if (reason == KillReason::kStopped) {
      // Beats not yet sent would be refused; the one in flight, if any, stays at the front.
      auto& r = attempt->reports;
      const auto first = r.begin() + (attempt->busy && !r.empty() ? 1 : 0);
      r.erase(std::remove_if(first, r.end(), [](ReportKind k) { return k == ReportKind::kHeartbeat; }), r.end());
    }
    switch (reason) {
      case KillReason::kTimeout:
        note = fmt::format("timed out after {} s", attempt->record.execution_timeout_seconds);
        break;
      case KillReason::kStale:
        note = "the attempt is no longer current (a report was refused)";
        break;
      case KillReason::kShutdown:
        note = "the scheduler is shutting down (stop_tasks_on_shutdown)";
        break;
      case KillReason::kStopped:
        note = "stopped: the attempt is no longer current";
        break;
      case KillReason::kNone:
        break;
    }
  }
  // Recorded before the signal: a scheduler that dies right after still reports the reason.
  persist(*attempt);
  const AttemptRef& ref = attempt->record.attempt;
  // A stop the host asked for is routine (a cleared or cancelled run); the others are worth a warning.
  context_.logger()->log(reason == KillReason::kStopped ? spdlog::level::info : spdlog::level::warn,
                         "stopping task process dag_id={} run_id={} task_id={} try={} pid={} reason=\"{}\"",
                         ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number, pid, note);
  appendLogNote(attempt->record.log_path,
                fmt::format("{}; sending SIGTERM to the process group (SIGKILL after {} ms)", note,
                            settings_.kill_grace.count()));
  {
    // Registered before the signal: however fast the group ends, its SIGKILL timer is there.
    std::lock_guard lock(mutex_);
    addEscalationLocked(*attempt);
  }
  signalGroup(pid, SIGTERM);
}

void LocalDispatcher::addEscalationLocked(const Attempt& attempt) {
  const auto pgid = static_cast<pid_t>(attempt.record.pid);
  if (pgid <= 1) return;
  escalations_[attempt.id] = Escalation{pgid, attempt.record.attempt};
  addTimerLocked(steady_clock::now() + settings_.kill_grace, attempt.id, TimerKind::kEscalate);
  // A SIGTERM that lands while bash is between fork and exec of a command reaches bash (which only
  // notes it) but not the command, and bash then waits for the command: the task would end only at
  // the SIGKILL. One more SIGTERM a moment later, while the group still lives, closes that window.
  const auto again = std::min<std::chrono::milliseconds>(kRepeatTermAfter, settings_.kill_grace / 2);
  if (again.count() > 0) addTimerLocked(steady_clock::now() + again, attempt.id, TimerKind::kRepeatTerm);
}

void LocalDispatcher::repeatTerm(std::uint64_t id) {
  pid_t pgid = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = escalations_.find(id);
    if (it == escalations_.end()) return;
    pgid = it->second.pgid;
  }
  signalGroup(pgid, SIGTERM);
}

void LocalDispatcher::escalate(std::uint64_t id) {
  Escalation e;
  bool live = false;
  std::string log_path;
  {
    std::lock_guard lock(mutex_);
    auto it = escalations_.find(id);
    if (it == escalations_.end()) return;
    e = it->second;
    escalations_.erase(it);
    if (auto a = by_id_.find(id); a != by_id_.end() && a->second->phase == Attempt::Phase::kLive) {
      live = true;
      log_path = a->second->record.log_path;
    }
  }
  // The supervisor leads the group: while it runs (live, or a zombie not yet reaped) its pid cannot
  // be reused, and after it a member still in the group keeps the group id taken. A group that is
  // gone answers ESRCH.
  // Noted first: the supervisor's end (and the footer after it) is handled on this same thread, so
  // the note lands before the footer.
  if (live) appendLogNote(log_path, "still running after the kill grace; sending SIGKILL");
  if (!signalGroup(e.pgid, SIGKILL)) return;
  context_.logger()->warn("task process group outlived its kill grace; sent SIGKILL dag_id={} run_id={} task_id={} "
                          "try={} pgid={} grace_ms={} supervisor_running={}",
                          e.attempt.run.dag_id, e.attempt.run.run_id, e.attempt.task_id, e.attempt.try_number, e.pgid,
                          settings_.kill_grace.count(), live);
}

void LocalDispatcher::writeFooter(const AttemptPtr& attempt, const TaskOutcome& outcome) {
  std::string path;
  std::string execution;
  {
    std::lock_guard lock(mutex_);
    if (attempt->footer_written) return;
    attempt->footer_written = true;
    path = attempt->record.log_path;
    execution = attempt->record.execution_id;
  }
  appendLogFooter(path, execution, outcome);
}

}  // namespace leoflow::plugins::dispatcher_local
