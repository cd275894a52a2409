#include "host/scheduler_command.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <csignal>
#include <iostream>
#include <memory>
#include <stop_token>
#include <thread>

#include <CLI/CLI.hpp>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/stop_watcher.h"
#include "host/backends.h"
#include "host/command_context.h"
#include "host/dag_file.h"
#include "host/exit_codes.h"
#include "host/http_server.h"
#include "host/logging.h"
#include "host/startup_errors.h"

namespace leoflow::host {
namespace {

engine::EngineOptions engineOptions(const SchedulerSettings& s, const std::string& replica_id) {
  engine::EngineOptions o;
  o.tick_interval = s.tick_interval;
  o.step_timeout = s.stepTimeout();
  o.orphan_threshold = s.orphan_threshold;
  o.agent_lost_threshold = s.agent_lost_threshold;
  o.dispatch_lost_threshold = s.dispatch_lost_threshold;
  o.reaper_batch_size = static_cast<std::size_t>(s.reaper_batch_size);
  o.dispatch_pool_size = static_cast<std::size_t>(s.dispatch_pool_size);
  o.dispatch_queue_size = static_cast<std::size_t>(s.dispatch_queue_size);
  o.dispatch_retry_limit = s.dispatch_retry_limit;
  o.dispatch_retry_backoff = s.dispatch_retry_backoff;
  o.shutdown_grace = s.shutdown_grace;
  o.replica_id = replica_id;
  return o;
}

// SIGINT/SIGTERM are blocked in every thread and taken by one waiting thread, which asks the
// engine to stop: no work happens in a signal handler. The same thread then holds the promise of
// ARCHITECTURE §8.11 — the process ends within 10 s of the signal — even when a plugin call on the
// shutdown path hangs (a frozen store server answers nothing, and not every client library can
// bound every call): past the deadline it logs what it does and exits at once.
class SignalWatcher {
 public:
  /// From the signal to a forced exit; a second of the 10 s is left for the exit itself.
  static constexpr std::chrono::milliseconds kShutdownDeadline{9000};

  SignalWatcher() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  /// Calls `on_signal` (once) from the watcher thread when a signal arrives, then `on_overdue` and
  /// _exit(kExitUnreachable) when this object is not destroyed within kShutdownDeadline of it.
  void start(std::function<void(int)> on_signal, std::function<void()> on_overdue) {
    thread_ = std::thread([this, on_signal, on_overdue] {
      ::pthread_setname_np(::pthread_self(), "lf-signals");
      int sig = 0;
      if (sigwait(&set_, &sig) != 0 || sig == 0 || done_) return;
      on_signal(sig);
      std::unique_lock lock(mutex_);
      if (cv_.wait_for(lock, kShutdownDeadline, [this] { return done_.load(); })) return;
      on_overdue();
      ::_exit(kExitUnreachable);
    });
  }
  ~SignalWatcher() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
      pthread_kill(thread_.native_handle(), SIGTERM);  // wakes sigwait; ignored as done_
      thread_.join();
    }
  }

 private:
  sigset_t set_{};
  std::atomic<bool> done_{false};
  std::mutex mutex_;
  std::condition_variable cv_;
  std::thread thread_;
};

// The executors the stop watcher drives, each behind the engine's plugin guard.
std::vector<engine::StoppableExecutor> stoppableExecutors(Backends& backends) {
  std::vector<engine::StoppableExecutor> out;
  for (const engine::DispatcherRoute& r : backends.dispatcherRoutes()) {
    auto guarded = std::make_shared<engine::GuardedDispatcher>(*r.dispatcher, r.plugin);
    out.push_back({r.plugin, [guarded] { return guarded->heldAttempts(); },
                   [guarded](const AttemptRef& a) { return guarded->stop(a); }});
  }
  if (InlineRunner* runner = backends.inlineRunner()) {
    auto guarded = std::make_shared<engine::GuardedInlineRunner>(*runner, backends.inlineRunnerPlugin(),
                                                                  backends.inlineRunnerAbiMinor());
    out.push_back({backends.inlineRunnerPlugin(), [guarded] { return guarded->heldAttempts(); },
                   [guarded](const AttemptRef& a) { return guarded->stop(a); }});
  }
  return out;
}

