// Store on Redis: every mutation is one Lua script (README.md lists them), so each call is atomic,
// fenced and guarded inside Redis itself (ARCHITECTURE §8.7, store.h).
#pragma once

#include <memory>
#include <mutex>

#include <leoflow/context.h>
#include <leoflow/store.h>

#include "change_feed.h"
#include "redis_client.h"

namespace leoflow::plugins::store_redis {

class RedisStore final : public Store {
 public:
  /// Connects and loads the scripts; throws naming the URL when Redis cannot be reached.
  RedisStore(const Settings& settings, const PluginContext& context);
  ~RedisStore() override;

  Status ping() override;

  Result<Term> claimTerm(const std::string& holder) override;
  Status recordLiveness(Term term, const LivenessRecord& record) override;
  Result<std::optional<LivenessRecord>> readLiveness() override;

  Result<std::vector<DagRegistration>> syncDags(std::span<const DagDefinition> dags) override;
  Result<std::vector<DagSummary>> listDags() override;
  Result<StoredDag> getDag(const std::string& dag_id, std::optional<std::int64_t> version) override;
  Status setPaused(const std::string& dag_id, bool paused) override;
  Result<std::vector<ScheduledDag>> scheduledDags() override;

  Status createRun(std::optional<Term> term, const NewRun& run) override;
  std::vector<Status> createRuns(std::optional<Term> term, std::span<const NewRun> runs) override;
  Result<std::vector<ActiveRun>> listActiveRuns() override;
  Result<std::vector<RunKey>> listActiveRunKeys() override;
  std::vector<Result<RunRecord>> loadRuns(std::span<const RunKey> keys) override;
  std::vector<Result<TaskInstance>> loadTaskInstances(const RunKey& run, std::span<const std::string> task_ids) override;
  Result<std::vector<RunRecord>> listRuns(const RunFilter& filter) override;
  Result<std::vector<RunKey>> findRuns(const std::string& run_id) override;

  Status materializeRun(Term term, const RunKey& run, std::span<const NewTaskInstance> tasks,
                        Timestamp at) override;
  Status setRunState(Term term, const RunKey& run, DagRunState from, DagRunState to, Timestamp at,
                     const std::string& note) override;
  Result<std::vector<bool>> applyTransitions(Term term, const RunKey& run,
                                             std::span<const TaskTransitionWrite> writes,
                                             Timestamp at) override;

  Result<std::vector<OrphanCandidate>> listOrphanCandidates(std::size_t limit) override;
  Status reapRun(Term term, const RunKey& run, Timestamp at, const std::string& note) override;
  Result<std::vector<AgentLostCandidate>> listAgentLostCandidates(std::size_t limit) override;
  Result<std::vector<DispatchLostCandidate>> listDispatchLostCandidates(std::size_t limit) override;

  Status reportRunning(const ExecutionRef& execution, Timestamp at) override;
  Status reportHeartbeat(const ExecutionRef& execution, Timestamp at) override;
  Status reportFinished(const ExecutionRef& execution, const TaskOutcome& outcome, Timestamp at) override;

  Result<OperatorOutcome> clearTasks(const ClearRequest& request) override;
  std::vector<Result<OperatorOutcome>> clearRuns(std::span<const ClearRequest> requests) override;
  Result<OperatorOutcome> markTask(const MarkTaskRequest& request) override;
  Result<OperatorOutcome> markRun(const MarkRunRequest& request) override;
  Result<OperatorOutcome> cancelRun(const CancelRunRequest& request) override;
  std::vector<Result<OperatorOutcome>> cancelRuns(std::span<const CancelRunRequest> requests) override;
  Status deleteDag(const std::string& dag_id) override;

  Status subscribe(ChangeSink& sink) override;
  /// The run changes only: the feed listens on runChangeChannel(), not on the channel of every change.
  Status subscribeRuns(ChangeSink& sink) override;
  void unsubscribe() override;

  Result<std::optional<std::int64_t>> deleteFinishedRuns(Timestamp before) override;

 private:
  Status subscribeTo(const std::string& channel, ChangeSink& sink);

  RedisClient client_;
  std::mutex feed_mu_;
  std::unique_ptr<ChangeFeed> feed_;
};

}  // namespace leoflow::plugins::store_redis
