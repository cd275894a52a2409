// What the dispatcher-local tests lend the plugin: a TaskEvents that records every report and answers
// it as the store does (the in-memory reference store, tests/support/memory_store.h), a dispatcher
// wrapper that makes each attempt queued in that store before handing it over (the engine's part),
// a wall clock, a recorder that drops everything, a logger; plus temporary folders and small
// process helpers. Real processes throughout, no mocks.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <leoflow/context.h>
#include <leoflow/dispatcher.h>

#include <leoflow/recorder.h>

#include "support/memory_store.h"
#include "support/null_roles.h"
#include "support/seeding_dispatcher.h"

namespace leoflow::testing::dispatcher_local {

enum class ReportType { kRunning, kHeartbeat, kFinished };

struct Report {
  ReportType type = ReportType::kRunning;
  AttemptRef attempt;
  std::string execution_id;  ///< the execution that reported (ARCHITECTURE §8.13)
  TaskOutcome outcome;
  Status answer;  ///< what the sink answered
  std::chrono::steady_clock::time_point at;
  std::chrono::system_clock::time_point wall;
};

/// Records every report, and answers it as the store would: each call is forwarded to a MemoryStore
/// (reportRunning, reportHeartbeat, reportFinished, stamped with the wall clock), the reference
/// implementation of store.h's rules — the running report is the claim, accepted for a queued
/// attempt and again for the same execution, kConflict for another; heartbeats and finished reports
/// only from the execution that claimed the attempt (ARCHITECTURE §8.13). An attempt must be seeded
/// (seedQueued(), which SeedingDispatcher does on every dispatch) before the store knows it; an
/// attempt it does not know is kNotFound, as in the real store.
///
/// A test that needs another answer (a store that cannot be reached, a refusal the store would not
/// make by itself) sets one with setAnswer(): asked first, its Status is the answer and the store is
/// not called; nullopt falls through to the store.
class RecordingEvents final : public TaskEvents {
 public:
  using Answer = std::function<std::optional<Status>(ReportType, const AttemptRef&)>;

  /// A second scheduler process on the store of `other` (a restart, two schedulers on one machine):
  /// another handle on the same backend.
  struct SameStoreAs {
    const RecordingEvents& other;
  };

  /// On a store of its own, empty.
  RecordingEvents();
  explicit RecordingEvents(SameStoreAs same);
  ~RecordingEvents() override;

  Status running(const ExecutionRef& execution) override;
  Status heartbeat(const ExecutionRef& execution) override;
  Status finished(const ExecutionRef& execution, const TaskOutcome& outcome) override;

  void setAnswer(Answer answer);
  /// The next `times` reports of `type` reach the store, which acts on them, but their replies are
  /// lost: the dispatcher gets kUnavailable (and that is what is recorded).
  void loseReply(ReportType type, int times = 1);

  /// Makes `attempt` a queued task instance of a running run, as the engine does before it hands an
  /// attempt over (the run is created when the store has none). An attempt of a later try replaces
  /// the task's instance (a retry); the same or an earlier try changes nothing. Atomic among every
  /// recorder on the backend, so racing dispatches seed once.
  void seedQueued(const AttemptRef& attempt);
  /// Seeds `attempt` queued and claims it for `execution_id` through the store: an attempt a
  /// scheduler that is gone had started (a leftover in the state dir). Returns the store's answer.
  Status seedRunning(const AttemptRef& attempt, const std::string& execution_id);
  /// This recorder's handle on the store, for inspection (task states and notes).
  MemoryStore& store() { return *store_; }

  std::vector<Report> reports() const;
  std::vector<Report> reportsFor(const AttemptRef& attempt) const;
  int count(ReportType type, const AttemptRef& attempt, bool accepted_only = false) const;
  /// Waits for an accepted finished report of `attempt`.
  std::optional<Report> waitFinished(const AttemptRef& attempt, std::chrono::milliseconds timeout) const;
  /// Waits until `count(type, attempt, true) >= n`.
  bool waitCount(ReportType type, const AttemptRef& attempt, int n, std::chrono::milliseconds timeout) const;