int runScheduler(CommandContext& ctx, const std::string& log_level_override) {
  const std::string path = findConfigPath(ctx.config_path);
  HostConfig config = loadHostConfig(path);
  const std::string level = log_level_override.empty() ? config.scheduler.log_level : log_level_override;
  if (!setLogLevel(level)) throw badInput("unknown log level \"" + level + "\" (trace, debug, info, warn, error)");
  auto log = makeLogger("leoflow");
  // A non-loopback [http] listen without a token is refused before anything connects (§8.15).
  if (config.http) checkHttpSettings(*config.http);

  SignalWatcher signals;
  std::stop_source stop;
  signals.start(
      [&](int sig) {
        log->info("signal received; shutting down signal={}", sig == SIGINT ? "SIGINT" : "SIGTERM");
        stop.request_stop();
      },
      [&] {
        log->error("shutdown not finished {} s after the signal (a backend call hangs); exiting now — "
                   "attempts in flight are adopted or re-dispatched by the next leader",
                   SignalWatcher::kShutdownDeadline.count() / 1000);
        spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->flush(); });
      });

  PluginLoader loader(config.plugin_search_path);
  // The scheduler keeps trying an unreachable backend with back-off (§8.6) until told to stop: one
  // warning per attempt, the wait doubling from 0.5 s to 30 s; a signal ends the wait at once.
  auto retry = [&](const std::string& why, int attempt) {
    const auto wait = startupRetryDelay(attempt);
    log->warn("backend unreachable at start-up; retrying attempt={} in_ms={} error=\"{}\"", attempt, wait.count(),
              why);
    const auto until = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < until) {
      if (stop.stop_requested()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return !stop.stop_requested();
  };
  std::unique_ptr<Backends> made;
  try {
    made = std::make_unique<Backends>(config, loader, Backends::Scope::kScheduler, retry);
  } catch (const BackendUnavailable& e) {
    if (!stop.stop_requested()) throw;
    // Asked to stop while waiting for a backend: nothing was started, so this is a clean stop (§5).
    log->info("stopped before the backends could be reached; last error=\"{}\"", e.what());
    return kExitOk;
  }
  Backends& backends = *made;
  log->info("scheduler starting replica={} config={} store={} leader={} dispatchers={}", backends.replicaId(), path,
            backends.storePlugin(), backends.leaderPlugin(), config.dispatchers.size());

  engine::EngineDeps deps;
  deps.store = &backends.store();
  deps.store_plugin = backends.storePlugin();
  deps.store_abi_minor = backends.storeAbiMinor();
  deps.leader = &backends.leader();
  deps.leader_plugin = backends.leaderPlugin();
  deps.dispatchers = backends.dispatcherRoutes();
  deps.inline_runner = backends.inlineRunner();
  deps.inline_runner_plugin = backends.inlineRunnerPlugin();
  deps.inline_runner_abi_minor = backends.inlineRunnerAbiMinor();
  deps.recorder = &backends.recorder();
  deps.events = &backends.eventsSink();
  deps.clock = &backends.clock();
  deps.logger = makeLogger("engine");
  deps.decode_dag = [](const std::string& json) { return decodeCanonicalDag(json); };
  engine::Engine engine(std::move(deps), engineOptions(config.scheduler, backends.replicaId()), backends.wake());
  // [http]: /healthz, /status and /api/v1 on their own threads, off the scheduling loop (§8.15).
  std::unique_ptr<HttpServer> http;
  if (config.http) {
    HttpApiDeps api;
    api.store = &backends.store();
    api.clock = &backends.clock();
    api.health = [&engine] { return engine.health(); };
    api.leading = [&engine] { return engine.leading(); };
    api.read_log = [&backends](const LogQuery& q) { return backends.readLog(q); };
    http = std::make_unique<HttpServer>(*config.http, std::move(api), makeLogger("http"));
    http->start();
  }
  // On SIGINT/SIGTERM the server stops accepting at once, while the engine drains; its threads are
  // joined after the drain (ARCHITECTURE §8.11's 10 s hold for both).
  std::stop_callback stop_http(stop.get_token(), [&http] {
    if (http) http->stopAccepting();
  });
  // Every replica stops the attempts its own executors hold once they stop being current
  // (cleared, marked, cancelled, reaped): docs/architecture.md §8.14.
  engine::StopWatcher stop_watcher(backends.store(), stoppableExecutors(backends), makeLogger("stop-watcher"));
  backends.wake().setListener(&stop_watcher);
  stop_watcher.start();
  engine.run(stop.get_token());
  if (http) http->stop();
  backends.wake().setListener(nullptr);
  stop_watcher.stop();
  return kExitOk;
}

}  // namespace

std::chrono::milliseconds startupRetryDelay(int attempt) {
  return std::chrono::milliseconds(std::min(250 << std::clamp(attempt, 1, 7), 30'000));
}

void addSchedulerCommand(CLI::App& app, CommandContext& ctx) {
  CLI::App* cmd = app.add_subcommand("scheduler", "Run the scheduler until SIGINT or SIGTERM (graceful)");
  cmd->add_option("--log-level", ctx.log_level, "trace, debug, info, warn or error (default: [scheduler] log_level)");
  cmd->callback([&ctx] {
    ctx.exit_code = withStartupExitCodes([&ctx] { return runScheduler(ctx, ctx.log_level); });
  });
}

}  // namespace leoflow::host
