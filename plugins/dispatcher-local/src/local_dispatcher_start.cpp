// LocalDispatcher: starting an attempt. dispatch() reserves capacity, claims the attempt's state
// file, claims the attempt in the store (ARCHITECTURE §8.13) and only then spawns its supervised
// process (in a warm shell when one is ready), and returns without waiting for it.
#include "local_dispatcher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <filesystem>
#include <string_view>
#include <system_error>

#include <spdlog/logger.h>

#include <leoflow/execution_id.h>

#include "local_dispatcher_internal.h"
#include "log_file.h"
#include "names.h"
#include "process.h"
#include "task_command.h"

namespace leoflow::plugins::dispatcher_local {

namespace {

constexpr std::size_t kUnansweredClaimsCapacity = 4096;

}  // namespace

// ---------------------------------------------------------------------------------------------------
// dispatch (ARCHITECTURE §8.8; BEHAVIOUR §10 item 12: idempotent per attempt)

Result<DispatchOutcome> LocalDispatcher::dispatch(const DispatchRequest& request) {
  auto argv = taskArgv(request.task, settings_);
  if (!argv) return argv.status();
  auto attempt = std::make_shared<Attempt>();
  attempt->base = stateBaseName(request.attempt, request.run_uid);
  attempt->ref = request.attempt;
  {
    std::lock_guard lock(mutex_);
    if (!accepting_) return DispatchOutcome::kAtCapacity;
    if (by_base_.count(attempt->base) != 0 || recent_.count(attempt->base) != 0) {
      return DispatchOutcome::kAlreadyRunning;
    }
    // Backpressure, never blocking: the host returns the task to scheduled (§8.8).
    if (live_ >= settings_.max_parallel) return DispatchOutcome::kAtCapacity;
    attempt->id = next_id_++;
    by_base_.emplace(attempt->base, attempt);
    ++live_;
    ++dispatching_;
  }
  Result<DispatchOutcome> result = DispatchOutcome::kStarted;
  try {
    result = startAttempt(attempt, request, *argv);
  } catch (const std::exception& e) {
    abandon(attempt);
    result = internalError(std::string("dispatch failed: ") + e.what());
  }
  {
    std::lock_guard lock(mutex_);
    --dispatching_;
  }
  changed_cv_.notify_all();
  return result;
}

Result<DispatchOutcome> LocalDispatcher::startAttempt(const AttemptPtr& attempt, const DispatchRequest& request,
                                                      const std::vector<std::string>& argv) {
  const AttemptRef& ref = request.attempt;
  const std::string& base = attempt->base;
  StateRecord record;
  record.attempt = ref;
  record.run_uid = request.run_uid;
  record.tenant = request.tenant.empty() ? std::string("default") : request.tenant;
  record.task_type = request.task.type;
  record.boot_id = boot_id_;
  record.started_at_us = duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
  const SteadyTime started_steady = steady_clock::now();
  record.execution_timeout_seconds = std::max(request.task.execution_timeout_seconds, 0);
  const std::filesystem::path log_path = attemptLogPath(settings_.log_dir, ref, request.run_uid);
  record.log_path = log_path.string();
  record.owner = context_.replicaId();
  // This start of the attempt's code is an execution of its own (ARCHITECTURE §8.13). The id is in
  // the state file from the start, so whoever adopts or reports the attempt speaks for it. A hand-over
  // retried after a claim that got no answer claims again with that claim's id: nothing ran under
  // it, and if the store took the claim (the reply was lost) it accepts the same id again.
  {
    std::lock_guard lock(mutex_);
    if (auto it = unanswered_claims_.find(base); it != unanswered_claims_.end()) {
      record.execution_id = it->second;
    }
  }
  if (record.execution_id.empty()) record.execution_id = makeExecutionId("local");

  std::vector<std::string> env = taskEnvironment(parent_env_, request, settings_);
  // A command execve cannot take (E2BIG) would fail the same way every time it were tried: refused
  // before anything is claimed, kInvalidArgument, which the host turns into one failure for good
  // with the reason as the note. Checked for a cold start even when a warm shell (which reads the
  // entrypoint from a file) might take it, so the task does not run or fail by chance.
  if (Status fits = checkCommandFits(argv, env, exitPath(base), settings_.bash); !fits.isOk()) {
    abandon(attempt);
    context_.logger()->warn("task refused: its command cannot be started dag_id={} run_id={} task_id={} try={} "
                            "reason=\"{}\"",
                            ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number, fits.message());
    return fits;
  }

  // A bash task starts in a warm shell when one is ready and can take on the task's environment;
  // its pid goes into the claim, so the state file names the process from the start.
  std::optional<WarmShell> warm;
  WarmLaunch launch;
  if (isBashEntrypoint(argv) && warm_) {
    if (auto delta = environmentDelta(parent_env_, env)) {
      warm = warm_->take();
      if (warm) {
        launch = WarmLaunch{exitPath(base), log_path, std::move(delta->first), std::move(delta->second),
                            request.task.entrypoint};
        record.pid = warm->pid;
        record.pid_start_ticks = warm->start_ticks;
      }
    }
  }
  auto giveBackWarm = [&] {
    if (warm) warm_->giveBack(std::move(*warm));
    warm.reset();
  };

  auto claim = claimStateFile(settings_.state_dir, base, encodeStateRecord(record), spares_.get());
  if (!claim) {
    giveBackWarm();
    abandon(attempt);
    return claim.status();
  }
  if (!claim->has_value()) {
    // Claimed before, by this scheduler before a restart or by another one sharing the state dir.
    // Whoever holds its lock watches it; if nobody does, it is taken over right now.
    giveBackWarm();
    abandon(attempt);
    considerStateFile(base);
    context_.logger()->debug("attempt claimed before; not started again dag_id={} run_id={} task_id={} try={}",
                             ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number);
    return DispatchOutcome::kAlreadyRunning;
  }
  attempt->state_fd = std::move(**claim);

  // Claim before run (ARCHITECTURE §8.13): the store must accept this execution before any of the
  // attempt's code starts — on another host, another execution may have claimed it already. A
  // refused claim runs nothing and reports nothing more.
  const Status claimed = claimInStore(ExecutionRef{ref, record.execution_id});
  {
    std::lock_guard lock(mutex_);
    if (claimed.isOk() || claimed.code() == StatusCode::kConflict) {
      unanswered_claims_.erase(base);
    } else {
      // Only a long store outage with many attempts fills it; then the ids kept so far are dropped.
      if (unanswered_claims_.size() >= kUnansweredClaimsCapacity) unanswered_claims_.clear();
      unanswered_claims_.insert_or_assign(base, record.execution_id);
    }
  }
  if (!claimed.isOk()) {
    giveBackWarm();
    ::unlink(statePath(base).c_str());
    attempt->state_fd.reset();
    abandon(attempt);
    if (claimed.code() == StatusCode::kConflict) {
      context_.logger()->info("claim refused; not started dag_id={} run_id={} task_id={} try={} execution={} "
                              "reason=\"{}\"",
                              ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number, record.execution_id,
                              claimed.message());
      return DispatchOutcome::kAlreadyRunning;
    }
    return claimed;
  }

  // The claim was accepted, so the attempt is running in the store: a process that cannot be started
  // is reported failed once, with the reason as the note (an ordinary failure: retries apply), never
  // left to a reaper nor answered as a dispatch error for the host to hand over again.
  auto fail = [&](const Status& status) -> Result<DispatchOutcome> {
    giveBackWarm();
    context_.logger()->error("starting task process failed dag_id={} run_id={} task_id={} try={} error={}",
                             ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number, status.toString());
    {
      std::lock_guard lock(mutex_);
      attempt->record = record;
      attempt->running_reported = true;
      attempt->phase = Attempt::Phase::kExited;
      attempt->outcome = TaskOutcome{false, std::nullopt, "cannot start the command: " + status.message()};
      attempt->footer_written = true;
    }
    // The footer goes into a log that was opened (and has its header); none is made for it.
    appendLogFooter(record.log_path, record.execution_id, *attempt->outcome);
    {
      std::lock_guard lock(mutex_);
      by_id_.emplace(attempt->id, attempt);
      --live_;
      postLocked(attempt, ReportKind::kFinished);
    }
    persist(*attempt);
    return DispatchOutcome::kStarted;
  };

  // The task's folder; its parents (the run's) exist already but for the run's first task, so the
  // leaf is made first and the whole path walked only when that fails for a missing parent.
  if (::mkdir(log_path.parent_path().c_str(), 0755) != 0 && errno != EEXIST) {
    std::error_code ec;
    std::filesystem::create_directories(log_path.parent_path(), ec);
    if (ec) return fail(unavailable("log folder " + log_path.parent_path().string() + ": " + ec.message()));
  }
  UniqueFd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log_fd.valid()) return fail(unavailable("log file " + log_path.string() + ": " + errnoText(errno)));
  {
    // The header, before anything the task writes (README "Logs").
    const std::string header = formatLogHeader(record, argv);
    [[maybe_unused]] const ssize_t n = ::write(log_fd.get(), header.data(), header.size());
  }

