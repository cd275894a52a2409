#include "local_dispatcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>
#include <spdlog/logger.h>

#include <leoflow/execution_id.h>

#include "names.h"
#include "process.h"
#include "task_command.h"

namespace leoflow::plugins::dispatcher_local {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using std::chrono::system_clock;

namespace {

// Reports are store calls that may block; a few threads keep one slow call from holding up every
// other attempt's finished report.
constexpr std::size_t kReporterThreads = 4;
constexpr milliseconds kMinHeartbeat{10};
// The watcher rescans the state dir this often on its own, so an attempt left by a scheduler on
// this machine that died is adopted even if the host never calls reconcile().
constexpr milliseconds kScanInterval{5000};
constexpr milliseconds kReconcileScanEvery{1000};
constexpr milliseconds kRetryFirst{50};
constexpr milliseconds kRetryMax{5000};
// shutdown(): the scheduler must exit within 10 s (ARCHITECTURE §8.11), after draining its pool.
constexpr milliseconds kDispatchDrain{2000};
constexpr milliseconds kReportDrain{1000};
constexpr milliseconds kStopTermWait{2000};
constexpr milliseconds kStopKillWait{1000};
constexpr std::size_t kRecentCapacity = 65536;
// epoll keys: 0 is the eventfd, this the inotify fd, anything else an attempt's id.
constexpr std::uint64_t kInotifyKey = std::numeric_limits<std::uint64_t>::max();
constexpr auto kStaleTmpAge = std::chrono::minutes(1);

std::string errnoText(int err) { return std::strerror(err); }

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Shells report a death by signal N as exit code 128+N; the supervisor sees the task through a
// shell too, so such a code is named as the signal it almost certainly was.
TaskOutcome describeExit(int code) {
  if (code == 0) return {true, 0, ""};
  if (code > 128 && code <= 128 + 64) {
    return {false, code, fmt::format("killed by signal {} (exit code {})", code - 128, code)};
  }
  return {false, code, fmt::format("exit code {}", code)};
}

// How an attempt ended: the reason we stopped it wins; then the code its supervisor recorded; then
// what waitid() said about the supervisor itself; else it is lost.
TaskOutcome outcomeFor(const StateRecord& record, std::optional<int> code, std::optional<WaitStatus> status,
                       bool lost_while_down) {
  std::optional<int> exit_code = code;
  if (!exit_code && status) exit_code = status->signaled ? 128 + status->value : status->value;
  switch (record.kill_reason) {
    case KillReason::kTimeout:
      return {false, exit_code, fmt::format("timed out after {} s", record.execution_timeout_seconds)};
    case KillReason::kShutdown:
      return {false, exit_code, "stopped: the scheduler shut down (stop_tasks_on_shutdown)"};
    case KillReason::kStale:
    case KillReason::kNone:
      break;
  }
  if (code) return describeExit(*code);
  if (status) {
    if (status->signaled) return {false, 128 + status->value, fmt::format("killed by signal {}", status->value)};
    return describeExit(status->value);
  }
  return {false, std::nullopt,
          lost_while_down ? "process lost while the scheduler was down"
                          : "process lost: it ended without recording an exit code"};
}

void appendLogNote(const std::string& path, const std::string& note) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  if (!fd.valid()) return;
  const std::string line = "leoflow: " + note + "\n";
  [[maybe_unused]] const ssize_t n = ::write(fd.get(), line.data(), line.size());
}

}  // namespace

struct LocalDispatcher::Attempt {
  enum class Phase : std::uint8_t {
    kStarting,  ///< dispatch() reserved it and is spawning
    kLive,      ///< the process runs (counts against max_parallel)
    kExited,    ///< the process ended; its finished report is pending
    kDone,      ///< reported (or stale) and being removed
  };

  std::uint64_t id = 0;
  std::string base;
  // Serialises rewrites of the state file and its closing; taken before mutex_, never inside it.
  std::mutex file_mutex;
  UniqueFd state_fd;  // holds the attempt's lock while this dispatcher watches it

