// Engine: construction, the run() loop, health and the helpers the other parts share (routing,
// error noting). The rest of the class, by concern: engine_leadership.cpp, engine_tick.cpp,
// engine_handover.cpp, engine_run_creation.cpp, engine_reapers.cpp (engine_internal.h: TickState).
#include "engine/engine.h"

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <thread>

#include <fmt/format.h>

#include "engine/engine_internal.h"

namespace leoflow::engine {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

}  // namespace

Engine::Engine(EngineDeps deps, EngineOptions options, WakeSignal& wake)
    : options_(std::move(options)),
      store_(*deps.store, deps.store_plugin, deps.store_abi_minor),
      leader_(*deps.leader, deps.leader_plugin),
      events_(deps.events),
      clock_(*deps.clock),
      log_(deps.logger),
      wake_(wake),
      catalog_(store_, std::move(deps.decode_dag)) {
  wake_.follow();  // a follower remembers no changed runs (wake_signal.h)
  for (DispatcherRoute& route : deps.dispatchers) {
    auto guarded = std::make_unique<GuardedDispatcher>(*route.dispatcher, route.plugin);
    // A route takes the types both its config and its plugin allow; empty on either side = any.
    std::vector<std::string> supported = guarded->taskTypes();
    std::vector<std::string> types;
    if (route.task_types.empty()) {
      types = supported;
    } else if (supported.empty()) {
      types = route.task_types;
    } else {
      for (const auto& t : route.task_types) {
        if (std::find(supported.begin(), supported.end(), t) != supported.end()) types.push_back(t);
      }
      if (types.empty()) {
        log_->warn("dispatcher takes none of its configured task types plugin={} configured={}", route.plugin,
                   fmt::join(route.task_types, ","));
        types.push_back("\x01never");  // matches no task type
      }
    }
    route_types_.push_back(std::move(types));
    dispatchers_.push_back(std::move(guarded));
  }
  if (deps.inline_runner != nullptr) {
    inline_runner_ = std::make_unique<GuardedInlineRunner>(*deps.inline_runner, deps.inline_runner_plugin,
                                                           deps.inline_runner_abi_minor);
  }
  if (deps.recorder != nullptr) recorder_.add(*deps.recorder);
  pool_ = std::make_unique<DispatchPool>(options_.dispatch_pool_size, options_.dispatch_queue_size,
                                         [this](DispatchJob& job, const std::atomic<bool>& cancelled) {
                                           handOver(job, cancelled);
                                         });
}

Engine::~Engine() { pool_->drainAndStop(milliseconds{0}); }

Health Engine::health() const {
  Health h;
  const std::int64_t last = last_tick_us_.load();
  if (last != 0) h.last_tick = Timestamp{microseconds{last}};
  if (!leading_) return h;  // a follower is correctly idle
  // A new leader's grace runs from winning, so a first tick that hangs is noticed too.
  const Timestamp since = last != 0 ? *h.last_tick : Timestamp{microseconds{leading_since_us_.load()}};
  const auto bound = options_.effectiveStepTimeout() + 2 * options_.tick_interval;
  h.healthy = clock_.now() - since <= bound;
  return h;
}

bool Engine::cancelled() const { return stepdown_requested_ || tick_timed_out_; }

void Engine::noteStoreOutage() {
  last_store_outage_us_ = duration_cast<microseconds>(clock_.now().time_since_epoch()).count();
}

void Engine::noteStatus(TickState& t, const Status& s) {
  ++t.report.errors;
  if (s.code() == StatusCode::kUnavailable) ++t.report.unavailable;
  if (s.code() == StatusCode::kUnavailable) noteStoreOutage();  // reapers: agent-lost pause
  if (s.code() == StatusCode::kFenced) {
    log_->warn("a newer leader claimed the store; stepping down reason=fenced term={}", t.term);
    requestStepDown("fenced");
  }
}

// ---------------------------------------------------------------------------------------------------
// The loop

