#include "engine/dispatch_pool.h"

#include <pthread.h>

#include <algorithm>

namespace leoflow::engine {

DispatchPool::DispatchPool(std::size_t workers, std::size_t queue_size, Handler handler)
    : queue_size_(std::max<std::size_t>(queue_size, 1)), handler_(std::move(handler)) {
  const std::size_t n = std::max<std::size_t>(workers, 1);
  workers_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    // Named by their job, as every thread of the scheduler (top -H, ps -L, perf --sort comm).
    workers_.emplace_back([this] {
      ::pthread_setname_np(::pthread_self(), "lf-dispatch");
      workerLoop();
    });
  }
}

DispatchPool::~DispatchPool() { drainAndStop(std::chrono::milliseconds{0}); }

bool DispatchPool::tryEnqueue(DispatchJob job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= queue_size_) return false;
    ++in_flight_[job.route];
    queue_.push_back(std::move(job));
  }
  work_cv_.notify_one();
  return true;
}

std::size_t DispatchPool::freeSlots() const {
  std::lock_guard lock(mutex_);
  if (stopping_) return 0;
  return queue_size_ - std::min(queue_size_, queue_.size());
}

std::size_t DispatchPool::depth() const {
  std::lock_guard lock(mutex_);
  return queue_.size() + busy_;
}

std::size_t DispatchPool::inFlight(std::size_t route) const {
  std::lock_guard lock(mutex_);
  auto it = in_flight_.find(route);
  return it == in_flight_.end() ? 0 : it->second;
}

bool DispatchPool::holds(const AttemptRef& attempt) const {
  std::lock_guard lock(mutex_);
  if (std::find(running_.begin(), running_.end(), attempt) != running_.end()) return true;
  return std::any_of(queue_.begin(), queue_.end(),
                     [&](const DispatchJob& j) { return j.request.attempt == attempt; });
}

void DispatchPool::cancelAll() {
  std::unique_lock lock(mutex_);
  for (const DispatchJob& j : queue_) --in_flight_[j.route];
  queue_.clear();
  cancelled_ = true;
  // Handlers notice the flag at their next step; wait for them so no job of the old term is
  // still writing when this returns.
  idle_cv_.wait(lock, [this] { return busy_ == 0; });
  cancelled_ = false;
}

void DispatchPool::drainAndStop(std::chrono::milliseconds grace) {
  {
    std::unique_lock lock(mutex_);
    if (workers_.empty()) return;
    stopping_ = true;
    idle_cv_.wait_for(lock, grace, [this] { return queue_.empty() && busy_ == 0; });
    for (const DispatchJob& j : queue_) --in_flight_[j.route];
    queue_.clear();
    cancelled_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

void DispatchPool::workerLoop() {
  for (;;) {
    DispatchJob job;
    {
      std::unique_lock lock(mutex_);
      work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and nothing left
      job = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
      running_.push_back(job.request.attempt);
    }
    try {
      handler_(job, cancelled_);
    } catch (...) {  // the handler reports its own failures; a throw must not kill a worker
    }
    {
      std::lock_guard lock(mutex_);
      --busy_;
      --in_flight_[job.route];
      running_.erase(std::find(running_.begin(), running_.end(), job.request.attempt));
    }
    idle_cv_.notify_all();
  }
}

}  // namespace leoflow::engine