  // Guarded by the dispatcher's mutex_.
  StateRecord record;
  // When this dispatcher started it (not adopted): its timeout counts on the steady clock, which a
  // wall-clock step cannot shorten.
  std::optional<SteadyTime> started_steady;
  UniqueFd pidfd;
  Phase phase = Phase::kStarting;
  bool running_reported = false;
  std::optional<TaskOutcome> outcome;
  std::deque<ReportKind> reports;  // the strand: performed in order, one at a time
  bool queued = false;             // in ready_
  bool busy = false;               // a reporter is performing reports.front()
  bool paused = false;             // waiting for a retry timer
  int failures = 0;
};

LocalDispatcher::LocalDispatcher(Settings settings, const PluginContext& context)
    : settings_(std::move(settings)),
      context_(context),
      heartbeat_interval_(std::max(context.heartbeatInterval(), kMinHeartbeat)),
      boot_id_(readBootId()),
      parent_env_(snapshotEnvironment()) {
  epoll_fd_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd_.valid()) throw std::runtime_error("dispatcher-local: epoll_create1 failed: " + errnoText(errno));
  wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_.valid()) throw std::runtime_error("dispatcher-local: eventfd failed: " + errnoText(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &ev) != 0) {
    throw std::runtime_error("dispatcher-local: epoll_ctl failed: " + errnoText(errno));
  }
  // The supervisor writes the exit file as its last act; its own exit (a process teardown, up to
  // milliseconds) need not delay the report. The pidfd stays the backstop: without inotify (limits,
  // a queue overflow) every end is still seen when the supervisor exits.
  inotify_fd_.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (inotify_fd_.valid() && ::inotify_add_watch(inotify_fd_.get(), settings_.state_dir.c_str(), IN_CLOSE_WRITE) >= 0) {
    ev.data.u64 = kInotifyKey;
    if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, inotify_fd_.get(), &ev) != 0) inotify_fd_.reset();
  } else {
    context_.logger()->warn("watching the state dir for exit files failed; ends are seen when supervisors exit "
                            "state_dir={} error={}",
                            settings_.state_dir.string(), errnoText(errno));
    inotify_fd_.reset();
  }
  {
    std::lock_guard lock(mutex_);
    addTimerLocked(steady_clock::now() + kScanInterval, 0, TimerKind::kScan);
  }
  try {
    watcher_ = std::thread([this] { watchLoop(); });
    for (std::size_t i = 0; i < kReporterThreads; ++i) reporters_.emplace_back([this] { reportLoop(); });
    // Adopt before taking work: what a previous scheduler left running counts against
    // max_parallel from the first dispatch on.
    scanStateDir();
  } catch (...) {
    shutdown();  // joins whatever started; the destructor does not run for a throwing constructor
    throw;
  }
  // Warm shells read their launch from .warm-<pid>.sh files in the state dir (not attempts: the
  // scan passes them by); those of shells that are gone are removed here.
  sweepWarmLaunches(settings_.state_dir);
  warm_ = std::make_unique<WarmShellPool>(settings_.warm_shells, parent_env_, settings_.work_dir, settings_.state_dir,
                                          context_.logger());
  std::size_t adopted = 0;
  {
    std::lock_guard lock(mutex_);
    adopted = by_base_.size();
  }
  context_.logger()->info(
      "dispatcher ready max_parallel={} work_dir={} log_dir={} state_dir={} heartbeat_ms={} warm_shells={} adopted={}",
      settings_.max_parallel, settings_.work_dir.string(), settings_.log_dir.string(), settings_.state_dir.string(),
      heartbeat_interval_.count(), settings_.warm_shells, adopted);
}

LocalDispatcher::~LocalDispatcher() { shutdown(); }

std::vector<std::string> LocalDispatcher::taskTypes() const {
  return {std::string(kBashType), std::string(kPythonType)};
}

std::size_t LocalDispatcher::freeCapacity() const {
  std::lock_guard lock(mutex_);
  if (!accepting_ || live_ >= settings_.max_parallel) return 0;
  return settings_.max_parallel - live_;
}

// ---------------------------------------------------------------------------------------------------
// dispatch (ARCHITECTURE §8.8; BEHAVIOUR §10 item 12: idempotent per attempt)

