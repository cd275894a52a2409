// The plugin's configuration keys and their checked values.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <leoflow/config.h>

namespace leoflow::plugins::dispatcher_local {

/// Everything the dispatcher reads from [dispatcher.config]. Folders are absolute: relative values
/// are resolved against the scheduler's working directory once, at create().
struct Settings {
  std::size_t max_parallel = 8;
  std::filesystem::path work_dir;   ///< every attempt's working directory
  std::filesystem::path log_dir;    ///< <log_dir>/<dag_id>/<run_id>/<run_uid>/<task_id>/<try>.log
  std::filesystem::path state_dir;  ///< one lock/state file per attempt (README "State files")
  std::string python = "python3";
  /// The bash that runs bash tasks and warm shells: a name looked up on the task's PATH, or a path
  /// (README "Choosing the bash").
  std::string bash = "bash";
  std::chrono::milliseconds kill_grace{5000};
  bool stop_tasks_on_shutdown = false;
  std::size_t warm_shells = 2;  ///< bash supervisors kept started ahead of need (README "Warm shells")
  std::string section;  ///< e.g. "dispatcher.config", for messages
};

/// The keys the factory declares (name, type, required, default, help).
std::vector<ConfigKey> configKeys();

/// Reads and checks the values; throws std::invalid_argument naming the section and the key.
Settings readSettings(const ConfigView& config);

/// Creates the three folders and checks they are writable; throws std::runtime_error naming the
/// key and the folder when one cannot be made.
void prepareFolders(const Settings& settings);

}  // namespace leoflow::plugins::dispatcher_local
