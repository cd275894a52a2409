// MemoryStore and MemoryLeader: in-process fakes of the Store and Leader roles.
//
// They serve twice: as the fakes the engine's unit tests drive (with failure injection, call
// counters and inspection helpers), and as the reference implementation the contract suites in
// tests/contract run against (ARCHITECTURE §7). Every rule of store.h is implemented here exactly
// as the contract suite checks it, so a real backend that passes the suite behaves like this file.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <leoflow/context.h>
#include <leoflow/domain.h>
#include <leoflow/leader.h>
#include <leoflow/status.h>
#include <leoflow/store.h>

namespace leoflow::testing {

// ---------------------------------------------------------------------------------------------------
// A clock tests move by hand.

/// A Clock that only moves when told to. Thread-safe. Starts at 2026-01-01T00:00:00Z.
class ManualClock final : public Clock {
 public:
  ManualClock();
  explicit ManualClock(Timestamp start);

  Timestamp now() const override;
  void set(Timestamp t);
  void advance(std::chrono::microseconds d);

 private:
  std::atomic<std::int64_t> micros_;
};

// ---------------------------------------------------------------------------------------------------
// MemoryStore

/// The Store methods, for failure injection and call counting (readLiveness and unsubscribe are
/// counted too; unsubscribe cannot fail, so faults set on it are ignored).
enum class Method : std::uint8_t {
  kPing = 0,
  kClaimTerm,
  kRecordLiveness,
  kReadLiveness,
  kSyncDags,
  kListDags,
  kGetDag,
  kSetPaused,
  kScheduledDags,
  kCreateRun,
  kListActiveRuns,
  kLoadRuns,
  kListRuns,
  kFindRuns,
  kMaterializeRun,
  kSetRunState,
  kApplyTransitions,
  kListOrphanCandidates,
  kReapRun,
  kListAgentLostCandidates,
  kListDispatchLostCandidates,
  kReportRunning,
  kReportHeartbeat,
  kReportFinished,
  kSubscribe,
  kUnsubscribe,
  kClearTasks,
  kMarkTask,
  kMarkRun,
  kCancelRun,
  kDeleteDag,
  kLoadTaskInstances,
  kListActiveRunKeys,
  kCancelRuns,
  kClearRuns,
  kCreateRuns,
  kSubscribeRuns,
};
inline constexpr std::size_t kMethodCount = 37;

/// The method's name as written in store.h ("applyTransitions"), for messages.
std::string_view toString(Method m) noexcept;

/// The shared state of one in-memory "database": DAGs, runs, the term, the liveness record and the
/// change feed. Several MemoryStore handles on one backend behave like several processes sharing
/// one Redis or PostgreSQL. Defined in memory_store.cpp.
class MemoryBackend;

/// An in-memory Store. Thread-safe: all data sits behind the backend's one mutex, and every call is
/// atomic under it.
///
/// Change feed: changes are delivered from a delivery thread the backend owns, never from the
/// writer's thread and never with the store mutex held, so a sink may take its own locks (the
/// engine's) and may even call the store. Every write that changes something publishes: run
/// creation, materialization, run state, reaping (kRun, plus kTask per reaped task), each applied
/// transition (kTask with the term as leader_term) and executor report (kTask with the execution as
/// execution_id), DAG sync, pause and delete (kDag), and a person's
/// commands (kRun, plus kTask per instance they moved). Heartbeats do not publish:
/// they change nothing the planner reads, and at one per task per second they would flood the feed.
/// A handle receives the changes of every handle on its backend, its own included. drainChanges()
/// waits until everything published so far has been delivered, for deterministic tests.
///
/// Failure injection (per handle): each call first counts itself, then blocks while its method is
/// blocked, then applies a pending fault (a returned Status, or a thrown std::runtime_error), and
/// only then touches the data — a faulted call changes nothing. Inspection and seeding helpers
/// bypass injection and counters and publish nothing.
class MemoryStore final : public Store {
 public:
  /// Faults with this count stay until cleared.
  static constexpr int kForever = -1;

  /// A store on a fresh, empty backend.
  MemoryStore();
  /// Another handle on `backend` (another "process" sharing the same store).
  explicit MemoryStore(std::shared_ptr<MemoryBackend> backend);
  /// Unsubscribes and releases any caller blocked by blockOn(). Callers must not still be inside a
  /// method of this handle (unblock() and join them first).
  ~MemoryStore() override;

  /// A new handle on this store's backend: sees the same data and the same change feed.
  std::unique_ptr<MemoryStore> openHandle() const;
  const std::shared_ptr<MemoryBackend>& backend() const noexcept { return backend_; }

