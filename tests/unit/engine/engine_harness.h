// An Engine wired to in-process fakes of every role, driven tick by tick with a manual clock.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "engine/engine.h"
#include "engine/task_events_sink.h"
#include "support/memory_store.h"
#include "support/role_fakes.h"

namespace leoflow::engine::testing {

using leoflow::testing::Completion;
using leoflow::testing::FakeDispatcher;
using leoflow::testing::FakeExecutor;
using leoflow::testing::FakeInlineRunner;
using leoflow::testing::LeaseBoard;
using leoflow::testing::ManualClock;
using leoflow::testing::MemoryLeader;
using leoflow::testing::MemoryStore;
using leoflow::testing::Method;
using leoflow::testing::RecordingRecorder;
using namespace std::chrono_literals;

/// Polls `done` every millisecond until it holds (true) or `timeout` of wall time passes (false): for
/// tests that run the engine's own loop on a thread.
inline bool waitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

/// 2026-05-28T12:00:00Z, the anchor of BEHAVIOUR §9.
inline const Timestamp kNoon{std::chrono::seconds{1779969600}};

inline TaskSpec task(std::string id, std::vector<std::string> deps = {}, std::string type = "python") {
  TaskSpec t;
  t.task_id = std::move(id);
  t.depends_on = std::move(deps);
  t.type = std::move(type);
  t.execution_mode = t.type == "http_api" ? ExecutionMode::kInline : ExecutionMode::kPod;
  return t;
}

inline DagSpec dag(std::string id, std::vector<TaskSpec> tasks, std::string schedule = "") {
  DagSpec d;
  d.dag_id = std::move(id);
  d.tasks = std::move(tasks);
  d.schedule = std::move(schedule);
  return d;
}

/// "linear" of BEHAVIOUR §9: a → b, python tasks.
inline DagSpec linear(std::string id = "etl") { return dag(std::move(id), {task("a"), task("b", {"a"})}); }

class EngineHarness {
 public:
  /// `backend`: share another harness's store (another replica of one deployment).
  explicit EngineHarness(std::string replica = "replica-a",
                         std::shared_ptr<leoflow::testing::MemoryBackend> backend = nullptr)
      : store(backend ? std::move(backend) : MemoryStore().backend()), replica_(std::move(replica)) {
    clock.set(kNoon);
    board = std::make_shared<LeaseBoard>(clock, 3000ms);
    leader = std::make_unique<MemoryLeader>(board, replica_, 1000ms);
    sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text);
    logger = std::make_shared<spdlog::logger>("engine", sink);
    logger->set_level(spdlog::level::debug);
    options.replica_id = replica_;
    options.dispatch_retry_backoff = 1ms;
    options.dispatch_retry_limit = 3;
  }

  ~EngineHarness() {
    executor.stop();
    engine.reset();
  }

  /// Registers a DAG (a new version when its spec changed) and remembers how to decode it.
  std::int64_t addDag(const DagSpec& spec) {
    const std::string json = "dag:" + spec.dag_id + "#" + std::to_string(++dag_serial_);
    specs_[json] = spec;
    DagDefinition def{spec, json};
    auto r = store.syncDags(std::span<const DagDefinition>(&def, 1));
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r ? (*r)[0].version : 0;
  }

  /// Builds the engine (after options and fakes are set up) with the default routes.
  void build(bool with_dispatcher = true, bool with_inline = false) {
    events = std::make_unique<TaskEventsSink>(store, clock, wake, logger, &recorder);
    EngineDeps deps;
    deps.store = &store;
    deps.store_plugin = "store-memory";
    deps.leader = leader.get();
    deps.leader_plugin = "leader-memory";
    if (with_dispatcher) deps.dispatchers.push_back({"dispatcher-fake", &dispatcher, dispatcher_types});
    if (with_inline) deps.inline_runner = &inline_runner;
    deps.recorder = &recorder;
    deps.events = events.get();
    deps.clock = &clock;
    deps.logger = logger;
    deps.decode_dag = [this](const std::string& json) -> Result<DagSpec> {
      auto it = specs_.find(json);
      if (it == specs_.end()) return invalidArgument("unknown test spec " + json);
      return it->second;
    };
    engine = std::make_unique<Engine>(std::move(deps), options, wake);
    executor.start(*events);
    dispatcher.completeWith(&executor);
    inline_runner.completeWith(&executor);
  }

