// The Dispatcher contract suite: every rule of core/include/leoflow/dispatcher.h (and ARCHITECTURE
// §8.7, §8.8 behind it), checked against any executor through the real plugin loader (ARCHITECTURE
// §7: one parameterised suite per role, run against every built plugin).
//
// Task specs are executor-specific (a bash line, a pod image), so the harness builds the few tasks
// the suite needs; everything else — ids, capacity, threads, timing — is the suite's. A backend
// runs the whole suite with one instantiation in its own test file:
//
//   #include "contract/dispatcher_contract.h"
//   namespace leoflow::contract {
//   namespace {
//   DispatcherHarness k8sHarness() {
//     DispatcherHarness h;
//     h.name = "K8s";
//     h.create = [](TaskEvents& events, const std::filesystem::path& scratch, auto overrides) {
//       // start an emulated API server under `scratch`, bind [dispatcher.config] + overrides,
//       // create through PluginLoader::load("dispatcher-k8s") with a context lending `events`
//     };
//     h.capacity_config = [](std::size_t n) { return ConfigOverrides{{"max_pods", std::int64_t(n)}}; };
//     h.succeeding_task = [] { ... };  // and failing_task, timed_task, long_task, foreign_task
//     return h;
//   }
//   }  // namespace
//   INSTANTIATE_TEST_SUITE_P(K8s, DispatcherContract, ::testing::Values(k8sHarness()), HarnessName{});
//   }  // namespace leoflow::contract
//
// and links `dispatcher_contract_dep` (tests/contract/meson.build), which brings the test bodies in.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <leoflow/config.h>
#include <leoflow/dispatcher.h>

#include "contract/store_contract.h"  // HarnessName
#include "support/memory_store.h"
#include "support/recording_task_events.h"

namespace leoflow::contract {

/// Config keys set on top of the harness's own, as [dispatcher.config] would.
using ConfigOverrides = std::map<std::string, ConfigValue>;

/// How the suite gets dispatchers of one backend, and the tasks they run.
struct DispatcherHarness {
  /// The instantiation's name: letters, digits and underscores only (a GoogleTest name part).
  std::string name;

  /// A new dispatcher, created through the real plugin loader. It reports to `events`, keeps
  /// whatever it writes (state, logs, an emulated server's data) under `scratch` — an empty folder
  /// of its own, removed after the test — and is configured with `overrides` on top of the
  /// harness's settings. Its PluginContext lends `heartbeat_interval`. Called once per test; the
  /// suite shuts the dispatcher down and destroys it before `events` and `scratch` go.
  std::function<std::unique_ptr<Dispatcher>(TaskEvents& events, const std::filesystem::path& scratch,
                                            ConfigOverrides overrides)>
      create;
  /// The heartbeat interval `create` lends (PluginContext::heartbeatInterval()). Short, so the
  /// heartbeat test sees several beats; long enough that a loaded 2-core machine keeps the pace.
  std::chrono::milliseconds heartbeat_interval{200};
  /// The overrides that let the dispatcher run at most `n` attempts at once: an idle dispatcher
  /// created with them answers freeCapacity() == n.
  std::function<ConfigOverrides(std::size_t n)> capacity_config;

  // Tasks. The suite sets task_id; everything else of the spec is the harness's.

  /// Ends with success within a second or so.
  std::function<TaskSpec()> succeeding_task;
  /// Ends with failure and exit code `exit_code` (1–125) within a second or so.
  std::function<TaskSpec(int exit_code)> failing_task;
  /// Ends with success after about `duration` (never much sooner).
  std::function<TaskSpec(std::chrono::milliseconds duration)> timed_task;
  /// Runs until stopped: far longer than any test. The harness makes sure none outlives the
  /// dispatcher's shutdown (e.g. a setting that stops tasks on shutdown) or bounds it otherwise.
  std::function<TaskSpec()> long_task;
  /// Optional: a task whose type the dispatcher does not list in taskTypes(). Leave it empty for a
  /// dispatcher that takes any type; the refusal test is skipped then.
  std::function<TaskSpec()> foreign_task;

