// Starting, finding and watching task processes (README "Processes and the supervisor").
//
// Every attempt runs under a supervisor that records the task's exit code in the exit file before
// it exits, spawned with vfork and execve in a new session (so it is its own process group, has no
// terminal and outlives the scheduler):
// - a bash task's entrypoint runs in the supervisor itself, `bash -c <script> leoflow-supervisor
//   <exit file> <entrypoint>`: one exec per task. An EXIT trap writes the code; TERM, INT and HUP
//   end the script with 128 + the signal (so a stopped task records 143, never 0);
// - any other command runs as the child of `/bin/sh -c <script> leoflow-supervisor <exit file>
//   <argv...>`, which traps TERM/INT/HUP (a handler, not an ignore, so the task gets the default
//   actions back) so that a SIGTERM to the group reaches the task and its exit code is recorded.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <leoflow/status.h>

#include "state_file.h"

namespace leoflow::plugins::dispatcher_local {

/// argv[0] of the supervisor shell: names it in `ps` and marks its command line for findSupervisor().
inline constexpr const char* kSupervisorName = "leoflow-supervisor";

/// `name` on the PATH of `env` (NAME=value entries), as a shell would find it; the default path when
/// `env` has none; a name with a slash is a path already, returned as it is. Empty when not found.
std::string findOnPath(const std::string& name, const std::vector<std::string>& env);

/// True for the argv `bash -c <entrypoint>`: a bash task, run by a bash supervisor itself.
bool isBashEntrypoint(const std::vector<std::string>& argv);

struct SpawnRequest {
  /// The task's command (python3 ...), run as the child of a /bin/sh supervisor; or, when it is
  /// exactly `bash -c <entrypoint>`, the entrypoint run by a bash supervisor itself.
  std::vector<std::string> argv;
  std::vector<std::string> env;   ///< NAME=value, the whole environment
  std::filesystem::path cwd;
  int log_fd = -1;                ///< becomes stdout and stderr
  std::filesystem::path exit_path;
  /// The bash that runs a bash entrypoint: a name looked up on `env`'s PATH, or a path (the
  /// `bash` setting).
  std::string bash = "bash";
};

/// Starts the supervised task; returns the supervisor's pid (= its process group and session).
/// Never waits for the task. Safe in a multi-threaded process: between vfork and execve the child
/// only makes system calls, with every signal blocked. The error's message is the reason, e.g. "Argument list too long
/// (starting /usr/bin/bash)".
Result<pid_t> spawnSupervised(const SpawnRequest& request);

/// Whether the supervisor spawnSupervised() would start for `argv`, `env` and `bash` fits what execve takes:
/// no argument or variable over the kernel's per-string limit (32 pages, 128 KiB), and all of them
/// within the argument space (a quarter of the stack limit, at most 6 MiB). Otherwise
/// kInvalidArgument "cannot start the command: Argument list too long (<what is too large>)": the
/// task's own command, so it would fail with E2BIG every time it is tried.
Status checkCommandFits(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                        const std::filesystem::path& exit_path, const std::string& bash);

struct ProcessStat {
  std::uint64_t start_ticks = 0;  ///< field 22: start time in clock ticks after boot
  char state = '?';               ///< field 3: R, S, D, Z, ...
};

/// /proc/<pid>/stat, or nullopt when there is no such process.
std::optional<ProcessStat> readProcessStat(pid_t pid);

/// This boot's id (empty when unreadable).
std::string readBootId();

/// A pidfd for `pid` (invalid when the process is gone or pidfds are unavailable).
UniqueFd openPidfd(pid_t pid);

/// True when the process behind `pidfd` has ended (never waits; false for an invalid pidfd).
bool pidfdExited(int pidfd);

/// How a process ended, as waitid() tells its parent.
struct WaitStatus {
  bool signaled = false;
  int value = 0;  ///< the exit code, or the signal number when signaled
};

/// Reaps the process behind `pidfd` if it is this process's child and has ended; nullopt when it
/// is not our child (adopted from a previous incarnation) or was reaped by someone else.
std::optional<WaitStatus> reapChild(int pidfd);

/// Reaps `pid` if it is a zombie child of this process (a supervisor started by an earlier
/// dispatcher object in the same process).
std::optional<WaitStatus> reapZombieChild(pid_t pid);

/// Sends `sig` to the process group `pgid`; false when the group is gone.
bool signalGroup(pid_t pgid, int sig);

/// argv[5] of a warm shell (after `bash --norc -c <script> leoflow-supervisor`), which has no exit
/// file yet.
inline constexpr const char* kWarmShellMark = "warm";

/// Starts a warm shell: a bash supervisor (`bash`, a name looked up on `env`'s PATH or a path) in a
/// session of its own, with the environment `env`, in `cwd`, that runs `<launch_dir>/.warm-<its pid>.sh`
/// when a byte arrives on `feed_fd` (its stdin) — README "Warm shells".
Result<pid_t> spawnWarmShell(const std::string& bash, const std::vector<std::string>& env,
                             const std::filesystem::path& cwd, const std::filesystem::path& launch_dir, int feed_fd);

/// Finds a live supervisor by its exit file among all processes (for a state file whose owner died
/// between spawning and recording the pid).
std::optional<pid_t> findSupervisor(const std::filesystem::path& exit_path);

/// True when `pid` is alive, not a zombie, on this boot, and started at `start_ticks`.
bool isSameLiveProcess(pid_t pid, std::uint64_t start_ticks, const std::string& boot_id,
                       const std::string& current_boot_id);

}  // namespace leoflow::plugins::dispatcher_local