Result<DispatchOutcome> LocalDispatcher::dispatch(const DispatchRequest& request) {
  auto argv = taskArgv(request.task, settings_);
  if (!argv) return argv.status();
  auto attempt = std::make_shared<Attempt>();
  attempt->base = stateBaseName(request.attempt);
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
  record.task_type = request.task.type;
  record.boot_id = boot_id_;
  record.started_at_us = duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
  const SteadyTime started_steady = steady_clock::now();
  record.execution_timeout_seconds = std::max(request.task.execution_timeout_seconds, 0);
  const std::filesystem::path log_path = attemptLogPath(settings_.log_dir, ref);
  record.log_path = log_path.string();
  record.owner = context_.replicaId();
  // This start of the attempt's code is an execution of its own (ARCHITECTURE §8.13). The id is in
  // the state file from the start, so whoever adopts or reports the attempt speaks for it.
  record.execution_id = makeExecutionId("local");

  // A bash task starts in a warm shell when one is ready and can take on the task's environment;
  // its pid goes into the claim, so the state file names the process from the start.
  std::vector<std::string> env = taskEnvironment(parent_env_, request, settings_);
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

  auto claim = claimStateFile(settings_.state_dir, base, encodeStateRecord(record));
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
  // is reported failed with the reason (an ordinary failure: retries apply), not left to a reaper.
  auto fail = [&](const Status& status) -> Result<DispatchOutcome> {
    giveBackWarm();
    context_.logger()->error("starting task process failed dag_id={} run_id={} task_id={} try={} error={}",
                             ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number, status.toString());
    {
      std::lock_guard lock(mutex_);
      attempt->record = record;
      attempt->running_reported = true;
      attempt->phase = Attempt::Phase::kExited;
      attempt->outcome = TaskOutcome{false, std::nullopt, "could not start the task process: " + status.message()};
      by_id_.emplace(attempt->id, attempt);
      --live_;
      postLocked(attempt, ReportKind::kFinished);
    }
    persist(*attempt);
    return DispatchOutcome::kStarted;
  };

  std::error_code ec;
  std::filesystem::create_directories(log_path.parent_path(), ec);
  if (ec) return fail(unavailable("cannot create log folder " + log_path.parent_path().string() + ": " + ec.message()));
  UniqueFd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log_fd.valid()) return fail(unavailable("cannot open log file " + log_path.string() + ": " + errnoText(errno)));

  // A leftover exit file (of a claim whose scheduler died before cleaning up) must not pass for
  // this process's.
  ::unlink(exitPath(base).c_str());
  UniqueFd pidfd;
  std::optional<pid_t> pid;
  const char* start = "cold";
  if (warm) {
    if (feedWarmShell(*warm, launch, warm_->launchDir())) {
      pid = warm->pid;
      pidfd = std::move(warm->pidfd);
      start = "warm";
    } else {
      // Gone, or the launch too large for a warm start: retired, and the task starts cold.
      retireWarmShell(*warm, std::chrono::milliseconds(1000));
      record.pid = 0;
      record.pid_start_ticks = 0;
    }
    warm.reset();
  }
  if (!pid) {
    const SpawnRequest spawn{argv, std::move(env), settings_.work_dir, log_fd.get(), exitPath(base)};
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
  persist(*attempt);

  bool watched = true;
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
  }
  context_.logger()->debug("task process started dag_id={} run_id={} task_id={} try={} pid={} start={} log={}",
                           ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number, *pid, start, record.log_path);
  if (!watched) {
    // No pidfd (descriptor limit, or someone's waitpid(-1) reaped the child already): the exit
    // file and the heartbeat timer's liveness check still see its end.
    context_.logger()->warn("cannot watch task process; checking it every heartbeat pid={} error={}", *pid,
                            errnoText(errno));
  }
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

// ---------------------------------------------------------------------------------------------------
// The state dir: adoption after a restart, and leftovers of schedulers that died

void LocalDispatcher::scanStateDir() {
  std::lock_guard scan(scan_mutex_);
  last_scan_ = steady_clock::now();
  std::vector<std::string> names;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(settings_.state_dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) {
    context_.logger()->warn("reading state dir failed state_dir={} error={}", settings_.state_dir.string(),
                            ec.message());
    return;
  }
  for (const std::string& name : names) {
    try {
      if (name.front() != '.' && endsWith(name, ".json")) {
        considerStateFile(name.substr(0, name.size() - 5));
      } else if (endsWith(name, ".exit") || (name.front() == '.' && endsWith(name, ".tmp"))) {
        removeStray(name);
      }
    } catch (const std::exception& e) {
      context_.logger()->error("adopting from state dir failed file={} error={}", name, e.what());
    }
  }
}

