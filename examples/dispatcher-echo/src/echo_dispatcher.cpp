#include "echo_dispatcher.h"

#include <leoflow/execution_id.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace leoflow::plugins::dispatcher_echo {

namespace {

constexpr std::int64_t kMaxDelayMs = 60'000;  // attempts finish within a minute, so shutdown is bounded

}  // namespace

EchoDispatcher::EchoDispatcher(EchoSettings settings, PluginContext context)
    : settings_(settings), context_(std::move(context)) {}

EchoDispatcher::~EchoDispatcher() { shutdown(); }

std::vector<std::string> EchoDispatcher::taskTypes() const { return {}; }

std::size_t EchoDispatcher::freeCapacity() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_) return 0;  // dispatcher.h: after shutdown() it takes nothing more
  const std::size_t busy = in_flight_.size() - done_.size();
  return busy >= settings_.max_parallel ? 0 : settings_.max_parallel - busy;
}

Result<DispatchOutcome> EchoDispatcher::dispatch(const DispatchRequest& request) {
  std::vector<std::thread> finished;
  Result<DispatchOutcome> outcome = DispatchOutcome::kStarted;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    joinFinishedLocked(finished);
    if (stopping_) {
      outcome = cancelled("dispatcher-echo is shutting down");
    } else if (dispatched_.count(request.attempt) != 0) {
      outcome = DispatchOutcome::kAlreadyRunning;
    } else if (in_flight_.size() - done_.size() >= settings_.max_parallel) {
      outcome = DispatchOutcome::kAtCapacity;
    } else {
      try {
        in_flight_.emplace(request.attempt,
                           std::thread(&EchoDispatcher::runAttempt, this, request.attempt, request.task.entrypoint));
        dispatched_.insert(request.attempt);
      } catch (const std::system_error& e) {
        outcome = unavailable(std::string("cannot start a thread: ") + e.what());
      }
    }
  }
  for (std::thread& t : finished) t.join();
  if (outcome && *outcome == DispatchOutcome::kStarted) {
    context_.logger()->debug("attempt handed over dag_id={} run_id={} task_id={} try={}", request.attempt.run.dag_id,
                             request.attempt.run.run_id, request.attempt.task_id, request.attempt.try_number);
  }
  return outcome;
}

void EchoDispatcher::shutdown() {
  std::vector<std::thread> threads;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (auto& [attempt, thread] : in_flight_) threads.push_back(std::move(thread));
    in_flight_.clear();
    done_.clear();
  }
  for (std::thread& t : threads) t.join();
}

// Moves the threads of attempts that have reported out of the map, to be joined without the lock.
void EchoDispatcher::joinFinishedLocked(std::vector<std::thread>& to_join) {
  for (const AttemptRef& attempt : done_) {
    auto it = in_flight_.find(attempt);
    if (it == in_flight_.end()) continue;
    to_join.push_back(std::move(it->second));
    in_flight_.erase(it);
  }
  done_.clear();
}

void EchoDispatcher::runAttempt(const AttemptRef& attempt, const std::string& entrypoint) {
  const auto& log = context_.logger();
  TaskEvents& events = context_.events();
  // This start is an execution of its own (ARCHITECTURE §8.13): the claim names it, and so does
  // every later report.
  const ExecutionRef execution{attempt, makeExecutionId("echo")};
  // The claim: nothing of the attempt may run before the store accepts it. A store that cannot be
  // reached is asked again with the same execution id (a lost reply is then accepted as ours).
  Status running = events.running(execution);
  for (int retry = 0; retry < 5 && running.code() == StatusCode::kUnavailable; ++retry) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100) * (1 << retry));
    running = events.running(execution);
  }
  if (!running) {
    // Refused (no longer current, or another execution claimed it) or never answered: nothing runs.
    // The scheduler's reapers take care of an attempt nobody claimed.
    log->warn("claim not accepted; not running task_id={} try={} reason={}", attempt.task_id, attempt.try_number,
              running.toString());
  } else {
    // Heartbeat while "working" so the agent-lost reaper never mistakes a long delay for a dead
    // executor (ARCHITECTURE §8.8).
    std::chrono::milliseconds left = settings_.delay;
    const std::chrono::milliseconds beat = std::max(context_.heartbeatInterval(), std::chrono::milliseconds(1));
    while (left > beat) {
      std::this_thread::sleep_for(beat);
      left -= beat;
      if (Status s = events.heartbeat(execution); !s) {
        log->warn("heartbeat failed task_id={} try={} reason={}", attempt.task_id, attempt.try_number, s.toString());
      }
    }
    std::this_thread::sleep_for(left);
    const Status finished = events.finished(execution, TaskOutcome{true, 0, "echo: " + entrypoint});
    if (!finished) {
      log->warn("finished report failed task_id={} try={} reason={}", attempt.task_id, attempt.try_number,
                finished.toString());
    } else {
      log->debug("attempt finished task_id={} try={}", attempt.task_id, attempt.try_number);
    }
  }
  const std::lock_guard<std::mutex> lock(mutex_);
  if (in_flight_.count(attempt) != 0) done_.push_back(attempt);
}

std::vector<ConfigKey> EchoDispatcherFactory::configKeys() const {
  return {
      {"delay_ms", ConfigType::kInt, false, ConfigValue(std::int64_t{10}),
       "milliseconds between the running and the finished report (0 to 60000)"},
      {"max_parallel", ConfigType::kInt, false, ConfigValue(std::int64_t{4}),
       "attempts in flight at once; freeCapacity() is this minus those in flight"},
  };
}

std::unique_ptr<Dispatcher> EchoDispatcherFactory::create(const ConfigView& config, const PluginContext& context) {
  const std::int64_t delay_ms = config.getInt("delay_ms");
  const std::int64_t max_parallel = config.getInt("max_parallel");
  if (delay_ms < 0 || delay_ms > kMaxDelayMs) {
    throw std::invalid_argument("[" + config.section() + "] delay_ms must be between 0 and " +
                                std::to_string(kMaxDelayMs) + ", got " + std::to_string(delay_ms));
  }
  if (max_parallel < 1) {
    throw std::invalid_argument("[" + config.section() + "] max_parallel must be at least 1, got " +
                                std::to_string(max_parallel));
  }
  EchoSettings settings;
  settings.delay = std::chrono::milliseconds(delay_ms);
  settings.max_parallel = static_cast<std::size_t>(max_parallel);
  return std::make_unique<EchoDispatcher>(settings, context);
}

}  // namespace leoflow::plugins::dispatcher_echo
