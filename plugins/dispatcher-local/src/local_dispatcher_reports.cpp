// LocalDispatcher: the report strands. A few reporter threads make the TaskEvents calls (running,
// heartbeats, finished) for each attempt strictly in order, retry failed ones with back-off, and act
// on a refusal (the attempt is no longer current). The claim (running) is also made synchronously
// from dispatch().
#include "local_dispatcher.h"

#include <algorithm>
#include <exception>

#include <spdlog/logger.h>

#include "local_dispatcher_internal.h"

namespace leoflow::plugins::dispatcher_local {

namespace {

constexpr milliseconds kRetryFirst{50};
constexpr milliseconds kRetryMax{5000};

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Reporting through TaskEvents, one strand per attempt

void LocalDispatcher::reportLoop() {
  enum class Then : std::uint8_t { kNothing, kStop, kCleanUp };
  std::unique_lock lock(mutex_);
  for (;;) {
    ready_cv_.wait(lock, [&] { return stop_reporters_ || !ready_.empty(); });
    if (stop_reporters_) return;
    AttemptPtr attempt = std::move(ready_.front());
    ready_.pop_front();
    attempt->queued = false;
    if (attempt->busy || attempt->paused || attempt->reports.empty() || attempt->phase == Attempt::Phase::kDone) {
      continue;
    }
    const ReportKind kind = attempt->reports.front();
    const AttemptRef ref = attempt->record.attempt;
    const ExecutionRef execution{ref, attempt->record.execution_id};
    const std::optional<TaskOutcome> outcome = attempt->outcome;
    attempt->busy = true;
    lock.unlock();
    const Status status = perform(kind, execution, outcome);
    lock.lock();
    attempt->busy = false;

    Then then = Then::kNothing;
    // kNotFound is a refusal too: the store no longer knows the run or task (deleted, or a new
    // store), and retrying would never end.
    const bool conflict = status.code() == StatusCode::kConflict || status.code() == StatusCode::kNotFound;
    auto popFront = [&] {
      if (!attempt->reports.empty() && attempt->reports.front() == kind) attempt->reports.pop_front();
    };
    auto retry = [&] {
      attempt->paused = true;
      ++attempt->failures;
      const auto delay =
          std::min<milliseconds>(kRetryMax, kRetryFirst * (1LL << std::min(attempt->failures - 1, 10)));
      addTimerLocked(steady_clock::now() + delay, attempt->id, TimerKind::kRetry);
      context_.logger()->warn("task report failed; retrying dag_id={} run_id={} task_id={} try={} report={} "
                              "retry_in_ms={} error={}",
                              ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number,
                              kind == ReportKind::kFinished  ? "finished"
                              : kind == ReportKind::kRunning ? "running"
                                                             : "heartbeat",
                              delay.count(), status.toString());
    };
    // A refused report means the attempt is no longer current (reaped, superseded): its process
    // must not keep running (BEHAVIOUR §10 items 3, 7), and nothing more is reported about it.
    auto stale = [&] {
      attempt->reports.clear();
      // Expected after stop(): the host stopped it because the store had moved on.
      const bool stopped = attempt->record.kill_reason == KillReason::kStopped;
      context_.logger()->log(stopped ? spdlog::level::info : spdlog::level::warn,
                             "attempt is no longer current; stopping its process dag_id={} run_id={} task_id={} "
                             "try={} reason=\"{}\"",
                             ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number, status.message());
      if (attempt->phase == Attempt::Phase::kLive) return Then::kStop;
      if (attempt->phase == Attempt::Phase::kExited) return Then::kCleanUp;
      return Then::kNothing;
    };

    if (attempt->phase != Attempt::Phase::kDone) {
      switch (kind) {
        case ReportKind::kRunning:
          if (status.isOk()) {
            popFront();
            attempt->running_reported = true;
            attempt->failures = 0;
          } else if (conflict) {
            then = stale();
          } else {
            retry();
          }
          break;
        case ReportKind::kHeartbeat:
          popFront();
          if (conflict) {
            then = stale();
          } else if (!status.isOk()) {
            context_.logger()->warn("heartbeat report failed dag_id={} run_id={} task_id={} try={} error={}",
                                    ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number, status.toString());
          }
          break;
        case ReportKind::kFinished:
          if (status.isOk() || conflict) {
            popFront();
            if (conflict) {
              context_.logger()->info("finished report refused; the attempt had moved on dag_id={} run_id={} "
                                      "task_id={} try={} reason=\"{}\"",
                                      ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number, status.message());
            }
            then = Then::kCleanUp;
          } else {
            retry();
          }
          break;
      }
    }
    scheduleLocked(attempt);
    changed_cv_.notify_all();
    if (then != Then::kNothing) {
      lock.unlock();
      if (then == Then::kStop) {
        stopProcess(attempt, KillReason::kStale);
      } else {
        cleanUp(attempt);
      }
      lock.lock();
    }
  }
}

void LocalDispatcher::postLocked(const AttemptPtr& attempt, ReportKind kind) {
  if (attempt->phase == Attempt::Phase::kDone) return;
  if (kind == ReportKind::kHeartbeat) {
    // One pending beat is enough; a slow store must not pile them up.
    for (ReportKind k : attempt->reports) {
      if (k == ReportKind::kHeartbeat) return;
    }
  }
  attempt->reports.push_back(kind);
  scheduleLocked(attempt);
}

void LocalDispatcher::scheduleLocked(const AttemptPtr& attempt) {
  if (attempt->queued || attempt->busy || attempt->paused || attempt->reports.empty() || stop_reporters_) return;
  attempt->queued = true;
  ready_.push_back(attempt);
  ready_cv_.notify_one();
}

Status LocalDispatcher::claimInStore(const ExecutionRef& execution) {
  return perform(ReportKind::kRunning, execution, std::nullopt);
}

Status LocalDispatcher::perform(ReportKind kind, const ExecutionRef& execution,
                                const std::optional<TaskOutcome>& outcome) {
  try {
    switch (kind) {
      case ReportKind::kRunning:
        return context_.events().running(execution);
      case ReportKind::kHeartbeat:
        return context_.events().heartbeat(execution);
      case ReportKind::kFinished:
        return context_.events().finished(
            execution, outcome.value_or(TaskOutcome{false, std::nullopt, "process lost: no outcome was recorded"}));
    }
    return internalError("unknown report");
  } catch (const std::exception& e) {
    return internalError(std::string("task events sink threw: ") + e.what());
  } catch (...) {
    return internalError("task events sink threw");
  }
}

bool LocalDispatcher::reportsPendingLocked() const {
  for (const auto& [base, attempt] : by_base_) {
    if (attempt->busy) return true;
    for (ReportKind k : attempt->reports) {
      if (k == ReportKind::kRunning || k == ReportKind::kFinished) return true;
    }
  }
  return false;
}

}  // namespace leoflow::plugins::dispatcher_local
