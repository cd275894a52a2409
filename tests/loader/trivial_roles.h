// A trivial implementation of every role, written against the installed SDK alone (<leoflow/...>):
// the public_api test compiles it with nothing but core/include on its include path, and the good
// loader fixture (fixtures/good_plugin.cpp) registers it, so the loader tests can create objects
// through factories that live in another library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <leoflow/config.h>
#include <leoflow/context.h>
#include <leoflow/dispatcher.h>
#include <leoflow/domain.h>
#include <leoflow/inline_runner.h>
#include <leoflow/leader.h>
#include <leoflow/recorder.h>
#include <leoflow/status.h>
#include <leoflow/store.h>

namespace trivial {

inline leoflow::Status notKept(const char* what) {
  return leoflow::unavailable(std::string("the trivial store keeps no ") + what);
}

/// Issues terms and answers ping; keeps nothing else.
class Store final : public leoflow::Store {
 public:
  explicit Store(std::string url) : url_(std::move(url)) {}

  leoflow::Status ping() override { return {}; }
  leoflow::Result<leoflow::Term> claimTerm(const std::string& /*holder*/) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    return ++term_;
  }
  leoflow::Status recordLiveness(leoflow::Term term, const leoflow::LivenessRecord& record) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (term < term_) return leoflow::fenced("term " + std::to_string(term) + " is below " + std::to_string(term_));
    liveness_ = record;
    return {};
  }
  leoflow::Result<std::optional<leoflow::LivenessRecord>> readLiveness() override {
    const std::lock_guard<std::mutex> lock(mutex_);
    return liveness_;
  }
  leoflow::Result<std::vector<leoflow::DagRegistration>> syncDags(std::span<const leoflow::DagDefinition>) override {
    return notKept("DAGs");
  }
  leoflow::Result<std::vector<leoflow::DagSummary>> listDags() override { return std::vector<leoflow::DagSummary>{}; }
  leoflow::Result<leoflow::StoredDag> getDag(const std::string& dag_id, std::optional<std::int64_t>) override {
    return leoflow::notFound("no DAG \"" + dag_id + "\"");
  }
  leoflow::Status setPaused(const std::string& dag_id, bool) override {
    return leoflow::notFound("no DAG \"" + dag_id + "\"");
  }
  leoflow::Result<std::vector<leoflow::ScheduledDag>> scheduledDags() override {
    return std::vector<leoflow::ScheduledDag>{};
  }
  leoflow::Status createRun(std::optional<leoflow::Term>, const leoflow::NewRun&) override { return notKept("runs"); }
  leoflow::Result<std::vector<leoflow::ActiveRun>> listActiveRuns() override {
    return std::vector<leoflow::ActiveRun>{};
  }
  std::vector<leoflow::Result<leoflow::RunRecord>> loadRuns(std::span<const leoflow::RunKey> keys) override {
    std::vector<leoflow::Result<leoflow::RunRecord>> runs;
    for (const leoflow::RunKey& key : keys) runs.emplace_back(leoflow::notFound("no run \"" + key.run_id + "\""));
    return runs;
  }
  leoflow::Result<std::vector<leoflow::RunRecord>> listRuns(const leoflow::RunFilter&) override {
    return std::vector<leoflow::RunRecord>{};
  }
  leoflow::Result<std::vector<leoflow::RunKey>> findRuns(const std::string&) override {
    return std::vector<leoflow::RunKey>{};
  }
  leoflow::Status materializeRun(leoflow::Term, const leoflow::RunKey&, std::span<const leoflow::NewTaskInstance>,
                                 leoflow::Timestamp) override {
    return notKept("runs");
  }
  leoflow::Status setRunState(leoflow::Term, const leoflow::RunKey&, leoflow::DagRunState, leoflow::DagRunState,
                              leoflow::Timestamp, const std::string&) override {
    return notKept("runs");
  }
  leoflow::Result<std::vector<bool>> applyTransitions(leoflow::Term, const leoflow::RunKey&,
                                                      std::span<const leoflow::TaskTransitionWrite>,
                                                      leoflow::Timestamp) override {
    return notKept("task instances");
  }
  leoflow::Result<std::vector<leoflow::OrphanCandidate>> listOrphanCandidates(std::size_t) override {
    return std::vector<leoflow::OrphanCandidate>{};
  }
  leoflow::Status reapRun(leoflow::Term, const leoflow::RunKey&, leoflow::Timestamp, const std::string&) override {
    return {};
  }
  leoflow::Result<std::vector<leoflow::AgentLostCandidate>> listAgentLostCandidates(std::size_t) override {
    return std::vector<leoflow::AgentLostCandidate>{};
  }
  leoflow::Result<std::vector<leoflow::DispatchLostCandidate>> listDispatchLostCandidates(std::size_t) override {
    return std::vector<leoflow::DispatchLostCandidate>{};
  }
  leoflow::Status reportRunning(const leoflow::ExecutionRef&, leoflow::Timestamp) override {
    return leoflow::conflict("no such attempt");
  }
  leoflow::Status reportHeartbeat(const leoflow::ExecutionRef&, leoflow::Timestamp) override {
    return leoflow::conflict("no such attempt");
  }
  leoflow::Status reportFinished(const leoflow::ExecutionRef&, const leoflow::TaskOutcome&,
                                 leoflow::Timestamp) override {
    return leoflow::conflict("no such attempt");
  }
  // It keeps no runs or DAGs: there is nothing for a person's commands to find.
  leoflow::Result<leoflow::OperatorOutcome> clearTasks(const leoflow::ClearRequest&) override {
    return leoflow::notFound("no such run");
  }
  leoflow::Result<leoflow::OperatorOutcome> markTask(const leoflow::MarkTaskRequest&) override {
    return leoflow::notFound("no such run");
  }
  leoflow::Result<leoflow::OperatorOutcome> markRun(const leoflow::MarkRunRequest&) override {
    return leoflow::notFound("no such run");
  }
  leoflow::Result<leoflow::OperatorOutcome> cancelRun(const leoflow::CancelRunRequest&) override {
    return leoflow::notFound("no such run");
  }
  leoflow::Status deleteDag(const std::string&) override { return leoflow::notFound("no such dag"); }
  leoflow::Status subscribe(leoflow::ChangeSink&) override { return {}; }
  void unsubscribe() override {}

  const std::string& url() const noexcept { return url_; }

 private:
  std::string url_;
  std::mutex mutex_;
  leoflow::Term term_ = 0;
  std::optional<leoflow::LivenessRecord> liveness_;
};