void LocalDispatcher::considerStateFile(const std::string& base) {
  {
    std::lock_guard lock(mutex_);
    if (!accepting_ || by_base_.count(base) != 0) return;
  }
  const std::filesystem::path path = statePath(base);
  // Not lockable: a live dispatcher (here or in another scheduler) watches it.
  auto fd = lockExisting(path);
  if (!fd) return;
  auto text = readAll(fd->get());
  auto record = text ? decodeStateRecord(*text) : std::nullopt;
  if (!record) {
    std::filesystem::path aside = path;
    aside += ".corrupt";
    ::rename(path.c_str(), aside.c_str());
    context_.logger()->error("unreadable state file moved aside file={}", aside.string());
    return;
  }
  const AttemptRef& ref = record->attempt;

  // Its scheduler died between claiming and recording the pid: look for its supervisor.
  bool found_supervisor = false;
  if (record->pid <= 0 && record->boot_id == boot_id_) {
    if (auto found = findSupervisor(exitPath(base))) {
      const auto stat = readProcessStat(*found);
      record->pid = *found;
      record->pid_start_ticks = stat ? stat->start_ticks : 0;
      found_supervisor = true;
    }
  }
  const auto pid = static_cast<pid_t>(record->pid);
  bool alive = isSameLiveProcess(pid, record->pid_start_ticks, record->boot_id, boot_id_);
  UniqueFd pidfd;
  if (alive) {
    pidfd = openPidfd(pid);
    // Checked again after opening, so the pidfd is known to be the recorded process, not a pid
    // recycled in between.
    alive = pidfd.valid() && isSameLiveProcess(pid, record->pid_start_ticks, record->boot_id, boot_id_);
  }
  std::optional<WaitStatus> status;
  if (!alive && pid > 1 && record->boot_id == boot_id_) {
    // A supervisor started by an earlier dispatcher of this very process is our zombie child.
    const auto stat = readProcessStat(pid);
    if (stat && stat->start_ticks == record->pid_start_ticks && stat->state == 'Z') status = reapZombieChild(pid);
  }
  const std::optional<int> code = alive ? std::nullopt : readExitCode(exitPath(base));

  auto attempt = std::make_shared<Attempt>();
  attempt->base = base;
  attempt->state_fd = std::move(*fd);
  bool clean_up = false;
  bool resend_term = false;
  {
    std::lock_guard lock(mutex_);
    if (!accepting_ || by_base_.count(base) != 0) return;  // closing the fd releases the lock
    attempt->id = next_id_++;
    attempt->record = *record;
    by_base_.emplace(base, attempt);
    by_id_.emplace(attempt->id, attempt);
    if (alive) {
      // ADOPTED: watched again like our own (README "Restarts").
      attempt->pidfd = std::move(pidfd);
      attempt->phase = Attempt::Phase::kLive;
      ++live_;
      watchPidfdLocked(*attempt);
      startLiveTimersLocked(attempt, steady_clock::now());
      if (record->kill_reason == KillReason::kNone) {
        // The claim is sent again with the recorded execution id (ARCHITECTURE §8.13): accepted, the
        // adopter speaks for the same execution and heartbeats follow; refused, the attempt is no
        // longer this execution's and the process is stopped.
        if (attempt->record.execution_id.empty()) attempt->record.execution_id = makeExecutionId("local");
        postLocked(attempt, ReportKind::kRunning);
      } else {
        // It was being stopped when its scheduler went away: finish the job.
        resend_term = true;
        addTimerLocked(steady_clock::now() + settings_.kill_grace, attempt->id, TimerKind::kEscalate);
      }
    } else {
      // REPORTED: it ended while nobody watched.
      attempt->phase = Attempt::Phase::kExited;
      if (record->kill_reason == KillReason::kStale) {
        clean_up = true;
      } else {
        attempt->outcome = record->outcome ? *record->outcome : outcomeFor(*record, code, status, true);
        postLocked(attempt, ReportKind::kFinished);
      }
    }
  }
  if (found_supervisor) persist(*attempt);
  if (alive) {
    if (resend_term) signalGroup(pid, SIGTERM);
    context_.logger()->info("adopted running task process dag_id={} run_id={} task_id={} try={} pid={} owner={}",
                            ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number, pid, record->owner);
  } else if (clean_up) {
    cleanUp(attempt);
  } else {
    context_.logger()->info(
        "task process ended while no dispatcher watched; reporting dag_id={} run_id={} task_id={} try={} "
        "success={} exit_code={} message=\"{}\"",
        ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number, attempt->outcome->success,
        attempt->outcome->exit_code ? std::to_string(*attempt->outcome->exit_code) : "none",
        attempt->outcome->message);
  }
}

