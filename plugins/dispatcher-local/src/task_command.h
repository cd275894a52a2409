// What a task runs: its command line and its environment (README "Tasks").
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <leoflow/dispatcher.h>
#include <leoflow/status.h>

#include "settings.h"

namespace leoflow::plugins::dispatcher_local {

/// The task types this dispatcher runs.
inline constexpr std::string_view kBashType = "bash";
inline constexpr std::string_view kPythonType = "python";

/// True for "module.sub:function" (a python entrypoint to import and call), false for a script path.
bool isModuleFunction(std::string_view entrypoint);

/// The task's argv: `bash -c <entrypoint>`; `<python> -c <bootstrap> <module> <function> <work_dir>`
/// for module:function; `<python> <script>` for a script path (relative to work_dir, the working
/// directory). kInvalidArgument for another task type or an empty entrypoint: such a task can
/// never run here.
Result<std::vector<std::string>> taskArgv(const TaskSpec& task, const Settings& settings);

/// A copy of this process's environment, taken once (reading `environ` while another thread calls
/// setenv() is a data race).
std::map<std::string, std::string> snapshotEnvironment();

/// The task's environment as NAME=value: the scheduler's, then the task's `env`, then LEOFLOW_*
/// (which nothing overrides: they name the attempt).
std::vector<std::string> taskEnvironment(const std::map<std::string, std::string>& parent,
                                         const DispatchRequest& request, const Settings& settings);

}  // namespace leoflow::plugins::dispatcher_local