 private:
  struct Shared;
  Status record(ReportType type, const ExecutionRef& execution, const TaskOutcome& outcome);

  std::shared_ptr<Shared> shared_;      ///< the backend, shared by recorders of one store
  std::unique_ptr<MemoryStore> store_;  ///< this "process"'s handle on it
  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  std::vector<Report> reports_;
  Answer answer_;
  std::map<ReportType, int> lost_replies_;
};

/// Plays the engine's part around a real dispatcher: support/seeding_dispatcher.h, seeding this
/// recorder's store.
using leoflow::testing::SeedingDispatcher;

/// SeedingDispatcher with SDK 3.0's heldAttempts() and stop() passed through too.
class HandOverDispatcher final : public Dispatcher {
 public:
  using Seed = std::function<void(const AttemptRef&)>;
  HandOverDispatcher(std::unique_ptr<Dispatcher> inner, Seed seed) : inner_(std::move(inner)), seed_(std::move(seed)) {}
  std::vector<std::string> taskTypes() const override { return inner_->taskTypes(); }
  std::size_t freeCapacity() const override { return inner_->freeCapacity(); }
  Result<DispatchOutcome> dispatch(const DispatchRequest& request) override {
    seed_(request.attempt);
    return inner_->dispatch(request);
  }
  Status reconcile() override { return inner_->reconcile(); }
  void shutdown() override { inner_->shutdown(); }
  std::vector<AttemptRef> heldAttempts() const override { return inner_->heldAttempts(); }
  Status stop(const AttemptRef& attempt) override { return inner_->stop(attempt); }

 private:
  std::unique_ptr<Dispatcher> inner_;
  Seed seed_;
};

/// The task's own lines of a log: without the header and footer the dispatcher writes around them.
std::vector<std::string> outputLines(const std::filesystem::path& path);

/// "plugin.dispatcher-local"; prints to stderr when LEOFLOW_TEST_VERBOSE is set. Every such logger's
/// recent lines are kept for readyWarmShell().
std::shared_ptr<spdlog::logger> testLogger();

/// A fresh folder under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

AttemptRef attemptOf(const std::string& dag, const std::string& run, const std::string& task, int try_number = 1);

/// A bash (or other type) task request for `attempt`.
DispatchRequest requestOf(const AttemptRef& attempt, const std::string& entrypoint, const std::string& type = "bash",
                          int timeout_seconds = 0);

std::string readFile(const std::filesystem::path& path);
std::vector<std::string> readLines(const std::filesystem::path& path);

/// The pid a task wrote (`echo $$ > file`), waiting for the file to appear.
std::optional<pid_t> waitForPidFile(const std::filesystem::path& path, std::chrono::milliseconds timeout);

/// True while `pid` exists and is not a zombie.
bool processAlive(pid_t pid);

/// Polls `condition` every few milliseconds until it holds or `timeout` passes.
bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

/// True while the process group `pgid` has a member (zombies included).
bool groupAlive(pid_t pgid);

/// How many processes are in the process group `pgid` (/proc/<pid>/stat field 5), zombies aside.
std::size_t groupSize(pid_t pgid);

/// This process's children, running or not yet reaped (zombies included).
std::set<pid_t> ourChildren();

/// This process's children that are warm shells waiting for an attempt (argv: bash -c <script>
/// leoflow-supervisor warm).
std::vector<pid_t> ourWarmShells();

/// The one warm shell of ourWarmShells(), other than `previous`, once its pool can hand it out: the
/// shell's process shows before that (its pool logs "warm shell ready" then, to a testLogger()), and a
/// task dispatched in between starts cold. nullopt when there is no such shell within `timeout`.
std::optional<pid_t> readyWarmShell(std::chrono::milliseconds timeout, std::optional<pid_t> previous = {});

}  // namespace leoflow::testing::dispatcher_local
