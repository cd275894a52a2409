// LocalDispatcher: the state-dir scan (at start-up, every few seconds, on reconcile()). Attempts
// nobody watches are adopted when their process still runs, or reported when it ended meanwhile;
// leftovers of schedulers that died (stray exit files, old temporary claims) are removed.
#include "local_dispatcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <filesystem>
#include <system_error>

#include <spdlog/logger.h>

#include <leoflow/execution_id.h>

#include "local_dispatcher_internal.h"
#include "log_file.h"
#include "process.h"

namespace leoflow::plugins::dispatcher_local {

namespace {

constexpr milliseconds kReconcileScanEvery{1000};
constexpr auto kStaleTmpAge = std::chrono::minutes(1);

}  // namespace

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
  std::optional<TaskOutcome> ended;
  if (!alive) {
    ended = record->outcome ? *record->outcome : outcomeFor(*record, code, status, true);
    if (record->kill_reason == KillReason::kStale) {
      ended->message = "stopped: the attempt is no longer current (a report was refused)";
    }
    // Its log gets its footer (unless the dispatcher that saw the end wrote it) before anything is
    // reported, as for an end seen live.
    appendLogFooter(record->log_path, record->execution_id, *ended);
  }

  auto attempt = std::make_shared<Attempt>();
  attempt->base = base;
  attempt->ref = record->attempt;
  attempt->footer_written = !alive;
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
        addEscalationLocked(*attempt);
      }
    } else {
      // REPORTED: it ended while nobody watched.
      attempt->phase = Attempt::Phase::kExited;
      if (record->kill_reason == KillReason::kStale) {
        clean_up = true;
      } else {
        attempt->outcome = ended;
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

}  // namespace leoflow::plugins::dispatcher_local