void Engine::run(std::stop_token stop) {
  std::atomic<bool> stopping{false};
  std::stop_callback on_stop(stop, [&] {
    stopping = true;
    requestStepDown("shutdown");
  });
  bool subscribed = false;
  auto subscribe = [&] {
    Status s = store_.subscribe(wake_);
    subscribed = s.isOk();
    feed_subscribed_ = subscribed;
    if (!subscribed) log_->warn("change feed unavailable; ticking only error={}", s.toString());
  };
  subscribe();
  std::jthread watchdog([this](std::stop_token st) {
    ::pthread_setname_np(::pthread_self(), "lf-watchdog");
    watchdogLoop(st);
  });
  std::mutex m;
  std::condition_variable_any idle;
  // Store outage back-off: doubling from 10 ms, capped at the tick interval. A tick that could not
  // reach the store leaves runs dirty; without this the loop would retry them at full speed.
  milliseconds outage_backoff{0};

  while (!stopping) {
    if (stepdown_requested_) {
      std::string reason;
      {
        std::lock_guard lock(stepdown_mutex_);
        reason = stepdown_reason_;
      }
      if (reason == "shutdown") break;
      stepDown(reason);
    }
    if (!leading_) {
      auto won = campaignOnce();
      if (!won.isOk() || !*won) {
        std::unique_lock lock(m);
        idle.wait_for(lock, stop, leader_.checkInterval(), [] { return false; });
        if (!subscribed) subscribe();
      }
      continue;
    }
    const auto since_full = steady_clock::now() - last_full_tick_;
    const TickKind kind = since_full >= options_.tick_interval ? TickKind::kFull : TickKind::kQuick;
    const TickReport report = tick(kind);
    if (kind == TickKind::kFull && !subscribed) subscribe();
    if (report.unavailable > 0 && !report.progressed()) {
      outage_backoff = std::min<milliseconds>(std::max<milliseconds>(2 * outage_backoff, milliseconds{10}),
                                              std::max<milliseconds>(options_.tick_interval, milliseconds{10}));
      // Change-feed resyncs and executor reports keep poking the wake signal during an outage, so
      // this wait ignores them; only a stop ends it early.
      std::unique_lock lock(m);
      idle.wait_for(lock, stop, outage_backoff, [] { return false; });
      continue;
    }
    outage_backoff = milliseconds{0};
    // Work begets work: a tick that moved something runs the next one at once, so a chain of
    // tasks advances at executor speed, not at tick speed. So do runs to load, a reconcile and a
    // listing still being compared (a slice each tick).
    if (report.progressed() || !dirty_.empty() || !reconcile_queue_.empty() || listing_walk_) continue;
    const auto wait = options_.tick_interval - duration_cast<milliseconds>(steady_clock::now() - last_full_tick_);
    if (wait > milliseconds{0}) wake_.waitFor(wait);
  }

  // ARCHITECTURE §8.11: stop planning, drain the pool within the grace, release leadership.
  log_->info("scheduler shutting down; draining dispatch pool grace_ms={}", options_.shutdown_grace.count());
  pool_->drainAndStop(options_.shutdown_grace);
  if (leading_) stepDown("shutdown");
  for (auto& d : dispatchers_) d->shutdown();
  if (inline_runner_) inline_runner_->shutdown();
  watchdog.request_stop();
  watchdog.join();
  feed_subscribed_ = false;
  if (subscribed) store_.unsubscribe();
  log_->info("scheduler stopped");
}

bool Engine::waitForDispatchIdle(milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  while (pool_->depth() > 0) {
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds{1});
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Routing, shared by advancing a run (engine_tick.cpp) and redispatch (engine_handover.cpp)

std::optional<std::size_t> Engine::routeFor(const TaskSpec& task) const {
  // BEHAVIOUR §2.4: inline http_api tasks go to the inline runner when there is one; otherwise they
  // take the ordinary dispatch path like any task.
  if (task.type == "http_api" && task.execution_mode == ExecutionMode::kInline && inline_runner_) {
    return kInlineRoute;
  }
  for (std::size_t r = 0; r < route_types_.size(); ++r) {
    const auto& types = route_types_[r];
    if (types.empty() || std::find(types.begin(), types.end(), task.type) != types.end()) return r;
  }
  return std::nullopt;
}

std::size_t Engine::routeCapacity(std::size_t route) const {
  const std::size_t free = route == kInlineRoute ? inline_runner_->freeCapacity() : dispatchers_[route]->freeCapacity();
  const std::size_t pending = pool_->inFlight(route);  // handed to the pool, not yet to the dispatcher
  return free > pending ? free - pending : 0;
}

}  // namespace leoflow::engine
