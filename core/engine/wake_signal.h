// What wakes the scheduler loop before its backstop tick: a task report, a change-feed message,
// a finished hand-over. Remembers which runs changed, and of a run whose only changes named their
// tasks, which tasks: the loop refreshes those instances alone (a large run costs per change, not
// per task of the run), and reloads whole only the runs changed otherwise. The echoes of the
// leader's own transitions, run starts and run moves are not remembered at all: its cache has them
// already. Nor are the echoes of the reports of this process's own executions: the reports
// themselves come here as facts (OwnReport), which the loop mirrors into its cache without reading
// the instance back.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <leoflow/domain.h>
#include <leoflow/store.h>

namespace leoflow::engine {

/// An executor's report that the store accepted, made by this process (TaskEventsSink): what the
/// store wrote is known, so the leader mirrors it instead of reading the instance back.
struct OwnReport {
  ExecutionRef execution;
  bool finished = false;  ///< false: the claim (queued → running); true: running → `to`
  TaskState to = TaskState::kRunning;
  Timestamp at{};
  std::optional<int> exit_code;  ///< a finished report's
  std::string message;           ///< a finished report's; the note when not empty
};

class WakeSignal final : public ChangeSink {
 public:
  /// A run changed (its instances or its state): reload it and plan it. Only a leader remembers
  /// which: a follower plans nothing, and reloads everything when it comes to lead, so its set
  /// would only grow with the change feed.
  void runChanged(const RunKey& run) {
    {
      std::lock_guard lock(mutex_);
      if (!tracking_runs_) return;
      changed_runs_.insert(run);
      changed_tasks_.erase(run);  // reloaded whole
      pending_ = true;
    }
    cv_.notify_all();
  }
  /// One task instance of a run changed (a report, a change-feed message naming the task): refresh
  /// that instance. Only a leader remembers it, as runChanged().
  void taskChanged(const RunKey& run, const std::string& task_id) {
    {
      std::lock_guard lock(mutex_);
      if (!tracking_runs_) return;
      if (changed_runs_.count(run) == 0) {
        std::set<std::string>& tasks = changed_tasks_[run];
        // A burst of changes to one run (a wide fan-out starting) reloads the run once instead.
        if (tasks.size() < kMaxTasksPerRun) {
          tasks.insert(task_id);
        } else {
          changed_tasks_.erase(run);
          changed_runs_.insert(run);
        }
      }
      pending_ = true;
    }
    cv_.notify_all();
  }
  /// This process is about to send a report of `execution_id` that may move its instance: the
  /// echo of that report (Change::execution_id, SDK 3.5) is not a change to read back. Called
  /// before the store call, so an echo that arrives before its reply is known; withdrawn with
  /// forgetOwnReport() when the store did not accept the report.
  void expectOwnReport(const std::string& execution_id) {
    std::lock_guard lock(mutex_);
    // Bounded: a report accepted without moving anything (a repeated claim) publishes no echo, so
    // its expectation stays; stale ones only ever match that same execution's echoes, which are
    // mirrored too, and are dropped wholesale here.
    if (expected_reports_.size() >= kMaxExpectedReports) expected_reports_.clear();
    ++expected_reports_[execution_id];
  }
  void forgetOwnReport(const std::string& execution_id) {
    std::lock_guard lock(mutex_);
    auto it = expected_reports_.find(execution_id);
    if (it != expected_reports_.end() && --it->second <= 0) expected_reports_.erase(it);
  }
  /// The store accepted `report`, made by this process: the leader mirrors it into its cache (or,
  /// when its copy of the instance is not where the report started, reads the instance).
  void ownReportAccepted(OwnReport report) {
    {
      std::lock_guard lock(mutex_);
      if (!tracking_runs_) return;
      own_reports_.push_back(std::move(report));
      pending_ = true;
    }
    cv_.notify_all();
  }
  /// The engine leads with `term`: changed runs and tasks are remembered from now on, except the
  /// echoes of the transitions, run starts and run moves written with `term` (Change::leader_term) —
  /// the engine mirrored those into its cache when the store applied them (or asked for the run
  /// itself), and every other write it makes with the term names what it wrote itself (a
  /// hand-over's outcome its task, with taskChanged(); a reaper's its run, with runChanged()).
  void leadAs(Term term) {
    std::lock_guard lock(mutex_);
    tracking_runs_ = true;
    own_term_ = term;
  }
  /// The engine follows: nothing is remembered, and what accumulated is forgotten.
  void follow() {
    std::lock_guard lock(mutex_);
    tracking_runs_ = false;
    own_term_ = 0;
    changed_runs_.clear();
    changed_tasks_.clear();
    own_reports_.clear();
  }
  /// Changes skipped as the leader's own echoes, since the start (for tests and debug logs).
  std::uint64_t ownEchoesSkipped() const { return own_echoes_skipped_.load(); }
  /// How many changed runs wait for the next drain().
  std::size_t pendingRuns() const {
    std::lock_guard lock(mutex_);
    return changed_runs_.size() + changed_tasks_.size();
  }
  /// Something changed that is not about one run (a DAG, a new run, a resync): plan everything.
  void everythingChanged() {
    {
      std::lock_guard lock(mutex_);
      everything_ = true;
      pending_ = true;
    }
    cv_.notify_all();
  }
  /// Wakes the loop without a change (shutdown, a dispatch slot freed).
  void poke() {
    {
      std::lock_guard lock(mutex_);
      pending_ = true;
    }
    cv_.notify_all();
  }

