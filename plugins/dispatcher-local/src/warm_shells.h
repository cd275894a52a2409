// Warm shells (README "Warm shells"): bash supervisors started ahead of need, each waiting on a
// socket for the one attempt it will run. Starting bash costs ~4 ms on a small VM; a warm shell
// starts its task in a fraction of that, off the gap between dependent tasks.
//
// A warm shell is started exactly like a cold supervisor (its own session, the scheduler's
// environment, work_dir, nothing inherited). Its launch — exit file, log, how its environment
// differs from the scheduler's, the entrypoint — is written to a file it sources when one byte
// arrives on the socket; from then on it is that attempt's supervisor, watched, timed and adopted
// like any other. A shell nobody feeds exits when the socket closes: when the pool retires it, or
// when the scheduler dies.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/logger.h>

#include <leoflow/status.h>

#include "state_file.h"

namespace leoflow::plugins::dispatcher_local {

struct WarmShell {
  pid_t pid = -1;
  std::uint64_t start_ticks = 0;  ///< /proc/<pid>/stat field 22, for the state record
  UniqueFd pidfd;
  UniqueFd feed;  ///< our end of the socket the shell reads its attempt from
};

/// What a warm shell is told to run.
struct WarmLaunch {
  std::filesystem::path exit_path;
  std::filesystem::path log_path;
  std::vector<std::string> exports;  ///< NAME=value
  std::vector<std::string> unsets;   ///< NAME
  std::string entrypoint;
};

/// The changes that turn a shell started with `parent` into one with exactly `target` (NAME=value
/// entries). nullopt when a warm shell cannot do it as faithfully as a fresh `bash -c` would: a
/// name that is not a shell identifier, a variable bash reads at start-up (BASH_ENV, SHELLOPTS,
/// ...), or a different PATH (which decides the bash that runs).
std::optional<std::pair<std::vector<std::string>, std::vector<std::string>>> environmentDelta(
    const std::map<std::string, std::string>& parent, const std::vector<std::string>& target);

/// `<launch_dir>/.warm-<pid>.sh`: where the shell with this pid finds its launch.
std::filesystem::path warmLaunchPath(const std::filesystem::path& launch_dir, pid_t pid);

/// Writes `launch` where `shell` looks for it, wakes the shell and closes the socket. false when the
/// shell is gone, the file cannot be written, or a field holds a NUL byte (no shell word can); the
/// shell is then unusable and should be retired.
bool feedWarmShell(WarmShell& shell, const WarmLaunch& launch, const std::filesystem::path& launch_dir);

/// Removes the launch files of shells that are gone (left by a scheduler that died).
void sweepWarmLaunches(const std::filesystem::path& launch_dir);

/// Ends a shell that was never fed (closing its socket ends it; SIGKILL after `wait`) and reaps it.
void retireWarmShell(WarmShell& shell, std::chrono::milliseconds wait);

/// A few warm shells, topped up by a thread of the pool's own, off the dispatch path.
class WarmShellPool {
 public:
  /// `size` 0: never any shell (take() always answers nullopt). `bash`: the program, a name looked up
  /// on `env`'s PATH or a path. `launch_dir` must exist.
  WarmShellPool(std::size_t size, std::string bash, const std::map<std::string, std::string>& env,
                std::filesystem::path cwd, std::filesystem::path launch_dir, std::shared_ptr<spdlog::logger> logger);
  ~WarmShellPool();
  WarmShellPool(const WarmShellPool&) = delete;
  WarmShellPool& operator=(const WarmShellPool&) = delete;

  const std::filesystem::path& launchDir() const { return launch_dir_; }
  /// A live shell, if one is ready; never waits. The pool starts a replacement.
  std::optional<WarmShell> take();
  /// Returns a shell taken but not used.
  void giveBack(WarmShell shell);
  /// Stops topping up and retires every shell. Idempotent.
  void stop();

 private:
  void fillLoop();
  /// A new, watchable shell (the filler thread's work).
  Result<WarmShell> startShell();

  const std::size_t size_;
  const std::string bash_;
  const std::vector<std::string> env_;
  const std::filesystem::path cwd_;
  const std::filesystem::path launch_dir_;
  std::shared_ptr<spdlog::logger> logger_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<WarmShell> ready_;
  bool stopping_ = false;
  std::thread filler_;
};

}  // namespace leoflow::plugins::dispatcher_local