  /// How long a dispatched task may take to be reported running, and a short task finished, on a
  /// loaded machine. Only a bound for waits: nothing asserts a speed below it.
  std::chrono::milliseconds report_timeout{20'000};
};

void PrintTo(const DispatcherHarness& harness, std::ostream* os);

/// The TaskEvents the suite lends every dispatcher. Each report is answered by the in-memory
/// reference store (tests/support/memory_store.h), which implements store.h's rules for executor
/// reports exactly — the running report is the claim, accepted for a queued attempt and again for
/// the same execution, kConflict for any other; heartbeats and finished reports only from the
/// execution that claimed the attempt (ARCHITECTURE §8.13) — and then recorded into `recorded`, to
/// wait on. The suite makes each attempt queued in a running run before it hands it over, as the
/// engine does (seedQueued()); a report the store refuses is a broken rule, kept in refusals().
class StoreTaskEvents final : public TaskEvents {
 public:
  explicit StoreTaskEvents(leoflow::testing::RecordingTaskEvents& recorded) : recorded_(&recorded) {}

  Status running(const ExecutionRef& execution) override;
  Status heartbeat(const ExecutionRef& execution) override;
  Status finished(const ExecutionRef& execution, const TaskOutcome& outcome) override;

  /// Makes `attempt` a queued task instance of a running run (the run is created when new). A later
  /// try replaces the task's instance (a retry); the same or an earlier try changes nothing.
  void seedQueued(const AttemptRef& attempt);
  /// The reports the store refused (about `about` only, when given), described with its answer.
  std::vector<std::string> refusals(const std::optional<AttemptRef>& about = std::nullopt) const;
  leoflow::testing::MemoryStore& store() { return store_; }

 private:
  Status answered(leoflow::testing::TaskReportKind kind, const ExecutionRef& execution, const TaskOutcome& outcome,
                  Status answer);

  leoflow::testing::RecordingTaskEvents* recorded_;
  leoflow::testing::MemoryStore store_;
  mutable std::mutex mutex_;  // seedQueued() (read, then write) and refusals_
  std::vector<std::pair<AttemptRef, std::string>> refusals_;
};

/// The fixture: a fresh scratch folder and a store-backed, recording TaskEvents per test; the
/// dispatcher is shut down and destroyed after it.
class DispatcherContract : public ::testing::TestWithParam<DispatcherHarness> {
 protected:
  void SetUp() override;
  void TearDown() override;

  const DispatcherHarness& harness() const { return GetParam(); }
  /// Creates the test's dispatcher (one per test) with `overrides`.
  Dispatcher& make(ConfigOverrides overrides = {});
  /// Creates the test's dispatcher, able to run `n` attempts at once.
  Dispatcher& makeWithCapacity(std::size_t n);
  Dispatcher& dispatcher() { return *dispatcher_; }

  /// A request for `attempt` running `task` (its task_id set to the attempt's).
  static DispatchRequest requestFor(const AttemptRef& attempt, TaskSpec task);

  /// Waits until `running`, an attempt that runs on, has heartbeated `n` more times: a sign that
  /// the dispatcher's timers have moved on by n intervals, after which a report that was due (a late
  /// beat, a second start) has come. Unlike a fixed sleep it stretches with a slow machine.
  ::testing::AssertionResult moreBeats(const AttemptRef& running, int n) const;
  /// The reports about `attempt` are running, heartbeats, finished: nothing before running,
  /// nothing after finished, no second running or finished; and the store accepted every one.
  ::testing::AssertionResult wellFormed(const AttemptRef& attempt) const;

  // Destroyed after the dispatcher, which reports into them and writes below the scratch folder.
  leoflow::testing::RecordingTaskEvents events_;
  StoreTaskEvents store_events_{events_};
  std::filesystem::path scratch_;
  std::unique_ptr<Dispatcher> dispatcher_;
};

}  // namespace leoflow::contract
