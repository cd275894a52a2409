// Decorators that turn a plugin's exception into a Status naming the plugin (ARCHITECTURE §3
// "Errors"): the engine only ever calls plugins through these, so a throwing plugin fails one call,
// never the loop.
#pragma once

#include <exception>
#include <memory>
#include <string>
#include <utility>

#include <leoflow/abi.h>
#include <leoflow/dispatcher.h>
#include <leoflow/inline_runner.h>
#include <leoflow/leader.h>
#include <leoflow/recorder.h>
#include <leoflow/store.h>

namespace leoflow::engine {

/// Runs `call`; an exception becomes kInternal "plugin <name>: <what>".
template <typename Call>
auto guardCall(const std::string& plugin, Call&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const std::exception& e) {
    return internalError("plugin " + plugin + " threw: " + e.what());
  } catch (...) {
    return internalError("plugin " + plugin + " threw a non-standard exception");
  }
}

class GuardedStore final : public Store {
 public:
  /// `abi_minor`: the SDK minor the store plugin was built with; hooks appended in a later 3.x minor
  /// are called only on plugins of it (older ones get the SDK's own fallback, compiled here).
  GuardedStore(Store& inner, std::string plugin, std::uint32_t abi_minor = LEOFLOW_ABI_MINOR)
      : inner_(inner), plugin_(std::move(plugin)), abi_minor_(abi_minor) {}

  Status ping() override { return g([&] { return inner_.ping(); }); }
  Result<Term> claimTerm(const std::string& holder) override { return g([&] { return inner_.claimTerm(holder); }); }
  Status recordLiveness(Term term, const LivenessRecord& r) override {
    return g([&] { return inner_.recordLiveness(term, r); });
  }
  Result<std::optional<LivenessRecord>> readLiveness() override { return g([&] { return inner_.readLiveness(); }); }
  Result<std::vector<DagRegistration>> syncDags(std::span<const DagDefinition> dags) override {
    return g([&] { return inner_.syncDags(dags); });
  }
  Result<std::vector<DagSummary>> listDags() override { return g([&] { return inner_.listDags(); }); }
  Result<StoredDag> getDag(const std::string& dag_id, std::optional<std::int64_t> version) override {
    return g([&] { return inner_.getDag(dag_id, version); });
  }
  Status setPaused(const std::string& dag_id, bool paused) override {
    return g([&] { return inner_.setPaused(dag_id, paused); });
  }
  Result<std::vector<ScheduledDag>> scheduledDags() override { return g([&] { return inner_.scheduledDags(); }); }
  Status createRun(std::optional<Term> term, const NewRun& run) override {
    return g([&] { return inner_.createRun(term, run); });
  }
  Result<std::vector<ActiveRun>> listActiveRuns() override { return g([&] { return inner_.listActiveRuns(); }); }
  Result<std::vector<RunKey>> listActiveRunKeys() override {
    // Before SDK 3.3 the entry is not in the store's vtable: the SDK's fallback is called instead.
    return g([&] { return abi_minor_ >= 3 ? inner_.listActiveRunKeys() : inner_.Store::listActiveRunKeys(); });
  }
  std::vector<Result<RunRecord>> loadRuns(std::span<const RunKey> keys) override {
    return gEach(keys.size(), [&] { return inner_.loadRuns(keys); });
  }
  std::vector<Result<TaskInstance>> loadTaskInstances(const RunKey& run, std::span<const std::string> ids) override {
    // A store older than SDK 3.2 has no such entry in its vtable: the SDK's fallback (a loadRuns)
    // is called non-virtually instead.
    return gEach(ids.size(), [&] {
      return abi_minor_ >= 2 ? inner_.loadTaskInstances(run, ids) : inner_.Store::loadTaskInstances(run, ids);
    });
  }
  Result<std::vector<RunRecord>> listRuns(const RunFilter& f) override { return g([&] { return inner_.listRuns(f); }); }
  Result<std::vector<RunKey>> findRuns(const std::string& run_id) override {
    return g([&] { return inner_.findRuns(run_id); });
  }
  Status materializeRun(Term term, const RunKey& run, std::span<const NewTaskInstance> tasks, Timestamp at) override {
    return g([&] { return inner_.materializeRun(term, run, tasks, at); });
  }
  Status setRunState(Term term, const RunKey& run, DagRunState from, DagRunState to, Timestamp at,
                     const std::string& note) override {
    return g([&] { return inner_.setRunState(term, run, from, to, at, note); });
  }
  Result<std::vector<bool>> applyTransitions(Term term, const RunKey& run, std::span<const TaskTransitionWrite> w,
                                             Timestamp at) override {
    return g([&] { return inner_.applyTransitions(term, run, w, at); });
  }
  Result<std::vector<OrphanCandidate>> listOrphanCandidates(std::size_t limit) override {
    return g([&] { return inner_.listOrphanCandidates(limit); });
  }
  Status reapRun(Term term, const RunKey& run, Timestamp at, const std::string& note) override {
    return g([&] { return inner_.reapRun(term, run, at, note); });
  }
  Result<std::vector<AgentLostCandidate>> listAgentLostCandidates(std::size_t limit) override {
    return g([&] { return inner_.listAgentLostCandidates(limit); });
  }
  Result<std::vector<DispatchLostCandidate>> listDispatchLostCandidates(std::size_t limit) override {
    return g([&] { return inner_.listDispatchLostCandidates(limit); });
  }
  Status reportRunning(const ExecutionRef& e, Timestamp at) override { return g([&] { return inner_.reportRunning(e, at); }); }
  Status reportHeartbeat(const ExecutionRef& e, Timestamp at) override {
    return g([&] { return inner_.reportHeartbeat(e, at); });
  }
  Status reportFinished(const ExecutionRef& e, const TaskOutcome& o, Timestamp at) override {
    return g([&] { return inner_.reportFinished(e, o, at); });
  }
  Status subscribe(ChangeSink& sink) override {
    if (abi_minor_ >= 7) return g([&] { return inner_.subscribe(sink); });
    // A store before SDK 3.5 builds its Change without execution_id (and before 3.4 without
    // leader_term): its messages are copied into this SDK's Change, field by field, before the host
    // reads them. Before 3.7 a kRun change's term meant nothing, so it is not passed on.
    older_changes_.target = &sink;
    older_changes_.has_leader_term = abi_minor_ >= 4;
    older_changes_.has_execution_id = abi_minor_ >= 5;
    return g([&] { return inner_.subscribe(older_changes_); });
  }
  Status subscribeRuns(ChangeSink& sink) override {
    // Before SDK 3.11: the whole feed, as subscribe() passes it on; the sink ignores the rest.
    if (abi_minor_ < 11) return subscribe(sink);
    return g([&] { return inner_.subscribeRuns(sink); });
  }
  void unsubscribe() override {
    try {
      inner_.unsubscribe();
    } catch (...) {  // nothing to report to: unsubscribing is best effort
    }
  }