  /// Builds (if needed) and wins leadership.
  void lead() {
    if (!engine) build();
    auto won = engine->campaignOnce();
    ASSERT_TRUE(won.isOk()) << won.status().toString();
    ASSERT_TRUE(*won);
  }

  RunKey trigger(const std::string& dag_id, const std::string& run_id = "r1", std::int64_t version = 1) {
    // The trigger time as the logical date, as `runs trigger` does — with its microseconds, so it is
    // never exactly a cron slot (a run on a slot's logical date holds the slot: store.h createRun).
    NewRun run{{dag_id, run_id}, version, RunTrigger::kManual, clock.now() + std::chrono::microseconds(1), "",
               clock.now()};
    Status s = store.createRun(std::nullopt, run);
    EXPECT_TRUE(s.isOk()) << s.toString();
    // The run's message is delivered on the feed's thread. Heard only after a leader's tick had listed
    // and read the run, it would rightly make the next tick read it again (a run change may say
    // anything): a test counting reads would count one the engine owes to this harness's timing.
    store.drainChanges();
    return run.key;
  }

  /// A run put straight into the store, materialized, with the given instance states.
  RunKey seedRunning(const std::string& dag_id, std::map<std::string, TaskInstance> instances,
                     const std::string& run_id = "r1", std::int64_t version = 1) {
    RunRecord r;
    r.key = {dag_id, run_id};
    r.dag_version = version;
    r.state = DagRunState::kRunning;
    r.trigger = RunTrigger::kManual;
    r.logical_date = clock.now() + std::chrono::microseconds(1);  // a trigger time, not a slot (see trigger())
    r.queued_at = clock.now();
    r.started_at = clock.now();
    for (auto& [id, ti] : instances) {
      TaskInstance copy = ti;
      copy.task_id = id;
      r.tasks.push_back(copy);
    }
    store.putRun(r);
    return r.key;
  }

  static TaskInstance ti(TaskState s, int try_number = 1, int max_tries = 1) {
    TaskInstance t;
    t.state = s;
    t.try_number = try_number;
    t.max_tries = max_tries;
    return t;
  }

  TickReport tick(Engine::TickKind kind = Engine::TickKind::kFull) {
    TickReport r = engine->tick(kind);
    engine->waitForDispatchIdle(2000ms);
    executor.waitIdle(2000ms);
    store.drainChanges();
    return r;
  }

  /// Ticks until nothing moves (or `max` ticks), letting executors report in between.
  int settle(int max = 50) {
    int n = 0;
    for (; n < max; ++n) {
      TickReport r = tick();
      if (!r.progressed() && engine->waitForDispatchIdle(1ms)) {
        // one more look: executors may have reported during the tick
        if (!tick().progressed()) break;
      }
    }
    return n;
  }

  TaskState state(const RunKey& run, const std::string& task_id) {
    auto t = store.task(run, task_id);
    return t ? t->state : TaskState::kNone;
  }
  std::optional<DagRunState> runState(const RunKey& run) {
    auto r = store.run(run);
    if (!r) return std::nullopt;
    return r->state;
  }
  std::string logs() const { return log_text.str(); }

  ManualClock clock;
  MemoryStore store;
  std::shared_ptr<LeaseBoard> board;
  std::unique_ptr<MemoryLeader> leader;
  FakeDispatcher dispatcher;
  std::vector<std::string> dispatcher_types;
  FakeInlineRunner inline_runner;
  FakeExecutor executor;
  RecordingRecorder recorder;
  WakeSignal wake;
  EngineOptions options;
  std::ostringstream log_text;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink;
  std::shared_ptr<spdlog::logger> logger;
  std::unique_ptr<TaskEventsSink> events;
  std::unique_ptr<Engine> engine;

 private:
  std::string replica_;
  int dag_serial_ = 0;
  std::map<std::string, DagSpec> specs_;
};

}  // namespace leoflow::engine::testing

namespace leoflow {
inline void PrintTo(const AttemptRef& a, std::ostream* os) {
  *os << a.run.dag_id << "/" << a.run.run_id << "/" << a.task_id << "#" << a.try_number;
}
inline void PrintTo(TaskState s, std::ostream* os) { *os << toString(s); }
inline void PrintTo(DagRunState s, std::ostream* os) { *os << toString(s); }
}  // namespace leoflow