  // --- Store ------------------------------------------------------------------------------------
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
  Result<std::vector<ActiveRun>> listActiveRuns() override;
  std::vector<Result<RunRecord>> loadRuns(std::span<const RunKey> keys) override;
  std::vector<Result<TaskInstance>> loadTaskInstances(const RunKey& run, std::span<const std::string> task_ids) override;
  Result<std::vector<RunKey>> listActiveRunKeys() override;
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
  Result<OperatorOutcome> markTask(const MarkTaskRequest& request) override;
  Result<OperatorOutcome> markRun(const MarkRunRequest& request) override;
  Result<OperatorOutcome> cancelRun(const CancelRunRequest& request) override;
  /// Counted (kCancelRuns), then the SDK's own body: one cancelRun per request, each counted and
  /// open to failNext(kCancelRun) — so the contract suite checks that body against the stores.
  std::vector<Result<OperatorOutcome>> cancelRuns(std::span<const CancelRunRequest> requests) override;
  /// Counted (kClearRuns), then the SDK's own body: one clearTasks per request, as cancelRuns.
  std::vector<Result<OperatorOutcome>> clearRuns(std::span<const ClearRequest> requests) override;
  /// Counted (kCreateRuns), then the SDK's own body: one createRun per run, as cancelRuns.
  std::vector<Status> createRuns(std::optional<Term> term, std::span<const NewRun> runs) override;
  Status deleteDag(const std::string& dag_id) override;
  Status subscribe(ChangeSink& sink) override;
  /// The kRun changes and resyncs only (the kTask and kDag ones are not delivered to this sink).
  Status subscribeRuns(ChangeSink& sink) override;
  void unsubscribe() override;
  /// Finished runs that ended before `before` go, with their instances (no failure injection).
  Result<std::optional<std::int64_t>> deleteFinishedRuns(Timestamp before) override;

  // --- Failure injection ------------------------------------------------------------------------

  /// The next `times` calls of `m` return `status` (which must not be ok) and change nothing.
  /// Replaces any fault already set on `m`.
  void failNext(Method m, Status status, int times = 1);
  /// Every call of `m` returns `status` until clearFault(m) / clearFailures().
  void failAlways(Method m, Status status);
  /// The next `times` calls of `m` throw std::runtime_error (a plugin's exception) and change
  /// nothing.
  void throwOn(Method m, int times = kForever);
  /// Calls of `m` block (a hung backend) until unblock(); they then carry on normally (a fault set
  /// meanwhile still applies to them).
  void blockOn(Method m);
  /// Releases every blocked caller and stops blocking any method.
  void unblock();
  /// Waits until at least `callers` calls of `m` are blocked; false on timeout.
  bool waitUntilBlocked(Method m, std::chrono::milliseconds timeout, int callers = 1) const;
  /// loadRuns returns `status` for this run only (the other keys load normally) until cleared.
  void failLoadOf(const RunKey& run, Status status = unavailable("injected: run cannot be loaded"));
  void clearFault(Method m);
  /// Clears every fault, failLoadOf entry and block (releasing blocked callers).
  void clearFailures();
  /// Calls of `m` on this handle since construction or resetCalls(), including failed ones.
  int calls(Method m) const;
  void resetCalls();

  // --- Inspection (no injection, no counting) ------------------------------------------------------

  std::optional<RunRecord> run(const RunKey& key) const;
  std::optional<TaskInstance> task(const RunKey& key, const std::string& task_id) const;
  /// Every run with its task instances, by (dag_id, run_id).
  std::vector<RunRecord> runs() const;
  /// The runs listActiveRuns() would return.
  std::vector<ActiveRun> activeRuns() const;
  /// Every stored version of a DAG, oldest first (empty when unknown).
  std::vector<StoredDag> dagVersions(const std::string& dag_id) const;
  Term currentTerm() const;
  /// Who claimed the current term ("" before any claim).
  std::string termHolder() const;
  std::optional<LivenessRecord> liveness() const;
  bool subscribed() const;

  // --- Seeding (no injection, no rules, no change published) ------------------------------------

  /// Inserts or replaces a run exactly as given, task instances included (for states the
  /// public methods reach only slowly, e.g. a stale heartbeat or a cleared run). A task's
  /// execution_id is its claim; a uid of 0 gets the next one issued (uids are never reused).
  void putRun(RunRecord record);
  /// Inserts or replaces one task instance of an existing run; false when the run is unknown.
  bool putTask(const RunKey& key, TaskInstance instance);
  /// What the engine does before it hands an attempt over, for tests of executors: makes `attempt` a
  /// queued task instance of a running run (the run is created when new). A later try replaces the
  /// task's instance (a retry); the same or an earlier try changes nothing. Atomic.
  void seedQueuedAttempt(const AttemptRef& attempt, Timestamp now);

