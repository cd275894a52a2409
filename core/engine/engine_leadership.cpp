// Engine, leadership: the campaign, leadership checks, stepping down, the watchdog thread (which
// also enforces the step timeout) and the confirmation hand-overs wait for. Split from engine.cpp.
#include "engine/engine.h"

#include <condition_variable>
#include <thread>

#include "engine/engine_internal.h"

namespace leoflow::engine {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Leadership (BEHAVIOUR §5.2, ARCHITECTURE §8.7)

Result<bool> Engine::campaignOnce() {
  if (leading_) return true;
  std::lock_guard lock(leader_mutex_);
  auto won = leader_.tryAcquire();
  if (!won) {
    noteStoreOutage();
    log_->error("acquiring leadership failed error={}", won.status().toString());
    return won.status();
  }
  if (!*won) return false;
  auto term = store_.claimTerm(options_.replica_id);
  if (!term) {
    if (term.status().code() == StatusCode::kUnavailable) noteStoreOutage();
    // Leading without a term would make every write fail; give the lock back and try again later.
    log_->error("claiming a term failed; releasing leadership error={}", term.status().toString());
    (void)leader_.release();
    return term.status();
  }
  // The term is tied to the lock: a replica that lost the lock while claiming (a pause, a slow
  // store) must not make a single decision under the term it just claimed.
  auto still = leader_.check();
  if (!still || !*still) {
    log_->warn("leadership lost while claiming a term; not leading term={} error={}", *term,
               still ? std::string("lock_released") : still.status().toString());
    if (!still) (void)leader_.release();
    return still ? Result<bool>(false) : Result<bool>(still.status());
  }
  term_ = *term;
  check_interval_us_ = duration_cast<microseconds>(leader_.checkInterval()).count();
  leadership_confirmed_us_ = steadyMicros();
  failed_checks_ = 0;
  stepdown_requested_ = false;
  reload_everything_ = true;
  redispatch_pending_ = true;  // §8.8: every queued attempt is handed over again
  last_tick_us_ = 0;           // a fresh start-up grace for health
  leading_since_us_ = duration_cast<microseconds>(clock_.now().time_since_epoch()).count();
  last_full_tick_ = {};
  last_active_listing_ = {};
  last_orphan_sweep_.reset();
  leading_since_steady_ = steady_clock::now();
  first_tick_pending_ = true;
  wake_.leadAs(*term);
  leading_ = true;
  if (stepped_down_at_) {
    recorder_.observeSchedulerReacquire(duration_cast<microseconds>(steady_clock::now() - *stepped_down_at_));
  }
  log_->info("became scheduler leader replica={} term={}", options_.replica_id, *term);
  wake_.poke();
  return true;
}

bool Engine::checkLeadershipOnce() {
  if (!leading_ || stepdown_requested_) return leading_ && !stepdown_requested_;
  Result<bool> held = [&] {
    std::lock_guard lock(leader_mutex_);
    return leader_.check();
  }();
  if (held.isOk() && *held) {
    failed_checks_ = 0;
    leadership_confirmed_us_ = steadyMicros();
    return true;
  }
  if (held.isOk()) {
    log_->warn("lost scheduler leadership; stepping down reason=lock_released");
    requestStepDown("lock_released");
    return false;
  }
  ++failed_checks_;
  noteStoreOutage();
  log_->warn("leadership check failed consecutive={} error={}", failed_checks_, held.status().toString());
  if (failed_checks_ >= options_.max_leader_check_failures) {
    log_->warn("too many failed leadership checks; stepping down reason=check_timeout consecutive_failures={}",
               failed_checks_);
    requestStepDown("check_timeout");
    return false;
  }
  return true;
}

void Engine::requestStepDown(const std::string& reason) {
  {
    std::lock_guard lock(stepdown_mutex_);
    if (!stepdown_requested_) stepdown_reason_ = reason;
  }
  stepdown_requested_ = true;
  wake_.poke();
}

void Engine::stepDown(const std::string& reason) {
  if (!leading_) return;
  leading_ = false;
  stepdown_requested_ = false;
  pool_->cancelAll();  // the next leader hands every queued attempt over again
  runs_.clear();
  attention_.clear();
  parked_.clear();
  reconcile_queue_.clear();
  reconcile_queued_.clear();
  load_order_.clear();
  pending_listing_ = {};  // waits for a listing still being read: it belongs to the term that ends
  listing_walk_.reset();
  resync_started_.reset();
  broken_runs_.clear();
  dirty_.clear();
  wake_.follow();
  {
    std::lock_guard lock(handed_mutex_);
    handed_over_.clear();
  }
  recorder_.recordSchedulerStepDown(reason);
  // A lost lock or a newer term means someone else leads: releasing could only hurt them.
  if (reason != "lock_released" && reason != "fenced") {
    std::lock_guard lock(leader_mutex_);
    Status s = leader_.release();
    if (!s.isOk()) log_->error("releasing leadership failed error={}", s.toString());
  }
  stepped_down_at_ = steady_clock::now();
  // Stopping the scheduler is asked for, and normal: no warning for it. Every other reason (a lost
  // lease or lock, a fence, a store that stayed away) is one an operator should see.
  log_->log(reason == "shutdown" ? spdlog::level::info : spdlog::level::warn,
            "stepped down as scheduler leader reason={} term={}", reason, term_.load());
}

void Engine::watchdogLoop(std::stop_token stop) {
  std::mutex m;
  std::condition_variable_any cv;
  auto next_check = steady_clock::now();
  watchdog_running_ = true;
  struct Off {
    std::atomic<bool>& flag;
    ~Off() { flag = false; }
  } off{watchdog_running_};
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(m);
      cv.wait_for(lock, stop, milliseconds{20}, [] { return false; });
    }
    // The step timeout (BEHAVIOUR §2.2): a tick past it is cut short at its next unit of work and
    // reported; the loop and health show it.
    const std::int64_t started = tick_started_us_.load();
    if (started != 0 && !tick_timed_out_ &&
        steadyMicros() - started > duration_cast<microseconds>(options_.effectiveStepTimeout()).count()) {
      tick_timed_out_ = true;
      log_->error("scheduler tick exceeded the step timeout step_timeout_ms={}",
                  options_.effectiveStepTimeout().count());
      decision("step_timeout");
    }
    if (leading_ && !stepdown_requested_ && steady_clock::now() >= next_check) {
      checkLeadershipOnce();
      next_check = steady_clock::now() + leader_.checkInterval();
    }
  }
}

bool Engine::handOverGivenUp(const DispatchJob& job, const std::atomic<bool>& cancelled) const {
  return cancelled.load() || !leading_ || stepdown_requested_ || term_ != job.term;
}

bool Engine::awaitConfirmedLeadership(const DispatchJob& job, const std::atomic<bool>& cancelled) {
  // The watchdog confirms every check interval; twice that is overdue yet still inside a lease
  // (store-redis: lease = 3 intervals).
  const std::int64_t fresh_for = 2 * check_interval_us_.load();
  while (true) {
    if (handOverGivenUp(job, cancelled)) return false;
    if (!watchdog_running_) return true;
    if (steadyMicros() - leadership_confirmed_us_.load() <= fresh_for) return true;
    // Overdue: the process was paused, or the watchdog is stuck on a slow check. Whether another
    // replica leads now is unknown until the watchdog's next check answers.
    std::this_thread::sleep_for(milliseconds{2});
  }
}

}  // namespace leoflow::engine