  Result<std::optional<std::vector<std::string>>> migrate() override { return g([&] { return inner_.migrate(); }); }
  Result<std::optional<std::int64_t>> deleteFinishedRuns(Timestamp before) override {
    return g([&] { return inner_.deleteFinishedRuns(before); });
  }
  Result<OperatorOutcome> clearTasks(const ClearRequest& r) override { return g([&] { return inner_.clearTasks(r); }); }
  Result<OperatorOutcome> markTask(const MarkTaskRequest& r) override { return g([&] { return inner_.markTask(r); }); }
  Result<OperatorOutcome> markRun(const MarkRunRequest& r) override { return g([&] { return inner_.markRun(r); }); }
  Result<OperatorOutcome> cancelRun(const CancelRunRequest& r) override { return g([&] { return inner_.cancelRun(r); }); }
  std::vector<Result<OperatorOutcome>> cancelRuns(std::span<const CancelRunRequest> requests) override {
    // Before SDK 3.8 the entry is not in the store's vtable: the SDK's loop over cancelRun instead,
    // each call guarded on its own (a throw then fails its own run, not those cancelled before it).
    if (abi_minor_ < 8) return Store::cancelRuns(requests);
    return gEach(requests.size(), [&] { return inner_.cancelRuns(requests); });
  }
  std::vector<Result<OperatorOutcome>> clearRuns(std::span<const ClearRequest> requests) override {
    // Before SDK 3.9: the SDK's loop over clearTasks, each call guarded on its own, as cancelRuns.
    if (abi_minor_ < 9) return Store::clearRuns(requests);
    return gEach(requests.size(), [&] { return inner_.clearRuns(requests); });
  }
  std::vector<Status> createRuns(std::optional<Term> term, std::span<const NewRun> runs) override {
    // Before SDK 3.10: the SDK's loop over createRun, each call guarded on its own, as cancelRuns.
    if (abi_minor_ < 10) return Store::createRuns(term, runs);
    return gEach(runs.size(), [&] { return inner_.createRuns(term, runs); });
  }
  Status deleteDag(const std::string& dag_id) override { return g([&] { return inner_.deleteDag(dag_id); }); }

  const std::string& pluginName() const noexcept { return plugin_; }

