#include "engine/stop_watcher.h"

#include <pthread.h>

#include <map>
#include <optional>
#include <span>

#include <spdlog/spdlog.h>

namespace leoflow::engine {

StopWatcher::StopWatcher(Store& store, std::vector<StoppableExecutor> executors, std::shared_ptr<spdlog::logger> log,
                         std::chrono::milliseconds sweep_interval)
    : store_(store), executors_(std::move(executors)), log_(std::move(log)), sweep_interval_(sweep_interval) {}

StopWatcher::~StopWatcher() { stop(); }

void StopWatcher::start() {
  if (executors_.empty() || thread_.joinable()) return;
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "lf-stop-watch");
    loop();
  });
}

void StopWatcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StopWatcher::onChange(const Change& change) {
  {
    std::lock_guard lock(mutex_);
    if (change.kind == Change::Kind::kDag || change.run.run_id.empty()) {
      everything_ = true;
    } else if (change.kind == Change::Kind::kTask && !change.task_id.empty()) {
      if (changed_.count(change.run) == 0) changed_tasks_[change.run].insert(change.task_id);
    } else {
      changed_.insert(change.run);
      changed_tasks_.erase(change.run);
    }
  }
  cv_.notify_all();
}

void StopWatcher::onResync() {
  {
    std::lock_guard lock(mutex_);
    everything_ = true;
  }
  cv_.notify_all();
}

void StopWatcher::loop() {
  auto next_sweep = std::chrono::steady_clock::now() + sweep_interval_;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    cv_.wait_until(lock, next_sweep,
                   [this] { return stopping_ || everything_ || !changed_.empty() || !changed_tasks_.empty(); });
    if (stopping_) break;
    const bool sweep = std::chrono::steady_clock::now() >= next_sweep;
    std::set<RunKey> runs = std::move(changed_);
    changed_.clear();
    std::map<RunKey, std::set<std::string>> tasks = std::move(changed_tasks_);
    changed_tasks_.clear();
    const bool everything = everything_ || sweep;
    everything_ = false;
    if (sweep) next_sweep = std::chrono::steady_clock::now() + sweep_interval_;
    lock.unlock();
    try {
      checkOnce(runs, tasks, everything);
    } catch (const std::exception& e) {
      log_->warn("stop watcher check failed error=\"{}\"", e.what());
    }
    lock.lock();
  }
}

std::size_t StopWatcher::checkOnce(const std::set<RunKey>& runs, const std::map<RunKey, std::set<std::string>>& tasks,
                                   bool everything) {
  auto named = [&](const AttemptRef& a) {
    if (everything || runs.count(a.run) != 0) return true;
    auto it = tasks.find(a.run);
    return it != tasks.end() && it->second.count(a.task_id) != 0;
  };
  // Which held attempts to check, by run.
  std::map<RunKey, std::vector<std::pair<std::size_t, AttemptRef>>> by_run;
  std::set<AttemptRef> held_now;
  for (std::size_t i = 0; i < executors_.size(); ++i) {
    for (const AttemptRef& a : executors_[i].held()) {
      held_now.insert(a);
      if (named(a)) by_run[a.run].emplace_back(i, a);
    }
  }
  {
    // Forget attempts no longer held, so the set stays as small as what runs.
    std::lock_guard lock(mutex_);
    std::erase_if(stopped_, [&](const AttemptRef& a) { return held_now.count(a) == 0; });
  }
  if (by_run.empty()) return 0;
  std::size_t stopped = 0;
  for (auto& [key, held] : by_run) {
    // Only the held tasks' instances, not the whole run: a change to a 20,000-task run must not
    // cost a read of 20,000 instances (Store::loadTaskInstances).
    std::vector<std::string> ids;
    ids.reserve(held.size());
    for (const auto& [executor, attempt] : held) ids.push_back(attempt.task_id);
    const std::vector<Result<TaskInstance>> loaded = store_.loadTaskInstances(key, ids);
    // Rarely a task is missing: whether its whole run is gone (its DAG deleted) says the run itself.
    std::optional<bool> run_gone;
    auto runGone = [&] {
      if (!run_gone) {
        auto run = store_.loadRuns(std::span<const RunKey>(&key, 1));
        run_gone = !run.empty() && !run[0] && run[0].status().code() == StatusCode::kNotFound;
      }
      return *run_gone;
    };
    for (std::size_t h = 0; h < held.size() && h < loaded.size(); ++h) {
      const auto& [executor, attempt] = held[h];
      const Result<TaskInstance>& ti = loaded[h];
      if (!ti && ti.status().code() != StatusCode::kNotFound) continue;  // unreachable: ask again later
      std::string why;
      if (!ti) {
        why = runGone() ? "its run is gone (dag deleted)" : "its task is gone";
      } else if (ti->try_number != attempt.try_number) {
        why = "it was cleared (the task is on try " + std::to_string(ti->try_number) + ")";
      } else if (ti->state != TaskState::kQueued && ti->state != TaskState::kRunning) {
        why = std::string("the task is ") + std::string(toString(ti->state)) +
              (ti->note.empty() ? "" : " (" + ti->note + ")");
      }
      if (why.empty()) continue;
      {
        std::lock_guard lock(mutex_);
        if (!stopped_.insert(attempt).second) continue;
      }
      log_->info("stopping an attempt that is no longer current dag_id={} run_id={} task_id={} try={} plugin={} "
                 "reason=\"{}\"",
                 attempt.run.dag_id, attempt.run.run_id, attempt.task_id, attempt.try_number,
                 executors_[executor].plugin, why);
      Status s = executors_[executor].stop(attempt);
      if (!s.isOk()) {
        log_->warn("stopping the attempt failed dag_id={} run_id={} task_id={} try={} error={}", attempt.run.dag_id,
                   attempt.run.run_id, attempt.task_id, attempt.try_number, s.toString());
        std::lock_guard lock(mutex_);
        stopped_.erase(attempt);  // try again on the next check
        continue;
      }
      ++stopped;
    }
  }
  return stopped;
}

}  // namespace leoflow::engine
