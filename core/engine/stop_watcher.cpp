#include "engine/stop_watcher.h"

#include <map>

#include <spdlog/spdlog.h>

namespace leoflow::engine {

StopWatcher::StopWatcher(Store& store, std::vector<StoppableExecutor> executors, std::shared_ptr<spdlog::logger> log,
                         std::chrono::milliseconds sweep_interval)
    : store_(store), executors_(std::move(executors)), log_(std::move(log)), sweep_interval_(sweep_interval) {}

StopWatcher::~StopWatcher() { stop(); }

void StopWatcher::start() {
  if (executors_.empty() || thread_.joinable()) return;
  thread_ = std::thread([this] { loop(); });
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
    } else {
      changed_.insert(change.run);
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
    cv_.wait_until(lock, next_sweep, [this] { return stopping_ || everything_ || !changed_.empty(); });
    if (stopping_) break;
    const bool sweep = std::chrono::steady_clock::now() >= next_sweep;
    std::set<RunKey> runs = std::move(changed_);
    changed_.clear();
    const bool everything = everything_ || sweep;
    everything_ = false;
    if (sweep) next_sweep = std::chrono::steady_clock::now() + sweep_interval_;
    lock.unlock();
    try {
      checkOnce(runs, everything);
    } catch (const std::exception& e) {
      log_->warn("stop watcher check failed error=\"{}\"", e.what());
    }
    lock.lock();
  }
}

std::size_t StopWatcher::checkOnce(const std::set<RunKey>& runs, bool everything) {
  // Which held attempts to check, by run.
  std::map<RunKey, std::vector<std::pair<std::size_t, AttemptRef>>> by_run;
  std::set<AttemptRef> held_now;
  for (std::size_t i = 0; i < executors_.size(); ++i) {
    for (const AttemptRef& a : executors_[i].held()) {
      held_now.insert(a);
      if (everything || runs.count(a.run) != 0) by_run[a.run].emplace_back(i, a);
    }
  }
  {
    // Forget attempts no longer held, so the set stays as small as what runs.
    std::lock_guard lock(mutex_);
    std::erase_if(stopped_, [&](const AttemptRef& a) { return held_now.count(a) == 0; });
  }
  if (by_run.empty()) return 0;
  std::vector<RunKey> keys;
  keys.reserve(by_run.size());
  for (const auto& [key, _] : by_run) keys.push_back(key);
  auto loaded = store_.loadRuns(keys);
  std::size_t stopped = 0;
  for (std::size_t r = 0; r < keys.size() && r < loaded.size(); ++r) {
    const Result<RunRecord>& run = loaded[r];
    if (!run && run.status().code() != StatusCode::kNotFound) continue;  // unreachable: ask again later
    for (const auto& [executor, attempt] : by_run[keys[r]]) {
      std::string why;
      if (!run) {
        why = "its run is gone (dag deleted)";
      } else {
        const TaskInstance* ti = nullptr;
        for (const TaskInstance& t : run->tasks) {
          if (t.task_id == attempt.task_id) ti = &t;
        }
        if (ti == nullptr) {
          why = "its task is gone";
        } else if (ti->try_number != attempt.try_number) {
          why = "it was cleared (the task is on try " + std::to_string(ti->try_number) + ")";
        } else if (ti->state != TaskState::kQueued && ti->state != TaskState::kRunning) {
          why = std::string("the task is ") + std::string(toString(ti->state)) +
                (ti->note.empty() ? "" : " (" + ti->note + ")");
        }
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