  // A leftover exit file (of a claim whose scheduler died before cleaning up) must not pass for
  // this process's. An empty spare takes its place (no inode allocated when the supervisor writes
  // it); without one it is removed and the supervisor creates the file.
  if (!spares_->place(exitPath(base))) ::unlink(exitPath(base).c_str());
  UniqueFd pidfd;
  std::optional<pid_t> pid;
  const char* start = "cold";
  if (warm) {
    // The launch file, on a spare when there is one (feedWarmShell truncates it).
    const std::filesystem::path launch_path = warmLaunchPath(warm_->launchDir(), warm->pid);
    spares_->place(launch_path, false);
    if (feedWarmShell(*warm, launch, warm_->launchDir())) {
      pid = warm->pid;
      pidfd = std::move(warm->pidfd);
      start = "warm";
    } else {
      // Gone, or the launch too large for a warm start: retired, and the task starts cold.
      spares_->recycle(launch_path, true);
      retireWarmShell(*warm, std::chrono::milliseconds(1000));
      record.pid = 0;
      record.pid_start_ticks = 0;
    }
    warm.reset();
  }
  if (!pid) {
    const SpawnRequest spawn{argv, std::move(env), settings_.work_dir, log_fd.get(), exitPath(base), settings_.bash};
    auto spawned = spawnSupervised(spawn);
    if (!spawned) return fail(spawned.status());
    pid = *spawned;
    pidfd = openPidfd(*pid);
    const auto stat = readProcessStat(*pid);
    record.pid = *pid;
    record.pid_start_ticks = stat ? stat->start_ticks : 0;
  }
  log_fd.reset();
  {
    std::lock_guard lock(mutex_);
    attempt->record = record;
    attempt->started_steady = started_steady;
  }
  // A cold start's pid (also one that replaced a warm shell whose feed failed) goes into the state
  // file now; a warm shell's was in the claim already, nothing to write again.
  if (std::string_view(start) == "cold") persist(*attempt);