  /// Waits until something is pending or `timeout` passes; true when woken by a signal.
  bool waitFor(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [this] { return pending_; });
  }

  struct Drained {
    std::vector<RunKey> runs;  ///< reload whole
    std::map<RunKey, std::vector<std::string>> tasks;  ///< refresh these instances (runs not in `runs`)
    bool everything = false;
    /// DAGs synced, paused or deleted: a deleted DAG re-created reuses its version numbers, so
    /// what was cached of them must be read again.
    std::vector<std::string> dags;
    bool dags_unknown = false;  ///< the feed resumed after a gap: any DAG may have changed
    std::vector<OwnReport> own_reports;  ///< in the order the store accepted them
  };
  /// Takes what accumulated since the last call.
  Drained drain() {
    std::lock_guard lock(mutex_);
    Drained d{{changed_runs_.begin(), changed_runs_.end()}, {}, everything_,
              {changed_dags_.begin(), changed_dags_.end()}, dags_unknown_, {}};
    for (auto& [run, tasks] : changed_tasks_) d.tasks.emplace(run, std::vector<std::string>(tasks.begin(), tasks.end()));
    d.own_reports.swap(own_reports_);
    changed_runs_.clear();
    changed_tasks_.clear();
    changed_dags_.clear();
    dags_unknown_ = false;
    everything_ = false;
    pending_ = false;
    return d;
  }

  // ChangeSink: the store's change feed, on the store's thread.
  void onChange(const Change& change) override {
    if (change.kind == Change::Kind::kDag && !change.dag_id.empty()) {
      std::lock_guard lock(mutex_);
      changed_dags_.insert(change.dag_id);
    }
    bool own_report = false;
    if (change.kind == Change::Kind::kDag || change.run.run_id.empty()) {
      everythingChanged();
    } else if (change.kind == Change::Kind::kTask && !change.task_id.empty()) {
      own_report = isOwnReportEcho(change);
      if (own_report || isOwnEcho(change)) {
        own_echoes_skipped_.fetch_add(1, std::memory_order_relaxed);
      } else {
        taskChanged(change.run, change.task_id);
      }
    } else if (isOwnEcho(change)) {
      // SDK 3.7: the leader's own run start or run move (materializeRun, setRunState), mirrored.
      own_echoes_skipped_.fetch_add(1, std::memory_order_relaxed);
    } else {
      runChanged(change.run);
    }
    // The stop watcher is not told of this process's own executor reports: a claim keeps its
    // attempt current, and a finished report comes after its process ended — there is nothing to
    // stop, and reading the instance back cost a store call per task. Everything else goes on,
    // the leader's own transitions too (a reaper's may end an attempt held here).
    if (own_report) return;
    if (ChangeSink* l = listener_.load()) l->onChange(change);
  }
  void onResync() override {
    {
      std::lock_guard lock(mutex_);
      dags_unknown_ = true;
    }
    everythingChanged();
    if (ChangeSink* l = listener_.load()) l->onResync();
  }
  /// Another reader of the change feed (the stop watcher): the store has one subscriber, the
  /// engine's wake signal, which passes every message on. `listener` must outlive the feed, or be
  /// reset to nullptr first.
  void setListener(ChangeSink* listener) { listener_.store(listener); }

 private:
  bool isOwnEcho(const Change& change) const {
    if (change.leader_term == 0) return false;
    std::lock_guard lock(mutex_);
    return change.leader_term == own_term_;
  }

  /// The echo of a report this process made and expected (expectOwnReport): consumed here.
  bool isOwnReportEcho(const Change& change) {
    if (change.execution_id.empty()) return false;
    std::lock_guard lock(mutex_);
    auto it = expected_reports_.find(change.execution_id);
    if (it == expected_reports_.end()) return false;
    if (--it->second <= 0) expected_reports_.erase(it);
    return true;
  }

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  static constexpr std::size_t kMaxTasksPerRun = 4096;
  static constexpr std::size_t kMaxExpectedReports = 100'000;
  std::unordered_map<std::string, int> expected_reports_;  // execution id → echoes still to come
  std::vector<OwnReport> own_reports_;
  std::set<RunKey> changed_runs_;
  std::map<RunKey, std::set<std::string>> changed_tasks_;
  std::set<std::string> changed_dags_;
  bool dags_unknown_ = false;
  bool tracking_runs_ = true;
  Term own_term_ = 0;  // while leading; 0 when following
  std::atomic<std::uint64_t> own_echoes_skipped_{0};
  bool everything_ = false;
  bool pending_ = false;
  std::atomic<ChangeSink*> listener_{nullptr};
};

}  // namespace leoflow::engine