  // --- Change feed control ------------------------------------------------------------------------

  /// Waits until every change published so far was delivered to the subscribers.
  void drainChanges() const;
  /// Simulates an interrupted feed: every subscriber of the backend gets onResync().
  void interruptFeed();

 private:
  struct Fault {
    enum class Kind : std::uint8_t { kNone, kStatus, kThrow };
    Kind kind = Kind::kNone;
    Status status;
    int remaining = 0;  ///< kForever = until cleared
  };

  /// Counts the call, blocks while `m` is blocked, then applies a pending fault: a non-ok Status
  /// to return, or throws.
  Status enter(Method m);
  std::optional<Status> loadFaultFor(const RunKey& key) const;

  std::shared_ptr<MemoryBackend> backend_;

  mutable std::mutex hooks_mutex_;
  mutable std::condition_variable hooks_cv_;
  std::array<int, kMethodCount> calls_{};
  std::array<Fault, kMethodCount> faults_{};
  std::array<bool, kMethodCount> blocked_{};
  std::array<int, kMethodCount> waiting_{};
  std::map<RunKey, Status> load_faults_;
};

// ---------------------------------------------------------------------------------------------------
// MemoryLeader

/// One lease several MemoryLeader replicas contend for, like a Redis key with a TTL. Thread-safe.
/// The clock must outlive the board.
class LeaseBoard {
 public:
  LeaseBoard(const Clock& clock, std::chrono::milliseconds lease);

  std::chrono::milliseconds lease() const noexcept { return lease_; }
  const Clock& clock() const noexcept { return *clock_; }
  /// The replica holding an unexpired lease, if any.
  std::optional<std::string> holder() const;
  /// Drops the lease whoever holds it, behind the holder's back (a lock lost with its connection).
  void revoke();

  /// Takes the lease when it is free or expired, or renews it when `replica` holds it already.
  bool acquire(const std::string& replica);
  /// Renews the lease only while `replica` still holds it unexpired; an expired lease is lost even
  /// if nobody took it (another replica may be taking it right now).
  bool renew(const std::string& replica);
  /// Frees the lease only when `replica` holds it.
  void release(const std::string& replica);

 private:
  bool heldBy(const std::string& replica, Timestamp now) const;

  mutable std::mutex mutex_;
  const Clock* clock_;
  std::chrono::milliseconds lease_;
  std::string holder_;
  Timestamp expires_at_{};
};

enum class LeaderMethod : std::uint8_t { kTryAcquire = 0, kCheck, kRelease };
inline constexpr std::size_t kLeaderMethodCount = 3;

/// A Leader on a shared LeaseBoard. Not thread-safe as a Leader (leader.h), but its failure
/// injection may be set from another thread while the campaign loop runs.
class MemoryLeader final : public Leader {
 public:
  static constexpr int kForever = -1;

  /// `check_interval` zero means a third of the lease (renewal well before expiry).
  MemoryLeader(std::shared_ptr<LeaseBoard> board, std::string replica_id,
               std::chrono::milliseconds check_interval = std::chrono::milliseconds{0});

  Result<bool> tryAcquire() override;
  Result<bool> check() override;
  Status release() override;
  std::chrono::milliseconds checkInterval() const override { return check_interval_; }

  const std::string& replicaId() const noexcept { return replica_id_; }
  const std::shared_ptr<LeaseBoard>& board() const noexcept { return board_; }

  /// The next `times` calls of `m` return `status` (not ok) and touch nothing.
  void failNext(LeaderMethod m, Status status, int times = 1);
  void failAlways(LeaderMethod m, Status status);
  /// The next `times` calls of `m` throw std::runtime_error.
  void throwOn(LeaderMethod m, int times = kForever);
  void clearFailures();
  int calls(LeaderMethod m) const;

 private:
  Status enter(LeaderMethod m);

  std::shared_ptr<LeaseBoard> board_;
  std::string replica_id_;
  std::chrono::milliseconds check_interval_;

  mutable std::mutex hooks_mutex_;
  std::array<int, kLeaderMethodCount> calls_{};
  std::array<std::optional<Status>, kLeaderMethodCount> fault_status_{};
  std::array<bool, kLeaderMethodCount> fault_throws_{};
  std::array<int, kLeaderMethodCount> fault_remaining_{};
};

}  // namespace leoflow::testing