  bool watched = true;
  bool stop_now = false;
  {
    std::lock_guard lock(mutex_);
    attempt->pidfd = std::move(pidfd);
    attempt->phase = Attempt::Phase::kLive;
    by_id_.emplace(attempt->id, attempt);
    watched = attempt->pidfd.valid();
    if (watched) watchPidfdLocked(*attempt);
    // The claim was the running report (it stamped the first heartbeat, §8.8): heartbeats follow.
    attempt->running_reported = true;
    startLiveTimersLocked(attempt, steady_clock::now());
    stop_now = attempt->stop_requested;
  }
  context_.logger()->debug("task process started dag_id={} run_id={} task_id={} try={} pid={} start={} log={}",
                           ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number, *pid, start, record.log_path);
  if (!watched) {
    // No pidfd (descriptor limit, or someone's waitpid(-1) reaped the child already): the exit
    // file and the heartbeat timer's liveness check still see its end.
    context_.logger()->warn("cannot watch task process; checking it every heartbeat pid={} error={}", *pid,
                            errnoText(errno));
  }
  // stop() came while it was starting: it is stopped now that it has a process group.
  if (stop_now) stopProcess(attempt, KillReason::kStopped);
  return DispatchOutcome::kStarted;
}

void LocalDispatcher::abandon(const AttemptPtr& attempt) {
  {
    std::lock_guard lock(mutex_);
    auto it = by_base_.find(attempt->base);
    if (it != by_base_.end() && it->second == attempt) {
      by_base_.erase(it);
      --live_;
    }
  }
  changed_cv_.notify_all();
}

}  // namespace leoflow::plugins::dispatcher_local
