// What the dispatcher-local tests lend the plugin: a TaskEvents that records every report and can
// answer like the store does, a wall clock, a recorder that drops everything, a logger; plus
// temporary folders and small process helpers. Real processes throughout, no mocks.
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
#include <string>
#include <vector>

#include <leoflow/context.h>
#include <leoflow/dispatcher.h>

#include "support/null_roles.h"
#include <leoflow/recorder.h>

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

/// Records every report. By default it accepts everything; in store mode it answers like the
/// store's guards (§8.7): running only from queued, heartbeat only while running, finished only
/// from queued or running — an attempt it has never seen counts as queued. A custom answer, if
/// set, is asked first; returning nullopt falls through to the default.
class RecordingEvents final : public TaskEvents {
 public:
  using Answer = std::function<std::optional<Status>(ReportType, const AttemptRef&)>;

  Status running(const ExecutionRef& execution) override;
  Status heartbeat(const ExecutionRef& execution) override;
  Status finished(const ExecutionRef& execution, const TaskOutcome& outcome) override;

  void setAnswer(Answer answer);
  void setStoreMode(bool on);

  std::vector<Report> reports() const;
  std::vector<Report> reportsFor(const AttemptRef& attempt) const;
  int count(ReportType type, const AttemptRef& attempt, bool accepted_only = false) const;
  /// Waits for an accepted finished report of `attempt`.
  std::optional<Report> waitFinished(const AttemptRef& attempt, std::chrono::milliseconds timeout) const;
  /// Waits until `count(type, attempt, true) >= n`.
  bool waitCount(ReportType type, const AttemptRef& attempt, int n, std::chrono::milliseconds timeout) const;

 private:
  Status record(ReportType type, const ExecutionRef& execution, const TaskOutcome& outcome);

  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  std::vector<Report> reports_;
  Answer answer_;
  bool store_mode_ = false;
  std::map<AttemptRef, TaskState> states_;
  std::map<AttemptRef, std::string> claims_;  ///< store mode: the execution that claimed each attempt
};


/// "plugin.dispatcher-local"; prints to stderr when LEOFLOW_TEST_VERBOSE is set.
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

}  // namespace leoflow::testing::dispatcher_local
