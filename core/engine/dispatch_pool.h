// The bounded dispatch pool (ARCHITECTURE §8.8, BEHAVIOUR §6.2 with §10 item 33 fixed): a FIFO of
// at most `queue_size` jobs and `workers` threads that run them. The scheduler never hands it more
// than it has room for (backpressure keeps the rest `scheduled`), so enqueue never blocks.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <leoflow/dispatcher.h>
#include <leoflow/domain.h>

namespace leoflow::engine {

/// Which executor takes a job: a dispatcher route by index, or the inline runner.
inline constexpr std::size_t kInlineRoute = static_cast<std::size_t>(-1);

struct DispatchJob {
  Term term = 0;  ///< the term the queued write was made under
  std::size_t route = 0;
  DispatchRequest request;
  std::chrono::steady_clock::time_point enqueued_at;
};

class DispatchPool {
 public:
  /// Runs one job on a worker; `cancelled` turns true when the pool is cancelled or stopped
  /// without draining, and the handler should give up at its next step.
  using Handler = std::function<void(DispatchJob& job, const std::atomic<bool>& cancelled)>;

  DispatchPool(std::size_t workers, std::size_t queue_size, Handler handler);
  ~DispatchPool();
  DispatchPool(const DispatchPool&) = delete;
  DispatchPool& operator=(const DispatchPool&) = delete;

  /// Adds a job unless the queue is full or the pool is stopping; never blocks.
  bool tryEnqueue(DispatchJob job);
  /// Free queue slots right now.
  std::size_t freeSlots() const;
  /// Jobs waiting plus jobs being handed over.
  std::size_t depth() const;
  /// Jobs of one route waiting or being handed over (to keep within the dispatcher's capacity).
  std::size_t inFlight(std::size_t route) const;
  /// True if this attempt is waiting or being handed over.
  bool holds(const AttemptRef& attempt) const;

  /// Drops every waiting job and tells running handlers to give up (leadership lost: the next
  /// leader hands every queued attempt over again). The pool stays usable.
  void cancelAll();
  /// Stops intake and waits until every job ran or `grace` passed; then cancels what is left and
  /// joins the workers. Idempotent.
  void drainAndStop(std::chrono::milliseconds grace);

 private:
  void workerLoop();

  const std::size_t queue_size_;
  Handler handler_;
  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::deque<DispatchJob> queue_;
  std::map<std::size_t, std::size_t> in_flight_;  // route → waiting + running jobs
  std::vector<AttemptRef> running_;               // attempts being handed over right now
  std::size_t busy_ = 0;
  bool stopping_ = false;
  std::atomic<bool> cancelled_{false};
  std::vector<std::thread> workers_;
};

}  // namespace leoflow::engine