 private:
  template <typename Call>
  auto g(Call&& call) -> decltype(call()) {
    return guardCall(plugin_, std::forward<Call>(call));
  }
  /// For a call answering one result per item (`items` of them): an exception fails every item.
  template <typename Call>
  auto gEach(std::size_t items, Call&& call) -> decltype(call()) {
    try {
      return call();
    } catch (...) {
      const Status why = g([&]() -> Status { throw; });
      return decltype(call())(items, why);
    }
  }
  /// Passes on the changes of a store older than SDK 3.7, reading only the fields it has.
  struct OlderChangesSink final : ChangeSink {
    ChangeSink* target = nullptr;
    bool has_leader_term = false;   ///< SDK 3.4 or newer: on a kTask change
    bool has_execution_id = false;  ///< SDK 3.5 or newer
    void onChange(const Change& change) override {
      Change copy;
      copy.kind = change.kind;
      copy.run = change.run;
      copy.task_id = change.task_id;
      copy.dag_id = change.dag_id;
      if (has_leader_term && change.kind == Change::Kind::kTask) copy.leader_term = change.leader_term;
      if (has_execution_id) copy.execution_id = change.execution_id;
      target->onChange(copy);
    }
    void onResync() override { target->onResync(); }
  };
  Store& inner_;
  std::string plugin_;
  std::uint32_t abi_minor_;
  OlderChangesSink older_changes_;
};

class GuardedLeader final : public Leader {
 public:
  GuardedLeader(Leader& inner, std::string plugin) : inner_(inner), plugin_(std::move(plugin)) {}
  Result<bool> tryAcquire() override { return guardCall(plugin_, [&] { return inner_.tryAcquire(); }); }
  Result<bool> check() override { return guardCall(plugin_, [&] { return inner_.check(); }); }
  Status release() override { return guardCall(plugin_, [&] { return inner_.release(); }); }
  std::chrono::milliseconds checkInterval() const override {
    try {
      return inner_.checkInterval();
    } catch (...) {
      return std::chrono::seconds{1};
    }
  }

 private:
  Leader& inner_;
  std::string plugin_;
};

class GuardedDispatcher final : public Dispatcher {
 public:
  GuardedDispatcher(Dispatcher& inner, std::string plugin) : inner_(inner), plugin_(std::move(plugin)) {}
  std::vector<std::string> taskTypes() const override {
    try {
      return inner_.taskTypes();
    } catch (...) {
      return {};
    }
  }
  std::size_t freeCapacity() const override {
    try {
      return inner_.freeCapacity();
    } catch (...) {
      return 0;  // a dispatcher that cannot say gets nothing this tick
    }
  }
  Result<DispatchOutcome> dispatch(const DispatchRequest& r) override {
    return guardCall(plugin_, [&] { return inner_.dispatch(r); });
  }
  Status reconcile() override { return guardCall(plugin_, [&] { return inner_.reconcile(); }); }
  void shutdown() override {
    try {
      inner_.shutdown();
    } catch (...) {  // shutting down regardless
    }
  }
  std::vector<AttemptRef> heldAttempts() const override {
    try {
      return inner_.heldAttempts();
    } catch (...) {
      return {};
    }
  }
  Status stop(const AttemptRef& a) override { return guardCall(plugin_, [&] { return inner_.stop(a); }); }
  const std::string& pluginName() const noexcept { return plugin_; }

 private:
  Dispatcher& inner_;
  std::string plugin_;
};

class GuardedInlineRunner final : public InlineRunner {
 public:
  /// `abi_minor`: the SDK minor the plugin was built with. Every 3.x plugin has freeCapacity(),
  /// heldAttempts() and stop(); a hook appended in a later 3.x minor is called only on plugins of it.
  GuardedInlineRunner(InlineRunner& inner, std::string plugin, std::uint32_t abi_minor = LEOFLOW_ABI_MINOR)
      : inner_(inner), plugin_(std::move(plugin)), abi_minor_(abi_minor) {}
  Result<bool> start(const DispatchRequest& r) override { return guardCall(plugin_, [&] { return inner_.start(r); }); }
  /// 0 when the plugin throws: nothing more is queued for it this tick.
  std::size_t freeCapacity() const override {
    try {
      return inner_.freeCapacity();
    } catch (...) {
      return 0;
    }
  }
  void shutdown() override {
    try {
      inner_.shutdown();
    } catch (...) {  // shutting down regardless
    }
  }
  std::vector<AttemptRef> heldAttempts() const override {
    try {
      return inner_.heldAttempts();
    } catch (...) {
      return {};
    }
  }
  Status stop(const AttemptRef& a) override { return guardCall(plugin_, [&] { return inner_.stop(a); }); }
  std::uint32_t abiMinor() const noexcept { return abi_minor_; }
  const std::string& pluginName() const noexcept { return plugin_; }

 private:
  InlineRunner& inner_;
  std::string plugin_;
  std::uint32_t abi_minor_;
};

}  // namespace leoflow::engine
