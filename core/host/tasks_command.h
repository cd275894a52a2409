// `leoflow tasks mark | logs | test` (docs/architecture.md §8.14): one task of one run.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include <leoflow/context.h>
#include <leoflow/store.h>

#include "host/operations.h"

namespace CLI {
class App;
}

namespace leoflow::host {

struct CommandContext;

struct LogsOptions {
  TaskLogRequest request;
  bool follow = false;                              ///< keep printing until the attempt ends
  std::chrono::milliseconds poll_interval{200};
};
/// Prints an attempt's log; with `follow`, keeps printing what is appended until the attempt
/// ended. Exit 0, or 2 when there is no such log (the message says where it is when known).
int tasksLogs(Store& store, const LogReadFn& read, const LogsOptions& options, std::ostream& out);

/// `tasks test DAG TASK`: runs the task of the DAG's current version here, in the foreground, with
/// the LEOFLOW_* variables of a run `test__<now>`; writes nothing to the store. Exit 0 when it
/// succeeded, 1 when it failed (its exit code is printed), 2 for a task that cannot run here.
int tasksTest(Store& store, const Clock& clock, const std::string& dag_id, const std::string& task_id,
              std::ostream& err);

void addTasksCommand(CLI::App& app, CommandContext& ctx);

}  // namespace leoflow::host