class StoreFactory final : public leoflow::StoreFactory {
 public:
  std::vector<leoflow::ConfigKey> configKeys() const override {
    return {{"url", leoflow::ConfigType::kString, true, std::nullopt, "where the trivial store pretends to live"}};
  }
  std::unique_ptr<leoflow::Store> create(const leoflow::ConfigView& config, const leoflow::PluginContext&) override {
    return std::make_unique<Store>(config.getString("url"));
  }
};

/// Always leads.
class Leader final : public leoflow::Leader {
 public:
  explicit Leader(std::chrono::milliseconds lease) : lease_(lease) {}
  leoflow::Result<bool> tryAcquire() override { return true; }
  leoflow::Result<bool> check() override { return true; }
  leoflow::Status release() override { return {}; }
  std::chrono::milliseconds checkInterval() const override { return lease_ / 3; }

 private:
  std::chrono::milliseconds lease_;
};

class LeaderFactory final : public leoflow::LeaderFactory {
 public:
  std::vector<leoflow::ConfigKey> configKeys() const override {
    return {{"lease_ms", leoflow::ConfigType::kInt, false, leoflow::ConfigValue(std::int64_t{3000}),
             "lease length in milliseconds"}};
  }
  std::unique_ptr<leoflow::Leader> create(const leoflow::ConfigView& config, const leoflow::PluginContext&) override {
    return std::make_unique<Leader>(std::chrono::milliseconds(config.getInt("lease_ms")));
  }
};

/// "Runs" an attempt on the spot: reports running, then success with "trivial: <entrypoint>".
/// Idempotent per attempt; capacity is max_parallel minus the attempts it has taken.
class Dispatcher final : public leoflow::Dispatcher {
 public:
  Dispatcher(const leoflow::ConfigView& config, const leoflow::PluginContext& context)
      : context_(context),
        max_parallel_(static_cast<std::size_t>(config.getInt("max_parallel"))),
        task_types_(config.getStringList("task_types")) {}

