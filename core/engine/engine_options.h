// How an Engine is put together: its settings and the backends it drives.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include <leoflow/abi.h>
#include <leoflow/context.h>
#include <leoflow/dispatcher.h>
#include <leoflow/inline_runner.h>
#include <leoflow/leader.h>
#include <leoflow/recorder.h>
#include <leoflow/status.h>
#include <leoflow/store.h>

namespace leoflow::engine {

class TaskEventsSink;

using namespace std::chrono_literals;

/// Settings (ARCHITECTURE §4 [scheduler]); defaults are the documented ones.
struct EngineOptions {
  std::chrono::milliseconds tick_interval = 1000ms;  ///< backstop; wake-ups come from the change feed
  /// Bound on one tick; zero = max(30 × tick_interval, 30 s) (BEHAVIOUR §2.1).
  std::chrono::milliseconds step_timeout = 0ms;
  std::chrono::milliseconds orphan_threshold = 300'000ms;
  std::chrono::milliseconds agent_lost_threshold = 90'000ms;
  std::chrono::milliseconds dispatch_lost_threshold = 180'000ms;
  std::size_t reaper_batch_size = 100;
  std::size_t dispatch_pool_size = 16;
  std::size_t dispatch_queue_size = 256;
  int dispatch_retry_limit = 5;  ///< hand-over attempts before the attempt fails
  std::chrono::milliseconds dispatch_retry_backoff = 200ms;  ///< first back-off, doubled each time
  std::chrono::milliseconds shutdown_grace = 8000ms;  ///< drain bound on shutdown (§8.11)
  /// Consecutive failed leadership checks before stepping down (BEHAVIOUR §5.2).
  int max_leader_check_failures = 3;
  /// Every run is reloaded from the store at least this often, whatever the change feed says.
  std::chrono::milliseconds full_resync_interval = 30'000ms;
  /// Runs per store read when loading runs (a new leader's first tick loads every active run): one
  /// read never holds the store long enough to delay a lease renewal.
  std::size_t load_chunk_runs = 128;
  /// How long one tick may spend on the periodic resync (at least one chunk); the loop ticks again
  /// at once while more runs are due, so a pass goes at the store's read speed in short ticks.
  std::chrono::milliseconds resync_tick_budget = 40ms;
  /// Keys of the periodic active-run listing compared with the cache per tick: the walk of 100,000
  /// was one 50-120 ms tick on a 2-core VM (the cache's entries spread over half a gigabyte).
  std::size_t listing_walk_slice = 16'384;
  /// Of one run, the most moves written in one tick besides its hand-overs (→ queued): a wide
  /// fan-out's root ending readies every child at once, and 20,000 moves in one store call were a
  /// tick of ~1 s on PostgreSQL (~0.25 s on Redis) in which nothing else moved and no child started.
  /// The rest are planned again on the next tick, which follows at once.
  std::size_t run_moves_per_tick = 1000;
  std::string replica_id;

  std::chrono::milliseconds effectiveStepTimeout() const {
    if (step_timeout > 0ms) return step_timeout;
    return std::max<std::chrono::milliseconds>(30 * tick_interval, 30'000ms);
  }
};

/// Decodes a stored DAG version's JSON into a spec with defaults applied (the host's DAG format).
using DagDecoder = std::function<Result<DagSpec>(const std::string& spec_json)>;

/// A dispatcher and the task types it is configured for (empty = every type it supports).
struct DispatcherRoute {
  std::string plugin;
  Dispatcher* dispatcher = nullptr;
  std::vector<std::string> task_types;
};

/// The backends an Engine drives; all must outlive it. Plugin objects are wrapped by the engine so
/// their exceptions become Status values.
struct EngineDeps {
  Store* store = nullptr;
  std::string store_plugin = "store";
  std::uint32_t store_abi_minor = LEOFLOW_ABI_MINOR;  ///< the SDK minor the store plugin was built with
  Leader* leader = nullptr;
  std::string leader_plugin = "leader";
  std::vector<DispatcherRoute> dispatchers;
  InlineRunner* inline_runner = nullptr;  ///< optional
  std::string inline_runner_plugin = "inline-runner";
  std::uint32_t inline_runner_abi_minor = LEOFLOW_ABI_MINOR;  ///< the SDK minor it was built with
  Recorder* recorder = nullptr;           ///< optional (metrics are then dropped)
  /// optional: the executors' sink, told each attempt's task type and tenant at hand-over so the
  /// metrics of its reports carry them
  TaskEventsSink* events = nullptr;
  const Clock* clock = nullptr;
  std::shared_ptr<spdlog::logger> logger;
  DagDecoder decode_dag;
};

}  // namespace leoflow::engine
