// An attempt's log file (README "Logs"): the header the dispatcher writes before the task's output,
// the footer it writes after the task ended, and the LogReader that serves the files by offset.
//
//   leoflow: ==== attempt <dag_id>/<run_id>/<task_id> try <n>
//   leoflow: run uid <run_uid>, tenant <tenant>
//   leoflow: host <host name>
//   leoflow: execution <execution id>
//   leoflow: command <the command, shell-quoted>
//   leoflow: started <2026-01-02T03:04:05.123456Z>
//   leoflow: ====
//   ... the task's stdout and stderr (and the dispatcher's "leoflow: ..." notes: stop, SIGKILL) ...
//   leoflow: ==== end of execution <execution id>
//   leoflow: outcome <success | failed: note>
//   leoflow: exit code <n | none>
//   leoflow: ended <2026-01-02T03:04:07.654321Z>
//
// The footer is written in one write() once the dispatcher knows the attempt ended; a log is
// complete when its last 64 KiB hold the footer naming the execution its header names.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <leoflow/dispatcher.h>

#include "attempt_log.h"
#include "settings.h"
#include "state_file.h"

namespace leoflow::plugins::dispatcher_local {

// Shared with the other plugins that keep attempt logs (attempt_log.h).
using attempt_log::formatLogFooter;
using attempt_log::hasFooter;
using attempt_log::hostName;

/// The command as one line a shell would take back: words single-quoted when they need it, control
/// characters (a multi-line entrypoint's newlines) written $'\n'.
std::string describeCommand(const std::vector<std::string>& argv);

/// The header for `record` (attempt, run uid, tenant, execution, start time) running `argv`.
std::string formatLogHeader(const StateRecord& record, const std::vector<std::string>& argv);

/// Appends the footer to the log at `path` unless it has one for `execution_id` already (a
/// dispatcher that wrote it and died before its state file said so). Never creates the file.
void appendLogFooter(const std::string& path, const std::string& execution_id, const TaskOutcome& outcome);

/// Reads <log_dir>'s files (README "Logs"); starts nothing. Thread-safe.
class LocalLogReader final : public LogReader {
 public:
  explicit LocalLogReader(Settings settings) : settings_(std::move(settings)), host_(hostName()) {}
  Result<LogChunk> read(const LogQuery& query) override;

 private:
  const Settings settings_;
  const std::string host_;
};

}  // namespace leoflow::plugins::dispatcher_local
