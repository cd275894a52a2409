#include "settings.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace leoflow::plugins::dispatcher_local {
namespace {

constexpr std::int64_t kDefaultMaxParallel = 8;
constexpr const char* kDefaultWorkDir = "./.leoflow/work";
constexpr const char* kDefaultLogDir = "./.leoflow/logs";
constexpr const char* kDefaultStateDir = "./.leoflow/state";
constexpr const char* kDefaultPython = "python3";
constexpr const char* kDefaultBash = "bash";
constexpr std::int64_t kDefaultKillGraceMs = 5000;
constexpr std::int64_t kDefaultWarmShells = 2;
constexpr std::int64_t kMaxWarmShells = 64;

std::string where(const ConfigView& config, const std::string& key) {
  return "key \"" + key + "\" in [" + config.section() + "]";
}

// Keys the host already checked and defaulted are still read defensively, so a test handing a bare
// ConfigView (or a host of another version) gets a message, not a crash.
std::string stringOr(const ConfigView& config, const std::string& key, const std::string& fallback) {
  return config.has(key) ? config.getString(key) : fallback;
}

std::int64_t intOr(const ConfigView& config, const std::string& key, std::int64_t fallback) {
  return config.has(key) ? config.getInt(key) : fallback;
}

std::filesystem::path folder(const ConfigView& config, const std::string& key, const std::string& fallback) {
  const std::string value = stringOr(config, key, fallback);
  if (value.empty()) throw std::invalid_argument(where(config, key) + ": must not be empty");
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(value, ec);
  if (ec) throw std::invalid_argument(where(config, key) + ": \"" + value + "\": " + ec.message());
  return absolute.lexically_normal();
}

void makeFolder(const Settings& s, const char* key, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir, ec)) {
    throw std::runtime_error("dispatcher-local: cannot create " + std::string(key) + " folder \"" + dir.string() +
                             "\" ([" + s.section + "]): " + (ec ? ec.message() : "not a directory"));
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    throw std::runtime_error("dispatcher-local: " + std::string(key) + " folder \"" + dir.string() +
                             "\" ([" + s.section + "]) is not writable: " + std::strerror(errno));
  }
}

}  // namespace

std::vector<ConfigKey> configKeys() {
  return {
      {"max_parallel", ConfigType::kInt, false, ConfigValue{kDefaultMaxParallel},
       "how many task processes may run at once; beyond it dispatch answers at capacity (ARCHITECTURE 8.8)"},
      {"work_dir", ConfigType::kString, false, ConfigValue{std::string(kDefaultWorkDir)},
       "working directory of every task process (python module:function imports from here)"},
      {"log_dir", ConfigType::kString, false, ConfigValue{std::string(kDefaultLogDir)},
       "task logs: <log_dir>/<dag_id>/<run_id>/<run_uid>/<task_id>/<try>.log, stdout and stderr together "
       "between a header and a footer the dispatcher writes"},
      {"state_dir", ConfigType::kString, false, ConfigValue{std::string(kDefaultStateDir)},
       "per-attempt lock/state files; processes sharing it never start one attempt twice"},
      {"python", ConfigType::kString, false, ConfigValue{std::string(kDefaultPython)},
       "the Python interpreter for python tasks (a name looked up in PATH, or a path)"},
      {"bash", ConfigType::kString, false, ConfigValue{std::string(kDefaultBash)},
       "the bash that runs bash tasks and warm shells (a name looked up in PATH, or a path); bash-static, the "
       "same bash linked statically, starts with less CPU"},
      {"kill_grace_ms", ConfigType::kInt, false, ConfigValue{kDefaultKillGraceMs},
       "time between SIGTERM and SIGKILL to a task's process group when it times out, is stopped (stop()) or is "
       "no longer current, in milliseconds"},
      {"stop_tasks_on_shutdown", ConfigType::kBool, false, ConfigValue{false},
       "stop running tasks when the scheduler stops (default: leave them to the next scheduler)"},
      {"warm_shells", ConfigType::kInt, false, ConfigValue{kDefaultWarmShells},
       "bash supervisors kept started ahead of need, so a bash task starts without waiting for bash (0: none)"},
  };
}

Settings readSettings(const ConfigView& config) {
  Settings s;
  s.section = config.section();
  const std::int64_t max_parallel = intOr(config, "max_parallel", kDefaultMaxParallel);
  if (max_parallel < 1 || max_parallel > 100000) {
    throw std::invalid_argument(where(config, "max_parallel") + ": must be between 1 and 100000, got " +
                                std::to_string(max_parallel));
  }
  s.max_parallel = static_cast<std::size_t>(max_parallel);
  s.work_dir = folder(config, "work_dir", kDefaultWorkDir);
  s.log_dir = folder(config, "log_dir", kDefaultLogDir);
  s.state_dir = folder(config, "state_dir", kDefaultStateDir);
  s.python = stringOr(config, "python", kDefaultPython);
  if (s.python.empty()) throw std::invalid_argument(where(config, "python") + ": must not be empty");
  s.bash = stringOr(config, "bash", kDefaultBash);
  if (s.bash.empty()) throw std::invalid_argument(where(config, "bash") + ": must not be empty");
  const std::int64_t grace = intOr(config, "kill_grace_ms", kDefaultKillGraceMs);
  if (grace < 0) {
    throw std::invalid_argument(where(config, "kill_grace_ms") + ": must not be negative, got " +
                                std::to_string(grace));
  }
  s.kill_grace = std::chrono::milliseconds(grace);
  s.stop_tasks_on_shutdown = config.has("stop_tasks_on_shutdown") && config.getBool("stop_tasks_on_shutdown");
  const std::int64_t warm = intOr(config, "warm_shells", kDefaultWarmShells);
  if (warm < 0 || warm > kMaxWarmShells) {
    throw std::invalid_argument(where(config, "warm_shells") + ": must be between 0 and " +
                                std::to_string(kMaxWarmShells) + ", got " + std::to_string(warm));
  }
  s.warm_shells = static_cast<std::size_t>(warm);
  return s;
}

void prepareFolders(const Settings& settings) {
  makeFolder(settings, "work_dir", settings.work_dir);
  makeFolder(settings, "log_dir", settings.log_dir);
  makeFolder(settings, "state_dir", settings.state_dir);
}

}  // namespace leoflow::plugins::dispatcher_local
