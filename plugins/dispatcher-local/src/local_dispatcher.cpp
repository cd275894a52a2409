// LocalDispatcher: construction (threads, epoll, inotify, the first adoption scan), capacity, and an
// attempt's files (recording its state, cleaning up after it). The other concerns live beside it:
// local_dispatcher_start.cpp (dispatch), _adoption.cpp (the state-dir scan), _watcher.cpp (process
// ends, timers, stopping), _reports.cpp (the report strands), _shutdown.cpp.
#include "local_dispatcher.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>

#include <spdlog/logger.h>

#include "local_dispatcher_internal.h"
#include "names.h"
#include "process.h"
#include "task_command.h"

namespace leoflow::plugins::dispatcher_local {

namespace {

// Reports are store calls that may block: several threads keep one slow call from holding up every
// other attempt's finished report, and let a store that writes the reports arriving together in one
// commit (store-postgres) write many at once. One thread per four tasks that may run at once, 4 to 64:
// with max_parallel 64 on PostgreSQL, 4 threads let a fan-out's finished reports fall behind its
// starts by thousands, each waiting for its own commit; 16 kept up (README "What the store is told").
constexpr std::size_t kMinReporterThreads = 4;
constexpr std::size_t kMaxReporterThreads = 64;
std::size_t reporterThreads(std::size_t max_parallel) {
  return std::clamp<std::size_t>(max_parallel / 4, kMinReporterThreads, kMaxReporterThreads);
}
constexpr milliseconds kMinHeartbeat{10};
constexpr std::size_t kRecentCapacity = 65536;
// Spare files kept for reuse: a few per attempt that may run at once, so that a wave of ends is
// followed by a wave of starts without allocating inodes (SpareFiles).
constexpr std::size_t kMinSpares = 64;
constexpr std::size_t kMaxSpares = 4096;

}  // namespace

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
    const std::filesystem::path spare_dir = settings_.state_dir / ".spare";
    SpareFiles::sweep(spare_dir);
    spares_ = std::make_unique<SpareFiles>(
        spare_dir, std::clamp<std::size_t>(4 * static_cast<std::size_t>(settings_.max_parallel), kMinSpares, kMaxSpares));
  }
  {
    std::lock_guard lock(mutex_);
    addTimerLocked(steady_clock::now() + kScanInterval, 0, TimerKind::kScan);
  }
  try {
    watcher_ = std::thread([this] {
      ::pthread_setname_np(::pthread_self(), "lf-local-watch");
      watchLoop();
    });
    const std::size_t reporters = reporterThreads(settings_.max_parallel);
    for (std::size_t i = 0; i < reporters; ++i) {
      reporters_.emplace_back([this] {
        ::pthread_setname_np(::pthread_self(), "lf-local-report");
        reportLoop();
      });
    }
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
  warm_ = std::make_unique<WarmShellPool>(settings_.warm_shells, settings_.bash, parent_env_, settings_.work_dir,
                                          settings_.state_dir, context_.logger());
  std::size_t adopted = 0;
  {
    std::lock_guard lock(mutex_);
    adopted = by_base_.size();
  }
  // A task may bring a PATH of its own; the scheduler's is where most will look.
  std::vector<std::string> scheduler_path;
  if (auto it = parent_env_.find("PATH"); it != parent_env_.end()) scheduler_path.push_back("PATH=" + it->second);
  const std::string bash = findOnPath(settings_.bash, scheduler_path);
  if (bash.empty()) {
    context_.logger()->warn("\"{}\" ([{}] bash) is not on the scheduler's PATH: bash tasks whose PATH does not "
                            "find it fail to start",
                            settings_.bash, settings_.section);
  }
  context_.logger()->info(
      "dispatcher ready max_parallel={} work_dir={} log_dir={} state_dir={} heartbeat_ms={} bash={} warm_shells={} "
      "adopted={}",
      settings_.max_parallel, settings_.work_dir.string(), settings_.log_dir.string(), settings_.state_dir.string(),
      heartbeat_interval_.count(), bash.empty() ? settings_.bash : bash, settings_.warm_shells, adopted);
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
// What it holds, and stopping it on the host's word (SDK 3.0)

std::vector<AttemptRef> LocalDispatcher::heldAttempts() const {
  std::vector<AttemptRef> held;
  std::lock_guard lock(mutex_);
  for (const auto& [base, attempt] : by_base_) {
    if (attempt->phase == Attempt::Phase::kLive) held.push_back(attempt->ref);
  }
  std::sort(held.begin(), held.end());
  return held;
}

Status LocalDispatcher::stop(const AttemptRef& ref) {
  // Every attempt of that (run id, task, try) it holds: the host names attempts without the run's
  // uid, and one of an older run with the same id is not current either.
  std::vector<AttemptPtr> live;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [base, attempt] : by_base_) {
      if (attempt->ref != ref) continue;
      if (attempt->phase == Attempt::Phase::kLive) {
        live.push_back(attempt);
      } else if (attempt->phase == Attempt::Phase::kStarting) {
        attempt->stop_requested = true;  // dispatch() stops it as soon as it has a process
      }
    }
  }
  if (live.empty()) {
    context_.logger()->debug("stop: no such attempt running here dag_id={} run_id={} task_id={} try={}",
                             ref.run.dag_id, ref.run.run_id, ref.task_id, ref.try_number);
  }
  for (const AttemptPtr& attempt : live) stopProcess(attempt, KillReason::kStopped);
  return {};
}

// ---------------------------------------------------------------------------------------------------
// An attempt's files: recording its state, and cleaning up after it

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
  // locked: whoever finds the state file unlocked may trust it is abandoned. The exit and state
  // files go into the spare pool rather than away (SpareFiles): to anyone looking at the state dir
  // it is the same as their removal, a name gone in one step.
  spares_->recycle(exitPath(attempt->base));
  if (attempt->record.pid > 1) {
    // Emptied: it held the task's environment.
    spares_->recycle(warmLaunchPath(settings_.state_dir, static_cast<pid_t>(attempt->record.pid)), true);
  }
  {
    std::lock_guard file_lock(attempt->file_mutex);
    if (attempt->state_fd.valid()) {
      spares_->recycle(statePath(attempt->base));
    } else {
      ::unlink(statePath(attempt->base).c_str());
    }
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

std::filesystem::path LocalDispatcher::statePath(const std::string& base) const {
  return settings_.state_dir / (base + ".json");
}

std::filesystem::path LocalDispatcher::exitPath(const std::string& base) const {
  return settings_.state_dir / (base + ".exit");
}

}  // namespace leoflow::plugins::dispatcher_local
