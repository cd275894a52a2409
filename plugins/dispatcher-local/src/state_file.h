// One attempt's state file, <state_dir>/<base>.json, and the exit file its supervisor writes,
// <state_dir>/<base>.exit (README "State files").
//
// The state file is the attempt's lock: it is created exclusively (written under a temporary name,
// then hard-linked into place, so it never appears half-written) and the dispatcher watching the
// attempt holds an flock on it for as long as it watches. A state file nobody holds belongs to a
// scheduler that is gone: the next dispatcher to see it adopts or reports the attempt.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <unistd.h>

#include <leoflow/domain.h>
#include <leoflow/status.h>

namespace leoflow::plugins::dispatcher_local {

/// Owns one file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

/// Why the dispatcher stopped a process; recorded before the signal is sent, so a scheduler that
/// dies in between still reports the right reason after a restart.
enum class KillReason : std::uint8_t {
  kNone,
  kTimeout,   ///< execution_timeout_seconds elapsed
  kStale,     ///< a report was refused with kConflict: the attempt is no longer current
  kShutdown,  ///< stop_tasks_on_shutdown
  kStopped,   ///< Dispatcher::stop(): the host found the attempt no longer current
};

std::string_view toString(KillReason reason) noexcept;
KillReason parseKillReason(std::string_view name) noexcept;

/// What the state file records about one attempt.
struct StateRecord {
  AttemptRef attempt;
  std::int64_t run_uid = 0;           ///< the run's store-issued uid (0: unknown, a pre-3.0 file)
  std::string tenant;                 ///< the DAG's tenant (empty: unknown, a pre-3.0 file)
  std::string task_type;
  std::int64_t pid = 0;               ///< the supervisor, also the process group and session id; 0 while starting
  std::uint64_t pid_start_ticks = 0;  ///< /proc/<pid>/stat field 22: tells a recycled pid apart
  std::string boot_id;                ///< /proc/sys/kernel/random/boot_id: pids do not survive a reboot
  std::int64_t started_at_us = 0;     ///< wall clock, microseconds since the epoch
  int execution_timeout_seconds = 0;  ///< 0 = none
  std::string log_path;
  std::string owner;                  ///< replica id of the scheduler that started it
  std::string execution_id;           ///< the execution that claimed the attempt (ARCHITECTURE §8.13)
  KillReason kill_reason = KillReason::kNone;
  std::optional<TaskOutcome> outcome;  ///< known but not yet reported when its dispatcher stopped
};

std::string encodeStateRecord(const StateRecord& record);
/// nullopt when the text is not a state record this version understands.
std::optional<StateRecord> decodeStateRecord(std::string_view text);

/// Files of finished attempts kept for reuse, in <state_dir>/.spare/ (README "State files": why).
///
/// On ext4 without a journal, every inode freed in the last minute (five while its block is dirty)
/// is skipped, one inode-table lookup each, by every later inode allocation in its group, with the
/// directory locked: a dispatcher that created and deleted a state file and an exit file per attempt
/// made each start cost milliseconds of kernel time once a few thousand attempts had come and gone.
/// So a finished attempt's state and exit files are renamed into this pool instead of being
/// removed, and the next attempt's claim and exit file are renamed out of it: no inode is allocated
/// or freed per attempt. A spare is a plain empty-or-stale file, owned by nobody else: names are
/// <pid>.<n>, and a dispatcher removes at start-up the spares of processes that are gone.
class SpareFiles {
 public:
  /// `dir` is created if missing; at most `capacity` spares are kept (the rest are removed).
  SpareFiles(std::filesystem::path dir, std::size_t capacity);
  /// Removes the spares it holds.
  ~SpareFiles();
  SpareFiles(const SpareFiles&) = delete;
  SpareFiles& operator=(const SpareFiles&) = delete;

  /// A spare's path (taken out of the pool), or nullopt when there is none.
  std::optional<std::filesystem::path> take();
  /// Returns a path take() gave out, still a file of the pool.
  void putBack(std::filesystem::path spare);
  /// Moves the file at `path` (if any) into the pool, or removes it when the pool is full or the
  /// move fails. Its name is gone either way, as after unlink(). `empty`: its content is dropped.
  void recycle(const std::filesystem::path& path, bool empty = false);
  /// Puts a file at `path` (replacing whatever is there), from the pool, emptied unless `empty` is
  /// false (the caller truncates it itself); false when there was no spare or it could not be
  /// moved, and `path` is left as it was.
  bool place(const std::filesystem::path& path, bool empty = true);
  /// Removes every spare it holds (shutdown).
  void clear();

  /// Removes the spares of processes that are gone from `dir` (a dispatcher's start-up).
  static void sweep(const std::filesystem::path& dir);

 private:
  std::filesystem::path freshName() const;

  const std::filesystem::path dir_;
  const std::size_t capacity_;
  std::mutex mutex_;
  std::vector<std::filesystem::path> free_;
};

/// Creates <dir>/<base>.json holding `text`, exclusively, and returns it locked (LOCK_EX).
/// nullopt when the file already exists: the attempt was claimed before. With `spares`, the file
/// is a spare (linked into place like a new one) when there is one (no inode allocated), else a new one.
Result<std::optional<UniqueFd>> claimStateFile(const std::filesystem::path& dir, const std::string& base,
                                               std::string_view text, SpareFiles* spares = nullptr);

/// Replaces the content of a state file this process holds.
Status rewriteStateFile(int fd, std::string_view text);

/// The whole content of an open file.
Result<std::string> readAll(int fd);

/// Opens an existing state file and takes its lock without waiting. nullopt when another holder has
/// it (a live dispatcher watches the attempt), or the file vanished or was replaced meanwhile.
std::optional<UniqueFd> lockExisting(const std::filesystem::path& path);

/// The exit code the supervisor recorded, if it did.
std::optional<int> readExitCode(const std::filesystem::path& path);

}  // namespace leoflow::plugins::dispatcher_local