  std::vector<std::string> taskTypes() const override { return task_types_; }
  std::size_t freeCapacity() const override {
    const std::lock_guard<std::mutex> lock(mutex_);
    return taken_.size() >= max_parallel_ ? 0 : max_parallel_ - taken_.size();
  }
  leoflow::Result<leoflow::DispatchOutcome> dispatch(const leoflow::DispatchRequest& request) override {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (taken_.count(request.attempt) != 0) return leoflow::DispatchOutcome::kAlreadyRunning;
      if (taken_.size() >= max_parallel_) return leoflow::DispatchOutcome::kAtCapacity;
      taken_.insert(request.attempt);
    }
    if (context_.logger()) {
      context_.logger()->info("attempt dispatched task_id={} try={}", request.attempt.task_id,
                              request.attempt.try_number);
    }
    const leoflow::ExecutionRef execution{request.attempt, "trivial/" + request.attempt.task_id};
    leoflow::Status running = context_.events().running(execution);
    if (!running) return running;
    leoflow::Status finished = context_.events().finished(
        execution, leoflow::TaskOutcome{true, 0, "trivial: " + request.task.entrypoint});
    if (!finished) return finished;
    return leoflow::DispatchOutcome::kStarted;
  }
  void shutdown() override {}

 private:
  leoflow::PluginContext context_;  // a copy: cheap, and independent of the caller's object
  std::size_t max_parallel_;
  std::vector<std::string> task_types_;
  mutable std::mutex mutex_;
  std::set<leoflow::AttemptRef> taken_;
};

class DispatcherFactory final : public leoflow::DispatcherFactory {
 public:
  std::vector<leoflow::ConfigKey> configKeys() const override {
    return {
        {"max_parallel", leoflow::ConfigType::kInt, false, leoflow::ConfigValue(std::int64_t{2}),
         "attempts taken at most"},
        {"task_types", leoflow::ConfigType::kStringList, false, leoflow::ConfigValue(std::vector<std::string>{}),
         "task types it runs; empty = any"},
    };
  }
  std::unique_ptr<leoflow::Dispatcher> create(const leoflow::ConfigView& config,
                                              const leoflow::PluginContext& context) override {
    return std::make_unique<Dispatcher>(config, context);
  }
};

/// Never has room.
class InlineRunner final : public leoflow::InlineRunner {
 public:
  leoflow::Result<bool> start(const leoflow::DispatchRequest&) override { return false; }
  void shutdown() override {}
};

class InlineRunnerFactory final : public leoflow::InlineRunnerFactory {
 public:
  std::vector<leoflow::ConfigKey> configKeys() const override { return {}; }
  std::unique_ptr<leoflow::InlineRunner> create(const leoflow::ConfigView&, const leoflow::PluginContext&) override {
    return std::make_unique<InlineRunner>();
  }
};

/// Counts what it is told.
class Recorder final : public leoflow::Recorder {
 public:
  void recordSchedulerDecision(std::string_view) override { ++events_; }
  void recordTaskTransition(leoflow::TaskState, leoflow::TaskState, std::string_view) override { ++events_; }
  void recordUndispatchable(std::string_view) override { ++events_; }
  void recordSchedulerStepDown(std::string_view) override { ++events_; }
  void observeSchedulerReacquire(std::chrono::microseconds) override { ++events_; }
  void observeTickDuration(std::chrono::microseconds) override { ++events_; }
  void setDispatchQueueDepth(std::int64_t) override { ++events_; }
  void observeDispatchLatency(std::chrono::microseconds) override { ++events_; }
  void observeTaskDuration(std::string_view, std::string_view, std::string_view, std::chrono::microseconds) override {
    ++events_;
  }
  std::int64_t events() const noexcept { return events_; }

 private:
  std::int64_t events_ = 0;
};

class RecorderFactory final : public leoflow::RecorderFactory {
 public:
  std::vector<leoflow::ConfigKey> configKeys() const override {
    return {
        {"prefix", leoflow::ConfigType::kString, false, leoflow::ConfigValue(std::string("leoflow")), "metric prefix"},
        {"sample_rate", leoflow::ConfigType::kDouble, false, leoflow::ConfigValue(1.0), "fraction of samples sent"},
        {"enabled", leoflow::ConfigType::kBool, false, leoflow::ConfigValue(true), "send anything at all"},
    };
  }
  std::unique_ptr<leoflow::Recorder> create(const leoflow::ConfigView& config, const leoflow::PluginContext&) override {
    // Read every key, so a missing default or a wrong type shows up as an exception here.
    (void)config.getString("prefix");
    (void)config.getDouble("sample_rate");
    (void)config.getBool("enabled");
    return std::make_unique<Recorder>();
  }
};

}  // namespace trivial