void LocalDispatcher::removeStray(const std::string& name) {
  const std::filesystem::path path = settings_.state_dir / name;
  if (endsWith(name, ".exit")) {
    // An exit file outlives its state file only when a scheduler died while cleaning up.
    const std::string base = name.substr(0, name.size() - 5);
    {
      std::lock_guard lock(mutex_);
      if (by_base_.count(base) != 0) return;
    }
    if (::access(statePath(base).c_str(), F_OK) != 0 && errno == ENOENT) ::unlink(path.c_str());
    return;
  }
  // A temporary claim file of a scheduler that died between creating and linking it.
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return;
  const auto modified = system_clock::from_time_t(st.st_mtim.tv_sec);
  if (system_clock::now() - modified < kStaleTmpAge) return;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.valid() && ::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) ::unlink(path.c_str());
}

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
  {
    std::lock_guard lock(mutex_);
    if (attempt->phase != Attempt::Phase::kLive) return;
    attempt->phase = Attempt::Phase::kExited;
    attempt->pidfd.reset();
    --live_;
    if (attempt->record.kill_reason == KillReason::kStale) {
      // No longer current: nothing to report (it would be refused).
      clean_up = true;
    } else {
      attempt->outcome = outcomeFor(attempt->record, code, status, false);
      outcome = attempt->outcome;
      // Beats not yet sent are moot now; the one in flight, if any, stays at the front.
      auto& r = attempt->reports;
      const auto first = r.begin() + (attempt->busy && !r.empty() ? 1 : 0);
      r.erase(std::remove_if(first, r.end(),
                             [](ReportKind k) { return k == ReportKind::kHeartbeat; }),
              r.end());
      postLocked(attempt, ReportKind::kFinished);
    }
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
          if (attempt->running_reported) postLocked(attempt, ReportKind::kHeartbeat);
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
      case TimerKind::kEscalate:
        if (attempt->phase != Attempt::Phase::kLive) return;
        break;
      case TimerKind::kScan:
        return;
    }
  }
  switch (timer.kind) {
    case TimerKind::kHeartbeat:
      onExit(timer.id);
      break;
    case TimerKind::kTimeout:
      stop(attempt, KillReason::kTimeout);
      break;
    case TimerKind::kEscalate: {
      const auto pid = static_cast<pid_t>(attempt->record.pid);
      context_.logger()->warn("task process outlived its kill grace; sending SIGKILL dag_id={} run_id={} task_id={} "
                              "try={} pid={} grace_ms={}",
                              attempt->record.attempt.run.dag_id, attempt->record.attempt.run.run_id,
                              attempt->record.attempt.task_id, attempt->record.attempt.try_number, pid,
                              settings_.kill_grace.count());
      appendLogNote(attempt->record.log_path, "still running after the kill grace; sending SIGKILL");
      signalGroup(pid, SIGKILL);
      break;
    }
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
      if (timers_.top().kind == TimerKind::kScan || by_id_.count(timers_.top().id) != 0) alive.push_back(timers_.top());
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
    const bool conflict = status.code() == StatusCode::kConflict;
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
      context_.logger()->warn("attempt is no longer current; stopping its process dag_id={} run_id={} task_id={} "
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
        stop(attempt, KillReason::kStale);
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

// ---------------------------------------------------------------------------------------------------
// Ending attempts

void LocalDispatcher::stop(const AttemptPtr& attempt, KillReason reason) {
  pid_t pid = 0;
  std::string note;
  {
    std::lock_guard lock(mutex_);
    if (attempt->phase != Attempt::Phase::kLive || attempt->record.kill_reason != KillReason::kNone) return;
    attempt->record.kill_reason = reason;
    pid = static_cast<pid_t>(attempt->record.pid);
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
      case KillReason::kNone:
        break;
    }
  }
  // Recorded before the signal: a scheduler that dies right after still reports the reason.
  persist(*attempt);
  const AttemptRef& ref = attempt->record.attempt;
  context_.logger()->warn("stopping task process dag_id={} run_id={} task_id={} try={} pid={} reason=\"{}\"",
                          ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number, pid, note);
  appendLogNote(attempt->record.log_path,
                fmt::format("{}; sending SIGTERM to the process group (SIGKILL after {} ms)", note,
                            settings_.kill_grace.count()));
  signalGroup(pid, SIGTERM);
  std::lock_guard lock(mutex_);
  addTimerLocked(steady_clock::now() + settings_.kill_grace, attempt->id, TimerKind::kEscalate);
}

void LocalDispatcher::persist(Attempt& attempt) {
  std::lock_guard file_lock(attempt.file_mutex);
  if (!attempt.state_fd.valid()) return;
  std::string text;
  {
    std::lock_guard lock(mutex_);
    text = encodeStateRecord(attempt.record);
  }
  if (Status s = rewriteStateFile(attempt.state_fd.get(), text); !s.isOk()) {
    context_.logger()->warn("recording attempt state failed file={} error={}", statePath(attempt.base).string(),
                            s.toString());
  }
}

void LocalDispatcher::cleanUp(const AttemptPtr& attempt) {
  {
    std::lock_guard lock(mutex_);
    if (attempt->phase == Attempt::Phase::kDone) return;
    attempt->phase = Attempt::Phase::kDone;
  }
  // The exit file (and a warm shell's launch file) first, the state file last and while still
  // locked: whoever finds the state file unlocked may trust it is abandoned.
  ::unlink(exitPath(attempt->base).c_str());
  if (attempt->record.pid > 1) {
    ::unlink(warmLaunchPath(settings_.state_dir, static_cast<pid_t>(attempt->record.pid)).c_str());
  }
  {
    std::lock_guard file_lock(attempt->file_mutex);
    ::unlink(statePath(attempt->base).c_str());
    attempt->state_fd.reset();
  }
  {
    std::lock_guard lock(mutex_);
    auto it = by_base_.find(attempt->base);
    if (it != by_base_.end() && it->second == attempt) by_base_.erase(it);
    by_id_.erase(attempt->id);
    rememberFinishedLocked(attempt->base);
  }
  changed_cv_.notify_all();
}

void LocalDispatcher::rememberFinishedLocked(const std::string& base) {
  if (!recent_.insert(base).second) return;
  recent_order_.push_back(base);
  if (recent_order_.size() > kRecentCapacity) {
    recent_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
}

void LocalDispatcher::stopLiveTasks() {
  std::vector<AttemptPtr> live;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [base, attempt] : by_base_) {
      if (attempt->phase == Attempt::Phase::kLive) live.push_back(attempt);
    }
  }
  for (const AttemptPtr& attempt : live) stop(attempt, KillReason::kShutdown);
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
  context_.logger()->info("dispatcher stopped left_running={} left_unreported={} stop_tasks_on_shutdown={} "
                          "elapsed_ms={}",
                          running, unreported, settings_.stop_tasks_on_shutdown,
                          duration_cast<milliseconds>(steady_clock::now() - started).count());
}

Status LocalDispatcher::reconcile() {
  // Children are reaped as they exit (pidfds); what is left to catch up on is adoption of attempts
  // whose scheduler on this machine died. Cheap, but not every quick tick.
  std::unique_lock scan(scan_mutex_, std::try_to_lock);
  if (!scan.owns_lock() || steady_clock::now() - last_scan_ < kReconcileScanEvery) return {};
  scan.unlock();
  {
    std::lock_guard lock(mutex_);
    if (!accepting_) return {};
  }
  scanStateDir();
  return {};
}

std::filesystem::path LocalDispatcher::statePath(const std::string& base) const {
  return settings_.state_dir / (base + ".json");
}

std::filesystem::path LocalDispatcher::exitPath(const std::string& base) const {
  return settings_.state_dir / (base + ".exit");
}

}  // namespace leoflow::plugins::dispatcher_local
